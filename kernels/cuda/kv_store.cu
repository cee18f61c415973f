/* Writing a pass's new keys or values into the cache at a position read
 * from device memory: the GEMVs write to a fixed scratch, this copies it to
 * rows pos0.., so a captured decode graph has no position in its arguments. */
#include "common.cuh"
#include "ops.h"

// cache (n_ctx, kv_dim); rows (n, kv_dim)
__global__ void kv_store_kernel(float *cache, const float *rows, long len, int kv_dim,
                                const int32_t *pos0)
{
    float *dst = cache + (size_t)*pos0 * kv_dim;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < len;
         i += (long)gridDim.x * blockDim.x)
        dst[i] = rows[i];
}

extern "C" void cuda_kv_store(float *cache, const float *rows, int n, int kv_dim,
                              const int32_t *pos0)
{
    long len = (long)n * kv_dim;
    long blocks = (len + 255) / 256;
    TANDEM_LAUNCH(kv_store_kernel, (unsigned)(blocks < 1024 ? blocks : 1024), 256, 0, 0, cache,
                  rows, len, kv_dim, pos0);
}
