/* Tokenizers against Hugging Face `tokenizers`: every line of
 * tests/tokenizer/corpus.jsonl encoded id for id as the oracle did
 * (tests/tokenizer/make_fixtures.py), with and without special-token
 * parsing; decoded as the oracle decodes, whole and streamed token by token;
 * round trips; and malformed vocabularies that must fail with a clear error.
 *
 * Vocabularies: Llama-2's (llama2-vocab.gguf), SmolLM2's first 2000 merges
 * (smollm2-mini.gguf), and SmolLM2's full one from the real model when
 * models/ has it (skipped otherwise; scripts/fetch-smollm2.sh fetches it);
 * stories260K's (stories260K-vocab.gguf) against llama2.c's own run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weights/gguf.h"
#include "weights/tokenizer.h"

#define DIR "tests/tokenizer/"
#define SMOLLM2_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"

static char tmp_dir[64];

static struct tokenizer *load_path(const char *path, char *err, size_t errlen)
{
    struct gguf_file *f = gguf_open(path, err, errlen);
    if (!f)
        return NULL;
    struct tokenizer *t = tokenizer_load(f, err, errlen);
    gguf_close(f);
    return t;
}

static struct tokenizer *must_load(const char *path)
{
    char err[512];
    struct tokenizer *t = load_path(path, err, sizeof err);
    if (!t)
        fail_msg("%s: %s", path, err);
    return t;
}

/* ---- the corpus ---- */

struct line {
    char *text;
    size_t len;
};

static struct line *corpus;
static size_t n_corpus;

static int load_corpus(void **state)
{
    FILE *fp = fopen(DIR "corpus.jsonl", "r");
    if (!fp)
        return -1;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, fp)) > 0) {
        json_object *o = json_tokener_parse(buf);
        if (!o || !json_object_is_type(o, json_type_string))
            return -1;
        corpus = realloc(corpus, (n_corpus + 1) * sizeof *corpus);
        size_t len = (size_t)json_object_get_string_len(o);
        corpus[n_corpus].text = malloc(len + 1);
        memcpy(corpus[n_corpus].text, json_object_get_string(o), len + 1);
        corpus[n_corpus].len = len;
        n_corpus++;
        json_object_put(o);
    }
    free(buf);
    fclose(fp);
    return n_corpus >= 500 ? 0 : -1;
}

static int free_corpus(void **state)
{
    for (size_t i = 0; i < n_corpus; i++)
        free(corpus[i].text);
    free(corpus);
    return 0;
}

static int encode(const struct tokenizer *t, const char *s, size_t n, bool bos, bool special, int32_t **ids)
{
    int need = tokenizer_encode(t, s, n, bos, special, NULL, 0);
    assert_true(need >= 0);
    *ids = malloc(((size_t)need + 1) * sizeof **ids);
    int got = tokenizer_encode(t, s, n, bos, special, *ids, need);
    assert_int_equal(got, need);
    return got;
}

static bool ids_equal(const int32_t *ids, int n, json_object *want)
{
    if (!want || (int)json_object_array_length(want) != n)
        return false;
    for (int i = 0; i < n; i++)
        if (json_object_get_int(json_object_array_get_idx(want, (size_t)i)) != ids[i])
            return false;
    return true;
}

