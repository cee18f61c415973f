/* Hugging Face model folders -> GGUF (convert.h), as llama.cpp's
 * convert_hf_to_gguf.py writes them for LlamaForCausalLM and
 * Qwen2ForCausalLM.
 *
 * config.json (hf_config.c) gives the hyperparameters, written under
 * llama.cpp's keys; the safetensors files (safetensors*.c) give the tensors,
 * each checked against the shape the config implies and renamed:
 *   model.embed_tokens.weight                 token_embd.weight
 *   model.layers.N.input_layernorm.weight     blk.N.attn_norm.weight
 *   model.layers.N.self_attn.{q,k,v,o}_proj   blk.N.attn_{q,k,v,output}
 *   model.layers.N.post_attention_layernorm   blk.N.ffn_norm
 *   model.layers.N.mlp.{gate,up,down}_proj    blk.N.ffn_{gate,up,down}
 *   model.norm.weight                         output_norm.weight
 *   lm_head.weight                            output.weight (absent when tied)
 * plus Qwen2's q/k/v biases. A tensor the model does not have is an error;
 * only the rotary tables old checkpoints carry are skipped, as llama.cpp
 * does.
 *
 * The Q/K row permutation: Hugging Face's Llama rotates the two halves of
 * each head (rotate_half), llama.cpp's "normal" RoPE rotates adjacent pairs.
 * llama.cpp's LlamaModel.permute reorders the rows of q_proj and k_proj so
 * that the second computes the first:
 *   w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols)
 * (n_head = num_key_value_heads for k_proj), i.e. output row h*hd + 2i + j
 * is input row h*hd + j*hd/2 + i. Qwen2 runs NEOX RoPE, which rotates
 * halves as Hugging Face does, so llama.cpp (and we) leave it as it is.
 *
 * Tensors stream through convert_add_rows: each is read (and converted to
 * float32) only when the plan writes it, and its pages are handed back as
 * it goes, so a checkpoint larger than memory converts in about one tensor's
 * worth of memory. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "hf_config.h"
#include "hf_tokenizer.h"
#include "safetensors.h"

/* ---- reading a tensor's rows ---- */

struct hf_rows {
    const struct st_tensor *t;
    uint64_t row_len, n_rows;
    int64_t perm_heads; /* 0: rows as stored; else the heads of the Q/K permutation */
};

/* The stored row that permuted row r comes from. */
static uint64_t source_row(const struct hf_rows *s, uint64_t r)
{
    if (!s->perm_heads)
        return r;
    uint64_t hd = s->n_rows / (uint64_t)s->perm_heads, half = hd / 2, in_head = r % hd;
    return r - in_head + (in_head % 2) * half + in_head / 2;
}

static bool read_rows(void *ctx, uint64_t row0, uint64_t n_rows, float *dst, char *err, size_t errlen)
{
    const struct hf_rows *s = ctx;
    if (row0 > s->n_rows || n_rows > s->n_rows - row0) {
        snprintf(err, errlen, "%s: tensor '%s': rows [%" PRIu64 ", %" PRIu64 ") asked for, it has %" PRIu64,
                 st_path(s->t->file), s->t->name, row0, row0 + n_rows, s->n_rows);
        return false;
    }
    if (!s->perm_heads)
        st_read_rows(s->t, s->row_len, row0, n_rows, dst);
    for (uint64_t i = 0; s->perm_heads && i < n_rows; i++)
        st_read_rows(s->t, s->row_len, source_row(s, row0 + i), 1, dst + i * s->row_len);
    /* A permuted head reads rows from all of itself: only whole heads are done. */
    uint64_t group = s->perm_heads ? s->n_rows / (uint64_t)s->perm_heads : 1;
    uint64_t done = (row0 + n_rows) / group * group;
    st_release(s->t, done * s->row_len * (s->t->nbytes / s->t->n_elems));
    return true;
}

/* ---- the model's tensors ---- */

struct converter {
    const char *dir;
    struct hf_config cfg;
    struct st_set *st;
    struct convert_plan *plan;
    bool *used; /* per st_set tensor index: consumed by the mapping */
    char *err;
    size_t errlen;
};

/* One line naming where (the folder, or the file of a tensor) and what. */
__attribute__((format(printf, 3, 4)))
static bool fail(const struct converter *c, const char *where, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", where, msg);
    return false;
}

static int64_t tensor_index(const struct converter *c, const struct st_tensor *t)
{
    for (int64_t i = 0; i < st_set_n_tensors(c->st); i++)
        if (st_set_tensor_at(c->st, i) == t)
            return i;
    return -1;
}

/* Adds hf_name as gguf_name; rows > 0: a (rows, cols) matrix, else a
 * vector of cols. perm_heads as in struct hf_rows. */
