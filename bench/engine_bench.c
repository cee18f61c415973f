/* engine_bench: the CPU engine's speed on one model, as JSON on stdout.
 *
 *   engine_bench [--no-repack] MODEL.gguf THREADS [DECODE_TOKENS] [REPS]
 *
 * The model is repacked for the CPU as `tandem run` does (model_repack)
 * unless --no-repack.
 *
 * Measures, in one process so the numbers are side by side:
 *   - read bandwidth of this machine (sum over a 1 GiB buffer, all threads),
 *     the best of one probe before each decode run;
 *   - decode: DECODE_TOKENS one-row passes from an empty cache, as llama.cpp's
 *     llama-bench measures "tg": the median rate of REPS runs after a warm-up;
 *   - verify passes: the time of a k-row pass (k = 1..8) at the same position,
 *     the median of REPS runs (k = 1..8 in turn in each), rolled back after
 *     each with kv_truncate;
 *   - roofline fraction: weight bytes a token reads x tok/s / bandwidth, against
 *     the best probe and paired run by run with the probe before it;
 *   - peak resident memory (the 1 GiB probe buffer included). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine/forward.h"
#include "engine/clock.h"
#include "engine/model.h"

struct bw_job {
    const uint64_t *buf;
    size_t n;
    uint64_t sums[64];
};

static void bw_worker(void *ctx, int ith, int nth)
{
    struct bw_job *j = ctx;
    int lo, hi;
    thread_slice((int)(j->n / 4096), ith, nth, &lo, &hi);
    const uint64_t *p = j->buf + (size_t)lo * 4096, *end = j->buf + (size_t)hi * 4096;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; p < end; p += 4) {
        s0 += p[0];
        s1 += p[1];
        s2 += p[2];
        s3 += p[3];
    }
    j->sums[ith % 64] = s0 + s1 + s2 + s3;
}

/* A 1 GiB buffer that read_bandwidth sums. */
struct bw_probe {
    uint64_t *buf;
    size_t n;
};

static bool bw_probe_init(struct bw_probe *p)
{
    p->n = (1u << 30) / sizeof(uint64_t);
    p->buf = malloc(p->n * sizeof *p->buf);
    if (!p->buf)
        return false;
    for (size_t i = 0; i < p->n; i++)
        p->buf[i] = i;
    return true;
}

