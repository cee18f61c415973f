/* GGUF reader and writer, and the dtype table: round trips through our
 * writer, a file written by gguf-py (tests/golden/check_gguf_py.py), and
 * hand-built hostile files that must fail with an error naming the field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/dtype.h"
#include "weights/gguf.h"
#include "weights/gguf_internal.h"

#define GGUF_PY_FIXTURE "tests/unit/fixtures/gguf_py_written.gguf"

static char tmp_dir[64];

static void tmp_path(char out[256], const char *name)
{
    snprintf(out, 256, "%s/%s", tmp_dir, name);
}

/* On tmpfs where there is one: the hostile-file tests write thousands of
 * small files, and truncating files on a disk is a hundred times slower. */
static int make_tmp_dir(void **state)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_gguf_XXXXXX", base);
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

static void write_file(const char *path, const void *bytes, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    *len = (size_t)ftell(fp);
    rewind(fp);
    unsigned char *bytes = malloc(*len + 1);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, *len, fp), *len);
    fclose(fp);
    return bytes;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Errors are one line, "PATH: what is wrong". */
static void check_error_names_path(const char *err, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(err, path, n) != 0 || strncmp(err + n, ": ", 2) != 0 || strchr(err, '\n'))
        fail_msg("error \"%s\" does not start with \"%s: \"", err, path);
}

static void check_contains(const char *err, const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

/* Calls every accessor on every kv and tensor as a consumer would; returns a
 * checksum so the data reads cannot be optimised away. */
static uint64_t walk(const struct gguf_file *f)
{
    uint64_t sum = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_key(f, i);
        assert_non_null(key);
        assert_int_equal(gguf_find_key(f, key), i);
        uint32_t u;
        int64_t s;
        float x;
        bool b;
        enum gguf_value_type elem_type;
        uint64_t n;
        sum += gguf_get_u32(f, key, &u) + gguf_get_i64(f, key, &s) +
               gguf_get_f32(f, key, &x) + gguf_get_bool(f, key, &b);
        const char *str = gguf_get_str(f, key);
        sum += str ? strlen(str) : 0;
        if (!gguf_get_arr(f, key, &elem_type, &n))
            continue;
        for (uint64_t j = 0; j < n; j++) {
            const char *elem = gguf_arr_str(f, key, j);
            sum += (elem ? strlen(elem) : 0) + gguf_arr_i64(f, key, j, &s) +
                   gguf_arr_f32(f, key, j, &x);
        }
        assert_null(gguf_arr_str(f, key, n));
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(f, i);
        assert_ptr_equal(gguf_find_tensor(f, t->name), t);
        const unsigned char *data = t->data;
        for (uint64_t j = 0; j < t->nbytes; j++)
            sum += data[j];
    }
    return sum;
}

/* ---- hand-built files ---- */

struct raw {
    unsigned char bytes[4096];
    size_t len;
};

static void raw_put(struct raw *r, const void *p, size_t n)
{
    assert_true(n <= sizeof r->bytes - r->len);
    memcpy(r->bytes + r->len, p, n);
    r->len += n;
}

static void raw_u8(struct raw *r, uint8_t v) { raw_put(r, &v, sizeof v); }
static void raw_u32(struct raw *r, uint32_t v) { raw_put(r, &v, sizeof v); }
static void raw_u64(struct raw *r, uint64_t v) { raw_put(r, &v, sizeof v); }

static void raw_str(struct raw *r, const char *s)
{
    raw_u64(r, strlen(s));
    raw_put(r, s, strlen(s));
}

static void raw_header(struct raw *r, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    raw_put(r, "GGUF", 4);
    raw_u32(r, version);
    raw_u64(r, n_tensors);
    raw_u64(r, n_kv);
}

static void raw_kv_u32(struct raw *r, const char *key, uint32_t v)
{
    raw_str(r, key);
    raw_u32(r, GGUF_U32);
    raw_u32(r, v);
}

