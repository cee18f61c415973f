/* CPU kernel layer: 16-bit float conversions, quantizers, the thread pool and
 * matmul on every back end built, against independent references; and the
 * batch invariance matmul promises (DESIGN.md 3.2), checked bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/threadpool.h"

#define U 0x1.0p-24 /* unit roundoff of float */

/* ---- helpers ----------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static void rng_reset(uint64_t seed) { rng_state = seed * 0x9E3779B97F4A7C15u + 1; }

static uint32_t rng_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Uniform in [-1, 1). */
static float rng_sym(void) { return (float)((double)rng_u32() / 2147483648.0 - 1.0); }

static uint32_t bits_of(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

static float float_of(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* ---- fp16 / bf16 ------------------------------------------------------- */

/* The value of a finite half, decoded by the textbook formula (not by the
 * bit tricks under test). */
static double half_value(uint16_t h)
{
    const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    const double mag = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    return (h & 0x8000) ? -mag : mag;
}

/* f32 -> fp16 by search: the nearest half, ties to the even mantissa, and
 * inf from 65520 (halfway between 65504 and the next step, 65536) up. */
static uint16_t half_oracle(float f)
{
    const uint16_t sign = (bits_of(f) >> 16) & 0x8000;
    if (isnan(f))
        return sign | 0x7E00;
    const double a = fabs((double)f);
    if (a >= 65520.0)
        return sign | 0x7C00;
    uint16_t lo = 0, hi = 0x7BFF; /* largest h with value(h) <= a */
    while (lo < hi) {
        const uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (half_value(mid) <= a)
            lo = mid;
        else
            hi = (uint16_t)(mid - 1);
    }
    const double below = a - half_value(lo), above = half_value((uint16_t)(lo + 1)) - a;
    const uint16_t h = (below < above || (below == above && !(lo & 1))) ? lo : (uint16_t)(lo + 1);
    return sign | h;
}

static void test_fp16_every_half(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = fp16_to_f32(h);
        if (((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF)) {
            assert_true(isnan(f));
            assert_int_equal(bits_of(f) >> 31, h >> 15);
            assert_int_equal(f32_to_fp16(f), (h & 0x8000) | 0x7E00);
        } else if (((h >> 10) & 0x1F) == 0x1F) {
            assert_true(isinf(f) && !!signbit(f) == !!(h & 0x8000));
            assert_int_equal(f32_to_fp16(f), h);
        } else {
            const float want = (float)half_value(h);
            if (bits_of(f) != bits_of(want))
                fail_msg("half %04x -> %a, want %a", (unsigned)h, (double)f, (double)want);
            assert_int_equal(f32_to_fp16(f), h);
        }
    }
}

/* Rounding to half: every exact tie between neighbouring halves and the
 * floats either side of it, then a sweep of float bit patterns. */
static void test_fp16_rounding(void **state)
{
    (void)state;
    for (uint16_t h = 0; h < 0x7BFF; h++) {
        const float mid = (float)((half_value(h) + half_value((uint16_t)(h + 1))) / 2);
        const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : h;
        assert_int_equal(f32_to_fp16(mid), even);
        assert_int_equal(f32_to_fp16(-mid), even | 0x8000);
        assert_int_equal(f32_to_fp16(nextafterf(mid, 0.0f)), h);
        assert_int_equal(f32_to_fp16(nextafterf(mid, INFINITY)), h + 1);
    }
    assert_int_equal(f32_to_fp16(65519.99f), 0x7BFF);
    assert_int_equal(f32_to_fp16(65520.0f), 0x7C00);
    assert_int_equal(f32_to_fp16(-1e30f), 0xFC00);
    assert_int_equal(f32_to_fp16(0x1.0p-25f), 0x0000); /* tie with 0: even */
    assert_int_equal(f32_to_fp16(nextafterf(0x1.0p-25f, 1.0f)), 0x0001);
    for (uint64_t w = 0; w < (UINT64_C(1) << 32); w += 4099) {
        const float f = float_of((uint32_t)w);
        if (f32_to_fp16(f) != half_oracle(f))
            fail_msg("f32 %08x -> %04x, want %04x", (unsigned)w, f32_to_fp16(f), half_oracle(f));
    }
}

/* The value of a non-negative bf16 pattern up to 0x7F80, where inf stands
 * for the next step above the largest finite bf16 (2^128, finite in double). */
static double bf16_step_value(uint32_t p)
{
    return p == 0x7F80 ? ldexp(1.0, 128) : (double)float_of(p << 16);
}

static void test_bf16(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = bf16_to_f32(h);
        assert_int_equal(bits_of(f), (uint32_t)h << 16);
        const bool nan = (h & 0x7F80) == 0x7F80 && (h & 0x7F);
        assert_int_equal(f32_to_bf16(f), nan ? (h | 0x40) : h);
    }
    /* Round to nearest even by distance, on a sweep of finite floats. */
    for (uint64_t w = 0; w < (UINT64_C(1) << 32); w += 4099) {
        const float f = float_of((uint32_t)w);
        if (isnan(f) || isinf(f))
            continue;
        const uint32_t sign = ((uint32_t)w >> 16) & 0x8000, lo = ((uint32_t)w >> 16) & 0x7FFF;
        const double a = fabs((double)f);
        const double below = a - bf16_step_value(lo), above = bf16_step_value(lo + 1) - a;
        const uint32_t want = sign | ((below < above || (below == above && !(lo & 1))) ? lo : lo + 1);
        if (f32_to_bf16(f) != want)
            fail_msg("f32 %08x -> bf16 %04x, want %04x", (unsigned)w, f32_to_bf16(f), want);
    }
}

/* ---- quantizers --------------------------------------------------------- */

/* Blocks worked out by hand from ggml's reference algorithms. */
static void test_quant_known_blocks(void **state)
{
    (void)state;
    float x[QK] = {0};

    /* Q8_0: amax 127 makes d = 1; roundf rounds halves away from zero. */
    const float x8[8] = {127, -127, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49999997f};
    const int8_t q8[8] = {127, -127, 1, -1, 2, 3, -3, 0};
    memcpy(x, x8, sizeof x8);
    struct block_q8_0 b8;
    quantize_row(DTYPE_Q8_0, x, &b8, QK);
    assert_int_equal(b8.d, 0x3C00);
    for (int j = 0; j < QK; j++)
        assert_int_equal(b8.qs[j], j < 8 ? q8[j] : 0);

    /* Q4_0: the first value of largest magnitude (-8, not the later 8) sets
     * d = -8/-8 = 1; q = min(15, trunc(x + 8.5)). */
    memset(x, 0, sizeof x);
    const float x4[8] = {1, -8, 8, -0.5f, 0.49f, -3.5f, 2.5f, 7.4f};
    const int q4[8] = {9, 0, 15, 8, 8, 5, 11, 15};
    memcpy(x, x4, sizeof x4);
    x[16] = -2; /* high nibble of byte 0 */
    struct block_q4_0 b40;
    quantize_row(DTYPE_Q4_0, x, &b40, QK);
    assert_int_equal(b40.d, 0x3C00);
    assert_int_equal(b40.qs[0], q4[0] | 6 << 4);
    for (int j = 1; j < 8; j++)
        assert_int_equal(b40.qs[j], q4[j] | 8 << 4);
    for (int j = 8; j < QK / 2; j++)
        assert_int_equal(b40.qs[j], 8 | 8 << 4);
    /* ...and with +8 first, d = -1: the scale's sign follows the max. */
    x[1] = 8;
    x[2] = -8;
    quantize_row(DTYPE_Q4_0, x, &b40, QK);
    assert_int_equal(b40.d, 0xBC00);
    assert_int_equal(b40.qs[1] & 0x0F, 0);
    assert_int_equal(b40.qs[2] & 0x0F, 15);

    /* Q4_1: min -1, max 14 give d = 1, m = -1; q = min(15, trunc(x+1 + 0.5)). */
    for (int j = 0; j < QK; j++)
        x[j] = 0;
    const float x41[6] = {-1, 14, 0.5f, 0.49f, 3.2f, 13.6f};
    const int q41[6] = {0, 15, 2, 1, 4, 15};
    memcpy(x, x41, sizeof x41);
    struct block_q4_1 b41;
    quantize_row(DTYPE_Q4_1, x, &b41, QK);
    assert_int_equal(b41.d, 0x3C00);
    assert_int_equal(b41.m, 0xBC00);
    for (int j = 0; j < 6; j++)
        assert_int_equal(b41.qs[j], q41[j] | 1 << 4);

    /* An all-zero block has d = 0/-8 = -0 and decodes to zeros. */
    memset(x, 0, sizeof x);
    quantize_row(DTYPE_Q4_0, x, &b40, QK);
    assert_int_equal(b40.d, 0x8000);
    float back[QK];
    dequantize_row(DTYPE_Q4_0, &b40, back, QK);
    for (int j = 0; j < QK; j++)
        assert_true(back[j] == 0.0f);
}

/* Largest and smallest value of block b. */
static void block_range(const float *x, float *lo, float *hi, float *amax)
{
    *lo = *hi = x[0];
    *amax = 0;
    for (int j = 0; j < QK; j++) {
        *lo = fminf(*lo, x[j]);
        *hi = fmaxf(*hi, x[j]);
        *amax = fmaxf(*amax, fabsf(x[j]));
    }
}

/* How far v moves when stored as a half: 2^-11 relative, or half the
 * subnormal spacing. */
static double half_rounding(double v) { return fmax(fabs(v) * 0x1.0p-11, 0x1.0p-25); }

/* Round trips within the rounding of each format; quantized scales are halves,
 * which moves each multiple q of d by q*half_rounding(d). */
static void test_quant_roundtrip(void **state)
{
    (void)state;
    enum { N = 8 * QK };
    const enum dtype types[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_1};
    const float scales[] = {1e-3f, 1.0f, 300.0f};
    float x[N], back[N];
    uint8_t packed[N * sizeof(float)];
    rng_reset(7);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const enum dtype t = types[ti];
        for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
            for (int i = 0; i < N; i++)
                x[i] = scales[si] * rng_sym();
            for (int j = 0; j < QK; j++)
                x[2 * QK + j] = 0.25f; /* a constant block: q4_1's d is 0 */
            for (int j = 0; j < QK; j++)
                x[3 * QK + j] = 0.0f;
            quantize_row(t, x, packed, N);
            dequantize_row(t, packed, back, N);
            for (int i = 0; i < N; i++) {
                double bound;
                float lo, hi, amax;
                block_range(x + i / QK * QK, &lo, &hi, &amax);
                switch (t) {
                case DTYPE_F32: bound = 0; break;
                case DTYPE_F16: bound = fabs(x[i]) * 0x1.0p-11 + 0x1.0p-25; break;
                case DTYPE_BF16: bound = fabs(x[i]) * 0x1.0p-8; break;
                case DTYPE_Q8_0: {
                    const double d = amax / 127.0;
                    bound = 0.5 * d + 127 * half_rounding(d);
                    break;
                }
                case DTYPE_Q4_0: {
                    /* +8 is clamped to 7 (q = 15): up to a whole step off. */
                    const double d = amax / 8.0;
                    bound = (fabs(x[i]) > 7.5 * d ? 1.0 : 0.5) * d + 8 * half_rounding(d);
                    break;
                }
                default: {
                    const double d = (hi - lo) / 15.0;
                    bound = 0.5 * d + 15 * half_rounding(d) + half_rounding(lo) +
                            4 * U * (fabs(x[i]) + fabs(lo));
                    break;
                }
                }
                bound += 1e-6 * amax; /* float rounding inside the quantizer */
                if (fabs((double)back[i] - x[i]) > bound)
                    fail_msg("%s scale %g: x[%d] = %a came back as %a (bound %g)", dtype_name(t),
                             (double)scales[si], i, (double)x[i], (double)back[i], bound);
            }
        }
    }
}

