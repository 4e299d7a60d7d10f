/* What the Vulkan kernel tests (test_gpu_ops.c, test_gpu_attn.c) share: running one shader
 * through gpu_debug_run, counting a case's comparisons (printing the first few failures), normal
 * random inputs, and the device check that skips (77) when there is no usable Vulkan device.
 *
 * CTest builds each tests/gpu/test_*.c as its own executable with only tests/support's sources,
 * so this is a header of static inline functions; n_cases / n_failed_cases are each program's
 * own. */
#ifndef SHIMMY_GPU_CHECK_H
#define SHIMMY_GPU_CHECK_H

#include "gpu/gpu.h"
#include "gpu/gpu_vk.h"
#include "test.h"

#include <stdbool.h>
#include <stdint.h>

static int n_cases, n_failed_cases;

/* gpu_ctx_run's dispatch: `groups` workgroups as x (up to 65535) by y */
static inline bool run(const char *what, const char *pipe, gpu_debug_buf *bufs, int n_bufs,
                       const void *pc, uint32_t pc_bytes, uint64_t groups) {
    const uint64_t gx = groups < 65535 ? groups : 65535, gy = (groups + gx - 1) / gx;
    shimmy_error err = {0};
    const shimmy_status st =
        gpu_debug_run(pipe, bufs, n_bufs, pc, pc_bytes, (uint32_t)gx, (uint32_t)gy, 1, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s: %s", what, shimmy_status_name(st), err.message);
    return st == SHIMMY_OK;
}

/* A case's comparisons: counts the bad ones and prints the first few. */
typedef struct cmp {
    const char *what;
    int bad;
    double max_err; /* largest |got - want| / tol seen */
} cmp;

static inline void cmp_one(cmp *c, const char *where, long long idx, double got, double want,
                           double tol) {
    test_checks++;
    const double e = fabs(got - want);
    if (tol > 0 && e / tol > c->max_err) c->max_err = e / tol;
    if (e <= tol) return; /* NaN fails */
    test_failures++;
    if (c->bad++ < 8)
        fprintf(stderr, "FAIL %s: %s %lld: got %.9g want %.9g (|err| %.3g, tol %.3g)\n", c->what,
                where, idx, got, want, e, tol);
}

static inline void cmp_done(cmp *c) {
    n_cases++;
    if (getenv("SHIMMY_TEST_VERBOSE")) /* the margins */
        fprintf(stderr, "%s: largest |err| / tol %.3g\n", c->what, c->max_err);
    if (c->bad) {
        n_failed_cases++;
        fprintf(stderr, "FAIL %s: %d wrong\n", c->what, c->bad);
    }
}

static inline float *randn(test_rng *rng, int64_t n, double scale) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(scale * test_rng_normal(rng));
    return v;
}

/* Skips the program (77) unless gpu_list finds a usable device; names the first usable one.
 * `name` prefixes the messages ("gpu/ops"). */
static inline void gpu_check_device(const char *name) {
    shimmy_error err = {0};
    gpu_device_info devs[16];
    const int32_t n_dev = gpu_list(devs, 16, &err);
    int usable = -1;
    for (int32_t i = 0; i < n_dev && i < 16 && usable < 0; i++)
        if (devs[i].usable) usable = i;
    if (usable < 0) {
        char why[700];
        snprintf(why, sizeof why, "%s: no usable Vulkan device (%s)", name,
                 n_dev > 0        ? devs[0].why
                 : err.message[0] ? err.message
                                  : "gpu_list found none");
        test_skip(why);
    }
    fprintf(stderr, "%s: %d Vulkan device(s), the first usable: %s\n", name, (int)n_dev,
            devs[usable].name);
}

/* The cases' tally, then test_finish's (the exit status). */
static inline int gpu_check_finish(const char *name) {
    fprintf(stderr, "%s: %d cases, %d failed\n", name, n_cases, n_failed_cases);
    return test_finish(name);
}

#endif
