/* train-exits --report: how good the exits stored in a model are, on text
 * none of them was fitted on (docs/exits.md, "The report").
 *
 * One pass of the target over prompts and their greedy continuations. At
 * every exit, each row gets the stored head's argmax and probability and
 * the same layer's head without adapter; the last layer gives the final
 * argmax. Each finished sequence then serves as the draft of rounds at every
 * position p and every γ: the round drafts tokens p+1 .. p+γ and reads rows
 * p .. p+γ, and its verdict is computed as the cloud would, once from the
 * exit's argmaxes (provisional) and once from the last layer's (final). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/exits.h"
#include "../engine/verdict.h"
#include "corpus_run.h"
#include "precision.h"
#include "train_exits.h"

#define MAX_ROWS 64
#define GAMMA_MAX 8
#define N_PRECISIONS 2
static const double precisions[N_PRECISIONS] = {0.90, 0.95};

struct scores {
    struct scored *s;
    long n, cap;
};

static bool push(struct scores *x, float confidence, bool right)
{
    if (x->n == x->cap) {
        long cap = x->cap ? x->cap * 2 : 1024;
        struct scored *grown = realloc(x->s, sizeof *grown * cap);
        if (!grown)
            return false;
        x->s = grown;
        x->cap = cap;
    }
    x->s[x->n++] = (struct scored){confidence, right};
    return true;
}

/* One exit: its rows in the current sequence and its counts over all. */
struct exit_stats {
    const struct exit_head *head;
    struct exit_head none;        /* the same layer, no adapter */
    int32_t *tok, *tok_none;      /* (ctx) argmax of each row of the sequence */
    float *prob;                  /* (ctx) the stored head's probability of it */
    long agree, agree_none;
    long verdicts[GAMMA_MAX], verdicts_none[GAMMA_MAX]; /* provisional == final */
    struct scores rows;           /* stored head: (probability, agrees with the final layer) */
    struct scores rounds[GAMMA_MAX]; /* (verdict confidence, provisional == final) */
};

struct reporter {
    const struct train_opts *o;
    struct model *m;
    struct tokenizer *tok;
    struct exit_set exits;
    struct threadpool *tp;
    struct forward_ctx *fc;
    struct kv_cache *kv;
    struct exit_eval *ev;
    struct exit_stats *x;         /* (exits.n) */
    int32_t *final_tok;           /* (ctx) the last layer's argmax of each row */
    struct exit_result res[MAX_ROWS];
    int seq_rows;                 /* rows of the current sequence through the last layer */
    long rows, rounds[GAMMA_MAX], accepted[GAMMA_MAX];
    bool failed;
};

static void argmaxes(struct reporter *r, const struct exit_head *h, const float *hidden, int n,
                     int32_t *tok, float *prob)
{
    exit_head_eval(r->ev, h, hidden, n, r->res, NULL);
    for (int i = 0; i < n; i++) {
        tok[i] = r->res[i].token;
        if (prob)
            prob[i] = r->res[i].prob;
    }
}

/* A chunk's rows continue the sequence at seq_rows, at every layer. */
static bool report_hook(void *ctx, int layer, const float *hidden, int first_row, int n)
{
    struct reporter *r = ctx;
    int at = r->seq_rows;
    (void)first_row;
    for (int e = 0; e < r->exits.n; e++) {
        struct exit_stats *x = &r->x[e];
        if (x->head->layer != layer)
            continue;
        argmaxes(r, x->head, hidden, n, x->tok + at, x->prob + at);
        if (x->head->adapter == EXIT_NO_ADAPTER)
            memcpy(x->tok_none + at, x->tok + at, sizeof *x->tok * n);
        else
            argmaxes(r, &x->none, hidden, n, x->tok_none + at, NULL);
    }
    if (layer == r->m->cfg.n_layers - 1) {
        struct exit_head final = {.layer = layer, .adapter = EXIT_NO_ADAPTER};
        argmaxes(r, &final, hidden, n, r->final_tok + at, NULL);
        r->seq_rows += n;
    }
    return true;
}

static bool same(struct verdict a, struct verdict b)
{
    return a.accepted == b.accepted && a.next == b.next;
}

