/* Reading and validating the exit heads stored in a model's GGUF. */
#include "exits.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LAYERS "tandem.exit.layers"
#define KEY_THRESHOLDS "tandem.exit.thresholds"

struct exit_loader {
    const struct model *m;
    char *err;
    size_t errlen;
};

static bool fail(struct exit_loader *ld, const char *fmt, ...)
{
    int k = snprintf(ld->err, ld->errlen, "%s: ", gguf_path(ld->m->file));
    va_list ap;
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < ld->errlen)
        vsnprintf(ld->err + k, ld->errlen - k, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_integer_type(enum gguf_value_type t)
{
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 ||
           t == GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

static bool read_layers(struct exit_loader *ld, struct exit_set *s, uint64_t count)
{
    int last = ld->m->cfg.n_layers - 1;
    for (uint64_t i = 0; i < count; i++) {
        int64_t v;
        if (!gguf_arr_i64(ld->m->file, KEY_LAYERS, i, &v))
            return fail(ld, "metadata '%s' entry %llu is not an integer", KEY_LAYERS,
                        (unsigned long long)i);
        /* An exit after the last layer would be the model's own head. */
        if (v < 0 || v >= last)
            return fail(ld, "metadata '%s' entry %llu = %lld outside [0, %d] (the model has %d layers)",
                        KEY_LAYERS, (unsigned long long)i, (long long)v, last - 1, last + 1);
        if (i > 0 && v <= s->heads[i - 1].layer)
            return fail(ld, "metadata '%s' is not strictly increasing (entry %llu = %lld after %d)",
                        KEY_LAYERS, (unsigned long long)i, (long long)v, s->heads[i - 1].layer);
        s->heads[i].layer = (int)v;
    }
    return true;
}

static bool read_thresholds(struct exit_loader *ld, struct exit_set *s)
{
    enum gguf_value_type et;
    uint64_t count;
    if (!gguf_get_arr(ld->m->file, KEY_THRESHOLDS, &et, &count))
        return fail(ld, "missing metadata '%s' (one per entry of '%s')", KEY_THRESHOLDS, KEY_LAYERS);
    if (et != GGUF_F32 && et != GGUF_F64)
        return fail(ld, "metadata '%s' is not an array of floats", KEY_THRESHOLDS);
    if (count != (uint64_t)s->n)
        return fail(ld, "metadata '%s' has %llu entries but '%s' has %d", KEY_THRESHOLDS,
                    (unsigned long long)count, KEY_LAYERS, s->n);
    for (int i = 0; i < s->n; i++) {
        float t;
        if (!gguf_arr_f32(ld->m->file, KEY_THRESHOLDS, (uint64_t)i, &t) || !(t >= 0.0f && t <= 1.0f))
            return fail(ld, "metadata '%s' entry %d is not a probability in [0, 1]", KEY_THRESHOLDS, i);
        s->heads[i].threshold = t;
    }
    return true;
}

/* A 2-D tensor of exactly (rows, cols), or NULL (absent, or err set). */
static const struct gguf_tensor *find_matrix(struct exit_loader *ld, const char *name, uint64_t cols,
                                             uint64_t rows, bool *bad)
{
    const struct gguf_tensor *t = gguf_find_tensor(ld->m->file, name);
    if (!t)
        return NULL;
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1) {
        fail(ld, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%llu, %llu]", name,
             (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
             (unsigned long long)t->ne[2], (unsigned long long)t->ne[3],
             (unsigned long long)cols, (unsigned long long)rows);
        *bad = true;
        return NULL;
    }
    return t;
}

static struct matrix as_matrix(const struct gguf_tensor *t)
{
    return (struct matrix){t->data, t->type, (int)t->ne[1], (int)t->ne[0], false};
}

static bool read_adapter(struct exit_loader *ld, struct exit_head *h)
{
    uint64_t dim = (uint64_t)ld->m->cfg.dim;
    char a_name[64], u_name[64], v_name[64];
    snprintf(a_name, sizeof a_name, "exit.%d.adapter.weight", h->layer);
    snprintf(u_name, sizeof u_name, "exit.%d.adapter_u.weight", h->layer);
    snprintf(v_name, sizeof v_name, "exit.%d.adapter_v.weight", h->layer);
    bool bad = false;
    const struct gguf_tensor *a = find_matrix(ld, a_name, dim, dim, &bad);
    if (bad)
        return false;
    const struct gguf_tensor *v = gguf_find_tensor(ld->m->file, v_name);
    const struct gguf_tensor *u = gguf_find_tensor(ld->m->file, u_name);
    if (a && (u || v))
        return fail(ld, "exit at layer %d has both a full adapter '%s' and a low-rank one", h->layer,
                    a_name);
    if (!u != !v)
        return fail(ld, "exit at layer %d has '%s' without '%s'", h->layer, u ? u_name : v_name,
                    u ? v_name : u_name);
    if (a) {
        h->adapter = EXIT_FULL_ADAPTER;
        h->rank = (int)dim;
        h->a = as_matrix(a);
    } else if (v) {
        uint64_t rank = v->ne[1];
        if (rank < 1 || rank > dim)
            return fail(ld, "tensor '%s' has %llu rows (the rank), expected 1 .. %llu", v_name,
                        (unsigned long long)rank, (unsigned long long)dim);
        if (!find_matrix(ld, v_name, dim, rank, &bad) || !find_matrix(ld, u_name, rank, dim, &bad))
            return false;
        h->adapter = EXIT_LOW_RANK_ADAPTER;
        h->rank = (int)rank;
        h->u = as_matrix(u);
        h->v = as_matrix(v);
    }
    return true;
}

/* Every exit.* tensor must belong to a listed exit: a stray one is a sign the
 * layer list and the tensors disagree (e.g. 1-based layer numbers). */
static bool check_stray_tensors(struct exit_loader *ld, const struct exit_set *s)
{
    for (int64_t i = 0; i < gguf_n_tensors(ld->m->file); i++) {
        const char *name = gguf_tensor_at(ld->m->file, i)->name;
        if (strncmp(name, "exit.", 5) != 0)
            continue;
        bool known = false;
        for (int e = 0; e < s->n && !known; e++) {
            static const char *const kinds[] = {"adapter", "adapter_u", "adapter_v"};
            for (int k = 0; k < 3 && !known; k++) {
                char want[64];
                snprintf(want, sizeof want, "exit.%d.%s.weight", s->heads[e].layer, kinds[k]);
                known = strcmp(name, want) == 0;
            }
        }
        if (!known)
            return fail(ld, "tensor '%s' belongs to no exit listed in '%s'", name, KEY_LAYERS);
    }
    return true;
}

bool exits_load(const struct model *m, struct exit_set *out, char *err, size_t errlen)
{
    struct exit_loader ld = {m, err, errlen};
    *out = (struct exit_set){0};
    enum gguf_value_type et;
    uint64_t count;
    if (gguf_find_key(m->file, KEY_LAYERS) < 0) {
        if (gguf_find_key(m->file, KEY_THRESHOLDS) >= 0)
            return fail(&ld, "metadata '%s' without '%s'", KEY_THRESHOLDS, KEY_LAYERS);
        return check_stray_tensors(&ld, out);
    }
    if (!gguf_get_arr(m->file, KEY_LAYERS, &et, &count) || !is_integer_type(et))
        return fail(&ld, "metadata '%s' is not an array of integers", KEY_LAYERS);
    if (count < 1 || count >= (uint64_t)m->cfg.n_layers)
        return fail(&ld, "metadata '%s' has %llu entries, expected 1 .. %d", KEY_LAYERS,
                    (unsigned long long)count, m->cfg.n_layers - 1);
    out->heads = calloc(count, sizeof *out->heads);
    if (!out->heads)
        return fail(&ld, "out of memory");
    out->n = (int)count;
    bool ok = read_layers(&ld, out, count) && read_thresholds(&ld, out);
    for (int i = 0; ok && i < out->n; i++)
        ok = read_adapter(&ld, &out->heads[i]);
    if (ok)
        ok = check_stray_tensors(&ld, out);
    if (!ok)
        exits_free(out);
    return ok;
}

void exits_free(struct exit_set *s)
{
    free(s->heads);
    *s = (struct exit_set){0};
}
