/* The CUDA kernels as C host code sees them: extern "C" entry points that
 * launch on the current device (or on the host harness in tests).
 *
 * Pointers named here are device pointers unless said otherwise. Shapes are
 * row-major, in elements. Every entry point checks its launch and aborts
 * with the file and line of a failing CUDA call (a bug or a dead device,
 * never a user error; those are caught before, in engine/backend_cuda.c).
 *
 * Batch invariance (DESIGN.md §3.2): a row's result never depends on how many
 * rows share the call. `block` arguments choose the threads per block (0 =
 * the default; others are rounded up to whole warps); the engine always
 * uses the default, tests sweep them. */
#ifndef TANDEM_KERNELS_CUDA_OPS_H
#define TANDEM_KERNELS_CUDA_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device and memory (device.cu) ---- */

/* Devices the runtime sees; 0 when there is no driver or no device. */
int cuda_device_count(void);
/* Name of device 0 into buf. */
void cuda_device_name(char *buf, size_t len);
/* NULL when device memory runs out. */
void *cuda_alloc(size_t bytes);
void cuda_free(void *p);
void cuda_upload(void *dst, const void *host_src, size_t bytes);
void cuda_download(void *host_dst, const void *src, size_t bytes);
void cuda_memset(void *p, int byte, size_t bytes);
void cuda_sync(void);
/* Benchmarks (make test-gpu): milliseconds per call of fn(ctx), CUDA events
 * around reps calls after one warm-up; and device-to-device copy bandwidth in
 * GB/s (bytes read + bytes written) over a buffer of `bytes`. On the host
 * harness both are emulated wall-clock numbers and mean nothing. */
float cuda_time_ms(void (*fn)(void *ctx), void *ctx, int reps);
double cuda_copy_gbs(size_t bytes);

/* Weight matrices on the device: W_F32 / W_F16 / W_BF16 rows as in the file, W_Q8_0,
 * W_Q4_0 and W_Q4_1 repacked (quants, then scales, then Q4_1's offsets; see
 * common.cuh). type is the GGUF dtype id. */
bool cuda_weight_type_supported(int type);
size_t cuda_weight_bytes(int type, int rows, int cols);
/* Uploads rows [row0, row0+rows) of a host matrix of `cols` columns whose
 * row 0 starts at host_rows (file layout): the shard-aware unit of loading. */
void cuda_upload_weight(void *dst, const void *host_rows, int type, int rows, int cols);

/* ---- CUDA graphs (graph.cu) ---- */

/* The kernel launches fn(ctx) makes, captured (not run) into a graph that
 * cuda_graph_launch replays. fn may only launch kernels (no copies, memsets
 * or syncs); arguments are fixed at capture, so anything that changes
 * between replays must be read from device memory. NULL if out of memory. */
struct cuda_graph;
struct cuda_graph *cuda_graph_capture(void (*fn)(void *ctx), void *ctx);
void cuda_graph_launch(struct cuda_graph *g);
void cuda_graph_free(struct cuda_graph *g);
/* Replays and captures so far in this process (tests: which path a pass
 * took, and that a graph was reused). */
unsigned long cuda_graph_launches(void);
unsigned long cuda_graph_captures(void);

/* ---- ops: one file each ---- */

/* out (n, dim) = rows tokens[r] of table (vocab, dim); tokens (n) on the device. */
void cuda_embed_rows(float *out, const void *table, int type, int vocab, const int32_t *tokens,
                     int n, int dim);

/* out (n, dim) = x / sqrt(mean(x^2) + eps) * w; out may be x. */
void cuda_rmsnorm_rows(float *out, const float *x, const float *w, int n, int dim, float eps,
                       int block);

/* RoPE in place, as rope_rows in kernels/cpu/ops.h; inv_freq (head_dim/2).
 * pos0: the first row's position, in device memory (so that a captured
 * graph can replay at the next position). */
void cuda_rope_rows(float *x, int n, int n_heads, int head_dim, const int32_t *pos0,
                    const float *inv_freq, bool neox, int block);

/* y[i] += x[i % period], i < len: residual add (period = len) or bias rows
 * (period = dim). */
void cuda_add(float *y, const float *x, long len, long period, int block);

/* out[i] = silu(gate[i]) * up[i]; out may be gate. */
void cuda_swiglu(float *out, const float *gate, const float *up, long len, int block);

/* y (n, out) = x (n, in) · wᵀ, w (out, in) of `type`; any n >= 1 (groups of
 * up to 16 rows share one read of w). in must be a multiple of 8 (F16), 4
 * (F32) or 32 (Q8_0, Q4_0, Q4_1). warps: warps per block (0 = 4), one output row each. */
void cuda_gemv(float *y, const void *w, int type, const float *x, int n, int in, int out,
               int warps);

/* The most rows a GEMV launch takes; the backend uses cuda_gemm above it. */
#define CUDA_GEMV_MAX_ROWS 16

