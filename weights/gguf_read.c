/* GGUF reader. gguf_open maps the file and makes one validating pass over the
 * metadata that records where each key, value and tensor info lies in the
 * mapping; only when all of it is known to be well formed are the strings
 * copied out (into one allocation) and the tensor data ranges checked. */
#include "gguf.h"
#include "gguf_internal.h"
#include "file_map.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF fields are loaded with memcpy, which assumes a little-endian host"
#endif

/* Smallest possible encodings, to bound counts by the bytes left before any
 * allocation is sized by them: a kv is a key length, its type and a 1-byte
 * value; a tensor info is a name length, n_dims, one dimension, type and
 * offset; an element of an array of strings is at least its length field.
 * Empty keys and names count, so that they get their own error. */
#define MIN_KV_BYTES (8 + 4 + 1)
#define MIN_TENSOR_INFO_BYTES (8 + 4 + 8 + 4 + 8)
#define MIN_STRING_BYTES 8
#define MAX_NAME_SHOWN 64 /* characters of a key or tensor name quoted in errors */

struct kv {
    const char *key;
    const unsigned char *key_src;   /* length-prefixed key in the mapping */
    const unsigned char *encoded;   /* type field and value in the mapping */
    uint64_t encoded_len;
    enum gguf_value_type type;      /* GGUF_ARRAY for arrays */
    enum gguf_value_type elem_type; /* arrays only */
    uint64_t count;                 /* arrays only */
    const unsigned char *value;     /* scalar, length-prefixed string, or first element */
    const char *str;                /* GGUF_STRING values */
    const char **strs;              /* arrays of strings */
};

struct tensor {
    struct gguf_tensor pub;
    const unsigned char *name_src; /* length-prefixed name in the mapping */
    uint64_t offset;               /* from the start of the data section */
};

struct gguf_file {
    char *path;
    const unsigned char *map; /* NULL for an empty file, which mmap refuses */
    uint64_t size;
    struct kv *kvs;
    int64_t n_kv;
    struct tensor *tensors;
    int64_t n_tensors;
    struct kv **kvs_by_key;          /* sorted by key, for lookups */
    struct tensor **tensors_by_name; /* sorted by name, for lookups */
    char *strings;                   /* every key, string and name, NUL-terminated */
    const char **string_elems;       /* elements of all string arrays */
};

/* A cursor over the mapping, what it is reading (for errors), and the string
 * totals that size the copy-out. */
struct parser {
    struct gguf_file *f;
    uint64_t pos;
    char where[160]; /* "kv 7 'llama.block_count'"; empty for the header */
    int64_t elem;    /* array element being read, or -1 */
    uint64_t string_bytes;
    uint64_t n_strings;
    uint64_t n_string_elems;
    char *err;
    size_t errlen;
};

/* ---- errors ---- */

__attribute__((format(printf, 2, 3)))
static bool fail(struct parser *p, const char *fmt, ...)
{
    if (!p->err || p->errlen == 0)
        return false;
    char msg[256], elem[48] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->elem >= 0)
        snprintf(elem, sizeof elem, "element %" PRId64 ": ", p->elem);
    snprintf(p->err, p->errlen, "%s: %s%s%s%s", p->f->path, p->where,
             p->where[0] ? ": " : "", elem, msg);
    return false;
}

/* Names the item being read, e.g. "tensor 3 'blk.0.attn_q.weight'", quoting
 * at most MAX_NAME_SHOWN bytes of the name with unprintable bytes as '?'. */
