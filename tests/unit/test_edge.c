/* The edge library (edge/edge.h) against a scripted cloud — a ROUTER socket
 * this test drives message by message — and against the real cloud restarted
 * under it: stale, duplicated and unknown-round messages are dropped; EARLY
 * pre-drafts give way to FINAL and never change the tokens drafted; a cloud
 * restarted between or inside rounds is reported ("session unknown") and,
 * when allowed, replaced by a new session that carries on from the committed
 * text; limits, refusals, bad messages and a cloud gone for good end the
 * generation with an error that names them. Under ASan/UBSan: no crash, no
 * leak on any of those paths.
 *
 * The edge runs in a worker thread; this thread plays the cloud, so cmocka's
 * checks stay on the test's own thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cloud/cloud.h"
#include "edge/edge.h"
#include "engine/forward.h"
#include "proto/codec.h"

#define DRAFT "tests/golden/fixtures/tiny-llama-q4_0.gguf"
#define TARGET "tests/golden/fixtures/tiny-llama-f32.gguf"
#define MAX_IDS 64

static char endpoint[128];

/* ---- the edge, in a worker thread ---- */

struct job {
    struct edge_config cfg;
    int32_t prompt[MAX_IDS];
    int n_prompt, max_tokens;
    bool again;            /* after a failed generation, another from prompt + its tokens */
    int gate_at;           /* > 0: the edge stops after committing this many tokens ... */
    bool gate_reached, gate_open; /* ... until the test opens the gate */
    int seen;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* results */
    bool opened, ok[2];
    char open_err[512], err[2][512], log[2048];
    struct edge_result res[2];
    pthread_t thread;
};

static void log_line(void *ctx, const char *line)
{
    struct job *j = ctx;
    size_t n = strlen(j->log);
    snprintf(j->log + n, sizeof j->log - n, "%s\n", line);
}

/* Committed tokens: holds the edge at the gate, so that the test can
 * restart the cloud at a known point of the generation. */
