/*
 * model_geglu: the AVX2 version bit for bit against the scalar reference (model_gelu times the up
 * value), over every length residue and misaligned starts, with inputs that reach the table's
 * both ends (the words holding entries 0 and 65535), F16 subnormals and overflow, and the
 * +-10 cut-offs on both sides; and the reference against model_gelu itself, which is ggml's
 * table GELU: x <= -10 gives 0, x >= 10 gives x, else f16(gelu_tanh(f16(x))).
 */
#include "core/core.h"
#include "model/model.h"
#include "test.h"

#include <string.h>

enum { MAXN = 530 };

static float sample(test_rng *r, int i) {
    switch (i % 13) {
    case 1: return -10.0f;
    case 2: return 10.0f;
    case 3: return nextafterf(-10.0f, 0.0f);
    case 4: return nextafterf(10.0f, 0.0f);
    case 5: return (float)(test_rng_normal(r) * 1e-6); /* F16 subnormals */
    case 6: return (float)(test_rng_normal(r) * 1e5);  /* beyond F16: infinities, cut off */
    case 7: return -65504.0f;                          /* the F16 bits of the table's last words */
    case 8: return (float)test_rng_uniform(r) * 20.0f - 10.0f;
    default: return (float)test_rng_normal(r) * 3.0f;
    }
}

int main(void) {
    test_rng r;
    test_rng_seed(&r, 3);
    static float g0[MAXN + 8], u[MAXN + 8], a[MAXN + 8], b[MAXN + 8];
    for (int i = 0; i < MAXN + 8; i++) {
        g0[i] = sample(&r, i);
        u[i] = (float)test_rng_normal(&r);
    }
    /* the reference is model_gelu times u */
    memcpy(a, g0, sizeof a);
    model_geglu_ref(a, u, MAXN);
    int bad = 0;
    for (int i = 0; i < MAXN; i++) bad += memcmp(&a[i], &(float){model_gelu(g0[i]) * u[i]}, 4) != 0;
    CHECK_EQ_INT(bad, 0);
    CHECK(model_gelu(-10.0f) == 0.0f && model_gelu(10.0f) == 10.0f && model_gelu(0.0f) == 0.0f);
    CHECK_NEAR(model_gelu(1.0f), 0.8413f, 1e-3); /* gelu(1) = 0.84119 in F16 */
#if defined(__x86_64__) || defined(__i386__)
    const uint32_t need = CORE_CPU_AVX2 | CORE_CPU_F16C;
    if ((core_cpu_features() & need) != need) {
        printf("no AVX2/F16C: the reference alone checked\n");
        return test_finish("model/geglu");
    }
    int n_cases = 0;
    for (int off = 0; off < 8; off++)
        for (int n = 0; n + off <= MAXN; n += n < 40 ? 1 : 37) {
            memcpy(a, g0, sizeof a);
            memcpy(b, g0, sizeof b);
            model_geglu_ref(a + off, u + off, n);
            model_geglu_avx2(b + off, u + off, n);
            CHECK_MSG(memcmp(a, b, sizeof a) == 0, "n %d offset %d", n, off);
            /* plain GELU (u NULL): the same values as the table times 1 */
            memcpy(a, g0, sizeof a);
            memcpy(b, g0, sizeof b);
            model_geglu_ref(a + off, NULL, n);
            model_geglu_avx2(b + off, NULL, n);
            CHECK_MSG(memcmp(a, b, sizeof a) == 0, "gelu n %d offset %d", n, off);
            for (int i = 0; i < n; i++)
                CHECK_MSG(a[off + i] == model_gelu(g0[off + i]), "gelu n %d element %d", n, i);
            n_cases++;
        }
    /* every F16 value in the table's range once: each table word and half */
    static float all[1 << 16], ua[1 << 16], ra[1 << 16];
    int m = 0;
    for (uint32_t h = 0; h < (1u << 16); h++) {
        const float x = quant_f16_to_f32((uint16_t)h);
        if (x == x) all[m++] = x; /* NaNs left out: any NaN is a right answer */
    }
    for (int i = 0; i < m; i++) ua[i] = 1.0f;
    memcpy(ra, all, sizeof(float) * (size_t)m);
    model_geglu_ref(ra, ua, m);
    model_geglu_avx2(all, ua, m);
    CHECK_MSG(memcmp(ra, all, sizeof(float) * (size_t)m) == 0, "the F16 sweep differs");
    printf("%d lengths and offsets, %d F16 inputs: AVX2 equal to the reference\n", n_cases, m);
#endif
    return test_finish("model/geglu");
}
