/* The CUDA backend: the CPU backend's pass, op for op, on kernels/cuda.
 *
 * Weights are uploaded once per context (F32/F16/BF16 as in the file, Q8_0,
 * Q4_0 and Q4_1 repacked); activations stay on the device; only the position and
 * token ids go up and logits (or, when a layer hook is set and the exits do not
 * run in place, the residual stream) come down. The KV cache of a sequence
 * gets a device copy on its first pass here (struct kv_cache's dev), laid
 * out like the host one, so rollback is still only lowering kv->len.
 *
 * Matrix products: the batch-invariant GEMV up to 16 rows, cuBLAS above
 * (F32 in fp32; the other types in f16, BF16 and quantized weights
 * dequantized a slice at a time). A pass of up to 16 rows whose logits are
 * all wanted and that has no layer hook (a decode step, a verify pass)
 * replays a CUDA graph of the whole pass, one per row count, which is why no
 * launch argument depends on the position or the sequence: both are read
 * from device memory.
 *
 * Loading is shard-aware for the tensor-parallel target (DESIGN.md §9): each
 * matrix is uploaded as a row range (column-parallel: wq, wk, wv, w_gate,
 * w_up) or a column range (row-parallel: wo, w_down) of the file's tensor.
 * With one rank the ranges are whole; the two places a rank's partial sums
 * would be all-reduced are marked in block_forward.
 *
 * Without TANDEM_CUDA (the plain build) the table is there but says so. */
#include "backend.h"

#include <stdio.h>

#ifndef TANDEM_CUDA

static void *no_cuda_ctx_new(const struct model *m, struct threadpool *tp, int max_rows,
                             int max_ctx, char *err, size_t errlen)
{
    (void)m, (void)tp, (void)max_rows, (void)max_ctx;
    snprintf(err, errlen, "device cuda: this tandem was built without CUDA (make cuda builds "
                          "bin/tandem-cuda)");
    return NULL;
}

static void no_cuda_ctx_free(void *ctx)
{
    (void)ctx;
}

static bool no_cuda_chunk(void *ctx, struct kv_cache *kv, const struct forward_request *req,
                          int row0, int n, bool in_place, char *err, size_t errlen)
{
    (void)ctx, (void)kv, (void)req, (void)row0, (void)n, (void)in_place;
    snprintf(err, errlen, "device cuda: built without CUDA");
    return false;
}

/* No context is ever made, so the exit entries are never reached. */
const struct backend backend_cuda = {"cuda", no_cuda_ctx_new, no_cuda_ctx_free, no_cuda_chunk,
                                     NULL, NULL};

#else

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/convert.h"
#include "../kernels/cuda/ops.h"
#include "exits.h"

/* This process's slice of a tensor-parallel group; {0, 1} is the whole model. */
struct shard {
    int rank, size;
};

struct dev_matrix {
    void *data;
    int type, rows, cols;
};

