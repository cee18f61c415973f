/* The WAN emulator (tools/link.h) in-process between a DEALER client and a
 * ROUTER echo server: bytes and order are kept, each client gets its own
 * connection to the server, and no message arrives before the link model
 * says it may (lower bounds only: how much later is measured, not tested). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "tools/wan_relay.h"
#include "engine/clock.h"

/* ---- an echo server: every message back to its sender, prefixed by the
 * sender's number in order of first contact ---- */

struct echo {
    void *zctx, *router;
    char endpoint[128];
    volatile sig_atomic_t stop;
    pthread_t thread;
};

static void *echo_serve(void *arg)
{
    struct echo *e = arg;
    uint8_t ids[8][256];
    int id_lens[8], n_ids = 0;
    while (!e->stop) {
        zmq_pollitem_t item = {e->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 20) <= 0)
            continue;
        uint8_t id[256];
        static char body[1 << 20];
        int id_len = zmq_recv(e->router, id, sizeof id, 0);
        int n = zmq_recv(e->router, body + 1, sizeof body - 1, 0);
        if (id_len <= 0 || n < 0)
            continue;
        int who = -1;
        for (int i = 0; i < n_ids; i++)
            if (id_lens[i] == id_len && memcmp(ids[i], id, (size_t)id_len) == 0)
                who = i;
        if (who < 0 && n_ids < 8) {
            memcpy(ids[n_ids], id, (size_t)id_len);
            id_lens[n_ids] = id_len;
            who = n_ids++;
        }
        body[0] = (char)('0' + who);
        zmq_send(e->router, id, (size_t)id_len, ZMQ_SNDMORE);
        zmq_send(e->router, body, (size_t)n + 1, 0);
    }
    return NULL;
}

struct fixture {
    struct echo echo;
    struct wan_relay *link;
    volatile sig_atomic_t link_stop;
    pthread_t link_thread;
    char link_ep[128];
    void *zctx;
};

static void *link_thread(void *arg)
{
    struct fixture *f = arg;
    char err[256];
    wan_relay_run(f->link, &f->link_stop, err, sizeof err);
    return NULL;
}

static struct fixture *start(double rtt_ms, double rate_bps)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    int zero = 0;
    snprintf(f.echo.endpoint, sizeof f.echo.endpoint, "ipc:///tmp/tandem-test-echo-%d", (int)getpid());
    snprintf(f.link_ep, sizeof f.link_ep, "ipc:///tmp/tandem-test-link-%d", (int)getpid());
    f.echo.zctx = zmq_ctx_new();
    f.echo.router = zmq_socket(f.echo.zctx, ZMQ_ROUTER);
    zmq_setsockopt(f.echo.router, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(f.echo.router, f.echo.endpoint), 0);
    pthread_create(&f.echo.thread, NULL, echo_serve, &f.echo);

    char err[256];
    struct wan_config cfg = {.listen = f.link_ep, .forward = f.echo.endpoint, .rtt_ms = rtt_ms,
                              .rate_bps = rate_bps, .seed = 7};
    f.link = wan_relay_new(&cfg, err, sizeof err);
    if (!f.link)
        fail_msg("%s", err);
    pthread_create(&f.link_thread, NULL, link_thread, &f);
    f.zctx = zmq_ctx_new();
    return &f;
}

static void *client(struct fixture *f)
{
    void *s = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(zmq_connect(s, f->link_ep), 0);
    return s;
}

static void stop(struct fixture *f, struct wan_stats *st)
{
    f->link_stop = 1;
    pthread_join(f->link_thread, NULL);
    if (st)
        wan_relay_get_stats(f->link, st);
    wan_relay_free(f->link);
    f->echo.stop = 1;
    pthread_join(f->echo.thread, NULL);
    zmq_close(f->echo.router);
    zmq_ctx_term(f->echo.zctx);
    zmq_ctx_term(f->zctx);
}

/* ---- tests ---- */

