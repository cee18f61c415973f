/* tandem run: generate text with one model on this machine. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../engine/forward.h"
#include "../engine/sample.h"
#include "../weights/chat.h"
#include "../weights/tokenizer.h"
#include "args.h"
#include "commands.h"
#include "prompt.h"
#include "../engine/clock.h"

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem run -m MODEL.gguf (-p PROMPT | --ids \"1 2 3\") [options]\n\n"
            "Generates text, streaming it to stdout; speeds go to stderr.\n\n"
            "  -m, --model FILE     GGUF model (llama or qwen2 architecture)\n"
            "  -p, --prompt TEXT    prompt text (tokenized with the model's tokenizer)\n"
            "      --ids \"1 2 3\"    prompt as token ids instead\n"
            "  -n, --n-predict N    tokens to generate (default 128)\n"
            "      --temp T         temperature; 0 = greedy (default 0)\n"
            "      --top-k K        keep the K most likely tokens (default 0 = all)\n"
            "      --top-p P        keep the smallest set with mass >= P (default 1)\n"
            "      --seed S         sampling seed (default 0)\n"
            "      --threads N      worker threads (default: all cores)\n"
            "      --device D       cpu | cuda (default cpu)\n"
            "      --no-repack      keep the weights mapped from the file (by default the CPU\n"
            "                       copies them once at load into huge pages, Q8_0 repacked\n"
            "                       for faster multi-row passes; docs/engine.md)\n"
            "      --ctx N          context length (default min(model's, 4096))\n"
            "      --no-bos         do not add the BOS token to a text prompt\n"
            "      --chat[=FORMAT]  send the prompt as a user message in the model's chat\n"
            "                       format (chatml | vicuna; default: from the model)\n"
            "      --ignore-eos     keep generating after the end-of-sequence token\n"
            "      --json           print one JSON object instead of streaming text\n"
            "  -h, --help           this text\n");
}

struct run_opts {
    const char *model, *prompt, *ids, *chat_name, *device;
    bool chat;
    int n_predict, threads, ctx;
    struct sampling sampling;
    uint64_t seed;
    bool no_bos, ignore_eos, json, no_repack;
};

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* kilobytes on Linux */
}

/* A line "Key:  N kB" of /proc/self/status in MB, or -1 where there is none.
 * RssFile is the mapped weights the pass touched, RssAnon what we allocated:
 * together they show the weights are mapped, not copied. */
static double status_mb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double mb = -1;
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen) && line[klen] == ':')
            mb = strtod(line + klen + 1, NULL) / 1024.0;
    if (f)
        fclose(f);
    return mb;
}

struct generation {
    int32_t *prompt, *ids;
    int n_prompt, n_ids;
    double prompt_s, decode_s;
    char *text;
    size_t text_len, text_cap;
};

static void append_text(struct generation *g, const char *s, size_t n, bool stream)
{
    if (stream) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
    }
    if (g->text_len + n + 1 > g->text_cap) {
        size_t cap = (g->text_len + n + 1) * 2;
        char *grown = realloc(g->text, cap);
        if (!grown)
            return;
        g->text = grown;
        g->text_cap = cap;
    }
    memcpy(g->text + g->text_len, s, n);
    g->text_len += n;
    g->text[g->text_len] = 0;
}

