#include "edge.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "../engine/forward.h"
#include "../proto/codec.h"

/* γ draft tokens with the distributions they were drawn from. */
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
    struct rng rng;
    struct draft d[2];  /* the round in flight, and the pre-draft of the next */
    int max_gamma;      /* buffers hold this many draft tokens */
    void *zctx, *sock;
    uint32_t cloud_ctx, cloud_gamma;
    uint64_t round;     /* last round id sent; never reused on this connection */
    struct proto_limits lim;
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- drafting ---- */

/* Drafts gamma tokens after seq[0..n) into out. The draft KV keeps whatever
 * prefix it shares with seq (rollback is only truncation, DESIGN.md §3.4), so
 * a rejected draft or a dropped pre-draft costs nothing to undo. */
static bool draft_from(struct edge *e, const int32_t *seq, int n, int gamma, struct draft *out,
                       char *err, size_t errlen)
{
    int vocab = e->m->cfg.vocab, keep = 0;
    while (keep < e->kv->len && keep < n - 1 && e->kv_tokens[keep] == seq[keep])
        keep++;
    kv_truncate(e->kv, keep);
    const int32_t *input = seq + keep;
    int n_in = n - keep;
    for (int j = 0; j < gamma; j++) {
        if (e->kv->len + n_in > e->kv->n_ctx)
            return fail(err, errlen, "the draft's context (%d) is full", e->kv->n_ctx);
        memcpy(e->kv_tokens + e->kv->len, input, sizeof *input * n_in);
        struct forward_request req = {input, n_in, n_in - 1, e->logits, NULL, NULL};
        if (!forward(e->fc, e->kv, &req, err, errlen))
            return false;
        struct token_prob *dist = out->dist + (long)j * vocab;
        out->dist_n[j] = sampling_dist(&e->cfg.sampling, e->logits, vocab, dist);
        out->tok[j] = sample_from(dist, out->dist_n[j], &e->rng);
        input = &out->tok[j];
        n_in = 1;
    }
    out->n = gamma;
    return true;
}

/* ---- the link ---- */

static bool send_msg(struct edge *e, proto_msg *m, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = proto_encode(m, &len);
    if (!buf)
        return fail(err, errlen, "out of memory");
    int rc = zmq_send(e->sock, buf, len, 0);
    free(buf);
    if (rc < 0)
        return fail(err, errlen, "send to %s: %s", e->cfg.endpoint, zmq_strerror(errno));
    return true;
}

/* The next message from the cloud; NULL and err after timeout_ms of silence. */
static proto_msg *recv_msg(struct edge *e, double *idle_ms, char *err, size_t errlen)
{
    zmq_pollitem_t item = {e->sock, 0, ZMQ_POLLIN, 0};
    double t0 = now_s();
    int rc;
    do
        rc = zmq_poll(&item, 1, e->cfg.timeout_ms - (long)((now_s() - t0) * 1e3));
    while (rc < 0 && errno == EINTR && (now_s() - t0) * 1e3 < e->cfg.timeout_ms);
    if (idle_ms)
        *idle_ms += (now_s() - t0) * 1e3;
    if (rc <= 0) {
        fail(err, errlen, "no answer from the cloud at %s for %.1f s (is `tandem cloud` running there?)",
             e->cfg.endpoint, e->cfg.timeout_ms / 1e3);
        return NULL;
    }
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, e->sock, 0) < 0) {
        fail(err, errlen, "receive from %s: %s", e->cfg.endpoint, zmq_strerror(errno));
        zmq_msg_close(&frame);
        return NULL;
    }
    char why[256];
    proto_msg *m = proto_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &e->lim, why, sizeof why);
    zmq_msg_close(&frame);
    if (!m)
        fail(err, errlen, "bad message from the cloud: %s", why);
    return m;
}

static bool cloud_error(const proto_msg *m, char *err, size_t errlen)
{
    return fail(err, errlen, "the cloud reports error %d: %s", (int)m->error->code, m->error->text);
}

