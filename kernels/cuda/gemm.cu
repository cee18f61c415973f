/* GEMM through cuBLAS for passes of more than CUDA_GEMV_MAX_ROWS rows (long
 * prefills): y (n, out) = x (n, in) · wᵀ for F32 and F16 weights.
 *
 * cuBLAS is column-major: w (out, in) row-major is wᵀ (in, out) column-major
 * with leading dimension in, so y_c (out, n) = op_T(w_c) · x_c (in, n).
 * F32: cublasSgemm in fp32 (the default math mode, no TF32). F16: tensor-core
 * GEMM with fp32 accumulation (cublasGemmEx, compute 32F), which takes both
 * operands in f16, so the activations are rounded to f16 first (as
 * llama.cpp's CUDA backend does); that rounding is the GEMM path's only
 * difference in kind from the GEMV.
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

/* One handle for the process, on the calling thread's default stream like
 * every launch here (make cuda builds with --default-stream per-thread); made
 * on first use (a context that never passes 16 rows never loads it). */
static cublasHandle_t handle;
static unsigned long calls;

extern "C" unsigned long cuda_gemm_calls(void)
{
    return calls;
}

extern "C" bool cuda_gemm_type_supported(int type)
{
    return type == W_F32 || type == W_F16;
}

extern "C" size_t cuda_gemm_scratch_bytes(int max_rows, int max_in)
{
    return sizeof(__half) * (size_t)max_rows * max_in;
}

extern "C" void cuda_gemm(float *y, const void *w, int type, const float *x, int n, int in,
                          int out, void *scratch)
{
    if (!cuda_gemm_type_supported(type) || n < 1) {
        fprintf(stderr, "cuda_gemm: weight type %d, %d rows unsupported\n", type, n);
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
    CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, CUDA_R_16F,
                              in, xh, CUDA_R_16F, in, &zero, y, CUDA_R_32F, out, GEMM_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
}
