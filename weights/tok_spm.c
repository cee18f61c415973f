/* The "llama" model: SentencePiece-style BPE over characters.
 *
 * A stretch of text gets the dummy prefix "▁" (when the model adds it) and
 * its spaces become "▁"; each character starts as its token, and adjacent
 * pairs whose concatenation is a normal token merge, highest score first.
 * Ties go to the lower left id, then the lower right id, then the leftmost
 * pair: the rank order of the merges Hugging Face derives from the scores
 * (and sentencepiece agrees on every line of our corpus). A character
 * outside the vocabulary becomes its <0xNN> byte tokens, or <unk> if one of
 * those is missing; so does any byte that is not well-formed UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

struct spm_ctx {
    const struct tokenizer *t;
    const char *s;
};

static bool spm_pair(const void *ctx, const struct sym *l, const struct sym *r, struct bigram *out)
{
    const struct spm_ctx *c = ctx;
    int32_t id = tok_lookup(c->t, c->s + l->off, l->len + r->len);
    if (id < 0 || c->t->types[id] != TOK_NORMAL)
        return false;
    *out = (struct bigram){.key = -(double)c->t->scores[id], .a = l->id, .b = r->id, .result = id};
    return true;
}

/* A symbol that is not a token: its bytes as byte tokens, or one <unk>
 * (consecutive ones fused, as Hugging Face's fuse_unk does). */
static bool byte_fallback(const struct tokenizer *t, const uint8_t *p, size_t n, bool *prev_unk,
                          struct idvec *out)
{
    bool all = true;
    for (size_t i = 0; i < n; i++)
        all = all && t->byte_token[p[i]] >= 0;
    if (all) {
        for (size_t i = 0; i < n; i++)
            if (!idvec_push(out, t->byte_token[p[i]]))
                return false;
        *prev_unk = false;
        return true;
    }
    if (t->unk < 0 || *prev_unk)
        return true;
    *prev_unk = true;
    return idvec_push(out, t->unk);
}

/* Merges and emits one word, buf[off..off+len). */
static bool spm_word(const struct tokenizer *t, const char *buf, size_t off, size_t len, struct sym *syms,
                     struct bigram_heap *heap, bool *prev_unk, struct idvec *out)
{
    size_t ns = 0;
    for (size_t i = off; i < off + len; ns++) {
        size_t k = utf8_char_len((const uint8_t *)buf + i, off + len - i);
        syms[ns] = (struct sym){(int32_t)ns - 1, -1, (uint32_t)i, k ? (uint32_t)k : 1,
                                k ? tok_lookup(t, buf + i, k) : -1};
        if (ns)
            syms[ns - 1].next = (int32_t)ns;
        i += k ? k : 1;
    }
    struct spm_ctx ctx = {t, buf};
    if (!merge_symbols(syms, ns, heap, spm_pair, &ctx))
        return false;
    for (int32_t i = 0; ns && i >= 0; i = syms[i].next) {
        if (syms[i].id >= 0) {
            if (!idvec_push(out, syms[i].id))
                return false;
            *prev_unk = false;
        } else if (!byte_fallback(t, (const uint8_t *)buf + syms[i].off, syms[i].len, prev_unk, out))
            return false;
    }
    return true;
}

static bool is_marker(const char *p)
{
    return (uint8_t)p[0] == 0xE2 && (uint8_t)p[1] == 0x96 && (uint8_t)p[2] == 0x81;
}

bool spm_encode(const struct tokenizer *t, const char *s, size_t n, struct idvec *out)
{
    if (n == 0)
        return true;
    /* normalise: "▁" prefix, spaces to "▁" */
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++)
        spaces += s[i] == ' ';
    size_t cap = n + 2 * spaces + 3;
    char *buf = malloc(cap);
    struct sym *syms = malloc(cap * sizeof *syms);
    struct bigram_heap heap = {0};
    bool ok = buf && syms;
    size_t m = 0;
    if (ok && t->add_space_prefix) {
        memcpy(buf, "\xE2\x96\x81", 3);
        m = 3;
    }
    for (size_t i = 0; ok && i < n; i++) {
        if (s[i] == ' ') {
            memcpy(buf + m, "\xE2\x96\x81", 3);
            m += 3;
        } else
            buf[m++] = s[i];
    }
    /* Words end before a "▁" that follows something else, when no token
     * spans such a place (true of Llama-2's vocabulary): no merge crosses
     * them, so merging word by word gives the same result, in small heaps. */
    bool prev_unk = false;
    size_t w = 0;
    for (size_t i = 1; ok && i <= m; i++) {
        bool end = i == m || (t->spm_words && i + 3 <= m && is_marker(buf + i) &&
                              !(i >= 3 && is_marker(buf + i - 3)));
        if (end) {
            ok = spm_word(t, buf, w, i - w, syms, &heap, &prev_unk, out);
            w = i;
        }
    }
    free(buf);
    free(syms);
    free(heap.v);
    return ok;
}
