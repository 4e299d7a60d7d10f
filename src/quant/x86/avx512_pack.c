/* AVX-512 VNNI kernels of the repacked layouts (quant/ref/pack.c describes them; the scalar
 * kernels there are the reference these are tested against).
 *
 * One zmm holds 4 levels of each of 16 rows; vpdpbusd with the token's 4 activations broadcast
 * from memory adds each row's 4 products into its own lane, so a sub-block of 16 rows costs 4
 * (Q6_K) or 8 (Q4_K) dot instructions per token and one multiply by the rows' scales: against
 * the row-at-a-time kernels (maddubs, madd, a horizontal fold and a float step per row) about a
 * quarter of the instructions for the same exact integer sums. A tile of tokens shares each
 * decoded sub-block; the float step is one per super-block for 16 rows at once. */
#include "quant/x86/avx2_util.h"

#define PK_ALWAYS static inline __attribute__((always_inline))
#define PK_TOK    4 /* tokens per tile: each with two dot chains, eight chains in flight */

PK_ALWAYS __m512i bc32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

PK_ALWAYS __m512i dot4(__m512i acc, __m512i q, const int8_t *y) {
    return _mm512_dpbusd_epi32(acc, q, bc32(y));
}

/* A decode step streams each matrix once; the hardware prefetchers stop at every 4 KiB page, so
 * the first token tile fetches what lies PK_AHEAD bytes ahead itself (later tiles find it in
 * cache): one record's lines per record. */
#define PK_AHEAD 4608
PK_ALWAYS void prefetch_record(const uint8_t *o, size_t bytes, bool on) {
    if (on)
        for (size_t l = 0; l < bytes; l += 64)
            _mm_prefetch((const char *)o + PK_AHEAD + l, _MM_HINT_T0);
}

PK_ALWAYS __mmask16 row_mask(int64_t g, int64_t r0, int64_t r1) {
    const int64_t a = r0 > g * 16 ? r0 - g * 16 : 0, b = r1 < g * 16 + 16 ? r1 - g * 16 : 16;
    return (__mmask16)(((1u << b) - 1) & ~((1u << a) - 1));
}

/* Per row, acc += (d * a - m * b) * dy in double, lanes 0-7 in acc[0], 8-15 in acc[1]: the
 * products of an f16 scale and a 32-bit sum are exact in double, so each super-block adds its
 * exact value rounded once, and the row's sum is rounded to float once at the end. Q4_K's two
 * terms nearly cancel (the mins are about half the levels' range); in float the result would
 * carry the rounding of the large terms, and every such error can flip a later activation's
 * 8-bit rounding. */
PK_ALWAYS void add_scaled(__m512d acc[2], __m512 d, __m512i a, __m512 m, __m512i b, float dy) {
    const __m512d y = _mm512_set1_pd((double)dy);
    const __m512d lo = _mm512_fnmadd_pd(
        _mm512_cvtps_pd(_mm512_castps512_ps256(m)), _mm512_cvtepi32_pd(_mm512_castsi512_si256(b)),
        _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(d)),
                      _mm512_cvtepi32_pd(_mm512_castsi512_si256(a))));
    const __m512d hi =
        _mm512_fnmadd_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(m, 1)),
                         _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(b, 1)),
                         _mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(d, 1)),
                                       _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(a, 1))));
    acc[0] = _mm512_fmadd_pd(lo, y, acc[0]);
    acc[1] = _mm512_fmadd_pd(hi, y, acc[1]);
}

PK_ALWAYS void store_acc(float *y, __mmask16 mask, const __m512d acc[2]) {
    const __m512 v = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(acc[0])),
                                        _mm512_cvtpd_ps(acc[1]), 1);
    _mm512_mask_storeu_ps(y, mask, v);
}

/* The products of a layout with blocks of BLOCK inputs (BYTES per group and block): whole
 * groups of the row range, the tokens in tiles of PK_TOK (constant shapes for a full tile and
 * for one token, so the compiler keeps the tile in registers); the first tile prefetches. */
