/* RMSNorm: one block per row, the sum of squares reduced in a fixed tree. */
#include "common.cuh"
#include "ops.h"

// out (n, dim), x (n, dim), w (dim)
__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int dim, float eps)
{
    __shared__ float scratch[32];
    const float *xr = x + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = block_sum(ss, scratch);
    float scale = rsqrtf(ss / dim + eps);
    float *o = out + (size_t)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        o[i] = xr[i] * scale * w[i];
}

extern "C" void cuda_rmsnorm_rows(float *out, const float *x, const float *w, int n, int dim,
                                  float eps, int block)
{
    TANDEM_LAUNCH(rmsnorm_kernel, n, block_threads(block, 256), 0, 0, out, x, w, dim, eps);
}
