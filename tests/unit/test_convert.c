/* tandem convert's plan and its GGUF and llama2.c readers (weights/convert*.c):
 * the type policy; GGUF -> GGUF at the same type changes no byte; every
 * quantized type stays within its format's error bound; llama2.c checkpoints
 * of both layouts, written here from export.py's description, come out with
 * every value under the right name; a tokenizer.bin made from the committed
 * stories260K vocabulary comes back as that vocabulary; and bad input of every
 * kind fails with one line naming the file and the problem, leaving neither
 * OUT nor OUT.tmp. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/quant.h"
#include "weights/convert.h"
#include "weights/gguf_internal.h"

#define FIXTURES "tests/golden/fixtures/"
#define VOCAB_FIXTURE "tests/tokenizer/stories260K-vocab.gguf"

static const char *const tiny_models[] = {
    "tiny-llama-f32", "tiny-llama-f16", "tiny-llama-bf16", "tiny-llama-q8_0", "tiny-llama-q4_0",
    "tiny-llama-q4_1", "tiny-qwen2-f32", "tiny-qwen2-f16", "tiny-qwen2-bf16", "tiny-qwen2-q8_0",
    "tiny-qwen2-q4_0", "tiny-qwen2-q4_1"};
static const enum dtype all_types[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16,
                                       DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_1};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- files ---- */

static char tmp_dir[64];

static void tmp_path(char out[256], const char *name)
{
    snprintf(out, 256, "%s/%s", tmp_dir, name);
}

static int make_tmp_dir(void **state)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_convert_XXXXXX", base);
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp_dir(void **state)
{
    DIR *dir = opendir(tmp_dir);
    if (!dir)
        return -1;
    struct dirent *e;
    char path[sizeof tmp_dir + sizeof e->d_name + 1];
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
        unlink(path);
    }
    closedir(dir);
    return rmdir(tmp_dir);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void check_contains(const char *err, const char *needle)
{
    if (!strstr(err, needle) || strchr(err, '\n'))
        fail_msg("error \"%s\" lacks \"%s\" or is not one line", err, needle);
}

/* A failed conversion: false, an error naming `names` and saying `what`,
 * and nothing at out or out.tmp. */
static void check_failed(bool ok, const char *err, const char *names, const char *what,
                         const char *out)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    if (ok)
        fail_msg("conversion succeeded; expected an error with \"%s\"", what);
    check_contains(err, names);
    check_contains(err, what);
    assert_false(file_exists(out));
    assert_false(file_exists(tmp));
}

static struct gguf_file *open_ok(const char *path)
{
    char err[512];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    return f;
}

static struct convert_options typed(enum dtype t)
{
    return (struct convert_options){.type = t, .type_given = true};
}

/* ---- the type policy ---- */

static void test_type_policy(void **state)
{
    const uint64_t vec[1] = {64}, mat[2] = {64, 96}, odd[2] = {172, 64}, cube[3] = {64, 2, 3};
    for (size_t i = 0; i < N_OF(all_types); i++) {
        struct convert_options o = typed(all_types[i]);
        struct convert_plan *p = convert_plan_new(&o);
        assert_int_equal(convert_plan_type_for(p, 1, vec), DTYPE_F32);
        assert_int_equal(convert_plan_type_for(p, 2, mat), all_types[i]);
        assert_int_equal(convert_plan_type_for(p, 3, cube), all_types[i]);
        /* 172 is not a whole number of 32-element blocks */
        enum dtype want = dtype_block_elems(all_types[i]) > 1 ? DTYPE_F16 : all_types[i];
        assert_int_equal(convert_plan_type_for(p, 2, odd), want);
        convert_plan_free(p);
    }
    struct convert_options none = {.type = DTYPE_Q4_0};
    struct convert_plan *p = convert_plan_new(&none);
    assert_int_equal(convert_plan_type_for(p, 2, mat), DTYPE_F16);
    assert_int_equal(convert_plan_type_for(p, 1, vec), DTYPE_F32);
    convert_plan_free(p);
    /* llama.cpp's llama_ftype numbers */
    assert_int_equal(convert_file_type(DTYPE_F32), 0);
    assert_int_equal(convert_file_type(DTYPE_F16), 1);
    assert_int_equal(convert_file_type(DTYPE_Q4_0), 2);
    assert_int_equal(convert_file_type(DTYPE_Q4_1), 3);
    assert_int_equal(convert_file_type(DTYPE_Q8_0), 7);
    assert_int_equal(convert_file_type(DTYPE_BF16), 32);
}

/* ---- GGUF -> GGUF ---- */

static uint32_t file_type_of(const struct gguf_file *f)
{
    uint32_t v = 0xffffffffu;
    assert_true(gguf_get_u32(f, "general.file_type", &v));
    return v;
}

