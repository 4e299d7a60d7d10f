/* GELU-gated rows (GEGLU: gemma's FFN), g = gelu(g) * u, and plain GELU rows (u NULL: bert's
 * FFN), with ggml's table GELU (model_gelu): the scalar reference and an AVX2 version that looks
 * the table up eight lanes at a time, bit-identical to it (tests/model/test_geglu.c). The FFN of
 * a Gemma model calls it on n_ff values per token, where the scalar lookup cost ~7% of a token's
 * time; in a BERT encoder the plain GELU was 13% of an embedding request's time. */
#include "model.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GEGLU_X86 1
#else
#define GEGLU_X86 0
#endif

/* u == NULL: g = gelu(g) (bert's FFN, model_op_gelu) */
void model_geglu_ref(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = u ? model_gelu(g[i]) * u[i] : model_gelu(g[i]);
}

#if GEGLU_X86
__attribute__((target("avx2,f16c"))) void model_geglu_avx2(float *g, const float *u, int64_t n) {
    const int32_t *tab = (const int32_t *)(const void *)model_gelu_table();
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
    const __m256i one = _mm256_set1_epi32(1), low16 = _mm256_set1_epi32(0xFFFF);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        /* F16 bits of x (round to nearest even, as quant_f32_to_f16), widened to indices */
        const __m256i idx = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
        /* no 16-bit gather: the 32-bit word holding entry idx (never past the table's end),
         * then its low or high half */
        __m256i e = _mm256_i32gather_epi32(tab, _mm256_srli_epi32(idx, 1), 4);
        e = _mm256_srlv_epi32(e, _mm256_slli_epi32(_mm256_and_si256(idx, one), 4));
        e = _mm256_and_si256(e, low16);
        const __m128i h =
            _mm_packus_epi32(_mm256_castsi256_si128(e), _mm256_extracti128_si256(e, 1));
        __m256 y = _mm256_cvtph_ps(h);
        y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, hi, _CMP_GE_OQ));
        y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LE_OQ));
        _mm256_storeu_ps(g + i, u ? _mm256_mul_ps(y, _mm256_loadu_ps(u + i)) : y);
    }
    model_geglu_ref(g + i, u ? u + i : NULL, n - i);
}

static bool use_avx2(void) {
    static int cached; /* 0 unknown, 1 scalar, 2 avx2 */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        const uint32_t need = CORE_CPU_AVX2 | CORE_CPU_F16C;
        v = (core_cpu_usable() & need) == need ? 2 : 1;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v == 2;
}
#endif

void model_geglu(float *g, const float *u, int64_t n) {
#if GEGLU_X86
    if (use_avx2()) return model_geglu_avx2(g, u, n);
#endif
    model_geglu_ref(g, u, n);
}
