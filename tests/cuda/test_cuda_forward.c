/* The CUDA backend's whole forward pass, run on the host harness, against the
 * CPU backend on the tiny fixture models: logits by NMSE, and the CUDA
 * backend's own batch invariance, KV rollback, layer hooks and errors
 * bit for bit. This tests the glue (uploads, offsets, layouts, KV
 * addressing), not only the kernels. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda/nmse.h"
#include "engine/forward.h"
#include "engine/sample.h"
#include "kernels/cuda/ops.h"

#define FIXTURES "tests/golden/fixtures/"
#define SEQ 40
#define CTX 64

/* NMSE bounds from measurement (docs/cuda.md): with float weights (f32, f16,
 * bf16: both sides widen them exactly and keep x in fp32) the two
 * backends differ by summation order only (measured ~5e-14); with q8_0, q4_0
 * and q4_1 the CPU also quantizes every matmul input to 8 bits (as ggml
 * does) and the GPU does not: ~1.5e-5 per matmul, ~1e-4 after the tiny
 * model's 15. */
static const struct {
    const char *file;
    double bound;
} models[] = {{"tiny-llama-f32.gguf", 1e-10},
              {"tiny-llama-f16.gguf", 1e-10},
              {"tiny-llama-bf16.gguf", 1e-10},
              {"tiny-qwen2-f16.gguf", 1e-10},
              {"tiny-llama-q8_0.gguf", 5e-4},
              {"tiny-llama-q4_0.gguf", 5e-4},
              {"tiny-llama-q4_1.gguf", 5e-4},
              {"tiny-qwen2-q4_1.gguf", 5e-4}};

struct rig {
    struct model *m;
    struct threadpool *tp;
    struct forward_ctx *cpu, *cuda;
    int vocab;
};

static struct rig rig_open_path(const char *path, int max_rows)
{
    char err[512];
    struct rig r = {model_load(path, err, sizeof err), threadpool_new(1), NULL, NULL, 0};
    if (!r.m)
        fail_msg("%s", err);
    r.cpu = forward_ctx_new_on("cpu", r.m, r.tp, max_rows, CTX, err, sizeof err);
    r.cuda = forward_ctx_new_on("cuda", r.m, r.tp, max_rows, CTX, err, sizeof err);
    if (!r.cpu || !r.cuda)
        fail_msg("%s: %s", path, err);
    assert_string_equal(forward_device(r.cuda), "cuda");
    r.vocab = r.m->cfg.vocab;
    return r;
}

static struct rig rig_open(const char *name, int max_rows)
{
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    return rig_open_path(path, max_rows);
}

static void rig_close(struct rig *r)
{
    forward_ctx_free(r->cpu);
    forward_ctx_free(r->cuda);
    threadpool_free(r->tp);
    model_free(r->m);
}

/* Runs tokens in passes of the given sizes (cycled), logits of every row. */
static void run_passes(struct forward_ctx *fc, struct kv_cache *kv, const int32_t *tokens, int n,
                       const int *sizes, int n_sizes, float *logits, int vocab)
{
    char err[256];
    for (int done = 0, i = 0; done < n; i++) {
        int k = sizes[i % n_sizes] < n - done ? sizes[i % n_sizes] : n - done;
        struct forward_request req = {tokens + done, k, 0, logits + (long)done * vocab, NULL, NULL};
        if (!forward(fc, kv, &req, err, sizeof err))
            fail_msg("%s", err);
        done += k;
    }
}

static void random_tokens(struct rng *g, int32_t *t, int n, int vocab)
{
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)(rng_next(g) % vocab);
}

/* CPU one row at a time vs CUDA in mixed passes; then the CUDA result must
 * not change with the split (batch invariance, bit for bit). */
