/* CUDA graphs: the launches of a host function captured once, replayed with
 * one call. The decode step launches ~10 kernels a layer, each a few
 * microseconds of CPU; a graph makes that one launch per token.
 *
 * Captured on the calling thread's default stream (make cuda builds with
 * --default-stream per-thread: the legacy stream cannot be captured). The
 * captured function may only launch kernels: a copy, a memset or a
 * synchronisation inside it fails the capture (CUDA_CHECK aborts). A graph
 * keeps the launch arguments of its capture, so what changes between
 * replays (token, position, the sequence's KV addresses) must be read from
 * device memory. */
#include "common.cuh"
#include "ops.h"

struct cuda_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

static unsigned long launches, captures;

extern "C" struct cuda_graph *cuda_graph_capture(void (*fn)(void *ctx), void *ctx)
{
    cuda_graph *g = (cuda_graph *)calloc(1, sizeof *g);
    if (!g)
        return NULL;
    captures++;
    CUDA_CHECK(cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeThreadLocal));
    fn(ctx);
    CUDA_CHECK(cudaStreamEndCapture(cudaStreamPerThread, &g->graph));
#if defined(__CUDACC__) && CUDART_VERSION < 12000
    CUDA_CHECK(cudaGraphInstantiate(&g->exec, g->graph, NULL, NULL, 0));
#else
    CUDA_CHECK(cudaGraphInstantiate(&g->exec, g->graph, 0));
#endif
    return g;
}

extern "C" void cuda_graph_launch(struct cuda_graph *g)
{
    launches++;
    CUDA_CHECK(cudaGraphLaunch(g->exec, cudaStreamPerThread));
}

extern "C" void cuda_graph_free(struct cuda_graph *g)
{
    if (!g)
        return;
    CUDA_CHECK(cudaGraphExecDestroy(g->exec));
    CUDA_CHECK(cudaGraphDestroy(g->graph));
    free(g);
}

extern "C" unsigned long cuda_graph_launches(void)
{
    return launches;
}

extern "C" unsigned long cuda_graph_captures(void)
{
    return captures;
}