/* The activation quantizers of every back end agree bit for bit (the same
 * float operations in a different instruction set). */
static void test_quantize_x_backends_agree(void **state)
{
    (void)state;
    enum { N = 16 * QK };
    float x[N];
    struct block_q8x a[N / QK], b[N / QK];
    rng_reset(11);
    for (int i = 0; i < N; i++)
        x[i] = rng_sym() * (float)(1 + i / QK);
    for (int j = 0; j < QK; j++) {
        x[QK + j] = 0.0f;                            /* d = 0 */
        x[2 * QK + j] = j ? (float)j - 15.5f : 127;  /* d = 1: exact ties */
    }
    matmul_quantize_x_scalar(x, a, N);
    for (int i = 0; i < matmul_backend_count; i++) {
        memset(b, 0x5A, sizeof b);
        matmul_backends[i]->quantize_x(x, b, N);
        assert_memory_equal(a, b, sizeof a);
    }
    for (int blk = 0; blk < N / QK; blk++) {
        int sum = 0;
        for (int j = 0; j < QK; j++)
            sum += a[blk].qs[j];
        /* d is a half, dsum exact; s is the unrounded scale times sum,
         * rounded to a half: within 2^-10 of dsum (two half roundings). */
        assert_true(fp16_to_f32(f32_to_fp16(a[blk].d)) == a[blk].d);
        assert_int_equal(a[blk].sum, sum);
        assert_true(a[blk].dsum == a[blk].d * (float)sum);
        assert_true(fabs((double)a[blk].s - a[blk].dsum) <= fabs((double)a[blk].dsum) * 0x1.0p-10 + 1e-30);
    }
}