#define PK_GEMM(fn, tile, BYTES, BLOCK)                                                            \
    static void fn(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w, const void *x, \
                   size_t xs, float *y, size_t ys) {                                               \
        const int64_t nb = n_in / (BLOCK);                                                         \
        for (int64_t g = r0 / 16; g * 16 < r1; g++) {                                              \
            const uint8_t *gw = (const uint8_t *)w + (size_t)(g * nb) * (BYTES);                   \
            const __mmask16 mask = row_mask(g, r0, r1);                                            \
            for (int64_t t = 0; t < nt; t += PK_TOK) {                                             \
                const uint8_t *xt = (const uint8_t *)x + (size_t)t * xs;                           \
                float *yt = y + (size_t)t * ys + g * 16;                                           \
                if (nt - t >= PK_TOK)                                                              \
                    tile(PK_TOK, nb, gw, xt, xs, yt, ys, mask, t == 0);                            \
                else if (nt - t == 1)                                                              \
                    tile(1, nb, gw, xt, xs, yt, ys, mask, t == 0);                                 \
                else                                                                               \
                    tile((int)(nt - t), nb, gw, xt, xs, yt, ys, mask, t == 0);                     \
            }                                                                                      \
        }                                                                                          \
    }

/* ---- q4_k.x16 ---- */

PK_ALWAYS void q4_k_tile(int nt, int64_t nb, const uint8_t *gw, const uint8_t *x, size_t xs,
                         float *y, size_t ys, __mmask16 mask, bool pf) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512d acc[PK_TOK][2];
#pragma GCC unroll 8
    for (int t = 0; t < PK_TOK; t++) acc[t][0] = acc[t][1] = _mm512_setzero_pd();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *o = gw + i * QUANT_Q4_K_X16_BYTES;
        prefetch_record(o, QUANT_Q4_K_X16_BYTES, pf);
        __m512i isum[PK_TOK];
#pragma GCC unroll 8
        for (int t = 0; t < PK_TOK; t++) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m512i sc =
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(o + 64 + 16 * j)));
            const uint8_t *q = o + 320 + 256 * j;
            __m512i lo[4], hi[4];
#pragma GCC unroll 8
            for (int k = 0; k < 4; k++) {
                const __m512i v = _mm512_loadu_si512((const void *)(q + 64 * k));
                lo[k] = _mm512_and_si512(v, m4);
                hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const quant_block_q8_k *yb = (const quant_block_q8_k *)(x + (size_t)t * xs) + i;
                const int8_t *yq = yb->qs + 32 * j;
                __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int k = 0; k < 4; k++) {
                    a = dot4(a, lo[k], yq + 4 * k);
                    b = dot4(b, hi[k], yq + 16 + 4 * k);
                }
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_add_epi32(a, b), sc));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o));
        const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(o + 32)));
        __m512i mn[4];
#pragma GCC unroll 8
        for (int p = 0; p < 4; p++)
            mn[p] = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(o + 192 + 32 * p)));
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)(x + (size_t)t * xs) + i;
            /* the mins pair with the 32-input sums: bsums[2j] + bsums[2j+1] */
            const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)yb->bsums),
                                              _mm_loadu_si128((const __m128i *)(yb->bsums + 8)));
            __m512i ms = _mm512_madd_epi16(mn[0], _mm512_broadcastd_epi32(bs));
            ms = _mm512_add_epi32(
                ms, _mm512_madd_epi16(mn[1], _mm512_broadcastd_epi32(_mm_srli_si128(bs, 4))));
            ms = _mm512_add_epi32(
                ms, _mm512_madd_epi16(mn[2], _mm512_broadcastd_epi32(_mm_srli_si128(bs, 8))));
            ms = _mm512_add_epi32(
                ms, _mm512_madd_epi16(mn[3], _mm512_broadcastd_epi32(_mm_srli_si128(bs, 12))));
            add_scaled(acc[t], dw, isum[t], mw, ms, yb->d);
        }
    }
    for (int t = 0; t < nt; t++) store_acc(y + (size_t)t * ys, mask, acc[t]);
}

PK_GEMM(gemm_q4_k_x16, q4_k_tile, QUANT_Q4_K_X16_BYTES, QUANT_QKK)

/* ---- q6_k.x16 ---- */

/* Levels of group k (0..3) of a pair's half: low nibbles l, high bits at 2k of qh, moved to
 * bits 4-5 (16-bit shifts; the mask drops what crossed bytes). */
PK_ALWAYS __m512i q6_hi2(__m512i qh, int k) {
    const __m512i m = _mm512_set1_epi8(0x30);
    switch (k) {
    case 0: return _mm512_and_si512(_mm512_slli_epi16(qh, 4), m);
    case 1: return _mm512_and_si512(_mm512_slli_epi16(qh, 2), m);
    case 2: return _mm512_and_si512(qh, m);
    default: return _mm512_and_si512(_mm512_srli_epi16(qh, 2), m);
    }
}