/* Every key of a is in b with the same encoded value, general.file_type
 * aside; same tensors in the same order with the same type and bytes. */
static void check_same_file(const struct gguf_file *a, const struct gguf_file *b)
{
    for (int64_t i = 0; i < gguf_n_kv(a); i++) {
        const char *key = gguf_key(a, i);
        if (!strcmp(key, "general.file_type"))
            continue;
        int64_t j = gguf_find_key(b, key);
        if (j < 0)
            fail_msg("key %s lost", key);
        size_t la, lb;
        const unsigned char *va = gguf_kv_encoded(a, i, &la), *vb = gguf_kv_encoded(b, j, &lb);
        if (la != lb || memcmp(va, vb, la))
            fail_msg("key %s changed", key);
    }
    assert_int_equal(gguf_n_tensors(a), gguf_n_tensors(b));
    for (int64_t i = 0; i < gguf_n_tensors(a); i++) {
        const struct gguf_tensor *ta = gguf_tensor_at(a, i), *tb = gguf_tensor_at(b, i);
        assert_string_equal(ta->name, tb->name);
        assert_int_equal(ta->type, tb->type);
        assert_int_equal(ta->n_dims, tb->n_dims);
        assert_memory_equal(ta->ne, tb->ne, sizeof ta->ne);
        assert_int_equal(ta->nbytes, tb->nbytes);
        if (memcmp(ta->data, tb->data, ta->nbytes))
            fail_msg("tensor %s: bytes differ", ta->name);
    }
}

static void test_gguf_same_type_is_byte_identical(void **state)
{
    char in[256], out[256], err[512] = "";
    tmp_path(out, "same.gguf");
    for (size_t m = 0; m < N_OF(tiny_models); m++) {
        snprintf(in, sizeof in, FIXTURES "%s.gguf", tiny_models[m]);
        struct gguf_file *src = open_ok(in);
        enum dtype t = gguf_find_tensor(src, "token_embd.weight")->type;
        /* without --type (file_type guessed from the tensors, as llama.cpp
         * does, since these files have none) and with --type = their type */
        struct convert_options keep = {.type = DTYPE_F16}, same = typed(t);
        const struct convert_options *runs[] = {&keep, &same};
        for (size_t r = 0; r < N_OF(runs); r++) {
            if (!convert_from_gguf(in, out, runs[r], err, sizeof err))
                fail_msg("%s", err);
            struct gguf_file *dst = open_ok(out);
            check_same_file(src, dst);
            check_same_file(dst, src);
            assert_int_equal(file_type_of(dst), convert_file_type(t));
            gguf_close(dst);
        }
        gguf_close(src);
    }
}

/* Re-quantized tensors are what the reference quantizer makes of the
 * source's values, 1-D tensors stay f32 and untouched, and the file says
 * its type. Covers the dequantize-then-quantize path from every type. */
static void test_gguf_requantize(void **state)
{
    char in[256], out[256], err[512] = "";
    tmp_path(out, "requant.gguf");
    for (size_t m = 0; m < N_OF(tiny_models); m++) {
        snprintf(in, sizeof in, FIXTURES "%s.gguf", tiny_models[m]);
        struct gguf_file *src = open_ok(in);
        for (size_t k = 0; k < N_OF(all_types); k++) {
            struct convert_options o = typed(all_types[k]);
            if (!convert_from_gguf(in, out, &o, err, sizeof err))
                fail_msg("%s", err);
            struct gguf_file *dst = open_ok(out);
            assert_int_equal(file_type_of(dst), convert_file_type(all_types[k]));
            for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
                const struct gguf_tensor *s = gguf_tensor_at(src, i), *d = gguf_tensor_at(dst, i);
                assert_string_equal(s->name, d->name);
                assert_int_equal(d->type, s->n_dims == 1 ? DTYPE_F32 : all_types[k]);
                size_t n = (size_t)(s->nbytes / dtype_row_bytes(s->type, s->ne[0]) * s->ne[0]);
                float *x = malloc(sizeof(float) * n);
                unsigned char *want = malloc(d->nbytes);
                dequantize_row(s->type, s->data, x, (int64_t)n);
                for (size_t r = 0; r < n / s->ne[0]; r++)
                    quantize_row(d->type, x + r * s->ne[0],
                                 want + r * dtype_row_bytes(d->type, s->ne[0]), (int64_t)s->ne[0]);
                if (d->type == s->type) /* copied, not re-rounded */
                    memcpy(want, s->data, d->nbytes);
                if (memcmp(want, d->data, d->nbytes))
                    fail_msg("%s -> %s: tensor %s differs from the reference quantizer",
                             tiny_models[m], dtype_name(all_types[k]), s->name);
                free(x);
                free(want);
            }
            gguf_close(dst);
        }
        gguf_close(src);
    }
}