static void test_matches_cpu(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 3);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        struct rig r = rig_open(models[mi].file, 16);
        int32_t tokens[SEQ];
        random_tokens(&g, tokens, SEQ, r.vocab);
        size_t bytes = sizeof(float) * SEQ * r.vocab;
        float *want = malloc(bytes), *got = malloc(bytes), *again = malloc(bytes);
        struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
        struct kv_cache *c = kv_new(&r.m->cfg, CTX);
        run_passes(r.cpu, a, tokens, SEQ, (int[]){1}, 1, want, r.vocab);
        run_passes(r.cuda, b, tokens, SEQ, (int[]){7, 1, 16, 3, 2}, 5, got, r.vocab);
        double e = nmse(got, want, (long)SEQ * r.vocab);
        printf("  forward %-22s cuda vs cpu logits nmse %.3e (bound %.0e)\n", models[mi].file, e,
               models[mi].bound);
        assert_true(e <= models[mi].bound);
        run_passes(r.cuda, c, tokens, SEQ, (int[]){1}, 1, again, r.vocab);
        assert_memory_equal(got, again, bytes);
        assert_int_equal(b->len, SEQ);
        kv_free(a);
        kv_free(b);
        kv_free(c);
        free(want);
        free(got);
        free(again);
        rig_close(&r);
    }
}

/* A prompt of SEQ rows in one pass of a context that takes them all: every
 * matrix product of the CUDA pass (7 a layer and the LM head) goes through
 * cuBLAS (cuda_gemm: F32 in fp32; F16, and BF16/Q8_0/Q4_0/Q4_1 weights
 * dequantized to f16, as f16 products), and the logits still match the CPU
 * backend's by NMSE. Then a few one-row decode steps on that cache, back on
 * the GEMV, match as well. F16 and BF16 bounds are looser than the GEMV's:
 * the GEMM takes activations in f16 (bf16 weights convert to f16 exactly).
 * Q8_0/Q4 keep the GEMV's bound: the CPU's 8-bit activations dominate the
 * GEMM's f16 roundings of x and w. So the prefill is also compared with the
 * same prompt through the CUDA GEMV (a context of 16 rows, chunks of 16),
 * where only those f16 roundings differ: 1e-6 for every type but F32. */
static void test_long_prefill(void **state)
{
    (void)state;
    static const double gemm_bound[] = {1e-10, 1e-6, 1e-6, 1e-6, 5e-4, 5e-4, 5e-4, 5e-4};
    static const double gemv_bound[] = {1e-10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6};
    _Static_assert(sizeof gemm_bound / sizeof gemm_bound[0] == sizeof models / sizeof models[0],
                   "a bound per model");
    enum { DECODE = 4 };
    struct rng g;
    rng_seed(&g, 11);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        struct rig r = rig_open(models[mi].file, SEQ);
        int32_t tokens[SEQ + DECODE];
        random_tokens(&g, tokens, SEQ + DECODE, r.vocab);
        size_t bytes = sizeof(float) * (SEQ + DECODE) * r.vocab;
        float *want = malloc(bytes), *got = malloc(bytes), *gemv = malloc(bytes);
        struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
        struct kv_cache *c = kv_new(&r.m->cfg, CTX);
        run_passes(r.cpu, a, tokens, SEQ + DECODE, (int[]){SEQ, 1}, 2, want, r.vocab);
        char err[256];
        struct forward_ctx *rows16 =
            forward_ctx_new_on("cuda", r.m, r.tp, CUDA_GEMV_MAX_ROWS, CTX, err, sizeof err);
        if (!rows16)
            fail_msg("%s", err);
        run_passes(rows16, c, tokens, SEQ, (int[]){SEQ}, 1, gemv, r.vocab);
        forward_ctx_free(rows16);
        unsigned long before = cuda_gemm_calls();
        run_passes(r.cuda, b, tokens, SEQ, (int[]){SEQ}, 1, got, r.vocab);
        unsigned long gemms = cuda_gemm_calls() - before;
        assert_int_equal(gemms, 7 * r.m->cfg.n_layers + 1);
        before = cuda_gemm_calls();
        run_passes(r.cuda, b, tokens + SEQ, DECODE, (int[]){1}, 1, got + (long)SEQ * r.vocab,
                   r.vocab);
        assert_int_equal(cuda_gemm_calls(), before);
        double e = nmse(got, want, (long)SEQ * r.vocab);
        double d = nmse(got + (long)SEQ * r.vocab, want + (long)SEQ * r.vocab,
                        (long)DECODE * r.vocab);
        double v = nmse(got, gemv, (long)SEQ * r.vocab);
        printf("  prefill %-22s %d rows in one pass (%lu cuBLAS GEMMs): nmse %.3e, then decode "
               "%.3e (bound %.0e); vs the CUDA GEMV %.3e (bound %.0e)\n",
               models[mi].file, SEQ, gemms, e, d, gemm_bound[mi], v, gemv_bound[mi]);
        assert_true(e <= gemm_bound[mi] && d <= gemm_bound[mi]);
        assert_true(v <= gemv_bound[mi]);
        kv_free(a);
        kv_free(b);
        kv_free(c);
        free(gemv);
        free(want);
        free(got);
        rig_close(&r);
    }
}

