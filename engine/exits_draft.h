/* Drafts made from a target (DESIGN.md §5), for when no separate draft
 * model exists: the target's first n layers as a standalone model whose
 * output is the exit after layer n-1 without adapter, i.e. the target's own
 * final norm and LM head.
 *
 * The draft is a plain GGUF of the target's architecture that any llama.cpp
 * style engine runs: every key (tokenizer.* included, so draft and target
 * share the vocabulary) and tensor of the target, but block_count = n, no
 * blocks from n on and no exits. An exit adapter is not carried over: h + A h
 * feeds the final RMSNorm, which no weight of a plain model can reproduce
 * for a general A (docs/exits.md). Its logits are bitwise those of
 * exit_head_eval with no adapter at layer n-1 of the target. */
#ifndef TANDEM_ENGINE_EXITS_DRAFT_H
#define TANDEM_ENGINE_EXITS_DRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include "model.h"

/* Writes the draft of m's first n_layers layers (1 .. n_layers-1 of m) to
 * path and reads it back. false + err, and no file, on failure. */
bool exits_export_draft(const struct model *m, int n_layers, const char *path, char *err,
                        size_t errlen);

#endif
