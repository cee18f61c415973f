/* The host harness's scheduler and runtime (see harness.h). */
#include "harness.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/mman.h>
#include <ucontext.h>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define HARNESS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define HARNESS_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HARNESS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define HARNESS_TSAN 1
#endif
#endif
#ifdef HARNESS_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef HARNESS_TSAN
#include <sanitizer/tsan_interface.h>
extern "C" void AnnotateIgnoreReadsBegin(const char *file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char *file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char *file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char *file, int line);
/* The harness's own state is handed between the scheduler and the fibers by
 * the switches, which TSan is told not to treat as synchronisation (so that
 * it can see races between the kernel's threads). Its accesses are therefore
 * hidden from TSan; only the kernel's own accesses are checked. */
struct tsan_quiet {
    tsan_quiet()
    {
        AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
        AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    }
    ~tsan_quiet()
    {
        AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
        AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
    }
};
#define HARNESS_QUIET tsan_quiet quiet_
#else
#define HARNESS_QUIET
#endif

namespace tandem_host {

/* A barrier of `expected` fibers. Under TSan, arriving releases and leaving
 * acquires an address that alternates with the generation, so a fiber that
 * races ahead to the next barrier cannot lend its later writes to a slow one. */
struct barrier {
    int expected = 0, arrived = 0;
    unsigned gen = 0;
    char sync[2] = {0, 0};
};

/* Switching fibers. glibc's swapcontext makes a signal-mask system call per
 * switch, half the harness's time; on x86-64 a six-register swap does the
 * same job for code that never touches the signal mask or the FP control
 * words. Elsewhere, ucontext. */
#if defined(__x86_64__)
extern "C" void tandem_ctx_swap(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl tandem_ctx_swap\n"
    ".type tandem_ctx_swap,@function\n"
    "tandem_ctx_swap:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size tandem_ctx_swap,.-tandem_ctx_swap\n");
struct context {
    void *sp = nullptr;
};
static void ctx_make(context &c, char *stack, size_t size, void (*entry)())
{
    /* The swap's pops and ret, then entry starts as if called (rsp+8 aligned). */
    uintptr_t top = ((uintptr_t)(stack + size)) & ~(uintptr_t)15;
    void **sp = reinterpret_cast<void **>(top - 16);
    sp[0] = reinterpret_cast<void *>(entry);
    sp[1] = nullptr;
    sp -= 6;
    for (int i = 0; i < 6; i++)
        sp[i] = nullptr;
    c.sp = sp;
}
static void ctx_swap(context &save, context &load) { tandem_ctx_swap(&save.sp, load.sp); }
#else
struct context {
    ucontext_t uc;
};
static void ctx_make(context &c, char *stack, size_t size, void (*entry)())
{
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
static void ctx_swap(context &save, context &load) { swapcontext(&save.uc, &load.uc); }
#endif

struct fiber {
    context ctx;
    char *stack = nullptr;
    size_t stack_size = 0;
    void *tsan = nullptr;
    void *asan_fake = nullptr;
    dim3 tid;
    int lane = 0, warp = 0;
    unsigned exchanges = 0; /* warp exchanges done: picks the exchange row */
    bool done = false;
    barrier *waiting = nullptr;
    unsigned wait_gen = 0;
};

struct warp_state {
    barrier bar;
    unsigned mask = 0; /* lanes that exist in this warp */
    uint64_t slot[2][32];
};

static fiber *current = nullptr;
static dim3 grid_dim, block_dim, block_idx;

static const size_t STACK_BYTES = 256 << 10;
/* Plain static storage: fibers live until exit and stay reachable for LSan. */
static fiber *pool[1024];
static unsigned pool_size = 0;
static std::vector<warp_state> warps;
static barrier block_bar;
static context sched_ctx;
[[maybe_unused]] static void *sched_tsan = nullptr;
[[maybe_unused]] static const void *sched_stack_bottom = nullptr;
[[maybe_unused]] static size_t sched_stack_size = 0;
static void (*launch_body)(void *) = nullptr;
static void *launch_arg = nullptr;
static std::vector<max_align_t> dyn_smem;
static size_t dyn_smem_bytes = 0;
[[maybe_unused]] static char block_chain[2]; /* TSan: orders block k after block k-1 (shared memory reuse) */
static unsigned block_linear = 0;
static cudaError_t last_error = cudaSuccess;

[[noreturn]] static void die(const char *what)
{
    fprintf(stderr, "cuda host harness: %s (block %u,%u,%u)\n", what, block_idx.x, block_idx.y,
            block_idx.z);
    abort();
}

dim3 thread_idx()
{
    HARNESS_QUIET;
    if (!current)
        die("threadIdx used outside a kernel");
    return current->tid;
}

dim3 block_index() { HARNESS_QUIET; return block_idx; }
dim3 block_dims() { HARNESS_QUIET; return block_dim; }
dim3 grid_dims() { HARNESS_QUIET; return grid_dim; }
int lane_id() { HARNESS_QUIET; return current->lane; }

void *dynamic_smem()
{
    HARNESS_QUIET;
    return dyn_smem_bytes ? static_cast<void *>(dyn_smem.data()) : nullptr;
}

static void yield_to_scheduler()
{
    fiber *f = current;
#ifdef HARNESS_ASAN
    __sanitizer_start_switch_fiber(&f->asan_fake, sched_stack_bottom, sched_stack_size);
#endif
#ifdef HARNESS_TSAN
    __tsan_switch_to_fiber(sched_tsan, __tsan_switch_to_fiber_no_sync);
#endif
    ctx_swap(f->ctx, sched_ctx);
#ifdef HARNESS_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake, &sched_stack_bottom, &sched_stack_size);
#endif
}

static void barrier_wait(barrier &b)
{
    fiber *f = current;
    unsigned g = b.gen;
#ifdef HARNESS_TSAN
    __tsan_release(&b.sync[g & 1]);
#endif
    if (++b.arrived == b.expected) {
        b.arrived = 0;
        b.gen++;
    } else {
        f->waiting = &b;
        f->wait_gen = g;
        while (b.gen == g)
            yield_to_scheduler();
        f->waiting = nullptr;
    }
#ifdef HARNESS_TSAN
    __tsan_acquire(&b.sync[g & 1]);
#endif
}

void syncthreads()
{
    HARNESS_QUIET;
    if (!current)
        die("__syncthreads outside a kernel");
    barrier_wait(block_bar);
}

static warp_state &my_warp(unsigned mask)
{
    if (!current)
        die("warp operation outside a kernel");
    warp_state &w = warps[current->warp];
    /* Only whole-warp (converged) operations are modelled. */
    if ((mask & w.mask) != w.mask)
        die("warp operation with a partial mask: the harness models converged warps only");
    return w;
}

void syncwarp()
{
    HARNESS_QUIET;
    barrier_wait(my_warp(0xffffffffu).bar);
}

uint64_t warp_exchange(uint64_t mine, unsigned mask, int src)
{
    HARNESS_QUIET;
    warp_state &w = my_warp(mask);
    int row = current->exchanges++ & 1;
    w.slot[row][current->lane] = mine;
    barrier_wait(w.bar);
    if (!(w.mask >> src & 1u))
        src = current->lane; /* lane past the block's end: undefined on the device */
    return w.slot[row][src];
}

unsigned ballot(unsigned mask, int pred)
{
    HARNESS_QUIET;
    warp_state &w = my_warp(mask);
    int row = current->exchanges++ & 1;
    w.slot[row][current->lane] = pred != 0;
    barrier_wait(w.bar);
    unsigned bits = 0;
    for (int l = 0; l < 32; l++)
        if ((w.mask >> l & 1u) && w.slot[row][l])
            bits |= 1u << l;
    return bits & mask;
}

static void fiber_main()
{
#ifdef HARNESS_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &sched_stack_bottom, &sched_stack_size);
#endif
    for (;;) {
        void (*body)(void *);
        void *arg;
        {
            HARNESS_QUIET;
            body = launch_body;
            arg = launch_arg;
#ifdef HARNESS_TSAN
            __tsan_acquire(&block_chain[(block_linear + 1) & 1]);
#endif
        }
        body(arg);
        HARNESS_QUIET;
#ifdef HARNESS_TSAN
        __tsan_release(&block_chain[block_linear & 1]);
#endif
        current->done = true;
        yield_to_scheduler();
    }
}

static fiber *fiber_new()
{
    fiber *f = new fiber();
    f->stack_size = STACK_BYTES;
    /* A guard page below the stack turns an overflow into a fault. */
    char *m = static_cast<char *>(mmap(nullptr, STACK_BYTES + 4096, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (m == MAP_FAILED)
        die("cannot map a fiber stack");
    mprotect(m, 4096, PROT_NONE);
    f->stack = m + 4096;
    ctx_make(f->ctx, f->stack, f->stack_size, fiber_main);
#ifdef HARNESS_TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
    return f;
}

static void resume(fiber *f)
{
    current = f;
#ifdef HARNESS_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f->stack, f->stack_size);
#endif
#ifdef HARNESS_TSAN
    __tsan_switch_to_fiber(f->tsan, __tsan_switch_to_fiber_no_sync);
#endif
    ctx_swap(sched_ctx, f->ctx);
#ifdef HARNESS_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    current = nullptr;
}

static void run_block(int n_threads)
{
    for (;;) {
        bool progress = false, all_done = true;
        for (int i = 0; i < n_threads; i++) {
            fiber *f = pool[i];
            if (f->done)
                continue;
            all_done = false;
            if (f->waiting && f->waiting->gen == f->wait_gen)
                continue;
            resume(f);
            progress = true;
        }
        if (all_done)
            return;
        if (!progress) {
            for (int i = 0; i < n_threads; i++)
                if (pool[i]->done) {
                    fprintf(stderr, "cuda host harness: thread %d exited while others wait\n", i);
                    break;
                }
            die("deadlock: a barrier that not every thread of the block reaches");
        }
    }
}

void launch(dim3 grid, dim3 block, size_t shmem, void (*body)(void *), void *arg)
{
    HARNESS_QUIET;
    if (current)
        die("kernel launched from inside a kernel");
    unsigned n_threads = block.x * block.y * block.z;
    if (!block.x || !block.y || !block.z || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        n_threads > 1024 || !grid.x || !grid.y || !grid.z || grid.y > 65535 || grid.z > 65535 ||
        shmem > 48 * 1024) {
        last_error = cudaErrorInvalidValue;
        return;
    }
#ifdef HARNESS_TSAN
    if (!sched_tsan)
        sched_tsan = __tsan_get_current_fiber();
    __tsan_release(&block_chain[1]);
#endif
    while (pool_size < n_threads)
        pool[pool_size++] = fiber_new();
    launch_body = body;
    launch_arg = arg;
    grid_dim = grid;
    block_dim = block;
    dyn_smem_bytes = shmem;
    /* Fresh and not zero: kernels must not rely on shared memory contents. */
    dyn_smem.assign((shmem + sizeof(max_align_t) - 1) / sizeof(max_align_t), max_align_t());
    if (shmem)
        memset(dyn_smem.data(), 0xff, shmem);
    unsigned n_warps = (n_threads + 31) / 32;
    warps.assign(n_warps, warp_state());
    block_linear = 0;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++, block_linear++) {
                block_idx = dim3(bx, by, bz);
                block_bar = barrier();
                block_bar.expected = (int)n_threads;
                for (unsigned w = 0; w < n_warps; w++) {
                    unsigned lanes = n_threads - w * 32 < 32 ? n_threads - w * 32 : 32;
                    warps[w].bar = barrier();
                    warps[w].bar.expected = (int)lanes;
                    warps[w].mask = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
                }
                for (unsigned i = 0; i < n_threads; i++) {
                    fiber *f = pool[i];
                    f->tid = dim3(i % block.x, i / block.x % block.y, i / (block.x * block.y));
                    f->lane = (int)(i % 32);
                    f->warp = (int)(i / 32);
                    f->exchanges = 0;
                    f->done = false;
                    f->waiting = nullptr;
                }
                run_block((int)n_threads);
            }
#ifdef HARNESS_TSAN
    __tsan_acquire(&block_chain[0]);
    __tsan_acquire(&block_chain[1]);
#endif
}

} // namespace tandem_host

unsigned __ballot_sync(unsigned mask, int pred) { return tandem_host::ballot(mask, pred); }

/* ---- runtime: device memory is host memory ---- */

static cudaError_t fail(cudaError_t e)
{
    tandem_host::last_error = e;
    return e;
}

/* ---- graphs: a capture records launches, a graph replays them ---- */

struct launch_record {
    dim3 grid, block;
    size_t shmem;
    std::function<void()> body;
};
struct tandem_host_graph {
    std::vector<launch_record> launches;
};
static tandem_host_graph *capture = nullptr; /* open capture, if any */

namespace tandem_host {
bool capturing() { return capture != nullptr; }
void record(dim3 grid, dim3 block, size_t shmem, std::function<void()> body)
{
    capture->launches.push_back({grid, block, shmem, std::move(body)});
}
} // namespace tandem_host

cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode)
{
    if (capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    capture = new tandem_host_graph();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *graph)
{
    if (!capture)
        return fail(cudaErrorInvalidValue);
    *graph = capture;
    capture = nullptr;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long)
{
    *exec = new tandem_host_graph(*graph);
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t)
{
    if (capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    for (launch_record &l : exec->launches) {
        tandem_host::launch(l.grid, l.block, l.shmem,
                            [](void *a) { (*static_cast<std::function<void()> *>(a))(); }, &l.body);
        if (tandem_host::last_error != cudaSuccess)
            return tandem_host::last_error;
    }
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) { delete exec; return cudaSuccess; }
cudaError_t cudaGraphDestroy(cudaGraph_t graph) { delete graph; return cudaSuccess; }

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    if (capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    /* 256-byte alignment, as cudaMalloc guarantees; never a zero-size block. */
    *p = aligned_alloc(256, (bytes + 255) / 256 * 256 + (bytes ? 0 : 256));
    return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind)
{
    if (capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    if (bytes)
        memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t)
{
    return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemset(void *p, int value, size_t bytes)
{
    if (capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    if (bytes)
        memset(p, value, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }
struct tandem_host_stream { int unused; };
struct tandem_host_event { double t; };
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = new tandem_host_stream(); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return capture ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return capture ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess; }
cudaError_t cudaGetLastError()
{
    cudaError_t e = tandem_host::last_error;
    tandem_host::last_error = cudaSuccess;
    return e;
}
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "host harness (emulated, not a GPU)");
    p->multiProcessorCount = 4;
    return cudaSuccess;
}
static double now_ms()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new tandem_host_event(); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { e->t = now_ms(); return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}
const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidValue: return "invalid argument (launch configuration)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    default: return "unknown error";
    }
}