static void print_mismatch(const char *what, size_t line, const int32_t *ids, int n, json_object *want)
{
    fprintf(stderr, "  line %zu (%s): got", line + 1, what);
    for (int i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n  want %s\n", want ? json_object_to_json_string(want) : "(missing)");
}

/* Streams ids through a detok one at a time into a buffer of exactly
 * detok_max_out bytes per push; every chunk must be valid UTF-8 on its own. */
static char *stream_decode(const struct tokenizer *t, const int32_t *ids, int n, size_t *len)
{
    size_t step = detok_max_out(t), cap = (size_t)n * step + 4, total = 0;
    char *s = malloc(cap);
    struct detok d;
    detok_init(&d, t);
    for (int i = 0; i <= n; i++) {
        size_t k = i < n ? detok_push(&d, ids[i], s + total, step) : detok_flush(&d, s + total, step);
        assert_true(k <= step);
        /* a chunk never ends inside a character */
        for (size_t j = total; j < total + k;) {
            unsigned char c = (unsigned char)s[j];
            size_t cl = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            assert_true(j + cl <= total + k);
            j += cl;
        }
        total += k;
    }
    *len = total;
    return s;
}

struct corpus_stats {
    int lines, round_trips;
};

static struct corpus_stats check_corpus(const char *vocab, const char *expected)
{
    struct tokenizer *t = must_load(vocab);
    FILE *fp = fopen(expected, "r");
    assert_non_null(fp);
    char *buf = NULL;
    size_t cap = 0;
    int bad = 0;
    struct corpus_stats st = {0, 0};
    bool bos = tokenizer_add_bos_default(t);
    for (size_t i = 0; i < n_corpus; i++) {
        assert_true(getline(&buf, &cap, fp) > 0);
        json_object *row = json_tokener_parse(buf), *special, *plain, *decoded;
        assert_non_null(row);
        json_object_object_get_ex(row, "special", &special);
        if (!json_object_object_get_ex(row, "plain", &plain))
            plain = special;
        const char *s = corpus[i].text;
        size_t n = corpus[i].len, want_len = n;
        const char *want_text = s;
        if (json_object_object_get_ex(row, "decoded", &decoded)) {
            want_text = json_object_get_string(decoded);
            want_len = (size_t)json_object_get_string_len(decoded);
        }

        int32_t *ids;
        int k = encode(t, s, n, bos, true, &ids);
        if (!ids_equal(ids, k, special)) {
            print_mismatch("special", i, ids, k, special);
            bad++;
        }
        free(ids);
        k = encode(t, s, n, bos, false, &ids);
        if (!ids_equal(ids, k, plain)) {
            print_mismatch("plain", i, ids, k, plain);
            bad++;
        }
        size_t len, slen;
        char *text = tokenizer_decode(t, ids, (size_t)k, false, &len);
        char *streamed = stream_decode(t, ids, k, &slen);
        if (len != want_len || memcmp(text, want_text, len)) {
            fprintf(stderr, "  line %zu: decoded '%s', want '%s'\n", i + 1, text, want_text);
            bad++;
        }
        if (slen != len || memcmp(streamed, text, len)) {
            fprintf(stderr, "  line %zu: streamed decode differs\n", i + 1);
            bad++;
        }
        st.round_trips += len == n && !memcmp(text, s, n);
        st.lines++;
        free(text);
        free(streamed);
        free(ids);
        json_object_put(row);
    }
    free(buf);
    fclose(fp);
    tokenizer_free(t);
    if (bad)
        fail_msg("%s: %d mismatches with %s", vocab, bad, expected);
    return st;
}

static void test_corpus_llama2(void **state)
{
    struct corpus_stats st = check_corpus(DIR "llama2-vocab.gguf", DIR "expected-llama2.jsonl");
    /* decode(encode(s)) == s except where s holds "▁" itself, which decodes
     * to a space (Hugging Face does the same) */
    int with_marker = 0;
    for (size_t i = 0; i < n_corpus; i++)
        with_marker += strstr(corpus[i].text, "\xE2\x96\x81") != NULL;
    assert_int_equal(st.round_trips, st.lines - with_marker);
}

static void test_corpus_smollm2_mini(void **state)
{
    struct corpus_stats st = check_corpus(DIR "smollm2-mini.gguf", DIR "expected-smollm2-mini.jsonl");
    /* exact round trips except the line with control bytes the vocabulary lacks */
    assert_int_equal(st.round_trips, st.lines - 1);
}

static void test_corpus_smollm2(void **state)
{
    if (access(SMOLLM2_MODEL, R_OK) != 0) {
        fprintf(stderr, "  skipped: %s absent (scripts/fetch-smollm2.sh fetches it)\n", SMOLLM2_MODEL);
        skip();
    }
    struct corpus_stats st = check_corpus(SMOLLM2_MODEL, DIR "expected-smollm2.jsonl");
    assert_int_equal(st.round_trips, st.lines - 1);
}

/* The other byte-level pre-tokenizers on the mini vocabulary: its metadata
 * copied with tokenizer.ggml.pre replaced. */
static void test_pre_families(void **state)
{
    static const char *const names[] = {"gpt2", "llama3", "qwen2"};
    char err[512], path[128], expected[128];
    struct gguf_file *mini = gguf_open(DIR "smollm2-mini.gguf", err, sizeof err);
    assert_non_null(mini);
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s.gguf", tmp_dir, names[f]);
        struct gguf_writer *w = gguf_writer_new();
        gguf_copy_kv(w, mini);
        gguf_set_str(w, "tokenizer.ggml.pre", names[f]);
        assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
        gguf_writer_free(w);
        struct tokenizer *t = must_load(path);
        unlink(path);
        snprintf(expected, sizeof expected, DIR "expected-pre-%s.jsonl", names[f]);
        FILE *fp = fopen(expected, "r");
        assert_non_null(fp);
        char *buf = NULL;
        size_t cap = 0;
        int bad = 0, lines = 0;
        for (size_t i = 0; i < n_corpus && getline(&buf, &cap, fp) > 0; i++, lines++) {
            json_object *want = json_tokener_parse(buf);
            int32_t *ids;
            int k = encode(t, corpus[i].text, corpus[i].len, false, true, &ids);
            if (!ids_equal(ids, k, want)) {
                print_mismatch(names[f], i, ids, k, want);
                bad++;
            }
            free(ids);
            json_object_put(want);
        }
        free(buf);
        fclose(fp);
        tokenizer_free(t);
        assert_int_equal(lines, 340);
        if (bad)
            fail_msg("pre-tokenizer %s: %d mismatches", names[f], bad);
    }
    gguf_close(mini);
}

