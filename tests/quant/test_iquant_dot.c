/* The SIMD dots of the i-quants, ternary types and MXFP4 give the scalar reference's bits: their
 * integer parts are exact and the float step is shared (quant_iq_term), so every ISA variant must
 * agree bit for bit, on one block, odd block counts and a long row, at misaligned addresses, for
 * weight blocks of random bytes (every code, index, sign and scale pattern; the fp16/E8M0 scales
 * kept finite) and for blocks made by the quantizers. vec_dot_batch and the tile kernels (gemm)
 * are held to the same bits. */
#include "quant/quant.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t types[] = {
    GGUF_T_IQ4_NL, GGUF_T_IQ4_XS, GGUF_T_IQ2_XXS, GGUF_T_IQ2_XS, GGUF_T_IQ2_S, GGUF_T_IQ3_XXS,
    GGUF_T_IQ3_S,  GGUF_T_IQ1_S,  GGUF_T_IQ1_M,   GGUF_T_TQ1_0,  GGUF_T_TQ2_0, GGUF_T_MXFP4,
};
static const int blocks[] = {1, 3, 7, 16};
static const int offs[] = {0, 1, 3};

static uint16_t rand_half(test_rng *r) {
    /* magnitudes 2^-6 .. 2^3, either sign */
    const float v = (float)(test_rng_uniform(r) * 8.0 + 0.016) * (test_rng_u64(r) & 1 ? -1 : 1);
    return quant_f32_to_f16(v);
}

static void put16(unsigned char *p, uint16_t v) {
    memcpy(p, &v, 2);
}

/* One weight block of random bytes with a usable scale. */
static void random_block(uint32_t type, unsigned char *b, size_t size, test_rng *r) {
    for (size_t i = 0; i < size; i++) b[i] = (unsigned char)test_rng_u64(r);
    switch (type) {
    case GGUF_T_TQ1_0: put16(b + 52, rand_half(r)); break;
    case GGUF_T_TQ2_0: put16(b + 64, rand_half(r)); break;
    case GGUF_T_MXFP4: b[0] = (unsigned char)(110 + test_rng_u64(r) % 30); break;
    case GGUF_T_IQ1_M: { /* the fp16 scale lives in the top nibbles of four u16 words */
        const uint16_t d = rand_half(r);
        for (int k = 0; k < 4; k++) {
            uint16_t w;
            memcpy(&w, b + 48 + 2 * k, 2);
            w = (uint16_t)((w & 0x0FFF) | ((d >> (4 * k)) & 0xF) << 12);
            memcpy(b + 48 + 2 * k, &w, 2);
        }
        break;
    }
    default: put16(b, rand_half(r)); break; /* every other type starts with its fp16 scale */
    }
}

static int n_rows_compared;

static void compare(uint32_t type, int nb, int off, bool quantized, test_rng *r) {
    const quant_traits *ref = quant_get_ref(type), *act = quant_get_ref(ref->vec_dot_type);
    const int64_t n = (int64_t)nb * ref->block_size;
    const size_t wb = quant_row_bytes(ref, n), ab = quant_row_bytes(act, n);
    unsigned char *w = malloc(wb + 8), *a = malloc(ab + 8);
    float *xf = malloc((size_t)n * sizeof *xf);
    for (int64_t i = 0; i < n; i++) xf[i] = (float)test_rng_normal(r);
    if (quantized)
        ref->quantize(xf, w + off, n);
    else
        for (int k = 0; k < nb; k++)
            random_block(type, w + off + (size_t)k * ref->type_size, ref->type_size, r);
    for (int64_t i = 0; i < n; i++) xf[i] = (float)(test_rng_normal(r) * (1 + i % 5));
    act->from_float(xf, a + (off + 1) % 4, n);
    float want;
    ref->vec_dot(n, &want, w + off, a + (off + 1) % 4);
    CHECK_MSG(isfinite(want), "%s: reference dot not finite", ref->name);
    for (int v = 1; v < quant_n_variants(); v++) {
        const quant_traits *q = quant_variant_get(v, type);
        if (!q) continue;
        float got, batched;
        q->vec_dot(n, &got, w + off, a + (off + 1) % 4);
        q->vec_dot_batch(n, &batched, w + off, a + (off + 1) % 4);
        CHECK_MSG(memcmp(&got, &want, 4) == 0, "%s %s n=%lld off=%d %s: %.9g, reference %.9g",
                  quant_variant_name(v), ref->name, (long long)n, off,
                  quantized ? "quantized" : "random", got, want);
        CHECK_MSG(memcmp(&batched, &want, 4) == 0, "%s %s batched: %.9g, reference %.9g",
                  quant_variant_name(v), ref->name, batched, want);
    }
    n_rows_compared++;
    free(w);
    free(a);
    free(xf);
}