static void set_where(struct parser *p, const char *kind, int64_t index,
                      const void *name, uint64_t name_len)
{
    size_t n = (size_t)snprintf(p->where, sizeof p->where, "%s %" PRId64, kind, index);
    if (!name)
        return;
    const unsigned char *s = name;
    uint64_t shown = name_len < MAX_NAME_SHOWN ? name_len : MAX_NAME_SHOWN;
    p->where[n++] = ' ';
    p->where[n++] = '\'';
    for (uint64_t i = 0; i < shown; i++)
        p->where[n++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    snprintf(p->where + n, sizeof p->where - n, "%s'", shown < name_len ? "..." : "");
}

/* ---- primitive reads ---- */

/* The next n bytes, advancing past them; NULL (and an error) past the end. */
static const unsigned char *take(struct parser *p, uint64_t n, const char *what)
{
    if (n > p->f->size - p->pos) {
        fail(p, "%s past end of file (%" PRIu64 " bytes at byte %" PRIu64
             ", file is %" PRIu64 " bytes)", what, n, p->pos, p->f->size);
        return NULL;
    }
    const unsigned char *s = p->f->map + p->pos;
    p->pos += n;
    return s;
}

static bool read_u32(struct parser *p, const char *what, uint32_t *out)
{
    const unsigned char *s = take(p, sizeof *out, what);
    if (s)
        memcpy(out, s, sizeof *out);
    return s != NULL;
}

static bool read_u64(struct parser *p, const char *what, uint64_t *out)
{
    const unsigned char *s = take(p, sizeof *out, what);
    if (s)
        memcpy(out, s, sizeof *out);
    return s != NULL;
}

/* Checks a length-prefixed string and counts it for the copy-out. */
static bool read_string(struct parser *p, const char *what, uint64_t *len)
{
    if (!read_u64(p, what, len))
        return false;
    uint64_t left = p->f->size - p->pos;
    if (*len > left)
        return fail(p, "%s length %" PRIu64 " past end of file (%" PRIu64
                    " bytes left at byte %" PRIu64 ")", what, *len, left, p->pos);
    if (memchr(p->f->map + p->pos, 0, *len))
        return fail(p, "%s contains a NUL byte", what);
    p->pos += *len;
    p->string_bytes += *len;
    p->n_strings++;
    return true;
}

/* ---- values ---- */

/* Bytes of a fixed-size value; 0 for strings, arrays and unknown types. */
static size_t scalar_size(uint32_t type)
{
    switch (type) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

/* Other bool bytes would read differently in different readers. */
static bool check_bools(struct parser *p, const unsigned char *v, uint64_t n, bool in_array)
{
    for (uint64_t i = 0; i < n; i++) {
        if (v[i] > 1) {
            p->elem = in_array ? (int64_t)i : -1;
            return fail(p, "bool value %u is not 0 or 1", (unsigned)v[i]);
        }
    }
    return true;
}

static bool parse_array(struct parser *p, struct kv *kv)
{
    uint32_t elem_type;
    uint64_t count;
    if (!read_u32(p, "array element type", &elem_type) || !read_u64(p, "array length", &count))
        return false;
    if (elem_type == GGUF_ARRAY)
        return fail(p, "arrays of arrays are not supported");
    size_t elem_size = elem_type == GGUF_STRING ? MIN_STRING_BYTES : scalar_size(elem_type);
    if (elem_size == 0)
        return fail(p, "unknown array element type %" PRIu32, elem_type);
    uint64_t left = p->f->size - p->pos;
    if (count > left / elem_size)
        return fail(p, "array length %" PRIu64 " past end of file (%" PRIu64
                    " bytes left at byte %" PRIu64 ")", count, left, p->pos);
    kv->elem_type = elem_type;
    kv->count = count;
    kv->value = p->f->map + p->pos;
    if (elem_type == GGUF_STRING) {
        uint64_t len;
        for (uint64_t i = 0; i < count; i++) {
            p->elem = (int64_t)i;
            if (!read_string(p, "string", &len))
                return false;
        }
        p->elem = -1;
        p->n_string_elems += count;
        return true;
    }
    const unsigned char *elems = take(p, count * elem_size, "array");
    return elems && (elem_type != GGUF_BOOL || check_bools(p, elems, count, true));
}

static bool parse_value(struct parser *p, struct kv *kv)
{
    uint64_t start = p->pos;
    uint32_t type;
    if (!read_u32(p, "value type", &type))
        return false;
    kv->type = type;
    kv->value = p->f->map + p->pos;
    bool ok;
    uint64_t len;
    if (type == GGUF_ARRAY) {
        ok = parse_array(p, kv);
    } else if (type == GGUF_STRING) {
        ok = read_string(p, "string", &len);
    } else if (scalar_size(type) == 0) {
        ok = fail(p, "unknown value type %" PRIu32, type);
    } else {
        const unsigned char *v = take(p, scalar_size(type), "value");
        ok = v && (type != GGUF_BOOL || check_bools(p, v, 1, false));
    }
    kv->encoded = p->f->map + start;
    kv->encoded_len = p->pos - start;
    return ok;
}

static bool parse_kv(struct parser *p, int64_t i)
{
    struct kv *kv = &p->f->kvs[i];
    set_where(p, "kv", i, NULL, 0);
    kv->key_src = p->f->map + p->pos;
    uint64_t len;
    if (!read_string(p, "key", &len))
        return false;
    if (len == 0)
        return fail(p, "empty key");
    set_where(p, "kv", i, kv->key_src + 8, len);
    return parse_value(p, kv);
}

/* ---- tensor infos ---- */

bool gguf_tensor_nbytes(enum dtype type, const uint64_t ne[GGUF_MAX_DIMS], uint64_t *nbytes)
{
    uint64_t n = dtype_row_bytes(type, ne[0]);
    if (n == 0)
        return false;
    for (int d = 1; d < GGUF_MAX_DIMS; d++) {
        if (ne[d] == 0 || ne[d] > UINT64_MAX / n)
            return false;
        n *= ne[d];
    }
    *nbytes = n;
    return true;
}

/* nbytes from the shape; a size beyond the file cannot be in it. */
static bool check_shape(struct parser *p, struct gguf_tensor *t)
{
    const uint64_t *ne = t->ne;
    size_t block = dtype_block_elems(t->type);
    if (ne[0] % block != 0)
        return fail(p, "ne[0] = %" PRIu64 " is not a multiple of the %s block size %zu",
                    ne[0], dtype_name(t->type), block);
    if (!gguf_tensor_nbytes(t->type, ne, &t->nbytes) || t->nbytes > p->f->size)
        return fail(p, "%s shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                    "] needs more bytes than the file has (%" PRIu64 ")",
                    dtype_name(t->type), ne[0], ne[1], ne[2], ne[3], p->f->size);
    return true;
}

static bool parse_tensor_info(struct parser *p, int64_t i)
{
    struct tensor *t = &p->f->tensors[i];
    set_where(p, "tensor", i, NULL, 0);
    t->name_src = p->f->map + p->pos;
    uint64_t len;
    if (!read_string(p, "name", &len))
        return false;
    if (len == 0)
        return fail(p, "empty name");
    set_where(p, "tensor", i, t->name_src + 8, len);

    uint32_t n_dims, type;
    if (!read_u32(p, "n_dims", &n_dims))
        return false;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return fail(p, "n_dims %" PRIu32 " not in 1..%d", n_dims, GGUF_MAX_DIMS);
    t->pub.n_dims = (int)n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->pub.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (!read_u64(p, "ne", &t->pub.ne[d]))
            return false;
        if (t->pub.ne[d] == 0)
            return fail(p, "ne[%" PRIu32 "] is 0", d);
    }
    if (!read_u32(p, "type", &type))
        return false;
    if (!dtype_is_supported(type))
        return fail(p, "unsupported type %" PRIu32, type);
    t->pub.type = (enum dtype)type;
    return read_u64(p, "offset", &t->offset) && check_shape(p, &t->pub);
}

