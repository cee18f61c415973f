/* Hugging Face model folders -> GGUF (placeholder until the reader lands). */
#include <stdio.h>

#include "convert.h"

bool convert_from_hf(const char *dir, const char *out,
                     const struct convert_options *opts, char *err, size_t errlen)
{
    (void)out;
    (void)opts;
    snprintf(err, errlen, "%s: Hugging Face folders are not supported yet", dir);
    return false;
}
