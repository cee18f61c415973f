/* The cloud server in-process (cloud/cloud.h), driven by raw DEALER sockets:
 * garbage, wrong versions, out-of-vocabulary ids, messages out of order,
 * stale and duplicated rounds, too many sessions and idle sessions each get
 * the documented answer, and the server keeps serving a well-behaved client
 * throughout. Under ASan: no leak from sessions that vanish or are evicted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "cloud/cloud.h"
#include "engine/model.h"
#include "proto/codec.h"
#include "weights/tokenizer.h"

#define MODEL "tests/golden/fixtures/tiny-llama-f32.gguf"

static struct cloud *cl;
static volatile sig_atomic_t stop;
static pthread_t thread;
static void *zctx;
static char endpoint[128];
static Tandem__Fingerprint fp = TANDEM__FINGERPRINT__INIT;
static int vocab;
static void *sockets[16]; /* every client socket, closed at teardown even after a failed test */
static int n_sockets;

static void *serve(void *arg)
{
    char err[256];
    cloud_serve(cl, &stop, err, sizeof err);
    return NULL;
}

static int setup(void **state)
{
    char err[512];
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/tandem-test-cloud-%d.sock", (int)getpid());
    struct cloud_config cfg = {.model = MODEL, .bind = endpoint, .max_sessions = 2, .ctx = 64,
                               .idle_s = 0.5, .max_gamma = 8, .threads = 1};
    cl = cloud_new(&cfg, err, sizeof err);
    if (!cl)
        fail_msg("%s", err);
    struct model *m = model_load(MODEL, err, sizeof err);
    struct tokenizer *t = tokenizer_load(m->file, err, sizeof err);
    fp.tokenizer_hash = tokenizer_hash(t);
    fp.vocab = vocab = m->cfg.vocab;
    fp.bos = tokenizer_bos(t);
    fp.eos = tokenizer_eos(t);
    tokenizer_free(t);
    model_free(m);
    zctx = zmq_ctx_new();
    pthread_create(&thread, NULL, serve, NULL);
    return 0;
}

static int teardown(void **state)
{
    stop = 1;
    pthread_join(thread, NULL);
    cloud_free(cl);
    for (int i = 0; i < n_sockets; i++)
        zmq_close(sockets[i]);
    zmq_ctx_term(zctx);
    return 0;
}

static void *client(void)
{
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    assert_true(n_sockets < 16);
    sockets[n_sockets++] = s;
    return s;
}

/* The client process ends: its socket closes with a round in flight. */
static void client_gone(void *s)
{
    for (int i = 0; i < n_sockets; i++)
        if (sockets[i] == s) {
            zmq_close(s);
            sockets[i] = sockets[--n_sockets];
            return;
        }
}

static void send_raw(void *s, const void *buf, size_t len) { assert_true(zmq_send(s, buf, len, 0) >= 0); }

static void send_msg(void *s, proto_msg *m)
{
    size_t len;
    uint8_t *buf = proto_encode(m, &len);
    send_raw(s, buf, len);
    free(buf);
}

/* The next message, or NULL after ms of silence. */
static proto_msg *recv_msg(void *s, int ms)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return NULL;
    zmq_msg_t f;
    zmq_msg_init(&f);
    zmq_msg_recv(&f, s, 0);
    char err[256];
    struct proto_limits lim = {vocab, 0, 0};
    proto_msg *m = proto_decode(zmq_msg_data(&f), zmq_msg_size(&f), &lim, err, sizeof err);
    zmq_msg_close(&f);
    if (!m)
        fail_msg("the cloud sent a bad message: %s", err);
    return m;
}

static proto_msg *expect(void *s, Tandem__Envelope__MsgCase kind)
{
    proto_msg *m = recv_msg(s, 3000);
    if (!m)
        fail_msg("no %s from the cloud", proto_kind_name(kind));
    if (m->msg_case != kind)
        fail_msg("expected %s, got %s%s%s", proto_kind_name(kind), proto_kind_name(m->msg_case),
                 m->msg_case == TANDEM__ENVELOPE__MSG_ERROR ? ": " : "",
                 m->msg_case == TANDEM__ENVELOPE__MSG_ERROR ? m->error->text : "");
    return m;
}

