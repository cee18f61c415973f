/* GGUF writer. Each kv is kept encoded exactly as it will appear in the file
 * (type field, then value), so setters, replacement and gguf_copy_kv are all
 * byte copies. Mistakes in the setters (which return nothing) are remembered
 * and reported by gguf_writer_write. */
#include "gguf.h"
#include "gguf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF fields are stored with memcpy, which assumes a little-endian host"
#endif

#define GGUF_WRITE_VERSION 3

struct encoded_kv {
    char *key;
    unsigned char *value; /* type field and value, as in the file */
    size_t value_len;
};

struct pending_tensor {
    char *name;
    enum dtype type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset; /* from the start of the data section, set when writing */
    const void *data;
    gguf_fill_fn fill;
    void *fill_ctx;
};

struct gguf_writer {
    struct encoded_kv *kvs;
    size_t n_kv, kv_cap;
    struct pending_tensor *tensors;
    size_t n_tensors, tensor_cap;
    char error[256]; /* the first misuse or allocation failure, or empty */
};

__attribute__((format(printf, 2, 3)))
static void note_error(struct gguf_writer *w, const char *fmt, ...)
{
    if (w->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
}

/* Room for one more item in a growing array; NULL if out of memory. */
static void *grow(void *items, size_t *cap, size_t n, size_t item_size)
{
    if (n < *cap)
        return items;
    size_t new_cap = *cap ? *cap * 2 : 16;
    void *grown = new_cap <= SIZE_MAX / item_size ? realloc(items, new_cap * item_size) : NULL;
    if (grown)
        *cap = new_cap;
    return grown;
}

struct gguf_writer *gguf_writer_new(void)
{
    return calloc(1, sizeof(struct gguf_writer));
}

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* ---- encoding values ---- */

/* A growing byte string; after an allocation failure it stays failed. */
struct buffer {
    unsigned char *bytes;
    size_t len, cap;
    bool failed;
};

static void put(struct buffer *b, const void *src, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n && cap <= SIZE_MAX / 2)
            cap *= 2;
        unsigned char *grown = cap - b->len >= n ? realloc(b->bytes, cap) : NULL;
        if (!grown) {
            b->failed = true;
            return;
        }
        b->bytes = grown;
        b->cap = cap;
    }
    memcpy(b->bytes + b->len, src, n);
    b->len += n;
}

static void put_u32(struct buffer *b, uint32_t v) { put(b, &v, sizeof v); }
static void put_u64(struct buffer *b, uint64_t v) { put(b, &v, sizeof v); }

static void put_string(struct buffer *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static struct buffer begin_value(enum gguf_value_type type)
{
    struct buffer b = {0};
    put_u32(&b, type);
    return b;
}

static struct buffer begin_array(enum gguf_value_type elem_type, uint64_t n)
{
    struct buffer b = begin_value(GGUF_ARRAY);
    put_u32(&b, elem_type);
    put_u64(&b, n);
    return b;
}

static struct encoded_kv *find_kv(struct gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0)
            return &w->kvs[i];
    return NULL;
}

static struct encoded_kv *append_kv(struct gguf_writer *w, const char *key)
{
    struct encoded_kv *kvs = grow(w->kvs, &w->kv_cap, w->n_kv, sizeof *kvs);
    if (!kvs)
        return NULL;
    w->kvs = kvs;
    char *key_copy = strdup(key);
    if (!key_copy)
        return NULL;
    kvs[w->n_kv] = (struct encoded_kv){.key = key_copy};
    return &kvs[w->n_kv++];
}

/* Stores an encoded value under key, taking ownership of its bytes. */
static void set_encoded(struct gguf_writer *w, const char *key, struct buffer *value)
{
    struct encoded_kv *kv = NULL;
    if (!key || !*key)
        note_error(w, "a kv without a key");
    else if (value->failed || (!(kv = find_kv(w, key)) && !(kv = append_kv(w, key))))
        note_error(w, "out of memory setting '%s'", key);
    if (!kv) {
        free(value->bytes);
        return;
    }
    free(kv->value);
    kv->value = value->bytes;
    kv->value_len = value->len;
}

