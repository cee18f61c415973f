#include "link.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "../engine/clock.h"


static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

bool link_open(struct link *l, void *zctx, const char *endpoint, int timeout_ms,
               const Tandem__Fingerprint *fp, uint32_t max_gamma, char *err, size_t errlen)
{
    *l = (struct link){.endpoint = endpoint, .timeout_ms = timeout_ms, .fp = *fp, .lost = true,
                       .own_zctx = !zctx};
    l->lim = (struct proto_limits){(int32_t)fp->vocab, 0, max_gamma};
    l->zctx = zctx ? zctx : zmq_ctx_new();
    l->sock = l->zctx ? zmq_socket(l->zctx, ZMQ_DEALER) : NULL;
    if (!l->sock)
        return fail(err, errlen, "cannot make a ZeroMQ socket: %s", zmq_strerror(errno));
    /* A routing id of our own, kept across reconnections, so that the
     * cloud (ROUTER_HANDOVER) gives a reconnecting edge its session slot
     * back; random, since whoever presents it takes the session over.
     * ZeroMQ keeps ids starting with a zero byte for itself. */
    uint8_t id[16];
    if (getentropy(id, sizeof id) != 0)
        return fail(err, errlen, "no randomness for the connection's id: %s", strerror(errno));
    id[0] |= 0x80;
    int zero = 0;
    zmq_setsockopt(l->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(l->sock, ZMQ_ROUTING_ID, id, sizeof id);
    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, "inproc://tandem-edge-monitor-%p", (void *)l);
    if (zmq_socket_monitor(l->sock, mon_ep, ZMQ_EVENT_DISCONNECTED) != 0 ||
        !(l->mon = zmq_socket(l->zctx, ZMQ_PAIR)) || zmq_connect(l->mon, mon_ep) != 0)
        return fail(err, errlen, "cannot watch the connection: %s", zmq_strerror(errno));
    if (zmq_connect(l->sock, endpoint) != 0)
        return fail(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
    return true;
}

void link_close(struct link *l)
{
    if (l->sock) {
        if (!l->lost) {
            Tandem__Close c = TANDEM__CLOSE__INIT;
            proto_msg m = TANDEM__ENVELOPE__INIT;
            m.msg_case = TANDEM__ENVELOPE__MSG_CLOSE;
            m.close = &c;
            char err[128];
            int linger = 200; /* long enough for CLOSE to leave, never a hang */
            zmq_setsockopt(l->sock, ZMQ_LINGER, &linger, sizeof linger);
            link_send(l, &m, err, sizeof err);
        }
        zmq_socket_monitor(l->sock, NULL, 0);
        zmq_close(l->sock);
    }
    if (l->mon)
        zmq_close(l->mon);
    if (l->zctx && l->own_zctx)
        zmq_ctx_term(l->zctx);
    *l = (struct link){0};
}

bool link_send(struct link *l, proto_msg *m, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = proto_encode(m, &len);
    if (!buf)
        return fail(err, errlen, "out of memory");
    int rc = zmq_send(l->sock, buf, len, 0);
    free(buf);
    if (rc < 0)
        return fail(err, errlen, "send to %s: %s", l->endpoint, zmq_strerror(errno));
    return true;
}

static uint64_t now_us(void) { return (uint64_t)(clock_now_s() * 1e6); }

bool link_ping(struct link *l, char *err, size_t errlen)
{
    Tandem__Ping p = TANDEM__PING__INIT;
    p.nonce = ++l->nonce;
    p.sent_us = now_us();
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_PING;
    m.ping = &p;
    return link_send(l, &m, err, errlen);
}

void link_rtt_reset(struct link *l)
{
    l->rtt_sum_ms = l->rtt_min_ms = 0;
    l->rtt_n = 0;
}

static void on_pong(struct link *l, const Tandem__Pong *p)
{
    uint64_t now = now_us();
    if (p->nonce == 0 || p->nonce > l->nonce || p->sent_us > now)
        return; /* not an echo of ours */
    double ms = (now - p->sent_us) / 1e3;
    l->rtt_sum_ms += ms;
    l->rtt_min_ms = l->rtt_n == 0 || ms < l->rtt_min_ms ? ms : l->rtt_min_ms;
    l->rtt_n++;
}

/* Reads one event off the monitor: true when it is the connection dropping. */
static bool read_event(struct link *l)
{
    zmq_msg_t f;
    zmq_msg_init(&f);
    uint16_t event = 0;
    if (zmq_msg_recv(&f, l->mon, 0) >= 0 && zmq_msg_size(&f) >= sizeof event)
        memcpy(&event, zmq_msg_data(&f), sizeof event);
    while (zmq_msg_more(&f)) { /* the event's endpoint frame */
        zmq_msg_close(&f);
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, l->mon, 0) < 0)
            break;
    }
    zmq_msg_close(&f);
    return event == ZMQ_EVENT_DISCONNECTED;
}

/* One frame off the socket, decoded; the session-lost answers become
 * LINK_LOST here so that every caller treats them alike. */
