/* The edge's connection to the cloud (internal to edge/): a DEALER socket
 * under a routing id of its own, a monitor that notices the connection
 * dropping, the handshake, PING round trips, and receiving with a deadline.
 *
 * A session lives in one cloud process. When the connection drops (the
 * cloud restarted, or the network failed) or the cloud says it does not
 * know the session (restarted between two messages, or evicted it), the
 * session is gone: link_recv says so and sets `lost`, and the next
 * link_handshake opens a new one. ZeroMQ reconnects the socket by itself;
 * a message sent meanwhile waits for the new connection. */
#ifndef TANDEM_EDGE_LINK_H
#define TANDEM_EDGE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/codec.h"

struct link {
    const char *endpoint;
    int timeout_ms;               /* longest silence before giving up */
    void *zctx, *sock, *mon;      /* mon: the socket's DISCONNECTED events */
    bool own_zctx;
    struct proto_limits lim;      /* what the edge accepts from the cloud */
    Tandem__Fingerprint fp;       /* the draft's, sent in HELLO */
    uint32_t cloud_ctx, cloud_gamma; /* the cloud's limits, from WELCOME */
    bool lost;                    /* no session on the cloud: handshake first */
    uint64_t nonce;               /* of the last PING */
    double rtt_sum_ms, rtt_min_ms; /* PING round trips since link_rtt_reset */
    int rtt_n;
};

enum link_status {
    LINK_MESSAGE, /* *out holds a message (never a PONG: those are timed and dropped) */
    LINK_LOST,    /* the session is gone; err says why (restart, drop, eviction) */
    LINK_FAILED,  /* timeout, a socket error or a bad message; err says which */
};

/* Connects (ZeroMQ connects lazily: nothing is known to be there yet),
 * in zctx when given (borrowed), else in a context of its own. */
bool link_open(struct link *l, void *zctx, const char *endpoint, int timeout_ms,
               const Tandem__Fingerprint *fp, uint32_t max_gamma, char *err, size_t errlen);
/* Says CLOSE if a session is open, then closes. Safe on a zeroed link. */
void link_close(struct link *l);

/* HELLO until WELCOME: leftovers of a lost session are skipped, a drop on
 * the way repeats the HELLO. false and err when refused or on timeout. */
bool link_handshake(struct link *l, char *err, size_t errlen);

bool link_send(struct link *l, proto_msg *m, char *err, size_t errlen);
/* A PING; its PONG, whenever link_recv meets it, adds an RTT sample. */
bool link_ping(struct link *l, char *err, size_t errlen);
void link_rtt_reset(struct link *l);

/* The next message, waiting at most timeout_ms; waited_ms (optional) grows
 * by the time spent waiting. ERROR messages other than a lost session come
 * back as messages. */
enum link_status link_recv(struct link *l, proto_msg **out, double *waited_ms, char *err,
                           size_t errlen);
/* Whether link_recv has something to say at once (a message or a drop). */
bool link_pending(struct link *l);

#endif
