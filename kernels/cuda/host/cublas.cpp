/* The host harness's cuBLAS (see cublas.h). */
#include "cublas.h"

struct tandem_host_cublas {
    int unused;
};

cublasStatus_t cublasCreate(cublasHandle_t *handle)
{
    *handle = new tandem_host_cublas();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle)
{
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t)
{
    return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

/* Element (i, j) of op(X), X column-major with leading dimension ld. */
static float element(const void *x, cudaDataType_t type, cublasOperation_t op, int ld, int i, int j)
{
    size_t at = op == CUBLAS_OP_N ? (size_t)j * ld + i : (size_t)i * ld + j;
    if (type == CUDA_R_16F)
        return __half2float(static_cast<const __half *>(x)[at]);
    return static_cast<const float *>(x)[at];
}

static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           float alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                           cudaDataType_t bt, int ldb, float beta, float *C, int ldc)
{
    /* What cuBLAS checks: op(A) is (m, k), so A has m or k rows per column. */
    if (m < 0 || n < 0 || k < 0 || lda < (ta == CUBLAS_OP_N ? m : k) ||
        ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++)
                acc += element(A, at, ta, lda, i, p) * element(B, bt, tb, ldb, p, j);
            float *c = &C[(size_t)j * ldc + i];
            *c = alpha * acc + (beta != 0.0f ? beta * *c : 0.0f);
        }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    return gemm(transa, transb, m, n, k, *alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, *beta, C,
                ldc);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType_t Atype, int lda, const void *B,
                            cudaDataType_t Btype, int ldb, const void *beta, void *C,
                            cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo)
{
    (void)algo;
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    /* With compute 32F, alpha and beta are floats; mixed A/B types are not a
     * cuBLAS combination. */
    if (Atype != Btype || Ctype != CUDA_R_32F || computeType != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm(transa, transb, m, n, k, *static_cast<const float *>(alpha), A, Atype, lda, B,
                Btype, ldb, *static_cast<const float *>(beta), static_cast<float *>(C), ldc);
}
