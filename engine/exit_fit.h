/* Fitting exit adapters in closed form (DESIGN.md §5): ridge regression of
 * the last layer's residual stream on an exit layer's, with LAPACK.
 *
 * For rows x (the stream after the exit layer) and y (after the last layer)
 * the adapter A minimises  Σ ‖y − (x + A x)‖² + λ ‖A‖²_F,  so λ → ∞ is "no
 * adapter" and the regularisation shrinks towards the shared head alone.
 * Only XᵀX and XᵀY are kept (dim × dim, in double), grown pass by pass: the
 * hidden states themselves are never stored. */
#ifndef TANDEM_ENGINE_EXIT_FIT_H
#define TANDEM_ENGINE_EXIT_FIT_H

#include <stdbool.h>
#include <stddef.h>

struct ridge_stats {
    int dim;
    long rows;
    double *xtx; /* (dim, dim) Σ xᵢxⱼ, upper triangle (i <= j) kept */
    double *xty; /* (dim, dim) Σ xᵢyⱼ */
};

bool ridge_stats_init(struct ridge_stats *s, int dim);
void ridge_stats_free(struct ridge_stats *s);
/* Adds n rows of x (n, dim) and y (n, dim). false on out of memory. */
bool ridge_stats_add(struct ridge_stats *s, const float *x, const float *y, int n);
/* Mean of XᵀX's diagonal: the scale a grid of λ is relative to. */
double ridge_scale(const struct ridge_stats *s);

/* Full adapter: a (dim, dim), A[o][i] = a[o*dim + i] (a struct matrix of
 * dim rows). false + err when the system is singular (λ = 0 and too few or
 * dependent rows) or LAPACK fails. */
bool ridge_fit(const struct ridge_stats *s, double lambda, float *a, char *err, size_t errlen);

/* Rank-r adapter A = u · v, u (dim, r), v (r, dim): the ridge solution
 * restricted to the r directions of its fitted values that carry the most
 * variance (reduced-rank ridge regression), the best rank-r map for the
 * same data. 1 <= rank <= dim. */
bool ridge_fit_low_rank(const struct ridge_stats *s, double lambda, int rank, float *u, float *v,
                        char *err, size_t errlen);

#endif
