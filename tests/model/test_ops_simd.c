/* The AVX2 element-wise operations (RMSNorm, RoPE, softmax, SwiGLU, F16 rounding) against their
 * scalar references, bit for bit: the forward pass must round exactly like the reference engine, so
 * a SIMD version that is an ulp off somewhere is a bug. Inputs cover every length residue (vector
 * bodies and scalar tails), misaligned starts, and the polynomial exp's range edges where the
 * vector version hands lanes back to the scalar one. Also holds model_rope (angles computed
 * in-line) equal to model_rope_angles + model_rope_apply. */
#include "core/core.h"
#include "model/model.h"
#include "test.h"

#include <math.h>
#include <string.h>

enum { MAXN = 1100 };

#if defined(__x86_64__) || defined(__i386__)
#define X86 1
#else
#define X86 0
#endif

static bool have_avx2(void) {
    const uint32_t need = CORE_CPU_AVX2 | CORE_CPU_FMA | CORE_CPU_F16C;
    return X86 && (core_cpu_features() & need) == need;
}

#if X86
/* mostly normal values, with a share of large ones so that the exp underflows, reaches the
 * subnormal range and overflows; lanes near the vector range edge (-87.3 .. -88.7) included */
static float sample(test_rng *r, int i) {
    switch (i % 11) {
    case 3: return (float)(test_rng_uniform(r) * -110.0);
    case 7: return (float)(-87.0 - test_rng_uniform(r) * 2.0);
    case 9: return (float)(test_rng_normal(r) * 30.0);
    default: return (float)test_rng_normal(r) * 4.0f;
    }
}
#endif

static bool same(const float *a, const float *b, int64_t n, const char *what, int64_t len) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (memcmp(&a[i], &b[i], sizeof *a) != 0) bad = i;
    CHECK_MSG(bad < 0, "%s n=%lld: element %lld %.9g (ref) vs %.9g", what, (long long)len,
              (long long)bad, bad < 0 ? 0.0 : a[bad], bad < 0 ? 0.0 : b[bad]);
    return bad < 0;
}

#if X86
static void test_rms_norm(test_rng *r) {
    static float x[MAXN + 1], w[MAXN + 1], y0[MAXN], y1[MAXN];
    for (int i = 0; i <= MAXN; i++) x[i] = sample(r, i), w[i] = (float)test_rng_normal(r);
    const int64_t ns[] = {1, 7, 8, 9, 64, 100, 1024, 1027};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int off = 0; off < 2; off++)
            for (int wk = 0; wk < 2; wk++) {
                const float *wp = wk ? w + off : NULL;
                model_rms_norm_ref(x + off, wp, y0, ns[k], 1e-5f);
                model_rms_norm_avx2(x + off, wp, y1, ns[k], 1e-5f);
                same(y0, y1, ns[k], "rms_norm", ns[k]);
            }
}
#endif

static void test_rope(test_rng *r, bool simd) {
    static float base[8 * 128], a[8 * 128], b[8 * 128], c[8 * 128];
    static const float freqs[64] = {1.0f, 1.5f, 2.0f, 4.0f, 8.0f, 1.0f, 1.0f, 3.0f};
    float cs[128];
    for (int i = 0; i < 8 * 128; i++) base[i] = (float)test_rng_normal(r) * 3.0f;
    const struct {
        int32_t hd, n_rot;
    } shapes[] = {{64, 64}, {128, 128}, {64, 32}, {16, 16}, {24, 24}, {12, 8}, {6, 6}};
    const int32_t positions[] = {0, 1, 17, 511, 4095, 100000};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int mode = 0; mode < 2; mode++)
            for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++)
                for (int ff = 0; ff < 2; ff++) {
                    const int32_t hd = shapes[k].hd, n_rot = shapes[k].n_rot, nh = 5;
                    const float *fr = ff ? freqs : NULL;
                    const model_rope_mode md = mode ? MODEL_ROPE_NEOX : MODEL_ROPE_NORM;
                    memcpy(a, base, sizeof(float) * (size_t)(nh * hd));
                    memcpy(b, base, sizeof(float) * (size_t)(nh * hd));
                    memcpy(c, base, sizeof(float) * (size_t)(nh * hd));
                    model_rope(a, nh, hd, n_rot, positions[p], 10000.0f, 0.5f, fr, md);
                    model_rope_angles(cs, n_rot, positions[p], 10000.0f, 0.5f, fr);
                    model_rope_apply_ref(b, nh, hd, n_rot, cs, md);
                    same(a, b, nh * hd, mode ? "rope neox (table)" : "rope norm (table)", n_rot);
#if X86
                    if (!simd) continue;
                    model_rope_apply_avx2(c, nh, hd, n_rot, cs, md);
                    same(b, c, nh * hd, mode ? "rope neox avx2" : "rope norm avx2", n_rot);
#else
                    (void)c;
                    (void)simd;
#endif
                }
}

