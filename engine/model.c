#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../kernels/cpu/quant.h"

const char *arch_name(enum arch a)
{
    return a == ARCH_QWEN2 ? "qwen2" : "llama";
}

struct loader {
    struct model *m;
    const char *arch;
    char *err;
    size_t errlen;
};

static bool fail(struct loader *ld, const char *fmt, ...)
{
    int k = snprintf(ld->err, ld->errlen, "%s: ", gguf_path(ld->m->file));
    va_list ap;
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < ld->errlen)
        vsnprintf(ld->err + k, ld->errlen - k, fmt, ap);
    va_end(ap);
    return false;
}

/* Reads "{arch}.{suffix}" as a positive int in [lo, hi]; def < 0 means required. */
static bool get_int(struct loader *ld, const char *suffix, int lo, int hi, int def, int *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->arch, suffix);
    int64_t v;
    if (gguf_find_key(ld->m->file, key) < 0) {
        if (def < 0)
            return fail(ld, "missing metadata '%s'", key);
        *out = def;
        return true;
    }
    if (!gguf_get_i64(ld->m->file, key, &v))
        return fail(ld, "metadata '%s' is not an integer", key);
    if (v < lo || v > hi)
        return fail(ld, "metadata '%s' = %lld outside [%d, %d]", key, (long long)v, lo, hi);
    *out = (int)v;
    return true;
}

static bool get_float(struct loader *ld, const char *suffix, float def, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->arch, suffix);
    if (gguf_find_key(ld->m->file, key) < 0) {
        *out = def;
        return true;
    }
    if (!gguf_get_f32(ld->m->file, key, out) || !isfinite(*out) || *out <= 0.0f)
        return fail(ld, "metadata '%s' is not a positive number", key);
    return true;
}

static bool read_config(struct loader *ld)
{
    struct model_config *c = &ld->m->cfg;
    if (!get_int(ld, "block_count", 1, 4096, -1, &c->n_layers) ||
        !get_int(ld, "embedding_length", 1, 1 << 16, -1, &c->dim) ||
        !get_int(ld, "attention.head_count", 1, 1024, -1, &c->n_heads) ||
        !get_int(ld, "attention.head_count_kv", 1, 1024, c->n_heads, &c->n_kv_heads) ||
        !get_int(ld, "feed_forward_length", 1, 1 << 18, -1, &c->ffn_dim) ||
        !get_int(ld, "context_length", 1, 1 << 24, 2048, &c->ctx_train) ||
        !get_int(ld, "attention.key_length", 2, 1024, c->dim / c->n_heads, &c->head_dim))
        return false;
    int n_rot;
    if (!get_int(ld, "rope.dimension_count", 2, 1024, c->head_dim, &n_rot))
        return false;
    if (n_rot != c->head_dim)
        return fail(ld, "partial rotary embedding (rope.dimension_count %d, head size %d) is not supported",
                    n_rot, c->head_dim);
    if (c->head_dim % 2 != 0)
        return fail(ld, "head size %d is odd", c->head_dim);
    if (c->n_heads % c->n_kv_heads != 0)
        return fail(ld, "head_count %d is not a multiple of head_count_kv %d", c->n_heads, c->n_kv_heads);

    if (!get_float(ld, "attention.layer_norm_rms_epsilon", 1e-5f, &c->rms_eps) ||
        !get_float(ld, "rope.freq_base", 10000.0f, &c->rope_theta))
        return false;
    c->rope_freq_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", ld->arch);
    const char *scaling = gguf_get_str(ld->m->file, key);
    if (scaling && strcmp(scaling, "none") != 0) {
        if (strcmp(scaling, "linear") != 0)
            return fail(ld, "rope scaling type '%s' is not supported (only linear)", scaling);
        float factor;
        if (!get_float(ld, "rope.scaling.factor", 1.0f, &factor))
            return false;
        c->rope_freq_scale = 1.0f / factor;
    }
    c->rope_neox = c->arch == ARCH_QWEN2;
    return true;
}

/* Finds a tensor and checks its type and shape (ne0 = cols, ne1 = rows). */
static const struct gguf_tensor *find(struct loader *ld, const char *name, int cols, int rows,
                                      bool required)
{
    const struct gguf_tensor *t = gguf_find_tensor(ld->m->file, name);
    if (!t) {
        if (required)
            fail(ld, "missing tensor '%s'", name);
        return NULL;
    }
    int want_dims = rows > 0 ? 2 : 1;
    bool ok = t->ne[0] == (uint64_t)cols && t->ne[1] == (uint64_t)(rows > 0 ? rows : 1) &&
              t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok || t->n_dims > want_dims) {
        if (rows > 0)
            fail(ld, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%d, %d]", name,
                 (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                 (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], cols, rows);
        else
            fail(ld, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%d]", name,
                 (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                 (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], cols);
        return NULL;
    }
    return t;
}

static bool load_matrix(struct loader *ld, const char *name, int cols, int rows, struct matrix *out)
{
    const struct gguf_tensor *t = find(ld, name, cols, rows, true);
    if (!t)
        return false;
    *out = (struct matrix){t->data, t->type, rows, cols, false};
    ld->m->weight_bytes += t->nbytes;
    return true;
}

