/* Normalised mean squared error, the measure every CUDA test compares the
 * device with the CPU by (as ggml's backend test does):
 *     sum (a - ref)^2 / sum ref^2     (the plain sum when ref is all zero) */
#ifndef TANDEM_TESTS_CUDA_NMSE_H
#define TANDEM_TESTS_CUDA_NMSE_H

static inline double nmse(const float *a, const float *ref, long n)
{
    double err = 0, norm = 0;
    for (long i = 0; i < n; i++) {
        const double d = (double)a[i] - ref[i];
        err += d * d;
        norm += (double)ref[i] * ref[i];
    }
    return norm > 0 ? err / norm : err;
}

#endif
