/* Tensor element types, numbered as in GGUF/ggml, and their block layouts.
 *
 * Quantized types store a row as consecutive blocks of `dtype_block_elems`
 * elements each taking `dtype_block_bytes` bytes. A row length must be a whole
 * number of blocks. This header is the one place that knows those sizes. */
#ifndef TANDEM_KERNELS_DTYPE_H
#define TANDEM_KERNELS_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dtype {
    DTYPE_F32 = 0,
    DTYPE_F16 = 1,
    DTYPE_Q4_0 = 2,
    DTYPE_Q4_1 = 3,
    DTYPE_Q8_0 = 8,
    DTYPE_BF16 = 30,
};

#define QK 32 /* elements per block in every quantized type we support */

/* Block layouts, bit-compatible with ggml. d, m are IEEE half floats. */
struct block_q8_0 { uint16_t d; int8_t qs[QK]; };            /* x = d*q            */
struct block_q4_0 { uint16_t d; uint8_t qs[QK / 2]; };       /* x = d*(q-8)        */
struct block_q4_1 { uint16_t d, m; uint8_t qs[QK / 2]; };    /* x = d*q + m        */
/* q4 nibbles: element j (j<16) is the low nibble of qs[j], element j+16 the high. */

/* True for the types above; false for any other GGUF type id. */
bool dtype_is_supported(uint32_t type);
/* "f32", "q4_1", ...; "unknown" for an unsupported id. */
const char *dtype_name(uint32_t type);
/* Parses a name as printed by dtype_name; returns false if unknown. */
bool dtype_from_name(const char *name, enum dtype *out);
size_t dtype_block_elems(enum dtype t);
size_t dtype_block_bytes(enum dtype t);
/* Bytes of a row of n elements; 0 if n is not a whole number of blocks. */
size_t dtype_row_bytes(enum dtype t, uint64_t n);

#endif