/* llama2.c's run.c on stories260K: its prompt ids, and the text it printed
 * for its greedy run (which ends with the newline run.c adds). */
static void test_stories260k_llama2c(void **state)
{
    const char *dir = "../shared/data/models/stories260K/";
    char ids_path[256], txt_path[256];
    snprintf(ids_path, sizeof ids_path, "%sgreedy_once_upon_a_time.ids", dir);
    snprintf(txt_path, sizeof txt_path, "%sgreedy_once_upon_a_time.txt", dir);
    FILE *fi = fopen(ids_path, "r"), *ft = fopen(txt_path, "r");
    if (!fi || !ft) {
        fprintf(stderr, "  skipped: %s absent\n", dir);
        if (fi)
            fclose(fi);
        if (ft)
            fclose(ft);
        skip();
    }
    struct tokenizer *t = must_load(DIR "stories260K-vocab.gguf");
    int32_t ids[1024];
    int n = 0;
    assert_int_equal(fscanf(fi, "prompt:"), 0);
    while (n < 1024 && fscanf(fi, "%d", &ids[n]) == 1)
        n++;
    fclose(fi);
    int32_t prompt[8];
    assert_int_equal(tokenizer_encode(t, "Once upon a time", 16, true, false, prompt, 8), 5);
    assert_memory_equal(prompt, ids, sizeof(int32_t) * 5); /* 1 403 407 261 378 */
    char want[8192];
    size_t want_len = fread(want, 1, sizeof want - 1, ft);
    fclose(ft);
    want[want_len] = '\0';
    size_t len;
    char *got = tokenizer_decode(t, ids, (size_t)n, false, &len);
    assert_true(want_len > 0 && want[want_len - 1] == '\n');
    want[want_len - 1] = '\0';
    assert_string_equal(got, want);
    free(got);
    tokenizer_free(t);
}

/* ---- behaviour ---- */

