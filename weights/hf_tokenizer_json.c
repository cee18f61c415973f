/* tokenizer.json (Hugging Face `tokenizers`) -> struct hf_vocab: the BPE
 * model's vocabulary and merges, its added tokens, and what its normalizer
 * and pre-tokenizer say about spaces and splitting (hf_tokenizer.h has the
 * rules). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_vocab.h"
#include "json_file.h"
#include "tok_internal.h"

#define MAX_TOKENIZER_BYTES (256u << 20)
#define SPM_SPACE "\xE2\x96\x81" /* "▁" */

/* llama.cpp's names for the byte-level pre-tokenizers we run, in the order
 * tried; tok_pretok.c knows each one's regexes. */
static const char *const pre_names[] = {"gpt-2", "smollm", "llama-bpe", "qwen2"};
#define N_PRE (sizeof pre_names / sizeof pre_names[0])
#define MAX_PASSES 4

struct reader {
    const char *path;
    json_object *root, *model;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static bool fail(const struct reader *r, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s", r->path, msg);
    return false;
}

static bool bool_field(json_object *obj, const char *key, bool def)
{
    json_object *v = json_get(obj, key);
    return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : def;
}

static bool str_is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

/* The steps of a normalizer, pre-tokenizer or post-processor: a Sequence's
 * list (under list_key), or the thing itself; none for JSON null. */
static size_t n_steps(json_object *obj, const char *list_key)
{
    json_object *list = json_get(obj, list_key);
    return list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : obj != NULL;
}

static json_object *step(json_object *obj, const char *list_key, size_t i)
{
    json_object *list = json_get(obj, list_key);
    return list && json_object_is_type(list, json_type_array) ? json_object_array_get_idx(list, i) : obj;
}

/* ---- vocabulary ---- */

/* Added tokens that are not marked special but are control tokens all the
 * same (llama.cpp's does_token_look_special, the forms we meet). */
static bool looks_special(const char *s)
{
    size_t n = strlen(s);
    return n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>");
}

static bool read_vocab(const struct reader *r, struct hf_vocab *v)
{
    json_object *vocab = json_get(r->model, "vocab");
    if (!vocab || !json_object_is_type(vocab, json_type_object))
        return fail(r, "model.vocab missing or not an object");
    bool *seen = calloc((size_t)v->n, 1);
    if (!seen)
        return fail(r, "out of memory");
    bool ok = true;
    json_object_object_foreach(vocab, text, idv) {
        int64_t id;
        if (!json_int(idv, &id) || id < 0) {
            ok = fail(r, "model.vocab['%.64s'] is not a token id", text);
        } else if (id >= v->n) {
            ok = fail(r, "model.vocab['%.64s'] has id %lld, past the model's vocab_size %d", text, (long long)id,
                      v->n);
        } else if (seen[id]) {
            ok = fail(r, "model.vocab has two tokens with id %lld", (long long)id);
        } else {
            seen[id] = true;
            ok = hf_vocab_set(v, (int32_t)id, text, strlen(text), TOK_NORMAL) || fail(r, "out of memory");
        }
        if (!ok)
            break;
    }
    free(seen);
    return ok;
}

static bool read_added(const struct reader *r, struct hf_vocab *v)
{
    json_object *added = json_get(r->root, "added_tokens");
    if (!added)
        return true;
    if (!json_object_is_type(added, json_type_array))
        return fail(r, "added_tokens is not a list");
    for (size_t i = 0; i < json_object_array_length(added); i++) {
        json_object *a = json_object_array_get_idx(added, i);
        const char *content = json_get_str(a, "content");
        int64_t id;
        if (!content || !json_get(a, "id") || !json_int(json_get(a, "id"), &id) || id < 0)
            return fail(r, "added_tokens[%zu] has no content or id", i);
        if (id >= v->n)
            return fail(r, "added token '%.64s' has id %lld, past the model's vocab_size %d", content,
                        (long long)id, v->n);
        bool control = bool_field(a, "special", false) || looks_special(content);
        if (!hf_vocab_set(v, (int32_t)id, content, strlen(content), control ? TOK_CONTROL : TOK_USER_DEFINED))
            return fail(r, "out of memory");
    }
    return true;
}

/* ---- merges ---- */

/* merges are "a b" strings, or [a, b] pairs since tokenizers 0.20; llama.cpp
 * joins a pair with a space, writing a space inside a part as U+0120 (the
 * byte-level character of the space byte). */
static char *merge_text(json_object *m)
{
    if (json_object_is_type(m, json_type_string))
        return strdup(json_object_get_string(m));
    if (!json_object_is_type(m, json_type_array) || json_object_array_length(m) != 2)
        return NULL;
    const char *part[2];
    size_t n = 2;
    for (int k = 0; k < 2; k++) {
        json_object *p = json_object_array_get_idx(m, k);
        if (!json_object_is_type(p, json_type_string))
            return NULL;
        part[k] = json_object_get_string(p);
        n += 2 * strlen(part[k]);
    }
    char *s = malloc(n), *o = s;
    for (int k = 0; s && k < 2; k++) {
        if (k)
            *o++ = ' ';
        for (const char *c = part[k]; *c; c++) {
            if (*c == ' ') {
                *o++ = (char)0xC4;
                *o++ = (char)0xA0;
            } else
                *o++ = *c;
        }
    }
    if (s)
        *o = '\0';
    return s;
}

static json_object *merges_list(const struct reader *r)
{
    json_object *m = json_get(r->model, "merges");
    return m && json_object_is_type(m, json_type_array) ? m : NULL;
}

static bool read_merges(const struct reader *r, struct hf_vocab *v)
{
    json_object *m = merges_list(r);
    if (!m)
        return fail(r, "model.merges missing or not a list");
    size_t n = json_object_array_length(m);
    v->merges = calloc(n + 1, sizeof *v->merges);
    if (!v->merges)
        return fail(r, "out of memory");
    for (size_t i = 0; i < n; i++, v->n_merges++) {
        if (!(v->merges[i] = merge_text(json_object_array_get_idx(m, i))))
            return fail(r, "model.merges[%zu] is not \"a b\" or [a, b]", i);
        if (!strchr(v->merges[i], ' '))
            return fail(r, "model.merges[%zu] '%.64s' is not two tokens", i, v->merges[i]);
    }
    return true;
}

/* SentencePiece-style scores: minus the rank of the first merge making a
 * token; tokens no merge makes score below every merge (they are never a
 * merge result, so their score orders nothing). */
static bool spm_scores(const struct reader *r, struct hf_vocab *v)
{
    json_object *m = merges_list(r), *vocab = json_get(r->model, "vocab");
    if (!m)
        return fail(r, "model.merges missing or not a list");
    size_t n = json_object_array_length(m);
    for (int32_t i = 0; i < v->n; i++)
        v->scores[i] = -(float)(n + 1);
    for (size_t k = 0; k < n; k++) {
        char *text = merge_text(json_object_array_get_idx(m, k));
        char *space = text ? strchr(text, ' ') : NULL;
        if (!space) {
            free(text);
            return fail(r, "model.merges[%zu] is not \"a b\" or [a, b]", k);
        }
        memmove(space, space + 1, strlen(space)); /* the pair's concatenation */
        json_object *idv = json_get(vocab, text);
        int64_t id;
        bool ok = idv && json_int(idv, &id) && id >= 0 && id < v->n;
        if (!ok)
            fail(r, "model.merges[%zu] makes '%.64s', which is not in model.vocab", k, text);
        free(text);
        if (!ok)
            return false;
        if (v->scores[id] == -(float)(n + 1))
            v->scores[id] = -(float)(k + 1);
    }
    return true;
}

/* ---- how text is split ---- */

/* Spaces must become "▁" (a Replace normalizer or a Metaspace
 * pre-tokenizer); a leading "▁" comes from Prepend or Metaspace's
 * prepend_scheme. */
static bool spm_spaces(const struct reader *r, struct hf_vocab *v)
{
    json_object *norm = json_get(r->root, "normalizer"), *pre = json_get(r->root, "pre_tokenizer");
    bool replaced = false;
    v->add_space_prefix = false;
    for (size_t i = 0; i < n_steps(norm, "normalizers"); i++) {
        json_object *s = step(norm, "normalizers", i);
        const char *type = json_get_str(s, "type");
        if (type && !strcmp(type, "Prepend") && str_is(json_get_str(s, "prepend"), SPM_SPACE))
            v->add_space_prefix = true;
        else if (type && !strcmp(type, "Replace") && str_is(json_get_str(json_get(s, "pattern"), "String"), " ") &&
                 str_is(json_get_str(s, "content"), SPM_SPACE))
            replaced = true;
        else
            return fail(r, "normalizer '%.32s' is not supported for a SentencePiece-style vocabulary",
                        type ? type : "?");
    }
    for (size_t i = 0; i < n_steps(pre, "pretokenizers"); i++) {
        json_object *s = step(pre, "pretokenizers", i);
        const char *type = json_get_str(s, "type"), *scheme = json_get_str(s, "prepend_scheme");
        if (!type || strcmp(type, "Metaspace") != 0 || !str_is(json_get_str(s, "replacement"), SPM_SPACE) ||
            bool_field(s, "split", false))
            return fail(r, "pre_tokenizer '%.32s' is not supported for a SentencePiece-style vocabulary",
                        type ? type : "?");
        replaced = true;
        v->add_space_prefix = scheme ? strcmp(scheme, "never") != 0 : bool_field(s, "add_prefix_space", true);
    }
    if (!replaced)
        return fail(r, "spaces are not turned into \"\\u2581\" (no Replace normalizer or Metaspace)");
    return true;
}

/* Our regex passes for the pre-tokenizer steps; false + err for a step we
 * do not run. */
static bool byte_level_passes(const struct reader *r, const char **passes, int *n_passes)
{
    json_object *pre = json_get(r->root, "pre_tokenizer");
    const char *const *gpt2;
    bool unused, byte_level = false;
    pretok_passes("gpt-2", &gpt2, &unused);
    *n_passes = 0;
    for (size_t i = 0; i < n_steps(pre, "pretokenizers"); i++) {
        json_object *s = step(pre, "pretokenizers", i);
        const char *type = json_get_str(s, "type"), *pass = NULL;
        if (type && !strcmp(type, "ByteLevel")) {
            if (bool_field(s, "add_prefix_space", false))
                return fail(r, "pre_tokenizer ByteLevel with add_prefix_space is not supported");
            byte_level = true;
            pass = bool_field(s, "use_regex", true) ? gpt2[0] : NULL;
        } else if (type && !strcmp(type, "Digits") && bool_field(s, "individual_digits", false)) {
            pass = "\\p{N}";
        } else if (type && !strcmp(type, "Split") && json_get_str(json_get(s, "pattern"), "Regex") &&
                   str_is(json_get_str(s, "behavior"), "Isolated") && !bool_field(s, "invert", false)) {
            pass = json_get_str(json_get(s, "pattern"), "Regex");
        } else {
            return fail(r, "pre_tokenizer step '%.32s' is not supported", type ? type : "?");
        }
        if (pass && *n_passes == MAX_PASSES)
            return fail(r, "pre_tokenizer has more than %d splitting steps", MAX_PASSES);
        if (pass)
            passes[(*n_passes)++] = pass;
    }
    if (!byte_level)
        return fail(r, "neither byte-level BPE (no ByteLevel pre-tokenizer) nor SentencePiece-style BPE "
                       "(byte_fallback)");
    return true;
}

static bool byte_level_pre(const struct reader *r, struct hf_vocab *v)
{
    json_object *norm = json_get(r->root, "normalizer");
    const char *ntype = json_get_str(norm, "type");
    /* NFC leaves the text of our tests alone; llama.cpp skips it too */
    if (norm && (!ntype || strcmp(ntype, "NFC") != 0))
        return fail(r, "normalizer '%.32s' is not supported for byte-level BPE", ntype ? ntype : "?");
    const char *passes[MAX_PASSES];
    int n;
    if (!byte_level_passes(r, passes, &n))
        return false;
    for (size_t f = 0; f < N_PRE; f++) {
        const char *const *ours;
        bool ignore_merges;
        int k = pretok_passes(pre_names[f], &ours, &ignore_merges);
        bool same = k == n;
        for (int i = 0; same && i < n; i++)
            same = strcmp(ours[i], passes[i]) == 0;
        if (!same)
            continue;
        if (bool_field(r->model, "ignore_merges", false) != ignore_merges)
            return fail(r, "model.ignore_merges is %s, but the %s pre-tokenizer's models have it %s",
                        ignore_merges ? "false" : "true", pre_names[f], ignore_merges ? "true" : "false");
        v->pre = pre_names[f];
        return true;
    }
    return fail(r, "pre_tokenizer splits text in a way none of ours does (gpt-2, smollm, llama-bpe, qwen2)");
}

/* The post-processor's single-sequence template: which special token, if
 * any, it puts first (add_bos for llama.cpp). */
static bool read_template(const struct reader *r, struct hf_vocab *v)
{
    json_object *post = json_get(r->root, "post_processor");
    for (size_t i = 0; i < n_steps(post, "processors"); i++) {
        json_object *p = step(post, "processors", i);
        const char *type = json_get_str(p, "type");
        json_object *tmpl = json_get(p, "single");
        if (!type || strcmp(type, "TemplateProcessing") != 0 || !tmpl || !json_object_is_type(tmpl, json_type_array))
            continue;
        v->has_template = true;
        const char *first = json_object_array_length(tmpl) > 1
                                ? json_get_str(json_get(json_object_array_get_idx(tmpl, 0), "SpecialToken"), "id")
                                : NULL;
        if (first && !(v->template_first = strdup(first)))
            return fail(r, "out of memory");
    }
    return true;
}

static bool read_all(const struct reader *r, struct hf_vocab *v)
{
    const char *type = json_get_str(r->model, "type");
    if (!r->model || !type)
        return fail(r, "no model.type");
    if (strcmp(type, "BPE") != 0)
        return fail(r, "model type '%.32s' is not supported (BPE)", type);
    if (!read_vocab(r, v) || !read_added(r, v) || !read_template(r, v))
        return false;
    v->spm = bool_field(r->model, "byte_fallback", false);
    if (!v->spm)
        return byte_level_pre(r, v) && read_merges(r, v);
    const char *unk = json_get_str(r->model, "unk_token");
    v->unk = unk ? hf_vocab_find(v, unk) : -1;
    if (v->unk >= 0)
        v->types[v->unk] = TOK_UNKNOWN;
    for (int32_t i = 0; i < v->n; i++) {
        const char *t = v->tokens[i];
        if (v->types[i] == TOK_NORMAL && strlen(t) == 6 && !strncmp(t, "<0x", 3) && isxdigit((unsigned char)t[3]) &&
            isxdigit((unsigned char)t[4]) && t[5] == '>')
            v->types[i] = TOK_BYTE;
    }
    if (!(v->scores = malloc((size_t)v->n * sizeof *v->scores)))
        return fail(r, "out of memory");
    return spm_spaces(r, v) && spm_scores(r, v);
}

bool hf_vocab_from_json(const char *path, int32_t n_vocab, struct hf_vocab *v, char *err, size_t errlen)
{
    if (!hf_vocab_init(v, n_vocab)) {
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    struct reader r = {path, json_read_file(path, MAX_TOKENIZER_BYTES, err, errlen), NULL, err, errlen};
    if (!r.root)
        return false;
    r.model = json_get(r.root, "model");
    bool ok = read_all(&r, v);
    json_object_put(r.root);
    return ok;
}
