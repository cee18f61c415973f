/* llama2.c checkpoints -> GGUF (convert.h).
 *
 * Both layouts llama2.c's export.py writes, all weights float32:
 *   legacy (v0): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *     vocab_size, seq_len), a negative vocab_size meaning the classifier is
 *     not the embedding; then the embedding; for all layers in turn the
 *     attention norms, wq, wk, wv, wo, ffn norms, w1, w2, w3; the final norm;
 *     two RoPE tables of seq_len * head_size/2 floats (skipped); the
 *     classifier when not shared.
 *   v1: uint32 magic 0x616b3432 ("ak42"), int32 version 1, the 7 fields, a
 *     shared-classifier byte, zeros up to byte 256; then attention norms, ffn
 *     norms, final norm, embedding, wq, wk, wv, wo, w1, w2, w3, classifier.
 * Every header field is range-checked and the file size must be exactly what
 * the fields imply, so a truncated or mislabelled file is named, not read.
 *
 * The weights are in Meta's layout, which is GGUF's: run.c rotates adjacent
 * pairs (2i, 2i+1) of each head, llama.cpp's "normal" RoPE for llama. So wq
 * and wk are written as they are: the row permutation llama.cpp applies to
 * Hugging Face checkpoints undoes one Hugging Face made, which these files
 * never had (tests/golden/test_stories260k.c holds this against run.c's
 * output). run.c hard-codes RMS eps 1e-5 and RoPE base 10000; the context is
 * seq_len.
 *
 * tokenizer.bin (--tokenizer): uint32 max_token_length, then per token a
 * float32 score, an int32 length and the bytes. export.py wrote SentencePiece
 * pieces with "\u2581" turned into spaces and BOS/EOS as "\n<s>\n" and
 * "\n</s>\n"; both are undone, giving llama.cpp's SentencePiece metadata
 * (unknown 0, BOS 1, EOS 2, "<0xHH>" byte tokens). Its token count must be
 * the checkpoint's vocabulary. */
#include "convert.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tok_internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llama2.c files are little-endian and read with memcpy"
#endif

#define V1_MAGIC 0x616b3432u
#define V1_HEADER_BYTES 256
#define LEGACY_HEADER_BYTES 28
#define MAX_TOKENIZER_BYTES (64u << 20)

__attribute__((format(printf, 4, 5)))
static bool fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", path, msg);
    return false;
}

/* ---- the checkpoint ---- */

struct config {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    bool shared_classifier;
    int version; /* 0 = legacy */
};

/* The weight arrays of a checkpoint; the two orders below list them as each
 * layout stores them. Parts from ATTN_NORM to W3 repeat for every layer. */
enum part { EMBD, ATTN_NORM, WQ, WK, WV, WO, FFN_NORM, W1, W2, W3, FINAL_NORM, ROPE_TABLES,
            CLASSIFIER };

static const char *const part_names[] = {
    [EMBD] = "token_embd.weight",        [ATTN_NORM] = "blk.%d.attn_norm.weight",
    [WQ] = "blk.%d.attn_q.weight",       [WK] = "blk.%d.attn_k.weight",
    [WV] = "blk.%d.attn_v.weight",       [WO] = "blk.%d.attn_output.weight",
    [FFN_NORM] = "blk.%d.ffn_norm.weight", [W1] = "blk.%d.ffn_gate.weight",
    [W2] = "blk.%d.ffn_down.weight",     [W3] = "blk.%d.ffn_up.weight",
    [FINAL_NORM] = "output_norm.weight", [ROPE_TABLES] = NULL,
    [CLASSIFIER] = "output.weight",
};

static const enum part legacy_order[] = {EMBD, ATTN_NORM, WQ, WK, WV, WO, FFN_NORM, W1, W2, W3,
                                         FINAL_NORM, ROPE_TABLES, CLASSIFIER};
static const enum part v1_order[] = {ATTN_NORM, FFN_NORM, FINAL_NORM, EMBD, WQ, WK, WV, WO,
                                     W1, W2, W3, CLASSIFIER};

