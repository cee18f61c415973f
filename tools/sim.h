/* A discrete-event model of one generation (`tandem sim`): predicts the
 * latency of each decoding mode from per-pass costs, the link, and the
 * sequence of rounds a real run produced (how many draft tokens each round
 * offered and had accepted, and whether its EARLY verdict was confirmed).
 *
 * Timeline of a speculative round, on the edge's clock (D(r) an edge pass of
 * r rows, V(r) a cloud pass of r rows, h = rtt/2, s(b) = 8b/rate):
 *
 *   edge drafts gamma tokens       gamma passes D(1) (one input row each:
 *                                  the last accepted token, then each draft;
 *                                  the first round's first pass is D(P))
 *   DRAFT reaches the cloud        + h + s(draft bytes)
 *   cloud verifies gamma+1 rows    starts when the cloud is free, takes V(gamma+1)
 *   EARLY reaches the edge         verify start + f*V + h      (sd-ee, rounds with an exit)
 *   FINAL reaches the edge         verify end + h
 *
 * sd-ee: the edge pre-drafts from EARLY while the cloud finishes; if FINAL
 * confirms the EARLY verdict the pre-draft is sent at max(FINAL, pre-draft
 * done), otherwise the edge stops (at the end of the pass under way) and
 * drafts again after FINAL. Each round yields accepted + 1 tokens.
 *
 * Prompt of P tokens: the cloud prefills P-1 of them at OPEN (the last one
 * is the first row of the first pass); the edge's first pass takes all P.
 * Baselines: cloud-ar streams, paying the round trip once: rtt + V(P-1) +
 * V(1) for the first token, then V(1) per token; cloud-ar-rpc pays rtt +
 * V(1) per token; edge-ar pays D(P) then D(1) per token. In the speculative
 * modes the cloud's prefill overlaps the edge's first draft. Message sizes are small (bytes of
 * a DRAFT: 64 + 8 per token), so the rate matters only on slow links. */
#ifndef TANDEM_TOOLS_SIM_H
#define TANDEM_TOOLS_SIM_H

#include <stdbool.h>
#include <stddef.h>

#include "../engine/pace.h"

enum sim_mode { SIM_CLOUD_AR, SIM_CLOUD_AR_RPC, SIM_EDGE_AR, SIM_SD, SIM_SD_EE, SIM_N_MODES };

struct sim_costs {
    struct pace_profile edge, cloud;
    double rtt_ms;
    double rate_bps;      /* 0 = unlimited */
    double exit_fraction; /* share of a verify pass before the exit's verdict */
};

struct sim_round {
    int gamma;     /* draft tokens offered */
    int accepted;  /* of them accepted */
    bool early;    /* an EARLY verdict came */
    bool early_hit; /* FINAL confirmed it (the pre-draft was used) */
};

struct sim_rounds {
    struct sim_round *r;
    int n;
    int prompt_len;
};

struct sim_result {
    int tokens;
    double total_ms, ttft_ms, ms_per_token;
    double cloud_busy_ms; /* cost side: the target's pass time */
};

/* Tokens generated = those of the rounds (speculative modes) or their sum
 * (baselines generate as many, one per pass). */
void sim_run(enum sim_mode mode, const struct sim_costs *c, const struct sim_rounds *rounds,
             struct sim_result *out);

const char *sim_mode_name(enum sim_mode m);
bool sim_mode_parse(const char *s, enum sim_mode *out);

/* Reads the rounds from an edge trace (engine/trace.h events send_draft,
 * recv_final, recv_early, early_hit) and the prompt length (instant
 * "prompt", v = tokens). false with a line naming the file on bad input. */
bool sim_rounds_from_trace(const char *path, struct sim_rounds *out, char *err, size_t errlen);
/* Rounds for the baselines alone: n_tokens after a prompt of prompt_len
 * (as one round of n_tokens - 1 accepted: only the token count is used). */
bool sim_rounds_plain(int n_tokens, int prompt_len, struct sim_rounds *out, char *err,
                      size_t errlen);
void sim_rounds_free(struct sim_rounds *r);

#endif
