/* Closed-form adapter fitting: streamed statistics of data made by a known
 * linear map give that map back, full or low rank; λ shrinks towards no
 * adapter; too little data without regularisation is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/exit_fit.h"
#include "engine/sample.h"

#define D 16
#define N 400

static void fill_random(float *x, int n, float scale, struct rng *g)
{
    for (int i = 0; i < n; i++)
        x[i] = scale * (float)(2.0 * rng_uniform(g) - 1.0);
}

/* y = x + A x for n random rows, added to s in uneven chunks. */
static void add_mapped_rows(struct ridge_stats *s, const float *a, int n, struct rng *g)
{
    float *x = malloc(sizeof(float) * n * D), *y = malloc(sizeof(float) * n * D);
    fill_random(x, n * D, 1.0f, g);
    for (int r = 0; r < n; r++)
        for (int o = 0; o < D; o++) {
            double acc = x[r * D + o];
            for (int i = 0; i < D; i++)
                acc += (double)a[o * D + i] * x[r * D + i];
            y[r * D + o] = (float)acc;
        }
    for (int r0 = 0; r0 < n; r0 += 37) {
        int k = n - r0 < 37 ? n - r0 : 37;
        assert_true(ridge_stats_add(s, x + r0 * D, y + r0 * D, k));
    }
    assert_int_equal(s->rows, n);
    free(x);
    free(y);
}

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void test_recovers_full_map(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 1);
    float a_true[D * D], a[D * D];
    fill_random(a_true, D * D, 0.5f, &g);
    struct ridge_stats s;
    assert_true(ridge_stats_init(&s, D));
    add_mapped_rows(&s, a_true, N, &g);
    char err[256];
    assert_true(ridge_fit(&s, 1e-9 * ridge_scale(&s), a, err, sizeof err));
    assert_true(max_abs_diff(a, a_true, D * D) < 1e-4);

    /* Strong regularisation pulls the adapter towards none. */
    assert_true(ridge_fit(&s, 1e6 * ridge_scale(&s), a, err, sizeof err));
    for (int i = 0; i < D * D; i++)
        assert_true(fabsf(a[i]) < 1e-4f);
    ridge_stats_free(&s);
}

static void test_recovers_low_rank_map(void **state)
{
    (void)state;
    enum { R = 3 };
    struct rng g;
    rng_seed(&g, 2);
    float u_true[D * R], v_true[R * D], a_true[D * D], u[D * R], v[R * D], a[D * D];
    fill_random(u_true, D * R, 0.5f, &g);
    fill_random(v_true, R * D, 0.5f, &g);
    for (int o = 0; o < D; o++)
        for (int i = 0; i < D; i++) {
            double acc = 0;
            for (int k = 0; k < R; k++)
                acc += (double)u_true[o * R + k] * v_true[k * D + i];
            a_true[o * D + i] = (float)acc;
        }
    struct ridge_stats s;
    assert_true(ridge_stats_init(&s, D));
    add_mapped_rows(&s, a_true, N, &g);
    char err[256];
    assert_true(ridge_fit_low_rank(&s, 1e-9 * ridge_scale(&s), R, u, v, err, sizeof err));
    for (int o = 0; o < D; o++)
        for (int i = 0; i < D; i++) {
            double acc = 0;
            for (int k = 0; k < R; k++)
                acc += (double)u[o * R + k] * v[k * D + i];
            a[o * D + i] = (float)acc;
        }
    assert_true(max_abs_diff(a, a_true, D * D) < 1e-4);

    /* Rank 1 cannot hold a rank-3 map. */
    assert_true(ridge_fit_low_rank(&s, 1e-9 * ridge_scale(&s), 1, u, v, err, sizeof err));
    for (int o = 0; o < D; o++)
        for (int i = 0; i < D; i++)
            a[o * D + i] = u[o] * v[i];
    assert_true(max_abs_diff(a, a_true, D * D) > 1e-2);
    ridge_stats_free(&s);
}

static void test_singular_refused(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 3);
    float a_true[D * D] = {0}, a[D * D];
    struct ridge_stats s;
    assert_true(ridge_stats_init(&s, D));
    add_mapped_rows(&s, a_true, D / 2, &g); /* fewer rows than dimensions */
    char err[256];
    assert_false(ridge_fit(&s, 0.0, a, err, sizeof err));
    assert_non_null(strstr(err, "singular"));
    assert_true(ridge_fit(&s, 1e-3 * ridge_scale(&s), a, err, sizeof err));
    ridge_stats_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_full_map),
        cmocka_unit_test(test_recovers_low_rank_map),
        cmocka_unit_test(test_singular_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
