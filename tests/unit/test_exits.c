/* Early-exit heads: loading and refusing exit metadata, the head against a
 * plain reference and a truncated model, exits evaluated inside a pass, and
 * drafts exported from a target. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/exits.h"
#include "engine/exits_draft.h"
#include "engine/sample.h"
#include "kernels/cpu/matmul.h"

#define FIXTURE "tests/golden/fixtures/tiny-llama-f32.gguf"
#define DIM 64
#define RANK 8
#define CTX 64

static char tmp_dir[64];
static struct gguf_file *src;        /* the 2-layer fixture the test models are made from */
static float adapter[DIM * DIM];      /* (dim, dim) */
static float adapter_u[DIM * RANK];   /* (dim, rank) */
static float adapter_v[RANK * DIM];   /* (rank, dim) */

static void fill_random(float *x, int n, float scale, uint64_t seed)
{
    struct rng g;
    rng_seed(&g, seed);
    for (int i = 0; i < n; i++)
        x[i] = scale * (float)(2.0 * rng_uniform(&g) - 1.0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_exits_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    char err[256];
    src = gguf_open(FIXTURE, err, sizeof err);
    fill_random(adapter, DIM * DIM, 0.1f, 1);
    fill_random(adapter_u, DIM * RANK, 0.3f, 2);
    fill_random(adapter_v, RANK * DIM, 0.3f, 3);
    return mkdtemp(tmp_dir) && src ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gguf_close(src);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd);
}

/* A 4-layer model: the fixture's two blocks, then the same two again, so
 * there is room for several exits below the last layer. */
static struct gguf_writer *deep_model(void)
{
    struct gguf_writer *w = gguf_writer_new();
    gguf_copy_kv(w, src);
    gguf_set_u32(w, "llama.block_count", 4);
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(src, i);
        gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, NULL, NULL);
        int l;
        char rest[64];
        if (sscanf(t->name, "blk.%d.%63s", &l, rest) == 2) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s", l + 2, rest);
            gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, NULL, NULL);
        }
    }
    return w;
}

static void add_f32(struct gguf_writer *w, const char *name, uint64_t cols, uint64_t rows,
                    const float *data)
{
    gguf_add_tensor(w, name, DTYPE_F32, 2, (uint64_t[]){cols, rows}, data, NULL, NULL);
}

/* Exits at 0 (full adapter), 1 (none) and 2 (low rank). */
static struct gguf_writer *model_with_exits(void)
{
    struct gguf_writer *w = deep_model();
    gguf_set_arr_i32(w, "tandem.exit.layers", (int32_t[]){0, 1, 2}, 3);
    gguf_set_arr_f32(w, "tandem.exit.thresholds", (float[]){0.5f, 0.6f, 0.7f}, 3);
    add_f32(w, "exit.0.adapter.weight", DIM, DIM, adapter);
    add_f32(w, "exit.2.adapter_u.weight", RANK, DIM, adapter_u);
    add_f32(w, "exit.2.adapter_v.weight", DIM, RANK, adapter_v);
    return w;
}

static void finish(struct gguf_writer *w, const char *name, char path[256])
{
    char err[256];
    snprintf(path, 256, "%s/%s", tmp_dir, name);
    if (!gguf_writer_write(w, path, NULL, NULL, err, sizeof err))
        fail_msg("%s", err);
    gguf_writer_free(w);
}

struct rig {
    struct model *m;
    struct exit_set exits;
    struct threadpool *tp;
};

static struct rig rig_open(struct gguf_writer *w, const char *name, int threads)
{
    char path[256], err[512];
    finish(w, name, path);
    struct rig r = {model_load(path, err, sizeof err), {0}, threadpool_new(threads)};
    if (!r.m)
        fail_msg("%s", err);
    if (!exits_load(r.m, &r.exits, err, sizeof err))
        fail_msg("%s", err);
    return r;
}

static void rig_close(struct rig *r)
{
    exits_free(&r->exits);
    threadpool_free(r->tp);
    model_free(r->m);
}