struct dev_layer {
    float *attn_norm, *ffn_norm, *bq, *bk, *bv;
    struct dev_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

/* An exit adapter's device copy, found by the host matrix's data. */
struct dev_adapter {
    const void *host;
    struct dev_matrix m;
};

struct cuda_ctx {
    const struct model *m;
    struct shard shard;
    int max_rows, max_ctx;
    struct dev_matrix tok_embd, output;
    float *output_norm, *rope_inv_freq;
    struct dev_layer *layers;
    /* activations, as in the CPU backend */
    float *x, *h, *q, *att, *gate, *up; /* (max_rows, ...) */
    float *att_scratch, *logits;         /* logits (max_rows, vocab) */
    /* cuda_gemm's scratch (x as f16, a slice of dequantized weights): the
     * most any of the model's matrices needs at max_rows; NULL if
     * max_rows <= 16 or all matrices are F32. */
    void *gemm_scratch;
    size_t gemm_scratch_bytes;
    int32_t *step;      /* (1 + max_rows): the chunk's first position, then its tokens */
    int32_t *host_step; /* the same on the host, uploaded in one copy */
    float *k_rows, *v_rows; /* (max_rows, kv_dim) new keys/values before cuda_kv_store */
    /* The current sequence's K and V base address of each layer, (2,
     * n_layers): K then V. kv_store and attention read them here, so no
     * launch argument depends on the sequence; uploaded from host_kv_table
     * when a pass is for another sequence than the last (table_k, table_v,
     * table_n_ctx: the device KV it points into). */
    void **kv_table, **host_kv_table;
    const void *table_k, *table_v;
    int table_n_ctx;
    /* Passes of n <= 16 rows, logits of all, no hook, as CUDA graphs
     * (pass_graph[n]), each captured on its first use and replayed for every
     * sequence and position; none when TANDEM_CUDA_GRAPHS=0. */
    struct cuda_graph *pass_graph[CUDA_GEMV_MAX_ROWS + 1];
    bool graphs;
    /* TANDEM_CUDA_KV=f16: this context's device KV caches hold f16 (half the
     * memory: what lets a 4 GB Jetson Nano keep a longer context); f32
     * otherwise. Chosen per context, at creation. */
    bool kv_f16;
    float *host_x;                       /* (max_rows, dim) for layer hooks */
    /* exits evaluated in place (exit_head) */
    float *adapted, *low;   /* (max_rows, dim): h + A(h); v · h of a low-rank adapter */
    void *head_scratch;     /* cuda_head_scratch_bytes(vocab) */
    float *head_out;        /* (3, max_rows): argmax ids (int32), their logits, lse */
    float *host_head_out;   /* the same, downloaded in one copy */
    struct dev_adapter *adapters;
    int n_adapters;
};

/* The device copy of one sequence's KV cache: (n_layers, n_ctx, kv_dim) each,
 * of f32, or of f16 (uint16_t bits) when f16. */
struct kv_dev {
    void *k, *v;
    bool f16;
};

static void kv_dev_free(void *p)
{
    struct kv_dev *d = p;
    cuda_free(d->k);
    cuda_free(d->v);
    free(d);
}

/* Uploads rows [row0, row0+rows) x columns [col0, col0+cols) of m. */
static bool upload_slice(struct dev_matrix *out, const struct matrix *m, int row0, int rows,
                         int col0, int cols)
{
    *out = (struct dev_matrix){cuda_alloc(cuda_weight_bytes(m->type, rows, cols)), m->type, rows,
                               cols};
    if (!out->data)
        return false;
    size_t row_bytes = dtype_row_bytes(m->type, (uint64_t)m->cols);
    size_t skip = dtype_row_bytes(m->type, (uint64_t)col0);
    size_t part = dtype_row_bytes(m->type, (uint64_t)cols);
    const char *src = (const char *)m->data + row_bytes * row0;
    if (col0 == 0 && cols == m->cols) {
        cuda_upload_weight(out->data, src, m->type, rows, cols);
        return true;
    }
    char *stage = malloc(part * rows);
    if (!stage)
        return false;
    for (int r = 0; r < rows; r++)
        memcpy(stage + part * r, src + row_bytes * r + skip, part);
    cuda_upload_weight(out->data, stage, m->type, rows, cols);
    free(stage);
    return true;
}

/* Column-parallel: this rank's share of the output rows. */
static bool upload_rows(const struct cuda_ctx *g, struct dev_matrix *out, const struct matrix *m)
{
    int rows = m->rows / g->shard.size;
    return upload_slice(out, m, g->shard.rank * rows, rows, 0, m->cols);
}

/* Row-parallel: this rank's share of the input columns. */
static bool upload_cols(const struct cuda_ctx *g, struct dev_matrix *out, const struct matrix *m)
{
    int cols = m->cols / g->shard.size;
    return upload_slice(out, m, 0, m->rows, g->shard.rank * cols, cols);
}

static float *upload_floats(const float *src, size_t n)
{
    if (!src)
        return NULL;
    float *d = cuda_alloc(sizeof(float) * n);
    if (d)
        cuda_upload(d, src, sizeof(float) * n);
    return d;
}

static void free_matrix(struct dev_matrix *m)
{
    cuda_free(m->data);
}

/* What cuda_gemm needs for n rows through m (0 if m never goes to it). */
static size_t gemm_scratch_bytes(const struct dev_matrix *m, int n)
{
    return cuda_gemm_type_supported(m->type) ? cuda_gemm_scratch_bytes(m->type, n, m->cols, m->rows)
                                             : 0;
}

static void cuda_ctx_free(void *ctx)
{
    struct cuda_ctx *g = ctx;
    if (!g)
        return;
    for (int l = 0; g->layers && l < g->m->cfg.n_layers; l++) {
        struct dev_layer *d = &g->layers[l];
        cuda_free(d->attn_norm);
        cuda_free(d->ffn_norm);
        cuda_free(d->bq);
        cuda_free(d->bk);
        cuda_free(d->bv);
        struct dev_matrix *ms[] = {&d->wq, &d->wk, &d->wv, &d->wo, &d->w_gate, &d->w_up, &d->w_down};
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
            free_matrix(ms[i]);
    }
    free(g->layers);
    if (g->output.data != g->tok_embd.data)
        free_matrix(&g->output);
    free_matrix(&g->tok_embd);
    cuda_free(g->output_norm);
    cuda_free(g->rope_inv_freq);
    float *bufs[] = {g->x, g->h, g->q, g->att, g->gate, g->up, g->att_scratch, g->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        cuda_free(bufs[i]);
    cuda_free(g->step);
    free(g->host_step);
    cuda_free(g->k_rows);
    cuda_free(g->v_rows);
    cuda_free(g->kv_table);
    free(g->host_kv_table);
    for (int n = 0; n <= CUDA_GEMV_MAX_ROWS; n++)
        cuda_graph_free(g->pass_graph[n]);
    cuda_free(g->gemm_scratch);
    free(g->host_x);
    void *head_bufs[] = {g->adapted, g->low, g->head_scratch, g->head_out};
    for (size_t i = 0; i < sizeof head_bufs / sizeof head_bufs[0]; i++)
        cuda_free(head_bufs[i]);
    free(g->host_head_out);
    for (int i = 0; i < g->n_adapters; i++)
        free_matrix(&g->adapters[i].m);
    free(g->adapters);
    free(g);
}

/* The kernels read F32, F16, BF16 rows in whole vector loads, quantized rows
 * (Q8_0, Q4_0, Q4_1) in whole 32-column blocks. */
static bool check_matrix(const struct matrix *m, const char *name, char *err, size_t errlen)
{
    int align = m->type == DTYPE_F32                               ? 4
                : m->type == DTYPE_F16 || m->type == DTYPE_BF16 ? 8
                                                                : 32;
    if (m->q8_0x16) {
        snprintf(err, errlen, "device cuda: %s was repacked for the CPU (model_repack); load the model without repacking",
                 name);
        return false;
    }
    if (!cuda_weight_type_supported(m->type)) {
        snprintf(err, errlen, "device cuda: %s is %s; the CUDA kernels take f32, f16, bf16, q8_0, q4_0 and q4_1",
                 name, dtype_name(m->type));
        return false;
    }
    if (m->cols % align) {
        snprintf(err, errlen, "device cuda: %s has %d columns, not a multiple of %d", name,
                 m->cols, align);
        return false;
    }
    return true;
}

static void *cuda_ctx_new(const struct model *m, struct threadpool *tp, int max_rows, int max_ctx,
                          char *err, size_t errlen)
{
    (void)tp;
    if (cuda_device_count() < 1) {
        snprintf(err, errlen, "device cuda: no CUDA device");
        return NULL;
    }
    const struct model_config *c = &m->cfg;
    char name[64];
    if (!check_matrix(&m->tok_embd, "token_embd.weight", err, errlen) ||
        !check_matrix(&m->output, "output.weight", err, errlen))
        return NULL;
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        const struct matrix *ms[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
            snprintf(name, sizeof name, "layer %d matrix %zu", l, i);
            if (!check_matrix(ms[i], name, err, errlen))
                return NULL;
        }
    }
    if (c->head_dim % 2) {
        snprintf(err, errlen, "device cuda: odd head dimension %d", c->head_dim);
        return NULL;
    }

    struct cuda_ctx *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->m = m;
    g->shard = (struct shard){0, 1};
    g->max_rows = max_rows;
    g->max_ctx = max_ctx;
    g->layers = calloc((size_t)c->n_layers, sizeof *g->layers);
    bool ok = g->layers && upload_slice(&g->tok_embd, &m->tok_embd, 0, m->tok_embd.rows, 0, c->dim);
    if (ok && m->output.data == m->tok_embd.data)
        g->output = g->tok_embd; /* tied: one copy */
    else if (ok)
        ok = upload_slice(&g->output, &m->output, 0, m->output.rows, 0, m->output.cols);
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    for (int l = 0; ok && l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        struct dev_layer *d = &g->layers[l];
        d->attn_norm = upload_floats(w->attn_norm, c->dim);
        d->ffn_norm = upload_floats(w->ffn_norm, c->dim);
        d->bq = upload_floats(w->bq, q_dim);
        d->bk = upload_floats(w->bk, kv_dim);
        d->bv = upload_floats(w->bv, kv_dim);
        ok = d->attn_norm && d->ffn_norm && (!w->bq || (d->bq && d->bk && d->bv)) &&
             upload_rows(g, &d->wq, &w->wq) && upload_rows(g, &d->wk, &w->wk) &&
             upload_rows(g, &d->wv, &w->wv) && upload_cols(g, &d->wo, &w->wo) &&
             upload_rows(g, &d->w_gate, &w->w_gate) && upload_rows(g, &d->w_up, &w->w_up) &&
             upload_cols(g, &d->w_down, &w->w_down);
    }
    size_t r = (size_t)max_rows;
    g->output_norm = upload_floats(m->output_norm, c->dim);
    g->rope_inv_freq = upload_floats(m->rope_inv_freq, c->head_dim / 2);
    g->x = cuda_alloc(sizeof(float) * r * c->dim);
    g->h = cuda_alloc(sizeof(float) * r * c->dim);
    g->q = cuda_alloc(sizeof(float) * r * q_dim);
    g->att = cuda_alloc(sizeof(float) * r * q_dim);
    g->gate = cuda_alloc(sizeof(float) * r * c->ffn_dim);
    g->up = cuda_alloc(sizeof(float) * r * c->ffn_dim);
    g->att_scratch = cuda_alloc(
        sizeof(float) * cuda_attention_scratch_floats(max_rows, c->n_heads, c->head_dim, max_ctx));
    g->logits = cuda_alloc(sizeof(float) * r * c->vocab);
    g->step = cuda_alloc(sizeof(int32_t) * (r + 1));
    g->host_step = malloc(sizeof(int32_t) * (r + 1));
    g->k_rows = cuda_alloc(sizeof(float) * r * kv_dim);
    g->v_rows = cuda_alloc(sizeof(float) * r * kv_dim);
    g->kv_table = cuda_alloc(sizeof(void *) * 2 * c->n_layers);
    g->host_kv_table = malloc(sizeof(void *) * 2 * c->n_layers);
    const char *graphs = getenv("TANDEM_CUDA_GRAPHS");
    g->graphs = !graphs || strcmp(graphs, "0") != 0;
    const char *kv_type = getenv("TANDEM_CUDA_KV");
    g->kv_f16 = kv_type && strcmp(kv_type, "f16") == 0;
    if (ok && max_rows > CUDA_GEMV_MAX_ROWS) {
        g->gemm_scratch_bytes = gemm_scratch_bytes(&g->output, max_rows);
        for (int l = 0; l < c->n_layers; l++) {
            struct dev_layer *d = &g->layers[l];
            const struct dev_matrix *ms[] = {&d->wq, &d->wk, &d->wv, &d->wo,
                                             &d->w_gate, &d->w_up, &d->w_down};
            for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
                size_t b = gemm_scratch_bytes(ms[i], max_rows);
                g->gemm_scratch_bytes = b > g->gemm_scratch_bytes ? b : g->gemm_scratch_bytes;
            }
        }
        if (g->gemm_scratch_bytes)
            g->gemm_scratch = cuda_alloc(g->gemm_scratch_bytes);
    }
    g->host_x = malloc(sizeof(float) * r * c->dim);
    g->adapted = cuda_alloc(sizeof(float) * r * c->dim);
    g->low = cuda_alloc(sizeof(float) * r * c->dim);
    g->head_scratch = cuda_alloc(cuda_head_scratch_bytes(c->vocab));
    g->head_out = cuda_alloc(sizeof(float) * 3 * r);
    g->host_head_out = malloc(sizeof(float) * 3 * r);
    if (!ok || !g->output_norm || !g->rope_inv_freq || !g->x || !g->h || !g->q || !g->att ||
        !g->gate || !g->up || !g->att_scratch || !g->logits || !g->step || !g->host_step ||
        !g->k_rows || !g->v_rows || !g->kv_table || !g->host_kv_table || !g->host_x ||
        !g->adapted || !g->low || !g->head_scratch || !g->head_out || !g->host_head_out ||
        (g->gemm_scratch_bytes && !g->gemm_scratch)) {
        cuda_ctx_free(g);
        snprintf(err, errlen, "device cuda: out of device memory for the model");
        return NULL;
    }
    return g;
}

