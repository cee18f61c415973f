/* Batch invariance (DESIGN.md §3.2) and KV rollback (§3.4) of the forward pass,
 * on tiny fixture models of quantized and float types, both architectures. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"
#include "engine/sample.h"
#include "kernels/cpu/repack.h"

#define FIXTURES "tests/golden/fixtures/"
#define SEQ 48
#define CTX 64

/* "+repack": loaded, then repacked for the CPU (model_repack). */
static const char *models[] = {"tiny-llama-q4_1.gguf", "tiny-llama-f32.gguf",
                               "tiny-qwen2-f16.gguf", "tiny-llama-q8_0.gguf",
                               "tiny-qwen2-q8_0.gguf+repack"};

struct rig {
    struct model *m;
    struct threadpool *tp;
    struct forward_ctx *fc;
    int vocab;
};

static struct rig rig_open(const char *name, int threads, int max_rows)
{
    char path[256], err[512];
    const char *plus = strchr(name, '+');
    snprintf(path, sizeof path, FIXTURES "%.*s", plus ? (int)(plus - name) : (int)strlen(name), name);
    struct rig r = {model_load(path, err, sizeof err), threadpool_new(threads), NULL, 0};
    if (!r.m)
        fail_msg("%s", err);
    if (plus && model_repack(r.m, err, sizeof err) < 0)
        fail_msg("%s", err);
    r.fc = forward_ctx_new(r.m, r.tp, max_rows, CTX);
    r.vocab = r.m->cfg.vocab;
    return r;
}

static void rig_close(struct rig *r)
{
    forward_ctx_free(r->fc);
    threadpool_free(r->tp);
    model_free(r->m);
}

/* Runs tokens in passes of the given sizes (cycled), logits of every row. */
static void run_passes(struct rig *r, struct kv_cache *kv, const int32_t *tokens, int n,
                       const int *sizes, int n_sizes, float *logits)
{
    char err[256];
    for (int done = 0, i = 0; done < n; i++) {
        int k = sizes[i % n_sizes] < n - done ? sizes[i % n_sizes] : n - done;
        struct forward_request req = {tokens + done, k, 0, logits + (long)done * r->vocab, NULL, NULL};
        if (!forward(r->fc, kv, &req, err, sizeof err))
            fail_msg("%s", err);
        done += k;
    }
}

static void random_tokens(struct rng *g, int32_t *t, int n, int vocab)
{
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)(rng_next(g) % vocab);
}

static void assert_kv_equal(const struct kv_cache *a, const struct kv_cache *b, int len)
{
    for (int l = 0; l < a->n_layers; l++) {
        size_t bytes = sizeof(float) * len * a->kv_dim;
        assert_memory_equal(kv_keys(a, l), kv_keys(b, l), bytes);
        assert_memory_equal(kv_values(a, l), kv_values(b, l), bytes);
    }
}

/* One row per pass is the reference; random splits with passes of 1..16 rows,
 * with 1 or 2 threads and with internal chunking, must match it bit for bit. */
static void test_batch_invariance(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 42);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        struct rig ref = rig_open(models[mi], 1, 16);
        int32_t tokens[SEQ];
        random_tokens(&g, tokens, SEQ, ref.vocab);
        float *want = malloc(sizeof(float) * SEQ * ref.vocab);
        float *got = malloc(sizeof(float) * SEQ * ref.vocab);
        struct kv_cache *kv_ref = kv_new(&ref.m->cfg, CTX);
        run_passes(&ref, kv_ref, tokens, SEQ, (int[]){1}, 1, want);

        for (int trial = 0; trial < 6; trial++) {
            int threads = 1 + trial % 2, max_rows = trial < 4 ? 16 : 3;
            struct rig r = rig_open(models[mi], threads, max_rows);
            int sizes[SEQ];
            for (int i = 0; i < SEQ; i++)
                sizes[i] = 1 + (int)(rng_next(&g) % 16);
            struct kv_cache *kv = kv_new(&r.m->cfg, CTX);
            run_passes(&r, kv, tokens, SEQ, sizes, SEQ, got);
            assert_memory_equal(want, got, sizeof(float) * SEQ * ref.vocab);
            assert_kv_equal(kv_ref, kv, SEQ);
            kv_free(kv);
            rig_close(&r);
        }
        kv_free(kv_ref);
        free(want);
        free(got);
        rig_close(&ref);
    }
}

