/* The draft-side session (DESIGN.md §1): a C library an application links
 * (a robot controller) and the `tandem edge` command is a thin user of.
 *
 *   struct edge *e = edge_open(&cfg, err, sizeof err);   // model + handshake
 *   edge_generate(e, prompt, n, max_tokens, on_tokens, ctx, &res, err, sizeof err);
 *   edge_result_free(&res);
 *   edge_close(e);
 *
 * Modes: sd drafts γ tokens, sends them and waits for the cloud's FINAL;
 * sd-ee also pre-drafts the next round from the cloud's EARLY verdict, gives
 * way the moment FINAL arrives, and sends the pre-draft at once when FINAL
 * confirms that verdict; cloud-ar lets the cloud generate alone and stream;
 * cloud-ar-rpc asks for one token per request; edge-ar runs the draft alone
 * (no cloud). With greedy decoding the tokens of sd, sd-ee and both cloud
 * modes are exactly the target's own; with sampling, those of sd and sd-ee
 * have exactly the target's distribution, and for one seed sd and sd-ee give
 * the same tokens (pre-drafting never changes output, however the messages
 * are timed).
 *
 * The session lives in the cloud process. If the cloud restarts, the
 * connection drops or the cloud evicts the session mid-generation, the edge
 * says so ("cloud at tcp://… restarted: session unknown") and, while
 * cfg.reconnects last, opens a new session (HELLO, then OPEN with the text
 * committed so far) and carries on; otherwise edge_generate fails with that
 * message, keeps the committed tokens in the result, and the next
 * edge_generate (say, with prompt + those tokens) opens a new session. */
#ifndef TANDEM_EDGE_EDGE_H
#define TANDEM_EDGE_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/pace.h"
#include "../engine/sample.h"
#include "../weights/tokenizer.h"

enum edge_mode { EDGE_SD, EDGE_SD_EE, EDGE_CLOUD_AR, EDGE_CLOUD_AR_RPC, EDGE_AR };

/* "sd", "sd-ee", "cloud-ar", "cloud-ar-rpc", "edge-ar"; -1 for any other name. */
int edge_mode_by_name(const char *name);
const char *edge_mode_name(enum edge_mode m);

struct edge_config {
    const char *model;      /* the draft GGUF (its tokenizer names the pair) */
    const char *endpoint;   /* tcp://host:5555, ipc://...; unused in edge-ar */
    void *zmq_ctx;          /* optional: the application's ZeroMQ context, so that an
                               inproc:// endpoint reaches its own sockets; NULL: the
                               edge's own */
    enum edge_mode mode;
    int gamma;              /* draft tokens per round (default 4) */
    struct sampling sampling;
    uint64_t seed;
    int threads;            /* default: all cores */
    int ctx;                /* draft context (default min(model's, 2048)) */
    int timeout_ms;         /* longest wait for the cloud (default 30000) */
    bool ignore_eos;        /* keep going after EOS */
    bool no_repack;         /* keep the weights mapped (model_repack is the default) */
    int reconnects;         /* new sessions edge_generate may open after losing one (default 0) */
    const struct pace_profile *pace; /* optional: every draft pass takes at least the
                                        profile's time (engine/pace.h; copied at open) */
    const char *trace;      /* optional: write timestamped events here (engine/trace.h) */
    /* Optional: one line for each event worth telling a user (a lost
     * session, a reconnection). */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
};

/* Receives tokens as they are committed (in order, each once). */
typedef void (*edge_tokens_fn)(void *ctx, const int32_t *ids, int n);

struct edge_result {
    int32_t *ids;           /* generated tokens (malloc'd) */
    int n_ids;
    double *token_ms;       /* (n_ids) when each token was committed, ms after the first request */
    double wall_s;          /* first request to last token */
    double ttft_ms;         /* first request to first token */
    int rounds;             /* DRAFT/FINAL rounds (cloud-ar: 0) */
    long accepted;          /* draft tokens accepted, all rounds */
    int max_gamma;          /* length of the arrays below */
    long *offered_at;       /* (max_gamma) rounds whose draft had a token at position i */
    long *accepted_at;      /* (max_gamma) rounds whose token at position i was accepted */
    int early_rounds;       /* rounds that received an EARLY */
    int early_hits;         /* rounds started from a pre-draft the FINAL confirmed */
    long predrafted;        /* draft tokens sent that were pre-drafted during a pass */
    int predraft_stops;     /* pre-drafts cut short by a message from the cloud */
    double edge_idle_ms;    /* waiting for the cloud, doing nothing */
    double cloud_busy_ms;   /* the cloud's pass time, as it reports */
    double draft_ms;        /* drafting and pre-drafting */
    double rtt_ms;          /* mean PING round trip (one PING before each request) */
    double rtt_min_ms;
    int rtt_samples;
    int reconnects;         /* new sessions opened after the cloud lost one */
};

struct edge;

/* Loads the draft; unless the mode is edge-ar, connects and shakes hands
 * (a refused pair gives NULL and the cloud's reason in err). */
struct edge *edge_open(const struct edge_config *cfg, char *err, size_t errlen);
/* Generates up to max_tokens after prompt (stops after EOS unless
 * ignore_eos). false and err on a cloud error or timeout; res then holds
 * what was committed before. */
bool edge_generate(struct edge *e, const int32_t *prompt, int n_prompt, int max_tokens,
                   edge_tokens_fn fn, void *fn_ctx, struct edge_result *res, char *err,
                   size_t errlen);
/* Sampling for the following edge_generate calls (the seed included). */
void edge_set_sampling(struct edge *e, const struct sampling *s, uint64_t seed);
const struct tokenizer *edge_tokenizer(const struct edge *e);
void edge_result_free(struct edge_result *r);
void edge_close(struct edge *e);

#endif