static void raw_tensor_info(struct raw *r, const char *name, uint32_t n_dims,
                            const uint64_t *ne, uint32_t type, uint64_t offset)
{
    raw_str(r, name);
    raw_u32(r, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        raw_u64(r, ne[d]);
    raw_u32(r, type);
    raw_u64(r, offset);
}

static void raw_pad(struct raw *r, size_t alignment)
{
    while (r->len % alignment)
        raw_u8(r, 0);
}

static void raw_zeros(struct raw *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        raw_u8(r, 0);
}

/* One kv and one tensor "t" with its data section of data_len bytes. */
static void raw_one_tensor(struct raw *r, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                           uint64_t offset, size_t data_len)
{
    raw_header(r, 3, 1, 1);
    raw_kv_u32(r, "a.b", 7);
    raw_tensor_info(r, "t", n_dims, ne, type, offset);
    raw_pad(r, GGUF_DEFAULT_ALIGNMENT);
    raw_zeros(r, data_len);
}

static struct gguf_file *open_bytes(const void *bytes, size_t len, char *path,
                                    char *err, size_t errlen)
{
    tmp_path(path, "case.gguf");
    write_file(path, bytes, len);
    return gguf_open(path, err, errlen);
}

static void expect_error(const struct raw *r, const char *needle)
{
    char path[256], err[512] = "";
    struct gguf_file *f = open_bytes(r->bytes, r->len, path, err, sizeof err);
    if (f) {
        gguf_close(f);
        fail_msg("opened a bad file (expected an error with \"%s\")", needle);
    }
    check_error_names_path(err, path);
    check_contains(err, needle);
}

/* ---- dtype ---- */

static void test_dtype_table(void **state)
{
    static const struct { enum dtype type; const char *name; size_t elems, bytes; } want[] = {
        {DTYPE_F32, "f32", 1, 4},    {DTYPE_F16, "f16", 1, 2},    {DTYPE_BF16, "bf16", 1, 2},
        {DTYPE_Q8_0, "q8_0", 32, 34}, {DTYPE_Q4_0, "q4_0", 32, 18}, {DTYPE_Q4_1, "q4_1", 32, 20},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        enum dtype parsed;
        assert_true(dtype_is_supported(want[i].type));
        assert_string_equal(dtype_name(want[i].type), want[i].name);
        assert_true(dtype_from_name(want[i].name, &parsed));
        assert_int_equal(parsed, want[i].type);
        assert_int_equal(dtype_block_elems(want[i].type), want[i].elems);
        assert_int_equal(dtype_block_bytes(want[i].type), want[i].bytes);
        assert_int_equal(dtype_row_bytes(want[i].type, 64), 64 / want[i].elems * want[i].bytes);
    }
    for (uint32_t type = 0; type < 64; type++) {
        bool known = type == 0 || type == 1 || type == 2 || type == 3 || type == 8 || type == 30;
        assert_int_equal(dtype_is_supported(type), known);
    }
    enum dtype parsed;
    assert_false(dtype_from_name("q5_0", &parsed));
    assert_string_equal(dtype_name(6), "unknown");
    assert_int_equal(dtype_row_bytes(DTYPE_Q4_0, 31), 0);
    assert_int_equal(dtype_row_bytes((enum dtype)6, 32), 0);
    assert_int_equal(dtype_row_bytes(DTYPE_F32, UINT64_MAX), 0); /* overflow */
}

/* ---- writer round trips ---- */

/* Writes n bytes of a pattern that depends on the tensor, so swapped data shows. */
static void fill_pattern(unsigned char *dst, uint64_t n, unsigned seed)
{
    for (uint64_t i = 0; i < n; i++)
        dst[i] = (unsigned char)(i * 31 + seed * 7 + 1);
}

struct fill_ctx {
    unsigned seed;
    int calls;
    bool fail;
};

static bool fill_tensor(void *ctx, void *dst, uint64_t nbytes)
{
    struct fill_ctx *c = ctx;
    c->calls++;
    fill_pattern(dst, nbytes, c->seed);
    return !c->fail;
}

static void count_progress(void *ctx, int64_t done, int64_t total)
{
    int64_t *last = ctx;
    assert_int_equal(done, *last + 1);
    assert_true(done <= total);
    *last = done;
}

static void test_round_trip_values(void **state)
{
    struct gguf_writer *w = gguf_writer_new();
    static const char *const words[] = {"alpha", "", "g\xc3\xa9nial", "delta"};
    static const int32_t ints[] = {-3, 0, 2147483647};
    static const float floats[] = {0.5f, -1e30f};
    gguf_set_u32(w, "v.u32", 4000000000u);
    gguf_set_i32(w, "v.i32", -5);
    gguf_set_i32(w, "v.i32_pos", 5);
    gguf_set_u64(w, "v.u64", UINT64_MAX);
    gguf_set_f32(w, "v.f32", 0.125f);
    gguf_set_bool(w, "v.bool", true);
    gguf_set_str(w, "v.str", "hello");
    gguf_set_arr_str(w, "v.words", words, 4);
    gguf_set_arr_i32(w, "v.ints", ints, 3);
    gguf_set_arr_f32(w, "v.floats", floats, 2);
    gguf_set_arr_i32(w, "v.empty", NULL, 0);
    gguf_set_u32(w, "v.replaced", 1);
    gguf_set_str(w, "v.replaced", "now a string");

    char path[256], err[512] = "";
    tmp_path(path, "values.gguf");
    assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);

    uint32_t u;
    int64_t s;
    float x;
    bool b;
    assert_int_equal(gguf_n_kv(f), 12);
    assert_int_equal(gguf_n_tensors(f), 0);
    assert_true(gguf_get_u32(f, "v.u32", &u) && u == 4000000000u);
    assert_true(gguf_get_i64(f, "v.u32", &s) && s == 4000000000);
    assert_false(gguf_get_u32(f, "v.i32", &u)); /* -5 does not fit */
    assert_true(gguf_get_i64(f, "v.i32", &s) && s == -5);
    assert_true(gguf_get_u32(f, "v.i32_pos", &u) && u == 5);
    assert_false(gguf_get_i64(f, "v.u64", &s)); /* 2^64-1 does not fit */
    assert_false(gguf_get_f32(f, "v.u32", &x)); /* integers are not floats */
    assert_true(gguf_get_f32(f, "v.f32", &x) && x == 0.125f);
    assert_true(gguf_get_bool(f, "v.bool", &b) && b);
    assert_false(gguf_get_bool(f, "v.u32", &b));
    assert_string_equal(gguf_get_str(f, "v.str"), "hello");
    assert_null(gguf_get_str(f, "v.u32"));
    assert_string_equal(gguf_get_str(f, "v.replaced"), "now a string");
    assert_int_equal(gguf_kv_type(f, "v.replaced"), GGUF_STRING);
    assert_int_equal(gguf_kv_type(f, "v.words"), GGUF_ARRAY);
    assert_int_equal(gguf_kv_type(f, "v.missing"), -1);
    assert_int_equal(gguf_find_key(f, "v.missing"), -1);
    assert_null(gguf_key(f, -1));
    assert_null(gguf_key(f, 12));

    enum gguf_value_type elem_type;
    uint64_t n;
    assert_true(gguf_get_arr(f, "v.words", &elem_type, &n));
    assert_int_equal(elem_type, GGUF_STRING);
    assert_int_equal(n, 4);
    for (uint64_t i = 0; i < 4; i++)
        assert_string_equal(gguf_arr_str(f, "v.words", i), words[i]);
    assert_null(gguf_arr_str(f, "v.words", 4));
    assert_null(gguf_arr_str(f, "v.ints", 0));
    assert_false(gguf_arr_i64(f, "v.words", 0, &s));
    for (uint64_t i = 0; i < 3; i++)
        assert_true(gguf_arr_i64(f, "v.ints", i, &s) && s == ints[i]);
    assert_false(gguf_arr_i64(f, "v.ints", 3, &s));
    assert_false(gguf_arr_f32(f, "v.ints", 0, &x));
    for (uint64_t i = 0; i < 2; i++)
        assert_true(gguf_arr_f32(f, "v.floats", i, &x) && x == floats[i]);
    assert_true(gguf_get_arr(f, "v.empty", &elem_type, &n));
    assert_int_equal(elem_type, GGUF_I32);
    assert_int_equal(n, 0);
    assert_false(gguf_get_arr(f, "v.str", &elem_type, &n));
    gguf_close(f);
}

