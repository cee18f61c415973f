/* Every CUDA kernel against the CPU kernels (kernels/cpu) on random inputs,
 * by normalised mean squared error, at several shapes and block sizes, in
 * the style of ggml's backend test. Runs on the host harness (ASan and TSan
 * builds, `make test`) and natively (`make test-gpu`): it only talks to the
 * device through kernels/cuda/ops.h.
 *
 * NMSE = sum (gpu - ref)^2 / sum ref^2. Bounds: ~1e-10 where the CUDA kernel
 * does the CPU's arithmetic in another order (fp32 rounding only); looser
 * where the CPU path quantizes activations to 8 bits and the GPU does not. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda/nmse.h"
#include "engine/sample.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/quant.h"
#include "kernels/cuda/ops.h"

static struct rng g_rng;

static void fill(float *x, long n, float scale)
{
    for (long i = 0; i < n; i++)
        x[i] = (float)((rng_uniform(&g_rng) * 2 - 1) * scale);
}

static float *fmalloc(long n)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    assert_non_null(p);
    return p;
}

static void *to_dev(const void *host, size_t bytes)
{
    void *d = cuda_alloc(bytes ? bytes : 1);
    assert_non_null(d);
    if (bytes)
        cuda_upload(d, host, bytes);
    return d;
}

static float *dev_floats(long n)
{
    float *d = cuda_alloc(sizeof(float) * (size_t)(n ? n : 1));
    assert_non_null(d);
    return d;
}

static void to_host(void *host, const void *dev, size_t bytes)
{
    cuda_sync();
    cuda_download(host, dev, bytes);
}

static int n_cases;

/* One line per case, like ggml's test-backend-ops (op NULL: count, print only a failure). */
static void check_nmse(const char *op, const char *shape, double e, double bound)
{
    n_cases++;
    if (e > bound || op) {
        printf("  %-10s %-44s nmse %.3e  (bound %.0e) %s\n", op ? op : "", shape, e, bound,
               e <= bound ? "ok" : "FAIL");
    }
    assert_true(e <= bound);
}

/* A (rows, cols) weight matrix of random values in the file layout of t,
 * and its exact float values (what the kernels should see). */
static void *make_weights(enum dtype t, int rows, int cols, float *exact)
{
    float *src = fmalloc((long)rows * cols);
    fill(src, (long)rows * cols, 1.0f);
    size_t row_bytes = dtype_row_bytes(t, (uint64_t)cols);
    char *w = malloc(row_bytes * rows);
    assert_non_null(w);
    for (int r = 0; r < rows; r++) {
        quantize_row(t, src + (long)r * cols, w + row_bytes * r, cols);
        dequantize_row(t, w + row_bytes * r, exact + (long)r * cols, cols);
    }
    free(src);
    return w;
}

static void *weights_to_dev(const void *w, enum dtype t, int rows, int cols)
{
    void *d = cuda_alloc(cuda_weight_bytes(t, rows, cols));
    assert_non_null(d);
    cuda_upload_weight(d, w, t, rows, cols);
    return d;
}

static const enum dtype weight_types[] = {DTYPE_F32,  DTYPE_F16,  DTYPE_BF16,
                                          DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_1};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

static void test_embed(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++)
        for (int dim = 64; dim <= 256; dim *= 4) {
            enum dtype t = weight_types[ti];
            int vocab = 50, n = 5;
            float *exact = fmalloc((long)vocab * dim), *out = fmalloc((long)n * dim);
            float *ref = fmalloc((long)n * dim);
            void *w = make_weights(t, vocab, dim, exact);
            int32_t tokens[5] = {3, 0, 49, 3, 17};
            for (int r = 0; r < n; r++)
                memcpy(ref + (long)r * dim, exact + (long)tokens[r] * dim, sizeof(float) * dim);
            void *dw = weights_to_dev(w, t, vocab, dim);
            int32_t *dt = to_dev(tokens, sizeof tokens);
            float *dout = dev_floats((long)n * dim);
            cuda_embed_rows(dout, dw, t, vocab, dt, n, dim);
            to_host(out, dout, sizeof(float) * n * dim);
            char shape[64];
            snprintf(shape, sizeof shape, "type=%s dim=%d n=%d", dtype_name(t), dim, n);
            check_nmse("embed", shape, nmse(out, ref, (long)n * dim), 0);
            cuda_free(dw); cuda_free(dt); cuda_free(dout);
            free(exact); free(out); free(ref); free(w);
        }
}