/* ---- header ---- */

static uint32_t byte_swap_u32(uint32_t x)
{
    return x >> 24 | (x >> 8 & 0xff00) | (x << 8 & 0xff0000) | x << 24;
}

/* Checks magic and version, and bounds both counts by the bytes left so the
 * record arrays sized by them stay proportional to the file. */
static bool parse_header(struct parser *p, uint64_t *n_kv, uint64_t *n_tensors)
{
    const unsigned char *magic = take(p, 4, "magic");
    if (!magic)
        return false;
    if (memcmp(magic, "GGUF", 4) != 0) {
        char shown[5];
        for (int i = 0; i < 4; i++)
            shown[i] = magic[i] >= 0x20 && magic[i] < 0x7f ? (char)magic[i] : '?';
        shown[4] = '\0';
        return fail(p, "bad magic '%s' (expected 'GGUF')", shown);
    }
    uint32_t version;
    if (!read_u32(p, "version", &version))
        return false;
    if (version != 2 && version != 3) {
        uint32_t swapped = byte_swap_u32(version);
        if (swapped == 2 || swapped == 3)
            return fail(p, "big-endian GGUF files are not supported");
        return fail(p, "unsupported version %" PRIu32 " (expected 2 or 3)", version);
    }
    if (!read_u64(p, "n_tensors", n_tensors) || !read_u64(p, "n_kv", n_kv))
        return false;
    uint64_t left = p->f->size - p->pos;
    if (*n_kv > left / MIN_KV_BYTES || *n_tensors > left / MIN_TENSOR_INFO_BYTES ||
        *n_kv * MIN_KV_BYTES + *n_tensors * MIN_TENSOR_INFO_BYTES > left)
        return fail(p, "n_kv = %" PRIu64 " and n_tensors = %" PRIu64
                    " cannot fit in the %" PRIu64 " bytes left", *n_kv, *n_tensors, left);
    return true;
}

