/* Early exits on the CUDA backend, run on the host harness: forward_exits on
 * a CUDA context evaluates every exit with the fused head on the device
 * (adapters as device GEMVs before it) and its verdicts — argmax, its
 * probability, the logits — match the CPU backend's; an adapter the device
 * cannot take sends the exits to the host path, with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/cuda/exits_fixture.h"
#include "tests/cuda/nmse.h"
#include "engine/exits.h"
#include "engine/sample.h"
#include "kernels/cuda/ops.h"

#define FIXTURES "tests/golden/fixtures/"
#define CTX 64
#define MAX_ROWS 24 /* the most any case below uses */
#define N 20          /* rows of the pass */
#define N_EXITS EXITS_FIXTURE_N

static char tmp_dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_cuda_exits_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd);
}

/* The exits fixture (tests/cuda/exits_fixture.h) from `fixture`, with a
 * rank-`rank` adapter at exit 2, written to tmp_dir/name and loaded. */
static struct model *model_with_exits(const char *fixture, int rank, const char *name)
{
    char src[256], path[256], err[512];
    snprintf(src, sizeof src, FIXTURES "%s", fixture);
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    if (!exits_fixture_write(src, rank, (float[]){0.5f, 0.6f, 0.7f}, path, err, sizeof err))
        fail_msg("%s", err);
    struct model *m = model_load(path, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    return m;
}

/* What forward_exits hands out, per exit. */
struct exit_log {
    int vocab, calls;
    struct exit_result res[N_EXITS][N];
    float *logits[N_EXITS]; /* (N, vocab) */
};

static void log_exit(void *ctx, int exit, int first_row, int n_rows, const struct exit_result *res,
                     const float *logits)
{
    struct exit_log *log = ctx;
    log->calls++;
    memcpy(&log->res[exit][first_row], res, sizeof *res * n_rows);
    if (logits)
        memcpy(log->logits[exit] + (long)first_row * log->vocab, logits,
               sizeof(float) * n_rows * log->vocab);
}

struct run {
    struct exit_log log;
    float *final; /* (N, vocab) the pass's own logits */
};

/* A prefix, then N rows through forward_exits on `device`, in chunks of
 * max_rows. */
static struct run run_exits(const char *device, struct model *m, const struct exit_set *s,
                            struct threadpool *tp, int max_rows)
{
    char err[256];
    int vocab = m->cfg.vocab;
    struct forward_ctx *fc = forward_ctx_new_on(device, m, tp, max_rows, CTX, err, sizeof err);
    struct exit_eval *ev = exit_eval_new(m, s, tp, MAX_ROWS);
    struct kv_cache *kv = kv_new(&m->cfg, CTX);
    if (!fc || !ev || !kv)
        fail_msg("%s: %s", device, err);
    int32_t prefix[3] = {4, 5, 6}, tokens[N];
    for (int i = 0; i < N; i++)
        tokens[i] = (int32_t)((i * 37 + 11) % vocab);
    struct forward_request pre = {prefix, 3, 3, NULL, NULL, NULL};
    assert_true(forward(fc, kv, &pre, err, sizeof err));
    struct run r = {{vocab, 0, {{{0, 0}}}, {NULL}}, malloc(sizeof(float) * N * vocab)};
    for (int e = 0; e < N_EXITS; e++)
        r.log.logits[e] = malloc(sizeof(float) * N * vocab);
    struct forward_request req = {tokens, N, 0, r.final, NULL, NULL};
    if (!forward_exits(fc, kv, &req, s, ev, true, log_exit, &r.log, err, sizeof err))
        fail_msg("%s: %s", device, err);
    assert_int_equal(r.log.calls, N_EXITS * ((N + max_rows - 1) / max_rows));
    kv_free(kv);
    exit_eval_free(ev);
    forward_ctx_free(fc);
    return r;
}

static void run_free(struct run *r)
{
    for (int e = 0; e < N_EXITS; e++)
        free(r->log.logits[e]);
    free(r->final);
}

/* Verdicts of the CUDA run equal the CPU run's: ids exactly, probabilities
 * within prob_tol, exit and final logits by NMSE within logit_nmse. */
static void compare(const struct run *cuda, const struct run *cpu, int vocab, const char *what,
                    double prob_tol, double logit_nmse)
{
    double worst_p = 0, worst_l = 0;
    for (int e = 0; e < N_EXITS; e++) {
        for (int r = 0; r < N; r++) {
            assert_int_equal(cuda->log.res[e][r].token, cpu->log.res[e][r].token);
            double dp = fabs((double)cuda->log.res[e][r].prob - cpu->log.res[e][r].prob);
            worst_p = dp > worst_p ? dp : worst_p;
        }
        double l = nmse(cuda->log.logits[e], cpu->log.logits[e], (long)N * vocab);
        worst_l = l > worst_l ? l : worst_l;
    }
    double f = nmse(cuda->final, cpu->final, (long)N * vocab);
    printf("  %-36s ids equal, |dprob| %.1e (tol %.0e), logits nmse exit %.1e, final %.1e "
           "(bound %.0e)\n", what, worst_p, prob_tol, worst_l, f, logit_nmse);
    assert_true(worst_p <= prob_tol);
    assert_true(worst_l <= logit_nmse);
    assert_true(f <= logit_nmse);
}

/* All three exits (full, none, low-rank 8) run on the device: one fused
 * head call per exit, chunk and group of 16 rows, nothing on the host.
 *
 * The device's probability is exp(top - lse) from float logit and lse, the
 * CPU's 1 / Σ exp in double: 1e-5 covers that (measured ~2e-6). Logits:
 * GEMV, head and cuBLAS f32 differ from the CPU in summation order only
 * (1e-10). A 20-row chunk of f16 weights goes through the f16 GEMM, which
 * rounds activations to f16 (docs/cuda.md): logits ~1e-7, probabilities
 * ~1e-3 off the CPU's, ids still equal on this input. Q4_1 weights: the CPU
 * quantizes every matmul input to 8 bits, the GPU does not (as in
 * test_cuda_forward): logits ~1.6e-4 (bound 5e-4), probabilities up to
 * ~6e-2 apart on this tiny model's peaked rows (bound 1e-1), ids equal. */
static const struct {
    const char *fixture;
    int max_rows;      /* 16: chunks of 16 + 4 rows; 24: one chunk, head groups 16 + 4 */
    double prob_tol, logit_nmse;
} device_cases[] = {{"tiny-llama-f32.gguf", 24, 1e-5, 1e-10},
                    {"tiny-llama-f16.gguf", 16, 1e-5, 1e-10},
                    {"tiny-llama-f16.gguf", 24, 2e-3, 1e-6},
                    {"tiny-llama-q4_1.gguf", 16, 1e-1, 5e-4}};

static void test_device_head(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof device_cases / sizeof device_cases[0]; ci++) {
        int max_rows = device_cases[ci].max_rows;
        struct model *m = model_with_exits(device_cases[ci].fixture, 8, "exits.gguf");
        struct threadpool *tp = threadpool_new(1);
        struct exit_set s;
        char err[256], why[256];
        if (!exits_load(m, &s, err, sizeof err))
            fail_msg("%s", err);
        struct forward_ctx *probe = forward_ctx_new_on("cpu", m, tp, MAX_ROWS, CTX, err, sizeof err);
        assert_false(forward_exits_in_place(probe, &s, why, sizeof why));
        assert_non_null(strstr(why, "device cpu evaluates exits on the host"));
        forward_ctx_free(probe);
        probe = forward_ctx_new_on("cuda", m, tp, MAX_ROWS, CTX, err, sizeof err);
        assert_true(forward_exits_in_place(probe, &s, why, sizeof why));
        forward_ctx_free(probe);

        struct run cpu = run_exits("cpu", m, &s, tp, max_rows);
        unsigned long before = cuda_exit_head_launches();
        struct run cuda = run_exits("cuda", m, &s, tp, max_rows);
        /* The device head did the work: 3 exits x 2 (chunks or groups: 16 + 4 rows). */
        assert_int_equal(cuda_exit_head_launches() - before, N_EXITS * 2);
        char what[80];
        snprintf(what, sizeof what, "%s, chunks of %d", device_cases[ci].fixture, max_rows);
        compare(&cuda, &cpu, m->cfg.vocab, what, device_cases[ci].prob_tol,
                device_cases[ci].logit_nmse);
        run_free(&cpu);
        run_free(&cuda);
        exits_free(&s);
        threadpool_free(tp);
        model_free(m);
    }
}

