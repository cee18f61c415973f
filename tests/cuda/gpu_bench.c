/* make test-gpu's kernel table: achieved bandwidth of the GEMV, attention and
 * fused-head kernels at llama2-7b shapes against the device's measured copy
 * bandwidth, then decode tok/s of a llama2-7b-shaped model through the CUDA
 * backend against its roofline (weight bytes per token / copy bandwidth),
 * launched directly and through the decode graph.
 *
 *   gpu_bench [MODEL.gguf]
 *
 * Every number says where it was taken (the device name heads the table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/forward.h"
#include "kernels/cpu/quant.h"
#include "kernels/cuda/ops.h"

struct gemv_job {
    float *y, *x;
    void *w;
    int type, n, in, out;
};

static void gemv_once(void *ctx)
{
    struct gemv_job *j = ctx;
    cuda_gemv(j->y, j->w, j->type, j->x, j->n, j->in, j->out, 0);
}

struct attn_job {
    float *out, *q, *k, *v, *scratch;
    int n, pos0, heads, hd, ctx;
    int32_t *dpos; /* pos0 on the device */
    float **dkv;   /* k and v's addresses on the device */
};

static void attn_once(void *ctx)
{
    struct attn_job *j = ctx;
    cuda_attention(j->out, j->q, j->dkv, j->dkv + 1, j->n, j->dpos, j->pos0, j->heads, j->heads, j->hd,
                   j->ctx, j->scratch, 0);
}

struct head_job {
    float *x, *g, *top_logit, *lse;
    void *w, *scratch;
    int32_t *top_id;
    int type, n, dim, vocab;
};

static void head_once(void *ctx)
{
    struct head_job *j = ctx;
    cuda_exit_head(j->x, j->n, j->dim, j->g, 1e-5f, j->w, j->type, j->vocab, 8, j->top_id,
                   j->top_logit, j->lse, NULL, j->scratch);
}

static void *dev_random(size_t bytes)
{
    /* Small values of any type: bytes 0x3c.. are modest halves and floats. */
    void *d = cuda_alloc(bytes);
    if (!d) {
        fprintf(stderr, "gpu_bench: out of device memory\n");
        exit(1);
    }
    cuda_memset(d, 0x3c, bytes);
    return d;
}

