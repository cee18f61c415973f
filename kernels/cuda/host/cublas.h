/* The part of cuBLAS that kernels/cuda/gemm.cu calls, for the host harness:
 * the same signatures, computed by a plain host GEMM (fp32 accumulation in
 * k order; f16 operands decoded bit-exactly), so the backend's >16-row pass
 * runs whole in the tests. It checks the arguments cuBLAS would reject
 * (leading dimensions, operand types) and says nothing about cuBLAS's own
 * rounding, which differs in order (docs/cuda.md). */
#ifndef TANDEM_KERNELS_CUDA_HOST_CUBLAS_H
#define TANDEM_KERNELS_CUDA_HOST_CUBLAS_H

#include "harness.h"

typedef struct tandem_host_cublas *cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7,
               CUBLAS_STATUS_NOT_SUPPORTED = 15 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16F = 2 } cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

cublasStatus_t cublasCreate(cublasHandle_t *handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
/* C (m, n) = alpha · op(A) (m, k) · op(B) (k, n) + beta · C, column-major. */
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc);
/* The same with typed operands: A and B both 32F or both 16F, C 32F, compute 32F. */
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType_t Atype, int lda, const void *B,
                            cudaDataType_t Btype, int ldb, const void *beta, void *C,
                            cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo);

#endif