/* Converts a 1-D tensor of any supported type to freshly allocated floats. */
static bool load_vector(struct loader *ld, const char *name, int n, bool required, float **out)
{
    *out = NULL;
    const struct gguf_tensor *t = find(ld, name, n, 0, required);
    if (!t)
        return !required && gguf_find_tensor(ld->m->file, name) == NULL;
    *out = malloc(sizeof(float) * n);
    if (!*out)
        return fail(ld, "out of memory loading '%s'", name);
    dequantize_row(t->type, t->data, *out, n);
    return true;
}

static bool load_layer(struct loader *ld, int l)
{
    const struct model_config *c = &ld->m->cfg;
    struct layer_weights *w = &ld->m->layers[l];
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    bool bias = c->arch == ARCH_QWEN2;
    char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s", l, s), name)
    return load_vector(ld, NAME("attn_norm.weight"), c->dim, true, &w->attn_norm) &&
           load_vector(ld, NAME("ffn_norm.weight"), c->dim, true, &w->ffn_norm) &&
           load_matrix(ld, NAME("attn_q.weight"), c->dim, q_dim, &w->wq) &&
           load_matrix(ld, NAME("attn_k.weight"), c->dim, kv_dim, &w->wk) &&
           load_matrix(ld, NAME("attn_v.weight"), c->dim, kv_dim, &w->wv) &&
           load_matrix(ld, NAME("attn_output.weight"), q_dim, c->dim, &w->wo) &&
           load_matrix(ld, NAME("ffn_gate.weight"), c->dim, c->ffn_dim, &w->w_gate) &&
           load_matrix(ld, NAME("ffn_up.weight"), c->dim, c->ffn_dim, &w->w_up) &&
           load_matrix(ld, NAME("ffn_down.weight"), c->ffn_dim, c->dim, &w->w_down) &&
           load_vector(ld, NAME("attn_q.bias"), q_dim, bias, &w->bq) &&
           load_vector(ld, NAME("attn_k.bias"), kv_dim, bias, &w->bk) &&
           load_vector(ld, NAME("attn_v.bias"), kv_dim, bias, &w->bv);
#undef NAME
}

static bool load_weights(struct loader *ld)
{
    struct model *m = ld->m;
    struct model_config *c = &m->cfg;
    const struct gguf_tensor *embd = gguf_find_tensor(m->file, "token_embd.weight");
    if (!embd)
        return fail(ld, "missing tensor 'token_embd.weight'");
    if (embd->ne[1] < 1 || embd->ne[1] > (1u << 24))
        return fail(ld, "tensor 'token_embd.weight' has %llu rows (vocabulary size)",
                    (unsigned long long)embd->ne[1]);
    c->vocab = (int)embd->ne[1];
    if (!load_matrix(ld, "token_embd.weight", c->dim, c->vocab, &m->tok_embd) ||
        !load_vector(ld, "output_norm.weight", c->dim, true, &m->output_norm))
        return false;
    /* A token reads one embedding row, not the whole table. */
    m->weight_bytes -= dtype_row_bytes(m->tok_embd.type, c->dim) * (c->vocab - 1);

    c->tied_output = gguf_find_tensor(m->file, "output.weight") == NULL;
    if (c->tied_output) {
        m->output = m->tok_embd;
        m->weight_bytes += dtype_row_bytes(m->tok_embd.type, c->dim) * (c->vocab - 1);
    } else if (!load_matrix(ld, "output.weight", c->dim, c->vocab, &m->output)) {
        return false;
    }
    m->layers = calloc(c->n_layers, sizeof *m->layers);
    if (!m->layers)
        return fail(ld, "out of memory");
    for (int l = 0; l < c->n_layers; l++)
        if (!load_layer(ld, l))
            return false;
    return true;
}

static bool make_rope_table(struct loader *ld)
{
    const struct model_config *c = &ld->m->cfg;
    int half = c->head_dim / 2;
    ld->m->rope_inv_freq = malloc(sizeof(float) * half);
    if (!ld->m->rope_inv_freq)
        return fail(ld, "out of memory");
    for (int i = 0; i < half; i++)
        ld->m->rope_inv_freq[i] =
            (float)(c->rope_freq_scale * pow(c->rope_theta, -2.0 * i / c->head_dim));
    return true;
}

struct model *model_load(const char *path, char *err, size_t errlen)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    m->file = gguf_open(path, err, errlen);
    if (!m->file) {
        free(m);
        return NULL;
    }
    struct loader ld = {m, NULL, err, errlen};
    ld.arch = gguf_get_str(m->file, "general.architecture");
    bool ok;
    if (!ld.arch) {
        ok = fail(&ld, "missing metadata 'general.architecture'");
    } else if (strcmp(ld.arch, "llama") == 0 || strcmp(ld.arch, "qwen2") == 0) {
        m->cfg.arch = strcmp(ld.arch, "qwen2") == 0 ? ARCH_QWEN2 : ARCH_LLAMA;
        ok = read_config(&ld) && load_weights(&ld) && make_rope_table(&ld);
    } else {
        ok = fail(&ld, "architecture '%s' is not supported (llama, qwen2)", ld.arch);
    }
    if (!ok) {
        model_free(m);
        return NULL;
    }
    return m;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            struct layer_weights *w = &m->layers[l];
            free(w->attn_norm);
            free(w->ffn_norm);
            free(w->bq);
            free(w->bk);
            free(w->bv);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_inv_freq);
    if (m->repacked)
        munmap(m->repacked, m->repacked_bytes);
    gguf_close(m->file);
    free(m);
}
