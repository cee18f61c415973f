/* Strict parsing of numeric command-line values: the whole string must be a
 * number in range, otherwise one line naming the option goes to stderr. */
#ifndef TANDEM_TOOLS_ARGS_H
#define TANDEM_TOOLS_ARGS_H

#include <stdbool.h>
#include <stdint.h>

bool arg_int(const char *opt, const char *s, long lo, long hi, int *out);
bool arg_u64(const char *opt, const char *s, uint64_t *out);
bool arg_float(const char *opt, const char *s, float lo, float hi, float *out);

#endif