static void test_round_trip_tensors(void **state)
{
    static const struct { const char *name; enum dtype type; int n_dims; uint64_t ne[4]; } shapes[] = {
        {"t.q4_0", DTYPE_Q4_0, 2, {64, 3}},  {"t.f32", DTYPE_F32, 1, {5}},
        {"t.f16", DTYPE_F16, 3, {7, 2, 3}}, {"t.bf16", DTYPE_BF16, 4, {3, 1, 2, 2}},
        {"t.q8_0", DTYPE_Q8_0, 2, {32, 2}}, {"t.q4_1", DTYPE_Q4_1, 1, {96}},
    };
    enum { N = sizeof shapes / sizeof shapes[0] };
    unsigned char *data[N];
    struct fill_ctx fills[N];
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "general.name", "round trip");
    for (int i = 0; i < N; i++) {
        uint64_t nbytes = dtype_row_bytes(shapes[i].type, shapes[i].ne[0]);
        for (int d = 1; d < shapes[i].n_dims; d++)
            nbytes *= shapes[i].ne[d];
        data[i] = malloc(nbytes);
        fill_pattern(data[i], nbytes, (unsigned)i);
        fills[i] = (struct fill_ctx){.seed = (unsigned)i};
        /* odd tensors come from the fill callback, even ones from memory */
        gguf_add_tensor(w, shapes[i].name, shapes[i].type, shapes[i].n_dims, shapes[i].ne,
                        i % 2 ? NULL : data[i], i % 2 ? fill_tensor : NULL, &fills[i]);
    }
    char path[256], err[512] = "";
    tmp_path(path, "tensors.gguf");
    int64_t progress = 0;
    assert_true(gguf_writer_write(w, path, count_progress, &progress, err, sizeof err));
    assert_int_equal(progress, N);
    gguf_writer_free(w);

    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(gguf_n_tensors(f), N);
    assert_int_equal(gguf_file_size(f) % GGUF_DEFAULT_ALIGNMENT, 0);
    for (int i = 0; i < N; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(f, i);
        assert_ptr_equal(gguf_find_tensor(f, shapes[i].name), t);
        assert_string_equal(t->name, shapes[i].name);
        assert_int_equal(t->type, shapes[i].type);
        assert_int_equal(t->n_dims, shapes[i].n_dims);
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            assert_int_equal(t->ne[d], d < shapes[i].n_dims ? shapes[i].ne[d] : 1);
        assert_int_equal((uintptr_t)t->data % GGUF_DEFAULT_ALIGNMENT, 0);
        assert_memory_equal(t->data, data[i], t->nbytes);
        assert_int_equal(fills[i].calls, i % 2);
        free(data[i]);
    }
    assert_null(gguf_tensor_at(f, N));
    assert_null(gguf_tensor_at(f, -1));
    assert_null(gguf_find_tensor(f, "t.missing"));
    assert_string_equal(gguf_path(f), path);
    gguf_close(f);
}

