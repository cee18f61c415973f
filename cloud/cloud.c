#include "cloud.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "../engine/exits.h"
#include "../engine/trace.h"
#include "../engine/forward.h"
#include "../engine/sample.h"
#include "../engine/verdict.h"
#include "../proto/codec.h"
#include "../weights/tokenizer.h"
#include "verify.h"
#include "../engine/clock.h"

#define MAX_IDENTITY 255
/* The most rows of a CUDA pass that is batch invariant for every weight
 * type (CUDA_GEMV_MAX_ROWS in kernels/cuda/ops.h). */
#define CLOUD_CUDA_MAX_ROWS 16

struct session {
    uint8_t id[MAX_IDENTITY];
    size_t id_len;
    bool open;
    Tandem__Mode mode;
    struct sampling sampling;
    struct rng rng;
    bool stop_at_eos;
    struct kv_cache *kv; /* holds tokens[0 .. n_tokens-1): the last committed token is fed next */
    int32_t *tokens;     /* committed: prompt + generated, (ctx) */
    int n_tokens;
    uint64_t last_round;
    uint64_t serial;     /* the session's number in traces */
    int ar_left;         /* MODE_CLOUD_AR: tokens still to stream */
    double last_active;
};

struct cloud {
    struct cloud_config cfg;
    struct model *m;
    struct tokenizer *tok;
    struct exit_set exits;
    struct exit_eval *ev;
    struct threadpool *tp;
    struct forward_ctx *fc;
    float *logits;           /* (max_gamma+1, vocab) */
    struct verifier vf;      /* rejection sampling scratch; its dist also serves greedy rows */
    Tandem__Fingerprint fp;
    uint32_t *exit_layers;
    struct session **sessions; /* (max_sessions), NULL = free slot */
    struct proto_limits lim;
    void *zctx, *sock;
    struct pace_profile pace;
    bool paced;
    struct trace *trace;     /* NULL: not tracing */
    uint64_t sessions_opened;
};

