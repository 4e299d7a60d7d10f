/* The forward pass's element-wise operations and attention dots: the SIMD tiled dots are
 * bit-identical to the scalar reference (odd offsets included), the polynomial exp is accurate,
 * softmax, RMSNorm, RoPE and SwiGLU compute what their definitions say. */
#include "model/model.h"
#include "test.h"

#include <math.h>

static void test_tiled_dots(void) {
    test_rng r;
    test_rng_seed(&r, 7);
    enum { N = 1024 + 16 };
    static float a[N + 1], b[N + 1];
    static uint16_t ha[N + 1], hb[N + 1];
    for (int i = 0; i <= N; i++) {
        a[i] = (float)test_rng_normal(&r);
        b[i] = (float)test_rng_normal(&r);
        ha[i] = quant_f32_to_f16(a[i]);
        hb[i] = quant_f32_to_f16(b[i]);
    }
    const int64_t sizes[] = {16, 32, 64, 96, 1024};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int64_t n = sizes[k];
        for (int off = 0; off < 2; off++) { /* an odd element offset misaligns every load */
            float s_ref, s_best;
            model_dot_tiled_f32(n, &s_ref, a + off, b + off);
            model_dot_tiled(false)(n, &s_best, a + off, b + off);
            CHECK_MSG(memcmp(&s_ref, &s_best, sizeof s_ref) == 0, "f32 n %lld: %.9g vs %.9g",
                      (long long)n, s_ref, s_best);
            double exact = 0;
            for (int64_t i = 0; i < n; i++) exact += (double)a[off + i] * b[off + i];
            CHECK_NEAR(s_ref, exact, 1e-4 * sqrt((double)n));
            model_dot_tiled_f16(n, &s_ref, ha + off, hb + off);
            model_dot_tiled(true)(n, &s_best, ha + off, hb + off);
            CHECK_MSG(memcmp(&s_ref, &s_best, sizeof s_ref) == 0, "f16 n %lld: %.9g vs %.9g",
                      (long long)n, s_ref, s_best);
            CHECK_NEAR(s_ref, exact, 0.01 * sqrt((double)n));
        }
    }
    /* a hand-checked case: the lanes hold 1..16, each times 1 */
    float x[16], one[16];
    for (int i = 0; i < 16; i++) x[i] = (float)(i + 1), one[i] = 1.0f;
    float s;
    model_dot_tiled_f32(16, &s, x, one);
    CHECK_NEAR(s, 136.0, 0.0);
}

static void test_expf_poly(void) {
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.0137f) { /* normal floats only */
        double rel = fabs(model_expf_poly(x) - exp((double)x)) / exp((double)x);
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst < 4e-7, "worst relative error %g", worst);
    CHECK(model_expf_poly(-200.0f) == 0.0f);
    CHECK(isinf(model_expf_poly(200.0f)));
    CHECK(model_expf_poly(0.0f) == 1.0f);
    CHECK(isnan(model_expf_poly(NAN)));
    CHECK(model_expf_poly(-INFINITY) == 0.0f);
    CHECK(isinf(model_expf_poly(INFINITY)));
}

static void test_softmax_norm_rope(void) {
    float x[37];
    for (int i = 0; i < 37; i++) x[i] = (float)(i % 7) - 3.0f;
    x[36] = -INFINITY;
    model_softmax(x, 37);
    double sum = 0;
    for (int i = 0; i < 37; i++) sum += x[i];
    CHECK_NEAR(sum, 1.0, 1e-6);
    CHECK(x[36] == 0.0f);
    CHECK_NEAR(x[3] / x[2], exp(1.0), 1e-5);

    float v[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f}, y[4];
    model_rms_norm(v, w, y, 4, 0.0f);
    const double rms = sqrt((1 + 4 + 9 + 16) / 4.0);
    CHECK_NEAR(y[0], 1 / rms, 1e-6);
    CHECK_NEAR(y[2], 2 * 3 / rms, 1e-6);
    CHECK_NEAR(y[3], 0.5 * 4 / rms, 1e-6);

    /* RoPE: pair (x0, x1) rotated by pos * base^0 in normal mode; NeoX pairs (i, i + d/2) */
    float h[4] = {1, 0, 0, 1};
    model_rope(h, 1, 4, 4, 2, 10000.0f, 1.0f, NULL, MODEL_ROPE_NORM);
    CHECK_NEAR(h[0], cos(2.0), 1e-6);
    CHECK_NEAR(h[1], sin(2.0), 1e-6);
    const double th1 = 2.0 * pow(10000.0, -0.5);
    CHECK_NEAR(h[2], -sin(th1), 1e-6);
    CHECK_NEAR(h[3], cos(th1), 1e-6);
    float g[4] = {1, 0, 0, 0};
    model_rope(g, 1, 4, 4, 3, 10000.0f, 1.0f, NULL, MODEL_ROPE_NEOX);
    CHECK_NEAR(g[0], cos(3.0), 1e-6);
    CHECK_NEAR(g[2], sin(3.0), 1e-6);
    CHECK_NEAR(g[1], 0.0, 1e-7);

    float gate[20], up[20];
    for (int i = 0; i < 20; i++) gate[i] = (float)i * 0.3f - 3.0f, up[i] = 2.0f;
    float want[20];
    for (int i = 0; i < 20; i++) want[i] = (float)(gate[i] / (1 + exp(-(double)gate[i])) * 2.0);
    model_swiglu(gate, up, 20);
    for (int i = 0; i < 20; i++) CHECK_NEAR(gate[i], want[i], 1e-5);
}

int main(void) {
    test_tiled_dots();
    test_expf_poly();
    test_softmax_norm_rope();
    return test_finish("model/ops");
}
