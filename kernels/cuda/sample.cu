/* Sampling from a head's sorted top list, the rule of sampling_dist and
 * sample_from (engine/sample.c), in double like them, so a seeded draw picks
 * the token the CPU would. The list is short (<= CUDA_HEAD_MAX_K): one thread
 * per row. */
#include "common.cuh"
#include "ops.h"

// cand_id, cand_logit, prob (n, n_cand); u, token (n)
__global__ void sample_kernel(const int32_t *cand_id, const float *cand_logit, int n_cand,
                              float temp, int top_k, float top_p, const float *u, int32_t *token,
                              float *prob)
{
    int r = blockIdx.x;
    if (threadIdx.x != 0)
        return;
    const int32_t *ids = cand_id + (size_t)r * n_cand;
    const float *lg = cand_logit + (size_t)r * n_cand;
    float *p = prob + (size_t)r * n_cand;
    for (int i = 0; i < n_cand; i++)
        p[i] = 0.0f;
    if (temp <= 0.0f) {
        p[0] = 1.0f;
        token[r] = ids[0];
        return;
    }
    int n = top_k > 0 && top_k < n_cand ? top_k : n_cand;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double e = exp(((double)lg[i] - lg[0]) / temp);
        p[i] = (float)e;
        sum += e;
    }
    if (top_p < 1.0f) {
        double mass = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            mass += p[i] / sum;
            if (mass >= top_p) {
                keep = i + 1;
                break;
            }
        }
        for (int i = keep; i < n; i++)
            p[i] = 0.0f;
        n = keep;
        sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += p[i];
    }
    for (int i = 0; i < n; i++)
        p[i] = (float)(p[i] / sum);
    double acc = 0.0;
    token[r] = ids[n - 1]; /* rounding left u above the sum */
    for (int i = 0; i < n; i++) {
        acc += p[i];
        if (u[r] < acc) {
            token[r] = ids[i];
            break;
        }
    }
}

extern "C" void cuda_sample(const int32_t *cand_id, const float *cand_logit, int n, int n_cand,
                            float temp, int top_k, float top_p, const float *u, int32_t *token,
                            float *prob)
{
    TANDEM_LAUNCH(sample_kernel, n, WARP, 0, 0, cand_id, cand_logit, n_cand, temp, top_k, top_p, u,
                  token, prob);
}