/* ---- thread pool --------------------------------------------------------- */

static void test_thread_slice(void **state)
{
    (void)state;
    for (int n = 0; n <= 70; n++) {
        for (int nth = 1; nth <= 9; nth++) {
            int expect_lo = 0;
            for (int ith = 0; ith < nth; ith++) {
                int lo, hi;
                thread_slice(n, ith, nth, &lo, &hi);
                assert_int_equal(lo, expect_lo);
                assert_true(hi - lo == n / nth || hi - lo == n / nth + 1);
                expect_lo = hi;
            }
            assert_int_equal(expect_lo, n);
        }
    }
}

struct count_job {
    int nth_seen;
    atomic_int calls[8];
};

static void count_calls(void *ctx, int ith, int nth)
{
    struct count_job *job = ctx;
    atomic_fetch_add(&job->calls[ith], 1);
    if (ith == 0)
        job->nth_seen = nth;
    if (ith == nth - 1) { /* uneven work, so threads finish in varying order */
        for (volatile int i = 0; i < 2000; i++)
            continue;
    }
}

static void test_threadpool_runs_every_slice(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        struct threadpool *tp = threadpool_new(n);
        assert_non_null(tp);
        assert_int_equal(threadpool_size(tp), n);
        struct count_job job = {0};
        for (int i = 0; i < 8; i++)
            atomic_init(&job.calls[i], 0);
        enum { JOBS = 3000 };
        for (int j = 0; j < JOBS; j++)
            threadpool_run(tp, count_calls, &job);
        assert_int_equal(job.nth_seen, n);
        for (int i = 0; i < 8; i++)
            assert_int_equal(atomic_load(&job.calls[i]), i < n ? JOBS : 0);
        threadpool_free(tp);
    }
    assert_null(threadpool_new(0));
}

