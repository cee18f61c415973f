/* Embedding lookup: one block per token row. */
#include "common.cuh"
#include "ops.h"

// out (n, dim), table (vocab, dim) of TYPE, tokens (n)
template <int TYPE>
__global__ void embed_kernel(float *out, const void *table, int vocab, const int32_t *tokens,
                             int dim)
{
    constexpr int C = weight_row<TYPE>::CHUNK;
    int r = blockIdx.x;
    int tok = tokens[r];
    for (int col = threadIdx.x * C; col < dim; col += blockDim.x * C) {
        float v[C];
        weight_row<TYPE>::load(table, vocab, dim, tok, col, v);
        for (int i = 0; i < C; i++)
            out[(size_t)r * dim + col + i] = v[i];
    }
}

extern "C" void cuda_embed_rows(float *out, const void *table, int type, int vocab,
                                const int32_t *tokens, int n, int dim)
{
    WEIGHT_TYPE_DISPATCH(type, T, {
        auto k = embed_kernel<T>;
        TANDEM_LAUNCH(k, n, 128, 0, 0, out, table, vocab, tokens, dim);
    });
}
