/* Device selection, memory, and the upload of weight matrices. */
#include "common.cuh"
#include "ops.h"

#include <string.h>

extern "C" int cuda_device_count(void)
{
    int n = 0;
    /* No driver or no device is an answer here, not a failure. */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" void cuda_device_name(char *buf, size_t len)
{
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    snprintf(buf, len, "%s", p.name);
}

extern "C" void *cuda_alloc(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

extern "C" void cuda_free(void *p)
{
    if (p)
        CUDA_CHECK(cudaFree(p));
}

extern "C" void cuda_upload(void *dst, const void *host_src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

extern "C" void cuda_download(void *host_dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

extern "C" void cuda_memset(void *p, int byte, size_t bytes)
{
    CUDA_CHECK(cudaMemset(p, byte, bytes));
}

extern "C" void cuda_sync(void)
{
    CUDA_CHECK(cudaDeviceSynchronize());
}

extern "C" float cuda_time_ms(void (*fn)(void *ctx), void *ctx, int reps)
{
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    fn(ctx);
    CUDA_CHECK(cudaEventRecord(a, 0));
    for (int i = 0; i < reps; i++)
        fn(ctx);
    CUDA_CHECK(cudaEventRecord(b, 0));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    return ms / reps;
}

struct copy_job {
    void *dst, *src;
    size_t bytes;
};

static void copy_once(void *ctx)
{
    copy_job *j = (copy_job *)ctx;
    CUDA_CHECK(cudaMemcpyAsync(j->dst, j->src, j->bytes, cudaMemcpyDeviceToDevice, 0));
}

extern "C" double cuda_copy_gbs(size_t bytes)
{
    copy_job j = {NULL, NULL, bytes};
    CUDA_CHECK(cudaMalloc(&j.dst, bytes));
    CUDA_CHECK(cudaMalloc(&j.src, bytes));
    CUDA_CHECK(cudaMemset(j.src, 1, bytes));
    float ms = cuda_time_ms(copy_once, &j, 20);
    CUDA_CHECK(cudaFree(j.dst));
    CUDA_CHECK(cudaFree(j.src));
    return 2.0 * bytes / (ms * 1e6);
}

extern "C" bool cuda_weight_type_supported(int type)
{
    return type == W_F32 || type == W_F16 || type == W_BF16 || type == W_Q4_0 || type == W_Q4_1 ||
           type == W_Q8_0;
}

extern "C" size_t cuda_weight_bytes(int type, int rows, int cols)
{
    size_t n = (size_t)rows * cols;
    switch (type) {
    case W_F32: return n * 4;
    case W_F16:
    case W_BF16: return n * 2;
    case W_Q4_0: return n / 2 + n / 32 * 2;
    case W_Q4_1: return n / 2 + n / 32 * 4;
    case W_Q8_0: return n + n / 32 * 2;
    default: return 0;
    }
}

/* ggml's blocks of 32: half scale(s), then quants (two per byte for Q4). */
struct file_block_q8_0 {
    uint16_t d;
    int8_t qs[32];
};
struct file_block_q4_0 {
    uint16_t d;
    uint8_t qs[16];
};
struct file_block_q4_1 {
    uint16_t d, m;
    uint8_t qs[16];
};

/* Splits nb file blocks into the device layout (common.cuh): quants, then
 * scales, then (Q4_1) offsets. */
static void repack(char *stage, const void *host_rows, int type, size_t nb)
{
    size_t qbytes = type == W_Q8_0 ? 32 : 16;
    uint16_t *d = (uint16_t *)(stage + nb * qbytes), *m = d + nb;
    for (size_t i = 0; i < nb; i++) {
        if (type == W_Q8_0) {
            const file_block_q8_0 *b = (const file_block_q8_0 *)host_rows + i;
            memcpy(stage + i * qbytes, b->qs, qbytes);
            memcpy(&d[i], &b->d, 2);
        } else if (type == W_Q4_0) {
            const file_block_q4_0 *b = (const file_block_q4_0 *)host_rows + i;
            memcpy(stage + i * qbytes, b->qs, qbytes);
            memcpy(&d[i], &b->d, 2);
        } else {
            const file_block_q4_1 *b = (const file_block_q4_1 *)host_rows + i;
            memcpy(stage + i * qbytes, b->qs, qbytes);
            memcpy(&d[i], &b->d, 2);
            memcpy(&m[i], &b->m, 2);
        }
    }
}

extern "C" void cuda_upload_weight(void *dst, const void *host_rows, int type, int rows, int cols)
{
    size_t bytes = cuda_weight_bytes(type, rows, cols);
    if (type == W_F32 || type == W_F16 || type == W_BF16) { /* rows as in the file */
        cuda_upload(dst, host_rows, bytes);
        return;
    }
    /* Repack on the host into a staging copy of the device layout. */
    char *stage = (char *)malloc(bytes);
    if (!stage) {
        fprintf(stderr, "cuda_upload_weight: out of host memory\n");
        abort();
    }
    repack(stage, host_rows, type, (size_t)rows * cols / 32);
    cuda_upload(dst, stage, bytes);
    free(stage);
}
