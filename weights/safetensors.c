/* safetensors reader: the header is parsed and every tensor checked before
 * the file is handed out; reads convert rows to float32. */
#include "safetensors.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../kernels/cpu/convert.h"
#include "../kernels/cpu/quant.h"
#include "json_file.h"
#include "file_map.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors fields are loaded with memcpy, which assumes a little-endian host"
#endif

#define MAX_NAME_SHOWN 64 /* characters of a tensor name quoted in errors */

struct st_file {
    char *path;
    const unsigned char *bytes; /* the whole file */
    uint64_t size;
    bool mapped;                /* bytes is our mapping (st_open), not the caller's */
    struct st_tensor *tensors;  /* by data offset */
    int64_t n_tensors;
    struct st_tensor **by_name;
    char *names;                /* every name, NUL-terminated */
};

struct parser {
    struct st_file *f;
    char where[MAX_NAME_SHOWN + 32]; /* "tensor 'x'"; empty for the header */
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static bool fail(struct parser *p, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s: %s%s%s", p->f->path, p->where, p->where[0] ? ": " : "", msg);
    return false;
}

/* Quotes at most MAX_NAME_SHOWN bytes of a name, unprintable bytes as '?'. */
static void set_where(struct parser *p, const char *name, size_t len)
{
    size_t shown = len < MAX_NAME_SHOWN ? len : MAX_NAME_SHOWN, n = 0;
    n += (size_t)snprintf(p->where, sizeof p->where, "tensor '");
    for (size_t i = 0; i < shown; i++)
        p->where[n++] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    snprintf(p->where + n, sizeof p->where - n, "%s'", shown < len ? "..." : "");
}

/* ---- one tensor's entry ---- */

static const struct {
    const char *name;
    enum dtype type;
    unsigned size;
} dtypes[] = {
    {"F32", DTYPE_F32, 4},
    {"F16", DTYPE_F16, 2},
    {"BF16", DTYPE_BF16, 2},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

static unsigned dtype_size(enum dtype t)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].type == t)
            return dtypes[i].size;
    return 0;
}

static bool parse_dtype(struct parser *p, json_object *v, struct st_tensor *t)
{
    if (!v || !json_object_is_type(v, json_type_string))
        return fail(p, "'dtype' missing or not a string");
    const char *s = json_object_get_string(v);
    for (size_t i = 0; i < N_DTYPES; i++) {
        if (strcmp(s, dtypes[i].name) == 0) {
            t->type = dtypes[i].type;
            return true;
        }
    }
    return fail(p, "dtype '%.16s' is not supported (F32, F16, BF16)", s);
}

static const char *st_dtype_name(enum dtype t)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].type == t)
            return dtypes[i].name;
    return "?";
}

static bool parse_shape(struct parser *p, json_object *v, struct st_tensor *t)
{
    if (!v || !json_object_is_type(v, json_type_array))
        return fail(p, "'shape' missing or not an array");
    size_t n = json_object_array_length(v);
    if (n > ST_MAX_DIMS)
        return fail(p, "shape has %zu dimensions (at most %d)", n, ST_MAX_DIMS);
    t->n_dims = (int)n;
    t->n_elems = 1;
    for (size_t d = 0; d < n; d++) {
        int64_t x;
        if (!json_int(json_object_array_get_idx(v, d), &x) || x < 0)
            return fail(p, "shape[%zu] is not a non-negative integer", d);
        t->shape[d] = (uint64_t)x;
    }
    /* a zero anywhere makes the count 0, whatever the other dimensions */
    for (size_t d = 0; d < n; d++) {
        if (t->shape[d] == 0) {
            t->n_elems = 0;
            return true;
        }
    }
    for (size_t d = 0; d < n; d++) {
        if (t->n_elems > UINT64_MAX / 8 / t->shape[d])
            return fail(p, "shape overflows (%zu dimensions)", n);
        t->n_elems *= t->shape[d];
    }
    return true;
}

