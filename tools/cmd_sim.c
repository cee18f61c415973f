/* tandem sim: predicted latency of each decoding mode (tools/sim.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "wan_relay.h"
#include "sim.h"

#define MAX_RTTS 32

static void sim_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem sim --edge-profile P --cloud-profile P --rounds EDGE_TRACE [options]\n\n"
            "Predicts per-token latency of cloud-ar, cloud-ar-rpc, edge-ar, sd and sd-ee on\n"
            "the devices two timing profiles describe (bench/profiles), over a link of the\n"
            "given round trip, replaying the rounds (draft tokens offered and accepted,\n"
            "EARLY verdicts confirmed or not) that a real run recorded with\n"
            "`tandem edge --trace`. The model is described in docs/benchmarks.md.\n\n"
            "      --edge-profile FILE   the draft's device profile\n"
            "      --cloud-profile FILE  the target's device profile\n"
            "      --rounds FILE         an edge trace of an sd-ee (or sd) run\n"
            "      --tokens N --prompt-len P   instead of --rounds, for the baselines alone\n"
            "                            (cloud-ar, cloud-ar-rpc, edge-ar): N tokens after P\n"
            "      --rtt LIST            round trips, e.g. 10ms,50ms,100ms (default 50ms)\n"
            "      --rate R              link rate each way, e.g. 20mbit (default unlimited)\n"
            "      --exit-fraction F     share of a verify pass before the exit (default 0.5)\n"
            "      --modes LIST          modes to predict (default all five)\n"
            "      --json                one JSON object on stdout instead of a table\n"
            "  -h, --help                this text\n");
}

/* Splits a comma list into at most max items (modifies s). */
static int split_list(char *s, char **items, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        if (n < max)
            items[n++] = tok;
        else
            return -1;
    return n;
}