/* The sequence's device KV, made on its first pass here (with what the host
 * copy holds so far, so a cache filled on the CPU carries on). */
static struct kv_dev *kv_device(const struct cuda_ctx *g, struct kv_cache *kv, char *err,
                                size_t errlen)
{
    if (kv->dev) {
        struct kv_dev *d = kv->dev;
        if (d->f16 != g->kv_f16) { /* one cache, one element type */
            snprintf(err, errlen, "device cuda: this KV cache is %s on the device, the context's "
                     "is %s (TANDEM_CUDA_KV)", d->f16 ? "f16" : "f32", g->kv_f16 ? "f16" : "f32");
            return NULL;
        }
        return d;
    }
    size_t n = (size_t)kv->n_layers * kv->n_ctx * kv->kv_dim;
    size_t elem = g->kv_f16 ? sizeof(uint16_t) : sizeof(float);
    struct kv_dev *d = calloc(1, sizeof *d);
    if (d) {
        d->f16 = g->kv_f16;
        d->k = cuda_alloc(elem * n);
        d->v = cuda_alloc(elem * n);
    }
    uint16_t *stage = NULL;
    if (d && d->f16 && kv->len > 0)
        stage = malloc(sizeof(uint16_t) * (size_t)kv->len * kv->kv_dim);
    if (!d || !d->k || !d->v || (d->f16 && kv->len > 0 && !stage)) {
        free(stage);
        if (d)
            kv_dev_free(d);
        snprintf(err, errlen, "device cuda: out of device memory for a KV cache of %d positions",
                 kv->n_ctx);
        return NULL;
    }
    for (int l = 0; l < kv->n_layers && kv->len > 0; l++) {
        size_t off = (size_t)l * kv->n_ctx * kv->kv_dim, len = (size_t)kv->len * kv->kv_dim;
        const float *src[2] = {kv->k + off, kv->v + off};
        void *dst[2] = {d->k, d->v};
        for (int t = 0; t < 2; t++) {
            if (!d->f16) {
                cuda_upload((float *)dst[t] + off, src[t], sizeof(float) * len);
                continue;
            }
            /* rounded as cuda_kv_store_f16 would have stored them */
            for (size_t i = 0; i < len; i++)
                stage[i] = f32_to_fp16(src[t][i]);
            cuda_upload((uint16_t *)dst[t] + off, stage, sizeof(uint16_t) * len);
        }
    }
    free(stage);
    kv->dev = d;
    kv->dev_backend = "cuda";
    kv->dev_free = kv_dev_free;
    return d;
}

