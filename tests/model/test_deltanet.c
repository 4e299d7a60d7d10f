/*
 * The chunk-parallel delta rule (model_deltanet_chunked, prompts) and the vectorised token
 * recurrence (model_deltanet_step, decode) against the scalar token recurrence
 * (model_deltanet_tokens, their reference) on random q/k/v/decays/betas from a
 * random state: lengths below, at and across the chunk size (several chunks + a remainder),
 * head sizes that are not multiples of the 8-float blocks, and decays from mild to strong
 * enough that a chunk's cumulative decay underflows. Outputs and the final state must agree
 * to 1e-5 relative to their largest magnitude (float rounding of a different summation
 * order; a wrong decay, a missing correction term or an off-by-one in the triangular solve
 * moves them by whole percents).
 */
#include "model/model.h"
#include "quant/quant.h"
#include "test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) { /* [0, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)(rng >> 40) / (float)(1u << 24);
}

static void unit(float *x, int32_t n, float scale) {
    double ss = 0;
    for (int32_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    for (int32_t i = 0; i < n; i++) x[i] = (float)(x[i] / sqrt(ss) * scale);
}

static double rel_diff(const float *a, const float *b, int64_t n) {
    double worst = 0, big = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        big = fmax(big, fabs((double)b[i]));
    }
    return worst / big;
}

static void run_case(int32_t dk, int32_t dv, int32_t n, float g_min) {
    /* one row per token holding q, k and v, as the op's rows do */
    const int64_t row = 2 * (int64_t)dk + dv;
    float *x = malloc(sizeof(float) * (size_t)(row * n));
    float *g = malloc(sizeof(float) * (size_t)n * 2), *beta = g + n;
    float *o_ref = malloc(sizeof(float) * (size_t)n * dv * 2), *o = o_ref + (int64_t)n * dv;
    float *S_ref = malloc(sizeof(float) * (size_t)dk * dv * 3), *S = S_ref + (int64_t)dk * dv;
    float *S0 = S + (int64_t)dk * dv;
    float *scratch = malloc(sizeof(float) * (size_t)model_deltanet_scratch_floats(dk, dv, n));
    for (int64_t i = 0; i < row * n; i++) x[i] = 2.0f * urand() - 1.0f;
    for (int32_t t = 0; t < n; t++) {
        unit(x + t * row, dk, 1.0f / sqrtf((float)dk));
        unit(x + t * row + dk, dk, 1.0f);
        g[t] = g_min * urand();
        beta[t] = urand();
    }
    for (int64_t i = 0; i < (int64_t)dk * dv; i++) S0[i] = S_ref[i] = S[i] = 0.5f * urand() - 0.25f;
    model_deltanet_seq s = {.q = x,
                            .k = x + dk,
                            .v = x + 2 * dk,
                            .g = g,
                            .beta = beta,
                            .o = o_ref,
                            .qk_stride = row,
                            .v_stride = row,
                            .gb_stride = 1,
                            .o_stride = dv};
    model_deltanet_tokens(S_ref, dk, dv, n, &s);
    s.o = o;
    model_deltanet_chunked(S, dk, dv, n, &s, scratch);
    const double eo = rel_diff(o, o_ref, (int64_t)n * dv);
    const double es = rel_diff(S, S_ref, (int64_t)dk * dv);
    /* the token recurrence with the vector dots, from the same start */
    memcpy(S, S0, sizeof(float) * (size_t)dk * dv);
    model_deltanet_step(S, dk, dv, n, &s);
    const double so = rel_diff(o, o_ref, (int64_t)n * dv);
    const double ss = rel_diff(S, S_ref, (int64_t)dk * dv);
    printf("d_k %3d d_v %3d n %3d g >= %5.1f: chunked: outputs %.2e, state %.2e; step: outputs "
           "%.2e, state %.2e\n",
           dk, dv, n, g_min, eo, es, so, ss);
    CHECK_MSG(eo < 1e-5 && es < 1e-5, "chunked: d_k %d d_v %d n %d", dk, dv, n);
    CHECK_MSG(so < 1e-5 && ss < 1e-5, "step: d_k %d d_v %d n %d", dk, dv, n);
    free(x), free(g), free(o_ref), free(S_ref), free(scratch);
}

int main(void) {
    quant_init();
    static const int32_t cases[][3] = {{16, 16, 2},   {16, 16, 7},     {32, 24, 63},
                                       {32, 24, 64},  {32, 24, 65},    {13, 7, 150},
                                       {64, 64, 129}, {128, 128, 201}, {8, 40, 333}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(cases[i][0], cases[i][1], cases[i][2], -1.0f);
        run_case(cases[i][0], cases[i][1], cases[i][2], -30.0f);
    }
    return test_finish("model/deltanet");
}