static void test_custom_alignment(void **state)
{
    static const float row[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint64_t ne[1] = {8};
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_u32(w, "general.alignment", 64);
    gguf_add_tensor(w, "a", DTYPE_F32, 1, ne, row, NULL, NULL);
    gguf_add_tensor(w, "b", DTYPE_F32, 1, ne, row, NULL, NULL);
    char path[256], err[512] = "";
    tmp_path(path, "aligned64.gguf");
    assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    const unsigned char *a = gguf_find_tensor(f, "a")->data, *b = gguf_find_tensor(f, "b")->data;
    assert_int_equal((uintptr_t)a % 64, 0);
    assert_int_equal(b - a, 64);
    assert_memory_equal(b, row, sizeof row);
    gguf_close(f);
}

/* ---- writer failures ---- */

static void expect_write_error(struct gguf_writer *w, const char *needle)
{
    char path[256], tmp[300], err[512] = "";
    tmp_path(path, "fails.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    check_error_names_path(err, path);
    check_contains(err, needle);
    assert_false(file_exists(path));
    assert_false(file_exists(tmp));
}

static void test_writer_refuses_bad_tensors(void **state)
{
    static const unsigned char bytes[1024];
    const uint64_t ne31[1] = {31}, ne32[1] = {32}, ne0[2] = {32, 0};
    struct gguf_writer *w = gguf_writer_new();
    gguf_add_tensor(w, "q", DTYPE_Q4_0, 1, ne31, bytes, NULL, NULL);
    expect_write_error(w, "tensor 'q': ne[0] = 31 is not a multiple of the q4_0 block size 32");

    w = gguf_writer_new();
    gguf_add_tensor(w, "t", DTYPE_F32, 1, ne32, bytes, NULL, NULL);
    gguf_add_tensor(w, "t", DTYPE_F32, 1, ne32, bytes, NULL, NULL);
    expect_write_error(w, "tensor 't' added twice");

    w = gguf_writer_new();
    gguf_add_tensor(w, "t", DTYPE_F32, 1, ne32, bytes, fill_tensor, NULL);
    expect_write_error(w, "exactly one of data and fill");

    w = gguf_writer_new();
    gguf_add_tensor(w, "t", DTYPE_F32, 1, ne32, NULL, NULL, NULL);
    expect_write_error(w, "exactly one of data and fill");

    w = gguf_writer_new();
    gguf_add_tensor(w, "t", DTYPE_F32, 5, ne32, bytes, NULL, NULL);
    expect_write_error(w, "n_dims 5 not in 1..4");

    w = gguf_writer_new();
    gguf_add_tensor(w, "t", (enum dtype)6, 1, ne32, bytes, NULL, NULL);
    expect_write_error(w, "unsupported type 6");

    w = gguf_writer_new();
    gguf_add_tensor(w, "t", DTYPE_F32, 2, ne0, bytes, NULL, NULL);
    expect_write_error(w, "a dimension is 0");
}

static void test_writer_refuses_bad_metadata(void **state)
{
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_u32(w, "general.alignment", 48);
    expect_write_error(w, "general.alignment 48 is not a power of two");

    w = gguf_writer_new();
    gguf_set_u64(w, "general.alignment", 64);
    expect_write_error(w, "general.alignment must be a u32");

    w = gguf_writer_new();
    gguf_set_str(w, "k", NULL);
    expect_write_error(w, "'k': NULL string");

    w = gguf_writer_new();
    gguf_set_u32(w, "", 1);
    expect_write_error(w, "without a key");
}

static void test_fill_failure_keeps_old_file(void **state)
{
    char path[256], tmp[300], err[512] = "";
    tmp_path(path, "kept.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    write_file(path, "old", 3);

    const uint64_t ne[1] = {64};
    struct fill_ctx ok = {.seed = 1}, bad = {.seed = 2, .fail = true};
    struct gguf_writer *w = gguf_writer_new();
    gguf_add_tensor(w, "first", DTYPE_F32, 1, ne, NULL, fill_tensor, &ok);
    gguf_add_tensor(w, "second", DTYPE_Q8_0, 1, ne, NULL, fill_tensor, &bad);
    assert_false(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    check_error_names_path(err, path);
    check_contains(err, "tensor 1 'second': fill callback failed");
    assert_false(file_exists(tmp));
    size_t len;
    unsigned char *kept = read_file(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(kept, "old", 3);
    free(kept);
}

static void test_write_into_missing_directory(void **state)
{
    char path[256], err[512] = "";
    tmp_path(path, "no/such/dir.gguf");
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_u32(w, "a", 1);
    assert_false(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    check_error_names_path(err, path);
    check_contains(err, "creating");
    check_contains(err, "No such file or directory");
}

/* A full disk, simulated by a file size limit: every write must be checked
 * and the temporary removed. */
static void test_disk_full(void **state)
{
    enum { LIMIT = 1 << 20, TENSOR = 4 << 20 };
    unsigned char *bytes = calloc(1, TENSOR);
    const uint64_t ne[1] = {TENSOR / 4};
    struct gguf_writer *w = gguf_writer_new();
    gguf_add_tensor(w, "big", DTYPE_F32, 1, ne, bytes, NULL, NULL);

    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = LIMIT;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char path[256], tmp[300], err[512] = "";
    tmp_path(path, "full.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    bool ok = gguf_writer_write(w, path, NULL, NULL, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);

    gguf_writer_free(w);
    free(bytes);
    assert_false(ok);
    check_error_names_path(err, path);
    check_contains(err, "File too large");
    assert_false(file_exists(path));
    assert_false(file_exists(tmp));
}

/* ---- gguf-py as an independent writer ---- */

static uint64_t byte_sum(const struct gguf_tensor *t)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < t->nbytes; i++)
        sum += ((const unsigned char *)t->data)[i];
    return sum;
}

static void check_gguf_py_tensor(const struct gguf_file *f, const char *name, enum dtype type,
                                 int n_dims, uint64_t ne0, uint64_t ne1, uint64_t nbytes)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    char key[64];
    int64_t want_sum;
    assert_non_null(t);
    assert_int_equal(t->type, type);
    assert_int_equal(t->n_dims, n_dims);
    assert_int_equal(t->ne[0], ne0);
    assert_int_equal(t->ne[1], ne1);
    assert_int_equal(t->nbytes, nbytes);
    snprintf(key, sizeof key, "test.sum.%s", name);
    assert_true(gguf_get_i64(f, key, &want_sum));
    assert_int_equal(byte_sum(t), (uint64_t)want_sum);
}

static void test_reads_gguf_py_file(void **state)
{
    char err[512] = "";
    struct gguf_file *f = gguf_open(GGUF_PY_FIXTURE, err, sizeof err);
    if (!f)
        fail_msg("%s (run from the repository root)", err);
    uint32_t u;
    int64_t s;
    float x;
    bool b;
    assert_string_equal(gguf_get_str(f, "general.architecture"), "tiny");
    assert_int_equal(gguf_kv_type(f, "test.u8"), GGUF_U8);
    assert_true(gguf_get_u32(f, "test.u8", &u) && u == 200);
    assert_int_equal(gguf_kv_type(f, "test.i8"), GGUF_I8);
    assert_false(gguf_get_u32(f, "test.i8", &u));
    assert_true(gguf_get_i64(f, "test.i8", &s) && s == -100);
    assert_true(gguf_get_u32(f, "test.u16", &u) && u == 60000);
    assert_true(gguf_get_i64(f, "test.i16", &s) && s == -30000);
    assert_true(gguf_get_u32(f, "test.u32", &u) && u == 4000000000u);
    assert_true(gguf_get_i64(f, "test.i32", &s) && s == -2000000000);
    assert_true(gguf_get_f32(f, "test.f32", &x) && x == 1.5f);
    assert_false(gguf_get_u32(f, "test.u64", &u)); /* 2^40 + 1 */
    assert_true(gguf_get_i64(f, "test.u64", &s) && s == (INT64_C(1) << 40) + 1);
    assert_true(gguf_get_i64(f, "test.i64", &s) && s == -(INT64_C(1) << 40));
    assert_int_equal(gguf_kv_type(f, "test.f64"), GGUF_F64);
    assert_true(gguf_get_f32(f, "test.f64", &x) && x == 0.25f);
    assert_true(gguf_get_bool(f, "test.bool", &b) && b);
    assert_string_equal(gguf_get_str(f, "test.str"), "h\xc3\xa9llo");

    enum gguf_value_type elem_type;
    uint64_t n;
    assert_true(gguf_get_arr(f, "test.arr_u8", &elem_type, &n));
    assert_int_equal(elem_type, GGUF_U8);
    assert_int_equal(n, 3);
    assert_true(gguf_arr_i64(f, "test.arr_u8", 2, &s) && s == 255);
    assert_true(gguf_arr_i64(f, "test.arr_i32", 0, &s) && s == -1);
    assert_true(gguf_arr_i64(f, "test.arr_i32", 2, &s) && s == 7);
    assert_true(gguf_arr_i64(f, "test.arr_i64", 1, &s) && s == INT64_C(1) << 40);
    assert_true(gguf_arr_f32(f, "test.arr_f32", 1, &x) && x == -2.0f);
    assert_true(gguf_arr_f32(f, "test.arr_f64", 0, &x) && x == 1.25f);
    assert_true(gguf_get_arr(f, "test.arr_bool", &elem_type, &n));
    assert_int_equal(elem_type, GGUF_BOOL);
    assert_int_equal(n, 2);
    assert_false(gguf_arr_i64(f, "test.arr_bool", 0, &s));
    assert_string_equal(gguf_arr_str(f, "test.arr_str", 1), "bc");
    assert_string_equal(gguf_arr_str(f, "test.arr_str", 2), "");

    assert_int_equal(gguf_n_tensors(f), 6);
    check_gguf_py_tensor(f, "t.f32", DTYPE_F32, 2, 8, 2, 64);
    check_gguf_py_tensor(f, "t.f16", DTYPE_F16, 2, 4, 3, 24);
    check_gguf_py_tensor(f, "t.bf16", DTYPE_BF16, 1, 32, 1, 64);
    check_gguf_py_tensor(f, "t.q8_0", DTYPE_Q8_0, 2, 64, 2, 2 * 68);
    check_gguf_py_tensor(f, "t.q4_0", DTYPE_Q4_0, 2, 32, 1, 18);
    check_gguf_py_tensor(f, "t.q4_1", DTYPE_Q4_1, 1, 64, 1, 40);
    gguf_close(f);
}

/* Every kv, whatever its type, is copied byte for byte. */
static void test_copy_kv(void **state)
{
    char path[256], err[512] = "";
    struct gguf_file *src = gguf_open(GGUF_PY_FIXTURE, err, sizeof err);
    if (!src)
        fail_msg("%s", err);
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "test.str", "replaced by the copy");
    gguf_copy_kv(w, src);
    tmp_path(path, "copied.gguf");
    assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    struct gguf_file *copy = gguf_open(path, err, sizeof err);
    if (!copy)
        fail_msg("%s", err);
    assert_int_equal(gguf_n_kv(copy), gguf_n_kv(src));
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        size_t src_len, copy_len;
        const unsigned char *a = gguf_kv_encoded(src, i, &src_len);
        int64_t j = gguf_find_key(copy, gguf_key(src, i));
        assert_true(j >= 0);
        const unsigned char *b = gguf_kv_encoded(copy, j, &copy_len);
        assert_int_equal(src_len, copy_len);
        assert_memory_equal(a, b, src_len);
    }
    gguf_close(copy);
    gguf_close(src);
}

/* ---- hostile files ---- */

/* A small file from our writer with every writer value type and a tensor of
 * each dtype; the last tensor ends on the alignment, so no byte is slack. */
static unsigned char *sample_file(size_t *len)
{
    static const char *const words[] = {"one", "two"};
    static const int32_t ints[] = {1, -2};
    static const float floats[] = {0.5f};
    static const unsigned char bytes[256];
    const uint64_t ne32[2] = {32, 1}, ne8[1] = {8};
    struct gguf_writer *w = gguf_writer_new();
    gguf_set_u32(w, "s.u32", 1);
    gguf_set_i32(w, "s.i32", -1);
    gguf_set_u64(w, "s.u64", 2);
    gguf_set_f32(w, "s.f32", 3);
    gguf_set_bool(w, "s.bool", false);
    gguf_set_str(w, "s.str", "four");
    gguf_set_arr_str(w, "s.words", words, 2);
    gguf_set_arr_i32(w, "s.ints", ints, 2);
    gguf_set_arr_f32(w, "s.floats", floats, 1);
    gguf_add_tensor(w, "q8", DTYPE_Q8_0, 2, ne32, bytes, NULL, NULL);
    gguf_add_tensor(w, "q4", DTYPE_Q4_0, 1, ne32, bytes, NULL, NULL);
    gguf_add_tensor(w, "q41", DTYPE_Q4_1, 1, ne32, bytes, NULL, NULL);
    gguf_add_tensor(w, "h", DTYPE_F16, 1, ne8, bytes, NULL, NULL);
    gguf_add_tensor(w, "bh", DTYPE_BF16, 1, ne8, bytes, NULL, NULL);
    gguf_add_tensor(w, "f", DTYPE_F32, 1, ne8, bytes, NULL, NULL);
    char path[256], err[512] = "";
    tmp_path(path, "sample.gguf");
    assert_true(gguf_writer_write(w, path, NULL, NULL, err, sizeof err));
    gguf_writer_free(w);
    return read_file(path, len);
}

/* Every prefix shorter than the data's end fails with an error; longer ones
 * (only alignment padding missing) open. */
static void check_every_prefix(const unsigned char *bytes, size_t len)
{
    char path[256], err[512];
    size_t shortest_ok = SIZE_MAX;
    for (size_t n = 0; n <= len; n++) {
        err[0] = '\0';
        struct gguf_file *f = open_bytes(bytes, n, path, err, sizeof err);
        if (f) {
            walk(f);
            gguf_close(f);
            if (shortest_ok == SIZE_MAX)
                shortest_ok = n;
            continue;
        }
        check_error_names_path(err, path);
        if (shortest_ok != SIZE_MAX)
            fail_msg("prefix of %zu bytes fails (\"%s\") but %zu bytes opened", n, err, shortest_ok);
    }
    assert_true(shortest_ok <= len && shortest_ok + GGUF_DEFAULT_ALIGNMENT > len);
}

static void test_truncated_files(void **state)
{
    size_t len;
    unsigned char *bytes = sample_file(&len);
    check_every_prefix(bytes, len);
    free(bytes);
    bytes = read_file(GGUF_PY_FIXTURE, &len);
    check_every_prefix(bytes, len);
    free(bytes);
}

static void test_bit_flips(void **state)
{
    static const unsigned char masks[] = {0x01, 0x04, 0x20, 0x80, 0xff};
    size_t len;
    unsigned char *bytes = sample_file(&len);
    char path[256], err[512];
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            bytes[i] ^= masks[m];
            err[0] = '\0';
            struct gguf_file *f = open_bytes(bytes, len, path, err, sizeof err);
            if (f) {
                walk(f);
                gguf_close(f);
            } else {
                check_error_names_path(err, path);
            }
            bytes[i] ^= masks[m];
        }
    }
    free(bytes);
}