PK_ALWAYS void q6_k_tile(int nt, int64_t nb, const uint8_t *gw, const uint8_t *x, size_t xs,
                         float *y, size_t ys, __mmask16 mask, bool pf) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512d acc[PK_TOK][2];
#pragma GCC unroll 8
    for (int t = 0; t < PK_TOK; t++) acc[t][0] = acc[t][1] = _mm512_setzero_pd();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *o = gw + i * QUANT_Q6_K_X16_BYTES;
        prefetch_record(o, QUANT_Q6_K_X16_BYTES, pf);
        __m512i isum[PK_TOK], osum[PK_TOK];
#pragma GCC unroll 8
        for (int t = 0; t < PK_TOK; t++) isum[t] = osum[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int p = 0; p < 8; p++) {
            /* lane r: the int16 scales of sub-blocks 2p, 2p+1 */
            const __m512i sp =
                _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(o + 32 + 32 * p)));
            const __m512i se = _mm512_srai_epi32(_mm512_slli_epi32(sp, 16), 16);
            const __m512i so = _mm512_srai_epi32(sp, 16);
            const uint8_t *ql = o + 288 + 256 * p, *qh = o + 2336 + 128 * p;
            const __m512i h0 = _mm512_loadu_si512((const void *)qh);
            const __m512i h1 = _mm512_loadu_si512((const void *)(qh + 64));
            __m512i ue[4], uo[4];
#pragma GCC unroll 8
            for (int k = 0; k < 4; k++) {
                const __m512i l = _mm512_loadu_si512((const void *)(ql + 64 * k));
                ue[k] = _mm512_or_si512(_mm512_and_si512(l, m4), q6_hi2(h0, k));
                uo[k] =
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), q6_hi2(h1, k));
            }
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const quant_block_q8_k *yb = (const quant_block_q8_k *)(x + (size_t)t * xs) + i;
                const int8_t *yq = yb->qs + 32 * p;
                __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int k = 0; k < 4; k++) {
                    a = dot4(a, ue[k], yq + 4 * k);
                    b = dot4(b, uo[k], yq + 16 + 4 * k);
                }
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(a, se),
                                                                     _mm512_mullo_epi32(b, so)));
                osum[t] = _mm512_add_epi32(osum[t], _mm512_madd_epi16(sp, bc32(yb->bsums + 2 * p)));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o));
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)(x + (size_t)t * xs) + i;
            const __m512i tot = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(osum[t], 5));
            add_scaled(acc[t], dw, tot, _mm512_setzero_ps(), _mm512_setzero_si512(), yb->d);
        }
    }
    for (int t = 0; t < nt; t++) store_acc(y + (size_t)t * ys, mask, acc[t]);
}

PK_GEMM(gemm_q6_k_x16, q6_k_tile, QUANT_Q6_K_X16_BYTES, QUANT_QKK)

/* ---- q4_0.x16, mxfp4.x16, q8_0.x16: blocks of 32 against Q8_0 activations ----
 * One tile for the three: 8 vectors of unsigned levels per block (Q4_0's nibbles; MXFP4's codes
 * looked up as value + 12; Q8_0's values + 128), two dot chains per token, the offset taken off
 * with the block's activation sum, one float FMA with the rows' scale times the token's. */

enum { LEG_Q4_0, LEG_MXFP4, LEG_Q8_0 };

/* sum of the 32 activations of a Q8_0 block, in every lane */
PK_ALWAYS __m512i block_sum(const int8_t *qs) {
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1),
                                          _mm256_loadu_si256((const __m256i *)qs));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
    return _mm512_broadcastd_epi32(h);
}

/* the 16 rows' halved E8M0 scales as floats (quant_e8m0_half: 2^(e - 128), denormal for e < 2) */
PK_ALWAYS __m512 e8m0_half16(const uint8_t *e) {
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)e));
    const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(v, _mm512_set1_epi32(1)), 23);
    const __m512i tiny = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), v);
    const __mmask16 small = _mm512_cmplt_epu32_mask(v, _mm512_set1_epi32(2));
    return _mm512_castsi512_ps(_mm512_mask_blend_epi32(small, normal, tiny));
}

