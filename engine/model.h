/* A Llama-family model loaded from GGUF: its configuration and its weights.
 *
 * model_load leaves the weights in the file's mapping (model_repack may then
 * move them for the CPU); only the small 1-D tensors (norm weights, biases)
 * are converted to float at load. model_load
 * checks the architecture, every hyperparameter and every tensor's presence,
 * type and shape, and names the first thing that is wrong. */
#ifndef TANDEM_ENGINE_MODEL_H
#define TANDEM_ENGINE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include "../kernels/dtype.h"
#include "../weights/gguf.h"

enum arch { ARCH_LLAMA, ARCH_QWEN2 };

struct model_config {
    enum arch arch;
    int n_layers;
    int dim;          /* embedding width */
    int n_heads;
    int n_kv_heads;   /* < n_heads for grouped-query attention */
    int head_dim;
    int ffn_dim;
    int vocab;
    int ctx_train;    /* context length the model was trained for */
    float rms_eps;
    float rope_theta;
    float rope_freq_scale; /* 1 / linear scaling factor */
    bool rope_neox;        /* pair (i, i+d/2) instead of (2i, 2i+1) */
    bool tied_output;      /* LM head is token_embd */
};

/* A 2-D weight matrix: rows of `cols` elements of `type`. q8_0x16: data is
 * Q8_0 repacked for the CPU (kernels/cpu/repack.h, model_repack), which only
 * matrix_mul reads. */
struct matrix {
    const void *data;
    enum dtype type;
    int rows, cols;
    bool q8_0x16;
};

struct layer_weights {
    float *attn_norm, *ffn_norm;   /* (dim) */
    float *bq, *bk, *bv;           /* qwen2 only, else NULL */
    struct matrix wq;              /* (n_heads*head_dim, dim) */
    struct matrix wk, wv;          /* (n_kv_heads*head_dim, dim) */
    struct matrix wo;              /* (dim, n_heads*head_dim) */
    struct matrix w_gate, w_up;    /* (ffn_dim, dim) */
    struct matrix w_down;          /* (dim, ffn_dim) */
};

struct model {
    struct gguf_file *file;
    struct model_config cfg;
    struct matrix tok_embd;        /* (vocab, dim) */
    float *output_norm;            /* (dim) */
    struct matrix output;          /* (vocab, dim); tok_embd when tied */
    struct layer_weights *layers;  /* n_layers */
    float *rope_inv_freq;          /* (head_dim/2), scaling included */
    size_t weight_bytes;           /* bytes of all tensors a token reads */
    void *repacked;                /* model_repack's copy of the weights, or NULL */
    size_t repacked_bytes;
};

struct model *model_load(const char *path, char *err, size_t errlen);
void model_free(struct model *m);

/* Moves m's weight matrices out of the file mapping into memory of their own
 * for the CPU: Q8_0 matrices repacked into the layout of the CPU's fastest
 * Q8_0 kernel where this build has one (kernels/cpu/repack.h; so verify
 * passes cost far less than k decode steps), the others copied as they are;
 * the embedding table keeps its layout (rows are read from it). The memory
 * asks for huge pages: a decode step streams every weight, and 4 KiB pages
 * cost a TLB miss every 4 KiB. Each matrix's pages of the file mapping are
 * dropped as soon as it is copied, so resident memory stays about the size
 * of the weights, not twice that. Results are bitwise those of the mapped
 * weights. Only the CPU backend can run a model with repacked Q8_0
 * matrices. Returns the bytes placed (0: done before), or -1 with err set
 * (out of memory). */
long long model_repack(struct model *m, char *err, size_t errlen);

struct threadpool;
/* y (n, w->rows) = x (n, w->cols) . w^T on the CPU, in w's layout; scratch as
 * for matmul(). */
void matrix_mul(struct threadpool *tp, float *y, const struct matrix *w, const float *x, int n,
                void *scratch);

/* "llama" / "qwen2". */
const char *arch_name(enum arch a);

#endif