static void test_bad_header(void **state)
{
    struct raw r = {0};
    raw_put(&r, "GGML", 4);
    raw_u32(&r, 3);
    raw_u64(&r, 0);
    raw_u64(&r, 0);
    expect_error(&r, "bad magic 'GGML' (expected 'GGUF')");

    r.len = 0;
    raw_header(&r, 1, 0, 0);
    expect_error(&r, "unsupported version 1 (expected 2 or 3)");
    r.len = 0;
    raw_header(&r, 4, 0, 0);
    expect_error(&r, "unsupported version 4");
    r.len = 0;
    raw_header(&r, 3u << 24, 0, 0);
    expect_error(&r, "big-endian GGUF files are not supported");

    r.len = 0;
    expect_error(&r, "magic past end of file (4 bytes at byte 0, file is 0 bytes)");
    raw_header(&r, 3, 0, 0);
    r.len -= 3;
    expect_error(&r, "n_kv past end of file");

    r.len = 0;
    raw_header(&r, 3, 0, UINT64_C(1) << 63);
    raw_zeros(&r, 100);
    expect_error(&r, "n_kv = 9223372036854775808 and n_tensors = 0 cannot fit in the 100 bytes left");
    r.len = 0;
    raw_header(&r, 3, UINT64_MAX, 1);
    raw_zeros(&r, 100);
    expect_error(&r, "n_tensors = 18446744073709551615");
}