/* Scores the finished sequence: its rows, and its rounds at every γ. */
static bool sequence_done(void *ctx, const int32_t *tokens, int n)
{
    struct reporter *r = ctx;
    bool ok = true;
    r->rows += n;
    for (int e = 0; e < r->exits.n; e++) {
        struct exit_stats *x = &r->x[e];
        for (int i = 0; i < n; i++) {
            x->agree += x->tok[i] == r->final_tok[i];
            x->agree_none += x->tok_none[i] == r->final_tok[i];
            ok = ok && push(&x->rows, x->prob[i], x->tok[i] == r->final_tok[i]);
        }
    }
    for (int g = 1; g <= GAMMA_MAX; g++)
        for (int p = 0; p + g < n; p++) {
            const int32_t *draft = tokens + p + 1;
            struct verdict final = verdict_greedy(draft, r->final_tok + p, g);
            r->rounds[g - 1]++;
            r->accepted[g - 1] += final.accepted;
            for (int e = 0; e < r->exits.n; e++) {
                struct exit_stats *x = &r->x[e];
                struct verdict early = verdict_greedy(draft, x->tok + p, g);
                x->verdicts[g - 1] += same(early, final);
                x->verdicts_none[g - 1] += same(verdict_greedy(draft, x->tok_none + p, g), final);
                ok = ok && push(&x->rounds[g - 1], verdict_confidence(x->prob + p, early),
                                same(early, final));
            }
        }
    r->seq_rows = 0;
    r->failed = !ok;
    return ok;
}

/* ---- output ---- */

static const char *adapter_name(const struct exit_head *h)
{
    return h->adapter == EXIT_FULL_ADAPTER ? "full"
           : h->adapter == EXIT_LOW_RANK_ADAPTER ? "low-rank" : "none";
}

struct threshold {
    bool reached;
    float value;
    double kept;
};

static struct threshold threshold_of(struct scores *s, double precision)
{
    struct threshold t = {false, 0, 0};
    t.reached = precision_threshold(s->s, s->n, precision, &t.value, &t.kept);
    return t;
}

static void print_threshold(struct threshold t)
{
    if (t.reached)
        printf("  %7.4f  %5.1f%%", t.value, 100 * t.kept);
    else
        printf("  %7s  %5.1f%%", "-", 0.0);
}

static void print_table(struct reporter *r, const char *model_path, const char *data, bool all,
                        int sequences)
{
    printf("report on %s\n%ld tokens in %d sequences of %s (%s),\n"
           "each a prompt and the target's greedy continuation; the text itself is the draft\n"
           "of every round\n",
           model_path, r->rows, sequences, data, all ? "every prompt" : "held-out prompts");
    printf("final verdicts, mean accepted for γ = 1..%d:", GAMMA_MAX);
    for (int g = 0; g < GAMMA_MAX; g++)
        printf(" %.2f", r->rounds[g] ? (double)r->accepted[g] / r->rounds[g] : 0.0);
    printf("\n\ntop-1 agreement with the last layer; confidence thresholds of rows\n");
    printf("%5s  %-8s  %11s  %7s  %7s  %6s  %7s  %6s\n", "layer", "adapter", "agree(none)", "agree",
           "thr@90%", "kept", "thr@95%", "kept");
    for (int e = 0; e < r->exits.n; e++) {
        struct exit_stats *x = &r->x[e];
        printf("%5d  %-8s  %11.4f  %7.4f", x->head->layer, adapter_name(x->head),
               (double)x->agree_none / r->rows, (double)x->agree / r->rows);
        for (int k = 0; k < N_PRECISIONS; k++)
            print_threshold(threshold_of(&x->rows, precisions[k]));
        printf("\n");
    }
    printf("\nprovisional verdict (from the exit) == final verdict, share of rounds\n%5s", "layer");
    for (int g = 1; g <= GAMMA_MAX; g++)
        printf("    γ=%d", g);
    printf("\n");
    for (int e = 0; e < r->exits.n; e++) {
        printf("%5d", r->x[e].head->layer);
        for (int g = 0; g < GAMMA_MAX; g++)
            printf("  %.4f", r->rounds[g] ? (double)r->x[e].verdicts[g] / r->rounds[g] : 0.0);
        printf("\n");
    }
    printf("\nconfidence thresholds of rounds at γ = 4 (a verdict's confidence: the exit's\n"
           "lowest probability over the rows it depends on; every γ in the JSON)\n");
    printf("%5s  %7s  %6s  %7s  %6s\n", "layer", "thr@90%", "kept", "thr@95%", "kept");
    for (int e = 0; e < r->exits.n; e++) {
        printf("%5d", r->x[e].head->layer);
        for (int k = 0; k < N_PRECISIONS; k++)
            print_threshold(threshold_of(&r->x[e].rounds[3], precisions[k]));
        printf("\n");
    }
}

