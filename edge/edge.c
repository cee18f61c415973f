#include "edge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../engine/forward.h"
#include "../engine/trace.h"
#include "link.h"
#include "../engine/clock.h"

/* Draft tokens with the distributions they were drawn from. */
struct draft {
    int n;
    int32_t *tok;            /* (max_gamma) */
    struct token_prob *dist; /* (max_gamma, vocab) */
    int *dist_n;             /* (max_gamma) */
};

struct edge {
    struct edge_config cfg;
    struct model *m;
    struct tokenizer *tok;
    struct threadpool *tp;
    struct forward_ctx *fc;
    struct kv_cache *kv;
    int32_t *kv_tokens; /* (ctx) the token at each position of kv */
    float *logits;      /* (vocab) */
    struct draft d[2];  /* the round in flight, and the pre-draft of the next */
    int max_gamma;      /* buffers hold this many draft tokens */
    struct link link;   /* unused in edge-ar */
    struct pace_profile pace;
    bool paced;
    struct trace *trace; /* NULL: not tracing */
    uint64_t round;     /* last round id sent; never reused on this connection */
};

static const char *mode_names[] = {"sd", "sd-ee", "cloud-ar", "cloud-ar-rpc", "edge-ar"};

int edge_mode_by_name(const char *name)
{
    for (int i = 0; i < (int)(sizeof mode_names / sizeof mode_names[0]); i++)
        if (!strcmp(name, mode_names[i]))
            return i;
    return -1;
}

const char *edge_mode_name(enum edge_mode m) { return mode_names[m]; }

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

static void notice(const struct edge *e, const char *fmt, ...)
{
    if (!e->cfg.log)
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    e->cfg.log(e->cfg.log_ctx, line);
}

/* ---- drafting ---- */

/* The generator that draws the draft token at position pos: a function of
 * the seed and the position alone. A pre-draft and a fresh draft from the
 * same text are then the same tokens, so the output never depends on when
 * FINAL arrived. Rejection sampling stays exact: the cloud looks at the
 * token of a position at most once (it stops at the first refusal, and the
 * next round starts after the token it put there), and a draw it never
 * looked at carries nothing into the committed text. The cloud draws its
 * own uniforms from a stream of the seed's that these never meet. */
static void position_rng(struct rng *g, uint64_t seed, int pos)
{
    rng_seed(g, seed ^ ((uint64_t)(pos + 1) * 0xd1b54a32d192ed03ull));
}

/* Drafts out->tok[out->n .. gamma) after seq[0 .. n): token j takes
 * position n + j and is written to seq[n + j] too (seq has room for
 * n + gamma). The draft KV keeps whatever prefix it shares with seq
 * (rollback is only truncation, DESIGN.md §3.4), so a refused draft or a
 * dropped pre-draft costs nothing to undo and finishing a pre-draft repeats
 * no work. interruptible (pre-drafting): stops before a token when the
 * cloud has something to say (FINAL, a newer EARLY, a drop), so that the
 * next round never waits for a pre-draft nobody may want. */
static bool draft_more(struct edge *e, int32_t *seq, int n, int gamma, struct draft *out,
                       bool interruptible, char *err, size_t errlen)
{
    int vocab = e->m->cfg.vocab;
    memcpy(seq + n, out->tok, sizeof *seq * out->n);
    while (out->n < gamma) {
        if (interruptible && link_pending(&e->link))
            return true;
        int len = n + out->n, keep = 0;
        if (len > e->kv->n_ctx)
            return fail(err, errlen, "the draft's context (%d) is full", e->kv->n_ctx);
        while (keep < e->kv->len && keep < len - 1 && e->kv_tokens[keep] == seq[keep])
            keep++;
        kv_truncate(e->kv, keep);
        memcpy(e->kv_tokens + keep, seq + keep, sizeof *seq * (len - keep));
        struct forward_request req = {seq + keep, len - keep, len - keep - 1, e->logits, NULL, NULL};
        struct pace_pass pp;
        pace_begin(&pp, e->paced ? &e->pace : NULL, len - keep, keep);
        if (!forward(e->fc, e->kv, &req, err, errlen))
            return false;
        pace_wait(&pp, 1.0);
        struct token_prob *dist = out->dist + (long)out->n * vocab;
        out->dist_n[out->n] = sampling_dist(&e->cfg.sampling, e->logits, vocab, dist);
        struct rng g;
        position_rng(&g, e->cfg.seed, len);
        seq[len] = out->tok[out->n] = sample_from(dist, out->dist_n[out->n], &g);
        out->n++;
    }
    return true;
}

