/* vec_dot_x4 (four activation rows per weight row, for prompt processing) gives exactly the
 * bits of four vec_dot calls of the same variant, for every variant and type that has it: it
 * exists to overlap independent float chains, never to change one. Odd block counts, every
 * misalignment of the weight row and odd strides between the activation rows. */
#include "quant/quant.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static void check_type(int v, const quant_traits *var, test_rng *rng, int *n_checked) {
    const quant_traits *wref = quant_get_ref(var->type);
    const quant_traits *aref = quant_get_ref(var->vec_dot_type);
    static const int64_t blocks[] = {1, 3, 4, 5, 8, 9, 33, 96};
    for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
        const int64_t n = blocks[bi] * var->block_size;
        const size_t wbytes = (size_t)(n / var->block_size) * var->type_size;
        const size_t abytes = (size_t)(n / aref->block_size) * aref->type_size;
        for (int off = 0; off < 3; off++) {
            const size_t stride = abytes + (size_t)off * 3; /* odd strides: unaligned rows */
            float *xf = malloc((size_t)n * sizeof *xf);
            unsigned char *w = malloc(wbytes + 8), *a = malloc(4 * stride + 8);
            for (int64_t i = 0; i < n; i++) xf[i] = (float)test_rng_normal(rng);
            wref->from_float(xf, w + off, n);
            for (int r = 0; r < 4; r++) {
                for (int64_t i = 0; i < n; i++) xf[i] = (float)(test_rng_normal(rng) * (1 + r));
                aref->from_float(xf, a + off + (size_t)r * stride, n);
            }
            float got[4], want[4];
            var->vec_dot_x4(n, got, w + off, a + off, stride);
            for (int r = 0; r < 4; r++) var->vec_dot(n, &want[r], w + off, a + off + r * stride);
            for (int r = 0; r < 4; r++)
                CHECK_MSG(memcmp(&got[r], &want[r], sizeof got[r]) == 0,
                          "%s %s n=%lld off=%d row %d: %.9g, vec_dot %.9g", quant_variant_name(v),
                          var->name, (long long)n, off, r, got[r], want[r]);
            (*n_checked)++;
            free(xf);
            free(w);
            free(a);
        }
    }
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 2024);
    int n_checked = 0;
    for (int v = 0; v < quant_n_variants(); v++)
        for (uint32_t type = 0; type < GGUF_T_COUNT; type++) {
            const quant_traits *var = quant_variant_get(v, type);
            if (var && var->vec_dot_x4) check_type(v, var, &rng, &n_checked);
        }
    printf("vec_dot_x4: %d row sets compared\n", n_checked);
    /* On x86 at least the AVX2 Q4_0 kernel exists; elsewhere there may be none yet. */
#if defined(__x86_64__)
    if (core_cpu_features() & CORE_CPU_AVX2) CHECK(n_checked > 0);
#endif
    return test_finish("quant/dot_x4");
}
