/* tokenizer_load: the tokenizer.ggml.* metadata, checked field by field, into
 * the tables encode and decode use; the small accessors. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"

/* Leaves room for every token to be a symbol index or an id in an int. */
#define MAX_VOCAB (1 << 24)

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *type_name(enum gguf_value_type v)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                        "string", "array", "u64", "i64", "f64"};
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "unknown";
}

static bool is_int_type(enum gguf_value_type v)
{
    return v <= GGUF_I32 || v == GGUF_U64 || v == GGUF_I64;
}

/* ---- the string -> id map ---- */

int32_t tok_lookup(const struct tokenizer *t, const char *s, size_t n)
{
    size_t i = (size_t)tok_fnv1a(TOK_FNV_INIT, s, n) & t->map.mask;
    for (;;) {
        int32_t id = t->map.slot[i];
        if (id < 0)
            return -1;
        if (t->len[id] == n && !memcmp(t->text + t->off[id], s, n))
            return id;
        i = (i + 1) & t->map.mask;
    }
}

/* The first of equal strings keeps the name, as in a dict built in id order. */
static bool build_map(struct tokenizer *t)
{
    size_t cap = 1;
    while (cap < 2 * (size_t)t->n_vocab)
        cap *= 2;
    t->map.slot = malloc(cap * sizeof *t->map.slot);
    if (!t->map.slot)
        return false;
    memset(t->map.slot, 0xff, cap * sizeof *t->map.slot);
    t->map.mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text + t->off[id];
        size_t i = (size_t)tok_fnv1a(TOK_FNV_INIT, s, t->len[id]) & t->map.mask;
        for (;; i = (i + 1) & t->map.mask) {
            int32_t o = t->map.slot[i];
            if (o < 0) {
                t->map.slot[i] = id;
                break;
            }
            if (t->len[o] == t->len[id] && !memcmp(t->text + t->off[o], s, t->len[id]))
                break;
        }
    }
    return true;
}

/* ---- fields ---- */

static bool load_tokens(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    enum gguf_value_type et;
    uint64_t n;
    if (gguf_kv_type(f, KEY_TOKENS) < 0)
        return fail(err, errlen, "%s missing", KEY_TOKENS);
    if (!gguf_get_arr(f, KEY_TOKENS, &et, &n))
        return fail(err, errlen, "%s is not an array", KEY_TOKENS);
    if (et != GGUF_STRING)
        return fail(err, errlen, "%s is an array of %s, not of strings", KEY_TOKENS, type_name(et));
    if (n == 0)
        return fail(err, errlen, "%s is empty", KEY_TOKENS);
    if (n > MAX_VOCAB)
        return fail(err, errlen, "%s has %llu entries (at most %d supported)", KEY_TOKENS,
                    (unsigned long long)n, MAX_VOCAB);
    t->n_vocab = (int32_t)n;
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *s = gguf_arr_str(f, KEY_TOKENS, i);
        if (!s)
            return fail(err, errlen, "%s[%llu] unreadable", KEY_TOKENS, (unsigned long long)i);
        size_t l = strlen(s);
        if (!utf8_valid((const uint8_t *)s, l))
            return fail(err, errlen, "%s[%llu] is not valid UTF-8", KEY_TOKENS, (unsigned long long)i);
        total += l + 1;
        if (total > UINT32_MAX)
            return fail(err, errlen, "%s: token text over 4 GiB", KEY_TOKENS);
    }
    t->text = malloc(total);
    t->off = malloc(n * sizeof *t->off);
    t->len = malloc(n * sizeof *t->len);
    if (!t->text || !t->off || !t->len)
        return fail(err, errlen, "out of memory");
    size_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *s = gguf_arr_str(f, KEY_TOKENS, i);
        size_t l = strlen(s);
        memcpy(t->text + pos, s, l + 1);
        t->off[i] = (uint32_t)pos;
        t->len[i] = (uint32_t)l;
        pos += l + 1;
    }
    return true;
}