/* ---- generation ---- */

struct run {
    struct edge *e;
    struct edge_result *res;
    Tandem__Mode mode;
    int32_t *seq; /* prompt + committed tokens; past them, drafts' scratch */
    int n_seq, n_gen, max_tokens;
    bool done;
    edge_tokens_fn fn;
    void *fn_ctx;
    double t0;
    int reconnects_left;
};

/* Commits tokens in order, stopping at max_tokens or after EOS. */
static void commit(struct run *r, const int32_t *ids, int n)
{
    int32_t eos = tokenizer_eos(r->e->tok);
    int k = 0;
    while (k < n && !r->done) {
        int32_t id = ids[k++];
        r->seq[r->n_seq++] = id;
        r->res->token_ms[r->res->n_ids] = (clock_now_s() - r->t0) * 1e3;
        r->res->ids[r->res->n_ids++] = id;
        r->n_gen++;
        r->done = r->n_gen >= r->max_tokens || (!r->e->cfg.ignore_eos && id == eos);
    }
    if (k > 0) {
        if (r->res->n_ids == k)
            r->res->ttft_ms = (clock_now_s() - r->t0) * 1e3;
        if (r->fn)
            r->fn(r->fn_ctx, r->res->ids + r->res->n_ids - k, k);
    }
}

static bool send_open(struct run *r, char *err, size_t errlen)
{
    struct edge *e = r->e;
    Tandem__Sampling s = TANDEM__SAMPLING__INIT;
    s.temperature = e->cfg.sampling.temp;
    s.top_k = e->cfg.sampling.top_k > 0 ? (uint32_t)e->cfg.sampling.top_k : 0;
    s.top_p = e->cfg.sampling.top_p;
    /* A session reopened mid-generation gets a stream of its own: replaying
     * the uniforms the committed text already used would tie new tokens to
     * old ones. */
    s.seed = r->n_gen ? e->cfg.seed ^ ((uint64_t)r->n_gen * 0x9e3779b97f4a7c15ull) : e->cfg.seed;
    Tandem__Open o = TANDEM__OPEN__INIT;
    o.n_prompt = r->n_seq;
    o.prompt = r->seq;
    o.sampling = &s;
    o.max_tokens = r->max_tokens - r->n_gen;
    o.mode = r->mode;
    o.stop_at_eos = !e->cfg.ignore_eos;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_OPEN;
    m.open = &o;
    return link_send(&e->link, &m, err, errlen);
}

/* A session on the cloud, its limits checked against the edge's. */
static bool open_session(struct edge *e, char *err, size_t errlen)
{
    if (!link_handshake(&e->link, err, errlen))
        return false;
    if ((uint32_t)e->cfg.gamma > e->link.cloud_gamma)
        return fail(err, errlen, "--gamma %d exceeds the cloud's limit of %u", e->cfg.gamma,
                    e->link.cloud_gamma);
    return true;
}

/* The cloud lost the session mid-generation (err says how): while
 * reconnects last, a new one that carries on from the committed text. */
static bool resume(struct run *r, char *err, size_t errlen)
{
    char why[512];
    snprintf(why, sizeof why, "%s", err);
    if (r->reconnects_left <= 0)
        return fail(err, errlen, "%s; %d tokens had been committed", why, r->n_gen);
    r->reconnects_left--;
    notice(r->e, "%s; opening a new session, carrying on after %d committed tokens", why, r->n_gen);
    if (!open_session(r->e, err, errlen))
        return false;
    r->res->reconnects++;
    return send_open(r, err, errlen);
}

