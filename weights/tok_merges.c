/* tokenizer.ggml.merges ("left right" strings, best first) into a hash map
 * (left id, right id) -> (rank, result id) for byte-level BPE. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define KEY_MERGES "tokenizer.ggml.merges"

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

static size_t slot_of(const struct pairmap *m, int32_t left, int32_t right)
{
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    k ^= k >> 33; /* murmur3's finaliser */
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (size_t)k & m->mask;
}

const struct merge *merges_find(const struct tokenizer *t, int32_t left, int32_t right)
{
    const struct pairmap *m = &t->merges;
    for (size_t i = slot_of(m, left, right);; i = (i + 1) & m->mask) {
        const struct merge *e = &m->slot[i];
        if (e->left < 0)
            return NULL;
        if (e->left == left && e->right == right)
            return e;
    }
}

bool merges_load(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    enum gguf_value_type et;
    uint64_t n;
    if (gguf_kv_type(f, KEY_MERGES) < 0)
        return fail(err, errlen, "%s missing (the gpt2 tokenizer merges by rank)", KEY_MERGES);
    if (!gguf_get_arr(f, KEY_MERGES, &et, &n) || et != GGUF_STRING)
        return fail(err, errlen, "%s is not an array of strings", KEY_MERGES);
    if (n > (1u << 26))
        return fail(err, errlen, "%s has %llu entries (too many)", KEY_MERGES, (unsigned long long)n);
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    t->merges.slot = malloc(cap * sizeof *t->merges.slot);
    if (!t->merges.slot)
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < cap; i++)
        t->merges.slot[i].left = -1;
    t->merges.mask = cap - 1;
    t->n_merges = (int32_t)n;

    uint64_t h = TOK_FNV_INIT;
    for (uint64_t i = 0; i < n; i++) {
        const char *s = gguf_arr_str(f, KEY_MERGES, i);
        /* the separator is the first space after the first byte, so a left
         * token may itself be a space */
        const char *sp = s && s[0] ? strchr(s + 1, ' ') : NULL;
        if (!sp)
            return fail(err, errlen, "%s[%llu] '%s' is not two tokens separated by a space", KEY_MERGES,
                        (unsigned long long)i, s ? s : "");
        size_t ln = (size_t)(sp - s), rn = strlen(sp + 1);
        int32_t left = tok_lookup(t, s, ln), right = tok_lookup(t, sp + 1, rn);
        char *both = malloc(ln + rn + 1);
        if (!both)
            return fail(err, errlen, "out of memory");
        memcpy(both, s, ln);
        memcpy(both + ln, sp + 1, rn + 1);
        int32_t result = tok_lookup(t, both, ln + rn);
        if (left < 0 || right < 0 || result < 0) {
            if (left < 0)
                both[ln] = '\0';
            fail(err, errlen, "%s[%llu] '%s': '%s' is not in the vocabulary", KEY_MERGES,
                 (unsigned long long)i, s, left < 0 || right >= 0 ? both : sp + 1);
            free(both);
            return false;
        }
        free(both);
        /* a pair listed twice keeps its last rank, as Hugging Face's map does */
        size_t k = slot_of(&t->merges, left, right);
        while (t->merges.slot[k].left >= 0 &&
               !(t->merges.slot[k].left == left && t->merges.slot[k].right == right))
            k = (k + 1) & t->merges.mask;
        t->merges.slot[k] = (struct merge){left, right, (int32_t)i, result};
        uint32_t ids[2] = {(uint32_t)left, (uint32_t)right};
        uint8_t b[8];
        for (int j = 0; j < 8; j++)
            b[j] = (uint8_t)(ids[j / 4] >> (8 * (j % 4)));
        h = tok_fnv1a(h, b, 8);
    }
    t->merges_hash = h;
    return true;
}