static void test_load(void **state)
{
    (void)state;
    struct rig r = rig_open(model_with_exits(), "exits.gguf", 1);
    assert_int_equal(r.exits.n, 3);
    const struct exit_head *h = r.exits.heads;
    assert_int_equal(h[0].layer, 0);
    assert_int_equal(h[0].adapter, EXIT_FULL_ADAPTER);
    assert_ptr_not_equal(h[0].a.data, NULL);
    assert_int_equal(h[1].adapter, EXIT_NO_ADAPTER);
    assert_int_equal(h[2].adapter, EXIT_LOW_RANK_ADAPTER);
    assert_int_equal(h[2].rank, RANK);
    assert_true(h[1].threshold == 0.6f);
    rig_close(&r);

    /* A plain model has no exits. */
    struct rig plain = rig_open(deep_model(), "plain.gguf", 1);
    assert_int_equal(plain.exits.n, 0);
    rig_close(&plain);
}

/* ---- the head against references ---- */

/* logits = LM head(rmsnorm(h + A(h))), every step in double from the
 * dequantized weights. */
static void reference_head(const struct model *m, const struct exit_head *h, const float *x,
                           double *logits)
{
    const struct model_config *c = &m->cfg;
    float y[DIM], low[DIM], normed[DIM];
    for (int i = 0; i < DIM; i++)
        y[i] = x[i];
    if (h->adapter == EXIT_FULL_ADAPTER) {
        for (int o = 0; o < DIM; o++)
            y[o] += (float)dot_reference((const float *)h->a.data + o * DIM, DTYPE_F32, x, DIM);
    } else if (h->adapter == EXIT_LOW_RANK_ADAPTER) {
        for (int k = 0; k < h->rank; k++)
            low[k] = (float)dot_reference((const float *)h->v.data + k * DIM, DTYPE_F32, x, DIM);
        for (int o = 0; o < DIM; o++)
            y[o] += (float)dot_reference((const float *)h->u.data + o * h->rank, DTYPE_F32, low,
                                         h->rank);
    }
    double ss = 0;
    for (int i = 0; i < DIM; i++)
        ss += (double)y[i] * y[i];
    double scale = 1.0 / sqrt(ss / DIM + c->rms_eps);
    for (int i = 0; i < DIM; i++)
        normed[i] = (float)(y[i] * scale * m->output_norm[i]);
    size_t row = dtype_row_bytes(m->output.type, DIM);
    for (int v = 0; v < c->vocab; v++)
        logits[v] = dot_reference((const char *)m->output.data + row * v, m->output.type, normed, DIM);
}

/* Full and low-rank adapters match the plain reference, and the reported
 * argmax and probability are those of the logits. */
static void test_head_matches_reference(void **state)
{
    (void)state;
    struct rig r = rig_open(model_with_exits(), "exits.gguf", 2);
    int vocab = r.m->cfg.vocab;
    enum { N = 5 };
    float hidden[N * DIM], *logits = malloc(sizeof(float) * N * vocab);
    double *want = malloc(sizeof(double) * vocab);
    fill_random(hidden, N * DIM, 2.0f, 9);
    struct exit_eval *ev = exit_eval_new(r.m, &r.exits, r.tp, 2); /* 5 rows in 3 calls */
    struct exit_result res[N];
    for (int e = 0; e < r.exits.n; e++) {
        exit_head_eval(ev, &r.exits.heads[e], hidden, N, res, logits);
        for (int row = 0; row < N; row++) {
            const float *got = logits + (long)row * vocab;
            reference_head(r.m, &r.exits.heads[e], hidden + row * DIM, want);
            double sum = 0;
            for (int v = 0; v < vocab; v++) {
                assert_true(fabs(got[v] - want[v]) <= 1e-4 * (1.0 + fabs(want[v])));
                sum += exp((double)got[v] - got[res[row].token]);
            }
            for (int v = 0; v < vocab; v++)
                assert_true(got[v] <= got[res[row].token]);
            assert_float_equal(res[row].prob, 1.0 / sum, 1e-6);
        }
    }
    exit_eval_free(ev);
    free(want);
    free(logits);
    rig_close(&r);
}

/* Copies the residual stream after one layer, as a plain layer hook. */
struct capture {
    int layer;
    float *hidden; /* (rows of the pass, dim) */
};

static bool capture_layer(void *ctx, int layer, const float *h, int first_row, int n_rows)
{
    struct capture *c = ctx;
    if (layer == c->layer)
        memcpy(c->hidden + (long)first_row * DIM, h, sizeof(float) * n_rows * DIM);
    return true;
}

