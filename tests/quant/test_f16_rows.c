/* Every variant's F16 row conversions give the reference's bits: all 65,536 halves to float, and
 * float to half over random bit patterns (every exponent: subnormal results, rounding ties,
 * overflow to infinity, infinities and NaNs) plus values right at the rounding boundaries. */
#include "quant/quant.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    const quant_traits *ref = quant_get_ref(GGUF_T_F16);
    enum { N = 65536 };
    static uint16_t h[N], h2[N];
    static float f[N], g[N];
    test_rng rng;
    test_rng_seed(&rng, 5);
    int n_variants = 0;
    for (int v = 1; v < quant_n_variants(); v++) {
        const quant_traits *q = quant_variant_get(v, GGUF_T_F16);
        if (!q || (q->to_float == ref->to_float && q->from_float == ref->from_float)) continue;
        n_variants++;
        for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
        ref->to_float(h, f, N);
        q->to_float(h, g, N);
        CHECK_MSG(memcmp(f, g, sizeof f) == 0, "%s: F16 to_float differs", quant_variant_name(v));
        for (int pass = 0; pass < 32; pass++) {
            for (int i = 0; i < N; i++) {
                uint32_t bits = (uint32_t)(test_rng_uniform(&rng) * 4294967296.0);
                if (pass % 2) /* values near the half range: ties, subnormals, overflow */
                    bits = (bits & 0x80001FFFu) | ((uint32_t)(101 + (i % 44)) << 23) |
                           (bits & 0x7FE000u);
                memcpy(&f[i], &bits, 4);
            }
            ref->from_float(f, h, N - pass);
            q->from_float(f, h2, N - pass);
            int bad = -1;
            for (int i = 0; i < N - pass && bad < 0; i++)
                if (h[i] != h2[i]) bad = i;
            CHECK_MSG(bad < 0, "%s: F16 from_float of %a: reference %04x, variant %04x",
                      quant_variant_name(v), bad < 0 ? 0.0 : (double)f[bad], bad < 0 ? 0 : h[bad],
                      bad < 0 ? 0 : h2[bad]);
        }
    }
    printf("F16 rows: %d variants with their own conversions\n", n_variants);
#if defined(__x86_64__)
    if (core_cpu_features() & CORE_CPU_F16C) CHECK(n_variants > 0);
#endif
    return test_finish("quant/f16_rows");
}
