/* The tile kernels (gemm_body.h) with AVX-512 VNNI on 256-bit registers (AVX512VL): one
 * vpdpbusd per 32 products. vpdpbusd multiplies unsigned by signed bytes, so signed weights are
 * offset by 128 (x ^ 0x80) and the lanes start from -128 * (sum of the activations in the lane),
 * which leaves exactly sum(x * y); Q4_0 nibbles are already unsigned and start from -8 * sum. */
#include "quant/x86/avx2_util.h"

static inline __m256i neg_lane_sums(__m256i y, char k) {
    return _mm256_sub_epi32(_mm256_setzero_si256(),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(k), y));
}

static inline __m256i neg_lane_sums2(__m256i a, __m256i b, char k) {
    const __m256i kk = _mm256_set1_epi8(k);
    return _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), kk, a), kk, b));
}

#define GB_Q8_PREP(w)            _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80))
#define GB_Q8_INIT(y)            neg_lane_sums(y, (char)0x80)
#define GB_Q8_DOT(init, p, w, y) _mm256_dpbusd_epi32(init, p, y)
#define GB_U4_INIT2(ylo, yhi)    neg_lane_sums2(ylo, yhi, 8)
#define GB_U4_DOT2(init, lo, ylo, hi, yhi)                                                         \
    _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(init, lo, ylo), hi, yhi)
#define GB_Q4_RN                    8
#define GB_F16_ZMM                  1
#define GB_F16_FALLBACK(n, s, w, x) quant_x86_avx2_vec_dot_batch_f16(n, s, w, x)
#include "quant/x86/gemm_body.h"

void quant_x86_avx512_install_gemm(quant_traits *t) {
    t[GGUF_T_Q8_0].gemm = gemm_q8_0;
    t[GGUF_T_Q4_0].gemm = gemm_q4_0;
    t[GGUF_T_F16].gemm = gemm_f16;
}