/* A head without adapter at layer l gives bitwise the logits of the first
 * l+1 layers run as a model of their own. */
static void test_head_equals_truncated_model(void **state)
{
    (void)state;
    struct rig r = rig_open(deep_model(), "plain.gguf", 2);
    int vocab = r.m->cfg.vocab;
    enum { N = 7 };
    int32_t tokens[N] = {1, 17, 42, 5, 88, 3, 60};
    float *want = malloc(sizeof(float) * N * vocab), *got = malloc(sizeof(float) * N * vocab);
    float hidden[N * DIM];
    struct exit_result res[N];
    char err[256];
    for (int l = 0; l < 3; l++) {
        struct model cut = *r.m;
        cut.cfg.n_layers = l + 1;
        struct forward_ctx *fc = forward_ctx_new(&cut, r.tp, 8, CTX);
        struct kv_cache *kv = kv_new(&cut.cfg, CTX);
        struct forward_request req = {tokens, N, 0, want, NULL, NULL};
        assert_true(forward(fc, kv, &req, err, sizeof err));
        forward_ctx_free(fc);
        kv_free(kv);

        struct exit_head head = {.layer = l, .adapter = EXIT_NO_ADAPTER};
        struct exit_eval *ev = exit_eval_new(r.m, &(struct exit_set){1, &head}, r.tp, 8);
        fc = forward_ctx_new(r.m, r.tp, 8, CTX);
        kv = kv_new(&r.m->cfg, CTX);
        struct capture cap = {l, hidden};
        req = (struct forward_request){tokens, N, N, NULL, capture_layer, &cap};
        assert_true(forward(fc, kv, &req, err, sizeof err));
        exit_head_eval(ev, &head, hidden, N, res, got);
        assert_memory_equal(want, got, sizeof(float) * N * vocab);
        exit_eval_free(ev);
        forward_ctx_free(fc);
        kv_free(kv);
    }
    free(want);
    free(got);
    rig_close(&r);
}

/* ---- exits inside a pass ---- */

struct exit_log {
    const struct kv_cache *kv;
    int len_before;       /* kv->len when the pass started */
    int calls[3];         /* per exit */
    int rows_seen[3];
    int order[8], n_order;
    struct exit_result res[3][16];
    float *logits[3];     /* (16, vocab) each */
    int vocab;
};

static void log_exit(void *ctx, int exit, int first_row, int n_rows, const struct exit_result *res,
                     const float *logits)
{
    struct exit_log *log = ctx;
    /* The pass has not finished: the cache holds none of this chunk's rows yet. */
    assert_int_equal(log->kv->len, log->len_before + first_row);
    assert_non_null(logits);
    log->calls[exit]++;
    log->rows_seen[exit] += n_rows;
    if (log->n_order < 8)
        log->order[log->n_order++] = exit;
    memcpy(&log->res[exit][first_row], res, sizeof *res * n_rows);
    memcpy(log->logits[exit] + (long)first_row * log->vocab, logits,
           sizeof(float) * n_rows * log->vocab);
}

/* The callback fires during the pass, once per exit, in layer order, with
 * results bitwise equal to a separate pass plus the head on its hidden state;
 * the pass itself is unchanged. Then the same with the pass in chunks. */
