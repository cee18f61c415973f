/* Causal grouped-query attention of n new rows over the KV cache.
 *
 * The KV range of every row is cut into fixed spans of CUDA_ATTN_SPAN
 * positions. Pass 1 (one block per row, head and span) computes the span's
 * scores, their max m, sum l of exp(score - m) and the weighted sum of values
 * acc. Pass 2 merges a row's spans in span order. Span boundaries depend on
 * positions only, and a row uses only the spans below its own position, so
 * its result is the same whatever other rows share the pass (batch
 * invariance) — unlike a split chosen from the number of rows or SMs.
 *
 * pos0 and the layer's K and V base addresses are read from device memory (a
 * captured decode graph replays with the position and the sequence of the
 * step); the grid covers the spans up to a host-side bound, and blocks past a
 * row's position leave at once. */
#include "common.cuh"
#include "ops.h"

static int n_spans(int n_ctx)
{
    return (n_ctx + CUDA_ATTN_SPAN - 1) / CUDA_ATTN_SPAN;
}

extern "C" size_t cuda_attention_scratch_floats(int max_rows, int n_heads, int head_dim, int n_ctx)
{
    return (size_t)max_rows * n_heads * n_spans(n_ctx) * (head_dim + 2);
}

/* A cache element as fp32: f32 as is, f16 (the half-size cache) widened
 * exactly; every sum below stays fp32 either way. */
__device__ __forceinline__ float kv_value(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float kv_value(const uint16_t *p, size_t i)
{
    return half_bits_to_float(p[i]);
}

// q (n, n_heads, hd); *kp, *vp (n_ctx, n_kv_heads, hd) of KV; part (n, n_heads, spans, hd + 2)
template <typename KV>
__global__ void attention_span_kernel(float *part, const float *q, const KV *const *kp,
                                      const KV *const *vp, const int32_t *pos0, int n_heads, int n_kv_heads, int hd,
                                      int spans)
{
    __shared__ float score[CUDA_ATTN_SPAN];
    __shared__ float scratch[32];
    int s = blockIdx.x, h = blockIdx.y, r = blockIdx.z;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, n_warps = blockDim.x / WARP;
    int n_pos = *pos0 + r + 1, t0 = s * CUDA_ATTN_SPAN;
    float *out = part + (((size_t)r * n_heads + h) * spans + s) * (hd + 2);
    if (t0 >= n_pos)
        return; /* past this row's causal range; the merge never reads it */
    int t1 = min(t0 + CUDA_ATTN_SPAN, n_pos);
    int kv_dim = n_kv_heads * hd, kvh = h / (n_heads / n_kv_heads);
    const float *qh = q + ((size_t)r * n_heads + h) * hd;
    const KV *k = *kp, *v = *vp;
    float scale = rsqrtf((float)hd);

    /* Scores: a warp per position, lanes over the head dimension. */
    for (int t = t0 + warp; t < t1; t += n_warps) {
        const KV *kt = k + (size_t)t * kv_dim + kvh * hd;
        float d = 0.0f;
        for (int i = lane; i < hd; i += WARP)
            d += qh[i] * kv_value(kt, i);
        d = warp_sum(d);
        if (lane == 0)
            score[t - t0] = d * scale;
    }
    __syncthreads();
    float m = -INFINITY;
    for (int t = threadIdx.x; t < t1 - t0; t += blockDim.x)
        m = fmaxf(m, score[t]);
    m = block_max(m, scratch);
    float l = 0.0f;
    for (int t = threadIdx.x; t < t1 - t0; t += blockDim.x) {
        float p = expf(score[t] - m);
        score[t] = p;
        l += p;
    }
    l = block_sum(l, scratch); /* its barriers also publish score[] */

    /* Weighted values: a thread per head dimension, positions in order. */
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float acc = 0.0f;
        for (int t = t0; t < t1; t++)
            acc += score[t - t0] * kv_value(v, (size_t)t * kv_dim + kvh * hd + i);
        out[2 + i] = acc;
    }
    if (threadIdx.x == 0) {
        out[0] = m;
        out[1] = l;
    }
}

// out (n, n_heads, hd); part as above
__global__ void attention_merge_kernel(float *out, const float *part, const int32_t *pos0,
                                       int n_heads, int hd, int spans)
{
    int h = blockIdx.x, r = blockIdx.y;
    int used = (*pos0 + r) / CUDA_ATTN_SPAN + 1; /* spans holding positions 0..pos0+r */
    const float *p = part + ((size_t)r * n_heads + h) * spans * (hd + 2);
    float m = -INFINITY;
    for (int s = 0; s < used; s++)
        m = fmaxf(m, p[(size_t)s * (hd + 2)]);
    float l = 0.0f;
    for (int s = 0; s < used; s++)
        l += p[(size_t)s * (hd + 2) + 1] * expf(p[(size_t)s * (hd + 2)] - m);
    float inv = 1.0f / l;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < used; s++)
            acc += p[(size_t)s * (hd + 2) + 2 + i] * expf(p[(size_t)s * (hd + 2)] - m);
        out[((size_t)r * n_heads + h) * hd + i] = acc * inv;
    }
}

template <typename KV>
static void attention_launch(float *out, const float *q, KV *const *k, KV *const *v, int n,
                             const int32_t *pos0, int max_pos0, int n_heads,
                             int n_kv_heads, int head_dim, int n_ctx, float *scratch, int block)
{
    int spans = n_spans(n_ctx);
    int threads = block_threads(block, 128);
    int used = (max_pos0 + n - 1) / CUDA_ATTN_SPAN + 1;
    used = used < spans ? used : spans;
    auto span = attention_span_kernel<KV>;
    TANDEM_LAUNCH(span, dim3(used, n_heads, n), threads, 0, 0, scratch, q, k, v,
                  pos0, n_heads, n_kv_heads, head_dim, spans);
    int merge_threads = head_dim < 32 ? 32 : (head_dim > 128 ? 128 : head_dim);
    TANDEM_LAUNCH(attention_merge_kernel, dim3(n_heads, n), merge_threads, 0, 0, out, scratch,
                  pos0, n_heads, head_dim, spans);
}

extern "C" void cuda_attention(float *out, const float *q, float *const *k, float *const *v,
                               int n, const int32_t *pos0, int max_pos0, int n_heads,
                               int n_kv_heads, int head_dim, int n_ctx, float *scratch, int block)
{
    attention_launch(out, q, k, v, n, pos0, max_pos0, n_heads, n_kv_heads, head_dim, n_ctx,
                     scratch, block);
}

extern "C" void cuda_attention_f16kv(float *out, const float *q, uint16_t *const *k,
                                     uint16_t *const *v, int n, const int32_t *pos0,
                                     int max_pos0, int n_heads, int n_kv_heads, int head_dim,
                                     int n_ctx, float *scratch, int block)
{
    attention_launch(out, q, k, v, n, pos0, max_pos0, n_heads, n_kv_heads, head_dim, n_ctx,
                     scratch, block);
}
