/* bench_stream [-t N] [-m MIB] [-k PASSES] [--json]
 *
 * Memory bandwidth the way STREAM's triad measures it: a[i] = b[i] + s * c[i] over three arrays
 * of doubles far larger than any cache (default 256 MiB each, 768 MiB in all), split over -t
 * threads of the core_pool (default: physical cores). Each pass moves 3 x MIB MiB (two arrays
 * read, one written; like STREAM, the write-allocate read of a is not counted), and the best of
 * -k passes is reported in GB/s (10^9 bytes), STREAM's convention: the best pass is the one least
 * disturbed by other work, the closest to what the memory system can do.
 *
 * Token generation reads every weight once per token, so this figure is the ceiling that
 * bench/bandwidth.sh compares `shimmy bench` with. */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct triad {
    double *a;
    const double *b, *c;
    double s;
    int64_t n;
} triad;

static void triad_task(void *ctx, int ith, int nth) {
    triad *t = ctx;
    int64_t lo, hi;
    core_split_range(t->n, ith, nth, &lo, &hi);
    double *restrict a = t->a;
    const double *restrict b = t->b, *restrict c = t->c;
    const double s = t->s;
    for (int64_t i = lo; i < hi; i++) a[i] = b[i] + s * c[i];
}

/* Each thread writes its own range first, so the pages are faulted in (and, on a NUMA machine,
 * placed) outside the timed passes and near the thread that streams them. */
static void init_task(void *ctx, int ith, int nth) {
    triad *t = ctx;
    int64_t lo, hi;
    core_split_range(t->n, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        t->a[i] = 0.0;
        ((double *)t->b)[i] = 1.0 + (double)(i & 1023);
        ((double *)t->c)[i] = 2.0;
    }
}

static long parse_long(const char *s, long lo, long hi) {
    char *end;
    long v = s ? strtol(s, &end, 10) : lo - 1;
    return s && *s && !*end && v >= lo && v <= hi ? v : lo - 1;
}

static const char usage[] = "usage: bench_stream [-t N] [-m MIB per array, 16..340] [-k PASSES] "
                            "[--json]\n";

int main(int argc, char **argv) {
    long threads = core_physical_cores(), mib = 256, passes = 10;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *dst = strcmp(a, "-t") == 0   ? &threads
                    : strcmp(a, "-m") == 0 ? &mib
                    : strcmp(a, "-k") == 0 ? &passes
                                           : NULL;
        /* the three arrays stay under 1 GiB in all */
        const long lo = dst == &mib ? 16 : 1, hi = dst == &mib ? 340 : 512;
        if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (dst && (*dst = parse_long(v, lo, hi)) >= lo) {
            i++;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    shimmy_error err;
    core_pool *pool = NULL;
    if (core_pool_new((int)threads, &pool, &err)) {
        fprintf(stderr, "bench_stream: %s\n", err.message);
        return 1;
    }
    const size_t bytes = (size_t)mib << 20;
    triad t = {.n = (int64_t)(bytes / sizeof(double)), .s = 3.0};
    double *a = core_aligned_alloc(64, bytes), *b = core_aligned_alloc(64, bytes),
           *c = core_aligned_alloc(64, bytes);
    int rc = 1;
    if (!a || !b || !c) {
        fprintf(stderr, "bench_stream: cannot allocate 3 x %ld MiB\n", mib);
        goto done;
    }
    t.a = a;
    t.b = b;
    t.c = c;
    core_pool_run(pool, init_task, &t);
    double best = 0, sum = 0;
    for (long k = 0; k < passes; k++) {
        const uint64_t t0 = core_time_ns();
        core_pool_run(pool, triad_task, &t);
        const double gbs = 3.0 * (double)bytes / (double)(core_time_ns() - t0);
        sum += gbs;
        if (gbs > best) best = gbs;
    }
    /* the result is checked, so the passes cannot be optimized away and a wrong split shows */
    for (int64_t i = 0; i < t.n; i += t.n / 97 + 1) {
        if (a[i] != b[i] + t.s * c[i]) {
            fprintf(stderr, "bench_stream: wrong result at %lld\n", (long long)i);
            goto done;
        }
    }
    if (json)
        printf("{\"threads\":%d,\"array_bytes\":%zu,\"passes\":%ld,\"best_gb_per_s\":%.3f,"
               "\"mean_gb_per_s\":%.3f}\n",
               core_pool_size(pool), bytes, passes, best, sum / (double)passes);
    else
        printf("triad a = b + s*c, 3 x %ld MiB, %d threads, %ld passes: best %.2f GB/s, "
               "mean %.2f GB/s\n",
               mib, core_pool_size(pool), passes, best, sum / (double)passes);
    rc = 0;
done:
    core_aligned_free(a);
    core_aligned_free(b);
    core_aligned_free(c);
    core_pool_free(pool);
    return rc;
}
