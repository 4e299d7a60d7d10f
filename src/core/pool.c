/*
 * Thread pool with spin-then-sleep hand-off. The decode loop issues hundreds of short parallel
 * operations per token, so waking workers through a condition variable every time would cost
 * more than the work; workers spin on a generation counter for a while and only then sleep.
 */
#include "core.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ITERS 200000

typedef struct worker {
    struct core_pool *pool;
    int ith;
    pthread_t thread;
} worker;

struct core_pool {
    int n;
    worker *workers; /* n - 1 background threads; thread 0 is the caller */
    core_task_fn fn;
    void *ctx;
    unsigned generation; /* bumped by each run */
    int pending;         /* workers still running the current generation */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleepers;
};

static void *worker_main(void *arg) {
    worker *w = arg;
    core_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE)) == seen &&
               !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
            if (++spins < SPIN_ITERS) {
                if (spins % 1024 == 0)
                    sched_yield();
                else
                    CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&p->generation, __ATOMIC_SEQ_CST) == seen &&
                   !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
                pthread_cond_wait(&p->cv, &p->mu);
            __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        seen = gen;
        p->fn(p->ctx, w->ith, p->n);
        __atomic_sub_fetch(&p->pending, 1, __ATOMIC_ACQ_REL);
    }
    return NULL;
}

int core_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs among the CPUs this process may use. */
    cpu_set_t set;
    int logical = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) logical = CPU_COUNT(&set);
    if (logical <= 0) logical = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (logical <= 0) logical = 1;
    int seen_keys[1024], n_keys = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n_keys < 1024; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        char path[128];
        int pkg = 0, core = -1;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        if (!f) return logical;
        if (fscanf(f, "%d", &core) != 1) core = -1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                 cpu);
        f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%d", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        if (core < 0) return logical;
        int key = pkg * 65536 + core, dup = 0;
        for (int i = 0; i < n_keys; i++) dup |= seen_keys[i] == key;
        if (!dup) seen_keys[n_keys++] = key;
    }
    return n_keys > 0 ? n_keys : logical;
}

shimmy_status core_pool_new(int n_threads, core_pool **out, shimmy_error *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = core_physical_cores();
    if (n_threads > 512)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "threads",
                          "%d threads is too many (max 512)", n_threads);
    core_pool *p = calloc(1, sizeof *p);
    if (!p) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate thread pool");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            core_pool_free(p);
            return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate thread pool");
        }
        for (int i = 1; i < n_threads; i++) {
            worker *w = &p->workers[i - 1];
            w->pool = p;
            w->ith = i;
            if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
                p->n = i; /* only join what started */
                core_pool_free(p);
                return core_error(err, SHIMMY_ERR_INTERNAL, NULL, "cannot start thread %d", i);
            }
        }
    }
    *out = p;
    return SHIMMY_OK;
}

void core_pool_free(core_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n && p->workers; i++) pthread_join(p->workers[i - 1].thread, NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int core_pool_size(const core_pool *p) {
    return p ? p->n : 1;
}

void core_pool_run(core_pool *p, core_task_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    __atomic_store_n(&p->pending, p->n - 1, __ATOMIC_RELEASE);
    /* seq_cst on both sides (here and in worker_main) so that either the worker sees the new
     * generation before sleeping or we see it counted among the sleepers. */
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n);
    /* Yield after a while so that an oversubscribed pool (more threads than free cores) still
     * lets the stragglers run. */
    for (int spins = 0; __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0; spins++) {
        if (spins < 20000)
            CPU_RELAX();
        else
            sched_yield();
    }
}