/* begin, end relative to the data section of data_size bytes. */
static bool parse_offsets(struct parser *p, json_object *v, uint64_t data_size, uint64_t *begin,
                          struct st_tensor *t)
{
    int64_t b, e;
    if (!v || !json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2)
        return fail(p, "'data_offsets' missing or not [begin, end]");
    if (!json_int(json_object_array_get_idx(v, 0), &b) || !json_int(json_object_array_get_idx(v, 1), &e) ||
        b < 0 || e < 0)
        return fail(p, "'data_offsets' are not non-negative integers");
    if (b > e)
        return fail(p, "data_offsets [%" PRId64 ", %" PRId64 ") end before they begin", b, e);
    if ((uint64_t)e > data_size)
        return fail(p, "data [%" PRId64 ", %" PRId64 ") past end of data (%" PRIu64 " bytes)", b, e, data_size);
    t->nbytes = t->n_elems * dtype_size(t->type);
    if ((uint64_t)(e - b) != t->nbytes)
        return fail(p, "%s shape of %" PRIu64 " elements needs %" PRIu64 " bytes, data_offsets give %" PRId64,
                    st_dtype_name(t->type), t->n_elems, t->nbytes, e - b);
    *begin = (uint64_t)b;
    return true;
}

static bool parse_entry(struct parser *p, const char *name, json_object *v, uint64_t data_start,
                        struct st_tensor *t)
{
    set_where(p, name, strlen(name));
    if (name[0] == '\0')
        return fail(p, "empty name");
    if (!json_object_is_type(v, json_type_object))
        return fail(p, "entry is not an object");
    json_object *dtype = NULL, *shape = NULL, *offsets = NULL;
    json_object_object_get_ex(v, "dtype", &dtype);
    json_object_object_get_ex(v, "shape", &shape);
    json_object_object_get_ex(v, "data_offsets", &offsets);
    uint64_t begin = 0;
    if (!parse_dtype(p, dtype, t) || !parse_shape(p, shape, t) ||
        !parse_offsets(p, offsets, p->f->size - data_start, &begin, t))
        return false;
    t->data = p->f->bytes + data_start + begin;
    t->file = p->f;
    return true;
}

/* ---- the header ---- */

static int compare_by_offset(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    const unsigned char *xd = x->data, *yd = y->data;
    if (xd != yd)
        return xd < yd ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int compare_by_name(const void *a, const void *b)
{
    return strcmp((*(struct st_tensor *const *)a)->name, (*(struct st_tensor *const *)b)->name);
}

static bool check_overlaps(struct parser *p)
{
    struct st_file *f = p->f;
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, compare_by_offset);
    const struct st_tensor *prev = NULL;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const struct st_tensor *t = &f->tensors[i];
        if (t->nbytes == 0)
            continue;
        if (prev && (const unsigned char *)t->data < (const unsigned char *)prev->data + prev->nbytes) {
            set_where(p, t->name, strlen(t->name));
            return fail(p, "data overlaps tensor '%.*s'", MAX_NAME_SHOWN, prev->name);
        }
        prev = t;
    }
    return true;
}

static bool index_names(struct parser *p)
{
    struct st_file *f = p->f;
    f->by_name = malloc(((size_t)f->n_tensors + 1) * sizeof *f->by_name);
    if (!f->by_name)
        return fail(p, "out of memory");
    for (int64_t i = 0; i < f->n_tensors; i++)
        f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, compare_by_name);
    return true;
}

/* Copies the names out (json-c's strings go with the JSON tree) and parses
 * each entry. */
static bool parse_entries(struct parser *p, json_object *root, uint64_t data_start)
{
    struct st_file *f = p->f;
    size_t n = 0, bytes = 0;
    json_object_object_foreach(root, key, val) {
        (void)val;
        if (strcmp(key, "__metadata__") != 0) {
            n++;
            bytes += strlen(key) + 1;
        }
    }
    f->tensors = calloc(n + 1, sizeof *f->tensors);
    f->names = malloc(bytes + 1);
    if (!f->tensors || !f->names)
        return fail(p, "out of memory for %zu tensors", n);
    char *next = f->names;
    json_object_object_foreach(root, name, entry) {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        struct st_tensor *t = &f->tensors[f->n_tensors];
        size_t len = strlen(name);
        t->name = memcpy(next, name, len + 1);
        next += len + 1;
        if (!parse_entry(p, name, entry, data_start, t))
            return false;
        f->n_tensors++;
    }
    p->where[0] = '\0';
    return check_overlaps(p) && index_names(p);
}

