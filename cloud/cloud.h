/* The target-side server (DESIGN.md §1, §4; docs/protocol.md).
 *
 * One model and one forward context serve many sessions, one pass at a time;
 * each session has its own KV cache holding its committed tokens. A DRAFT is
 * verified in one pass over γ+1 rows (the last committed token, then the γ
 * draft tokens); in sd-ee sessions every exit of the target is evaluated on
 * the way and EARLY leaves from inside the pass when the exit is confident,
 * FINAL at the end, and the KV is rolled back to the accepted prefix. Also
 * serves the cloud-only baselines (TOKENS streamed; one token per DRAFT of
 * no tokens). Limits on sessions, context and idle time end a session with
 * an ERROR, never silently; bad frames get an ERROR and change nothing. */
#ifndef TANDEM_CLOUD_CLOUD_H
#define TANDEM_CLOUD_CLOUD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "../engine/pace.h"

struct cloud_config {
    const char *model;    /* target GGUF (with exits for sd-ee) */
    const char *bind;     /* ZeroMQ endpoint: tcp://\*:5555, ipc:///tmp/x */
    int max_sessions;     /* default 8 */
    int ctx;              /* positions per session; default min(model's, 2048) */
    double idle_s;        /* evict a session idle this long; default 300 */
    int max_gamma;        /* most draft tokens per round; default 32 */
    int threads;          /* default: all cores */
    bool verbose;         /* one line per message on stderr */
    bool no_repack;       /* keep the weights mapped (model_repack is the default on cpu) */
    const struct pace_profile *pace; /* optional: every pass takes at least the profile's
                                        time, EARLY at its exit's share (copied at start) */
    const char *trace;    /* optional: write timestamped events here (engine/trace.h) */
    const char *device;   /* "cpu" (default, NULL) or "cuda": where passes and, when the
                             device can, exits run (docs/cuda.md) */
};

struct cloud;

/* Loads the model and its exits and binds; NULL and err on failure. */
struct cloud *cloud_new(const struct cloud_config *cfg, char *err, size_t errlen);
/* Serves until *stop becomes non-zero (a signal handler sets it). false and
 * err if the socket fails. */
bool cloud_serve(struct cloud *c, volatile sig_atomic_t *stop, char *err, size_t errlen);
void cloud_free(struct cloud *c);

#endif