/* Points the device table at this sequence's layers: one copy, made only
 * when the pass is for another device KV than the last. */
static void kv_table_point(struct cuda_ctx *g, const struct kv_cache *kv, const struct kv_dev *d)
{
    if (g->table_k == d->k && g->table_v == d->v && g->table_n_ctx == kv->n_ctx)
        return;
    int layers = g->m->cfg.n_layers;
    size_t layer_bytes = (d->f16 ? sizeof(uint16_t) : sizeof(float)) * kv->n_ctx * kv->kv_dim;
    for (int l = 0; l < layers; l++) {
        g->host_kv_table[l] = (char *)d->k + layer_bytes * l;
        g->host_kv_table[layers + l] = (char *)d->v + layer_bytes * l;
    }
    cuda_upload(g->kv_table, g->host_kv_table, sizeof(void *) * 2 * layers);
    g->table_k = d->k;
    g->table_v = d->v;
    g->table_n_ctx = kv->n_ctx;
}

/* y (n, w->rows) = x · wᵀ. Up to 16 rows (decode, verify, short prompts):
 * the batch-invariant GEMV. More (chunks of a long prefill): cuBLAS, whose
 * bits depend on n (docs/cuda.md: what that changes). An exit adapter
 * uploaded later whose product needs more scratch than the model's matrices
 * stays on the GEMV in groups of 16. */