/* offset * sum(y): 8 for Q4_0's nibbles, 12 for MXFP4's shifted values, 128 for Q8_0's */
PK_ALWAYS __m512i block_offset(int kind, __m512i sy) {
    if (kind == LEG_Q4_0) return _mm512_slli_epi32(sy, 3);
    if (kind == LEG_Q8_0) return _mm512_slli_epi32(sy, 7);
    return _mm512_add_epi32(_mm512_slli_epi32(sy, 3), _mm512_slli_epi32(sy, 2));
}

PK_ALWAYS void legacy_tile(int kind, int nt, int64_t nb, const uint8_t *gw, const uint8_t *x,
                           size_t xs, float *y, size_t ys, __mmask16 mask, bool pf) {
    const size_t bytes = kind == LEG_Q4_0    ? QUANT_Q4_0_X16_BYTES
                         : kind == LEG_MXFP4 ? QUANT_MXFP4_X16_BYTES
                                             : QUANT_Q8_0_X16_BYTES;
    const size_t qs_off = kind == LEG_MXFP4 ? 16 : 32; /* the scales: 16 E8M0 or 16 fp16 */
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i tab = _mm512_setzero_si512();
    if (kind == LEG_MXFP4) { /* the codes' values + 12 (0..24), unsigned for vpdpbusd */
        int8_t lut[16];
        for (int i = 0; i < 16; i++) lut[i] = (int8_t)(quant_mxfp4_values[i] + 12);
        tab = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)lut));
    }
    __m512 acc[PK_TOK];
#pragma GCC unroll 8
    for (int t = 0; t < PK_TOK; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *o = gw + i * bytes, *qs = o + qs_off;
        prefetch_record(o, bytes, pf);
        const __m512 dw = kind == LEG_MXFP4
                              ? e8m0_half16(o)
                              : _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o));
        __m512i q[8]; /* steps 0..3: inputs 4k..4k+3; 4..7: inputs 16 + 4(k - 4).. */
