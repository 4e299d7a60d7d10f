/* Aligned allocation, the bump arena used for per-request scratch, and the allocation wrappers
 * with the test-only failure injection. */
#include "core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before the injected failure; -1 = disarmed. The allocation that finds 0
 * fails and leaves -1 behind, so exactly one fails per arming. */
static atomic_long fail_countdown = -1;
static atomic_bool fail_fired;
static atomic_long alloc_count;

long core_alloc_count(void) {
    return atomic_load(&alloc_count);
}

static bool inject_failure(void) {
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) < 0) return false;
    if (atomic_fetch_sub(&fail_countdown, 1) != 0) return false;
    atomic_store(&fail_fired, true);
    return true;
}

void core_alloc_fail_after(long n) {
    atomic_store(&fail_fired, false);
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

bool core_alloc_fail_fired(void) {
    return atomic_load(&fail_fired);
}

void *core_malloc(size_t n) {
    return inject_failure() ? NULL : malloc(n);
}

void *core_calloc(size_t n, size_t size) {
    return inject_failure() ? NULL : calloc(n, size);
}

void *core_realloc(void *p, size_t n) {
    return inject_failure() ? NULL : realloc(p, n);
}

char *core_strdup(const char *s) {
    return inject_failure() ? NULL : strdup(s);
}

char *core_strndup(const char *s, size_t n) {
    return inject_failure() ? NULL : strndup(s, n);
}

void *core_aligned_alloc(size_t align, size_t size) {
    if (size == 0 || inject_failure()) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, size) != 0) return NULL;
    return p;
}

void core_aligned_free(void *p) {
    free(p);
}

shimmy_status core_arena_init(core_arena *a, size_t size, shimmy_error *err) {
    memset(a, 0, sizeof *a);
    a->base = core_aligned_alloc(64, size ? size : 64);
    if (!a->base)
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a %zu-byte arena", size);
    a->size = size;
    return SHIMMY_OK;
}

void *core_arena_alloc(core_arena *a, size_t size) {
    size_t start = (a->used + 63) & ~(size_t)63;
    if (start > a->size || size > a->size - start) return NULL;
    a->used = start + size;
    return a->base + start;
}

void core_arena_reset(core_arena *a) {
    a->used = 0;
}

void core_arena_deinit(core_arena *a) {
    if (!a) return;
    core_aligned_free(a->base);
    memset(a, 0, sizeof *a);
}
