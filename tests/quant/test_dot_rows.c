/* quant_traits.dot_rows (many rows against one vector):
 *  - F32 (the variant's own order) agrees with the reference vec_dot of every row to float
 *    rounding: within 1e-6 of the sum of |products| (the bound of any summation order);
 *  - F16 gives every row the variant's own vec_dot bits (the reference-order attention relies
 *    on it), including lengths past the kernel's stack copy of x;
 *  - F16 dot_rows_n (several vectors at once, the fast path's attention) is within summation
 *    rounding of the exact sum (the reference kernel's, in double), gives a (row, vector) pair
 *    the same bits whatever nx and the other vectors are (a decode entry's heads are grouped
 *    differently as the batch changes), and reads nothing past n (NaN there stays out);
 * for lengths around the vector width, tails of 1..15 and 1..63, row counts around the kernels'
 * passes, and row strides wider than the rows. */
#include "quant/quant.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_f32(const quant_traits *q, const char *vname, int64_t n, int64_t nr,
                      test_rng *rng) {
    const quant_traits *ref = quant_get_ref(GGUF_T_F32);
    const int64_t stride = n + 3;
    float *w = malloc(sizeof(float) * (size_t)(stride * nr));
    float *x = malloc(sizeof(float) * (size_t)n);
    float *y = malloc(sizeof(float) * (size_t)(nr + 1));
    for (int64_t i = 0; i < stride * nr; i++) w[i] = (float)test_rng_normal(rng);
    for (int64_t i = 0; i < n; i++) x[i] = (float)test_rng_normal(rng);
    y[nr] = -1.0f;
    q->dot_rows(n, nr, w, (size_t)stride * sizeof(float), x, y);
    for (int64_t r = 0; r < nr; r++) {
        float want;
        ref->vec_dot(n, &want, w + r * stride, x);
        double mag = 0;
        for (int64_t i = 0; i < n; i++) mag += fabs((double)w[r * stride + i] * x[i]);
        CHECK_MSG(fabs((double)y[r] - want) <= 1e-6 * mag + 1e-30,
                  "%s F32 n=%lld rows=%lld row %lld: %.9g vs %.9g", vname, (long long)n,
                  (long long)nr, (long long)r, y[r], want);
    }
    CHECK(y[nr] == -1.0f); /* nothing past the rows */
    free(w);
    free(x);
    free(y);
}

static void check_f16(const quant_traits *q, const char *vname, int64_t n, int64_t nr,
                      test_rng *rng) {
    const int64_t stride = n + 5;
    float *tmp = malloc(sizeof(float) * (size_t)(stride * nr));
    uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(stride * nr));
    uint16_t *x = malloc(sizeof(uint16_t) * (size_t)n);
    float *y = malloc(sizeof(float) * (size_t)(nr + 1));
    for (int64_t i = 0; i < stride * nr; i++) tmp[i] = (float)test_rng_normal(rng);
    q->from_float(tmp, w, stride * nr);
    for (int64_t i = 0; i < n; i++) tmp[i] = (float)test_rng_uniform(rng);
    q->from_float(tmp, x, n);
    y[nr] = -1.0f;
    q->dot_rows(n, nr, w, (size_t)stride * sizeof(uint16_t), x, y);
    for (int64_t r = 0; r < nr; r++) {
        float want;
        q->vec_dot(n, &want, w + r * stride, x);
        CHECK_MSG(memcmp(&want, &y[r], sizeof want) == 0,
                  "%s F16 n=%lld rows=%lld row %lld: %.9g vs vec_dot's %.9g", vname, (long long)n,
                  (long long)nr, (long long)r, y[r], want);
    }
    CHECK(y[nr] == -1.0f);
    free(tmp);
    free(w);
    free(x);
    free(y);
}

