#include "precision.h"

#include <stdlib.h>

static int by_confidence_desc(const void *a, const void *b)
{
    float x = ((const struct scored *)a)->confidence, y = ((const struct scored *)b)->confidence;
    return (x < y) - (x > y);
}

bool precision_threshold(struct scored *s, long n, double precision, float *threshold,
                         double *kept)
{
    qsort(s, n, sizeof *s, by_confidence_desc);
    long right = 0, keep = 0;
    for (long i = 0; i < n; i++) {
        right += s[i].right;
        /* Only where the confidence changes: a threshold keeps all its ties. */
        bool boundary = i + 1 == n || s[i + 1].confidence < s[i].confidence;
        if (boundary && right >= precision * (i + 1)) {
            *threshold = s[i].confidence;
            keep = i + 1;
        }
    }
    *kept = n ? (double)keep / n : 0.0;
    return keep > 0;
}