static void logf_(const struct cloud *c, const char *fmt, ...)
{
    if (!c->cfg.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tandem cloud: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- sending ---- */

static void send_to(struct cloud *c, const uint8_t *id, size_t id_len, proto_msg *m)
{
    size_t len;
    uint8_t *buf = proto_encode(m, &len);
    if (!buf)
        return;
    if (zmq_send(c->sock, id, id_len, ZMQ_SNDMORE) >= 0)
        zmq_send(c->sock, buf, len, 0);
    free(buf);
}

static void send_error(struct cloud *c, const uint8_t *id, size_t id_len, Tandem__ErrorCode code,
                       uint64_t round, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Tandem__Error e = TANDEM__ERROR__INIT;
    e.code = code;
    e.text = text;
    e.round = round;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_ERROR;
    m.error = &e;
    logf_(c, "ERROR %d to a client: %s", (int)code, text);
    send_to(c, id, id_len, &m);
}

/* ---- sessions ---- */

static struct session **find_slot(struct cloud *c, const uint8_t *id, size_t id_len)
{
    for (int i = 0; i < c->cfg.max_sessions; i++) {
        struct session *s = c->sessions[i];
        if (s && s->id_len == id_len && !memcmp(s->id, id, id_len))
            return &c->sessions[i];
    }
    return NULL;
}

static void session_free(struct session *s)
{
    if (!s)
        return;
    kv_free(s->kv);
    free(s->tokens);
    free(s);
}

static void evict(struct cloud *c, struct session **slot, Tandem__ErrorCode code, const char *why)
{
    struct session *s = *slot;
    send_error(c, s->id, s->id_len, code, s->last_round, "%s", why);
    session_free(s);
    *slot = NULL;
}

static void evict_idle(struct cloud *c, double now)
{
    for (int i = 0; i < c->cfg.max_sessions; i++) {
        struct session *s = c->sessions[i];
        if (s && now - s->last_active > c->cfg.idle_s) {
            char why[96];
            snprintf(why, sizeof why, "session closed after %.0f s idle (the cloud's limit)",
                     c->cfg.idle_s);
            evict(c, &c->sessions[i], TANDEM__ERROR_CODE__ERROR_IDLE, why);
        }
    }
}

static void on_hello(struct cloud *c, const uint8_t *id, size_t id_len, const Tandem__Hello *h)
{
    const Tandem__Fingerprint *f = h->fingerprint;
    char reason[256] = "";
    if (f->tokenizer_hash != c->fp.tokenizer_hash)
        snprintf(reason, sizeof reason,
                 "tokenizers differ (draft %016llx, target %016llx): the draft must share the "
                 "target's tokenizer",
                 (unsigned long long)f->tokenizer_hash, (unsigned long long)c->fp.tokenizer_hash);
    else if (f->vocab != c->fp.vocab)
        snprintf(reason, sizeof reason, "vocabulary sizes differ (draft %u, target %u)", f->vocab,
                 c->fp.vocab);
    else if (f->bos != c->fp.bos || f->eos != c->fp.eos)
        snprintf(reason, sizeof reason, "BOS/EOS differ (draft %d/%d, target %d/%d)", f->bos, f->eos,
                 c->fp.bos, c->fp.eos);
    struct session **slot = find_slot(c, id, id_len);
    if (!reason[0] && !slot) { /* a new session needs a free slot */
        for (int i = 0; i < c->cfg.max_sessions && !slot; i++)
            if (!c->sessions[i])
                slot = &c->sessions[i];
        if (!slot)
            snprintf(reason, sizeof reason, "server full (%d sessions, the cloud's limit)",
                     c->cfg.max_sessions);
        else if (!(*slot = calloc(1, sizeof **slot)))
            snprintf(reason, sizeof reason, "out of memory");
    }
    Tandem__Welcome w = TANDEM__WELCOME__INIT;
    w.accepted = !reason[0];
    w.reason = reason;
    if (w.accepted) {
        struct session *s = *slot;
        kv_free(s->kv);
        free(s->tokens);
        *s = (struct session){.id_len = id_len, .last_active = clock_now_s()};
        memcpy(s->id, id, id_len);
        w.fingerprint = &c->fp;
        w.max_context = c->cfg.ctx;
        w.max_gamma = c->cfg.max_gamma;
        w.n_exit_layers = c->exits.n;
        w.exit_layers = c->exit_layers;
    }
    logf_(c, "HELLO from %s: %s", h->client[0] ? h->client : "a client",
          w.accepted ? "welcome" : reason);
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_WELCOME;
    m.welcome = &w;
    send_to(c, id, id_len, &m);
}

static void on_open(struct cloud *c, struct session **slot, const Tandem__Open *o)
{
    struct session *s = *slot;
    if (o->n_prompt + 1 > (size_t)c->cfg.ctx) {
        send_error(c, s->id, s->id_len, TANDEM__ERROR_CODE__ERROR_CONTEXT_FULL, 0,
                   "prompt of %zu tokens leaves no room in the context of %d", o->n_prompt,
                   c->cfg.ctx);
        return;
    }
    if (!s->kv)
        s->kv = kv_new(&c->m->cfg, c->cfg.ctx);
    if (!s->tokens)
        s->tokens = malloc(sizeof *s->tokens * c->cfg.ctx);
    if (!s->kv || !s->tokens) {
        evict(c, slot, TANDEM__ERROR_CODE__ERROR_INTERNAL, "out of memory for the session's cache");
        return;
    }
    kv_truncate(s->kv, 0);
    memcpy(s->tokens, o->prompt, sizeof *s->tokens * o->n_prompt);
    s->n_tokens = (int)o->n_prompt;
    s->mode = o->mode;
    s->stop_at_eos = o->stop_at_eos;
    s->sampling = (struct sampling){0.0f, 0, 1.0f};
    uint64_t seed = 0;
    if (o->sampling) {
        s->sampling.temp = o->sampling->temperature;
        s->sampling.top_k = (int)o->sampling->top_k;
        s->sampling.top_p = o->sampling->top_p > 0 ? o->sampling->top_p : 1.0f;
        seed = o->sampling->seed;
    }
    rng_seed(&s->rng, seed);
    s->last_round = 0;
    s->open = true;
    s->ar_left = s->mode == TANDEM__MODE__MODE_CLOUD_AR ? (int)o->max_tokens : 0;
    /* Prefill all but the last prompt token now: the first round feeds it. */
    char err[256];
    struct forward_request req = {s->tokens, s->n_tokens - 1, s->n_tokens - 1, NULL, NULL, NULL};
    struct pace_pass pp;
    s->serial = ++c->sessions_opened;
    pace_begin(&pp, c->paced ? &c->pace : NULL, s->n_tokens - 1, 0);
    trace_begin(c->trace, s->serial, 0, "prefill");
    if (s->n_tokens > 1 && !forward(c->fc, s->kv, &req, err, sizeof err)) {
        evict(c, slot, TANDEM__ERROR_CODE__ERROR_INTERNAL, err);
        return;
    }
    if (s->n_tokens > 1)
        pace_wait(&pp, 1.0);
    trace_end(c->trace, s->serial, 0, "prefill");
    trace_instant(c->trace, s->serial, 0, "prompt", s->n_tokens);
    logf_(c, "OPEN: %d prompt tokens, mode %d, temp %g", s->n_tokens, (int)s->mode, s->sampling.temp);
}

/* ---- verification ---- */

struct early_ctx {
    struct cloud *c;
    struct session *s;
    const Tandem__Draft *d;
    struct pace_pass pace;
    double pass_t0, early_t;
    bool sent;
    struct verdict last;
};

/* Inside the pass, right after an exit's layer: the provisional verdict the
 * final one would be if the exit were the last layer, sent at once when the
 * exit is confident enough (and again only if a later exit changes it).
 * Greedy: from the exit's argmaxes. Sampling: rejection sampling on the
 * exit's logits with a copy of the session's generator, so it draws the very
 * uniforms FINAL will draw and agrees with FINAL wherever the exit agrees
 * with the last layer. Either way the confidence is the exit's certainty on
 * the rows the verdict rests on. */
static void on_exit_result(void *ctx, int exit, int first_row, int n_rows,
                           const struct exit_result *res, const float *logits)
{
    struct early_ctx *e = ctx;
    int gamma = (int)e->d->n_tokens;
    if (first_row != 0 || n_rows != gamma + 1)
        return; /* a verify pass is one chunk; anything else is not a round */
    int32_t target[n_rows];
    float prob[n_rows];
    for (int r = 0; r < n_rows; r++) {
        target[r] = res[r].token;
        prob[r] = res[r].prob;
    }
    struct verdict v;
    if (logits) {
        struct rng copy = e->s->rng;
        v = verify_sampled(&e->c->vf, &e->s->sampling, logits, e->d, &copy);
    } else {
        v = verdict_greedy(e->d->tokens, target, gamma);
    }
    float conf = verdict_confidence(prob, v);
    const struct exit_head *h = &e->c->exits.heads[exit];
    if (conf < h->threshold || (e->sent && v.accepted == e->last.accepted && v.next == e->last.next))
        return;
    /* A paced pass reaches layer l of L at (l+1)/L of its time. */
    pace_wait(&e->pace, (double)(h->layer + 1) / e->c->m->cfg.n_layers);
    trace_instant(e->c->trace, e->s->serial, (uint32_t)e->d->round, "send_early", h->layer);
    Tandem__Early msg = TANDEM__EARLY__INIT;
    msg.round = e->d->round;
    msg.exit_layer = h->layer;
    msg.accepted = v.accepted;
    msg.next_token = v.next;
    msg.confidence = conf;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_EARLY;
    m.early = &msg;
    send_to(e->c, e->s->id, e->s->id_len, &m);
    if (!e->sent)
        e->early_t = clock_now_s();
    e->sent = true;
    e->last = v;
}

/* One pass over [last committed, draft...]; commits the verdict. false when
 * the session was evicted. */
static bool verify(struct cloud *c, struct session **slot, const Tandem__Draft *d, double received,
                   struct verdict *out, Tandem__CloudTimings *t)
{
    struct session *s = *slot;
    int gamma = (int)d->n_tokens, vocab = c->m->cfg.vocab;
    if (s->n_tokens + gamma + 1 > c->cfg.ctx) { /* the round commits up to γ+1 tokens */
        char why[128];
        snprintf(why, sizeof why, "context full: %d tokens + %d drafted + 1 exceed the session's %d",
                 s->n_tokens, gamma, c->cfg.ctx);
        evict(c, slot, TANDEM__ERROR_CODE__ERROR_CONTEXT_FULL, why);
        return false;
    }
    int32_t rows[gamma + 1];
    rows[0] = s->tokens[s->n_tokens - 1];
    if (gamma) /* a DRAFT of no tokens has no array at all */
        memcpy(rows + 1, d->tokens, sizeof *rows * gamma);
    kv_truncate(s->kv, s->n_tokens - 1);
    struct forward_request req = {rows, gamma + 1, 0, c->logits, NULL, NULL};
    bool greedy = s->sampling.temp <= 0;
    struct early_ctx e = {c, s, d, {0, 0}, clock_now_s(), 0, false, {0, 0}};
    pace_begin(&e.pace, c->paced ? &c->pace : NULL, gamma + 1, s->n_tokens - 1);
    char err[256];
    trace_begin(c->trace, s->serial, (uint32_t)d->round, "verify");
    bool ok = s->mode == TANDEM__MODE__MODE_SD_EE && c->exits.n > 0 && gamma > 0
                  ? forward_exits(c->fc, s->kv, &req, &c->exits, c->ev, !greedy, on_exit_result, &e,
                                  err, sizeof err)
                  : forward(c->fc, s->kv, &req, err, sizeof err);
    pace_wait(&e.pace, 1.0);
    trace_end(c->trace, s->serial, (uint32_t)d->round, "verify");
    if (!ok) {
        evict(c, slot, TANDEM__ERROR_CODE__ERROR_INTERNAL, err);
        return false;
    }
    struct verdict v;
    if (!greedy && gamma > 0) {
        v = verify_sampled(&c->vf, &s->sampling, c->logits, d, &s->rng);
    } else { /* greedy, or sampling the next token alone (no draft) */
        int32_t target[gamma + 1];
        for (int r = 0; r <= gamma; r++) {
            int n = sampling_dist(&s->sampling, c->logits + (long)r * vocab, vocab, c->vf.dist);
            target[r] = greedy ? c->vf.dist[0].id : sample_from(c->vf.dist, n, &s->rng);
        }
        v = verdict_greedy(d->tokens, target, gamma);
    }
    double end = clock_now_s();
    if (v.accepted)
        memcpy(s->tokens + s->n_tokens, d->tokens, sizeof *s->tokens * v.accepted);
    s->n_tokens += v.accepted;
    s->tokens[s->n_tokens++] = v.next;
    kv_truncate(s->kv, s->n_tokens - 1);
    t->queue_ms = (float)((e.pass_t0 - received) * 1e3);
    t->verify_ms = (float)((end - e.pass_t0) * 1e3);
    t->early_ms = e.sent ? (float)((e.early_t - e.pass_t0) * 1e3) : 0.0f;
    *out = v;
    return true;
}

static void on_draft(struct cloud *c, struct session **slot, const Tandem__Draft *d, double received)
{
    struct session *s = *slot;
    if (!s->open || s->mode == TANDEM__MODE__MODE_CLOUD_AR) {
        send_error(c, s->id, s->id_len, TANDEM__ERROR_CODE__ERROR_STATE, d->round,
                   s->open ? "DRAFT in a cloud-ar session" : "DRAFT before OPEN");
        return;
    }
    if (d->round <= s->last_round) {
        logf_(c, "dropped DRAFT of finished round %llu", (unsigned long long)d->round);
        return;
    }
    if (d->start != (uint32_t)s->n_tokens) {
        send_error(c, s->id, s->id_len, TANDEM__ERROR_CODE__ERROR_STATE, d->round,
                   "DRAFT round %llu starts at position %u, but the session has %d tokens",
                   (unsigned long long)d->round, d->start, s->n_tokens);
        return;
    }
    if (s->sampling.temp > 0 && d->n_tokens > 0 && d->n_dists == 0) {
        send_error(c, s->id, s->id_len, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, d->round,
                   "DRAFT round %llu: sampling needs the draft's distribution of every token",
                   (unsigned long long)d->round);
        return;
    }
    s->last_round = d->round;
    trace_instant(c->trace, s->serial, (uint32_t)d->round, "recv_draft", (int64_t)d->n_tokens);
    struct verdict v;
    Tandem__CloudTimings t = TANDEM__CLOUD_TIMINGS__INIT;
    if (!verify(c, slot, d, received, &v, &t))
        return;
    Tandem__Final f = TANDEM__FINAL__INIT;
    f.round = d->round;
    f.accepted = v.accepted;
    f.next_token = v.next;
    f.timings = &t;
    trace_instant(c->trace, s->serial, (uint32_t)d->round, "send_final", v.accepted);
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_FINAL;
    m.final = &f;
    send_to(c, s->id, s->id_len, &m);
    logf_(c, "round %llu: %zu drafted, %d accepted, next %d (%.1f ms)", (unsigned long long)d->round,
          d->n_tokens, v.accepted, v.next, t.verify_ms);
}

/* MODE_CLOUD_AR: one token for a session, streamed in a TOKENS message. */
static void step_ar(struct cloud *c, struct session **slot)
{
    struct session *s = *slot;
    Tandem__Draft none = TANDEM__DRAFT__INIT;
    struct verdict v;
    Tandem__CloudTimings t = TANDEM__CLOUD_TIMINGS__INIT;
    if (!verify(c, slot, &none, clock_now_s(), &v, &t))
        return;
    s->ar_left--;
    if (s->stop_at_eos && v.next == tokenizer_eos(c->tok))
        s->ar_left = 0;
    s->last_active = clock_now_s();
    Tandem__Tokens tk = TANDEM__TOKENS__INIT;
    tk.n_tokens = 1;
    tk.tokens = &v.next;
    tk.done = s->ar_left == 0;
    tk.busy_ms = t.verify_ms;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_TOKENS;
    m.tokens = &tk;
    send_to(c, s->id, s->id_len, &m);
}

/* ---- the loop ---- */

static void on_frame(struct cloud *c, const uint8_t *id, size_t id_len, const void *buf, size_t len)
{
    double received = clock_now_s();
    char err[256];
    proto_msg *m = proto_decode(buf, len, &c->lim, err, sizeof err);
    if (!m) {
        send_error(c, id, id_len, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, 0, "%s", err);
        return;
    }
    struct session **slot = find_slot(c, id, id_len);
    if (slot)
        (*slot)->last_active = received;
    switch (m->msg_case) {
    case TANDEM__ENVELOPE__MSG_HELLO:
        on_hello(c, id, id_len, m->hello);
        break;
    case TANDEM__ENVELOPE__MSG_PING: {
        Tandem__Pong p = TANDEM__PONG__INIT;
        p.nonce = m->ping->nonce;
        p.sent_us = m->ping->sent_us;
        proto_msg r = TANDEM__ENVELOPE__INIT;
        r.msg_case = TANDEM__ENVELOPE__MSG_PONG;
        r.pong = &p;
        send_to(c, id, id_len, &r);
        break;
    }
    case TANDEM__ENVELOPE__MSG_OPEN:
    case TANDEM__ENVELOPE__MSG_DRAFT:
    case TANDEM__ENVELOPE__MSG_CLOSE:
        if (!slot) { /* the round lets the edge tell this answer from a stale one */
            send_error(c, id, id_len, TANDEM__ERROR_CODE__ERROR_NO_SESSION,
                       m->msg_case == TANDEM__ENVELOPE__MSG_DRAFT ? m->draft->round : 0,
                       "%s without a session: send HELLO first (or the session was evicted)",
                       proto_kind_name(m->msg_case));
        } else if (m->msg_case == TANDEM__ENVELOPE__MSG_OPEN) {
            on_open(c, slot, m->open);
        } else if (m->msg_case == TANDEM__ENVELOPE__MSG_DRAFT) {
            on_draft(c, slot, m->draft, received);
        } else {
            logf_(c, "CLOSE");
            session_free(*slot);
            *slot = NULL;
        }
        break;
    default:
        send_error(c, id, id_len, TANDEM__ERROR_CODE__ERROR_STATE, 0, "%s is not sent to the cloud",
                   proto_kind_name(m->msg_case));
    }
    proto_free(m);
}

/* Receives one [identity, payload] message if there is one. */
static bool receive(struct cloud *c)
{
    uint8_t id[MAX_IDENTITY + 1];
    int id_len = zmq_recv(c->sock, id, sizeof id, ZMQ_DONTWAIT);
    if (id_len < 0)
        return false;
    zmq_msg_t body;
    zmq_msg_init(&body);
    int more = 0;
    size_t more_len = sizeof more;
    zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &more_len);
    bool ok = more && zmq_msg_recv(&body, c->sock, 0) >= 0;
    /* Drain any further frames: a frame per message is the protocol. */
    bool extra = false;
    for (;;) {
        zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &more_len);
        if (!more)
            break;
        zmq_msg_t skip;
        zmq_msg_init(&skip);
        zmq_msg_recv(&skip, c->sock, 0);
        zmq_msg_close(&skip);
        extra = true;
    }
    if (id_len <= MAX_IDENTITY) {
        if (!ok || extra)
            send_error(c, id, id_len, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, 0,
                       "a message is exactly one frame (one Envelope)");
        else
            on_frame(c, id, id_len, zmq_msg_data(&body), zmq_msg_size(&body));
    }
    zmq_msg_close(&body);
    return true;
}

