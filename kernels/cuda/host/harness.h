/* CUDA semantics on the host, for tests: kernel sources compiled by g++/clang++
 * run with one fiber per CUDA thread.
 *
 * A launch runs its blocks one after another. Each block gets blockDim fibers
 * on the calling thread, scheduled round-robin; a fiber runs until it reaches
 * a barrier (__syncthreads, __syncwarp, a shuffle or a vote), so the order of
 * events inside a block is one legal interleaving of the real one. Shared
 * memory is `static` storage (one block at a time makes that per-block);
 * dynamic shared memory is a buffer of the launch's size. A barrier that some
 * thread of the block never reaches is reported as a deadlock instead of
 * hanging. Under ThreadSanitizer every fiber is a TSan fiber and barriers are
 * the only synchronisation between them, so a missing __syncthreads or
 * __syncwarp shows up as a data race.
 *
 * Everything here is test scaffolding: it says nothing about timing, the
 * memory model across blocks, occupancy or tensor cores (docs/cuda.md). */
#ifndef TANDEM_KERNELS_CUDA_HOST_HARNESS_H
#define TANDEM_KERNELS_CUDA_HOST_HARNESS_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

/* ---- language ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint4 { unsigned x, y, z, w; };
struct uint2 { unsigned x, y; };
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };

namespace tandem_host {
struct fiber;
dim3 thread_idx();
dim3 block_index();
dim3 block_dims();
dim3 grid_dims();
void *dynamic_smem();
void syncthreads();
void syncwarp();
/* Puts this lane's 8-byte value in the warp's exchange row, waits for the
 * warp, and returns lane src's value (the primitive behind shuffles/votes). */
uint64_t warp_exchange(uint64_t mine, unsigned mask, int src);
int lane_id();
void launch(dim3 grid, dim3 block, size_t shmem, void (*body)(void *), void *arg);
/* While a stream capture is open (cudaStreamBeginCapture) launches are
 * recorded with their arguments, not run; cudaGraphLaunch replays them. */
bool capturing();
void record(dim3 grid, dim3 block, size_t shmem, std::function<void()> body);
} // namespace tandem_host

/* By value: the scheduler owns these; a kernel only reads a copy. */
#define threadIdx (tandem_host::thread_idx())
#define blockIdx (tandem_host::block_index())
#define blockDim (tandem_host::block_dims())
#define gridDim (tandem_host::grid_dims())
#define warpSize 32

inline void __syncthreads() { tandem_host::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; tandem_host::syncwarp(); }

template <class T> inline uint64_t tandem_host_pack(T v)
{
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    return u;
}
template <class T> inline T tandem_host_unpack(uint64_t u)
{
    T v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* width: shuffles stay inside segments of `width` lanes, as on the device. */
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
    int lane = tandem_host::lane_id(), base = lane & ~(width - 1);
    return tandem_host_unpack<T>(tandem_host::warp_exchange(tandem_host_pack(v), mask,
                                                            base + (src & (width - 1))));
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    int lane = tandem_host::lane_id();
    int src = lane ^ lane_mask;
    if ((src & ~(width - 1)) != (lane & ~(width - 1)))
        src = lane;
    return tandem_host_unpack<T>(tandem_host::warp_exchange(tandem_host_pack(v), mask, src));
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    int lane = tandem_host::lane_id();
    int src = lane + (int)delta;
    if ((src & ~(width - 1)) != (lane & ~(width - 1)))
        src = lane;
    return tandem_host_unpack<T>(tandem_host::warp_exchange(tandem_host_pack(v), mask, src));
}
unsigned __ballot_sync(unsigned mask, int pred);
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

/* ---- math the kernels use that the host library lacks ---- */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }

/* ---- half precision: bit-exact conversions shared with the CPU kernels ---- */
extern "C" float fp16_to_f32(uint16_t h);
extern "C" uint16_t f32_to_fp16(float f);
struct __half { uint16_t x; };
inline float __half2float(__half h) { return fp16_to_f32(h.x); }
inline __half __float2half(float f) { return __half{f32_to_fp16(f)}; }
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
inline unsigned short __half_as_ushort(__half h) { return h.x; }

/* ---- runtime ---- */
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorNoDevice = 100,
       cudaErrorInvalidValue = 1, cudaErrorStreamCaptureUnsupported = 900 };
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                      cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
typedef struct tandem_host_stream *cudaStream_t;
typedef struct tandem_host_event *cudaEvent_t;
typedef struct tandem_host_graph *cudaGraph_t;
typedef struct tandem_host_graph *cudaGraphExec_t;
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal,
                             cudaStreamCaptureModeRelaxed };
/* The handle nvcc's --default-stream per-thread makes stream 0 mean. */
#define cudaStreamPerThread ((cudaStream_t)0x2)
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor, multiProcessorCount;
};

cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s = nullptr);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);
const char *cudaGetErrorString(cudaError_t e);
/* Graphs: one capture at a time; copies, memsets and synchronisation inside
 * a capture fail as on the device (cudaErrorStreamCaptureUnsupported). */
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

/* Launch: the kernel's arguments are copied into a lambda that every fiber
 * calls; kernels take their parameters by value, so each fiber has its own.
 * Copied, not referenced, so that a launch recorded in a graph keeps the
 * values it had at capture, as on the device. */
#define TANDEM_LAUNCH(kernel, grid, block, shmem, stream, ...)                                 \
    do {                                                                                       \
        (void)(stream);                                                                        \
        auto tandem_body_ = [=]() { kernel(__VA_ARGS__); };                                    \
        if (tandem_host::capturing())                                                          \
            tandem_host::record(dim3(grid), dim3(block), (shmem), tandem_body_);               \
        else                                                                                   \
            tandem_host::launch(dim3(grid), dim3(block), (shmem),                              \
                                [](void *a) { (*static_cast<decltype(tandem_body_) *>(a))(); }, \
                                &tandem_body_);                                                \
        CUDA_CHECK(cudaGetLastError());                                                        \
    } while (0)

#define TANDEM_DYNAMIC_SHARED(type, name) type *name = static_cast<type *>(tandem_host::dynamic_smem())

#endif