static void test_special_tokens(void **state)
{
    struct tokenizer *t = must_load(DIR "llama2-vocab.gguf");
    int32_t ids[16];
    assert_int_equal(tokenizer_bos(t), 1);
    assert_int_equal(tokenizer_eos(t), 2);
    assert_true(tokenizer_add_bos_default(t));
    assert_int_equal(tokenizer_vocab(t), 32000);
    assert_int_equal(tokenizer_kind(t), TOKENIZER_SPM);
    assert_int_equal(tokenizer_encode(t, "<s>", 3, false, true, ids, 16), 1);
    assert_int_equal(ids[0], 1);
    assert_true(tokenizer_encode(t, "<s>", 3, false, false, ids, 16) > 1);
    assert_int_not_equal(ids[0], 1);
    assert_true(tokenizer_is_control(t, 2));
    assert_false(tokenizer_is_control(t, 3)); /* <0x00> is a byte */
    assert_string_equal(tokenizer_piece(t, 22172), "\xE2\x96\x81hello");
    assert_null(tokenizer_piece(t, 32000));
    assert_int_equal(tokenizer_find(t, "</s>"), 2);
    assert_int_equal(tokenizer_find(t, "no such piece"), -1);
    assert_null(tokenizer_chat_template(t));
    /* empty text: BOS alone, or nothing */
    assert_int_equal(tokenizer_encode(t, "", 0, true, true, ids, 16), 1);
    assert_int_equal(tokenizer_encode(t, "", 0, false, true, ids, 16), 0);
    tokenizer_free(t);

    t = must_load(DIR "smollm2-mini.gguf");
    assert_int_equal(tokenizer_kind(t), TOKENIZER_BPE);
    assert_false(tokenizer_add_bos_default(t));
    const char *chat = "<|im_start|>user\nhi<|im_end|>\n";
    int n = tokenizer_encode(t, chat, strlen(chat), false, true, ids, 16);
    assert_true(n > 2);
    assert_int_equal(ids[0], tokenizer_find(t, "<|im_start|>"));
    assert_non_null(strstr(tokenizer_chat_template(t), "<|im_start|>"));
    /* shown only when asked */
    char *s = tokenizer_decode(t, ids, (size_t)n, false, NULL);
    assert_string_equal(s, "user\nhi\n");
    free(s);
    s = tokenizer_decode(t, ids, (size_t)n, true, NULL);
    assert_string_equal(s, chat);
    free(s);
    tokenizer_free(t);
}

static void test_encode_retry(void **state)
{
    struct tokenizer *t = must_load(DIR "llama2-vocab.gguf");
    const char *s = "The quick brown fox jumps over the lazy dog.";
    int32_t few[3], all[64];
    int need = tokenizer_encode(t, s, strlen(s), true, false, few, 3);
    assert_true(need > 3);
    assert_int_equal(tokenizer_encode(t, s, strlen(s), true, false, all, 64), need);
    assert_memory_equal(few, all, sizeof few);
    assert_int_equal(tokenizer_encode(t, s, strlen(s), true, false, NULL, -1), -1);
    assert_int_equal(tokenizer_encode(NULL, s, 1, true, false, all, 64), -1);
    tokenizer_free(t);
}

/* Bytes that are not UTF-8 survive encoding as byte tokens (and decode as
 * U+FFFD, one per maximal invalid subsequence). SmolLM2's vocabulary has no
 * token for some bytes (0xF5..0xFF, a few controls): those are dropped, as
 * Hugging Face drops characters it has no token for. */
static void test_invalid_utf8_input(void **state)
{
    const char *paths[] = {DIR "llama2-vocab.gguf", DIR "smollm2-mini.gguf"};
    const char s[] = "ok \x80\xbf x\xe6\x97 \xed\xa0\x80 \xc3";
    const char want[] = "ok \xEF\xBF\xBD\xEF\xBF\xBD x\xEF\xBF\xBD "
                        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD";
    for (int p = 0; p < 2; p++) {
        struct tokenizer *t = must_load(paths[p]);
        int32_t *ids;
        int n = encode(t, s, sizeof s - 1, false, false, &ids);
        char *d = tokenizer_decode(t, ids, (size_t)n, false, NULL);
        assert_string_equal(d, want);
        free(d);
        free(ids);
        n = encode(t, "a\xff\x04z", 4, false, false, &ids);
        d = tokenizer_decode(t, ids, (size_t)n, false, NULL);
        assert_string_equal(d, p == 0 ? "a\xEF\xBF\xBD\x04z" : "az");
        free(d);
        free(ids);
        tokenizer_free(t);
    }
}