static void gemv(const struct cuda_ctx *g, float *y, const struct dev_matrix *w, const float *x,
                 int n)
{
    if (n > CUDA_GEMV_MAX_ROWS && cuda_gemm_type_supported(w->type) &&
        gemm_scratch_bytes(w, n) <= g->gemm_scratch_bytes)
        cuda_gemm(y, w->data, w->type, x, n, w->cols, w->rows, g->gemm_scratch,
                  g->gemm_scratch_bytes);
    else
        cuda_gemv(y, w->data, w->type, x, n, w->cols, w->rows, 0);
}

/* One transformer block over n rows at positions *g->step.., x updated in
 * place, on the KV the device table points at. The position and the layer's
 * K/V addresses are read on the device (no launch argument depends on them,
 * so a pass graph replays at any position, for any sequence); max_pos0
 * bounds the position for the attention grid. */
static void block_forward(struct cuda_ctx *g, int l, int n, int max_pos0)
{
    const struct model_config *c = &g->m->cfg;
    const struct dev_layer *w = &g->layers[l];
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    long nd = (long)n * c->dim;
    const int32_t *pos0 = g->step;
    void **k_base = g->kv_table + l, **v_base = g->kv_table + c->n_layers + l;

    cuda_rmsnorm_rows(g->h, g->x, w->attn_norm, n, c->dim, c->rms_eps, 0);
    gemv(g, g->q, &w->wq, g->h, n);
    gemv(g, g->k_rows, &w->wk, g->h, n);
    gemv(g, g->v_rows, &w->wv, g->h, n);
    if (w->bq) {
        cuda_add(g->q, w->bq, (long)n * q_dim, q_dim, 0);
        cuda_add(g->k_rows, w->bk, (long)n * kv_dim, kv_dim, 0);
        cuda_add(g->v_rows, w->bv, (long)n * kv_dim, kv_dim, 0);
    }
    cuda_rope_rows(g->q, n, c->n_heads, c->head_dim, pos0, g->rope_inv_freq, c->rope_neox, 0);
    cuda_rope_rows(g->k_rows, n, c->n_kv_heads, c->head_dim, pos0, g->rope_inv_freq,
                   c->rope_neox, 0);
    if (g->kv_f16) { /* kv_device: every cache of this context is */
        uint16_t **k = (uint16_t **)k_base, **v = (uint16_t **)v_base;
        cuda_kv_store_f16(k, g->k_rows, n, kv_dim, pos0);
        cuda_kv_store_f16(v, g->v_rows, n, kv_dim, pos0);
        cuda_attention_f16kv(g->att, g->q, k, v, n, pos0, max_pos0, c->n_heads, c->n_kv_heads,
                             c->head_dim, g->max_ctx, g->att_scratch, 0);
    } else {
        float **k = (float **)k_base, **v = (float **)v_base;
        cuda_kv_store(k, g->k_rows, n, kv_dim, pos0);
        cuda_kv_store(v, g->v_rows, n, kv_dim, pos0);
        cuda_attention(g->att, g->q, k, v, n, pos0, max_pos0, c->n_heads, c->n_kv_heads,
                       c->head_dim, g->max_ctx, g->att_scratch, 0);
    }
    gemv(g, g->h, &w->wo, g->att, n);
    /* tensor parallel: all-reduce h over the ranks here */
    cuda_add(g->x, g->h, nd, nd, 0);

    cuda_rmsnorm_rows(g->h, g->x, w->ffn_norm, n, c->dim, c->rms_eps, 0);
    gemv(g, g->gate, &w->w_gate, g->h, n);
    gemv(g, g->up, &w->w_up, g->h, n);
    cuda_swiglu(g->gate, g->gate, g->up, (long)n * c->ffn_dim, 0);
    gemv(g, g->h, &w->w_down, g->gate, n);
    /* tensor parallel: all-reduce h over the ranks here */
    cuda_add(g->x, g->h, nd, nd, 0);
}