/* ---- matmul -------------------------------------------------------------- */

enum { MAX_ROWS = 16 };

struct mm_case {
    enum dtype t;
    int in, out;
    uint8_t *w;   /* (out, in) in dtype t */
    float *x;     /* (MAX_ROWS, in) */
    void *scratch;
};

static void mm_case_init(struct mm_case *c, enum dtype t, int in, int out, int rows)
{
    c->t = t;
    c->in = in;
    c->out = out;
    const size_t rb = dtype_row_bytes(t, (uint64_t)in);
    c->w = xmalloc(rb * (size_t)out);
    c->x = xmalloc(sizeof(float) * (size_t)rows * (size_t)in);
    c->scratch = xmalloc(matmul_scratch_bytes(t, rows, in));
    float *row = xmalloc(sizeof(float) * (size_t)in);
    for (int o = 0; o < out; o++) {
        /* Rows of differing scale, with a few outliers, like real weights. */
        const float scale = 0.05f * (float)(1 + o % 5);
        for (int i = 0; i < in; i++)
            row[i] = scale * rng_sym() * (rng_u32() % 97 == 0 ? 8.0f : 1.0f);
        quantize_row(t, row, c->w + rb * (size_t)o, in);
    }
    free(row);
    for (long i = 0; i < (long)rows * in; i++)
        c->x[i] = rng_sym() * (rng_u32() % 61 == 0 ? 10.0f : 1.0f);
}

static void mm_case_free(struct mm_case *c)
{
    free(c->w);
    free(c->x);
    free(c->scratch);
}

