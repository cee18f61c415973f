/* repack_ab: decode speed of one model with its weights repacked for the CPU
 * (model_repack, the default of run/cloud/edge) against the same model
 * mapped from the file (--no-repack), side by side in one process.
 *
 *   repack_ab MODEL.gguf [TOKENS [ROUNDS [THREADS]]]
 *
 * Loads the model twice (one copy repacked), then runs ROUNDS rounds of a
 * TOKENS-token decode from an empty cache on each in turn, after one warm-up
 * round; a slow spell of the machine lands on both alike. Prints every
 * round's tok/s and the totals' ratio. The two copies give the same logits
 * (tests/unit/test_forward.c), so only time is compared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/forward.h"
#include "engine/model.h"

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "usage: repack_ab MODEL.gguf [TOKENS [ROUNDS [THREADS]]]\n");
        return argc < 2 ? 2 : 0;
    }
    const int n = argc > 2 ? atoi(argv[2]) : 32, rounds = argc > 3 ? atoi(argv[3]) : 8,
              threads = argc > 4 ? atoi(argv[4]) : 2;
    if (n < 1 || rounds < 1 || threads < 1) {
        fprintf(stderr, "repack_ab: TOKENS, ROUNDS and THREADS must be positive\n");
        return 2;
    }
    char err[512];
    struct model *ms[2] = {model_load(argv[1], err, sizeof err), NULL};
    if (ms[0])
        ms[1] = model_load(argv[1], err, sizeof err);
    if (!ms[1] || model_repack(ms[0], err, sizeof err) < 0) {
        fprintf(stderr, "repack_ab: %s\n", err);
        return 1;
    }
    const char *names[2] = {"repacked", "mapped"};
    struct threadpool *tp = threadpool_new(threads);
    struct forward_ctx *fc[2];
    struct kv_cache *kv[2];
    for (int i = 0; i < 2; i++) {
        fc[i] = forward_ctx_new(ms[i], tp, 1, n);
        kv[i] = kv_new(&ms[i]->cfg, n);
    }
    float *logits = malloc(sizeof(float) * (size_t)ms[0]->cfg.vocab);
    if (!tp || !fc[0] || !fc[1] || !kv[0] || !kv[1] || !logits) {
        fprintf(stderr, "repack_ab: out of memory\n");
        return 1;
    }
    double total[2] = {0, 0};
    printf("%s, %d tokens a run, %d threads\n", argv[1], n, threads);
    for (int r = 0; r <= rounds; r++) {
        printf("%s", r ? "round" : "warm-up");
        for (int i = 0; i < 2; i++) {
            kv_truncate(kv[i], 0);
            const double t0 = clock_now_s();
            for (int t = 0; t < n; t++) {
                int32_t tok = (int32_t)((t * 7919u + 13) % (unsigned)ms[i]->cfg.vocab);
                struct forward_request req = {&tok, 1, 0, logits, NULL, NULL};
                if (!forward(fc[i], kv[i], &req, err, sizeof err)) {
                    fprintf(stderr, "repack_ab: %s\n", err);
                    return 1;
                }
            }
            const double dt = clock_now_s() - t0;
            if (r)
                total[i] += dt;
            printf("  %s %.2f tok/s", names[i], n / dt);
        }
        printf("\n");
    }
    printf("total: repacked %.2f tok/s, mapped %.2f tok/s, repacked / mapped %.3f\n",
           n * rounds / total[0], n * rounds / total[1], total[1] / total[0]);
    for (int i = 0; i < 2; i++) {
        kv_free(kv[i]);
        forward_ctx_free(fc[i]);
        model_free(ms[i]);
    }
    threadpool_free(tp);
    free(logits);
    return 0;
}
