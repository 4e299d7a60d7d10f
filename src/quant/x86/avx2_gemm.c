/* The tile kernels (gemm_body.h) with AVX2: maddubs (unsigned x signed bytes into int16 pairs)
 * and madd with ones. Signed Q8_0 weights use the sign trick (|w| times y with w's sign) so no
 * int16 pair can saturate; Q4_0 nibbles (0..15) go in as they are and 8 * sum(y) comes off. */
#include "quant/x86/avx2_util.h"

static inline __m256i lane_sums(__m256i y, char k) {
    return qx_dot_u8s8(_mm256_set1_epi8(k), y);
}

#define GB_NAME(x)               avx2_##x
#define GB_Q8_PREP(w)            _mm256_sign_epi8(w, w)
#define GB_Q8_INIT(y)            _mm256_setzero_si256()
#define GB_Q8_DOT(init, p, w, y) ((void)(init), qx_dot_u8s8(p, _mm256_sign_epi8(y, w)))
#define GB_U4_INIT(y)            lane_sums(y, 8)
#define GB_U4_DOT(init, u, y)    _mm256_sub_epi32(qx_dot_u8s8(u, y), init)
#include "quant/x86/gemm_body.h"

void quant_x86_avx2_install_gemm(quant_traits *t) {
    t[GGUF_T_Q8_0].gemm = avx2_gemm_q8_0;
    t[GGUF_T_Q4_0].gemm = avx2_gemm_q4_0;
}