static void on_tokens(void *ctx, const int32_t *ids, int n)
{
    struct job *j = ctx;
    j->seen += n;
    if (!j->gate_at || j->seen < j->gate_at || j->gate_reached)
        return;
    pthread_mutex_lock(&j->mu);
    j->gate_reached = true;
    pthread_cond_broadcast(&j->cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20; /* a failed test must not hang the edge */
    while (!j->gate_open && pthread_cond_timedwait(&j->cv, &j->mu, &until) == 0) {
    }
    pthread_mutex_unlock(&j->mu);
}

static void gate_wait(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    while (!j->gate_reached)
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

static void gate_open(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    j->gate_open = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void *edge_worker(void *arg)
{
    struct job *j = arg;
    struct edge *e = edge_open(&j->cfg, j->open_err, sizeof j->open_err);
    if (!e)
        return NULL;
    j->opened = true;
    j->ok[0] = edge_generate(e, j->prompt, j->n_prompt, j->max_tokens, on_tokens, j, &j->res[0],
                             j->err[0], sizeof j->err[0]);
    if (!j->ok[0] && j->again) {
        int32_t seq[2 * MAX_IDS];
        memcpy(seq, j->prompt, sizeof *seq * j->n_prompt);
        memcpy(seq + j->n_prompt, j->res[0].ids, sizeof *seq * j->res[0].n_ids);
        j->ok[1] = edge_generate(e, seq, j->n_prompt + j->res[0].n_ids,
                                 j->max_tokens - j->res[0].n_ids, NULL, NULL, &j->res[1], j->err[1],
                                 sizeof j->err[1]);
    }
    edge_close(e);
    return NULL;
}

/* Each test its own endpoint: a failed one leaves nothing in the next one's way. */
static void new_endpoint(void)
{
    static int n;
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/tandem-test-edge-%d-%d.sock", (int)getpid(), ++n);
}

static struct job *current; /* for failure messages */

static struct job *job_new(enum edge_mode mode, int gamma, int max_tokens, int reconnects)
{
    struct job *j = calloc(1, sizeof *j);
    j->cfg = (struct edge_config){.model = DRAFT, .endpoint = endpoint, .mode = mode, .gamma = gamma,
                                  .sampling = {0.0f, 0, 1.0f}, .threads = 1, .timeout_ms = 3000,
                                  .ignore_eos = true, .reconnects = reconnects, .log = log_line};
    j->cfg.log_ctx = j;
    j->n_prompt = 3;
    j->prompt[0] = 1, j->prompt[1] = 20, j->prompt[2] = 30;
    j->max_tokens = max_tokens;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    current = j;
    return j;
}

static void job_run(struct job *j) { pthread_create(&j->thread, NULL, edge_worker, j); }
static void job_wait(struct job *j) { pthread_join(j->thread, NULL); }

static void job_free(struct job *j)
{
    edge_result_free(&j->res[0]);
    edge_result_free(&j->res[1]);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* ---- the scripted cloud ---- */

struct fake {
    void *zctx, *sock;
    bool own_zctx;
    uint8_t id[256];
    size_t id_len;
    Tandem__Fingerprint fp;       /* the edge's, echoed in WELCOME */
    int32_t committed[2 * MAX_IDS]; /* what FINALs committed, in order */
    int n_committed;
    int32_t draft[16];            /* the last DRAFT */
    int n_draft;
    uint64_t round;
    uint32_t start;
    int pongs;
};

/* A cloud "process": its own context, so that closing it is complete (the
 * endpoint free again) before the next one binds. */
static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    f->zctx = zmq_ctx_new();
    f->own_zctx = true;
    f->sock = zmq_socket(f->zctx, ZMQ_ROUTER);
    int linger = 1000;
    zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(f->sock, endpoint), 0);
}

/* The process ends: what it had sent is flushed, what it had not is lost. */
static void fake_stop(struct fake *f)
{
    zmq_close(f->sock);
    if (f->own_zctx)
        zmq_ctx_term(f->zctx);
    f->sock = f->zctx = NULL;
}

static void fake_send(struct fake *f, proto_msg *m)
{
    size_t len;
    uint8_t *buf = proto_encode(m, &len);
    zmq_send(f->sock, f->id, f->id_len, ZMQ_SNDMORE);
    zmq_send(f->sock, buf, len, 0);
    free(buf);
}

/* The next message from the edge (PINGs answered and skipped), NULL after
 * ms of silence. Remembers the sender and the last DRAFT. */
static proto_msg *fake_recv(struct fake *f, int ms)
{
    for (;;) {
        zmq_pollitem_t it = {f->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, ms) <= 0)
            return NULL;
        int n = zmq_recv(f->sock, f->id, sizeof f->id, 0);
        assert_true(n > 0);
        f->id_len = (size_t)n;
        zmq_msg_t body;
        zmq_msg_init(&body);
        zmq_msg_recv(&body, f->sock, 0);
        char err[256];
        struct proto_limits lim = {0, 0, 0};
        proto_msg *m = proto_decode(zmq_msg_data(&body), zmq_msg_size(&body), &lim, err, sizeof err);
        zmq_msg_close(&body);
        if (!m)
            fail_msg("the edge sent a bad message: %s", err);
        if (m->msg_case == TANDEM__ENVELOPE__MSG_PING) {
            Tandem__Pong p = TANDEM__PONG__INIT;
            p.nonce = m->ping->nonce;
            p.sent_us = m->ping->sent_us;
            proto_msg r = TANDEM__ENVELOPE__INIT;
            r.msg_case = TANDEM__ENVELOPE__MSG_PONG;
            r.pong = &p;
            fake_send(f, &r);
            f->pongs++;
            proto_free(m);
            continue;
        }
        if (m->msg_case == TANDEM__ENVELOPE__MSG_DRAFT) {
            f->round = m->draft->round;
            f->start = m->draft->start;
            f->n_draft = (int)m->draft->n_tokens;
            if (f->n_draft) /* no tokens: no array */
                memcpy(f->draft, m->draft->tokens, sizeof *f->draft * f->n_draft);
        }
        if (m->msg_case == TANDEM__ENVELOPE__MSG_HELLO)
            f->fp = *m->hello->fingerprint;
        return m;
    }
}

static proto_msg *fake_expect(struct fake *f, Tandem__Envelope__MsgCase kind)
{
    proto_msg *m = fake_recv(f, 5000);
    if (!m)
        fail_msg("no %s from the edge", proto_kind_name(kind));
    if (m->msg_case != kind)
        fail_msg("expected %s from the edge, got %s (the edge: %s%s)", proto_kind_name(kind),
                 proto_kind_name(m->msg_case), current->open_err, current->err[0]);
    return m;
}

static void fake_welcome(struct fake *f, bool accepted, const char *reason, uint32_t ctx, uint32_t gamma)
{
    Tandem__Welcome w = TANDEM__WELCOME__INIT;
    w.accepted = accepted;
    w.reason = (char *)reason;
    w.fingerprint = &f->fp;
    w.max_context = ctx;
    w.max_gamma = gamma;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_WELCOME;
    m.welcome = &w;
    fake_send(f, &m);
}

/* HELLO, WELCOME, OPEN; checks that OPEN carries prompt[0 .. n). */
static void fake_session(struct fake *f, const int32_t *prompt, int n)
{
    proto_free(fake_expect(f, TANDEM__ENVELOPE__MSG_HELLO));
    fake_welcome(f, true, "", 64, 8);
    proto_msg *o = fake_expect(f, TANDEM__ENVELOPE__MSG_OPEN);
    assert_int_equal(o->open->n_prompt, n);
    assert_memory_equal(o->open->prompt, prompt, sizeof *prompt * n);
    proto_free(o);
}

static void fake_final_of(struct fake *f, uint64_t round, uint32_t a, int32_t next, bool record)
{
    Tandem__Final fin = TANDEM__FINAL__INIT;
    fin.round = round;
    fin.accepted = a;
    fin.next_token = next;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_FINAL;
    m.final = &fin;
    fake_send(f, &m);
    if (record) {
        memcpy(f->committed + f->n_committed, f->draft, sizeof *f->draft * a);
        f->n_committed += (int)a;
        f->committed[f->n_committed++] = next;
    }
}

/* The verdict on the last DRAFT, committed. */
static void fake_final(struct fake *f, uint32_t a, int32_t next)
{
    fake_final_of(f, f->round, a, next, true);
}

static void fake_early(struct fake *f, uint64_t round, uint32_t a, int32_t next)
{
    Tandem__Early e = TANDEM__EARLY__INIT;
    e.round = round;
    e.accepted = a;
    e.next_token = next;
    e.confidence = 0.9f;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_EARLY;
    m.early = &e;
    fake_send(f, &m);
}

static void fake_error(struct fake *f, Tandem__ErrorCode code, uint64_t round, const char *text)
{
    Tandem__Error e = TANDEM__ERROR__INIT;
    e.code = code;
    e.round = round;
    e.text = (char *)text;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_ERROR;
    m.error = &e;
    fake_send(f, &m);
}

/* cloud-ar: one streamed token, committed. */
static void fake_token(struct fake *f, int32_t id, bool done)
{
    Tandem__Tokens t = TANDEM__TOKENS__INIT;
    t.n_tokens = 1;
    t.tokens = &id;
    t.done = done;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_TOKENS;
    m.tokens = &t;
    fake_send(f, &m);
    f->committed[f->n_committed++] = id;
}

/* Rounds until the edge has max_tokens: each accepts the whole draft. */
static void fake_finish(struct fake *f, int prompt_len, int max_tokens)
{
    while (f->n_committed < max_tokens) {
        proto_free(fake_expect(f, TANDEM__ENVELOPE__MSG_DRAFT));
        assert_int_equal(f->start, prompt_len + f->n_committed);
        fake_final(f, (uint32_t)f->n_draft, 50 + f->n_committed);
    }
}

static void expect_ids(const struct edge_result *r, const int32_t *ids, int n)
{
    assert_int_equal(r->n_ids, n);
    assert_memory_equal(r->ids, ids, sizeof *ids * n);
}

static void expect_text(const char *s, const char *want)
{
    if (!strstr(s, want))
        fail_msg("expected '%s' in '%s'", want, s);
}

/* The draft's own greedy continuation of seq[0 .. n): what every DRAFT must
 * hold, pre-drafted or not. */
static void fresh_draft(const int32_t *seq, int n, int gamma, int32_t *out)
{
    char err[256];
    struct model *m = model_load(DRAFT, err, sizeof err);
    struct threadpool *tp = threadpool_new(1);
    struct forward_ctx *fc = forward_ctx_new(m, tp, 32, 128);
    struct kv_cache *kv = kv_new(&m->cfg, 128);
    float *logits = malloc(sizeof *logits * m->cfg.vocab);
    struct forward_request req = {seq, n, n - 1, logits, NULL, NULL};
    for (int j = 0; j < gamma; j++) {
        assert_true(forward(fc, kv, &req, err, sizeof err));
        int best = 0;
        for (int t = 1; t < m->cfg.vocab; t++)
            best = logits[t] > logits[best] ? t : best;
        out[j] = best;
        req = (struct forward_request){&out[j], 1, 0, logits, NULL, NULL};
    }
    free(logits);
    kv_free(kv);
    forward_ctx_free(fc);
    threadpool_free(tp);
    model_free(m);
}

static void expect_fresh_draft(const struct fake *f, const int32_t *prompt, int n_prompt)
{
    int32_t seq[2 * MAX_IDS], want[16];
    memcpy(seq, prompt, sizeof *seq * n_prompt);
    memcpy(seq + n_prompt, f->committed, sizeof *seq * f->n_committed);
    fresh_draft(seq, n_prompt + f->n_committed, f->n_draft, want);
    assert_memory_equal(f->draft, want, sizeof *want * f->n_draft);
}

/* ---- tests ---- */

static void test_stale_duplicate_unknown_rounds(void **state)
{
    new_endpoint();
    struct job *j = job_new(EDGE_SD, 3, 10, 0);
    struct fake f;
    fake_start(&f);
    job_run(j);
    fake_session(&f, j->prompt, j->n_prompt);
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_DRAFT));
    uint64_t r1 = f.round;
    fake_early(&f, r1 + 7, 0, 5);                /* rounds the edge never sent */
    fake_final_of(&f, r1 + 9, 0, 5, false);
    fake_final(&f, 1, 7);
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_DRAFT));
    fake_final_of(&f, r1, 1, 7, false);         /* the finished round's FINAL again */
    fake_early(&f, r1, 2, 9);                    /* and its EARLY, late */
    fake_error(&f, TANDEM__ERROR_CODE__ERROR_STATE, r1, "about a finished round");
    fake_final(&f, 0, 8);
    fake_finish(&f, j->n_prompt, 10);
    job_wait(j);
    fake_stop(&f);
    if (!j->ok[0])
        fail_msg("%s", j->err[0]);
    expect_ids(&j->res[0], f.committed, f.n_committed);
    /* one PING per round, each answered: every round has an RTT sample */
    assert_int_equal(j->res[0].rtt_samples, j->res[0].rounds);
    assert_int_equal(f.pongs, j->res[0].rounds);
    assert_true(j->res[0].rtt_ms >= j->res[0].rtt_min_ms && j->res[0].rtt_min_ms >= 0);
    job_free(j);
}

