#include "verify.h"

#include <stdlib.h>
#include <string.h>

bool verifier_init(struct verifier *v, int vocab)
{
    v->vocab = vocab;
    v->dist = malloc(sizeof *v->dist * vocab);
    v->dense = malloc(sizeof *v->dense * vocab);
    return v->dist && v->dense;
}

void verifier_free(struct verifier *v)
{
    free(v->dist);
    free(v->dense);
    v->dist = NULL;
    v->dense = NULL;
}

/* q's probability of token tok (0 when q does not list it). */
static double dist_prob(const Tandem__TokenDist *q, int32_t tok)
{
    for (size_t j = 0; j < q->n_ids; j++)
        if (q->ids[j] == tok)
            return q->probs[j];
    return 0;
}

/* A sample of norm(max(0, p − q)), p given densely in v->dense (overwritten);
 * -1 when nothing is left (p and q differ only by rounding). */
static int32_t sample_residual(struct verifier *v, const Tandem__TokenDist *q, struct rng *rng)
{
    for (size_t j = 0; j < q->n_ids; j++) {
        float r = v->dense[q->ids[j]] - q->probs[j];
        v->dense[q->ids[j]] = r > 0 ? r : 0;
    }
    int m = 0;
    double sum = 0;
    for (int t = 0; t < v->vocab; t++)
        if (v->dense[t] > 0) {
            v->dist[m++] = (struct token_prob){t, v->dense[t]};
            sum += v->dense[t];
        }
    if (m == 0)
        return -1;
    for (int j = 0; j < m; j++)
        v->dist[j].p = (float)(v->dist[j].p / sum);
    return sample_from(v->dist, m, rng);
}

struct verdict verify_sampled(struct verifier *v, const struct sampling *s, const float *logits,
                              const Tandem__Draft *d, struct rng *rng)
{
    int gamma = (int)d->n_tokens;
    for (int i = 0; i < gamma; i++) {
        const float *row = logits + (long)i * v->vocab;
        int n = sampling_dist(s, row, v->vocab, v->dist);
        memset(v->dense, 0, sizeof *v->dense * v->vocab);
        for (int j = 0; j < n; j++)
            v->dense[v->dist[j].id] = v->dist[j].p;
        int32_t tok = d->tokens[i];
        if (rng_uniform(rng) * dist_prob(d->dists[i], tok) < v->dense[tok])
            continue; /* kept: u < p/q */
        int32_t next = sample_residual(v, d->dists[i], rng);
        if (next >= 0)
            return (struct verdict){i, next};
        n = sampling_dist(s, row, v->vocab, v->dist); /* p == q: p is the residual's limit */
        return (struct verdict){i, sample_from(v->dist, n, rng)};
    }
    int n = sampling_dist(s, logits + (long)gamma * v->vocab, v->vocab, v->dist);
    return (struct verdict){gamma, sample_from(v->dist, n, rng)};
}
