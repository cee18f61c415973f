/* Conversion plans (convert.h): the type policy, and each output tensor
 * produced inside the GGUF writer's fill callback, so that only the tensor
 * being written is in memory. Rows are made a chunk at a time (a reader's
 * float rows, or source bytes dequantized) and quantized into the writer's
 * buffer with the engine's row quantizers (ggml's reference algorithms).
 * Mapped sources are handed back to the kernel as each tensor is done. */
#include "convert.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../kernels/cpu/quant.h"

/* Floats per chunk of rows (1 MiB): large enough to amortise a reader's
 * call, small beside any tensor worth streaming. */
#define CHUNK_FLOATS ((uint64_t)1 << 18)
#define BAR_WIDTH 30

/* Where one output tensor's values come from. */
struct source {
    struct convert_plan *plan;
    char *name;
    enum dtype type;          /* output type */
    uint64_t row_len, n_rows; /* ne[0], and the product of the other dims */
    convert_rows_fn rows;     /* a reader's rows (then ctx, free_ctx)... */
    void *ctx;
    void (*free_ctx)(void *);
    enum dtype src_type;      /* ...or bytes of src_type at src */
    const void *src;
    bool mapped;              /* src lies in a read-only file mapping */
};

struct convert_plan {
    struct convert_options opts;
    struct gguf_writer *w;
    struct source **sources;
    size_t n_sources, cap_sources;
    char error[256];      /* the first failure while adding tensors */
    char fill_error[512]; /* what a source said when it could not produce rows */
    bool bar_drawn;
};

__attribute__((format(printf, 2, 3)))
static void note_error(struct convert_plan *p, const char *fmt, ...)
{
    if (p->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
}

struct convert_plan *convert_plan_new(const struct convert_options *opts)
{
    struct convert_plan *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->opts = *opts;
    p->w = gguf_writer_new();
    if (!p->w) {
        free(p);
        return NULL;
    }
    gguf_set_u32(p->w, "general.file_type",
                 convert_file_type(opts->type_given ? opts->type : DTYPE_F16));
    return p;
}

void convert_plan_free(struct convert_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_sources; i++) {
        struct source *s = p->sources[i];
        if (s->free_ctx)
            s->free_ctx(s->ctx);
        free(s->name);
        free(s);
    }
    free(p->sources);
    gguf_writer_free(p->w);
    free(p);
}

struct gguf_writer *convert_plan_writer(struct convert_plan *p)
{
    return p->w;
}

uint32_t convert_file_type(enum dtype t)
{
    switch (t) {
    case DTYPE_F32: return 0;
    case DTYPE_F16: return 1;
    case DTYPE_Q4_0: return 2;
    case DTYPE_Q4_1: return 3;
    case DTYPE_Q8_0: return 7;
    case DTYPE_BF16: return 32;
    }
    return 0;
}

enum dtype convert_plan_type_for(const struct convert_plan *p, int n_dims, const uint64_t *ne)
{
    if (n_dims < 2)
        return DTYPE_F32;
    enum dtype t = p->opts.type_given ? p->opts.type : DTYPE_F16;
    return ne[0] % dtype_block_elems(t) == 0 ? t : DTYPE_F16;
}

/* ---- producing a tensor ---- */

__attribute__((format(printf, 2, 3)))
static bool fill_failed(struct source *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->plan->fill_error, sizeof s->plan->fill_error, fmt, ap);
    va_end(ap);
    return false;
}

/* Rows [row0, row0 + n) of the source as floats. */
static bool source_rows(struct source *s, uint64_t row0, uint64_t n, float *dst)
{
    if (s->rows)
        return s->rows(s->ctx, row0, n, dst, s->plan->fill_error, sizeof s->plan->fill_error);
    size_t src_row = dtype_row_bytes(s->src_type, s->row_len);
    for (uint64_t i = 0; i < n; i++)
        dequantize_row(s->src_type, (const char *)s->src + (row0 + i) * src_row,
                       dst + i * s->row_len, (int64_t)s->row_len);
    return true;
}

