/* Chat prompt formats for the instruct models we ship with.
 *
 *   chatml  SmolLM2 (and Qwen2): "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per
 *           message, then "<|im_start|>assistant\n". Where the model's
 *           tokenizer.chat_template inserts a default system message (SmolLM2's
 *           does) and the conversation has none, it is inserted too.
 *   vicuna  Vicuna v1.1 (FastChat): "SYSTEM USER: q ASSISTANT: a</s>USER: q2
 *           ASSISTANT:" with FastChat's default system prompt unless a system
 *           message replaces it.
 *
 * The result holds special-token text (<|im_start|>, </s>): encode it with
 * parse_special = true. */
#ifndef TANDEM_WEIGHTS_CHAT_H
#define TANDEM_WEIGHTS_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "tokenizer.h"

enum chat_format { CHAT_NONE, CHAT_CHATML, CHAT_VICUNA };

struct chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
};

/* "chatml" or "vicuna"; CHAT_NONE for any other name. */
enum chat_format chat_format_by_name(const char *name);
const char *chat_format_name(enum chat_format f);

/* The model's format: from tokenizer.chat_template when it has one
 * (<|im_start|> -> chatml, USER:/ASSISTANT: -> vicuna), else from the
 * vocabulary (an <|im_start|> token -> chatml; a llama SentencePiece
 * vocabulary, as Vicuna's -> vicuna), else CHAT_NONE. */
enum chat_format chat_detect(const struct tokenizer *t);

/* The prompt for msgs[0..n), ending with the opening of the assistant's turn
 * when add_assistant. t (may be NULL) supplies chatml's default system
 * message. malloc'd, NUL-terminated; NULL on out of memory or CHAT_NONE. */
char *chat_apply(enum chat_format f, const struct tokenizer *t, const struct chat_msg *msgs, size_t n,
                 bool add_assistant);

#endif