static void embed(struct cuda_ctx *g, int n)
{
    const struct model_config *c = &g->m->cfg;
    cuda_embed_rows(g->x, g->tok_embd.data, g->tok_embd.type, c->vocab, g->step + 1, n, c->dim);
}

/* logits (rows, vocab) of x (rows, dim): final norm and LM head. */
static void lm_head(struct cuda_ctx *g, const float *x, int rows)
{
    const struct model_config *c = &g->m->cfg;
    cuda_rmsnorm_rows(g->h, x, g->output_norm, rows, c->dim, c->rms_eps, 0);
    gemv(g, g->logits, &g->output, g->h, rows);
}

struct pass_capture {
    struct cuda_ctx *g;
    int n;
};

/* A whole pass of n rows, tokens to the logits of every row: what a pass
 * graph holds. The attention grid covers every span of the context (idle
 * ones leave at once). */
static void pass_rows(void *p)
{
    const struct pass_capture *pc = p;
    struct cuda_ctx *g = pc->g;
    embed(g, pc->n);
    for (int l = 0; l < g->m->cfg.n_layers; l++)
        block_forward(g, l, pc->n, g->max_ctx - pc->n);
    lm_head(g, g->x, pc->n);
}

/* Replays the graph of an n-row pass, capturing it on first use. false if
 * out of memory. */