static void test_rmsnorm(void **state)
{
    (void)state;
    const int dims[] = {64, 257, 4096}, blocks[] = {48, 128, 256}; /* 48: rounded to 64 */
    for (int di = 0; di < 3; di++)
        for (int bi = 0; bi < 3; bi++) {
            int n = 3, dim = dims[di];
            float *x = fmalloc((long)n * dim), *w = fmalloc(dim), *ref = fmalloc((long)n * dim);
            float *out = fmalloc((long)n * dim);
            fill(x, (long)n * dim, 2.0f);
            fill(w, dim, 1.0f);
            rmsnorm_rows(ref, x, w, n, dim, 1e-5f);
            float *dx = to_dev(x, sizeof(float) * n * dim), *dw = to_dev(w, sizeof(float) * dim);
            cuda_rmsnorm_rows(dx, dx, dw, n, dim, 1e-5f, blocks[bi]); /* in place, as used */
            to_host(out, dx, sizeof(float) * n * dim);
            char shape[64];
            snprintf(shape, sizeof shape, "dim=%d n=%d block=%d", dim, n, blocks[bi]);
            check_nmse("rmsnorm", shape, nmse(out, ref, (long)n * dim), 1e-12);
            cuda_free(dx); cuda_free(dw);
            free(x); free(w); free(ref); free(out);
        }
}

static void test_rope(void **state)
{
    (void)state;
    const int hds[] = {16, 64, 128}, pos0s[] = {0, 37, 1000};
    for (int hi = 0; hi < 3; hi++)
        for (int pi = 0; pi < 3; pi++)
            for (int neox = 0; neox < 2; neox++) {
                int n = 3, heads = 4, hd = hds[hi];
                long len = (long)n * heads * hd;
                float *x = fmalloc(len), *ref = fmalloc(len), *out = fmalloc(len);
                float *inv = fmalloc(hd / 2);
                for (int i = 0; i < hd / 2; i++)
                    inv[i] = (float)pow(10000.0, -2.0 * i / hd);
                fill(x, len, 1.0f);
                memcpy(ref, x, sizeof(float) * len);
                rope_rows(ref, n, heads, hd, pos0s[pi], inv, neox);
                float *dx = to_dev(x, sizeof(float) * len), *di = to_dev(inv, sizeof(float) * hd / 2);
                int32_t *dpos = to_dev(&(int32_t){pos0s[pi]}, sizeof(int32_t));
                cuda_rope_rows(dx, n, heads, hd, dpos, di, neox, pi == 1 ? 32 : 0);
                to_host(out, dx, sizeof(float) * len);
                char shape[64];
                snprintf(shape, sizeof shape, "hd=%d pos0=%d neox=%d", hd, pos0s[pi], neox);
                /* cosf/sinf of the device differ from glibc's by an ulp or two */
                check_nmse("rope", shape, nmse(out, ref, len), 1e-11);
                cuda_free(dx); cuda_free(di); cuda_free(dpos);
                free(x); free(ref); free(out); free(inv);
            }
}

static void test_add_swiglu(void **state)
{
    (void)state;
    const int blocks[] = {32, 256};
    for (int bi = 0; bi < 2; bi++) {
        int n = 5, dim = 96;
        long len = (long)n * dim;
        float *y = fmalloc(len), *x = fmalloc(len), *b = fmalloc(dim), *ref = fmalloc(len);
        float *out = fmalloc(len);
        fill(y, len, 1.0f); fill(x, len, 1.0f); fill(b, dim, 1.0f);
        float *dy = to_dev(y, sizeof(float) * len), *dx = to_dev(x, sizeof(float) * len);
        float *db = to_dev(b, sizeof(float) * dim);
        char shape[64];
        snprintf(shape, sizeof shape, "len=%ld block=%d", len, blocks[bi]);

        memcpy(ref, y, sizeof(float) * len);
        add_inplace(ref, x, len);
        cuda_add(dy, dx, len, len, blocks[bi]);
        to_host(out, dy, sizeof(float) * len);
        check_nmse("add", shape, nmse(out, ref, len), 0);

        add_bias_rows(ref, b, n, dim);
        cuda_add(dy, db, len, dim, blocks[bi]);
        to_host(out, dy, sizeof(float) * len);
        check_nmse("add_bias", shape, nmse(out, ref, len), 0);

        swiglu(ref, ref, x, len);
        cuda_swiglu(dy, dy, dx, len, blocks[bi]);
        to_host(out, dy, sizeof(float) * len);
        check_nmse("swiglu", shape, nmse(out, ref, len), 1e-12);
        cuda_free(dy); cuda_free(dx); cuda_free(db);
        free(y); free(x); free(b); free(ref); free(out);
    }
}

