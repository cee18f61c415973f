/* Early-exit heads (DESIGN.md §5; the file format is in docs/exits.md).
 *
 * An exit at layer ℓ reads the residual stream after layer ℓ (0-based),
 * applies an optional adapter h + A(h), A a (dim, dim) matrix or a low-rank
 * product U·V, then the model's own output norm and LM head: those are
 * shared with the last layer, never copied. The heads live in the target's
 * GGUF (metadata tandem.exit.layers / tandem.exit.thresholds, tensors
 * exit.{ℓ}.adapter*.weight).
 *
 * exit_head_eval is batch invariant like the forward pass: a row's result is
 * bitwise the same whatever other rows share the call. An exit with no
 * adapter at layer ℓ gives bitwise the logits of the first ℓ+1 layers run as
 * a model of their own. */
#ifndef TANDEM_ENGINE_EXITS_H
#define TANDEM_ENGINE_EXITS_H

#include <stdbool.h>
#include <stdint.h>
#include "forward.h"
#include "model.h"

enum exit_adapter {
    EXIT_NO_ADAPTER,
    EXIT_FULL_ADAPTER,     /* a: (dim, dim) */
    EXIT_LOW_RANK_ADAPTER, /* A(h) = u · (v · h); v: (rank, dim), u: (dim, rank) */
};

struct exit_head {
    int layer;       /* reads the residual stream after this layer (0-based) */
    float threshold; /* confidence at or above which the head's argmax is trusted */
    enum exit_adapter adapter;
    int rank;        /* rows of v; dim for a full adapter, 0 for none */
    struct matrix a, u, v;
};

/* The exits of one model, sorted by layer, at most one per layer. */
struct exit_set {
    int n;
    struct exit_head *heads;
};

/* Reads and validates the exits stored in m's file. A file without
 * tandem.exit.layers has none (n = 0). false, and one line in err naming the
 * file and the field, on anything malformed: a layer out of range or
 * repeated, thresholds missing or not one per layer, an adapter of the wrong
 * shape or half of a low-rank pair, an exit.* tensor of no listed layer.
 * Adapter tensors point into the file's mapping: m must outlive the set. */
bool exits_load(const struct model *m, struct exit_set *out, char *err, size_t errlen);
void exits_free(struct exit_set *s);

struct exit_result {
    int32_t token; /* argmax of the exit's logits (lowest id on ties) */
    float prob;    /* its softmax probability */
};

/* Scratch memory for evaluating the heads of a set (or heads without
 * adapter) over up to max_rows rows at once; borrows m and tp. */
struct exit_eval;
struct exit_eval *exit_eval_new(const struct model *m, const struct exit_set *s,
                                struct threadpool *tp, int max_rows);
void exit_eval_free(struct exit_eval *ev);

/* Evaluates head h on n rows of hidden (n, dim): out[r] gets row r's argmax
 * and its probability, logits (n, vocab) the full logits when non-NULL.
 * Any n >= 1: rows beyond the evaluator's max_rows go in further calls of
 * the kernels, which changes no bit. */
void exit_head_eval(struct exit_eval *ev, const struct exit_head *h, const float *hidden, int n,
                    struct exit_result *out, float *logits);

/* Receives the result of exit number `exit` of the set (s->heads[exit]) for
 * rows first_row .. first_row+n_rows-1 of the pass; logits (n_rows, vocab)
 * when the pass asked for them, else NULL. Runs inside the pass, before the
 * layers after the exit: the cloud sends EARLY from here. */
typedef void (*exit_fn)(void *ctx, int exit, int first_row, int n_rows,
                        const struct exit_result *res, const float *logits);

/* forward() with the exits of s evaluated on the way: after layer ℓ of each
 * chunk, every exit at ℓ is evaluated for all the chunk's rows and handed to
 * fn at once, then the pass goes on. A pass of n <= the forward context's
 * max_rows rows (a verify pass) is one chunk, so fn fires once per exit.
 * ev must come from exit_eval_new with s and max_rows at least the forward
 * context's; req->hook must be NULL (the exits use it). Results, logits and
 * KV are those of forward() on the same request. */
bool forward_exits(struct forward_ctx *fc, struct kv_cache *kv, const struct forward_request *req,
                   const struct exit_set *s, struct exit_eval *ev, bool want_logits, exit_fn fn,
                   void *fn_ctx, char *err, size_t errlen);

/* Where forward_exits on fc evaluates the exits of s. true: where the pass
 * runs — on a CUDA context, the fused head kernel (adapters as device GEMVs
 * before it) reads the residual stream on the device, and only each row's
 * argmax and probability (and the logits when asked) come back; the stream
 * is not copied to the host. false, with the reason in why: on the host by
 * exit_head_eval, from the stream copied back after every layer — the CPU
 * backend, or a CUDA context with an exit whose adapter the device GEMV
 * cannot take (one such exit sends every exit of s to the host). Makes the
 * device copies of the adapters on first use; forward_exits asks it on
 * every call. Results agree with the host path by argmax (exactly, barring
 * ties within rounding) and probability (docs/cuda.md). */
bool forward_exits_in_place(struct forward_ctx *fc, const struct exit_set *s, char *why,
                            size_t len);

#endif