static void check_rows_n(const quant_traits *q, const char *vname, int64_t n, int64_t nr, int nx,
                         test_rng *rng) {
    const quant_traits *ref = quant_get_ref(GGUF_T_F16);
    const int64_t stride = n + 5, xs = n + 3, ys = nr + 2;
    float *tmp = malloc(sizeof(float) * (size_t)(stride * nr));
    uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(stride * nr));
    float *x = malloc(sizeof(float) * (size_t)(xs * nx));
    float *y = malloc(sizeof(float) * (size_t)(ys * nx));
    float *want = malloc(sizeof(float) * (size_t)(ys * nx));
    float *one = malloc(sizeof(float) * (size_t)ys);
    for (int64_t i = 0; i < stride * nr; i++) tmp[i] = (float)test_rng_normal(rng);
    ref->from_float(tmp, w, stride * nr);
    const uint16_t nan16 = 0x7e00;
    for (int64_t r = 0; r < nr; r++) /* a cache row's padding may hold anything */
        for (int64_t i = n; i < stride; i++) w[r * stride + i] = nan16;
    for (int64_t i = 0; i < xs * nx; i++) x[i] = i % xs < n ? (float)test_rng_uniform(rng) : NAN;
    for (int64_t i = 0; i < ys * nx; i++) y[i] = -1.0f;
    q->dot_rows_n(n, nr, w, (size_t)stride * 2, nx, x, (size_t)xs, y, (size_t)ys);
    ref->dot_rows_n(n, nr, w, (size_t)stride * 2, nx, x, (size_t)xs, want, (size_t)ys);
    /* the kernel's partial sums hold n / 16 + 1 terms, then a tree of 4 levels: Higham's bound
     * for that depth */
    const double bound = ((double)(n / 16) + 8.0) * 0x1p-24;
    for (int j = 0; j < nx; j++) {
        for (int64_t r = 0; r < nr; r++) {
            double mag = 0;
            for (int64_t i = 0; i < n; i++)
                mag += fabs((double)tmp[r * stride + i] * x[j * xs + i]);
            const float got = y[j * ys + r], exact = want[j * ys + r];
            CHECK_MSG(isfinite(got) && fabs((double)got - exact) <= bound * mag + 1e-30,
                      "%s F16 rows_n n=%lld rows=%lld nx=%d (%d, %lld): %.9g vs %.9g", vname,
                      (long long)n, (long long)nr, nx, j, (long long)r, got, exact);
        }
        CHECK(y[j * ys + nr] == -1.0f); /* nothing past the rows */
        /* the same vector alone: the same bits */
        q->dot_rows_n(n, nr, w, (size_t)stride * 2, 1, x + j * xs, (size_t)xs, one, (size_t)ys);
        CHECK_MSG(memcmp(one, y + j * ys, sizeof(float) * (size_t)nr) == 0,
                  "%s F16 rows_n n=%lld nx=%d: vector %d alone gives other bits", vname,
                  (long long)n, nx, j);
    }
    free(tmp);
    free(w);
    free(x);
    free(y);
    free(want);
    free(one);
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 5);
    const int64_t lens[] = {1, 7, 15, 16, 17, 64, 100, 128, 257, 4096, 4097, 5000};
    const int64_t counts[] = {1, 3, 4, 5, 9, 64};
    int n_checked = 0;
    for (int v = 0; v < quant_n_variants(); v++) {
        const quant_traits *q32 = quant_variant_get(v, GGUF_T_F32);
        const quant_traits *q16 = quant_variant_get(v, GGUF_T_F16);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                if (lens[li] >= 4096 && counts[ci] > 9) continue;
                if (q32 && q32->dot_rows)
                    check_f32(q32, quant_variant_name(v), lens[li], counts[ci], &rng), n_checked++;
                if (q16 && q16->dot_rows)
                    check_f16(q16, quant_variant_name(v), lens[li], counts[ci], &rng), n_checked++;
            }
    }
    const int64_t lens_n[] = {1, 7, 8, 9, 15, 16, 17, 24, 63, 64, 65, 100, 257};
    const int64_t counts_n[] = {1, 3, 5, 64};
    for (int v = 0; v < quant_n_variants(); v++) {
        const quant_traits *q16 = quant_variant_get(v, GGUF_T_F16);
        if (!q16 || !q16->dot_rows_n) continue;
        for (size_t li = 0; li < sizeof lens_n / sizeof lens_n[0]; li++)
            for (size_t ci = 0; ci < sizeof counts_n / sizeof counts_n[0]; ci++)
                for (int nx = 1; nx <= 9; nx++)
                    check_rows_n(q16, quant_variant_name(v), lens_n[li], counts_n[ci], nx, &rng),
                        n_checked++;
    }
    printf("%d shapes checked (kernel set %s)\n", n_checked, quant_isa());
    return test_finish("quant/dot_rows");
}
