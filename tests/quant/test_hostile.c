/* Bad input never crashes a kernel: weight rows of arbitrary bytes (as a corrupt or hostile GGUF
 * can hold: NaN/Inf/subnormal fp16 scales, extreme levels, -128 in int8 fields) through every
 * variant's to_float and dots, and float rows full of NaN, Inf, huge and tiny values through
 * every quantizer. Under the sanitizer build this also proves the absence of undefined behaviour
 * (float-to-int conversions out of range, shifts, overflow). Results are garbage-in-garbage-out,
 * except that finite blocks with finite activations give finite results. */
#include "quant_fixture.h"

static const float specials[] = {NAN,     INFINITY, -INFINITY, 3e38f,    -3e38f,   1e-40f,
                                 -1e-45f, 0.0f,     -0.0f,     65504.0f, 65520.0f, 1e20f};

static void fill_hostile_floats(float *x, int64_t n, test_rng *rng) {
    for (int64_t i = 0; i < n; i++) {
        unsigned long long r = test_rng_u64(rng);
        x[i] = (r & 3) == 0 ? specials[(r >> 8) % (sizeof specials / sizeof specials[0])]
                            : (float)test_rng_normal(rng) * 1e3f;
    }
}

/* The i-quants, ternary types and MXFP4 (not in the shared fixture's type list). */
static const uint32_t newer_types[] = {
    GGUF_T_IQ4_NL, GGUF_T_IQ4_XS, GGUF_T_IQ3_XXS, GGUF_T_IQ3_S, GGUF_T_IQ2_XXS, GGUF_T_IQ2_XS,
    GGUF_T_IQ2_S,  GGUF_T_IQ1_S,  GGUF_T_IQ1_M,   GGUF_T_TQ1_0, GGUF_T_TQ2_0,   GGUF_T_MXFP4,
};

/* Arbitrary bytes as blocks and as activations, hostile floats through the quantizers they
 * have (the codebook types have none). */
static int hostile_newer(test_rng *rng, unsigned char *w, unsigned char *a, float *x, float *y,
                         int64_t n) {
    int runs = 0;
    for (int v = 0; v < quant_n_variants(); v++)
        for (size_t t = 0; t < sizeof newer_types / sizeof newer_types[0]; t++) {
            const quant_traits *q =
                v == 0 ? quant_get_ref(newer_types[t]) : quant_variant_get(v, newer_types[t]);
            if (!q) continue;
            const quant_traits *act = quant_get_ref(q->vec_dot_type);
            for (int rep = 0; rep < 4; rep++) {
                for (int64_t i = 0; i < n * 4 + 64; i++) w[i] = (unsigned char)test_rng_u64(rng);
                q->to_float(w + 1, y, n);
                fill_hostile_floats(x, n, rng);
                if (q->from_float) q->from_float(x, a + 3, n);
                if (q->quantize) q->quantize(x, a + 3, n);
                float s = 0.0f;
                act->from_float(x, a + 3, n);
                q->vec_dot(n, &s, w + 1, a + 3);
                q->vec_dot_batch(n, &s, w + 1, a + 3);
                /* activations of arbitrary bytes too (-128 levels, odd scales) */
                for (int64_t i = 0; i < n * 4 + 64; i++) a[i] = (unsigned char)test_rng_u64(rng);
                q->vec_dot(n, &s, w + 1, a + 3);
                if (q->gemm) q->gemm(n, 1, 1, w + 1, 0, a + 3, 0, &s, 1);
                runs++;
            }
        }
    return runs;
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 99);
    const int64_t n = 1024; /* 4 super-blocks, 32 legacy blocks */
    unsigned char *w = malloc(n * 4 + 64), *a = malloc(n * 4 + 64);
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    int runs = 0;
    for (int v = 0; v < quant_n_variants(); v++) {
        for (size_t t = 0; t < QF_N_WEIGHT_TYPES + QF_N_ACT_TYPES; t++) {
            uint32_t type =
                t < QF_N_WEIGHT_TYPES ? qf_weight_types[t] : qf_act_types[t - QF_N_WEIGHT_TYPES];
            const quant_traits *q = v == 0 ? quant_get_ref(type) : quant_variant_get(v, type);
            if (!q) continue;
            const quant_traits *act = quant_get_ref(q->vec_dot_type);
            for (int rep = 0; rep < 4; rep++) {
                /* arbitrary bytes as a row of this type */
                for (int64_t i = 0; i < n * 4 + 64; i++) w[i] = (unsigned char)test_rng_u64(&rng);
                q->to_float(w + 1, y, n);
                /* non-finite and extreme floats through both quantizers */
                fill_hostile_floats(x, n, &rng);
                q->from_float(x, a + 3, n);
                q->quantize(x, a + 3, n);
                if (q->vec_dot) {
                    float s = 0.0f;
                    act->from_float(x, a + 3, n);
                    q->vec_dot(n, &s, w + 1, a + 3);
                    q->vec_dot_batch(n, &s, w + 1, a + 3);
                    /* a finite quantized weight row against finite activations stays finite */
                    for (int64_t i = 0; i < n; i++) x[i] = (float)test_rng_normal(&rng);
                    quant_get_ref(type)->from_float(x, w + 1, n);
                    for (int64_t i = 0; i < n; i++) x[i] = (float)test_rng_normal(&rng);
                    act->from_float(x, a + 3, n);
                    q->vec_dot(n, &s, w + 1, a + 3);
                    CHECK_MSG(isfinite(s), "%s %s: finite inputs gave %g", quant_variant_name(v),
                              q->name, s);
                }
                runs++;
            }
        }
    }
    runs += hostile_newer(&rng, w, a, x, y, n);
    fprintf(stderr, "%d hostile runs\n", runs);
    free(w);
    free(a);
    free(x);
    free(y);
    return test_finish("quant/hostile");
}
