/* config.json / generation_config.json -> struct hf_config, field by field. */
#include "hf_config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_file.h"

#define MAX_CONFIG_BYTES (4u << 20)
#define NO_DEFAULT INT64_MIN

struct reader {
    const char *name; /* the file, for errors */
    json_object *root;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static bool fail(const struct reader *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s", r->name, msg);
    return false;
}

/* An integer in [lo, hi]; def when absent (NO_DEFAULT: required). */
static bool get_int(const struct reader *r, json_object *obj, const char *key, int64_t def, int64_t lo, int64_t hi,
                    int64_t *out)
{
    json_object *v = json_get(obj, key);
    if (!v) {
        if (def == NO_DEFAULT)
            return fail(r, "missing '%s'", key);
        *out = def;
        return true;
    }
    if (!json_int(v, out))
        return fail(r, "'%s' is not an integer", key);
    if (*out < lo || *out > hi)
        return fail(r, "'%s' = %lld outside [%lld, %lld]", key, (long long)*out, (long long)lo, (long long)hi);
    return true;
}

/* A positive finite number; def when absent. */
static bool get_positive(const struct reader *r, json_object *obj, const char *key, double def, double *out)
{
    json_object *v = json_get(obj, key);
    if (!v) {
        *out = def;
        return true;
    }
    if (!json_number(v, out) || !isfinite(*out) || *out <= 0)
        return fail(r, "'%s' is not a positive number", key);
    return true;
}

static bool get_bool(const struct reader *r, json_object *obj, const char *key, bool def, bool *out)
{
    json_object *v = json_get(obj, key);
    if (!v) {
        *out = def;
        return true;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return fail(r, "'%s' is not true or false", key);
    *out = json_object_get_boolean(v);
    return true;
}

/* NULL when absent; an error when present but not a string. */
static bool get_string(const struct reader *r, json_object *obj, const char *key, const char **out)
{
    json_object *v = json_get(obj, key);
    *out = NULL;
    if (!v)
        return true;
    if (!json_object_is_type(v, json_type_string))
        return fail(r, "'%s' is not a string", key);
    *out = json_object_get_string(v);
    return true;
}

/* A token id, or the first of a list of them (transformers allows several
 * EOS ids); -1 when absent. */
static bool get_token_id(const struct reader *r, json_object *obj, const char *key, int64_t *out)
{
    json_object *v = json_get(obj, key);
    *out = -1;
    if (v && json_object_is_type(v, json_type_array))
        v = json_object_array_length(v) > 0 ? json_object_array_get_idx(v, 0) : NULL;
    if (!v)
        return true;
    if (!json_int(v, out) || *out < 0 || *out >= INT32_MAX)
        return fail(r, "'%s' is not a token id", key);
    return true;
}

/* ---- the parts of config.json ---- */

static bool read_arch(const struct reader *r, struct hf_config *c)
{
    static const struct {
        const char *hf, *model_type, *gguf;
        enum hf_arch arch;
    } known[] = {
        {"LlamaForCausalLM", "llama", "llama", HF_LLAMA},
        {"Qwen2ForCausalLM", "qwen2", "qwen2", HF_QWEN2},
    };
    json_object *archs = json_get(r->root, "architectures");
    const char *name = NULL, *model_type;
    if (archs) {
        json_object *first = json_object_is_type(archs, json_type_array) && json_object_array_length(archs) > 0
                                 ? json_object_array_get_idx(archs, 0) : NULL;
        if (!first || !json_object_is_type(first, json_type_string))
            return fail(r, "'architectures' is not a list of names");
        name = json_object_get_string(first);
    }
    if (!get_string(r, r->root, "model_type", &model_type))
        return false;
    if (!name && !model_type)
        return fail(r, "neither 'architectures' nor 'model_type' says what model this is");
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (name ? strcmp(name, known[i].hf) == 0 : strcmp(model_type, known[i].model_type) == 0) {
            c->arch = known[i].arch;
            c->arch_name = known[i].gguf;
            return true;
        }
    }
    if (name)
        return fail(r, "architecture '%.64s' is not supported (LlamaForCausalLM, Qwen2ForCausalLM)", name);
    return fail(r, "model_type '%.64s' is not supported (llama, qwen2)", model_type);
}

static bool read_shape(const struct reader *r, struct hf_config *c)
{
    json_object *o = r->root;
    if (!get_int(r, o, "hidden_size", NO_DEFAULT, 1, 1 << 16, &c->hidden_size) ||
        !get_int(r, o, "intermediate_size", NO_DEFAULT, 1, 1 << 18, &c->intermediate_size) ||
        !get_int(r, o, "num_hidden_layers", NO_DEFAULT, 1, 4096, &c->n_layers) ||
        !get_int(r, o, "num_attention_heads", NO_DEFAULT, 1, 1024, &c->n_heads) ||
        !get_int(r, o, "num_key_value_heads", c->n_heads, 1, 1024, &c->n_kv_heads) ||
        !get_int(r, o, "vocab_size", NO_DEFAULT, 1, 1 << 24, &c->vocab_size) ||
        !get_int(r, o, "max_position_embeddings", c->arch == HF_QWEN2 ? 32768 : 2048, 1, 1 << 24,
                 &c->max_position_embeddings))
        return false;
    c->head_dim_given = json_get(o, "head_dim") != NULL;
    if (!c->head_dim_given && c->hidden_size % c->n_heads != 0)
        return fail(r, "hidden_size %lld is not a multiple of num_attention_heads %lld", (long long)c->hidden_size,
                    (long long)c->n_heads);
    if (!get_int(r, o, "head_dim", c->hidden_size / c->n_heads, 2, 1024, &c->head_dim))
        return false;
    if (c->head_dim % 2 != 0)
        return fail(r, "head size %lld is odd (rotary embeddings rotate pairs)", (long long)c->head_dim);
    if (c->n_heads % c->n_kv_heads != 0)
        return fail(r, "num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                    (long long)c->n_heads, (long long)c->n_kv_heads);
    return true;
}

/* rope_theta and rope_scaling at the top level, or rope_parameters. */
static bool read_rope(const struct reader *r, struct hf_config *c)
{
    json_object *params = json_get(r->root, "rope_parameters");
    if (params && !json_object_is_type(params, json_type_object))
        return fail(r, "'rope_parameters' is not an object");
    json_object *scaling = params ? params : json_get(r->root, "rope_scaling");
    if (scaling && !json_object_is_type(scaling, json_type_object))
        return fail(r, "'rope_scaling' is not an object");
    if (!get_positive(r, params ? params : r->root, "rope_theta", 10000.0, &c->rope_theta))
        return false;
    c->rope_linear_factor = 0;
    const char *type = NULL;
    if (scaling && (!get_string(r, scaling, "rope_type", &type) || (!type && !get_string(r, scaling, "type", &type))))
        return false;
    if (!type || strcmp(type, "default") == 0)
        return true;
    if (strcmp(type, "linear") != 0)
        return fail(r, "rope scaling '%.32s' is not supported (only linear)", type);
    if (!json_get(scaling, "factor"))
        return fail(r, "linear rope scaling without a 'factor'");
    return get_positive(r, scaling, "factor", 1.0, &c->rope_linear_factor);
}

/* What the engine has no code for. */
static bool refuse_unsupported(const struct reader *r, const struct hf_config *c)
{
    const char *act;
    bool attention_bias, mlp_bias, sliding;
    if (json_get(r->root, "quantization_config"))
        return fail(r, "quantized checkpoints ('quantization_config') are not supported");
    if (!get_string(r, r->root, "hidden_act", &act))
        return false;
    if (act && strcmp(act, "silu") != 0)
        return fail(r, "hidden_act '%.32s' is not supported (silu)", act);
    if (!get_bool(r, r->root, "attention_bias", false, &attention_bias) ||
        !get_bool(r, r->root, "mlp_bias", false, &mlp_bias) ||
        !get_bool(r, r->root, "use_sliding_window", false, &sliding))
        return false;
    if (c->arch == HF_LLAMA && (attention_bias || mlp_bias))
        return fail(r, "Llama with %s biases is not supported", attention_bias ? "attention" : "MLP");
    if (c->arch == HF_QWEN2 && sliding)
        return fail(r, "use_sliding_window is not supported");
    return true;
}

static bool parse_config(const struct reader *r, struct hf_config *c)
{
    if (!json_object_is_type(r->root, json_type_object))
        return fail(r, "not a JSON object");
    return read_arch(r, c) && read_shape(r, c) && read_rope(r, c) && refuse_unsupported(r, c) &&
           get_positive(r, r->root, "rms_norm_eps", 1e-6, &c->rms_norm_eps) &&
           get_bool(r, r->root, "tie_word_embeddings", false, &c->tie_word_embeddings) &&
           get_token_id(r, r->root, "bos_token_id", &c->bos_id) &&
           get_token_id(r, r->root, "eos_token_id", &c->eos_id);
}

/* generation_config.json fills the ids config.json leaves out. */
static bool parse_generation(const struct reader *r, struct hf_config *c)
{
    int64_t bos, eos;
    if (!json_object_is_type(r->root, json_type_object))
        return fail(r, "not a JSON object");
    if (!get_token_id(r, r->root, "bos_token_id", &bos) || !get_token_id(r, r->root, "eos_token_id", &eos))
        return false;
    if (c->bos_id < 0)
        c->bos_id = bos;
    if (c->eos_id < 0)
        c->eos_id = eos;
    return true;
}

/* Takes ownership of both trees (gen may be NULL). */
static bool read_both(const struct reader *r, const struct reader *g, struct hf_config *c)
{
    memset(c, 0, sizeof *c);
    bool ok = parse_config(r, c) && (!g->root || parse_generation(g, c));
    json_object_put(r->root);
    json_object_put(g->root);
    return ok;
}

bool hf_config_parse(const char *name, const char *config_json, size_t len, const char *gen_name,
                     const char *generation_json, size_t gen_len, struct hf_config *c, char *err,
                     size_t errlen)
{
    struct reader r = {name, json_parse_text(name, config_json, len, err, errlen), err, errlen};
    struct reader g = {gen_name, NULL, err, errlen};
    if (r.root && generation_json && !(g.root = json_parse_text(gen_name, generation_json, gen_len, err, errlen))) {
        json_object_put(r.root);
        return false;
    }
    return r.root && read_both(&r, &g, c);
}

bool hf_config_load(const char *dir, struct hf_config *c, char *err, size_t errlen)
{
    char path[4096], gen_path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(gen_path, sizeof gen_path, "%s/generation_config.json", dir);
    struct reader r = {path, json_read_file(path, MAX_CONFIG_BYTES, err, errlen), err, errlen};
    struct reader g = {gen_path, NULL, err, errlen};
    if (r.root && access(gen_path, F_OK) == 0 && !(g.root = json_read_file(gen_path, MAX_CONFIG_BYTES, err, errlen))) {
        json_object_put(r.root);
        return false;
    }
    return r.root && read_both(&r, &g, c);
}
