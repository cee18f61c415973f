/* A fixed set of worker threads that run one function on every thread and
 * wait for all of them (fork-join). The caller's thread is worker 0, so a
 * pool of 1 runs everything inline. Not reentrant: one job at a time. */
#ifndef TANDEM_KERNELS_CPU_THREADPOOL_H
#define TANDEM_KERNELS_CPU_THREADPOOL_H

struct threadpool;

/* fn(ctx, ith, nth) is called once for each ith in [0, nth). */
typedef void (*parallel_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1; NULL if threads cannot be created. */
struct threadpool *threadpool_new(int n_threads);
void threadpool_free(struct threadpool *tp);
int threadpool_size(const struct threadpool *tp);
/* Runs fn on all threads and returns when every call has returned. */
void threadpool_run(struct threadpool *tp, parallel_fn fn, void *ctx);

/* The slice [*lo, *hi) of n items that thread ith of nth owns. */
void thread_slice(int n, int ith, int nth, int *lo, int *hi);

#endif