/* y (n, out) through cuda_gemv for rows [r0, r0+k) only. */
static void gemv_rows(float *host_y, const void *dw, enum dtype t, const float *dx, int r0, int k,
                      int in, int out, int warps)
{
    float *dy = dev_floats((long)k * out);
    cuda_gemv(dy, dw, t, dx + (long)r0 * in, k, in, out, warps);
    to_host(host_y, dy, sizeof(float) * k * out);
    cuda_free(dy);
}

static void test_gemv(void **state)
{
    (void)state;
    struct threadpool *tp = threadpool_new(1);
    const int shapes[][2] = {{64, 33}, {256, 40}, {1024, 8}}; /* in, out */
    const int ns[] = {1, 3, 16, 19}, warps[] = {1, 4, 8};
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++)
        for (int si = 0; si < 3; si++)
            for (int ni = 0; ni < 4; ni++) {
                enum dtype t = weight_types[ti];
                int in = shapes[si][0], out = shapes[si][1], n = ns[ni], wp = warps[(si + ni) % 3];
                float *exact = fmalloc((long)out * in), *x = fmalloc((long)n * in);
                float *y = fmalloc((long)n * out), *ref = fmalloc((long)n * out);
                float *cpu = fmalloc((long)n * out), *one = fmalloc(out);
                void *w = make_weights(t, out, in, exact);
                fill(x, (long)n * in, 1.0f);
                for (int r = 0; r < n; r++)
                    for (int o = 0; o < out; o++)
                        ref[(long)r * out + o] =
                            (float)dot_reference((const char *)w + dtype_row_bytes(t, in) * o, t,
                                                 x + (long)r * in, in);
                void *scratch = malloc(matmul_scratch_bytes(t, n, in) + 64);
                matmul(tp, cpu, w, t, x, n, in, out, scratch);
                void *dw = weights_to_dev(w, t, out, in);
                float *dx = to_dev(x, sizeof(float) * n * in);
                gemv_rows(y, dw, t, dx, 0, n, in, out, wp);
                char shape[80];
                snprintf(shape, sizeof shape, "type=%s in=%d out=%d n=%d warps=%d", dtype_name(t),
                         in, out, n, wp);
                check_nmse("gemv", shape, nmse(y, ref, (long)n * out), 1e-12);
                /* The engine's CPU path quantizes x to 8 bits for quantized
                 * weights (q8_0, q4_0, q4_1; q4_1's offset term also uses the
                 * half-rounded block sum of x): that rounding, not the weights,
                 * is the difference, so one bound for all three. */
                check_nmse("gemv~cpu", shape, nmse(y, cpu, (long)n * out),
                           dtype_block_elems(t) == QK ? 1e-4 : 1e-12);
                /* Batch invariance: each row alone gives the same bits. */
                for (int r = 0; r < n; r += 7) {
                    gemv_rows(one, dw, t, dx, r, 1, in, out, wp);
                    assert_memory_equal(one, y + (long)r * out, sizeof(float) * out);
                }
                cuda_free(dw); cuda_free(dx);
                free(exact); free(x); free(y); free(ref); free(cpu); free(one); free(w);
                free(scratch);
            }
    threadpool_free(tp);
}

static float round_f16(float v)
{
    return fp16_to_f32(f32_to_fp16(v));
}

/* y (n, out) = x (n, in) · wᵀ in double, w and x floats. */
static void dot_rows(float *y, const float *w, const float *x, int n, int in, int out)
{
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int i = 0; i < in; i++)
                acc += (double)w[(long)o * in + i] * x[(long)r * in + i];
            y[(long)r * out + o] = (float)acc;
        }
}