static bool generate(const struct model *m, const struct tokenizer *tok, const struct run_opts *o,
                     struct generation *g)
{
    const struct model_config *c = &m->cfg;
    struct threadpool *tp = threadpool_new(o->threads);
    struct kv_cache *kv = kv_new(c, o->ctx);
    char err[256];
    struct forward_ctx *fc =
        tp ? forward_ctx_new_on(o->device, m, tp, 32, o->ctx, err, sizeof err) : NULL;
    if (tp && !fc) {
        fprintf(stderr, "tandem run: %s\n", err);
        threadpool_free(tp);
        kv_free(kv);
        return false;
    }
    float *logits = malloc(sizeof(float) * c->vocab);
    struct token_prob *dist = malloc(sizeof *dist * c->vocab);
    g->ids = malloc(sizeof(int32_t) * (o->n_predict + 1));
    bool ok = tp && kv && fc && logits && dist && g->ids;
    if (!ok)
        fprintf(stderr, "tandem run: out of memory (context %d)\n", o->ctx);
    if (ok && g->n_prompt + o->n_predict > o->ctx) {
        fprintf(stderr, "tandem run: prompt (%d tokens) + -n %d exceed the context of %d (--ctx)\n",
                g->n_prompt, o->n_predict, o->ctx);
        ok = false;
    }
    struct rng rng;
    rng_seed(&rng, o->seed);
    struct detok dt;
    if (tok)
        detok_init(&dt, tok);
    char piece[256];

    double t0 = clock_now_s();
    const int32_t *input = g->prompt;
    int n_input = g->n_prompt;
    while (ok && g->n_ids < o->n_predict) {
        struct forward_request req = {input, n_input, n_input - 1, logits, NULL, NULL};
        if (!forward(fc, kv, &req, err, sizeof err)) {
            fprintf(stderr, "tandem run: %s\n", err);
            ok = false;
            break;
        }
        if (g->n_ids == 0)
            g->prompt_s = clock_now_s() - t0;
        int n_dist = sampling_dist(&o->sampling, logits, c->vocab, dist);
        int32_t id = sample_from(dist, n_dist, &rng);
        g->ids[g->n_ids++] = id;
        if (tok) {
            size_t k = detok_push(&dt, id, piece, sizeof piece);
            append_text(g, piece, k, !o->json);
        } else if (!o->json) {
            printf("%d ", id);
            fflush(stdout);
        }
        if (tok && !o->ignore_eos && id == tokenizer_eos(tok))
            break;
        input = &g->ids[g->n_ids - 1];
        n_input = 1;
    }
    if (tok) {
        size_t k = detok_flush(&dt, piece, sizeof piece);
        append_text(g, piece, k, !o->json);
    }
    g->decode_s = clock_now_s() - t0 - g->prompt_s;
    free(logits);
    free(dist);
    forward_ctx_free(fc);
    kv_free(kv);
    threadpool_free(tp);
    return ok;
}

