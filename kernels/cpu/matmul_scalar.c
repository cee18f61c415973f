/* Portable back end: plain C, one float accumulator per x row. The reference
 * the SIMD back ends are tested against, and what runs where they do not. */
#include <math.h>

#include "matmul_impl.h"

void matmul_quantize_x_scalar(const float *x, struct block_q8x *y, int in)
{
    for (int b = 0; b < in / QK; b++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++)
            amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        const float d = amax / 127;
        const float id = d ? 127.0f / amax : 0.0f; /* as ggml: q flips where its does */
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            const float v = x[j] * id;
            y[b].qs[j] = (int8_t)rintf(v); /* ties to even, like the SIMD back ends */
            sum += y[b].qs[j];
        }
        block_q8x_set_scales(&y[b], d, sum);
    }
}

/* A quantized weight block decoded for integer dot products: w = d*q + m. */
struct wblock {
    float d, m;
    int8_t q[QK];
};

/* Low nibbles are elements 0..15, high nibbles 16..31; bias is 8 for Q4_0. */
ALWAYS_INLINE void unpack_nibbles(const uint8_t *qs, int bias, int8_t *q)
{
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (int8_t)((qs[j] & 0x0F) - bias);
        q[j + QK / 2] = (int8_t)((qs[j] >> 4) - bias);
    }
}

ALWAYS_INLINE void decode_wblock(enum dtype t, const uint8_t *p, struct wblock *wb)
{
    wb->m = 0.0f;
    if (t == DTYPE_Q8_0) {
        const struct block_q8_0 *b = (const void *)p;
        wb->d = fp16_to_f32_inline(b->d);
        for (int j = 0; j < QK; j++)
            wb->q[j] = b->qs[j];
    } else if (t == DTYPE_Q4_0) {
        const struct block_q4_0 *b = (const void *)p;
        wb->d = fp16_to_f32_inline(b->d);
        unpack_nibbles(b->qs, 8, wb->q);
    } else {
        const struct block_q4_1 *b = (const void *)p;
        wb->d = fp16_to_f32_inline(b->d);
        wb->m = fp16_to_f32_inline(b->m);
        unpack_nibbles(b->qs, 0, wb->q);
    }
}

/* Quantized weights against block_q8x rows: per block an exact integer dot,
 * scaled by d_w*d_x; Q4_1's offsets summed apart as m*s. */
ALWAYS_INLINE void tile_quant(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const uint8_t *w = job->w + (size_t)o * job->w_stride;
    float acc[MATMUL_TILE], mins[MATMUL_TILE];
    FOR_TILE_ROWS(r, nr) {
        acc[r] = 0.0f;
        mins[r] = 0.0f;
    }
    for (int b = 0; b < job->in / QK; b++) {
        struct wblock wb;
        decode_wblock(t, w + (size_t)b * quant_block_bytes(t), &wb);
        FOR_TILE_ROWS(r, nr) {
            const struct block_q8x *xb = job_xq_row(job, r0 + r) + b;
            int32_t sumi = 0;
            for (int j = 0; j < QK; j++)
                sumi += wb.q[j] * xb->qs[j];
            acc[r] += (wb.d * xb->d) * (float)sumi;
            if (t == DTYPE_Q4_1)
                mins[r] += wb.m * xb->s;
        }
    }
    FOR_TILE_ROWS(r, nr)
        job->y[(size_t)(r0 + r) * job->out + o] = acc[r] + mins[r];
}

/* Float weights against float x, in chunks of QK decoded weights. */
ALWAYS_INLINE void tile_float(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const uint8_t *w = job->w + (size_t)o * job->w_stride;
    float acc[MATMUL_TILE];
    FOR_TILE_ROWS(r, nr)
        acc[r] = 0.0f;
    for (int i0 = 0; i0 < job->in; i0 += QK) {
        const int len = job->in - i0 < QK ? job->in - i0 : QK;
        float wf[QK];
        for (int j = 0; j < len; j++)
            wf[j] = load_wf(t, w, i0 + j);
        FOR_TILE_ROWS(r, nr) {
            const float *x = job_xf_row(job, r0 + r) + i0;
            for (int j = 0; j < len; j++)
                acc[r] += wf[j] * x[j];
        }
    }
    FOR_TILE_ROWS(r, nr)
        job->y[(size_t)(r0 + r) * job->out + o] = acc[r];
}

MATMUL_DEFINE_BACKEND(matmul_backend_scalar, "scalar", matmul_quantize_x_scalar,
                      tile_float, MATMUL_TILE, 1, tile_quant, MATMUL_TILE, 1, NULL, NULL)
