/* Hugging Face tokenizers as GGUF metadata (weights/hf_tokenizer*.c,
 * hf_spm_model.c): Llama-2's tokenizer.model becomes exactly the committed
 * Llama-2 vocabulary (same tokenizer hash: tokens, scores, types, ids,
 * flags), tokenizer_config.json's special tokens and template are picked up,
 * and tokenizer files we cannot reproduce are refused with a line naming the
 * file and the reason. (Encodings against the `tokenizers` library: the
 * golden test test_hf_models.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weights/gguf.h"
#include "weights/hf_tokenizer.h"
#include "weights/tokenizer.h"

#define LLAMA2_MODEL "../shared/data/tokenizers/llama2/tokenizer.model"
#define LLAMA2_VOCAB "tests/tokenizer/llama2-vocab.gguf"

static char tmp_dir[64];

static int make_tmp_dir(void **state)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_hftok_XXXXXX", base);
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp_dir(void **state)
{
    DIR *dir = opendir(tmp_dir);
    if (!dir)
        return -1;
    struct dirent *e;
    char path[sizeof tmp_dir + sizeof e->d_name + 1];
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
            unlink(path);
        }
    }
    closedir(dir);
    return rmdir(tmp_dir);
}

static void write_text(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static struct hf_config config(int64_t vocab)
{
    return (struct hf_config){.arch = HF_LLAMA, .arch_name = "llama", .vocab_size = vocab, .bos_id = 1, .eos_id = 2};
}

/* Writes the tokenizer at path as a tensor-less GGUF and opens it. */
static struct gguf_file *convert(const char *path, const struct hf_config *c)
{
    char out[256], err[512];
    struct gguf_writer *w = gguf_writer_new();
    if (!hf_tokenizer_write(tmp_dir, path, c, w, err, sizeof err))
        fail_msg("%s", err);
    snprintf(out, sizeof out, "%s/vocab.gguf", tmp_dir);
    assert_true(gguf_writer_write(w, out, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    struct gguf_file *f = gguf_open(out, err, sizeof err);
    assert_non_null(f);
    return f;
}

static void expect_error(const char *name, const char *text, int64_t vocab, const char *want)
{
    char path[256], err[512] = "";
    write_text(name, text);
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    struct hf_config c = config(vocab);
    struct gguf_writer *w = gguf_writer_new();
    bool ok = hf_tokenizer_write(tmp_dir, path, &c, w, err, sizeof err);
    gguf_writer_free(w);
    if (ok)
        fail_msg("accepted %s", text);
    if (strncmp(err, path, strlen(path)) != 0 || !strstr(err, want))
        fail_msg("tokenizer %s\n  error '%s'\n  wanted '%s'", text, err, want);
}

static void test_llama2_tokenizer_model(void **state)
{
    if (access(LLAMA2_MODEL, R_OK) != 0)
        skip();
    char err[256];
    struct hf_config c = config(32000);
    struct gguf_file *ours = convert(LLAMA2_MODEL, &c), *ref = gguf_open(LLAMA2_VOCAB, err, sizeof err);
    assert_non_null(ref);
    struct tokenizer *a = tokenizer_load(ours, err, sizeof err), *b = tokenizer_load(ref, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(tokenizer_vocab(a), 32000);
    assert_string_equal(gguf_get_str(ours, "tokenizer.ggml.model"), "llama");
    assert_true(tokenizer_hash(a) == tokenizer_hash(b));
    tokenizer_free(a);
    tokenizer_free(b);
    gguf_close(ours);
    gguf_close(ref);
    /* the model's own vocabulary must fit the checkpoint's */
    c = config(100);
    struct gguf_writer *w = gguf_writer_new();
    assert_false(hf_tokenizer_write(tmp_dir, LLAMA2_MODEL, &c, w, err, sizeof err));
    assert_non_null(strstr(err, "more pieces than the model's vocab_size 100"));
    gguf_writer_free(w);
}

/* A byte-level tokenizer.json with two merges over "ab". */
#define BYTE_LEVEL(pre, extra)                                                                     \
    "{\"added_tokens\": [{\"id\": 5, \"content\": \"<|end|>\", \"special\": true}, "                \
    "{\"id\": 6, \"content\": \"<tool>\", \"special\": false}], \"normalizer\": null, "               \
    "\"pre_tokenizer\": " pre ", \"model\": {\"type\": \"BPE\", " extra "\"vocab\": "               \
    "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120ab\": 4}, "                           \
    "\"merges\": [\"a b\", [\"\\u0120\", \"ab\"]]}}"
#define GPT2_PRE "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}"

static void test_byte_level_json(void **state)
{
    char path[256];
    write_text("tokenizer.json", BYTE_LEVEL(GPT2_PRE, ""));
    write_text("tokenizer_config.json", "{\"eos_token\": {\"content\": \"<|end|>\"}, \"add_bos_token\": false, "
                                        "\"chat_template\": [{\"name\": \"tool\", \"template\": \"x\"}, "
                                        "{\"name\": \"default\", \"template\": \"{{ messages }}\"}]}");
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp_dir);
    struct hf_config c = config(8);
    c.bos_id = -1;
    struct gguf_file *f = convert(path, &c);
    assert_string_equal(gguf_get_str(f, "tokenizer.ggml.model"), "gpt2");
    assert_string_equal(gguf_get_str(f, "tokenizer.ggml.pre"), "gpt-2");
    assert_string_equal(gguf_arr_str(f, "tokenizer.ggml.merges", 1), "\xc4\xa0 ab");
    assert_string_equal(gguf_arr_str(f, "tokenizer.ggml.tokens", 7), "[PAD7]");
    int64_t v;
    uint32_t id;
    bool flag;
    assert_true(gguf_arr_i64(f, "tokenizer.ggml.token_type", 5, &v) && v == 3); /* control */
    assert_true(gguf_arr_i64(f, "tokenizer.ggml.token_type", 6, &v) && v == 4); /* user-defined */
    assert_true(gguf_arr_i64(f, "tokenizer.ggml.token_type", 7, &v) && v == 5); /* unused */
    assert_true(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &id) && id == 5);
    assert_int_equal(gguf_find_key(f, "tokenizer.ggml.bos_token_id"), -1);
    assert_true(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &flag) && !flag);
    assert_string_equal(gguf_get_str(f, "tokenizer.chat_template"), "{{ messages }}");
    char err[256];
    struct tokenizer *t = tokenizer_load(f, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    int32_t ids[8];
    assert_int_equal(tokenizer_encode(t, "ab ab<|end|>", 12, false, true, ids, 8), 3);
    assert_true(ids[0] == 2 && ids[1] == 4 && ids[2] == 5);
    tokenizer_free(t);
    gguf_close(f);
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmp_dir);
    unlink(path);
}

