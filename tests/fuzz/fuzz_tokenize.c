/* libFuzzer target: arbitrary bytes through encode and decode.
 *
 * The first byte picks the vocabulary (bit 0: Llama-2's SentencePiece-style
 * or SmolLM2's byte-level BPE, the committed fixtures in tests/tokenizer/)
 * whether special tokens are parsed (bit 1) and whether BOS is added
 * (bit 2); the rest is the text.
 * Checked: no crash or sanitizer report; the count is stable and ids are in
 * range; streaming decode with tight buffers equals whole decode; and
 * decode(encode(s)) == s for well-formed UTF-8 where the tokenizer promises
 * it (not for "▁" in llama text, nor bytes SmolLM2's vocabulary lacks). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights/gguf.h"
#include "weights/tokenizer.h"

static struct tokenizer *toks[2];
static bool has_byte[256]; /* SmolLM2: bytes with a token of their own */

static struct tokenizer *load(const char *path)
{
    char err[512];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    struct tokenizer *t = f ? tokenizer_load(f, err, sizeof err) : NULL;
    if (f)
        gguf_close(f);
    if (!t) {
        fprintf(stderr, "fuzz_tokenize: %s (run from the repository root)\n", err);
        exit(1);
    }
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    toks[0] = load("tests/tokenizer/llama2-vocab.gguf");
    toks[1] = load("tests/tokenizer/smollm2-mini.gguf");
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t id;
        has_byte[b] = tokenizer_encode(toks[1], &c, 1, false, false, &id, 1) == 1;
    }
    return 0;
}

static bool has_marker(const char *s, size_t n) /* "▁" */
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (!memcmp(s + i, "\xE2\x96\x81", 3))
            return true;
    return false;
}

/* Well-formed UTF-8, checked independently of the library's own check. */
static bool valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n)
            return false;
        uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        if (k > 1 && (s[i + 1] < lo || s[i + 1] > hi))
            return false;
        for (size_t j = 2; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const struct tokenizer *t = toks[data[0] & 1];
    bool special = data[0] & 2, bos = data[0] & 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    int n = tokenizer_encode(t, text, len, bos, special, NULL, 0);
    if (n < 0)
        abort();
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (tokenizer_encode(t, text, len, bos, special, ids, n) != n)
        abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_vocab(t))
            abort();

    /* the text after BOS; with special tokens shown for byte-level BPE,
     * whose special tokens are their text exactly */
    bool show = special && tokenizer_kind(t) == TOKENIZER_BPE;
    int skip = bos && tokenizer_bos(t) >= 0;
    ids += skip;
    n -= skip;
    size_t whole_len;
    char *whole = tokenizer_decode(t, ids, (size_t)n, show, &whole_len);
    /* streamed, each push first offered one byte too few */
    struct detok d;
    detok_init(&d, t);
    d.show_special = show;
    size_t cap = detok_max_out(t), got = 0;
    char *buf = malloc(cap), *streamed = malloc(whole_len + 4);
    for (int i = 0; i <= n; i++) {
        size_t k = i < n ? detok_push(&d, ids[i], buf, 0) : detok_flush(&d, buf, 0);
        if (k > 0) {
            if (k > cap)
                abort();
            size_t k2 = i < n ? detok_push(&d, ids[i], buf, k) : detok_flush(&d, buf, k);
            if (k2 != k || got + k > whole_len)
                abort();
            memcpy(streamed + got, buf, k);
            got += k;
        }
    }
    if (got != whole_len || memcmp(streamed, whole, got))
        abort();

    bool round_trip = valid_utf8((const uint8_t *)text, len);
    if (tokenizer_kind(t) == TOKENIZER_SPM)
        round_trip = round_trip && !special && !has_marker(text, len);
    for (size_t i = 0; round_trip && tokenizer_kind(t) == TOKENIZER_BPE && i < len; i++)
        round_trip = has_byte[(uint8_t)text[i]];
    if (round_trip && (whole_len != len || memcmp(whole, text, len)))
        abort();

    free(buf);
    free(streamed);
    free(whole);
    free(ids - skip);
    return 0;
}