/* Prefix, draft k, truncate to j, continue == prefix, first j drafted, continue. */
static void test_rollback(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 7);
    enum { PREFIX = 10, CONT = 6 };
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        struct rig r = rig_open(models[mi], 2, 16);
        for (int trial = 0; trial < 8; trial++) {
            int k = 1 + (int)(rng_next(&g) % 16), j = (int)(rng_next(&g) % (k + 1));
            int32_t seq[PREFIX + 16 + CONT], draft[16];
            random_tokens(&g, seq, PREFIX, r.vocab);
            random_tokens(&g, draft, k, r.vocab);
            random_tokens(&g, seq + PREFIX + j, CONT, r.vocab);
            memcpy(seq + PREFIX, draft, sizeof(int32_t) * j);
            int total = PREFIX + j + CONT;
            float *want = malloc(sizeof(float) * total * r.vocab);
            float *got = malloc(sizeof(float) * (PREFIX + 16 + CONT) * r.vocab);

            struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
            run_passes(&r, a, seq, total, (int[]){total}, 1, want);

            run_passes(&r, b, seq, PREFIX, (int[]){PREFIX}, 1, got);
            run_passes(&r, b, draft, k, (int[]){k}, 1, got + PREFIX * r.vocab);
            kv_truncate(b, PREFIX + j);
            /* the kept drafted rows' logits stand; continue after them */
            run_passes(&r, b, seq + PREFIX + j, CONT, (int[]){CONT}, 1,
                       got + (PREFIX + j) * r.vocab);
            assert_int_equal(b->len, total);
            assert_memory_equal(want, got, sizeof(float) * total * r.vocab);
            assert_kv_equal(a, b, total);
            kv_free(a);
            kv_free(b);
            free(want);
            free(got);
        }
        rig_close(&r);
    }
}

/* Logits only for the rows asked for, equal to those of a full request. */
static void test_logit_rows(void **state)
{
    (void)state;
    struct rig r = rig_open(models[0], 2, 4);
    int32_t tokens[10] = {1, 5, 9, 2, 7, 3, 3, 8, 11, 4};
    float *all = malloc(sizeof(float) * 10 * r.vocab), *last3 = malloc(sizeof(float) * 3 * r.vocab);
    struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
    char err[256];
    struct forward_request full = {tokens, 10, 0, all, NULL, NULL};
    struct forward_request tail = {tokens, 10, 7, last3, NULL, NULL};
    assert_true(forward(r.fc, a, &full, err, sizeof err));
    assert_true(forward(r.fc, b, &tail, err, sizeof err));
    assert_memory_equal(all + 7 * r.vocab, last3, sizeof(float) * 3 * r.vocab);
    kv_free(a);
    kv_free(b);
    free(all);
    free(last3);
    rig_close(&r);
}

struct hook_log {
    int calls, last_layer, rows_seen, abort_at;
};

static bool count_layers(void *ctx, int layer, const float *hidden, int first_row, int n_rows)
{
    struct hook_log *h = ctx;
    assert_non_null(hidden);
    h->calls++;
    h->last_layer = layer;
    if (layer == 0)
        h->rows_seen += n_rows;
    (void)first_row;
    return layer != h->abort_at;
}

