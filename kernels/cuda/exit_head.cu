/* The fused early-exit / LM head: RMSNorm, LM-head GEMV, log-sum-exp and
 * top-k in one pass over the head's weights (vocab x dim, the largest matrix
 * a verify pass reads at an exit).
 *
 * Pass 1: a fixed grid of blocks (from vocab alone, so the same for any n)
 * strides over the vocabulary, a warp per vocabulary row. Each block first
 * computes the inverse RMS of the n hidden rows; a logit is then
 * rinv[r] * sum_i w[o][i] * x[r][i] * g[i], accumulated as in the GEMV. Lane 0
 * of each warp folds its logits into a running max/sum-of-exp and a sorted
 * top-k list; the block merges its warps' lists into one partial per row.
 * Pass 2 merges the blocks' partials in a fixed order (a warp per row). */
#include "common.cuh"
#include "ops.h"

#define HEAD_WARPS 8
#define HEAD_MAX_BLOCKS 512

struct head_partial {
    float m, s; /* max logit, sum of exp(logit - m) */
    float val[CUDA_HEAD_MAX_K];
    int32_t id[CUDA_HEAD_MAX_K];
};

static int head_blocks(int vocab)
{
    int b = (vocab + HEAD_WARPS - 1) / HEAD_WARPS;
    return b < HEAD_MAX_BLOCKS ? b : HEAD_MAX_BLOCKS;
}

extern "C" size_t cuda_head_scratch_bytes(int vocab)
{
    return (size_t)head_blocks(vocab) * 16 * sizeof(head_partial);
}

/* (v, id) ranks before (w, jd): larger logit first, lower id on ties. */
__device__ __forceinline__ bool ranks_before(float v, int id, float w, int jd)
{
    return v > w || (v == w && id < jd);
}

/* Inserts (v, id) into a list sorted by ranks_before, dropping the last. */
__device__ __forceinline__ void top_insert(float *val, int32_t *id, int k, float v, int32_t i)
{
    if (!ranks_before(v, i, val[k - 1], id[k - 1]))
        return;
    int j = k - 1;
    while (j > 0 && ranks_before(v, i, val[j - 1], id[j - 1])) {
        val[j] = val[j - 1];
        id[j] = id[j - 1];
        j--;
    }
    val[j] = v;
    id[j] = i;
}

/* Folds (m2, s2) into the running (m, s) of a log-sum-exp. */
__device__ __forceinline__ void lse_merge(float &m, float &s, float m2, float s2)
{
    if (s2 == 0.0f)
        return;
    if (m2 > m) {
        s = s * expf(m - m2) + s2;
        m = m2;
    } else {
        s += s2 * expf(m2 - m);
    }
}

// part (gridDim.x, 16); logits (n, vocab) or NULL; x (n, dim); g (dim); w (vocab, dim)
template <int TYPE, int NMAX>
__global__ void __launch_bounds__(HEAD_WARPS * WARP)
head_kernel(head_partial *part, float *logits, const float *x, int n, int dim, const float *g,
            float eps, const void *w, int vocab, int k)
{
    constexpr int C = weight_row<TYPE>::CHUNK;
    __shared__ float rinv[NMAX];
    __shared__ float scratch[32];
    __shared__ float cand_val[HEAD_WARPS][NMAX][CUDA_HEAD_MAX_K];
    __shared__ int32_t cand_id[HEAD_WARPS][NMAX][CUDA_HEAD_MAX_K];
    __shared__ float warp_m[HEAD_WARPS][NMAX], warp_s[HEAD_WARPS][NMAX];
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;

    for (int r = 0; r < n; r++) {
        float ss = 0.0f;
        for (int i = threadIdx.x; i < dim; i += blockDim.x)
            ss += x[(size_t)r * dim + i] * x[(size_t)r * dim + i];
        ss = block_sum(ss, scratch);
        if (threadIdx.x == 0)
            rinv[r] = rsqrtf(ss / dim + eps);
    }
    if (lane == 0)
        for (int r = 0; r < n; r++) {
            warp_m[warp][r] = -INFINITY;
            warp_s[warp][r] = 0.0f;
            for (int j = 0; j < k; j++) {
                cand_val[warp][r][j] = -INFINITY;
                cand_id[warp][r][j] = 0x7fffffff;
            }
        }
    __syncthreads();

    for (int o = blockIdx.x * HEAD_WARPS + warp; o < vocab; o += gridDim.x * HEAD_WARPS) {
        float acc[NMAX];
        for (int r = 0; r < NMAX; r++)
            acc[r] = 0.0f;
        for (int col = lane * C; col < dim; col += WARP * C) {
            float wv[C];
            weight_row<TYPE>::load(w, vocab, dim, o, col, wv);
            for (int i = 0; i < C; i++)
                wv[i] *= g[col + i];
    TANDEM_UNROLL
            for (int r = 0; r < NMAX; r++) {
                if (r >= n)
                    break;
                for (int i = 0; i < C; i++)
                    acc[r] += wv[i] * x[(size_t)r * dim + col + i];
            }
        }
        for (int r = 0; r < NMAX; r++) {
            if (r >= n)
                break;
            float logit = warp_sum(acc[r]) * rinv[r];
            if (lane == 0) {
                if (logits)
                    logits[(size_t)r * vocab + o] = logit;
                lse_merge(warp_m[warp][r], warp_s[warp][r], logit, 1.0f);
                top_insert(cand_val[warp][r], cand_id[warp][r], k, logit, o);
            }
        }
    }
    __syncthreads();

    /* Thread r merges the warps' lists of row r, warps in order. */
    if (threadIdx.x < (unsigned)n) {
        int r = threadIdx.x;
        head_partial *p = &part[(size_t)blockIdx.x * 16 + r];
        float m = -INFINITY, s = 0.0f;
        for (int j = 0; j < k; j++) {
            p->val[j] = -INFINITY;
            p->id[j] = 0x7fffffff;
        }
        for (int wi = 0; wi < HEAD_WARPS; wi++) {
            lse_merge(m, s, warp_m[wi][r], warp_s[wi][r]);
            for (int j = 0; j < k; j++)
                top_insert(p->val, p->id, k, cand_val[wi][r][j], cand_id[wi][r][j]);
        }
        p->m = m;
        p->s = s;
    }
}