void gguf_set_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    struct buffer b = begin_value(GGUF_U32);
    put(&b, &v, sizeof v);
    set_encoded(w, key, &b);
}

void gguf_set_i32(struct gguf_writer *w, const char *key, int32_t v)
{
    struct buffer b = begin_value(GGUF_I32);
    put(&b, &v, sizeof v);
    set_encoded(w, key, &b);
}

void gguf_set_u64(struct gguf_writer *w, const char *key, uint64_t v)
{
    struct buffer b = begin_value(GGUF_U64);
    put(&b, &v, sizeof v);
    set_encoded(w, key, &b);
}

void gguf_set_f32(struct gguf_writer *w, const char *key, float v)
{
    struct buffer b = begin_value(GGUF_F32);
    put(&b, &v, sizeof v);
    set_encoded(w, key, &b);
}

void gguf_set_bool(struct gguf_writer *w, const char *key, bool v)
{
    struct buffer b = begin_value(GGUF_BOOL);
    uint8_t byte = v;
    put(&b, &byte, sizeof byte);
    set_encoded(w, key, &b);
}

void gguf_set_str(struct gguf_writer *w, const char *key, const char *v)
{
    if (!v) {
        note_error(w, "'%s': NULL string", key ? key : "");
        return;
    }
    struct buffer b = begin_value(GGUF_STRING);
    put_string(&b, v);
    set_encoded(w, key, &b);
}

void gguf_set_arr_str(struct gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    struct buffer b = begin_array(GGUF_STRING, n);
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i]) {
            note_error(w, "'%s': element %" PRIu64 " is a NULL string", key ? key : "", i);
            free(b.bytes);
            return;
        }
        put_string(&b, v[i]);
    }
    set_encoded(w, key, &b);
}

/* Numeric arrays are their elements' bytes, unpadded. */
static void set_numeric_array(struct gguf_writer *w, const char *key, enum gguf_value_type type,
                              const void *v, size_t elem_size, uint64_t n)
{
    struct buffer b = begin_array(type, n);
    if (n > SIZE_MAX / elem_size)
        b.failed = true;
    else
        put(&b, v, (size_t)n * elem_size);
    set_encoded(w, key, &b);
}

void gguf_set_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    set_numeric_array(w, key, GGUF_I32, v, sizeof *v, n);
}

void gguf_set_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n)
{
    set_numeric_array(w, key, GGUF_F32, v, sizeof *v, n);
}

void gguf_copy_kv_prefix(struct gguf_writer *w, const struct gguf_file *src, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        if (strncmp(gguf_key(src, i), prefix, plen) != 0)
            continue;
        size_t len = 0;
        const unsigned char *encoded = gguf_kv_encoded(src, i, &len);
        struct buffer b = {0};
        put(&b, encoded, len);
        set_encoded(w, gguf_key(src, i), &b);
    }
}

void gguf_copy_kv(struct gguf_writer *w, const struct gguf_file *src)
{
    gguf_copy_kv_prefix(w, src, "");
}

/* ---- tensors ---- */

static bool has_tensor(const struct gguf_writer *w, const char *name)
{
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return true;
    return false;
}

/* Checks what the reader would check, so a bad tensor is reported here
 * rather than written into a file nobody can open. Sets t->nbytes. */
static bool check_tensor(struct gguf_writer *w, const char *name, struct pending_tensor *t)
{
    if (!dtype_is_supported(t->type))
        note_error(w, "tensor '%s': unsupported type %d", name, (int)t->type);
    else if ((t->data == NULL) == (t->fill == NULL))
        note_error(w, "tensor '%s': exactly one of data and fill must be given", name);
    else if (t->ne[0] % dtype_block_elems(t->type) != 0)
        note_error(w, "tensor '%s': ne[0] = %" PRIu64 " is not a multiple of the %s block size %zu",
                   name, t->ne[0], dtype_name(t->type), dtype_block_elems(t->type));
    else if (!gguf_tensor_nbytes(t->type, t->ne, &t->nbytes))
        note_error(w, "tensor '%s': a dimension is 0 or the size overflows", name);
    else if (has_tensor(w, name))
        note_error(w, "tensor '%s' added twice", name);
    else
        return true;
    return false;
}

