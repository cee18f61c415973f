/* A user-space WAN emulator for ZeroMQ traffic (`tandem link`).
 *
 * The relay listens with a ROUTER where the cloud would be, and for each
 * client that connects opens a DEALER of its own to the real cloud, so the
 * cloud still sees one peer per client. Every message, in each direction, is
 * held back as a link of the configured kind would hold it:
 *
 *   leaves the sender's end   t_tx = max(t_arrival, previous t_tx_end)
 *   fully on the wire at      t_tx_end = t_tx + 8 * bytes / rate
 *   delivered at              t_deliver = max(t_tx_end + d, previous t_deliver)
 *   one-way delay             d = rtt/2 + jitter * z,  z ~ N(0, 1), d >= 0
 *
 * The rate and delay are per direction (a full-duplex link), and a message
 * never overtakes an earlier one in its direction, as over TCP. Messages are
 * delivered no earlier than t_deliver; how much later is the relay's own
 * added delay, measured for every message and reported in wan_stats.
 *
 * Used from tests and bench in-process (wan_relay_run on a thread), and from the
 * CLI. Nothing here is a real network: it is for measurements on one machine
 * where tc/netem and root are not available. */
#ifndef TANDEM_TOOLS_WAN_RELAY_H
#define TANDEM_TOOLS_WAN_RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wan_config {
    const char *listen;  /* endpoint clients connect to, e.g. tcp://0.0.0.0:6000 */
    const char *forward; /* the real server, e.g. tcp://127.0.0.1:5555 */
    double rtt_ms;       /* round-trip propagation delay (half each way) */
    double jitter_ms;    /* standard deviation of each one-way delay */
    double rate_bps;     /* bits per second each way; 0 = unlimited */
    uint64_t seed;       /* jitter's random stream */
    int max_clients;     /* 0 = 64; more are dropped with a warning */
    int max_queue;       /* messages held per direction and client; 0 = 4096 */
    bool verbose;        /* one line per client connect on stderr */
};

/* Per direction: 0 = client -> server, 1 = server -> client. */
struct wan_stats {
    uint64_t messages[2];
    uint64_t bytes[2];
    uint64_t dropped[2]; /* queue full or too many clients */
    double late_mean_ms[2]; /* delivered after t_deliver by this much */
    double late_max_ms[2];
    int clients;
};

struct wan_relay;

/* Binds and connects; NULL and a line in err on failure. */
struct wan_relay *wan_relay_new(const struct wan_config *cfg, char *err, size_t errlen);
/* Relays until *stop becomes non-zero. false + err on a socket failure. */
bool wan_relay_run(struct wan_relay *l, volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Safe after wan_relay_run has returned (or from the thread that runs it). */
void wan_relay_get_stats(const struct wan_relay *l, struct wan_stats *out);
void wan_relay_free(struct wan_relay *l);

/* Parses "50ms", "0.2s", "120us", "7" (ms) into milliseconds, and "20mbit",
 * "512kbit", "1gbit", "8000" (bit/s) into bits per second; false on
 * anything else. */
bool wan_parse_ms(const char *s, double *ms);
bool wan_parse_rate(const char *s, double *bps);

#endif