/* cuda_gemm through y_dev, with scratch_bytes of scratch; y downloaded. */
static void gemm_run(float *y, float *dy, const void *dw, enum dtype t, const float *dx, int n,
                     int in, int out, size_t scratch_bytes)
{
    void *scratch = cuda_alloc(scratch_bytes ? scratch_bytes : 1);
    assert_non_null(scratch);
    unsigned long before = cuda_gemm_calls();
    cuda_gemm(dy, dw, t, dx, n, in, out, scratch, scratch_bytes);
    assert_int_equal(cuda_gemm_calls(), before + 1);
    to_host(y, dy, sizeof(float) * n * out);
    cuda_free(scratch);
}

/* cuBLAS GEMM (long prefills), more than 16 rows, every weight type. F32 in
 * fp32; the others take x rounded to f16, and BF16/Q8_0/Q4_0/Q4_1 weights
 * dequantized and rounded to f16 (per slice of output rows). Compared with:
 *   gemm      the double product of the operands as the GEMM sees them (w
 *             and x rounded to f16, except F32): fp32 accumulation only;
 *   gemm~x    the exact product of the file's weights and x: adds the f16
 *             roundings (each ≤ 2^-11 relative; none for F16 weights, none
 *             for BF16 in f16's normal range);
 *   gemm~cpu  the CPU matmul, which quantizes x to 8 bits for q8_0/q4_0/q4_1
 *             (the GEMV's bound for those, 1e-4).
 * Dequantized types run twice: in one slice, and with scratch for 7 weight
 * rows only (slices of 7, the last ragged). */
static void test_gemm(void **state)
{
    (void)state;
    struct threadpool *tp = threadpool_new(1);
    const int shapes[][2] = {{64, 33}, {256, 40}}; /* in, out */
    const int ns[] = {17, 40};
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++)
        for (int si = 0; si < 2; si++)
            for (int ni = 0; ni < 2; ni++) {
                enum dtype t = weight_types[ti];
                int in = shapes[si][0], out = shapes[si][1], n = ns[ni];
                bool dequantized = t != DTYPE_F32 && t != DTYPE_F16;
                assert_true(cuda_gemm_type_supported(t));
                float *exact = fmalloc((long)out * in), *x = fmalloc((long)n * in);
                float *wr = fmalloc((long)out * in), *xr = fmalloc((long)n * in);
                float *y = fmalloc((long)n * out), *cpu = fmalloc((long)n * out);
                float *ref = fmalloc((long)n * out), *ref_r = fmalloc((long)n * out);
                void *w = make_weights(t, out, in, exact);
                fill(x, (long)n * in, 1.0f);
                for (long i = 0; i < (long)n * in; i++)
                    xr[i] = t == DTYPE_F32 ? x[i] : round_f16(x[i]);
                for (long i = 0; i < (long)out * in; i++)
                    wr[i] = t == DTYPE_F32 ? exact[i] : round_f16(exact[i]);
                dot_rows(ref_r, wr, xr, n, in, out);
                for (int r = 0; r < n; r++)
                    for (int o = 0; o < out; o++) {
                        const char *row = (const char *)w + dtype_row_bytes(t, in) * o;
                        ref[(long)r * out + o] = (float)dot_reference(row, t, x + (long)r * in, in);
                    }
                void *cpu_scratch = malloc(matmul_scratch_bytes(t, n, in) + 64);
                matmul(tp, cpu, w, t, x, n, in, out, cpu_scratch);
                void *dw = weights_to_dev(w, t, out, in);
                float *dx = to_dev(x, sizeof(float) * n * in), *dy = dev_floats((long)n * out);
                size_t bytes = cuda_gemm_scratch_bytes(t, n, in, out);
                gemm_run(y, dy, dw, t, dx, n, in, out, bytes);
                char shape[80];
                snprintf(shape, sizeof shape, "type=%s in=%d out=%d n=%d", dtype_name(t), in, out,
                         n);
                check_nmse("gemm", shape, nmse(y, ref_r, (long)n * out), 1e-12);
                check_nmse("gemm~x", shape, nmse(y, ref, (long)n * out),
                           t == DTYPE_F32 ? 1e-12 : 1e-6);
                check_nmse("gemm~cpu", shape, nmse(y, cpu, (long)n * out),
                           t == DTYPE_F32 ? 1e-12 : dtype_block_elems(t) == QK ? 1e-4 : 1e-6);
                if (dequantized) {
                    /* the weight part of the scratch cut to 7 rows */
                    size_t seven = bytes - sizeof(uint16_t) * (size_t)(out - 7) * in;
                    gemm_run(y, dy, dw, t, dx, n, in, out, seven);
                    snprintf(shape, sizeof shape, "type=%s in=%d out=%d n=%d slices=7", dtype_name(t),
                             in, out, n);
                    check_nmse("gemm", shape, nmse(y, ref_r, (long)n * out), 1e-12);
                }
                cuda_free(dw); cuda_free(dx); cuda_free(dy);
                free(exact); free(x); free(wr); free(xr); free(y); free(cpu); free(ref);
                free(ref_r); free(w); free(cpu_scratch);
            }
    /* The scratch bound: a 7B w_down (4096 × 11008) in a 512-row pass
     * dequantizes at most CUDA_GEMM_SLICE_WEIGHTS weights (16 MiB) at a time
     * (704 rows), beside x in f16 (the F16 path's scratch). */
    for (size_t ti = 2; ti < N_WEIGHT_TYPES; ti++) {
        size_t extra = cuda_gemm_scratch_bytes(weight_types[ti], 512, 11008, 4096) -
                       cuda_gemm_scratch_bytes(DTYPE_F16, 512, 11008, 4096);
        assert_true(extra <= (16u << 20));
        assert_int_equal(extra, sizeof(uint16_t) * 704 * 11008);
    }
    assert_int_equal(cuda_gemm_scratch_bytes(DTYPE_F32, 512, 11008, 4096), 0);
    threadpool_free(tp);
}

