/* Where a forward pass runs: one table of functions per device, chosen when a
 * forward context is made (forward_ctx_new_on). Everything above forward.h —
 * exits, edge, cloud, tools — is the same on every device.
 *
 * A backend runs one chunk of a request at a time: rows [row0, row0+n) of
 * req, n <= its max_rows, at positions kv->len.., after forward() has checked
 * the request. On success kv->len has grown by n; on failure the message is
 * in err and forward() restores kv->len. */
#ifndef TANDEM_ENGINE_BACKEND_H
#define TANDEM_ENGINE_BACKEND_H

#include "forward.h"

struct exit_head;
struct exit_result;

struct backend {
    const char *name;
    /* NULL with one line in err when this backend cannot run m here. */
    void *(*ctx_new)(const struct model *m, struct threadpool *tp, int max_rows, int max_ctx,
                     char *err, size_t errlen);
    void (*ctx_free)(void *ctx);
    /* in_place: the hook reads no hidden state (it is called with NULL) and
     * evaluates exits with exit_head; only backends with exit_head get it. */
    bool (*chunk)(void *ctx, struct kv_cache *kv, const struct forward_request *req, int row0,
                  int n, bool in_place, char *err, size_t errlen);
    /* Optional (NULL on the CPU, whose hooks evaluate exits on the host
     * already). exit_head_prepare: whether exit_head can take h on this
     * context, making its device copies (adapters) now so that exit_head
     * cannot fail; false with the reason in why. exit_head: inside the layer
     * hook of an in_place chunk, evaluates h on the chunk's n rows where they
     * are; out (n) and logits (n, vocab; NULL: not wanted) are host memory. */
    bool (*exit_head_prepare)(void *ctx, const struct exit_head *h, char *why, size_t len);
    void (*exit_head)(void *ctx, const struct exit_head *h, int n, struct exit_result *out,
                      float *logits);
};

extern const struct backend backend_cpu;

/* For forward_exits (engine/exit_head.c), implemented in forward.c over the
 * context's backend. forward_in_place: forward() whose chunks run in_place.
 * forward_exit_head_prepare: false with the reason when fc's backend has no
 * exit_head or cannot take h. */
bool forward_in_place(struct forward_ctx *fc, struct kv_cache *kv,
                      const struct forward_request *req, char *err, size_t errlen);
bool forward_exit_head_prepare(struct forward_ctx *fc, const struct exit_head *h, char *why,
                               size_t len);
void forward_exit_head(struct forward_ctx *fc, const struct exit_head *h, int n,
                       struct exit_result *out, float *logits);
/* Without TANDEM_CUDA its ctx_new says the binary was built without CUDA. */
extern const struct backend backend_cuda;

#endif
