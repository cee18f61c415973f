/* Residual add and bias rows: one kernel, x broadcast with a period. */
#include "common.cuh"
#include "ops.h"

// y (len), x (period); period divides len
__global__ void add_kernel(float *y, const float *x, long len, long period)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < len;
         i += (long)gridDim.x * blockDim.x)
        y[i] += x[i % period];
}

extern "C" void cuda_add(float *y, const float *x, long len, long period, int block)
{
    int threads = block_threads(block, 256);
    long blocks = (len + threads - 1) / threads;
    TANDEM_LAUNCH(add_kernel, (unsigned)(blocks < 4096 ? blocks : 4096), threads, 0, 0, y, x, len,
                  period);
}