#if X86
static void test_softmax(test_rng *r) {
    static float x[MAXN + 1], a[MAXN], b[MAXN];
    const int64_t ns[] = {1, 5, 15, 16, 17, 31, 32, 33, 100, 256, 1000, 1024, 1090};
    for (int rep = 0; rep < 20; rep++) {
        const float spread = rep < 10 ? 1.0f : 10.0f; /* the second half reaches exp's edges */
        for (int i = 0; i <= MAXN; i++) x[i] = sample(r, i) * spread;
        if (rep == 19) x[5] = x[40] = -INFINITY; /* a masked score is zero, not NaN */
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (int off = 0; off < 2; off++) {
                memcpy(a, x + off, sizeof(float) * (size_t)ns[k]);
                memcpy(b, x + off, sizeof(float) * (size_t)ns[k]);
                model_softmax_ref(a, ns[k]);
                model_softmax_avx2(b, ns[k]);
                same(a, b, ns[k], "softmax", ns[k]);
            }
    }
}

static void test_swiglu(test_rng *r) {
    static float g[MAXN + 1], u[MAXN + 1], a[MAXN], b[MAXN];
    const int64_t ns[] = {1, 8, 15, 16, 17, 40, 2816 / 4, 1024, 1090};
    for (int rep = 0; rep < 10; rep++) {
        for (int i = 0; i <= MAXN; i++) g[i] = -sample(r, i), u[i] = (float)test_rng_normal(r);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (int off = 0; off < 2; off++) {
                memcpy(a, g + off, sizeof(float) * (size_t)ns[k]);
                memcpy(b, g + off, sizeof(float) * (size_t)ns[k]);
                model_swiglu_ref(a, u + off, ns[k]);
                model_swiglu_avx2(b, u + off, ns[k]);
                same(a, b, ns[k], "swiglu", ns[k]);
            }
    }
}

/* F16 conversion over random bit patterns (NaNs, infinities, subnormals included) and the
 * rounding edges: half the smallest subnormal, the largest finite half, ties */
static void test_f16(test_rng *r) {
    enum { N = 4099 };
    static float x[N];
    static uint16_t a[N], b[N];
    for (int i = 0; i < N; i++) {
        const uint32_t bits = (uint32_t)test_rng_u64(r);
        if (i % 3 == 0) {
            memcpy(&x[i], &bits, 4);
        } else { /* exponents around F16's range: -30 .. 17 */
            const float e = ldexpf(1.0f, (int)(bits % 48) - 30);
            x[i] = e * (float)(1.0 + (bits >> 8) % 4096 / 4096.0) * (bits & 1 ? -1.0f : 1.0f);
        }
    }
    const float edges[] = {
        0x1p-25f,          0x1.000002p-25f, 0x1.fffffep-26f, 0x1p-24f,  0x1.8p-24f,
        0x1.4p-23f,        65504.0f,        65519.99f,       65520.0f,  1.0f + 0x1p-11f,
        1.0f + 0x1.8p-11f, -0.0f,           INFINITY,        -INFINITY, NAN};
    memcpy(x, edges, sizeof edges);
    for (int off = 0; off < 2; off++) {
        model_f32_to_f16_ref(x + off, a, N - off);
        model_f32_to_f16_avx2(x + off, b, N - off);
        int bad = -1;
        for (int i = 0; i < N - off && bad < 0; i++)
            if (a[i] != b[i]) bad = i;
        CHECK_MSG(bad < 0, "f32->f16 of %.9g: %04x (ref) vs %04x", bad < 0 ? 0.0 : x[bad + off],
                  bad < 0 ? 0 : a[bad], bad < 0 ? 0 : b[bad]);
    }
}

/* every exponent the vector exp scales by, both sides of the range it keeps: one softmax row per
 * value pair (0, x) so that the polynomial sees x exactly */
static void test_exp_edges(void) {
    for (float x = -104.0f; x <= 0.0f; x += 0.0625f) {
        float a[16] = {0.0f, x}, b[16] = {0.0f, x};
        model_softmax_ref(a, 16);
        model_softmax_avx2(b, 16);
        if (!same(a, b, 16, "softmax exp edge", (int64_t)x)) break;
    }
}
#endif

int main(void) {
    test_rng r;
    test_rng_seed(&r, 20261124);
    const bool simd = have_avx2();
    test_rope(&r, simd);
    if (simd) {
#if X86
        test_rms_norm(&r);
        test_softmax(&r);
        test_swiglu(&r);
        test_exp_edges();
        test_f16(&r);
#endif
    } else {
        printf("model/ops_simd: no AVX2+FMA on this CPU: only the scalar RoPE paths checked\n");
    }
    return test_finish("model/ops_simd");
}