bool cloud_serve(struct cloud *c, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    int turn = 0;
    while (!*stop) {
        bool ar_work = false;
        for (int i = 0; i < c->cfg.max_sessions; i++)
            ar_work |= c->sessions[i] && c->sessions[i]->ar_left > 0;
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, ar_work ? 0 : 200);
        if (rc < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", zmq_strerror(errno));
            return false;
        }
        if (rc > 0)
            while (receive(c) && !*stop) {
            }
        /* cloud-ar streams: one token per session per turn, round robin */
        for (int k = 0; k < c->cfg.max_sessions; k++) {
            int i = (turn + k) % c->cfg.max_sessions;
            if (c->sessions[i] && c->sessions[i]->ar_left > 0)
                step_ar(c, &c->sessions[i]);
        }
        turn++;
        evict_idle(c, clock_now_s());
    }
    return true;
}

struct cloud *cloud_new(const struct cloud_config *cfg, char *err, size_t errlen)
{
    struct cloud *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (cfg->pace) {
        c->pace = *cfg->pace;
        c->paced = true;
    }
    if (cfg->trace && !(c->trace = trace_open(cfg->trace, "cloud", err, errlen)))
        goto fail;
    if (!(c->m = model_load(cfg->model, err, errlen)))
        goto fail;
    if ((!cfg->device || !strcmp(cfg->device, "cpu")) && !cfg->no_repack && model_repack(c->m, err, errlen) < 0)
        goto fail;
    if (!(c->tok = tokenizer_load(c->m->file, err, errlen)))
        goto fail;
    if (!exits_load(c->m, &c->exits, err, errlen))
        goto fail;
    const struct model_config *mc = &c->m->cfg;
    if (c->cfg.max_sessions <= 0)
        c->cfg.max_sessions = 8;
    if (c->cfg.ctx <= 0)
        c->cfg.ctx = mc->ctx_train < 2048 ? mc->ctx_train : 2048;
    if (c->cfg.idle_s <= 0)
        c->cfg.idle_s = 300;
    const char *device = c->cfg.device ? c->cfg.device : "cpu";
    /* On CUDA a pass is batch invariant up to 16 rows (the GEMV; F32/F16
     * passes of more rows go to cuBLAS, docs/cuda.md "Long prefills"), so by
     * default a verify pass (γ + 1 rows) stays within that. A verify pass is
     * never cut into chunks: EARLY comes from exits over the whole pass. */
    if (c->cfg.max_gamma <= 0)
        c->cfg.max_gamma = !strcmp(device, "cuda") ? CLOUD_CUDA_MAX_ROWS - 1 : 32;
    if (c->cfg.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->cfg.threads = n > 0 ? (int)n : 1;
    }
    int rows = c->cfg.max_gamma + 1;
    c->tp = threadpool_new(c->cfg.threads);
    char why[256];
    c->fc = c->tp ? forward_ctx_new_on(device, c->m, c->tp, rows > 32 ? rows : 32, c->cfg.ctx, why,
                                       sizeof why)
                  : NULL;
    if (c->tp && !c->fc) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    if (c->cfg.verbose && c->exits.n > 0) {
        bool in_place = forward_exits_in_place(c->fc, &c->exits, why, sizeof why);
        fprintf(stderr, "cloud: device %s, exits %s%s\n", device,
                in_place ? "evaluated on the device" : "on the host: ", in_place ? "" : why);
    }
    c->ev = c->tp ? exit_eval_new(c->m, &c->exits, c->tp, rows > 32 ? rows : 32) : NULL;
    c->logits = malloc(sizeof(float) * rows * mc->vocab);
    bool vf_ok = verifier_init(&c->vf, mc->vocab);
    c->sessions = calloc(c->cfg.max_sessions, sizeof *c->sessions);
    c->exit_layers = calloc(c->exits.n + 1, sizeof *c->exit_layers);
    if (!c->fc || !c->ev || !c->logits || !vf_ok || !c->sessions || !c->exit_layers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < c->exits.n; i++)
        c->exit_layers[i] = c->exits.heads[i].layer;
    tandem__fingerprint__init(&c->fp);
    c->fp.tokenizer_hash = tokenizer_hash(c->tok);
    c->fp.vocab = mc->vocab;
    c->fp.bos = tokenizer_bos(c->tok);
    c->fp.eos = tokenizer_eos(c->tok);
    c->lim = (struct proto_limits){mc->vocab, (uint32_t)c->cfg.ctx, (uint32_t)c->cfg.max_gamma};
    c->zctx = zmq_ctx_new();
    c->sock = c->zctx ? zmq_socket(c->zctx, ZMQ_ROUTER) : NULL;
    /* An edge that reconnects under its routing id takes its identity over
     * from the dead connection, so its new HELLO resets its own session
     * instead of leaving it to the idle limit. */
    int zero = 0, one = 1;
    if (c->sock) {
        zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(c->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    }
    if (!c->sock || zmq_bind(c->sock, cfg->bind) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", cfg->bind, zmq_strerror(errno));
        goto fail;
    }
    return c;
fail:
    cloud_free(c);
    return NULL;
}

void cloud_free(struct cloud *c)
{
    if (!c)
        return;
    if (c->sessions)
        for (int i = 0; i < c->cfg.max_sessions; i++)
            session_free(c->sessions[i]);
    free(c->sessions);
    if (c->sock)
        zmq_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    free(c->logits);
    verifier_free(&c->vf);
    free(c->exit_layers);
    exit_eval_free(c->ev);
    forward_ctx_free(c->fc);
    threadpool_free(c->tp);
    exits_free(&c->exits);
    tokenizer_free(c->tok);
    model_free(c->m);
    trace_close(c->trace);
    free(c);
}
