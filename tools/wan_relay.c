/* The WAN emulator's relay loop (see link.h for the link model). */
#include "wan_relay.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zmq.h>

#include "../engine/sample.h"
#include "../engine/clock.h"

#define MAX_FRAMES 16      /* frames of one message; more are a malformed peer */
#define MAX_ID 255         /* ZeroMQ routing ids are at most 255 bytes */
#define IDLE_FREE_S 600.0  /* a client silent this long is forgotten */
#define POLL_CAP_MS 100    /* check the stop flag at least this often */

enum { UP = 0, DOWN = 1 }; /* client -> server, server -> client */

struct held {
    double t_deliver;
    int n_frames;
    zmq_msg_t frames[MAX_FRAMES];
    struct held *next;
};

struct direction {
    struct held *head, *tail;
    int queued;
    double tx_free_at;   /* when the wire is free for the next message */
    double last_deliver; /* FIFO: none delivered before this */
};

struct client {
    uint8_t id[MAX_ID];
    size_t id_len;
    void *dealer;
    struct direction dir[2];
    double last_seen;
};

struct wan_relay {
    struct wan_config cfg;
    void *zctx, *router;
    struct client *clients;
    int n_clients;
    struct rng rng;
    struct wan_stats stats;
    uint64_t delivered[2];
    double late_sum_ms[2];
};

static bool fail(char *err, size_t errlen, const char *what, const char *ep)
{
    snprintf(err, errlen, "%s %s: %s", what, ep, zmq_strerror(errno));
    return false;
}

/* ---- parsing of the CLI's units ---- */

static bool parse_scaled(const char *s, const char *const *units, const double *scale,
                         int n_units, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return false;
    if (*end == '\0') {
        *out = v * scale[0];
        return true;
    }
    for (int i = 1; i < n_units; i++) {
        if (strcasecmp(end, units[i]) == 0) {
            *out = v * scale[i];
            return true;
        }
    }
    return false;
}

bool wan_parse_ms(const char *s, double *ms)
{
    static const char *const units[] = {"", "ms", "s", "us"};
    static const double scale[] = {1, 1, 1e3, 1e-3};
    return parse_scaled(s, units, scale, 4, ms);
}

bool wan_parse_rate(const char *s, double *bps)
{
    static const char *const units[] = {"", "bit", "kbit", "mbit", "gbit"};
    static const double scale[] = {1, 1, 1e3, 1e6, 1e9};
    return parse_scaled(s, units, scale, 5, bps);
}

/* ---- queues ---- */

static void held_free(struct held *h)
{
    for (int i = 0; i < h->n_frames; i++)
        zmq_msg_close(&h->frames[i]);
    free(h);
}

static double normal(struct rng *r)
{
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* Puts a received message on the wire of direction d (link.h's model). */
static void schedule(struct wan_relay *l, struct client *c, int d, struct held *h, size_t bytes,
                     double now)
{
    struct direction *dir = &c->dir[d];
    if (dir->queued >= l->cfg.max_queue) {
        l->stats.dropped[d]++;
        held_free(h);
        return;
    }
    double t_tx = now > dir->tx_free_at ? now : dir->tx_free_at;
    double t_tx_end = t_tx + (l->cfg.rate_bps > 0 ? 8.0 * (double)bytes / l->cfg.rate_bps : 0);
    dir->tx_free_at = t_tx_end;
    double delay_ms = l->cfg.rtt_ms / 2 + (l->cfg.jitter_ms > 0 ? l->cfg.jitter_ms * normal(&l->rng) : 0);
    double t = t_tx_end + (delay_ms > 0 ? delay_ms * 1e-3 : 0);
    h->t_deliver = t > dir->last_deliver ? t : dir->last_deliver;
    dir->last_deliver = h->t_deliver;
    if (dir->tail)
        dir->tail->next = h;
    else
        dir->head = h;
    dir->tail = h;
    dir->queued++;
    l->stats.messages[d]++;
    l->stats.bytes[d] += bytes;
}

/* Receives the remaining frames of a message into a new held message; the
 * total payload size goes to *bytes. NULL if the peer sent too many frames
 * (the rest are drained and the message dropped). */
static struct held *recv_frames(void *sock, size_t *bytes)
{
    struct held *h = calloc(1, sizeof *h);
    int more = 1;
    size_t more_len = sizeof more;
    *bytes = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_len);
        if (h && h->n_frames < MAX_FRAMES) {
            *bytes += zmq_msg_size(&m);
            zmq_msg_init(&h->frames[h->n_frames]);
            zmq_msg_move(&h->frames[h->n_frames++], &m);
        } else if (h) {
            held_free(h);
            h = NULL;
        }
        zmq_msg_close(&m);
    }
    if (h && h->n_frames == 0) {
        free(h);
        h = NULL;
    }
    return h;
}

