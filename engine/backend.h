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

struct backend {
    const char *name;
    /* NULL with one line in err when this backend cannot run m here. */
    void *(*ctx_new)(const struct model *m, struct threadpool *tp, int max_rows, int max_ctx,
                     char *err, size_t errlen);
    void (*ctx_free)(void *ctx);
    bool (*chunk)(void *ctx, struct kv_cache *kv, const struct forward_request *req, int row0,
                  int n, char *err, size_t errlen);
};

extern const struct backend backend_cpu;
/* Without TANDEM_CUDA its ctx_new says the binary was built without CUDA. */
extern const struct backend backend_cuda;

#endif