static bool pass_by_graph(struct cuda_ctx *g, int n)
{
    if (!g->pass_graph[n]) {
        struct pass_capture pc = {g, n};
        g->pass_graph[n] = cuda_graph_capture(pass_rows, &pc);
        if (!g->pass_graph[n])
            return false;
    }
    cuda_graph_launch(g->pass_graph[n]);
    return true;
}

static bool cuda_chunk(void *ctx, struct kv_cache *kv, const struct forward_request *req, int row0,
                       int n, bool in_place, char *err, size_t errlen)
{
    struct cuda_ctx *g = ctx;
    const struct model_config *c = &g->m->cfg;
    struct kv_dev *d = kv_device(g, kv, err, errlen);
    if (!d)
        return false;
    int pos0 = kv->len;
    int first = req->first_logit_row > row0 ? req->first_logit_row : row0;
    g->host_step[0] = pos0;
    memcpy(g->host_step + 1, req->tokens + row0, sizeof(int32_t) * n);
    cuda_upload(g->step, g->host_step, sizeof(int32_t) * (n + 1));
    kv_table_point(g, kv, d);
    if (g->graphs && n <= CUDA_GEMV_MAX_ROWS && !req->hook && first == row0) {
        if (!pass_by_graph(g, n)) {
            snprintf(err, errlen, "device cuda: out of memory for a pass graph");
            return false;
        }
        kv->len = pos0 + n;
        cuda_download(req->logits + (long)(row0 - req->first_logit_row) * c->vocab, g->logits,
                      sizeof(float) * n * c->vocab);
        return true;
    }
    embed(g, n);
    for (int l = 0; l < c->n_layers; l++) {
        block_forward(g, l, n, pos0);
        if (req->hook) {
            /* In place, the hook's exits read g->x here (cuda_exit_head). */
            if (!in_place)
                cuda_download(g->host_x, g->x, sizeof(float) * n * c->dim);
            if (!req->hook(req->hook_ctx, l, in_place ? NULL : g->host_x, row0, n)) {
                snprintf(err, errlen, "forward: pass aborted by layer hook");
                return false;
            }
        }
    }
    kv->len = pos0 + n;

    if (first < row0 + n) {
        int rows = row0 + n - first;
        lm_head(g, g->x + (long)(first - row0) * c->dim, rows);
        cuda_download(req->logits + (long)(first - req->first_logit_row) * c->vocab, g->logits,
                      sizeof(float) * rows * c->vocab);
    }
    return true;
}

/* ---- exits in place ---- */

static const struct dev_matrix *find_adapter(const struct cuda_ctx *g, const struct matrix *m)
{
    for (int i = 0; i < g->n_adapters; i++)
        if (g->adapters[i].host == m->data)
            return &g->adapters[i].m;
    return NULL;
}

