/* A Hugging Face model folder's config.json (and generation_config.json),
 * for the two architectures the engine runs: LlamaForCausalLM and
 * Qwen2ForCausalLM.
 *
 * Field names and defaults are transformers' (LlamaConfig, Qwen2Config);
 * both the older layout (rope_theta and rope_scaling at the top) and the
 * newer one (rope_parameters) are read. Everything the engine cannot run is
 * refused with a line naming the file and the field: another architecture,
 * an activation other than SiLU, rope scaling other than linear, Llama
 * attention or MLP biases, Qwen2's sliding window, quantized checkpoints. */
#ifndef TANDEM_WEIGHTS_HF_CONFIG_H
#define TANDEM_WEIGHTS_HF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hf_arch { HF_LLAMA, HF_QWEN2 };

struct hf_config {
    enum hf_arch arch;
    const char *arch_name;     /* llama.cpp's: "llama", "qwen2" */
    int64_t hidden_size;       /* embedding_length */
    int64_t intermediate_size; /* feed_forward_length */
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;
    int64_t head_dim;          /* hidden_size / n_heads unless given */
    bool head_dim_given;       /* config.json names head_dim */
    int64_t max_position_embeddings;
    int64_t vocab_size;
    double rms_norm_eps;
    double rope_theta;
    double rope_linear_factor; /* 0: no scaling */
    bool tie_word_embeddings;
    int64_t bos_id, eos_id;    /* -1: not given */
};

/* Parses config.json text; name is used in errors. generation_config may be
 * NULL; where config.json lacks bos/eos ids they come from it. */
bool hf_config_parse(const char *name, const char *config_json, size_t len, const char *gen_name,
                     const char *generation_json, size_t gen_len, struct hf_config *c, char *err,
                     size_t errlen);
/* Reads dir/config.json and, when present, dir/generation_config.json. */
bool hf_config_load(const char *dir, struct hf_config *c, char *err, size_t errlen);

#endif