/* The same product through cuBLAS (gemm.cu), for long prefills
 * (cuda_gemm_type_supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1). Not batch
 * invariant: a row's bits depend on n. All but F32 round x to f16 into
 * scratch (tensor-core GEMM, fp32 accumulation); BF16 and the quantized types
 * also dequantize w to f16 there, a slice of whole output rows at a time: at
 * most CUDA_GEMM_SLICE_WEIGHTS weights (at least one row), fewer if that is
 * what scratch_bytes holds after x. cuda_gemm_scratch_bytes(type, n, in, out)
 * is enough for one product. */
#define CUDA_GEMM_SLICE_WEIGHTS (8L << 20) /* 16 MiB of f16: 704 rows of a 7B w_down */
bool cuda_gemm_type_supported(int type);
size_t cuda_gemm_scratch_bytes(int type, int n, int in, int out);
void cuda_gemm(float *y, const void *w, int type, const float *x, int n, int in, int out,
               void *scratch, size_t scratch_bytes);
/* Calls of cuda_gemm so far in this process (tests: which path a pass took). */
unsigned long cuda_gemm_calls(void);

/* Causal grouped-query attention over the cache, as attention() in
 * kernels/cpu/ops.h. *k, *v (n_ctx, n_kv_heads*head_dim) of one layer: k and
 * v point to device memory holding the layer's base addresses (a captured
 * graph reads the sequence of the step from there, as it reads the position);
 * rows at positions *pos0..*pos0+n-1, pos0 in device memory, at most
 * max_pos0 (the grid covers the spans up to max_pos0+n-1: the exact position
 * for a direct launch, n_ctx-n in a graph). The KV range is cut into fixed
 * spans of CUDA_ATTN_SPAN positions (partials merged in span order), so a
 * row's result depends on its own position only. scratch:
 * cuda_attention_scratch_floats. */
#define CUDA_ATTN_SPAN 256
size_t cuda_attention_scratch_floats(int max_rows, int n_heads, int head_dim, int n_ctx);
void cuda_attention(float *out, const float *q, float *const *k, float *const *v, int n,
                    const int32_t *pos0, int max_pos0, int n_heads, int n_kv_heads,
                    int head_dim, int n_ctx, float *scratch, int block);

/* (*cache) rows *pos0 .. *pos0+n-1 (n_ctx, kv_dim) = rows (n, kv_dim); the
 * cache's base address and pos0 in device memory. The new keys and values go
 * through a scratch and this copy so that no launch argument depends on the
 * position or the sequence. */
void cuda_kv_store(float *const *cache, const float *rows, int n, int kv_dim,
                   const int32_t *pos0);

/* The same two over a half-size cache (f16 elements, same layout): the store
 * rounds to nearest f16, attention widens exactly and accumulates in fp32, in
 * the same order as the f32 cache, so batch invariance holds within this
 * cache type. A CUDA context uses them when made with TANDEM_CUDA_KV=f16. */
void cuda_kv_store_f16(uint16_t *const *cache, const float *rows, int n, int kv_dim,
                       const int32_t *pos0);
void cuda_attention_f16kv(float *out, const float *q, uint16_t *const *k, uint16_t *const *v,
                          int n, const int32_t *pos0, int max_pos0, int n_heads, int n_kv_heads,
                          int head_dim, int n_ctx, float *scratch, int block);

/* The fused early-exit / LM head: for n <= 16 rows of hidden (n, dim), one
 * pass over head (vocab, dim) computes logits of rmsnorm(hidden)·norm_w,
 * their log-sum-exp and the top_k (<= CUDA_HEAD_MAX_K) largest, sorted
 * descending (ties: lower id first). Outputs (device): top_id, top_logit
 * (n, top_k); lse (n); logits (n, vocab) when non-NULL. argmax is top_id[r*top_k]
 * and its probability exp(top_logit - lse). scratch: cuda_head_scratch_bytes. */
#define CUDA_HEAD_MAX_K 16
size_t cuda_head_scratch_bytes(int vocab);
void cuda_exit_head(const float *hidden, int n, int dim, const float *norm_w, float eps,
                    const void *head, int type, int vocab, int top_k, int32_t *top_id,
                    float *top_logit, float *lse, float *logits, void *scratch);
/* Calls of cuda_exit_head so far in this process: tests check that the
 * engine evaluates exits with it. */
unsigned long cuda_exit_head_launches(void);

/* Sampling from a head's top list (ids, logits sorted descending, n_cand per
 * row): temperature, then the first top_k (<= n_cand), then the smallest
 * prefix with mass >= top_p (top_p >= 1: all), renormalised — the rule of
 * sampling_dist in engine/sample.h. u (n) uniforms in [0,1) from the host's
 * seeded generator. Outputs (device): token (n), prob (n, n_cand): the
 * distribution drawn from, 0 past its length. temp <= 0 is greedy. */
void cuda_sample(const int32_t *cand_id, const float *cand_logit, int n, int n_cand, float temp,
                 int top_k, float top_p, const float *u, int32_t *token, float *prob);

#ifdef __cplusplus
}
#endif

#endif
