/*
 * Thread pool with spin-then-sleep hand-off. The decode loop issues hundreds of short parallel
 * operations per token, so waking workers through a condition variable every time would cost
 * more than the work; workers spin on a generation counter for a while and only then sleep.
 *
 * Two kinds of run:
 *  - core_pool_run: every thread runs the task once (ith of nth) and the caller waits for all of
 *    them. For tasks whose threads meet at barriers inside (LoRA's grouped products).
 *  - core_pool_run_items: the items are claimed in pieces. Each thread starts on its own
 *    contiguous share (so in a quiet machine every thread reads the same rows every step, as a
 *    static split would) and then takes pieces from the end of the others' shares. The caller
 *    waits for the items, not for the threads: a worker that another process keeps off its core
 *    claims nothing and costs nothing; one descheduled in the middle of a piece delays the run by
 *    that piece only. That is what keeps `-t 2` useful when another program holds a core (a
 *    static split waits for the slowest thread every operation, hundreds of times per token).
 *
 * Claims are compare-and-swap on one 64-bit word per share (next item, end item), so a worker
 * that wakes late for a run that has already finished finds every share empty and goes back to
 * waiting; it reads the run's function and context only after a successful claim, and the caller
 * cannot finish (and reuse them) before that claim's items are done.
 */
#include "core.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* Idle workers spin this many pauses (a few milliseconds) before sleeping: long enough to span
 * the gaps between the operations of a decode step, short enough to give an idle core back. */
#define SPIN_ITERS 100000

/* Pieces per thread share in an item run: small enough that a thread descheduled in the middle
 * of one holds the run back by a fraction of an operation. */
#define PIECES_PER_SHARE 8

typedef struct share {
    _Alignas(64) uint64_t word; /* (end << 32) | next: items [next, end) not yet claimed */
} share;

typedef struct worker {
    struct core_pool *pool;
    int ith;
    pthread_t thread;
} worker;

struct core_pool {
    int n;
    worker *workers; /* n - 1 background threads; thread 0 is the caller */
    share *shares;   /* n: one per thread, for item runs */
    /* A task run: its fields stay put until every worker has run it. */
    core_task_fn fn;
    void *ctx;
    int pending; /* workers still running it */
    /* An item run: read by a worker only after a successful claim (atomics: a worker late for an
     * earlier run may look at the grain while the caller writes the next run's). */
    core_items_fn ifn;
    void *ictx;
    int64_t grain; /* items per claim, >= 1 */
    int64_t done;  /* items finished */
    /* Bumped by each run; the low bit says which kind it is (1: task), so a worker knows the
     * kind of the very generation it saw. */
    unsigned generation;
    /* Contention (the caller's alone): see core_pool_run_items. */
    int window_runs, window_missed; /* parallel runs observed in this window; without workers */
    int64_t window_start_ns, window_wait_ns; /* its start; the caller's waits for others' pieces */
    int64_t solo_until_ns;                   /* run item runs on the caller alone until then */
    int64_t solo_ns;                         /* the length of the next solo period */
    double solo_idle;                        /* the machine's idle CPU seconds when it began */
    int64_t quiet_until_ns;                  /* workers were asleep: not observed until then */
    unsigned rest; /* generation + 1 after which idle workers sleep at once (core_pool_rest) */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleepers;
};

static inline uint64_t pack(int64_t next, int64_t end) {
    return (uint64_t)end << 32 | (uint64_t)(uint32_t)next;
}

/* Claims up to grain items of share s: from the front for its owner, from the back for anyone
 * else (so the owner keeps reading its rows in order). false when the share is empty. */