/* The layer hook sees every layer of every chunk; aborting leaves kv as it was. */
static void test_layer_hook(void **state)
{
    (void)state;
    struct rig r = rig_open(models[0], 1, 4);
    int32_t tokens[10] = {1, 5, 9, 2, 7, 3, 3, 8, 11, 4};
    struct kv_cache *kv = kv_new(&r.m->cfg, CTX);
    char err[256];
    struct hook_log log = {0, -1, 0, -1};
    struct forward_request req = {tokens, 10, 10, NULL, count_layers, &log};
    assert_true(forward(r.fc, kv, &req, err, sizeof err));
    assert_int_equal(log.rows_seen, 10);
    assert_int_equal(log.calls, 3 * r.m->cfg.n_layers); /* chunks of 4, 4, 2 */
    log = (struct hook_log){0, -1, 0, 1};
    int before = kv->len;
    assert_false(forward(r.fc, kv, &req, err, sizeof err));
    assert_int_equal(kv->len, before);
    kv_free(kv);
    rig_close(&r);
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct rig r = rig_open(models[0], 1, 16);
    struct kv_cache *kv = kv_new(&r.m->cfg, 8);
    char err[256];
    float logits[96 * 9];
    int32_t bad[2] = {3, 96};
    struct forward_request req = {bad, 2, 1, logits, NULL, NULL};
    assert_false(forward(r.fc, kv, &req, err, sizeof err));
    assert_non_null(strstr(err, "outside the vocabulary"));
    assert_int_equal(kv->len, 0);
    int32_t nine[9] = {0};
    req = (struct forward_request){nine, 9, 8, logits, NULL, NULL};
    assert_false(forward(r.fc, kv, &req, err, sizeof err));
    assert_non_null(strstr(err, "context full"));
    req = (struct forward_request){nine, 0, 0, logits, NULL, NULL};
    assert_false(forward(r.fc, kv, &req, err, sizeof err));
    kv_free(kv);
    rig_close(&r);
}

/* A repacked model computes bitwise what the plain one does (passes of
 * several sizes), whether its output matrix is its own (llama fixtures) or
 * the embedding table, which keeps its layout (qwen2 fixture); float weights
 * are only copied. */
static void test_repacked_same_logits(void **state)
{
    (void)state;
    const char *names[][2] = {{"tiny-llama-q8_0.gguf", "tiny-llama-q8_0.gguf+repack"},
                              {"tiny-qwen2-q8_0.gguf", "tiny-qwen2-q8_0.gguf+repack"},
                              {"tiny-llama-f16.gguf", "tiny-llama-f16.gguf+repack"},
                              {"tiny-llama-q4_1.gguf", "tiny-llama-q4_1.gguf+repack"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct rig plain = rig_open(names[i][0], 2, 16), packed = rig_open(names[i][1], 2, 16);
        assert_non_null(packed.m->repacked);
        assert_ptr_not_equal(packed.m->layers[0].wq.data, plain.m->layers[0].wq.data);
        const bool q8 = packed.m->layers[0].wq.type == DTYPE_Q8_0;
        assert_int_equal(packed.m->layers[0].wq.q8_0x16, q8 && q8_0x16_supported());
        assert_false(packed.m->tok_embd.q8_0x16);
        if (packed.m->cfg.tied_output) /* the LM head follows the table it is */
            assert_ptr_equal(packed.m->output.data, packed.m->tok_embd.data);
        int32_t tokens[SEQ];
        struct rng g;
        rng_seed(&g, 11 + i);
        random_tokens(&g, tokens, SEQ, plain.vocab);
        float *want = malloc(sizeof(float) * SEQ * plain.vocab), *got = malloc(sizeof(float) * SEQ * plain.vocab);
        struct kv_cache *a = kv_new(&plain.m->cfg, CTX), *b = kv_new(&packed.m->cfg, CTX);
        run_passes(&plain, a, tokens, SEQ, (int[]){5, 1, 16, 3}, 4, want);
        run_passes(&packed, b, tokens, SEQ, (int[]){5, 1, 16, 3}, 4, got);
        assert_memory_equal(want, got, sizeof(float) * SEQ * plain.vocab);
        assert_kv_equal(a, b, SEQ);
        kv_free(a);
        kv_free(b);
        free(want);
        free(got);
        rig_close(&plain);
        rig_close(&packed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_invariance), cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_logit_rows),       cmocka_unit_test(test_layer_hook),
        cmocka_unit_test(test_bad_requests),     cmocka_unit_test(test_repacked_same_logits),
    };
    return cmocka_run_group_tests_name("forward pass", tests, NULL, NULL);
}
