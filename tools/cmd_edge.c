/* tandem edge: generate with a draft model and a cloud (edge/edge.h). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../edge/edge.h"
#include "args.h"
#include "commands.h"
#include "prompt.h"

static void edge_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem edge -m DRAFT.gguf --connect tcp://HOST:5555 (-p PROMPT | --ids \"1 2\") [options]\n\n"
            "Generates text with a draft model on this machine and a target served by\n"
            "`tandem cloud`, streaming it to stdout; a summary goes to stderr.\n\n"
            "  -m, --model FILE     draft GGUF (must share the target's tokenizer)\n"
            "      --connect EP     the cloud's ZeroMQ endpoint (default tcp://127.0.0.1:5555)\n"
            "  -p, --prompt TEXT    prompt text;  --ids \"1 2 3\": token ids instead\n"
            "  -n, --n-predict N    tokens to generate (default 128)\n"
            "      --mode M         sd-ee (default) | sd | cloud-ar | cloud-ar-rpc | edge-ar\n"
            "                       sd: draft, verify; sd-ee: also pre-draft from early verdicts;\n"
            "                       cloud-ar: the cloud alone, streamed; cloud-ar-rpc: one token\n"
            "                       per request; edge-ar: the draft alone\n"
            "      --gamma G        draft tokens per round (default 4)\n"
            "      --temp T --top-k K --top-p P --seed S   sampling (default greedy)\n"
            "      --chat[=FORMAT]  send the prompt as a user message in the chat format\n"
            "      --no-bos         do not add BOS to a text prompt\n"
            "      --ignore-eos     keep generating after the end-of-sequence token\n"
            "      --timeout MS     longest wait for the cloud (default 30000)\n"
            "      --reconnect N    new sessions to open when the cloud loses one mid-answer\n"
            "                       (restarted, connection dropped, evicted), carrying on from\n"
            "                       the text accepted so far (default 3; 0: stop with the error)\n"
            "      --threads N      worker threads (default: all cores)\n"
            "      --ctx N          draft context (default min(model's, 2048))\n"
            "      --no-repack      keep the weights mapped from the file (by default the CPU\n"
            "                       copies them once at load into huge pages, Q8_0 repacked\n"
            "                       for faster multi-row passes; docs/engine.md)\n"
            "      --pace PROFILE   make every draft pass take at least the time a device\n"
            "                       profile gives (bench/profiles; results are emulated)\n"
            "      --trace FILE     write timestamped round events (for `tandem prof`, `tandem sim`)\n"
            "      --json           print one JSON object instead of streaming text\n"
            "  -h, --help           this text\n");
}

struct edge_opts {
    struct edge_config cfg;
    struct pace_profile pace;
    const char *prompt, *ids, *chat_name, *pace_path;
    bool chat, no_bos, json;
    int n_predict;
};

static int parse_edge_opts(int argc, char **argv, struct edge_opts *o)
{
    enum { O_CONNECT = 256, O_IDS, O_MODE, O_GAMMA, O_TEMP, O_TOPK, O_TOPP, O_SEED, O_CHAT, O_NOBOS,
           O_NOEOS, O_TIMEOUT, O_RECONNECT, O_THREADS, O_CTX, O_JSON, O_PACE, O_TRACE, O_NOREPACK };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"connect", required_argument, 0, O_CONNECT},
        {"prompt", required_argument, 0, 'p'},      {"ids", required_argument, 0, O_IDS},
        {"n-predict", required_argument, 0, 'n'},   {"mode", required_argument, 0, O_MODE},
        {"gamma", required_argument, 0, O_GAMMA},   {"temp", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK},    {"top-p", required_argument, 0, O_TOPP},
        {"seed", required_argument, 0, O_SEED},     {"chat", optional_argument, 0, O_CHAT},
        {"no-bos", no_argument, 0, O_NOBOS},        {"ignore-eos", no_argument, 0, O_NOEOS},
        {"timeout", required_argument, 0, O_TIMEOUT}, {"reconnect", required_argument, 0, O_RECONNECT},
        {"threads", required_argument, 0, O_THREADS},
        {"ctx", required_argument, 0, O_CTX},       {"json", no_argument, 0, O_JSON},
        {"pace", required_argument, 0, O_PACE},     {"trace", required_argument, 0, O_TRACE},
        {"no-repack", no_argument, 0, O_NOREPACK},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    optind = 1;
    int c, mode;
    while ((c = getopt_long(argc, argv, "m:p:n:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': o->cfg.model = optarg; break;
        case O_CONNECT: o->cfg.endpoint = optarg; break;
        case 'p': o->prompt = optarg; break;
        case O_IDS: o->ids = optarg; break;
        case 'n': ok = arg_int("-n", optarg, 0, 1 << 24, &o->n_predict); break;
        case O_MODE:
            if ((mode = edge_mode_by_name(optarg)) < 0) {
                fprintf(stderr, "tandem edge: --mode: '%s' is not one of sd, sd-ee, cloud-ar, "
                                "cloud-ar-rpc, edge-ar\n", optarg);
                return 2;
            }
            o->cfg.mode = (enum edge_mode)mode;
            break;
        case O_GAMMA: ok = arg_int("--gamma", optarg, 1, 1024, &o->cfg.gamma); break;
        case O_TEMP: ok = arg_float("--temp", optarg, 0.0f, 100.0f, &o->cfg.sampling.temp); break;
        case O_TOPK: ok = arg_int("--top-k", optarg, 0, 1 << 24, &o->cfg.sampling.top_k); break;
        case O_TOPP: ok = arg_float("--top-p", optarg, 0.0f, 1.0f, &o->cfg.sampling.top_p); break;
        case O_SEED: ok = arg_u64("--seed", optarg, &o->cfg.seed); break;
        case O_CHAT: o->chat = true; o->chat_name = optarg; break;
        case O_NOBOS: o->no_bos = true; break;
        case O_NOEOS: o->cfg.ignore_eos = true; break;
        case O_NOREPACK: o->cfg.no_repack = true; break;
        case O_TIMEOUT: ok = arg_int("--timeout", optarg, 1, 1 << 30, &o->cfg.timeout_ms); break;
        case O_RECONNECT: ok = arg_int("--reconnect", optarg, 0, 1 << 20, &o->cfg.reconnects); break;
        case O_THREADS: ok = arg_int("--threads", optarg, 1, 1024, &o->cfg.threads); break;
        case O_CTX: ok = arg_int("--ctx", optarg, 2, 1 << 24, &o->cfg.ctx); break;
        case O_JSON: o->json = true; break;
        case O_PACE: o->pace_path = optarg; break;
        case O_TRACE: o->cfg.trace = optarg; break;
        case 'h': edge_usage(stdout); return 0;
        default: edge_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem edge: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->cfg.model || (!o->prompt == !o->ids)) {
        fprintf(stderr, "tandem edge: need -m DRAFT.gguf and exactly one of -p PROMPT or --ids\n");
        return 2;
    }
    if (o->chat && !o->prompt) {
        fprintf(stderr, "tandem edge: --chat needs a text prompt (-p)\n");
        return 2;
    }
    if (o->pace_path) {
        char err[512];
        if (!pace_load(o->pace_path, &o->pace, err, sizeof err)) {
            fprintf(stderr, "tandem edge: --pace: %s\n", err);
            return 2;
        }
        o->cfg.pace = &o->pace;
    }
    return -1;
}

struct printer {
    struct detok dt;
    bool stream;
    char *text;
    size_t len, cap;
};

static void on_tokens(void *ctx, const int32_t *ids, int n)
{
    struct printer *p = ctx;
    char piece[512];
    for (int i = 0; i < n; i++) {
        size_t k = detok_push(&p->dt, ids[i], piece, sizeof piece);
        if (k == 0 || k > sizeof piece)
            continue;
        if (p->stream) {
            fwrite(piece, 1, k, stdout);
            fflush(stdout);
        }
        if (p->len + k + 1 > p->cap) {
            size_t cap = (p->len + k + 1) * 2;
            char *grown = realloc(p->text, cap);
            if (!grown)
                return;
            p->text = grown;
            p->cap = cap;
        }
        memcpy(p->text + p->len, piece, k);
        p->len += k;
        p->text[p->len] = 0;
    }
}

static json_object *int_array(const int32_t *v, int n)
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int(v[i]));
    return a;
}

static json_object *double_array(const double *v, int n)
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_double(v[i]));
    return a;
}

static void print_json(const struct edge_opts *o, const int32_t *prompt, int n_prompt,
                       const struct edge_result *r, const char *text)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "mode", json_object_new_string(edge_mode_name(o->cfg.mode)));
    json_object_object_add(j, "gamma", json_object_new_int(o->cfg.gamma));
    json_object_object_add(j, "prompt_ids", int_array(prompt, n_prompt));
    json_object_object_add(j, "ids", int_array(r->ids, r->n_ids));
    json_object_object_add(j, "text", json_object_new_string(text ? text : ""));
    json_object_object_add(j, "wall_s", json_object_new_double(r->wall_s));
    json_object_object_add(j, "ms_per_token",
                           json_object_new_double(r->n_ids ? r->wall_s * 1e3 / r->n_ids : 0));
    json_object_object_add(j, "ttft_ms", json_object_new_double(r->ttft_ms));
    json_object_object_add(j, "token_ms", double_array(r->token_ms, r->n_ids));
    json_object_object_add(j, "emulated", json_object_new_boolean(o->cfg.pace != NULL));
    json_object_object_add(j, "rounds", json_object_new_int(r->rounds));
    /* τ: tokens committed per round, the accepted drafts plus the target's own */
    json_object_object_add(j, "tau", json_object_new_double(r->rounds ? (double)(r->accepted + r->rounds) / r->rounds : 0));
    json_object_object_add(j, "mean_accepted",
                           json_object_new_double(r->rounds ? (double)r->accepted / r->rounds : 0));
    json_object *acc = json_object_new_array();
    for (int i = 0; i < r->max_gamma && r->offered_at && r->offered_at[i]; i++)
        json_object_array_add(acc, json_object_new_double((double)r->accepted_at[i] / r->offered_at[i]));
    json_object_object_add(j, "acceptance_by_position", acc);
    json_object_object_add(j, "early_rounds", json_object_new_int(r->early_rounds));
    json_object_object_add(j, "early_hits", json_object_new_int(r->early_hits));
    json_object_object_add(j, "early_hit_rate",
                           json_object_new_double(r->rounds ? (double)r->early_hits / r->rounds : 0));
    json_object_object_add(j, "edge_idle_ms", json_object_new_double(r->edge_idle_ms));
    json_object_object_add(j, "edge_draft_ms", json_object_new_double(r->draft_ms));
    json_object_object_add(j, "cloud_busy_ms", json_object_new_double(r->cloud_busy_ms));
    json_object_object_add(j, "predrafted", json_object_new_int64(r->predrafted));
    json_object_object_add(j, "predraft_stops", json_object_new_int(r->predraft_stops));
    json_object_object_add(j, "rtt_ms", json_object_new_double(r->rtt_ms));
    json_object_object_add(j, "rtt_min_ms", json_object_new_double(r->rtt_min_ms));
    json_object_object_add(j, "rtt_samples", json_object_new_int(r->rtt_samples));
    json_object_object_add(j, "reconnects", json_object_new_int(r->reconnects));
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
}

