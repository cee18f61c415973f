/* Scalar conversions between float and the 16-bit float formats. Exact and
 * branch-for-branch the same as ggml's reference (round to nearest even). */
#ifndef TANDEM_KERNELS_CPU_CONVERT_H
#define TANDEM_KERNELS_CPU_CONVERT_H

#include <stdint.h>

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

#endif