static void expect_error(void *s, Tandem__ErrorCode code, const char *text)
{
    proto_msg *m = expect(s, TANDEM__ENVELOPE__MSG_ERROR);
    if (m->error->code != code || !strstr(m->error->text, text))
        fail_msg("expected error %d '%s', got %d '%s'", code, text, m->error->code, m->error->text);
    proto_free(m);
}

static void hello(void *s)
{
    Tandem__Hello h = TANDEM__HELLO__INIT;
    h.version = TANDEM_PROTO_VERSION;
    h.fingerprint = &fp;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_HELLO;
    m.hello = &h;
    send_msg(s, &m);
}

static void open_session(void *s, int32_t *prompt, int n)
{
    Tandem__Open o = TANDEM__OPEN__INIT;
    o.n_prompt = n;
    o.prompt = prompt;
    o.max_tokens = 16;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_OPEN;
    m.open = &o;
    send_msg(s, &m);
}

static void draft(void *s, uint64_t round, uint32_t start, int32_t *tokens, int n)
{
    Tandem__Draft d = TANDEM__DRAFT__INIT;
    d.round = round;
    d.start = start;
    d.n_tokens = n;
    d.tokens = tokens;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_DRAFT;
    m.draft = &d;
    send_msg(s, &m);
}

/* A full session: handshake, open, a round; returns the committed length. */
static int good_round(void *s, uint64_t round)
{
    hello(s);
    proto_msg *w = expect(s, TANDEM__ENVELOPE__MSG_WELCOME);
    assert_true(w->welcome->accepted);
    proto_free(w);
    int32_t prompt[3] = {1, 2, 3}, toks[2] = {4, 5};
    open_session(s, prompt, 3);
    draft(s, round, 3, toks, 2);
    proto_msg *f = expect(s, TANDEM__ENVELOPE__MSG_FINAL);
    int n = 3 + (int)f->final->accepted + 1;
    assert_true(f->final->accepted <= 2);
    proto_free(f);
    return n;
}

static void test_hostile_input(void **state)
{
    void *bad = client(), *good = client();
    good_round(good, 1);
    send_raw(bad, "\xff\xff\xff garbage", 12);
    expect_error(bad, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, "not a tandem Envelope");
    const uint8_t v2[] = {0x08, 0x02, 0x5a, 0x00}; /* version 2, PING */
    send_raw(bad, v2, sizeof v2);
    expect_error(bad, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, "protocol version 2");
    int32_t toks[1] = {0};
    draft(bad, 9, 0, toks, 1);
    proto_msg *e = expect(bad, TANDEM__ENVELOPE__MSG_ERROR); /* names the round it answers */
    assert_int_equal(e->error->code, TANDEM__ERROR_CODE__ERROR_NO_SESSION);
    assert_int_equal(e->error->round, 9);
    assert_non_null(strstr(e->error->text, "send HELLO first"));
    proto_free(e);
    hello(bad);
    proto_free(expect(bad, TANDEM__ENVELOPE__MSG_WELCOME));
    draft(bad, 1, 0, toks, 1);
    expect_error(bad, TANDEM__ERROR_CODE__ERROR_STATE, "DRAFT before OPEN");
    int32_t out_of_vocab[2] = {1, vocab};
    open_session(bad, out_of_vocab, 2);
    expect_error(bad, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, "outside the vocabulary");
    int32_t nine[9] = {0};
    draft(bad, 1, 0, nine, 9);
    expect_error(bad, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, "exceeds the most draft tokens");
    zmq_send(bad, "a", 1, ZMQ_SNDMORE);
    zmq_send(bad, "b", 1, 0);
    expect_error(bad, TANDEM__ERROR_CODE__ERROR_BAD_MESSAGE, "exactly one frame");
    /* the well-behaved client's session went on undisturbed */
    int32_t more[1] = {7};
    draft(good, 2, 0, more, 1); /* wrong start: an error naming it, session kept */
    expect_error(good, TANDEM__ERROR_CODE__ERROR_STATE, "starts at position 0");
}

