/* Q8_0 weights repacked for the AVX-512 tile ("q8_0x16").
 *
 * The AVX-512 back end computes sixteen output rows at once, one per 32-bit
 * lane, and wants each block of those rows transposed (lane i holding row
 * i's bytes 4k..4k+3) with dpbusd's +128 offset applied, and the sixteen
 * scales side by side. On plain Q8_0 it does that on every pass: a
 * transposition, an offset and a gather per block of sixteen rows, as much
 * work as five x rows' dot products, so verify passes are compute-bound.
 * Repacked once at load, a pass only loads.
 *
 * Layout of a matrix of `out` rows of `in` elements (in % QK == 0), nb =
 * in / QK: it takes exactly the bytes of the plain matrix, and every group of
 * 16 rows sits where its plain rows were, so row offsets still address
 * groups. A whole group g (rows 16g..16g+15) holds
 *     nb x 512 bytes  block b: for k < 8, for lane i < 16, bytes 4k..4k+3
 *                     of row 16g+i's block b, each plus 128 (as uint8)
 *     nb x 32 bytes   block b: the 16 rows' fp16 scales d, in row order
 * The last out % 16 rows, if any, stay plain Q8_0 rows.
 *
 * The result of a matmul over repacked weights is bitwise that of the
 * AVX-512 back end over the plain ones (tests/unit/test_kernels.c). */
#ifndef TANDEM_KERNELS_CPU_REPACK_H
#define TANDEM_KERNELS_CPU_REPACK_H

#include <stdbool.h>
#include "../dtype.h"
#include "threadpool.h"

#define Q8_0X16_ROWS 16

/* Whether this build's best matmul back end has a q8_0x16 kernel. */
bool q8_0x16_supported(void);

/* Writes the repacked form of the plain Q8_0 matrix src (out rows of in
 * elements) to dst, dtype_row_bytes(Q8_0, in) * out bytes; src and dst must
 * not overlap. */
void q8_0x16_pack(void *dst, const void *src, int in, int out);
/* The same, as a plain loop over the layout above (what tests hold the
 * fast packer to). */
void q8_0x16_pack_reference(void *dst, const void *src, int in, int out);

/* y = x . w^T as matmul() does, w repacked by q8_0x16_pack. Needs
 * q8_0x16_supported(); scratch as for matmul() on Q8_0. */
void matmul_q8_0x16(struct threadpool *tp, float *y, const void *w, const float *x, int n,
                    int in, int out, void *scratch);

#endif