static bool send_draft(struct edge *e, uint64_t round, int start, const struct draft *d, char *err,
                       size_t errlen)
{
    Tandem__Draft dr = TANDEM__DRAFT__INIT;
    dr.round = round;
    dr.start = start;
    dr.n_tokens = d->n;
    dr.tokens = d->tok;
    bool sampled = e->cfg.sampling.temp > 0 && d->n > 0;
    Tandem__TokenDist *dists = sampled ? calloc(d->n, sizeof *dists) : NULL;
    Tandem__TokenDist **ptrs = sampled ? calloc(d->n, sizeof *ptrs) : NULL;
    bool ok = !sampled || (dists && ptrs);
    for (int j = 0; ok && sampled && j < d->n; j++) {
        const struct token_prob *q = d->dist + (long)j * e->m->cfg.vocab;
        tandem__token_dist__init(&dists[j]);
        dists[j].n_ids = dists[j].n_probs = d->dist_n[j];
        dists[j].ids = malloc(sizeof(int32_t) * d->dist_n[j]);
        dists[j].probs = malloc(sizeof(float) * d->dist_n[j]);
        ok = dists[j].ids && dists[j].probs;
        for (int k = 0; ok && k < d->dist_n[j]; k++) {
            dists[j].ids[k] = q[k].id;
            dists[j].probs[k] = q[k].p;
        }
        ptrs[j] = &dists[j];
    }
    if (sampled && ok) {
        dr.n_dists = d->n;
        dr.dists = ptrs;
    }
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_DRAFT;
    m.draft = &dr;
    ok = ok ? link_send(&e->link, &m, err, errlen) : fail(err, errlen, "out of memory");
    for (int j = 0; dists && j < d->n; j++) {
        free(dists[j].ids);
        free(dists[j].probs);
    }
    free(dists);
    free(ptrs);
    return ok;
}

static bool cloud_error(const proto_msg *m, char *err, size_t errlen)
{
    return fail(err, errlen, "the cloud reports error %d: %s", (int)m->error->code, m->error->text);
}

/* Draft tokens for a round starting after n_gen generated tokens: γ, less
 * near max_tokens (the round itself adds one token), none in cloud-ar-rpc. */
static int round_gamma(const struct run *r, int n_gen)
{
    const struct edge *e = r->e;
    if (e->cfg.mode == EDGE_CLOUD_AR_RPC)
        return 0;
    int g = e->cfg.gamma, left = r->max_tokens - n_gen - 1;
    return g < left ? g : left > 0 ? left : 0;
}

/* An EARLY verdict (a', t') on draft cur: pre-draft the next round as if it
 * were final, after committed + d_1..d_a' + t' (in seq past the committed
 * tokens; FINAL writes the real ones over them). *made: a pre-draft, maybe
 * cut short, exists; none when the verdict would end the generation. */
static bool predraft(struct run *r, const struct draft *cur, const Tandem__Early *early,
                     struct draft *pre, bool *made, char *err, size_t errlen)
{
    struct edge *e = r->e;
    int a = (int)early->accepted, n_gen = r->n_gen + a + 1, n = r->n_seq + a + 1;
    memcpy(r->seq + r->n_seq, cur->tok, sizeof *cur->tok * a);
    r->seq[n - 1] = early->next_token;
    bool ends = n_gen >= r->max_tokens;
    for (int j = r->n_seq; j < n && !e->cfg.ignore_eos; j++)
        ends |= r->seq[j] == tokenizer_eos(e->tok);
    *made = false;
    if (ends)
        return true;
    double t = clock_now_s();
    int gamma = round_gamma(r, n_gen);
    pre->n = 0;
    trace_begin(e->trace, 0, (uint32_t)(e->round + 1), "predraft");
    bool ok = draft_more(e, r->seq, n, gamma, pre, true, err, errlen);
    trace_end(e->trace, 0, (uint32_t)(e->round + 1), "predraft");
    if (!ok)
        return false;
    r->res->draft_ms += (clock_now_s() - t) * 1e3;
    r->res->predraft_stops += pre->n < gamma;
    *made = true;
    return true;
}