static bool no_op_hook(void *ctx, int layer, const float *hidden, int first_row, int n_rows)
{
    (void)ctx, (void)layer, (void)hidden, (void)first_row, (void)n_rows;
    return true;
}

/* One-row steps of `tokens` on kv, logits of each; through the decode graph,
 * or (hooked) by direct launches: a pass with a layer hook never replays. */
static void decode_steps(struct forward_ctx *fc, struct kv_cache *kv, const int32_t *tokens, int n,
                         float *logits, int vocab, bool direct)
{
    char err[256];
    for (int i = 0; i < n; i++) {
        struct forward_request req = {tokens + i, 1, 0, logits + (long)i * vocab,
                                      direct ? no_op_hook : NULL, NULL};
        if (!forward(fc, kv, &req, err, sizeof err))
            fail_msg("%s", err);
    }
}

/* A CUDA context with graphs off (TANDEM_CUDA_GRAPHS=0): every pass by
 * direct launches. */
static struct forward_ctx *graphless_ctx(const struct rig *r, int max_rows)
{
    char err[256];
    setenv("TANDEM_CUDA_GRAPHS", "0", 1);
    struct forward_ctx *fc = forward_ctx_new_on("cuda", r->m, r->tp, max_rows, CTX, err, sizeof err);
    unsetenv("TANDEM_CUDA_GRAPHS");
    if (!fc)
        fail_msg("%s", err);
    return fc;
}

/* The decode step replayed from a CUDA graph gives bit for bit the logits
 * (and so the KV) of the same step launched directly — hooked (a pass with a
 * layer hook never replays) or in a context with graphs off — at every
 * position; and one capture serves several sequences, each of its own
 * tokens, taking turns (each layer's K/V addresses come from the device
 * table, not the graph). */
static void test_decode_graph(void **state)
{
    (void)state;
    enum { PREFIX = 8, STEPS = 12, SEQS = 3 };
    struct rng g;
    rng_seed(&g, 13);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        struct rig r = rig_open(models[mi].file, 16);
        struct forward_ctx *off = graphless_ctx(&r, 16);
        int32_t tokens[SEQS][PREFIX + STEPS];
        size_t bytes = sizeof(float) * STEPS * r.vocab;
        float *prefix = malloc(sizeof(float) * PREFIX * r.vocab);
        float *direct = malloc(bytes * SEQS), *graphless = malloc(bytes * SEQS);
        float *turns = malloc(bytes * SEQS);
        struct kv_cache *kv[SEQS];
        for (int s = 0; s < SEQS; s++) {
            random_tokens(&g, tokens[s], PREFIX + STEPS, r.vocab);
            struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
            run_passes(r.cuda, a, tokens[s], PREFIX, (int[]){PREFIX}, 1, prefix, r.vocab);
            run_passes(off, b, tokens[s], PREFIX, (int[]){PREFIX}, 1, prefix, r.vocab);
            unsigned long launches = cuda_graph_launches();
            decode_steps(r.cuda, a, tokens[s] + PREFIX, STEPS, direct + (long)s * STEPS * r.vocab,
                         r.vocab, true);
            decode_steps(off, b, tokens[s] + PREFIX, STEPS, graphless + (long)s * STEPS * r.vocab,
                         r.vocab, false);
            assert_int_equal(cuda_graph_launches(), launches);
            kv_free(a);
            kv_free(b);
            kv[s] = kv_new(&r.m->cfg, CTX);
            run_passes(r.cuda, kv[s], tokens[s], PREFIX, (int[]){PREFIX}, 1, prefix, r.vocab);
        }
        assert_memory_equal(direct, graphless, bytes * SEQS);
        unsigned long launches = cuda_graph_launches(), captures = cuda_graph_captures();
        for (int i = 0; i < STEPS; i++) /* the sequences in turn, a step each */
            for (int s = 0; s < SEQS; s++)
                decode_steps(r.cuda, kv[s], tokens[s] + PREFIX + i, 1,
                             turns + ((long)s * STEPS + i) * r.vocab, r.vocab, false);
        assert_int_equal(cuda_graph_launches(), launches + SEQS * STEPS);
        assert_int_equal(cuda_graph_captures(), captures + 1);
        assert_memory_equal(direct, turns, bytes * SEQS);
        printf("  decode graph %-22s %d replays of 1 capture, %d sequences in turn = direct "
               "launches, bit for bit\n",
               models[mi].file, SEQS * STEPS, SEQS);
        for (int s = 0; s < SEQS; s++)
            kv_free(kv[s]);
        free(prefix);
        free(direct);
        free(graphless);
        free(turns);
        forward_ctx_free(off);
        rig_close(&r);
    }
}

