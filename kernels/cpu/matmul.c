/* matmul's front end: quantizes x when the weights are quantized, splits the
 * output rows over the pool and hands each slice to a back end. */
#include "matmul.h"

#include <assert.h>
#include <stdbool.h>

#include "matmul_impl.h"
#include "quant.h"

static bool is_quantized(enum dtype t)
{
    return dtype_block_elems(t) > 1;
}

size_t matmul_scratch_bytes(enum dtype t, int n, int in)
{
    if (!is_quantized(t))
        return 0;
    return (size_t)n * (size_t)(in / QK) * sizeof(struct block_q8x);
}

const struct matmul_backend *const matmul_backends[] = {
    &matmul_backend_scalar,
#if defined(MATMUL_HAVE_AVX2)
    &matmul_backend_avx2,
#endif
#if defined(MATMUL_HAVE_AVX512)
    &matmul_backend_avx512,
#endif
#if defined(MATMUL_HAVE_NEON)
    &matmul_backend_neon,
#endif
};
const int matmul_backend_count = sizeof matmul_backends / sizeof matmul_backends[0];

const struct matmul_backend *matmul_backend_best(void)
{
    return matmul_backends[matmul_backend_count - 1];
}

struct matmul_call {
    matmul_rows_fn rows;
    struct matmul_job job;
};

static void matmul_thread(void *ctx, int ith, int nth)
{
    const struct matmul_call *call = ctx;
    const int out = call->job.out;
    int lo, hi;
    thread_slice((out + MATMUL_OUT_ALIGN - 1) / MATMUL_OUT_ALIGN, ith, nth, &lo, &hi);
    lo *= MATMUL_OUT_ALIGN;
    hi = hi * MATMUL_OUT_ALIGN < out ? hi * MATMUL_OUT_ALIGN : out;
    if (lo < hi)
        call->rows(&call->job, lo, hi);
}

void matmul_with(const struct matmul_backend *be, struct threadpool *tp, float *y,
                 const void *w, enum dtype t, const float *x, int n, int in, int out,
                 void *scratch)
{
    assert(dtype_is_supported(t) && be->rows[t]);
    matmul_rows_with(be, be->rows[t], tp, y, w, t, x, n, in, out, scratch);
}

void matmul_rows_with(const struct matmul_backend *be, matmul_rows_fn rows, struct threadpool *tp,
                      float *y, const void *w, enum dtype t, const float *x, int n, int in,
                      int out, void *scratch)
{
    assert(in > 0 && dtype_row_bytes(t, (uint64_t)in) > 0);
    if (n <= 0 || out <= 0)
        return;
    const void *xin = x;
    if (is_quantized(t)) {
        assert(scratch);
        struct block_q8x *xq = scratch;
        for (int r = 0; r < n; r++)
            be->quantize_x(x + (size_t)r * (size_t)in, xq + (size_t)r * (size_t)(in / QK), in);
        xin = xq;
    }
    struct matmul_call call = {
        .rows = rows,
        .job = {.y = y, .w = w, .w_stride = dtype_row_bytes(t, (uint64_t)in), .x = xin,
                .n = n, .in = in, .out = out},
    };
    threadpool_run(tp, matmul_thread, &call);
}

void matmul(struct threadpool *tp, float *y, const void *w, enum dtype t,
            const float *x, int n, int in, int out, void *scratch)
{
    matmul_with(matmul_backend_best(), tp, y, w, t, x, n, in, out, scratch);
}

double dot_reference(const void *w_row, enum dtype t, const float *x, int in)
{
    float wf[QK];
    double sum = 0.0;
    for (int i = 0; i < in; i += QK) {
        const int len = in - i < QK ? in - i : QK;
        dequantize_row(t, (const uint8_t *)w_row + dtype_row_bytes(t, (uint64_t)i), wf, len);
        for (int j = 0; j < len; j++)
            sum += (double)wf[j] * (double)x[i + j];
    }
    return sum;
}