/* sd-ee: a pre-draft stops as soon as FINAL is waiting, a confirmed one is
 * finished and sent, a refuted one dropped; every DRAFT holds exactly the
 * draft's own continuation of the committed text. */
static void test_predraft_gives_way_to_final(void **state)
{
    /* inproc in one context: a message is in the edge's queue the moment
     * zmq_send returns here, so "FINAL is waiting" is a fact, not a race */
    void *zctx = zmq_ctx_new();
    snprintf(endpoint, sizeof endpoint, "inproc://tandem-test-edge-predraft");
    struct job *j = job_new(EDGE_SD_EE, 3, 14, 0);
    j->cfg.zmq_ctx = zctx;
    j->gate_at = 2;
    struct fake f = {.zctx = zctx};
    f.sock = zmq_socket(zctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(f.sock, endpoint), 0);
    job_run(j);
    fake_session(&f, j->prompt, j->n_prompt);
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_DRAFT));
    expect_fresh_draft(&f, j->prompt, j->n_prompt);
    uint64_t r1 = f.round;
    /* While the edge is held after committing round 1, EARLY and FINAL of
     * round 2, before it has even sent that round: when it reads the
     * EARLY, the FINAL is already waiting. */
    fake_final(&f, 1, 40);
    gate_wait(j);
    fake_early(&f, r1 + 1, 0, 41);
    fake_final_of(&f, r1 + 1, 0, 41, false);
    gate_open(j);
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_DRAFT));
    assert_int_equal(f.round, r1 + 1);
    assert_int_equal(f.start, j->n_prompt + 2);
    expect_fresh_draft(&f, j->prompt, j->n_prompt);
    f.committed[f.n_committed++] = 41;
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_DRAFT)); /* from the confirmed pre-draft */
    assert_int_equal(f.start, j->n_prompt + 3);
    expect_fresh_draft(&f, j->prompt, j->n_prompt);
    fake_early(&f, f.round, 1, 50);                         /* refuted */
    fake_final(&f, 2, 51);
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_DRAFT));
    assert_int_equal(f.start, j->n_prompt + 6);
    expect_fresh_draft(&f, j->prompt, j->n_prompt);
    fake_early(&f, f.round, 3, 60);                         /* confirmed */
    fake_final(&f, 3, 60);
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_DRAFT));
    assert_int_equal(f.start, j->n_prompt + 10);
    expect_fresh_draft(&f, j->prompt, j->n_prompt);
    fake_final(&f, 3, 61);
    job_wait(j);
    fake_stop(&f);
    zmq_ctx_term(zctx);
    if (!j->ok[0])
        fail_msg("%s", j->err[0]);
    expect_ids(&j->res[0], f.committed, f.n_committed);
    assert_int_equal(j->res[0].early_rounds, 3);
    assert_int_equal(j->res[0].early_hits, 2);
    assert_true(j->res[0].predraft_stops >= 1); /* round 2's, at once */
    job_free(j);
}

