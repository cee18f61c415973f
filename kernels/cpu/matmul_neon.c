/* AArch64 NEON back end (Jetson-class edge devices). Same structure as the
 * AVX2 one: quantized weights are unpacked to int8 once per block, each x
 * row takes an exact integer dot product (SDOT where the CPU has it, widening
 * multiplies otherwise: the sums are the same integers), then one FMA scaled
 * by d_w*d_x into a 4-lane accumulator of its own. */
#include "matmul_impl.h"

#if defined(MATMUL_HAVE_NEON)

#include <arm_neon.h>

/* acc + the dot products of a and b in groups of four bytes. */
static inline int32x4_t dot_i8x16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    const int16x8_t hi = vmull_high_s8(a, b);
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

/* 32 nibbles -> two vectors of 16: low nibbles are elements 0..15, high 16..31. */
static inline void unpack_nibbles(const uint8_t *qs, int8_t bias, int8x16_t q[2])
{
    const uint8x16_t raw = vld1q_u8(qs);
    const int8x16_t b = vdupq_n_s8(bias);
    q[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), b);
    q[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), b);
}

ALWAYS_INLINE void tile_quant(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const uint8_t *w = job->w + (size_t)o * job->w_stride;
    float32x4_t acc[MATMUL_TILE];
    float mins[MATMUL_TILE];
    FOR_TILE_ROWS(r, nr) {
        acc[r] = vdupq_n_f32(0.0f);
        mins[r] = 0.0f;
    }
    for (int b = 0; b < job->in / QK; b++) {
        const uint8_t *p = w + (size_t)b * quant_block_bytes(t);
        if (nr > 1)
            prefetch_next_row(job, p);
        int8x16_t q[2];
        float d, m = 0.0f;
        if (t == DTYPE_Q8_0) {
            const struct block_q8_0 *blk = (const void *)p;
            q[0] = vld1q_s8(blk->qs);
            q[1] = vld1q_s8(blk->qs + 16);
            d = fp16_to_f32_inline(blk->d);
        } else if (t == DTYPE_Q4_0) {
            const struct block_q4_0 *blk = (const void *)p;
            unpack_nibbles(blk->qs, 8, q);
            d = fp16_to_f32_inline(blk->d);
        } else {
            const struct block_q4_1 *blk = (const void *)p;
            unpack_nibbles(blk->qs, 0, q);
            d = fp16_to_f32_inline(blk->d);
            m = fp16_to_f32_inline(blk->m);
        }
        FOR_TILE_ROWS(r, nr) {
            const struct block_q8x *xb = job_xq_row(job, r0 + r) + b;
            int32x4_t sum = dot_i8x16(vdupq_n_s32(0), q[0], vld1q_s8(xb->qs));
            sum = dot_i8x16(sum, q[1], vld1q_s8(xb->qs + 16));
            acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(sum), d * xb->d);
            if (t == DTYPE_Q4_1)
                mins[r] += m * xb->s;
        }
    }
    FOR_TILE_ROWS(r, nr)
        job->y[(size_t)(r0 + r) * job->out + o] = vaddvq_f32(acc[r]) + mins[r];
}

/* Four weights at element i, widened to float. */
ALWAYS_INLINE float32x4_t load_w4(enum dtype t, const uint8_t *w, int i)
{
    if (t == DTYPE_F32)
        return vld1q_f32((const float *)w + i);
    const uint16x4_t h = vld1_u16((const uint16_t *)w + i);
    if (t == DTYPE_F16)
        return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

/* Float weights against float x, 8 elements per step into two accumulators
 * per row; a tail of in % 8 elements is added in order. */
ALWAYS_INLINE void tile_float(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const uint8_t *w = job->w + (size_t)o * job->w_stride;
    const int in8 = job->in & ~7;
    float32x4_t acc0[MATMUL_TILE], acc1[MATMUL_TILE];
    FOR_TILE_ROWS(r, nr) {
        acc0[r] = vdupq_n_f32(0.0f);
        acc1[r] = vdupq_n_f32(0.0f);
    }
    for (int i = 0; i < in8; i += 8) {
        if (nr > 1)
            prefetch_next_row(job, w + (size_t)i * (t == DTYPE_F32 ? 4 : 2));
        const float32x4_t w0 = load_w4(t, w, i);
        const float32x4_t w1 = load_w4(t, w, i + 4);
        FOR_TILE_ROWS(r, nr) {
            const float *x = job_xf_row(job, r0 + r) + i;
            acc0[r] = vfmaq_f32(acc0[r], w0, vld1q_f32(x));
            acc1[r] = vfmaq_f32(acc1[r], w1, vld1q_f32(x + 4));
        }
    }
    FOR_TILE_ROWS(r, nr) {
        const float *x = job_xf_row(job, r0 + r);
        float sum = vaddvq_f32(vaddq_f32(acc0[r], acc1[r]));
        for (int i = in8; i < job->in; i++)
            sum += load_wf(t, w, i) * x[i];
        job->y[(size_t)(r0 + r) * job->out + o] = sum;
    }
}

MATMUL_DEFINE_BACKEND(matmul_backend_neon, "neon", matmul_quantize_x_scalar,
                      tile_float, MATMUL_TILE, 1, tile_quant, MATMUL_TILE, 1, NULL, NULL)

#endif