static void test_attention(void **state)
{
    (void)state;
    struct threadpool *tp = threadpool_new(1);
    /* hd, heads, kv heads, pos0, n, block: spans crossed at 256 */
    const int cases[][6] = {{16, 4, 2, 0, 1, 32},   {16, 4, 2, 5, 7, 128}, {64, 2, 2, 0, 4, 64},
                            {64, 4, 1, 10, 3, 100},  {32, 2, 1, 250, 9, 128}, {128, 1, 1, 300, 2, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int hd = cases[ci][0], heads = cases[ci][1], kvh = cases[ci][2], pos0 = cases[ci][3];
        int n = cases[ci][4], block = cases[ci][5], ctx = pos0 + n + 3;
        long q_len = (long)n * heads * hd, kv_len = (long)ctx * kvh * hd;
        float *q = fmalloc(q_len), *k = fmalloc(kv_len), *v = fmalloc(kv_len);
        float *ref = fmalloc(q_len), *out = fmalloc(q_len), *one = fmalloc((long)heads * hd);
        fill(q, q_len, 2.0f); fill(k, kv_len, 2.0f); fill(v, kv_len, 1.0f);
        float *scratch = fmalloc(attention_scratch_floats(1, ctx));
        attention(tp, ref, q, k, v, n, pos0, heads, kvh, hd, scratch, ctx);
        float *dq = to_dev(q, sizeof(float) * q_len), *dk = to_dev(k, sizeof(float) * kv_len);
        float *dv = to_dev(v, sizeof(float) * kv_len), *dout = dev_floats(q_len);
        float *ds = dev_floats((long)cuda_attention_scratch_floats(n, heads, hd, ctx));
        int32_t *dpos = to_dev(&(int32_t){pos0}, sizeof(int32_t));
        int32_t *dlast = to_dev(&(int32_t){pos0 + n - 1}, sizeof(int32_t));
        /* the layer's K and V base addresses, read on the device */
        float **dkv = to_dev((float *[]){dk, dv}, sizeof(float *) * 2);
        cuda_attention(dout, dq, dkv, dkv + 1, n, dpos, pos0, heads, kvh, hd, ctx, ds, block);
        to_host(out, dout, sizeof(float) * q_len);
        char shape[80];
        snprintf(shape, sizeof shape, "hd=%d heads=%d/%d pos0=%d n=%d block=%d", hd, heads, kvh,
                 pos0, n, block);
        check_nmse("attention", shape, nmse(out, ref, q_len), 1e-11);
        /* Batch invariance: the last row alone, at its own position; and the
         * same with the grid of a graph (every span, idle blocks leaving). */
        for (int graph_grid = 0; graph_grid < 2; graph_grid++) {
            cuda_attention(dout, dq + (long)(n - 1) * heads * hd, dkv, dkv + 1, 1, dlast,
                           graph_grid ? ctx - 1 : pos0 + n - 1, heads, kvh, hd, ctx, ds, block);
            to_host(one, dout, sizeof(float) * heads * hd);
            assert_memory_equal(one, out + (long)(n - 1) * heads * hd, sizeof(float) * heads * hd);
        }

        /* The half-size cache: cuda_kv_store_f16 must round each element as
         * the CPU's f32_to_fp16 (bitwise), attention over it must equal the
         * CPU's on the rounded K/V (fp32 arithmetic either way), and stay
         * batch invariant. Against the f32 cache the only difference is that
         * rounding: relative error <= 2^-11 per element, NMSE ~1e-7 here. */
        uint16_t *kh = malloc(sizeof(uint16_t) * kv_len), *vh = malloc(sizeof(uint16_t) * kv_len);
        float *kr = fmalloc(kv_len), *vr = fmalloc(kv_len), *ref_r = fmalloc(q_len);
        for (long i = 0; i < kv_len; i++) {
            kh[i] = f32_to_fp16(k[i]); vh[i] = f32_to_fp16(v[i]);
            kr[i] = fp16_to_f32(kh[i]); vr[i] = fp16_to_f32(vh[i]);
        }
        attention(tp, ref_r, q, kr, vr, n, pos0, heads, kvh, hd, scratch, ctx);
        uint16_t *dkh = cuda_alloc(sizeof(uint16_t) * kv_len), *dvh = cuda_alloc(sizeof(uint16_t) * kv_len);
        int32_t *dzero = to_dev(&(int32_t){0}, sizeof(int32_t));
        uint16_t **dkvh = to_dev((uint16_t *[]){dkh, dvh}, sizeof(uint16_t *) * 2);
        cuda_kv_store_f16(dkvh, dk, ctx, kvh * hd, dzero);
        cuda_kv_store_f16(dkvh + 1, dv, ctx, kvh * hd, dzero);
        uint16_t *back = malloc(sizeof(uint16_t) * kv_len);
        to_host(back, dkh, sizeof(uint16_t) * kv_len);
        assert_memory_equal(back, kh, sizeof(uint16_t) * kv_len);
        to_host(back, dvh, sizeof(uint16_t) * kv_len);
        assert_memory_equal(back, vh, sizeof(uint16_t) * kv_len);
        cuda_attention_f16kv(dout, dq, dkvh, dkvh + 1, n, dpos, pos0, heads, kvh, hd, ctx, ds, block);
        to_host(out, dout, sizeof(float) * q_len);
        check_nmse("attn f16kv", shape, nmse(out, ref_r, q_len), 1e-11);
        check_nmse("attn~f32kv", shape, nmse(out, ref, q_len), 1e-5);
        for (int graph_grid = 0; graph_grid < 2; graph_grid++) {
            cuda_attention_f16kv(dout, dq + (long)(n - 1) * heads * hd, dkvh, dkvh + 1, 1, dlast,
                                 graph_grid ? ctx - 1 : pos0 + n - 1, heads, kvh, hd, ctx, ds,
                                 block);
            to_host(one, dout, sizeof(float) * heads * hd);
            assert_memory_equal(one, out + (long)(n - 1) * heads * hd, sizeof(float) * heads * hd);
        }
        cuda_free(dkh); cuda_free(dvh); cuda_free(dzero); cuda_free(dkvh); cuda_free(dkv);
        free(kh); free(vh); free(kr); free(vr); free(ref_r); free(back);
        cuda_free(dq); cuda_free(dk); cuda_free(dv); cuda_free(dout); cuda_free(ds);
        cuda_free(dpos); cuda_free(dlast);
        free(q); free(k); free(v); free(ref); free(out); free(one); free(scratch);
    }
    threadpool_free(tp);
}

static int by_logit_desc(const float *l, int a, int b)
{
    return l[a] > l[b] || (l[a] == l[b] && a < b);
}

/* The k best ids of logits (n), descending, lower id first on ties. */
static void top_ids(const float *l, int n, int k, int32_t *ids)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            bool taken = false;
            for (int p = 0; p < j; p++)
                taken |= ids[p] == i;
            if (!taken && (best < 0 || by_logit_desc(l, i, best)))
                best = i;
        }
        ids[j] = best;
    }
}