// top_id, top_logit (n, k); lse (n); part (blocks, 16). One warp per row:
// lane l merges blocks l, l+32, ..., then lane 0 merges the lanes in order.
__global__ void head_merge_kernel(int32_t *top_id, float *top_logit, float *lse,
                                  const head_partial *part, int blocks, int k)
{
    __shared__ float val[WARP][CUDA_HEAD_MAX_K];
    __shared__ int32_t id[WARP][CUDA_HEAD_MAX_K];
    __shared__ float lane_m[WARP], lane_s[WARP];
    int r = blockIdx.x, lane = threadIdx.x;
    for (int j = 0; j < k; j++) {
        val[lane][j] = -INFINITY;
        id[lane][j] = 0x7fffffff;
    }
    float m = -INFINITY, s = 0.0f;
    for (int b = lane; b < blocks; b += WARP) {
        const head_partial *p = &part[(size_t)b * 16 + r];
        lse_merge(m, s, p->m, p->s);
        for (int j = 0; j < k; j++)
            top_insert(val[lane], id[lane], k, p->val[j], p->id[j]);
    }
    lane_m[lane] = m;
    lane_s[lane] = s;
    __syncthreads();
    if (lane != 0)
        return;
    for (int l = 1; l < WARP; l++) {
        lse_merge(m, s, lane_m[l], lane_s[l]);
        for (int j = 0; j < k; j++)
            top_insert(val[0], id[0], k, val[l][j], id[l][j]);
    }
    for (int j = 0; j < k; j++) {
        top_id[(size_t)r * k + j] = id[0][j];
        top_logit[(size_t)r * k + j] = val[0][j];
    }
    lse[r] = m + logf(s);
}

template <int TYPE>
static void head_launch(head_partial *part, float *logits, const float *x, int n, int dim,
                        const float *g, float eps, const void *w, int vocab, int k)
{
    auto kern = n <= 1 ? head_kernel<TYPE, 1>
              : n <= 2 ? head_kernel<TYPE, 2>
              : n <= 4 ? head_kernel<TYPE, 4>
              : n <= 8 ? head_kernel<TYPE, 8>
                       : head_kernel<TYPE, 16>;
    TANDEM_LAUNCH(kern, head_blocks(vocab), HEAD_WARPS * WARP, 0, 0, part, logits, x, n, dim, g,
                  eps, w, vocab, k);
}

static unsigned long launches;

extern "C" unsigned long cuda_exit_head_launches(void)
{
    return launches;
}

extern "C" void cuda_exit_head(const float *hidden, int n, int dim, const float *norm_w, float eps,
                               const void *head, int type, int vocab, int top_k, int32_t *top_id,
                               float *top_logit, float *lse, float *logits, void *scratch)
{
    if (n < 1 || n > 16 || top_k < 1 || top_k > CUDA_HEAD_MAX_K || top_k > vocab) {
        fprintf(stderr, "cuda_exit_head: n %d, top_k %d out of range\n", n, top_k);
        abort();
    }
    head_partial *part = (head_partial *)scratch;
    launches++;
    WEIGHT_TYPE_DISPATCH(type, T,
                         head_launch<T>(part, logits, hidden, n, dim, norm_w, eps, head, vocab,
                                        top_k));
    TANDEM_LAUNCH(head_merge_kernel, n, WARP, 0, 0, top_id, top_logit, lse, part,
                  head_blocks(vocab), top_k);
}
