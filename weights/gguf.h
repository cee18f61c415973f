/* GGUF v3 files: a validating reader over mmap and a streaming writer.
 *
 * Reader: gguf_open() checks every count, string length, value type, tensor
 * dimension, type, offset, size and the alignment against the file before
 * anything is used; a bad file gives NULL and one line in err naming the file
 * and the field ("m.gguf: tensor 12 'blk.0.attn_q.weight': data [a, b) past end
 * of file (c bytes)"). After a successful open every accessor is safe.
 * Strings are copied out NUL-terminated (a string with an embedded NUL is
 * refused); tensor data points into the mapping.
 *
 * Writer: collects metadata and tensor descriptions, then writes the file in
 * one pass to PATH.tmp and renames it, so a failed write leaves nothing behind.
 * Tensor bytes come from a pointer or, for files larger than memory, from a
 * callback asked for one tensor at a time. */
#ifndef TANDEM_WEIGHTS_GGUF_H
#define TANDEM_WEIGHTS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../kernels/dtype.h"

enum gguf_value_type {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4,
    GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8,
    GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

struct gguf_tensor {
    const char *name;
    enum dtype type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
    const void *data;           /* into the mapping, aligned as the file says */
    uint64_t nbytes;
};

struct gguf_file;

struct gguf_file *gguf_open(const char *path, char *err, size_t errlen);
void gguf_close(struct gguf_file *f);
const char *gguf_path(const struct gguf_file *f);
uint64_t gguf_file_size(const struct gguf_file *f);

/* ---- metadata ---- */
int64_t gguf_n_kv(const struct gguf_file *f);
const char *gguf_key(const struct gguf_file *f, int64_t i);
/* Index of key, or -1. */
int64_t gguf_find_key(const struct gguf_file *f, const char *key);
/* Type of the value; for arrays, GGUF_ARRAY (see gguf_arr_type). -1 if absent. */
int gguf_kv_type(const struct gguf_file *f, const char *key);

/* Scalar getters: false if the key is absent or its value cannot be
 * represented exactly in the requested type (any integer type converts to
 * another if the value fits; F32 and F64 convert to float/double). */
bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out);
/* NULL if absent or not a string. */
const char *gguf_get_str(const struct gguf_file *f, const char *key);

/* Arrays: element type and count; false if absent or not an array. */
bool gguf_get_arr(const struct gguf_file *f, const char *key,
                  enum gguf_value_type *elem_type, uint64_t *count);
/* Element i of a string array (NULL if out of range / wrong type). */
const char *gguf_arr_str(const struct gguf_file *f, const char *key, uint64_t i);
/* Element i of a numeric array converted as the scalar getters do. */
bool gguf_arr_i64(const struct gguf_file *f, const char *key, uint64_t i, int64_t *out);
bool gguf_arr_f32(const struct gguf_file *f, const char *key, uint64_t i, float *out);

/* ---- tensors ---- */
int64_t gguf_n_tensors(const struct gguf_file *f);
const struct gguf_tensor *gguf_tensor_at(const struct gguf_file *f, int64_t i);
/* NULL if there is no tensor of that name. */
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* ---- writer ---- */
struct gguf_writer;

/* Produces the nbytes of one tensor into dst; returns false on failure
 * (the write is then abandoned). */
typedef bool (*gguf_fill_fn)(void *ctx, void *dst, uint64_t nbytes);

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);
/* Setting a key twice replaces the value. Strings and arrays are copied. */
void gguf_set_u32(struct gguf_writer *w, const char *key, uint32_t v);
void gguf_set_i32(struct gguf_writer *w, const char *key, int32_t v);
void gguf_set_u64(struct gguf_writer *w, const char *key, uint64_t v);
void gguf_set_f32(struct gguf_writer *w, const char *key, float v);
void gguf_set_bool(struct gguf_writer *w, const char *key, bool v);
void gguf_set_str(struct gguf_writer *w, const char *key, const char *v);
void gguf_set_arr_str(struct gguf_writer *w, const char *key, const char *const *v, uint64_t n);
void gguf_set_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
void gguf_set_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n);
/* Copies all metadata of an open file (for convert / train-exits). */
void gguf_copy_kv(struct gguf_writer *w, const struct gguf_file *src);
/* Copies the keys that start with prefix (e.g. "tokenizer."), types kept. */
void gguf_copy_kv_prefix(struct gguf_writer *w, const struct gguf_file *src, const char *prefix);

/* Adds a tensor; ne as in struct gguf_tensor. Exactly one of data or fill
 * is non-NULL; data must stay valid until gguf_writer_write returns. */
void gguf_add_tensor(struct gguf_writer *w, const char *name, enum dtype type,
                     int n_dims, const uint64_t *ne, const void *data,
                     gguf_fill_fn fill, void *fill_ctx);

/* Writes PATH.tmp, renames it to path. false + err on any failure, and the
 * temporary is removed. progress (may be NULL) is called after each tensor. */
bool gguf_writer_write(struct gguf_writer *w, const char *path,
                       void (*progress)(void *ctx, int64_t done, int64_t total),
                       void *progress_ctx, char *err, size_t errlen);

#endif