/* ---- copy-out and indexes ---- */

/* Copies the length-prefixed string at *src into *next, advancing both. The
 * parse pass validated it, so the length is trusted. */
static const char *copy_string(const unsigned char **src, char **next)
{
    uint64_t len;
    memcpy(&len, *src, sizeof len);
    char *s = *next;
    memcpy(s, *src + sizeof len, len);
    s[len] = '\0';
    *src += sizeof len + len;
    *next += len + 1;
    return s;
}

static bool copy_strings(struct parser *p)
{
    struct gguf_file *f = p->f;
    f->strings = malloc(p->string_bytes + p->n_strings + 1);
    f->string_elems = calloc(p->n_string_elems + 1, sizeof *f->string_elems);
    if (!f->strings || !f->string_elems)
        return fail(p, "out of memory for %" PRIu64 " strings", p->n_strings);
    char *next = f->strings;
    const char **elem = f->string_elems;
    for (int64_t i = 0; i < f->n_kv; i++) {
        struct kv *kv = &f->kvs[i];
        const unsigned char *src = kv->key_src;
        kv->key = copy_string(&src, &next);
        src = kv->value;
        if (kv->type == GGUF_STRING)
            kv->str = copy_string(&src, &next);
        if (kv->type == GGUF_ARRAY && kv->elem_type == GGUF_STRING) {
            kv->strs = elem;
            for (uint64_t j = 0; j < kv->count; j++)
                *elem++ = copy_string(&src, &next);
        }
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const unsigned char *src = f->tensors[i].name_src;
        f->tensors[i].pub.name = copy_string(&src, &next);
    }
    return true;
}

/* Comparators break ties by position so duplicates sort in file order. */
static int compare_kvs_by_key(const void *a, const void *b)
{
    const struct kv *x = *(struct kv *const *)a, *y = *(struct kv *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x > y) - (x < y);
}

static int compare_tensors_by_name(const void *a, const void *b)
{
    const struct tensor *x = *(struct tensor *const *)a, *y = *(struct tensor *const *)b;
    int c = strcmp(x->pub.name, y->pub.name);
    return c ? c : (x > y) - (x < y);
}

static int compare_tensors_by_offset(const void *a, const void *b)
{
    const struct tensor *x = *(struct tensor *const *)a, *y = *(struct tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return (x > y) - (x < y);
}

static bool index_keys(struct parser *p)
{
    struct gguf_file *f = p->f;
    for (int64_t i = 0; i < f->n_kv; i++)
        f->kvs_by_key[i] = &f->kvs[i];
    qsort(f->kvs_by_key, (size_t)f->n_kv, sizeof *f->kvs_by_key, compare_kvs_by_key);
    for (int64_t i = 1; i < f->n_kv; i++) {
        const struct kv *first = f->kvs_by_key[i - 1], *again = f->kvs_by_key[i];
        if (strcmp(first->key, again->key) == 0) {
            set_where(p, "kv", again - f->kvs, again->key, strlen(again->key));
            return fail(p, "duplicate key (also kv %td)", first - f->kvs);
        }
    }
    return true;
}

static bool index_tensor_names(struct parser *p)
{
    struct gguf_file *f = p->f;
    for (int64_t i = 0; i < f->n_tensors; i++)
        f->tensors_by_name[i] = &f->tensors[i];
    qsort(f->tensors_by_name, (size_t)f->n_tensors, sizeof *f->tensors_by_name,
          compare_tensors_by_name);
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const struct tensor *first = f->tensors_by_name[i - 1], *again = f->tensors_by_name[i];
        if (strcmp(first->pub.name, again->pub.name) == 0) {
            set_where(p, "tensor", again - f->tensors, again->pub.name, strlen(again->pub.name));
            return fail(p, "duplicate name (also tensor %td)", first - f->tensors);
        }
    }
    return true;
}

static int compare_key_with_kv(const void *key, const void *elem)
{
    return strcmp(key, (*(struct kv *const *)elem)->key);
}