/* A numeric array parallel to the tokens; false + err unless absent-and-optional. */
static bool parallel_array(const struct gguf_file *f, const char *key, int32_t n_vocab, bool want_float,
                           bool *present, char *err, size_t errlen)
{
    enum gguf_value_type et;
    uint64_t n;
    *present = gguf_kv_type(f, key) >= 0;
    if (!*present)
        return true;
    if (!gguf_get_arr(f, key, &et, &n))
        return fail(err, errlen, "%s is not an array", key);
    bool ok = want_float ? (et == GGUF_F32 || et == GGUF_F64) : is_int_type(et);
    if (!ok)
        return fail(err, errlen, "%s is an array of %s, not of %s", key, type_name(et),
                    want_float ? "floats" : "integers");
    if (n != (uint64_t)n_vocab)
        return fail(err, errlen, "%s has %llu entries but %s has %d", key, (unsigned long long)n,
                    KEY_TOKENS, n_vocab);
    return true;
}

static bool load_scores(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    bool present;
    if (!parallel_array(f, KEY_SCORES, t->n_vocab, true, &present, err, errlen))
        return false;
    if (!present && t->kind == TOKENIZER_SPM)
        return fail(err, errlen, "%s missing (the llama tokenizer merges by score)", KEY_SCORES);
    t->scores = calloc((size_t)t->n_vocab, sizeof *t->scores);
    if (!t->scores)
        return fail(err, errlen, "out of memory");
    for (int32_t i = 0; present && i < t->n_vocab; i++)
        if (!gguf_arr_f32(f, KEY_SCORES, (uint64_t)i, &t->scores[i]) || isnan(t->scores[i]))
            return fail(err, errlen, "%s[%d] is not a number", KEY_SCORES, i);
    return true;
}

static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool load_types(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    bool present;
    if (!parallel_array(f, KEY_TYPES, t->n_vocab, false, &present, err, errlen))
        return false;
    t->types = malloc((size_t)t->n_vocab);
    if (!t->types)
        return fail(err, errlen, "out of memory");
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int64_t v;
        if (present) {
            if (!gguf_arr_i64(f, KEY_TYPES, (uint64_t)i, &v) || v < TOK_NORMAL || v > TOK_BYTE)
                return fail(err, errlen, "%s[%d] is not a token type (1..6)", KEY_TYPES, i);
        } else if (t->kind == TOKENIZER_SPM && parse_byte_token(t->text + t->off[i], t->len[i]) >= 0)
            v = TOK_BYTE;
        else
            v = i == t->unk ? TOK_UNKNOWN : i == t->bos || i == t->eos ? TOK_CONTROL : TOK_NORMAL;
        t->types[i] = (uint8_t)v;
    }
    return true;
}

/* An optional token id: -1 when absent, an error when present but bad. */
static bool load_id(const struct gguf_file *f, const char *key, int32_t n_vocab, int32_t *out, char *err,
                    size_t errlen)
{
    *out = -1;
    if (gguf_kv_type(f, key) < 0)
        return true;
    int64_t v;
    if (!gguf_get_i64(f, key, &v))
        return fail(err, errlen, "%s is not an integer", key);
    if (v < 0 || v >= n_vocab)
        return fail(err, errlen, "%s = %lld out of range (vocabulary has %d tokens)", key, (long long)v,
                    n_vocab);
    *out = (int32_t)v;
    return true;
}

static bool load_flag(const struct gguf_file *f, const char *key, bool dflt, bool *out, char *err,
                      size_t errlen)
{
    *out = dflt;
    if (gguf_kv_type(f, key) < 0)
        return true;
    if (!gguf_get_bool(f, key, out))
        return fail(err, errlen, "%s is not a bool", key);
    return true;
}

static bool load_byte_tokens(struct tokenizer *t, char *err, size_t errlen)
{
    for (int b = 0; b < 256; b++)
        t->byte_token[b] = -1;
    if (t->kind == TOKENIZER_BPE) {
        for (int b = 0; b < 256; b++) {
            char s[2];
            t->byte_token[b] = tok_lookup(t, s, bpe_byte_utf8((uint8_t)b, s));
        }
        return true;
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->types[i] != TOK_BYTE)
            continue;
        int b = parse_byte_token(t->text + t->off[i], t->len[i]);
        if (b < 0)
            return fail(err, errlen, "%s[%d] '%s' has type BYTE but is not <0xNN>", KEY_TOKENS, i,
                        t->text + t->off[i]);
        if (t->byte_token[b] < 0)
            t->byte_token[b] = i;
    }
    return true;
}

struct special_key {
    uint8_t first;
    uint32_t len;
    int32_t id;
};

