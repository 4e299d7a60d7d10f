/* AVX2 dots of the K-quant formats Q2_K..Q6_K against Q8_K.
 *
 * Levels are handled as unsigned bytes (maddubs multiplies unsigned by signed); a format's offset
 * (Q3_K: 4, Q6_K: 32) comes back through Q8_K's block sums: sum(sc*(u-o)*y) =
 * sum(sc*u*y) - o*sum_g(sc_g*bsum_g). Each super-block's integer sum is therefore exact and the
 * float scaling is done per super-block in the reference's order, so results are bit-identical to
 * the scalar kernels. */
#include "quant/x86/avx2_util.h"

/* 32 unsigned levels times 32 activations; the first 16 products scaled by s0, the rest by s1:
 * 8 x int32 partial sums. */
static inline __m256i scaled_dot32(__m256i u, const int8_t *y, int s0, int s1) {
    __m256i p = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)y));
    __m256i sc = _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
    return _mm256_madd_epi16(p, sc);
}

/* Bits k..k+width-1 of every byte, as unsigned bytes. */
static inline __m256i bits_of(__m256i v, int k, int mask) {
    return _mm256_and_si256(_mm256_srli_epi16(v, k), _mm256_set1_epi8((char)mask));
}

/* sum_g w_g * bsums_g for 16 int16 weights. */
static inline int weighted_bsums16(const quant_block_q8_k *y, __m256i w16) {
    __m256i bs = _mm256_loadu_si256(
        (const __m256i *)((const unsigned char *)y + offsetof(quant_block_q8_k, bsums)));
    return qx_hsum_epi32(_mm256_madd_epi16(bs, w16));
}

static inline int weighted_bsums(const quant_block_q8_k *y, const int8_t *sc) {
    return weighted_bsums16(y, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)));
}

static void vec_dot_q2_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q2_k *x = vx;
    const quant_block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                int g = 8 * h + 2 * j;
                acc = _mm256_add_epi32(
                    acc, scaled_dot32(bits_of(qv, 2 * j, 3), y[i].qs + 128 * h + 32 * j,
                                      x[i].scales[g] & 0xF, x[i].scales[g + 1] & 0xF));
            }
        }
        __m128i s16 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const int imin = weighted_bsums16(&y[i], _mm256_cvtepu8_epi16(_mm_and_si128(
                                                     _mm_srli_epi16(s16, 4), _mm_set1_epi8(0x0F))));
        const float d = y[i].d * qx_h2f(x[i].d);
        const float dmin = y[i].d * qx_h2f(x[i].dmin);
        const float a = d * (float)qx_hsum_epi32(acc);
        const float b = dmin * (float)imin;
        sum += a - b;
    }
    *s = sum;
}

static void vec_dot_q3_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q3_k *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t sc[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        quant_q3k_scales(x[i].scales, sc);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                int g = 8 * h + 2 * j;
                __m256i u = _mm256_or_si256(bits_of(qv, 2 * j, 3),
                                            _mm256_slli_epi16(bits_of(hm, 4 * h + j, 1), 2));
                acc = _mm256_add_epi32(
                    acc, scaled_dot32(u, y[i].qs + 128 * h + 32 * j, sc[g], sc[g + 1]));
            }
        }
        const int isum = qx_hsum_epi32(acc) - 4 * weighted_bsums(&y[i], sc);
        const float t = qx_h2f(x[i].d) * y[i].d * (float)isum;
        sum += t;
    }
    *s = sum;
}

/* Q4_K/Q5_K: levels of chunk c (64 values) come as two 32-byte vectors from the caller. */
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

static inline float dot_k45(const void *block, uint16_t d16, uint16_t dmin16, const uint8_t *s12,
                            const quant_block_q8_k *y, k45_levels_fn levels) {
    uint64_t sc8, m8;
    quant_k4_unpack(s12, &sc8, &m8);
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        const int s_lo = (int)((sc8 >> (16 * c)) & 0xFF),
                  s_hi = (int)((sc8 >> (16 * c + 8)) & 0xFF);
        __m256i lo, hi;
        levels(block, c, &lo, &hi);
        acc = _mm256_add_epi32(acc, scaled_dot32(lo, y->qs + 64 * c, s_lo, s_lo));
        acc = _mm256_add_epi32(acc, scaled_dot32(hi, y->qs + 64 * c + 32, s_hi, s_hi));
    }
    const int imin = qx_k4_mins_dot(m8, y);
    const float d = qx_h2f(d16) * y->d, dmin = qx_h2f(dmin16) * y->d;
    const float a = d * (float)qx_hsum_epi32(acc);
    const float b = dmin * (float)imin;
    return a - b;
}

static void vec_dot_q4_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_k *x = vx;
    const quant_block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++)
        sum += dot_k45(&x[i], x[i].d, x[i].dmin, x[i].scales, &y[i], q4k_levels);
    *s = sum;
}

static void vec_dot_q5_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q5_k *x = vx;
    const quant_block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++)
        sum += dot_k45(&x[i], x[i].d, x[i].dmin, x[i].scales, &y[i], q5k_levels);
    *s = sum;
}

static void vec_dot_q6_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q6_k *x = vx;
    const quant_block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const int8_t *sc = x[i].scales;
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql[2] = {_mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h)),
                             _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32))};
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            for (int k = 0; k < 4; k++) {
                int g = 8 * h + 2 * k;
                __m256i u = _mm256_or_si256(bits_of(ql[k & 1], 4 * (k >> 1), 0xF),
                                            _mm256_slli_epi16(bits_of(qh, 2 * k, 3), 4));
                acc = _mm256_add_epi32(
                    acc, scaled_dot32(u, y[i].qs + 128 * h + 32 * k, sc[g], sc[g + 1]));
            }
        }
        const int isum = qx_hsum_epi32(acc) - 32 * weighted_bsums(&y[i], sc);
        const float t = qx_h2f(x[i].d) * y[i].d * (float)isum;
        sum += t;
    }
    *s = sum;
}

void quant_x86_avx2_install_kquants(quant_traits *t) {
    t[GGUF_T_Q2_K].vec_dot = vec_dot_q2_k;
    t[GGUF_T_Q3_K].vec_dot = vec_dot_q3_k;
    t[GGUF_T_Q4_K].vec_dot = vec_dot_q4_k;
    t[GGUF_T_Q5_K].vec_dot = vec_dot_q5_k;
    t[GGUF_T_Q6_K].vec_dot = vec_dot_q6_k;
}
