/* bench_pool: what one core_pool_run costs beyond its work, the figure that decides how small a
 * parallel step of the decode loop can be.
 *
 *   empty      a run whose task does nothing: pure hand-off and join
 *   work       a run of about 2 µs of arithmetic per thread (a small decode operation)
 *   after-idle a run after the pool sat idle for 20 ms (workers asleep: the wake-up path)
 *
 * Each is measured unpinned and with every pool thread pinned to its own CPU (the pinning is
 * done from inside a task, so the pool needs no option for it). Figures are medians over
 * rounds; run it a few times on a shared machine.
 *
 * usage: bench_pool [THREADS] [RUNS] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/core.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void task_empty(void *ctx, int ith, int nth) {
    (void)ctx;
    (void)ith;
    (void)nth;
}

static volatile float sink[64 * 16];

static void task_work(void *ctx, int ith, int nth) {
    (void)nth;
    const int n = *(const volatile int *)ctx; /* opaque to the optimiser: the chain always runs */
    float a = 1.0f + (float)ith, b = 0.999f;
    for (int i = 0; i < n; i++) a = a * b + 0.001f;
    sink[ith * 16] = a;
}

static void task_pin(void *ctx, int ith, int nth) {
    (void)nth;
    int *ok = ctx;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(ith % CPU_SETSIZE, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        __atomic_store_n(ok, 0, __ATOMIC_RELAXED);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median over rounds of the mean ns per run of `runs` consecutive runs */
static double per_run_ns(core_pool *p, core_task_fn fn, void *ctx, int runs, int rounds) {
    double med[32];
    for (int r = 0; r < rounds; r++) {
        const double t0 = now_ns();
        for (int i = 0; i < runs; i++) core_pool_run(p, fn, ctx);
        med[r] = (now_ns() - t0) / runs;
    }
    qsort(med, (size_t)rounds, sizeof med[0], cmp_double);
    return med[rounds / 2];
}

static double after_idle_ns(core_pool *p, int rounds) {
    double v[32];
    for (int r = 0; r < rounds; r++) {
        struct timespec idle = {0, 20 * 1000 * 1000};
        nanosleep(&idle, NULL);
        const double t0 = now_ns();
        core_pool_run(p, task_empty, NULL);
        v[r] = now_ns() - t0;
    }
    qsort(v, (size_t)rounds, sizeof v[0], cmp_double);
    return v[rounds / 2];
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const int runs = argc > 2 ? atoi(argv[2]) : 20000;
    const int rounds = 9;
    volatile int work_iters = 500; /* a dependent multiply-add chain: ~2 µs */
    core_pool *p = NULL;
    shimmy_error err;
    if (core_pool_new(threads, &p, &err)) {
        fprintf(stderr, "bench_pool: %s\n", err.message);
        return 1;
    }
    printf("threads %d, %d runs x %d rounds (compare: bench_pool 1 is the work without a "
           "hand-off)\n",
           threads, runs, rounds);
    printf("%-10s %12s %12s %14s\n", "", "empty ns", "work ns", "after-idle ns");
    for (int pin = 0; pin < 2; pin++) {
        if (pin) {
            int ok = 1;
            core_pool_run(p, task_pin, &ok);
            if (!ok) {
                printf("pinned     (pthread_setaffinity_np refused)\n");
                break;
            }
        }
        const double e = per_run_ns(p, task_empty, NULL, runs, rounds);
        const double w = per_run_ns(p, task_work, (void *)&work_iters, runs / 4, rounds);
        const double idle = after_idle_ns(p, rounds);
        printf("%-10s %12.0f %12.0f %14.0f\n", pin ? "pinned" : "unpinned", e, w, idle);
    }
    core_pool_free(p);
    return 0;
}
