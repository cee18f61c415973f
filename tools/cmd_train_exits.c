/* tandem train-exits: fit early-exit heads for a target and store them in a
 * copy of its GGUF, report how good stored exits are, or export a draft made
 * of a target's first layers (DESIGN.md §5, docs/exits.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/exits.h"
#include "../engine/exits_draft.h"
#include "args.h"
#include "commands.h"
#include "train_exits.h"

static void train_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem train-exits -m TARGET.gguf --layers 8,16,24 --data PROMPTS.jsonl -o OUT.gguf [--report]\n"
            "       tandem train-exits -m MODEL.gguf --report (--data P.jsonl | --report-data P.jsonl)\n"
            "       tandem train-exits -m TARGET.gguf --export-draft N -o DRAFT.gguf\n\n"
            "Fits early-exit heads and writes OUT.gguf = the target plus the heads; reports\n"
            "how often a model's exits agree with its last layer; or writes a draft model.\n\n"
            "  -m, --model FILE     target model (GGUF with a tokenizer)\n"
            "      --layers L,L,..  exit layers, 0-based: an exit reads the stream after layer L\n"
            "      --data FILE      JSON Lines prompts: \"turns\" (list of strings) or \"prompt\"/\"text\"\n"
            "  -o, --output FILE    where to write the model with exits, or the draft\n"
            "      --no-adapter     no adapters: the shared head alone (only thresholds are fitted)\n"
            "      --rank R         low-rank adapters of rank R (default 0 = full dim x dim)\n"
            "      --tokens N       tokens to run through the target, both passes (default 8192)\n"
            "      --gen N          greedy tokens generated after each prompt (default 32)\n"
            "      --holdout F      share of prompts held out to pick λ and thresholds (default 0.2)\n"
            "      --precision P    held-out precision the stored thresholds reach (default 0.9)\n"
            "      --ctx N          longest sequence, prompt + continuation (default 512)\n"
            "      --threads N      worker threads (default: all cores)\n"
            "      --json           print the summary (and the report) as JSON, one object a line\n"
            "      --report         report on the exits: of OUT.gguf after fitting, else of -m\n"
            "      --report-data F  the report's prompts, all of them (default: held-out share of --data)\n"
            "      --report-tokens N  tokens the report runs (default 4096)\n"
            "      --report-json F  also write the report as JSON to F (bench/plot_exits.py draws it)\n"
            "      --export-draft N write the first N layers with the shared head as a draft to -o\n"
            "  -h, --help           this text\n");
}

static bool parse_layers(const char *s, struct train_opts *o)
{
    o->n_layers = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 4096 || (*end && *end != ',') || o->n_layers == MAX_EXITS) {
            fprintf(stderr, "tandem train-exits: --layers: '%s' is not a list of layer numbers\n", s);
            return false;
        }
        if (o->n_layers > 0 && v <= o->layers[o->n_layers - 1]) {
            fprintf(stderr, "tandem train-exits: --layers must be increasing\n");
            return false;
        }
        o->layers[o->n_layers++] = (int)v;
        s = *end ? end + 1 : end;
    }
    if (o->n_layers == 0) {
        fprintf(stderr, "tandem train-exits: --layers: no layers given\n");
        return false;
    }
    return true;
}

/* Which of the three jobs the options ask for, and whether they fit it;
 * a message on stderr when not. */
static bool check_mode(const struct train_opts *o)
{
    const char *why = NULL;
    if (!o->model)
        why = "need -m MODEL.gguf";
    else if (o->export_draft && (o->n_layers || o->report))
        why = "--export-draft makes a draft only: no --layers or --report with it";
    else if (o->export_draft && !o->out)
        why = "--export-draft needs -o DRAFT.gguf";
    else if (!o->export_draft && !o->report && (!o->n_layers || !o->data || !o->out))
        why = "need -m TARGET.gguf, --layers, --data PROMPTS.jsonl and -o OUT.gguf";
    else if (o->n_layers && (!o->data || !o->out))
        why = "fitting needs --data PROMPTS.jsonl and -o OUT.gguf";
    else if (o->report && !o->n_layers && o->out)
        why = "-o without --layers: --report alone reads the exits of -m and writes no model";
    else if (o->report && !o->data && !o->report_data)
        why = "--report needs --report-data PROMPTS.jsonl, or --data to use its held-out share";
    else if (o->no_adapter && o->rank)
        why = "--rank and --no-adapter exclude each other";
    if (why)
        fprintf(stderr, "tandem train-exits: %s\n", why);
    return !why;
}