static void test_stream_partial_characters(void **state)
{
    struct tokenizer *t = must_load(DIR "llama2-vocab.gguf");
    int32_t e6 = tokenizer_find(t, "<0xE6>"), x97 = tokenizer_find(t, "<0x97>"), xa5 = tokenizer_find(t, "<0xA5>");
    int32_t a = tokenizer_find(t, "a"), hello = tokenizer_find(t, "\xE2\x96\x81hello");
    char out[64];
    struct detok d;
    detok_init(&d, t);
    /* the dummy-prefix space of the first piece goes */
    assert_int_equal(detok_push(&d, hello, out, sizeof out), 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(detok_push(&d, hello, out, sizeof out), 6);
    assert_memory_equal(out, " hello", 6);
    /* 日 = E6 97 A5 arrives in three tokens: nothing until the last */
    assert_int_equal(detok_push(&d, e6, out, sizeof out), 0);
    assert_int_equal(detok_push(&d, 1, out, sizeof out), 0); /* hidden <s> keeps it pending */
    assert_int_equal(detok_push(&d, x97, out, sizeof out), 0);
    assert_int_equal(detok_push(&d, xa5, out, sizeof out), 3);
    assert_memory_equal(out, "\xE6\x97\xA5", 3);
    /* an interrupted character becomes U+FFFD, then the next byte counts */
    assert_int_equal(detok_push(&d, e6, out, sizeof out), 0);
    assert_int_equal(detok_push(&d, a, out, sizeof out), 4);
    assert_memory_equal(out, "\xEF\xBF\xBD" "a", 4);
    /* too small a buffer consumes nothing */
    assert_int_equal(detok_push(&d, hello, out, 3), 6);
    assert_int_equal(detok_push(&d, hello, out, sizeof out), 6);
    /* flush ends a pending character */
    assert_int_equal(detok_push(&d, e6, out, sizeof out), 0);
    assert_int_equal(detok_flush(&d, out, sizeof out), 3);
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
    assert_int_equal(detok_flush(&d, out, sizeof out), 0);
    /* out of range: nothing */
    assert_int_equal(detok_push(&d, -1, out, sizeof out), 0);
    assert_int_equal(detok_push(&d, 32000, out, sizeof out), 0);
    /* a continuation keeps its leading space */
    detok_init(&d, t);
    d.strip_space = false;
    assert_int_equal(detok_push(&d, hello, out, sizeof out), 6);
    /* control tokens print when asked */
    detok_init(&d, t);
    d.show_special = true;
    assert_int_equal(detok_push(&d, 1, out, sizeof out), 3);
    assert_memory_equal(out, "<s>", 3);
    assert_int_equal(detok_push(&d, hello, out, sizeof out), 6); /* HF strips only a leading space */
    tokenizer_free(t);
}

static void test_hash(void **state)
{
    struct tokenizer *a = must_load(DIR "llama2-vocab.gguf"), *b = must_load(DIR "llama2-vocab.gguf");
    struct tokenizer *c = must_load(DIR "smollm2-mini.gguf");
    assert_true(tokenizer_hash(a) == tokenizer_hash(b));
    assert_true(tokenizer_hash(a) != tokenizer_hash(c));
    assert_true(tokenizer_hash(a) != 0);
    tokenizer_free(a);
    tokenizer_free(b);
    tokenizer_free(c);
}

/* ---- malformed vocabularies ---- */

static int make_tmp_dir(void **state)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_tokenizer_XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp_dir(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/v.gguf", tmp_dir);
    unlink(path);
    return rmdir(tmp_dir);
}

static const char *const base_tokens[] = {"<unk>", "<s>", "</s>", "<0x41>", "a", "b", "ab", "\xE2\x96\x81"};
static const float base_scores[] = {0, 0, 0, 0, -1, -2, -3, -4};
static const int32_t base_types[] = {2, 3, 3, 6, 1, 1, 1, 1};

/* A small valid llama vocabulary, or a gpt2 one with merges. */
static struct gguf_writer *base_vocab(bool gpt2)
{
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "tokenizer.ggml.model", gpt2 ? "gpt2" : "llama");
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", base_tokens, 8);
    gguf_set_arr_f32(w, "tokenizer.ggml.scores", base_scores, 8);
    gguf_set_arr_i32(w, "tokenizer.ggml.token_type", base_types, 8);
    gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (gpt2) {
        static const char *const merges[] = {"a b"};
        gguf_set_str(w, "tokenizer.ggml.pre", "smollm");
        gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    }
    return w;
}

/* Writes w, loads it, and checks the result: NULL with want in the error,
 * or (want NULL) a tokenizer. */
