/* Lossless sampling (DESIGN.md §3.3), measured: on a target and an unrelated
 * draft with an 8-token vocabulary, the first three tokens that sd and sd-ee
 * (cloud and edge library in this process) generate at temperature, top-k
 * and top-p are counted over fixed seeds and compared, by a chi-square test,
 * with the exact distribution of the target's own sampling, computed from
 * the engine's probabilities. The test shows it can fail: the same
 * statistic, on the same number of samples drawn with the same draft and
 * target, rejects a verifier that accepts every draft token and one that
 * resamples a refused token from p instead of norm(max(0, p − q)) — and
 * accepts the real verifier run the same way.
 *
 * Everything is deterministic for a seed (the edge's draws depend on the
 * seed and position only, the cloud's EARLY on a copy of its generator), so
 * sd-ee must give sd's tokens seed for seed, with pre-drafting active. And
 * since EARLY draws the uniforms FINAL will draw, an exit that equals the
 * last layer gives an EARLY that FINAL always confirms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud/cloud.h"
#include "cloud/verify.h"
#include "edge/edge.h"
#include "engine/forward.h"
#include "weights/gguf.h"

#define VOCAB 8
#define LEN 3                          /* tokens per sample */
#define CELLS (VOCAB * VOCAB * VOCAB)  /* sequences of LEN tokens */
#define PREFIXES (1 + VOCAB + VOCAB * VOCAB) /* contexts of 0 .. LEN-1 generated tokens */
#define SAMPLES 4000
#define DIM 32
#define FFN 64

static const int32_t prompt[] = {1, 3, 4};
#define N_PROMPT 3

static char dir[64], target_path[128], draft_path[128], endpoint[128];

struct server {
    struct cloud *cl;
    volatile sig_atomic_t stop;
    pthread_t thread;
};
static struct server main_server;

/* ---- models: 8 tokens, random weights ---- */

static void add_random(struct gguf_writer *w, const char *name, int cols, int rows, float mean,
                       float std, struct rng *g, float **keep, int *n_keep)
{
    float *x = malloc(sizeof *x * cols * rows);
    for (int i = 0; i < cols * rows; i++)
        x[i] = mean + std * (float)(2 * rng_uniform(g) - 1) * 1.7320508f; /* uniform, that std */
    keep[(*n_keep)++] = x;
    gguf_add_tensor(w, name, DTYPE_F32, rows > 1 ? 2 : 1, (uint64_t[]){(uint64_t)cols, (uint64_t)rows},
                    x, NULL, NULL);
}

/* A llama model of `layers` layers; exits at layers 0 and 1 with threshold
 * 0 (EARLY after each, whatever the confidence) when with_exits. A last
 * layer that adds nothing (zero output projections) makes the exit before
 * it give exactly the model's own logits. */
