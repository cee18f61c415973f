/* Stochastic verification of one round (DESIGN.md §3.3): standard rejection
 * sampling against the exact distributions the draft sampled from.
 *
 * Draft token d_i ~ q_i is kept with probability min(1, p_i(d_i)/q_i(d_i));
 * the first one refused is replaced by a sample of norm(max(0, p_i − q_i))
 * and nothing after it is looked at; when all are kept the bonus token comes
 * from p_γ. p_i is the target's distribution for row i under the session's
 * sampling rule (sampling_dist), so the committed tokens have exactly the
 * target's distribution. The cloud runs it on the last layer's logits for
 * FINAL and on an exit's logits, with a copy of the same generator, for a
 * provisional EARLY. */
#ifndef TANDEM_CLOUD_VERIFY_H
#define TANDEM_CLOUD_VERIFY_H

#include <stdbool.h>

#include "../engine/sample.h"
#include "../engine/verdict.h"
#include "../proto/codec.h"

/* Scratch for verifying over a vocabulary; one per thread. */
struct verifier {
    int vocab;
    struct token_prob *dist; /* (vocab) */
    float *dense;            /* (vocab) */
};

bool verifier_init(struct verifier *v, int vocab);
void verifier_free(struct verifier *v);

/* The verdict on draft d (tokens and their dists, validated by proto_decode)
 * given logits (γ+1, vocab) of the rows [last committed, d_1 .. d_γ], drawing
 * its uniforms from rng. */
struct verdict verify_sampled(struct verifier *v, const struct sampling *s, const float *logits,
                              const Tandem__Draft *d, struct rng *rng);

#endif
