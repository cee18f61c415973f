#include "exits_draft.h"

#include <stdio.h>
#include <string.h>

#define EXIT_KEYS "tandem.exit."

/* Every key but the exits'. The writer copies by prefix, so a key that is
 * itself a prefix of EXIT_KEYS is left out too: copying it would bring the
 * exit keys along. */
static void copy_keys_but_exits(struct gguf_writer *w, const struct gguf_file *src)
{
    size_t n = strlen(EXIT_KEYS);
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        const char *key = gguf_key(src, i);
        size_t k = strlen(key);
        if (strncmp(key, EXIT_KEYS, k < n ? k : n) != 0)
            gguf_copy_kv_prefix(w, src, key);
    }
}

static bool in_draft(const char *tensor, int n_layers)
{
    int layer;
    if (strncmp(tensor, "exit.", 5) == 0)
        return false;
    return sscanf(tensor, "blk.%d.", &layer) != 1 || layer < n_layers;
}

bool exits_export_draft(const struct model *m, int n_layers, const char *path, char *err,
                        size_t errlen)
{
    if (n_layers < 1 || n_layers >= m->cfg.n_layers) {
        snprintf(err, errlen, "a draft of %d layers: %s has %d, a draft keeps 1 .. %d of them",
                 n_layers, gguf_path(m->file), m->cfg.n_layers, m->cfg.n_layers - 1);
        return false;
    }
    struct gguf_writer *w = gguf_writer_new();
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    char key[64];
    copy_keys_but_exits(w, m->file);
    snprintf(key, sizeof key, "%s.block_count", arch_name(m->cfg.arch));
    gguf_set_u32(w, key, (uint32_t)n_layers);
    for (int64_t i = 0; i < gguf_n_tensors(m->file); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(m->file, i);
        if (in_draft(t->name, n_layers))
            gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, NULL, NULL);
    }
    bool ok = gguf_writer_write(w, path, NULL, NULL, err, errlen);
    gguf_writer_free(w);
    if (!ok)
        return false;
    /* Read back what was written, as every user of the file will. */
    struct model *d = model_load(path, err, errlen);
    ok = d && d->cfg.n_layers == n_layers;
    if (d && !ok)
        snprintf(err, errlen, "%s: read back with %d layers, not %d", path, d->cfg.n_layers, n_layers);
    model_free(d);
    if (!ok)
        remove(path);
    return ok;
}
