/* The safetensors reader (weights/safetensors*.c): well-formed files of every
 * dtype read back as the values written, at any alignment; hostile headers
 * (truncated files, lengths past the end, bad JSON, unknown dtypes, shapes
 * that disagree with the offsets, ranges out of the data or overlapping)
 * fail with one line naming the file and the tensor; sharded folders are
 * opened through their index and every inconsistency between the index and
 * the shards is named. (Duplicate JSON keys cannot reach the reader: json-c
 * keeps the last.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/cpu/convert.h"
#include "weights/safetensors.h"

static char tmp_dir[64];

static int make_tmp_dir(void **state)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_st_XXXXXX", base);
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
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
            unlink(path);
        }
    }
    closedir(dir);
    return rmdir(tmp_dir);
}

/* A file image: 8-byte length, the header text padded with pad spaces, then
 * data_len bytes of data. Caller frees. */
static unsigned char *image(const char *header, size_t pad, const void *data, size_t data_len, size_t *len)
{
    uint64_t n = strlen(header) + pad;
    *len = 8 + n + data_len;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    memcpy(b, &n, 8);
    memcpy(b + 8, header, strlen(header));
    memset(b + 8 + strlen(header), ' ', pad);
    if (data_len)
        memcpy(b + 8 + n, data, data_len);
    return b;
}

static void write_file(const char *name, const void *bytes, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Parses header + data from memory and expects failure with every piece of
 * want in the message. */
static void expect_error(const char *header, const void *data, size_t data_len, const char *want)
{
    size_t len;
    unsigned char *b = image(header, 0, data, data_len, &len);
    char err[512] = "";
    struct st_file *f = st_parse("m.safetensors", b, len, err, sizeof err);
    if (f)
        fail_msg("opened a bad header: %s", header);
    if (strncmp(err, "m.safetensors: ", 15) != 0 || !strstr(err, want))
        fail_msg("header %s\n  error '%s'\n  wanted '%s'", header, err, want);
    free(b);
}

/* ---- well-formed files ---- */

static void test_reads_every_dtype(void **state)
{
    /* a (2, 3) F32 matrix, a (3,) F16 vector, a (2,) BF16 vector */
    float m[6] = {1, -2, 3.5f, 0.25f, -1e-3f, 65504};
    uint16_t h[3] = {f32_to_fp16(1.5f), f32_to_fp16(-2), f32_to_fp16(0.125f)};
    uint16_t b[2] = {f32_to_bf16(3), f32_to_bf16(-0.5f)};
    unsigned char data[24 + 6 + 4];
    memcpy(data, m, 24);
    memcpy(data + 24, h, 6);
    memcpy(data + 30, b, 4);
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[24,30]},"
                         "\"m\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[30,34]}}";
    /* every header length mod 4: F32 data lands misaligned three times out of four */
    for (size_t pad = 0; pad < 4; pad++) {
        size_t len;
        unsigned char *img = image(header, pad, data, sizeof data, &len);
        char err[256];
        struct st_file *f = st_parse("ok.safetensors", img, len, err, sizeof err);
        if (!f)
            fail_msg("%s", err);
        assert_int_equal(st_n_tensors(f), 3);
        assert_string_equal(st_tensor_at(f, 0)->name, "m"); /* by data offset */
        assert_null(st_find(f, "__metadata__"));
        assert_null(st_find(f, "x"));
        const struct st_tensor *t = st_find(f, "m");
        assert_int_equal(t->type, DTYPE_F32);
        assert_int_equal(t->n_dims, 2);
        assert_int_equal(t->shape[0], 2);
        assert_int_equal(t->shape[1], 3);
        float out[6];
        st_read_rows(t, 3, 1, 1, out);
        assert_memory_equal(out, m + 3, 3 * sizeof(float));
        st_read_rows(t, 3, 0, 2, out);
        assert_memory_equal(out, m, sizeof m);
        st_read_rows(st_find(f, "h"), 3, 0, 1, out);
        assert_true(out[0] == 1.5f && out[1] == -2 && out[2] == 0.125f);
        st_read_rows(st_find(f, "b"), 2, 0, 1, out);
        assert_true(out[0] == 3 && out[1] == -0.5f);
        st_release(t, t->nbytes); /* not a mapping: must leave the caller's memory alone */
        assert_memory_equal(img + len - sizeof data, data, sizeof data);
        st_close(f);
        free(img);
    }
}

