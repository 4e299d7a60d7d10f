/*
 * core — the floor every other module stands on: error values, logging, aligned memory and
 * arenas, the thread pool, CPU feature detection, UTF-8 and time.
 *
 * Invariants:
 *  - core never depends on any other module.
 *  - Library code never prints: core_log goes to a sink the program installs (the CLI installs
 *    stderr); with no sink, logs are dropped.
 *  - core_error() is the one way a failure is described; it returns the status it is given so
 *    that `return core_error(err, SHIMMY_ERR_FORMAT, path, "...")` reads naturally.
 *
 * Ownership: core_pool_new/core_pool_free, core_arena_init/core_arena_deinit,
 * core_aligned_alloc/core_aligned_free pair up; free functions accept NULL.
 * Thread-safety: core_pool_run must be called from one thread at a time per pool; everything
 * else here is thread-safe (the log sink is set once at start-up).
 */
#ifndef SHIMMY_CORE_H
#define SHIMMY_CORE_H

#include "shimmy.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ---- */

/* Fills *err (if non-NULL) with status, a printf-style message and `where` (may be NULL).
 * Returns status. */
shimmy_status core_error(shimmy_error *err, shimmy_status status, const char *where,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- logging ---- */

typedef enum core_log_level {
    CORE_LOG_DEBUG,
    CORE_LOG_INFO,
    CORE_LOG_WARN,
    CORE_LOG_ERROR
} core_log_level;

typedef void (*core_log_sink)(core_log_level level, const char *msg, void *user);

/* Installs the sink and the minimum level that reaches it (set once, before threads start). */
void core_log_set_sink(core_log_sink sink, void *user, core_log_level min_level);
void core_log(core_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A ready-made sink writing "shimmy: <level>: msg\n" to stderr. */
void core_log_stderr_sink(core_log_level level, const char *msg, void *user);

/* ---- memory ---- */

/* The library's allocations go through these (free() releases them) so that a test can make one
 * fail: core_alloc_fail_after(n) lets n more succeed and fails the next one, once (n < 0
 * disarms; inert unless called: a relaxed atomic add and load per allocation). docs/reliability.md
 * lists the modules that use them. core_alloc_fail_fired says whether that failure happened. */
void *core_malloc(size_t n);
void *core_calloc(size_t n, size_t size);
void *core_realloc(void *p, size_t n);
char *core_strdup(const char *s);
char *core_strndup(const char *s, size_t n);
void core_alloc_fail_after(long n);
bool core_alloc_fail_fired(void);
/* Allocations made through the wrappers so far (tests size their walks with it). */
long core_alloc_count(void);

/* Aligned allocation (align a power of two >= sizeof(void*)); NULL on failure or size 0. */
void *core_aligned_alloc(size_t align, size_t size);
void core_aligned_free(void *p);

/* Guarded read-only file mappings (mapguard.c says why): a SIGBUS inside a guarded range (the
 * file shrank under the mapping) maps zero pages over the rest of the range and marks it
 * damaged instead of ending the process. add returns an id (-1: unguarded, e.g. the table is
 * full); remove it before munmap. Thread-safe. */
int core_mapguard_add(const void *addr, size_t size);
void core_mapguard_remove(int id);
bool core_mapguard_damaged(int id);

/* Bump allocator over one block; allocations are 64-byte aligned. */
typedef struct core_arena {
    unsigned char *base; /* owned */
    size_t size;
    size_t used;
} core_arena;

shimmy_status core_arena_init(core_arena *a, size_t size, shimmy_error *err);
/* NULL when the arena is full. Memory is valid until core_arena_reset/deinit. */
void *core_arena_alloc(core_arena *a, size_t size);
void core_arena_reset(core_arena *a);
void core_arena_deinit(core_arena *a);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool core_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool core_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

/* ---- thread pool ---- */

typedef struct core_pool core_pool;

/* A task runs once on each of the pool's nth threads; ith in [0, nth). */
typedef void (*core_task_fn)(void *ctx, int ith, int nth);

/* n_threads <= 0 means core_physical_cores(). The calling thread is thread 0 of every run. */
shimmy_status core_pool_new(int n_threads, core_pool **out, shimmy_error *err);
void core_pool_free(core_pool *p);
int core_pool_size(const core_pool *p);
/* Runs fn on every thread and returns when all have finished. Allocates nothing. For tasks
 * whose threads must all be present (barriers inside); anything else is an item run. */
void core_pool_run(core_pool *p, core_task_fn fn, void *ctx);

/* Items [lo, hi) of a run, on the thread numbered slot in [0, core_pool_size) (for per-thread
 * scratch: no two pieces run on one slot at once). */
typedef void (*core_items_fn)(void *ctx, int64_t lo, int64_t hi, int slot);
/* Runs fn over items [0, n_items) in pieces claimed by whichever threads are running, and
 * returns when every item is done. Each thread starts on its own contiguous share of the items
 * and then helps with the others'; a thread that is descheduled (another process on its core)
 * holds the run back by at most the piece it claimed, not by its whole share. Which thread
 * computes an item varies from run to run: fn must give the same result on any slot. Allocates
 * nothing. */
void core_pool_run_items(core_pool *p, core_items_fn fn, void *ctx, int64_t n_items);
/* Idle workers sleep now instead of spinning until the next run (which wakes them): for a
 * caller that knows a gap is coming in which other threads of the process need the cores (the
 * batcher while its sessions sample their next tokens). A hint; any thread may call it. */
void core_pool_rest(core_pool *p);

/* Splits [0, n) into nth near-equal contiguous ranges; range ith is [*lo, *hi). */
static inline void core_split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}

/* Physical cores available to this process (logical CPUs when it cannot tell). */
int core_physical_cores(void);

/* ---- CPU features ---- */

enum {
    CORE_CPU_AVX2 = 1u << 0,
    CORE_CPU_FMA = 1u << 1,
    CORE_CPU_F16C = 1u << 2,
    CORE_CPU_AVX512F = 1u << 3,
    CORE_CPU_AVX512BW = 1u << 4,
    CORE_CPU_AVX512VL = 1u << 5,
    CORE_CPU_AVX512VNNI = 1u << 6,
    CORE_CPU_AVX512BF16 = 1u << 7,
    CORE_CPU_AVXVNNI = 1u << 8,
    CORE_CPU_NEON = 1u << 9,
    CORE_CPU_DOTPROD = 1u << 10,
};

/* What the CPU and OS support (cached after the first call). */
uint32_t core_cpu_features(void);
/* Features the kernels may use: core_cpu_features() narrowed by SHIMMY_ISA
 * ("scalar", "avx2", "avx512"; unset means everything the CPU has). */
uint32_t core_cpu_usable(void);
/* A short name of the best usable ISA level: "avx512-vnni", "avx512", "avx2-vnni", "avx2",
 * "neon-dotprod", "neon", "scalar". */
const char *core_cpu_isa_name(void);

/* ---- UTF-8 ---- */

/* Length of the sequence a lead byte starts (1..4), or 0 for a continuation/invalid byte. */
int core_utf8_len(unsigned char lead);
/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
bool core_utf8_valid(const char *s, size_t n);
/* Decodes one code point at s (at most n bytes); returns bytes consumed (>= 1) and sets *cp,
 * or U+FFFD with 1 byte consumed for an invalid sequence. */
int core_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp into out (4 bytes room); returns bytes written. */
int core_utf8_encode(uint32_t cp, char *out);

/* ---- time ---- */

uint64_t core_time_ns(void); /* monotonic */
double core_time_ms(void);   /* monotonic, milliseconds */

/* Peak and current resident memory of this process in bytes (0 if unknown). */
uint64_t core_rss_bytes(void);

#endif
