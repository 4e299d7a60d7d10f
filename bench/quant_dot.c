/* bench_quant_dot — speed of vec_dot per tensor type and kernel variant.
 *
 * A weight matrix of `rows` rows of `n` elements (default 512 x 4096) is multiplied with one
 * activation row, as in a decode-step mat-vec, on one thread. Reported per type and variant:
 * ns per row and the weight bytes streamed per second (GB/s). The activation quantizers
 * (from_float of Q8_0/Q8_1/Q8_K) are timed per row too.
 *
 * usage: bench_quant_dot [-n N] [-r ROWS] [-t SECONDS_PER_CASE] [TYPE...]   (TYPE like Q4_K) */
#include "core/core.h"
#include "quant/quant.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t types[] = {
    GGUF_T_F32,     GGUF_T_F16,   GGUF_T_BF16,    GGUF_T_Q8_0,   GGUF_T_Q4_0,
    GGUF_T_Q4_1,    GGUF_T_Q5_0,  GGUF_T_Q5_1,    GGUF_T_Q2_K,   GGUF_T_Q3_K,
    GGUF_T_Q4_K,    GGUF_T_Q5_K,  GGUF_T_Q6_K,    GGUF_T_IQ4_NL, GGUF_T_IQ4_XS,
    GGUF_T_IQ3_XXS, GGUF_T_IQ3_S, GGUF_T_IQ2_XXS, GGUF_T_IQ2_XS, GGUF_T_IQ2_S,
    GGUF_T_IQ1_S,   GGUF_T_IQ1_M, GGUF_T_TQ1_0,   GGUF_T_TQ2_0,  GGUF_T_MXFP4};
static const uint32_t act_types[] = {GGUF_T_Q8_0, GGUF_T_Q8_1, GGUF_T_Q8_K};

static volatile float sink;

static bool wanted(const char *name, int argc, char **argv, int first) {
    if (first >= argc) return true;
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

/* True when an earlier variant already has this kernel (a variant extends the ones before it). */
static bool inherited_dot(int v, const quant_traits *q) {
    for (int u = 0; u < v; u++) {
        const quant_traits *e = quant_variant_get(u, q->type);
        if (e && e->vec_dot == q->vec_dot) return true;
    }
    return false;
}

static bool inherited_quantizer(int v, const quant_traits *q) {
    for (int u = 0; u < v; u++) {
        const quant_traits *e = quant_variant_get(u, q->type);
        if (e && e->from_float == q->from_float) return true;
    }
    return false;
}

/* Passes over all rows until `seconds` have passed; returns ns per row of the fastest pass (the
 * minimum filters out interference from other processes on a shared machine). */
static double time_rows(const quant_traits *q, int64_t n, int rows, const unsigned char *w,
                        const void *xq, double seconds) {
    size_t row_bytes = quant_row_bytes(q, n);
    uint64_t start = core_time_ns(), best = UINT64_MAX;
    float acc = 0.0f;
    do {
        uint64_t t0 = core_time_ns();
        for (int r = 0; r < rows; r++) {
            float s;
            q->vec_dot(n, &s, w + (size_t)r * row_bytes, xq);
            acc += s;
        }
        uint64_t dt = core_time_ns() - t0;
        if (dt < best) best = dt;
    } while ((double)(core_time_ns() - start) < seconds * 1e9);
    sink = acc;
    return (double)best / rows;
}

static double time_quantizer(quant_from_float_fn fn, const float *x, void *out, int64_t n,
                             double seconds) {
    uint64_t start = core_time_ns(), best = UINT64_MAX;
    do {
        uint64_t t0 = core_time_ns();
        fn(x, out, n);
        uint64_t dt = core_time_ns() - t0;
        if (dt < best) best = dt;
    } while ((double)(core_time_ns() - start) < seconds * 1e9);
    return (double)best;
}

int main(int argc, char **argv) {
    int64_t n = 4096;
    int rows = 512, first = 1;
    double seconds = 0.3;
    while (first + 1 < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-n") == 0)
            n = atoll(argv[first + 1]);
        else if (strcmp(argv[first], "-r") == 0)
            rows = atoi(argv[first + 1]);
        else if (strcmp(argv[first], "-t") == 0)
            seconds = atof(argv[first + 1]);
        else
            break;
        first += 2;
    }
    if (n <= 0 || n % 256 || rows <= 0 || !(seconds > 0)) {
        fprintf(stderr, "usage: %s [-n N (multiple of 256)] [-r ROWS] [-t SECONDS] [TYPE...]\n",
                argv[0]);
        return 2;
    }
    quant_init();
    printf("active ISA: %s; row of %lld elements, %d rows, 1 thread\n", quant_isa(), (long long)n,
           rows);
    printf("%-6s %-12s %10s %10s %8s\n", "type", "variant", "ns/row", "GB/s", "speedup");

    float *src = malloc((size_t)n * rows * sizeof *src), *x = malloc((size_t)n * sizeof *x);
    unsigned char *w = malloc((size_t)n * rows * 4), *xq = malloc((size_t)n * 4);
    test_rng rng;
    test_rng_seed(&rng, 1);
    for (int64_t i = 0; i < n * rows; i++) src[i] = (float)test_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) x[i] = (float)test_rng_normal(&rng);

    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const quant_traits *ref = quant_get_ref(types[t]);
        if (!wanted(ref->name, argc, argv, first)) continue;
        size_t row_bytes = quant_row_bytes(ref, n);
        if (ref->from_float)
            for (int r = 0; r < rows; r++)
                ref->from_float(src + (size_t)r * n, w + r * row_bytes, n);
        else /* the codebook types have no quantizer: random codes (the speed is the same) */
            for (size_t b = 0; b < row_bytes * (size_t)rows; b++)
                w[b] = (unsigned char)test_rng_u64(&rng);
        quant_get_ref(ref->vec_dot_type)->from_float(x, xq, n);
        double scalar_ns = 0.0;
        for (int v = 0; v < quant_n_variants(); v++) {
            const quant_traits *q = quant_variant_get(v, types[t]);
            if (!q || inherited_dot(v, q)) continue;
            double ns = time_rows(q, n, rows, w, xq, seconds);
            if (v == 0) scalar_ns = ns;
            printf("%-6s %-12s %10.1f %10.2f %7.1fx\n", ref->name, quant_variant_name(v), ns,
                   (double)row_bytes / ns, scalar_ns > 0 ? scalar_ns / ns : 0.0);
        }
    }
    printf("\nactivation quantizers (from_float), one row:\n");
    for (size_t t = 0; t < sizeof act_types / sizeof act_types[0]; t++) {
        const quant_traits *ref = quant_get_ref(act_types[t]);
        if (!wanted(ref->name, argc, argv, first)) continue;
        double scalar_ns = 0.0;
        for (int v = 0; v < quant_n_variants(); v++) {
            const quant_traits *q = quant_variant_get(v, act_types[t]);
            if (!q || inherited_quantizer(v, q)) continue;
            double ns = time_quantizer(q->from_float, x, xq, n, seconds);
            if (v == 0) scalar_ns = ns;
            printf("%-6s %-12s %10.1f ns/row %7.1fx\n", ref->name, quant_variant_name(v), ns,
                   scalar_ns > 0 ? scalar_ns / ns : 0.0);
        }
    }
    free(src);
    free(x);
    free(w);
    free(xq);
    return 0;
}
