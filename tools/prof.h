/* Merging an edge trace and a cloud trace (engine/trace.h) into per-round
 * latency breakdowns (`tandem prof`).
 *
 * The events both sides write, per round r (docs/benchmarks.md lists them):
 *   edge   span "draft" (drafting r's tokens), span "predraft" (drafting r's
 *          tokens early, from round r-1's EARLY), instants "send_draft"
 *          (v = gamma), "recv_early" (v = provisional accepted count),
 *          "recv_final" (v = accepted count), "early_hit" (v = 1 when FINAL
 *          confirmed the EARLY verdict, 0 when not), "prompt" (v = tokens)
 *   cloud  span "verify" (r's verification pass), instants "recv_draft",
 *          "send_early" (v = exit layer), "send_final"
 *
 * A round runs from the edge's send_draft(r) to its send_draft(r+1) (the last
 * one to its recv_final). */
#ifndef TANDEM_TOOLS_PROF_H
#define TANDEM_TOOLS_PROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum prof_side { PROF_EDGE = 0, PROF_CLOUD = 1 };

struct prof_event {
    int64_t t_us;
    enum prof_side side;
    uint32_t round;
    char ev[16];
    char ph; /* 'B', 'E' or 'i' */
    int64_t v;
};

/* Milliseconds of each part of one round; -1 where the traces lack the
 * events (e.g. no EARLY in sd mode). */
struct prof_round {
    uint32_t round;
    double draft, up, to_exit, early_flight, predraft, rest, final_flight;
    double round_ms, edge_idle, cloud_idle;
};

/* A span: a B event and the next E event of its side, round and name. */
struct prof_span {
    enum prof_side side;
    uint32_t round;
    char ev[16];
    int64_t b_us, e_us;
};

struct prof {
    struct prof_event *events; /* both sides, sorted by time */
    size_t n_events, events_cap;
    struct prof_span *spans;   /* sorted by start */
    size_t n_spans;
    struct prof_round *rounds;
    size_t n_rounds;
    int64_t t0_us; /* the earliest event */
};

/* Reads both files and computes the rounds. The edge's file holds one
 * session; the cloud's may hold many: `session` picks one of them (the
 * cloud numbers sessions 1, 2, ... in the order it opens them), session < 0
 * takes every event. false with a line naming the file and line on bad input. */
bool prof_load(struct prof *p, const char *edge_path, const char *cloud_path, int64_t session,
               char *err, size_t errlen);
void prof_free(struct prof *p);

/* Appends the events of one trace file to p->events (file order; no rounds
 * computed). For readers of a single side's trace; p starts zeroed. */
bool prof_read(struct prof *p, const char *path, enum prof_side side, int64_t session,
               char *err, size_t errlen);

#endif
