/* What gguf_read.c shares with gguf_write.c beyond the public API in gguf.h. */
#ifndef TANDEM_WEIGHTS_GGUF_INTERNAL_H
#define TANDEM_WEIGHTS_GGUF_INTERNAL_H

#include "gguf.h"

/* The value of kv i exactly as the file stores it: the u32 type followed by
 * the encoded value, so it can be copied without decoding. NULL if i is out
 * of range. */
const unsigned char *gguf_kv_encoded(const struct gguf_file *f, int64_t i, size_t *len);

/* Bytes of a tensor of the given type and shape (all GGUF_MAX_DIMS entries,
 * unused ones 1). False if ne[0] is not a whole number of blocks, a dimension
 * is 0, or the size does not fit in 64 bits. */
bool gguf_tensor_nbytes(enum dtype type, const uint64_t ne[GGUF_MAX_DIMS], uint64_t *nbytes);

#endif
