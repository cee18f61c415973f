#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* A context is a backend's table and its state; forward() checks requests
 * and cuts them into chunks, the backend runs the chunks. */
struct forward_ctx {
    const struct backend *be;
    void *impl;
    const struct model *m;
    int max_rows, max_ctx;
};

struct forward_ctx *forward_ctx_new_on(const char *device, const struct model *m,
                                       struct threadpool *tp, int max_rows, int max_ctx,
                                       char *err, size_t errlen)
{
    const struct backend *be = !strcmp(device, "cpu")    ? &backend_cpu
                               : !strcmp(device, "cuda") ? &backend_cuda
                                                         : NULL;
    if (!be) {
        snprintf(err, errlen, "unknown device '%s' (cpu, cuda)", device);
        return NULL;
    }
    if (max_rows < 1 || max_ctx < 1) {
        snprintf(err, errlen, "forward context: max_rows %d, max_ctx %d must be >= 1", max_rows,
                 max_ctx);
        return NULL;
    }
    struct forward_ctx *fc = calloc(1, sizeof *fc);
    if (!fc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *fc = (struct forward_ctx){be, NULL, m, max_rows, max_ctx};
    fc->impl = be->ctx_new(m, tp, max_rows, max_ctx, err, errlen);
    if (!fc->impl) {
        free(fc);
        return NULL;
    }
    return fc;
}

struct forward_ctx *forward_ctx_new(const struct model *m, struct threadpool *tp,
                                    int max_rows, int max_ctx)
{
    char err[256];
    return forward_ctx_new_on("cpu", m, tp, max_rows, max_ctx, err, sizeof err);
}

void forward_ctx_free(struct forward_ctx *fc)
{
    if (!fc)
        return;
    fc->be->ctx_free(fc->impl);
    free(fc);
}

const char *forward_device(const struct forward_ctx *fc)
{
    return fc->be->name;
}

static bool run(struct forward_ctx *fc, struct kv_cache *kv, const struct forward_request *req,
                bool in_place, char *err, size_t errlen)
{
    const struct model_config *c = &fc->m->cfg;
    if (req->n < 1 || req->first_logit_row < 0 || req->first_logit_row > req->n ||
        (req->first_logit_row < req->n && !req->logits)) {
        snprintf(err, errlen, "forward: invalid request (n %d, first logit row %d)", req->n,
                 req->first_logit_row);
        return false;
    }
    if (kv->n_layers != c->n_layers || kv->kv_dim != c->n_kv_heads * c->head_dim) {
        snprintf(err, errlen, "forward: KV cache does not belong to this model");
        return false;
    }
    if (kv->dev && strcmp(kv->dev_backend, fc->be->name) != 0) {
        snprintf(err, errlen, "forward: KV cache lives on device %s, this context runs on %s",
                 kv->dev_backend, fc->be->name);
        return false;
    }
    int limit = kv->n_ctx < fc->max_ctx ? kv->n_ctx : fc->max_ctx;
    if (req->n > limit - kv->len) {
        snprintf(err, errlen, "context full: %d tokens + %d new exceed the context of %d", kv->len,
                 req->n, limit);
        return false;
    }
    for (int i = 0; i < req->n; i++) {
        if (req->tokens[i] < 0 || req->tokens[i] >= c->vocab) {
            snprintf(err, errlen, "token %d at input position %d is outside the vocabulary (%d)",
                     req->tokens[i], i, c->vocab);
            return false;
        }
    }
    int len0 = kv->len;
    for (int row0 = 0; row0 < req->n; row0 += fc->max_rows) {
        int n = req->n - row0 < fc->max_rows ? req->n - row0 : fc->max_rows;
        if (!fc->be->chunk(fc->impl, kv, req, row0, n, in_place, err, errlen)) {
            kv->len = len0;
            return false;
        }
    }
    return true;
}

bool forward(struct forward_ctx *fc, struct kv_cache *kv, const struct forward_request *req,
             char *err, size_t errlen)
{
    return run(fc, kv, req, false, err, errlen);
}

bool forward_in_place(struct forward_ctx *fc, struct kv_cache *kv,
                      const struct forward_request *req, char *err, size_t errlen)
{
    return run(fc, kv, req, fc->be->exit_head != NULL, err, errlen);
}

bool forward_exit_head_prepare(struct forward_ctx *fc, const struct exit_head *h, char *why,
                               size_t len)
{
    if (!fc->be->exit_head_prepare) {
        snprintf(why, len, "device %s evaluates exits on the host", fc->be->name);
        return false;
    }
    return fc->be->exit_head_prepare(fc->impl, h, why, len);
}

void forward_exit_head(struct forward_ctx *fc, const struct exit_head *h, int n,
                       struct exit_result *out, float *logits)
{
    fc->be->exit_head(fc->impl, h, n, out, logits);
}
