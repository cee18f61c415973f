/* Streaming decode: each token's bytes (precomputed at load: "▁" as space,
 * <0xNN> as its byte, byte-level characters as their bytes) pass through a
 * UTF-8 assembler that holds back an incomplete character and turns what
 * cannot be one into U+FFFD. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

struct sink {
    char *p;
    size_t cap, n;
};

static void put(struct sink *o, const void *b, size_t k)
{
    if (o->n + k <= o->cap)
        memcpy(o->p + o->n, b, k);
    o->n += k;
}

/* One byte into the assembler (the rules of utf8_char_len, a byte at a time). */
static void feed(struct detok *d, struct sink *o, uint8_t b)
{
    if (d->npend) {
        uint8_t lo = d->npend == 1 ? d->lo : 0x80, hi = d->npend == 1 ? d->hi : 0xBF;
        if (b >= lo && b <= hi) {
            d->pend[d->npend++] = b;
            if (d->npend == d->need) {
                put(o, d->pend, d->need);
                d->npend = 0;
            }
            return;
        }
        put(o, REPLACEMENT, 3); /* the maximal invalid subpart so far */
        d->npend = 0;
    }
    if (b < 0x80) {
        put(o, &b, 1);
        return;
    }
    d->lo = 0x80;
    d->hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        d->need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        d->need = 3;
        d->lo = b == 0xE0 ? 0xA0 : 0x80;
        d->hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
        d->need = 4;
        d->lo = b == 0xF0 ? 0x90 : 0x80;
        d->hi = b == 0xF4 ? 0x8F : 0xBF;
    } else {
        put(o, REPLACEMENT, 3);
        return;
    }
    d->pend[0] = b;
    d->npend = 1;
}

void detok_init(struct detok *d, const struct tokenizer *t)
{
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->strip_space = t->kind == TOKENIZER_SPM && t->add_space_prefix;
}

size_t detok_max_out(const struct tokenizer *t)
{
    /* each input byte, held-back ones included, yields at most 3 bytes */
    return 3 * (size_t)t->max_dec + 12;
}

size_t detok_push(struct detok *d, int32_t id, char *out, size_t cap)
{
    const struct tokenizer *t = d->tok;
    if (id < 0 || id >= t->n_vocab || (!d->show_special && tokenizer_is_control(t, id)))
        return 0;
    struct detok next = *d;
    struct sink o = {out, cap, 0};
    const uint8_t *b = (const uint8_t *)t->dec + t->dec_off[id];
    for (uint32_t i = 0; i < t->dec_len[id]; i++) {
        if (!next.started) {
            next.started = true;
            if (next.strip_space && b[i] == ' ')
                continue;
        }
        feed(&next, &o, b[i]);
    }
    if (o.n <= cap)
        *d = next;
    return o.n;
}

size_t detok_flush(struct detok *d, char *out, size_t cap)
{
    if (!d->npend)
        return 0;
    if (cap < 3)
        return 3;
    memcpy(out, REPLACEMENT, 3);
    d->npend = 0;
    return 3;
}

char *tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool show_special,
                       size_t *len_out)
{
    struct detok d;
    detok_init(&d, t);
    d.show_special = show_special;
    size_t step = detok_max_out(t), cap = 0, len = 0;
    char *s = NULL;
    for (size_t i = 0; i <= n; i++) {
        if (!tok_reserve((void **)&s, &cap, len + step + 1, 1)) {
            free(s);
            return NULL;
        }
        len += i < n ? detok_push(&d, ids[i], s + len, cap - len) : detok_flush(&d, s + len, cap - len);
    }
    s[len] = '\0';
    if (len_out)
        *len_out = len;
    return s;
}