static void print_json(const struct generation *g)
{
    json_object *o = json_object_new_object(), *p = json_object_new_array(),
                *ids = json_object_new_array();
    for (int i = 0; i < g->n_prompt; i++)
        json_object_array_add(p, json_object_new_int(g->prompt[i]));
    for (int i = 0; i < g->n_ids; i++)
        json_object_array_add(ids, json_object_new_int(g->ids[i]));
    json_object_object_add(o, "prompt_ids", p);
    json_object_object_add(o, "ids", ids);
    json_object_object_add(o, "text", json_object_new_string(g->text ? g->text : ""));
    json_object_object_add(o, "prompt_tok_s", json_object_new_double(g->prompt_s > 0 ? g->n_prompt / g->prompt_s : 0));
    json_object_object_add(o, "decode_tok_s",
                           json_object_new_double(g->n_ids > 1 ? (g->n_ids - 1) / g->decode_s : 0));
    json_object_object_add(o, "peak_rss_mb", json_object_new_double(peak_rss_mb()));
    json_object_object_add(o, "rss_anon_mb", json_object_new_double(status_mb("RssAnon")));
    json_object_object_add(o, "rss_file_mb", json_object_new_double(status_mb("RssFile")));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
    enum { O_IDS = 256, O_TEMP, O_TOPK, O_TOPP, O_SEED, O_THREADS, O_CTX, O_NOBOS, O_NOEOS, O_JSON, O_CHAT, O_DEVICE, O_NOREPACK };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},    {"prompt", required_argument, 0, 'p'},
        {"n-predict", required_argument, 0, 'n'}, {"ids", required_argument, 0, O_IDS},
        {"temp", required_argument, 0, O_TEMP},  {"top-k", required_argument, 0, O_TOPK},
        {"top-p", required_argument, 0, O_TOPP}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"ctx", required_argument, 0, O_CTX},
        {"device", required_argument, 0, O_DEVICE}, {"no-repack", no_argument, 0, O_NOREPACK},
        {"no-bos", no_argument, 0, O_NOBOS},     {"ignore-eos", no_argument, 0, O_NOEOS},
        {"json", no_argument, 0, O_JSON},        {"help", no_argument, 0, 'h'},
        {"chat", optional_argument, 0, O_CHAT},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:p:n:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'n': ok = arg_int("-n", optarg, 0, 1 << 24, &o->n_predict); break;
        case O_IDS: o->ids = optarg; break;
        case O_TEMP: ok = arg_float("--temp", optarg, 0.0f, 100.0f, &o->sampling.temp); break;
        case O_TOPK: ok = arg_int("--top-k", optarg, 0, 1 << 24, &o->sampling.top_k); break;
        case O_TOPP: ok = arg_float("--top-p", optarg, 0.0f, 1.0f, &o->sampling.top_p); break;
        case O_SEED: ok = arg_u64("--seed", optarg, &o->seed); break;
        case O_THREADS: ok = arg_int("--threads", optarg, 1, 1024, &o->threads); break;
        case O_CTX: ok = arg_int("--ctx", optarg, 1, 1 << 24, &o->ctx); break;
        case O_DEVICE: o->device = optarg; break;
        case O_NOREPACK: o->no_repack = true; break;
        case O_NOBOS: o->no_bos = true; break;
        case O_NOEOS: o->ignore_eos = true; break;
        case O_JSON: o->json = true; break;
        case O_CHAT: o->chat = true; o->chat_name = optarg; break;
        case 'h': run_usage(stdout); return 0;
        default: run_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem run: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->model || (!o->prompt == !o->ids)) {
        fprintf(stderr, "tandem run: need -m MODEL and exactly one of -p PROMPT or --ids\n");
        return 2;
    }
    if (o->chat && !o->prompt) {
        fprintf(stderr, "tandem run: --chat needs a text prompt (-p)\n");
        return 2;
    }
    return -1;
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o = {.n_predict = 128, .sampling = {0.0f, 0, 1.0f}, .device = "cpu"};
    int rc = parse_run_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (!o.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n > 0 ? (int)n : 1;
    }
    char err[512];
    struct model *m = model_load(o.model, err, sizeof err);
    if (m && strcmp(o.device, "cpu") == 0 && !o.no_repack && model_repack(m, err, sizeof err) < 0) {
        model_free(m);
        m = NULL;
    }
    if (!m) {
        fprintf(stderr, "tandem run: %s\n", err);
        return 1;
    }
    if (!o.ctx)
        o.ctx = m->cfg.ctx_train < 4096 ? m->cfg.ctx_train : 4096;
    struct tokenizer *tok = tokenizer_load(m->file, err, sizeof err);
    if (!tok && o.prompt) {
        fprintf(stderr, "tandem run: %s\n", err);
        model_free(m);
        return 1;
    }
    struct generation g = {0};
    g.n_prompt = o.ids ? prompt_parse_ids("tandem run", o.ids, &g.prompt)
                      : prompt_encode("tandem run", tok, o.prompt, o.chat, o.chat_name, o.no_bos, &g.prompt);
    rc = 1;
    if (g.n_prompt > 0 && generate(m, tok, &o, &g)) {
        rc = 0;
        if (o.json)
            print_json(&g);
        else
            fprintf(stderr, "\n[prompt %d tokens, %.1f tok/s | decode %d tokens, %.1f tok/s]\n",
                    g.n_prompt, g.prompt_s > 0 ? g.n_prompt / g.prompt_s : 0.0, g.n_ids,
                    g.n_ids > 1 ? (g.n_ids - 1) / g.decode_s : 0.0);
    }
    free(g.prompt);
    free(g.ids);
    free(g.text);
    tokenizer_free(tok);
    model_free(m);
    return rc;
}
