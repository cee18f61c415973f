/* q8_0x16_pack and its matmul front end (layout: repack.h). */
#include "repack.h"

#include <assert.h>
#include <string.h>

#include "matmul_impl.h"

bool q8_0x16_supported(void)
{
    return matmul_backend_best()->rows_q8_0x16 != NULL;
}

void q8_0x16_pack_reference(void *dst, const void *src, int in, int out)
{
    assert(in > 0 && in % QK == 0 && out > 0);
    const size_t nb = (size_t)in / QK, row = nb * sizeof(struct block_q8_0);
    const int groups = out / Q8_0X16_ROWS;
    for (int g = 0; g < groups; g++) {
        const struct block_q8_0 *rows = (const struct block_q8_0 *)((const uint8_t *)src + (size_t)g * Q8_0X16_ROWS * row);
        uint8_t *q = (uint8_t *)dst + (size_t)g * Q8_0X16_ROWS * row;
        uint16_t *d = (uint16_t *)(q + nb * 512);
        for (size_t b = 0; b < nb; b++) {
            for (int i = 0; i < Q8_0X16_ROWS; i++) {
                const struct block_q8_0 *blk = rows + (size_t)i * nb + b;
                for (int k = 0; k < 8; k++)
                    for (int j = 0; j < 4; j++)
                        q[b * 512 + (size_t)k * 64 + (size_t)i * 4 + (size_t)j] =
                            (uint8_t)((uint8_t)blk->qs[4 * k + j] ^ 0x80u);
                d[b * Q8_0X16_ROWS + (size_t)i] = blk->d;
            }
        }
    }
    const size_t done = (size_t)groups * Q8_0X16_ROWS * row;
    memcpy((uint8_t *)dst + done, (const uint8_t *)src + done, (size_t)out * row - done);
}

void q8_0x16_pack(void *dst, const void *src, int in, int out)
{
    const struct matmul_backend *be = matmul_backend_best();
    if (be->pack_q8_0x16)
        be->pack_q8_0x16(dst, src, in, out);
    else
        q8_0x16_pack_reference(dst, src, in, out);
}

void matmul_q8_0x16(struct threadpool *tp, float *y, const void *w, const float *x, int n,
                    int in, int out, void *scratch)
{
    const struct matmul_backend *be = matmul_backend_best();
    assert(be->rows_q8_0x16);
    matmul_rows_with(be, be->rows_q8_0x16, tp, y, w, DTYPE_Q8_0, x, n, in, out, scratch);
}