/* sd, sd-ee and cloud-ar-rpc: rounds of DRAFT and FINAL. */
static bool run_rounds(struct run *r, char *err, size_t errlen)
{
    struct edge *e = r->e;
    struct edge_result *res = r->res;
    bool ee = e->cfg.mode == EDGE_SD_EE;
    struct draft *cur = &e->d[0], *pre = &e->d[1];
    bool use_pre = false;
    if (!send_open(r, err, errlen))
        return false;
    while (!r->done) {
        double t = clock_now_s();
        if (use_pre) { /* confirmed: finish it if FINAL cut it short */
            struct draft *x = cur;
            cur = pre;
            pre = x;
            res->predrafted += cur->n;
        } else {
            cur->n = 0;
        }
        trace_begin(e->trace, 0, (uint32_t)(e->round + 1), "draft");
        bool drafted = draft_more(e, r->seq, r->n_seq, round_gamma(r, r->n_gen), cur, false, err, errlen);
        trace_end(e->trace, 0, (uint32_t)(e->round + 1), "draft");
        if (!drafted)
            return false;
        res->draft_ms += (clock_now_s() - t) * 1e3;
        uint64_t round = ++e->round;
        /* The PING goes first so that its PONG does not wait for the pass. */
        if (!link_ping(&e->link, err, errlen) || !send_draft(e, round, r->n_seq, cur, err, errlen))
            return false;
        trace_instant(e->trace, 0, (uint32_t)round, "send_draft", cur->n);
        bool have_pre = false, early = false;
        int pre_a = -1;
        int32_t pre_t = -1;
        use_pre = false;
        for (;;) {
            proto_msg *m = NULL;
            enum link_status st = link_recv(&e->link, &m, &res->edge_idle_ms, err, errlen);
            if (st == LINK_FAILED)
                return false;
            if (st == LINK_LOST) { /* the round is gone with the session */
                if (!resume(r, err, errlen))
                    return false;
                break;
            }
            if (m->msg_case == TANDEM__ENVELOPE__MSG_ERROR) {
                bool stale = m->error->round != 0 && m->error->round < round;
                if (!stale) {
                    cloud_error(m, err, errlen);
                    proto_free(m);
                    return false;
                }
            } else if (m->msg_case == TANDEM__ENVELOPE__MSG_EARLY && m->early->round == round && ee &&
                       (int)m->early->accepted <= cur->n) {
                early = true;
                trace_instant(e->trace, 0, (uint32_t)round, "recv_early", (int64_t)m->early->accepted);
                if (!predraft(r, cur, m->early, pre, &have_pre, err, errlen)) {
                    proto_free(m);
                    return false;
                }
                pre_a = (int)m->early->accepted;
                pre_t = m->early->next_token;
            } else if (m->msg_case == TANDEM__ENVELOPE__MSG_FINAL && m->final->round == round) {
                int a = (int)m->final->accepted;
                int32_t next = m->final->next_token;
                trace_instant(e->trace, 0, (uint32_t)round, "recv_final", a);
                if (m->final->timings)
                    res->cloud_busy_ms += m->final->timings->verify_ms;
                proto_free(m);
                if (a > cur->n)
                    return fail(err, errlen, "the cloud accepted %d of %d draft tokens", a, cur->n);
                res->rounds++;
                res->accepted += a;
                res->early_rounds += early;
                for (int j = 0; j < cur->n; j++) {
                    res->offered_at[j]++;
                    res->accepted_at[j] += j < a;
                }
                commit(r, cur->tok, a);
                commit(r, &next, 1);
                use_pre = have_pre && pre_a == a && pre_t == next;
                res->early_hits += use_pre;
                if (early)
                    trace_instant(e->trace, 0, (uint32_t)round, "early_hit", use_pre);
                break;
            }
            proto_free(m); /* a stale message, of a finished round or a lost session: dropped */
        }
    }
    return true;
}

static bool run_cloud_ar(struct run *r, char *err, size_t errlen)
{
    struct link *l = &r->e->link;
    if (!link_ping(l, err, errlen) || !send_open(r, err, errlen))
        return false;
    while (!r->done) {
        proto_msg *m = NULL;
        enum link_status st = link_recv(l, &m, &r->res->edge_idle_ms, err, errlen);
        if (st == LINK_FAILED)
            return false;
        if (st == LINK_LOST) {
            if (!resume(r, err, errlen))
                return false;
            continue;
        }
        bool ok = true;
        if (m->msg_case == TANDEM__ENVELOPE__MSG_ERROR) {
            ok = cloud_error(m, err, errlen);
        } else if (m->msg_case == TANDEM__ENVELOPE__MSG_TOKENS) {
            r->res->cloud_busy_ms += m->tokens->busy_ms;
            commit(r, m->tokens->tokens, (int)m->tokens->n_tokens);
            r->done |= m->tokens->done;
        }
        proto_free(m);
        if (!ok)
            return false;
    }
    return true;
}

