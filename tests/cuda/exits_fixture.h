/* A tiny target with early exits, shared by the CUDA exit and cloud tests:
 * a 64-wide fixture's two blocks twice (4 layers) with exits after layers 0
 * (full adapter), 1 (none) and 2 (low rank `rank`), the given thresholds,
 * written to `out`. Adapters are seeded random, the same in every test. */
#ifndef TANDEM_TESTS_CUDA_EXITS_FIXTURE_H
#define TANDEM_TESTS_CUDA_EXITS_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>

#include "engine/sample.h"
#include "weights/gguf.h"

#define EXITS_FIXTURE_DIM 64
#define EXITS_FIXTURE_N 3

static inline void exits_fixture_fill(float *x, int n, float scale, uint64_t seed)
{
    struct rng g;
    rng_seed(&g, seed);
    for (int i = 0; i < n; i++)
        x[i] = scale * (float)(2.0 * rng_uniform(&g) - 1.0);
}

/* false with the reason in err. rank <= EXITS_FIXTURE_DIM. */
static inline bool exits_fixture_write(const char *fixture, int rank,
                                       const float thresholds[EXITS_FIXTURE_N], const char *out,
                                       char *err, size_t errlen)
{
    enum { DIM = EXITS_FIXTURE_DIM };
    static float a[DIM * DIM], u[DIM * DIM], v[DIM * DIM];
    exits_fixture_fill(a, DIM * DIM, 0.1f, 1);
    exits_fixture_fill(u, DIM * rank, 0.3f, 2);
    exits_fixture_fill(v, rank * DIM, 0.3f, 3);
    struct gguf_file *src = gguf_open(fixture, err, errlen);
    if (!src)
        return false;
    struct gguf_writer *w = gguf_writer_new();
    gguf_copy_kv(w, src);
    gguf_set_u32(w, "llama.block_count", 4);
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(src, i);
        gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, NULL, NULL);
        int l;
        char rest[64], again[96];
        if (sscanf(t->name, "blk.%d.%63s", &l, rest) == 2) {
            snprintf(again, sizeof again, "blk.%d.%s", l + 2, rest);
            gguf_add_tensor(w, again, t->type, t->n_dims, t->ne, t->data, NULL, NULL);
        }
    }
    gguf_set_arr_i32(w, "tandem.exit.layers", (int32_t[]){0, 1, 2}, EXITS_FIXTURE_N);
    gguf_set_arr_f32(w, "tandem.exit.thresholds", thresholds, EXITS_FIXTURE_N);
    gguf_add_tensor(w, "exit.0.adapter.weight", DTYPE_F32, 2, (uint64_t[]){DIM, DIM}, a, NULL,
                    NULL);
    gguf_add_tensor(w, "exit.2.adapter_u.weight", DTYPE_F32, 2, (uint64_t[]){(uint64_t)rank, DIM},
                    u, NULL, NULL);
    gguf_add_tensor(w, "exit.2.adapter_v.weight", DTYPE_F32, 2, (uint64_t[]){DIM, (uint64_t)rank},
                    v, NULL, NULL);
    const bool ok = gguf_writer_write(w, out, NULL, NULL, err, errlen);
    gguf_writer_free(w);
    gguf_close(src);
    return ok;
}

#endif
