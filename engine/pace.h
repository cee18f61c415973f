/* Device timing profiles: make a forward pass here take at least as long as
 * it would on other hardware (`--pace PROFILE` on edge and cloud).
 *
 * A profile describes one model on one device by a cost model of its
 * forward pass over `rows` new tokens with `ctx` tokens already cached:
 *
 *     pass_ms(rows, ctx) = base_ms + per_row_ms * (rows - 1) + per_ctx_ms * ctx
 *                          + per_ctx_row_ms * rows * (ctx + (rows - 1) / 2)
 *
 * (weights read once per pass, a little compute per extra row, the KV cache
 * read once per pass as a GPU kernel reads it, and attention work for each
 * pair of a row and a position it attends to, as a CPU does it: the last
 * term is what makes a long prompt's prefill grow with its square). Passes
 * of more than PACE_DECODE_ROWS rows (prompt prefill) are compute-bound:
 * past that many rows each further row costs prefill_per_row_ms. Every
 * field but base_ms is optional (prefill_per_row_ms defaults to
 * per_row_ms, the others to 0).
 *
 * It is a JSON file (bench/profiles/) with those three numbers, a device and
 * model name, and where the numbers come from:
 *
 *   {"device": "A100-80GB", "model": "llama2-7b f16", "base_ms": 9.8,
 *    "per_row_ms": 0.05, "per_ctx_ms": 0.0, "source": "..."}
 *
 * A paced pass does the real work (acceptance and exits come from the real
 * model) and then waits out the difference; if the work here is slower than
 * the profile, nothing is waited and the pass counts as over budget (results
 * are then not those of the emulated device, and the bench says so).
 * Everything measured with a profile is labelled emulated. */
#ifndef TANDEM_ENGINE_PACE_H
#define TANDEM_ENGINE_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACE_DECODE_ROWS 16

struct pace_profile {
    char device[64], model[64];
    double base_ms, per_row_ms, per_ctx_ms, prefill_per_row_ms, per_ctx_row_ms;
};

/* Reads a profile; false with a line naming the file and the field. */
bool pace_load(const char *path, struct pace_profile *p, char *err, size_t errlen);

/* The profile's time for a pass. */
double pace_pass_ms(const struct pace_profile *p, int rows, int ctx);

/* One pass being paced: started when the real work starts. */
struct pace_pass {
    double t0_s;     /* monotonic seconds at the start */
    double total_ms; /* the profile's time for the whole pass */
};

/* A no-op pacer (profile NULL) waits for nothing. */
void pace_begin(struct pace_pass *pp, const struct pace_profile *p, int rows, int ctx);

/* Waits until `fraction` of the pass's profile time has gone by since
 * pace_begin (0 < fraction <= 1: an exit after layer l of L waits for l/L).
 * Returns false when the real work had already taken longer. */
bool pace_wait(const struct pace_pass *pp, double fraction);

#endif
