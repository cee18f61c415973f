/* Writing a pass's new keys or values into the cache at a position read
 * from device memory: the GEMVs write to a fixed scratch, this copies it to
 * rows pos0.. of a layer whose base address is read from device memory too,
 * so a captured decode graph has neither the position nor the sequence in
 * its arguments. */
#include "common.cuh"
#include "ops.h"

/* An element into the cache: f32 as is; the half-size cache rounds to the
 * nearest f16 (the CPU's f32_to_fp16 on the harness). */
__device__ __forceinline__ void kv_put(float *p, long i, float x) { p[i] = x; }
__device__ __forceinline__ void kv_put(uint16_t *p, long i, float x)
{
    p[i] = __half_as_ushort(__float2half(x));
}

// *cache (n_ctx, kv_dim) of KV; rows (n, kv_dim)
template <typename KV>
__global__ void kv_store_kernel(KV *const *cache, const float *rows, long len, int kv_dim,
                                const int32_t *pos0)
{
    KV *dst = *cache + (size_t)*pos0 * kv_dim;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < len;
         i += (long)gridDim.x * blockDim.x)
        kv_put(dst, i, rows[i]);
}

template <typename KV>
static void kv_store_launch(KV *const *cache, const float *rows, int n, int kv_dim, const int32_t *pos0)
{
    long len = (long)n * kv_dim;
    long blocks = (len + 255) / 256;
    auto k = kv_store_kernel<KV>;
    TANDEM_LAUNCH(k, (unsigned)(blocks < 1024 ? blocks : 1024), 256, 0, 0, cache, rows, len,
                  kv_dim, pos0);
}

extern "C" void cuda_kv_store(float *const *cache, const float *rows, int n, int kv_dim,
                              const int32_t *pos0)
{
    kv_store_launch(cache, rows, n, kv_dim, pos0);
}

extern "C" void cuda_kv_store_f16(uint16_t *const *cache, const float *rows, int n, int kv_dim,
                                  const int32_t *pos0)
{
    kv_store_launch(cache, rows, n, kv_dim, pos0);
}
