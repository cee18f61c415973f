/* The discrete-event latency model (see sim.h). */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prof.h"

static const char *const mode_names[SIM_N_MODES] = {"cloud-ar", "cloud-ar-rpc", "edge-ar", "sd",
                                                    "sd-ee"};

const char *sim_mode_name(enum sim_mode m) { return m < SIM_N_MODES ? mode_names[m] : "?"; }

bool sim_mode_parse(const char *s, enum sim_mode *out)
{
    for (int m = 0; m < SIM_N_MODES; m++) {
        if (strcmp(s, mode_names[m]) == 0) {
            *out = (enum sim_mode)m;
            return true;
        }
    }
    return false;
}

static double max2(double a, double b) { return a > b ? a : b; }

/* One-way time of a message of `bytes`. */
static double wire_ms(const struct sim_costs *c, double bytes)
{
    return c->rtt_ms / 2 + (c->rate_bps > 0 ? 8e3 * bytes / c->rate_bps : 0);
}

static double edge_pass(const struct sim_costs *c, int rows, int ctx)
{
    return pace_pass_ms(&c->edge, rows, ctx);
}

static double cloud_pass(const struct sim_costs *c, int rows, int ctx)
{
    return pace_pass_ms(&c->cloud, rows, ctx);
}

/* gamma one-row edge passes from context ctx. */
static double draft_ms(const struct sim_costs *c, int gamma, int ctx)
{
    double t = 0;
    for (int i = 0; i < gamma; i++)
        t += edge_pass(c, 1, ctx + i);
    return t;
}

static int total_tokens(const struct sim_rounds *rs)
{
    int n = 0;
    for (int i = 0; i < rs->n; i++)
        n += rs->r[i].accepted + 1;
    return n;
}

static void run_baseline(enum sim_mode mode, const struct sim_costs *c, int p, int n,
                         struct sim_result *out)
{
    double first, t;
    switch (mode) {
    case SIM_EDGE_AR:
        first = t = edge_pass(c, p, 0);
        for (int i = 1; i < n; i++)
            t += edge_pass(c, 1, p + i - 1);
        out->cloud_busy_ms = 0;
        break;
    case SIM_CLOUD_AR:
    case SIM_CLOUD_AR_RPC:
    default: {
        /* OPEN prefills all but the last prompt token; every token, the
         * first included, is then a one-row pass. */
        double prefill = p > 1 ? cloud_pass(c, p - 1, 0) : 0;
        double busy = prefill + cloud_pass(c, 1, p - 1);
        first = t = wire_ms(c, 64 + 4.0 * p) + busy + wire_ms(c, 32);
        for (int i = 1; i < n; i++) {
            double pass = cloud_pass(c, 1, p + i - 1);
            busy += pass;
            /* streaming: passes run back to back, the trip is paid once */
            t += mode == SIM_CLOUD_AR ? pass : wire_ms(c, 32) + pass + wire_ms(c, 32);
        }
        out->cloud_busy_ms = busy;
        break;
    }
    }
    out->ttft_ms = first;
    out->total_ms = t;
}

static void run_speculative(bool early_exits, const struct sim_costs *c,
                            const struct sim_rounds *rs, struct sim_result *out)
{
    int p = rs->prompt_len, ctx = p;
    /* OPEN goes out at 0 and the cloud prefills all but the last prompt
     * token; the edge's first draft pass takes the whole prompt. */
    double prefill = p > 1 ? cloud_pass(c, p - 1, 0) : 0;
    double cloud_free = wire_ms(c, 64 + 4.0 * p) + prefill;
    double busy = prefill;
    double edge_t = 0;
    bool have_predraft = false; /* round i's draft is already made */
    double predraft_done = 0;
    out->ttft_ms = -1;
    for (int i = 0; i < rs->n; i++) {
        const struct sim_round *r = &rs->r[i];
        double draft = i == 0 && r->gamma > 0 ? edge_pass(c, p, 0) + draft_ms(c, r->gamma - 1, ctx)
                                              : draft_ms(c, r->gamma, ctx);
        double send = have_predraft ? max2(edge_t, predraft_done) : edge_t + draft;
        double start = max2(send + wire_ms(c, 64 + 8.0 * r->gamma), cloud_free);
        double verify = cloud_pass(c, r->gamma + 1, ctx);
        busy += verify;
        cloud_free = start + verify;
        double final_at = cloud_free + wire_ms(c, 64);
        if (out->ttft_ms < 0)
            out->ttft_ms = final_at;
        ctx += r->accepted + 1;
        have_predraft = false;
        edge_t = final_at;
        if (early_exits && r->early && i + 1 < rs->n) {
            double early_at = start + c->exit_fraction * verify + wire_ms(c, 64);
            double pre_start = max2(early_at, send);
            int next_gamma = rs->r[i + 1].gamma;
            if (r->early_hit) {
                have_predraft = true;
                predraft_done = pre_start + draft_ms(c, next_gamma, ctx);
            } else {
                /* Dropped at FINAL, once the pass under way ends. */
                double one = edge_pass(c, 1, ctx);
                int passes = 0;
                if (final_at > pre_start && one > 0) {
                    passes = (int)((final_at - pre_start) / one);
                    if (pre_start + passes * one < final_at)
                        passes++;
                    if (passes > next_gamma)
                        passes = next_gamma;
                }
                edge_t = max2(final_at, pre_start + passes * one);
            }
        }
    }
    out->total_ms = edge_t;
    out->cloud_busy_ms = busy;
}

