/* libFuzzer target for the safetensors reader: every input is parsed as a
 * whole file (st_parse, the checks st_open makes on a mapping); whatever
 * parses is walked through every accessor and every tensor is read as
 * float32 rows, so ASan sees any access the validation let through. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weights/safetensors.h"

static volatile float checksum; /* keeps the reads of the walk */

static float walk_tensor(const struct st_file *f, const struct st_tensor *t)
{
    if (st_find(f, t->name) != t || t->file != f)
        abort();
    if (t->n_elems == 0)
        return 0;
    /* the last dimension is the row (a scalar is one row of one) */
    uint64_t row_len = t->n_dims ? t->shape[t->n_dims - 1] : 1, n_rows = t->n_elems / row_len;
    float *rows = malloc(sizeof(float) * t->n_elems);
    if (!rows)
        abort();
    st_read_rows(t, row_len, 0, n_rows, rows);
    float sum = 0;
    for (uint64_t i = 0; i < t->n_elems; i++)
        sum += rows[i];
    free(rows);
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct st_file *f = st_parse("fuzz.safetensors", data, size, err, sizeof err);
    if (!f) {
        if (strncmp(err, "fuzz.safetensors: ", 18) != 0) /* errors name the file */
            abort();
        return 0;
    }
    float sum = 0;
    for (int64_t i = 0; i < st_n_tensors(f); i++)
        sum += walk_tensor(f, st_tensor_at(f, i));
    if (st_tensor_at(f, st_n_tensors(f)) != NULL)
        abort();
    checksum = sum;
    st_close(f);
    return 0;
}