/* The cloud answers a DRAFT as one that has never seen this edge. */
static void fake_as_new_cloud(struct fake *f, const int32_t *prompt, int n)
{
    for (;;) {
        proto_msg *m = fake_recv(f, 5000);
        assert_non_null(m);
        Tandem__Envelope__MsgCase kind = m->msg_case;
        uint64_t round = kind == TANDEM__ENVELOPE__MSG_DRAFT ? m->draft->round : 0;
        if (kind == TANDEM__ENVELOPE__MSG_OPEN) {
            assert_int_equal(m->open->n_prompt, n);
            assert_memory_equal(m->open->prompt, prompt, sizeof *prompt * n);
        }
        proto_free(m);
        if (kind == TANDEM__ENVELOPE__MSG_OPEN)
            return;
        if (kind == TANDEM__ENVELOPE__MSG_HELLO)
            fake_welcome(f, true, "", 64, 8);
        else
            fake_error(f, TANDEM__ERROR_CODE__ERROR_NO_SESSION, round,
                       "DRAFT without a session: send HELLO first");
    }
}

/* prompt + what the first cloud committed: the text a new session opens with. */
static int carried_text(const struct job *j, const struct fake *a, int32_t *out)
{
    memcpy(out, j->prompt, sizeof *out * j->n_prompt);
    memcpy(out + j->n_prompt, a->committed, sizeof *out * a->n_committed);
    return j->n_prompt + a->n_committed;
}