static bool parse(struct parser *p)
{
    struct st_file *f = p->f;
    uint64_t n;
    if (f->size < 8)
        return fail(p, "%" PRIu64 " bytes is too short for a safetensors file", f->size);
    memcpy(&n, f->bytes, 8);
    if (n > f->size - 8)
        return fail(p, "header length %" PRIu64 " past end of file (%" PRIu64 " bytes)", n, f->size);
    if (n > ST_MAX_HEADER_BYTES)
        return fail(p, "header length %" PRIu64 " over the format's limit of %u", n, ST_MAX_HEADER_BYTES);
    if (n < 2 || f->bytes[8] != '{')
        return fail(p, "header does not start with '{' (not a safetensors file)");
    const char *text = (const char *)f->bytes + 8;
    if (memchr(text, 0, n))
        return fail(p, "header contains a NUL byte");
    char jerr[256];
    json_object *root = json_parse_text("header", text, n, jerr, sizeof jerr);
    if (!root)
        return fail(p, "%s", jerr);
    bool ok = json_object_is_type(root, json_type_object) ? parse_entries(p, root, 8 + n)
                                                         : fail(p, "header is not a JSON object");
    json_object_put(root);
    return ok;
}

/* ---- open / close ---- */

static struct st_file *new_file(const char *path, char *err, size_t errlen)
{
    struct st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(f);
        return NULL;
    }
    return f;
}

struct st_file *st_parse(const char *name, const void *data, uint64_t size, char *err, size_t errlen)
{
    struct st_file *f = new_file(name, err, errlen);
    if (!f)
        return NULL;
    f->bytes = data;
    f->size = size;
    struct parser p = {.f = f, .err = err, .errlen = errlen};
    if (!parse(&p)) {
        st_close(f);
        return NULL;
    }
    return f;
}

static bool map_file(struct parser *p)
{
    struct st_file *f = p->f;
    const uint8_t *bytes;
    char why[256];
    /* tensors are read in file order, mostly */
    if (!file_map(f->path, true, &bytes, &f->size, why, sizeof why))
        return fail(p, "%s", why);
    f->bytes = bytes;
    f->mapped = bytes != NULL;
    return true;
}

struct st_file *st_open(const char *path, char *err, size_t errlen)
{
    struct st_file *f = new_file(path, err, errlen);
    if (!f)
        return NULL;
    struct parser p = {.f = f, .err = err, .errlen = errlen};
    if (!map_file(&p) || !parse(&p)) {
        st_close(f);
        return NULL;
    }
    return f;
}

void st_close(struct st_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        file_unmap(f->bytes, f->size);
    free(f->tensors);
    free(f->by_name);
    free(f->names);
    free(f->path);
    free(f);
}

const char *st_path(const struct st_file *f) { return f->path; }
int64_t st_n_tensors(const struct st_file *f) { return f->n_tensors; }

const struct st_tensor *st_tensor_at(const struct st_file *f, int64_t i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
    struct st_tensor key = {.name = name}, *pkey = &key;
    struct st_tensor **hit = bsearch(&pkey, f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, compare_by_name);
    return hit ? *hit : NULL;
}

/* ---- data ---- */

void st_read_rows(const struct st_tensor *t, uint64_t row_len, uint64_t row0, uint64_t n_rows, float *dst)
{
    unsigned size = dtype_size(t->type);
    const unsigned char *src = (const unsigned char *)t->data + row0 * row_len * size;
    uint64_t n = row_len * n_rows;
    /* The data section starts wherever the header ends, so elements may be
     * misaligned; the vector path wants them aligned. */
    if ((uintptr_t)src % size == 0) {
        dequantize_row(t->type, src, dst, (int64_t)n);
        return;
    }
    for (uint64_t i = 0; i < n; i++, src += size) {
        uint32_t bits = 0;
        memcpy(&bits, src, size);
        if (t->type == DTYPE_F32)
            memcpy(&dst[i], &bits, 4);
        else
            dst[i] = t->type == DTYPE_F16 ? fp16_to_f32((uint16_t)bits) : bf16_to_f32((uint16_t)bits);
    }
}

void st_release(const struct st_tensor *t, uint64_t n_bytes)
{
    if (!t->file->mapped)
        return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)t->data, end = start + (n_bytes < t->nbytes ? n_bytes : t->nbytes);
    /* whole pages inside [start, end) only: a page shared with a neighbour stays */
    start = (start + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    end = end / (uintptr_t)page * (uintptr_t)page;
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}
