/* AVX-512 (BW) kernels of IQ4_XS: the dot against Q8_K and tiles of one weight row against up to
 * eight activation rows (prompt batches; a decode step is a tile of one token).
 *
 * A super-block's 256 codes become four registers of signed levels (pshufb through the 16
 * levels), laid out as the activations are: per 32, elements 0..15 (low nibbles) then 16..31
 * (high nibbles). AVX-512 has no byte sign instruction, so the products take |level| as the
 * unsigned operand of maddubs and the activations negated where the level is negative (a masked
 * subtract); no int16 pair can saturate (127 * 127 * 2 < 32767). madd with the 6-bit scales
 * widens to int32. The super-block's integer sum is exact and its float step is quant_iq_term, as
 * in the reference, so the results are the reference's bits. Decoding the weights is most of a
 * dot's work; in a tile each decoded super-block serves every token of the tile. */
#include "quant/x86/avx2_util.h"

#define IT_ALWAYS static inline __attribute__((always_inline))
#define IT_RN     8 /* tokens per decoded super-block */

typedef struct iq4_sb {
    __m512i mag[4];   /* |level| */
    __mmask64 neg[4]; /* level < 0 */
    __m512i sc[4];    /* int16 scale per pair: 256-bit half h of step k is 32 * (2k + h) */
} iq4_sb;

/* int16 lane i of step k takes scale 2k + i / 16 */
static __m512i iq4_scale_idx[4];

static void iq4_init_idx(void) {
    for (int k = 0; k < 4; k++) {
        int16_t lanes[32];
        for (int i = 0; i < 32; i++) lanes[i] = (int16_t)(2 * k + i / 16);
        iq4_scale_idx[k] = _mm512_loadu_si512((const void *)lanes);
    }
}

IT_ALWAYS void iq4xs_decode(const quant_block_iq4_xs *b, __m512i tab, iq4_sb *o) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i ia = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i ib = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for (int h = 0; h < 2; h++) {
        const __m512i q = _mm512_loadu_si512((const void *)(b->qs + 64 * h));
        const __m512i lo = _mm512_and_si512(q, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        const __m512i c0 = _mm512_permutex2var_epi64(lo, ia, hi);
        const __m512i c1 = _mm512_permutex2var_epi64(lo, ib, hi);
        /* the levels of codes 0..7 are the negative ones (iq4_init checks it) */
        o->mag[2 * h] = _mm512_shuffle_epi8(tab, c0);
        o->mag[2 * h + 1] = _mm512_shuffle_epi8(tab, c1);
        o->neg[2 * h] = _mm512_testn_epi8_mask(c0, _mm512_set1_epi8(8));
        o->neg[2 * h + 1] = _mm512_testn_epi8_mask(c1, _mm512_set1_epi8(8));
    }
    /* the 8 six-bit scales as bytes: low nibbles from scales_l (scale 2j in the low nibble of
     * byte j, 2j + 1 in the high one), top bits from scales_h (2 per scale) */
    uint32_t l4;
    memcpy(&l4, b->scales_l, 4);
    const uint64_t lo = _pdep_u64(l4, 0x0F0F0F0F0F0F0F0Full) | /* nibble i -> byte i */
                        _pdep_u64(b->scales_h, 0x3030303030303030ull);
    const __m512i s16 = _mm512_sub_epi16(
        _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)lo))),
        _mm512_set1_epi16(32));
    for (int k = 0; k < 4; k++) o->sc[k] = _mm512_permutexvar_epi16(iq4_scale_idx[k], s16);
}

IT_ALWAYS int32_t iq4xs_isum(const iq4_sb *w, const int8_t *y) {
    __m512i acc = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m512i yv = _mm512_loadu_si512((const void *)(y + 64 * k));
        const __m512i ys = _mm512_mask_sub_epi8(yv, w->neg[k], _mm512_setzero_si512(), yv);
        acc =
            _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w->mag[k], ys), w->sc[k]));
    }
    return _mm512_reduce_add_epi32(acc);
}

/* |level| per code */
static int8_t iq4_mag[16];
static bool iq4_sign_by_code; /* levels of codes 0..7 negative, 8..15 not */

static inline __m512i iq4_table(void) {
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)iq4_mag));
}

static void vec_dot_iq4_xs(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq4_xs *x = vx;
    const quant_block_q8_k *y = vy;
    const __m512i tab = iq4_table();
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        iq4_sb w;
        iq4xs_decode(&x[i], tab, &w);
        sum += quant_iq_term(qx_h2f(x[i].d), y[i].d, iq4xs_isum(&w, y[i].qs));
    }
    *s = sum;
}

/* One weight row against rn activation rows (xs bytes apart); pf: a row to prefetch. */
IT_ALWAYS void iq4xs_tile(int rn, int64_t nb, const quant_block_iq4_xs *x, const unsigned char *yv,
                          size_t xs, float *out, size_t ys, const unsigned char *pf) {
    const __m512i tab = iq4_table();
    float sum[IT_RN] = {0};
    for (int64_t i = 0; i < nb; i++) {
        if (pf)
            for (int k = 0; k < 3; k++)
                _mm_prefetch((const char *)pf + sizeof *x * (size_t)i + 64 * (size_t)k,
                             _MM_HINT_T0);
        iq4_sb w;
        iq4xs_decode(&x[i], tab, &w);
        const float dx = qx_h2f(x[i].d);
#pragma GCC unroll 8
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)(yv + (size_t)t * xs) + i;
            sum[t] += quant_iq_term(dx, yb->d, iq4xs_isum(&w, yb->qs));
        }
    }
    for (int t = 0; t < rn; t++) out[(size_t)t * ys] = sum[t];
}

#define IT_AHEAD 4 /* rows ahead to prefetch */

static void gemm_iq4_xs(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws,
                        const void *vx, size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QKK;
    for (int64_t r = 0; r < nr; r++) {
        const quant_block_iq4_xs *wr = (const quant_block_iq4_xs *)(w + (size_t)r * ws);
        const unsigned char *pf = r + IT_AHEAD < nr ? w + (size_t)(r + IT_AHEAD) * ws : NULL;
        for (int64_t t = 0; t < nt; t += IT_RN, pf = NULL) {
            const unsigned char *xt = x + (size_t)t * xs;
            float *out = y + (size_t)t * ys + r;
            /* constant shapes: the compiler keeps a tile's sums in registers */
            if (nt - t >= IT_RN)
                iq4xs_tile(IT_RN, nb, wr, xt, xs, out, ys, pf);
            else if (nt - t == 1)
                iq4xs_tile(1, nb, wr, xt, xs, out, ys, pf);
            else
                iq4xs_tile((int)(nt - t), nb, wr, xt, xs, out, ys, pf);
        }
    }
}

void quant_x86_avx512_install_iquants(quant_traits *t) {
    iq4_init_idx();
    iq4_sign_by_code = true;
    for (int c = 0; c < 16; c++) {
        const int v = quant_iq4nl_values[c];
        iq4_mag[c] = (int8_t)(v < 0 ? -v : v);
        iq4_sign_by_code &= (v < 0) == (c < 8);
    }
    if (!iq4_sign_by_code) return; /* (the AVX2 kernels stay) */
    t[GGUF_T_IQ4_XS].vec_dot = vec_dot_iq4_xs;
    t[GGUF_T_IQ4_XS].gemm = gemm_iq4_xs;
}
