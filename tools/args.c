#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

bool arg_int(const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "tandem: %s: '%s' is not an integer in [%ld, %ld]\n", opt, s, lo, hi);
        return false;
    }
    *out = (int)v;
    return true;
}

bool arg_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') {
        fprintf(stderr, "tandem: %s: '%s' is not a non-negative integer\n", opt, s);
        return false;
    }
    *out = v;
    return true;
}

bool arg_float(const char *opt, const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "tandem: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}