static bool add(struct converter *c, const char *hf_name, const char *gguf_name, int64_t rows, int64_t cols,
                int64_t perm_heads)
{
    const struct st_tensor *t = st_set_find(c->st, hf_name);
    if (!t)
        return fail(c, c->dir, "tensor '%s' missing from the checkpoint", hf_name);
    int n_dims = rows > 0 ? 2 : 1;
    bool shape_ok = t->n_dims == n_dims && t->shape[n_dims - 1] == (uint64_t)cols &&
                    (n_dims == 1 || t->shape[0] == (uint64_t)rows);
    if (!shape_ok) {
        char got[160] = "";
        size_t k = 0;
        for (int d = 0; d < t->n_dims && k < sizeof got - 24; d++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%" PRIu64, d ? ", " : "", t->shape[d]);
        return rows > 0 ? fail(c, st_path(t->file), "tensor '%s' has shape [%s], config.json implies [%lld, %lld]",
                               hf_name, got, (long long)rows, (long long)cols)
                        : fail(c, st_path(t->file), "tensor '%s' has shape [%s], config.json implies [%lld]",
                               hf_name, got, (long long)cols);
    }
    struct hf_rows *s = malloc(sizeof *s);
    if (!s)
        return fail(c, c->dir, "out of memory");
    *s = (struct hf_rows){t, (uint64_t)cols, rows > 0 ? (uint64_t)rows : 1, perm_heads};
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)(rows > 0 ? rows : 1)};
    convert_add_rows(c->plan, gguf_name, n_dims, ne, read_rows, s, free);
    c->used[tensor_index(c, t)] = true;
    return true;
}

/* A dimension by its letter in add_layer's table. */
static int64_t part_size(const struct hf_config *h, char letter)
{
    switch (letter) {
    case 'd': return h->hidden_size;
    case 'q': return h->n_heads * h->head_dim;
    case 'k': return h->n_kv_heads * h->head_dim;
    case 'f': return h->intermediate_size;
    default: return 0;
    }
}

static bool add_layer(struct converter *c, int64_t l)
{
    const struct hf_config *h = &c->cfg;
    bool llama = h->arch == HF_LLAMA;
    static const struct {
        const char *hf, *gguf;
        char rows, cols; /* 'd' hidden, 'q' q_dim, 'k' kv_dim, 'f' ffn, 0 (rows): a vector */
        char perm;       /* Llama's permutation over 'q' or 'k' heads */
        bool qwen2_only;
    } parts[] = {
        {"input_layernorm.weight", "attn_norm.weight", 0, 'd', 0, false},
        {"self_attn.q_proj.weight", "attn_q.weight", 'q', 'd', 'q', false},
        {"self_attn.k_proj.weight", "attn_k.weight", 'k', 'd', 'k', false},
        {"self_attn.v_proj.weight", "attn_v.weight", 'k', 'd', 0, false},
        {"self_attn.o_proj.weight", "attn_output.weight", 'd', 'q', 0, false},
        {"self_attn.q_proj.bias", "attn_q.bias", 0, 'q', 0, true},
        {"self_attn.k_proj.bias", "attn_k.bias", 0, 'k', 0, true},
        {"self_attn.v_proj.bias", "attn_v.bias", 0, 'k', 0, true},
        {"post_attention_layernorm.weight", "ffn_norm.weight", 0, 'd', 0, false},
        {"mlp.gate_proj.weight", "ffn_gate.weight", 'f', 'd', 0, false},
        {"mlp.up_proj.weight", "ffn_up.weight", 'f', 'd', 0, false},
        {"mlp.down_proj.weight", "ffn_down.weight", 'd', 'f', 0, false},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i].qwen2_only && llama)
            continue;
        char hf[128], gguf[96];
        snprintf(hf, sizeof hf, "model.layers.%lld.%s", (long long)l, parts[i].hf);
        snprintf(gguf, sizeof gguf, "blk.%lld.%s", (long long)l, parts[i].gguf);
        int64_t perm = !llama || !parts[i].perm ? 0 : parts[i].perm == 'q' ? h->n_heads : h->n_kv_heads;
        if (!add(c, hf, gguf, part_size(h, parts[i].rows), part_size(h, parts[i].cols), perm))
            return false;
    }
    return true;
}

/* Old checkpoints store RoPE's inverse frequencies; llama.cpp skips them. */
static bool skippable(const char *name)
{
    size_t n = strlen(name), k = strlen(".rotary_emb.inv_freq");
    return n > k && strcmp(name + n - k, ".rotary_emb.inv_freq") == 0;
}