static void test_edge_shapes(void **state)
{
    /* a scalar, an empty tensor (anywhere, even sharing an offset) and an
     * empty header all open */
    float x = 7;
    size_t len;
    unsigned char *img = image("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                               "\"e\":{\"dtype\":\"F16\",\"shape\":[4,0],\"data_offsets\":[0,0]}}",
                               0, &x, 4, &len);
    char err[256];
    struct st_file *f = st_parse("edge.safetensors", img, len, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(st_find(f, "s")->n_dims, 0);
    assert_int_equal(st_find(f, "s")->n_elems, 1);
    assert_int_equal(st_find(f, "e")->n_elems, 0);
    st_close(f);
    free(img);
    img = image("{}", 0, NULL, 0, &len);
    f = st_parse("empty.safetensors", img, len, err, sizeof err);
    assert_non_null(f);
    assert_int_equal(st_n_tensors(f), 0);
    st_close(f);
    free(img);
}

static void test_open_file(void **state)
{
    float v[4] = {1, 2, 3, 4};
    size_t len;
    unsigned char *img = image("{\"v\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 0, v, 16, &len);
    write_file("model.safetensors", img, len);
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/model.safetensors", tmp_dir);
    struct st_file *f = st_open(path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    const struct st_tensor *t = st_find(f, "v");
    float out[4];
    st_read_rows(t, 2, 0, 2, out);
    st_release(t, t->nbytes); /* pages come back from the page cache */
    st_read_rows(t, 2, 0, 2, out);
    assert_memory_equal(out, v, 16);
    assert_string_equal(st_path(f), path);
    st_close(f);
    /* a truncated copy names the file */
    write_file("cut.safetensors", img, len - 1);
    snprintf(path, sizeof path, "%s/cut.safetensors", tmp_dir);
    assert_null(st_open(path, err, sizeof err));
    assert_non_null(strstr(err, "cut.safetensors: tensor 'v': data [0, 16) past end of data (15 bytes)"));
    snprintf(path, sizeof path, "%s/absent.safetensors", tmp_dir);
    assert_null(st_open(path, err, sizeof err));
    assert_non_null(strstr(err, "absent.safetensors: No such file"));
    assert_null(st_open(tmp_dir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
    free(img);
}

/* ---- hostile files ---- */

static void test_bad_lengths(void **state)
{
    char err[256];
    unsigned char small[7] = {0};
    assert_null(st_parse("m.safetensors", small, sizeof small, err, sizeof err));
    assert_non_null(strstr(err, "m.safetensors: 7 bytes is too short"));
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    assert_null(st_parse("m.safetensors", huge, sizeof huge, err, sizeof err));
    assert_non_null(strstr(err, "header length 18446744073709551615 past end of file (16 bytes)"));
    /* every truncation of a good file fails, naming the file */
    float v[2] = {1, 2};
    size_t len;
    unsigned char *img = image("{\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, v, 8, &len);
    for (size_t cut = 0; cut < len; cut++) {
        assert_null(st_parse("m.safetensors", img, cut, err, sizeof err));
        assert_int_equal(strncmp(err, "m.safetensors: ", 15), 0);
    }
    free(img);
}

static void test_bad_json(void **state)
{
    expect_error("[1, 2]", NULL, 0, "does not start with '{'");
    expect_error("{\"a\": ", NULL, 0, "JSON ends early");
    expect_error("{\"a\" 1}", NULL, 0, "bad JSON at byte");
    expect_error("{} x", NULL, 0, "bad JSON at byte 3");
    expect_error("{\"\xff\":{}}", NULL, 0, "bad JSON at byte 2"); /* not UTF-8 */
    expect_error("{\"a\":1}", NULL, 0, "tensor 'a': entry is not an object");
    expect_error("{\"\":{}}", NULL, 0, "tensor '': empty name");
    size_t len;
    unsigned char *img = image("{\"ab\":{}}", 0, NULL, 0, &len);
    img[8 + 3] = 0;
    char err[256];
    assert_null(st_parse("m.safetensors", img, len, err, sizeof err));
    assert_string_equal(err, "m.safetensors: header contains a NUL byte");
    free(img);
}

static void test_bad_entries(void **state)
{
    char data[64] = {0};
    expect_error("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", data, 4, "tensor 'w': 'dtype' missing");
    expect_error("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", data, 8,
                 "tensor 'w': dtype 'I64' is not supported (F32, F16, BF16)");
    expect_error("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", data, 1,
                 "dtype 'F8_E4M3' is not supported");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", data, 4, "'shape' missing");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data, 4,
                 "shape[0] is not a non-negative integer");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", data, 4,
                 "shape[0] is not a non-negative integer");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", data, 4,
                 "shape has 9 dimensions (at most 8)");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", data, 4,
                 "shape overflows");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,4]}}", data, 4,
                 "shape[0] is not a non-negative integer");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", data, 8, "'data_offsets' missing");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", data, 8, "not [begin, end]");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data, 8,
                 "data_offsets [8, 0) end before they begin");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", data, 8,
                 "tensor 'w': data [0, 12) past end of data (8 bytes)");
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data, 8,
                 "tensor 'w': F32 shape of 3 elements needs 12 bytes, data_offsets give 8");
    expect_error("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", data, 16,
                 "F16 shape of 4 elements needs 8 bytes, data_offsets give 16");
}