static int parse_train_opts(int argc, char **argv, struct train_opts *o)
{
    enum { O_LAYERS = 256, O_DATA, O_NOADAPT, O_RANK, O_TOKENS, O_GEN, O_HOLDOUT, O_PREC, O_CTX,
           O_THREADS, O_JSON, O_REPORT, O_RDATA, O_RTOKENS, O_RJSON, O_DRAFT };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"output", required_argument, 0, 'o'},
        {"layers", required_argument, 0, O_LAYERS}, {"data", required_argument, 0, O_DATA},
        {"no-adapter", no_argument, 0, O_NOADAPT},  {"rank", required_argument, 0, O_RANK},
        {"tokens", required_argument, 0, O_TOKENS}, {"gen", required_argument, 0, O_GEN},
        {"holdout", required_argument, 0, O_HOLDOUT}, {"precision", required_argument, 0, O_PREC},
        {"ctx", required_argument, 0, O_CTX},       {"threads", required_argument, 0, O_THREADS},
        {"json", no_argument, 0, O_JSON},           {"report", no_argument, 0, O_REPORT},
        {"report-data", required_argument, 0, O_RDATA},
        {"report-tokens", required_argument, 0, O_RTOKENS},
        {"report-json", required_argument, 0, O_RJSON},
        {"export-draft", required_argument, 0, O_DRAFT},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'o': o->out = optarg; break;
        case O_LAYERS: ok = parse_layers(optarg, o); break;
        case O_DATA: o->data = optarg; break;
        case O_NOADAPT: o->no_adapter = true; break;
        case O_RANK: ok = arg_int("--rank", optarg, 0, 1 << 16, &o->rank); break;
        case O_TOKENS: ok = arg_int("--tokens", optarg, 2, 1 << 30, &o->tokens); break;
        case O_GEN: ok = arg_int("--gen", optarg, 0, 1 << 16, &o->gen); break;
        case O_HOLDOUT: ok = arg_float("--holdout", optarg, 0.01f, 0.99f, &o->holdout); break;
        case O_PREC: ok = arg_float("--precision", optarg, 0.0f, 1.0f, &o->precision); break;
        case O_CTX: ok = arg_int("--ctx", optarg, 2, 1 << 24, &o->ctx); break;
        case O_THREADS: ok = arg_int("--threads", optarg, 1, 1024, &o->threads); break;
        case O_JSON: o->json = true; break;
        case O_REPORT: o->report = true; break;
        case O_RDATA: o->report_data = optarg; o->report = true; break;
        case O_RTOKENS: ok = arg_int("--report-tokens", optarg, 2, 1 << 30, &o->report_tokens); o->report = true; break;
        case O_RJSON: o->report_json = optarg; o->report = true; break;
        case O_DRAFT: ok = arg_int("--export-draft", optarg, 1, 4096, &o->export_draft); break;
        case 'h': train_usage(stdout); return 0;
        default: train_usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tandem train-exits: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!check_mode(o))
        return 2;
    if (o->gen >= o->ctx) {
        fprintf(stderr, "tandem train-exits: --gen %d leaves no room for a prompt in --ctx %d\n",
                o->gen, o->ctx);
        return 2;
    }
    return -1;
}

/* The draft of the first n layers. The target's exit after layer n-1, if it
 * has one with an adapter, is not what the draft computes: say so. */
static bool export_draft(const struct train_opts *o, char *err, size_t errlen)
{
    struct model *m = model_load(o->model, err, errlen);
    struct exit_set s = {0};
    bool ok = m && exits_load(m, &s, err, errlen) &&
              exits_export_draft(m, o->export_draft, o->out, err, errlen);
    for (int e = 0; ok && e < s.n; e++)
        if (s.heads[e].layer == o->export_draft - 1 && s.heads[e].adapter != EXIT_NO_ADAPTER)
            fprintf(stderr, "tandem train-exits: note: the draft ends in the shared head; the "
                            "adapter of the exit at layer %d is not in it (docs/exits.md)\n",
                    s.heads[e].layer);
    if (ok)
        printf("wrote %s: the first %d of %s's %d layers and its head\n", o->out, o->export_draft,
               o->model, m->cfg.n_layers);
    exits_free(&s);
    model_free(m);
    return ok;
}

int cmd_train_exits(int argc, char **argv)
{
    struct train_opts o = {.tokens = 8192, .gen = 32, .ctx = 512, .holdout = 0.2f,
                           .precision = 0.9f, .report_tokens = 4096};
    int rc = parse_train_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (!o.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n > 0 ? (int)n : 1;
    }
    char err[512];
    struct corpus corpus = {0};
    bool ok;
    if (o.export_draft)
        ok = export_draft(&o, err, sizeof err);
    else
        ok = (!o.data || corpus_read(o.data, &corpus, err, sizeof err)) &&
             (!o.n_layers || exits_train(&o, &corpus, err, sizeof err)) &&
             (!o.report || exits_report(&o, o.n_layers ? o.out : o.model, &corpus, err, sizeof err));
    if (!ok)
        fprintf(stderr, "tandem train-exits: %s\n", err);
    corpus_free(&corpus);
    return ok ? 0 : 1;
}