static void write_model(const char *path, int layers, uint64_t seed, bool with_exits,
                        bool idle_last_layer)
{
    static const char *tokens[VOCAB] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a", "\xe2\x96\x81" "b",
                                        "\xe2\x96\x81" "c", "\xe2\x96\x81" "d", "\xe2\x96\x81" "e"};
    float scores[VOCAB] = {0, 0, 0, -1, -2, -3, -4, -5};
    int32_t types[VOCAB] = {2, 3, 3, 1, 1, 1, 1, 1};
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "general.architecture", "llama");
    gguf_set_u32(w, "llama.block_count", layers);
    gguf_set_u32(w, "llama.context_length", 64);
    gguf_set_u32(w, "llama.embedding_length", DIM);
    gguf_set_u32(w, "llama.feed_forward_length", FFN);
    gguf_set_u32(w, "llama.attention.head_count", 4);
    gguf_set_u32(w, "llama.attention.head_count_kv", 2);
    gguf_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, VOCAB);
    gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, VOCAB);
    gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, VOCAB);
    gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (with_exits) {
        gguf_set_arr_i32(w, "tandem.exit.layers", (int32_t[]){0, 1}, 2);
        gguf_set_arr_f32(w, "tandem.exit.thresholds", (float[]){0.0f, 0.0f}, 2);
    }
    struct rng g;
    rng_seed(&g, seed);
    float *keep[64];
    int n_keep = 0;
    float s_in = 1.0f / sqrtf(DIM), s_ffn = 1.0f / sqrtf(FFN);
    /* an LM head of std 1.2/sqrt(dim): logits spread enough that every
     * three-token sequence has a countable probability */
    add_random(w, "token_embd.weight", DIM, VOCAB, 0, 1, &g, keep, &n_keep);
    add_random(w, "output_norm.weight", DIM, 1, 1, 0.05f, &g, keep, &n_keep);
    add_random(w, "output.weight", DIM, VOCAB, 0, 1.2f * s_in, &g, keep, &n_keep);
    for (int l = 0; l < layers; l++) {
        char name[64];
#define T(n) (snprintf(name, sizeof name, "blk.%d.%s", l, n), name)
        add_random(w, T("attn_norm.weight"), DIM, 1, 1, 0.05f, &g, keep, &n_keep);
        add_random(w, T("ffn_norm.weight"), DIM, 1, 1, 0.05f, &g, keep, &n_keep);
        add_random(w, T("attn_q.weight"), DIM, DIM, 0, s_in, &g, keep, &n_keep);
        add_random(w, T("attn_k.weight"), DIM, DIM / 2, 0, s_in, &g, keep, &n_keep);
        add_random(w, T("attn_v.weight"), DIM, DIM / 2, 0, s_in, &g, keep, &n_keep);
        bool idle = idle_last_layer && l == layers - 1;
        add_random(w, T("attn_output.weight"), DIM, DIM, 0, idle ? 0 : s_in, &g, keep, &n_keep);
        add_random(w, T("ffn_gate.weight"), DIM, FFN, 0, s_in, &g, keep, &n_keep);
        add_random(w, T("ffn_up.weight"), DIM, FFN, 0, s_in, &g, keep, &n_keep);
        add_random(w, T("ffn_down.weight"), FFN, DIM, 0, idle ? 0 : s_ffn, &g, keep, &n_keep);
#undef T
    }
    char err[256];
    if (!gguf_writer_write(w, path, NULL, NULL, err, sizeof err))
        fail_msg("%s", err);
    gguf_writer_free(w);
    for (int i = 0; i < n_keep; i++)
        free(keep[i]);
}

static void *serve(void *arg)
{
    struct server *sv = arg;
    char err[256];
    cloud_serve(sv->cl, &sv->stop, err, sizeof err);
    return NULL;
}

static bool server_start(struct server *sv, const char *model, const char *bind)
{
    char err[512];
    struct cloud_config cfg = {.model = model, .bind = bind, .max_gamma = 8, .threads = 1};
    if (!(sv->cl = cloud_new(&cfg, err, sizeof err))) {
        fprintf(stderr, "%s\n", err);
        return false;
    }
    sv->stop = 0;
    pthread_create(&sv->thread, NULL, serve, sv);
    return true;
}

static void server_stop(struct server *sv)
{
    sv->stop = 1;
    pthread_join(sv->thread, NULL);
    cloud_free(sv->cl);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/tandem-test-sampling-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(target_path, sizeof target_path, "%s/target.gguf", dir);
    snprintf(draft_path, sizeof draft_path, "%s/draft.gguf", dir);
    snprintf(endpoint, sizeof endpoint, "ipc://%s/cloud.sock", dir);
    write_model(target_path, 3, 11, true, false);
    write_model(draft_path, 2, 29, false, false);
    return server_start(&main_server, target_path, endpoint) ? 0 : -1;
}

