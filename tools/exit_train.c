/* Fitting exits: two passes of the target over a prompt corpus, each prompt
 * followed by the target's own greedy continuation. Training prompts grow
 * XᵀX and XᵀY of every exit layer against the last (streamed, states never
 * kept); the adapters are fitted in closed form for a grid of λ. Held-out
 * prompts then score every candidate, "no adapter" included, by top-1
 * agreement with the final layer, so the adapter chosen is never worse on
 * held-out text than the shared head alone; the same rows give each exit its
 * confidence threshold. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/exit_fit.h"
#include "../engine/exits.h"
#include "corpus_run.h"
#include "precision.h"
#include "train_exits.h"

#define MAX_ROWS 64
/* λ as multiples of the mean diagonal of XᵀX, strongest first: on equal
 * held-out agreement the earlier (simpler) candidate wins. */
static const double lambda_grid[] = {1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5};
#define N_LAMBDAS (int)(sizeof lambda_grid / sizeof lambda_grid[0])

/* One way of building an exit: no adapter, or the adapter fitted with one λ. */
struct candidate {
    struct exit_head head;
    float *a, *u, *v;
    double lambda; /* < 0: no adapter */
    bool usable;   /* false when the fit failed (singular system) */
    long agree;
    struct scored *scores; /* every held-out row */
    long n_scores, cap_scores;
};

struct trainer {
    const struct train_opts *o;
    struct model *m;
    struct tokenizer *tok;
    struct threadpool *tp;
    struct forward_ctx *fc;
    struct kv_cache *kv;
    int n_exits, n_cands;
    bool holdout_pass, failed;
    struct ridge_stats stats[MAX_EXITS];
    float *exit_rows[MAX_EXITS];   /* (MAX_ROWS, dim) the chunk's stream at each exit */
    struct candidate *cands;       /* (n_exits, n_cands) */
    struct exit_result *res;       /* (n_exits * n_cands, MAX_ROWS) */
    struct exit_result final_res[MAX_ROWS];
    struct exit_eval *ev;
    long rows[2];                  /* tokens run: [training, held-out] */
};

static struct candidate *cand(struct trainer *t, int e, int c)
{
    return &t->cands[e * t->n_cands + c];
}

/* ---- the passes ---- */