/* Lost sessions and reconnections, told as they happen; the streamed text
 * goes on after them on a line of its own. */
static void log_line(void *ctx, const char *line)
{
    const struct printer *p = ctx;
    fflush(stdout);
    fprintf(stderr, "%standem edge: %s\n", p->stream && p->len ? "\n" : "", line);
}

int cmd_edge(int argc, char **argv)
{
    struct edge_opts o = {.cfg = {.endpoint = "tcp://127.0.0.1:5555", .mode = EDGE_SD_EE, .gamma = 4,
                                  .sampling = {0.0f, 0, 1.0f}, .reconnects = 3},
                          .n_predict = 128};
    int rc = parse_edge_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    struct printer p = {.stream = !o.json};
    o.cfg.log = log_line;
    o.cfg.log_ctx = &p;
    char err[1024];
    struct edge *e = edge_open(&o.cfg, err, sizeof err);
    if (!e) {
        fprintf(stderr, "tandem edge: %s\n", err);
        return 1;
    }
    int32_t *prompt = NULL;
    int n_prompt = o.ids ? prompt_parse_ids("tandem edge", o.ids, &prompt)
                         : prompt_encode("tandem edge", edge_tokenizer(e), o.prompt, o.chat,
                                         o.chat_name, o.no_bos, &prompt);
    struct edge_result res = {0};
    detok_init(&p.dt, edge_tokenizer(e));
    rc = 1;
    if (n_prompt > 0) {
        bool ok = edge_generate(e, prompt, n_prompt, o.n_predict, on_tokens, &p, &res, err, sizeof err);
        char tail[8];
        size_t k = detok_flush(&p.dt, tail, sizeof tail);
        if (k && k <= sizeof tail && p.stream)
            fwrite(tail, 1, k, stdout);
        if (!ok) {
            fprintf(stderr, "%standem edge: %s\n", p.stream && p.len ? "\n" : "", err);
        } else {
            rc = 0;
            if (o.json)
                print_json(&o, prompt, n_prompt, &res, p.text);
            else
                fprintf(stderr, "\n[%s: %d tokens, %.1f ms/token, %d rounds, tau %.2f, early hits %d, "
                                "rtt %.2f ms]\n",
                        edge_mode_name(o.cfg.mode), res.n_ids,
                        res.n_ids ? res.wall_s * 1e3 / res.n_ids : 0.0, res.rounds,
                        res.rounds ? (double)(res.accepted + res.rounds) / res.rounds : 0.0,
                        res.early_hits, res.rtt_ms);
        }
    }
    free(prompt);
    free(p.text);
    edge_result_free(&res);
    edge_close(e);
    return rc;
}
