/* The tile kernels (gemm_body.h) with AVX2: maddubs (unsigned x signed bytes into int16 pairs)
 * and madd with ones. Signed Q8_0 weights use the sign trick (|w| times y with w's sign) so no
 * int16 pair can saturate; Q4_0 nibbles (0..15) go in as they are and 8 * sum(y) comes off. */
#include "quant/x86/avx2_util.h"

/* u1*y1 + u2*y2 summed in fours; nibbles (<= 15) keep every int16 pair far from saturation. */
static inline __m256i qx_dot_u8s8_2(__m256i u1, __m256i y1, __m256i u2, __m256i y2) {
    return _mm256_madd_epi16(
        _mm256_add_epi16(_mm256_maddubs_epi16(u1, y1), _mm256_maddubs_epi16(u2, y2)),
        _mm256_set1_epi16(1));
}

static inline __m256i lane_sums2(__m256i ylo, __m256i yhi) {
    const __m256i k = _mm256_set1_epi8(8);
    return qx_dot_u8s8_2(k, ylo, k, yhi);
}

#define GB_Q8_PREP(w)                      _mm256_sign_epi8(w, w)
#define GB_Q8_INIT(y)                      _mm256_setzero_si256()
#define GB_Q8_DOT(init, p, w, y)           ((void)(init), qx_dot_u8s8(p, _mm256_sign_epi8(y, w)))
#define GB_U4_INIT2(ylo, yhi)              lane_sums2(ylo, yhi)
#define GB_U4_DOT2(init, lo, ylo, hi, yhi) _mm256_sub_epi32(qx_dot_u8s8_2(lo, ylo, hi, yhi), init)
#include "quant/x86/gemm_body.h"

void quant_x86_avx2_install_gemm(quant_traits *t) {
    t[GGUF_T_Q8_0].gemm = gemm_q8_0;
    t[GGUF_T_Q4_0].gemm = gemm_q4_0;
}
