/* Public entry points for the 16-bit float conversions; the bodies live in
 * convert_impl.h so kernels can inline them. */
#include "convert.h"
#include "convert_impl.h"

float fp16_to_f32(uint16_t h) { return fp16_to_f32_inline(h); }
uint16_t f32_to_fp16(float f) { return f32_to_fp16_inline(f); }
float bf16_to_f32(uint16_t h) { return bf16_to_f32_inline(h); }
uint16_t f32_to_bf16(float f) { return f32_to_bf16_inline(f); }
