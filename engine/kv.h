/* The key/value cache of one sequence.
 *
 * Holds keys and values (after RoPE) for positions 0 .. len-1 of every layer,
 * in float32, laid out (n_layers, n_ctx, kv_dim). Rolling back is only
 * lowering len: entries past len are dead and are overwritten by the next
 * pass, so "draft k, truncate to j, continue" equals never having drafted. */
#ifndef TANDEM_ENGINE_KV_H
#define TANDEM_ENGINE_KV_H

#include "model.h"

struct kv_cache {
    int n_layers, n_ctx, kv_dim;
    int len;  /* positions filled */
    float *k; /* (n_layers, n_ctx, kv_dim) */
    float *v;
    /* A device backend keeps the cache in device memory instead: dev is its
     * copy (then the authoritative one; k and v above go stale), freed
     * with the cache through dev_free. NULL for the CPU. */
    void *dev;
    const char *dev_backend;
    void (*dev_free)(void *dev);
};

/* NULL if n_ctx < 1 or memory runs out. */
struct kv_cache *kv_new(const struct model_config *c, int n_ctx);
void kv_free(struct kv_cache *kv);
/* Keeps the first len positions (len <= kv->len). */
void kv_truncate(struct kv_cache *kv, int len);
/* Keys/values of one layer, starting at position 0. */
float *kv_keys(const struct kv_cache *kv, int layer);
float *kv_values(const struct kv_cache *kv, int layer);

#endif