static void test_parse_units(void **state)
{
    double v;
    assert_true(wan_parse_ms("50ms", &v) && v == 50);
    assert_true(wan_parse_ms("0.2s", &v) && v == 200);
    assert_true(wan_parse_ms("500us", &v) && v == 0.5);
    assert_true(wan_parse_ms("7", &v) && v == 7);
    assert_true(wan_parse_rate("20mbit", &v) && v == 20e6);
    assert_true(wan_parse_rate("512kbit", &v) && v == 512e3);
    assert_true(wan_parse_rate("8000", &v) && v == 8000);
    assert_false(wan_parse_ms("fast", &v));
    assert_false(wan_parse_ms("-5ms", &v));
    assert_false(wan_parse_ms("5 parsecs", &v));
    assert_false(wan_parse_rate("20mb/s", &v));
    assert_false(wan_parse_rate("", &v));
}

static void test_bad_endpoints(void **state)
{
    char err[256];
    struct wan_config cfg = {.listen = "nonsense://x", .forward = "tcp://127.0.0.1:1"};
    assert_null(wan_relay_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "nonsense://x"));
    cfg.listen = "inproc://tandem-test-ok";
    cfg.forward = "bogus";
    assert_null(wan_relay_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "bogus"));
}

/* Bytes, order and per-client routing survive the relay. */
static void test_relays_in_order(void **state)
{
    struct fixture *f = start(0, 0);
    void *a = client(f), *b = client(f);
    char buf[64];
    for (int i = 0; i < 50; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "m%d", i);
        assert_int_equal(zmq_send(a, msg, (size_t)n, 0), n);
    }
    assert_int_equal(zmq_send(b, "hello", 5, 0), 5);
    for (int i = 0; i < 50; i++) {
        char want[32];
        int n = snprintf(want, sizeof want, "0m%d", i); /* a spoke first: sender 0 */
        int got = zmq_recv(a, buf, sizeof buf, 0);
        assert_int_equal(got, n);
        assert_memory_equal(buf, want, (size_t)n);
    }
    int got = zmq_recv(b, buf, sizeof buf, 0);
    assert_int_equal(got, 6);
    assert_memory_equal(buf, "1hello", 6); /* b is a different peer to the server */
    zmq_close(a);
    zmq_close(b);
    struct wan_stats st;
    stop(f, &st);
    assert_int_equal(st.messages[0], 51);
    assert_int_equal(st.messages[1], 51);
    assert_int_equal(st.clients, 2);
    assert_int_equal(st.dropped[0] + st.dropped[1], 0);
}

/* A round trip through a 40 ms link takes at least 40 ms. */
static void test_delay_lower_bound(void **state)
{
    struct fixture *f = start(40, 0);
    void *a = client(f);
    char buf[16];
    for (int i = 0; i < 3; i++) {
        double t0 = clock_now_s();
        assert_int_equal(zmq_send(a, "x", 1, 0), 1);
        assert_int_equal(zmq_recv(a, buf, sizeof buf, 0), 2);
        double rtt_ms = (clock_now_s() - t0) * 1e3;
        assert_true(rtt_ms >= 40.0);
    }
    zmq_close(a);
    struct wan_stats st;
    stop(f, &st);
    assert_true(st.late_max_ms[0] >= 0 && st.late_max_ms[1] >= 0);
}

/* 100 kB each way at 8 Mbit/s: at least 2 x 100 ms on the wire. */
static void test_rate_lower_bound(void **state)
{
    struct fixture *f = start(0, 8e6);
    void *a = client(f);
    static char big[100000], back[100001];
    memset(big, 'z', sizeof big);
    double t0 = clock_now_s();
    assert_int_equal(zmq_send(a, big, sizeof big, 0), (int)sizeof big);
    assert_int_equal(zmq_recv(a, back, sizeof back, 0), (int)sizeof back);
    double ms = (clock_now_s() - t0) * 1e3;
    assert_true(ms >= 2 * 100.0);
    assert_memory_equal(back + 1, big, sizeof big);
    zmq_close(a);
    stop(f, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_units),
        cmocka_unit_test(test_bad_endpoints),
        cmocka_unit_test(test_relays_in_order),
        cmocka_unit_test(test_delay_lower_bound),
        cmocka_unit_test(test_rate_lower_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
