/* GEMM through cuBLAS for passes of more than CUDA_GEMV_MAX_ROWS rows (long
 * prefills): y (n, out) = x (n, in) · wᵀ for F32, F16, BF16, Q8_0, Q4_0 and
 * Q4_1 weights.
 *
 * cuBLAS is column-major: w (out, in) row-major is wᵀ (in, out) column-major
 * with leading dimension in, so y_c (out, n) = op_T(w_c) · x_c (in, n).
 * F32: cublasSgemm in fp32 (the default math mode, no TF32). F16: tensor-core
 * GEMM with fp32 accumulation (cublasGemmEx, compute 32F), which takes both
 * operands in f16, so the activations are rounded to f16 first (as
 * llama.cpp's CUDA backend does); that rounding is the GEMM path's only
 * difference in kind from the GEMV. BF16, Q8_0, Q4_0 and Q4_1: the same f16
 * GEMM, on weights dequantized to f16 (from the device layout, weight_row)
 * into the scratch a slice of output rows at a time, as llama.cpp does;
 * rounding each weight to f16 is their second difference from the GEMV
 * (none for BF16 weights in f16's normal range, 6.1e-5..65504: an 8-bit
 * mantissa fits in f16's 11).
 *
 * Not batch invariant: cuBLAS picks its tiling and reduction split from the
 * shape, so a row's bits depend on n. The backend calls this only above
 * CUDA_GEMV_MAX_ROWS rows (docs/cuda.md says what that changes). */
#include "common.cuh"
#include "ops.h"

#ifdef __CUDACC__
#include <cublas_v2.h>
#if CUDART_VERSION >= 11000
#define GEMM_COMPUTE_32F CUBLAS_COMPUTE_32F
#else
#define GEMM_COMPUTE_32F CUDA_R_32F /* CUDA 10.2 (Jetson Nano) takes a data type */
#endif
#else
#include "host/cublas.h"
#define GEMM_COMPUTE_32F CUBLAS_COMPUTE_32F
#endif

/* A cuBLAS error is a bug or a dead device, like a CUDA one. */
#define CUBLAS_CHECK(call)                                                                     \
    do {                                                                                       \
        cublasStatus_t st_ = (call);                                                           \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                    \
            fprintf(stderr, "cuBLAS error %d at %s:%d: %s\n", (int)st_, __FILE__, __LINE__,     \
                    #call);                                                                    \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

// out (len) = x rounded to f16
__global__ void to_half_kernel(__half *out, const float *x, long len)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < len;
         i += (long)gridDim.x * blockDim.x)
        out[i] = __float2half(x[i]);
}

/* out (rows, cols) f16 = rows [row0, row0+rows) of w (w_rows, cols) of TYPE
 * in the device layout, each weight rounded to the nearest f16. A thread
 * decodes one CHUNK (a Q4 block, 16 Q8_0 quants, 8 bf16) and stores it in
 * 16-byte words: CHUNK halves are a multiple of 8, and so is every chunk's
 * offset i·CHUNK (cols is a multiple of CHUNK). */
template <int TYPE>
__global__ void dequant_f16_kernel(uint4 *out, const void *w, int w_rows, int cols, int row0,
                                   int rows)
{
    constexpr int C = weight_row<TYPE>::CHUNK;
    static_assert(C % 8 == 0, "a chunk is whole 16-byte words of halves");
    const long per_row = cols / C, chunks = per_row * rows;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < chunks;
         i += (long)gridDim.x * blockDim.x) {
        float v[C];
        weight_row<TYPE>::load(w, w_rows, cols, row0 + (int)(i / per_row),
                               (int)(i % per_row) * C, v);
        unsigned u[C / 2];
        for (int j = 0; j < C / 2; j++)
            u[j] = (unsigned)__half_as_ushort(__float2half(v[2 * j])) |
                   (unsigned)__half_as_ushort(__float2half(v[2 * j + 1])) << 16;
        for (int j = 0; j < C / 8; j++)
            out[i * (C / 8) + j] = uint4{u[4 * j], u[4 * j + 1], u[4 * j + 2], u[4 * j + 3]};
    }
}