static void test_exits_in_pass(void **state)
{
    (void)state;
    struct rig r = rig_open(model_with_exits(), "exits.gguf", 2);
    int vocab = r.m->cfg.vocab;
    enum { N = 12 };
    int32_t tokens[N] = {1, 17, 42, 5, 88, 3, 60, 9, 9, 31, 70, 2};
    float *plain = malloc(sizeof(float) * N * vocab), *with = malloc(sizeof(float) * N * vocab);
    float *want_logits = malloc(sizeof(float) * N * vocab), hidden[N * DIM];
    struct exit_result want[N];
    char err[256];
    for (int chunked = 0; chunked < 2; chunked++) {
        int max_rows = chunked ? 5 : 16;
        struct forward_ctx *fc = forward_ctx_new(r.m, r.tp, max_rows, CTX);
        struct exit_eval *ev = exit_eval_new(r.m, &r.exits, r.tp, max_rows);
        struct kv_cache *a = kv_new(&r.m->cfg, CTX), *b = kv_new(&r.m->cfg, CTX);
        int32_t prefix[3] = {4, 5, 6};
        struct forward_request pre = {prefix, 3, 3, NULL, NULL, NULL};
        assert_true(forward(fc, a, &pre, err, sizeof err));
        assert_true(forward(fc, b, &pre, err, sizeof err));

        struct exit_log log = {b, b->len, {0}, {0}, {0}, 0, {{{0}}}, {NULL}, vocab};
        for (int e = 0; e < 3; e++)
            log.logits[e] = malloc(sizeof(float) * 16 * vocab);
        struct forward_request req = {tokens, N, 0, plain, NULL, NULL};
        assert_true(forward(fc, a, &req, err, sizeof err));
        req.logits = with;
        assert_true(forward_exits(fc, b, &req, &r.exits, ev, true, log_exit, &log, err, sizeof err));
        assert_memory_equal(plain, with, sizeof(float) * N * vocab);
        assert_int_equal(b->len, a->len);

        int chunks = chunked ? 3 : 1;
        for (int e = 0; e < 3; e++) {
            assert_int_equal(log.calls[e], chunks);
            assert_int_equal(log.rows_seen[e], N);
        }
        if (!chunked)
            for (int e = 0; e < 3; e++)
                assert_int_equal(log.order[e], e);

        for (int e = 0; e < 3; e++) {
            const struct exit_head *h = &r.exits.heads[e];
            struct kv_cache *c = kv_new(&r.m->cfg, CTX);
            assert_true(forward(fc, c, &pre, err, sizeof err));
            struct capture cap = {h->layer, hidden};
            req = (struct forward_request){tokens, N, N, NULL, capture_layer, &cap};
            assert_true(forward(fc, c, &req, err, sizeof err));
            struct exit_eval *sep = exit_eval_new(r.m, &r.exits, r.tp, 1);
            exit_head_eval(sep, h, hidden, N, want, want_logits);
            assert_memory_equal(want, log.res[e], sizeof want);
            assert_memory_equal(want_logits, log.logits[e], sizeof(float) * N * vocab);
            exit_eval_free(sep);
            kv_free(c);
        }
        for (int e = 0; e < 3; e++)
            free(log.logits[e]);
        kv_free(a);
        kv_free(b);
        exit_eval_free(ev);
        forward_ctx_free(fc);
    }
    free(plain);
    free(with);
    free(want_logits);
    rig_close(&r);
}

static void ignore_exit(void *ctx, int exit, int first_row, int n_rows,
                        const struct exit_result *res, const float *logits)
{
    (void)ctx, (void)exit, (void)first_row, (void)n_rows, (void)res, (void)logits;
}

/* An evaluator smaller than the pass's chunks, or a request with its own
 * hook, is refused and leaves the cache as it was. */
static void test_pass_misuse(void **state)
{
    (void)state;
    struct rig r = rig_open(model_with_exits(), "exits.gguf", 1);
    struct forward_ctx *fc = forward_ctx_new(r.m, r.tp, 8, CTX);
    struct exit_eval *ev = exit_eval_new(r.m, &r.exits, r.tp, 4);
    struct kv_cache *kv = kv_new(&r.m->cfg, CTX);
    int32_t tokens[6] = {1, 2, 3, 4, 5, 6};
    char err[256];
    struct forward_request req = {tokens, 6, 6, NULL, NULL, NULL};
    assert_false(forward_exits(fc, kv, &req, &r.exits, ev, false, ignore_exit, NULL, err, sizeof err));
    assert_non_null(strstr(err, "holds 4 rows"));
    assert_int_equal(kv->len, 0);
    struct capture cap = {0, NULL};
    req = (struct forward_request){tokens, 2, 2, NULL, capture_layer, &cap};
    assert_false(forward_exits(fc, kv, &req, &r.exits, ev, false, ignore_exit, NULL, err, sizeof err));
    assert_non_null(strstr(err, "already has a layer hook"));
    kv_free(kv);
    exit_eval_free(ev);
    forward_ctx_free(fc);
    rig_close(&r);
}

/* ---- drafts from a target ---- */

