/* The tile kernels (gemm_body.h, and F16 below) with AVX2: maddubs (unsigned x signed bytes into
 * int16 pairs) and madd with ones. Signed Q8_0 weights use the sign trick (|w| times y with w's
 * sign) so no int16 pair can saturate; Q4_0 nibbles (0..15) go in as they are and 8 * sum(y) comes
 * off. */
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

/* ---- F16 x F16 (batched order): tiles of up to 2 rows x 2 tokens ----
 * vec_dot_batch's steps per (row, token): 16 lanes as two 8-lane accumulators, one FMA each per
 * 16 inputs, qx_reduce16 at the end (AVX-512's one 16-lane accumulator, the same bits). What
 * the tile saves is the per-pair call and half the conversions: each loaded row and token
 * serves two products. Attention's batched path (a prompt's tokens against the cache) is the
 * user: before this tile it was one call per (cell, token). */
GB_ALWAYS void f16_tile2(int rm, int rn, int64_t n, const unsigned char *w, size_t ws,
                         const unsigned char *x, size_t xs, float *y, size_t ys) {
    __m256 acc[2][2][2];
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++)
#pragma GCC unroll 2
        for (int t = 0; t < 2; t++) acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256 wv[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 2
            for (int r = 0; r < rm; r++)
                wv[r] = _mm256_cvtph_ps(
                    _mm_loadu_si128((const __m128i *)(w + (size_t)r * ws + 2 * (i + 8 * h))));
#pragma GCC unroll 2
            for (int t = 0; t < rn; t++) {
                const __m256 xv = _mm256_cvtph_ps(
                    _mm_loadu_si128((const __m128i *)(x + (size_t)t * xs + 2 * (i + 8 * h))));
#pragma GCC unroll 2
                for (int r = 0; r < rm; r++)
                    acc[r][t][h] = _mm256_fmadd_ps(wv[r], xv, acc[r][t][h]);
            }
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < rm; r++)
#pragma GCC unroll 2
        for (int t = 0; t < rn; t++)
            y[(size_t)t * ys + r] = qx_reduce16(acc[r][t][0], acc[r][t][1]);
}

QX_GEMM_2X2(gemm_f16, f16_tile2, 16, quant_x86_avx2_vec_dot_batch_f16)

void quant_x86_avx2_install_gemm(quant_traits *t) {
    t[GGUF_T_Q8_0].gemm = gemm_q8_0;
    t[GGUF_T_Q4_0].gemm = gemm_q4_0;
    t[GGUF_T_F16].gemm = gemm_f16;
}
