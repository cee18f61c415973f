/* GGUF -> GGUF (convert.h): re-quantize to another type, or re-pack as is.
 *
 * Every key is copied untouched (tokenizer, exit heads' metadata, anything we
 * do not know), then general.file_type is set as llama.cpp's quantizer does.
 * Without a requested type every tensor keeps its type and its bytes; with
 * one, the plan's policy decides each tensor's type, and a tensor already of
 * that type is still copied byte for byte. The input stays mapped until the
 * output is written; tensors stream from the mapping, whose pages the plan
 * hands back as each is done. */
#include "convert.h"

#include <stdio.h>

/* What llama.cpp reports for a file without general.file_type: the type of
 * most of its tensors (first one on ties). */
static uint32_t guessed_file_type(const struct gguf_file *f)
{
    enum dtype types[] = {DTYPE_F32, DTYPE_F16, DTYPE_Q4_0, DTYPE_Q4_1, DTYPE_Q8_0, DTYPE_BF16};
    int64_t count[sizeof types / sizeof types[0]] = {0}, best = -1;
    enum dtype most = DTYPE_F32;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++)
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
            if (gguf_tensor_at(f, i)->type == types[k] && ++count[k] > best) {
                best = count[k];
                most = types[k];
            }
    return convert_file_type(most);
}

bool convert_from_gguf(const char *in, const char *out,
                       const struct convert_options *opts, char *err, size_t errlen)
{
    struct gguf_file *f = gguf_open(in, err, errlen);
    if (!f)
        return false;
    struct convert_plan *p = convert_plan_new(opts);
    if (!p) {
        snprintf(err, errlen, "%s: out of memory", in);
        gguf_close(f);
        return false;
    }
    struct gguf_writer *w = convert_plan_writer(p);
    gguf_copy_kv(w, f);
    if (opts->type_given)
        gguf_set_u32(w, "general.file_type", convert_file_type(opts->type));
    else if (gguf_find_key(f, "general.file_type") < 0)
        gguf_set_u32(w, "general.file_type", guessed_file_type(f));
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(f, i);
        convert_add_mapped(p, t->name, t->type, t->n_dims, t->ne, t->data, !opts->type_given);
    }
    bool ok = convert_plan_write(p, out, err, errlen);
    convert_plan_free(p);
    gguf_close(f);
    return ok;
}