static void expect_load(struct gguf_writer *w, const char *want)
{
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/v.gguf", tmp_dir);
    assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    struct tokenizer *t = load_path(path, err, sizeof err);
    if (!want) {
        if (!t)
            fail_msg("valid vocabulary refused: %s", err);
        tokenizer_free(t);
        return;
    }
    if (t)
        fail_msg("malformed vocabulary accepted (wanted an error with '%s')", want);
    if (!strstr(err, want))
        fail_msg("error '%s' does not mention '%s'", err, want);
}

static void test_malformed(void **state)
{
    struct gguf_writer *w;
    expect_load(base_vocab(false), NULL);
    expect_load(base_vocab(true), NULL);

    w = gguf_writer_new();
    gguf_set_u32(w, "general.alignment", 32);
    expect_load(w, "tokenizer.ggml.model missing");

    w = base_vocab(false);
    gguf_set_str(w, "tokenizer.ggml.model", "bert");
    expect_load(w, "'bert' not supported");

    w = base_vocab(false);
    gguf_set_u32(w, "tokenizer.ggml.model", 1);
    expect_load(w, "tokenizer.ggml.model is not a string");

    w = gguf_writer_new();
    gguf_set_str(w, "tokenizer.ggml.model", "llama");
    expect_load(w, "tokenizer.ggml.tokens missing");

    w = base_vocab(false);
    gguf_set_arr_i32(w, "tokenizer.ggml.tokens", base_types, 8);
    expect_load(w, "tokenizer.ggml.tokens is an array of i32, not of strings");

    w = base_vocab(false);
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", base_tokens, 0);
    expect_load(w, "tokenizer.ggml.tokens is empty");

    w = base_vocab(false);
    gguf_set_arr_f32(w, "tokenizer.ggml.scores", base_scores, 7);
    expect_load(w, "tokenizer.ggml.scores has 7 entries but tokenizer.ggml.tokens has 8");

    w = base_vocab(false);
    gguf_set_arr_str(w, "tokenizer.ggml.scores", base_tokens, 8);
    expect_load(w, "tokenizer.ggml.scores is an array of string, not of floats");

    w = gguf_writer_new(); /* the llama model merges by score: scores are required */
    gguf_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", base_tokens, 8);
    expect_load(w, "tokenizer.ggml.scores missing");

    w = base_vocab(false);
    gguf_set_arr_i32(w, "tokenizer.ggml.token_type", base_types, 7);
    expect_load(w, "tokenizer.ggml.token_type has 7 entries");

    w = base_vocab(false);
    {
        int32_t types[8];
        memcpy(types, base_types, sizeof types);
        types[5] = 9;
        gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, 8);
    }
    expect_load(w, "tokenizer.ggml.token_type[5] is not a token type");

    w = base_vocab(false);
    gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 8);
    expect_load(w, "tokenizer.ggml.bos_token_id = 8 out of range (vocabulary has 8 tokens)");

    w = base_vocab(false);
    gguf_set_i32(w, "tokenizer.ggml.eos_token_id", -1);
    expect_load(w, "tokenizer.ggml.eos_token_id = -1 out of range");

    w = base_vocab(false);
    gguf_set_str(w, "tokenizer.ggml.unknown_token_id", "0");
    expect_load(w, "tokenizer.ggml.unknown_token_id is not an integer");

    w = base_vocab(false);
    gguf_set_u32(w, "tokenizer.ggml.add_bos_token", 1);
    expect_load(w, "tokenizer.ggml.add_bos_token is not a bool");

    w = base_vocab(false);
    {
        const char *toks[8];
        memcpy(toks, base_tokens, sizeof toks);
        toks[6] = "a\xff";
        gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 8);
    }
    expect_load(w, "tokenizer.ggml.tokens[6] is not valid UTF-8");

    w = base_vocab(false);
    {
        const char *toks[8];
        memcpy(toks, base_tokens, sizeof toks);
        toks[3] = "<0xG1>";
        gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 8);
    }
    expect_load(w, "tokenizer.ggml.tokens[3] '<0xG1>' has type BYTE but is not <0xNN>");

    w = base_vocab(true);
    gguf_set_str(w, "tokenizer.ggml.pre", "no-such-regex");
    expect_load(w, "tokenizer.ggml.pre 'no-such-regex' not supported");

    w = gguf_writer_new();
    gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", base_tokens, 8);
    expect_load(w, "tokenizer.ggml.merges missing");

    {
        static const char *const bad[][2] = {
            {"ab", "'ab' is not two tokens separated by a space"},
            {"a c", "'a c': 'c' is not in the vocabulary"},
            {"x b", "'x b': 'x' is not in the vocabulary"},
            {"b a", "'b a': 'ba' is not in the vocabulary"},
            {"", "is not two tokens"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            w = base_vocab(true);
            gguf_set_arr_str(w, "tokenizer.ggml.merges", &bad[i][0], 1);
            expect_load(w, bad[i][1]);
        }
    }
}