/* A tile kernel over several rows and tokens equals vec_dot per pair. */
static void compare_gemm(int v, const quant_traits *q, test_rng *r) {
    const quant_traits *act = quant_get_ref(q->vec_dot_type);
    /* nt = 1 with 8 or more rows takes the decode tiles (8 rows per vector, then a tail) */
    static const int shapes[][3] = {{1, 1, 1},   {3, 5, 2},  {7, 8, 4}, {2, 13, 9},
                                    {16, 16, 3}, {5, 19, 1}, {1, 8, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int nb = shapes[si][0], nr = shapes[si][1], nt = shapes[si][2];
        const int64_t n = (int64_t)nb * q->block_size;
        const size_t ws = quant_row_bytes(q, n) + 1, xs = quant_row_bytes(act, n) + 3;
        unsigned char *w = malloc(ws * (size_t)nr + 1), *x = malloc(xs * (size_t)nt + 1);
        float *xf = malloc((size_t)n * sizeof *xf), *y = malloc((size_t)(nr + 2) * nt * 4);
        for (int row = 0; row < nr; row++)
            for (int k = 0; k < nb; k++)
                random_block(q->type, w + 1 + (size_t)row * ws + (size_t)k * q->type_size,
                             q->type_size, r);
        for (int t = 0; t < nt; t++) {
            for (int64_t i = 0; i < n; i++) xf[i] = (float)test_rng_normal(r);
            act->from_float(xf, x + 1 + (size_t)t * xs, n);
        }
        q->gemm(n, nr, nt, w + 1, ws, x + 1, xs, y, (size_t)nr + 2);
        for (int t = 0; t < nt; t++)
            for (int row = 0; row < nr; row++) {
                float want;
                q->vec_dot_batch(n, &want, w + 1 + (size_t)row * ws, x + 1 + (size_t)t * xs);
                const float got = y[(size_t)t * (nr + 2) + row];
                CHECK_MSG(memcmp(&got, &want, 4) == 0, "%s %s gemm nb=%d nr=%d nt=%d: %.9g vs %.9g",
                          quant_variant_name(v), q->name, nb, nr, nt, got, want);
            }
        free(w);
        free(x);
        free(xf);
        free(y);
    }
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 1717);
    int n_gemm = 0, n_simd = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const quant_traits *ref = quant_get_ref(types[ti]);
        CHECK_MSG(ref != NULL, "type %u missing", types[ti]);
        if (!ref) continue;
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
                compare(types[ti], blocks[b], offs[o], false, &rng);
                if (ref->quantize) compare(types[ti], blocks[b], offs[o], true, &rng);
            }
        for (int v = 1; v < quant_n_variants(); v++) {
            const quant_traits *q = quant_variant_get(v, types[ti]);
            if (q && q->vec_dot != ref->vec_dot) n_simd++;
            if (q && q->gemm) {
                compare_gemm(v, q, &rng);
                n_gemm++;
            }
        }
    }
    printf("iquant dots: %d rows, %d SIMD kernels, %d tile kernels\n", n_rows_compared, n_simd,
           n_gemm);
#if defined(__x86_64__) || defined(__aarch64__)
    /* this build has kernels for every type; a CPU that runs any variant must have met them */
    if (strcmp(quant_isa(), "scalar") != 0) CHECK(n_simd >= (int)(sizeof types / sizeof types[0]));
#endif
    return test_finish("quant/iquant_dot");
}
