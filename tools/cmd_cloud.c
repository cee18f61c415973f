/* tandem cloud: the target-side server (cloud/cloud.h). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../cloud/cloud.h"
#include "args.h"
#include "commands.h"

static void cloud_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem cloud -m TARGET.gguf --bind tcp://*:5555 [options]\n\n"
            "Serves speculative decoding to edges: verifies their drafts with the target\n"
            "(early verdicts from the target's exits in sd-ee), and the cloud-only baselines.\n"
            "Runs until SIGINT or SIGTERM.\n\n"
            "  -m, --model FILE       target GGUF (exits from `tandem train-exits` enable EARLY)\n"
            "      --bind ENDPOINT    ZeroMQ endpoint to listen on (default tcp://*:5555)\n"
            "      --max-sessions N   sessions at once (default 8); more are refused\n"
            "      --ctx N            positions per session (default min(model's, 2048))\n"
            "      --idle-timeout S   close sessions idle this many seconds (default 300)\n"
            "      --max-gamma G      most draft tokens per round (default 32; 15 with\n"
            "                         --device cuda: longer verify passes of f32/f16\n"
            "                         targets go to cuBLAS, not batch invariant)\n"
            "      --threads N        worker threads (default: all cores)\n"
            "      --device D         cpu | cuda (default cpu): where the target's passes run;\n"
            "                         cuda (bin/tandem-cuda) also evaluates exits on the GPU\n"
            "      --no-repack        keep the weights mapped from the file (by default the CPU\n"
            "                         copies them once at load into huge pages, Q8_0 repacked\n"
            "                         for faster verify passes; docs/engine.md)\n"
            "      --pace PROFILE     make every pass take at least the time a device profile\n"
            "                         gives (bench/profiles; results are emulated)\n"
            "      --trace FILE       write timestamped round events (for `tandem prof`)\n"
            "  -v, --verbose          one line per event on stderr\n"
            "  -h, --help             this text\n");
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) { stop_flag = sig; }

int cmd_cloud(int argc, char **argv)
{
    enum { O_BIND = 256, O_MAXS, O_CTX, O_IDLE, O_GAMMA, O_THREADS, O_PACE, O_TRACE, O_DEVICE, O_NOREPACK };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},        {"bind", required_argument, 0, O_BIND},
        {"max-sessions", required_argument, 0, O_MAXS}, {"ctx", required_argument, 0, O_CTX},
        {"idle-timeout", required_argument, 0, O_IDLE}, {"max-gamma", required_argument, 0, O_GAMMA},
        {"threads", required_argument, 0, O_THREADS}, {"verbose", no_argument, 0, 'v'},
        {"pace", required_argument, 0, O_PACE},      {"trace", required_argument, 0, O_TRACE},
        {"device", required_argument, 0, O_DEVICE},  {"help", no_argument, 0, 'h'},
        {"no-repack", no_argument, 0, O_NOREPACK},
        {0, 0, 0, 0}};
    struct cloud_config cfg = {.bind = "tcp://*:5555"};
    struct pace_profile pace;
    const char *pace_path = NULL;
    float idle = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:vh", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': cfg.model = optarg; break;
        case O_BIND: cfg.bind = optarg; break;
        case O_MAXS: ok = arg_int("--max-sessions", optarg, 1, 4096, &cfg.max_sessions); break;
        case O_CTX: ok = arg_int("--ctx", optarg, 2, 1 << 24, &cfg.ctx); break;
        case O_IDLE: ok = arg_float("--idle-timeout", optarg, 0.01f, 1e7f, &idle); break;
        case O_GAMMA: ok = arg_int("--max-gamma", optarg, 1, 1024, &cfg.max_gamma); break;
        case O_THREADS: ok = arg_int("--threads", optarg, 1, 1024, &cfg.threads); break;
        case 'v': cfg.verbose = true; break;
        case O_PACE: pace_path = optarg; break;
        case O_TRACE: cfg.trace = optarg; break;
        case O_DEVICE: cfg.device = optarg; break;
        case O_NOREPACK: cfg.no_repack = true; break;
        case 'h': cloud_usage(stdout); return 0;
        default: cloud_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem cloud: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!cfg.model) {
        fprintf(stderr, "tandem cloud: -m TARGET.gguf is required\n");
        return 2;
    }
    cfg.idle_s = idle;
    char err[512];
    if (pace_path) {
        if (!pace_load(pace_path, &pace, err, sizeof err)) {
            fprintf(stderr, "tandem cloud: --pace: %s\n", err);
            return 2;
        }
        cfg.pace = &pace;
    }
    struct cloud *cl = cloud_new(&cfg, err, sizeof err);
    if (!cl) {
        fprintf(stderr, "tandem cloud: %s\n", err);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "tandem cloud: serving %s on %s (device %s)\n", cfg.model, cfg.bind,
            cfg.device ? cfg.device : "cpu");
    bool ok = cloud_serve(cl, &stop_flag, err, sizeof err);
    if (!ok)
        fprintf(stderr, "tandem cloud: %s\n", err);
    cloud_free(cl);
    return ok ? 0 : 1;
}
