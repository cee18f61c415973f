#include "ops.h"

#include <math.h>
#include <string.h>

void rmsnorm_rows(float *out, const float *x, const float *w, int n, int dim, float eps)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (long)r * dim;
        float *o = out + (long)r * dim;
        double ss = 0.0; /* double, as ggml does: dim can be 8192 */
        for (int i = 0; i < dim; i++)
            ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / dim + eps));
        for (int i = 0; i < dim; i++)
            o[i] = xr[i] * scale * w[i];
    }
}

void rope_rows(float *x, int n, int n_heads, int head_dim, int pos0,
               const float *inv_freq, bool neox)
{
    int half = head_dim / 2;
    for (int r = 0; r < n; r++) {
        float pos = (float)(pos0 + r);
        for (int i = 0; i < half; i++) {
            float theta = pos * inv_freq[i];
            float c = cosf(theta), s = sinf(theta);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + ((long)r * n_heads + h) * head_dim;
                int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

void add_bias_rows(float *y, const float *b, int n, int dim)
{
    for (int r = 0; r < n; r++)
        for (int i = 0; i < dim; i++)
            y[(long)r * dim + i] += b[i];
}

void add_inplace(float *y, const float *x, long len)
{
    for (long i = 0; i < len; i++)
        y[i] += x[i];
}

void swiglu(float *out, const float *gate, const float *up, long len)
{
    for (long i = 0; i < len; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* ---- attention ---- */

long attention_scratch_floats(int n_threads, int n_ctx)
{
    return (long)n_threads * n_ctx;
}

struct attention_job {
    float *out;
    const float *q, *k, *v;
    int n, pos0, n_heads, n_kv_heads, head_dim, n_ctx;
    float *scratch;
};

/* Fixed-order dot product: the same sum whatever row or pass it serves.
 * Eight independent partial sums (element i goes to lane i % 8) in one
 * vector, combined in a fixed tree: a chain of dependent adds (the latency
 * that bounds a long prompt's prefill, which runs this for every pair of
 * rows) becomes eight short ones, on any instruction set the compiler
 * targets. */
typedef float f32x8 __attribute__((vector_size(32)));

static float dot_f32(const float *a, const float *b, int n)
{
    f32x8 acc = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        f32x8 x, y;
        memcpy(&x, a + i, sizeof x);
        memcpy(&y, b + i, sizeof y);
        acc += x * y;
    }
    for (int l = 0; i < n; i++, l++)
        acc[l] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

static void attention_one(const struct attention_job *j, int r, int h, float *score)
{
    int hd = j->head_dim, kv_dim = j->n_kv_heads * hd;
    int kvh = h / (j->n_heads / j->n_kv_heads);
    int n_pos = j->pos0 + r + 1;
    const float *q = j->q + ((long)r * j->n_heads + h) * hd;
    float scale = 1.0f / sqrtf((float)hd);

    float max = -INFINITY;
    for (int t = 0; t < n_pos; t++) {
        score[t] = dot_f32(q, j->k + (long)t * kv_dim + kvh * hd, hd) * scale;
        if (score[t] > max)
            max = score[t];
    }
    float sum = 0.0f;
    for (int t = 0; t < n_pos; t++) {
        score[t] = expf(score[t] - max);
        sum += score[t];
    }
    float inv = 1.0f / sum;
    float *o = j->out + ((long)r * j->n_heads + h) * hd;
    for (int i = 0; i < hd; i++)
        o[i] = 0.0f;
    for (int t = 0; t < n_pos; t++) {
        const float *vt = j->v + (long)t * kv_dim + kvh * hd;
        float w = score[t] * inv;
        for (int i = 0; i < hd; i++)
            o[i] += w * vt[i];
    }
}

static void attention_worker(void *ctx, int ith, int nth)
{
    const struct attention_job *j = ctx;
    int lo, hi;
    thread_slice(j->n * j->n_heads, ith, nth, &lo, &hi);
    float *score = j->scratch + (long)ith * j->n_ctx;
    for (int i = lo; i < hi; i++)
        attention_one(j, i / j->n_heads, i % j->n_heads, score);
}

void attention(struct threadpool *tp, float *out, const float *q, const float *k,
               const float *v, int n, int pos0, int n_heads, int n_kv_heads,
               int head_dim, float *scratch, int n_ctx)
{
    struct attention_job j = {out, q, k, v, n, pos0, n_heads, n_kv_heads,
                              head_dim, n_ctx, scratch};
    threadpool_run(tp, attention_worker, &j);
}