static void test_overlaps(void **state)
{
    char data[64] = {0};
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 data, 12, "tensor 'b': data overlaps tensor 'a'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
                 data, 16, "data overlaps tensor 'a'");
}

/* ---- sharded folders ---- */

static void write_shard(const char *name, const char *tensor)
{
    char header[256];
    float v[2] = {1, 2};
    snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", tensor);
    size_t len;
    unsigned char *img = image(header, 0, v, 8, &len);
    write_file(name, img, len);
    free(img);
}

static void write_index(const char *json)
{
    write_file("model.safetensors.index.json", json, strlen(json));
}

static void expect_set_error(const char *want)
{
    char err[512] = "";
    struct st_set *s = st_set_open(tmp_dir, err, sizeof err);
    if (s)
        fail_msg("opened; wanted '%s'", want);
    if (!strstr(err, want))
        fail_msg("error '%s'\n wanted '%s'", err, want);
}

static void test_sharded(void **state)
{
    char err[512], path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", tmp_dir);
    unlink(path);
    expect_set_error("neither model.safetensors nor model.safetensors.index.json found");
    write_shard("model.safetensors", "x");
    struct st_set *s = st_set_open(tmp_dir, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(st_set_n_tensors(s), 1);
    assert_non_null(st_set_find(s, "x"));
    st_set_free(s);

    write_shard("a.safetensors", "t.a");
    write_shard("b.safetensors", "t.b");
    write_index("{\"metadata\":{},\"weight_map\":{\"t.b\":\"b.safetensors\",\"t.a\":\"a.safetensors\"}}");
    s = st_set_open(tmp_dir, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(st_set_n_tensors(s), 2); /* the index wins over model.safetensors */
    assert_null(st_set_find(s, "x"));
    assert_string_equal(st_set_tensor_at(s, 0)->name, "t.a");
    assert_non_null(strstr(st_path(st_set_find(s, "t.b")->file), "/b.safetensors"));
    st_set_free(s);

    float two[2] = {1, 2};
    size_t len;
    unsigned char *img = image("{\"p\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                               "\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, two, 8, &len);
    write_file("two.safetensors", img, len);
    free(img);
    write_index("{\"weight_map\":{\"p\":\"two.safetensors\"}}");
    expect_set_error("the shards hold 2 tensors but weight_map names 1");
    write_index("{\"weight_map\":{\"t.a\":\"a.safetensors\",\"t.b\":\"a.safetensors\"}}");
    expect_set_error("tensor 't.b' is not in a.safetensors");
    write_index("{\"weight_map\":{\"t.a\":\"a.safetensors\",\"t.b\":\"c.safetensors\"}}");
    expect_set_error("c.safetensors: No such file");
    write_index("{\"weight_map\":{\"t.a\":\"../a.safetensors\"}}");
    expect_set_error("tensor 't.a' maps to ../a.safetensors, not a file name in the folder");
    write_index("{\"weight_map\":{\"t.a\":7}}");
    expect_set_error("maps to a non-string");
    write_index("{\"weights\":{}}");
    expect_set_error("no 'weight_map' object");
    write_index("{\"weight_map\":");
    expect_set_error("model.safetensors.index.json: JSON ends early");
    write_shard("b.safetensors", "t.a");
    write_index("{\"weight_map\":{\"t.a\":\"a.safetensors\",\"t.b\":\"b.safetensors\"}}");
    expect_set_error("tensor 't.a' is in both");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_every_dtype),
        cmocka_unit_test(test_edge_shapes),
        cmocka_unit_test(test_open_file),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_sharded),
    };
    return cmocka_run_group_tests_name("safetensors", tests, make_tmp_dir, remove_tmp_dir);
}
