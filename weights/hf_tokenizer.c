/* hf_tokenizer_write: a tokenizer file read into struct hf_vocab, plus the
 * special tokens, flags and chat template of the folder's other files, as
 * tokenizer.ggml.* metadata. */
#include "hf_tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hf_vocab.h"
#include "json_file.h"
#include "tok_internal.h"

#define MAX_CONFIG_BYTES (16u << 20)
#define MAX_TEMPLATE_BYTES (1u << 20)

/* ---- struct hf_vocab ---- */

bool hf_vocab_init(struct hf_vocab *v, int32_t n)
{
    memset(v, 0, sizeof *v);
    v->n = n;
    v->unk = -1;
    v->tokens = calloc((size_t)n, sizeof *v->tokens);
    v->types = malloc((size_t)n * sizeof *v->types);
    if (!v->tokens || !v->types)
        return false;
    for (int32_t i = 0; i < n; i++) {
        char pad[24];
        int len = snprintf(pad, sizeof pad, "[PAD%d]", i);
        if (!hf_vocab_set(v, i, pad, (size_t)len, TOK_UNUSED))
            return false;
    }
    return true;
}

void hf_vocab_free(struct hf_vocab *v)
{
    for (int32_t i = 0; v->tokens && i < v->n; i++)
        free(v->tokens[i]);
    for (int64_t i = 0; v->merges && v->merges[i]; i++) /* NULL-terminated, also when partly read */
        free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->scores);
    free(v->merges);
    free(v->template_first);
    memset(v, 0, sizeof *v);
}

bool hf_vocab_set(struct hf_vocab *v, int32_t id, const char *text, size_t len, int32_t type)
{
    char *s = malloc(len + 1);
    if (!s)
        return false;
    memcpy(s, text, len);
    s[len] = '\0';
    free(v->tokens[id]);
    v->tokens[id] = s;
    v->types[id] = type;
    return true;
}

/* ---- the folder's other files ---- */

