/* config.json / generation_config.json (weights/hf_config.c): both layouts
 * transformers writes, the defaults it applies, and a clear error naming the
 * file and field for everything the engine cannot run or that is malformed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "weights/hf_config.h"

#define LLAMA_FIELDS                                                                                 \
    "\"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 2, "                     \
    "\"num_attention_heads\": 4, \"vocab_size\": 320"

static bool parse(const char *json, const char *gen, struct hf_config *c, char *err, size_t errlen)
{
    return hf_config_parse("config.json", json, strlen(json), "generation_config.json", gen, gen ? strlen(gen) : 0,
                           c, err, errlen);
}

static void expect_error(const char *json, const char *gen, const char *want)
{
    struct hf_config c;
    char err[512] = "";
    if (parse(json, gen, &c, err, sizeof err))
        fail_msg("accepted %s", json);
    if (!strstr(err, want))
        fail_msg("config %s\n  error '%s'\n  wanted '%s'", json, err, want);
}

static void test_llama_new_layout(void **state)
{
    struct hf_config c;
    char err[256];
    const char *json = "{\"architectures\": [\"LlamaForCausalLM\"], " LLAMA_FIELDS ", \"num_key_value_heads\": 2, "
                       "\"head_dim\": 16, \"rms_norm_eps\": 1e-5, \"max_position_embeddings\": 128, "
                       "\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"linear\", \"factor\": 2.0}, "
                       "\"tie_word_embeddings\": true, \"bos_token_id\": 1, \"eos_token_id\": [2, 7], "
                       "\"hidden_act\": \"silu\", \"attention_bias\": false, \"pad_token_id\": null}";
    if (!parse(json, NULL, &c, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.arch, HF_LLAMA);
    assert_string_equal(c.arch_name, "llama");
    assert_int_equal(c.hidden_size, 64);
    assert_int_equal(c.intermediate_size, 96);
    assert_int_equal(c.n_layers, 2);
    assert_int_equal(c.n_heads, 4);
    assert_int_equal(c.n_kv_heads, 2);
    assert_int_equal(c.head_dim, 16);
    assert_true(c.head_dim_given);
    assert_int_equal(c.vocab_size, 320);
    assert_int_equal(c.max_position_embeddings, 128);
    assert_true(c.rms_norm_eps == 1e-5);
    assert_true(c.rope_theta == 500000.0);
    assert_true(c.rope_linear_factor == 2.0);
    assert_true(c.tie_word_embeddings);
    assert_int_equal(c.bos_id, 1);
    assert_int_equal(c.eos_id, 2); /* the first of several */
}

