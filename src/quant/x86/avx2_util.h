/* Small AVX2 building blocks shared by the x86 kernel files (all compiled with at least
 * -mavx2 -mfma -mf16c). Private to src/quant/x86/. */
#ifndef SHIMMY_QUANT_AVX2_UTIL_H
#define SHIMMY_QUANT_AVX2_UTIL_H

#include "quant/quant_impl.h"

#include <immintrin.h>

static inline float qx_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int qx_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

static inline float qx_max_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* The reference engine's reduction of 16 float lanes (gcc's _mm512_reduce_add_ps) with lanes
 * 0..7 in lo and 8..15 in hi: lane i + lane i+8, the two halves of that, then (0+2) + (1+3). */
static inline float qx_reduce16(__m256 lo, __m256 hi) {
    __m256 t = _mm256_add_ps(lo, hi);
    __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
    return _mm_cvtss_f32(w) + _mm_cvtss_f32(_mm_shuffle_ps(w, w, 1));
}

static inline __m256 qx_abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

/* fp16 -> f32 of one value (exact, F16C). */
static inline float qx_h2f(uint16_t h) {
    return _cvtsh_ss(h);
}

/* Unsigned bytes u (<= 127 in practice) times signed bytes s, summed in fours: 8 x int32. */
static inline __m256i qx_dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* Signed bytes times signed bytes (neither -128), summed in fours: 8 x int32. */
static inline __m256i qx_dot_s8s8(__m256i a, __m256i b) {
    return qx_dot_u8s8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* 32 nibbles of 16 bytes: element j < 16 is the low nibble of byte j, j >= 16 the high nibble of
 * byte j - 16 (the legacy block order). */
static inline __m256i qx_nibbles32(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* Byte j is 0xFF when bit j of the 32-bit word is set. */
static inline __m256i qx_bits32(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
}

/* 32 int32 (four vectors, in order) -> 32 saturated int8. */
static inline __m256i qx_pack32(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    __m256i a = _mm256_packs_epi32(v0, v1), b = _mm256_packs_epi32(v2, v3);
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b),
                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Lane t = the sum of the 8 lanes of p[t] (the integer sums of 8 tokens side by side). */
static inline __m256i qx_reduce8_epi32(const __m256i p[8]) {
    const __m256i a =
        _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i b =
        _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

/* ---- K-quant epilogues in the reference engine's float order ---- */

static inline __m256i qx_load_bsums(const quant_block_q8_k *y) {
    return _mm256_loadu_si256(
        (const __m256i *)((const unsigned char *)y + offsetof(quant_block_q8_k, bsums)));
}

/* acc += d * lanes (8 int32 lanes converted to float), one FMA. */
static inline __m256 qx_fma_lanes(float d, __m256i lanes, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
}

static inline float qx_hsum4_ps(__m128 v) {
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
}

/* Q4_K/Q5_K mins against Q8_K's group sums, as 4 int32 lanes: lane k = m_2k*(b_4k + b_4k+1) +
 * m_2k+1*(b_4k+2 + b_4k+3), the 8 mins being the bytes of m. */
static inline __m128i qx_k4_mins_prod(uint64_t m, const quant_block_q8_k *y) {
    __m256i bs = qx_load_bsums(y);
    __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m));
    return _mm_madd_epi16(m16, pairs);
}

/* 16 scales (int8) times the 16 group sums, as 8 int32 lanes (lane k: groups 2k, 2k+1). */
static inline __m256i qx_bsums_prod(__m128i scales8, const quant_block_q8_k *y) {
    return _mm256_madd_epi16(_mm256_cvtepi8_epi16(scales8), qx_load_bsums(y));
}

/* A tile product driver over tiles of up to 2 rows x 2 tokens, each shape a constant so the
 * tile stays in registers (the F16 and BF16 batched-order kernels): inputs not a multiple of
 * STEP go pair by pair through DOT, which the tile's elements equal bit for bit. */
#define QX_GEMM_2X2(fn, tile, STEP, DOT)                                                           \
    static void fn(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,   \
                   size_t xs, float *y, size_t ys) {                                               \
        const unsigned char *w = vw, *x = vx;                                                      \
        if (n % (STEP)) {                                                                          \
            for (int64_t t = 0; t < nt; t++)                                                       \
                for (int64_t r = 0; r < nr; r++)                                                   \
                    DOT(n, &y[(size_t)t * ys + r], w + (size_t)r * ws, x + (size_t)t * xs);        \
            return;                                                                                \
        }                                                                                          \
        for (int64_t r = 0; r < nr; r += 2) {                                                      \
            const int rm = nr - r < 2 ? 1 : 2;                                                     \
            for (int64_t t = 0; t < nt; t += 2) {                                                  \
                const int rn = nt - t < 2 ? 1 : 2;                                                 \
                const unsigned char *wr = w + (size_t)r * ws, *xt = x + (size_t)t * xs;            \
                float *yt = y + (size_t)t * ys + r;                                                \
                if (rm == 2 && rn == 2)                                                            \
                    tile(2, 2, n, wr, ws, xt, xs, yt, ys);                                         \
                else if (rm == 2)                                                                  \
                    tile(2, 1, n, wr, ws, xt, xs, yt, ys);                                         \
                else if (rn == 2)                                                                  \
                    tile(1, 2, n, wr, ws, xt, xs, yt, ys);                                         \
                else                                                                               \
                    tile(1, 1, n, wr, ws, xt, xs, yt, ys);                                         \
            }                                                                                      \
        }                                                                                          \
    }

#endif
