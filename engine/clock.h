/* The monotonic clock every timing in tandem is read from: seconds, as a
 * double, from an arbitrary origin (only differences mean anything). */
#ifndef TANDEM_ENGINE_CLOCK_H
#define TANDEM_ENGINE_CLOCK_H

#include <time.h>

static inline double clock_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