void gguf_add_tensor(struct gguf_writer *w, const char *name, enum dtype type,
                     int n_dims, const uint64_t *ne, const void *data,
                     gguf_fill_fn fill, void *fill_ctx)
{
    if (!name || !*name || !ne) {
        note_error(w, "a tensor without a name or shape");
        return;
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        note_error(w, "tensor '%s': n_dims %d not in 1..%d", name, n_dims, GGUF_MAX_DIMS);
        return;
    }
    struct pending_tensor t = {.type = type, .n_dims = n_dims, .data = data,
                               .fill = fill, .fill_ctx = fill_ctx};
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    if (!check_tensor(w, name, &t))
        return;
    struct pending_tensor *tensors = grow(w->tensors, &w->tensor_cap, w->n_tensors, sizeof *tensors);
    if (tensors)
        w->tensors = tensors;
    if (!tensors || !(t.name = strdup(name))) {
        note_error(w, "out of memory adding tensor '%s'", name);
        return;
    }
    w->tensors[w->n_tensors++] = t;
}

/* ---- writing ---- */

/* The temporary file being written and the first error, "PATH: what". */
struct output {
    FILE *fp;
    const char *path;     /* the final name, for messages about content */
    const char *tmp_path; /* for messages about I/O */
    uint64_t pos;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static bool output_fail(struct output *o, const char *fmt, ...)
{
    if (!o->err || o->errlen == 0)
        return false;
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(o->err, o->errlen, "%s: %s", o->path, msg);
    return false;
}

static bool io_fail(struct output *o, const char *what)
{
    return output_fail(o, "%s %s: %s", what, o->tmp_path, strerror(errno));
}

static bool write_bytes(struct output *o, const void *p, size_t n)
{
    if (n > 0 && fwrite(p, 1, n, o->fp) != n)
        return io_fail(o, "writing");
    o->pos += n;
    return true;
}

static bool write_u32(struct output *o, uint32_t v) { return write_bytes(o, &v, sizeof v); }
static bool write_u64(struct output *o, uint64_t v) { return write_bytes(o, &v, sizeof v); }

static bool write_string(struct output *o, const char *s)
{
    return write_u64(o, strlen(s)) && write_bytes(o, s, strlen(s));
}

static uint64_t align_up(uint64_t x, uint32_t alignment)
{
    return x + (alignment - x % alignment) % alignment;
}

static bool write_padding(struct output *o, uint32_t alignment)
{
    static const unsigned char zeros[256];
    uint64_t n = align_up(o->pos, alignment) - o->pos;
    while (n > 0) {
        size_t chunk = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (!write_bytes(o, zeros, chunk))
            return false;
        n -= chunk;
    }
    return true;
}

/* general.alignment, if set, must be a u32 power of two; the reader would
 * refuse anything else. */
static bool choose_alignment(struct gguf_writer *w, struct output *o, uint32_t *alignment)
{
    *alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct encoded_kv *kv = find_kv(w, "general.alignment");
    if (!kv)
        return true;
    uint32_t type;
    memcpy(&type, kv->value, sizeof type);
    if (type != GGUF_U32 || kv->value_len != 2 * sizeof(uint32_t))
        return output_fail(o, "general.alignment must be a u32");
    memcpy(alignment, kv->value + sizeof type, sizeof *alignment);
    if (*alignment == 0 || (*alignment & (*alignment - 1)) != 0)
        return output_fail(o, "general.alignment %" PRIu32 " is not a power of two", *alignment);
    return true;
}

/* Offsets in the data section: each tensor starts aligned. */
static bool assign_offsets(struct gguf_writer *w, struct output *o, uint32_t alignment)
{
    uint64_t next = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        struct pending_tensor *t = &w->tensors[i];
        t->offset = next;
        if (t->nbytes > UINT64_MAX - next - alignment)
            return output_fail(o, "tensor '%s': data section larger than 2^64 bytes", t->name);
        next = align_up(next + t->nbytes, alignment);
    }
    return true;
}