static bool handshake(struct edge *e, char *err, size_t errlen)
{
    Tandem__Fingerprint fp = TANDEM__FINGERPRINT__INIT;
    fp.tokenizer_hash = tokenizer_hash(e->tok);
    fp.vocab = e->m->cfg.vocab;
    fp.bos = tokenizer_bos(e->tok);
    fp.eos = tokenizer_eos(e->tok);
    Tandem__Hello h = TANDEM__HELLO__INIT;
    h.version = TANDEM_PROTO_VERSION;
    h.fingerprint = &fp;
    h.client = "tandem-edge";
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_HELLO;
    m.hello = &h;
    if (!send_msg(e, &m, err, errlen))
        return false;
    for (;;) {
        proto_msg *r = recv_msg(e, NULL, err, errlen);
        if (!r)
            return false;
        bool ok = true, done = true;
        if (r->msg_case == TANDEM__ENVELOPE__MSG_ERROR) {
            ok = cloud_error(r, err, errlen);
        } else if (r->msg_case != TANDEM__ENVELOPE__MSG_WELCOME) {
            done = false; /* left over from an earlier session: skip */
        } else if (!r->welcome->accepted) {
            ok = fail(err, errlen, "the cloud refused this draft: %s", r->welcome->reason);
        } else if (r->welcome->fingerprint->tokenizer_hash != fp.tokenizer_hash ||
                   r->welcome->fingerprint->vocab != fp.vocab) {
            ok = fail(err, errlen, "the cloud's model does not share this draft's tokenizer");
        } else {
            e->cloud_ctx = r->welcome->max_context;
            e->cloud_gamma = r->welcome->max_gamma;
        }
        proto_free(r);
        if (done)
            return ok;
    }
}

/* ---- generation ---- */

struct run {
    struct edge *e;
    struct edge_result *res;
    int32_t *seq; /* prompt + committed tokens, room for a pre-draft's verdict */
    int n_seq, n_gen, max_tokens;
    bool done;
    edge_tokens_fn fn;
    void *fn_ctx;
    double t0;
};

/* Commits tokens in order, stopping at max_tokens or after EOS. */
static void commit(struct run *r, const int32_t *ids, int n)
{
    int32_t eos = tokenizer_eos(r->e->tok);
    int k = 0;
    while (k < n && !r->done) {
        int32_t id = ids[k++];
        r->seq[r->n_seq++] = id;
        r->res->ids[r->res->n_ids++] = id;
        r->n_gen++;
        r->done = r->n_gen >= r->max_tokens || (!r->e->cfg.ignore_eos && id == eos);
    }
    if (k > 0) {
        if (r->res->n_ids == k)
            r->res->ttft_ms = (now_s() - r->t0) * 1e3;
        if (r->fn)
            r->fn(r->fn_ctx, r->res->ids + r->res->n_ids - k, k);
    }
}

static bool send_open(struct run *r, Tandem__Mode mode, char *err, size_t errlen)
{
    struct edge *e = r->e;
    Tandem__Sampling s = TANDEM__SAMPLING__INIT;
    s.temperature = e->cfg.sampling.temp;
    s.top_k = e->cfg.sampling.top_k > 0 ? (uint32_t)e->cfg.sampling.top_k : 0;
    s.top_p = e->cfg.sampling.top_p;
    s.seed = e->cfg.seed;
    Tandem__Open o = TANDEM__OPEN__INIT;
    o.n_prompt = r->n_seq;
    o.prompt = r->seq;
    o.sampling = &s;
    o.max_tokens = r->max_tokens - r->n_gen;
    o.mode = mode;
    o.stop_at_eos = !e->cfg.ignore_eos;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_OPEN;
    m.open = &o;
    return send_msg(e, &m, err, errlen);
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
    ok = ok ? send_msg(e, &m, err, errlen) : fail(err, errlen, "out of memory");
    for (int j = 0; dists && j < d->n; j++) {
        free(dists[j].ids);
        free(dists[j].probs);
    }
    free(dists);
    free(ptrs);
    return ok;
}

/* Draft tokens for a round starting after n_seq tokens of which n_gen are
 * generated: γ, less near max_tokens (the round itself adds one token), none
 * in cloud-ar-rpc. */
