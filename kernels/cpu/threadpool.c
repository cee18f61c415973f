/* Fork-join pool. A job is published by bumping a generation counter; workers
 * poll it for a while (a decode step dispatches hundreds of jobs back to back,
 * and waking a sleeping thread costs tens of microseconds) and then sleep on a
 * condition variable. The caller runs slice 0 itself and polls until the
 * pending count drops to zero. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Polling backs off from pause to yield after a few microseconds, so that on
 * a machine with more runnable threads than cores the thread being waited
 * for gets to run. A worker sleeps after POLLS_BEFORE_SLEEP polls (roughly
 * half a millisecond, far more than the gap between two matmuls of a forward
 * pass). */
#define PAUSES_BEFORE_YIELD 256
#define POLLS_BEFORE_SLEEP 1024

static void backoff(unsigned polls)
{
    if (polls < PAUSES_BEFORE_YIELD)
        cpu_relax();
    else
        sched_yield();
}

struct worker {
    struct threadpool *tp;
    int ith;
    pthread_t thread;
};

struct threadpool {
    int n;
    struct worker *workers; /* [1, n); slot 0 is the caller */

    pthread_mutex_t mu;
    pthread_cond_t wake;

    /* The current job; written only while no worker is running one. */
    parallel_fn fn;
    void *ctx;

    atomic_uint generation; /* bumped once per job (and once at shutdown) */
    atomic_int pending;     /* workers that have not finished the current job */
    atomic_bool stop;
};

/* Returns the first generation different from `seen`. */
static unsigned wait_for_job(struct threadpool *tp, unsigned seen)
{
    for (unsigned polls = 0; polls < POLLS_BEFORE_SLEEP; polls++) {
        unsigned g = atomic_load_explicit(&tp->generation, memory_order_acquire);
        if (g != seen)
            return g;
        backoff(polls);
    }
    pthread_mutex_lock(&tp->mu);
    unsigned g;
    while ((g = atomic_load_explicit(&tp->generation, memory_order_acquire)) == seen)
        pthread_cond_wait(&tp->wake, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
    return g;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct threadpool *tp = w->tp;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(tp, seen);
        if (atomic_load_explicit(&tp->stop, memory_order_relaxed))
            return NULL;
        tp->fn(tp->ctx, w->ith, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_release);
    }
}

/* Publishes the current fn/ctx (or the stop flag) to every worker. */
static void publish(struct threadpool *tp)
{
    /* Under the mutex, so a worker between its last check and its wait
     * cannot miss the broadcast. */
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);
}

/* Stops and joins workers [1, started). */
static void stop_workers(struct threadpool *tp, int started)
{
    atomic_store_explicit(&tp->stop, true, memory_order_relaxed);
    publish(tp);
    for (int i = 1; i < started; i++)
        pthread_join(tp->workers[i].thread, NULL);
}

struct threadpool *threadpool_new(int n_threads)
{
    if (n_threads < 1)
        return NULL;
    struct threadpool *tp = calloc(1, sizeof *tp);
    if (!tp)
        return NULL;
    tp->n = n_threads;
    tp->workers = calloc((size_t)n_threads, sizeof *tp->workers);
    if (!tp->workers) {
        free(tp);
        return NULL;
    }
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->wake, NULL);
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->pending, 0);
    atomic_init(&tp->stop, false);
    for (int i = 1; i < n_threads; i++) {
        tp->workers[i] = (struct worker){.tp = tp, .ith = i};
        if (pthread_create(&tp->workers[i].thread, NULL, worker_main, &tp->workers[i]) != 0) {
            stop_workers(tp, i);
            tp->n = 1; /* nothing left to join */
            threadpool_free(tp);
            return NULL;
        }
    }
    return tp;
}

void threadpool_free(struct threadpool *tp)
{
    if (!tp)
        return;
    if (tp->n > 1)
        stop_workers(tp, tp->n);
    pthread_cond_destroy(&tp->wake);
    pthread_mutex_destroy(&tp->mu);
    free(tp->workers);
    free(tp);
}

int threadpool_size(const struct threadpool *tp)
{
    return tp->n;
}

void threadpool_run(struct threadpool *tp, parallel_fn fn, void *ctx)
{
    if (tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    atomic_store_explicit(&tp->pending, tp->n - 1, memory_order_relaxed);
    publish(tp);
    fn(ctx, 0, tp->n);
    for (unsigned polls = 0; atomic_load_explicit(&tp->pending, memory_order_acquire) != 0; polls++)
        backoff(polls);
}

void thread_slice(int n, int ith, int nth, int *lo, int *hi)
{
    *lo = (int)((int64_t)n * ith / nth);
    *hi = (int)((int64_t)n * (ith + 1) / nth);
}