static const struct kv *find_kv(const struct gguf_file *f, const char *key)
{
    struct kv *const *hit = bsearch(key, f->kvs_by_key, (size_t)f->n_kv,
                                    sizeof *f->kvs_by_key, compare_key_with_kv);
    return hit ? *hit : NULL;
}

/* ---- alignment and data ---- */

static bool read_alignment(struct parser *p, uint32_t *alignment)
{
    *alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct kv *kv = find_kv(p->f, "general.alignment");
    if (!kv)
        return true;
    set_where(p, "kv", kv - p->f->kvs, kv->key, strlen(kv->key));
    if (kv->type != GGUF_U32)
        return fail(p, "value type %d, expected u32 (%d)", (int)kv->type, GGUF_U32);
    memcpy(alignment, kv->value, sizeof *alignment);
    if (*alignment == 0 || (*alignment & (*alignment - 1)) != 0)
        return fail(p, "alignment %" PRIu32 " is not a power of two", *alignment);
    return true;
}

/* Points each tensor into the data section after checking its offset is
 * aligned and its bytes lie inside the file. */
static bool place_tensor(struct parser *p, struct tensor *t, uint64_t data_start,
                         uint32_t alignment)
{
    struct gguf_file *f = p->f;
    set_where(p, "tensor", t - f->tensors, t->pub.name, strlen(t->pub.name));
    if (t->offset % alignment != 0)
        return fail(p, "offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                    t->offset, alignment);
    if (data_start > f->size || t->offset > f->size - data_start)
        return fail(p, "offset %" PRIu64 " past end of file (data starts at byte %" PRIu64
                    ", file is %" PRIu64 " bytes)", t->offset, data_start, f->size);
    uint64_t start = data_start + t->offset;
    if (t->pub.nbytes > f->size - start)
        return fail(p, "data [%" PRIu64 ", %" PRIu64 ") past end of file (%" PRIu64 " bytes)",
                    start, start + t->pub.nbytes, f->size);
    t->pub.data = f->map + start;
    return true;
}

/* Sorts by offset (reusing the name index, which is rebuilt afterwards) and
 * refuses neighbours whose bytes overlap. */
static bool check_overlaps(struct parser *p, uint64_t data_start)
{
    struct gguf_file *f = p->f;
    struct tensor **by_offset = f->tensors_by_name;
    for (int64_t i = 0; i < f->n_tensors; i++)
        by_offset[i] = &f->tensors[i];
    qsort(by_offset, (size_t)f->n_tensors, sizeof *by_offset, compare_tensors_by_offset);
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const struct tensor *a = by_offset[i - 1], *b = by_offset[i];
        uint64_t a_start = data_start + a->offset, b_start = data_start + b->offset;
        if (b_start < a_start + a->pub.nbytes) {
            set_where(p, "tensor", b - f->tensors, b->pub.name, strlen(b->pub.name));
            return fail(p, "data [%" PRIu64 ", %" PRIu64 ") overlaps tensor %td '%s' [%"
                        PRIu64 ", %" PRIu64 ")", b_start, b_start + b->pub.nbytes,
                        a - f->tensors, a->pub.name, a_start, a_start + a->pub.nbytes);
        }
    }
    return true;
}

static bool place_tensors(struct parser *p, uint64_t meta_end)
{
    uint32_t alignment;
    if (!read_alignment(p, &alignment))
        return false;
    uint64_t data_start = meta_end + (alignment - meta_end % alignment) % alignment;
    for (int64_t i = 0; i < p->f->n_tensors; i++)
        if (!place_tensor(p, &p->f->tensors[i], data_start, alignment))
            return false;
    return check_overlaps(p, data_start);
}

/* ---- open / close ---- */

static bool map_file(struct parser *p)
{
    struct gguf_file *f = p->f;
    const uint8_t *bytes;
    char why[256];
    if (!file_map(f->path, false, &bytes, &f->size, why, sizeof why))
        return fail(p, "%s", why);
    f->map = bytes;
    return true;
}

static bool alloc_records(struct parser *p, uint64_t n_kv, uint64_t n_tensors)
{
    struct gguf_file *f = p->f;
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    /* +1 so that empty files get non-NULL arrays for bsearch and qsort. */
    f->kvs = calloc(n_kv + 1, sizeof *f->kvs);
    f->kvs_by_key = calloc(n_kv + 1, sizeof *f->kvs_by_key);
    f->tensors = calloc(n_tensors + 1, sizeof *f->tensors);
    f->tensors_by_name = calloc(n_tensors + 1, sizeof *f->tensors_by_name);
    if (!f->kvs || !f->kvs_by_key || !f->tensors || !f->tensors_by_name)
        return fail(p, "out of memory for %" PRIu64 " kv pairs and %" PRIu64 " tensors",
                    n_kv, n_tensors);
    return true;
}