static void expect_two_clouds(const struct job *j, int k, const struct fake *a, const struct fake *b)
{
    int32_t all[2 * MAX_IDS];
    memcpy(all, a->committed, sizeof *all * a->n_committed);
    memcpy(all + a->n_committed, b->committed, sizeof *all * b->n_committed);
    expect_ids(&j->res[k], all, a->n_committed + b->n_committed);
}

static void test_restart_between_rounds(void **state)
{
    new_endpoint();
    struct job *j = job_new(EDGE_SD, 2, 12, 2);
    j->gate_at = 1;
    struct fake a, b;
    fake_start(&a);
    job_run(j);
    fake_session(&a, j->prompt, j->n_prompt);
    proto_free(fake_expect(&a, TANDEM__ENVELOPE__MSG_DRAFT));
    fake_final(&a, 1, 40);
    gate_wait(j);           /* the edge has committed round 1 and sent nothing since */
    fake_stop(&a);
    fake_start(&b);
    gate_open(j);           /* its next DRAFT goes to a cloud that never saw it */
    int32_t text[2 * MAX_IDS];
    int n = carried_text(j, &a, text);
    fake_as_new_cloud(&b, text, n);
    fake_finish(&b, n, 12 - a.n_committed);
    job_wait(j);
    fake_stop(&b);
    if (!j->ok[0])
        fail_msg("%s", j->err[0]);
    expect_two_clouds(j, 0, &a, &b);
    assert_int_equal(j->res[0].reconnects, 1);
    expect_text(j->log, "session unknown");
    expect_text(j->log, "carrying on after 2 committed tokens");
    job_free(j);
}