/* ---- quantization error bounds, through convert_add_rows ---- */

/* 5000 rows of 64: more than one chunk of rows. Values of every scale, a
 * block of zeros (scale 0) and a block with one outlier. */
#define BOUND_ROWS 5000
#define BOUND_COLS 64

static float bound_value(uint64_t i)
{
    uint64_t row = i / BOUND_COLS, block = i / QK;
    if (block % 97 == 5)
        return 0.0f;
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(row * 40503u);
    float v = ((float)(h % 20001) - 10000.0f) / 10000.0f;
    if (block % 89 == 7 && i % QK == 3)
        v *= 30.0f;
    return v * ldexpf(1.0f, (int)(row % 20) - 14); /* 2^-14 .. 2^5: inside f16's range */
}

static bool bound_rows(void *ctx, uint64_t row0, uint64_t n_rows, float *dst, char *err,
                       size_t errlen)
{
    for (uint64_t i = 0; i < n_rows * BOUND_COLS; i++)
        dst[i] = bound_value(row0 * BOUND_COLS + i);
    return true;
}

/* |x - x̂| for one block, against the format's bound. d and m are the
 * exact float scale and minimum the quantizer computes; the stored ones are
 * rounded to f16, which adds |q| * |d - d̂| (+ |m - m̂|). The float
 * arithmetic of quantizing and dequantizing adds a few ulps of the block's
 * largest value, hence the slack of 2e-4 steps. */
static void check_block(enum dtype t, const float *x, const float *y, int64_t at)
{
    float amax = 0, max = 0, lo = x[0], hi = x[0];
    for (int j = 0; j < QK; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
        lo = fminf(lo, x[j]);
        hi = fmaxf(hi, x[j]);
    }
    for (int j = 0; j < QK; j++) {
        double err = fabs((double)x[j] - y[j]), bound;
        if (t == DTYPE_Q8_0) {
            double d = amax / 127.0f, dh = fp16_to_f32(f32_to_fp16((float)d));
            bound = d / 2 + 127 * fabs(d - dh) + 2e-4 * d;
        } else if (t == DTYPE_Q4_0) {
            /* grid -8..7 times d = max/-8: values above 7.5 steps are
             * clipped to 7, an error of up to one step */
            double d = max / -8.0f, dh = fp16_to_f32(f32_to_fp16(max / -8.0f));
            bound = (d != 0 && x[j] / d > 7.5 ? fabs(d) : fabs(d) / 2) + 8 * fabs(d - dh) +
                    2e-4 * fabs(d);
        } else if (t == DTYPE_Q4_1) {
            double d = (hi - lo) / 15.0f, dh = fp16_to_f32(f32_to_fp16((float)d));
            double mh = fp16_to_f32(f32_to_fp16(lo));
            bound = d / 2 + 15 * fabs(d - dh) + fabs(lo - mh) + 2e-4 * d;
        } else if (t == DTYPE_F16) {
            bound = fabs(x[j]) * ldexp(1, -11) + ldexp(1, -25); /* half an ulp; subnormals */
        } else if (t == DTYPE_BF16) {
            bound = fabs(x[j]) * ldexp(1, -8);
        } else {
            bound = 0;
        }
        if (err > bound)
            fail_msg("%s: element %lld: %.9g -> %.9g, error %.3g over the bound %.3g",
                     dtype_name(t), (long long)(at + j), x[j], y[j], err, bound);
    }
}

static void test_quantization_error_bounds(void **state)
{
    char out[256], err[512] = "";
    tmp_path(out, "bounds.gguf");
    const uint64_t ne[2] = {BOUND_COLS, BOUND_ROWS};
    float *x = malloc(sizeof(float) * BOUND_ROWS * BOUND_COLS);
    float *y = malloc(sizeof(float) * BOUND_ROWS * BOUND_COLS);
    bound_rows(NULL, 0, BOUND_ROWS, x, NULL, 0);
    for (size_t k = 0; k < N_OF(all_types); k++) {
        struct convert_options o = typed(all_types[k]);
        struct convert_plan *p = convert_plan_new(&o);
        convert_add_rows(p, "w", 2, ne, bound_rows, NULL, NULL);
        if (!convert_plan_write(p, out, err, sizeof err))
            fail_msg("%s", err);
        convert_plan_free(p);
        struct gguf_file *f = open_ok(out);
        const struct gguf_tensor *t = gguf_find_tensor(f, "w");
        assert_int_equal(t->type, all_types[k]);
        dequantize_row(t->type, t->data, y, BOUND_ROWS * BOUND_COLS);
        for (int64_t b = 0; b < BOUND_ROWS * BOUND_COLS; b += QK)
            check_block(t->type, x + b, y + b, b);
        gguf_close(f);
    }
    free(x);
    free(y);
}

