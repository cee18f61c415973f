/* Whole-model logits of tiny random GGUFs against an independent oracle.
 *
 * The fixtures (tests/golden/fixtures, made by make_tiny_models.py) were
 * written by gguf-py and their logits computed by a NumPy reference forward
 * pass in float64 over gguf-py's dequantized weights — neither shares code
 * with the engine. Every tensor type and both architectures are covered; the
 * prompt runs as one pass, token by token, and in uneven chunks.
 *
 * The fixtures also hold llama.cpp's logits for the same files. For f32 and
 * the 8-bit-activation types (q8_0, q4_0, q4_1) the engine rounds as
 * llama.cpp's CPU backend does, so it must match those to float rounding; for
 * f16/bf16 llama.cpp rounds activations to 16 bits and we do not, so only the
 * float64 reference applies there. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"

#define FIXTURES "tests/golden/fixtures/"

struct golden {
    int n;          /* tokens */
    int vocab;
    int32_t *tokens;
    float *logits;  /* (n, vocab) float64 NumPy reference */
    float *lc;      /* (n, vocab) llama.cpp's, or NULL */
};

static float *read_rows(json_object *rows, int n, int vocab)
{
    float *out = malloc(sizeof(float) * n * vocab);
    for (int i = 0; i < n; i++) {
        json_object *row = json_object_array_get_idx(rows, i);
        for (int j = 0; j < vocab; j++)
            out[i * vocab + j] = (float)json_object_get_double(json_object_array_get_idx(row, j));
    }
    return out;
}

static bool load_golden(const char *json_path, struct golden *g)
{
    json_object *root = json_object_from_file(json_path);
    if (!root)
        return false;
    json_object *toks, *logits;
    if (!json_object_object_get_ex(root, "tokens", &toks) ||
        !json_object_object_get_ex(root, "logits", &logits)) {
        json_object_put(root);
        return false;
    }
    g->n = (int)json_object_array_length(toks);
    g->vocab = (int)json_object_array_length(json_object_array_get_idx(logits, 0));
    g->tokens = malloc(sizeof(int32_t) * g->n);
    for (int i = 0; i < g->n; i++)
        g->tokens[i] = json_object_get_int(json_object_array_get_idx(toks, i));
    g->logits = read_rows(logits, g->n, g->vocab);
    json_object *lc;
    g->lc = json_object_object_get_ex(root, "llama_cpp_logits", &lc) ? read_rows(lc, g->n, g->vocab) : NULL;
    json_object_put(root);
    return true;
}

/* Largest |ours - ref| over a row, relative to the row's largest |ref|. */
static double row_error(const float *ours, const float *ref, int vocab)
{
    double max_d = 0, max_r = 0;
    for (int j = 0; j < vocab; j++) {
        max_d = fmax(max_d, fabs((double)ours[j] - ref[j]));
        max_r = fmax(max_r, fabs((double)ref[j]));
    }
    return max_d / max_r;
}

/* Tolerance per weight type. Float types differ from float64 only by float32
 * rounding; quantized types also quantize activations to 8 bits (as
 * llama.cpp does), which the float64 reference does not. */
static double tolerance(const char *name)
{
    if (strstr(name, "q4_") || strstr(name, "q8_0"))
        return 2e-2;
    return 1e-4;
}

/* Runs the prompt split into passes of the given sizes; logits of every row. */
static void run_split(const struct model *m, const struct golden *g, const int *sizes, float *out)
{
    char err[256];
    struct threadpool *tp = threadpool_new(2);
    struct kv_cache *kv = kv_new(&m->cfg, 64);
    struct forward_ctx *fc = forward_ctx_new(m, tp, 16, 64);
    assert_non_null(fc);
    int done = 0;
    for (int i = 0; done < g->n; i++) {
        int n = sizes[i] < g->n - done ? sizes[i] : g->n - done;
        struct forward_request req = {g->tokens + done, n, 0, out + (long)done * g->vocab, NULL, NULL};
        if (!forward(fc, kv, &req, err, sizeof err))
            fail_msg("forward: %s", err);
        done += n;
    }
    assert_int_equal(kv->len, g->n);
    forward_ctx_free(fc);
    kv_free(kv);
    threadpool_free(tp);
}

static void check_model(const char *gguf_name)
{
    char path[512], json[512], err[512];
    snprintf(path, sizeof path, FIXTURES "%s", gguf_name);
    snprintf(json, sizeof json, "%.*s.json", (int)(strlen(path) - 5), path);
    struct golden g = {0};
    if (!load_golden(json, &g))
        fail_msg("cannot read %s", json);
    struct model *m = model_load(path, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_int_equal(m->cfg.vocab, g.vocab);

    static const int one_pass[] = {64};
    static const int singles[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const int uneven[] = {5, 1, 3, 3};
    const int *splits[] = {one_pass, singles, uneven};
    float *out = malloc(sizeof(float) * g.n * g.vocab);
    double tol = tolerance(gguf_name), worst = 0;
    for (size_t s = 0; s < 3; s++) {
        run_split(m, &g, splits[s], out);
        for (int r = 0; r < g.n; r++) {
            double e = row_error(out + r * g.vocab, g.logits + r * g.vocab, g.vocab);
            worst = fmax(worst, e);
            if (e > tol)
                fail_msg("%s split %zu row %d: relative error %.3g > %.3g", gguf_name, s, r, e, tol);
        }
    }
    print_message("%-22s max relative logit error %.2e (tolerance %.0e)\n", gguf_name, worst, tol);
    if (!strstr(gguf_name, "f16")) { /* f16, bf16: see the top of the file */
        if (!g.lc)
            fail_msg("%s: fixture has no llama.cpp logits", json);
        double lc_worst = 0;
        for (int r = 0; r < g.n; r++)
            lc_worst = fmax(lc_worst, row_error(out + r * g.vocab, g.lc + r * g.vocab, g.vocab));
        print_message("%-22s vs llama.cpp: max relative logit error %.2e (tolerance 1e-05)\n",
                      gguf_name, lc_worst);
        assert_true(lc_worst < 1e-5);
    }
    free(out);
    free(g.tokens);
    free(g.logits);
    free(g.lc);
    model_free(m);
}

#define MODEL_TEST(arch, type) \
    static void test_##arch##_##type(void **state) { (void)state; check_model("tiny-" #arch "-" #type ".gguf"); }
MODEL_TEST(llama, f32) MODEL_TEST(llama, f16) MODEL_TEST(llama, bf16)
MODEL_TEST(llama, q8_0) MODEL_TEST(llama, q4_0) MODEL_TEST(llama, q4_1)
MODEL_TEST(qwen2, f32) MODEL_TEST(qwen2, f16) MODEL_TEST(qwen2, bf16)
MODEL_TEST(qwen2, q8_0) MODEL_TEST(qwen2, q4_0) MODEL_TEST(qwen2, q4_1)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_f32),  cmocka_unit_test(test_llama_f16),
        cmocka_unit_test(test_llama_bf16), cmocka_unit_test(test_llama_q8_0),
        cmocka_unit_test(test_llama_q4_0), cmocka_unit_test(test_llama_q4_1),
        cmocka_unit_test(test_qwen2_f32),  cmocka_unit_test(test_qwen2_f16),
        cmocka_unit_test(test_qwen2_bf16), cmocka_unit_test(test_qwen2_q8_0),
        cmocka_unit_test(test_qwen2_q4_0), cmocka_unit_test(test_qwen2_q4_1),
    };
    return cmocka_run_group_tests_name("golden: tiny models vs NumPy oracle", tests, NULL, NULL);
}