/* How many arrays of a part the file holds: one per layer, or one. */
static int copies(const struct config *c, enum part part)
{
    return part >= ATTN_NORM && part <= W3 ? c->n_layers : 1;
}

/* GGUF shape of one array of a part (ne[0] = row length); the number of
 * dimensions, with the RoPE tables as one flat array. */
static int part_shape(const struct config *c, enum part part, uint64_t ne[2])
{
    uint64_t dim = (uint64_t)c->dim, head_size = dim / (uint64_t)c->n_heads;
    uint64_t kv_dim = head_size * (uint64_t)c->n_kv_heads;
    uint64_t vocab = (uint64_t)c->vocab, hidden = (uint64_t)c->hidden_dim;
    ne[1] = 1;
    switch (part) {
    case EMBD: case CLASSIFIER: ne[0] = dim; ne[1] = vocab; return 2;
    case ATTN_NORM: case FFN_NORM: case FINAL_NORM: ne[0] = dim; return 1;
    case WQ: case WO: ne[0] = dim; ne[1] = dim; return 2;
    case WK: case WV: ne[0] = dim; ne[1] = kv_dim; return 2;
    case W1: case W3: ne[0] = dim; ne[1] = hidden; return 2;
    case W2: ne[0] = hidden; ne[1] = dim; return 2;
    case ROPE_TABLES: ne[0] = (uint64_t)c->seq_len * head_size; return 1;
    }
    return 1;
}

/* Bytes of one array of a part in the file: none for a classifier shared
 * with the embedding. The header's limits keep every size below 2^52. */
static uint64_t part_bytes(const struct config *c, enum part part)
{
    uint64_t ne[2];
    part_shape(c, part, ne);
    return part == CLASSIFIER && c->shared_classifier ? 0 : ne[0] * ne[1] * sizeof(float);
}

static bool check_field(const char *path, const char *name, int32_t v, int32_t lo, int32_t hi,
                        char *err, size_t errlen)
{
    if (v >= lo && v <= hi)
        return true;
    return fail(err, errlen, path, "llama2.c header: %s = %" PRId32 " is not in [%" PRId32
                ", %" PRId32 "]", name, v, lo, hi);
}