static bool parse(struct parser *p)
{
    uint64_t n_kv, n_tensors;
    if (!parse_header(p, &n_kv, &n_tensors) || !alloc_records(p, n_kv, n_tensors))
        return false;
    for (int64_t i = 0; i < p->f->n_kv; i++)
        if (!parse_kv(p, i))
            return false;
    for (int64_t i = 0; i < p->f->n_tensors; i++)
        if (!parse_tensor_info(p, i))
            return false;
    uint64_t meta_end = p->pos;
    p->where[0] = '\0';
    return copy_strings(p) && index_keys(p) && place_tensors(p, meta_end) &&
           index_tensor_names(p);
}

struct gguf_file *gguf_open(const char *path, char *err, size_t errlen)
{
    struct gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        free(f);
        return NULL;
    }
    struct parser p = {.f = f, .elem = -1, .err = err, .errlen = errlen};
    if (!map_file(&p) || !parse(&p)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

void gguf_close(struct gguf_file *f)
{
    if (!f)
        return;
    file_unmap(f->map, f->size);
    free(f->kvs);
    free(f->kvs_by_key);
    free(f->tensors);
    free(f->tensors_by_name);
    free(f->strings);
    free(f->string_elems);
    free(f->path);
    free(f);
}

const char *gguf_path(const struct gguf_file *f) { return f->path; }
uint64_t gguf_file_size(const struct gguf_file *f) { return f->size; }

/* ---- metadata accessors ---- */

int64_t gguf_n_kv(const struct gguf_file *f) { return f->n_kv; }

const char *gguf_key(const struct gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_kv ? f->kvs[i].key : NULL;
}

int64_t gguf_find_key(const struct gguf_file *f, const char *key)
{
    const struct kv *kv = find_kv(f, key);
    return kv ? kv - f->kvs : -1;
}

int gguf_kv_type(const struct gguf_file *f, const char *key)
{
    const struct kv *kv = find_kv(f, key);
    return kv ? (int)kv->type : -1;
}

const unsigned char *gguf_kv_encoded(const struct gguf_file *f, int64_t i, size_t *len)
{
    if (i < 0 || i >= f->n_kv)
        return NULL;
    *len = (size_t)f->kvs[i].encoded_len;
    return f->kvs[i].encoded;
}

/* Loads an integer of any GGUF integer type: signed types into *s, unsigned
 * ones into *u, so no value is lost before the range check. */
enum int_kind { NOT_INTEGER, SIGNED_INTEGER, UNSIGNED_INTEGER };

static enum int_kind load_integer(enum gguf_value_type type, const unsigned char *v,
                                  int64_t *s, uint64_t *u)
{
    switch (type) {
    case GGUF_U8: { uint8_t x; memcpy(&x, v, sizeof x); *u = x; return UNSIGNED_INTEGER; }
    case GGUF_U16: { uint16_t x; memcpy(&x, v, sizeof x); *u = x; return UNSIGNED_INTEGER; }
    case GGUF_U32: { uint32_t x; memcpy(&x, v, sizeof x); *u = x; return UNSIGNED_INTEGER; }
    case GGUF_U64: { uint64_t x; memcpy(&x, v, sizeof x); *u = x; return UNSIGNED_INTEGER; }
    case GGUF_I8: { int8_t x; memcpy(&x, v, sizeof x); *s = x; return SIGNED_INTEGER; }
    case GGUF_I16: { int16_t x; memcpy(&x, v, sizeof x); *s = x; return SIGNED_INTEGER; }
    case GGUF_I32: { int32_t x; memcpy(&x, v, sizeof x); *s = x; return SIGNED_INTEGER; }
    case GGUF_I64: { int64_t x; memcpy(&x, v, sizeof x); *s = x; return SIGNED_INTEGER; }
    default: return NOT_INTEGER;
    }
}

static bool integer_as_i64(enum gguf_value_type type, const unsigned char *v, int64_t *out)
{
    int64_t s;
    uint64_t u;
    switch (load_integer(type, v, &s, &u)) {
    case SIGNED_INTEGER: *out = s; return true;
    case UNSIGNED_INTEGER: *out = (int64_t)u; return u <= INT64_MAX;
    default: return false;
    }
}

static bool integer_as_u32(enum gguf_value_type type, const unsigned char *v, uint32_t *out)
{
    int64_t s;
    uint64_t u;
    switch (load_integer(type, v, &s, &u)) {
    case SIGNED_INTEGER: *out = (uint32_t)s; return s >= 0 && s <= UINT32_MAX;
    case UNSIGNED_INTEGER: *out = (uint32_t)u; return u <= UINT32_MAX;
    default: return false;
    }
}

/* F64 narrows with rounding; beyond float's range it fails (and the cast
 * would be undefined). */
static bool float_as_f32(enum gguf_value_type type, const unsigned char *v, float *out)
{
    if (type == GGUF_F32) {
        memcpy(out, v, sizeof *out);
        return true;
    }
    if (type != GGUF_F64)
        return false;
    double d;
    memcpy(&d, v, sizeof d);
    if (isfinite(d) && fabs(d) > FLT_MAX)
        return false;
    *out = (float)d;
    return true;
}

/* On failure the getters leave *out untouched. */
bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out)
{
    const struct kv *kv = find_kv(f, key);
    uint32_t v;
    if (!kv || !integer_as_u32(kv->type, kv->value, &v))
        return false;
    *out = v;
    return true;
}

bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out)
{
    const struct kv *kv = find_kv(f, key);
    int64_t v;
    if (!kv || !integer_as_i64(kv->type, kv->value, &v))
        return false;
    *out = v;
    return true;
}

bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out)
{
    const struct kv *kv = find_kv(f, key);
    float v;
    if (!kv || !float_as_f32(kv->type, kv->value, &v))
        return false;
    *out = v;
    return true;
}

bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out)
{
    const struct kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_BOOL)
        return false;
    *out = kv->value[0] != 0;
    return true;
}

const char *gguf_get_str(const struct gguf_file *f, const char *key)
{
    const struct kv *kv = find_kv(f, key);
    return kv && kv->type == GGUF_STRING ? kv->str : NULL;
}

bool gguf_get_arr(const struct gguf_file *f, const char *key,
                  enum gguf_value_type *elem_type, uint64_t *count)
{
    const struct kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_ARRAY)
        return false;
    *elem_type = kv->elem_type;
    *count = kv->count;
    return true;
}

/* Element i of an array of fixed-size elements, or NULL. */
static const unsigned char *numeric_elem(const struct gguf_file *f, const char *key,
                                         uint64_t i, enum gguf_value_type *elem_type)
{
    const struct kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_ARRAY || i >= kv->count || scalar_size(kv->elem_type) == 0)
        return NULL;
    *elem_type = kv->elem_type;
    return kv->value + i * scalar_size(kv->elem_type);
}

const char *gguf_arr_str(const struct gguf_file *f, const char *key, uint64_t i)
{
    const struct kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_ARRAY || kv->elem_type != GGUF_STRING || i >= kv->count)
        return NULL;
    return kv->strs[i];
}

bool gguf_arr_i64(const struct gguf_file *f, const char *key, uint64_t i, int64_t *out)
{
    enum gguf_value_type type;
    const unsigned char *v = numeric_elem(f, key, i, &type);
    int64_t x;
    if (!v || !integer_as_i64(type, v, &x))
        return false;
    *out = x;
    return true;
}

bool gguf_arr_f32(const struct gguf_file *f, const char *key, uint64_t i, float *out)
{
    enum gguf_value_type type;
    const unsigned char *v = numeric_elem(f, key, i, &type);
    float x;
    if (!v || !float_as_f32(type, v, &x))
        return false;
    *out = x;
    return true;
}

/* ---- tensor accessors ---- */

int64_t gguf_n_tensors(const struct gguf_file *f) { return f->n_tensors; }

const struct gguf_tensor *gguf_tensor_at(const struct gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i].pub : NULL;
}

static int compare_name_with_tensor(const void *name, const void *elem)
{
    return strcmp(name, (*(struct tensor *const *)elem)->pub.name);
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    struct tensor *const *hit = bsearch(name, f->tensors_by_name, (size_t)f->n_tensors,
                                        sizeof *f->tensors_by_name, compare_name_with_tensor);
    return hit ? &(*hit)->pub : NULL;
}
