/* Checks that the host harness catches what it claims to (docs/cuda.md):
 *   harness_selftest race     shared memory read without __syncthreads: a
 *                             TSan data race (in the TSan build)
 *   harness_selftest synced   the same with the barrier: clean
 *   harness_selftest diverge  __syncthreads in divergent code: a deadlock
 *                             report and abort
 *   harness_selftest shuffle  warp shuffles, votes and dynamic shared memory
 *                             give CUDA's answers
 * Run by tests/cuda/test_harness.sh (TSan build). */
#include "kernels/cuda/common.cuh"

#include <string.h>

__global__ void neighbour(float *out, bool synced)
{
    __shared__ float s[64];
    s[threadIdx.x] = (float)threadIdx.x;
    if (synced)
        __syncthreads();
    out[threadIdx.x] = s[(threadIdx.x + 1) % 64];
}

__global__ void divergent_barrier(float *out)
{
    if (threadIdx.x < 32)
        __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// out (blockDim.x): lane sums, shuffles and votes checked on the host
__global__ void warp_ops(int *out)
{
    TANDEM_DYNAMIC_SHARED(int, dyn);
    int lane = threadIdx.x % 32;
    dyn[threadIdx.x] = lane;
    __syncthreads();
    /* a neighbour's value: through shared memory, after the barrier */
    float sum = warp_sum((float)dyn[threadIdx.x - lane + (lane + 1) % 32]);
    int down = __shfl_down_sync(FULL_MASK, lane, 1);
    int from0 = __shfl_sync(FULL_MASK, lane * 10, 0);
    unsigned odd = __ballot_sync(FULL_MASK, lane & 1);
    int all = __all_sync(FULL_MASK, lane < 32), any = __any_sync(FULL_MASK, lane == 5);
    out[threadIdx.x] = sum == 496.0f && (down == (lane < 31 ? lane + 1 : lane)) && from0 == 0 &&
                       odd == 0xaaaaaaaau && all && any;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "shuffle";
    float *out;
    CUDA_CHECK(cudaMalloc((void **)&out, 64 * sizeof(float)));
    if (!strcmp(what, "race") || !strcmp(what, "synced")) {
        TANDEM_LAUNCH(neighbour, 1, 64, 0, 0, out, !strcmp(what, "synced"));
        float host[64];
        CUDA_CHECK(cudaMemcpy(host, out, sizeof host, cudaMemcpyDeviceToHost));
        printf("%s: out[63] = %g\n", what, host[63]);
    } else if (!strcmp(what, "diverge")) {
        TANDEM_LAUNCH(divergent_barrier, 1, 64, 0, 0, out);
        printf("diverge: not detected\n");
    } else {
        int *flags, host[96];
        CUDA_CHECK(cudaMalloc((void **)&flags, sizeof host));
        TANDEM_LAUNCH(warp_ops, 1, 96, 96 * sizeof(int), 0, flags);
        CUDA_CHECK(cudaMemcpy(host, flags, sizeof host, cudaMemcpyDeviceToHost));
        int ok = 1;
        for (int i = 0; i < 96; i++)
            ok &= host[i];
        printf("shuffle: %s\n", ok ? "ok" : "wrong");
        return ok ? 0 : 1;
    }
    return 0;
}