struct folder {
    const char *dir;
    const struct hf_config *cfg;
    json_object *tc; /* tokenizer_config.json, or NULL */
    char tc_path[4096];
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static bool fail(const struct folder *f, const char *path, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(f->err, f->errlen, "%s: %s", path, msg);
    return false;
}

/* tokenizer_config.json's "<kind>_token": a string or {"content": ...}. */
static const char *tc_token_text(const struct folder *f, const char *kind)
{
    char key[32];
    snprintf(key, sizeof key, "%s_token", kind);
    json_object *v = json_get(f->tc, key), *content = NULL;
    if (v && json_object_is_type(v, json_type_object))
        v = json_object_object_get_ex(v, "content", &content) ? content : NULL;
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int32_t hf_vocab_find(const struct hf_vocab *v, const char *text)
{
    for (int32_t i = 0; i < v->n; i++)
        if (strcmp(v->tokens[i], text) == 0)
            return i;
    return -1;
}

/* The id of a special token, as llama.cpp's SpecialVocab finds it: the
 * text tokenizer_config.json names, else the id config.json (or
 * generation_config.json) gives; -1 when neither says. */
static bool special_id(const struct folder *f, const struct hf_vocab *v, const char *kind, int64_t cfg_id,
                       int32_t *out)
{
    const char *text = tc_token_text(f, kind);
    *out = text ? hf_vocab_find(v, text) : -1;
    if (*out < 0 && cfg_id >= 0) {
        if (cfg_id >= v->n)
            return fail(f, "config.json", "%s_token_id %lld is past vocab_size %d", kind, (long long)cfg_id, v->n);
        *out = (int32_t)cfg_id;
    }
    return true;
}

static void set_flag(const struct folder *f, struct gguf_writer *w, const char *tc_key, const char *gguf_key)
{
    json_object *v = json_get(f->tc, tc_key);
    if (v && json_object_is_type(v, json_type_boolean))
        gguf_set_bool(w, gguf_key, json_object_get_boolean(v));
}

static bool write_specials(const struct folder *f, const struct hf_vocab *v, struct gguf_writer *w)
{
    int32_t bos, eos, pad, unk;
    if (!special_id(f, v, "bos", f->cfg->bos_id, &bos) || !special_id(f, v, "eos", f->cfg->eos_id, &eos) ||
        !special_id(f, v, "pad", -1, &pad) || !special_id(f, v, "unk", v->unk, &unk))
        return false;
    if (bos >= 0)
        gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0)
        gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (unk >= 0)
        gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
    if (pad >= 0)
        gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
    /* add_bos: what tokenizer_config.json says, else whether the template
     * starts with BOS */
    if (v->has_template && !json_get(f->tc, "add_bos_token"))
        gguf_set_bool(w, "tokenizer.ggml.add_bos_token",
                      v->template_first && bos >= 0 && strcmp(v->template_first, v->tokens[bos]) == 0);
    set_flag(f, w, "add_bos_token", "tokenizer.ggml.add_bos_token");
    set_flag(f, w, "add_eos_token", "tokenizer.ggml.add_eos_token");
    return true;
}

/* tokenizer_config.json's chat_template (a string, or a list of named ones
 * of which "default" is the model's), else chat_template.jinja. */
static bool write_chat_template(const struct folder *f, struct gguf_writer *w)
{
    json_object *t = json_get(f->tc, "chat_template");
    for (size_t i = 0; t && json_object_is_type(t, json_type_array) && i < json_object_array_length(t); i++) {
        json_object *e = json_object_array_get_idx(t, i), *name, *tmpl;
        if (json_object_object_get_ex(e, "name", &name) && json_object_object_get_ex(e, "template", &tmpl) &&
            !strcmp(json_object_get_string(name), "default")) {
            t = tmpl;
            break;
        }
    }
    if (t && json_object_is_type(t, json_type_string)) {
        gguf_set_str(w, "tokenizer.chat_template", json_object_get_string(t));
        return true;
    }
    if (t)
        return fail(f, f->tc_path, "chat_template is neither a string nor a list with a \"default\" one");
    char path[4096];
    snprintf(path, sizeof path, "%s/chat_template.jinja", f->dir);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return true;
    char *text = malloc(MAX_TEMPLATE_BYTES + 1);
    size_t n = text ? fread(text, 1, MAX_TEMPLATE_BYTES + 1, fp) : 0;
    bool ok = text && !ferror(fp) && n <= MAX_TEMPLATE_BYTES && !memchr(text, 0, n);
    fclose(fp);
    if (ok) {
        text[n] = '\0';
        gguf_set_str(w, "tokenizer.chat_template", text);
    }
    free(text);
    return ok || fail(f, path, "unreadable, over %u bytes, or holds a NUL byte", MAX_TEMPLATE_BYTES);
}

static void write_vocab(const struct hf_vocab *v, struct gguf_writer *w)
{
    gguf_set_str(w, "tokenizer.ggml.model", v->spm ? "llama" : "gpt2");
    gguf_set_str(w, "tokenizer.ggml.pre", v->spm ? "default" : v->pre);
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, (uint64_t)v->n);
    if (v->spm)
        gguf_set_arr_f32(w, "tokenizer.ggml.scores", v->scores, (uint64_t)v->n);
    gguf_set_arr_i32(w, "tokenizer.ggml.token_type", v->types, (uint64_t)v->n);
    if (!v->spm)
        gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, (uint64_t)v->n_merges);
    if (v->spm)
        gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool hf_tokenizer_write(const char *dir, const char *path, const struct hf_config *c, struct gguf_writer *w,
                        char *err, size_t errlen)
{
    struct folder f = {.dir = dir, .cfg = c, .err = err, .errlen = errlen};
    struct hf_vocab v;
    bool ok = has_suffix(path, ".json") ? hf_vocab_from_json(path, (int32_t)c->vocab_size, &v, err, errlen)
                                        : hf_vocab_from_spm_model(path, (int32_t)c->vocab_size, &v, err, errlen);
    snprintf(f.tc_path, sizeof f.tc_path, "%s/tokenizer_config.json", dir);
    if (ok && access(f.tc_path, F_OK) == 0)
        ok = (f.tc = json_read_file(f.tc_path, MAX_CONFIG_BYTES, err, errlen)) != NULL &&
             (json_object_is_type(f.tc, json_type_object) || fail(&f, f.tc_path, "not a JSON object"));
    if (ok) {
        write_vocab(&v, w);
        ok = write_specials(&f, &v, w) && write_chat_template(&f, w);
    }
    json_object_put(f.tc);
    hf_vocab_free(&v);
    return ok;
}