static bool add_tensors(struct converter *c)
{
    const struct hf_config *h = &c->cfg;
    if (!add(c, "model.embed_tokens.weight", "token_embd.weight", h->vocab_size, h->hidden_size, 0))
        return false;
    for (int64_t l = 0; l < h->n_layers; l++)
        if (!add_layer(c, l))
            return false;
    if (!add(c, "model.norm.weight", "output_norm.weight", 0, h->hidden_size, 0))
        return false;
    /* tied: the engine and llama.cpp use token_embd when output is absent */
    const struct st_tensor *head = st_set_find(c->st, "lm_head.weight");
    if (!h->tie_word_embeddings && !add(c, "lm_head.weight", "output.weight", h->vocab_size, h->hidden_size, 0))
        return false;
    if (h->tie_word_embeddings && head)
        c->used[tensor_index(c, head)] = true;
    for (int64_t i = 0; i < st_set_n_tensors(c->st); i++) {
        const struct st_tensor *t = st_set_tensor_at(c->st, i);
        if (!c->used[i] && !skippable(t->name))
            return fail(c, st_path(t->file), "tensor '%s' is not part of a %s model with this config.json",
                        t->name, h->arch == HF_LLAMA ? "LlamaForCausalLM" : "Qwen2ForCausalLM");
    }
    return true;
}

/* ---- metadata ---- */

/* The folder's own name ("models/x/" -> "x"), for general.name. */
static void folder_name(const char *dir, char *out, size_t n)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    snprintf(out, n, "%.*s", (int)(len - start), dir + start);
}

static void set_hparams(struct gguf_writer *w, const char *dir, const struct hf_config *h)
{
    char key[96], name[256];
    folder_name(dir, name, sizeof name);
    gguf_set_str(w, "general.architecture", h->arch_name);
    gguf_set_str(w, "general.name", name);
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", h->arch_name, suffix), key)
    gguf_set_u32(w, KEY("block_count"), (uint32_t)h->n_layers);
    gguf_set_u32(w, KEY("context_length"), (uint32_t)h->max_position_embeddings);
    gguf_set_u32(w, KEY("embedding_length"), (uint32_t)h->hidden_size);
    gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)h->intermediate_size);
    gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)h->n_heads);
    gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)h->n_kv_heads);
    gguf_set_f32(w, KEY("rope.freq_base"), (float)h->rope_theta);
    gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)h->rms_norm_eps);
    if (h->head_dim_given) {
        gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)h->head_dim);
        gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)h->head_dim);
    }
    gguf_set_u32(w, KEY("vocab_size"), (uint32_t)h->vocab_size);
    gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)h->head_dim);
    if (h->rope_linear_factor > 0) {
        gguf_set_str(w, KEY("rope.scaling.type"), "linear");
        gguf_set_f32(w, KEY("rope.scaling.factor"), (float)h->rope_linear_factor);
    }
#undef KEY
}

/* --tokenizer, else tokenizer.model (preferred, as llama.cpp does: its
 * scores are the model's own), else tokenizer.json. */
static bool tokenizer_path(const struct converter *c, const struct convert_options *opts, char *path, size_t n)
{
    if (opts->tokenizer) {
        snprintf(path, n, "%s", opts->tokenizer);
        return access(path, R_OK) == 0 || fail(c, opts->tokenizer, "%s (--tokenizer)", strerror(errno));
    }
    snprintf(path, n, "%s/tokenizer.model", c->dir);
    if (access(path, F_OK) == 0)
        return true;
    snprintf(path, n, "%s/tokenizer.json", c->dir);
    return access(path, F_OK) == 0 ||
           fail(c, c->dir, "neither tokenizer.json nor tokenizer.model found (give one with --tokenizer)");
}

bool convert_from_hf(const char *dir, const char *out, const struct convert_options *opts, char *err, size_t errlen)
{
    struct converter c = {.dir = dir, .err = err, .errlen = errlen};
    char tok_path[4096];
    if (!hf_config_load(dir, &c.cfg, err, errlen) || !tokenizer_path(&c, opts, tok_path, sizeof tok_path))
        return false;
    c.plan = convert_plan_new(opts);
    if (!c.plan)
        return fail(&c, dir, "out of memory");
    bool ok = (c.st = st_set_open(dir, err, errlen)) != NULL;
    if (ok && !(c.used = calloc((size_t)st_set_n_tensors(c.st) + 1, sizeof *c.used)))
        ok = fail(&c, dir, "out of memory");
    if (ok) {
        struct gguf_writer *w = convert_plan_writer(c.plan);
        set_hparams(w, dir, &c.cfg);
        ok = hf_tokenizer_write(dir, tok_path, &c.cfg, w, err, errlen) && add_tensors(&c) &&
             convert_plan_write(c.plan, out, err, errlen);
    }
    convert_plan_free(c.plan);
    st_set_free(c.st);
    free(c.used);
    return ok;
}
