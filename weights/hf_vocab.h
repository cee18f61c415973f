/* The vocabulary read from a Hugging Face tokenizer file, before it becomes
 * GGUF metadata (hf_tokenizer.c): shared by the tokenizer.json and the
 * tokenizer.model readers. Internal to weights/hf_*.c. */
#ifndef TANDEM_WEIGHTS_HF_VOCAB_H
#define TANDEM_WEIGHTS_HF_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hf_vocab {
    bool spm;           /* tokenizer.ggml.model "llama"; else "gpt2" */
    int32_t n;          /* tokens: the model's vocab_size */
    char **tokens;      /* n, owned; ids the tokenizer leaves free are "[PADn]" */
    int32_t *types;     /* n, llama.cpp's token types (enum tok_type) */
    float *scores;      /* n, spm only */
    char **merges;      /* gpt2 only: "left right", best first, NULL-terminated; owned */
    int64_t n_merges;
    const char *pre;    /* gpt2: tokenizer.ggml.pre */
    bool add_space_prefix; /* spm */
    int32_t unk;        /* the model's unknown token, or -1 */
    bool has_template;  /* tokenizer.json's post-processor is a template... */
    char *template_first; /* ...whose single-sequence form starts with this
                             special token (NULL: with the text), owned */
};

/* Allocates n tokens, all "[PADi]" and unused, for a reader to fill. */
bool hf_vocab_init(struct hf_vocab *v, int32_t n);
void hf_vocab_free(struct hf_vocab *v);
/* Replaces token id's text (copied). */
bool hf_vocab_set(struct hf_vocab *v, int32_t id, const char *text, size_t len, int32_t type);
/* The first id whose text is text, or -1. */
int32_t hf_vocab_find(const struct hf_vocab *v, const char *text);

/* The readers: false + "path: ..." in err. n_vocab is config.json's
 * vocab_size; a tokenizer id at or past it is an error. */
bool hf_vocab_from_json(const char *path, int32_t n_vocab, struct hf_vocab *v, char *err, size_t errlen);
bool hf_vocab_from_spm_model(const char *path, int32_t n_vocab, struct hf_vocab *v, char *err, size_t errlen);

#endif