static void test_restart_mid_round(void **state)
{
    new_endpoint();
    struct job *j = job_new(EDGE_SD_EE, 3, 12, 1);
    struct fake a, b;
    fake_start(&a);
    job_run(j);
    fake_session(&a, j->prompt, j->n_prompt);
    proto_free(fake_expect(&a, TANDEM__ENVELOPE__MSG_DRAFT));
    fake_final(&a, 2, 40);
    proto_free(fake_expect(&a, TANDEM__ENVELOPE__MSG_DRAFT));
    fake_early(&a, a.round, 1, 41);
    fake_stop(&a);          /* dies in the middle of the pass: no FINAL */
    fake_start(&b);
    int32_t text[2 * MAX_IDS];
    int n = carried_text(j, &a, text);
    fake_as_new_cloud(&b, text, n);
    fake_finish(&b, n, 12 - a.n_committed);
    job_wait(j);
    fake_stop(&b);
    if (!j->ok[0])
        fail_msg("%s", j->err[0]);
    expect_two_clouds(j, 0, &a, &b);
    assert_int_equal(j->res[0].reconnects, 1);
    expect_text(j->log, "restarted or the connection dropped: session unknown");
    job_free(j);
}

/* cloud-ar: the stream breaks off; the new session streams the rest. */
static void test_restart_while_streaming(void **state)
{
    new_endpoint();
    struct job *j = job_new(EDGE_CLOUD_AR, 3, 12, 1);
    struct fake a, b;
    fake_start(&a);
    job_run(j);
    fake_session(&a, j->prompt, j->n_prompt);
    for (int i = 0; i < 5; i++)
        fake_token(&a, 40 + i, false);
    fake_stop(&a);
    fake_start(&b);
    int32_t text[2 * MAX_IDS];
    fake_as_new_cloud(&b, text, carried_text(j, &a, text));
    for (int i = 0; i < 7; i++)
        fake_token(&b, 60 + i, i == 6);
    job_wait(j);
    fake_stop(&b);
    if (!j->ok[0])
        fail_msg("%s", j->err[0]);
    expect_two_clouds(j, 0, &a, &b);
    assert_int_equal(j->res[0].reconnects, 1);
    job_free(j);
}

/* No reconnection allowed: the generation fails with the reason and keeps
 * what was committed; the next one, from that text, opens a new session. */
