/* The real SmolLM2-135M-Instruct (Q4_1) against llama.cpp.
 *
 * Fixture tests/golden/fixtures/smollm2_greedy.json (make_smollm2_reference.py)
 * holds, for several prompts, llama.cpp's greedy continuation of 64 tokens and
 * at each step the gap between its top-2 logits and its top-8 logits. Our
 * greedy ids must equal llama.cpp's; where they diverge, the divergence must
 * start at a near-tie in llama.cpp's logits (gap < NEAR_TIE), after which the
 * two continuations are different texts and are no longer compared. Reports
 * top-1 agreement and the largest |Δlogit| over llama.cpp's top-8 tokens. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/forward.h"
#include "kernels/cpu/ops.h"

#define FIXTURE "tests/golden/fixtures/smollm2_greedy.json"
#define MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
/* The engine's noise floor on this model, measured (tests/golden/README.md):
 * SmolLM2's residual stream has outlier features, so an activation block's
 * 8-bit scale is coarse and a float rounding difference anywhere can flip a
 * quantized value and move logits by tenths. llama.cpp's own logits differ by
 * up to 0.6 from a float64 replay of llama.cpp's arithmetic, while ours match
 * that replay to 1e-5 on a 1-layer cut of the model. So a top-2 gap under 1.0
 * is a tie that two faithful engines may break differently. */
#define NEAR_TIE 1.0
/* Largest |Δlogit| over llama.cpp's top-8 allowed before a divergence. The
 * gap grows with how long the two stay in step (measured 1.3 over 72 steps
 * with the AVX2 back end, 2.7 over 169 with AVX-512); a wrong kernel moves
 * logits by whole units from the first token on. */
#define MAX_DLOGIT 4.0

static int get_int(json_object *a, size_t i) { return json_object_get_int(json_object_array_get_idx(a, i)); }

static void test_greedy_matches_llama_cpp(void **state)
{
    (void)state;
    if (access(MODEL, R_OK) != 0) {
        print_message("%s not present (scripts/fetch-smollm2.sh fetches it); skipped\n", MODEL);
        skip();
    }
    json_object *root = json_object_from_file(FIXTURE);
    assert_non_null(root);
    json_object *cases;
    assert_true(json_object_object_get_ex(root, "cases", &cases));
    char err[512];
    struct model *m = model_load(MODEL, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    struct threadpool *tp = threadpool_new(2);
    struct forward_ctx *fc = forward_ctx_new(m, tp, 32, 512);
    float *logits = malloc(sizeof(float) * m->cfg.vocab);
    int agree = 0, compared = 0;
    double max_dlogit = 0;

    for (size_t c = 0; c < json_object_array_length(cases); c++) {
        json_object *cs = json_object_array_get_idx(cases, c), *prompt, *ids, *gaps, *top, *name;
        assert_true(json_object_object_get_ex(cs, "prompt_ids", &prompt) &&
                    json_object_object_get_ex(cs, "ids", &ids) &&
                    json_object_object_get_ex(cs, "top2_gap", &gaps) &&
                    json_object_object_get_ex(cs, "top", &top) &&
                    json_object_object_get_ex(cs, "name", &name));
        int n_prompt = (int)json_object_array_length(prompt), n = (int)json_object_array_length(ids);
        int32_t *seq = malloc(sizeof(int32_t) * (n_prompt + n));
        for (int i = 0; i < n_prompt; i++)
            seq[i] = get_int(prompt, i);
        struct kv_cache *kv = kv_new(&m->cfg, 512);
        const int32_t *input = seq;
        int n_input = n_prompt, diverged_at = -1;
        for (int step = 0; step < n; step++) {
            struct forward_request req = {input, n_input, n_input - 1, logits, NULL, NULL};
            if (!forward(fc, kv, &req, err, sizeof err))
                fail_msg("%s", err);
            int ours = argmax(logits, m->cfg.vocab), theirs = get_int(ids, step);
            json_object *top8 = json_object_array_get_idx(top, step);
            for (size_t t = 0; t < json_object_array_length(top8); t++) {
                json_object *pair = json_object_array_get_idx(top8, t);
                int id = get_int(pair, 0);
                double l = json_object_get_double(json_object_array_get_idx(pair, 1));
                max_dlogit = fmax(max_dlogit, fabs(logits[id] - l));
            }
            compared++;
            if (ours != theirs) {
                double gap = json_object_get_double(json_object_array_get_idx(gaps, step));
                if (gap >= NEAR_TIE)
                    fail_msg("case %s step %d: ours %d, llama.cpp %d, whose top-2 gap %.4f is no tie",
                             json_object_get_string(name), step, ours, theirs, gap);
                diverged_at = step;
                break;
            }
            agree++;
            seq[n_prompt + step] = ours;
            input = &seq[n_prompt + step];
            n_input = 1;
        }
        if (diverged_at >= 0)
            print_message("case %-12s diverges at step %d, at a near-tie (gap < %.2f)\n",
                          json_object_get_string(name), diverged_at, NEAR_TIE);
        else
            print_message("case %-12s all %d tokens equal\n", json_object_get_string(name), n);
        kv_free(kv);
        free(seq);
    }
    print_message("top-1 agreement %d/%d steps compared, max |dlogit| over llama.cpp's top-8: %.4f\n",
                  agree, compared, max_dlogit);
    assert_true(max_dlogit < MAX_DLOGIT);
    free(logits);
    forward_ctx_free(fc);
    threadpool_free(tp);
    model_free(m);
    json_object_put(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_greedy_matches_llama_cpp)};
    return cmocka_run_group_tests_name("golden: SmolLM2-135M vs llama.cpp", tests, NULL, NULL);
}