/* The limits are the engine's (engine/model.c), so what converts also loads. */
static bool check_config(const char *path, const struct config *c, char *err, size_t errlen)
{
    if (!check_field(path, "dim", c->dim, 1, 1 << 16, err, errlen) ||
        !check_field(path, "hidden_dim", c->hidden_dim, 1, 1 << 18, err, errlen) ||
        !check_field(path, "n_layers", c->n_layers, 1, 4096, err, errlen) ||
        !check_field(path, "n_heads", c->n_heads, 1, 1024, err, errlen) ||
        !check_field(path, "n_kv_heads", c->n_kv_heads, 1, c->n_heads, err, errlen) ||
        !check_field(path, "vocab_size", c->vocab, 1, 1 << 24, err, errlen) ||
        !check_field(path, "seq_len", c->seq_len, 1, 1 << 24, err, errlen))
        return false;
    if (c->dim % c->n_heads || (c->dim / c->n_heads) % 2)
        return fail(err, errlen, path, "llama2.c header: dim %" PRId32 " is not n_heads %" PRId32
                    " times an even head size", c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return fail(err, errlen, path, "llama2.c header: n_heads %" PRId32 " is not a multiple "
                    "of n_kv_heads %" PRId32, c->n_heads, c->n_kv_heads);
    return true;
}

static int32_t read_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The header at the start of the mapping; *weights_at is where weights begin. */
static bool parse_header(const char *path, const unsigned char *map, uint64_t size,
                         struct config *c, uint64_t *weights_at, char *err, size_t errlen)
{
    if (size < LEGACY_HEADER_BYTES)
        return fail(err, errlen, path, "%" PRIu64 " bytes is too short for a llama2.c header", size);
    const unsigned char *fields = map;
    if ((uint32_t)read_i32(map) == V1_MAGIC) {
        c->version = read_i32(map + 4);
        if (c->version != 1)
            return fail(err, errlen, path, "llama2.c version %d is not supported (only the float32 "
                        "layouts: legacy and version 1)", c->version);
        if (size < V1_HEADER_BYTES)
            return fail(err, errlen, path, "%" PRIu64 " bytes is too short for a llama2.c "
                        "version 1 header (256)", size);
        if (map[36] > 1)
            return fail(err, errlen, path, "llama2.c header: shared_classifier = %d is not 0 or 1",
                        map[36]);
        fields = map + 8;
        c->shared_classifier = map[36] == 1;
        *weights_at = V1_HEADER_BYTES;
    } else {
        c->version = 0;
        *weights_at = LEGACY_HEADER_BYTES;
    }
    c->dim = read_i32(fields);
    c->hidden_dim = read_i32(fields + 4);
    c->n_layers = read_i32(fields + 8);
    c->n_heads = read_i32(fields + 12);
    c->n_kv_heads = read_i32(fields + 16);
    c->vocab = read_i32(fields + 20);
    c->seq_len = read_i32(fields + 24);
    if (c->version == 0) { /* the sign of vocab_size is the legacy shared flag */
        c->shared_classifier = c->vocab > 0;
        c->vocab = c->vocab == INT32_MIN ? 0 : abs(c->vocab);
    }
    return check_config(path, c, err, errlen);
}

/* Adds every tensor of the checkpoint to the plan, pointing into the
 * mapping, once the file is known to hold exactly the weights the header
 * implies. */
static bool add_weights(struct convert_plan *p, const char *path, const unsigned char *map,
                        uint64_t size, const struct config *c, uint64_t start, char *err,
                        size_t errlen)
{
    const enum part *order = c->version == 0 ? legacy_order : v1_order;
    size_t n_parts = c->version == 0 ? sizeof legacy_order / sizeof *legacy_order
                                     : sizeof v1_order / sizeof *v1_order;
    uint64_t pos = start;
    for (size_t i = 0; i < n_parts; i++)
        pos += part_bytes(c, order[i]) * (uint64_t)copies(c, order[i]);
    if (pos != size)
        return fail(err, errlen, path, "%s: the llama2.c %s header (dim %d, hidden_dim %d, %d "
                    "layers, vocab %d%s) needs %" PRIu64 " bytes, the file has %" PRIu64,
                    size < pos ? "truncated" : "longer than its header says",
                    c->version ? "version 1" : "legacy", c->dim, c->hidden_dim, c->n_layers,
                    c->vocab, c->shared_classifier ? ", shared classifier" : "", pos, size);
    pos = start;
    for (size_t i = 0; i < n_parts; i++) {
        uint64_t ne[2], bytes = part_bytes(c, order[i]);
        int n_dims = part_shape(c, order[i], ne);
        for (int l = 0; l < copies(c, order[i]); l++, pos += bytes) {
            char name[64];
            if (!part_names[order[i]] || bytes == 0)
                continue; /* the RoPE tables; a shared classifier */
            snprintf(name, sizeof name, part_names[order[i]], l);
            convert_add_mapped(p, name, DTYPE_F32, n_dims, ne, map + pos, false);
        }
    }
    return true;
}

static void set_hparams(struct gguf_writer *w, const char *path, const struct config *c)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
    gguf_set_str(w, "general.architecture", "llama");
    gguf_set_str(w, "general.name", name[0] ? name : "llama2.c");
    gguf_set_u32(w, "llama.context_length", (uint32_t)c->seq_len);
    gguf_set_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    gguf_set_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)c->hidden_dim);
    gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->dim / c->n_heads));
    gguf_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_f32(w, "llama.rope.freq_base", 10000.0f);
    gguf_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
}

/* ---- the tokenizer ---- */