/* The device copy of an exit's adapter matrix, uploaded on first use. */
static const struct dev_matrix *device_adapter(struct cuda_ctx *g, const struct matrix *m,
                                               const char *name, char *why, size_t len)
{
    const struct dev_matrix *have = find_adapter(g, m);
    if (have)
        return have;
    if (!check_matrix(m, name, why, len))
        return NULL;
    struct dev_adapter *grown = realloc(g->adapters, sizeof *grown * (g->n_adapters + 1));
    if (!grown) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    g->adapters = grown;
    struct dev_adapter *a = &g->adapters[g->n_adapters];
    a->host = m->data;
    if (!upload_slice(&a->m, m, 0, m->rows, 0, m->cols)) {
        free_matrix(&a->m);
        snprintf(why, len, "device cuda: out of device memory for %s", name);
        return NULL;
    }
    g->n_adapters++;
    return &a->m;
}

static bool cuda_exit_head_prepare(void *ctx, const struct exit_head *h, char *why, size_t len)
{
    struct cuda_ctx *g = ctx;
    char name[64];
    if (h->adapter == EXIT_FULL_ADAPTER) {
        snprintf(name, sizeof name, "exit.%d.adapter.weight", h->layer);
        return device_adapter(g, &h->a, name, why, len) != NULL;
    }
    if (h->adapter == EXIT_LOW_RANK_ADAPTER) {
        snprintf(name, sizeof name, "exit.%d.adapter_v.weight", h->layer);
        if (!device_adapter(g, &h->v, name, why, len))
            return false;
        snprintf(name, sizeof name, "exit.%d.adapter_u.weight", h->layer);
        return device_adapter(g, &h->u, name, why, len) != NULL;
    }
    return true;
}

/* exit_head_eval on the device: the adapter as GEMVs and an add, then the
 * fused head (norm, LM head, log-sum-exp, top-1) in groups of 16 rows; only
 * the ids, their logits and the lse come back (and the logits if asked). */
static void cuda_exit_head_eval(void *ctx, const struct exit_head *h, int n,
                                struct exit_result *out, float *logits)
{
    struct cuda_ctx *g = ctx;
    const struct model_config *c = &g->m->cfg;
    const float *x = g->x;
    /* cuda_exit_head_prepare uploaded the adapters before the pass. */
    if (h->adapter == EXIT_FULL_ADAPTER) {
        gemv(g, g->adapted, find_adapter(g, &h->a), x, n);
    } else if (h->adapter == EXIT_LOW_RANK_ADAPTER) {
        gemv(g, g->low, find_adapter(g, &h->v), x, n);
        gemv(g, g->adapted, find_adapter(g, &h->u), g->low, n);
    }
    if (h->adapter != EXIT_NO_ADAPTER) {
        cuda_add(g->adapted, x, (long)n * c->dim, (long)n * c->dim, 0);
        x = g->adapted;
    }
    int32_t *top_id = (int32_t *)g->head_out;
    float *top_logit = g->head_out + g->max_rows, *lse = g->head_out + 2 * g->max_rows;
    for (int r0 = 0; r0 < n; r0 += 16) {
        int rows = n - r0 < 16 ? n - r0 : 16;
        cuda_exit_head(x + (long)r0 * c->dim, rows, c->dim, g->output_norm, c->rms_eps,
                       g->output.data, g->output.type, c->vocab, 1, top_id + r0, top_logit + r0,
                       lse + r0, logits ? g->logits + (long)r0 * c->vocab : NULL, g->head_scratch);
    }
    cuda_download(g->host_head_out, g->head_out, sizeof(float) * 3 * g->max_rows);
    const int32_t *id = (const int32_t *)g->host_head_out;
    const float *top = g->host_head_out + g->max_rows, *l = g->host_head_out + 2 * g->max_rows;
    for (int r = 0; r < n; r++)
        out[r] = (struct exit_result){id[r], (float)exp((double)top[r] - l[r])};
    if (logits)
        cuda_download(logits, g->logits, sizeof(float) * n * c->vocab);
}

const struct backend backend_cuda = {"cuda", cuda_ctx_new, cuda_ctx_free, cuda_chunk,
                                     cuda_exit_head_prepare, cuda_exit_head_eval};

#endif
