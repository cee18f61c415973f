/* The cloud server with --device cuda, run on the host harness: an sd-ee
 * edge generates against a cloud whose target passes run on the CUDA
 * backend and whose exits are evaluated by the fused head on the device, and
 * gets the tokens and EARLY verdicts a CPU cloud gives it: with gamma 4
 * (verify passes on the GEMV) and, above the CUDA cloud's default limit of
 * 15, gamma 20 (21-row verify passes of this f32 target through cuBLAS, one
 * chunk, so EARLY still comes from the whole pass). An unknown device is
 * refused with a message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud/cloud.h"
#include "edge/edge.h"
#include "engine/model.h"
#include "engine/sample.h"
#include "kernels/cuda/ops.h"
#include "tests/cuda/exits_fixture.h"
#include "weights/gguf.h"

#define FIXTURES "tests/golden/fixtures/"
#define DRAFT FIXTURES "tiny-llama-q4_0.gguf"
#define TOKENS 24

static char tmp_dir[64], target[128];

/* The exits fixture (tests/cuda/exits_fixture.h) on tiny-llama-f32, rank 8
 * at exit 2, thresholds low enough that the tiny
 * model's flat distributions still give EARLY verdicts. */
static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_cuda_cloud_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmp_dir))
        return -1;
    char err[512];
    snprintf(target, sizeof target, "%s/target-exits.gguf", tmp_dir);
    bool ok = exits_fixture_write(FIXTURES "tiny-llama-f32.gguf", 8,
                                  (float[]){0.02f, 0.02f, 0.02f}, target, err, sizeof err);
    if (!ok)
        fprintf(stderr, "%s\n", err);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd);
}

struct served {
    struct cloud *cl;
    volatile sig_atomic_t stop;
    pthread_t thread;
    char endpoint[128];
};

static void *serve(void *arg)
{
    struct served *s = arg;
    char err[256];
    cloud_serve(s->cl, &s->stop, err, sizeof err);
    return NULL;
}

/* One sd-ee generation of TOKENS greedy tokens against a cloud on `device`. */
static struct edge_result generate_on(const char *device, int gamma)
{
    static int n;
    struct served s = {0};
    snprintf(s.endpoint, sizeof s.endpoint, "ipc://%s/cloud-%d.sock", tmp_dir, n++);
    char err[512];
    struct cloud_config cfg = {.model = target, .bind = s.endpoint, .ctx = 64, .max_gamma = gamma,
                               .threads = 1, .device = device};
    s.cl = cloud_new(&cfg, err, sizeof err);
    if (!s.cl)
        fail_msg("%s", err);
    pthread_create(&s.thread, NULL, serve, &s);
    struct edge_config ec = {.model = DRAFT, .endpoint = s.endpoint, .mode = EDGE_SD_EE,
                             .gamma = gamma, .sampling = {0.0f, 0, 1.0f}, .threads = 1,
                             .ctx = 64, .ignore_eos = true};
    struct edge *e = edge_open(&ec, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    const int32_t prompt[] = {1, 5, 9, 14};
    struct edge_result res;
    if (!edge_generate(e, prompt, 4, TOKENS, NULL, NULL, &res, err, sizeof err))
        fail_msg("%s", err);
    edge_close(e);
    s.stop = 1;
    pthread_join(s.thread, NULL);
    cloud_free(s.cl);
    return res;
}

static void test_cuda_cloud_matches_cpu(void **state)
{
    (void)state;
    const int gammas[] = {4, 20};
    for (int gi = 0; gi < 2; gi++) {
        struct edge_result cpu = generate_on("cpu", gammas[gi]);
        unsigned long before = cuda_exit_head_launches();
        struct edge_result cuda = generate_on("cuda", gammas[gi]);
        unsigned long heads = cuda_exit_head_launches() - before;
        printf("  gamma %2d: cpu %d tokens, %d rounds, %d EARLY; cuda %d tokens, %d rounds, %d "
               "EARLY, %lu device exit heads\n",
               gammas[gi], cpu.n_ids, cpu.rounds, cpu.early_rounds, cuda.n_ids, cuda.rounds,
               cuda.early_rounds, heads);
        assert_int_equal(cpu.n_ids, TOKENS);
        assert_int_equal(cuda.n_ids, TOKENS);
        assert_memory_equal(cpu.ids, cuda.ids, sizeof(int32_t) * TOKENS);
        /* Same verdicts: the same rounds, EARLY in the same rounds' count. */
        assert_int_equal(cpu.rounds, cuda.rounds);
        assert_int_equal(cpu.accepted, cuda.accepted);
        assert_int_equal(cpu.early_rounds, cuda.early_rounds);
        assert_true(cuda.early_rounds > 0);
        assert_true(heads > 0); /* the verdicts came from the device head */
        edge_result_free(&cpu);
        edge_result_free(&cuda);
    }
}

/* Without --max-gamma a CUDA cloud takes drafts of up to 15 tokens: every
 * verify pass is one batch-invariant GEMV chunk. */
static void test_cuda_default_gamma(void **state)
{
    (void)state;
    struct served s = {0};
    snprintf(s.endpoint, sizeof s.endpoint, "ipc://%s/cloud-default.sock", tmp_dir);
    char err[512];
    struct cloud_config cfg = {.model = target, .bind = s.endpoint, .ctx = 64, .threads = 1,
                               .device = "cuda"};
    s.cl = cloud_new(&cfg, err, sizeof err);
    if (!s.cl)
        fail_msg("%s", err);
    pthread_create(&s.thread, NULL, serve, &s);
    struct edge_config ec = {.model = DRAFT, .endpoint = s.endpoint, .mode = EDGE_SD_EE,
                             .gamma = 16, .sampling = {0.0f, 0, 1.0f}, .threads = 1, .ctx = 64};
    assert_null(edge_open(&ec, err, sizeof err));
    printf("  refused: %s\n", err);
    assert_non_null(strstr(err, "limit of 15"));
    ec.gamma = 15;
    struct edge *e = edge_open(&ec, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    edge_close(e);
    s.stop = 1;
    pthread_join(s.thread, NULL);
    cloud_free(s.cl);
}

static void test_unknown_device(void **state)
{
    (void)state;
    char err[512], endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/cloud-bad.sock", tmp_dir);
    struct cloud_config cfg = {.model = target, .bind = endpoint, .ctx = 64, .threads = 1,
                               .device = "tpu"};
    assert_null(cloud_new(&cfg, err, sizeof err));
    printf("  refused: %s\n", err);
    assert_non_null(strstr(err, "unknown device 'tpu'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_cloud_matches_cpu),
        cmocka_unit_test(test_cuda_default_gamma),
        cmocka_unit_test(test_unknown_device),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