struct head_out {
    int32_t *id;
    float *logit, *lse, *logits;
};

static struct head_out run_head(const float *dh, int n, int dim, const float *dg, const void *dw,
                                enum dtype t, int vocab, int k)
{
    struct head_out o = {malloc(sizeof(int32_t) * n * k), fmalloc((long)n * k), fmalloc(n),
                         fmalloc((long)n * vocab)};
    int32_t *did = cuda_alloc(sizeof(int32_t) * n * k);
    float *dl = dev_floats((long)n * k), *dlse = dev_floats(n), *dlog = dev_floats((long)n * vocab);
    void *scratch = cuda_alloc(cuda_head_scratch_bytes(vocab));
    cuda_exit_head(dh, n, dim, dg, 1e-5f, dw, t, vocab, k, did, dl, dlse, dlog, scratch);
    to_host(o.id, did, sizeof(int32_t) * n * k);
    to_host(o.logit, dl, sizeof(float) * n * k);
    to_host(o.lse, dlse, sizeof(float) * n);
    to_host(o.logits, dlog, sizeof(float) * n * vocab);
    cuda_free(did); cuda_free(dl); cuda_free(dlse); cuda_free(dlog); cuda_free(scratch);
    return o;
}

static void head_out_free(struct head_out *o)
{
    free(o->id); free(o->logit); free(o->lse); free(o->logits);
}