/* The draft of the first n layers gives bitwise the target's exit without
 * adapter after layer n-1 (the target's own exit there has an adapter, which
 * the draft leaves out), has no exits, and keeps the tokenizer. */
static void test_draft_equals_exit(void **state)
{
    (void)state;
    struct rig r = rig_open(model_with_exits(), "exits.gguf", 2);
    int vocab = r.m->cfg.vocab;
    enum { N = 7 };
    int32_t tokens[N] = {1, 17, 42, 5, 88, 3, 60};
    float *want = malloc(sizeof(float) * N * vocab), *got = malloc(sizeof(float) * N * vocab);
    float hidden[N * DIM];
    struct exit_result res[N];
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/draft.gguf", tmp_dir);
    for (int n = 1; n <= 3; n++) {
        assert_true(exits_export_draft(r.m, n, path, err, sizeof err));
        struct rig d = {model_load(path, err, sizeof err), {0}, r.tp};
        assert_non_null(d.m);
        assert_int_equal(d.m->cfg.n_layers, n);
        assert_true(exits_load(d.m, &d.exits, err, sizeof err));
        assert_int_equal(d.exits.n, 0);
        assert_int_equal(gguf_find_key(d.m->file, "tandem.exit.layers"), -1);
        enum gguf_value_type et;
        uint64_t count, want_count;
        assert_true(gguf_get_arr(d.m->file, "tokenizer.ggml.tokens", &et, &count));
        assert_true(gguf_get_arr(r.m->file, "tokenizer.ggml.tokens", &et, &want_count));
        assert_int_equal(count, want_count);
        assert_int_equal(gguf_n_kv(d.m->file), gguf_n_kv(src));

        struct forward_ctx *fc = forward_ctx_new(d.m, r.tp, 8, CTX);
        struct kv_cache *kv = kv_new(&d.m->cfg, CTX);
        struct forward_request req = {tokens, N, 0, got, NULL, NULL};
        assert_true(forward(fc, kv, &req, err, sizeof err));
        forward_ctx_free(fc);
        kv_free(kv);

        struct exit_head head = {.layer = n - 1, .adapter = EXIT_NO_ADAPTER};
        struct exit_eval *ev = exit_eval_new(r.m, &(struct exit_set){1, &head}, r.tp, 8);
        fc = forward_ctx_new(r.m, r.tp, 8, CTX);
        kv = kv_new(&r.m->cfg, CTX);
        struct capture cap = {n - 1, hidden};
        req = (struct forward_request){tokens, N, N, NULL, capture_layer, &cap};
        assert_true(forward(fc, kv, &req, err, sizeof err));
        exit_head_eval(ev, &head, hidden, N, res, want);
        assert_memory_equal(want, got, sizeof(float) * N * vocab);
        exit_eval_free(ev);
        forward_ctx_free(fc);
        kv_free(kv);
        d.tp = NULL;
        rig_close(&d);
    }
    /* Nothing to cut, or more than there is: refused, and no file. */
    remove(path);
    assert_false(exits_export_draft(r.m, 0, path, err, sizeof err));
    assert_false(exits_export_draft(r.m, 4, path, err, sizeof err));
    assert_non_null(strstr(err, "has 4, a draft keeps 1 .. 3 of them"));
    assert_int_equal(access(path, F_OK), -1);
    free(want);
    free(got);
    rig_close(&r);
}

/* ---- malformed exit metadata ---- */

