/* What every kernel file includes: one source for nvcc and for the host
 * harness, the launch and error macros, and the small device helpers the
 * kernels share (warp reductions, weight-row decoding).
 *
 * Everything here stays within CUDA 10.2 / sm_53 (the Jetson Nano draft
 * path): no bf16 type (bf16 weights are decoded by a shift), no tensor cores,
 * no cooperative groups; only *_sync warp intrinsics and __half conversions. */
#ifndef TANDEM_KERNELS_CUDA_COMMON_CUH
#define TANDEM_KERNELS_CUDA_COMMON_CUH

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#include <cuda_runtime.h>
/* Every launch goes through here: one place to check it. */
#define TANDEM_LAUNCH(kernel, grid, block, shmem, stream, ...)                                 \
    do {                                                                                       \
        kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__);                           \
        CUDA_CHECK(cudaGetLastError());                                                        \
    } while (0)
#define TANDEM_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#define TANDEM_UNROLL _Pragma("unroll")
#else
#define TANDEM_UNROLL
#include "host/harness.h"
#endif

/* A CUDA runtime error here is a bug or a dead device: say where, and stop. */
#define CUDA_CHECK(call)                                                                       \
    do {                                                                                       \
        cudaError_t err_ = (call);                                                             \
        if (err_ != cudaSuccess) {                                                             \
            fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(err_), __FILE__,  \
                    __LINE__, #call);                                                          \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#define FULL_MASK 0xffffffffu
#define WARP 32

/* Threads per block for an entry point's `block` argument: the default when
 * 0, else rounded up to whole warps (the block reductions and full-mask
 * shuffles below need them) and capped at 1024. */
static inline int block_threads(int block, int fallback)
{
    int t = block > 0 ? block : fallback;
    t = (t + WARP - 1) / WARP * WARP;
    return t < 1024 ? t : 1024;
}

struct sum_op {
    __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct max_op {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/* Butterfly reduction over the warp: every lane gets the result, and the
 * order of operations depends only on the lane values, never on the launch. */
template <class Op> __device__ __forceinline__ float warp_reduce(float v, Op op)
{
    for (int o = 16; o > 0; o >>= 1)
        v = op(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

/* Reduction over the block (blockDim.x whole warps, at most 1024): warps
 * reduce, then every warp reduces the warp results. scratch holds 32 floats;
 * identity fills the missing warps. The order is fixed by blockDim.x alone. */
template <class Op>
__device__ __forceinline__ float block_reduce(float v, float identity, float *scratch, Op op)
{
    int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, n_warps = blockDim.x / WARP;
    v = warp_reduce(v, op);
    __syncthreads(); /* scratch may still be read by a previous call */
    if (lane == 0)
        scratch[w] = v;
    __syncthreads();
    return warp_reduce(lane < n_warps ? scratch[lane] : identity, op);
}

__device__ __forceinline__ float warp_sum(float v) { return warp_reduce(v, sum_op()); }
__device__ __forceinline__ float block_sum(float v, float *scratch)
{
    return block_reduce(v, 0.0f, scratch, sum_op());
}
__device__ __forceinline__ float block_max(float v, float *scratch)
{
    return block_reduce(v, -INFINITY, scratch, max_op());
}

__device__ __forceinline__ float half_bits_to_float(uint16_t b)
{
    return __half2float(__ushort_as_half(b));
}

/* ---- weight rows as the kernels see them ----
 * F32 and F16 rows are as in the GGUF file. Q8_0 is repacked at upload
 * (kernels/cuda/device.h): a matrix of R rows and C columns is R*C int8
 * quants, row-major, followed by R*C/32 half scales, so a lane can load 16
 * quants with one aligned 16-byte load (the file's 34-byte blocks cannot).
 * Q4_0 and Q4_1 likewise: R*C/2 bytes of nibbles, each 32-column block's 16
 * bytes as in the file (element j < 16 the low nibble of byte j, element
 * j + 16 its high nibble) and 16-byte aligned, so one load is one block; then
 * R*C/32 half scales d; then, for Q4_1 only, R*C/32 half offsets m.
 * BF16 rows are as in the file too.
 * The ids are the file's (enum dtype). */
enum { W_F32 = 0, W_F16 = 1, W_Q4_0 = 2, W_Q4_1 = 3, W_Q8_0 = 8, W_BF16 = 30 };

/* Decodes CHUNK consecutive elements of row `row` starting at column `col`
 * (col a multiple of CHUNK) into out. */
template <int TYPE> struct weight_row;

template <> struct weight_row<W_F32> {
    static constexpr int CHUNK = 4;
    __device__ __forceinline__ static void load(const void *w, int rows, int cols, int row,
                                                int col, float *out)
    {
        (void)rows;
        float4 v = *reinterpret_cast<const float4 *>(static_cast<const float *>(w) +
                                                     (size_t)row * cols + col);
        out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
    }
};

/* Eight 16-bit weights from element col of a row, one aligned 16-byte load,
 * as four words (element 2i in the low half of u[i]). */
__device__ __forceinline__ void load_8x16(const void *w, int cols, int row, int col, unsigned u[4])
{
    uint4 v = *reinterpret_cast<const uint4 *>(static_cast<const uint16_t *>(w) +
                                               (size_t)row * cols + col);
    u[0] = v.x; u[1] = v.y; u[2] = v.z; u[3] = v.w;
}

template <> struct weight_row<W_F16> {
    static constexpr int CHUNK = 8;
    __device__ __forceinline__ static void load(const void *w, int rows, int cols, int row,
                                                int col, float *out)
    {
        (void)rows;
        unsigned u[4];
        load_8x16(w, cols, row, col, u);
        for (int i = 0; i < 4; i++) {
            out[2 * i] = half_bits_to_float((uint16_t)(u[i] & 0xffffu));
            out[2 * i + 1] = half_bits_to_float((uint16_t)(u[i] >> 16));
        }
    }
};

/* bf16 is the top half of an f32: widening is a 16-bit shift, exact, and the
 * CPU's bf16_to_f32 bit for bit. Done on the raw bits so that no
 * __nv_bfloat16 (CUDA 11+, sm_80 arithmetic) is needed on the Nano. */
__device__ __forceinline__ float bf16_bits_to_float(unsigned b)
{
    return __int_as_float((int)(b << 16));
}

template <> struct weight_row<W_BF16> {
    static constexpr int CHUNK = 8;
    __device__ __forceinline__ static void load(const void *w, int rows, int cols, int row,
                                                int col, float *out)
    {
        (void)rows;
        unsigned u[4];
        load_8x16(w, cols, row, col, u);
        for (int i = 0; i < 4; i++) {
            out[2 * i] = bf16_bits_to_float(u[i] & 0xffffu);
            out[2 * i + 1] = __int_as_float((int)(u[i] & 0xffff0000u)); /* high half: in place */
        }
    }
};

template <> struct weight_row<W_Q8_0> {
    static constexpr int CHUNK = 16;
    __device__ __forceinline__ static void load(const void *w, int rows, int cols, int row,
                                                int col, float *out)
    {
        const int8_t *qs = static_cast<const int8_t *>(w);
        const uint16_t *d = reinterpret_cast<const uint16_t *>(qs + (size_t)rows * cols);
        float scale = half_bits_to_float(d[((size_t)row * cols + col) / 32]);
        uint4 v = *reinterpret_cast<const uint4 *>(qs + (size_t)row * cols + col);
        unsigned u[4] = {v.x, v.y, v.z, v.w};
        for (int i = 0; i < 16; i++)
            out[i] = scale * (float)(int8_t)(u[i / 4] >> (8 * (i % 4)) & 0xffu);
    }
};

/* A Q4 block: the 32 nibbles of block `blk` (one 16-byte load) as
 * integers 0..15 in column order. */
__device__ __forceinline__ static void q4_block_nibbles(const void *w, size_t blk, int *q)
{
    uint4 v = reinterpret_cast<const uint4 *>(w)[blk];
    unsigned u[4] = {v.x, v.y, v.z, v.w};
    for (int j = 0; j < 16; j++) {
        int b = (int)(u[j / 4] >> (8 * (j % 4)) & 0xffu);
        q[j] = b & 0xf;
        q[j + 16] = b >> 4;
    }
}

/* x = d * (q - 8): the CPU's dequantize_row, operation for operation. */
template <> struct weight_row<W_Q4_0> {
    static constexpr int CHUNK = 32;
    __device__ __forceinline__ static void load(const void *w, int rows, int cols, int row,
                                                int col, float *out)
    {
        size_t blk = ((size_t)row * cols + col) / 32;
        const uint16_t *d =
            reinterpret_cast<const uint16_t *>(static_cast<const char *>(w) + (size_t)rows * cols / 2);
        float scale = half_bits_to_float(d[blk]);
        int q[32];
        q4_block_nibbles(w, blk, q);
        for (int i = 0; i < 32; i++)
            out[i] = (float)(q[i] - 8) * scale;
    }
};

/* x = d * q + m; d * q is exact in fp32 (an 11-bit mantissa times 4 bits),
 * so a contracted FMA rounds it exactly as the CPU's multiply-then-add. */
template <> struct weight_row<W_Q4_1> {
    static constexpr int CHUNK = 32;
    __device__ __forceinline__ static void load(const void *w, int rows, int cols, int row,
                                                int col, float *out)
    {
        size_t n = (size_t)rows * cols, blk = ((size_t)row * cols + col) / 32;
        const uint16_t *d =
            reinterpret_cast<const uint16_t *>(static_cast<const char *>(w) + n / 2);
        float scale = half_bits_to_float(d[blk]), min = half_bits_to_float(d[n / 32 + blk]);
        int q[32];
        q4_block_nibbles(w, blk, q);
        for (int i = 0; i < 32; i++)
            out[i] = (float)q[i] * scale + min;
    }
};

/* Runs body.template operator()<TYPE>() for a runtime weight type. */
#define WEIGHT_TYPE_DISPATCH(type, TYPE, ...)                                                  \
    switch (type) {                                                                            \
    case W_F32: { constexpr int TYPE = W_F32; __VA_ARGS__; } break;                            \
    case W_F16: { constexpr int TYPE = W_F16; __VA_ARGS__; } break;                            \
    case W_Q4_0: { constexpr int TYPE = W_Q4_0; __VA_ARGS__; } break;                          \
    case W_Q4_1: { constexpr int TYPE = W_Q4_1; __VA_ARGS__; } break;                          \
    case W_Q8_0: { constexpr int TYPE = W_Q8_0; __VA_ARGS__; } break;                          \
    case W_BF16: { constexpr int TYPE = W_BF16; __VA_ARGS__; } break;                          \
    default: fprintf(stderr, "cuda: weight type %d unsupported\n", (int)(type)); abort();     \
    }

#endif
