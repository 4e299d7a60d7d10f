/* AVX-512BW dots of Q4_K, Q5_K and Q6_K against Q8_K: 64 levels per step (one 512-bit register
 * of unsigned bytes), maddubs against the activations, madd against a vector of the per-group
 * scales. Integer sums are exact per super-block and scaled in the reference's order, so the
 * results are bit-identical to the scalar and AVX2 kernels. */
#include "quant/x86/avx2_util.h"

/* Byte-wise (v >> k) & mask with k per 256-bit half (the shift runs on 16-bit lanes; the mask
 * removes what crossed from the neighbouring byte). */
static inline __m512i bits2(__m512i v, int k_lo, int k_hi, int mask) {
    __m512i k =
        _mm512_inserti64x4(_mm512_set1_epi16((short)k_lo), _mm256_set1_epi16((short)k_hi), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(v, k), _mm512_set1_epi8((char)mask));
}

static inline __m512i dup256(const uint8_t *p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

/* 64 unsigned levels times 64 activations; int16 lane i of the products (elements 2i, 2i+1)
 * is scaled by scale16 lane i. */
static inline __m512i scaled_dot64(__m512i u, const int8_t *y, __m512i scale16) {
    __m512i p = _mm512_maddubs_epi16(u, _mm512_loadu_si512((const void *)y));
    return _mm512_madd_epi16(p, scale16);
}

/* ---- Q4_K / Q5_K ---- */

typedef __m512i (*k45_levels_fn)(const void *block, int c);

static inline __m512i q4k_levels(const void *vb, int c) {
    const quant_block_q4_k *b = vb;
    return bits2(dup256(b->qs + 32 * c), 0, 4, 0xF);
}

static inline __m512i q5k_levels(const void *vb, int c) {
    const quant_block_q5_k *b = vb;
    __m512i lo4 = bits2(dup256(b->qs + 32 * c), 0, 4, 0xF);
    __m512i h = bits2(dup256(b->qh), 2 * c, 2 * c + 1, 1);
    return _mm512_or_si512(lo4, _mm512_slli_epi16(h, 4));
}

/* int16 lane i of chunk c's products (64 values = sub-blocks 2c, 2c+1) takes scale 2c + i/16. */
static const int16_t k45_scale_idx[4][32] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
     3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
     5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
     7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
};

static inline float dot_k45(const void *block, uint16_t d16, uint16_t dmin16, const uint8_t *s12,
                            const quant_block_q8_k *y, k45_levels_fn levels) {
    uint64_t sc, m;
    quant_k4_unpack(s12, &sc, &m);
    const __m512i sc16 =
        _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
    __m512i acc = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
        __m512i scv =
            _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)k45_scale_idx[c]), sc16);
        acc = _mm512_add_epi32(acc, scaled_dot64(levels(block, c), y->qs + 64 * c, scv));
    }
    const int imin = qx_k4_mins_dot(m, y);
    const float d = qx_h2f(d16) * y->d, dmin = qx_h2f(dmin16) * y->d;
    const float a = d * (float)_mm512_reduce_add_epi32(acc);
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

/* ---- Q6_K ---- */

static void vec_dot_q6_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q6_k *x = vx;
    const quant_block_q8_k *y = vy;
    /* int16 lane i of step q (64 values = groups 4q..4q+3) takes scale 4q + i/8 */
    __m512i idx[4];
    for (int q = 0; q < 4; q++) {
        int16_t lanes[32];
        for (int i = 0; i < 32; i++) lanes[i] = (int16_t)(4 * q + i / 8);
        idx[q] = _mm512_loadu_si512((const void *)lanes);
    }
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        const __m512i sc512 = _mm512_castsi256_si512(sc16);
        __m512i acc = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            /* low nibbles of ql[64h..64h+63] are values 128h + 0..63, high nibbles 64..127 */
            __m512i ql = _mm512_loadu_si512((const void *)(x[i].ql + 64 * h));
            __m512i qh = dup256(x[i].qh + 32 * h);
            for (int half = 0; half < 2; half++) {
                __m512i lo4 =
                    _mm512_and_si512(half ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0F));
                __m512i hi2 = bits2(qh, 4 * half, 4 * half + 2, 3);
                __m512i u = _mm512_or_si512(lo4, _mm512_slli_epi16(hi2, 4));
                __m512i scv = _mm512_permutexvar_epi16(idx[2 * h + half], sc512);
                acc = _mm512_add_epi32(acc, scaled_dot64(u, y[i].qs + 128 * h + 64 * half, scv));
            }
        }
        /* the offset 32 of every level: 32 * sum_g(sc_g * bsum_g) */
        __m256i bs = _mm256_loadu_si256(
            (const __m256i *)((const unsigned char *)&y[i] + offsetof(quant_block_q8_k, bsums)));
        const int corr = qx_hsum_epi32(_mm256_madd_epi16(bs, sc16));
        const int isum = _mm512_reduce_add_epi32(acc) - 32 * corr;
        const float t = qx_h2f(x[i].d) * y[i].d * (float)isum;
        sum += t;
    }
    *s = sum;
}

void quant_x86_avx512_install_kquants(quant_traits *t) {
    t[GGUF_T_Q4_K].vec_dot = vec_dot_q4_k;
    t[GGUF_T_Q5_K].vec_dot = vec_dot_q5_k;
    t[GGUF_T_Q6_K].vec_dot = vec_dot_q6_k;
}
