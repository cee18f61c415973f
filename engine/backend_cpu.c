/* The CPU backend: the forward pass on kernels/cpu, the reference every other
 * backend is compared with. */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/matmul.h"
#include "../kernels/cpu/ops.h"
#include "../kernels/cpu/quant.h"

struct cpu_ctx {
    const struct model *m;
    struct threadpool *tp;
    int max_rows, max_ctx;
    float *x;       /* (max_rows, dim) residual stream */
    float *h;       /* (max_rows, dim) normed input of a block */
    float *q;       /* (max_rows, n_heads*head_dim) */
    float *att;     /* (max_rows, n_heads*head_dim) */
    float *gate;    /* (max_rows, ffn_dim) */
    float *up;      /* (max_rows, ffn_dim) */
    float *att_scratch;
    void *mm_scratch;
};

static size_t max_matmul_scratch(const struct model *m, int rows)
{
    const struct model_config *c = &m->cfg;
    size_t best = matmul_scratch_bytes(m->output.type, rows, c->dim);
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        const struct matrix *ms[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
            size_t b = matmul_scratch_bytes(ms[i]->type, rows, ms[i]->cols);
            if (b > best)
                best = b;
        }
    }
    return best;
}

static void cpu_ctx_free(void *ctx)
{
    struct cpu_ctx *fc = ctx;
    if (!fc)
        return;
    free(fc->x);
    free(fc->h);
    free(fc->q);
    free(fc->att);
    free(fc->gate);
    free(fc->up);
    free(fc->att_scratch);
    free(fc->mm_scratch);
    free(fc);
}

static void *cpu_ctx_new(const struct model *m, struct threadpool *tp, int max_rows, int max_ctx,
                         char *err, size_t errlen)
{
    const struct model_config *c = &m->cfg;
    struct cpu_ctx *fc = calloc(1, sizeof *fc);
    if (!fc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    fc->m = m;
    fc->tp = tp;
    fc->max_rows = max_rows;
    fc->max_ctx = max_ctx;
    size_t r = (size_t)max_rows, q_dim = (size_t)c->n_heads * c->head_dim;
    fc->x = malloc(sizeof(float) * r * c->dim);
    fc->h = malloc(sizeof(float) * r * c->dim);
    fc->q = malloc(sizeof(float) * r * q_dim);
    fc->att = malloc(sizeof(float) * r * q_dim);
    fc->gate = malloc(sizeof(float) * r * c->ffn_dim);
    fc->up = malloc(sizeof(float) * r * c->ffn_dim);
    fc->att_scratch = malloc(sizeof(float) * attention_scratch_floats(threadpool_size(tp), max_ctx));
    fc->mm_scratch = malloc(max_matmul_scratch(m, max_rows) + 64);
    if (!fc->x || !fc->h || !fc->q || !fc->att || !fc->gate || !fc->up || !fc->att_scratch ||
        !fc->mm_scratch) {
        cpu_ctx_free(fc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return fc;
}

/* y (n, mat->rows) = x (n, mat->cols) · matᵀ */
static void matmul_rows(struct cpu_ctx *fc, float *y, const struct matrix *mat,
                        const float *x, int n)
{
    matrix_mul(fc->tp, y, mat, x, n, fc->mm_scratch);
}

/* One transformer block over n rows at positions pos0.., x updated in place. */
static void block_forward(struct cpu_ctx *fc, struct kv_cache *kv, int l, int n, int pos0)
{
    const struct model_config *c = &fc->m->cfg;
    const struct layer_weights *w = &fc->m->layers[l];
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    long nd = (long)n * c->dim;

    /* Attention. New keys and values go straight into the cache rows. */
    float *k = kv_keys(kv, l), *v = kv_values(kv, l);
    float *k_new = k + (size_t)pos0 * kv_dim, *v_new = v + (size_t)pos0 * kv_dim;
    rmsnorm_rows(fc->h, fc->x, w->attn_norm, n, c->dim, c->rms_eps);
    matmul_rows(fc, fc->q, &w->wq, fc->h, n);
    matmul_rows(fc, k_new, &w->wk, fc->h, n);
    matmul_rows(fc, v_new, &w->wv, fc->h, n);
    if (w->bq) {
        add_bias_rows(fc->q, w->bq, n, q_dim);
        add_bias_rows(k_new, w->bk, n, kv_dim);
        add_bias_rows(v_new, w->bv, n, kv_dim);
    }
    rope_rows(fc->q, n, c->n_heads, c->head_dim, pos0, fc->m->rope_inv_freq, c->rope_neox);
    rope_rows(k_new, n, c->n_kv_heads, c->head_dim, pos0, fc->m->rope_inv_freq, c->rope_neox);
    attention(fc->tp, fc->att, fc->q, k, v, n, pos0, c->n_heads, c->n_kv_heads, c->head_dim,
              fc->att_scratch, fc->max_ctx);
    matmul_rows(fc, fc->h, &w->wo, fc->att, n);
    add_inplace(fc->x, fc->h, nd);

    /* Feed-forward: down(silu(gate(h)) * up(h)). */
    rmsnorm_rows(fc->h, fc->x, w->ffn_norm, n, c->dim, c->rms_eps);
    matmul_rows(fc, fc->gate, &w->w_gate, fc->h, n);
    matmul_rows(fc, fc->up, &w->w_up, fc->h, n);
    swiglu(fc->gate, fc->gate, fc->up, (long)n * c->ffn_dim);
    matmul_rows(fc, fc->h, &w->w_down, fc->gate, n);
    add_inplace(fc->x, fc->h, nd);
}

/* Runs rows [row0, row0+n) of the request; logits of wanted rows into req.
 * in_place never comes here (no exit_head): hooks always get the stream. */
static bool cpu_chunk(void *ctx, struct kv_cache *kv, const struct forward_request *req, int row0,
                      int n, bool in_place, char *err, size_t errlen)
{
    (void)in_place;
    struct cpu_ctx *fc = ctx;
    const struct model *m = fc->m;
    const struct model_config *c = &m->cfg;
    int pos0 = kv->len;
    size_t embd_row = dtype_row_bytes(m->tok_embd.type, c->dim);
    for (int r = 0; r < n; r++)
        dequantize_row(m->tok_embd.type,
                       (const char *)m->tok_embd.data + embd_row * req->tokens[row0 + r],
                       fc->x + (long)r * c->dim, c->dim);

    for (int l = 0; l < c->n_layers; l++) {
        block_forward(fc, kv, l, n, pos0);
        if (req->hook && !req->hook(req->hook_ctx, l, fc->x, row0, n)) {
            snprintf(err, errlen, "forward: pass aborted by layer hook");
            return false;
        }
    }
    kv->len = pos0 + n;

    int first = req->first_logit_row > row0 ? req->first_logit_row : row0;
    if (first < row0 + n) {
        int rows = row0 + n - first;
        const float *x = fc->x + (long)(first - row0) * c->dim;
        rmsnorm_rows(fc->h, x, m->output_norm, rows, c->dim, c->rms_eps);
        float *out = req->logits + (long)(first - req->first_logit_row) * c->vocab;
        matmul_rows(fc, out, &m->output, fc->h, rows);
    }
    return true;
}

const struct backend backend_cpu = {"cpu", cpu_ctx_new, cpu_ctx_free, cpu_chunk, NULL, NULL};
