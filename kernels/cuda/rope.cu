/* Rotary position embedding, one thread per rotated pair. Same convention as
 * kernels/cpu/ops.c: theta = pos * inv_freq[i]; pairs (2i, 2i+1), or
 * (i, i + head_dim/2) for neox. The first row's position is read from device
 * memory, so a captured decode graph stays valid as the position moves. */
#include "common.cuh"
#include "ops.h"

// x (n, n_heads, head_dim), inv_freq (head_dim/2)
__global__ void rope_kernel(float *x, int n, int n_heads, int head_dim, const int32_t *pos0,
                            const float *inv_freq, bool neox)
{
    int half = head_dim / 2;
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)n * n_heads * half)
        return;
    int i = (int)(idx % half);
    long rh = idx / half; /* row * n_heads + head */
    int r = (int)(rh / n_heads);
    float theta = (float)(*pos0 + r) * inv_freq[i];
    float c = cosf(theta), s = sinf(theta);
    float *v = x + rh * head_dim;
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

extern "C" void cuda_rope_rows(float *x, int n, int n_heads, int head_dim, const int32_t *pos0,
                               const float *inv_freq, bool neox, int block)
{
    int threads = block_threads(block, 256);
    long pairs = (long)n * n_heads * (head_dim / 2);
    TANDEM_LAUNCH(rope_kernel, (unsigned)((pairs + threads - 1) / threads), threads, 0, 0, x, n,
                  n_heads, head_dim, pos0, inv_freq, neox);
}