static const uint8_t *mm_wrow(const struct mm_case *c, int o)
{
    return c->w + dtype_row_bytes(c->t, (uint64_t)c->in) * (size_t)o;
}

static bool is_quantized(enum dtype t) { return dtype_block_elems(t) > 1; }

/* x as the back end's kernels see it: quantized to block_q8x and decoded for
 * quantized weights, unchanged for float ones. d_x[b] gets block b's step. */
static void kernel_view_of_x(const struct matmul_backend *be, const struct mm_case *c,
                             const float *x, float *xk, float *d_x)
{
    if (!is_quantized(c->t)) {
        memcpy(xk, x, sizeof(float) * (size_t)c->in);
        return;
    }
    struct block_q8x *blocks = xmalloc(sizeof *blocks * (size_t)(c->in / QK));
    be->quantize_x(x, blocks, c->in);
    for (int i = 0; i < c->in; i++)
        xk[i] = blocks[i / QK].d * (float)blocks[i / QK].qs[i % QK];
    for (int b = 0; b < c->in / QK; b++)
        d_x[b] = blocks[b].d;
    free(blocks);
}

/* The offset m of block b of weight row o when written d*q + m with q >= 0:
 * Q4_1's own, or -8d for Q4_0 (a back end may sum either apart as m*s). */
static double block_offset(const struct mm_case *c, int o, int b)
{
    if (c->t == DTYPE_Q4_1)
        return fp16_to_f32(((const struct block_q4_1 *)mm_wrow(c, o))[b].m);
    if (c->t == DTYPE_Q4_0)
        return -8.0 * fp16_to_f32(((const struct block_q4_0 *)mm_wrow(c, o))[b].d);
    return 0;
}

/* How far rounding in any kernel may move weight row o's dot product with xk
 * (the kernel's view of x): in*u*sum|w*x| for float weights, whatever the
 * summation order. Quantized weights sum exact integer block dot products, so
 * only the per-block scaling and the in/QK accumulations round (plus the
 * offset terms m*s, summed apart), and the factor 4 and the 16 extra terms
 * leave slack for the lane reductions. */
static double rounding_bound(const struct mm_case *c, int o, const float *wf, const float *xk)
{
    double mag = 0;
    for (int i = 0; i < c->in; i++)
        mag += (fabs(wf[i]) + fabs(block_offset(c, o, i / QK))) * fabs(xk[i]);
    const double terms = is_quantized(c->t) ? 4.0 * (c->in / QK + 16) : 1.01 * c->in;
    /* Q4_1's offsets multiply s = d*sum(q) rounded to a half, as ggml's q8_1
     * stores it: up to 2^-11 of |m| * sum|x| per block. */
    double half_s = 0;
    if (c->t == DTYPE_Q4_1)
        for (int i = 0; i < c->in; i++)
            half_s += fabs(block_offset(c, o, i / QK)) * fabs(xk[i]) * 0x1.0p-11;
    return terms * U * mag + half_s + 1e-30;
}

/* Checks y (row r of x against every weight row) computed by back end `be`.
 *
 * Float weights: any summation order is within in*u*sum|w*x| of the exact
 * dot product (the classic bound), which dot_reference (double) stands for.
 *
 * Quantized weights: first against the dot product with x replaced by what
 * the back end quantized it to (the kernel's own arithmetic: exact integer
 * block sums, then float scaling and accumulation, bounded as above with
 * slack); then against the true x, where each element may be off by half an
 * activation step d_x/2, and in norm over all outputs. */
/* Over a case's outputs: sums of squared errors, of squared references, and
 * of the squared error activation quantization is expected to add (each x
 * element off by a uniform amount within half a step: variance d^2/12). */
struct err_norm {
    double err2, ref2, noise2;
    long count;
};

