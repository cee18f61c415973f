/* model_repack and matrix_mul (contracts in model.h). */
#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../kernels/cpu/matmul.h"
#include "../kernels/cpu/repack.h"

/* Every matrix a pass multiplies by, but the embedding table: its rows are
 * also read one by one (token_embd, and output when tied to it). */
static int for_each_matmul_matrix(struct model *m, struct matrix **out, int cap)
{
    int n = 0;
    if (!m->cfg.tied_output && n < cap)
        out[n++] = &m->output;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        struct layer_weights *w = &m->layers[l];
        struct matrix *each[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < sizeof each / sizeof each[0]; i++)
            if (n < cap)
                out[n++] = each[i];
    }
    return n;
}

static size_t matrix_bytes(const struct matrix *w)
{
    return dtype_row_bytes(w->type, (uint64_t)w->cols) * (size_t)w->rows;
}

/* Rounded up so that every matrix starts on a page: the kernel's 64-byte
 * loads then never straddle cache lines. */
static size_t page_round(size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

/* Tells the kernel it may drop the file pages wholly inside [p, p+n): they
 * are clean, and come back from the file if anything reads them again. */
static void drop_file_pages(const void *p, size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static bool repackable(const struct matrix *w)
{
    return w->type == DTYPE_Q8_0 && !w->q8_0x16 && w->rows >= Q8_0X16_ROWS;
}

long long model_repack(struct model *m, char *err, size_t errlen)
{
    if (!q8_0x16_supported() || m->repacked)
        return 0;
    const int cap = 1 + 7 * m->cfg.n_layers;
    struct matrix **mats = malloc(sizeof *mats * (size_t)cap);
    if (!mats) {
        snprintf(err, errlen, "repacking weights: out of memory");
        return -1;
    }
    const int n = for_each_matmul_matrix(m, mats, cap);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (repackable(mats[i]))
            total += page_round(matrix_bytes(mats[i]));
    if (total == 0) {
        free(mats);
        return 0;
    }
    uint8_t *arena = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) {
        snprintf(err, errlen, "repacking weights: cannot allocate %.1f MB (--no-repack keeps them mapped)",
                 (double)total / 1e6);
        free(mats);
        return -1;
    }
#if defined(MADV_HUGEPAGE)
    madvise(arena, total, MADV_HUGEPAGE); /* fewer TLB misses streaming weights; a hint */
#endif
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        struct matrix *w = mats[i];
        if (!repackable(w))
            continue;
        q8_0x16_pack(arena + at, w->data, w->cols, w->rows);
        drop_file_pages(w->data, matrix_bytes(w));
        w->data = arena + at;
        w->q8_0x16 = true;
        at += page_round(matrix_bytes(w));
    }
    free(mats);
    mprotect(arena, total, PROT_READ);
    m->repacked = arena;
    m->repacked_bytes = total;
    return (long long)total;
}

void matrix_mul(struct threadpool *tp, float *y, const struct matrix *w, const float *x, int n,
                void *scratch)
{
    if (w->q8_0x16)
        matmul_q8_0x16(tp, y, w->data, x, n, w->cols, w->rows, scratch);
    else
        matmul(tp, y, w->data, w->type, x, n, w->cols, w->rows, scratch);
}