/* Passes of 2..16 rows with every row's logits wanted (a cloud's verify
 * passes) replay a graph per row count, captured on first use: sequences of
 * their own tokens taking turns, each pass followed by a rollback as after a
 * partly rejected draft, give bit for bit the logits of a context with
 * graphs off. A pass wanting only its last row's logits (a prompt) launches
 * directly. */
static void test_pass_graphs(void **state)
{
    (void)state;
    enum { PREFIX = 6, SEQS = 2 };
    static const int sizes[] = {4, 1, 16, 2, 9, 4, 5, 16, 3, 2};
    enum { N_SIZES = sizeof sizes / sizeof sizes[0], DISTINCT = 7 }; /* 1, 2, 3, 4, 5, 9, 16 */
    struct rng g;
    rng_seed(&g, 21);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        struct rig r = rig_open(models[mi].file, 16);
        struct forward_ctx *off = graphless_ctx(&r, 16);
        int32_t prompt[PREFIX], draft[16];
        float *want = malloc(sizeof(float) * 16 * r.vocab), *got = malloc(sizeof(float) * 16 * r.vocab);
        struct kv_cache *ref[SEQS], *kv[SEQS];
        char err[256];
        unsigned long launches = cuda_graph_launches(), captures = cuda_graph_captures();
        for (int s = 0; s < SEQS; s++) {
            random_tokens(&g, prompt, PREFIX, r.vocab);
            ref[s] = kv_new(&r.m->cfg, CTX);
            kv[s] = kv_new(&r.m->cfg, CTX);
            struct forward_request last = {prompt, PREFIX, PREFIX - 1, want, NULL, NULL};
            if (!forward(off, ref[s], &last, err, sizeof err))
                fail_msg("%s", err);
            last.logits = got;
            if (!forward(r.cuda, kv[s], &last, err, sizeof err))
                fail_msg("%s", err);
            assert_memory_equal(want, got, sizeof(float) * r.vocab);
        }
        assert_int_equal(cuda_graph_launches(), launches);
        for (int i = 0; i < N_SIZES; i++)
            for (int s = 0; s < SEQS; s++) {
                int k = sizes[i], keep = ref[s]->len + 1 + k / 2;
                random_tokens(&g, draft, k, r.vocab);
                run_passes(off, ref[s], draft, k, (int[]){k}, 1, want, r.vocab);
                run_passes(r.cuda, kv[s], draft, k, (int[]){k}, 1, got, r.vocab);
                assert_memory_equal(want, got, sizeof(float) * k * r.vocab);
                kv_truncate(ref[s], keep);
                kv_truncate(kv[s], keep);
            }
        assert_int_equal(cuda_graph_launches(), launches + SEQS * N_SIZES);
        assert_int_equal(cuda_graph_captures(), captures + DISTINCT);
        printf("  pass graphs %-22s %d replays of %d captures (1..16 rows), %d sequences in "
               "turn = direct launches, bit for bit\n",
               models[mi].file, SEQS * N_SIZES, DISTINCT, SEQS);
        for (int s = 0; s < SEQS; s++) {
            kv_free(ref[s]);
            kv_free(kv[s]);
        }
        free(want);
        free(got);
        forward_ctx_free(off);
        rig_close(&r);
    }
}

