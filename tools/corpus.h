/* Prompt corpora for train-exits: JSON Lines files of prompts.
 *
 * Each line is an object with either "turns" (a list of strings, as in
 * MT-Bench and Spec-Bench: every turn becomes one prompt) or "prompt" /
 * "text" (one string). Blank lines are skipped; anything else is an error
 * naming the file and line. */
#ifndef TANDEM_TOOLS_CORPUS_H
#define TANDEM_TOOLS_CORPUS_H

#include <stdbool.h>
#include <stddef.h>

struct corpus {
    char **prompts;
    int n;
};

bool corpus_read(const char *path, struct corpus *out, char *err, size_t errlen);
void corpus_free(struct corpus *c);

#endif
