/* The forward pass: n >= 1 new tokens of one sequence through the model.
 *
 * The tokens take positions kv->len .. kv->len+n-1; on success their keys and
 * values are in the cache and kv->len has grown by n. Long inputs are split
 * into chunks of at most max_rows rows; because every kernel is batch
 * invariant, the split changes nothing in the results.
 *
 * A forward_ctx owns the scratch memory of passes of up to max_rows rows and
 * borrows a model and a thread pool; it holds no sequence state, so one
 * context can serve many sequences (one at a time).
 *
 * The pass runs on a device chosen when the context is made (engine/backend.h):
 * "cpu" always, "cuda" in binaries built with it. */
#ifndef TANDEM_ENGINE_FORWARD_H
#define TANDEM_ENGINE_FORWARD_H

#include <stdint.h>
#include "../kernels/cpu/threadpool.h"
#include "kv.h"
#include "model.h"

struct forward_ctx;

/* Called after layer `layer` (0-based) with the residual stream of the
 * chunk's rows: hidden (n_rows, dim), rows first_row .. first_row+n_rows-1 of
 * the pass. Returning false aborts the pass (forward returns false). */
typedef bool (*layer_hook_fn)(void *ctx, int layer, const float *hidden, int first_row,
                              int n_rows);

struct forward_request {
    const int32_t *tokens;   /* (n) */
    int n;
    int first_logit_row;     /* logits for rows first_logit_row .. n-1; n = none */
    float *logits;           /* (n - first_logit_row, vocab) */
    layer_hook_fn hook;      /* optional */
    void *hook_ctx;
};

/* A CPU context; NULL if max_rows or max_ctx < 1 or memory runs out. */
struct forward_ctx *forward_ctx_new(const struct model *m, struct threadpool *tp,
                                    int max_rows, int max_ctx);
/* A context on device "cpu" or "cuda"; NULL with one line in err when the
 * device is unknown, absent ("built without CUDA", "no CUDA device") or
 * cannot hold the model. tp is used by the CPU backend only. */
struct forward_ctx *forward_ctx_new_on(const char *device, const struct model *m,
                                       struct threadpool *tp, int max_rows, int max_ctx,
                                       char *err, size_t errlen);
/* "cpu" / "cuda". */
const char *forward_device(const struct forward_ctx *fc);
void forward_ctx_free(struct forward_ctx *fc);

/* false with a message in err if a token is outside the vocabulary, the
 * context would overflow, arguments are invalid, a hook aborted, or kv was
 * filled by a context on another device; kv->len is then what it was
 * before the call. */
bool forward(struct forward_ctx *fc, struct kv_cache *kv, const struct forward_request *req,
             char *err, size_t errlen);

#endif