/* By first byte, then longest first, then id. */
static int cmp_special(const void *pa, const void *pb)
{
    const struct special_key *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static bool is_special_type(uint8_t ty)
{
    return ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_USER_DEFINED;
}

static bool build_specials(struct tokenizer *t)
{
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n += is_special_type(t->types[i]) && t->len[i] > 0;
    struct special_key *keys = malloc((n ? n : 1) * sizeof *keys);
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return false;
    }
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (is_special_type(t->types[i]) && t->len[i] > 0)
            keys[n++] = (struct special_key){(uint8_t)t->text[t->off[i]], t->len[i], i};
    qsort(keys, n, sizeof *keys, cmp_special);
    size_t j = 0;
    for (int c = 0; c <= 256; c++) {
        while (j < n && keys[j].first < c)
            j++;
        t->special_start[c] = (uint32_t)j;
    }
    for (size_t i = 0; i < n; i++)
        t->special[i] = keys[i].id;
    free(keys);
    return true;
}

/* What each token prints as, before UTF-8 assembly. */
static bool build_decode(struct tokenizer *t)
{
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        total += t->len[i];
    t->dec = malloc(total ? total : 1);
    t->dec_off = malloc((size_t)t->n_vocab * sizeof *t->dec_off);
    t->dec_len = malloc((size_t)t->n_vocab * sizeof *t->dec_len);
    if (!t->dec || !t->dec_off || !t->dec_len)
        return false;
    size_t pos = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const uint8_t *s = (const uint8_t *)t->text + t->off[i];
        size_t n = t->len[i], start = pos;
        if (t->kind == TOKENIZER_SPM && t->types[i] == TOK_BYTE) {
            t->dec[pos++] = (char)parse_byte_token((const char *)s, n);
        } else if (t->kind == TOKENIZER_SPM) {
            for (size_t k = 0; k < n; k++) {
                if (k + 3 <= n && s[k] == 0xE2 && s[k + 1] == 0x96 && s[k + 2] == 0x81) { /* ▁ */
                    t->dec[pos++] = ' ';
                    k += 2;
                } else
                    t->dec[pos++] = (char)s[k];
            }
        } else {
            /* every character one of the 256 byte characters: those bytes;
             * otherwise (added tokens) the text itself, as HF's ByteLevel does */
            for (size_t k = 0; k < n;) {
                size_t cl = utf8_char_len(s + k, n - k);
                uint32_t cp = cl == 1 ? s[k] : cl == 2 ? (uint32_t)(s[k] & 0x1F) << 6 | (s[k + 1] & 0x3F) : 0;
                int b = cl <= 2 ? bpe_char_byte(cp) : -1;
                if (b < 0) {
                    pos = start;
                    memcpy(t->dec + pos, s, n);
                    pos += n;
                    break;
                }
                t->dec[pos++] = (char)b;
                k += cl;
            }
        }
        t->dec_off[i] = (uint32_t)start;
        t->dec_len[i] = (uint32_t)(pos - start);
        if (t->dec_len[i] > t->max_dec)
            t->max_dec = t->dec_len[i];
    }
    return true;
}

/* Whether some token holds "▁" right after another character than "▁". */
static bool marker_inside_token(const struct tokenizer *t)
{
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = t->text + t->off[i];
        for (const char *p = strstr(s, "\xE2\x96\x81"); p; p = strstr(p + 3, "\xE2\x96\x81"))
            if (p > s && !(p - s >= 3 && !memcmp(p - 3, "\xE2\x96\x81", 3)))
                return true;
    }
    return false;
}

static void hash_u32(uint64_t *h, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    *h = tok_fnv1a(*h, b, 4);
}

static uint64_t compute_hash(const struct tokenizer *t)
{
    uint64_t h = tok_fnv1a(TOK_FNV_INIT, "tandem-tokenizer-v1", 19);
    hash_u32(&h, (uint32_t)t->kind);
    hash_u32(&h, (uint32_t)t->n_vocab);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uint32_t bits;
        memcpy(&bits, &t->scores[i], 4);
        hash_u32(&h, t->len[i]);
        h = tok_fnv1a(h, t->text + t->off[i], t->len[i]);
        hash_u32(&h, t->types[i]);
        hash_u32(&h, bits);
    }
    hash_u32(&h, (uint32_t)t->n_merges);
    hash_u32(&h, (uint32_t)(t->merges_hash >> 32));
    hash_u32(&h, (uint32_t)t->merges_hash);
    hash_u32(&h, (uint32_t)t->pre_kind);
    hash_u32(&h, (uint32_t)t->bos);
    hash_u32(&h, (uint32_t)t->eos);
    hash_u32(&h, (uint32_t)t->unk);
    hash_u32(&h, (uint32_t)t->add_bos | (uint32_t)t->add_space_prefix << 1);
    return h;
}