/* ---- clients ---- */

static void client_close(struct client *c)
{
    for (int d = 0; d < 2; d++) {
        while (c->dir[d].head) {
            struct held *next = c->dir[d].head->next;
            held_free(c->dir[d].head);
            c->dir[d].head = next;
        }
    }
    zmq_close(c->dealer);
}

static struct client *client_find(struct wan_relay *l, const uint8_t *id, size_t id_len)
{
    for (int i = 0; i < l->n_clients; i++)
        if (l->clients[i].id_len == id_len && memcmp(l->clients[i].id, id, id_len) == 0)
            return &l->clients[i];
    return NULL;
}

static void forget_idle_clients(struct wan_relay *l, double now)
{
    for (int i = 0; i < l->n_clients;) {
        struct client *c = &l->clients[i];
        if (now - c->last_seen > IDLE_FREE_S && !c->dir[UP].head && !c->dir[DOWN].head) {
            client_close(c);
            l->clients[i] = l->clients[--l->n_clients];
        } else {
            i++;
        }
    }
}

static struct client *client_add(struct wan_relay *l, const uint8_t *id, size_t id_len, double now)
{
    forget_idle_clients(l, now);
    if (l->n_clients >= l->cfg.max_clients)
        return NULL;
    void *dealer = zmq_socket(l->zctx, ZMQ_DEALER);
    int zero = 0;
    if (!dealer)
        return NULL;
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(dealer, l->cfg.forward) != 0) {
        zmq_close(dealer);
        return NULL;
    }
    struct client *c = &l->clients[l->n_clients++];
    memset(c, 0, sizeof *c);
    memcpy(c->id, id, id_len);
    c->id_len = id_len;
    c->dealer = dealer;
    if (l->cfg.verbose)
        fprintf(stderr, "tandem link: client %d connected\n", l->n_clients);
    if (l->n_clients > l->stats.clients)
        l->stats.clients = l->n_clients;
    return c;
}

/* ---- the loop ---- */

static void on_router(struct wan_relay *l, double now)
{
    uint8_t id[MAX_ID];
    int id_len = zmq_recv(l->router, id, sizeof id, ZMQ_DONTWAIT);
    if (id_len <= 0)
        return;
    size_t bytes;
    struct held *h = recv_frames(l->router, &bytes);
    if (!h)
        return;
    struct client *c = client_find(l, id, (size_t)id_len);
    if (!c)
        c = client_add(l, id, (size_t)id_len, now);
    if (!c) {
        l->stats.dropped[UP]++;
        held_free(h);
        return;
    }
    c->last_seen = now;
    schedule(l, c, UP, h, bytes, now);
}

static void on_dealer(struct wan_relay *l, struct client *c, double now)
{
    size_t bytes;
    struct held *h = recv_frames(c->dealer, &bytes);
    if (h)
        schedule(l, c, DOWN, h, bytes, now);
}

