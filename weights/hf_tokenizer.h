/* A Hugging Face tokenizer as llama.cpp's tokenizer.ggml.* metadata, which
 * our tokenizer (tokenizer.h) and llama.cpp load.
 *
 * tokenizer.json (the `tokenizers` format), BPE models only:
 *   byte-level BPE (a ByteLevel pre-tokenizer: GPT-2, SmolLM2, Qwen2,
 *     Llama-3) -> model "gpt2": tokens, types, merges, and the pre-tokenizer
 *     named as llama.cpp names it ("gpt-2", "smollm", "llama-bpe", "qwen2"),
 *     recognised by comparing its regexes with ours (tok_pretok.c), not by
 *     a hash of sample encodings as llama.cpp's converter does;
 *   SentencePiece-style BPE (byte_fallback, spaces as "▁": Llama-2, Vicuna)
 *     -> model "llama": tokens, types and scores. The file has merges, not
 *     scores; a token's score is minus the rank of the first merge that makes
 *     it, which merges exactly as the merges do when they list every split
 *     of a piece (as the Llama tokenizer.json files do). llama.cpp's own
 *     converter writes -1000 for every token here, losing the order.
 * tokenizer.model (SentencePiece's ModelProto, BPE type): -> model "llama"
 *   with the file's own pieces, scores and types, and its add_dummy_prefix.
 *
 * Added tokens are control tokens when marked special (or when they look
 * like "<|...|>"), user-defined otherwise. The vocabulary is the model's
 * (config.json vocab_size): ids the tokenizer does not use become "[PADn]"
 * unused tokens, as llama.cpp writes them. BOS/EOS/UNK/PAD ids come from
 * tokenizer_config.json's *_token entries, then config.json and
 * generation_config.json; add_bos/add_eos from tokenizer_config.json or the
 * post-processor's template; the chat template from tokenizer_config.json or
 * chat_template.jinja. Anything else (another model type, normalizer or
 * pre-tokenizer) is refused with a line naming the file and the field. */
#ifndef TANDEM_WEIGHTS_HF_TOKENIZER_H
#define TANDEM_WEIGHTS_HF_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>

#include "gguf.h"
#include "hf_config.h"

/* Writes the metadata of the tokenizer at path (a tokenizer.json, or any
 * other name for a tokenizer.model) into w; dir holds the model's other
 * files (tokenizer_config.json, chat_template.jinja). */
bool hf_tokenizer_write(const char *dir, const char *path, const struct hf_config *c, struct gguf_writer *w,
                        char *err, size_t errlen);

#endif