static enum link_status read_message(struct link *l, proto_msg **out, char *err, size_t errlen)
{
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, l->sock, 0) < 0) {
        fail(err, errlen, "receive from %s: %s", l->endpoint, zmq_strerror(errno));
        zmq_msg_close(&frame);
        return LINK_FAILED;
    }
    char why[256];
    proto_msg *m = proto_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &l->lim, why, sizeof why);
    zmq_msg_close(&frame);
    if (!m) {
        fail(err, errlen, "bad message from the cloud at %s: %s", l->endpoint, why);
        return LINK_FAILED;
    }
    if (m->msg_case == TANDEM__ENVELOPE__MSG_ERROR &&
        (m->error->code == TANDEM__ERROR_CODE__ERROR_NO_SESSION ||
         m->error->code == TANDEM__ERROR_CODE__ERROR_IDLE)) {
        if (m->error->code == TANDEM__ERROR_CODE__ERROR_IDLE)
            fail(err, errlen, "cloud at %s closed the session: %s", l->endpoint, m->error->text);
        else
            fail(err, errlen, "cloud at %s restarted: session unknown (%s)", l->endpoint,
                 m->error->text);
        l->lost = true;
        proto_free(m);
        return LINK_LOST;
    }
    *out = m;
    return LINK_MESSAGE;
}

enum link_status link_recv(struct link *l, proto_msg **out, double *waited_ms, char *err,
                           size_t errlen)
{
    double t0 = clock_now_s(), deadline = t0 + l->timeout_ms / 1e3;
    enum link_status st;
    for (;;) {
        st = LINK_FAILED;
        zmq_pollitem_t items[2] = {{l->sock, 0, ZMQ_POLLIN, 0}, {l->mon, 0, ZMQ_POLLIN, 0}};
        double left = deadline - clock_now_s();
        int rc = zmq_poll(items, 2, left > 0 ? (long)(left * 1e3) + 1 : 0);
        if (rc < 0 && errno != EINTR) {
            fail(err, errlen, "poll: %s", zmq_strerror(errno));
            break;
        }
        /* Messages before events: what arrived before a drop still counts. */
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
            st = read_message(l, out, err, errlen);
            if (st == LINK_MESSAGE && (*out)->msg_case == TANDEM__ENVELOPE__MSG_PONG) {
                on_pong(l, (*out)->pong);
                proto_free(*out);
                continue;
            }
            break;
        }
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) {
            if (read_event(l)) {
                fail(err, errlen, "cloud at %s restarted or the connection dropped: session unknown",
                     l->endpoint);
                l->lost = true;
                st = LINK_LOST;
                break;
            }
            continue;
        }
        if (rc <= 0 && clock_now_s() >= deadline) {
            fail(err, errlen,
                 "no answer from the cloud at %s for %.1f s (is `tandem cloud` running there?)",
                 l->endpoint, l->timeout_ms / 1e3);
            break;
        }
    }
    if (waited_ms)
        *waited_ms += (clock_now_s() - t0) * 1e3;
    return st;
}

bool link_pending(struct link *l)
{
    zmq_pollitem_t items[2] = {{l->sock, 0, ZMQ_POLLIN, 0}, {l->mon, 0, ZMQ_POLLIN, 0}};
    return zmq_poll(items, 2, 0) > 0;
}

static bool send_hello(struct link *l, char *err, size_t errlen)
{
    Tandem__Hello h = TANDEM__HELLO__INIT;
    h.version = TANDEM_PROTO_VERSION;
    h.fingerprint = &l->fp;
    h.client = "tandem-edge";
    proto_msg m = TANDEM__ENVELOPE__INIT;
    m.msg_case = TANDEM__ENVELOPE__MSG_HELLO;
    m.hello = &h;
    return link_send(l, &m, err, errlen);
}

bool link_handshake(struct link *l, char *err, size_t errlen)
{
    if (!send_hello(l, err, errlen))
        return false;
    for (;;) {
        proto_msg *m = NULL;
        enum link_status st = link_recv(l, &m, NULL, err, errlen);
        if (st == LINK_FAILED)
            return false;
        if (st == LINK_LOST) {
            /* The cloud's answer to a message sent before this HELLO, or a
             * drop that may have taken the HELLO with it: say it again. A
             * second HELLO only resets the new session once more. */
            if (!send_hello(l, err, errlen))
                return false;
            continue;
        }
        bool ok = true, done = true;
        if (m->msg_case == TANDEM__ENVELOPE__MSG_ERROR && m->error->round == 0) {
            ok = fail(err, errlen, "the cloud at %s reports error %d: %s", l->endpoint,
                      (int)m->error->code, m->error->text);
        } else if (m->msg_case != TANDEM__ENVELOPE__MSG_WELCOME) {
            done = false; /* left over from a lost session (a round's answer): skip */
        } else if (!m->welcome->accepted) {
            ok = fail(err, errlen, "the cloud refused this draft: %s", m->welcome->reason);
        } else if (m->welcome->fingerprint->tokenizer_hash != l->fp.tokenizer_hash ||
                   m->welcome->fingerprint->vocab != l->fp.vocab) {
            ok = fail(err, errlen, "the cloud's model does not share this draft's tokenizer");
        } else {
            l->cloud_ctx = m->welcome->max_context;
            l->cloud_gamma = m->welcome->max_gamma;
            l->lost = false;
        }
        proto_free(m);
        if (done)
            return ok;
    }
}