void sim_run(enum sim_mode mode, const struct sim_costs *c, const struct sim_rounds *rounds,
             struct sim_result *out)
{
    memset(out, 0, sizeof *out);
    out->tokens = total_tokens(rounds);
    if (out->tokens == 0)
        return;
    if (mode == SIM_SD || mode == SIM_SD_EE)
        run_speculative(mode == SIM_SD_EE, c, rounds, out);
    else
        run_baseline(mode, c, rounds->prompt_len, out->tokens, out);
    out->ms_per_token = out->total_ms / out->tokens;
}

bool sim_rounds_from_trace(const char *path, struct sim_rounds *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct prof p = {0};
    if (!prof_read(&p, path, PROF_EDGE, -1, err, errlen)) {
        prof_free(&p);
        return false;
    }
    out->r = calloc(p.n_events ? p.n_events : 1, sizeof *out->r);
    if (!out->r) {
        snprintf(err, errlen, "out of memory");
        prof_free(&p);
        return false;
    }
    /* Rounds are identified by their id; a round begins at its send_draft. */
    struct sim_round *cur = NULL;
    uint32_t cur_id = 0;
    bool ok = true;
    for (size_t i = 0; i < p.n_events && ok; i++) {
        const struct prof_event *e = &p.events[i];
        if (e->ph != 'i')
            continue;
        if (strcmp(e->ev, "prompt") == 0) {
            out->prompt_len = (int)e->v;
        } else if (strcmp(e->ev, "send_draft") == 0) {
            cur = &out->r[out->n++];
            cur_id = e->round;
            *cur = (struct sim_round){.gamma = (int)e->v, .accepted = -1};
        } else if (cur && e->round == cur_id) {
            if (strcmp(e->ev, "recv_final") == 0)
                cur->accepted = (int)e->v;
            else if (strcmp(e->ev, "recv_early") == 0)
                cur->early = true;
            else if (strcmp(e->ev, "early_hit") == 0)
                cur->early_hit = e->v != 0;
        }
        if (cur && (cur->gamma < 0 || cur->gamma > 1024 || cur->accepted > cur->gamma)) {
            snprintf(err, errlen, "%s: round %u: gamma %d, accepted %d are inconsistent", path,
                     cur_id, cur->gamma, cur->accepted);
            ok = false;
        }
    }
    /* A round without its FINAL (the run was cut short) is not counted. */
    if (ok && out->n > 0 && out->r[out->n - 1].accepted < 0)
        out->n--;
    for (int i = 0; ok && i < out->n; i++) {
        if (out->r[i].accepted < 0) {
            snprintf(err, errlen, "%s: round %d has no recv_final", path, i);
            ok = false;
        }
    }
    if (ok && out->n == 0) {
        snprintf(err, errlen, "%s: no complete rounds (send_draft ... recv_final)", path);
        ok = false;
    }
    if (ok && out->prompt_len <= 0) {
        snprintf(err, errlen, "%s: no \"prompt\" event with the prompt length", path);
        ok = false;
    }
    prof_free(&p);
    if (!ok)
        sim_rounds_free(out);
    return ok;
}

bool sim_rounds_plain(int n_tokens, int prompt_len, struct sim_rounds *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->r = calloc(1, sizeof *out->r);
    if (!out->r) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    out->r[0] = (struct sim_round){.gamma = n_tokens - 1, .accepted = n_tokens - 1};
    out->n = 1;
    out->prompt_len = prompt_len;
    return true;
}

void sim_rounds_free(struct sim_rounds *r)
{
    free(r->r);
    memset(r, 0, sizeof *r);
}
