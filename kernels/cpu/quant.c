/* Row quantizers and dequantizers. The quantizers are ggml's *_ref functions
 * statement for statement (which float operations, in which order), because a
 * different rounding anywhere changes the bytes of a converted model. Each
 * float expression is its own statement so no compiler fuses it into an FMA. */
#include "quant.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "convert_impl.h"

static int min_int(int a, int b) { return a < b ? a : b; }

/* x = d*q, d = amax/127, q = round half away from zero. */
static void quantize_q8_0(const float *x, struct block_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++)
            amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]); /* ggml's MAX() */
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16_inline(d);
        for (int j = 0; j < QK; j++) {
            const float v = x[j] * id;
            y[i].qs[j] = (int8_t)roundf(v);
        }
    }
}

/* x = d*(q-8). d = max/-8 where max is the value of largest magnitude (the
 * first one on ties), so that value lands exactly on q = 0. */
static void quantize_q4_0(const float *x, struct block_q4_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16_inline(d);
        for (int j = 0; j < QK / 2; j++) {
            const float v0 = x[j] * id;
            const float v1 = x[j + QK / 2] * id;
            const int q0 = min_int(15, (int8_t)(v0 + 8.5f));
            const int q1 = min_int(15, (int8_t)(v1 + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* x = d*q + m with m = min, d = (max-min)/15. */
static void quantize_q4_1(const float *x, struct block_q4_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min)
                min = x[j];
            if (x[j] > max)
                max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16_inline(d);
        y[i].m = f32_to_fp16_inline(min);
        for (int j = 0; j < QK / 2; j++) {
            const float v0 = (x[j] - min) * id;
            const float v1 = (x[j + QK / 2] - min) * id;
            const int q0 = min_int(15, (int8_t)(v0 + 0.5f));
            const int q1 = min_int(15, (int8_t)(v1 + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

void quantize_row(enum dtype t, const float *src, void *dst, int64_t n)
{
    assert(n % (int64_t)dtype_block_elems(t) == 0);
    const int64_t nb = n / QK;
    switch (t) {
    case DTYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = f32_to_fp16_inline(src[i]);
        return;
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = f32_to_bf16_inline(src[i]);
        return;
    case DTYPE_Q8_0:
        quantize_q8_0(src, dst, nb);
        return;
    case DTYPE_Q4_0:
        quantize_q4_0(src, dst, nb);
        return;
    case DTYPE_Q4_1:
        quantize_q4_1(src, dst, nb);
        return;
    }
    assert(!"quantize_row: unsupported dtype");
}

void dequantize_row(enum dtype t, const void *src, float *dst, int64_t n)
{
    assert(n % (int64_t)dtype_block_elems(t) == 0);
    const int64_t nb = n / QK;
    switch (t) {
    case DTYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = fp16_to_f32_inline(((const uint16_t *)src)[i]);
        return;
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = bf16_to_f32_inline(((const uint16_t *)src)[i]);
        return;
    case DTYPE_Q8_0:
        for (int64_t i = 0; i < nb; i++) {
            const struct block_q8_0 *b = (const struct block_q8_0 *)src + i;
            const float d = fp16_to_f32_inline(b->d);
            for (int j = 0; j < QK; j++)
                dst[i * QK + j] = b->qs[j] * d;
        }
        return;
    case DTYPE_Q4_0:
        for (int64_t i = 0; i < nb; i++) {
            const struct block_q4_0 *b = (const struct block_q4_0 *)src + i;
            const float d = fp16_to_f32_inline(b->d);
            for (int j = 0; j < QK / 2; j++) {
                dst[i * QK + j] = ((b->qs[j] & 0x0F) - 8) * d;
                dst[i * QK + j + QK / 2] = ((b->qs[j] >> 4) - 8) * d;
            }
        }
        return;
    case DTYPE_Q4_1:
        for (int64_t i = 0; i < nb; i++) {
            const struct block_q4_1 *b = (const struct block_q4_1 *)src + i;
            const float d = fp16_to_f32_inline(b->d);
            const float m = fp16_to_f32_inline(b->m);
            for (int j = 0; j < QK / 2; j++) {
                const float v0 = (b->qs[j] & 0x0F) * d;
                const float v1 = (b->qs[j] >> 4) * d;
                dst[i * QK + j] = v0 + m;
                dst[i * QK + j + QK / 2] = v1 + m;
            }
        }
        return;
    }
    assert(!"dequantize_row: unsupported dtype");
}