static void check_accuracy(const struct matmul_backend *be, const struct mm_case *c,
                           int r, const float *y, struct err_norm *norm)
{
    const int in = c->in, out = c->out;
    const float *x = c->x + (size_t)r * (size_t)in;
    float *wf = xmalloc(sizeof(float) * (size_t)in);
    float *xk = xmalloc(sizeof(float) * (size_t)in);
    float *d_x = xmalloc(sizeof(float) * (size_t)(in / QK + 1));
    kernel_view_of_x(be, c, x, xk, d_x);
    for (int o = 0; o < out; o++) {
        dequantize_row(c->t, mm_wrow(c, o), wf, in);
        const double ref = dot_reference(mm_wrow(c, o), c->t, x, in);
        const double got = y[o];
        norm->err2 += (got - ref) * (got - ref);
        norm->ref2 += ref * ref;
        norm->count++;
        const double bound = rounding_bound(c, o, wf, xk);
        const double ref_k = dot_reference(mm_wrow(c, o), c->t, xk, in);
        if (fabs(got - ref_k) > bound)
            fail_msg("%s %s in=%d: y[%d][%d] = %.9g, want %.9g (bound %g)", be->name,
                     dtype_name(c->t), in, r, o, got, ref_k, bound);
        if (!is_quantized(c->t))
            continue;
        /* Each quantized x element is within half a step (and rounding) of x. */
        double act_err = 0;
        for (int i = 0; i < in; i++) {
            act_err += fabs(wf[i]) * (0.5 * d_x[i / QK] + fabs(x[i]) * 0x1.0p-22);
            norm->noise2 += (double)wf[i] * wf[i] * d_x[i / QK] * d_x[i / QK] / 12;
        }
        if (fabs(got - ref) > act_err + bound)
            fail_msg("%s %s in=%d: y[%d][%d] = %.9g, want %.9g with exact x (bound %g)",
                     be->name, dtype_name(c->t), in, r, o, got, ref, act_err + bound);
    }
    free(wf);
    free(xk);
    free(d_x);
}

static void assert_rows_identical(const float *a, const float *b, int out, const char *what,
                                  const struct matmul_backend *be, const struct mm_case *c, int r)
{
    if (memcmp(a, b, sizeof(float) * (size_t)out) != 0)
        fail_msg("%s %s in=%d out=%d: row %d differs %s", be->name, dtype_name(c->t), c->in,
                 c->out, r, what);
}

/* One back end, one dtype and shape:
 *  - each row alone (n = 1, one thread) against the references;
 *  - every pass of k = 1..16 rows, starting at varying rows and on 2 threads,
 *    reproduces each row's n = 1 result bit for bit;
 *  - a 16-row pass is identical on 1, 2 and 3 threads.
 * Output counts below, at and past MATMUL_OUT_ALIGN (with a partial last
 * group, and groups split over threads) catch back ends that work on groups
 * of output rows. */
static void check_matmul(const struct matmul_backend *be, struct threadpool *const tps[3],
                         enum dtype t, int in, int out)
{
    struct mm_case c;
    mm_case_init(&c, t, in, out, MAX_ROWS);
    float *single = xmalloc(sizeof(float) * MAX_ROWS * (size_t)out);
    float *y = xmalloc(sizeof(float) * MAX_ROWS * (size_t)out);
    struct err_norm norm = {0};
    for (int r = 0; r < MAX_ROWS; r++) {
        float *yr = single + (size_t)r * (size_t)out;
        matmul_with(be, tps[0], yr, c.w, t, c.x + (size_t)r * (size_t)in, 1, in, out, c.scratch);
        check_accuracy(be, &c, r, yr, &norm);
    }
    /* In aggregate over enough outputs that a few cannot dominate: float
     * weights within 1e-5 in norm; quantized ones no noisier than twice what
     * quantizing x predicts (which a wrong scale or block order would be). */
    if (norm.count >= 64) {
        const double rel = sqrt(norm.err2 / norm.ref2), noise = sqrt(norm.err2 / norm.noise2);
        if (!is_quantized(t) && rel > 1e-5)
            fail_msg("%s %s in=%d out=%d: normalized error %g", be->name, dtype_name(t), in,
                     out, rel);
        if (is_quantized(t) && noise > 2)
            fail_msg("%s %s in=%d out=%d: error %g times the predicted noise", be->name,
                     dtype_name(t), in, out, noise);
    }
    for (int k = 1; k <= MAX_ROWS; k++) {
        const int start = 3 * k % (MAX_ROWS + 1 - k); /* rows start..start+k-1 */
        matmul_with(be, tps[1], y, c.w, t, c.x + (size_t)start * (size_t)in, k, in, out, c.scratch);
        for (int j = 0; j < k; j++)
            assert_rows_identical(y + (size_t)j * (size_t)out,
                                  single + (size_t)(start + j) * (size_t)out, out,
                                  "between a 1-row pass and a multi-row pass", be, &c, start + j);
    }
    for (int ti = 0; ti < 3; ti++) {
        matmul_with(be, tps[ti], y, c.w, t, c.x, MAX_ROWS, in, out, c.scratch);
        for (int r = 0; r < MAX_ROWS; r++)
            assert_rows_identical(y + (size_t)r * (size_t)out, single + (size_t)r * (size_t)out,
                                  out, "across thread counts", be, &c, r);
    }
    free(single);
    free(y);
    mm_case_free(&c);
}

