/* Every weight type's reference vec_dot equals the double-precision dot of the dequantized weights
 * and the dequantized activations (activations converted with the vec_dot_type's from_float),
 * for odd block counts, rows at odd addresses and several data patterns. The tolerance is float
 * accumulation error: a few float epsilons times the sum of |w_i x_i|. */
#include "quant/quant_impl.h"
#include "quant_fixture.h"

static int n_cases;

/* Q4_1/Q5_1 dots use the activation block's stored s = fp16(d * sum(q)) for the min term, not
 * fp16(d) * sum(q) as dequantization implies (the reference engine's semantics): the expected
 * value moves by m_w * (s - fp16(d) * sum(q)) per block. */
static double q8_1_sum_correction(const quant_traits *w, const void *rw, const void *ra,
                                  int64_t n) {
    if (w->vec_dot_type != GGUF_T_Q8_1) return 0.0;
    const quant_block_q8_1 *a = ra;
    double c = 0.0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint16_t m16; /* the min is the second fp16 of both Q4_1 and Q5_1 blocks */
        memcpy(&m16, (const unsigned char *)rw + i * w->type_size + 2, 2);
        int sum = 0;
        for (int l = 0; l < 32; l++) sum += a[i].qs[l];
        double s = quant_f16_to_f32(a[i].s), ds = (double)quant_f16_to_f32(a[i].d) * sum;
        c += (double)quant_f16_to_f32(m16) * (s - ds);
    }
    return c;
}

static void check_dot(const quant_traits *w, int64_t n, qf_pattern pat, int off_w, int off_x,
                      test_rng *rng) {
    const quant_traits *a = quant_get_ref(w->vec_dot_type);
    float *xw = malloc((size_t)n * sizeof *xw), *xa = malloc((size_t)n * sizeof *xa);
    float *dw = malloc((size_t)n * sizeof *dw), *da = malloc((size_t)n * sizeof *da);
    qf_fill(xw, n, pat, rng);
    qf_fill(xa, n, pat == QF_EXTREME ? QF_NORMAL : pat, rng);
    void *bw, *ba;
    const void *rw = qf_row(w, w->from_float, xw, n, off_w, &bw);
    const void *ra = qf_row(a, a->from_float, xa, n, off_x, &ba);
    w->to_float(rw, dw, n);
    a->to_float(ra, da, n);
    double want = 0.0, mag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        want += (double)dw[i] * da[i];
        mag += fabs((double)dw[i] * da[i]);
    }
    want += q8_1_sum_correction(w, rw, ra, n);
    float got = NAN;
    w->vec_dot(n, &got, rw, ra);
    float batched = NAN;
    w->vec_dot_batch(n, &batched, rw, ra);
    CHECK_MSG(batched == got, "%s: reference batched dot differs from its row dot", w->name);
    /* dequantization rounds each value once, the kernels round per block: both within ~eps */
    double tol = 1e-6 * mag * (1.0 + sqrt((double)n / w->block_size)) + 1e-30;
    CHECK_MSG(fabs(got - want) <= tol, "%s n=%lld pattern %d offsets %d/%d: %.9g want %.9g",
              w->name, (long long)n, pat, off_w, off_x, got, want);
    free(bw);
    free(ba);
    free(xw);
    free(xa);
    free(dw);
    free(da);
    n_cases++;
}

/* The integer kernels rely on Q8_K's block sums; they must be the sums of the quants. */
static void check_q8k_bsums(test_rng *rng) {
    const quant_traits *q = quant_get_ref(GGUF_T_Q8_K);
    float x[512];
    quant_block_q8_k b[2];
    for (int p = 0; p < QF_N_PATTERNS; p++) {
        qf_fill(x, 512, (qf_pattern)p, rng);
        q->from_float(x, b, 512);
        for (int i = 0; i < 2; i++) {
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += b[i].qs[16 * g + l];
                CHECK_EQ_INT(b[i].bsums[g], sum);
            }
            int amax = 0;
            for (int l = 0; l < 256; l++) amax = abs(b[i].qs[l]) > amax ? abs(b[i].qs[l]) : amax;
            CHECK_EQ_INT(amax, 127); /* the largest value maps to the extreme level */
        }
    }
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 7);
    for (size_t t = 0; t < QF_N_WEIGHT_TYPES; t++) {
        const quant_traits *w = quant_get_ref(qf_weight_types[t]);
        CHECK(w && w->vec_dot);
        if (!w || !w->vec_dot) continue;
        int n_len = w->block_size == 1 ? (int)(sizeof qf_elems / sizeof qf_elems[0])
                                       : (int)(sizeof qf_blocks / sizeof qf_blocks[0]);
        for (int l = 0; l < n_len; l++) {
            int64_t n = w->block_size == 1 ? qf_elems[l] : (int64_t)qf_blocks[l] * w->block_size;
            for (int p = 0; p < QF_N_PATTERNS; p++)
                for (size_t o = 0; o < sizeof qf_misalign / sizeof qf_misalign[0]; o++)
                    check_dot(w, n, (qf_pattern)p, qf_misalign[o],
                              qf_misalign[(o + 1) % (sizeof qf_misalign / sizeof qf_misalign[0])],
                              &rng);
        }
    }
    check_q8k_bsums(&rng);
    fprintf(stderr, "%d dot cases\n", n_cases);
    return test_finish("quant/dot");
}