/* The tiny vocabulary behaves: byte fallback, unk fusion, merges. */
static void test_small_vocab(void **state)
{
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/v.gguf", tmp_dir);
    struct gguf_writer *w = base_vocab(false);
    assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    struct tokenizer *t = must_load(path);
    int32_t ids[16];
    /* "▁ab": ▁ and ab; "A" has no token: its byte; "é" has no byte tokens: one <unk> for "éé" */
    assert_int_equal(tokenizer_encode(t, "ab", 2, true, false, ids, 16), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 7);
    assert_int_equal(ids[2], 6);
    assert_int_equal(tokenizer_encode(t, "A", 1, false, false, ids, 16), 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(tokenizer_encode(t, "\xC3\xA9\xC3\xA9" "a", 5, false, false, ids, 16), 3);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 4);
    tokenizer_free(t);

    /* a token spanning "a▁": merges cross the word boundary, so the text is
     * not cut into words: "▁a▁b" -> ▁ a▁b (cut, it would be ▁a ▁ b) */
    static const char *const toks[] = {"<unk>", "a", "b", "\xE2\x96\x81", "\xE2\x96\x81" "a",
                                       "a\xE2\x96\x81", "a\xE2\x96\x81" "b"};
    static const float scores[] = {0, -1, -2, -3, -6, -4, -5};
    w = gguf_writer_new();
    gguf_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 7);
    gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, 7);
    assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    t = must_load(path);
    assert_int_equal(tokenizer_encode(t, "a b", 3, true, false, ids, 16), 2); /* no BOS in this vocab */
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 6);
    tokenizer_free(t);

    /* Llama-3's model takes a piece that is a token whole, even one no merge
     * makes ("ba"); GPT-2's does not */
    static const char *const bpe_toks[] = {"a", "b", "ab", "ba"};
    static const char *const bpe_merges[] = {"a b"};
    const char *pres[] = {"llama3", "gpt2"};
    for (int i = 0; i < 2; i++) {
        w = gguf_writer_new();
        gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
        gguf_set_str(w, "tokenizer.ggml.pre", pres[i]);
        gguf_set_arr_str(w, "tokenizer.ggml.tokens", bpe_toks, 4);
        gguf_set_arr_str(w, "tokenizer.ggml.merges", bpe_merges, 1);
        assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
        gguf_writer_free(w);
        t = must_load(path);
        if (i == 0) {
            assert_int_equal(tokenizer_encode(t, "ba", 2, true, false, ids, 16), 1);
            assert_int_equal(ids[0], 3);
        } else {
            assert_int_equal(tokenizer_encode(t, "ba", 2, true, false, ids, 16), 2);
            assert_int_equal(ids[0], 1);
            assert_int_equal(ids[1], 0);
        }
        tokenizer_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_llama2),
        cmocka_unit_test(test_corpus_smollm2_mini),
        cmocka_unit_test(test_corpus_smollm2),
        cmocka_unit_test(test_stories260k_llama2c),
        cmocka_unit_test_setup_teardown(test_pre_families, make_tmp_dir, remove_tmp_dir),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_encode_retry),
        cmocka_unit_test(test_invalid_utf8_input),
        cmocka_unit_test(test_stream_partial_characters),
        cmocka_unit_test(test_hash),
        cmocka_unit_test_setup_teardown(test_malformed, make_tmp_dir, remove_tmp_dir),
        cmocka_unit_test_setup_teardown(test_small_vocab, make_tmp_dir, remove_tmp_dir),
    };
    int rc = cmocka_run_group_tests(tests, load_corpus, NULL);
    free_corpus(NULL);
    return rc;
}
