/* Multi-row matrix-vector product: the hot loop of every forward pass.
 *
 *   y[r*out + o] = sum_i w[o][i] * x[r*in + i]     r < n, o < out
 *
 * w is `out` rows of `in` elements of dtype t (row stride dtype_row_bytes).
 * Batch invariance: each y element is computed by the same sequence of
 * operations whatever n is and whichever thread computes it, so a row's result
 * is bitwise identical in a pass of 1 row or of k rows. Threads split the
 * output rows, never a reduction.
 *
 * For quantized weights, each x row is first quantized to 8 bits in blocks of
 * QK (as ggml does), into `scratch`, which must hold matmul_scratch_bytes(). */
#ifndef TANDEM_KERNELS_CPU_MATMUL_H
#define TANDEM_KERNELS_CPU_MATMUL_H

#include <stddef.h>
#include "../dtype.h"
#include "threadpool.h"

size_t matmul_scratch_bytes(enum dtype t, int n, int in);

void matmul(struct threadpool *tp, float *y, const void *w, enum dtype t,
            const float *x, int n, int in, int out, void *scratch);

/* Dot product of one weight row with one float vector, the plain way
 * (dequantize, then sum in double). The reference matmul is tested against. */
double dot_reference(const void *w_row, enum dtype t, const float *x, int in);

#endif
