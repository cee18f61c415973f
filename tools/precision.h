/* Confidence thresholds for a wanted precision: given items each with a
 * confidence and whether it was right, the lowest threshold such that the
 * items at or above it are right at least that share of the time. Used for
 * the thresholds train-exits stores and for its report. */
#ifndef TANDEM_TOOLS_PRECISION_H
#define TANDEM_TOOLS_PRECISION_H

#include <stdbool.h>

struct scored {
    float confidence;
    bool right;
};

/* Sorts s by confidence, descending. On success *threshold is the lowest
 * confidence whose kept items (confidence >= it) reach the precision and
 * *kept their share of all n; false, *kept = 0, when no threshold does. */
bool precision_threshold(struct scored *s, long n, double precision, float *threshold,
                         double *kept);

#endif