static int teardown(void **state)
{
    server_stop(&main_server);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* ---- the statistic ---- */

/* Regularized upper incomplete gamma Q(a, x): the chi-square survival
 * function of statistic x with df degrees of freedom is Q(df/2, x/2).
 * Series below a + 1, Lentz's continued fraction above. */
static double gamma_q(double a, double x)
{
    if (x <= 0)
        return 1;
    double front = exp(-x + a * log(x) - lgamma(a));
    if (x < a + 1) {
        double term = 1 / a, sum = term;
        for (int n = 1; n < 10000 && term > sum * 1e-16; n++) {
            term *= x / (a + n);
            sum += term;
        }
        return 1 - front * sum;
    }
    double b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        d = fabs(d) < 1e-300 ? 1e-300 : d;
        c = b + an / c;
        c = fabs(c) < 1e-300 ? 1e-300 : c;
        d = 1 / d;
        h *= d * c;
        if (fabs(d * c - 1) < 1e-16)
            break;
    }
    return front * h;
}

struct chi2 {
    double stat, p;
    int df;
};

/* Pearson's chi-square of counts (n samples) against probabilities; cells
 * expecting fewer than 5 samples are pooled into one. */
static struct chi2 chi_square(const long *counts, const double *probs, int cells, long n)
{
    double stat = 0, pool_e = 0;
    long pool_o = 0;
    int bins = 0;
    for (int i = 0; i < cells; i++) {
        double e = probs[i] * n;
        if (e < 5) {
            pool_e += e;
            pool_o += counts[i];
        } else {
            stat += (counts[i] - e) * (counts[i] - e) / e;
            bins++;
        }
    }
    if (pool_e > 0) {
        stat += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
        bins++;
    }
    return (struct chi2){stat, gamma_q((bins - 1) / 2.0, stat / 2), bins - 1};
}

/* ---- the target's exact distribution, and both models' rows ---- */

struct tables {
    float target[PREFIXES][VOCAB];      /* the target's logits after each context */
    struct token_prob q[PREFIXES][VOCAB]; /* the draft's sampling distribution */
    int q_n[PREFIXES];
    double exact[CELLS];                /* P(t1 t2 t3) under the target's sampling */
};

static int prefix_index(const int32_t *gen, int k)
{
    int idx = 0, base = 0, width = 1;
    for (int j = 0; j < k; j++) {
        base += width;
        width *= VOCAB;
        idx = idx * VOCAB + gen[j];
    }
    return base + idx;
}

/* Last-row logits of each model after prompt + every context of < LEN tokens. */
static void model_rows(const char *path, float rows[PREFIXES][VOCAB])
{
    char err[256];
    struct model *m = model_load(path, err, sizeof err);
    assert_non_null(m);
    struct threadpool *tp = threadpool_new(1);
    struct forward_ctx *fc = forward_ctx_new(m, tp, 8, 16);
    struct kv_cache *kv = kv_new(&m->cfg, 16);
    for (int k = 0; k < LEN; k++) {
        int count = (int)pow(VOCAB, k);
        for (int v = 0; v < count; v++) {
            int32_t seq[N_PROMPT + LEN];
            memcpy(seq, prompt, sizeof prompt);
            for (int j = k - 1, x = v; j >= 0; j--, x /= VOCAB)
                seq[N_PROMPT + j] = x % VOCAB;
            kv_truncate(kv, 0);
            struct forward_request req = {seq, N_PROMPT + k, N_PROMPT + k - 1,
                                          rows[prefix_index(seq + N_PROMPT, k)], NULL, NULL};
            assert_true(forward(fc, kv, &req, err, sizeof err));
        }
    }
    kv_free(kv);
    forward_ctx_free(fc);
    threadpool_free(tp);
    model_free(m);
}