static bool run_edge_ar(struct run *r, char *err, size_t errlen)
{
    while (!r->done) {
        double t = clock_now_s();
        struct draft *d = &r->e->d[0];
        d->n = 0;
        trace_begin(r->e->trace, 0, 0, "draft");
        bool ok = draft_more(r->e, r->seq, r->n_seq, 1, d, false, err, errlen);
        trace_end(r->e->trace, 0, 0, "draft");
        if (!ok)
            return false;
        r->res->draft_ms += (clock_now_s() - t) * 1e3;
        commit(r, d->tok, 1);
    }
    return true;
}

/* Before a generation: what the cloud said while the edge was away (a
 * drop, an eviction, leftovers) is read, and a lost session replaced. */
static bool ready_session(struct edge *e, char *err, size_t errlen)
{
    char why[512] = "the last generation lost the session";
    while (link_pending(&e->link)) {
        proto_msg *m = NULL;
        enum link_status st = link_recv(&e->link, &m, NULL, why, sizeof why);
        if (st == LINK_FAILED)
            return fail(err, errlen, "%s", why);
        if (st == LINK_MESSAGE)
            proto_free(m);
    }
    if (e->link.lost) {
        notice(e, "%s; opening a new session", why);
        if (!open_session(e, err, errlen))
            return false;
    }
    link_rtt_reset(&e->link);
    return true;
}

bool edge_generate(struct edge *e, const int32_t *prompt, int n_prompt, int max_tokens,
                   edge_tokens_fn fn, void *fn_ctx, struct edge_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    int vocab = e->m->cfg.vocab;
    bool cloud = e->cfg.mode != EDGE_AR;
    if (n_prompt < 1)
        return fail(err, errlen, "empty prompt");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= vocab)
            return fail(err, errlen, "prompt token %d is outside the vocabulary", prompt[i]);
    if (cloud && !ready_session(e, err, errlen))
        return false;
    int ctx = e->kv->n_ctx;
    if (cloud && (uint32_t)ctx > e->link.cloud_ctx)
        ctx = (int)e->link.cloud_ctx;
    if (n_prompt + max_tokens > ctx)
        return fail(err, errlen, "prompt (%d tokens) + %d to generate exceed the context of %d%s",
                    n_prompt, max_tokens, ctx, cloud ? " (draft's and cloud's)" : "");
    res->max_gamma = e->max_gamma;
    res->ids = malloc(sizeof *res->ids * (max_tokens + 1));
    res->token_ms = malloc(sizeof *res->token_ms * (max_tokens + 1));
    res->offered_at = calloc(e->max_gamma + 1, sizeof *res->offered_at);
    res->accepted_at = calloc(e->max_gamma + 1, sizeof *res->accepted_at);
    Tandem__Mode mode = e->cfg.mode == EDGE_SD      ? TANDEM__MODE__MODE_SD
                        : e->cfg.mode == EDGE_SD_EE ? TANDEM__MODE__MODE_SD_EE
                        : e->cfg.mode == EDGE_CLOUD_AR ? TANDEM__MODE__MODE_CLOUD_AR
                                                       : TANDEM__MODE__MODE_CLOUD_AR_RPC;
    struct run r = {e, res, mode, malloc(sizeof(int32_t) * (n_prompt + max_tokens + e->max_gamma + 2)),
                    n_prompt, 0, max_tokens, max_tokens == 0, fn, fn_ctx, clock_now_s(), e->cfg.reconnects};
    if (!res->ids || !res->token_ms || !res->offered_at || !res->accepted_at || !r.seq) {
        free(r.seq);
        return fail(err, errlen, "out of memory");
    }
    memcpy(r.seq, prompt, sizeof *prompt * n_prompt);
    trace_instant(e->trace, 0, (uint32_t)e->round, "prompt", n_prompt);
    bool ok = !cloud                         ? run_edge_ar(&r, err, errlen)
              : e->cfg.mode == EDGE_CLOUD_AR ? run_cloud_ar(&r, err, errlen)
                                             : run_rounds(&r, err, errlen);
    res->wall_s = clock_now_s() - r.t0;
    if (cloud) {
        res->rtt_samples = e->link.rtt_n;
        res->rtt_ms = e->link.rtt_n ? e->link.rtt_sum_ms / e->link.rtt_n : 0;
        res->rtt_min_ms = e->link.rtt_min_ms;
    }
    free(r.seq);
    return ok;
}

