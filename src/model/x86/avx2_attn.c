/* AVX2+FMA+F16C versions of the tiled attention dots (model_dot_tiled_*): the 16 lanes of the
 * reference order are two 256-bit accumulators, reduced in the same order as the scalar version,
 * so results are bit-identical to it (tests/model/test_ops.c holds them equal). */
#include "model/model.h"

#include <immintrin.h>

static float reduce(__m256 lo, __m256 hi) {
    const __m256 t = _mm256_add_ps(lo, hi); /* lane i + lane i+8 */
    const __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

void model_dot_tiled_f32_avx2(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi);
    }
    *s = reduce(lo, hi);
}

static __m256 load_h8(const unsigned char *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

void model_dot_tiled_f16_avx2(int64_t n, float *s, const void *x, const void *y) {
    const unsigned char *a = x, *b = y;
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        lo = _mm256_fmadd_ps(load_h8(a + 2 * i), load_h8(b + 2 * i), lo);
        hi = _mm256_fmadd_ps(load_h8(a + 2 * i + 16), load_h8(b + 2 * i + 16), hi);
    }
    *s = reduce(lo, hi);
}
