/* Every ISA variant this CPU can run agrees with the scalar reference: activation quantizers
 * byte for byte, dequantizers bit for bit, and dot products within float re-association error
 * (the SIMD dots follow the reference engine's order of float operations, the scalar ones a plain
 * one; test_engine_order checks the order itself). Variants that implement the same order (all
 * non-scalar variants of a K-quant type) must agree with each other bit for bit. Same odd
 * lengths, odd addresses and data patterns as test_dot. */
#include "quant_fixture.h"

static int n_compared;

/* Types whose non-scalar variants share one order of float operations. */
static bool same_order(uint32_t type) {
    return type == GGUF_T_Q2_K || type == GGUF_T_Q3_K || type == GGUF_T_Q4_K ||
           type == GGUF_T_Q5_K || type == GGUF_T_Q6_K || type == GGUF_T_F32 || type == GGUF_T_F16 ||
           type == GGUF_T_BF16;
}

static void compare_dot(int v, const quant_traits *var, const quant_traits *ref, int64_t n,
                        qf_pattern pat, int off, test_rng *rng) {
    const quant_traits *act = quant_get_ref(ref->vec_dot_type);
    float *xw = malloc((size_t)n * sizeof *xw), *xa = malloc((size_t)n * sizeof *xa);
    float *dw = malloc((size_t)n * sizeof *dw), *da = malloc((size_t)n * sizeof *da);
    qf_fill(xw, n, pat, rng);
    qf_fill(xa, n, pat == QF_EXTREME ? QF_NORMAL : pat, rng);
    void *bw, *ba;
    const void *rw = qf_row(ref, ref->from_float, xw, n, off, &bw);
    const void *ra = qf_row(act, act->from_float, xa, n, (off + 1) % 4, &ba);
    float want = NAN, got = NAN;
    ref->vec_dot(n, &want, rw, ra);
    var->vec_dot(n, &got, rw, ra);
    ref->to_float(rw, dw, n);
    act->to_float(ra, da, n);
    double mag = 0.0;
    for (int64_t i = 0; i < n; i++) mag += fabs((double)dw[i] * da[i]);
    /* both sides round each block's scaled sum once; they only add in a different order */
    double tol = 4e-7 * mag * (1.0 + sqrt((double)n / ref->block_size)) + 1e-30;
    CHECK_MSG(fabs(got - want) <= tol, "%s %s n=%lld pattern %d: %.9g want %.9g",
              quant_variant_name(v), ref->name, (long long)n, pat, got, want);
    float batched = NAN;
    var->vec_dot_batch(n, &batched, rw, ra);
    CHECK_MSG(fabs(batched - want) <= tol, "%s %s batched n=%lld pattern %d: %.9g want %.9g",
              quant_variant_name(v), ref->name, (long long)n, pat, batched, want);
    /* earlier non-scalar variants with their own kernel for this type must agree exactly */
    for (int u = 1; u < v && same_order(ref->type); u++) {
        const quant_traits *other = quant_variant_get(u, ref->type);
        if (!other || other->vec_dot == ref->vec_dot) continue;
        float o = NAN;
        other->vec_dot(n, &o, rw, ra);
        CHECK_MSG(o == got, "%s and %s differ on %s n=%lld: %.9g vs %.9g", quant_variant_name(u),
                  quant_variant_name(v), ref->name, (long long)n, o, got);
    }
    free(bw);
    free(ba);
    free(xw);
    free(xa);
    free(dw);
    free(da);
    n_compared++;
}

static void compare_quantizer(int v, const quant_traits *var, const quant_traits *ref, int64_t n,
                              qf_pattern pat, int off, test_rng *rng) {
    float *x = malloc((size_t)n * sizeof *x);
    qf_fill(x, n, pat, rng);
    void *b1, *b2;
    const unsigned char *r1 = qf_row(ref, ref->from_float, x, n, off, &b1);
    const unsigned char *r2 = qf_row(var, var->from_float, x, n, (off + 2) % 4, &b2);
    size_t bytes = quant_row_bytes(ref, n);
    CHECK_MSG(memcmp(r1, r2, bytes) == 0, "%s %s from_float n=%lld pattern %d: bytes differ",
              quant_variant_name(v), ref->name, (long long)n, pat);
    float *y1 = malloc((size_t)n * sizeof *y1), *y2 = malloc((size_t)n * sizeof *y2);
    ref->to_float(r1, y1, n);
    var->to_float(r1, y2, n);
    CHECK_MSG(memcmp(y1, y2, (size_t)n * sizeof *y1) == 0, "%s %s to_float differs",
              quant_variant_name(v), ref->name);
    free(y1);
    free(y2);
    free(b1);
    free(b2);
    free(x);
    n_compared++;
}

static int64_t length(const quant_traits *q, int l) {
    return q->block_size == 1 ? qf_elems[l] : (int64_t)qf_blocks[l] * q->block_size;
}

static int n_lengths(const quant_traits *q) {
    return q->block_size == 1 ? (int)(sizeof qf_elems / sizeof qf_elems[0])
                              : (int)(sizeof qf_blocks / sizeof qf_blocks[0]);
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 11);
    int n_variants_run = 0;
    for (int v = 1; v < quant_n_variants(); v++) {
        int has_any = 0;
        for (size_t t = 0; t < QF_N_WEIGHT_TYPES + QF_N_ACT_TYPES; t++) {
            uint32_t type =
                t < QF_N_WEIGHT_TYPES ? qf_weight_types[t] : qf_act_types[t - QF_N_WEIGHT_TYPES];
            const quant_traits *var = quant_variant_get(v, type), *ref = quant_get_ref(type);
            if (!var) continue;
            has_any = 1;
            for (int l = 0; l < n_lengths(ref); l++)
                for (int p = 0; p < QF_N_PATTERNS; p++)
                    for (int o = 0; o < 3; o++) {
                        if (t < QF_N_WEIGHT_TYPES && var->vec_dot != ref->vec_dot)
                            compare_dot(v, var, ref, length(ref, l), (qf_pattern)p, qf_misalign[o],
                                        &rng);
                        if (t >= QF_N_WEIGHT_TYPES)
                            compare_quantizer(v, var, ref, length(ref, l), (qf_pattern)p,
                                              qf_misalign[o], &rng);
                    }
        }
        if (has_any) n_variants_run++;
        fprintf(stderr, "variant %s: %s\n", quant_variant_name(v),
                has_any ? "compared" : "not runnable here or no kernels");
    }
    fprintf(stderr, "%d comparisons over %d variants\n", n_compared, n_variants_run);
    if (quant_n_variants() > 1 && n_variants_run == 0 && strcmp(quant_isa(), "scalar") != 0)
        CHECK_MSG(0, "the active ISA %s has no variant to compare", quant_isa());
    return test_finish("quant/variants");
}