static void check_dtype(enum dtype t)
{
    struct threadpool *tps[3] = {threadpool_new(1), threadpool_new(2), threadpool_new(3)};
    const int outs[] = {1, 7, 37, 64};
    const int ins_quant[] = {32, 64, 256, 4096 + 32};
    const int ins_float[] = {1, 15, 17, 50, 172, 256, 4096 + 32}; /* tails of every length */
    const int *ins = is_quantized(t) ? ins_quant : ins_float;
    const size_t n_ins = is_quantized(t) ? 4 : 7;
    rng_reset((uint64_t)t + 100);
    for (int b = 0; b < matmul_backend_count; b++)
        for (size_t i = 0; i < n_ins; i++)
            for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++)
                check_matmul(matmul_backends[b], tps, t, ins[i], outs[o]);
    for (int i = 0; i < 3; i++)
        threadpool_free(tps[i]);
}

static void test_matmul_f32(void **state) { (void)state; check_dtype(DTYPE_F32); }
static void test_matmul_f16(void **state) { (void)state; check_dtype(DTYPE_F16); }
static void test_matmul_bf16(void **state) { (void)state; check_dtype(DTYPE_BF16); }
static void test_matmul_q8_0(void **state) { (void)state; check_dtype(DTYPE_Q8_0); }
static void test_matmul_q4_0(void **state) { (void)state; check_dtype(DTYPE_Q4_0); }
static void test_matmul_q4_1(void **state) { (void)state; check_dtype(DTYPE_Q4_1); }

/* Passes far wider than a verification round (64 rows) still reproduce
 * single-row results, through matmul() itself. */
static void test_matmul_wide_pass(void **state)
{
    (void)state;
    enum { ROWS = 64, IN = 96, OUT = 9 };
    struct threadpool *tp = threadpool_new(2);
    const enum dtype types[] = {DTYPE_F16, DTYPE_Q4_1};
    for (size_t ti = 0; ti < 2; ti++) {
        struct mm_case c;
        mm_case_init(&c, types[ti], IN, OUT, ROWS);
        float y[ROWS * OUT], one[OUT];
        matmul(tp, y, c.w, c.t, c.x, ROWS, IN, OUT, c.scratch);
        for (int r = 0; r < ROWS; r++) {
            matmul(tp, one, c.w, c.t, c.x + r * IN, 1, IN, OUT, c.scratch);
            assert_memory_equal(one, y + r * OUT, sizeof one);
        }
        mm_case_free(&c);
    }
    threadpool_free(tp);
}

/* Back ends differ in summation order, not in result beyond rounding. */
static void test_matmul_backends_close(void **state)
{
    (void)state;
    enum { ROWS = 5, IN = 1024, OUT = 16 };
    struct threadpool *tp = threadpool_new(2);
    const enum dtype types[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_1};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        struct mm_case c;
        mm_case_init(&c, types[ti], IN, OUT, ROWS);
        float a[ROWS * OUT], b[ROWS * OUT];
        matmul_with(&matmul_backend_scalar, tp, a, c.w, c.t, c.x, ROWS, IN, OUT, c.scratch);
        float wf[IN], xk[IN], d_x[IN / QK];
        for (int i = 1; i < matmul_backend_count; i++) {
            const struct matmul_backend *be = matmul_backends[i];
            matmul_with(be, tp, b, c.w, c.t, c.x, ROWS, IN, OUT, c.scratch);
            for (int r = 0; r < ROWS; r++) {
                kernel_view_of_x(&matmul_backend_scalar, &c, c.x + r * IN, xk, d_x);
                for (int o = 0; o < OUT; o++) {
                    dequantize_row(c.t, mm_wrow(&c, o), wf, IN);
                    /* Both are within the bound of the same exact value. */
                    const double bound = 2 * rounding_bound(&c, o, wf, xk);
                    if (fabs((double)a[r * OUT + o] - b[r * OUT + o]) > bound)
                        fail_msg("%s: scalar %.9g vs %s %.9g (bound %g)", dtype_name(c.t),
                                 (double)a[r * OUT + o], be->name, (double)b[r * OUT + o], bound);
                }
            }
        }
        mm_case_free(&c);
    }
    threadpool_free(tp);
}