/* One pass over the buffer on all threads, in GB/s. */
static double read_bandwidth(struct threadpool *tp, const struct bw_probe *p)
{
    struct bw_job j = {p->buf, p->n, {0}};
    double t = clock_now_s();
    threadpool_run(tp, bw_worker, &j);
    return p->n * sizeof *p->buf / (clock_now_s() - t) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A pass over n tokens with logits for the last `with_logits` rows (a verify
 * pass needs all of them, a prompt only the last). */
static bool pass(struct forward_ctx *fc, struct kv_cache *kv, const int32_t *t, int n, int with_logits,
                 float *logits)
{
    char err[256];
    struct forward_request req = {t, n, n - with_logits, logits, NULL, NULL};
    if (!forward(fc, kv, &req, err, sizeof err)) {
        fprintf(stderr, "engine_bench: %s\n", err);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    const bool no_repack = argc > 1 && strcmp(argv[1], "--no-repack") == 0;
    if (no_repack)
        argc--, argv++;
    if (argc < 3) {
        fprintf(stderr, "usage: engine_bench [--no-repack] MODEL.gguf THREADS [DECODE_TOKENS] [REPS]\n");
        return 2;
    }
    int threads = atoi(argv[2]), n_decode = argc > 3 ? atoi(argv[3]) : 32,
        reps = argc > 4 ? atoi(argv[4]) : 7;
    char err[512];
    struct model *m = model_load(argv[1], err, sizeof err);
    const long long repacked = m && !no_repack ? model_repack(m, err, sizeof err) : 0;
    if (repacked < 0) {
        model_free(m);
        m = NULL;
    }
    if (!m) {
        fprintf(stderr, "engine_bench: %s\n", err);
        return 1;
    }
    enum { PROMPT = 32, KMAX = 8 };
    int ctx = PROMPT + n_decode + KMAX + 1;
    struct threadpool *tp = threadpool_new(threads);
    struct kv_cache *kv = kv_new(&m->cfg, ctx);
    struct forward_ctx *fc = forward_ctx_new(m, tp, 16, ctx);
    float *logits = malloc(sizeof(float) * KMAX * m->cfg.vocab);
    int32_t *tokens = malloc(sizeof(int32_t) * ctx);
    for (int i = 0; i < ctx; i++)
        tokens[i] = (int32_t)((i * 7919u + 13) % (unsigned)m->cfg.vocab);

    /* Decode: the first run is the warm-up (it faults the weights in). A
     * bandwidth probe before each run: this machine's memory speed drifts
     * (the same probe read 33 GB/s in one minute and 61 in another, and
     * within seconds), so two rooflines: the median rate against the best
     * the probe saw (the conservative one), and the median over runs of each
     * run's rate against the probe just before it (paired). */
    struct bw_probe probe;
    if (!bw_probe_init(&probe)) {
        fprintf(stderr, "engine_bench: out of memory\n");
        return 1;
    }
    bool ok = true;
    double *rates = malloc(sizeof(double) * (reps + 1)), bw = 0;
    double *paired = malloc(sizeof(double) * (reps + 1)); /* each run against its own probe */
    json_object *runs = json_object_new_array(); /* each run's probe and rate, in order */
    for (int r = 0; ok && r <= reps; r++) {
        const double probe_gbs = read_bandwidth(tp, &probe);
        if (probe_gbs > bw)
            bw = probe_gbs;
        kv_truncate(kv, 0);
        double t0 = clock_now_s();
        for (int i = 0; ok && i < n_decode; i++)
            ok = pass(fc, kv, tokens + i, 1, 1, logits);
        rates[r] = n_decode / (clock_now_s() - t0);
        paired[r] = m->weight_bytes / 1e9 * rates[r] / probe_gbs;
        json_object *run = json_object_new_object();
        json_object_object_add(run, "warm_up", json_object_new_boolean(r == 0));
        json_object_object_add(run, "probe_gbs", json_object_new_double(probe_gbs));
        json_object_object_add(run, "tok_s", json_object_new_double(rates[r]));
        json_object_array_add(runs, run);
    }
    qsort(rates + 1, reps, sizeof *rates, cmp_double);
    qsort(paired + 1, reps, sizeof *paired, cmp_double);
    const double tok_s = rates[1 + reps / 2], roofline_paired = paired[1 + reps / 2];
    free(rates);
    free(paired);
    free(probe.buf);

    /* Verify passes after a prompt. */
    kv_truncate(kv, 0);
    ok = ok && pass(fc, kv, tokens, PROMPT, 1, logits);

    /* Every k in turn within each repetition, so a slow spell of the
     * machine lands on all k alike rather than on one of them. */
    double t[KMAX][64];
    if (reps > 64)
        reps = 64;
    const int len = kv->len;
    for (int r = 0; ok && r < reps; r++)
        for (int k = 1; ok && k <= KMAX; k++) {
            double s = clock_now_s();
            ok = pass(fc, kv, tokens, k, k, logits);
            t[k - 1][r] = clock_now_s() - s;
            kv_truncate(kv, len);
        }
    json_object *passes = json_object_new_array();
    double base = 0;
    for (int k = 1; ok && k <= KMAX; k++) {
        qsort(t[k - 1], reps, sizeof t[k - 1][0], cmp_double);
        const double med = t[k - 1][reps / 2];
        if (k == 1)
            base = med;
        json_object *p = json_object_new_object();
        json_object_object_add(p, "k", json_object_new_int(k));
        json_object_object_add(p, "median_ms", json_object_new_double(med * 1e3));
        json_object_object_add(p, "ratio_to_1row", json_object_new_double(med / base));
        json_object_array_add(passes, p);
    }
    double gb = m->weight_bytes / 1e9;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model", json_object_new_string(argv[1]));
    json_object_object_add(o, "threads", json_object_new_int(threads));
    json_object_object_add(o, "repacked_mb", json_object_new_double((double)repacked / 1e6));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    json_object_object_add(o, "peak_rss_mb", json_object_new_double(ru.ru_maxrss / 1024.0));
    json_object_object_add(o, "weight_gb_per_token", json_object_new_double(gb));
    json_object_object_add(o, "read_bandwidth_gbs", json_object_new_double(bw));
    json_object_object_add(o, "decode_tok_s", json_object_new_double(tok_s));
    json_object_object_add(o, "decode_tokens", json_object_new_int(n_decode));
    json_object_object_add(o, "reps", json_object_new_int(reps));
    json_object_object_add(o, "roofline_fraction", json_object_new_double(gb * tok_s / bw));
    json_object_object_add(o, "roofline_fraction_paired", json_object_new_double(roofline_paired));
    json_object_object_add(o, "verify_passes", passes);
    json_object_object_add(o, "decode_runs", runs);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    json_object_put(o);
    free(logits);
    free(tokens);
    forward_ctx_free(fc);
    kv_free(kv);
    threadpool_free(tp);
    model_free(m);
    return ok ? 0 : 1;
}
