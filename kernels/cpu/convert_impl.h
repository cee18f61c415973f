/* Inline bodies of the conversions in convert.h, for hot loops in this folder
 * (a call per quant block scale would cost more than the block's dot product).
 * Everything else should include convert.h.
 *
 * fp16 -> f32 and f32 -> fp16 follow ggml's portable reference (Maratyszcza's
 * FP16 library): round to nearest even, subnormals exact, every NaN becomes
 * the quiet NaN 0x7E00 with its sign. F16C agrees with that bit for bit on all
 * 65536 halves, and on all 2^32 floats except NaNs, so it is used where present
 * with the NaN rule applied by hand. */
#ifndef TANDEM_KERNELS_CPU_CONVERT_IMPL_H
#define TANDEM_KERNELS_CPU_CONVERT_IMPL_H

#include <stdint.h>
#include <math.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

static inline float bits_to_f32(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

static inline float fp16_to_f32_inline(uint16_t h)
{
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w; /* exponent and mantissa, sign shifted out */
    /* Normal and inf/NaN: move the bits into float position, then rescale the
     * exponent bias from 15 to 127 by a multiply (which also quiets NaNs). */
    const float normalized = bits_to_f32((two_w >> 4) + (UINT32_C(0xE0) << 23)) * 0x1.0p-112f;
    /* Subnormal: place the mantissa under an exponent of 2^-1 and subtract 0.5,
     * which leaves mantissa * 2^-24 exactly. */
    const float denormalized = bits_to_f32((two_w >> 17) | (UINT32_C(126) << 23)) - 0.5f;
    const uint32_t is_denormal = two_w < (UINT32_C(1) << 27);
    return bits_to_f32(sign | f32_to_bits(is_denormal ? denormalized : normalized));
#endif
}

static inline uint16_t f32_to_fp16_inline(float f)
{
    const uint32_t w = f32_to_bits(f);
    const uint32_t shl1_w = w + w;
    const uint16_t sign = (uint16_t)((w & UINT32_C(0x80000000)) >> 16);
    if (shl1_w > UINT32_C(0xFF000000)) /* NaN */
        return sign | UINT16_C(0x7E00);
#if defined(__F16C__)
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    /* Scale so that the float adder rounds at the half's precision: the two
     * multiplies send overflow to inf and leave the rest exact; adding a power
     * of two of the right exponent rounds the mantissa to nearest even. */
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t bias = shl1_w & UINT32_C(0xFF000000);
    if (bias < UINT32_C(0x71000000))
        bias = UINT32_C(0x71000000); /* subnormal halves share one rounding point */
    base = bits_to_f32((bias >> 1) + UINT32_C(0x07800000)) + base;
    const uint32_t bits = f32_to_bits(base);
    const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
    const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
    return sign | (uint16_t)(exp_bits + mantissa_bits);
#endif
}

static inline float bf16_to_f32_inline(uint16_t h)
{
    return bits_to_f32((uint32_t)h << 16);
}

/* Round to nearest even on the top 16 bits; NaNs keep their top payload bits
 * and are made quiet (ggml's and Google Brain's rule). Subnormals are kept. */
static inline uint16_t f32_to_bf16_inline(float f)
{
    const uint32_t w = f32_to_bits(f);
    if ((w & UINT32_C(0x7FFFFFFF)) > UINT32_C(0x7F800000))
        return (uint16_t)((w >> 16) | 64);
    return (uint16_t)((w + UINT32_C(0x7FFF) + ((w >> 16) & 1)) >> 16);
}

#endif