/* convert_add_bytes from ordinary memory: copied where the policy keeps the
 * type (1-D, or f32 asked for), quantized by the reference otherwise, and the
 * memory is left as it was. */
static void test_add_bytes_from_memory(void **state)
{
    char out[256], err[512] = "";
    tmp_path(out, "bytes.gguf");
    enum { ROWS = 300 };
    const uint64_t mat[2] = {BOUND_COLS, ROWS}, vec[1] = {BOUND_COLS};
    float *x = malloc(sizeof(float) * ROWS * BOUND_COLS);
    float *saved = malloc(sizeof(float) * ROWS * BOUND_COLS);
    bound_rows(NULL, 0, ROWS, x, NULL, 0);
    memcpy(saved, x, sizeof(float) * ROWS * BOUND_COLS);
    unsigned char *want = malloc(sizeof(float) * ROWS * BOUND_COLS);
    for (size_t k = 0; k < N_OF(all_types); k++) {
        struct convert_options o = typed(all_types[k]);
        struct convert_plan *p = convert_plan_new(&o);
        convert_add_bytes(p, "m", DTYPE_F32, 2, mat, x);
        convert_add_bytes(p, "v", DTYPE_F32, 1, vec, x);
        if (!convert_plan_write(p, out, err, sizeof err))
            fail_msg("%s", err);
        convert_plan_free(p);
        struct gguf_file *f = open_ok(out);
        const struct gguf_tensor *m = gguf_find_tensor(f, "m"), *v = gguf_find_tensor(f, "v");
        assert_int_equal(m->type, all_types[k]);
        assert_int_equal(v->type, DTYPE_F32);
        assert_memory_equal(v->data, x, sizeof(float) * BOUND_COLS);
        size_t row = dtype_row_bytes(m->type, BOUND_COLS);
        for (int r = 0; r < ROWS; r++)
            quantize_row(m->type, x + r * BOUND_COLS, want + r * row, BOUND_COLS);
        assert_memory_equal(m->data, want, row * ROWS);
        gguf_close(f);
    }
    assert_memory_equal(x, saved, sizeof(float) * ROWS * BOUND_COLS);
    free(x);
    free(saved);
    free(want);
}

/* A reader whose rows fail midway: its message is the error, and no file. */
static bool failing_rows(void *ctx, uint64_t row0, uint64_t n_rows, float *dst, char *err,
                         size_t errlen)
{
    if (row0 + n_rows > 4096) {
        snprintf(err, errlen, "src.bin: read error at row %llu", (unsigned long long)row0);
        return false;
    }
    return bound_rows(ctx, row0, n_rows, dst, err, errlen);
}

static int freed_contexts;
static void count_free(void *ctx) { freed_contexts += ctx != NULL; }

static void test_failing_source_leaves_nothing(void **state)
{
    char out[256], err[512] = "";
    tmp_path(out, "fails.gguf");
    const uint64_t ne[2] = {BOUND_COLS, BOUND_ROWS};
    for (size_t k = 0; k < N_OF(all_types); k++) { /* direct f32 rows and chunked ones */
        struct convert_options o = typed(all_types[k]);
        struct convert_plan *p = convert_plan_new(&o);
        freed_contexts = 0;
        convert_add_rows(p, "ok", 2, ne, bound_rows, &freed_contexts, count_free);
        convert_add_rows(p, "bad", 2, ne, failing_rows, &freed_contexts, count_free);
        bool ok = convert_plan_write(p, out, err, sizeof err);
        convert_plan_free(p);
        assert_int_equal(freed_contexts, 2);
        check_failed(ok, err, "src.bin", "read error at row", out);
    }
    /* misuse is reported at write time, naming the tensor */
    struct convert_options o = typed(DTYPE_Q8_0);
    struct convert_plan *p = convert_plan_new(&o);
    const uint64_t zero[2] = {64, 0};
    convert_add_rows(p, "empty", 2, zero, bound_rows, NULL, NULL);
    check_failed(convert_plan_write(p, out, err, sizeof err), err, "'empty'", "dimension is 0", out);
    convert_plan_free(p);
}

/* ---- llama2.c checkpoints, written from export.py's description ---- */

struct l2c {
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
};
/* hidden 72 is not a multiple of 32: ffn_down falls back to f16 */
static const struct l2c TINY = {64, 72, 2, 4, 2, 512, 16};

/* The value of element i of a GGUF tensor: what the checkpoint stores there. */
static float weight_value(const char *name, uint64_t i)
{
    uint32_t h = 2166136261u;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    h ^= (uint32_t)i * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return ((float)(h % 20001) - 10000.0f) / 10000.0f;
}

