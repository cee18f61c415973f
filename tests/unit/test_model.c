/* model_load refuses models that are wrong in any hyperparameter or tensor,
 * naming the file and what is wrong; a well-formed model loads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/model.h"

enum { DIM = 64, HEADS = 4, KV = 2, FFN = 96, VOCAB = 40, LAYERS = 2 };

/* What to break in the model written by write_model. */
struct defect {
    const char *arch;          /* general.architecture */
    const char *skip_tensor;   /* leave this tensor out */
    const char *bad_shape;     /* give this tensor one row too many */
    int head_count_kv;         /* override */
    bool no_block_count;
    const char *rope_scaling;  /* llama.rope.scaling.type */
};

static float zeros[FFN * DIM + VOCAB * DIM];

static void add(struct gguf_writer *w, const struct defect *d, const char *name, uint64_t cols,
                uint64_t rows)
{
    if (d->skip_tensor && !strcmp(name, d->skip_tensor))
        return;
    if (d->bad_shape && !strcmp(name, d->bad_shape))
        rows++;
    uint64_t ne[2] = {cols, rows};
    gguf_add_tensor(w, name, DTYPE_F32, rows > 1 ? 2 : 1, ne, zeros, NULL, NULL);
}

static void write_model(const char *path, const struct defect *d)
{
    struct gguf_writer *w = gguf_writer_new();
    const char *arch = d->arch ? d->arch : "llama";
    char key[96];
#define KEY(k) (snprintf(key, sizeof key, "%s.%s", arch, k), key)
    gguf_set_str(w, "general.architecture", arch);
    if (!d->no_block_count)
        gguf_set_u32(w, KEY("block_count"), LAYERS);
    gguf_set_u32(w, KEY("embedding_length"), DIM);
    gguf_set_u32(w, KEY("feed_forward_length"), FFN);
    gguf_set_u32(w, KEY("attention.head_count"), HEADS);
    gguf_set_u32(w, KEY("attention.head_count_kv"), d->head_count_kv ? d->head_count_kv : KV);
    if (d->rope_scaling)
        gguf_set_str(w, KEY("rope.scaling.type"), d->rope_scaling);
#undef KEY
    add(w, d, "token_embd.weight", DIM, VOCAB);
    add(w, d, "output_norm.weight", DIM, 1);
    int kv = KV * (DIM / HEADS);
    for (int l = 0; l < LAYERS; l++) {
        char n[64];
#define T(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        add(w, d, T("attn_norm.weight"), DIM, 1);
        add(w, d, T("ffn_norm.weight"), DIM, 1);
        add(w, d, T("attn_q.weight"), DIM, DIM);
        add(w, d, T("attn_k.weight"), DIM, kv);
        add(w, d, T("attn_v.weight"), DIM, kv);
        add(w, d, T("attn_output.weight"), DIM, DIM);
        add(w, d, T("ffn_gate.weight"), DIM, FFN);
        add(w, d, T("ffn_up.weight"), DIM, FFN);
        add(w, d, T("ffn_down.weight"), FFN, DIM);
#undef T
    }
    char err[256];
    if (!gguf_writer_write(w, path, NULL, NULL, err, sizeof err))
        fail_msg("%s", err);
    gguf_writer_free(w);
}

/* Loads the model with the defect; NULL defect text means it must load. */
static void expect(const struct defect *d, const char *want)
{
    char dir[] = "/tmp/tandem-model-XXXXXX", path[64], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    write_model(path, d);
    struct model *m = model_load(path, err, sizeof err);
    if (!want) {
        if (!m)
            fail_msg("a good model failed: %s", err);
        assert_int_equal(m->cfg.n_layers, LAYERS);
        assert_int_equal(m->cfg.vocab, VOCAB);
        assert_true(m->cfg.tied_output);
        model_free(m);
    } else {
        assert_null(m);
        if (!strstr(err, want) || !strstr(err, path))
            fail_msg("error '%s' should name %s and say '%s'", err, path, want);
    }
    unlink(path);
    rmdir(dir);
}

static void test_good_model_loads(void **s) { (void)s; expect(&(struct defect){0}, NULL); }

static void test_unsupported_arch(void **s)
{
    (void)s;
    expect(&(struct defect){.arch = "gpt2"}, "architecture 'gpt2' is not supported");
}

static void test_missing_tensor(void **s)
{
    (void)s;
    expect(&(struct defect){.skip_tensor = "blk.1.ffn_up.weight"}, "missing tensor 'blk.1.ffn_up.weight'");
    expect(&(struct defect){.skip_tensor = "output_norm.weight"}, "missing tensor 'output_norm.weight'");
}

static void test_wrong_shape(void **s)
{
    (void)s;
    expect(&(struct defect){.bad_shape = "blk.0.attn_k.weight"}, "tensor 'blk.0.attn_k.weight' has shape");
    expect(&(struct defect){.bad_shape = "blk.1.attn_norm.weight"}, "tensor 'blk.1.attn_norm.weight' has shape");
}

static void test_bad_hyperparameters(void **s)
{
    (void)s;
    expect(&(struct defect){.no_block_count = true}, "missing metadata 'llama.block_count'");
    expect(&(struct defect){.head_count_kv = 3}, "not a multiple of head_count_kv 3");
    expect(&(struct defect){.rope_scaling = "yarn"}, "rope scaling type 'yarn' is not supported");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_model_loads), cmocka_unit_test(test_unsupported_arch),
        cmocka_unit_test(test_missing_tensor),   cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_bad_hyperparameters),
    };
    return cmocka_run_group_tests_name("model loading", tests, NULL, NULL);
}
