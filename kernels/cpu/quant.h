/* Row quantization and dequantization for every supported dtype.
 *
 * Quantizers are ggml's reference algorithms, so a tensor we quantize is the
 * tensor llama.cpp would write. n must be a multiple of QK for quantized types. */
#ifndef TANDEM_KERNELS_CPU_QUANT_H
#define TANDEM_KERNELS_CPU_QUANT_H

#include "../dtype.h"

/* dst receives dtype_row_bytes(t, n) bytes. */
void quantize_row(enum dtype t, const float *src, void *dst, int64_t n);
/* dst receives n floats. */
void dequantize_row(enum dtype t, const void *src, float *dst, int64_t n);

#endif