static void put_values(FILE *fp, const char *name, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        float v = name ? weight_value(name, i) : NAN; /* NAN: must never be read */
        fwrite(&v, sizeof v, 1, fp);
    }
}

static void put_layers(FILE *fp, const struct l2c *c, const char *fmt, uint64_t n)
{
    for (int l = 0; l < c->layers; l++) {
        char name[64];
        snprintf(name, sizeof name, fmt, l);
        put_values(fp, name, n);
    }
}

/* Writes a checkpoint in the legacy (version 0) or version 1 layout. */
static void write_llama2c(const char *path, const struct l2c *c, int version, bool shared)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t dim = c->dim, hd = c->dim / c->heads, kv = hd * c->kv_heads, ffn = c->hidden;
    int32_t fields[7] = {c->dim, c->hidden, c->layers, c->heads, c->kv_heads,
                         version == 0 && !shared ? -c->vocab : c->vocab, c->seq};
    if (version == 1) {
        unsigned char header[256] = {0};
        uint32_t magic = 0x616b3432;
        int32_t v = 1;
        memcpy(header, &magic, 4);
        memcpy(header + 4, &v, 4);
        memcpy(header + 8, fields, sizeof fields);
        header[36] = shared;
        fwrite(header, 1, sizeof header, fp);
        put_layers(fp, c, "blk.%d.attn_norm.weight", dim);
        put_layers(fp, c, "blk.%d.ffn_norm.weight", dim);
        put_values(fp, "output_norm.weight", dim);
        put_values(fp, "token_embd.weight", dim * c->vocab);
    } else {
        fwrite(fields, sizeof fields, 1, fp);
        put_values(fp, "token_embd.weight", dim * c->vocab);
        put_layers(fp, c, "blk.%d.attn_norm.weight", dim);
    }
    put_layers(fp, c, "blk.%d.attn_q.weight", dim * dim);
    put_layers(fp, c, "blk.%d.attn_k.weight", dim * kv);
    put_layers(fp, c, "blk.%d.attn_v.weight", dim * kv);
    put_layers(fp, c, "blk.%d.attn_output.weight", dim * dim);
    if (version == 0)
        put_layers(fp, c, "blk.%d.ffn_norm.weight", dim);
    put_layers(fp, c, "blk.%d.ffn_gate.weight", dim * ffn);
    put_layers(fp, c, "blk.%d.ffn_down.weight", dim * ffn);
    put_layers(fp, c, "blk.%d.ffn_up.weight", dim * ffn);
    if (version == 0) {
        put_values(fp, "output_norm.weight", dim);
        put_values(fp, NULL, (uint64_t)c->seq * hd); /* the two RoPE tables */
    }
    if (!shared)
        put_values(fp, "output.weight", dim * c->vocab);
    assert_int_equal(fclose(fp), 0);
}

static void check_tensor_values(const struct gguf_file *f, const char *name, uint64_t ne0,
                                uint64_t ne1)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t)
        fail_msg("tensor %s missing", name);
    assert_int_equal(t->type, DTYPE_F32);
    assert_int_equal(t->n_dims, ne1 > 1 ? 2 : 1);
    assert_int_equal(t->ne[0], ne0);
    assert_int_equal(t->ne[1], ne1);
    const float *v = t->data;
    for (uint64_t i = 0; i < ne0 * ne1; i++)
        if (v[i] != weight_value(name, i))
            fail_msg("%s[%llu] = %g, the checkpoint has %g there", name, (unsigned long long)i,
                     v[i], weight_value(name, i));
}

static void check_u32(const struct gguf_file *f, const char *key, uint32_t want)
{
    uint32_t v;
    if (!gguf_get_u32(f, key, &v) || v != want)
        fail_msg("%s is not %u", key, want);
}