static void test_exit_head(void **state)
{
    (void)state;
    const int cases[][4] = {{64, 100, 1, 1}, {64, 300, 5, 8}, {128, 1000, 3, 16}, {256, 64, 16, 4}};
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            enum dtype t = weight_types[ti];
            int dim = cases[ci][0], vocab = cases[ci][1], n = cases[ci][2], k = cases[ci][3];
            float *exact = fmalloc((long)vocab * dim), *h = fmalloc((long)n * dim);
            float *g = fmalloc(dim), *normed = fmalloc((long)n * dim);
            float *ref = fmalloc((long)n * vocab);
            void *w = make_weights(t, vocab, dim, exact);
            fill(h, (long)n * dim, 3.0f);
            fill(g, dim, 1.0f);
            rmsnorm_rows(normed, h, g, n, dim, 1e-5f);
            for (int r = 0; r < n; r++)
                for (int o = 0; o < vocab; o++)
                    ref[(long)r * vocab + o] =
                        (float)dot_reference((const char *)w + dtype_row_bytes(t, dim) * o, t,
                                             normed + (long)r * dim, dim);
            float *dh = to_dev(h, sizeof(float) * n * dim), *dg = to_dev(g, sizeof(float) * dim);
            void *dw = weights_to_dev(w, t, vocab, dim);
            struct head_out o = run_head(dh, n, dim, dg, dw, t, vocab, k);
            char shape[80];
            snprintf(shape, sizeof shape, "type=%s dim=%d vocab=%d n=%d k=%d", dtype_name(t), dim,
                     vocab, n, k);
            check_nmse("exit_head", shape, nmse(o.logits, ref, (long)n * vocab), 1e-11);
            for (int r = 0; r < n; r++) {
                const float *lr = o.logits + (long)r * vocab;
                /* The top list is exactly the top of the kernel's own logits. */
                int32_t ids[16];
                top_ids(lr, vocab, k, ids);
                assert_memory_equal(ids, o.id + (long)r * k, sizeof(int32_t) * k);
                for (int j = 0; j < k; j++)
                    assert_true(o.logit[(long)r * k + j] == lr[ids[j]]);
                double m = lr[ids[0]], s = 0;
                for (int i = 0; i < vocab; i++)
                    s += exp((double)lr[i] - m);
                assert_float_equal(o.lse[r], m + log(s), 1e-4 * fabs(m + log(s)) + 1e-5);
                /* And its argmax is the reference's unless two logits are within rounding. */
                int32_t ref_top;
                top_ids(ref + (long)r * vocab, vocab, 1, &ref_top);
                assert_true(ref_top == ids[0] || fabsf(lr[ref_top] - lr[ids[0]]) < 1e-4f);
            }
            /* Batch invariance: the last row alone. */
            struct head_out one = run_head(dh + (long)(n - 1) * dim, 1, dim, dg, dw, t, vocab, k);
            assert_memory_equal(one.logits, o.logits + (long)(n - 1) * vocab, sizeof(float) * vocab);
            assert_memory_equal(one.id, o.id + (long)(n - 1) * k, sizeof(int32_t) * k);
            assert_true(one.lse[0] == o.lse[n - 1]);
            head_out_free(&one);
            head_out_free(&o);
            cuda_free(dh); cuda_free(dg); cuda_free(dw);
            free(exact); free(h); free(g); free(normed); free(ref); free(w);
        }
}