static void row(const char *kernel, const char *shape, double bytes, float ms, double copy)
{
    double gbs = bytes / (ms * 1e6);
    printf("| %-10s | %-34s | %9.3f | %8.1f | %5.1f%% |\n", kernel, shape, ms * 1e3, gbs,
           100 * gbs / copy);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Greedy decode of n tokens after a 4-token prompt, the way tandem run does;
 * with the decode graph (graphs) or direct launches (TANDEM_CUDA_GRAPHS=0). */
static int decode(const char *path, double copy, bool graphs)
{
    char err[256];
    struct model *m = model_load(path, err, sizeof err);
    if (!m) {
        fprintf(stderr, "gpu_bench: %s\n", err);
        return 1;
    }
    struct threadpool *tp = threadpool_new(1);
    if (graphs)
        unsetenv("TANDEM_CUDA_GRAPHS");
    else
        setenv("TANDEM_CUDA_GRAPHS", "0", 1);
    struct forward_ctx *fc = forward_ctx_new_on("cuda", m, tp, 16, 512, err, sizeof err);
    if (!fc) {
        fprintf(stderr, "gpu_bench: %s\n", err);
        return 1;
    }
    struct kv_cache *kv = kv_new(&m->cfg, 512);
    float *logits = malloc(sizeof(float) * m->cfg.vocab);
    int32_t tok[4] = {1, 2, 3, 4};
    struct forward_request req = {tok, 4, 3, logits, NULL, NULL};
    enum { N = 64 };
    bool ok = forward(fc, kv, &req, err, sizeof err);
    double t0 = now_s();
    for (int i = 0; ok && i < N; i++) {
        int32_t next = (int32_t)(i % m->cfg.vocab);
        req = (struct forward_request){&next, 1, 0, logits, NULL, NULL};
        ok = forward(fc, kv, &req, err, sizeof err);
    }
    double s = now_s() - t0;
    if (!ok) {
        fprintf(stderr, "gpu_bench: %s\n", err);
        return 1;
    }
    double tok_s = N / s, roof = copy * 1e9 / (double)m->weight_bytes;
    printf("\ndecode %s (%s): %.1f tok/s; roofline %.1f tok/s (%.2f GB of weights per token "
           "at %.0f GB/s) = %.2f of roofline\n",
           path, graphs ? "decode graph" : "direct launches", tok_s, roof, m->weight_bytes / 1e9,
           copy, tok_s / roof);
    free(logits);
    kv_free(kv);
    forward_ctx_free(fc);
    threadpool_free(tp);
    model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (cuda_device_count() < 1) {
        printf("gpu_bench: no CUDA device; skipped\n");
        return 0;
    }
    char name[256];
    cuda_device_name(name, sizeof name);
    double copy = cuda_copy_gbs((size_t)1 << 30);
    printf("device: %s; device-to-device copy %.1f GB/s (read + write)\n\n", name, copy);
    printf("| kernel     | shape (llama2-7b)                  |   time us |     GB/s | of copy |\n");
    printf("|------------|------------------------------------|-----------|----------|---------|\n");

    const int shapes[][2] = {{4096, 4096}, {4096, 11008}, {11008, 4096}, {4096, 32000}};
    /* GEMV: every weight type a served model has (SmolLM2 is Q4_1); the
     * head below: the first two. */
    const int types[] = {DTYPE_F16, DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_1}, ns[] = {1, 4, 16};
    for (int ti = 0; ti < 4; ti++)
        for (int si = 0; si < 4; si++)
            for (int ni = 0; ni < 3; ni++) {
                struct gemv_job j = {NULL, NULL, NULL, types[ti], ns[ni], shapes[si][0],
                                     shapes[si][1]};
                size_t wb = cuda_weight_bytes(j.type, j.out, j.in);
                j.w = dev_random(wb);
                j.x = dev_random(sizeof(float) * j.n * j.in);
                j.y = dev_random(sizeof(float) * j.n * j.out);
                float ms = cuda_time_ms(gemv_once, &j, 50);
                char shape[64];
                snprintf(shape, sizeof shape, "%s %5d -> %5d, %2d rows", dtype_name(j.type), j.in,
                         j.out, j.n);
                row("gemv", shape, (double)wb + 4.0 * j.n * (j.in + j.out), ms, copy);
                cuda_free(j.w);
                cuda_free(j.x);
                cuda_free(j.y);
            }

    const int ctxs[] = {512, 4096};
    for (int ci = 0; ci < 2; ci++)
        for (int ni = 0; ni < 2; ni++) {
            int n = ni ? 5 : 1;
            struct attn_job j = {NULL, NULL, NULL, NULL, NULL, n, ctxs[ci] - n, 32, 128, ctxs[ci],
                                 NULL, NULL};
            j.dpos = cuda_alloc(sizeof(int32_t));
            cuda_upload(j.dpos, &j.pos0, sizeof(int32_t));
            size_t kv = sizeof(float) * (size_t)j.ctx * 32 * 128;
            j.k = dev_random(kv);
            j.v = dev_random(kv);
            j.dkv = cuda_alloc(sizeof(float *) * 2);
            cuda_upload(j.dkv, (float *[]){j.k, j.v}, sizeof(float *) * 2);
            j.q = dev_random(sizeof(float) * n * 32 * 128);
            j.out = dev_random(sizeof(float) * n * 32 * 128);
            j.scratch = dev_random(sizeof(float) * cuda_attention_scratch_floats(n, 32, 128, j.ctx));
            float ms = cuda_time_ms(attn_once, &j, 50);
            char shape[64];
            snprintf(shape, sizeof shape, "32x128, %4d positions, %d rows", j.ctx, n);
            row("attention", shape, 2.0 * kv, ms, copy);
            cuda_free(j.k);
            cuda_free(j.v);
            cuda_free(j.q);
            cuda_free(j.out);
            cuda_free(j.scratch);
            cuda_free(j.dpos);
            cuda_free(j.dkv);
        }

    for (int ti = 0; ti < 2; ti++)
        for (int ni = 0; ni < 2; ni++) {
            struct head_job j = {.type = types[ti], .n = ni ? 5 : 1, .dim = 4096, .vocab = 32000};
            size_t wb = cuda_weight_bytes(j.type, j.vocab, j.dim);
            j.w = dev_random(wb);
            j.x = dev_random(sizeof(float) * j.n * j.dim);
            j.g = dev_random(sizeof(float) * j.dim);
            j.top_id = dev_random(sizeof(int32_t) * j.n * 8);
            j.top_logit = dev_random(sizeof(float) * j.n * 8);
            j.lse = dev_random(sizeof(float) * j.n);
            j.scratch = dev_random(cuda_head_scratch_bytes(j.vocab));
            float ms = cuda_time_ms(head_once, &j, 50);
            char shape[64];
            snprintf(shape, sizeof shape, "%s 4096 -> 32000 top-8, %d rows", dtype_name(j.type),
                     j.n);
            row("exit head", shape, (double)wb, ms, copy);
            void *bufs[] = {j.w, j.x, j.g, j.top_id, j.top_logit, j.lse, j.scratch};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                cuda_free(bufs[i]);
        }
    return argc > 1 ? decode(argv[1], copy, false) || decode(argv[1], copy, true) : 0;
}