static void test_old_layout_and_defaults(void **state)
{
    struct hf_config c;
    char err[256];
    /* rope at the top level; transformers' defaults for what is left out */
    if (!parse("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"rope_theta\": 10000, "
               "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 4}}", NULL, &c, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.arch, HF_LLAMA);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.head_dim, 16);
    assert_false(c.head_dim_given);
    assert_int_equal(c.max_position_embeddings, 2048);
    assert_true(c.rms_norm_eps == 1e-6);
    assert_true(c.rope_linear_factor == 4.0);
    assert_false(c.tie_word_embeddings);
    assert_int_equal(c.bos_id, -1);
    /* Qwen2's defaults, rope "default", ids from generation_config.json */
    if (!parse("{\"architectures\": [\"Qwen2ForCausalLM\"], " LLAMA_FIELDS ", \"rope_scaling\": null, "
               "\"use_sliding_window\": false, \"eos_token_id\": 5}",
               "{\"bos_token_id\": 3, \"eos_token_id\": 4}", &c, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c.arch, HF_QWEN2);
    assert_string_equal(c.arch_name, "qwen2");
    assert_int_equal(c.max_position_embeddings, 32768);
    assert_true(c.rope_theta == 10000.0);
    assert_true(c.rope_linear_factor == 0);
    assert_int_equal(c.bos_id, 3);
    assert_int_equal(c.eos_id, 5); /* config.json's wins */
}

static void test_unsupported_models(void **state)
{
    expect_error("{\"architectures\": [\"MistralForCausalLM\"], " LLAMA_FIELDS "}", NULL,
                 "config.json: architecture 'MistralForCausalLM' is not supported (LlamaForCausalLM, Qwen2ForCausalLM)");
    expect_error("{\"model_type\": \"gpt2\"}", NULL, "model_type 'gpt2' is not supported");
    expect_error("{" LLAMA_FIELDS "}", NULL, "neither 'architectures' nor 'model_type'");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"rope_scaling\": {\"rope_type\": \"llama3\", "
                 "\"factor\": 8}}", NULL, "rope scaling 'llama3' is not supported (only linear)");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"rope_scaling\": {\"type\": \"linear\"}}", NULL,
                 "linear rope scaling without a 'factor'");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"hidden_act\": \"gelu\"}", NULL,
                 "hidden_act 'gelu' is not supported (silu)");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"attention_bias\": true}", NULL,
                 "Llama with attention biases is not supported");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"mlp_bias\": true}", NULL,
                 "Llama with MLP biases is not supported");
    expect_error("{\"model_type\": \"qwen2\", " LLAMA_FIELDS ", \"use_sliding_window\": true}", NULL,
                 "use_sliding_window is not supported");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"quantization_config\": {\"bits\": 4}}", NULL,
                 "quantized checkpoints ('quantization_config') are not supported");
}

static void test_malformed(void **state)
{
    expect_error("{\"model_type\": \"llama\"", NULL, "config.json: JSON ends early");
    expect_error("[1]", NULL, "config.json: not a JSON object");
    expect_error("{\"model_type\": 3}", NULL, "config.json: 'model_type' is not a string");
    expect_error("{\"architectures\": \"LlamaForCausalLM\"}", NULL, "'architectures' is not a list of names");
    expect_error("{\"model_type\": \"llama\", \"hidden_size\": 64}", NULL, "config.json: missing 'intermediate_size'");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"num_hidden_layers\": \"2\"}", NULL,
                 "'num_hidden_layers' is not an integer");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"num_hidden_layers\": 0}", NULL,
                 "'num_hidden_layers' = 0 outside [1, 4096]");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"num_attention_heads\": 5}", NULL,
                 "hidden_size 64 is not a multiple of num_attention_heads 5");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"num_key_value_heads\": 3}", NULL,
                 "num_attention_heads 4 is not a multiple of num_key_value_heads 3");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"head_dim\": 15}", NULL, "head size 15 is odd");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"rms_norm_eps\": -1}", NULL,
                 "'rms_norm_eps' is not a positive number");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"rope_parameters\": 1}", NULL,
                 "'rope_parameters' is not an object");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"tie_word_embeddings\": 1}", NULL,
                 "'tie_word_embeddings' is not true or false");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS ", \"eos_token_id\": -2}", NULL,
                 "'eos_token_id' is not a token id");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS "}", "{\"bos_token_id\": ", "generation_config.json: JSON ends early");
    expect_error("{\"model_type\": \"llama\", " LLAMA_FIELDS "}", "{\"bos_token_id\": \"x\"}",
                 "generation_config.json: 'bos_token_id' is not a token id");
}

static void test_load_names_missing_file(void **state)
{
    struct hf_config c;
    char err[256];
    assert_false(hf_config_load("/nonexistent-folder", &c, err, sizeof err));
    assert_string_equal(err, "/nonexistent-folder/config.json: No such file or directory");
    assert_true(hf_config_load("tests/golden/fixtures/hf/qwen2", &c, err, sizeof err));
    assert_int_equal(c.arch, HF_QWEN2);
    assert_true(c.tie_word_embeddings);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_new_layout),
        cmocka_unit_test(test_old_layout_and_defaults),
        cmocka_unit_test(test_unsupported_models),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_load_names_missing_file),
    };
    return cmocka_run_group_tests_name("hf_config", tests, NULL, NULL);
}
