/* Token sampling: greedy, temperature, top-k, top-p, seeded.
 *
 * Sampling is split in two so speculative decoding can use the same rule on
 * both sides (DESIGN.md §3.3): sampling_dist() turns logits into the exact
 * truncated distribution a token is drawn from, as a sparse list; sample_from()
 * draws from such a list. The same seed and logits give the same token. */
#ifndef TANDEM_ENGINE_SAMPLE_H
#define TANDEM_ENGINE_SAMPLE_H

#include <stdint.h>

struct sampling {
    float temp;   /* <= 0: greedy */
    int top_k;    /* <= 0: no limit */
    float top_p;  /* >= 1: no limit */
};

struct token_prob {
    int32_t id;
    float p;
};

/* A small, fast, seedable generator (splitmix64 seeding, xoshiro256**). */
struct rng {
    uint64_t s[4];
};
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1), 53 bits. */
double rng_uniform(struct rng *r);

/* Writes the distribution a token is drawn from into out (room for vocab
 * entries) and returns its length. When top-k or top-p truncates, entries are
 * sorted by probability descending, ties by id ascending; otherwise they are
 * the whole vocabulary in id order. Probabilities sum to 1. Greedy gives the argmax alone, p = 1.
 * Order of truncation: temperature, then top-k, then top-p (smallest prefix
 * whose mass reaches top_p). */
int sampling_dist(const struct sampling *s, const float *logits, int vocab,
                  struct token_prob *out);

/* Draws one id from a distribution made by sampling_dist. */
int32_t sample_from(const struct token_prob *dist, int n, struct rng *r);

#endif