static void add_score(struct trainer *t, struct candidate *c, float prob, bool agree)
{
    if (c->n_scores == c->cap_scores) {
        long cap = c->cap_scores ? c->cap_scores * 2 : 1024;
        struct scored *grown = realloc(c->scores, sizeof *grown * cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        c->scores = grown;
        c->cap_scores = cap;
    }
    c->scores[c->n_scores++] = (struct scored){prob, agree};
    c->agree += agree;
}

/* Training: keep each exit's stream until the last layer, then add the pair
 * to the statistics. Held-out: evaluate every candidate at its layer, score
 * it against the final layer's argmax. */
static bool train_hook(void *ctx, int layer, const float *hidden, int first_row, int n)
{
    struct trainer *t = ctx;
    const struct model_config *c = &t->m->cfg;
    (void)first_row;
    for (int e = 0; e < t->n_exits; e++) {
        if (t->o->layers[e] != layer)
            continue;
        if (!t->holdout_pass)
            memcpy(t->exit_rows[e], hidden, sizeof(float) * n * c->dim);
        for (int k = 0; t->holdout_pass && k < t->n_cands; k++)
            if (cand(t, e, k)->usable)
                exit_head_eval(t->ev, &cand(t, e, k)->head, hidden, n,
                               t->res + (long)(e * t->n_cands + k) * MAX_ROWS, NULL);
    }
    if (layer != c->n_layers - 1)
        return true;
    if (!t->holdout_pass) {
        for (int e = 0; e < t->n_exits; e++)
            if (!ridge_stats_add(&t->stats[e], t->exit_rows[e], hidden, n))
                t->failed = true;
        return !t->failed;
    }
    /* The model's own head, evaluated like an exit: bitwise its logits. */
    struct exit_head final = {.layer = layer, .adapter = EXIT_NO_ADAPTER};
    exit_head_eval(t->ev, &final, hidden, n, t->final_res, NULL);
    for (int e = 0; e < t->n_exits; e++)
        for (int k = 0; k < t->n_cands; k++) {
            const struct exit_result *r = t->res + (long)(e * t->n_cands + k) * MAX_ROWS;
            for (int i = 0; cand(t, e, k)->usable && i < n; i++)
                add_score(t, cand(t, e, k), r[i].prob, r[i].token == t->final_res[i].token);
        }
    return !t->failed;
}

/* Runs the prompts of one role until its token budget is spent. */
static bool run_pass(struct trainer *t, const struct corpus *corpus, long budget, char *err,
                     size_t errlen)
{
    struct corpus_run r = {
        .m = t->m, .tok = t->tok, .fc = t->fc, .kv = t->kv, .gen = t->o->gen,
        .hook = train_hook, .hook_ctx = t, .label = t->holdout_pass ? "held-out" : "training",
        .budget = budget,
    };
    bool ok = corpus_run(&r, corpus, t->holdout_pass ? CORPUS_HELD_OUT : CORPUS_TRAINING,
                         t->o->holdout, err, errlen);
    t->rows[t->holdout_pass] = r.rows;
    /* The hook aborts a pass only when memory ran out. */
    if (t->failed)
        snprintf(err, errlen, "out of memory");
    return ok;
}

/* ---- fitting and choosing ---- */

static bool make_candidates(struct trainer *t)
{
    const struct model_config *c = &t->m->cfg;
    t->n_cands = t->o->no_adapter ? 1 : 1 + N_LAMBDAS;
    t->cands = calloc((size_t)t->n_exits * t->n_cands, sizeof *t->cands);
    t->res = malloc(sizeof *t->res * t->n_exits * t->n_cands * MAX_ROWS);
    if (!t->cands || !t->res)
        return false;
    int rank = t->o->rank ? t->o->rank : c->dim;
    for (int e = 0; e < t->n_exits; e++)
        for (int k = 0; k < t->n_cands; k++) {
            struct candidate *cd = cand(t, e, k);
            cd->head = (struct exit_head){.layer = t->o->layers[e], .adapter = EXIT_NO_ADAPTER};
            cd->lambda = -1.0;
            cd->usable = k == 0;
            if (k == 0)
                continue;
            cd->head.rank = rank;
            if (t->o->rank) {
                cd->head.adapter = EXIT_LOW_RANK_ADAPTER;
                cd->u = malloc(sizeof(float) * c->dim * rank);
                cd->v = malloc(sizeof(float) * rank * c->dim);
                cd->head.u = (struct matrix){cd->u, DTYPE_F32, c->dim, rank, false};
                cd->head.v = (struct matrix){cd->v, DTYPE_F32, rank, c->dim, false};
                if (!cd->u || !cd->v)
                    return false;
            } else {
                cd->head.adapter = EXIT_FULL_ADAPTER;
                cd->a = malloc(sizeof(float) * c->dim * c->dim);
                cd->head.a = (struct matrix){cd->a, DTYPE_F32, c->dim, c->dim, false};
                if (!cd->a)
                    return false;
            }
        }
    return true;
}

static void fit_candidates(struct trainer *t)
{
    char err[256];
    for (int e = 0; e < t->n_exits; e++) {
        double scale = ridge_scale(&t->stats[e]);
        for (int k = 1; k < t->n_cands; k++) {
            struct candidate *cd = cand(t, e, k);
            cd->lambda = lambda_grid[k - 1] * scale;
            cd->usable = t->o->rank ? ridge_fit_low_rank(&t->stats[e], cd->lambda, t->o->rank, cd->u,
                                                         cd->v, err, sizeof err)
                                    : ridge_fit(&t->stats[e], cd->lambda, cd->a, err, sizeof err);
            if (!cd->usable)
                fprintf(stderr, "train-exits: layer %d, λ %g: %s (candidate skipped)\n",
                        cd->head.layer, cd->lambda, err);
        }
    }
}

static int choose(struct trainer *t, int e)
{
    int best = 0;
    for (int k = 1; k < t->n_cands; k++)
        if (cand(t, e, k)->usable && cand(t, e, k)->agree > cand(t, e, best)->agree)
            best = k;
    return best;
}

/* ---- output ---- */

static bool write_model(struct trainer *t, const int *chosen, const float *thresholds, char *err,
                        size_t errlen)
{
    const struct gguf_file *src = t->m->file;
    int dim = t->m->cfg.dim;
    struct gguf_writer *w = gguf_writer_new();
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    gguf_copy_kv(w, src);
    gguf_set_arr_i32(w, "tandem.exit.layers", t->o->layers, t->n_exits);
    gguf_set_arr_f32(w, "tandem.exit.thresholds", thresholds, t->n_exits);
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const struct gguf_tensor *x = gguf_tensor_at(src, i);
        if (strncmp(x->name, "exit.", 5) != 0) /* earlier exits are replaced */
            gguf_add_tensor(w, x->name, x->type, x->n_dims, x->ne, x->data, NULL, NULL);
    }
    for (int e = 0; e < t->n_exits; e++) {
        const struct candidate *c = cand(t, e, chosen[e]);
        char name[64];
        int l = c->head.layer, r = c->head.rank;
        if (c->head.adapter == EXIT_FULL_ADAPTER) {
            snprintf(name, sizeof name, "exit.%d.adapter.weight", l);
            gguf_add_tensor(w, name, DTYPE_F32, 2, (uint64_t[]){dim, dim}, c->a, NULL, NULL);
        } else if (c->head.adapter == EXIT_LOW_RANK_ADAPTER) {
            snprintf(name, sizeof name, "exit.%d.adapter_u.weight", l);
            gguf_add_tensor(w, name, DTYPE_F32, 2, (uint64_t[]){r, dim}, c->u, NULL, NULL);
            snprintf(name, sizeof name, "exit.%d.adapter_v.weight", l);
            gguf_add_tensor(w, name, DTYPE_F32, 2, (uint64_t[]){dim, r}, c->v, NULL, NULL);
        }
    }
    bool ok = gguf_writer_write(w, t->o->out, NULL, NULL, err, errlen);
    gguf_writer_free(w);
    if (!ok)
        return false;
    /* Read back what was written, as every user of the file will. */
    struct model *m = model_load(t->o->out, err, errlen);
    struct exit_set s = {0};
    ok = m && exits_load(m, &s, err, errlen) && s.n == t->n_exits;
    exits_free(&s);
    model_free(m);
    return ok;
}

