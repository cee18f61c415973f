/* Timestamped events of a session, one JSON object per line (`--trace FILE`
 * on edge and cloud; `tandem prof` merges the two files).
 *
 *   {"t_us":1763782000123456,"side":"edge","session":3,"round":12,"ev":"draft","ph":"B"}
 *
 * t_us is CLOCK_REALTIME in microseconds, so files from two processes on one
 * machine share a time base (on two machines, their clocks' offset adds to
 * every cross-side gap: keep them synchronised). ph is "B" (span begins), "E"
 * (span ends) or "i" (instant, with an integer "v"). Spans of one name do not
 * nest within one session. A NULL trace records nothing, so callers need no
 * checks. Safe to call from several threads. */
#ifndef TANDEM_ENGINE_TRACE_H
#define TANDEM_ENGINE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct trace;

/* Creates (truncates) path; side names the writer ("edge", "cloud"). */
struct trace *trace_open(const char *path, const char *side, char *err, size_t errlen);
void trace_close(struct trace *t);

void trace_begin(struct trace *t, uint64_t session, uint32_t round, const char *ev);
void trace_end(struct trace *t, uint64_t session, uint32_t round, const char *ev);
void trace_instant(struct trace *t, uint64_t session, uint32_t round, const char *ev, int64_t v);

#endif