static void test_sample(void **state)
{
    (void)state;
    enum { VOCAB = 200, K = 16, ROWS = 4 };
    const float temps[] = {0.0f, 0.7f, 1.3f}, top_ps[] = {1.0f, 0.9f, 0.5f};
    const int top_ks[] = {1, 5, 16};
    float logits[ROWS][VOCAB], cand_logit[ROWS * K], u[ROWS];
    int32_t cand_id[ROWS * K];
    struct token_prob *dist = malloc(sizeof *dist * VOCAB);
    for (int r = 0; r < ROWS; r++) {
        fill(logits[r], VOCAB, 4.0f);
        logits[r][7] = logits[r][9]; /* a tie */
        top_ids(logits[r], VOCAB, K, cand_id + r * K);
        for (int j = 0; j < K; j++)
            cand_logit[r * K + j] = logits[r][cand_id[r * K + j]];
    }
    int32_t *did = to_dev(cand_id, sizeof cand_id), *dtok = cuda_alloc(sizeof(int32_t) * ROWS);
    float *dl = to_dev(cand_logit, sizeof cand_logit), *dprob = dev_floats(ROWS * K);
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++) {
                struct sampling s = {temps[a], top_ks[b], top_ps[c]};
                struct rng draws[ROWS];
                for (int r = 0; r < ROWS; r++) {
                    rng_seed(&draws[r], (uint64_t)(100 * a + 10 * b + c + r));
                    struct rng copy = draws[r];
                    u[r] = (float)rng_uniform(&copy);
                }
                /* The kernel takes u as float: make the CPU draw see the same number. */
                float *du = to_dev(u, sizeof u);
                cuda_sample(did, dl, ROWS, K, s.temp, s.top_k, s.top_p, du, dtok, dprob);
                int32_t tok[ROWS];
                float prob[ROWS * K];
                to_host(tok, dtok, sizeof tok);
                to_host(prob, dprob, sizeof prob);
                for (int r = 0; r < ROWS; r++) {
                    int m = sampling_dist(&s, logits[r], VOCAB, dist);
                    float ref[K] = {0};
                    for (int j = 0; j < m; j++) {
                        assert_int_equal(dist[j].id, cand_id[r * K + j]);
                        ref[j] = dist[j].p;
                    }
                    char shape[64];
                    snprintf(shape, sizeof shape, "temp=%.1f top_k=%d top_p=%.1f", (double)s.temp,
                             s.top_k, (double)s.top_p);
                    check_nmse(r ? NULL : "sample", shape, nmse(prob + r * K, ref, K), 1e-12);
                    double acc = 0;
                    int32_t want = dist[m - 1].id;
                    for (int j = 0; j < m; j++) {
                        acc += dist[j].p;
                        if (u[r] < acc) {
                            want = dist[j].id;
                            break;
                        }
                    }
                    assert_int_equal(tok[r], want);
                }
                cuda_free(du);
            }
    cuda_free(did); cuda_free(dtok); cuda_free(dl); cuda_free(dprob);
    free(dist);
}

int main(void)
{
    rng_seed(&g_rng, 8);
    if (cuda_device_count() < 1) {
        printf("test_cuda_ops: no CUDA device; skipped\n");
        return 0;
    }
    char name[256];
    cuda_device_name(name, sizeof name);
    printf("device: %s\n", name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed),     cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),      cmocka_unit_test(test_add_swiglu),
        cmocka_unit_test(test_gemv),      cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_exit_head), cmocka_unit_test(test_sample),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("%d cases compared\n", n_cases);
    return failed;
}
