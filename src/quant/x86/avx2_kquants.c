/* AVX2 dots of the K-quant formats Q2_K..Q6_K against Q8_K.
 *
 * Integer part: levels are unsigned bytes (maddubs multiplies unsigned by signed), 32 values per
 * step, scaled per group of 16 by madd; int32 lane k of a super-block's sum holds elements
 * 4k..4k+3 of every 32-value step. Offsets (Q3_K: 4, Q6_K: 32) are taken off per lane.
 *
 * Float part: exactly the reference engine's x86 order (llama.cpp c392e509 built for AVX2):
 * per super-block one FMA of d * lanes into 8 float lanes, the min terms as that engine folds
 * them (Q2_K: 8 more lanes in the same accumulator first; Q4_K: a 4-lane accumulator; Q5_K: a
 * contracted scalar), and the lanes summed at the end. Matching its rounding, not only its
 * math, is what keeps activations quantized downstream identical. */
#include "quant/x86/avx2_util.h"

#include <math.h>

/* 32 unsigned levels u times 32 activations, minus off*y (per int16 pair), the first 16 products
 * scaled by s0 and the rest by s1: 8 x int32. */
static inline __m256i scaled_dot32(__m256i u, const int8_t *y, int off, int s0, int s1) {
    const __m256i yv = _mm256_loadu_si256((const __m256i *)y);
    __m256i p = _mm256_maddubs_epi16(u, yv);
    if (off) p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(_mm256_set1_epi8((char)off), yv));
    __m256i sc = _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
    return _mm256_madd_epi16(p, sc);
}

/* Bits k..k+width-1 of every byte, as unsigned bytes. */
static inline __m256i bits_of(__m256i v, int k, int mask) {
    return _mm256_and_si256(_mm256_srli_epi16(v, k), _mm256_set1_epi8((char)mask));
}

static void vec_dot_q2_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q2_k *x = vx;
    const quant_block_q8_k *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * qx_h2f(x[i].d);
        const float dmin = -y[i].d * qx_h2f(x[i].dmin);
        const __m128i s16 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(s16, 4), _mm_set1_epi8(0x0F));
        acc = qx_fma_lanes(dmin, qx_bsums_prod(mins, &y[i]), acc);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                int g = 8 * h + 2 * j;
                sumi = _mm256_add_epi32(
                    sumi, scaled_dot32(bits_of(qv, 2 * j, 3), y[i].qs + 128 * h + 32 * j, 0,
                                       x[i].scales[g] & 0xF, x[i].scales[g + 1] & 0xF));
            }
        }
        acc = qx_fma_lanes(d, sumi, acc);
    }
    *s = qx_hsum_ps(acc);
}

static void vec_dot_q3_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q3_k *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t sc[16];
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * qx_h2f(x[i].d);
        quant_q3k_scales(x[i].scales, sc);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                int g = 8 * h + 2 * j;
                __m256i u = _mm256_or_si256(bits_of(qv, 2 * j, 3),
                                            _mm256_slli_epi16(bits_of(hm, 4 * h + j, 1), 2));
                sumi = _mm256_add_epi32(
                    sumi, scaled_dot32(u, y[i].qs + 128 * h + 32 * j, 4, sc[g], sc[g + 1]));
            }
        }
        acc = qx_fma_lanes(d, sumi, acc);
    }
    *s = qx_hsum_ps(acc);
}

/* Q4_K/Q5_K: levels of chunk c (64 values) as two 32-byte vectors. */
typedef void (*k45_levels_fn)(const void *block, int c, __m256i *lo, __m256i *hi);

static inline void q4k_levels(const void *vb, int c, __m256i *lo, __m256i *hi) {
    const quant_block_q4_k *b = vb;
    __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
    *lo = bits_of(q, 0, 0xF);
    *hi = bits_of(q, 4, 0xF);
}

static inline void q5k_levels(const void *vb, int c, __m256i *lo, __m256i *hi) {
    const quant_block_q5_k *b = vb;
    __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
    __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
    *lo = _mm256_or_si256(bits_of(q, 0, 0xF), _mm256_slli_epi16(bits_of(qh, 2 * c, 1), 4));
    *hi = _mm256_or_si256(bits_of(q, 4, 0xF), _mm256_slli_epi16(bits_of(qh, 2 * c + 1, 1), 4));
}

static inline __m256i k45_lanes(const void *block, uint64_t sc8, const quant_block_q8_k *y,
                                k45_levels_fn levels) {
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        const int s_lo = (int)((sc8 >> (16 * c)) & 0xFF),
                  s_hi = (int)((sc8 >> (16 * c + 8)) & 0xFF);
        __m256i lo, hi;
        levels(block, c, &lo, &hi);
        sumi = _mm256_add_epi32(
            sumi, _mm256_add_epi32(scaled_dot32(lo, y->qs + 64 * c, 0, s_lo, s_lo),
                                   scaled_dot32(hi, y->qs + 64 * c + 32, 0, s_hi, s_hi)));
    }
    return sumi;
}

static void vec_dot_q4_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_k *x = vx;
    const quant_block_q8_k *y = vy;
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * qx_h2f(x[i].d);
        const float dmin = -y[i].d * qx_h2f(x[i].dmin);
        uint64_t sc8, m8;
        quant_k4_unpack(x[i].scales, &sc8, &m8);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(qx_k4_mins_prod(m8, &y[i])), acc_m);
        acc = qx_fma_lanes(d, k45_lanes(&x[i], sc8, &y[i], q4k_levels), acc);
    }
    *s = qx_hsum_ps(acc) + qx_hsum4_ps(acc_m);
}

static void vec_dot_q5_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q5_k *x = vx;
    const quant_block_q8_k *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * qx_h2f(x[i].d);
        const float dmin = -y[i].d * qx_h2f(x[i].dmin);
        uint64_t sc8, m8;
        quant_k4_unpack(x[i].scales, &sc8, &m8);
        __m128i p = qx_k4_mins_prod(m8, &y[i]);
        p = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
        p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(2, 3, 0, 1)));
        mins = fmaf(dmin, (float)_mm_cvtsi128_si32(p), mins);
        acc = qx_fma_lanes(d, k45_lanes(&x[i], sc8, &y[i], q5k_levels), acc);
    }
    *s = qx_hsum_ps(acc) + mins;
}

static void vec_dot_q6_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q6_k *x = vx;
    const quant_block_q8_k *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * qx_h2f(x[i].d);
        const int8_t *sc = x[i].scales;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql[2] = {_mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h)),
                             _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32))};
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            for (int k = 0; k < 4; k++) {
                int g = 8 * h + 2 * k;
                __m256i u = _mm256_or_si256(bits_of(ql[k & 1], 4 * (k >> 1), 0xF),
                                            _mm256_slli_epi16(bits_of(qh, 2 * k, 3), 4));
                sumi = _mm256_add_epi32(
                    sumi, scaled_dot32(u, y[i].qs + 128 * h + 32 * k, 32, sc[g], sc[g + 1]));
            }
        }
        acc = qx_fma_lanes(d, sumi, acc);
    }
    *s = qx_hsum_ps(acc);
}

void quant_x86_avx2_install_kquants(quant_traits *t) {
    t[GGUF_T_Q2_K].vec_dot = vec_dot_q2_k;
    t[GGUF_T_Q3_K].vec_dot = vec_dot_q3_k;
    t[GGUF_T_Q4_K].vec_dot = vec_dot_q4_k;
    t[GGUF_T_Q5_K].vec_dot = vec_dot_q5_k;
    t[GGUF_T_Q6_K].vec_dot = vec_dot_q6_k;
}
