/* Chat formats. The chatml expectations are SmolLM2's own template
 * (tokenizer.chat_template, carried by tests/tokenizer/smollm2-mini.gguf)
 * rendered with jinja2, add_generation_prompt=True; the vicuna ones follow
 * FastChat's vicuna_v1.1 conversation template. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "weights/chat.h"
#include "weights/gguf.h"
#include "weights/tokenizer.h"

static struct tokenizer *load(const char *path)
{
    char err[512];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    struct tokenizer *t = tokenizer_load(f, err, sizeof err);
    gguf_close(f);
    if (!t)
        fail_msg("%s: %s", path, err);
    return t;
}

static const struct chat_msg one[] = {{"user", "Hi there"}};
static const struct chat_msg turns[] = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}};

static void expect(enum chat_format f, const struct tokenizer *t, const struct chat_msg *m, size_t n,
                   bool add_assistant, const char *want)
{
    char *s = chat_apply(f, t, m, n, add_assistant);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_chatml(void **state)
{
    struct tokenizer *t = load("tests/tokenizer/smollm2-mini.gguf");
    assert_int_equal(chat_detect(t), CHAT_CHATML);
    expect(CHAT_CHATML, t, one, 1, true,
           "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
           "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
    expect(CHAT_CHATML, t, turns, 4, true,
           "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
           "<|im_start|>assistant\n");
    /* without a template there is no default system message */
    expect(CHAT_CHATML, NULL, one, 1, false, "<|im_start|>user\nHi there<|im_end|>\n");
    /* the formatted prompt's markers encode as the special tokens */
    char *s = chat_apply(CHAT_CHATML, t, one, 1, true);
    int32_t ids[256];
    int n = tokenizer_encode(t, s, strlen(s), false, true, ids, 256);
    assert_true(n > 0 && n <= 256);
    assert_int_equal(ids[0], tokenizer_find(t, "<|im_start|>"));
    assert_int_equal(ids[n - 1], 198); /* "\n" after "assistant" */
    free(s);
    tokenizer_free(t);
}

static void test_vicuna(void **state)
{
    struct tokenizer *t = load("tests/tokenizer/llama2-vocab.gguf");
    assert_int_equal(chat_detect(t), CHAT_VICUNA); /* Llama-2 vocabulary, no template */
    expect(CHAT_VICUNA, t, one, 1, true,
           "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
           "helpful, detailed, and polite answers to the user's questions. USER: Hi there ASSISTANT:");
    expect(CHAT_VICUNA, t, turns, 4, true, "Be brief. USER: Hi ASSISTANT: Hello!</s>USER: 2+2? ASSISTANT:");
    char *s = chat_apply(CHAT_VICUNA, t, turns, 4, true);
    int32_t ids[256];
    int n = tokenizer_encode(t, s, strlen(s), true, true, ids, 256);
    int eos = 0;
    for (int i = 0; i < n; i++)
        eos += ids[i] == tokenizer_eos(t);
    assert_int_equal(eos, 1); /* the "</s>" after the assistant's turn */
    free(s);
    tokenizer_free(t);
}

static void test_names(void **state)
{
    assert_int_equal(chat_format_by_name("chatml"), CHAT_CHATML);
    assert_int_equal(chat_format_by_name("vicuna"), CHAT_VICUNA);
    assert_int_equal(chat_format_by_name("llama3"), CHAT_NONE);
    assert_string_equal(chat_format_name(CHAT_CHATML), "chatml");
    assert_string_equal(chat_format_name(CHAT_VICUNA), "vicuna");
    assert_null(chat_apply(CHAT_NONE, NULL, one, 1, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chatml),
        cmocka_unit_test(test_vicuna),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
