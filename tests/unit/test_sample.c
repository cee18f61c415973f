/* Sampling: greedy, temperature, top-k, top-p, and seeded reproducibility. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "engine/sample.h"

static void random_logits(struct rng *g, float *x, int n, float scale)
{
    for (int i = 0; i < n; i++)
        x[i] = (float)(rng_uniform(g) * 2 - 1) * scale;
}

static void test_greedy_is_argmax(void **state)
{
    (void)state;
    float x[7] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, 0.0f, 1.0f};
    struct token_prob d[7];
    struct sampling s = {0.0f, 0, 1.0f};
    assert_int_equal(sampling_dist(&s, x, 7, d), 1);
    assert_int_equal(d[0].id, 1); /* first of the tied maxima */
    assert_true(d[0].p == 1.0f);
}

/* Softmax at temperature T over the full vocabulary, checked in double. */
static void test_temperature_matches_softmax(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 3);
    enum { V = 50 };
    float x[V];
    random_logits(&g, x, V, 4.0f);
    struct token_prob d[V];
    struct sampling s = {0.7f, 0, 1.0f};
    int n = sampling_dist(&s, x, V, d);
    assert_int_equal(n, V);
    double max = x[0], sum = 0;
    for (int i = 1; i < V; i++) max = fmax(max, x[i]);
    for (int i = 0; i < V; i++) sum += exp((x[i] - max) / 0.7);
    for (int i = 0; i < n; i++)
        assert_float_equal(d[i].p, exp((x[d[i].id] - max) / 0.7) / sum, 1e-6);
}

static int count_greater(const float *x, int n, float v)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += x[i] > v;
    return c;
}

static void test_top_k_and_top_p(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 5);
    enum { V = 1000 };
    float x[V];
    struct token_prob d[V];
    for (int trial = 0; trial < 20; trial++) {
        random_logits(&g, x, V, 6.0f);
        struct sampling s = {1.0f, 1 + (int)(rng_next(&g) % 60), 1.0f};
        int n = sampling_dist(&s, x, V, d);
        assert_int_equal(n, s.top_k);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += d[i].p;
            /* exactly the k largest, in descending order */
            assert_true(count_greater(x, V, x[d[i].id]) == i);
            if (i) assert_true(d[i].p <= d[i - 1].p);
        }
        assert_float_equal(sum, 1.0, 1e-5);

        s = (struct sampling){0.8f, 0, 0.5f};
        struct token_prob full[V];
        struct sampling all = {0.8f, 0, 1.0f};
        int nf = sampling_dist(&all, x, V, full);
        n = sampling_dist(&s, x, V, d);
        /* the smallest prefix whose mass reaches 0.5: recompute its mass */
        double mass = 0, mass_before = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < nf; j++)
                if (full[j].id == d[i].id) {
                    mass_before = mass;
                    mass += full[j].p;
                }
        }
        assert_true(mass >= 0.5 - 1e-6);
        assert_true(mass_before < 0.5);
    }
}

static void test_seed_reproducible_and_frequencies(void **state)
{
    (void)state;
    float x[4] = {1.0f, 0.0f, 2.0f, -1.0f};
    struct token_prob d[4];
    struct sampling s = {1.0f, 0, 1.0f};
    int n = sampling_dist(&s, x, 4, d);
    struct rng a, b;
    rng_seed(&a, 99);
    rng_seed(&b, 99);
    enum { N = 200000 };
    int counts[4] = {0};
    for (int i = 0; i < N; i++) {
        int32_t ta = sample_from(d, n, &a), tb = sample_from(d, n, &b);
        assert_int_equal(ta, tb);
        counts[ta]++;
    }
    /* chi-square with 3 degrees of freedom; 16.27 is the 0.1% critical value */
    double chi2 = 0, z = exp(1) + 1 + exp(2) + exp(-1);
    for (int i = 0; i < 4; i++) {
        double e = N * exp(x[i]) / z;
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    assert_true(chi2 < 16.27);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_is_argmax),
        cmocka_unit_test(test_temperature_matches_softmax),
        cmocka_unit_test(test_top_k_and_top_p),
        cmocka_unit_test(test_seed_reproducible_and_frequencies),
    };
    return cmocka_run_group_tests_name("sampling", tests, NULL, NULL);
}
