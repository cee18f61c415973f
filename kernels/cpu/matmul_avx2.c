/* AVX2 + FMA + F16C back end (x86-64 since Haswell / Zen).
 *
 * Quantized weights: per 32-element block, the weights are loaded and
 * unpacked once; each x row of the tile then takes one integer dot product
 * (maddubs + madd, as ggml does), converted to float and accumulated with one
 * FMA scaled by d_w*d_x into an 8-lane accumulator of its own. Float weights:
 * 16 elements per step into two 8-lane accumulators per row. Every row ends
 * with the same fixed-order horizontal sum. About six vector operations per
 * row and block remain, so on a fast memory system a pass of k rows costs
 * close to k times the arithmetic of one. */
#include "matmul_impl.h"

#if defined(MATMUL_HAVE_AVX2)

#include <immintrin.h>

void matmul_quantize_x_avx2(const float *x, struct block_q8x *y, int in)
{
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < in / QK; b++, x += QK) {
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[k]));
        }
        /* max is exact, so any reduction order gives the scalar amax. */
        __m128 m = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float d = _mm_cvtss_f32(m) / 127;
        /* 127/amax, not 1/d: ggml's rounding, so q flips where its does */
        const __m256 id = _mm256_set1_ps(d ? 127.0f / _mm_cvtss_f32(m) : 0.0f);
        __m256i q[4];
        __m256i sum = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[k], id),
                                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q[k] = _mm256_cvtps_epi32(r);
            sum = _mm256_add_epi32(sum, q[k]);
        }
        /* Packing works within 128-bit lanes; the permute restores order. */
        const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);
        const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
        const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b),
                                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, q8);
        __m128i s = _mm_add_epi32(_mm256_extracti128_si256(sum, 1), _mm256_castsi256_si128(sum));
        s = _mm_hadd_epi32(s, s);
        s = _mm_hadd_epi32(s, s);
        block_q8x_set_scales(&y[b], d, _mm_cvtsi128_si32(s));
    }
}

/* 32 nibbles -> 32 bytes: low nibbles are elements 0..15, high 16..31. */
static inline __m256i unpack_nibbles(const uint8_t *qs)
{
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* Quantized weights against block_q8x rows. maddubs multiplies unsigned by
 * signed bytes. Q8_0's signed weights pass their sign onto x and use |w|.
 * The 4-bit types use their unsigned nibbles directly: Q4_0's d*(q-8) is
 * Q4_1's d*q + m with m = -8d, whose offset term m*s is summed apart, which
 * costs less per row than the sign trick. Pair sums stay below 2*128*127 <
 * 2^15, so nothing saturates. */
ALWAYS_INLINE void tile_quant(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const uint8_t *w = job->w + (size_t)o * job->w_stride;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MATMUL_TILE];
    float mins[MATMUL_TILE];
    FOR_TILE_ROWS(r, nr) {
        acc[r] = _mm256_setzero_ps();
        mins[r] = 0.0f;
    }
    for (int b = 0; b < job->in / QK; b++) {
        const uint8_t *p = w + (size_t)b * quant_block_bytes(t);
        if (nr > 1)
            prefetch_next_row(job, p);
        __m256i q;
        float d, m = 0.0f;
        if (t == DTYPE_Q8_0) {
            const struct block_q8_0 *blk = (const void *)p;
            q = _mm256_loadu_si256((const __m256i *)blk->qs);
            d = fp16_to_f32_inline(blk->d);
        } else if (t == DTYPE_Q4_0) {
            const struct block_q4_0 *blk = (const void *)p;
            q = unpack_nibbles(blk->qs);
            d = fp16_to_f32_inline(blk->d);
            m = -8.0f * d;
        } else {
            const struct block_q4_1 *blk = (const void *)p;
            q = unpack_nibbles(blk->qs);
            d = fp16_to_f32_inline(blk->d);
            m = fp16_to_f32_inline(blk->m);
        }
        const __m256 dw = _mm256_set1_ps(d);
        FOR_TILE_ROWS(r, nr) {
            const struct block_q8x *xb = job_xq_row(job, r0 + r) + b;
            const __m256i qx = _mm256_loadu_si256((const __m256i *)xb->qs);
            const __m256i pairs = t == DTYPE_Q8_0
                ? _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(qx, q))
                : _mm256_maddubs_epi16(q, qx);
            const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
            /* d_w*d_x as a vector multiply by a broadcast load: one less
             * shuffle per row than broadcasting a scalar product. */
            const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d));
            acc[r] = _mm256_fmadd_ps(scale, dot, acc[r]);
            if (t != DTYPE_Q8_0)
                mins[r] += m * (t == DTYPE_Q4_0 ? xb->dsum : xb->s);
        }
    }
    FOR_TILE_ROWS(r, nr)
        job->y[(size_t)(r0 + r) * job->out + o] = hsum_f32x8(acc[r]) + mins[r];
}

/* Eight weights at element i, widened to float. */
ALWAYS_INLINE __m256 load_w8(enum dtype t, const uint8_t *w, int i)
{
    if (t == DTYPE_F32)
        return _mm256_loadu_ps((const float *)w + i);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (t == DTYPE_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Float weights against float x. Two accumulators per row hide FMA latency
 * when the tile has one row; a tail of in % 16 elements is added in order. */
ALWAYS_INLINE void tile_float(const struct matmul_job *job, int o, int r0, int nr, enum dtype t)
{
    const uint8_t *w = job->w + (size_t)o * job->w_stride;
    const int in16 = job->in & ~15;
    __m256 acc0[MATMUL_TILE], acc1[MATMUL_TILE];
    FOR_TILE_ROWS(r, nr) {
        acc0[r] = _mm256_setzero_ps();
        acc1[r] = _mm256_setzero_ps();
    }
    for (int i = 0; i < in16; i += 16) {
        if (nr > 1)
            prefetch_next_row(job, w + (size_t)i * (t == DTYPE_F32 ? 4 : 2));
        const __m256 w0 = load_w8(t, w, i);
        const __m256 w1 = load_w8(t, w, i + 8);
        FOR_TILE_ROWS(r, nr) {
            const float *x = job_xf_row(job, r0 + r) + i;
            acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), acc0[r]);
            acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), acc1[r]);
        }
    }
    FOR_TILE_ROWS(r, nr) {
        const float *x = job_xf_row(job, r0 + r);
        float sum = hsum_f32x8(_mm256_add_ps(acc0[r], acc1[r]));
        for (int i = in16; i < job->in; i++)
            sum += load_wf(t, w, i) * x[i];
        job->y[(size_t)(r0 + r) * job->out + o] = sum;
    }
}

MATMUL_DEFINE_BACKEND(matmul_backend_avx2, "avx2", matmul_quantize_x_avx2,
                      tile_float, MATMUL_TILE, 1, tile_quant, MATMUL_TILE, 1, NULL, NULL)

#endif
