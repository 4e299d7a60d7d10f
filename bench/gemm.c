/* bench_gemm — speed of the weight-product kernels per type and variant, in the shapes of
 * inference: a prompt batch (ROWS weight rows x TOKENS activation rows) and a decode step (one
 * activation row). For each it times the tile kernel (quant_traits.gemm) and the per-pair loop
 * it replaces (vec_dot for every pair), and, where the variant has a repacked layout
 * (quant_traits.pack), that layout's kernel; it prints multiply-adds per second of each and the
 * ratios to the loop. Times are the thread's CPU time, so a
 * busy machine stretches the wall clock but not the figures (caches are still shared).
 *
 * usage: bench_gemm [-n N] [-r ROWS] [-k TOKENS] [-t SECONDS_PER_CASE] [TYPE...] */
#include "quant/quant.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    const quant_traits *q;
    int64_t n, rows, toks;
    const unsigned char *w, *a, *packed;
    size_t wrow, arow;
    const unsigned char *pa; /* the activations as the layout reads them */
    size_t parow;
    float *y;
} shape;

static void run_loop(const shape *s) {
    for (int64_t t = 0; t < s->toks; t++)
        for (int64_t r = 0; r < s->rows; r++)
            s->q->vec_dot(s->n, &s->y[t * s->rows + r], s->w + (size_t)r * s->wrow,
                          s->a + (size_t)t * s->arow);
}

static void run_gemm(const shape *s) {
    s->q->gemm(s->n, s->rows, s->toks, s->w, s->wrow, s->a, s->arow, s->y, (size_t)s->rows);
}

static void run_pack(const shape *s) {
    s->q->pack->gemm(s->n, 0, s->rows, s->toks, s->packed, s->pa, s->parow, s->y, (size_t)s->rows);
}

/* Multiply-adds per second of fn over about `secs` of CPU time. */
static double rate(void (*fn)(const shape *), const shape *s, double secs) {
    fn(s); /* warm-up */
    int64_t reps = 0;
    const double t0 = cpu_s();
    double t;
    do {
        fn(s);
        reps++;
        t = cpu_s() - t0;
    } while (t < secs);
    return (double)reps * (double)(s->n * s->rows * s->toks) / t;
}

static bool wanted(const char *name, int argc, char **argv, int first) {
    if (first >= argc) return true;
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

int main(int argc, char **argv) {
    int64_t n = 2048, rows = 256, toks = 64;
    double secs = 0.3;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "-n"))
            n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-r"))
            rows = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-k"))
            toks = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-t"))
            secs = atof(argv[i + 1]);
        else
            return fprintf(stderr,
                           "usage: bench_gemm [-n N] [-r ROWS] [-k TOKENS] [-t S] [TYPE...]\n"),
                   2;
    }
    if (n <= 0 || n % 256 || rows <= 0 || toks <= 0 || secs <= 0)
        return fprintf(stderr,
                       "bench_gemm: N must be a positive multiple of 256, ROWS/TOKENS > 0\n"),
               2;
    test_rng rng;
    test_rng_seed(&rng, 1);
    float *xf = malloc((size_t)n * sizeof *xf);
    printf("%-12s %-6s %7s | %10s %10s %6s %10s %6s\n", "variant", "type", "tokens", "loop GMAC/s",
           "gemm GMAC/s", "ratio", "pack GMAC/s", "ratio");
    for (int v = 0; v < quant_n_variants(); v++)
        for (uint32_t type = 0; type < GGUF_T_COUNT; type++) {
            const quant_traits *q = quant_variant_get(v, type);
            if (!q || !(q->gemm || q->pack) || !wanted(q->name, argc, argv, i)) continue;
            const quant_traits *at = quant_get_ref(q->vec_dot_type);
            shape s = {.q = q, .n = n, .rows = rows};
            s.wrow = quant_row_bytes(q, n);
            s.arow = quant_row_bytes(at, n);
            unsigned char *w = malloc(s.wrow * (size_t)rows), *a = malloc(s.arow * (size_t)toks);
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t j = 0; j < n; j++) xf[j] = (float)test_rng_normal(&rng);
                if (quant_get_ref(type)->quantize)
                    quant_get_ref(type)->quantize(xf, w + (size_t)r * s.wrow, n);
                else /* the codebook types have no quantizer: random codes (same speed) */
                    for (size_t b = 0; b < s.wrow; b++)
                        w[(size_t)r * s.wrow + b] = (unsigned char)test_rng_u64(&rng);
            }
            for (int64_t t = 0; t < toks; t++) {
                for (int64_t j = 0; j < n; j++) xf[j] = (float)test_rng_normal(&rng);
                at->from_float(xf, a + (size_t)t * s.arow, n);
            }
            s.w = w;
            s.a = a;
            unsigned char *packed = NULL, *pa = NULL;
            if (q->pack) {
                const quant_traits *pt = quant_get_ref(q->pack->act_type);
                s.parow = quant_row_bytes(pt, n);
                pa = malloc(s.parow * (size_t)toks);
                for (int64_t t = 0; t < toks; t++) {
                    for (int64_t j = 0; j < n; j++) xf[j] = (float)test_rng_normal(&rng);
                    (q->pack->act_from_float ? q->pack->act_from_float
                                             : pt->from_float)(xf, pa + (size_t)t * s.parow, n);
                }
                s.pa = pa;
                const size_t bytes = quant_pack_bytes(q->pack, q->block_size, n, rows);
                const size_t group =
                    bytes / (size_t)((rows + QUANT_PACK_ROWS - 1) / QUANT_PACK_ROWS);
                packed = aligned_alloc(64, (bytes + 63) / 64 * 64);
                for (int64_t r = 0; r < rows; r += QUANT_PACK_ROWS)
                    q->pack->pack(w + (size_t)r * s.wrow, s.wrow,
                                  (int)(rows - r < QUANT_PACK_ROWS ? rows - r : QUANT_PACK_ROWS), n,
                                  packed + (size_t)(r / QUANT_PACK_ROWS) * group);
                s.packed = packed;
            }
            s.y = malloc((size_t)(rows * toks) * sizeof *s.y);
            const int64_t kinds[2] = {toks, 1};
            for (int k = 0; k < 2; k++) {
                s.toks = kinds[k];
                const double lo = rate(run_loop, &s, secs);
                const double g = q->gemm ? rate(run_gemm, &s, secs) : lo; /* none: the loop */
                printf("%-12s %-6s %7lld | %10.2f %10.2f %6.2f", quant_variant_name(v), q->name,
                       (long long)s.toks, lo * 1e-9, g * 1e-9, g / lo);
                if (packed) {
                    const double pk = rate(run_pack, &s, secs);
                    printf(" %10.2f %6.2f", pk * 1e-9, pk / lo);
                }
                printf("\n");
            }
            free(w);
            free(a);
            free(packed);
            free(pa);
            free(s.y);
        }
    free(xf);
    return 0;
}
