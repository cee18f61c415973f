/* tandem link: a WAN between edge and cloud on one machine (tools/link.h). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "wan_relay.h"

static void link_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem link --listen ENDPOINT --forward ENDPOINT [options]\n\n"
            "Relays ZeroMQ traffic between edges and a cloud, holding each message back as\n"
            "a wide-area link would: half the round trip each way, jitter, and a rate limit\n"
            "per direction. Point the edge at --listen and the relay at the cloud. Runs\n"
            "until SIGINT or SIGTERM, then prints what it relayed and its own added delay.\n\n"
            "      --listen EP       endpoint edges connect to (e.g. tcp://*:6000)\n"
            "      --forward EP      the cloud's endpoint (e.g. tcp://127.0.0.1:5555)\n"
            "      --rtt T           round-trip delay: 50ms, 0.1s, 800us (default 0)\n"
            "      --jitter T        standard deviation of each one-way delay (default 0)\n"
            "      --rate R          bits/s each way: 20mbit, 512kbit, 1gbit (default unlimited)\n"
            "      --seed S          jitter's random seed (default 1)\n"
            "      --max-clients N   edges at once (default 64)\n"
            "      --json            print the final statistics as one JSON object on stdout\n"
            "  -v, --verbose         a line on stderr for each client\n"
            "  -h, --help            this text\n");
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) { stop_flag = sig; }

static void print_stats(const struct wan_stats *s, bool json)
{
    static const char *const dir_name[2] = {"edge->cloud", "cloud->edge"};
    if (json) {
        printf("{\"clients\":%d", s->clients);
        for (int d = 0; d < 2; d++)
            printf(",\"%s\":{\"messages\":%llu,\"bytes\":%llu,\"dropped\":%llu,"
                   "\"late_mean_ms\":%.4f,\"late_max_ms\":%.4f}",
                   d == 0 ? "up" : "down", (unsigned long long)s->messages[d],
                   (unsigned long long)s->bytes[d], (unsigned long long)s->dropped[d],
                   s->late_mean_ms[d], s->late_max_ms[d]);
        printf("}\n");
        return;
    }
    for (int d = 0; d < 2; d++)
        fprintf(stderr,
                "tandem link: %s %llu messages, %llu bytes, %llu dropped; "
                "own added delay mean %.3f ms, max %.3f ms\n",
                dir_name[d], (unsigned long long)s->messages[d],
                (unsigned long long)s->bytes[d], (unsigned long long)s->dropped[d],
                s->late_mean_ms[d], s->late_max_ms[d]);
}

int cmd_link(int argc, char **argv)
{
    enum { O_LISTEN = 256, O_FORWARD, O_RTT, O_JITTER, O_RATE, O_SEED, O_MAXC, O_JSON };
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN}, {"forward", required_argument, 0, O_FORWARD},
        {"rtt", required_argument, 0, O_RTT},       {"jitter", required_argument, 0, O_JITTER},
        {"rate", required_argument, 0, O_RATE},     {"seed", required_argument, 0, O_SEED},
        {"max-clients", required_argument, 0, O_MAXC}, {"json", no_argument, 0, O_JSON},
        {"verbose", no_argument, 0, 'v'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    struct wan_config cfg = {.seed = 1};
    bool json = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_LISTEN: cfg.listen = optarg; break;
        case O_FORWARD: cfg.forward = optarg; break;
        case O_RTT:
            if (!(ok = wan_parse_ms(optarg, &cfg.rtt_ms)))
                fprintf(stderr, "tandem link: --rtt: '%s' is not a duration (e.g. 50ms)\n", optarg);
            break;
        case O_JITTER:
            if (!(ok = wan_parse_ms(optarg, &cfg.jitter_ms)))
                fprintf(stderr, "tandem link: --jitter: '%s' is not a duration (e.g. 5ms)\n", optarg);
            break;
        case O_RATE:
            if (!(ok = wan_parse_rate(optarg, &cfg.rate_bps) && cfg.rate_bps > 0))
                fprintf(stderr, "tandem link: --rate: '%s' is not a rate (e.g. 20mbit)\n", optarg);
            break;
        case O_SEED: ok = arg_u64("--seed", optarg, &cfg.seed); break;
        case O_MAXC: ok = arg_int("--max-clients", optarg, 1, 4096, &cfg.max_clients); break;
        case O_JSON: json = true; break;
        case 'v': cfg.verbose = true; break;
        case 'h': link_usage(stdout); return 0;
        default: link_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem link: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!cfg.listen || !cfg.forward) {
        fprintf(stderr, "tandem link: --listen and --forward are required\n");
        return 2;
    }
    char err[512];
    struct wan_relay *l = wan_relay_new(&cfg, err, sizeof err);
    if (!l) {
        fprintf(stderr, "tandem link: %s\n", err);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "tandem link: %s -> %s, rtt %.3g ms, jitter %.3g ms, rate %s\n", cfg.listen,
            cfg.forward, cfg.rtt_ms, cfg.jitter_ms, cfg.rate_bps > 0 ? "limited" : "unlimited");
    bool ok = wan_relay_run(l, &stop_flag, err, sizeof err);
    if (!ok)
        fprintf(stderr, "tandem link: %s\n", err);
    struct wan_stats st;
    wan_relay_get_stats(l, &st);
    print_stats(&st, json);
    wan_relay_free(l);
    return ok ? 0 : 1;
}