static json_object *ratios(const long *num, const long *den, long den_all)
{
    json_object *a = json_object_new_array();
    for (int g = 0; g < GAMMA_MAX; g++) {
        long d = den ? den[g] : den_all;
        json_object_array_add(a, json_object_new_double(d ? (double)num[g] / d : 0.0));
    }
    return a;
}

static json_object *thresholds_json(struct scores *s)
{
    json_object *a = json_object_new_array();
    for (int k = 0; k < N_PRECISIONS; k++) {
        struct threshold t = threshold_of(s, precisions[k]);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "precision", json_object_new_double(precisions[k]));
        json_object_object_add(o, "threshold", t.reached ? json_object_new_double(t.value) : NULL);
        json_object_object_add(o, "kept", json_object_new_double(t.kept));
        json_object_array_add(a, o);
    }
    return a;
}

static json_object *report_json(struct reporter *r, const char *model_path, const char *data,
                                bool all, int sequences)
{
    json_object *root = json_object_new_object(), *exits = json_object_new_array();
    json_object *gammas = json_object_new_array(), *rounds = json_object_new_array();
    for (int g = 1; g <= GAMMA_MAX; g++) {
        json_object_array_add(gammas, json_object_new_int(g));
        json_object_array_add(rounds, json_object_new_int64(r->rounds[g - 1]));
    }
    json_object_object_add(root, "model", json_object_new_string(model_path));
    json_object_object_add(root, "data", json_object_new_string(data));
    json_object_object_add(root, "prompts", json_object_new_string(all ? "all" : "held-out"));
    json_object_object_add(root, "tokens", json_object_new_int64(r->rows));
    json_object_object_add(root, "sequences", json_object_new_int(sequences));
    json_object_object_add(root, "gammas", gammas);
    json_object_object_add(root, "rounds", rounds);
    json_object_object_add(root, "final_mean_accepted", ratios(r->accepted, r->rounds, 0));
    for (int e = 0; e < r->exits.n; e++) {
        struct exit_stats *x = &r->x[e];
        json_object *o = json_object_new_object(), *by_gamma = json_object_new_array();
        json_object_object_add(o, "layer", json_object_new_int(x->head->layer));
        json_object_object_add(o, "adapter", json_object_new_string(adapter_name(x->head)));
        json_object_object_add(o, "stored_threshold", json_object_new_double(x->head->threshold));
        json_object_object_add(o, "agreement", json_object_new_double((double)x->agree / r->rows));
        json_object_object_add(o, "agreement_none",
                               json_object_new_double((double)x->agree_none / r->rows));
        json_object_object_add(o, "verdict_agreement", ratios(x->verdicts, r->rounds, 0));
        json_object_object_add(o, "verdict_agreement_none", ratios(x->verdicts_none, r->rounds, 0));
        json_object_object_add(o, "row_thresholds", thresholds_json(&x->rows));
        for (int g = 0; g < GAMMA_MAX; g++)
            json_object_array_add(by_gamma, thresholds_json(&x->rounds[g]));
        json_object_object_add(o, "round_thresholds", by_gamma);
        json_object_array_add(exits, o);
    }
    json_object_object_add(root, "exits", exits);
    return root;
}

/* ---- the run ---- */

