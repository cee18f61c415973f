/* Running a target over a prompt corpus, as train-exits does for fitting
 * and for its report: each prompt (tokenized with the target's tokenizer,
 * BOS as the model wants, cut to leave room for the continuation) is
 * followed by the target's own greedy continuation, from an empty cache.
 * The caller sees every row through the forward pass's layer hook, and each
 * whole sequence once it is done. A progress bar goes to stderr when it is
 * a terminal. */
#ifndef TANDEM_TOOLS_CORPUS_RUN_H
#define TANDEM_TOOLS_CORPUS_RUN_H

#include "../engine/forward.h"
#include "../weights/tokenizer.h"
#include "corpus.h"

/* Which prompts: a deterministic share `holdout`, spread evenly through the
 * file, is held out; the rest is for training. */
enum corpus_share { CORPUS_TRAINING, CORPUS_HELD_OUT, CORPUS_ALL };

struct corpus_run {
    const struct model *m;
    const struct tokenizer *tok;
    struct forward_ctx *fc;
    struct kv_cache *kv;     /* its n_ctx bounds prompt + continuation */
    int gen;                 /* greedy tokens after each prompt, fewer at EOS */
    layer_hook_fn hook;      /* optional: every layer of every row */
    void *hook_ctx;
    /* Optional: the tokens of a finished sequence, prompt then continuation;
     * false aborts the run. */
    bool (*sequence_done)(void *ctx, const int32_t *tokens, int n);
    const char *label;       /* names the run on the progress bar */
    long budget;             /* no new prompt is started once this many tokens ran */
    long rows;               /* tokens run so far */
    int sequences;           /* sequences run so far */
    double progress_t;
};

/* Runs the prompts of one share of c until the budget is spent. false + err
 * when a pass fails, a callback aborts (the callback's owner knows why and
 * may say it better) or memory runs out. */
bool corpus_run(struct corpus_run *r, const struct corpus *c, enum corpus_share share,
                float holdout, char *err, size_t errlen);

#endif
