/* A Llama-family model loaded from GGUF: its configuration and its weights.
 *
 * Weights stay in the file's mapping (never copied); only the small 1-D
 * tensors (norm weights, biases) are converted to float at load. model_load
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

/* A 2-D weight matrix: rows of `cols` elements of `type`. */
struct matrix {
    const void *data;
    enum dtype type;
    int rows, cols;
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
};

struct model *model_load(const char *path, char *err, size_t errlen);
void model_free(struct model *m);

/* "llama" / "qwen2". */
const char *arch_name(enum arch a);

#endif
