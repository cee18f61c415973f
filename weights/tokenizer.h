/* Tokenizers read from a GGUF file's tokenizer.ggml.* metadata, matching
 * Hugging Face `tokenizers` id for id (tests/tokenizer/ holds the corpus,
 * the expected ids and the script that made them).
 *
 *   "llama"  SentencePiece-style BPE: pieces merge by score, a dummy-prefix
 *            "▁" starts each stretch of text, spaces become "▁", characters
 *            outside the vocabulary fall back to <0xNN> byte tokens.
 *            Llama-2, Vicuna, stories260K.
 *   "gpt2"   byte-level BPE: the text is first split by the model family's
 *            regex (tokenizer.ggml.pre: gpt2, smollm, llama3, qwen2 ...; PCRE2
 *            with Unicode properties), each byte maps to a printable
 *            character, and pairs merge by rank (tokenizer.ggml.merges).
 *            SmolLM2, GPT-2, Llama-3, Qwen2.
 *
 * Special tokens (control and unknown tokens such as <s>, </s>,
 * <|im_start|>) are recognised in text only where the caller allows it
 * (parse_special); user-defined tokens always are. A loaded tokenizer is
 * read-only: encode and decode may run on several threads at once. */
#ifndef TANDEM_WEIGHTS_TOKENIZER_H
#define TANDEM_WEIGHTS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

enum tokenizer_kind {
    TOKENIZER_SPM, /* tokenizer.ggml.model "llama" */
    TOKENIZER_BPE, /* tokenizer.ggml.model "gpt2" */
};

struct tokenizer;

/* Builds the tokenizer from f's metadata. Every array, length, id and string
 * is checked; NULL and one line in err on anything malformed or unsupported
 * ("tokenizer.ggml.scores has 31999 entries but tokenizer.ggml.tokens has
 * 32000"). The tokenizer copies what it needs: f may be closed afterwards. */
struct tokenizer *tokenizer_load(const struct gguf_file *f, char *err, size_t errlen);
void tokenizer_free(struct tokenizer *t);

/* Encodes len bytes of text (any bytes: invalid UTF-8 is kept, byte by byte,
 * through byte tokens). Prepends BOS when add_bos and the model has one.
 * Writes at most max_out ids and returns how many the text needs: when that
 * is more than max_out the caller retries with a bigger buffer. -1 on
 * failure (out of memory, text longer than INT_MAX/4 bytes). */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                     bool parse_special, int32_t *out, int max_out);

/* The whole decoded text of ids (NUL-terminated, malloc'd; *len_out gets its
 * length when non-NULL), as a detok stream of them would print it. NULL on
 * out of memory. */
char *tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool show_special,
                       size_t *len_out);

enum tokenizer_kind tokenizer_kind(const struct tokenizer *t);
int tokenizer_vocab(const struct tokenizer *t);
int32_t tokenizer_bos(const struct tokenizer *t); /* -1 when the model has none */
int32_t tokenizer_eos(const struct tokenizer *t); /* -1 when the model has none */
/* tokenizer.ggml.add_bos_token (default: true for llama, false for gpt2). */
bool tokenizer_add_bos_default(const struct tokenizer *t);
/* The token's text as stored ("▁hello", "Ġworld", "<0x0A>"); NULL if out of range. */
const char *tokenizer_piece(const struct tokenizer *t, int32_t id);
/* Control and unknown tokens: decoded to nothing unless asked for. */
bool tokenizer_is_control(const struct tokenizer *t, int32_t id);
/* The id of the token whose text is exactly piece, or -1. */
int32_t tokenizer_find(const struct tokenizer *t, const char *piece);
/* tokenizer.chat_template, or NULL. */
const char *tokenizer_chat_template(const struct tokenizer *t);

/* Fingerprint for the draft/target handshake: FNV-1a 64 over the kind, every
 * token's text, type and score, the merges in rank order, the pre-tokenizer,
 * BOS/EOS/UNK and the BOS / space-prefix flags. Equal hashes: the two
 * tokenizers turn any text into the same ids. */
uint64_t tokenizer_hash(const struct tokenizer *t);

/* ---- streaming decode ----
 * Pushing ids one at a time yields exactly the bytes tokenizer_decode gives
 * for the whole sequence, and every push returns only complete, valid UTF-8:
 * a character split across tokens is held back until its last byte arrives;
 * bytes that cannot form a character become U+FFFD (one per maximal invalid
 * subsequence, as Python's and Rust's lossy UTF-8 decoders do). */
struct detok {
    const struct tokenizer *tok;
    bool show_special; /* print control tokens' text; init: false */
    bool strip_space;  /* drop a space that would be the very first output
                          byte (the SentencePiece dummy prefix, as Hugging Face
                          decodes it); init: true for llama vocabularies that
                          add the prefix, false otherwise. Set it false to
                          decode a continuation. */
    /* internal */
    bool started;
    uint8_t pend[4], npend, need, lo, hi;
};

void detok_init(struct detok *d, const struct tokenizer *t);
/* Appends what id completes to out. Returns the number of bytes it produces;
 * when that exceeds cap nothing is consumed (push again with a bigger out).
 * cap >= detok_max_out(tok) always suffices. Out-of-range ids produce nothing. */
size_t detok_push(struct detok *d, int32_t id, char *out, size_t cap);
/* Ends the stream: a held-back incomplete character becomes U+FFFD. Same
 * return rule as detok_push (at most 3 bytes). The detok can be reused. */
size_t detok_flush(struct detok *d, char *out, size_t cap);
size_t detok_max_out(const struct tokenizer *t);

#endif
