/* safetensors checkpoints: a validating reader over mmap, single files and
 * the sharded form (model.safetensors.index.json naming several files).
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON (an
 * object: tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
 * plus an ignored "__metadata__"), then the data; offsets count from the end
 * of the header. st_open() checks all of it before anything is used: the
 * header length against the file, the JSON, every dtype (F32, F16 and BF16
 * only), every shape (element count times dtype size, overflow-checked, equal
 * to end - begin), every range inside the file and no two ranges
 * overlapping. A bad file gives NULL and one line in err naming the file and
 * the tensor ("model.safetensors: tensor 'lm_head.weight': data [a, b) past
 * end of data (c bytes)"). After a successful open every accessor is safe.
 *
 * Tensor data is read as float32 rows (st_read_rows); st_release() hands
 * the pages already read back to the kernel, so that a checkpoint larger
 * than memory read tensor by tensor keeps a resident set of about one
 * tensor. The sharded form lives in safetensors_index.c. */
#ifndef TANDEM_WEIGHTS_SAFETENSORS_H
#define TANDEM_WEIGHTS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/dtype.h"

#define ST_MAX_DIMS 8
/* The format's own limit on the JSON header (100 MB). */
#define ST_MAX_HEADER_BYTES (100u * 1000 * 1000)

struct st_file;

struct st_tensor {
    const char *name;
    const struct st_file *file; /* the file it lives in */
    enum dtype type;            /* DTYPE_F32, DTYPE_F16 or DTYPE_BF16 */
    int n_dims;                 /* 0 (a scalar) .. ST_MAX_DIMS */
    uint64_t shape[ST_MAX_DIMS]; /* as the file writes it: shape[0] outermost */
    uint64_t n_elems;
    const void *data;           /* into the mapping */
    uint64_t nbytes;
};

struct st_file *st_open(const char *path, char *err, size_t errlen);
/* The same checks on a header held in memory (for tests and fuzzing): data
 * is the whole file, size its length; the tensors point into data. */
struct st_file *st_parse(const char *name, const void *data, uint64_t size, char *err, size_t errlen);
void st_close(struct st_file *f);
const char *st_path(const struct st_file *f);

int64_t st_n_tensors(const struct st_file *f);
/* In the order of their data in the file. */
const struct st_tensor *st_tensor_at(const struct st_file *f, int64_t i);
const struct st_tensor *st_find(const struct st_file *f, const char *name);

/* ---- a checkpoint folder: model.safetensors, or the shards an index names ---- */
struct st_set;

/* Opens dir/model.safetensors.index.json's shards when the index exists,
 * else dir/model.safetensors. The index must name plain file names in dir,
 * and the tensors it maps must be exactly the tensors of those files. */
struct st_set *st_set_open(const char *dir, char *err, size_t errlen);
void st_set_free(struct st_set *s);
int64_t st_set_n_tensors(const struct st_set *s);
const struct st_tensor *st_set_tensor_at(const struct st_set *s, int64_t i);
const struct st_tensor *st_set_find(const struct st_set *s, const char *name);

/* ---- data ---- */

/* Rows [row0, row0 + n_rows) of t viewed as a matrix of row_len columns,
 * converted to float32 into dst. The caller keeps the rows within
 * n_elems / row_len. */
void st_read_rows(const struct st_tensor *t, uint64_t row_len, uint64_t row0, uint64_t n_rows,
                  float *dst);
/* Hands the mapped pages of t's first n_bytes back to the kernel: they leave
 * the resident set and are read again from the page cache if touched. Does
 * nothing for st_parse()'s memory. */
void st_release(const struct st_tensor *t, uint64_t n_bytes);

#endif