static void check_llama2c_output(const char *out, const struct l2c *c, bool shared)
{
    struct gguf_file *f = open_ok(out);
    uint64_t dim = c->dim, kv = dim / c->heads * c->kv_heads;
    assert_string_equal(gguf_get_str(f, "general.architecture"), "llama");
    check_u32(f, "llama.embedding_length", c->dim);
    check_u32(f, "llama.feed_forward_length", c->hidden);
    check_u32(f, "llama.block_count", c->layers);
    check_u32(f, "llama.attention.head_count", c->heads);
    check_u32(f, "llama.attention.head_count_kv", c->kv_heads);
    check_u32(f, "llama.context_length", c->seq);
    check_u32(f, "llama.rope.dimension_count", c->dim / c->heads);
    check_u32(f, "general.file_type", 0);
    float eps, theta;
    assert_true(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps));
    assert_true(gguf_get_f32(f, "llama.rope.freq_base", &theta));
    assert_true(eps == 1e-5f && theta == 10000.0f);
    assert_int_equal(gguf_n_tensors(f), 2 + !shared + 9 * c->layers);
    check_tensor_values(f, "token_embd.weight", dim, c->vocab);
    check_tensor_values(f, "output_norm.weight", dim, 1);
    if (shared)
        assert_null(gguf_find_tensor(f, "output.weight"));
    else
        check_tensor_values(f, "output.weight", dim, c->vocab);
    for (int l = 0; l < c->layers; l++) {
        char name[64];
#define CHECK(n, a, b) (snprintf(name, sizeof name, "blk.%d." n, l), check_tensor_values(f, name, a, b))
        CHECK("attn_norm.weight", dim, 1);
        CHECK("ffn_norm.weight", dim, 1);
        CHECK("attn_q.weight", dim, dim);
        CHECK("attn_k.weight", dim, kv);
        CHECK("attn_v.weight", dim, kv);
        CHECK("attn_output.weight", dim, dim);
        CHECK("ffn_gate.weight", dim, c->hidden);
        CHECK("ffn_down.weight", c->hidden, dim);
        CHECK("ffn_up.weight", dim, c->hidden);
#undef CHECK
    }
    gguf_close(f);
}