/* Q8_0 repacked for the AVX-512 tile (kernels/cpu/repack.h) gives bitwise
 * what the best back end gives on the plain weights, for every pass of
 * 1..16 rows, on 1 and 2 threads, with whole and partial last groups of 16
 * rows, and wherever the packed copy starts (the kernel loads unaligned). */
static void test_matmul_q8_0x16(void **state)
{
    (void)state;
    if (!q8_0x16_supported()) {
        print_message("no q8_0x16 kernel in this build; skipped\n");
        skip();
    }
    struct threadpool *tps[2] = {threadpool_new(1), threadpool_new(2)};
    const int outs[] = {16, 37, 64, 100};
    const int ins[] = {32, 64, 256, 4096 + 32};
    rng_reset(808);
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++)
        for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++) {
            const int in = ins[i], out = outs[o];
            struct mm_case c;
            mm_case_init(&c, DTYPE_Q8_0, in, out, MAX_ROWS);
            const size_t bytes = dtype_row_bytes(DTYPE_Q8_0, (uint64_t)in) * (size_t)out;
            const size_t shift = (i + o) % 2 ? 4 : 0; /* start off a 64-byte line */
            uint8_t *buf = xmalloc(bytes + 64 + shift), *packed = buf + (64 - (uintptr_t)buf % 64) % 64 + shift;
            q8_0x16_pack(packed, c.w, in, out);
            if (out >= 16 && memcmp(packed, c.w, bytes) == 0)
                fail_msg("in=%d out=%d: packing left the weights as they were", in, out);
            uint8_t *plain_loop = xmalloc(bytes);
            q8_0x16_pack_reference(plain_loop, c.w, in, out);
            if (memcmp(packed, plain_loop, bytes) != 0)
                fail_msg("in=%d out=%d: the fast packer differs from the reference loop", in, out);
            free(plain_loop);
            float *want = xmalloc(sizeof(float) * MAX_ROWS * (size_t)out);
            float *got = xmalloc(sizeof(float) * MAX_ROWS * (size_t)out);
            for (int k = 1; k <= MAX_ROWS; k++)
                for (int ti = 0; ti < 2; ti++) {
                    matmul_with(matmul_backend_best(), tps[ti], want, c.w, DTYPE_Q8_0, c.x, k, in, out, c.scratch);
                    matmul_q8_0x16(tps[ti], got, packed, c.x, k, in, out, c.scratch);
                    if (memcmp(want, got, sizeof(float) * (size_t)k * (size_t)out) != 0)
                        fail_msg("q8_0x16 in=%d out=%d k=%d threads=%d: differs from plain q8_0",
                                 in, out, k, ti + 1);
                }
            free(want);
            free(got);
            free(buf);
            mm_case_free(&c);
        }
    for (int i = 0; i < 2; i++)
        threadpool_free(tps[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_every_half),
        cmocka_unit_test(test_fp16_rounding),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_quant_known_blocks),
        cmocka_unit_test(test_quant_roundtrip),
        cmocka_unit_test(test_quantize_x_backends_agree),
        cmocka_unit_test(test_thread_slice),
        cmocka_unit_test(test_threadpool_runs_every_slice),
        cmocka_unit_test(test_matmul_f32),
        cmocka_unit_test(test_matmul_f16),
        cmocka_unit_test(test_matmul_bf16),
        cmocka_unit_test(test_matmul_q8_0),
        cmocka_unit_test(test_matmul_q4_0),
        cmocka_unit_test(test_matmul_q4_1),
        cmocka_unit_test(test_matmul_wide_pass),
        cmocka_unit_test(test_matmul_backends_close),
        cmocka_unit_test(test_matmul_q8_0x16),
    };
    return cmocka_run_group_tests_name("cpu kernels", tests, NULL, NULL);
}
