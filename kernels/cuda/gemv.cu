/* Multi-row GEMV: y (n, out) = x (n, in) · wᵀ for n <= 16 rows per launch.
 *
 * One warp per output row of w reads that row once for all n input rows.
 * Lane l owns columns [l*C + k*32*C, +C) (C = the type's load chunk) and
 * accumulates each input row in fp32 in column order; the warp then sums its
 * lanes in a fixed butterfly. Nothing in that order depends on n, so a row's
 * result is bitwise the same in a pass of 1 row or of 16 (batch invariance):
 * each row has its own accumulator and the rows never mix. */
#include "common.cuh"
#include "ops.h"

// y (n, out), w (out, in) of TYPE, x (n, in); NMAX >= n
template <int TYPE, int NMAX>
__global__ void gemv_kernel(float *y, const void *w, const float *x, int n, int in, int out)
{
    constexpr int C = weight_row<TYPE>::CHUNK;
    int lane = threadIdx.x % WARP;
    int o = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (o >= out)
        return; /* the whole warp leaves together; no block barrier follows */
    float acc[NMAX];
    for (int r = 0; r < NMAX; r++)
        acc[r] = 0.0f;
    for (int col = lane * C; col < in; col += WARP * C) {
        float wv[C];
        weight_row<TYPE>::load(w, out, in, o, col, wv);
    TANDEM_UNROLL
        for (int r = 0; r < NMAX; r++) {
            if (r >= n)
                break;
            const float4 *xr = reinterpret_cast<const float4 *>(x + (size_t)r * in + col);
    TANDEM_UNROLL
            for (int i = 0; i < C / 4; i++) {
                float4 xv = xr[i];
                acc[r] += wv[4 * i] * xv.x;
                acc[r] += wv[4 * i + 1] * xv.y;
                acc[r] += wv[4 * i + 2] * xv.z;
                acc[r] += wv[4 * i + 3] * xv.w;
            }
        }
    }
    for (int r = 0; r < NMAX; r++) {
        if (r >= n)
            break;
        float s = warp_sum(acc[r]);
        if (lane == 0)
            y[(size_t)r * out + o] = s;
    }
}

template <int TYPE>
static void gemv_launch(float *y, const void *w, const float *x, int n, int in, int out, int warps)
{
    int blocks = (out + warps - 1) / warps;
    /* The smallest instantiation that holds n rows: fewer idle registers. */
    auto k = n <= 1 ? gemv_kernel<TYPE, 1>
           : n <= 2 ? gemv_kernel<TYPE, 2>
           : n <= 4 ? gemv_kernel<TYPE, 4>
           : n <= 8 ? gemv_kernel<TYPE, 8>
                    : gemv_kernel<TYPE, 16>;
    TANDEM_LAUNCH(k, blocks, warps * WARP, 0, 0, y, w, x, n, in, out);
}

extern "C" void cuda_gemv(float *y, const void *w, int type, const float *x, int n, int in,
                          int out, int warps)
{
    int chunk = type == W_F32 ? 4 : type == W_F16 || type == W_BF16 ? 8 : 32; /* quantized: whole blocks */
    if (in % chunk) {
        fprintf(stderr, "cuda_gemv: %d columns is not a multiple of %d\n", in, chunk);
        abort();
    }
    warps = block_threads(warps * WARP, 4 * WARP) / WARP;
    for (int r0 = 0; r0 < n; r0 += 16) {
        int rows = n - r0 < 16 ? n - r0 : 16;
        WEIGHT_TYPE_DISPATCH(type, T,
                             gemv_launch<T>(y + (size_t)r0 * out, w, x + (size_t)r0 * in, rows, in,
                                            out, warps));
    }
}
