#include "exit_fit.h"

#include <cblas.h>
#include <lapacke.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ridge_stats_init(struct ridge_stats *s, int dim)
{
    size_t dd = (size_t)dim * dim;
    *s = (struct ridge_stats){dim, 0, calloc(dd, sizeof(double)), calloc(dd, sizeof(double))};
    if (!s->xtx || !s->xty) {
        ridge_stats_free(s);
        return false;
    }
    return true;
}

void ridge_stats_free(struct ridge_stats *s)
{
    free(s->xtx);
    free(s->xty);
    *s = (struct ridge_stats){0};
}

bool ridge_stats_add(struct ridge_stats *s, const float *x, const float *y, int n)
{
    int d = s->dim;
    size_t nd = (size_t)n * d;
    double *xd = malloc(sizeof(double) * nd), *yd = malloc(sizeof(double) * nd);
    if (!xd || !yd) {
        free(xd);
        free(yd);
        return false;
    }
    for (size_t i = 0; i < nd; i++) {
        xd[i] = x[i];
        yd[i] = y[i];
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0, xd, d, 1.0, s->xtx, d);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0, xd, d, yd, d, 1.0, s->xty, d);
    s->rows += n;
    free(xd);
    free(yd);
    return true;
}

double ridge_scale(const struct ridge_stats *s)
{
    double tr = 0.0;
    for (int i = 0; i < s->dim; i++)
        tr += s->xtx[(size_t)i * s->dim + i];
    return tr / s->dim;
}

/* XᵀX with both triangles filled. */
static void full_gram(const struct ridge_stats *s, double *g)
{
    int d = s->dim;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            g[(size_t)i * d + j] = i <= j ? s->xtx[(size_t)i * d + j] : s->xtx[(size_t)j * d + i];
}

/* B (dim, dim) = (XᵀX + λI)⁻¹ Xᵀ(Y − X), so that A = Bᵀ. g gets XᵀX. */
static bool solve_ridge(const struct ridge_stats *s, double lambda, double *g, double *b, char *err,
                        size_t errlen)
{
    int d = s->dim;
    size_t dd = (size_t)d * d;
    double *m = malloc(sizeof(double) * dd);
    if (!m) {
        snprintf(err, errlen, "out of memory (adapter of dim %d)", d);
        return false;
    }
    full_gram(s, g);
    memcpy(m, g, sizeof(double) * dd);
    for (size_t i = 0; i < dd; i++)
        b[i] = s->xty[i] - g[i];
    for (int i = 0; i < d; i++)
        m[(size_t)i * d + i] += lambda;
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', d, d, m, d, b, d);
    free(m);
    if (info != 0) {
        snprintf(err, errlen,
                 info > 0 ? "ridge system is singular (λ = %g, %ld rows for dimension %d)"
                          : "LAPACKE_dposv failed (λ = %g, %ld rows, dimension %d)",
                 lambda, s->rows, d);
        return false;
    }
    return true;
}

bool ridge_fit(const struct ridge_stats *s, double lambda, float *a, char *err, size_t errlen)
{
    int d = s->dim;
    size_t dd = (size_t)d * d;
    double *g = malloc(sizeof(double) * dd), *b = malloc(sizeof(double) * dd);
    bool ok = g && b;
    if (!ok)
        snprintf(err, errlen, "out of memory (adapter of dim %d)", d);
    ok = ok && solve_ridge(s, lambda, g, b, err, errlen);
    for (int o = 0; ok && o < d; o++)
        for (int i = 0; i < d; i++)
            a[(size_t)o * d + i] = (float)b[(size_t)i * d + o];
    free(g);
    free(b);
    return ok;
}

bool ridge_fit_low_rank(const struct ridge_stats *s, double lambda, int rank, float *u, float *v,
                        char *err, size_t errlen)
{
    int d = s->dim;
    size_t dd = (size_t)d * d;
    double *g = malloc(sizeof(double) * dd), *b = malloc(sizeof(double) * dd);
    double *t = malloc(sizeof(double) * dd), *w = malloc(sizeof(double) * d);
    bool ok = g && b && t && w;
    if (!ok)
        snprintf(err, errlen, "out of memory (adapter of dim %d)", d);
    ok = ok && solve_ridge(s, lambda, g, b, err, errlen);
    if (ok) {
        /* Covariance of the fitted values X·B: Bᵀ (XᵀX) B, into g. */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, g, d, b, d, 0.0, t, d);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, b, d, t, d, 0.0, g, d);
        /* Eigenvalues ascending; eigenvector j is column j of g. */
        lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, g, d, w);
        if (info != 0) {
            snprintf(err, errlen, "LAPACKE_dsyevd failed (info %d, dimension %d)", (int)info, d);
            ok = false;
        }
    }
    /* A_r = W Wᵀ Bᵀ with W the top `rank` eigenvectors: u = W, v = (B W)ᵀ. */
    for (int k = 0; ok && k < rank; k++) {
        int col = d - 1 - k;
        for (int o = 0; o < d; o++)
            u[(size_t)o * rank + k] = (float)g[(size_t)o * d + col];
        for (int i = 0; i < d; i++) {
            double acc = 0.0;
            for (int o = 0; o < d; o++)
                acc += b[(size_t)i * d + o] * g[(size_t)o * d + col];
            v[(size_t)k * d + i] = (float)acc;
        }
    }
    free(g);
    free(b);
    free(t);
    free(w);
    return ok;
}