static int round_gamma(const struct run *r, int n_gen)
{
    const struct edge *e = r->e;
    if (e->cfg.mode == EDGE_CLOUD_AR_RPC)
        return 0;
    int g = e->cfg.gamma, left = r->max_tokens - n_gen - 1;
    return g < left ? g : left > 0 ? left : 0;
}

static bool run_rounds(struct run *r, char *err, size_t errlen)
{
    struct edge *e = r->e;
    struct edge_result *res = r->res;
    bool ee = e->cfg.mode == EDGE_SD_EE && e->cfg.sampling.temp <= 0;
    struct draft *cur = &e->d[0], *pre = &e->d[1];
    bool use_pre = false;
    Tandem__Mode mode = e->cfg.mode == EDGE_SD ? TANDEM__MODE__MODE_SD
                        : e->cfg.mode == EDGE_SD_EE ? TANDEM__MODE__MODE_SD_EE
                                                    : TANDEM__MODE__MODE_CLOUD_AR_RPC;
    if (!send_open(r, mode, err, errlen))
        return false;
    while (!r->done) {
        double t = now_s();
        if (use_pre) {
            struct draft *x = cur;
            cur = pre;
            pre = x;
        } else if (!draft_from(e, r->seq, r->n_seq, round_gamma(r, r->n_gen), cur, err, errlen)) {
            return false;
        }
        res->draft_ms += (now_s() - t) * 1e3;
        uint64_t round = ++e->round;
        if (!send_draft(e, round, r->n_seq, cur, err, errlen))
            return false;
        bool have_pre = false, early = false;
        int pre_a = -1;
        int32_t pre_t = -1;
        for (;;) {
            proto_msg *m = recv_msg(e, &res->edge_idle_ms, err, errlen);
            if (!m)
                return false;
            if (m->msg_case == TANDEM__ENVELOPE__MSG_ERROR) {
                bool stale = m->error->round != 0 && m->error->round < round;
                if (!stale) {
                    cloud_error(m, err, errlen);
                    proto_free(m);
                    return false;
                }
            } else if (m->msg_case == TANDEM__ENVELOPE__MSG_EARLY && m->early->round == round && ee &&
                       (int)m->early->accepted <= cur->n) {
                /* Pre-draft the next round as if the verdict were final. The
                 * verdict's tokens go after the committed ones in seq; FINAL
                 * overwrites them with the real ones. */
                early = true;
                int a = (int)m->early->accepted, n_gen = r->n_gen + a + 1;
                memcpy(r->seq + r->n_seq, cur->tok, sizeof *cur->tok * a);
                r->seq[r->n_seq + a] = m->early->next_token;
                bool eos = !e->cfg.ignore_eos && m->early->next_token == tokenizer_eos(e->tok);
                for (int j = 0; j < a; j++)
                    eos |= !e->cfg.ignore_eos && cur->tok[j] == tokenizer_eos(e->tok);
                if (n_gen < r->max_tokens && !eos) {
                    t = now_s();
                    if (!draft_from(e, r->seq, r->n_seq + a + 1, round_gamma(r, n_gen), pre, err, errlen)) {
                        proto_free(m);
                        return false;
                    }
                    res->draft_ms += (now_s() - t) * 1e3;
                    have_pre = true;
                    pre_a = a;
                    pre_t = m->early->next_token;
                }
            } else if (m->msg_case == TANDEM__ENVELOPE__MSG_FINAL && m->final->round == round) {
                int a = (int)m->final->accepted;
                int32_t next = m->final->next_token;
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
                break;
            }
            proto_free(m); /* PONG, or a message of a finished round: dropped */
        }
    }
    return true;
}

static bool run_cloud_ar(struct run *r, char *err, size_t errlen)
{
    if (!send_open(r, TANDEM__MODE__MODE_CLOUD_AR, err, errlen))
        return false;
    while (!r->done) {
        proto_msg *m = recv_msg(r->e, &r->res->edge_idle_ms, err, errlen);
        if (!m)
            return false;
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
        double t = now_s();
        if (!draft_from(r->e, r->seq, r->n_seq, 1, &r->e->d[0], err, errlen))
            return false;
        r->res->draft_ms += (now_s() - t) * 1e3;
        commit(r, r->e->d[0].tok, 1);
    }
    return true;
}

