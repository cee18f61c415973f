/* tokenizer.model (SentencePiece's ModelProto) -> struct hf_vocab, as
 * llama.cpp's converter reads it through the sentencepiece library: every
 * piece with its score and type, and normalizer_spec.add_dummy_prefix.
 *
 * Only the few fields used are decoded, straight from the protobuf wire
 * format (every length checked against what is left; other fields skipped):
 *   ModelProto      1: pieces (repeated SentencePiece)  2: trainer_spec
 *                   3: normalizer_spec
 *   SentencePiece   1: piece (string)  2: score (float)  3: type (enum)
 *   TrainerSpec     3: model_type (1 unigram, 2 BPE, ...)
 *   NormalizerSpec  3: add_dummy_prefix (bool, default true)
 * Piece types are numbered as llama.cpp's token types (NORMAL 1 ... BYTE 6).
 * Only BPE models are accepted: the engine merges by score, which is not
 * how a unigram model segments. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_vocab.h"
#include "tok_internal.h"

#define MAX_MODEL_BYTES (64u << 20)
#define SPM_BPE 2
/* The score llama.cpp gives the ids past the tokenizer's own. */
#define PAD_SCORE -10000.0f

enum wire { VARINT = 0, FIXED64 = 1, BYTES = 2, FIXED32 = 5 };

struct pb {
    const unsigned char *p, *end;
};

struct pb_field {
    uint32_t number;
    enum wire wire;
    uint64_t value;           /* VARINT, FIXED32, FIXED64 */
    struct pb bytes;          /* BYTES */
};

static bool read_varint(struct pb *b, uint64_t *out)
{
    *out = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        unsigned char c = *b->p++;
        *out |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

/* The next field; false at the end or on malformed input (*bad set). */
static bool next_field(struct pb *b, struct pb_field *f, bool *bad)
{
    uint64_t key, len;
    *bad = false;
    if (b->p == b->end)
        return false;
    *bad = true;
    if (!read_varint(b, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
        return false;
    f->number = (uint32_t)(key >> 3);
    f->wire = (enum wire)(key & 7);
    switch (f->wire) {
    case VARINT:
        if (!read_varint(b, &f->value))
            return false;
        break;
    case FIXED64:
    case FIXED32: {
        size_t n = f->wire == FIXED64 ? 8 : 4;
        if ((size_t)(b->end - b->p) < n)
            return false;
        f->value = 0;
        memcpy(&f->value, b->p, n); /* little-endian host, as the format */
        b->p += n;
        break;
    }
    case BYTES:
        if (!read_varint(b, &len) || len > (uint64_t)(b->end - b->p))
            return false;
        f->bytes = (struct pb){b->p, b->p + len};
        b->p += len;
        break;
    default: /* groups (3, 4) are obsolete and not in ModelProto */
        return false;
    }
    *bad = false;
    return true;
}

struct reader {
    const char *path;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static bool fail(const struct reader *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s", r->path, msg);
    return false;
}

static bool read_piece(const struct reader *r, struct pb b, int32_t id, struct hf_vocab *v)
{
    struct pb_field f;
    bool bad, have_text = false;
    int32_t type = TOK_NORMAL;
    float score = 0;
    const unsigned char *text = NULL;
    size_t len = 0;
    while (next_field(&b, &f, &bad)) {
        if (f.number == 1 && f.wire == BYTES) {
            text = f.bytes.p;
            len = (size_t)(f.bytes.end - f.bytes.p);
            have_text = true;
        } else if (f.number == 2 && f.wire == FIXED32) {
            uint32_t bits = (uint32_t)f.value;
            memcpy(&score, &bits, 4);
        } else if (f.number == 3 && f.wire == VARINT) {
            if (f.value < TOK_NORMAL || f.value > TOK_BYTE)
                return fail(r, "piece %d has type %llu (1..6)", id, (unsigned long long)f.value);
            type = (int32_t)f.value;
        }
    }
    if (bad)
        return fail(r, "piece %d is not a valid SentencePiece message", id);
    if (!have_text || memchr(text, 0, len) || !utf8_valid(text, len))
        return fail(r, "piece %d has no text, or text that is not UTF-8", id);
    if (!hf_vocab_set(v, id, (const char *)text, len, type))
        return fail(r, "out of memory");
    v->scores[id] = score;
    if (type == TOK_UNKNOWN && v->unk < 0)
        v->unk = id;
    return true;
}

static bool check_trainer(const struct reader *r, struct pb b)
{
    struct pb_field f;
    bool bad;
    uint64_t type = 1; /* the proto's default: unigram */
    while (next_field(&b, &f, &bad))
        if (f.number == 3 && f.wire == VARINT)
            type = f.value;
    if (bad)
        return fail(r, "trainer_spec is not a valid message");
    if (type != SPM_BPE)
        return fail(r, "SentencePiece model type %llu is not supported (2, BPE)", (unsigned long long)type);
    return true;
}

static bool read_normalizer(const struct reader *r, struct pb b, struct hf_vocab *v)
{
    struct pb_field f;
    bool bad;
    while (next_field(&b, &f, &bad))
        if (f.number == 3 && f.wire == VARINT)
            v->add_space_prefix = f.value != 0;
    return !bad || fail(r, "normalizer_spec is not a valid message");
}

static bool parse(const struct reader *r, struct pb b, struct hf_vocab *v)
{
    struct pb_field f;
    bool bad, trainer = false;
    int32_t n = 0;
    v->spm = true;
    v->add_space_prefix = true;
    while (next_field(&b, &f, &bad)) {
        if (f.wire != BYTES)
            continue;
        if (f.number == 1) {
            if (n == v->n)
                return fail(r, "more pieces than the model's vocab_size %d", v->n);
            if (!read_piece(r, f.bytes, n++, v))
                return false;
        } else if (f.number == 2) {
            if (!check_trainer(r, f.bytes))
                return false;
            trainer = true;
        } else if (f.number == 3 && !read_normalizer(r, f.bytes, v)) {
            return false;
        }
    }
    if (bad)
        return fail(r, "not a SentencePiece model (bad protobuf after piece %d)", n);
    if (n == 0 || !trainer)
        return fail(r, "not a SentencePiece model (%s)", n == 0 ? "no pieces" : "no trainer_spec");
    return true;
}

bool hf_vocab_from_spm_model(const char *path, int32_t n_vocab, struct hf_vocab *v, char *err, size_t errlen)
{
    struct reader r = {path, err, errlen};
    if (!hf_vocab_init(v, n_vocab) || !(v->scores = malloc((size_t)n_vocab * sizeof *v->scores)))
        return fail(&r, "out of memory");
    for (int32_t i = 0; i < n_vocab; i++)
        v->scores[i] = PAD_SCORE;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fail(&r, "%s", strerror(errno));
    unsigned char *buf = malloc(MAX_MODEL_BYTES + 1);
    size_t len = buf ? fread(buf, 1, MAX_MODEL_BYTES + 1, fp) : 0;
    bool ok = buf && !ferror(fp) && len <= MAX_MODEL_BYTES;
    fclose(fp);
    ok = ok ? parse(&r, (struct pb){buf, buf + len}, v)
            : fail(&r, "unreadable or larger than %u bytes", MAX_MODEL_BYTES);
    free(buf);
    return ok;
}