static void make_tables(struct tables *t, const struct sampling *s)
{
    static float draft_rows[PREFIXES][VOCAB];
    model_rows(target_path, t->target);
    model_rows(draft_path, draft_rows);
    for (int i = 0; i < PREFIXES; i++)
        t->q_n[i] = sampling_dist(s, draft_rows[i], VOCAB, t->q[i]);
    for (int c = 0; c < CELLS; c++) {
        int32_t gen[LEN] = {c / (VOCAB * VOCAB), c / VOCAB % VOCAB, c % VOCAB};
        double p = 1;
        for (int k = 0; k < LEN; k++) {
            struct token_prob d[VOCAB];
            int n = sampling_dist(s, t->target[prefix_index(gen, k)], VOCAB, d);
            double pk = 0;
            for (int j = 0; j < n; j++)
                pk += d[j].id == gen[k] ? d[j].p : 0;
            p *= pk;
        }
        t->exact[c] = p;
    }
}

static int cell_of(const int32_t *ids) { return (ids[0] * VOCAB + ids[1]) * VOCAB + ids[2]; }

/* ---- speculative sampling by the rule alone, no wire ---- */

typedef struct verdict (*rule_fn)(struct verifier *v, const struct sampling *s, const float *logits,
                                  const Tandem__Draft *d, struct rng *rng);

static struct verdict accept_always(struct verifier *v, const struct sampling *s, const float *logits,
                                    const Tandem__Draft *d, struct rng *rng)
{
    int n = sampling_dist(s, logits + d->n_tokens * VOCAB, VOCAB, v->dist);
    return (struct verdict){(int)d->n_tokens, sample_from(v->dist, n, rng)};
}

/* The classic slip: the right acceptance test, but a refused token is
 * replaced by a sample of p itself. */
static struct verdict resample_from_p(struct verifier *v, const struct sampling *s,
                                      const float *logits, const Tandem__Draft *d, struct rng *rng)
{
    for (size_t i = 0; i < d->n_tokens; i++) {
        int n = sampling_dist(s, logits + i * VOCAB, VOCAB, v->dist);
        double p = 0, q = 0;
        for (int j = 0; j < n; j++)
            p += v->dist[j].id == d->tokens[i] ? v->dist[j].p : 0;
        for (size_t j = 0; j < d->dists[i]->n_ids; j++)
            q += d->dists[i]->ids[j] == d->tokens[i] ? d->dists[i]->probs[j] : 0;
        if (rng_uniform(rng) * q >= p)
            return (struct verdict){(int)i, sample_from(v->dist, n, rng)};
    }
    return accept_always(v, s, logits, d, rng);
}

/* SAMPLES sequences of LEN tokens from rounds of gamma draft tokens verified
 * by rule, the way the edge and the cloud run them. */
static void simulate(const struct tables *t, const struct sampling *s, int gamma, rule_fn rule,
                     long *counts)
{
    struct verifier v;
    assert_true(verifier_init(&v, VOCAB));
    struct rng edge_g, cloud_g;
    rng_seed(&edge_g, 101);
    rng_seed(&cloud_g, 202);
    for (int n = 0; n < SAMPLES; n++) {
        int32_t gen[LEN + 8];
        int len = 0;
        while (len < LEN) {
            int g = gamma < LEN - len - 1 ? gamma : LEN - len - 1;
            int32_t draft[8];
            Tandem__TokenDist dists[8], *dist_ptrs[8];
            int32_t ids[8][VOCAB];
            float probs[8][VOCAB], logits[9 * VOCAB];
            memcpy(logits, t->target[prefix_index(gen, len)], sizeof(float) * VOCAB);
            for (int j = 0; j < g; j++) {
                int pi = prefix_index(gen, len + j);
                draft[j] = gen[len + j] = sample_from(t->q[pi], t->q_n[pi], &edge_g);
                tandem__token_dist__init(&dists[j]);
                dists[j].n_ids = dists[j].n_probs = t->q_n[pi];
                for (int k = 0; k < t->q_n[pi]; k++) {
                    ids[j][k] = t->q[pi][k].id;
                    probs[j][k] = t->q[pi][k].p;
                }
                dists[j].ids = ids[j];
                dists[j].probs = probs[j];
                dist_ptrs[j] = &dists[j];
                memcpy(logits + (j + 1) * VOCAB, t->target[prefix_index(gen, len + j + 1)],
                       sizeof(float) * VOCAB);
            }
            Tandem__Draft d = TANDEM__DRAFT__INIT;
            d.n_tokens = d.n_dists = g;
            d.tokens = draft;
            d.dists = dist_ptrs;
            struct verdict vd = rule(&v, s, logits, &d, &cloud_g);
            len += vd.accepted;
            gen[len++] = vd.next;
        }
        counts[cell_of(gen)]++;
    }
    verifier_free(&v);
}