static const char *adapter_name(const struct candidate *c)
{
    return c->head.adapter == EXIT_FULL_ADAPTER ? "full"
           : c->head.adapter == EXIT_LOW_RANK_ADAPTER ? "low-rank" : "none";
}

static void print_table(struct trainer *t, const int *chosen, const float *thresholds,
                        const double *kept)
{
    printf("wrote %s: %d exits, fitted on %ld tokens, chosen on %ld held-out tokens\n"
           "(lambda: times the mean diagonal of XᵀX; threshold: held-out precision %.2f)\n",
           t->o->out, t->n_exits, t->rows[0], t->rows[1], t->o->precision);
    printf("%5s  %-8s  %8s  %11s  %8s  %9s  %5s\n", "layer", "adapter", "lambda", "agree(none)",
           "agree", "threshold", "kept");
    for (int e = 0; e < t->n_exits; e++) {
        const struct candidate *none = cand(t, e, 0), *c = cand(t, e, chosen[e]);
        double n = (double)none->n_scores;
        char lambda[16] = "-";
        if (chosen[e])
            snprintf(lambda, sizeof lambda, "%.0e", lambda_grid[chosen[e] - 1]);
        printf("%5d  %-8s  %8s  %11.4f  %8.4f  %9.4f  %4.0f%%\n", c->head.layer, adapter_name(c),
               lambda, none->agree / n, c->agree / n, thresholds[e], 100 * kept[e]);
    }
}

static void print_json(struct trainer *t, const int *chosen, const float *thresholds,
                       const double *kept)
{
    json_object *root = json_object_new_object(), *exits = json_object_new_array();
    for (int e = 0; e < t->n_exits; e++) {
        const struct candidate *none = cand(t, e, 0), *c = cand(t, e, chosen[e]);
        double n = (double)none->n_scores;
        json_object *x = json_object_new_object(), *cands = json_object_new_array();
        json_object_object_add(x, "layer", json_object_new_int(c->head.layer));
        json_object_object_add(x, "adapter", json_object_new_string(adapter_name(c)));
        json_object_object_add(x, "lambda", json_object_new_double(chosen[e] ? c->lambda : 0.0));
        json_object_object_add(x, "agreement_none", json_object_new_double(none->agree / n));
        json_object_object_add(x, "agreement", json_object_new_double(c->agree / n));
        json_object_object_add(x, "threshold", json_object_new_double(thresholds[e]));
        json_object_object_add(x, "kept", json_object_new_double(kept[e]));
        for (int k = 0; k < t->n_cands; k++) {
            const struct candidate *ck = cand(t, e, k);
            json_object *cj = json_object_new_object();
            json_object_object_add(cj, "lambda_rel", k ? json_object_new_double(lambda_grid[k - 1]) : NULL);
            json_object_object_add(cj, "agreement",
                                   ck->usable ? json_object_new_double(ck->agree / n) : NULL);
            json_object_array_add(cands, cj);
        }
        json_object_object_add(x, "candidates", cands);
        json_object_array_add(exits, x);
    }
    json_object_object_add(root, "output", json_object_new_string(t->o->out));
    json_object_object_add(root, "train_tokens", json_object_new_int64(t->rows[0]));
    json_object_object_add(root, "holdout_tokens", json_object_new_int64(t->rows[1]));
    /* the option as typed, not its float rounding */
    json_object_object_add(root, "precision", json_object_new_double(round(t->o->precision * 1e6) / 1e6));
    json_object_object_add(root, "exits", exits);
    printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
}

/* ---- the whole fit ---- */

