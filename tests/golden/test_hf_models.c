/* Hugging Face checkpoints converted by `tandem convert` against
 * transformers and `tokenizers` (tests/golden/fixtures/hf, made by
 * make_hf_models.py; the oracle shares no code with the engine).
 *
 * Each folder (Llama with F16/F32 weights and a SentencePiece-style
 * tokenizer; Llama sharded in BF16 with tied embeddings, linear rope scaling
 * and a SmolLM2-style byte-level tokenizer; Qwen2 in BF16 with biases, tied
 * embeddings and padding ids) is converted to f32 and its logits must equal
 * transformers' float32 ones to float rounding, and so must f16 (exact for
 * these weights); q8_0 must stay within 8-bit rounding. The
 * converted tokenizer must encode corpus lines to the ids `tokenizers`
 * gives, and add BOS exactly when it does. */
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
#include <unistd.h>

#include "engine/forward.h"
#include "weights/convert.h"
#include "weights/tokenizer.h"

#define FIXTURES "tests/golden/fixtures/hf/"

static char tmp_dir[64];

static int make_tmp_dir(void **state)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_hf_XXXXXX", base);
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp_dir(void **state)
{
    return rmdir(tmp_dir);
}

/* Largest |ours - ref| over a row, relative to the row's largest |ref|. */
static double row_error(const float *ours, json_object *ref, int vocab)
{
    double max_d = 0, max_r = 0;
    for (int j = 0; j < vocab; j++) {
        double r = json_object_get_double(json_object_array_get_idx(ref, j));
        max_d = fmax(max_d, fabs(ours[j] - r));
        max_r = fmax(max_r, fabs(r));
    }
    return max_d / max_r;
}

/* Runs every case of expected.json through the model; the worst row error. */
static double logits_error(const struct model *m, json_object *cases)
{
    char err[256];
    struct threadpool *tp = threadpool_new(2);
    struct forward_ctx *fc = forward_ctx_new(m, tp, 16, 64);
    assert_non_null(fc);
    double worst = 0;
    for (size_t c = 0; c < json_object_array_length(cases); c++) {
        json_object *cs = json_object_array_get_idx(cases, c), *ids, *logits;
        assert_true(json_object_object_get_ex(cs, "ids", &ids));
        assert_true(json_object_object_get_ex(cs, "logits", &logits));
        int n = (int)json_object_array_length(ids), vocab = m->cfg.vocab;
        assert_int_equal(json_object_array_length(json_object_array_get_idx(logits, 0)), vocab);
        int32_t tokens[64];
        for (int i = 0; i < n; i++)
            tokens[i] = json_object_get_int(json_object_array_get_idx(ids, i));
        float *out = malloc(sizeof(float) * n * vocab);
        struct kv_cache *kv = kv_new(&m->cfg, 64);
        struct forward_request req = {tokens, n, 0, out, NULL, NULL};
        if (!forward(fc, kv, &req, err, sizeof err))
            fail_msg("forward: %s", err);
        for (int r = 0; r < n; r++)
            worst = fmax(worst, row_error(out + (size_t)r * vocab, json_object_array_get_idx(logits, r), vocab));
        kv_free(kv);
        free(out);
    }
    forward_ctx_free(fc);
    threadpool_free(tp);
    return worst;
}

static void check_tokenizer(const struct model *m, const char *name, json_object *expected)
{
    char err[256];
    struct tokenizer *t = tokenizer_load(m->file, err, sizeof err);
    if (!t)
        fail_msg("%s: tokenizer: %s", name, err);
    json_object *add_bos, *texts;
    assert_true(json_object_object_get_ex(expected, "add_bos", &add_bos));
    assert_true(json_object_object_get_ex(expected, "texts", &texts));
    assert_int_equal(tokenizer_add_bos_default(t), json_object_get_boolean(add_bos));
    size_t n = json_object_array_length(texts);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(texts, i), *text, *ids;
        assert_true(json_object_object_get_ex(c, "text", &text) && json_object_object_get_ex(c, "ids", &ids));
        int32_t out[1024];
        int got = tokenizer_encode(t, json_object_get_string(text), (size_t)json_object_get_string_len(text),
                                   false, true, out, 1024);
        int want = (int)json_object_array_length(ids);
        bool same = got == want;
        for (int k = 0; same && k < want; k++)
            same = out[k] == json_object_get_int(json_object_array_get_idx(ids, k));
        if (!same)
            fail_msg("%s: text %zu '%.40s': %d ids, tokenizers gives %d (or the ids differ)", name, i,
                     json_object_get_string(text), got, want);
    }
    print_message("%-14s tokenizer: %zu texts encode as tokenizers does\n", name, n);
    tokenizer_free(t);
}

/* Converts the folder at type and checks the logits within tol. */
static void check_type(const char *name, const char *type_name, double tol, json_object *expected)
{
    char dir[256], out[256], err[1024];
    snprintf(dir, sizeof dir, FIXTURES "%s", name);
    snprintf(out, sizeof out, "%s/%s-%s.gguf", tmp_dir, name, type_name);
    struct convert_options opts = {.type_given = true};
    assert_true(dtype_from_name(type_name, &opts.type));
    if (!convert_from_hf(dir, out, &opts, err, sizeof err))
        fail_msg("convert %s: %s", name, err);
    struct model *m = model_load(out, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    json_object *cases, *tok;
    assert_true(json_object_object_get_ex(expected, "cases", &cases));
    double e = logits_error(m, cases);
    print_message("%-14s %-5s max relative logit error vs transformers %.2e (tolerance %.0e)\n", name, type_name,
                  e, tol);
    if (e > tol)
        fail_msg("%s %s: relative logit error %.3g > %.3g", name, type_name, e, tol);
    if (strcmp(type_name, "f32") == 0) {
        assert_true(json_object_object_get_ex(expected, "tokenizer", &tok));
        check_tokenizer(m, name, tok);
    }
    model_free(m);
    unlink(out);
}

static void check_folder(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s/expected.json", name);
    json_object *expected = json_object_from_file(path);
    if (!expected)
        fail_msg("cannot read %s", path);
    /* f32 is transformers' own arithmetic. The checkpoints hold F16 and
     * BF16 values of a size f16 represents exactly, so f16 changes nothing
     * either; q8_0 rounds weights and activations to 8 bits. */
    check_type(name, "f32", 1e-5, expected);
    check_type(name, "f16", 1e-5, expected);
    check_type(name, "q8_0", 5e-2, expected);
    json_object_put(expected);
}

static void test_llama(void **state) { check_folder("llama"); }
static void test_llama_sharded(void **state) { check_folder("llama-sharded"); }
static void test_qwen2(void **state) { check_folder("qwen2"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama),
        cmocka_unit_test(test_llama_sharded),
        cmocka_unit_test(test_qwen2),
    };
    return cmocka_run_group_tests_name("golden: Hugging Face checkpoints vs transformers", tests, make_tmp_dir,
                                       remove_tmp_dir);
}