static void expect_refused(struct gguf_writer *w, const char *want)
{
    char path[256], err[512];
    finish(w, "bad.gguf", path);
    struct model *m = model_load(path, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    struct exit_set s = {1, (struct exit_head *)1};
    bool ok = exits_load(m, &s, err, sizeof err);
    model_free(m);
    if (ok || !strstr(err, want) || strncmp(err, path, strlen(path)) != 0)
        fail_msg("wanted an error containing \"%s\" and the path, got %s: \"%s\"", want,
                 ok ? "success" : "failure", err);
    assert_int_equal(s.n, 0);
    assert_null(s.heads);
}

static struct gguf_writer *with_layers(const int32_t *layers, int n, const float *thr, int n_thr)
{
    struct gguf_writer *w = deep_model();
    gguf_set_arr_i32(w, "tandem.exit.layers", layers, n);
    if (thr)
        gguf_set_arr_f32(w, "tandem.exit.thresholds", thr, n_thr);
    return w;
}

static void test_malformed(void **state)
{
    (void)state;
    const float thr2[2] = {0.5f, 0.5f};
    expect_refused(with_layers((int32_t[]){0, 3}, 2, thr2, 2),
                   "'tandem.exit.layers' entry 1 = 3 outside [0, 2] (the model has 4 layers)");
    expect_refused(with_layers((int32_t[]){-1}, 1, thr2, 1), "entry 0 = -1 outside");
    expect_refused(with_layers((int32_t[]){2, 1}, 2, thr2, 2), "not strictly increasing");
    expect_refused(with_layers((int32_t[]){1, 1}, 2, thr2, 2), "not strictly increasing");
    expect_refused(with_layers((int32_t[]){0, 1}, 2, thr2, 1),
                   "'tandem.exit.thresholds' has 1 entries but 'tandem.exit.layers' has 2");
    expect_refused(with_layers((int32_t[]){0}, 1, NULL, 0), "missing metadata 'tandem.exit.thresholds'");
    expect_refused(with_layers((int32_t[]){0}, 1, (float[]){1.5f}, 1), "not a probability");
    expect_refused(with_layers((int32_t[]){0}, 1, (float[]){NAN}, 1), "not a probability");
    expect_refused(with_layers((int32_t[]){0, 1, 2, 3}, 4, (float[]){0, 0, 0, 0}, 4),
                   "'tandem.exit.layers' has 4 entries, expected 1 .. 3");

    struct gguf_writer *w = deep_model();
    gguf_set_arr_f32(w, "tandem.exit.layers", (float[]){1.0f}, 1);
    gguf_set_arr_f32(w, "tandem.exit.thresholds", (float[]){0.5f}, 1);
    expect_refused(w, "'tandem.exit.layers' is not an array of integers");

    w = deep_model();
    gguf_set_arr_f32(w, "tandem.exit.thresholds", (float[]){0.5f}, 1);
    expect_refused(w, "'tandem.exit.thresholds' without 'tandem.exit.layers'");

    w = with_layers((int32_t[]){1}, 1, thr2, 1);
    add_f32(w, "exit.1.adapter.weight", DIM, DIM / 2, adapter);
    expect_refused(w, "tensor 'exit.1.adapter.weight' has shape [64, 32, 1, 1], expected [64, 64]");

    w = with_layers((int32_t[]){1}, 1, thr2, 1);
    add_f32(w, "exit.1.adapter_u.weight", RANK, DIM, adapter_u);
    expect_refused(w, "has 'exit.1.adapter_u.weight' without 'exit.1.adapter_v.weight'");

    w = with_layers((int32_t[]){1}, 1, thr2, 1);
    add_f32(w, "exit.1.adapter_u.weight", RANK, DIM, adapter_u);
    add_f32(w, "exit.1.adapter_v.weight", DIM, RANK / 2, adapter_v);
    expect_refused(w, "tensor 'exit.1.adapter_u.weight' has shape [8, 64, 1, 1], expected [4, 64]");

    w = with_layers((int32_t[]){1}, 1, thr2, 1);
    add_f32(w, "exit.1.adapter.weight", DIM, DIM, adapter);
    add_f32(w, "exit.1.adapter_u.weight", RANK, DIM, adapter_u);
    add_f32(w, "exit.1.adapter_v.weight", DIM, RANK, adapter_v);
    expect_refused(w, "both a full adapter");

    /* 1-based layer numbers: the tensor names a layer the list does not have. */
    w = with_layers((int32_t[]){1}, 1, thr2, 1);
    add_f32(w, "exit.2.adapter.weight", DIM, DIM, adapter);
    expect_refused(w, "tensor 'exit.2.adapter.weight' belongs to no exit listed in 'tandem.exit.layers'");

    w = deep_model();
    add_f32(w, "exit.0.adapter.weight", DIM, DIM, adapter);
    expect_refused(w, "belongs to no exit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_head_matches_reference),
        cmocka_unit_test(test_head_equals_truncated_model),
        cmocka_unit_test(test_exits_in_pass),
        cmocka_unit_test(test_pass_misuse),
        cmocka_unit_test(test_draft_equals_exit),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