static void test_version_2_and_empty_files_open(void **state)
{
    struct raw r = {0};
    char path[256], err[512] = "";
    raw_header(&r, 2, 0, 1);
    raw_kv_u32(&r, "a", 1);
    struct gguf_file *f = open_bytes(r.bytes, r.len, path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(gguf_n_kv(f), 1);
    gguf_close(f);

    r.len = 0;
    raw_header(&r, 3, 0, 0);
    f = open_bytes(r.bytes, r.len, path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(gguf_n_kv(f) + gguf_n_tensors(f), 0);
    assert_null(gguf_find_tensor(f, "x"));
    assert_int_equal(gguf_find_key(f, "x"), -1);
    gguf_close(f);
}

static void test_not_a_file(void **state)
{
    char path[256], err[512] = "";
    tmp_path(path, "missing.gguf");
    assert_null(gguf_open(path, err, sizeof err));
    check_error_names_path(err, path);
    check_contains(err, "No such file or directory");
    assert_null(gguf_open(tmp_dir, err, sizeof err));
    check_error_names_path(err, tmp_dir);
    check_contains(err, "not a regular file");
    assert_null(gguf_open(path, NULL, 0)); /* no room for the message is fine */
}

static void test_hostile_strings(void **state)
{
    struct raw r = {0};
    raw_header(&r, 3, 0, 1);
    raw_u64(&r, UINT64_C(1000000000000000000));
    raw_zeros(&r, 16); /* enough for the header's bound on n_kv */
    expect_error(&r, "kv 0: key length 1000000000000000000 past end of file (16 bytes left at byte 32)");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "llama.block_count");
    raw_u32(&r, GGUF_STRING);
    raw_u64(&r, UINT64_C(1000000000000000000));
    expect_error(&r, "kv 0 'llama.block_count': string length 1000000000000000000 past end of file");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_u64(&r, 3);
    raw_put(&r, "a\0b", 3);
    raw_u32(&r, GGUF_U8);
    raw_u8(&r, 0);
    expect_error(&r, "kv 0: key contains a NUL byte");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "");
    raw_u32(&r, GGUF_U8);
    raw_u8(&r, 0);
    expect_error(&r, "kv 0: empty key");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_STRING);
    raw_u64(&r, 2);
    raw_put(&r, "\0x", 2);
    expect_error(&r, "kv 0 'k': string contains a NUL byte");

    r.len = 0; /* unprintable key bytes are shown as '?' */
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "bad\nkey");
    raw_u32(&r, 99);
    expect_error(&r, "kv 0 'bad?key': unknown value type 99");
}