/* A low-rank adapter of rank 6 has rows of 6 floats, which the GEMV's 4-float
 * loads cannot take: every exit goes to the host path (the stream copied back
 * after each layer), no fused head runs, the verdicts are the CPU's. */
static void test_host_fallback(void **state)
{
    (void)state;
    struct model *m = model_with_exits("tiny-llama-f32.gguf", 6, "exits-rank6.gguf");
    struct threadpool *tp = threadpool_new(1);
    struct exit_set s;
    char err[256], why[256];
    if (!exits_load(m, &s, err, sizeof err))
        fail_msg("%s", err);
    struct forward_ctx *probe = forward_ctx_new_on("cuda", m, tp, MAX_ROWS, CTX, err, sizeof err);
    assert_false(forward_exits_in_place(probe, &s, why, sizeof why));
    printf("  host fallback: %s\n", why);
    assert_non_null(strstr(why, "exit.2.adapter_u.weight has 6 columns"));
    forward_ctx_free(probe);
    struct run cpu = run_exits("cpu", m, &s, tp, 16);
    unsigned long before = cuda_exit_head_launches();
    struct run cuda = run_exits("cuda", m, &s, tp, 16);
    assert_int_equal(cuda_exit_head_launches(), before);
    compare(&cuda, &cpu, m->cfg.vocab, "rank-6 adapter, host path", 1e-5, 1e-10);
    run_free(&cpu);
    run_free(&cuda);
    exits_free(&s);
    threadpool_free(tp);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_head),
        cmocka_unit_test(test_host_fallback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