/* Prefix, draft k (random 1..16), truncate to j, continue == the same tokens
 * without the dropped draft, bit for bit, on fc's KV cache. */
static void check_rollback(struct forward_ctx *fc, const struct model *m, int vocab, struct rng *g)
{
    enum { PREFIX = 10, CONT = 6 };
    int k = 1 + (int)(rng_next(g) % 16), j = (int)(rng_next(g) % (k + 1));
    int32_t seq[PREFIX + 16 + CONT], draft[16];
    random_tokens(g, seq, PREFIX, vocab);
    random_tokens(g, draft, k, vocab);
    random_tokens(g, seq + PREFIX + j, CONT, vocab);
    memcpy(seq + PREFIX, draft, sizeof(int32_t) * j);
    int total = PREFIX + j + CONT;
    float *want = malloc(sizeof(float) * total * vocab);
    float *got = malloc(sizeof(float) * (PREFIX + 16 + CONT) * vocab);
    struct kv_cache *a = kv_new(&m->cfg, CTX), *b = kv_new(&m->cfg, CTX);
    run_passes(fc, a, seq, total, (int[]){total}, 1, want, vocab);
    run_passes(fc, b, seq, PREFIX, (int[]){PREFIX}, 1, got, vocab);
    run_passes(fc, b, draft, k, (int[]){k}, 1, got + PREFIX * vocab, vocab);
    kv_truncate(b, PREFIX + j);
    run_passes(fc, b, seq + PREFIX + j, CONT, (int[]){CONT}, 1, got + (PREFIX + j) * vocab, vocab);
    assert_memory_equal(want, got, sizeof(float) * total * vocab);
    kv_free(a);
    kv_free(b);
    free(want);
    free(got);
}

static void test_rollback(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 7);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        struct rig r = rig_open(models[mi].file, 16);
        for (int trial = 0; trial < 3; trial++)
            check_rollback(r.cuda, r.m, r.vocab, &g);
        rig_close(&r);
    }
}

struct hook_log {
    int calls, abort_at;
    float hidden[4][16 * 64];
};

static bool record_hook(void *ctx, int layer, const float *hidden, int first_row, int n_rows)
{
    struct hook_log *h = ctx;
    assert_int_equal(first_row, 0);
    if (layer < 4)
        memcpy(h->hidden[layer], hidden, sizeof(float) * n_rows * 64);
    return ++h->calls != h->abort_at;
}

/* Hooks see the residual stream after each layer (as on the CPU); an abort
 * leaves the cache as it was. */
static void test_hooks(void **state)
{
    (void)state;
    struct rig r = rig_open("tiny-llama-f32.gguf", 16);
    assert_int_equal(r.m->cfg.dim, 64);
    int32_t tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static struct hook_log cpu_log, cuda_log;
    float *logits = malloc(sizeof(float) * 8 * r.vocab);
    char err[256];
    struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
    struct forward_request req = {tokens, 8, 0, logits, record_hook, &cpu_log};
    assert_true(forward(r.cpu, a, &req, err, sizeof err));
    req.hook_ctx = &cuda_log;
    assert_true(forward(r.cuda, b, &req, err, sizeof err));
    assert_int_equal(cpu_log.calls, r.m->cfg.n_layers);
    assert_int_equal(cuda_log.calls, r.m->cfg.n_layers);
    for (int l = 0; l < r.m->cfg.n_layers && l < 4; l++)
        assert_true(nmse(cuda_log.hidden[l], cpu_log.hidden[l], 8 * 64) < 1e-10);
    cuda_log.calls = 0;
    cuda_log.abort_at = 1;
    assert_false(forward(r.cuda, b, &req, err, sizeof err));
    assert_non_null(strstr(err, "aborted"));
    assert_int_equal(b->len, 8);
    /* A cache the CUDA context filled is not the CPU's to continue. */
    req.hook = NULL;
    assert_false(forward(r.cpu, b, &req, err, sizeof err));
    assert_non_null(strstr(err, "lives on device cuda"));
    kv_free(a);
    kv_free(b);
    free(logits);
    rig_close(&r);
}