/* Drops the pages of a read-only file mapping from this process: they stop
 * counting as resident and are read again from the file if touched (a page
 * shared with the next tensor is, harmlessly). */
static void release_pages(const void *p, uint64_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p / page * page, end = (uintptr_t)p + n;
    madvise((void *)start, end - start, MADV_DONTNEED);
}

/* gguf_fill_fn: the whole output tensor into dst, a chunk of rows at a
 * time. Source bytes that already are the output are copied; a reader's f32
 * rows go straight into dst; everything else passes through one chunk
 * buffer and is quantized. A mapped source is handed back chunk by chunk, so
 * the output tensor is about all that is resident. */
static bool fill_tensor(void *ctx, void *dst, uint64_t nbytes)
{
    struct source *s = ctx;
    size_t out_row = dtype_row_bytes(s->type, s->row_len);
    size_t src_row = s->rows ? 0 : dtype_row_bytes(s->src_type, s->row_len);
    if (nbytes != out_row * s->n_rows)
        return fill_failed(s, "tensor '%s': %" PRIu64 " bytes asked for, %" PRIu64 " planned",
                           s->name, nbytes, out_row * s->n_rows);
    uint64_t chunk = CHUNK_FLOATS / s->row_len ? CHUNK_FLOATS / s->row_len : 1;
    if (chunk > s->n_rows)
        chunk = s->n_rows;
    bool copy = !s->rows && s->src_type == s->type;
    bool direct = copy || (s->rows && s->type == DTYPE_F32);
    float *buf = direct ? NULL : malloc(sizeof(float) * chunk * s->row_len);
    if (!direct && !buf)
        return fill_failed(s, "tensor '%s': out of memory for %" PRIu64 " rows of %" PRIu64
                              " floats", s->name, chunk, s->row_len);
    bool ok = true;
    for (uint64_t r0 = 0; ok && r0 < s->n_rows; r0 += chunk) {
        uint64_t n = s->n_rows - r0 < chunk ? s->n_rows - r0 : chunk;
        char *out = (char *)dst + r0 * out_row;
        if (copy) {
            memcpy(out, (const char *)s->src + r0 * src_row, n * src_row);
        } else {
            float *rows = direct ? (float *)out : buf;
            ok = source_rows(s, r0, n, rows);
            for (uint64_t i = 0; ok && !direct && i < n; i++)
                quantize_row(s->type, rows + i * s->row_len, out + i * out_row,
                             (int64_t)s->row_len);
        }
        if (s->mapped)
            release_pages((const char *)s->src + r0 * src_row, n * src_row);
    }
    free(buf);
    return ok;
}

/* ---- adding tensors ---- */

/* ne[1] * ... * ne[n_dims-1], or 0 if a dimension is 0 or it overflows. */
static uint64_t count_rows(int n_dims, const uint64_t *ne)
{
    uint64_t n = 1;
    for (int d = 1; d < n_dims; d++) {
        if (ne[d] == 0 || n > UINT64_MAX / ne[d])
            return 0;
        n *= ne[d];
    }
    return n;
}

/* Checks what the policy and the chunking rely on; the writer checks the
 * rest (name, duplicates, sizes). */