static void test_refused_json(void **state)
{
    expect_error("t.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", 8,
                 "model type 'Unigram' is not supported (BPE)");
    expect_error("t.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", 8,
                 "model.vocab missing or not an object");
    expect_error("t.json", BYTE_LEVEL(GPT2_PRE, ""), 4, "model.vocab['\xc4\xa0" "ab'] has id 4, past the model's "
                 "vocab_size 4");
    expect_error("t.json", BYTE_LEVEL("{\"type\": \"Whitespace\"}", ""), 8,
                 "pre_tokenizer step 'Whitespace' is not supported");
    expect_error("t.json", BYTE_LEVEL("{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, "
                                      "\"behavior\": \"Isolated\"}", ""), 8,
                 "neither byte-level BPE (no ByteLevel pre-tokenizer) nor SentencePiece-style BPE");
    expect_error("t.json", BYTE_LEVEL("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                                      "\"pattern\": {\"Regex\": \"\\\\s+\"}, \"behavior\": \"Isolated\"}, "
                                      "{\"type\": \"ByteLevel\", \"use_regex\": false}]}", ""), 8,
                 "pre_tokenizer splits text in a way none of ours does");
    expect_error("t.json", BYTE_LEVEL(GPT2_PRE, "\"ignore_merges\": true, "), 8,
                 "model.ignore_merges is true, but the gpt-2 pre-tokenizer's models have it false");
    expect_error("t.json", BYTE_LEVEL("{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", ""), 8,
                 "ByteLevel with add_prefix_space is not supported");
    /* SentencePiece-style: a merge must make a token; spaces must become "▁" */
    expect_error("t.json", "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "
                 "\"content\": \"\\u2581\"}, \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, "
                 "\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", 8,
                 "model.merges[0] makes 'ab', which is not in model.vocab");
    expect_error("t.json", "{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {\"type\": \"BPE\", "
                 "\"byte_fallback\": true, \"vocab\": {\"a\": 0}, \"merges\": []}}", 8,
                 "normalizer 'Lowercase' is not supported for a SentencePiece-style vocabulary");
    expect_error("t.json", "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0}, "
                 "\"merges\": []}}", 8, "spaces are not turned into");
    expect_error("t.json", "{\"model\": ", 8, "JSON ends early");
    /* tokenizer.model */
    expect_error("t.model", "\x0a\x05\x0a\x01", 8, "bad protobuf after piece 0");
    expect_error("t.model", "\x0a\x05\x0a\x01x\x18\x07", 8, "piece 0 has type 7 (1..6)");
    expect_error("t.model", "\x0a\x03\x0a\x01x\x12\x02\x18\x01", 8, "SentencePiece model type 1 is not supported");
    expect_error("t.model", "\x0a\x03\x0a\x01x", 8, "not a SentencePiece model (no trainer_spec)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2_tokenizer_model),
        cmocka_unit_test(test_byte_level_json),
        cmocka_unit_test(test_refused_json),
    };
    return cmocka_run_group_tests_name("hf_tokenizer", tests, make_tmp_dir, remove_tmp_dir);
}
