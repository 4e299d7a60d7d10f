/* The tile kernels (gemm_body.h) with AVX-VNNI (the VEX form of vpdpbusd, on cores that have
 * it without AVX-512): the arithmetic of the AVX-512 VNNI file on 256-bit registers, signed
 * weights offset by 128 and the lanes started from -128 (or -8) times the activations' sums. */
#include "quant/x86/avx2_util.h"

static inline __m256i neg_lane_sums(__m256i y, char k) {
    return _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(k), y));
}

static inline __m256i neg_lane_sums2(__m256i a, __m256i b, char k) {
    const __m256i kk = _mm256_set1_epi8(k);
    return _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), kk, a), kk, b));
}

#define GB_Q8_PREP(w)            _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80))
#define GB_Q8_INIT(y)            neg_lane_sums(y, (char)0x80)
#define GB_Q8_DOT(init, p, w, y) _mm256_dpbusd_avx_epi32(init, p, y)
#define GB_U4_INIT2(ylo, yhi)    neg_lane_sums2(ylo, yhi, 8)
#define GB_U4_DOT2(init, lo, ylo, hi, yhi)                                                         \
    _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(init, lo, ylo), hi, yhi)
#include "quant/x86/gemm_body.h"

void quant_x86_avxvnni_install(quant_traits *t) {
    t[GGUF_T_Q8_0].gemm = gemm_q8_0;
    t[GGUF_T_Q4_0].gemm = gemm_q4_0;
}