static bool check_shape(struct convert_plan *p, const char *name, int n_dims, const uint64_t *ne)
{
    if (!name || !ne || n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        note_error(p, "tensor '%s': no shape or n_dims %d not in 1..%d", name ? name : "",
                   n_dims, GGUF_MAX_DIMS);
    else if (ne[0] == 0 || count_rows(n_dims, ne) == 0)
        note_error(p, "tensor '%s': a dimension is 0 or the row count overflows", name);
    else
        return true;
    return false;
}

static bool push_source(struct convert_plan *p, struct source *s)
{
    if (p->n_sources == p->cap_sources) {
        size_t cap = p->cap_sources ? 2 * p->cap_sources : 64;
        struct source **grown = realloc(p->sources, sizeof *grown * cap);
        if (!grown)
            return false;
        p->sources = grown;
        p->cap_sources = cap;
    }
    p->sources[p->n_sources++] = s;
    return true;
}

/* Registers a source and hands it to the writer; on failure frees ctx. */
static void add_source(struct convert_plan *p, const char *name, int n_dims, const uint64_t *ne,
                       struct source proto)
{
    struct source *s = malloc(sizeof *s);
    char *name_copy = strdup(name);
    if (!s || !name_copy || !push_source(p, s)) {
        note_error(p, "out of memory adding tensor '%s'", name);
        if (proto.free_ctx)
            proto.free_ctx(proto.ctx);
        free(s);
        free(name_copy);
        return;
    }
    *s = proto;
    s->plan = p;
    s->name = name_copy;
    s->row_len = ne[0];
    s->n_rows = count_rows(n_dims, ne);
    gguf_add_tensor(p->w, name, s->type, n_dims, ne, NULL, fill_tensor, s);
}

void convert_add_rows(struct convert_plan *p, const char *name, int n_dims,
                      const uint64_t *ne, convert_rows_fn rows, void *ctx,
                      void (*free_ctx)(void *))
{
    if (!check_shape(p, name, n_dims, ne) || !rows) {
        if (!rows)
            note_error(p, "tensor '%s': no rows callback", name ? name : "");
        if (free_ctx)
            free_ctx(ctx);
        return;
    }
    add_source(p, name, n_dims, ne,
               (struct source){.type = convert_plan_type_for(p, n_dims, ne), .rows = rows,
                               .ctx = ctx, .free_ctx = free_ctx});
}

/* A tensor from bytes of src_type; keep_type overrides the policy. */
static void add_bytes(struct convert_plan *p, const char *name, enum dtype src_type, int n_dims,
                      const uint64_t *ne, const void *data, bool keep_type, bool mapped)
{
    if (!check_shape(p, name, n_dims, ne))
        return;
    if (!dtype_is_supported(src_type) || !data || dtype_row_bytes(src_type, ne[0]) == 0) {
        note_error(p, "tensor '%s': source of type %s with rows of %" PRIu64 " is not usable",
                   name, dtype_name(src_type), ne[0]);
        return;
    }
    enum dtype type = keep_type ? src_type : convert_plan_type_for(p, n_dims, ne);
    if (type == src_type && !mapped) /* the bytes are the output: written as they are */
        gguf_add_tensor(p->w, name, type, n_dims, ne, data, NULL, NULL);
    else
        add_source(p, name, n_dims, ne, (struct source){.type = type, .src_type = src_type,
                                                        .src = data, .mapped = mapped});
}

void convert_add_bytes(struct convert_plan *p, const char *name,
                       enum dtype src_type, int n_dims, const uint64_t *ne,
                       const void *data)
{
    add_bytes(p, name, src_type, n_dims, ne, data, false, false);
}

void convert_add_mapped(struct convert_plan *p, const char *name,
                        enum dtype src_type, int n_dims, const uint64_t *ne,
                        const void *data, bool keep_type)
{
    add_bytes(p, name, src_type, n_dims, ne, data, keep_type, true);
}

/* ---- writing ---- */

static void draw_bar(void *ctx, int64_t done, int64_t total)
{
    struct convert_plan *p = ctx;
    char bar[BAR_WIDTH + 1];
    int filled = (int)(BAR_WIDTH * done / total);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    fprintf(stderr, "\rconvert: [%s] %" PRId64 "/%" PRId64 " tensors%s", bar, done, total,
            done == total ? "\n" : "");
    p->bar_drawn = done < total;
}

bool convert_plan_write(struct convert_plan *p, const char *out, char *err, size_t errlen)
{
    if (p->error[0]) {
        snprintf(err, errlen, "%s: %s", out, p->error);
        return false;
    }
    bool bar = p->opts.progress && isatty(STDERR_FILENO);
    p->fill_error[0] = 0;
    bool ok = gguf_writer_write(p->w, out, bar ? draw_bar : NULL, p, err, errlen);
    if (p->bar_drawn) /* end the bar's line before the error is printed */
        fputc('\n', stderr);
    p->bar_drawn = false;
    if (!ok && p->fill_error[0])
        snprintf(err, errlen, "%s", p->fill_error);
    return ok;
}