#pragma GCC unroll 8
        for (int k = 0; k < 4; k++) {
            if (kind == LEG_Q8_0) {
                q[k] = _mm512_loadu_si512((const void *)(qs + 64 * k));
                q[k + 4] = _mm512_loadu_si512((const void *)(qs + 256 + 64 * k));
                continue;
            }
            const __m512i v = _mm512_loadu_si512((const void *)(qs + 64 * k));
            q[k] = _mm512_and_si512(v, m4);
            q[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if (kind == LEG_MXFP4) {
                q[k] = _mm512_shuffle_epi8(tab, q[k]);
                q[k + 4] = _mm512_shuffle_epi8(tab, q[k + 4]);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + i;
            __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int k = 0; k < 4; k++) {
                a = dot4(a, q[k], yb->qs + 4 * k);
                b = dot4(b, q[k + 4], yb->qs + 16 + 4 * k);
            }
            const __m512i s =
                _mm512_sub_epi32(_mm512_add_epi32(a, b), block_offset(kind, block_sum(yb->qs)));
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(qx_h2f(yb->d)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(y + (size_t)t * ys, mask, acc[t]);
}

#define LEGACY_TILE(name, kind)                                                                    \
    PK_ALWAYS void name(int nt, int64_t nb, const uint8_t *gw, const uint8_t *x, size_t xs,        \
                        float *y, size_t ys, __mmask16 mask, bool pf) {                            \
        legacy_tile(kind, nt, nb, gw, x, xs, y, ys, mask, pf);                                     \
    }
LEGACY_TILE(q4_0_tile, LEG_Q4_0)
LEGACY_TILE(mxfp4_tile, LEG_MXFP4)
LEGACY_TILE(q8_0_tile, LEG_Q8_0)
PK_GEMM(gemm_q4_0_x16, q4_0_tile, QUANT_Q4_0_X16_BYTES, QUANT_QK)
PK_GEMM(gemm_mxfp4_x16, mxfp4_tile, QUANT_MXFP4_X16_BYTES, QUANT_QK)
PK_GEMM(gemm_q8_0_x16, q8_0_tile, QUANT_Q8_0_X16_BYTES, QUANT_QK)

/* The 16-bit layouts' products: two groups per pass where the row range has them, tokens in
 * tiles of PK_TOK_F16 (constant shapes for a full tile and one token); N inputs (F16) or input
 * pairs (BF16) of GROUP bytes per group. */
#define PK_GEMM16(fn, tile, N, GROUP)                                                              \
    static void fn(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w, const void *x, \
                   size_t xs, float *y, size_t ys) {                                               \
        const size_t gbytes = (GROUP);                                                             \
        for (int64_t g = r0 / 16; g * 16 < r1;) {                                                  \
            const int ng = (g + 1) * 16 < r1 ? 2 : 1;                                              \
            const uint8_t *gw = (const uint8_t *)w + (size_t)g * gbytes;                           \
            const __mmask16 m0 = row_mask(g, r0, r1), m1 = ng > 1 ? row_mask(g + 1, r0, r1) : 0;   \
            for (int64_t t = 0; t < nt; t += PK_TOK_F16) {                                         \
                const uint8_t *xt = (const uint8_t *)x + (size_t)t * xs;                           \
                float *yt = y + (size_t)t * ys + g * 16;                                           \
                const int rn = nt - t >= PK_TOK_F16 ? PK_TOK_F16 : (int)(nt - t);                  \
                if (ng == 2 && rn == PK_TOK_F16)                                                   \
                    tile(2, PK_TOK_F16, (N), gw, gbytes, xt, xs, yt, ys, m0, m1, t == 0);          \
                else if (ng == 2 && rn == 1)                                                       \
                    tile(2, 1, (N), gw, gbytes, xt, xs, yt, ys, m0, m1, t == 0);                   \
                else if (ng == 2)                                                                  \
                    tile(2, rn, (N), gw, gbytes, xt, xs, yt, ys, m0, m1, t == 0);                  \
                else if (rn == 1)                                                                  \
                    tile(1, 1, (N), gw, gbytes, xt, xs, yt, ys, m0, m1, t == 0);                   \
                else                                                                               \
                    tile(1, rn, (N), gw, gbytes, xt, xs, yt, ys, m0, m1, t == 0);                  \
            }                                                                                      \
            g += ng;                                                                               \
        }                                                                                          \
    }

/* ---- f16.x16 ---- */

#define PK_TOK_F16 8 /* tokens per tile */

/* acc[g][t] += w_k * x_t[k] over the inputs, one chain per row and token in input order (a
 * token alone or in a tile, one group or two: the same steps, so the same bits). Two groups
 * per pass when the range has them: each broadcast activation then feeds two FMAs, which keeps
 * the loads (one broadcast per token and input) below the FMA rate. */
PK_ALWAYS void f16_tile(int ng, int nt, int64_t n_in, const uint8_t *gb, size_t gbytes,
                        const uint8_t *x, size_t xs, float *y, size_t ys, __mmask16 m0,
                        __mmask16 m1, bool pf) {
    const uint16_t *gw = (const uint16_t *)(const void *)gb;
    const size_t gstride = gbytes / 2; /* elements between the two groups */
    __m512 acc[2][PK_TOK_F16];
#pragma GCC unroll 8
    for (int t = 0; t < PK_TOK_F16; t++) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n_in; k++) {
        if (pf && (k & 1) == 0) {
            _mm_prefetch((const char *)(gw + k * 16) + PK_AHEAD, _MM_HINT_T0);
            if (ng > 1) _mm_prefetch((const char *)(gw + gstride + k * 16) + PK_AHEAD, _MM_HINT_T0);
        }
        const __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(gw + k * 16)));
        const __m512 w1 =
            ng > 1 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(gw + gstride + k * 16)))
                   : w0;
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            const __m512 xv = _mm512_set1_ps(((const float *)(x + (size_t)t * xs))[k]);
            acc[0][t] = _mm512_fmadd_ps(w0, xv, acc[0][t]);
            if (ng > 1) acc[1][t] = _mm512_fmadd_ps(w1, xv, acc[1][t]);
        }
    }
    for (int t = 0; t < nt; t++) {
        _mm512_mask_storeu_ps(y + (size_t)t * ys, m0, acc[0][t]);
        if (ng > 1) _mm512_mask_storeu_ps(y + (size_t)t * ys + 16, m1, acc[1][t]);
    }
}

PK_GEMM16(gemm_f16_x16, f16_tile, n_in, (size_t)n_in * 32)

/* ---- bf16.x16 (AVX512-BF16) ---- */

/* acc[g][t] += pairs of 16 rows' weights . the token's pair, one vdpbf16ps per record: 32
 * products per instruction, in one chain per row and token (batch invariant, as for F16) */
