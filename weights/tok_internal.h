/* Shared inside the tokenizer files (tok_*.c); not part of the public API. */
#ifndef TANDEM_WEIGHTS_TOK_INTERNAL_H
#define TANDEM_WEIGHTS_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* tokenizer.ggml.token_type values (llama.cpp's numbering). */
enum tok_type {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,
};

/* ---- UTF-8 ---- */
/* Length (1-4) of the well-formed character at s[0..n), or 0 if the bytes
 * there are not one (overlong, surrogate, > U+10FFFF, truncated, stray). */
size_t utf8_char_len(const uint8_t *s, size_t n);
bool utf8_valid(const uint8_t *s, size_t n);

/* ---- growable arrays ---- */
/* Makes room for need elements of size elem in *p (capacity *cap). */
bool tok_reserve(void **p, size_t *cap, size_t need, size_t elem);

struct idvec {
    int32_t *v;
    size_t n, cap;
};
bool idvec_push(struct idvec *iv, int32_t id);

/* ---- string -> id map (open addressing; the strings live in the tokenizer) ---- */
struct strmap {
    int32_t *slot; /* -1: empty */
    size_t mask;
};
uint64_t tok_fnv1a(uint64_t h, const void *p, size_t n);
#define TOK_FNV_INIT 0xcbf29ce484222325ULL

/* ---- (left id, right id) -> merge map for byte-level BPE ---- */
struct merge {
    int32_t left, right, rank, result;
};
struct pairmap {
    struct merge *slot; /* left == -1: empty */
    size_t mask;
};

/* ---- priority queue of candidate merges ----
 * Ordered by key (smaller first), then a, b, then the left symbol's position,
 * which reproduces Hugging Face's merge order for both models. */
struct bigram {
    double key;
    int32_t a, b;
    int32_t left, right; /* symbol indices */
    uint32_t len;        /* byte length of the merged text, to spot stale entries */
    int32_t result;
};
struct bigram_heap {
    struct bigram *v;
    size_t n, cap;
};

/* A symbol of the text being merged: a run of bytes, linked to its
 * neighbours; len 0 once merged into its left neighbour. */
struct sym {
    int32_t prev, next;
    uint32_t off, len;
    int32_t id; /* -1: not in the vocabulary */
};

/* Fills key, a, b and result for merging l and r; false if they don't merge. */
typedef bool (*pair_fn)(const void *ctx, const struct sym *l, const struct sym *r, struct bigram *out);

/* Merges syms[0..n) (linked in order) best pair first until no pair merges:
 * the one BPE loop both models share. false on out of memory. */
bool merge_symbols(struct sym *syms, size_t n, struct bigram_heap *heap, pair_fn pair, const void *ctx);

/* ---- pre-tokenizer (tok_pretok.c) ---- */
struct span {
    size_t off, len;
};
struct spanvec {
    struct span *v;
    size_t n, cap;
};
struct pretok;
/* NULL + err for an unknown name. *kind gets a stable number for the hash;
 * *ignore_merges whether the family's model takes a piece that is a token
 * whole, before merging (Llama-3). */
struct pretok *pretok_new(const char *name, int *kind, bool *ignore_merges, char *err, size_t errlen);
void pretok_free(struct pretok *p);
/* The regexes name's family applies, in order (their count; 0 for an
 * unknown name), and its ignore_merges: for a converter to recognise a
 * tokenizer.json pre-tokenizer as one of ours. */
int pretok_passes(const char *name, const char *const **passes, bool *ignore_merges);
/* Per-call state (PCRE2 match data and scratch). */
struct pretok_run;
struct pretok_run *pretok_run_new(const struct pretok *p);
void pretok_run_free(struct pretok_run *r);
/* Appends to out the pieces of s[0..n) (valid UTF-8), offsets relative to s. */
bool pretok_split(struct pretok_run *r, const char *s, size_t n, struct spanvec *out);

/* ---- the tokenizer ---- */
struct tokenizer {
    enum tokenizer_kind kind;
    int32_t n_vocab;
    char *text;      /* every token's text, each NUL-terminated */
    uint32_t *off;   /* token i: text + off[i], len[i] bytes */
    uint32_t *len;
    float *scores;   /* n_vocab; zeros when the file has none */
    uint8_t *types;  /* enum tok_type */
    struct strmap map;

    /* decoded bytes of each token: text + dec_off[i], dec_len[i] */
    char *dec;
    uint32_t *dec_off, *dec_len;
    uint32_t max_dec;

    /* tokens matched in raw text: control/unknown (with parse_special) and
     * user-defined (always); by first byte, longest first */
    int32_t *special;
    uint32_t special_start[257];

    int32_t bos, eos, unk;
    bool add_bos, add_space_prefix;
    bool spm_words; /* no token holds "▁" after another character: words merge alone */
    int32_t byte_token[256]; /* spm: <0xNN>; gpt2: the token of byte's character */

    struct pairmap merges;
    int32_t n_merges;
    uint64_t merges_hash; /* FNV-1a over (left, right) ids in rank order */
    struct pretok *pre;
    int pre_kind;
    bool ignore_merges;

    char *chat_template;
    uint64_t hash;
};

int32_t tok_lookup(const struct tokenizer *t, const char *s, size_t n);

/* Segment encoders: append the ids of s[0..n) (no special tokens in it). */
bool spm_encode(const struct tokenizer *t, const char *s, size_t n, struct idvec *out);
struct bpe_scratch;
struct bpe_scratch *bpe_scratch_new(const struct tokenizer *t);
void bpe_scratch_free(struct bpe_scratch *s);
bool bpe_encode(const struct tokenizer *t, struct bpe_scratch *s, const char *text, size_t n,
                struct idvec *out);

/* gpt2's byte <-> printable character mapping (GPT-2's bytes_to_unicode). */
uint32_t bpe_byte_char(uint8_t b);
/* That character in UTF-8 (1 or 2 bytes); returns the length. */
size_t bpe_byte_utf8(uint8_t b, char out[2]);
/* The byte for code point cp, or -1 if cp is not one of the 256. */
int bpe_char_byte(uint32_t cp);

/* Builds the merge map from tokenizer.ggml.merges (tok_merges.c). */
bool merges_load(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen);
const struct merge *merges_find(const struct tokenizer *t, int32_t left, int32_t right);

#endif
