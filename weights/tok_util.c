/* Small pieces the tokenizer files share: UTF-8 checks, growable arrays,
 * FNV-1a, and the binary heap of candidate merges. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

size_t utf8_char_len(const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* <= U+10FFFF */
    } else
        return 0;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return need;
}

bool utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char_len(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

bool tok_reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return false;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

bool idvec_push(struct idvec *iv, int32_t id)
{
    if (!tok_reserve((void **)&iv->v, &iv->cap, iv->n + 1, sizeof *iv->v))
        return false;
    iv->v[iv->n++] = id;
    return true;
}

uint64_t tok_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- the merge loop and its heap ---- */

static bool bigram_less(const struct bigram *x, const struct bigram *y)
{
    if (x->key != y->key)
        return x->key < y->key;
    if (x->a != y->a)
        return x->a < y->a;
    if (x->b != y->b)
        return x->b < y->b;
    return x->left < y->left;
}

static bool heap_push(struct bigram_heap *h, const struct bigram *b)
{
    if (!tok_reserve((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v))
        return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_less(b, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = *b;
    return true;
}

static bool heap_pop(struct bigram_heap *h, struct bigram *out)
{
    if (h->n == 0)
        return false;
    *out = h->v[0];
    struct bigram last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && bigram_less(&h->v[c + 1], &h->v[c]))
            c++;
        if (!bigram_less(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n > 0)
        h->v[i] = last;
    return true;
}

static bool try_pair(struct sym *syms, int32_t l, int32_t r, struct bigram_heap *heap, pair_fn pair,
                     const void *ctx)
{
    if (l < 0 || r < 0 || syms[l].id < 0 || syms[r].id < 0)
        return true;
    struct bigram b;
    if (!pair(ctx, &syms[l], &syms[r], &b))
        return true;
    b.left = l;
    b.right = r;
    b.len = syms[l].len + syms[r].len;
    return heap_push(heap, &b);
}

bool merge_symbols(struct sym *syms, size_t n, struct bigram_heap *heap, pair_fn pair, const void *ctx)
{
    heap->n = 0;
    for (size_t i = 1; i < n; i++)
        if (!try_pair(syms, (int32_t)i - 1, (int32_t)i, heap, pair, ctx))
            return false;
    struct bigram b;
    while (heap_pop(heap, &b)) {
        struct sym *l = &syms[b.left], *r = &syms[b.right];
        /* stale: one side was merged away or grew since this entry was made */
        if (l->len == 0 || r->len == 0 || l->next != b.right || l->len + r->len != b.len)
            continue;
        l->id = b.result;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        r->len = 0;
        if (!try_pair(syms, l->prev, b.left, heap, pair, ctx) ||
            !try_pair(syms, b.left, l->next, heap, pair, ctx))
            return false;
    }
    return true;
}
