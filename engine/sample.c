#include "sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../kernels/cpu/ops.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(struct rng *r)
{
    return (rng_next(r) >> 11) * 0x1.0p-53;
}

/* Descending by logit, ascending by id on ties. */
static int by_logit_desc(const void *a, const void *b)
{
    const struct token_prob *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Keeps the k largest of out[0..n) (by logit stored in .p) at the front,
 * unsorted, with a min-heap: O(n log k) instead of sorting the vocabulary. */
static void select_top_k(struct token_prob *out, int n, int k)
{
    /* heap over out[0..k): root is the smallest kept (by by_logit_desc order) */
    for (int i = k / 2 - 1; i >= 0; i--) {
        for (int p = i;;) {
            int c = 2 * p + 1;
            if (c >= k) break;
            if (c + 1 < k && by_logit_desc(&out[c + 1], &out[c]) > 0) c++;
            if (by_logit_desc(&out[c], &out[p]) <= 0) break;
            struct token_prob t = out[p]; out[p] = out[c]; out[c] = t; p = c;
        }
    }
    for (int i = k; i < n; i++) {
        if (by_logit_desc(&out[i], &out[0]) >= 0)
            continue; /* not better than the smallest kept */
        out[0] = out[i];
        for (int p = 0;;) {
            int c = 2 * p + 1;
            if (c >= k) break;
            if (c + 1 < k && by_logit_desc(&out[c + 1], &out[c]) > 0) c++;
            if (by_logit_desc(&out[c], &out[p]) <= 0) break;
            struct token_prob t = out[p]; out[p] = out[c]; out[c] = t; p = c;
        }
    }
}

int sampling_dist(const struct sampling *s, const float *logits, int vocab,
                  struct token_prob *out)
{
    if (s->temp <= 0.0f) {
        out[0] = (struct token_prob){argmax(logits, vocab), 1.0f};
        return 1;
    }
    for (int i = 0; i < vocab; i++)
        out[i] = (struct token_prob){i, logits[i]};
    int n = vocab;
    if (s->top_k > 0 && s->top_k < vocab) {
        select_top_k(out, vocab, s->top_k);
        n = s->top_k;
    }
    bool need_order = n < vocab || s->top_p < 1.0f;
    if (need_order)
        qsort(out, n, sizeof *out, by_logit_desc);

    /* Softmax at temperature over the kept tokens, in double for a stable sum. */
    float max = out[0].p;
    if (!need_order)
        for (int i = 1; i < n; i++)
            if (out[i].p > max) max = out[i].p;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double e = exp(((double)out[i].p - max) / s->temp);
        out[i].p = (float)e;
        sum += e;
    }
    if (s->top_p < 1.0f) {
        double mass = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            mass += out[i].p / sum;
            if (mass >= s->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += out[i].p;
    }
    for (int i = 0; i < n; i++)
        out[i].p = (float)(out[i].p / sum);
    return n;
}

int32_t sample_from(const struct token_prob *dist, int n, struct rng *r)
{
    double u = rng_uniform(r), acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += dist[i].p;
        if (u < acc)
            return dist[i].id;
    }
    return dist[n - 1].id; /* rounding left u above the sum */
}
