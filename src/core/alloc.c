/* Aligned allocation and the bump arena used for per-request scratch. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void *core_aligned_alloc(size_t align, size_t size) {
    if (size == 0) return NULL;
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