static void test_restart_without_reconnecting(void **state)
{
    new_endpoint();
    struct job *j = job_new(EDGE_SD, 3, 12, 0);
    j->again = true;
    struct fake a, b;
    fake_start(&a);
    job_run(j);
    fake_session(&a, j->prompt, j->n_prompt);
    proto_free(fake_expect(&a, TANDEM__ENVELOPE__MSG_DRAFT));
    fake_final(&a, 3, 40);
    proto_free(fake_expect(&a, TANDEM__ENVELOPE__MSG_DRAFT));
    fake_stop(&a);
    fake_start(&b);
    int32_t text[2 * MAX_IDS];
    int n = carried_text(j, &a, text);
    fake_as_new_cloud(&b, text, n);
    fake_finish(&b, n, 12 - a.n_committed);
    job_wait(j);
    fake_stop(&b);
    assert_false(j->ok[0]);
    expect_text(j->err[0], "session unknown");
    expect_text(j->err[0], "4 tokens had been committed");
    expect_ids(&j->res[0], a.committed, a.n_committed);
    if (!j->ok[1])
        fail_msg("%s", j->err[1]);
    expect_ids(&j->res[1], b.committed, b.n_committed);
    expect_text(j->log, "opening a new session");
    job_free(j);
}

/* One generation against a script that ends it with an error. */
static struct job *faulty_run(struct fake *f, int max_tokens, int gamma, int timeout_ms,
                              int reconnects)
{
    new_endpoint();
    struct job *j = job_new(EDGE_SD, gamma, max_tokens, reconnects);
    j->cfg.timeout_ms = timeout_ms;
    fake_start(f);
    job_run(j);
    fake_session(f, j->prompt, j->n_prompt);
    proto_free(fake_expect(f, TANDEM__ENVELOPE__MSG_DRAFT));
    return j;
}

static void expect_failed(struct job *j, struct fake *f, const char *want)
{
    job_wait(j);
    fake_stop(f);
    assert_true(j->opened);
    assert_false(j->ok[0]);
    expect_text(j->err[0], want);
    job_free(j);
}

static void expect_refused(uint32_t ctx, uint32_t gamma, bool accepted, const char *reason,
                           const char *want_open, const char *want_generate)
{
    new_endpoint();
    struct job *j = job_new(EDGE_SD, 3, 10, 0);
    struct fake f;
    fake_start(&f);
    job_run(j);
    proto_free(fake_expect(&f, TANDEM__ENVELOPE__MSG_HELLO));
    fake_welcome(&f, accepted, reason, ctx, gamma);
    job_wait(j);
    fake_stop(&f);
    if (want_open) {
        assert_false(j->opened);
        expect_text(j->open_err, want_open);
    } else {
        assert_true(j->opened);
        assert_false(j->ok[0]);
        expect_text(j->err[0], want_generate);
    }
    job_free(j);
}

static void test_limits_and_refusals(void **state)
{
    expect_refused(64, 8, false, "server full (2 sessions, the cloud's limit)", "server full", NULL);
    expect_refused(64, 2, true, "", "--gamma 3 exceeds the cloud's limit of 2", NULL);
    expect_refused(8, 8, true, "", NULL, "exceed the context of 8");

    struct fake f;
    struct job *j = faulty_run(&f, 10, 3, 3000, 0);
    fake_error(&f, TANDEM__ERROR_CODE__ERROR_CONTEXT_FULL, f.round, "context full: 62 tokens");
    expect_failed(j, &f, "error 6: context full");

    j = faulty_run(&f, 3, 3, 3000, 0); /* 3 tokens: the only round drafts 2 */
    assert_int_equal(f.n_draft, 2);
    fake_final(&f, 3, 40);
    expect_failed(j, &f, "accepted 3 of 2 draft tokens");

    j = faulty_run(&f, 10, 3, 3000, 0);
    fake_final_of(&f, 0, 0, 40, false);
    expect_failed(j, &f, "bad message from the cloud");

    j = faulty_run(&f, 10, 3, 3000, 0);
    fake_error(&f, TANDEM__ERROR_CODE__ERROR_IDLE, f.round - 1, "session closed after 300 s idle");
    expect_failed(j, &f, "closed the session: session closed after 300 s idle");
}