int cmd_sim(int argc, char **argv)
{
    enum { O_EP = 256, O_CP, O_ROUNDS, O_RTT, O_RATE, O_EXIT, O_MODES, O_JSON, O_TOKENS, O_PLEN };
    static const struct option opts[] = {
        {"edge-profile", required_argument, 0, O_EP}, {"cloud-profile", required_argument, 0, O_CP},
        {"rounds", required_argument, 0, O_ROUNDS},   {"rtt", required_argument, 0, O_RTT},
        {"rate", required_argument, 0, O_RATE},       {"exit-fraction", required_argument, 0, O_EXIT},
        {"modes", required_argument, 0, O_MODES},     {"json", no_argument, 0, O_JSON},
        {"tokens", required_argument, 0, O_TOKENS},   {"prompt-len", required_argument, 0, O_PLEN},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    const char *edge_profile = NULL, *cloud_profile = NULL, *rounds_path = NULL;
    char rtt_list[256] = "50ms", modes_list[256] = "cloud-ar,cloud-ar-rpc,edge-ar,sd,sd-ee";
    struct sim_costs costs = {.exit_fraction = 0.5f};
    float exit_fraction = 0.5f;
    bool json = false;
    int n_tokens = 0, prompt_len = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_EP: edge_profile = optarg; break;
        case O_CP: cloud_profile = optarg; break;
        case O_ROUNDS: rounds_path = optarg; break;
        case O_RTT: snprintf(rtt_list, sizeof rtt_list, "%s", optarg); break;
        case O_RATE:
            if (!(ok = wan_parse_rate(optarg, &costs.rate_bps) && costs.rate_bps > 0))
                fprintf(stderr, "tandem sim: --rate: '%s' is not a rate (e.g. 20mbit)\n", optarg);
            break;
        case O_EXIT: ok = arg_float("--exit-fraction", optarg, 0.0f, 1.0f, &exit_fraction); break;
        case O_MODES: snprintf(modes_list, sizeof modes_list, "%s", optarg); break;
        case O_JSON: json = true; break;
        case O_TOKENS: ok = arg_int("--tokens", optarg, 1, 1 << 24, &n_tokens); break;
        case O_PLEN: ok = arg_int("--prompt-len", optarg, 1, 1 << 24, &prompt_len); break;
        case 'h': sim_usage(stdout); return 0;
        default: sim_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem sim: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!edge_profile || !cloud_profile || (!rounds_path == !(n_tokens && prompt_len))) {
        fprintf(stderr, "tandem sim: --edge-profile, --cloud-profile and either --rounds or "
                        "--tokens with --prompt-len are required\n");
        return 2;
    }
    costs.exit_fraction = exit_fraction;

    char *rtt_items[MAX_RTTS], *mode_items[SIM_N_MODES];
    double rtts[MAX_RTTS];
    enum sim_mode modes[SIM_N_MODES];
    int n_rtt = split_list(rtt_list, rtt_items, MAX_RTTS);
    int n_modes = split_list(modes_list, mode_items, SIM_N_MODES);
    if (n_rtt <= 0 || n_modes <= 0) {
        fprintf(stderr, "tandem sim: --rtt takes 1..%d values, --modes 1..%d\n", MAX_RTTS, SIM_N_MODES);
        return 2;
    }
    for (int i = 0; i < n_rtt; i++) {
        if (!wan_parse_ms(rtt_items[i], &rtts[i])) {
            fprintf(stderr, "tandem sim: --rtt: '%s' is not a duration (e.g. 50ms)\n", rtt_items[i]);
            return 2;
        }
    }
    for (int i = 0; i < n_modes; i++) {
        if (!sim_mode_parse(mode_items[i], &modes[i])) {
            fprintf(stderr, "tandem sim: --modes: unknown mode '%s'\n", mode_items[i]);
            return 2;
        }
        if (!rounds_path && (modes[i] == SIM_SD || modes[i] == SIM_SD_EE)) {
            fprintf(stderr, "tandem sim: --modes: %s needs the recorded --rounds\n", mode_items[i]);
            return 2;
        }
    }

    char err[512];
    struct sim_rounds rounds = {0};
    if (!pace_load(edge_profile, &costs.edge, err, sizeof err) ||
        !pace_load(cloud_profile, &costs.cloud, err, sizeof err) ||
        (rounds_path ? !sim_rounds_from_trace(rounds_path, &rounds, err, sizeof err)
                     : !sim_rounds_plain(n_tokens, prompt_len, &rounds, err, sizeof err))) {
        fprintf(stderr, "tandem sim: %s\n", err);
        return 1;
    }

    if (json)
        printf("{\"edge\":\"%s\",\"cloud\":\"%s\",\"rounds\":%d,\"prompt_len\":%d,\"results\":[",
               costs.edge.device, costs.cloud.device, rounds.n, rounds.prompt_len);
    else
        printf("emulated: edge %s (%s), cloud %s (%s); %d rounds, prompt %d tokens\n"
               "%8s %-13s %8s %10s %10s %12s\n",
               costs.edge.device, costs.edge.model, costs.cloud.device, costs.cloud.model,
               rounds.n, rounds.prompt_len, "rtt_ms", "mode", "tokens", "ms/token", "ttft_ms",
               "cloud ms/tok");
    for (int i = 0; i < n_rtt; i++) {
        costs.rtt_ms = rtts[i];
        for (int m = 0; m < n_modes; m++) {
            struct sim_result r;
            sim_run(modes[m], &costs, &rounds, &r);
            if (json)
                printf("%s{\"rtt_ms\":%g,\"mode\":\"%s\",\"tokens\":%d,\"ms_per_token\":%.4f,"
                       "\"ttft_ms\":%.4f,\"total_ms\":%.4f,\"cloud_busy_ms_per_token\":%.4f}",
                       i || m ? "," : "", rtts[i], sim_mode_name(modes[m]), r.tokens,
                       r.ms_per_token, r.ttft_ms, r.total_ms, r.cloud_busy_ms / r.tokens);
            else
                printf("%8g %-13s %8d %10.2f %10.1f %12.2f\n", rtts[i], sim_mode_name(modes[m]),
                       r.tokens, r.ms_per_token, r.ttft_ms, r.cloud_busy_ms / r.tokens);
        }
    }
    if (json)
        printf("]}\n");
    sim_rounds_free(&rounds);
    return 0;
}