static void send_held(struct wan_relay *l, struct client *c, int d, struct held *h)
{
    void *sock = d == UP ? c->dealer : l->router;
    if (d == DOWN)
        zmq_send(sock, c->id, c->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    for (int i = 0; i < h->n_frames; i++)
        zmq_msg_send(&h->frames[i], sock, (i + 1 < h->n_frames ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
}

/* Sends every message that is due; returns the earliest time still pending
 * (INFINITY if none). */
static double deliver_due(struct wan_relay *l)
{
    double next = INFINITY;
    for (int i = 0; i < l->n_clients; i++) {
        struct client *c = &l->clients[i];
        for (int d = 0; d < 2; d++) {
            struct direction *dir = &c->dir[d];
            while (dir->head) {
                double now = clock_now_s();
                struct held *h = dir->head;
                if (h->t_deliver > now) {
                    if (h->t_deliver < next)
                        next = h->t_deliver;
                    break;
                }
                send_held(l, c, d, h);
                double late = (now - h->t_deliver) * 1e3;
                l->late_sum_ms[d] += late;
                l->delivered[d]++;
                if (late > l->stats.late_max_ms[d])
                    l->stats.late_max_ms[d] = late;
                dir->head = h->next;
                if (!dir->head)
                    dir->tail = NULL;
                dir->queued--;
                held_free(h);
            }
        }
    }
    return next;
}

/* Sleeps the last fraction of a millisecond that zmq_poll cannot time. */
static void sleep_until(double t)
{
    double dt = t - clock_now_s();
    if (dt <= 0)
        return;
    struct timespec ts = {0, (long)(dt * 1e9)};
    nanosleep(&ts, NULL);
}

bool wan_relay_run(struct wan_relay *l, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    zmq_pollitem_t *items = NULL;
    int cap = 0;
    bool ok = true;
    while (!*stop) {
        double next = deliver_due(l);
        double wait_ms = isinf(next) ? POLL_CAP_MS : (next - clock_now_s()) * 1e3;
        if (wait_ms < 1.0 && wait_ms > 0) {
            sleep_until(next);
            continue;
        }
        int n = 1 + l->n_clients;
        if (n > cap) {
            cap = n * 2;
            zmq_pollitem_t *grown = realloc(items, sizeof *items * (size_t)cap);
            if (!grown) {
                snprintf(err, errlen, "out of memory");
                ok = false;
                break;
            }
            items = grown;
        }
        items[0] = (zmq_pollitem_t){l->router, 0, ZMQ_POLLIN, 0};
        for (int i = 0; i < l->n_clients; i++)
            items[1 + i] = (zmq_pollitem_t){l->clients[i].dealer, 0, ZMQ_POLLIN, 0};
        long timeout = wait_ms <= 0 ? 0 : wait_ms > POLL_CAP_MS ? POLL_CAP_MS : (long)wait_ms;
        int rc = zmq_poll(items, n, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "poll: %s", zmq_strerror(errno));
            ok = false;
            break;
        }
        double now = clock_now_s();
        /* Dealers first: on_router may add clients and move the array. */
        int n_polled = n - 1;
        for (int i = 0; i < n_polled; i++)
            if (items[1 + i].revents & ZMQ_POLLIN)
                on_dealer(l, &l->clients[i], now);
        if (items[0].revents & ZMQ_POLLIN)
            on_router(l, now);
    }
    free(items);
    return ok;
}

struct wan_relay *wan_relay_new(const struct wan_config *cfg, char *err, size_t errlen)
{
    struct wan_relay *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->cfg = *cfg;
    if (l->cfg.max_clients <= 0)
        l->cfg.max_clients = 64;
    if (l->cfg.max_queue <= 0)
        l->cfg.max_queue = 4096;
    rng_seed(&l->rng, cfg->seed);
    l->clients = calloc((size_t)l->cfg.max_clients, sizeof *l->clients);
    l->zctx = zmq_ctx_new();
    l->router = l->zctx ? zmq_socket(l->zctx, ZMQ_ROUTER) : NULL;
    int zero = 0;
    if (l->router)
        zmq_setsockopt(l->router, ZMQ_LINGER, &zero, sizeof zero);
    if (!l->clients || !l->router || zmq_bind(l->router, cfg->listen) != 0) {
        fail(err, errlen, "cannot listen on", cfg->listen);
        wan_relay_free(l);
        return NULL;
    }
    /* The forward endpoint is only dialled when a client arrives; check it
     * now so a typo is reported at start, not at the first message. */
    void *probe = zmq_socket(l->zctx, ZMQ_DEALER);
    bool forward_ok = probe && zmq_connect(probe, cfg->forward) == 0;
    if (!forward_ok)
        fail(err, errlen, "cannot connect to", cfg->forward);
    if (probe) {
        zmq_setsockopt(probe, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(probe);
    }
    if (!forward_ok) {
        wan_relay_free(l);
        return NULL;
    }
    return l;
}

void wan_relay_get_stats(const struct wan_relay *l, struct wan_stats *out)
{
    *out = l->stats;
    for (int d = 0; d < 2; d++) {
        out->late_mean_ms[d] = l->delivered[d] ? l->late_sum_ms[d] / (double)l->delivered[d] : 0;
    }
}

void wan_relay_free(struct wan_relay *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n_clients; i++)
        client_close(&l->clients[i]);
    free(l->clients);
    if (l->router)
        zmq_close(l->router);
    if (l->zctx)
        zmq_ctx_term(l->zctx);
    free(l);
}
