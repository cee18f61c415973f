/* Prompts from the command line as token ids, shared by run and edge. */
#ifndef TANDEM_TOOLS_PROMPT_H
#define TANDEM_TOOLS_PROMPT_H

#include <stdbool.h>
#include <stdint.h>

#include "../weights/tokenizer.h"

/* "1 2 3" (spaces or commas) -> malloc'd ids; returns the count, or -1 with
 * one line on stderr prefixed by cmd ("tandem run"). */
int prompt_parse_ids(const char *cmd, const char *s, int32_t **out);

/* text -> malloc'd ids. chat: wrap it as a user message in the chat format
 * chat_name (NULL: the model's own); no_bos: never add BOS. Returns the
 * count, or -1 with one line on stderr. */
int prompt_encode(const char *cmd, const struct tokenizer *tok, const char *text, bool chat,
                  const char *chat_name, bool no_bos, int32_t **out);

#endif