static void test_llama2c_layouts(void **state)
{
    char in[256], out[256], err[512] = "";
    tmp_path(in, "model.bin");
    tmp_path(out, "model.gguf");
    struct convert_options o = typed(DTYPE_F32);
    for (int version = 0; version <= 1; version++)
        for (int shared = 0; shared <= 1; shared++) {
            write_llama2c(in, &TINY, version, shared);
            if (!convert_from_llama2c(in, out, &o, err, sizeof err))
                fail_msg("version %d, shared %d: %s", version, shared, err);
            check_llama2c_output(out, &TINY, shared);
        }
    /* quantized: matrices q8_0 except ffn_down (rows of 72 -> f16), norms f32 */
    o = typed(DTYPE_Q8_0);
    if (!convert_from_llama2c(in, out, &o, err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *f = open_ok(out);
    assert_int_equal(gguf_find_tensor(f, "blk.1.attn_q.weight")->type, DTYPE_Q8_0);
    assert_int_equal(gguf_find_tensor(f, "blk.1.ffn_down.weight")->type, DTYPE_F16);
    assert_int_equal(gguf_find_tensor(f, "blk.1.ffn_norm.weight")->type, DTYPE_F32);
    check_u32(f, "general.file_type", 7);
    gguf_close(f);
}

static void write_header(const char *path, const int32_t fields[7])
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite(fields, sizeof(int32_t), 7, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_llama2c_bad_checkpoints(void **state)
{
    char in[256], out[256], err[512] = "";
    tmp_path(in, "bad.bin");
    tmp_path(out, "bad.gguf");
    struct convert_options o = typed(DTYPE_F32);

    char missing[256];
    tmp_path(missing, "missing.bin");
    check_failed(convert_from_llama2c(missing, out, &o, err, sizeof err), err, missing,
                 "No such file or directory", out);

    write_llama2c(in, &TINY, 0, true);
    assert_int_equal(truncate(in, 28 + 4 * 1000), 0);
    check_failed(convert_from_llama2c(in, out, &o, err, sizeof err), err, in, "truncated", out);

    write_llama2c(in, &TINY, 1, false);
    FILE *fp = fopen(in, "ab");
    fputs("junk", fp);
    fclose(fp);
    check_failed(convert_from_llama2c(in, out, &o, err, sizeof err), err, in,
                 "longer than its header says", out);

    static const struct {
        int32_t fields[7];
        const char *what;
    } headers[] = {
        {{1 << 30, 72, 2, 4, 2, 512, 16}, "dim = 1073741824 is not in"},
        {{64, 72, 0, 4, 2, 512, 16}, "n_layers = 0 is not in"},
        {{64, 72, 2, 0, 2, 512, 16}, "n_heads = 0 is not in"},
        {{64, 72, 2, 4, 8, 512, 16}, "n_kv_heads = 8 is not in [1, 4]"},
        {{64, 72, 2, 4, 3, 512, 16}, "not a multiple of n_kv_heads 3"},
        {{60, 72, 2, 4, 2, 512, 16}, "even head size"},
        {{64, -5, 2, 4, 2, 512, 16}, "hidden_dim = -5"},
        {{64, 72, 2, 4, 2, INT32_MIN, 16}, "vocab_size = 0"},
        {{64, 72, 2, 4, 2, 512, 0}, "seq_len = 0"},
        {{0x616b3432, 2, 64, 72, 2, 4, 2}, "version 2 is not supported"},
        {{0x616b3432, 1, 64, 72, 2, 4, 2}, "too short for a llama2.c version 1 header"},
    };
    for (size_t i = 0; i < N_OF(headers); i++) {
        write_header(in, headers[i].fields);
        check_failed(convert_from_llama2c(in, out, &o, err, sizeof err), err, in,
                     headers[i].what, out);
    }
    assert_int_equal(truncate(in, 10), 0);
    check_failed(convert_from_llama2c(in, out, &o, err, sizeof err), err, in, "too short", out);

    /* the output cannot be created: its directory does not exist */
    char no_dir[256];
    tmp_path(no_dir, "no/such/dir.gguf");
    write_llama2c(in, &TINY, 0, true);
    check_failed(convert_from_llama2c(in, no_dir, &o, err, sizeof err), err, no_dir,
                 "No such file or directory", no_dir);
}

/* A full disk, simulated by a file size limit. */
static void test_llama2c_disk_full(void **state)
{
    char in[256], out[256], err[512] = "";
    tmp_path(in, "full.bin");
    tmp_path(out, "full.gguf");
    write_llama2c(in, &TINY, 0, false);
    struct convert_options o = typed(DTYPE_F32);
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 64 << 10;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    bool ok = convert_from_llama2c(in, out, &o, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    check_failed(ok, err, out, "File too large", out);
}

/* ---- llama2.c tokenizers ---- */

/* Writes the committed stories260K vocabulary back as llama2.c's export.py
 * writes a tokenizer.bin: "\u2581" as spaces, BOS/EOS wrapped in newlines. */
static void write_tokenizer_from_fixture(const char *path)
{
    struct gguf_file *v = open_ok(VOCAB_FIXTURE);
    enum gguf_value_type et;
    uint64_t n;
    assert_true(gguf_get_arr(v, "tokenizer.ggml.tokens", &et, &n) && n == 512);
    FILE *fp = fopen(path, "wb");
    uint32_t max_len = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            fwrite(&max_len, sizeof max_len, 1, fp);
        for (uint64_t i = 0; i < n; i++) {
            char piece[64] = "";
            const char *s = gguf_arr_str(v, "tokenizer.ggml.tokens", i);
            for (size_t k = 0, o = 0; s[k]; o++)
                if (!strncmp(s + k, "\xe2\x96\x81", 3)) {
                    piece[o] = ' ';
                    k += 3;
                } else {
                    piece[o] = s[k++];
                }
            if (i == 1 || i == 2) {
                char wrapped[64];
                snprintf(wrapped, sizeof wrapped, "\n%s\n", piece);
                strcpy(piece, wrapped);
            }
            uint32_t len = (uint32_t)strlen(piece);
            max_len = len > max_len ? len : max_len;
            float score;
            assert_true(gguf_arr_f32(v, "tokenizer.ggml.scores", i, &score));
            if (pass == 1) {
                fwrite(&score, sizeof score, 1, fp);
                fwrite(&len, sizeof len, 1, fp);
                fwrite(piece, 1, len, fp);
            }
        }
    }
    fclose(fp);
    gguf_close(v);
}

static void test_llama2c_tokenizer(void **state)
{
    char in[256], tok[256], out[256], err[512] = "";
    tmp_path(in, "tok_model.bin");
    tmp_path(tok, "tok512.bin");
    tmp_path(out, "tok_model.gguf");
    write_llama2c(in, &TINY, 0, true);
    write_tokenizer_from_fixture(tok);
    struct convert_options o = typed(DTYPE_F32);
    o.tokenizer = tok;
    if (!convert_from_llama2c(in, out, &o, err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *f = open_ok(out), *v = open_ok(VOCAB_FIXTURE);
    static const char *const same[] = {
        "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
        "tokenizer.ggml.token_type", "tokenizer.ggml.add_bos_token",
        "tokenizer.ggml.add_space_prefix"};
    for (size_t i = 0; i < N_OF(same); i++) {
        size_t la, lb;
        const unsigned char *a = gguf_kv_encoded(f, gguf_find_key(f, same[i]), &la);
        const unsigned char *b = gguf_kv_encoded(v, gguf_find_key(v, same[i]), &lb);
        if (!a || !b || la != lb || memcmp(a, b, la))
            fail_msg("%s differs from " VOCAB_FIXTURE, same[i]);
    }
    check_u32(f, "tokenizer.ggml.bos_token_id", 1);
    check_u32(f, "tokenizer.ggml.eos_token_id", 2);
    check_u32(f, "tokenizer.ggml.unknown_token_id", 0);
    gguf_close(f);
    gguf_close(v);
}

/* A tokenizer.bin of the given tokens: max_len, then score 0, length, bytes;
 * lengths as given (so they can lie). */
static void write_tokenizer(const char *path, uint32_t max_len, int n, const char *const *pieces,
                            const int32_t *lengths, const char *trailer)
{
    FILE *fp = fopen(path, "wb");
    fwrite(&max_len, sizeof max_len, 1, fp);
    for (int i = 0; i < n; i++) {
        float score = -(float)i;
        fwrite(&score, sizeof score, 1, fp);
        fwrite(&lengths[i], sizeof lengths[i], 1, fp);
        fwrite(pieces[i], 1, strlen(pieces[i]), fp);
    }
    fputs(trailer, fp);
    fclose(fp);
}

static void test_llama2c_bad_tokenizers(void **state)
{
    char in[256], tok[256], out[256], err[512] = "";
    tmp_path(in, "small.bin");
    tmp_path(tok, "bad_tok.bin");
    tmp_path(out, "small.gguf");
    struct l2c c = TINY;
    c.vocab = 4;
    write_llama2c(in, &c, 0, true);
    struct convert_options o = typed(DTYPE_F32);
    o.tokenizer = tok;

    static const char *const good[4] = {"<unk>", "\n<s>\n", "\n</s>\n", " a"};
    static const int32_t good_len[4] = {5, 5, 6, 2};
    write_tokenizer(tok, 6, 4, good, good_len, "");
    if (!convert_from_llama2c(in, out, &o, err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *f = open_ok(out);
    assert_string_equal(gguf_arr_str(f, "tokenizer.ggml.tokens", 1), "<s>");
    assert_string_equal(gguf_arr_str(f, "tokenizer.ggml.tokens", 3), "\xe2\x96\x81" "a");
    gguf_close(f);
    unlink(out);

    static const struct {
        uint32_t max_len;
        int n;
        const char *pieces[4];
        int32_t lengths[4];
        const char *trailer, *what;
    } bad[] = {
        {0, 4, {"<unk>", "<s>", "</s>", "a"}, {5, 3, 4, 1}, "", "max_token_length 0"},
        {6, 4, {"<unk>", "<s>", "</s>", "a"}, {5, -1, 4, 1}, "", "token 1: length -1 is not in [1, 6]"},
        {6, 4, {"<unk>", "<s>", "</s>", "a"}, {5, 3, 7, 1}, "", "token 2: length 7 is not in [1, 6]"},
        {6, 4, {"<unk>", "<s>", "</s>", "a"}, {5, 3, 4, 6}, "", "token 3: 6 bytes past the end"},
        {6, 3, {"<unk>", "<s>", "</s>"}, {5, 3, 4}, "", "token 3: truncated"},
        {6, 4, {"<unk>", "<s>", "</s>", "a"}, {5, 3, 4, 1}, "xyz", "3 bytes after the 4 tokens"},
        {6, 4, {"<unk>", "<s>", "</s>", "\xff"}, {5, 3, 4, 1}, "", "token 3: not valid UTF-8"},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        write_tokenizer(tok, bad[i].max_len, bad[i].n, bad[i].pieces, bad[i].lengths,
                        bad[i].trailer);
        check_failed(convert_from_llama2c(in, out, &o, err, sizeof err), err, tok, bad[i].what, out);
    }
    unlink(tok);
    check_failed(convert_from_llama2c(in, out, &o, err, sizeof err), err, tok,
                 "No such file or directory", out);
}

static void test_gguf_bad_input(void **state)
{
    char in[256], out[256], err[512] = "";
    tmp_path(in, "bad_in.gguf");
    tmp_path(out, "bad_out.gguf");
    struct convert_options o = typed(DTYPE_Q8_0);
    check_failed(convert_from_gguf(in, out, &o, err, sizeof err), err, in,
                 "No such file or directory", out);
    FILE *fp = fopen(in, "wb");
    fwrite("GGUF\x03\x00\x00\x00", 1, 8, fp);
    fclose(fp);
    check_failed(convert_from_gguf(in, out, &o, err, sizeof err), err, in, "bad_in.gguf", out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_policy),
        cmocka_unit_test(test_gguf_same_type_is_byte_identical),
        cmocka_unit_test(test_gguf_requantize),
        cmocka_unit_test(test_quantization_error_bounds),
        cmocka_unit_test(test_add_bytes_from_memory),
        cmocka_unit_test(test_failing_source_leaves_nothing),
        cmocka_unit_test(test_llama2c_layouts),
        cmocka_unit_test(test_llama2c_bad_checkpoints),
        cmocka_unit_test(test_llama2c_disk_full),
        cmocka_unit_test(test_llama2c_tokenizer),
        cmocka_unit_test(test_llama2c_bad_tokenizers),
        cmocka_unit_test(test_gguf_bad_input),
    };
    return cmocka_run_group_tests_name("convert", tests, make_tmp_dir, remove_tmp_dir);
}