static bool claim(share *s, bool owner, int64_t grain, int64_t *lo, int64_t *hi) {
    uint64_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
    for (;;) {
        const int64_t next = (int64_t)(uint32_t)w, end = (int64_t)(w >> 32);
        if (next >= end) return false;
        const int64_t n = end - next < grain ? end - next : grain;
        const uint64_t nw = owner ? pack(next + n, end) : pack(next, end - n);
        if (__atomic_compare_exchange_n(&s->word, &w, nw, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            *lo = owner ? next : end - n;
            *hi = owner ? next + n : end;
            return true;
        }
    }
}

/* Claims and runs pieces until every share is empty: its own share first, then the others'.
 * Returns the number of items this thread ran. */
static int64_t run_items(core_pool *p, int ith) {
    int64_t mine = 0;
    for (int k = 0; k < p->n; k++) {
        const int si = (ith + k) % p->n;
        int64_t lo, hi;
        while (
            claim(&p->shares[si], k == 0, __atomic_load_n(&p->grain, __ATOMIC_RELAXED), &lo, &hi)) {
            /* the claim succeeded, so this run cannot end before these items are done: its
             * function and context are the ones the caller published before the shares */
            core_items_fn fn = __atomic_load_n(&p->ifn, __ATOMIC_ACQUIRE);
            void *ctx = __atomic_load_n(&p->ictx, __ATOMIC_ACQUIRE);
            fn(ctx, lo, hi, ith);
            __atomic_add_fetch(&p->done, hi - lo, __ATOMIC_ACQ_REL);
            mine += hi - lo;
        }
    }
    return mine;
}

/* Waits for a generation other than seen (spinning, then sleeping); returns it, or seen when the
 * pool stops. */
static unsigned wait_generation(core_pool *p, unsigned seen) {
    unsigned gen;
    int spins = 0;
    while ((gen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE)) == seen &&
           !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        if (++spins < SPIN_ITERS && __atomic_load_n(&p->rest, __ATOMIC_RELAXED) != seen + 1) {
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
    return gen;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    core_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        const unsigned gen = wait_generation(p, seen);
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        seen = gen;
        if (!(gen & 1)) {
            (void)run_items(p, w->ith); /* safe whatever run is current by now: claims decide */
            continue;
        }
        /* a task run waits for every worker, so its fields are this generation's */
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
    core_pool *p = core_calloc(1, sizeof *p);
    if (!p) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate thread pool");
    p->n = n_threads;
    p->shares = core_aligned_alloc(64, (size_t)n_threads * sizeof *p->shares);
    if (!p->shares) {
        free(p);
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate thread pool");
    }
    memset(p->shares, 0, (size_t)n_threads * sizeof *p->shares);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = core_calloc((size_t)n_threads - 1, sizeof *p->workers);
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
    core_aligned_free(p->shares);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int core_pool_size(const core_pool *p) {
    return p ? p->n : 1;
}

/* Publishes a run of the given kind (1: task) and wakes sleeping workers; true when some were
 * asleep. */
static bool publish(core_pool *p, unsigned kind) {
    const unsigned g = ((__atomic_load_n(&p->generation, __ATOMIC_RELAXED) & ~1u) + 2u) | kind;
    /* seq_cst on both sides (here and in wait_generation) so that either the worker sees the new
     * generation before sleeping or we see it counted among the sleepers. */
    __atomic_store_n(&p->generation, g, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return true;
    }
    return false;
}

void core_pool_run(core_pool *p, core_task_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    __atomic_store_n(&p->pending, p->n - 1, __ATOMIC_RELEASE);
    (void)publish(p, 1);
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

void core_pool_rest(core_pool *p) {
    if (!p || p->n == 1) return;
    /* a hint: a worker that sees it sleeps, and the next run's publish wakes it (it re-checks
     * the generation under the mutex before waiting, so no run is missed) */
    __atomic_store_n(&p->rest, __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) + 1,
                     __ATOMIC_RELAXED);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Contention. When other processes keep some of the cores busy, the pool's threads share cores
 * with them and with each other: a spinning worker then takes CPU time from the caller, and one
 * descheduled in the middle of a piece makes the caller wait for the scheduler (milliseconds, where
 * a decode step's runs take microseconds). Measured with docs-llama-30m on 2 cores with one busy
 * loop beside it, two threads doing item runs gave 0.5-0.75x of what the caller alone gives. So the
 * caller watches windows of parallel runs: when it spent a quarter of a window's time waiting for
 * pieces others held, or when in a quarter of its runs no worker claimed anything (workers off
 * their cores), item runs go to the caller alone for a while (the workers fall asleep, leaving
 * their cores to whoever needs them). At the end of such a period the machine's idle time
 * (/proc/stat) says whether the other work is still there: if so the next, longer period follows
 * (50 ms growing to 2 s); if not, or if it cannot be read, a window of parallel runs decides again.
 * So a sustained load costs one window of stalls, and a machine that frees up gets its threads
 * back within one period. */
#define WINDOW_RUNS 32
#define SOLO_MIN_NS 50000000   /* 50 ms, then 200, 800, 2000 */
#define SOLO_MAX_NS 2000000000 /* 2 s */
#define WAKE_NS     2000000    /* after waking sleeping workers, runs say nothing for 2 ms */

/* Idle CPU seconds of the whole machine since boot (idle + iowait of /proc/stat's first line);
 * negative when it cannot be read. */
static double machine_idle_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[5] = {0};
    const int got = fscanf(f, "cpu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4]);
    fclose(f);
    const long tck = sysconf(_SC_CLK_TCK);
    return got == 5 && tck > 0 ? (double)(v[3] + v[4]) / (double)tck : -1;
}

static void solo_begin(core_pool *p, int64_t now) {
    p->solo_until_ns = now + p->solo_ns;
    p->solo_idle = machine_idle_s();
}

/* At the end of a solo period: true when the machine stayed busy (less than half of the cores the
 * workers would use sat idle), so the next period follows without a probe: a window of parallel
 * runs beside a busy process costs a few stalls of milliseconds each. */
static bool still_busy(core_pool *p, int64_t now) {
    const double idle = machine_idle_s();
    if (idle < 0 || p->solo_idle < 0) return false;
    const double span = (double)(now - (p->solo_until_ns - p->solo_ns)) * 1e-9;
    return (idle - p->solo_idle) < 0.5 * (double)(p->n - 1) * span;
}

static void observe(core_pool *p, int64_t now, int64_t wait_ns, bool missed) {
    if (p->window_runs == 0) {
        p->window_start_ns = now;
        p->window_wait_ns = 0;
        p->window_missed = 0;
    }
    p->window_wait_ns += wait_ns;
    p->window_missed += missed;
    if (++p->window_runs < WINDOW_RUNS) return;
    const int64_t span = now - p->window_start_ns;
    if (p->window_wait_ns * 4 >= span || p->window_missed * 4 >= p->window_runs) {
        p->solo_ns = p->solo_ns ? p->solo_ns * 4 : SOLO_MIN_NS;
        if (p->solo_ns > SOLO_MAX_NS) p->solo_ns = SOLO_MAX_NS;
        solo_begin(p, now);
    } else {
        p->solo_ns = 0;
    }
    p->window_runs = 0;
}

void core_pool_run_items(core_pool *p, core_items_fn fn, void *ctx, int64_t n_items) {
    if (n_items <= 0) return;
    if (!p || p->n == 1 || n_items == 1 || n_items > INT32_MAX) {
        fn(ctx, 0, n_items, 0);
        return;
    }
    if (p->solo_until_ns) {
        const int64_t now = now_ns();
        if (now < p->solo_until_ns) {
            fn(ctx, 0, n_items, 0);
            return;
        }
        if (still_busy(p, now)) {
            if (p->solo_ns < SOLO_MAX_NS) p->solo_ns *= 4;
            if (p->solo_ns > SOLO_MAX_NS) p->solo_ns = SOLO_MAX_NS;
            solo_begin(p, now);
            fn(ctx, 0, n_items, 0);
            return;
        }
        p->solo_until_ns = 0;
    }
    const int n = p->n;
    int64_t grain = n_items / ((int64_t)n * PIECES_PER_SHARE);
    if (grain < 1) grain = 1;
    __atomic_store_n(&p->ifn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&p->ictx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&p->grain, grain, __ATOMIC_RELAXED);
    __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
    /* the shares last, with release: a claim on one of them sees everything above */
    for (int i = 0; i < n; i++) {
        int64_t lo, hi;
        core_split_range(n_items, i, n, &lo, &hi);
        __atomic_store_n(&p->shares[i].word, pack(lo, hi), __ATOMIC_RELEASE);
    }
    const bool woke = publish(p, 0);
    const int64_t mine = run_items(p, 0);
    /* Only pieces already claimed remain: wait for those, not for threads that never came. */
    const int64_t t0 = now_ns();
    for (int spins = 0; __atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < n_items; spins++) {
        if (spins < 20000)
            CPU_RELAX();
        else
            sched_yield();
    }
    /* Workers that were asleep take a while to come back, and a run with fewer items than
     * pieces says little about them. */
    if (woke) p->quiet_until_ns = t0 + WAKE_NS;
    if (n_items >= (int64_t)n * 2 && (!p->quiet_until_ns || t0 >= p->quiet_until_ns)) {
        const int64_t t1 = now_ns();
        observe(p, t1, t1 - t0, mine == n_items);
    }
}