static void test_hostile_values(void **state)
{
    struct raw r = {0};
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_ARRAY);
    raw_u32(&r, GGUF_U32);
    raw_u64(&r, UINT64_C(1) << 62);
    expect_error(&r, "kv 0 'k': array length 4611686018427387904 past end of file");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_ARRAY);
    raw_u32(&r, GGUF_STRING);
    raw_u64(&r, 3);
    raw_str(&r, "x");
    raw_u64(&r, UINT64_C(1000000000000000000));
    raw_zeros(&r, 8);
    expect_error(&r, "kv 0 'k': element 1: string length 1000000000000000000 past end of file");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_ARRAY);
    raw_u32(&r, GGUF_ARRAY);
    raw_u64(&r, 1);
    raw_zeros(&r, 16);
    expect_error(&r, "kv 0 'k': arrays of arrays are not supported");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_ARRAY);
    raw_u32(&r, 13);
    raw_u64(&r, 0);
    expect_error(&r, "kv 0 'k': unknown array element type 13");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_BOOL);
    raw_u8(&r, 2);
    expect_error(&r, "kv 0 'k': bool value 2 is not 0 or 1");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "k");
    raw_u32(&r, GGUF_ARRAY);
    raw_u32(&r, GGUF_BOOL);
    raw_u64(&r, 2);
    raw_u8(&r, 1);
    raw_u8(&r, 5);
    expect_error(&r, "kv 0 'k': element 1: bool value 5 is not 0 or 1");

    r.len = 0;
    raw_header(&r, 3, 0, 2);
    raw_kv_u32(&r, "k", 1);
    raw_kv_u32(&r, "k", 2);
    expect_error(&r, "kv 1 'k': duplicate key (also kv 0)");
}