static bool reporter_init(struct reporter *r, const char *model_path, char *err, size_t errlen)
{
    r->m = model_load(model_path, err, errlen);
    r->tok = r->m ? tokenizer_load(r->m->file, err, errlen) : NULL;
    if (!r->tok || !exits_load(r->m, &r->exits, err, errlen))
        return false;
    if (r->exits.n == 0) {
        snprintf(err, errlen, "%s has no exits to report on (fit them with --layers)", model_path);
        return false;
    }
    const struct model_config *c = &r->m->cfg;
    int ctx = r->o->ctx < c->ctx_train ? r->o->ctx : c->ctx_train;
    if (r->o->gen >= ctx) {
        snprintf(err, errlen, "--gen %d leaves no room for a prompt in a context of %d", r->o->gen, ctx);
        return false;
    }
    r->tp = threadpool_new(r->o->threads);
    r->kv = kv_new(c, ctx);
    r->fc = r->tp ? forward_ctx_new(r->m, r->tp, MAX_ROWS, ctx) : NULL;
    r->ev = r->tp ? exit_eval_new(r->m, &r->exits, r->tp, MAX_ROWS) : NULL;
    r->x = calloc(r->exits.n, sizeof *r->x);
    r->final_tok = malloc(sizeof *r->final_tok * ctx);
    bool ok = r->kv && r->fc && r->ev && r->x && r->final_tok;
    for (int e = 0; ok && e < r->exits.n; e++) {
        struct exit_stats *x = &r->x[e];
        x->head = &r->exits.heads[e];
        x->none = (struct exit_head){.layer = x->head->layer, .adapter = EXIT_NO_ADAPTER};
        x->tok = malloc(sizeof *x->tok * ctx);
        x->tok_none = malloc(sizeof *x->tok_none * ctx);
        x->prob = malloc(sizeof *x->prob * ctx);
        ok = x->tok && x->tok_none && x->prob;
    }
    if (!ok)
        snprintf(err, errlen, "out of memory (context %d)", ctx);
    return ok;
}

static void reporter_free(struct reporter *r)
{
    for (int e = 0; r->x && e < r->exits.n; e++) {
        struct exit_stats *x = &r->x[e];
        free(x->tok);
        free(x->tok_none);
        free(x->prob);
        free(x->rows.s);
        for (int g = 0; g < GAMMA_MAX; g++)
            free(x->rounds[g].s);
    }
    free(r->x);
    free(r->final_tok);
    exit_eval_free(r->ev);
    forward_ctx_free(r->fc);
    kv_free(r->kv);
    threadpool_free(r->tp);
    exits_free(&r->exits);
    tokenizer_free(r->tok);
    model_free(r->m);
}

static bool write_json(json_object *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    bool ok = f && fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY)) > 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        snprintf(err, errlen, "%s: cannot write the report", path);
    return ok;
}

bool exits_report(const struct train_opts *o, const char *model_path, const struct corpus *c,
                  char *err, size_t errlen)
{
    bool all = o->report_data != NULL;
    const char *data = all ? o->report_data : o->data;
    struct corpus own = {0};
    if (all && !corpus_read(o->report_data, &own, err, errlen))
        return false;
    struct reporter r = {.o = o};
    bool ok = reporter_init(&r, model_path, err, errlen);
    struct corpus_run run = {
        .m = r.m, .tok = r.tok, .fc = r.fc, .kv = r.kv, .gen = o->gen, .hook = report_hook,
        .hook_ctx = &r, .sequence_done = sequence_done, .label = "report", .budget = o->report_tokens,
    };
    ok = ok && corpus_run(&run, all ? &own : c, all ? CORPUS_ALL : CORPUS_HELD_OUT, o->holdout, err,
                          errlen);
    if (r.failed)
        snprintf(err, errlen, "out of memory");
    if (ok && r.rows == 0) {
        snprintf(err, errlen, "%s: no %s to report on", data, all ? "prompts" : "held-out prompts");
        ok = false;
    }
    if (ok) {
        json_object *j = report_json(&r, model_path, data, all, run.sequences);
        if (o->json)
            printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        else
            print_table(&r, model_path, data, all, run.sequences);
        ok = !o->report_json || write_json(j, o->report_json, err, errlen);
        json_object_put(j);
    }
    reporter_free(&r);
    corpus_free(&own);
    return ok;
}