/* The real model of the demo (SmolLM2-135M-Instruct, Q4_1: 30 layers, 576
 * wide, 49152 tokens), when scripts/fetch-smollm2.sh has put it in models/:
 * a short prompt in one pass, then greedy decode steps, each backend feeding
 * back its own argmax. The ids must agree, the logits by NMSE (the CPU
 * quantizes every matmul input to 8 bits, the GPU does not: 210 matmuls). */
#define SMOLLM2 "models/SmolLM2-135M-Instruct.Q4_1.gguf"
static void test_smollm2_q4_1(void **state)
{
    (void)state;
    enum { PROMPT = 6, STEPS = 4 };
    const double bound = 5e-3;
    FILE *f = fopen(SMOLLM2, "rb");
    if (!f) {
        printf("  skipped: %s is absent (scripts/fetch-smollm2.sh fetches it)\n", SMOLLM2);
        skip();
    }
    fclose(f);
    struct rig r = rig_open_path(SMOLLM2, 16);
    /* Fixed ids (1 is <|im_start|>), the rest arbitrary within the vocabulary. */
    int32_t tok[2][PROMPT + STEPS] = {{1, 4093, 198, 19556, 28, 2683}};
    memcpy(tok[1], tok[0], sizeof(int32_t) * PROMPT);
    size_t bytes = sizeof(float) * (PROMPT + STEPS) * r.vocab;
    float *out[2] = {malloc(bytes), malloc(bytes)};
    struct forward_ctx *fc[2] = {r.cpu, r.cuda};
    double worst = 0;
    for (int d = 0; d < 2; d++) {
        struct kv_cache *kv = kv_new(&r.m->cfg, CTX);
        run_passes(fc[d], kv, tok[d], PROMPT, (int[]){PROMPT}, 1, out[d], r.vocab);
        for (int i = 0; i < STEPS; i++) {
            const float *last = out[d] + (long)(PROMPT + i - 1) * r.vocab;
            int best = 0;
            for (int v = 1; v < r.vocab; v++)
                best = last[v] > last[best] ? v : best;
            tok[d][PROMPT + i] = best;
            if (i < STEPS - 1)
                run_passes(fc[d], kv, tok[d] + PROMPT + i, 1, (int[]){1}, 1,
                           out[d] + (long)(PROMPT + i) * r.vocab, r.vocab);
        }
        kv_free(kv);
    }
    assert_memory_equal(tok[0], tok[1], sizeof tok[0]);
    for (int i = 0; i < PROMPT + STEPS - 1; i++) {
        double e = nmse(out[1] + (long)i * r.vocab, out[0] + (long)i * r.vocab, r.vocab);
        worst = e > worst ? e : worst;
    }
    printf("  smollm2 q4_1: greedy ids equal (%d %d %d %d); logits nmse <= %.3e over %d "
           "rows (bound %.0e)\n",
           tok[0][PROMPT], tok[0][PROMPT + 1], tok[0][PROMPT + 2], tok[0][PROMPT + 3], worst,
           PROMPT + STEPS - 1, bound);
    assert_true(worst <= bound);
    free(out[0]);
    free(out[1]);
    rig_close(&r);
}

/* TANDEM_CUDA_KV=f16: the device KV cache in f16 (kernels read it into fp32
 * sums). Against the f32 cache and the CPU the one new difference is K/V
 * rounded to f16 (relative error <= 2^-11 per element, ~1e-7 NMSE on one
 * attention output, ~2e-8 on the tiny models' logits); the bound 1e-5 on
 * the logits leaves ~500x for deeper models and longer contexts. Against the
 * CPU, q4_1 keeps its own 5e-4 (the CPU's 8-bit x dominates).
 * Within the mode: any split of the sequence into passes (and the decode
 * graph) gives the same bits, and draft/truncate/continue equals never
 * drafting. A cache of one element type is refused by a context of the
 * other. */