/* ---- setup ---- */

struct edge *edge_open(const struct edge_config *cfg, char *err, size_t errlen)
{
    struct edge *e = calloc(1, sizeof *e);
    if (!e) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    if (e->cfg.gamma <= 0)
        e->cfg.gamma = 4;
    if (e->cfg.timeout_ms <= 0)
        e->cfg.timeout_ms = 30000;
    if (e->cfg.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        e->cfg.threads = n > 0 ? (int)n : 1;
    }
    if (cfg->pace) {
        e->pace = *cfg->pace;
        e->paced = true;
    }
    if (cfg->trace && !(e->trace = trace_open(cfg->trace, "edge", err, errlen)))
        goto fail;
    if (!(e->m = model_load(cfg->model, err, errlen)) || !(e->tok = tokenizer_load(e->m->file, err, errlen)) ||
        (!cfg->no_repack && model_repack(e->m, err, errlen) < 0))
        goto fail;
    const struct model_config *mc = &e->m->cfg;
    if (e->cfg.ctx <= 0)
        e->cfg.ctx = mc->ctx_train < 2048 ? mc->ctx_train : 2048;
    e->max_gamma = e->cfg.gamma;
    e->tp = threadpool_new(e->cfg.threads);
    e->fc = e->tp ? forward_ctx_new(e->m, e->tp, 32, e->cfg.ctx) : NULL;
    e->kv = kv_new(mc, e->cfg.ctx);
    e->kv_tokens = malloc(sizeof *e->kv_tokens * e->cfg.ctx);
    e->logits = malloc(sizeof(float) * mc->vocab);
    bool ok = e->fc && e->kv && e->kv_tokens && e->logits;
    for (int i = 0; ok && i < 2; i++) {
        e->d[i].tok = malloc(sizeof(int32_t) * e->max_gamma);
        e->d[i].dist_n = malloc(sizeof(int) * e->max_gamma);
        e->d[i].dist = malloc(sizeof(struct token_prob) * e->max_gamma * mc->vocab);
        ok = e->d[i].tok && e->d[i].dist_n && e->d[i].dist;
    }
    if (!ok) {
        fail(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->mode == EDGE_AR)
        return e;
    Tandem__Fingerprint fp = TANDEM__FINGERPRINT__INIT;
    fp.tokenizer_hash = tokenizer_hash(e->tok);
    fp.vocab = mc->vocab;
    fp.bos = tokenizer_bos(e->tok);
    fp.eos = tokenizer_eos(e->tok);
    if (!link_open(&e->link, cfg->zmq_ctx, cfg->endpoint, e->cfg.timeout_ms, &fp,
                   (uint32_t)e->max_gamma, err, errlen) ||
        !open_session(e, err, errlen))
        goto fail;
    return e;
fail:
    edge_close(e);
    return NULL;
}

void edge_set_sampling(struct edge *e, const struct sampling *s, uint64_t seed)
{
    e->cfg.sampling = *s;
    e->cfg.seed = seed;
}

const struct tokenizer *edge_tokenizer(const struct edge *e) { return e->tok; }

void edge_result_free(struct edge_result *r)
{
    free(r->ids);
    free(r->token_ms);
    free(r->offered_at);
    free(r->accepted_at);
    memset(r, 0, sizeof *r);
}

void edge_close(struct edge *e)
{
    if (!e)
        return;
    link_close(&e->link);
    for (int i = 0; i < 2; i++) {
        free(e->d[i].tok);
        free(e->d[i].dist_n);
        free(e->d[i].dist);
    }
    free(e->logits);
    free(e->kv_tokens);
    kv_free(e->kv);
    forward_ctx_free(e->fc);
    threadpool_free(e->tp);
    tokenizer_free(e->tok);
    model_free(e->m);
    trace_close(e->trace);
    free(e);
}