/* Everything the target's shape decides about the options. */
static bool check_against_model(const struct train_opts *o, const struct model *m, char *err,
                                size_t errlen)
{
    int last = m->cfg.n_layers - 1;
    for (int e = 0; e < o->n_layers; e++)
        if (o->layers[e] >= last) {
            snprintf(err, errlen, "--layers: %d is not below the last layer (%s has %d layers, "
                                  "0-based: exits go at 0 .. %d)",
                     o->layers[e], o->model, last + 1, last - 1);
            return false;
        }
    if (o->gen >= m->cfg.ctx_train) {
        snprintf(err, errlen, "--gen %d leaves no room for a prompt in the model's context of %d",
                 o->gen, m->cfg.ctx_train);
        return false;
    }
    if (o->rank > m->cfg.dim) {
        snprintf(err, errlen, "--rank %d exceeds the model's width %d", o->rank, m->cfg.dim);
        return false;
    }
    return true;
}

static void trainer_free(struct trainer *t)
{
    for (int e = 0; e < t->n_exits; e++) {
        ridge_stats_free(&t->stats[e]);
        free(t->exit_rows[e]);
        for (int k = 0; t->cands && k < t->n_cands; k++) {
            struct candidate *c = cand(t, e, k);
            free(c->a);
            free(c->u);
            free(c->v);
            free(c->scores);
        }
    }
    free(t->cands);
    free(t->res);
    exit_eval_free(t->ev);
    forward_ctx_free(t->fc);
    kv_free(t->kv);
    threadpool_free(t->tp);
    tokenizer_free(t->tok);
    model_free(t->m);
}

static bool run_passes(struct trainer *t, const struct corpus *corpus, char *err, size_t errlen)
{
    const struct train_opts *o = t->o;
    const struct model_config *c = &t->m->cfg;
    int ctx = o->ctx < c->ctx_train ? o->ctx : c->ctx_train;
    long holdout_budget = (long)(o->tokens * (double)o->holdout);
    t->n_exits = o->n_layers;
    t->tp = threadpool_new(o->threads);
    t->kv = kv_new(c, ctx);
    t->fc = t->tp ? forward_ctx_new(t->m, t->tp, MAX_ROWS, ctx) : NULL;
    bool ok = t->kv && t->fc && make_candidates(t);
    for (int e = 0; ok && e < t->n_exits; e++) {
        t->exit_rows[e] = malloc(sizeof(float) * MAX_ROWS * c->dim);
        ok = t->exit_rows[e] && ridge_stats_init(&t->stats[e], c->dim);
    }
    if (!ok) {
        snprintf(err, errlen, "out of memory (context %d)", ctx);
        return false;
    }
    if (!o->no_adapter) {
        if (!run_pass(t, corpus, o->tokens - holdout_budget, err, errlen))
            return false;
        if (t->rows[0] == 0) {
            snprintf(err, errlen, "%s: no training prompts (more prompts or a smaller --holdout)", o->data);
            return false;
        }
        fit_candidates(t);
    }
    struct exit_set all = {t->n_exits * t->n_cands, NULL};
    struct exit_head *heads = malloc(sizeof *heads * all.n);
    for (int i = 0; heads && i < all.n; i++)
        heads[i] = t->cands[i].head;
    all.heads = heads;
    t->ev = heads ? exit_eval_new(t->m, &all, t->tp, MAX_ROWS) : NULL;
    free(heads);
    if (!t->ev) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    t->holdout_pass = true;
    if (!run_pass(t, corpus, holdout_budget, err, errlen))
        return false;
    if (t->rows[1] == 0) {
        snprintf(err, errlen, "%s: no held-out prompts (more prompts or a larger --holdout)", o->data);
        return false;
    }
    return true;
}

bool exits_train(const struct train_opts *o, const struct corpus *c, char *err, size_t errlen)
{
    struct trainer t = {.o = o};
    t.m = model_load(o->model, err, errlen);
    t.tok = t.m ? tokenizer_load(t.m->file, err, errlen) : NULL;
    int chosen[MAX_EXITS];
    float thresholds[MAX_EXITS];
    double kept[MAX_EXITS];
    bool ok = t.tok && check_against_model(o, t.m, err, errlen) && run_passes(&t, c, err, errlen);
    for (int e = 0; ok && e < t.n_exits; e++) {
        struct candidate *cd = cand(&t, e, chosen[e] = choose(&t, e));
        /* No threshold reaches the precision: trust nothing. */
        if (!precision_threshold(cd->scores, cd->n_scores, o->precision, &thresholds[e], &kept[e]))
            thresholds[e] = 1.0f;
    }
    ok = ok && write_model(&t, chosen, thresholds, err, errlen);
    if (ok)
        (o->json ? print_json : print_table)(&t, chosen, thresholds, kept);
    trainer_free(&t);
    return ok;
}
