#include "corpus_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../kernels/cpu/ops.h"

static void progress(struct corpus_run *r, bool done)
{
    if (!isatty(STDERR_FILENO))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = ts.tv_sec + ts.tv_nsec * 1e-9;
    if (!done && now - r->progress_t < 0.1)
        return;
    r->progress_t = now;
    long total = r->budget > 0 ? r->budget : 1, k = r->rows < total ? r->rows : total;
    char bar[31];
    int fill = (int)(30 * k / total);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\rtrain-exits: %-9s [%s] %ld/%ld tokens%s", r->label, bar, r->rows, total,
            done ? "\n" : "");
}

/* One sequence in ids (room for n + gen), from an empty cache: the prompt's
 * n tokens, then the greedy continuation appended to ids. Its length, or -1. */
static int run_sequence(struct corpus_run *r, int32_t *ids, int n, float *logits, char *err,
                        size_t errlen)
{
    kv_truncate(r->kv, 0);
    struct forward_request req = {ids, n, n - 1, logits, r->hook, r->hook_ctx};
    if (!forward(r->fc, r->kv, &req, err, errlen))
        return -1;
    r->rows += n;
    for (int g = 0; g < r->gen; g++) {
        int32_t next = argmax(logits, r->m->cfg.vocab);
        if (next == tokenizer_eos(r->tok))
            break;
        ids[n] = next;
        req = (struct forward_request){ids + n, 1, 0, logits, r->hook, r->hook_ctx};
        if (!forward(r->fc, r->kv, &req, err, errlen))
            return -1;
        n++;
        r->rows++;
        progress(r, false);
    }
    return n;
}

/* The ids of a prompt into *ids, with room for `extra` more; their count,
 * or -1 on out of memory. */
static int encode(const struct tokenizer *tok, const char *text, int extra, int32_t **ids, int *cap)
{
    bool bos = tokenizer_add_bos_default(tok);
    for (;;) {
        int n = tokenizer_encode(tok, text, strlen(text), bos, false, *ids, *cap - extra);
        if (n + extra <= *cap)
            return n;
        int32_t *grown = realloc(*ids, sizeof **ids * (n + extra));
        if (!grown)
            return -1;
        *ids = grown;
        *cap = n + extra;
    }
}

static bool in_share(int i, enum corpus_share share, float holdout)
{
    if (share == CORPUS_ALL)
        return true;
    bool held_out = floor((i + 1) * (double)holdout) > floor(i * (double)holdout);
    return held_out == (share == CORPUS_HELD_OUT);
}

bool corpus_run(struct corpus_run *r, const struct corpus *c, enum corpus_share share,
                float holdout, char *err, size_t errlen)
{
    int max_prompt = r->kv->n_ctx - r->gen, cap = r->gen + 1;
    float *logits = malloc(sizeof(float) * r->m->cfg.vocab);
    int32_t *ids = malloc(sizeof *ids * cap);
    bool ok = logits && ids;
    if (!ok)
        snprintf(err, errlen, "out of memory");
    for (int i = 0; ok && i < c->n && r->rows < r->budget; i++) {
        if (!in_share(i, share, holdout))
            continue;
        int n = encode(r->tok, c->prompts[i], r->gen, &ids, &cap);
        if (n < 0) {
            snprintf(err, errlen, "out of memory");
            ok = false;
        } else if (n > 0) {
            n = run_sequence(r, ids, n < max_prompt ? n : max_prompt, logits, err, errlen);
            ok = n >= 0;
            if (ok && r->sequence_done && !r->sequence_done(r->hook_ctx, ids, n)) {
                snprintf(err, errlen, "run aborted after sequence %d", r->sequences);
                ok = false;
            }
            r->sequences += ok;
        }
        progress(r, false);
    }
    progress(r, true);
    free(logits);
    free(ids);
    return ok;
}