static void test_f16_kv(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        double bound;
    } kv_models[] = {{"tiny-llama-f32.gguf", 1e-5},
                     {"tiny-qwen2-f16.gguf", 1e-5},
                     {"tiny-llama-q4_1.gguf", 5e-4}};
    struct rng g;
    rng_seed(&g, 5);
    for (size_t mi = 0; mi < sizeof kv_models / sizeof kv_models[0]; mi++) {
        struct rig r32 = rig_open(kv_models[mi].file, 16);
        setenv("TANDEM_CUDA_KV", "f16", 1);
        struct rig r = rig_open(kv_models[mi].file, 16);
        unsetenv("TANDEM_CUDA_KV");
        int32_t tokens[SEQ];
        random_tokens(&g, tokens, SEQ, r.vocab);
        size_t bytes = sizeof(float) * SEQ * r.vocab;
        float *cpu = malloc(bytes), *f32kv = malloc(bytes), *got = malloc(bytes);
        float *again = malloc(bytes);
        struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
        struct kv_cache *c = kv_new(&r.m->cfg, CTX), *e = kv_new(&r.m->cfg, CTX);
        run_passes(r.cpu, a, tokens, SEQ, (int[]){1}, 1, cpu, r.vocab);
        run_passes(r32.cuda, e, tokens, SEQ, (int[]){7, 1, 16, 3, 2}, 5, f32kv, r.vocab);
        run_passes(r.cuda, b, tokens, SEQ, (int[]){7, 1, 16, 3, 2}, 5, got, r.vocab);
        double e_cpu = nmse(got, cpu, (long)SEQ * r.vocab);
        double e_32 = nmse(got, f32kv, (long)SEQ * r.vocab);
        printf("  f16 kv %-22s logits nmse vs cpu %.3e (bound %.0e), vs f32-kv cuda %.3e "
               "(bound 1e-5)\n", kv_models[mi].file, e_cpu, kv_models[mi].bound, e_32);
        assert_true(e_cpu <= kv_models[mi].bound && e_32 <= 1e-5);
        run_passes(r.cuda, c, tokens, SEQ, (int[]){1}, 1, again, r.vocab);
        assert_memory_equal(got, again, bytes);

        /* one element type per cache */
        char err[256];
        struct forward_request req = {tokens, 1, 0, again, NULL, NULL};
        assert_false(forward(r32.cuda, b, &req, err, sizeof err));
        assert_non_null(strstr(err, "TANDEM_CUDA_KV"));

        /* rollback within the mode */
        check_rollback(r.cuda, r.m, r.vocab, &g);

        kv_free(a); kv_free(b); kv_free(c); kv_free(e);
        free(cpu); free(f32kv); free(got); free(again);
        rig_close(&r);
        rig_close(&r32);
    }
}

/* Every weight type the loader takes (f32, f16, bf16, q8_0, q4_0, q4_1) now
 * runs on the device, so no fixture is refused for its type any more; what is
 * left to refuse is an unknown device, and Q8_0 weights repacked for the CPU
 * (model_repack), whose layout the device kernels do not read. */
static void test_refusals(void **state)
{
    (void)state;
    char err[256];
    struct model *m = model_load(FIXTURES "tiny-llama-f32.gguf", err, sizeof err);
    assert_non_null(m);
    struct threadpool *tp = threadpool_new(1);
    assert_null(forward_ctx_new_on("tpu", m, tp, 4, CTX, err, sizeof err));
    assert_non_null(strstr(err, "unknown device"));
    model_free(m);
    m = model_load(FIXTURES "tiny-llama-q8_0.gguf", err, sizeof err);
    assert_non_null(m);
    assert_true(model_repack(m, err, sizeof err) > 0);
    if (m->layers[0].wq.q8_0x16) {
        assert_null(forward_ctx_new_on("cuda", m, tp, 4, CTX, err, sizeof err));
        assert_non_null(strstr(err, "repacked for the CPU"));
    } else {
        print_message("no q8_0x16 kernel in this build: nothing repacked to refuse\n");
    }
    threadpool_free(tp);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_cpu),
        cmocka_unit_test(test_long_prefill),
        cmocka_unit_test(test_decode_graph),
        cmocka_unit_test(test_pass_graphs),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_f16_kv),
        cmocka_unit_test(test_smollm2_q4_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
