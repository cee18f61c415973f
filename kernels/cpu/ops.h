/* Row-wise tensor ops of the forward pass, besides matmul.
 *
 * Every op treats rows independently and reduces in a fixed order, so a row's
 * result never depends on how many rows share the call (batch invariance). */
#ifndef TANDEM_KERNELS_CPU_OPS_H
#define TANDEM_KERNELS_CPU_OPS_H

#include <stdbool.h>
#include "threadpool.h"

/* out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for n rows of dim. out may be x. */
void rmsnorm_rows(float *out, const float *x, const float *w, int n, int dim, float eps);

/* Rotary position embedding in place on n rows of n_heads heads of head_dim,
 * row r at position pos0 + r. inv_freq[i] (i < head_dim/2) is the angle per
 * position of pair i, already including any linear scaling. neox selects the
 * pairing: false rotates (2i, 2i+1) (llama), true rotates (i, i+head_dim/2)
 * (qwen2). */
void rope_rows(float *x, int n, int n_heads, int head_dim, int pos0,
               const float *inv_freq, bool neox);

/* y[r] += b, for n rows of dim. */
void add_bias_rows(float *y, const float *b, int n, int dim);
/* y[i] += x[i], i < len. */
void add_inplace(float *y, const float *x, long len);
/* out[i] = silu(gate[i]) * up[i], i < len. out may be gate. */
void swiglu(float *out, const float *gate, const float *up, long len);

/* Causal multi-head attention with grouped KV heads over a cache.
 *   q    (n, n_heads*head_dim)        rows at positions pos0 .. pos0+n-1
 *   k, v (pos0+n, n_kv_heads*head_dim) cached keys/values of this layer
 *   out  (n, n_heads*head_dim)
 * Row r attends to positions 0 .. pos0+r. Query head h reads KV head
 * h / (n_heads / n_kv_heads). scratch holds attention_scratch_floats(). */
long attention_scratch_floats(int n_threads, int n_ctx);
void attention(struct threadpool *tp, float *out, const float *q, const float *k,
               const float *v, int n, int pos0, int n_heads, int n_kv_heads,
               int head_dim, float *scratch, int n_ctx);

/* Index of the largest value (lowest index on ties). */
int argmax(const float *x, int n);

#endif
