/* quant_traits.dot_rows (many rows against one vector, the variant's own order) agrees with the
 * reference vec_dot of every row to float rounding: within 1e-6 of the sum of |products| (the
 * bound of any summation order), for lengths around the vector width, tails of 1..15, row counts
 * around the kernels' 4-row passes, and row strides wider than the rows. */
#include "quant/quant.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 5);
    const int64_t lens[] = {1, 7, 15, 16, 17, 64, 100, 257};
    const int64_t counts[] = {1, 3, 4, 5, 9, 64};
    int n_checked = 0;
    for (int v = 0; v < quant_n_variants(); v++) {
        const quant_traits *q = quant_variant_get(v, GGUF_T_F32);
        if (!q || !q->dot_rows) continue;
        const quant_traits *ref = quant_get_ref(GGUF_T_F32);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                const int64_t n = lens[li], nr = counts[ci], stride = n + 3;
                float *w = malloc(sizeof(float) * (size_t)(stride * nr));
                float *x = malloc(sizeof(float) * (size_t)n);
                float *y = malloc(sizeof(float) * (size_t)(nr + 1));
                for (int64_t i = 0; i < stride * nr; i++) w[i] = (float)test_rng_normal(&rng);
                for (int64_t i = 0; i < n; i++) x[i] = (float)test_rng_normal(&rng);
                y[nr] = -1.0f;
                q->dot_rows(n, nr, w, (size_t)stride * sizeof(float), x, y);
                for (int64_t r = 0; r < nr; r++) {
                    float want;
                    ref->vec_dot(n, &want, w + r * stride, x);
                    double mag = 0;
                    for (int64_t i = 0; i < n; i++) mag += fabs((double)w[r * stride + i] * x[i]);
                    CHECK_MSG(fabs((double)y[r] - want) <= 1e-6 * mag + 1e-30,
                              "%s n=%lld rows=%lld row %lld: %.9g vs %.9g", quant_variant_name(v),
                              (long long)n, (long long)nr, (long long)r, y[r], want);
                }
                CHECK(y[nr] == -1.0f); /* nothing past the rows */
                free(w);
                free(x);
                free(y);
                n_checked++;
            }
    }
    printf("%d shapes checked (kernel set %s)\n", n_checked, quant_isa());
    return test_finish("quant/dot_rows");
}