/* Clients that vanish keep their session until the idle limit (0.5 s here)
 * reclaims it: wait that out so each test starts with free slots. */
static void quiesce(void) { usleep(800 * 1000); }

static void test_stale_and_duplicate_rounds(void **state)
{
    quiesce();
    void *s = client();
    int n = good_round(s, 5);
    int32_t toks[2] = {4, 5};
    draft(s, 5, n, toks, 2); /* the same round again: dropped */
    draft(s, 3, n, toks, 2); /* an older round: dropped */
    draft(s, 6, n, toks, 2);
    proto_msg *f = expect(s, TANDEM__ENVELOPE__MSG_FINAL);
    assert_int_equal(f->final->round, 6);
    proto_free(f);
    assert_null(recv_msg(s, 200)); /* and nothing for the dropped ones */
}

static void test_limits(void **state)
{
    quiesce();
    void *a = client(), *b = client(), *c = client();
    good_round(a, 1);
    good_round(b, 1);
    hello(c); /* max_sessions = 2 */
    proto_msg *w = expect(c, TANDEM__ENVELOPE__MSG_WELCOME);
    assert_false(w->welcome->accepted);
    assert_non_null(strstr(w->welcome->reason, "server full"));
    proto_free(w);
    /* a and b go idle: evicted with an ERROR, after which c gets in */
    expect_error(a, TANDEM__ERROR_CODE__ERROR_IDLE, "idle");
    expect_error(b, TANDEM__ERROR_CODE__ERROR_IDLE, "idle");
    int n = good_round(c, 1);
    /* context: 64 positions */
    int32_t toks[8] = {0};
    uint64_t round = 2;
    proto_msg *m = NULL;
    for (;;) {
        draft(c, round++, n, toks, 8);
        m = expect(c, n + 8 + 1 > 64 ? TANDEM__ENVELOPE__MSG_ERROR : TANDEM__ENVELOPE__MSG_FINAL);
        if (m->msg_case == TANDEM__ENVELOPE__MSG_ERROR)
            break;
        n += m->final->accepted + 1;
        proto_free(m);
    }
    assert_int_equal(m->error->code, TANDEM__ERROR_CODE__ERROR_CONTEXT_FULL);
    proto_free(m);
    draft(c, round, n, toks, 1);
    expect_error(c, TANDEM__ERROR_CODE__ERROR_NO_SESSION, "HELLO");
}

/* A client gone in the middle of a round: its FINAL goes nowhere, the
 * others are served, and the idle limit gives its slot back. */
static void test_client_vanishes_mid_round(void **state)
{
    quiesce();
    void *gone = client(), *other = client();
    int n = good_round(gone, 1);
    int32_t toks[8] = {4, 5, 6, 7, 8, 9, 10, 11};
    draft(gone, 2, n, toks, 8);
    client_gone(gone);
    good_round(other, 1);
    quiesce();
    /* both slots free again: two new sessions get in (max_sessions = 2) */
    void *a = client(), *b = client();
    good_round(a, 1);
    good_round(b, 1);
}

static void test_refused_pair(void **state)
{
    void *s = client();
    Tandem__Fingerprint other = fp;
    other.tokenizer_hash ^= 1;
    Tandem__Hello h = TANDEM__HELLO__INIT;
    h.version = TANDEM_PROTO_VERSION;
    h.fingerprint = &other;
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_HELLO;
    m.hello = &h;
    send_msg(s, &m);
    proto_msg *w = expect(s, TANDEM__ENVELOPE__MSG_WELCOME);
    assert_false(w->welcome->accepted);
    assert_non_null(strstr(w->welcome->reason, "tokenizers differ"));
    proto_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_stale_and_duplicate_rounds),
        cmocka_unit_test(test_client_vanishes_mid_round),
        cmocka_unit_test(test_refused_pair),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
