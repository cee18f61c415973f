/* model_repack and matrix_mul (contracts in model.h). */
#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../kernels/cpu/matmul.h"
#include "../kernels/cpu/repack.h"

/* Every weight matrix: the embedding table first (its rows are also read one
 * by one, so its layout must stay; the LM head when tied), then every matrix
 * a pass multiplies by. */
static int list_matrices(struct model *m, struct matrix **out)
{
    int n = 0;
    out[n++] = &m->tok_embd;
    if (!m->cfg.tied_output)
        out[n++] = &m->output;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        struct layer_weights *w = &m->layers[l];
        struct matrix *each[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < sizeof each / sizeof each[0]; i++)
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

static bool packable(const struct matrix *w, bool is_embedding)
{
    return !is_embedding && w->type == DTYPE_Q8_0 && w->rows >= Q8_0X16_ROWS && q8_0x16_supported();
}

long long model_repack(struct model *m, char *err, size_t errlen)
{
    if (m->repacked)
        return 0;
    struct matrix **mats = malloc(sizeof *mats * (size_t)(2 + 7 * m->cfg.n_layers));
    if (!mats) {
        snprintf(err, errlen, "repacking weights: out of memory");
        return -1;
    }
    const int n = list_matrices(m, mats);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += page_round(matrix_bytes(mats[i]));
    /* Huge pages where the kernel gives them: a decode step streams every
     * weight once, and 4 KiB pages cost a TLB miss every 4 KiB. */
    uint8_t *arena = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) {
        snprintf(err, errlen, "repacking weights: cannot allocate %.1f MB (--no-repack keeps them mapped)",
                 (double)total / 1e6);
        free(mats);
        return -1;
    }
#if defined(MADV_HUGEPAGE)
    madvise(arena, total, MADV_HUGEPAGE); /* a hint; without it the copy still works */
#endif
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        struct matrix *w = mats[i];
        const size_t bytes = matrix_bytes(w);
        if (packable(w, i == 0)) {
            q8_0x16_pack(arena + at, w->data, w->cols, w->rows);
            w->q8_0x16 = true;
        } else {
            memcpy(arena + at, w->data, bytes);
        }
        drop_file_pages(w->data, bytes);
        w->data = arena + at;
        at += page_round(bytes);
    }
    if (m->cfg.tied_output)
        m->output = m->tok_embd;
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