/* Values our writer cannot produce, read with the conversions the getters promise. */
static void test_conversions(void **state)
{
    struct raw r = {0};
    raw_header(&r, 3, 0, 4);
    raw_str(&r, "big_u64");
    raw_u32(&r, GGUF_U64);
    raw_u64(&r, (UINT64_C(1) << 63) + 1);
    raw_str(&r, "huge_f64");
    raw_u32(&r, GGUF_F64);
    double huge = 1e300;
    raw_put(&r, &huge, sizeof huge);
    raw_str(&r, "neg_i16");
    raw_u32(&r, GGUF_I16);
    int16_t neg = -1;
    raw_put(&r, &neg, sizeof neg);
    raw_str(&r, "u32_max_i64");
    raw_u32(&r, GGUF_I64);
    raw_u64(&r, UINT32_MAX);
    char path[256], err[512] = "";
    struct gguf_file *f = open_bytes(r.bytes, r.len, path, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    uint32_t u = 77;
    int64_t s;
    float x;
    assert_false(gguf_get_i64(f, "big_u64", &s));
    assert_false(gguf_get_u32(f, "big_u64", &u));
    assert_int_equal(u, 77); /* untouched on failure */
    assert_false(gguf_get_f32(f, "huge_f64", &x));
    assert_false(gguf_get_u32(f, "neg_i16", &u));
    assert_true(gguf_get_i64(f, "neg_i16", &s) && s == -1);
    assert_true(gguf_get_u32(f, "u32_max_i64", &u) && u == UINT32_MAX);
    gguf_close(f);
}

static void test_hostile_tensor_infos(void **state)
{
    const uint64_t ne8[1] = {8}, ne31[1] = {31}, ne_zero[2] = {8, 0};
    const uint64_t ne_huge[3] = {UINT64_C(1) << 32, UINT64_C(1) << 32, UINT64_C(1) << 32};
    const uint64_t ne5[5] = {8, 1, 1, 1, 1};
    struct raw r = {0};
    raw_one_tensor(&r, DTYPE_F32, 1, ne8, 0, 32);
    char path[256], err[512] = "";
    struct gguf_file *f = open_bytes(r.bytes, r.len, path, err, sizeof err);
    if (!f)
        fail_msg("the valid base case fails: %s", err);
    gguf_close(f);

    r.len = 0;
    raw_one_tensor(&r, DTYPE_F32, 5, ne5, 0, 32);
    expect_error(&r, "tensor 0 't': n_dims 5 not in 1..4");
    r.len = 0;
    raw_one_tensor(&r, DTYPE_F32, 0, ne5, 0, 32);
    expect_error(&r, "tensor 0 't': n_dims 0 not in 1..4");
    r.len = 0;
    raw_one_tensor(&r, DTYPE_F32, 2, ne_zero, 0, 32);
    expect_error(&r, "tensor 0 't': ne[1] is 0");
    r.len = 0;
    raw_one_tensor(&r, DTYPE_F32, 3, ne_huge, 0, 32);
    expect_error(&r, "tensor 0 't': f32 shape [4294967296, 4294967296, 4294967296, 1] needs more bytes than the file has");
    r.len = 0;
    raw_one_tensor(&r, 6, 1, ne8, 0, 32);
    expect_error(&r, "tensor 0 't': unsupported type 6");
    r.len = 0;
    raw_one_tensor(&r, DTYPE_Q4_0, 1, ne31, 0, 32);
    expect_error(&r, "tensor 0 't': ne[0] = 31 is not a multiple of the q4_0 block size 32");

    r.len = 0;
    raw_header(&r, 3, 1, 0);
    raw_u64(&r, 2);
    raw_put(&r, "t\0", 2);
    raw_zeros(&r, 32);
    expect_error(&r, "tensor 0: name contains a NUL byte");
    r.len = 0;
    raw_header(&r, 3, 1, 0);
    raw_tensor_info(&r, "", 1, ne8, DTYPE_F32, 0);
    expect_error(&r, "tensor 0: empty name");
}

static void test_hostile_tensor_data(void **state)
{
    const uint64_t ne8[1] = {8}, ne16[1] = {16};
    struct raw r = {0};
    raw_one_tensor(&r, DTYPE_F32, 1, ne8, 8, 64);
    expect_error(&r, "tensor 0 't': offset 8 is not a multiple of the alignment 32");

    r.len = 0;
    raw_one_tensor(&r, DTYPE_F32, 1, ne8, 0, 16);
    char want[128];
    snprintf(want, sizeof want, "tensor 0 't': data [%zu, %zu) past end of file (%zu bytes)",
             r.len - 16, r.len + 16, r.len);
    expect_error(&r, want);

    r.len = 0;
    raw_one_tensor(&r, DTYPE_F32, 1, ne8, UINT64_MAX - 31, 32);
    expect_error(&r, "tensor 0 't': offset 18446744073709551584 past end of file");

    r.len = 0; /* t1 starts inside t0 */
    raw_header(&r, 3, 2, 0);
    raw_tensor_info(&r, "t0", 1, ne16, DTYPE_F32, 0);
    raw_tensor_info(&r, "t1", 1, ne8, DTYPE_F32, 32);
    raw_pad(&r, 32);
    size_t data_start = r.len;
    raw_zeros(&r, 64);
    snprintf(want, sizeof want, "tensor 1 't1': data [%zu, %zu) overlaps tensor 0 't0' [%zu, %zu)",
             data_start + 32, data_start + 64, data_start, data_start + 64);
    expect_error(&r, want);

    r.len = 0;
    raw_header(&r, 3, 2, 0);
    raw_tensor_info(&r, "t", 1, ne8, DTYPE_F32, 0);
    raw_tensor_info(&r, "t", 1, ne8, DTYPE_F32, 32);
    raw_pad(&r, 32);
    raw_zeros(&r, 64);
    expect_error(&r, "tensor 1 't': duplicate name (also tensor 0)");
}

static void test_alignment_key(void **state)
{
    const uint64_t ne8[1] = {8};
    struct raw r = {0};
    raw_header(&r, 3, 0, 1);
    raw_kv_u32(&r, "general.alignment", 3);
    expect_error(&r, "kv 0 'general.alignment': alignment 3 is not a power of two");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_kv_u32(&r, "general.alignment", 0);
    expect_error(&r, "alignment 0 is not a power of two");

    r.len = 0;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "general.alignment");
    raw_u32(&r, GGUF_U64);
    raw_u64(&r, 32);
    expect_error(&r, "kv 0 'general.alignment': value type 10, expected u32 (4)");

    r.len = 0; /* offset 32 is fine for 32 but not for 64 */
    raw_header(&r, 3, 2, 1);
    raw_kv_u32(&r, "general.alignment", 64);
    raw_tensor_info(&r, "a", 1, ne8, DTYPE_F32, 0);
    raw_tensor_info(&r, "b", 1, ne8, DTYPE_F32, 32);
    raw_pad(&r, 64);
    raw_zeros(&r, 64);
    expect_error(&r, "tensor 1 'b': offset 32 is not a multiple of the alignment 64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_round_trip_values),
        cmocka_unit_test(test_round_trip_tensors),
        cmocka_unit_test(test_custom_alignment),
        cmocka_unit_test(test_writer_refuses_bad_tensors),
        cmocka_unit_test(test_writer_refuses_bad_metadata),
        cmocka_unit_test(test_fill_failure_keeps_old_file),
        cmocka_unit_test(test_write_into_missing_directory),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_reads_gguf_py_file),
        cmocka_unit_test(test_copy_kv),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_version_2_and_empty_files_open),
        cmocka_unit_test(test_not_a_file),
        cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_hostile_tensor_infos),
        cmocka_unit_test(test_hostile_tensor_data),
        cmocka_unit_test(test_alignment_key),
    };
    return cmocka_run_group_tests(tests, make_tmp_dir, remove_tmp_dir);
}
