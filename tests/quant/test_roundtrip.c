/* Quantize -> dequantize error of every format on Gaussian data, as RMS error relative to the
 * RMS of the signal, against each format's expected bound.
 *
 * Bounds: the float formats lose at most half an ulp (F16: 2^-11 relative, BF16: 2^-8). For an
 * integer format with L levels spread over a block's range R, uniform rounding error has RMS
 * R/(L-1)/sqrt(12); Gaussian blocks of 32 span about +-2.1 sigma (16 values: +-1.8), which gives
 * the figures in the table (K-quants must do at least as well as a plain block of the same bits,
 * since their scale search only ever lowers the error). Each bound has some headroom over that
 * estimate; a broken layout or scale gives errors of order 1.
 *
 * The newer formats: IQ4_NL/IQ4_XS (16 non-uniform levels per 32, the scale fitted by a search
 * that only lowers the error) are held to the plain 4-bit block's bound. The ternary TQ1_0/TQ2_0
 * (scale = largest magnitude of 256, values rounded to -1/0/1) lose most small values: an ideal
 * ternary quantizer simulated on the same distributions gives 0.807 (N(0,1)) and 0.804 (mean
 * 0.5), bound 0.85; a wrong trit layout puts errors above 1. MXFP4 (E2M1 values, a power-of-two
 * scale from floor(log2 amax) - 2, so the largest values may saturate) simulated gives 0.115 and
 * 0.113, bound 0.13. */
#include "quant/quant.h"
#include "test.h"

typedef struct case_ {
    uint32_t type;
    double bound; /* relative RMS error */
} case_;

static const case_ cases[] = {
    {GGUF_T_F32, 0.0},      {GGUF_T_F16, 4.9e-4},  {GGUF_T_BF16, 3.9e-3}, {GGUF_T_Q8_0, 0.010},
    {GGUF_T_Q8_1, 0.010},   {GGUF_T_Q8_K, 0.010},  {GGUF_T_Q6_K, 0.022},  {GGUF_T_Q5_0, 0.060},
    {GGUF_T_Q5_1, 0.060},   {GGUF_T_Q5_K, 0.050},  {GGUF_T_Q4_0, 0.120},  {GGUF_T_Q4_1, 0.120},
    {GGUF_T_Q4_K, 0.100},   {GGUF_T_Q3_K, 0.220},  {GGUF_T_Q2_K, 0.450},  {GGUF_T_IQ4_NL, 0.120},
    {GGUF_T_IQ4_XS, 0.120}, {GGUF_T_TQ1_0, 0.850}, {GGUF_T_TQ2_0, 0.850}, {GGUF_T_MXFP4, 0.130},
};

#define N 4096

static double rel_rms(const float *x, const float *y, int n) {
    double e = 0.0, s = 0.0;
    for (int i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        s += (double)x[i] * x[i];
    }
    return sqrt(e / s);
}

static void check_type(const case_ *c, const float *x, const char *what) {
    const quant_traits *q = quant_get_ref(c->type);
    CHECK(q != NULL);
    if (!q) return;
    unsigned char *buf = malloc(quant_row_bytes(q, N));
    float *y = malloc(N * sizeof *y);
    /* both quantizers: the run-time one and the model-file one */
    quant_from_float_fn fns[2] = {q->from_float, q->quantize};
    for (int k = 0; k < 2; k++) {
        fns[k](x, buf, N);
        q->to_float(buf, y, N);
        double err = rel_rms(x, y, N);
        CHECK_MSG(err <= c->bound, "%s %s (%s): relative RMS error %.4g > %.4g", q->name, what,
                  k ? "quantize" : "from_float", err, c->bound);
        /* a format that loses nothing would hide a to_float that ignores its input */
        if (c->type != GGUF_T_F32) CHECK_MSG(err > 0.0, "%s: no error at all", q->name);
    }
    free(buf);
    free(y);
}

int main(void) {
    float *x = malloc(N * sizeof *x);
    test_rng rng;
    test_rng_seed(&rng, 42);
    for (int i = 0; i < N; i++) x[i] = (float)test_rng_normal(&rng);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) check_type(&cases[c], x, "N(0,1)");

    /* shifted and scaled data: formats with a min (or signed scales) must follow the offset */
    for (int i = 0; i < N; i++) x[i] = (float)(1e-3 * (test_rng_normal(&rng) + 0.5));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_type(&cases[c], x, "N(0.5,1)*1e-3");

    /* a row of zeros stays zeros (no NaN from 0/0 scales) */
    const quant_traits *q;
    float *y = malloc(N * sizeof *y);
    unsigned char *buf = malloc(N * 4);
    memset(x, 0, N * sizeof *x);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        q = quant_get_ref(cases[c].type);
        q->from_float(x, buf, N);
        q->to_float(buf, y, N);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += y[i] != 0.0f;
        CHECK_MSG(bad == 0, "%s: zeros came back as %d non-zeros", q->name, bad);
        q->quantize(x, buf, N);
        q->to_float(buf, y, N);
        for (int i = 0; i < N; i++) bad += y[i] != 0.0f;
        CHECK_MSG(bad == 0, "%s: zeros (file quantizer) came back as %d non-zeros", q->name, bad);
    }
    free(buf);
    free(y);
    free(x);
    return test_finish("quant/roundtrip");
}