/* ---- the real thing: cloud and edge library ---- */

struct run_stats {
    int early_rounds, early_hits, predraft_stops;
    long predrafted;
};

/* SAMPLES generations of LEN tokens, seeds 1 .. SAMPLES; each sample's cell
 * goes to cells[] (for seed-by-seed comparisons) and its count to counts. */
static void generate(enum edge_mode mode, int gamma, const struct sampling *s, long *counts,
                     int *cells, struct run_stats *st)
{
    char err[512];
    struct edge_config cfg = {.model = draft_path, .endpoint = endpoint, .mode = mode, .gamma = gamma,
                              .sampling = *s, .threads = 1, .timeout_ms = 10000, .ignore_eos = true};
    struct edge *e = edge_open(&cfg, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    for (int n = 0; n < SAMPLES; n++) {
        struct edge_result r;
        edge_set_sampling(e, s, (uint64_t)n + 1);
        if (!edge_generate(e, prompt, N_PROMPT, LEN, NULL, NULL, &r, err, sizeof err))
            fail_msg("sample %d: %s", n, err);
        assert_int_equal(r.n_ids, LEN);
        cells[n] = cell_of(r.ids);
        counts[cells[n]]++;
        st->early_rounds += r.early_rounds;
        st->early_hits += r.early_hits;
        st->predraft_stops += r.predraft_stops;
        st->predrafted += r.predrafted;
        edge_result_free(&r);
    }
    edge_close(e);
}

static struct chi2 report(const char *what, const long *counts, const struct tables *t)
{
    struct chi2 c = chi_square(counts, t->exact, CELLS, SAMPLES);
    printf("  %-44s chi2 = %7.2f, df = %3d, p = %.3g\n", what, c.stat, c.df, c.p);
    return c;
}

static void test_gamma_q(void **state)
{
    /* tabulated chi-square quantiles: P(X > 3.841 | 1) = 0.05, P(X > 18.307 | 10) = 0.05,
     * P(X > 124.342 | 100) = 0.05, P(X > 29.588 | 10) = 0.001 */
    assert_true(fabs(gamma_q(0.5, 3.841 / 2) - 0.05) < 1e-4);
    assert_true(fabs(gamma_q(5, 18.307 / 2) - 0.05) < 1e-4);
    assert_true(fabs(gamma_q(50, 124.342 / 2) - 0.05) < 1e-4);
    assert_true(fabs(gamma_q(5, 29.588 / 2) - 0.001) < 1e-5);
}

/* A wrong rule fails where the right one passes: same draws, same counts. */
static void test_statistic_rejects_wrong_rules(void **state)
{
    struct sampling s = {1.0f, 0, 1.0f};
    static struct tables t;
    make_tables(&t, &s);
    static long right[CELLS], always[CELLS], from_p[CELLS];
    simulate(&t, &s, 2, verify_sampled, right);
    simulate(&t, &s, 2, accept_always, always);
    simulate(&t, &s, 2, resample_from_p, from_p);
    assert_true(report("rule alone: rejection sampling", right, &t).p > 1e-3);
    assert_true(report("rule alone: accept always (wrong)", always, &t).p < 1e-6);
    assert_true(report("rule alone: refused -> sample p (wrong)", from_p, &t).p < 1e-6);
}

static void check_modes(const struct sampling *s, int gamma_sd, int gamma_ee, bool same_gamma)
{
    static struct tables t;
    make_tables(&t, s);
    static long sd[CELLS], ee[CELLS];
    static int sd_cells[SAMPLES], ee_cells[SAMPLES];
    memset(sd, 0, sizeof sd);
    memset(ee, 0, sizeof ee);
    struct run_stats st_sd = {0}, st_ee = {0};
    generate(EDGE_SD, gamma_sd, s, sd, sd_cells, &st_sd);
    generate(EDGE_SD_EE, gamma_ee, s, ee, ee_cells, &st_ee);
    char what[64];
    snprintf(what, sizeof what, "sd, gamma %d", gamma_sd);
    struct chi2 c_sd = report(what, sd, &t);
    snprintf(what, sizeof what, "sd-ee, gamma %d", gamma_ee);
    struct chi2 c_ee = report(what, ee, &t);
    printf("  sd-ee: %d rounds with EARLY, %d confirmed; %ld tokens pre-drafted, %d pre-drafts "
           "cut short by FINAL\n", st_ee.early_rounds, st_ee.early_hits, st_ee.predrafted,
           st_ee.predraft_stops);
    assert_true(c_sd.p > 1e-3);
    assert_true(c_ee.p > 1e-3);
    assert_true(st_ee.early_hits > 0);           /* pre-drafting was in play */
    assert_true(st_ee.early_hits < st_ee.early_rounds); /* and so were refuted EARLYs */
    if (same_gamma) {
        int differ = 0;
        for (int n = 0; n < SAMPLES; n++)
            differ += sd_cells[n] != ee_cells[n];
        assert_int_equal(differ, 0);
    }
}

static void test_temperature(void **state)
{
    struct sampling s = {1.0f, 0, 1.0f};
    check_modes(&s, 2, 2, true);
}

static void test_top_k(void **state)
{
    struct sampling s = {0.8f, 4, 1.0f};
    check_modes(&s, 1, 3, false);
}

static void test_top_p(void **state)
{
    struct sampling s = {1.3f, 0, 0.8f};
    check_modes(&s, 3, 1, false);
}

/* The exit at layer 1 of a target whose layer 2 adds nothing has the
 * target's own logits: its EARLY, drawn with FINAL's uniforms, is FINAL.
 * Every round with draft tokens gets one, and every such round but one that
 * ends the generation (no pre-draft then) is followed by a round started
 * from the confirmed pre-draft. Fresh uniforms for EARLY would miss about
 * as often as two samples differ. */
static void test_exact_exit_early_is_final(void **state)
{
    char path[128], bind[160];
    snprintf(path, sizeof path, "%s/exact-exit.gguf", dir);
    snprintf(bind, sizeof bind, "ipc://%s/exact.sock", dir);
    write_model(path, 3, 11, true, true);
    struct server sv;
    assert_true(server_start(&sv, path, bind));
    struct sampling s = {1.0f, 0, 1.0f};
    char err[512];
    struct edge_config cfg = {.model = draft_path, .endpoint = bind, .mode = EDGE_SD_EE, .gamma = 1,
                              .sampling = s, .threads = 1, .timeout_ms = 10000, .ignore_eos = true};
    struct edge *e = edge_open(&cfg, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    int rounds = 0, early = 0, hits = 0;
    for (int n = 0; n < 200; n++) {
        struct edge_result r;
        edge_set_sampling(e, &s, (uint64_t)n + 1);
        if (!edge_generate(e, prompt, N_PROMPT, 6, NULL, NULL, &r, err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(r.early_rounds, r.offered_at[0]);
        assert_true(r.early_hits >= r.early_rounds - 1);
        rounds += r.rounds;
        early += r.early_rounds;
        hits += r.early_hits;
        edge_result_free(&r);
    }
    printf("  exact exit: %d rounds, %d with EARLY, %d started from a confirmed pre-draft\n", rounds,
           early, hits);
    edge_close(e);
    server_stop(&sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gamma_q),
        cmocka_unit_test(test_statistic_rejects_wrong_rules),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_exact_exit_early_is_final),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
