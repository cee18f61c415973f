/* Conversion of model checkpoints into the GGUF files the engine runs
 * (`tandem convert`).
 *
 * Every input reader (GGUF, llama2.c, Hugging Face) works the same way: it
 * opens its input, fills a plan's metadata (a gguf_writer) with llama.cpp's
 * keys, and adds each output tensor with a source that can produce it later,
 * a few rows at a time. Nothing is read until convert_plan_write() streams the
 * tensors out one by one, so peak memory is about one output tensor plus the
 * reader's own buffers, whatever the size of the model.
 *
 * Type policy (llama.cpp's, applied by the plan, not the readers): 2-D weight
 * matrices get the requested type; 1-D tensors (norms, biases) stay f32; a
 * matrix whose row length is not a multiple of 32 cannot be block-quantized
 * and falls back to f16. A tensor whose source already has the output type is
 * copied byte for byte (GGUF -> GGUF at the same type changes no data).
 *
 * Errors: every function that can fail takes err/errlen and writes one line
 * naming the input and what is wrong. The output is written to OUT.tmp and
 * renamed at the end; on failure nothing is left at OUT or OUT.tmp. */
#ifndef TANDEM_WEIGHTS_CONVERT_H
#define TANDEM_WEIGHTS_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/dtype.h"
#include "gguf.h"

struct convert_options {
    enum dtype type;        /* output type of 2-D weights */
    bool type_given;        /* false: GGUF input keeps each tensor's type,
                               other inputs write f16 */
    const char *tokenizer;  /* llama2.c tokenizer.bin; for HF folders an
                               explicit tokenizer.json / tokenizer.model */
    bool progress;          /* progress bar on stderr (when it is a tty) */
};

/* Produces rows [row0, row0 + n_rows) of a tensor as float32, row-major,
 * ne[0] floats per row (the tensor viewed as ne[0] x (ne[1]*ne[2]*ne[3])).
 * Returns false and writes err on failure (truncated file, read error). */
typedef bool (*convert_rows_fn)(void *ctx, uint64_t row0, uint64_t n_rows,
                                float *dst, char *err, size_t errlen);

struct convert_plan;

struct convert_plan *convert_plan_new(const struct convert_options *opts);
/* Frees the plan and calls every free_ctx given to it. */
void convert_plan_free(struct convert_plan *p);

/* The output's metadata; readers set general.*, ARCH.*, tokenizer.* here. */
struct gguf_writer *convert_plan_writer(struct convert_plan *p);

/* llama.cpp's general.file_type (its llama_ftype numbering, not a tensor
 * type id) for a file whose matrices are of type t. convert_plan_new sets it
 * for the requested type (f16 when none is given); a reader that keeps its
 * source's types overrides it. */
uint32_t convert_file_type(enum dtype t);

/* The type the policy gives a tensor of this shape ("token_embd.weight" etc.
 * follow the same rule as every other matrix). */
enum dtype convert_plan_type_for(const struct convert_plan *p, int n_dims,
                                 const uint64_t *ne);

/* Adds a tensor whose rows come from rows(ctx, ...). free_ctx (may be NULL)
 * is called on ctx when the plan is freed. */
void convert_add_rows(struct convert_plan *p, const char *name, int n_dims,
                      const uint64_t *ne, convert_rows_fn rows, void *ctx,
                      void (*free_ctx)(void *));

/* Adds a tensor whose source bytes are already of type src_type (data stays
 * valid until the plan is written, e.g. inside a mapping). Copied byte for
 * byte when the policy's type equals src_type; otherwise dequantized and
 * re-quantized row by row. */
void convert_add_bytes(struct convert_plan *p, const char *name,
                       enum dtype src_type, int n_dims, const uint64_t *ne,
                       const void *data);

/* As convert_add_bytes, for data inside a read-only file mapping that the
 * reader keeps until the plan is written: once the tensor is written its
 * pages are handed back to the kernel (read again from the file if touched),
 * so resident memory stays about one tensor whatever the input's size. With
 * keep_type the tensor keeps src_type whatever the policy says (a GGUF input
 * without a requested type). */
void convert_add_mapped(struct convert_plan *p, const char *name,
                        enum dtype src_type, int n_dims, const uint64_t *ne,
                        const void *data, bool keep_type);

/* Streams every tensor to out (via out.tmp + rename). */
bool convert_plan_write(struct convert_plan *p, const char *out, char *err,
                        size_t errlen);

/* The readers. Each returns false with err set; on success the file at out
 * is complete. */
bool convert_from_gguf(const char *in, const char *out,
                       const struct convert_options *opts, char *err, size_t errlen);
bool convert_from_llama2c(const char *in, const char *out,
                          const struct convert_options *opts, char *err, size_t errlen);
bool convert_from_hf(const char *dir, const char *out,
                     const struct convert_options *opts, char *err, size_t errlen);

#endif