static bool load(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    const char *model = gguf_get_str(f, KEY_MODEL);
    if (!model)
        return fail(err, errlen, gguf_kv_type(f, KEY_MODEL) < 0 ? "%s missing (no tokenizer in this file)"
                                                                 : "%s is not a string", KEY_MODEL);
    if (!strcmp(model, "llama"))
        t->kind = TOKENIZER_SPM;
    else if (!strcmp(model, "gpt2"))
        t->kind = TOKENIZER_BPE;
    else
        return fail(err, errlen, "%s '%s' not supported (supported: llama, gpt2)", KEY_MODEL, model);

    if (!load_tokens(t, f, err, errlen) || !load_scores(t, f, err, errlen))
        return false;
    if (!load_id(f, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err, errlen) ||
        !load_id(f, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err, errlen) ||
        !load_id(f, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk, err, errlen))
        return false;
    int32_t unused;
    if (!load_id(f, "tokenizer.ggml.padding_token_id", t->n_vocab, &unused, err, errlen) ||
        !load_id(f, "tokenizer.ggml.seperator_token_id", t->n_vocab, &unused, err, errlen))
        return false;
    bool spm = t->kind == TOKENIZER_SPM;
    if (!load_flag(f, "tokenizer.ggml.add_bos_token", spm, &t->add_bos, err, errlen) ||
        !load_flag(f, "tokenizer.ggml.add_space_prefix", spm, &t->add_space_prefix, err, errlen))
        return false;
    if (!spm)
        t->add_space_prefix = false; /* byte-level models carry spaces in their regex */
    if (!load_types(t, f, err, errlen))
        return false;
    for (int32_t i = 0; t->unk < 0 && i < t->n_vocab; i++) /* no unknown_token_id: the UNKNOWN token */
        if (t->types[i] == TOK_UNKNOWN)
            t->unk = i;
    if (!build_map(t))
        return fail(err, errlen, "out of memory");
    if (!load_byte_tokens(t, err, errlen))
        return false;
    t->spm_words = spm && !marker_inside_token(t);
    if (!build_specials(t) || !build_decode(t))
        return fail(err, errlen, "out of memory");

    if (!spm) {
        const char *pre = "default";
        if (gguf_kv_type(f, KEY_PRE) >= 0 && !(pre = gguf_get_str(f, KEY_PRE)))
            return fail(err, errlen, "%s is not a string", KEY_PRE);
        t->pre = pretok_new(pre, &t->pre_kind, &t->ignore_merges, err, errlen);
        if (!t->pre || !merges_load(t, f, err, errlen))
            return false;
    }
    const char *tpl = gguf_get_str(f, "tokenizer.chat_template");
    if (tpl && !(t->chat_template = strdup(tpl)))
        return fail(err, errlen, "out of memory");
    t->hash = compute_hash(t);
    return true;
}

struct tokenizer *tokenizer_load(const struct gguf_file *f, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    t->bos = t->eos = t->unk = -1;
    if (!load(t, f, err, errlen)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->scores);
    free(t->types);
    free(t->map.slot);
    free(t->dec);
    free(t->dec_off);
    free(t->dec_len);
    free(t->special);
    free(t->merges.slot);
    pretok_free(t->pre);
    free(t->chat_template);
    free(t);
}

/* ---- accessors ---- */

enum tokenizer_kind tokenizer_kind(const struct tokenizer *t) { return t->kind; }
int tokenizer_vocab(const struct tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const struct tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const struct tokenizer *t) { return t->eos; }
bool tokenizer_add_bos_default(const struct tokenizer *t) { return t->add_bos; }
uint64_t tokenizer_hash(const struct tokenizer *t) { return t->hash; }
const char *tokenizer_chat_template(const struct tokenizer *t) { return t->chat_template; }

const char *tokenizer_piece(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? t->text + t->off[id] : NULL;
}

bool tokenizer_is_control(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && (t->types[id] == TOK_CONTROL || t->types[id] == TOK_UNKNOWN);
}

int32_t tokenizer_find(const struct tokenizer *t, const char *piece)
{
    return tok_lookup(t, piece, strlen(piece));
}
