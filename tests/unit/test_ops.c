/* Row ops of the forward pass against plain double-precision references. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sample.h"
#include "kernels/cpu/ops.h"

static void fill(struct rng *g, float *x, long n)
{
    for (long i = 0; i < n; i++)
        x[i] = (float)(rng_uniform(g) * 2 - 1);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 1);
    enum { N = 3, D = 257 };
    float x[N * D], w[D], out[N * D];
    fill(&g, x, N * D);
    fill(&g, w, D);
    rmsnorm_rows(out, x, w, N, D, 1e-5f);
    for (int r = 0; r < N; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)x[r * D + i] * x[r * D + i];
        double s = 1 / sqrt(ss / D + 1e-5);
        for (int i = 0; i < D; i++)
            assert_float_equal(out[r * D + i], x[r * D + i] * s * w[i], 1e-5);
    }
}

/* RoPE as rotation of complex pairs; both pairings. */
static void test_rope(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 2);
    enum { N = 4, H = 3, HD = 16, POS0 = 37 };
    float inv_freq[HD / 2];
    for (int i = 0; i < HD / 2; i++) inv_freq[i] = (float)pow(10000.0, -2.0 * i / HD);
    for (int neox = 0; neox < 2; neox++) {
        float x[N * H * HD], y[N * H * HD];
        fill(&g, x, N * H * HD);
        memcpy(y, x, sizeof x);
        rope_rows(y, N, H, HD, POS0, inv_freq, neox);
        for (int r = 0; r < N; r++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < HD / 2; i++) {
                    const float *v = x + (r * H + h) * HD;
                    const float *o = y + (r * H + h) * HD;
                    int a = neox ? i : 2 * i, b = neox ? i + HD / 2 : 2 * i + 1;
                    double t = (POS0 + r) * (double)inv_freq[i];
                    assert_float_equal(o[a], v[a] * cos(t) - v[b] * sin(t), 1e-4);
                    assert_float_equal(o[b], v[a] * sin(t) + v[b] * cos(t), 1e-4);
                }
    }
}

static void test_swiglu(void **state)
{
    (void)state;
    float g[5] = {-3, -0.5f, 0, 0.5f, 4}, u[5] = {1, 2, 3, -1, 0.5f}, o[5];
    swiglu(o, g, u, 5);
    for (int i = 0; i < 5; i++)
        assert_float_equal(o[i], g[i] / (1 + exp(-g[i])) * u[i], 1e-6);
}

/* Naive causal GQA attention in double. */
static void attention_ref(double *out, const float *q, const float *k, const float *v, int n,
                          int pos0, int nh, int nkv, int hd)
{
    int kv_dim = nkv * hd;
    for (int r = 0; r < n; r++)
        for (int h = 0; h < nh; h++) {
            int kvh = h / (nh / nkv), np = pos0 + r + 1;
            double *s = malloc(sizeof(double) * np), max = -1e300, sum = 0;
            for (int t = 0; t < np; t++) {
                double d = 0;
                for (int i = 0; i < hd; i++)
                    d += (double)q[(r * nh + h) * hd + i] * k[t * kv_dim + kvh * hd + i];
                s[t] = d / sqrt(hd);
                max = fmax(max, s[t]);
            }
            for (int t = 0; t < np; t++) sum += s[t] = exp(s[t] - max);
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int t = 0; t < np; t++) o += s[t] / sum * v[t * kv_dim + kvh * hd + i];
                out[(r * nh + h) * hd + i] = o;
            }
            free(s);
        }
}

static void test_attention(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 4);
    enum { N = 5, POS0 = 11, NH = 6, NKV = 2, HD = 32, CTX = 32 };
    static float q[N * NH * HD], k[CTX * NKV * HD], v[CTX * NKV * HD], out[N * NH * HD],
        one[NH * HD];
    static double want[N * NH * HD];
    fill(&g, q, N * NH * HD);
    fill(&g, k, CTX * NKV * HD);
    fill(&g, v, CTX * NKV * HD);
    struct threadpool *tp = threadpool_new(2);
    float *scratch = malloc(sizeof(float) * attention_scratch_floats(2, CTX));
    attention(tp, out, q, k, v, N, POS0, NH, NKV, HD, scratch, CTX);
    attention_ref(want, q, k, v, N, POS0, NH, NKV, HD);
    for (int i = 0; i < N * NH * HD; i++)
        assert_float_equal(out[i], want[i], 1e-5);
    /* each row alone gives bitwise the same as inside the 5-row call */
    for (int r = 0; r < N; r++) {
        attention(tp, one, q + r * NH * HD, k, v, 1, POS0 + r, NH, NKV, HD, scratch, CTX);
        assert_memory_equal(one, out + r * NH * HD, sizeof one);
    }
    free(scratch);
    threadpool_free(tp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm), cmocka_unit_test(test_rope),
        cmocka_unit_test(test_swiglu), cmocka_unit_test(test_attention),
    };
    return cmocka_run_group_tests_name("row ops", tests, NULL, NULL);
}
