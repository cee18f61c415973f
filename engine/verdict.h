/* The verdict of one speculative round under greedy verification
 * (DESIGN.md §1): how many draft tokens the target accepts and its next token.
 *
 * A verify pass has γ+1 rows: row 0 is fed the last committed token, row j
 * (1..γ) draft token j. Row j's argmax is the target's choice for the token
 * after it, so draft token j+1 is accepted while it equals row j's argmax.
 * The cloud computes the final verdict from the last layer's argmaxes and
 * the provisional one (EARLY) from an exit's, with the same rule. */
#ifndef TANDEM_ENGINE_VERDICT_H
#define TANDEM_ENGINE_VERDICT_H

#include <stdint.h>

struct verdict {
    int accepted;  /* a: leading draft tokens accepted, 0 .. γ */
    int32_t next;  /* t: argmax of row a, the correction (a < γ) or the bonus token (a = γ) */
};

/* draft (γ) the drafted tokens, target (γ+1) the argmax of each row. */
struct verdict verdict_greedy(const int32_t *draft, const int32_t *target, int gamma);

/* The confidence of a verdict computed from an exit: the lowest of the
 * exit's argmax probabilities prob (γ+1) over the rows the verdict depends
 * on, rows 0 .. a. Rows after a do not change it, so they do not count. */
float verdict_confidence(const float *prob, struct verdict v);

#endif
