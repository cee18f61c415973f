#include "kv.h"

#include <assert.h>
#include <stdlib.h>

struct kv_cache *kv_new(const struct model_config *c, int n_ctx)
{
    if (n_ctx < 1)
        return NULL;
    struct kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv)
        return NULL;
    kv->n_layers = c->n_layers;
    kv->n_ctx = n_ctx;
    kv->kv_dim = c->n_kv_heads * c->head_dim;
    size_t n = (size_t)c->n_layers * n_ctx * kv->kv_dim;
    /* calloc: pages are only touched as the context fills. */
    kv->k = calloc(n, sizeof(float));
    kv->v = calloc(n, sizeof(float));
    if (!kv->k || !kv->v) {
        kv_free(kv);
        return NULL;
    }
    return kv;
}

void kv_free(struct kv_cache *kv)
{
    if (!kv)
        return;
    if (kv->dev)
        kv->dev_free(kv->dev);
    free(kv->k);
    free(kv->v);
    free(kv);
}

void kv_truncate(struct kv_cache *kv, int len)
{
    assert(len >= 0 && len <= kv->len);
    kv->len = len;
}

float *kv_keys(const struct kv_cache *kv, int layer)
{
    return kv->k + (size_t)layer * kv->n_ctx * kv->kv_dim;
}

float *kv_values(const struct kv_cache *kv, int layer)
{
    return kv->v + (size_t)layer * kv->n_ctx * kv->kv_dim;
}