PK_ALWAYS void bf16_tile(int ng, int nt, int64_t n_pairs, const uint8_t *gw, size_t gstride,
                         const uint8_t *x, size_t xs, float *y, size_t ys, __mmask16 m0,
                         __mmask16 m1, bool pf) {
    __m512 acc[2][PK_TOK_F16];
#pragma GCC unroll 8
    for (int t = 0; t < PK_TOK_F16; t++) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    for (int64_t p = 0; p < n_pairs; p++) {
        if (pf) {
            _mm_prefetch((const char *)gw + p * 64 + PK_AHEAD, _MM_HINT_T0);
            if (ng > 1) _mm_prefetch((const char *)gw + gstride + p * 64 + PK_AHEAD, _MM_HINT_T0);
        }
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512((const void *)(gw + p * 64));
        const __m512bh w1 =
            ng > 1 ? (__m512bh)_mm512_loadu_si512((const void *)(gw + gstride + p * 64)) : w0;
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            const __m512bh xv = (__m512bh)bc32(x + (size_t)t * xs + 4 * p);
            acc[0][t] = _mm512_dpbf16_ps(acc[0][t], w0, xv);
            if (ng > 1) acc[1][t] = _mm512_dpbf16_ps(acc[1][t], w1, xv);
        }
    }
    for (int t = 0; t < nt; t++) {
        _mm512_mask_storeu_ps(y + (size_t)t * ys, m0, acc[0][t]);
        if (ng > 1) _mm512_mask_storeu_ps(y + (size_t)t * ys + 16, m1, acc[1][t]);
    }
}

PK_GEMM16(gemm_bf16_x16, bf16_tile, n_in / 2, (size_t)n_in * 32)

/* F32 activations rounded to f16 and back (round to nearest even, as F16C rounds the
 * reference's activations) */
static void f32_via_f16(const float *x, void *vy, int64_t n) {
    float *y = vy;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) y[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

static const quant_pack pack_f16 = {"f16.x16/avx512",   32,          2, GGUF_T_F32, f32_via_f16,
                                    quant_pack_f16_x16, gemm_f16_x16};
static const quant_pack pack_bf16 = {"bf16.x16/avx512-bf16", 32,           2, GGUF_T_BF16, NULL,
                                     quant_pack_bf16_x16,    gemm_bf16_x16};
static const quant_pack pack_mxfp4 = {
    "mxfp4.x16/avx512-vnni", QUANT_MXFP4_X16_BYTES, QUANT_QK, GGUF_T_Q8_0, NULL,
    quant_pack_mxfp4_x16,    gemm_mxfp4_x16};
static const quant_pack pack_q8_0 = {
    "q8_0.x16/avx512-vnni", QUANT_Q8_0_X16_BYTES, QUANT_QK, GGUF_T_Q8_0, NULL,
    quant_pack_q8_0_x16,    gemm_q8_0_x16};
static const quant_pack pack_q4_0 = {
    "q4_0.x16/avx512-vnni", QUANT_Q4_0_X16_BYTES, QUANT_QK, GGUF_T_Q8_0, NULL,
    quant_pack_q4_0_x16,    gemm_q4_0_x16};
static const quant_pack pack_q4_k = {
    "q4_k.x16/avx512-vnni", QUANT_Q4_K_X16_BYTES, QUANT_QKK, GGUF_T_Q8_K, NULL,
    quant_pack_q4_k_x16,    gemm_q4_k_x16};
static const quant_pack pack_q6_k = {
    "q6_k.x16/avx512-vnni", QUANT_Q6_K_X16_BYTES, QUANT_QKK, GGUF_T_Q8_K, NULL,
    quant_pack_q6_k_x16,    gemm_q6_k_x16};

void quant_x86_avx512_install_pack(quant_traits *t) {
    t[GGUF_T_F16].pack = &pack_f16;
    t[GGUF_T_Q4_0].pack = &pack_q4_0;
    t[GGUF_T_Q8_0].pack = &pack_q8_0;
    t[GGUF_T_MXFP4].pack = &pack_mxfp4;
    /* vdpbf16ps is not part of the variant's requirements: only where the CPU has it */
    if (core_cpu_usable() & CORE_CPU_AVX512BF16) t[GGUF_T_BF16].pack = &pack_bf16;
    t[GGUF_T_Q4_K].pack = &pack_q4_k;
    t[GGUF_T_Q6_K].pack = &pack_q6_k;
}
