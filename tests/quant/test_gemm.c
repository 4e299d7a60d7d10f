/* The tile kernels (quant_traits.gemm) give, for every element, exactly the bits of the same
 * variant's vec_dot_batch on that (weight row, activation row) pair: whole tiles, partial tiles
 * of rows and of tokens, one token, odd block counts, misaligned rows and odd strides, and an
 * output stride wider than the row count. A tile may change how fast a product runs, never its
 * result. */
#include "quant/quant.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static void check_shape(int v, const quant_traits *var, test_rng *rng, int64_t n, int64_t nr,
                        int64_t nt, int off, int *n_checked) {
    const quant_traits *wref = quant_get_ref(var->type);
    const quant_traits *aref = quant_get_ref(var->vec_dot_type);
    const size_t wrow = quant_row_bytes(wref, n) + (size_t)off;
    const size_t arow = quant_row_bytes(aref, n) + (size_t)off * 5;
    const size_t ys = (size_t)nr + 3;
    float *xf = malloc((size_t)n * sizeof *xf);
    unsigned char *w = malloc(wrow * (size_t)nr + 8), *a = malloc(arow * (size_t)nt + 8);
    float *got = malloc(ys * (size_t)nt * sizeof *got);
    for (int64_t r = 0; r < nr; r++) {
        for (int64_t i = 0; i < n; i++) xf[i] = (float)test_rng_normal(rng);
        wref->quantize(xf, w + off + (size_t)r * wrow, n);
    }
    for (int64_t t = 0; t < nt; t++) {
        for (int64_t i = 0; i < n; i++) xf[i] = (float)(test_rng_normal(rng) * (1 + t % 3));
        aref->from_float(xf, a + off + (size_t)t * arow, n);
    }
    for (size_t i = 0; i < ys * (size_t)nt; i++) got[i] = -12345.0f;
    var->gemm(n, nr, nt, w + off, wrow, a + off, arow, got, ys);
    int bad = 0;
    for (int64_t t = 0; t < nt; t++) {
        for (int64_t r = 0; r < nr && bad < 3; r++) {
            float want;
            var->vec_dot_batch(n, &want, w + off + (size_t)r * wrow, a + off + (size_t)t * arow);
            const float g = got[(size_t)t * ys + (size_t)r];
            if (memcmp(&g, &want, sizeof g) != 0) {
                bad++;
                CHECK_MSG(0,
                          "%s %s n=%lld nr=%lld nt=%lld off=%d (row %lld, token %lld): %.9g, "
                          "vec_dot_batch %.9g",
                          quant_variant_name(v), var->name, (long long)n, (long long)nr,
                          (long long)nt, off, (long long)r, (long long)t, g, want);
            }
        }
        for (size_t r = (size_t)nr; r < ys; r++) /* outside the product: untouched */
            CHECK(got[(size_t)t * ys + r] == -12345.0f);
    }
    (*n_checked)++;
    free(xf);
    free(w);
    free(a);
    free(got);
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 7);
    int n_checked = 0;
    static const int64_t rows[] = {1, 3, 4, 5, 8, 9, 13, 16, 21};
    static const int64_t toks[] = {1, 2, 3, 4, 5, 7, 9};
    for (int v = 0; v < quant_n_variants(); v++)
        for (uint32_t type = 0; type < GGUF_T_COUNT; type++) {
            const quant_traits *var = quant_variant_get(v, type);
            /* (types without a quantizer, the codebook i-quants, have their tiles checked on
             * random blocks by test_iquant_dot) */
            if (!var || !var->gemm || !quant_get_ref(type)->quantize) continue;
            const int64_t bs = var->block_size == 1 ? 16 : var->block_size;
            const int64_t sizes[] = {bs, 3 * bs, 8 * bs, 33 * bs, var->block_size == 1 ? 40 : bs};
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
                for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                    for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++)
                        check_shape(v, var, &rng, sizes[si], rows[ri], toks[ti],
                                    (int)((ri + ti) % 3), &n_checked);
        }
    printf("gemm: %d shapes compared\n", n_checked);
#if defined(__x86_64__)
    if (core_cpu_features() & CORE_CPU_AVX2) CHECK(n_checked > 0);
#endif
    return test_finish("quant/gemm");
}