template <int TYPE>
static void dequant_f16_launch(__half *out, const void *w, int w_rows, int cols, int row0,
                               int rows)
{
    long blocks = ((long)rows * (cols / weight_row<TYPE>::CHUNK) + 255) / 256;
    TANDEM_LAUNCH(dequant_f16_kernel<TYPE>, (unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, 0,
                  reinterpret_cast<uint4 *>(out), w, w_rows, cols, row0, rows);
}

/* The caller passes a dequantized type (BF16, Q8_0, Q4_0, Q4_1). */
static void dequant_f16(__half *out, const void *w, int type, int w_rows, int cols, int row0,
                        int rows)
{
    auto launch = type == W_BF16 ? dequant_f16_launch<W_BF16>
                : type == W_Q8_0 ? dequant_f16_launch<W_Q8_0>
                : type == W_Q4_0 ? dequant_f16_launch<W_Q4_0>
                                 : dequant_f16_launch<W_Q4_1>;
    launch(out, w, w_rows, cols, row0, rows);
}

/* One handle for the process, on the calling thread's default stream like
 * every launch here (make cuda builds with --default-stream per-thread); made
 * on first use (a context that never passes 16 rows never loads it). */
static cublasHandle_t handle;
static unsigned long calls;

extern "C" unsigned long cuda_gemm_calls(void)
{
    return calls;
}

static bool dequantized(int type)
{
    return type == W_BF16 || type == W_Q8_0 || type == W_Q4_0 || type == W_Q4_1;
}

extern "C" bool cuda_gemm_type_supported(int type)
{
    return type == W_F32 || type == W_F16 || dequantized(type);
}

/* The scratch: x as f16 (n, in), then (dequantized types) a slice of w as
 * f16, at a 256-byte boundary (cuBLAS's tensor-core kernels want 16). */
static size_t x_half_bytes(int n, int in)
{
    return (sizeof(__half) * (size_t)n * in + 255) / 256 * 256;
}

/* Output rows per dequantized slice: at most CUDA_GEMM_SLICE_WEIGHTS
 * weights, in whole multiples of 64 rows when that many fit (whole cuBLAS
 * tiles, and y_c + r0 stays 256-byte aligned), at least one row, at most the
 * matrix: 704 rows of a 7B w_down (11008 columns), 2048 of a 4096-column
 * matrix. */
static int slice_rows(int in, int out)
{
    long rows = CUDA_GEMM_SLICE_WEIGHTS / in;
    rows = rows >= 64 ? rows / 64 * 64 : rows < 1 ? 1 : rows;
    return rows < out ? (int)rows : out;
}

extern "C" size_t cuda_gemm_scratch_bytes(int type, int n, int in, int out)
{
    if (type == W_F32)
        return 0;
    size_t bytes = x_half_bytes(n, in);
    if (dequantized(type))
        bytes += sizeof(__half) * (size_t)slice_rows(in, out) * in;
    return bytes;
}

extern "C" void cuda_gemm(float *y, const void *w, int type, const float *x, int n, int in,
                          int out, void *scratch, size_t scratch_bytes)
{
    size_t xh_bytes = x_half_bytes(n, in);
    /* Rows per slice: slice_rows, or fewer if that is what the scratch holds. */
    size_t fit = scratch_bytes > xh_bytes ? (scratch_bytes - xh_bytes) / (sizeof(__half) * in) : 0;
    int rows = slice_rows(in, out);
    rows = dequantized(type) && fit < (size_t)rows ? (int)fit : rows;
    if (!cuda_gemm_type_supported(type) || n < 1 ||
        (type != W_F32 && scratch_bytes < xh_bytes) || rows < 1) {
        fprintf(stderr, "cuda_gemm: weight type %d, %d rows, %zu scratch bytes unsupported\n",
                type, n, scratch_bytes);
        abort();
    }
    if (!handle) {
        CUBLAS_CHECK(cublasCreate(&handle));
        CUBLAS_CHECK(cublasSetStream(handle, cudaStreamPerThread));
    }
    calls++;
    const float one = 1.0f, zero = 0.0f;
    if (type == W_F32) {
        CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one,
                                 static_cast<const float *>(w), in, x, in, &zero, y, out));
        return;
    }
    __half *xh = static_cast<__half *>(scratch);
    long len = (long)n * in;
    long blocks = (len + 255) / 256;
    TANDEM_LAUNCH(to_half_kernel, (unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, 0, xh, x,
                  len);
    if (type == W_F16) {
        CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w,
                                  CUDA_R_16F, in, xh, CUDA_R_16F, in, &zero, y, CUDA_R_32F, out,
                                  GEMM_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return;
    }
    /* Slice s: output rows [r0, r0+m) of y_c, i.e. y_c + r0 with leading
     * dimension out. The stream orders each slice's dequantization after the
     * previous slice's GEMM has read the scratch. */
    __half *wh = reinterpret_cast<__half *>(static_cast<char *>(scratch) + xh_bytes);
    for (int r0 = 0; r0 < out; r0 += rows) {
        int m = out - r0 < rows ? out - r0 : rows;
        dequant_f16(wh, w, type, out, in, r0, m);
        CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, in, &one, wh,
                                  CUDA_R_16F, in, xh, CUDA_R_16F, in, &zero, y + r0, CUDA_R_32F,
                                  out, GEMM_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
}