static bool read_small_file(const char *path, unsigned char **out, size_t *len, char *err,
                            size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp)
        return fail(err, errlen, path, "%s", strerror(errno));
    bool ok = fstat(fileno(fp), &st) == 0 ? true : fail(err, errlen, path, "%s", strerror(errno));
    if (ok && !S_ISREG(st.st_mode))
        ok = fail(err, errlen, path, "not a regular file");
    if (ok && (uint64_t)st.st_size > MAX_TOKENIZER_BYTES)
        ok = fail(err, errlen, path, "%lld bytes is too large for a llama2.c tokenizer",
                  (long long)st.st_size);
    *len = ok ? (size_t)st.st_size : 0;
    *out = ok ? malloc(*len + 1) : NULL;
    if (ok && !*out)
        ok = fail(err, errlen, path, "out of memory");
    if (ok && fread(*out, 1, *len, fp) != *len)
        ok = fail(err, errlen, path, "read error");
    fclose(fp);
    if (!ok) {
        free(*out);
        *out = NULL;
    }
    return ok;
}

static bool is_byte_piece(const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    return n == 6 && memcmp(s, "<0x", 3) == 0 && strchr(hex, s[3]) && strchr(hex, s[4]) &&
           s[5] == '>';
}

/* A token's piece as SentencePiece had it: control tokens without their
 * newlines, spaces as "\u2581". NULL if out of memory. */
static char *sentencepiece_piece(const unsigned char *s, size_t n, enum tok_type type)
{
    if (type == TOK_CONTROL) {
        for (; n > 0 && s[0] == '\n'; s++, n--) {}
        for (; n > 0 && s[n - 1] == '\n'; n--) {}
    }
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++)
        spaces += s[i] == ' ';
    char *piece = malloc(n + 2 * spaces + 1), *q = piece;
    if (!piece)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(q, "\xe2\x96\x81", 3);
            q += 3;
        } else {
            *q++ = (char)s[i];
        }
    }
    *q = 0;
    return piece;
}

struct vocab {
    char **pieces;
    float *scores;
    int32_t *types;
    uint32_t n;
};

static void vocab_free(struct vocab *v)
{
    for (uint32_t i = 0; v->pieces && i < v->n; i++)
        free(v->pieces[i]);
    free(v->pieces);
    free(v->scores);
    free(v->types);
}

/* Token i of the file at *pos: checks it and stores its piece, score and type. */
static bool parse_token(const char *path, const unsigned char *buf, size_t len, size_t *pos,
                        uint32_t i, uint32_t max_len, struct vocab *v, char *err, size_t errlen)
{
    if (len - *pos < 8)
        return fail(err, errlen, path, "token %" PRIu32 ": truncated (the checkpoint's "
                    "vocabulary has %" PRIu32 " tokens)", i, v->n);
    float score;
    int32_t n;
    memcpy(&score, buf + *pos, sizeof score);
    n = read_i32(buf + *pos + 4);
    *pos += 8;
    if (!isfinite(score))
        return fail(err, errlen, path, "token %" PRIu32 ": score is not finite", i);
    if (n < 1 || (uint32_t)n > max_len)
        return fail(err, errlen, path, "token %" PRIu32 ": length %" PRId32 " is not in [1, %"
                    PRIu32 "] (max_token_length)", i, n, max_len);
    if ((size_t)n > len - *pos)
        return fail(err, errlen, path, "token %" PRIu32 ": %" PRId32 " bytes past the end of "
                    "the file", i, n);
    const unsigned char *s = buf + *pos;
    *pos += (size_t)n;
    if (memchr(s, 0, (size_t)n) || !utf8_valid(s, (size_t)n))
        return fail(err, errlen, path, "token %" PRIu32 ": not valid UTF-8 text", i);
    enum tok_type type = i == 0 ? TOK_UNKNOWN : i <= 2 ? TOK_CONTROL
                       : is_byte_piece(s, (size_t)n) ? TOK_BYTE : TOK_NORMAL;
    v->scores[i] = score;
    v->types[i] = type;
    v->pieces[i] = sentencepiece_piece(s, (size_t)n, type);
    return v->pieces[i] ? true : fail(err, errlen, path, "out of memory");
}

