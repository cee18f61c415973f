/* matmul_bench: one matmul back end's speed on a stack of weight matrices too
 * big for any cache, as a table on stdout.
 *
 *   matmul_bench DTYPE IN OUT MATRICES THREADS [REPS [BACKEND [LOOPS]]]
 *
 * Each rep runs matmul over all MATRICES (IN x OUT, DTYPE) in turn, so weights
 * stream from memory as in a forward pass; for every back end this build has
 * and k = 1..8 rows it prints the median weight-read rate (GB/s) and the time
 * of a k-row pass over the 1-row pass (or for the one back end named). LOOPS
 * repeats each timed pass, for matrices small enough to stay in cache: their
 * rate is the back end's compute speed. Back ends alternate rep by rep, so a
 * slow spell of the machine lands on all alike. Weights sit in huge pages as
 * the engine's do (TANDEM_BENCH_SMALL_PAGES=1: 4 KiB pages, as when mapped
 * from a file). For tuning the kernels; the
 * numbers that count come from `make bench`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/clock.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/repack.h"

/* Weights as the engine holds them (model_repack): 2 MiB-aligned memory that
 * asks for huge pages; TANDEM_BENCH_SMALL_PAGES=1 in the environment says not
 * to (weights mapped from a file get 4 KiB pages). NULL when out of memory. */
static uint8_t *weights_alloc(size_t bytes)
{
    void *p;
    if (posix_memalign(&p, 2u << 20, bytes) != 0)
        return NULL;
    const char *small = getenv("TANDEM_BENCH_SMALL_PAGES");
    madvise(p, bytes, small && strcmp(small, "1") == 0 ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: matmul_bench DTYPE IN OUT MATRICES THREADS [REPS [BACKEND [LOOPS]]]\n");
        return 2;
    }
    enum dtype t;
    if (!dtype_from_name(argv[1], &t) || !dtype_is_supported(t)) {
        fprintf(stderr, "matmul_bench: unknown dtype '%s'\n", argv[1]);
        return 2;
    }
    const int in = atoi(argv[2]), out = atoi(argv[3]), n_mat = atoi(argv[4]),
              threads = atoi(argv[5]), reps = argc > 6 ? atoi(argv[6]) : 9,
              loops = argc > 8 ? atoi(argv[8]) : 1;
    enum { KMAX = 8 };
    const size_t row = dtype_row_bytes(t, (uint64_t)in), mat = row * (size_t)out;
    uint8_t *w = weights_alloc(mat * (size_t)n_mat);
    float *x = malloc(sizeof(float) * KMAX * (size_t)in), *y = malloc(sizeof(float) * KMAX * (size_t)out);
    void *scratch = malloc(matmul_scratch_bytes(t, KMAX, in) + 64);
    struct threadpool *tp = threadpool_new(threads);
    if (!w || !x || !y || !scratch || !tp) {
        fprintf(stderr, "matmul_bench: out of memory\n");
        return 1;
    }
    /* Random bytes are valid weights but for the fp16/bf16 scales and
     * float elements: fill rows by quantizing random floats. */
    float *rowf = malloc(sizeof(float) * (size_t)in);
    uint64_t s = 88172645463325252ull;
    for (size_t r = 0; r < (size_t)out * (size_t)n_mat; r++) {
        for (int i = 0; i < in; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            rowf[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        }
        quantize_row(t, rowf, w + r * row, in);
    }
    for (int i = 0; i < KMAX * in; i++)
        x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;

    /* Back ends, then the repacked Q8_0 kernel ("q8_0x16") where there is one. */
    const struct matmul_backend *be[8];
    const char *name[8];
    int nb = 0;
    for (int b = 0; b < matmul_backend_count && nb < 7; b++)
        if (argc < 8 || strcmp(argv[7], matmul_backends[b]->name) == 0)
            name[nb] = matmul_backends[b]->name, be[nb++] = matmul_backends[b];
    uint8_t *wp = NULL;
    if (t == DTYPE_Q8_0 && q8_0x16_supported() && (argc < 8 || strcmp(argv[7], "q8_0x16") == 0)) {
        if (!(wp = weights_alloc(mat * (size_t)n_mat))) {
            fprintf(stderr, "matmul_bench: out of memory\n");
            return 1;
        }
        for (int m = 0; m < n_mat; m++)
            q8_0x16_pack(wp + (size_t)m * mat, w + (size_t)m * mat, in, out);
        name[nb] = "q8_0x16", be[nb++] = NULL;
    }
    if (nb == 0) {
        fprintf(stderr, "matmul_bench: no back end '%s' in this build\n", argv[7]);
        return 2;
    }
    double *times = malloc(sizeof(double) * (size_t)nb * KMAX * (size_t)reps);
    for (int rep = 0; rep < reps; rep++)
        for (int k = 1; k <= KMAX; k++)
            for (int b = 0; b < nb; b++) {
                double t0 = clock_now_s();
                for (int l = 0; l < loops; l++)
                    for (int m = 0; m < n_mat; m++)
                        if (be[b])
                            matmul_with(be[b], tp, y, w + (size_t)m * mat, t, x, k, in, out, scratch);
                        else
                            matmul_q8_0x16(tp, y, wp + (size_t)m * mat, x, k, in, out, scratch);
                times[((size_t)b * KMAX + (size_t)(k - 1)) * (size_t)reps + (size_t)rep] =
                    (clock_now_s() - t0) / loops;
            }
    printf("%s %d x %d, %d matrices (%.0f MB), %d threads, median of %d\n", argv[1], in, out, n_mat,
           (double)mat * n_mat / 1e6, threads, reps);
    printf("%-8s", "backend");
    for (int k = 1; k <= KMAX; k++)
        printf("  k=%d GB/s ratio", k);
    printf("\n");
    for (int b = 0; b < nb; b++) {
        printf("%-8s", name[b]);
        double base = 0;
        for (int k = 1; k <= KMAX; k++) {
            double *tk = times + ((size_t)b * KMAX + (size_t)(k - 1)) * (size_t)reps;
            qsort(tk, (size_t)reps, sizeof *tk, cmp_double);
            const double med = tk[reps / 2];
            if (k == 1)
                base = med;
            printf("  %9.1f %5.2f", (double)mat * n_mat / med / 1e9, med / base);
        }
        printf("\n");
    }
    threadpool_free(tp);
    free(times);
    free(rowf);
    free(scratch);
    free(y);
    free(x);
    free(wp);
    free(w);
    return 0;
}