bool edge_generate(struct edge *e, const int32_t *prompt, int n_prompt, int max_tokens,
                   edge_tokens_fn fn, void *fn_ctx, struct edge_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    int vocab = e->m->cfg.vocab;
    if (n_prompt < 1)
        return fail(err, errlen, "empty prompt");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= vocab)
            return fail(err, errlen, "prompt token %d is outside the vocabulary", prompt[i]);
    int ctx = e->kv->n_ctx;
    if (e->cfg.mode != EDGE_AR && (uint32_t)ctx > e->cloud_ctx)
        ctx = (int)e->cloud_ctx;
    if (n_prompt + max_tokens > ctx)
        return fail(err, errlen, "prompt (%d tokens) + %d to generate exceed the context of %d%s",
                    n_prompt, max_tokens, ctx, e->cfg.mode != EDGE_AR ? " (draft's and cloud's)" : "");
    res->max_gamma = e->max_gamma;
    res->ids = malloc(sizeof *res->ids * (max_tokens + 1));
    res->offered_at = calloc(e->max_gamma + 1, sizeof *res->offered_at);
    res->accepted_at = calloc(e->max_gamma + 1, sizeof *res->accepted_at);
    struct run r = {e, res, malloc(sizeof(int32_t) * (n_prompt + max_tokens + e->max_gamma + 2)),
                    n_prompt, 0, max_tokens, max_tokens == 0, fn, fn_ctx, now_s()};
    if (!res->ids || !res->offered_at || !res->accepted_at || !r.seq) {
        free(r.seq);
        return fail(err, errlen, "out of memory");
    }
    memcpy(r.seq, prompt, sizeof *prompt * n_prompt);
    rng_seed(&e->rng, e->cfg.seed);
    bool ok = e->cfg.mode == EDGE_AR         ? run_edge_ar(&r, err, errlen)
              : e->cfg.mode == EDGE_CLOUD_AR ? run_cloud_ar(&r, err, errlen)
                                             : run_rounds(&r, err, errlen);
    res->wall_s = now_s() - r.t0;
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
    if (!(e->m = model_load(cfg->model, err, errlen)) || !(e->tok = tokenizer_load(e->m->file, err, errlen)))
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
    e->lim = (struct proto_limits){mc->vocab, 0, (uint32_t)e->max_gamma};
    if (cfg->mode == EDGE_AR)
        return e;
    e->zctx = zmq_ctx_new();
    e->sock = e->zctx ? zmq_socket(e->zctx, ZMQ_DEALER) : NULL;
    int zero = 0;
    if (e->sock)
        zmq_setsockopt(e->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (!e->sock || zmq_connect(e->sock, cfg->endpoint) != 0) {
        fail(err, errlen, "cannot connect to %s: %s", cfg->endpoint, zmq_strerror(errno));
        goto fail;
    }
    if (!handshake(e, err, errlen))
        goto fail;
    if ((uint32_t)e->cfg.gamma > e->cloud_gamma) {
        fail(err, errlen, "--gamma %d exceeds the cloud's limit of %u", e->cfg.gamma, e->cloud_gamma);
        goto fail;
    }
    return e;
fail:
    edge_close(e);
    return NULL;
}

const struct tokenizer *edge_tokenizer(const struct edge *e) { return e->tok; }

void edge_result_free(struct edge_result *r)
{
    free(r->ids);
    free(r->offered_at);
    free(r->accepted_at);
    memset(r, 0, sizeof *r);
}

void edge_close(struct edge *e)
{
    if (!e)
        return;
    if (e->sock) {
        Tandem__Close c = TANDEM__CLOSE__INIT;
        proto_msg m = TANDEM__ENVELOPE__INIT;
        m.msg_case = TANDEM__ENVELOPE__MSG_CLOSE;
        m.close = &c;
        char err[128];
        int linger = 200; /* long enough for CLOSE to leave, never a hang */
        zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
        if (e->cloud_ctx)
            send_msg(e, &m, err, sizeof err);
        zmq_close(e->sock);
    }
    if (e->zctx)
        zmq_ctx_term(e->zctx);
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
    free(e);
}