static bool parse_tokenizer(const char *path, const unsigned char *buf, size_t len,
                            struct vocab *v, char *err, size_t errlen)
{
    if (len < 4)
        return fail(err, errlen, path, "%zu bytes is too short for a llama2.c tokenizer", len);
    uint32_t max_len = (uint32_t)read_i32(buf);
    if (max_len < 1 || max_len > 1u << 16)
        return fail(err, errlen, path, "max_token_length %" PRIu32 " is not in [1, 65536]",
                    max_len);
    if (v->n < 3)
        return fail(err, errlen, path, "a vocabulary of %" PRIu32 " tokens has no room for "
                    "unknown, BOS and EOS (ids 0, 1, 2)", v->n);
    v->pieces = calloc(v->n, sizeof *v->pieces);
    v->scores = malloc(sizeof *v->scores * v->n);
    v->types = malloc(sizeof *v->types * v->n);
    if (!v->pieces || !v->scores || !v->types)
        return fail(err, errlen, path, "out of memory for %" PRIu32 " tokens", v->n);
    size_t pos = 4;
    for (uint32_t i = 0; i < v->n; i++)
        if (!parse_token(path, buf, len, &pos, i, max_len, v, err, errlen))
            return false;
    if (pos != len)
        return fail(err, errlen, path, "%zu bytes after the %" PRIu32 " tokens of the checkpoint's "
                    "vocabulary (a tokenizer for another model?)", len - pos, v->n);
    return true;
}

static bool add_tokenizer(struct gguf_writer *w, const char *path, uint32_t vocab, char *err,
                          size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (!read_small_file(path, &buf, &len, err, errlen))
        return false;
    struct vocab v = {.n = vocab};
    bool ok = parse_tokenizer(path, buf, len, &v, err, errlen);
    if (ok) {
        gguf_set_str(w, "tokenizer.ggml.model", "llama");
        gguf_set_str(w, "tokenizer.ggml.pre", "default");
        gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.pieces, v.n);
        gguf_set_arr_f32(w, "tokenizer.ggml.scores", v.scores, v.n);
        gguf_set_arr_i32(w, "tokenizer.ggml.token_type", v.types, v.n);
        gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
        gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
        gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", true);
    }
    vocab_free(&v);
    free(buf);
    return ok;
}

/* ---- the conversion ---- */

static bool map_checkpoint(const char *path, const unsigned char **map, uint64_t *size,
                           char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, path, "%s", strerror(errno));
    struct stat st;
    bool ok = fstat(fd, &st) == 0 ? true : fail(err, errlen, path, "%s", strerror(errno));
    if (ok && !S_ISREG(st.st_mode))
        ok = fail(err, errlen, path, "not a regular file");
    if (ok && st.st_size < LEGACY_HEADER_BYTES)
        ok = fail(err, errlen, path, "%lld bytes is too short for a llama2.c header",
                  (long long)st.st_size);
    if (ok) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            ok = fail(err, errlen, path, "mmap: %s", strerror(errno));
        *map = ok ? m : NULL;
        *size = (uint64_t)st.st_size;
    }
    close(fd);
    return ok;
}

bool convert_from_llama2c(const char *in, const char *out,
                          const struct convert_options *opts, char *err, size_t errlen)
{
    const unsigned char *map = NULL;
    uint64_t size = 0, weights_at = 0;
    struct config c = {0};
    if (!map_checkpoint(in, &map, &size, err, errlen))
        return false;
    struct convert_plan *p = NULL;
    bool ok = parse_header(in, map, size, &c, &weights_at, err, errlen);
    if (ok && !(p = convert_plan_new(opts)))
        ok = fail(err, errlen, in, "out of memory");
    if (ok) {
        set_hparams(convert_plan_writer(p), in, &c);
        ok = add_weights(p, in, map, size, &c, weights_at, err, errlen);
    }
    if (ok && opts->tokenizer)
        ok = add_tokenizer(convert_plan_writer(p), opts->tokenizer, (uint32_t)c.vocab, err,
                           errlen);
    if (ok)
        ok = convert_plan_write(p, out, err, errlen);
    convert_plan_free(p);
    munmap((void *)map, size);
    return ok;
}