static bool write_metadata(struct gguf_writer *w, struct output *o, uint32_t alignment)
{
    if (!write_bytes(o, "GGUF", 4) || !write_u32(o, GGUF_WRITE_VERSION) ||
        !write_u64(o, w->n_tensors) || !write_u64(o, w->n_kv))
        return false;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!write_string(o, w->kvs[i].key) ||
            !write_bytes(o, w->kvs[i].value, w->kvs[i].value_len))
            return false;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct pending_tensor *t = &w->tensors[i];
        if (!write_string(o, t->name) || !write_u32(o, (uint32_t)t->n_dims))
            return false;
        for (int d = 0; d < t->n_dims; d++)
            if (!write_u64(o, t->ne[d]))
                return false;
        if (!write_u32(o, t->type) || !write_u64(o, t->offset))
            return false;
    }
    return write_padding(o, alignment);
}

/* A fill callback gets a buffer of its own, freed once the bytes are out. */
static bool write_tensor_data(struct output *o, const struct pending_tensor *t, size_t index)
{
    if (t->data)
        return write_bytes(o, t->data, t->nbytes);
    void *buf = t->nbytes <= SIZE_MAX ? malloc(t->nbytes) : NULL;
    if (!buf)
        return output_fail(o, "tensor %zu '%s': out of memory for %" PRIu64 " bytes",
                           index, t->name, t->nbytes);
    bool ok = t->fill(t->fill_ctx, buf, t->nbytes)
                  ? write_bytes(o, buf, t->nbytes)
                  : output_fail(o, "tensor %zu '%s': fill callback failed", index, t->name);
    free(buf);
    return ok;
}

static bool write_contents(struct gguf_writer *w, struct output *o, uint32_t alignment,
                           void (*progress)(void *ctx, int64_t done, int64_t total),
                           void *progress_ctx)
{
    if (!write_metadata(w, o, alignment))
        return false;
    uint64_t data_start = o->pos;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct pending_tensor *t = &w->tensors[i];
        if (o->pos != data_start + t->offset)
            return output_fail(o, "tensor %zu '%s': internal layout error", i, t->name);
        if (!write_tensor_data(o, t, i) || !write_padding(o, alignment))
            return false;
        if (progress)
            progress(progress_ctx, (int64_t)i + 1, (int64_t)w->n_tensors);
    }
    return true;
}

/* fsync before rename so a crash leaves the old file or the new one. */
static bool close_output(struct output *o)
{
    bool ok = fflush(o->fp) == 0 ? true : io_fail(o, "flushing");
    if (ok && fsync(fileno(o->fp)) != 0)
        ok = io_fail(o, "syncing");
    if (fclose(o->fp) != 0 && ok)
        ok = io_fail(o, "closing");
    o->fp = NULL;
    return ok;
}

bool gguf_writer_write(struct gguf_writer *w, const char *path,
                       void (*progress)(void *ctx, int64_t done, int64_t total),
                       void *progress_ctx, char *err, size_t errlen)
{
    struct output o = {.path = path, .err = err, .errlen = errlen};
    if (w->error[0])
        return output_fail(&o, "%s", w->error);
    uint32_t alignment;
    if (!choose_alignment(w, &o, &alignment) || !assign_offsets(w, &o, alignment))
        return false;
    size_t tmp_len = strlen(path) + sizeof ".tmp";
    char *tmp_path = malloc(tmp_len);
    if (!tmp_path)
        return output_fail(&o, "out of memory");
    snprintf(tmp_path, tmp_len, "%s.tmp", path);
    o.tmp_path = tmp_path;
    o.fp = fopen(tmp_path, "wb");
    bool ok = o.fp ? true : io_fail(&o, "creating");
    if (ok) {
        ok = write_contents(w, &o, alignment, progress, progress_ctx);
        if (!ok)
            fclose(o.fp);
        else
            ok = close_output(&o);
        if (ok && rename(tmp_path, path) != 0)
            ok = io_fail(&o, "renaming");
        if (!ok)
            unlink(tmp_path);
    }
    free(tmp_path);
    return ok;
}