static void test_cloud_gone(void **state)
{
    new_endpoint(); /* nobody there */
    struct job *j = job_new(EDGE_SD, 3, 10, 1);
    j->cfg.timeout_ms = 300;
    job_run(j);
    job_wait(j);
    assert_false(j->opened);
    expect_text(j->open_err, "no answer from the cloud");
    job_free(j);

    struct fake f; /* gone mid-round, for good */
    j = faulty_run(&f, 10, 3, 300, 1);
    fake_stop(&f);
    job_wait(j);
    assert_false(j->ok[0]);
    expect_text(j->log, "session unknown");
    expect_text(j->err[0], "no answer from the cloud");
    job_free(j);

    j = faulty_run(&f, 10, 3, 300, 0); /* alive but silent: the edge gives up, the round open */
    job_wait(j);
    assert_false(j->ok[0]);
    expect_text(j->err[0], "no answer from the cloud");
    proto_msg *m = fake_recv(&f, 1000); /* its CLOSE on the way out */
    assert_non_null(m);
    assert_int_equal(m->msg_case, TANDEM__ENVELOPE__MSG_CLOSE);
    proto_free(m);
    fake_final(&f, 0, 40);                /* to a client that is gone */
    fake_stop(&f);
    job_free(j);
}

/* ---- the real cloud, restarted under a generation ---- */

static struct cloud *real;
static volatile sig_atomic_t real_stop;
static pthread_t real_thread;

static void *serve(void *arg)
{
    char err[256];
    cloud_serve(real, &real_stop, err, sizeof err);
    return NULL;
}

static void real_start(void)
{
    char err[512];
    struct cloud_config cfg = {.model = TARGET, .bind = endpoint, .max_gamma = 8, .threads = 1};
    real = cloud_new(&cfg, err, sizeof err);
    if (!real)
        fail_msg("%s", err);
    real_stop = 0;
    pthread_create(&real_thread, NULL, serve, NULL);
}

static void real_kill(void)
{
    real_stop = 1;
    pthread_join(real_thread, NULL);
    cloud_free(real);
    real = NULL;
}

/* Greedy output through a cloud restarted after `at` tokens equals the
 * output of an uninterrupted run: the new session carried on exactly. */
static void restart_under(enum edge_mode mode, int at)
{
    new_endpoint();
    real_start();
    struct job *ref = job_new(mode, 3, 24, 0);
    job_run(ref);
    job_wait(ref);
    if (!ref->ok[0])
        fail_msg("%s", ref->err[0]);
    struct job *j = job_new(mode, 3, 24, 1);
    j->gate_at = at;
    job_run(j);
    gate_wait(j);
    real_kill();
    real_start();
    gate_open(j);
    job_wait(j);
    real_kill();
    if (!j->ok[0])
        fail_msg("%s", j->err[0]);
    expect_ids(&j->res[0], ref->res[0].ids, ref->res[0].n_ids);
    assert_int_equal(j->res[0].reconnects, 1);
    expect_text(j->log, "session unknown");
    job_free(ref);
    job_free(j);
}

/* (cloud-ar would stream past any restart point: the scripted cloud covers it) */
static void test_real_cloud_restarted(void **state)
{
    restart_under(EDGE_SD_EE, 5);
    restart_under(EDGE_SD, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_duplicate_unknown_rounds),
        cmocka_unit_test(test_predraft_gives_way_to_final),
        cmocka_unit_test(test_restart_between_rounds),
        cmocka_unit_test(test_restart_mid_round),
        cmocka_unit_test(test_restart_while_streaming),
        cmocka_unit_test(test_restart_without_reconnecting),
        cmocka_unit_test(test_limits_and_refusals),
        cmocka_unit_test(test_cloud_gone),
        cmocka_unit_test(test_real_cloud_restarted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
