/* The "gpt2" model: byte-level BPE. Text is split by the pre-tokenizer,
 * each piece's bytes start as their byte tokens, and adjacent pairs merge by
 * rank (lowest first, leftmost among equals), as Hugging Face's BPE does. */
#include <stdlib.h>

#include "tok_internal.h"

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
 * the other 68 take U+0100.. in byte order. */
uint32_t bpe_byte_char(uint8_t b)
{
    if (b <= 32)
        return 256u + b;
    if (b >= 127 && b <= 160)
        return b + 162u; /* 256 + 33 + (b - 127) */
    if (b == 173)
        return 323;
    return b;
}

size_t bpe_byte_utf8(uint8_t b, char out[2])
{
    uint32_t cp = bpe_byte_char(b); /* all below U+0800 */
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int bpe_char_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 255 && cp != 173))
        return (int)cp;
    if (cp >= 256 && cp <= 288)
        return (int)(cp - 256);
    if (cp >= 289 && cp <= 322)
        return (int)(cp - 162);
    if (cp == 323)
        return 173;
    return -1;
}

struct bpe_scratch {
    struct pretok_run *run;
    struct spanvec pieces;
    struct sym *syms;
    size_t syms_cap;
    struct bigram_heap heap;
    char *mapped; /* a piece in byte characters, for ignore_merges */
    size_t mapped_cap;
};

struct bpe_scratch *bpe_scratch_new(const struct tokenizer *t)
{
    struct bpe_scratch *s = calloc(1, sizeof *s);
    if (!s || !(s->run = pretok_run_new(t->pre))) {
        free(s);
        return NULL;
    }
    return s;
}

void bpe_scratch_free(struct bpe_scratch *s)
{
    if (!s)
        return;
    pretok_run_free(s->run);
    free(s->pieces.v);
    free(s->syms);
    free(s->heap.v);
    free(s->mapped);
    free(s);
}

static bool bpe_pair(const void *ctx, const struct sym *l, const struct sym *r, struct bigram *out)
{
    const struct merge *m = merges_find(ctx, l->id, r->id);
    if (!m)
        return false;
    *out = (struct bigram){.key = m->rank, .result = m->result};
    return true;
}

/* One pre-tokenized piece. Bytes without a byte token are dropped, as
 * Hugging Face drops characters missing from a vocabulary without <unk>. */
static bool bpe_piece(const struct tokenizer *t, struct bpe_scratch *s, const uint8_t *p, size_t n,
                      struct idvec *out)
{
    if (n == 1)
        return t->byte_token[p[0]] < 0 || idvec_push(out, t->byte_token[p[0]]);
    if (t->ignore_merges) {
        if (!tok_reserve((void **)&s->mapped, &s->mapped_cap, 2 * n, 1))
            return false;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += bpe_byte_utf8(p[i], s->mapped + m);
        int32_t id = tok_lookup(t, s->mapped, m);
        if (id >= 0)
            return idvec_push(out, id);
    }
    if (!tok_reserve((void **)&s->syms, &s->syms_cap, n, sizeof *s->syms))
        return false;
    for (size_t i = 0; i < n; i++)
        s->syms[i] = (struct sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1,
                                  t->byte_token[p[i]]};
    if (!merge_symbols(s->syms, n, &s->heap, bpe_pair, t))
        return false;
    for (int32_t i = 0; i >= 0; i = s->syms[i].next)
        if (s->syms[i].id >= 0 && !idvec_push(out, s->syms[i].id))
            return false;
    return true;
}

bool bpe_encode(const struct tokenizer *t, struct bpe_scratch *s, const char *text, size_t n,
                struct idvec *out)
{
    const uint8_t *u = (const uint8_t *)text;
    s->pieces.n = 0;
    /* runs of well-formed UTF-8 go through the regexes; a byte that is not
     * part of a character is a piece of its own */
    for (size_t i = 0; i < n;) {
        size_t j = i, k;
        while (j < n && (k = utf8_char_len(u + j, n - j)))
            j += k;
        size_t first = s->pieces.n;
        if (j > i && !pretok_split(s->run, text + i, j - i, &s->pieces))
            return false;
        for (size_t p = first; p < s->pieces.n; p++)
            s->pieces.v[p].off += i;
        if (j < n) {
            if (!tok_reserve((void **)&s->pieces.v, &s->pieces.cap, s->pieces.n + 1, sizeof *s->pieces.v))
                return false;
            s->pieces.v[s->pieces.n++] = (struct span){j, 1};
            j++;
        }
        i = j;
    }
    for (size_t p = 0; p < s->pieces.n; p++)
        if (!bpe_piece(t, s, u + s->pieces.v[p].off, s->pieces.v[p].len, out))
            return false;
    return true;
}
