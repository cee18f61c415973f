/* Evaluating exit heads, alone or inside a forward pass. */
#include "exits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../kernels/cpu/matmul.h"
#include "backend.h"
#include "../kernels/cpu/ops.h"

struct exit_eval {
    const struct model *m;
    struct threadpool *tp;
    int max_rows;
    float *adapted; /* (max_rows, dim) h + A(h) */
    float *low;     /* (max_rows, max rank) v · h of a low-rank adapter */
    float *normed;  /* (max_rows, dim) */
    float *logits;  /* (max_rows, vocab) when the caller wants none */
    struct exit_result *res; /* (max_rows) results handed to an exit_fn */
    void *mm_scratch;
};

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

struct exit_eval *exit_eval_new(const struct model *m, const struct exit_set *s,
                                struct threadpool *tp, int max_rows)
{
    if (max_rows < 1)
        return NULL;
    const struct model_config *c = &m->cfg;
    struct exit_eval *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->m = m;
    ev->tp = tp;
    ev->max_rows = max_rows;
    size_t r = (size_t)max_rows, scratch = matmul_scratch_bytes(m->output.type, max_rows, c->dim);
    int max_rank = 1;
    for (int i = 0; s && i < s->n; i++) {
        const struct exit_head *h = &s->heads[i];
        if (h->adapter == EXIT_FULL_ADAPTER)
            scratch = max_size(scratch, matmul_scratch_bytes(h->a.type, max_rows, c->dim));
        if (h->adapter == EXIT_LOW_RANK_ADAPTER) {
            scratch = max_size(scratch, matmul_scratch_bytes(h->v.type, max_rows, c->dim));
            scratch = max_size(scratch, matmul_scratch_bytes(h->u.type, max_rows, h->rank));
            max_rank = h->rank > max_rank ? h->rank : max_rank;
        }
    }
    ev->adapted = malloc(sizeof(float) * r * c->dim);
    ev->low = malloc(sizeof(float) * r * max_rank);
    ev->normed = malloc(sizeof(float) * r * c->dim);
    ev->logits = malloc(sizeof(float) * r * c->vocab);
    ev->res = malloc(sizeof *ev->res * r);
    ev->mm_scratch = malloc(scratch + 64);
    if (!ev->adapted || !ev->low || !ev->normed || !ev->logits || !ev->res || !ev->mm_scratch) {
        exit_eval_free(ev);
        return NULL;
    }
    return ev;
}

void exit_eval_free(struct exit_eval *ev)
{
    if (!ev)
        return;
    free(ev->adapted);
    free(ev->low);
    free(ev->normed);
    free(ev->logits);
    free(ev->res);
    free(ev->mm_scratch);
    free(ev);
}

/* y (n, mat->rows) = x (n, mat->cols) · matᵀ */
static void matmul_rows(struct exit_eval *ev, float *y, const struct matrix *mat, const float *x, int n)
{
    matrix_mul(ev->tp, y, mat, x, n, ev->mm_scratch);
}

/* Argmax and its softmax probability, summed in double in index order so
 * the value does not depend on anything but the row. */
static struct exit_result top1(const float *logits, int vocab)
{
    int best = argmax(logits, vocab);
    double sum = 0.0;
    for (int i = 0; i < vocab; i++)
        sum += exp((double)logits[i] - logits[best]);
    return (struct exit_result){best, (float)(1.0 / sum)};
}

/* n <= ev->max_rows rows. */
static void eval_rows(struct exit_eval *ev, const struct exit_head *h, const float *hidden, int n,
                      struct exit_result *out, float *logits)
{
    const struct model *m = ev->m;
    const struct model_config *c = &m->cfg;
    const float *x = hidden;
    if (h->adapter != EXIT_NO_ADAPTER) {
        if (h->adapter == EXIT_FULL_ADAPTER) {
            matmul_rows(ev, ev->adapted, &h->a, hidden, n);
        } else {
            matmul_rows(ev, ev->low, &h->v, hidden, n);
            matmul_rows(ev, ev->adapted, &h->u, ev->low, n);
        }
        add_inplace(ev->adapted, hidden, (long)n * c->dim);
        x = ev->adapted;
    }
    rmsnorm_rows(ev->normed, x, m->output_norm, n, c->dim, c->rms_eps);
    matmul_rows(ev, logits, &m->output, ev->normed, n);
    for (int r = 0; r < n; r++)
        out[r] = top1(logits + (long)r * c->vocab, c->vocab);
}

void exit_head_eval(struct exit_eval *ev, const struct exit_head *h, const float *hidden, int n,
                    struct exit_result *out, float *logits)
{
    const struct model_config *c = &ev->m->cfg;
    for (int r0 = 0; r0 < n; r0 += ev->max_rows) {
        int k = n - r0 < ev->max_rows ? n - r0 : ev->max_rows;
        float *dst = logits ? logits + (long)r0 * c->vocab : ev->logits;
        eval_rows(ev, h, hidden + (long)r0 * c->dim, k, out + r0, dst);
    }
}

/* ---- exits inside a pass ---- */

struct exit_pass {
    struct forward_ctx *fc;
    const struct exit_set *s;
    struct exit_eval *ev;
    bool want_logits;
    exit_fn fn;
    void *fn_ctx;
    bool too_many_rows;
};

static bool exit_hook(void *ctx, int layer, const float *hidden, int first_row, int n_rows)
{
    struct exit_pass *p = ctx;
    if (n_rows > p->ev->max_rows) {
        p->too_many_rows = true;
        return false;
    }
    for (int i = 0; i < p->s->n; i++) {
        if (p->s->heads[i].layer != layer)
            continue;
        struct exit_eval *ev = p->ev;
        if (hidden)
            exit_head_eval(ev, &p->s->heads[i], hidden, n_rows, ev->res, ev->logits);
        else /* in place: the stream stays on the device */
            forward_exit_head(p->fc, &p->s->heads[i], n_rows, ev->res,
                              p->want_logits ? ev->logits : NULL);
        p->fn(p->fn_ctx, i, first_row, n_rows, ev->res, p->want_logits ? ev->logits : NULL);
    }
    return true;
}

bool forward_exits_in_place(struct forward_ctx *fc, const struct exit_set *s, char *why,
                            size_t len)
{
    for (int i = 0; i < s->n; i++)
        if (!forward_exit_head_prepare(fc, &s->heads[i], why, len))
            return false;
    return true;
}

bool forward_exits(struct forward_ctx *fc, struct kv_cache *kv, const struct forward_request *req,
                   const struct exit_set *s, struct exit_eval *ev, bool want_logits, exit_fn fn,
                   void *fn_ctx, char *err, size_t errlen)
{
    if (req->hook) {
        snprintf(err, errlen, "forward_exits: the request already has a layer hook");
        return false;
    }
    struct exit_pass p = {fc, s, ev, want_logits, fn, fn_ctx, false};
    struct forward_request r = *req;
    r.hook = exit_hook;
    r.hook_ctx = &p;
    char why[256];
    bool ok = forward_exits_in_place(fc, s, why, sizeof why) ? forward_in_place(fc, kv, &r, err, errlen)
                                                              : forward(fc, kv, &r, err, errlen);
    if (p.too_many_rows)
        snprintf(err, errlen, "forward_exits: the exit evaluator holds %d rows, fewer than the "
                              "forward context's chunks", ev->max_rows);
    return ok;
}
