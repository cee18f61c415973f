/* Names and block sizes of the tensor types, one table row per type. */
#include "dtype.h"

#include <string.h>

_Static_assert(sizeof(struct block_q8_0) == 34, "q8_0 block must match ggml");
_Static_assert(sizeof(struct block_q4_0) == 18, "q4_0 block must match ggml");
_Static_assert(sizeof(struct block_q4_1) == 20, "q4_1 block must match ggml");

struct dtype_info {
    enum dtype type;
    const char *name;
    size_t block_elems;
    size_t block_bytes;
};

static const struct dtype_info dtype_infos[] = {
    {DTYPE_F32, "f32", 1, 4},
    {DTYPE_F16, "f16", 1, 2},
    {DTYPE_BF16, "bf16", 1, 2},
    {DTYPE_Q8_0, "q8_0", QK, sizeof(struct block_q8_0)},
    {DTYPE_Q4_0, "q4_0", QK, sizeof(struct block_q4_0)},
    {DTYPE_Q4_1, "q4_1", QK, sizeof(struct block_q4_1)},
};

#define N_DTYPES (sizeof dtype_infos / sizeof dtype_infos[0])

static const struct dtype_info *dtype_info(uint32_t type)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if ((uint32_t)dtype_infos[i].type == type)
            return &dtype_infos[i];
    return NULL;
}

bool dtype_is_supported(uint32_t type)
{
    return dtype_info(type) != NULL;
}

const char *dtype_name(uint32_t type)
{
    const struct dtype_info *info = dtype_info(type);
    return info ? info->name : "unknown";
}

bool dtype_from_name(const char *name, enum dtype *out)
{
    for (size_t i = 0; i < N_DTYPES; i++) {
        if (strcmp(dtype_infos[i].name, name) == 0) {
            *out = dtype_infos[i].type;
            return true;
        }
    }
    return false;
}

/* 0 for an unsupported type, so callers that forgot to check get no blocks. */
size_t dtype_block_elems(enum dtype t)
{
    const struct dtype_info *info = dtype_info(t);
    return info ? info->block_elems : 0;
}

size_t dtype_block_bytes(enum dtype t)
{
    const struct dtype_info *info = dtype_info(t);
    return info ? info->block_bytes : 0;
}

/* Also 0 when the byte count does not fit in size_t: n comes from files. */
size_t dtype_row_bytes(enum dtype t, uint64_t n)
{
    const struct dtype_info *info = dtype_info(t);
    if (!info || n % info->block_elems != 0)
        return 0;
    uint64_t blocks = n / info->block_elems;
    if (blocks > SIZE_MAX / info->block_bytes)
        return 0;
    return (size_t)blocks * info->block_bytes;
}
