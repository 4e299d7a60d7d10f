/* AVX2 kernels of the mxfp4.x16, f16.x16, q4_k.x16 and q6_k.x16 layouts (quant/ref/pack.c describes
 * them; their scalar kernels there are the reference these are tested against, bit for bit).
 *
 * Without VNNI, a 32-bit lane still holds 4 codes of one row: vpshufb turns them into values + 12
 * (0..24, unsigned), vpmaddubsw multiplies them with the token's 4 activations broadcast to every
 * lane and adds pairs into int16 (4 steps of a block stay below 4 * 2 * 24 * 127 = 24384), and one
 * vpmaddwd per block and half turns the pairs into each row's exact 32-bit sum, in its own lane.
 * Against the row-at-a-time kernels (a decode, a horizontal fold and a float step per row and
 * block, and the scale converted row by row) that is about a third of the instructions, and the
 * matrix is read as one stream. 16 rows are two ymm halves (rows 0-7, 8-15). The layouts AVX2
 * gets are those its row kernels served worst: MXFP4 (a fold and a float step per row and
 * block), F16, Q4_K and Q6_K (no tile: one row dot per (row, token) pair). The
 * reference-order path (SHIMMY_ISA=avx2) uses none of them (model_repack). */
#include "quant/x86/avx2_util.h"

#define P2_ALWAYS static inline __attribute__((always_inline))
#define P2_TOK    4 /* tokens per tile */

/* A decode step streams each matrix once; the first token tile fetches what lies P2_AHEAD bytes
 * ahead (the hardware prefetchers stop at each 4 KiB page), later tiles find it in cache. */
#define P2_AHEAD 4352

/* the lines of one group block, P2_AHEAD bytes ahead */
P2_ALWAYS void prefetch_ahead(const uint8_t *o, int bytes) {
    for (int l = 0; l < bytes; l += 64) _mm_prefetch((const char *)o + P2_AHEAD + l, _MM_HINT_T0);
}

/* rows 8h..8h+7's halved E8M0 scales as floats (quant_e8m0_half: 2^(e - 128), denormal e < 2) */
P2_ALWAYS __m256 e8m0_half8(const uint8_t *e) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)e));
    const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(v, _mm256_set1_epi32(1)), 23);
    const __m256i tiny = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), v);
    const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(2), v);
    return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, tiny, small));
}

/* Keeps a sum one chain in a register. Without it gcc reassociates a tile's integer additions
 * into one tree per block (legal: they are exact), whose partial sums outnumber the 16 registers
 * and spill: the q4_k and mxfp4 tiles ran 25-40% faster with it on Zen 3 (8 tokens). */
#define P2_CHAIN(v) __asm__("" : "+x"(v))

P2_ALWAYS __m256i bc32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* 12 * (sum of a Q8_0 block's 32 activations), in every lane */
P2_ALWAYS __m256i offset12(const int8_t *qs) {
    const __m256i s = _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_loadu_si256((const __m256i *)qs)),
        _mm256_set1_epi16(1));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
    h = _mm_mullo_epi32(h, _mm_set1_epi32(12));
    return _mm256_broadcastd_epi32(h);
}

/* Rows of group g in [r0, r1): a full group is stored as two vectors, a partial one lane by lane.
 */
P2_ALWAYS void store16(float *y, int64_t g, int64_t r0, int64_t r1, __m256 lo, __m256 hi) {
    if (r0 <= g * 16 && g * 16 + 16 <= r1) {
        _mm256_storeu_ps(y, lo);
        _mm256_storeu_ps(y + 8, hi);
        return;
    }
    float v[16];
    _mm256_storeu_ps(v, lo);
    _mm256_storeu_ps(v + 8, hi);
    for (int r = 0; r < 16; r++)
        if (g * 16 + r >= r0 && g * 16 + r < r1) y[r] = v[r];
}

P2_ALWAYS void mxfp4_tile(int nt, int64_t nb, const uint8_t *gw, const uint8_t *x, size_t xs,
                          float *y, size_t ys, int64_t g, int64_t r0, int64_t r1, bool pf) {
    int8_t lut[16];
    for (int i = 0; i < 16; i++) lut[i] = (int8_t)(quant_mxfp4_values[i] + 12);
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lut));
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[P2_TOK][2];
#pragma GCC unroll 8
    for (int t = 0; t < P2_TOK; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *o = gw + i * QUANT_MXFP4_X16_BYTES, *qs = o + 16;
        if (pf) prefetch_ahead(o, QUANT_MXFP4_X16_BYTES);
        __m256i off[P2_TOK];
        __m256 dy[P2_TOK];
#pragma GCC unroll 4
        for (int t = 0; t < P2_TOK; t++) { /* (zeroed: keeps the compiler sure nothing is unset) */
            off[t] = _mm256_setzero_si256();
            dy[t] = _mm256_setzero_ps();
        }
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + i;
            off[t] = offset12(yb->qs);
            dy[t] = _mm256_set1_ps(qx_h2f(yb->d));
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256 dw = e8m0_half8(o + 8 * h);
            __m256i a[P2_TOK], b[P2_TOK];
#pragma GCC unroll 4
            for (int t = 0; t < P2_TOK; t++) a[t] = b[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 64 * k + 32 * h));
                const __m256i lo = _mm256_shuffle_epi8(tab, _mm256_and_si256(v, m4));
                const __m256i hi =
                    _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) {
                    const int8_t *yq = ((const quant_block_q8_0 *)(x + (size_t)t * xs) + i)->qs;
                    a[t] = _mm256_add_epi16(a[t], _mm256_maddubs_epi16(lo, bc32(yq + 4 * k)));
                    b[t] = _mm256_add_epi16(b[t], _mm256_maddubs_epi16(hi, bc32(yq + 16 + 4 * k)));
                    P2_CHAIN(a[t]);
                    P2_CHAIN(b[t]);
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const __m256i s = _mm256_sub_epi32(
                    _mm256_add_epi32(_mm256_madd_epi16(a[t], ones), _mm256_madd_epi16(b[t], ones)),
                    off[t]);
                acc[t][h] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, dy[t]), acc[t][h]);
            }
        }
    }
#pragma GCC unroll 8 /* (a loop left rolled keeps the accumulators in memory) */
    for (int t = 0; t < nt; t++) store16(y + (size_t)t * ys, g, r0, r1, acc[t][0], acc[t][1]);
}

/* The products of a block layout (BYTES per group and BLOCK inputs): whole groups of the row
 * range, the tokens in tiles of TOK (constant shapes for a full tile and for one token keep the
 * tile in registers); the first tile prefetches. */
#define P2_GEMM(fn, tile, BYTES, BLOCK, TOK)                                                       \
    static void fn(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w, const void *x, \
                   size_t xs, float *y, size_t ys) {                                               \
        const int64_t nb = n_in / (BLOCK);                                                         \
        for (int64_t g = r0 / 16; g * 16 < r1; g++) {                                              \
            const uint8_t *gw = (const uint8_t *)w + (size_t)(g * nb) * (BYTES);                   \
            for (int64_t t = 0; t < nt; t += (TOK)) {                                              \
                const uint8_t *xt = (const uint8_t *)x + (size_t)t * xs;                           \
                float *yt = y + (size_t)t * ys + g * 16;                                           \
                if (nt - t >= (TOK))                                                               \
                    tile((TOK), nb, gw, xt, xs, yt, ys, g, r0, r1, t == 0);                        \
                else if (nt - t == 1)                                                              \
                    tile(1, nb, gw, xt, xs, yt, ys, g, r0, r1, t == 0);                            \
                else if (nt - t == 2)                                                              \
                    tile(2, nb, gw, xt, xs, yt, ys, g, r0, r1, t == 0);                            \
                else if (nt - t == 3)                                                              \
                    tile(3, nb, gw, xt, xs, yt, ys, g, r0, r1, t == 0);                            \
                else                                                                               \
                    tile((int)(nt - t), nb, gw, xt, xs, yt, ys, g, r0, r1, t == 0);                \
            }                                                                                      \
        }                                                                                          \
    }

P2_GEMM(gemm_mxfp4_x16, mxfp4_tile, QUANT_MXFP4_X16_BYTES, QUANT_QK, P2_TOK)

/* ---- f16.x16 ----
 * acc[g][t] += w_k * x_t[k] over the inputs, one FMA chain per row and token in input order, as
 * the layout's scalar kernel (a token alone or in a tile: the same steps, the same bits). A
 * prompt tile is one group (two ymm of rows) against 6 tokens, 12 accumulators fed by one
 * conversion per 8 rows and one broadcast per token; a single token takes 4 groups per pass so
 * that 8 chains hide the FMA latency. */
#define P2_F16_TOK 6
#define P2_F16_NG  4

/* One group (rows in two ymm halves) against nt <= P2_F16_TOK tokens. */
P2_ALWAYS void f16_tile_tok(int nt, int64_t n_in, const uint16_t *gw, const uint8_t *x, size_t xs,
                            float *y, size_t ys, int64_t g, int64_t r0, int64_t r1, bool pf) {
    /* a partial tile repeats token 0 in the missing places: every loop below has constant
     * bounds, which is what keeps gcc from mirroring the accumulators on the stack */
    const float *xt[P2_F16_TOK];
    for (int t = 0; t < P2_F16_TOK; t++) xt[t] = (const float *)(x + (size_t)(t < nt ? t : 0) * xs);
    __m256 a0[P2_F16_TOK], a1[P2_F16_TOK];
#pragma GCC unroll 8
    for (int t = 0; t < P2_F16_TOK; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    for (int64_t k = 0; k < n_in; k++) {
        const uint16_t *rec = gw + k * 16;
        if (pf && (k & 1) == 0) _mm_prefetch((const char *)rec + P2_AHEAD, _MM_HINT_T0);
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)rec));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 8)));
#pragma GCC unroll 8
        for (int t = 0; t < P2_F16_TOK; t++) {
            const __m256 xv = _mm256_broadcast_ss(xt[t] + k);
            a0[t] = _mm256_fmadd_ps(w0, xv, a0[t]);
            a1[t] = _mm256_fmadd_ps(w1, xv, a1[t]);
        }
    }
#pragma GCC unroll 8 /* (a loop left rolled keeps the accumulators in memory) */
    for (int t = 0; t < nt; t++) store16(y + (size_t)t * ys, g, r0, r1, a0[t], a1[t]);
}

/* ng <= P2_F16_NG groups against one token. */
P2_ALWAYS void f16_tile_rows(int ng, int64_t n_in, const uint16_t *gw, size_t gstride,
                             const float *x, float *y, int64_t g, int64_t r0, int64_t r1) {
    __m256 acc[2 * P2_F16_NG];
#pragma GCC unroll 8
    for (int i = 0; i < 2 * P2_F16_NG; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t k = 0; k < n_in; k++) {
        const __m256 xv = _mm256_broadcast_ss(x + k);
#pragma GCC unroll 4
        for (int j = 0; j < ng; j++) {
            const uint16_t *rec = gw + (size_t)j * gstride + k * 16;
            if ((k & 1) == 0) _mm_prefetch((const char *)rec + P2_AHEAD, _MM_HINT_T0);
            acc[2 * j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)rec)), xv,
                                         acc[2 * j]);
            acc[2 * j + 1] = _mm256_fmadd_ps(
                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 8))), xv, acc[2 * j + 1]);
        }
    }
#pragma GCC unroll 8 /* (a loop left rolled keeps the accumulators in memory) */
    for (int j = 0; j < ng; j++) store16(y + 16 * j, g + j, r0, r1, acc[2 * j], acc[2 * j + 1]);
}

static void gemm_f16_x16(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w,
                         const void *x, size_t xs, float *y, size_t ys) {
    const size_t gstride = (size_t)n_in * 16; /* elements of one group */
    const int64_t g1 = (r1 + 15) / 16;
    for (int64_t g = r0 / 16; g < g1;) {
        const uint16_t *gw = (const uint16_t *)w + (size_t)g * gstride;
        float *yg = y + g * 16;
        if (nt == 1) {
            const int ng = g1 - g >= P2_F16_NG ? P2_F16_NG : (int)(g1 - g);
            if (ng == P2_F16_NG)
                f16_tile_rows(P2_F16_NG, n_in, gw, gstride, x, yg, g, r0, r1);
            else
                f16_tile_rows(ng, n_in, gw, gstride, x, yg, g, r0, r1);
            g += ng;
            continue;
        }
        for (int64_t t = 0; t < nt; t += P2_F16_TOK) {
            const uint8_t *xt = (const uint8_t *)x + (size_t)t * xs;
            float *yt = yg + (size_t)t * ys;
            if (nt - t >= P2_F16_TOK)
                f16_tile_tok(P2_F16_TOK, n_in, gw, xt, xs, yt, ys, g, r0, r1, t == 0);
            else
                f16_tile_tok((int)(nt - t), n_in, gw, xt, xs, yt, ys, g, r0, r1, t == 0);
        }
        g++;
    }
}

/* F32 activations rounded to f16 and back (round to nearest even, as F16C rounds the
 * reference's activations) */
static void f32_via_f16(const float *x, void *vy, int64_t n) {
    float *out = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                                  _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) out[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

/* ---- q4_k.x16 ----
 * Per row, token and super-block the exact integer sums (levels 0..15 by vpmaddubsw into int16
 * pairs: a sub-block's 8 steps stay below 8 * 2 * 15 * 127 = 30480; then vpmaddwd with the
 * sub-block's scale in both halves of the lane), d * sum - dmin * mins formed in double with one
 * rounding and added times the token's scale to a double sum, as the layout's scalar kernel.
 * Tiles of 4 tokens over one half of the 16 rows at a time: 4 tokens' integer sums and pair sums
 * fit AVX2's 16 registers that way (over both halves only 2 tokens did), and the double sums
 * are touched once per super-block and half. */
#define P2_K_TOK 4

/* rows 8h..8h+7's u8 scales as (s, s) int16 pairs, one per 32-bit lane */
P2_ALWAYS __m256i scale_pairs(const uint8_t *sc) {
    /* one shuffle puts scale r in both 16-bit halves of lane r (bytes 0-3 in the low 128 bits,
     * 4-7 in the high) where a widening, a shift and an or took three vector operations */
    const __m256i pat = _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1, 4,
                                         -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1);
    return _mm256_shuffle_epi8(_mm256_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)sc)), pat);
}

/* acc[0..1] (rows 8h..8h+3, 8h+4..8h+7) += (d * a - m * b) * dy in double */
P2_ALWAYS void add_scaled8(__m256d acc[2], __m256 d, __m256i a, __m256 m, __m256i b, double dy) {
    const __m256d y = _mm256_set1_pd(dy);
    const __m256d lo = _mm256_fnmadd_pd(
        _mm256_cvtps_pd(_mm256_castps256_ps128(m)), _mm256_cvtepi32_pd(_mm256_castsi256_si128(b)),
        _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(d)),
                      _mm256_cvtepi32_pd(_mm256_castsi256_si128(a))));
    const __m256d hi =
        _mm256_fnmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(m, 1)),
                         _mm256_cvtepi32_pd(_mm256_extracti128_si256(b, 1)),
                         _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(d, 1)),
                                       _mm256_cvtepi32_pd(_mm256_extracti128_si256(a, 1))));
    acc[0] = _mm256_fmadd_pd(lo, y, acc[0]);
    acc[1] = _mm256_fmadd_pd(hi, y, acc[1]);
}

/* the rows' double sums of nt tokens, rounded to float once */
P2_ALWAYS void store_pd(int nt, __m256d acc[P2_K_TOK][4], float *y, size_t ys, int64_t g,
                        int64_t r0, int64_t r1) {
#pragma GCC unroll 4 /* (a loop left rolled keeps the accumulators in memory) */
    for (int t = 0; t < nt; t++) {
        const __m256 lo = _mm256_set_m128(_mm256_cvtpd_ps(acc[t][1]), _mm256_cvtpd_ps(acc[t][0]));
        const __m256 hi = _mm256_set_m128(_mm256_cvtpd_ps(acc[t][3]), _mm256_cvtpd_ps(acc[t][2]));
        store16(y + (size_t)t * ys, g, r0, r1, lo, hi);
    }
}

/* the tile's token rows (a missing token reads token 0, never used) and zeroed double sums */
P2_ALWAYS void k_tile_start(int nt, const uint8_t *x, size_t xs,
                            const quant_block_q8_k *tok[P2_K_TOK], __m256d acc[P2_K_TOK][4]) {
    for (int t = 0; t < P2_K_TOK; t++) {
        tok[t] = (const quant_block_q8_k *)(x + (size_t)(t < nt ? t : 0) * xs);
        for (int q = 0; q < 4; q++) acc[t][q] = _mm256_setzero_pd();
    }
}

P2_ALWAYS void q4_k_tile(int nt, int64_t nb, const uint8_t *gw, const uint8_t *x, size_t xs,
                         float *y, size_t ys, int64_t g, int64_t r0, int64_t r1, bool pf) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const quant_block_q8_k *tok[P2_K_TOK];
    /* (updated once per super-block and half: memory is fine, registers go to the sums) */
    __m256d acc[P2_K_TOK][4];
    k_tile_start(nt, x, xs, tok, acc);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *o = gw + i * QUANT_Q4_K_X16_BYTES;
        if (pf) prefetch_ahead(o, QUANT_Q4_K_X16_BYTES);
            /* one half of the rows at a time: nt sums and nt pair sums stay in registers */
#pragma GCC unroll 1
        for (int h = 0; h < 2; h++) {
            __m256i isum[P2_K_TOK];
#pragma GCC unroll 4
            for (int t = 0; t < P2_K_TOK; t++) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
            for (int j = 0; j < 8; j++) {
                const __m256i sc = scale_pairs(o + 64 + 16 * j + 8 * h);
                __m256i p[P2_K_TOK];
#pragma GCC unroll 4
                for (int t = 0; t < P2_K_TOK; t++) p[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    const __m256i v =
                        _mm256_loadu_si256((const __m256i *)(o + 320 + 256 * j + 64 * k + 32 * h));
                    const __m256i lo = _mm256_and_si256(v, m4);
                    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#pragma GCC unroll 4
                    for (int t = 0; t < nt; t++) {
                        const int8_t *yq = tok[t][i].qs + 32 * j;
                        p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(lo, bc32(yq + 4 * k)));
                        p[t] =
                            _mm256_add_epi16(p[t], _mm256_maddubs_epi16(hi, bc32(yq + 16 + 4 * k)));
                        P2_CHAIN(p[t]);
                    }
                }
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++)
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p[t], sc));
            }
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(o + 16 * h)));
            const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(o + 32 + 16 * h)));
            __m256i mn[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                mn[q] = _mm256_cvtepu8_epi16(
                    _mm_loadu_si128((const __m128i *)(o + 192 + 32 * q + 16 * h)));
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const quant_block_q8_k *yb = &tok[t][i];
                /* the mins pair with the 32-input sums: bsums[2j] + bsums[2j+1] */
                const __m128i bs =
                    _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)yb->bsums),
                                   _mm_loadu_si128((const __m128i *)(yb->bsums + 8)));
                __m256i ms = _mm256_madd_epi16(mn[0], _mm256_broadcastd_epi32(bs));
                ms = _mm256_add_epi32(
                    ms, _mm256_madd_epi16(mn[1], _mm256_broadcastd_epi32(_mm_srli_si128(bs, 4))));
                ms = _mm256_add_epi32(
                    ms, _mm256_madd_epi16(mn[2], _mm256_broadcastd_epi32(_mm_srli_si128(bs, 8))));
                ms = _mm256_add_epi32(
                    ms, _mm256_madd_epi16(mn[3], _mm256_broadcastd_epi32(_mm_srli_si128(bs, 12))));
                add_scaled8(&acc[t][2 * h], dw, isum[t], mw, ms, (double)yb->d);
            }
        }
    }
    store_pd(nt, acc, y, ys, g, r0, r1);
}

P2_GEMM(gemm_q4_k_x16, q4_k_tile, QUANT_Q4_K_X16_BYTES, QUANT_QKK, P2_K_TOK)

/* ---- q6_k.x16 ----
 * Levels 0..63 (the high 2 bits moved to bits 4-5 as in AVX-512), vpmaddubsw pairs summed two
 * steps at a time (2 * 2 * 63 * 127 = 32004), vpmaddwd with the sub-block's signed scale; the
 * offset 32 through the scaled block sums; d * (sum - 32 * offsets) in double. */
P2_ALWAYS __m256i q6_hi2(__m256i qh, int k) {
    const __m256i m = _mm256_set1_epi8(0x30);
    switch (k) {
    case 0: return _mm256_and_si256(_mm256_slli_epi16(qh, 4), m);
    case 1: return _mm256_and_si256(_mm256_slli_epi16(qh, 2), m);
    case 2: return _mm256_and_si256(qh, m);
    default: return _mm256_and_si256(_mm256_srli_epi16(qh, 2), m);
    }
}

P2_ALWAYS void q6_k_tile(int nt, int64_t nb, const uint8_t *gw, const uint8_t *x, size_t xs,
                         float *y, size_t ys, int64_t g, int64_t r0, int64_t r1, bool pf) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const quant_block_q8_k *tok[P2_K_TOK];
    /* (updated once per super-block and half: memory is fine, registers go to the sums) */
    __m256d acc[P2_K_TOK][4];
    k_tile_start(nt, x, xs, tok, acc);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *o = gw + i * QUANT_Q6_K_X16_BYTES;
        if (pf) prefetch_ahead(o, QUANT_Q6_K_X16_BYTES);
#pragma GCC unroll 1
        for (int h = 0; h < 2; h++) {
            /* sum - 32 * offsets, one vector per token: integer wraparound keeps it exact */
            __m256i isum[P2_K_TOK];
#pragma GCC unroll 4
            for (int t = 0; t < P2_K_TOK; t++) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
            for (int p = 0; p < 8; p++) {
                /* lane r: the int16 scales of sub-blocks 2p, 2p+1 */
                const __m256i sp = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128((const __m128i *)(o + 32 + 32 * p + 16 * h)));
                /* the even and odd sub-blocks' scales in both halves of each lane (one shuffle
                 * each) */
                const __m256i se = _mm256_shuffle_epi8(
                    sp, _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1,
                                         0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13));
                const __m256i so = _mm256_shuffle_epi8(
                    sp, _mm256_setr_epi8(2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15, 2,
                                         3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15));
                const uint8_t *ql = o + 288 + 256 * p + 32 * h, *qh = o + 2336 + 128 * p + 32 * h;
                const __m256i h0 = _mm256_loadu_si256((const __m256i *)qh);
                const __m256i h1 = _mm256_loadu_si256((const __m256i *)(qh + 64));
#pragma GCC unroll 2
                for (int k = 0; k < 4; k += 2) {
                    __m256i ue[2], uo[2];
#pragma GCC unroll 2
                    for (int u = 0; u < 2; u++) {
                        const __m256i l = _mm256_loadu_si256((const __m256i *)(ql + 64 * (k + u)));
                        ue[u] = _mm256_or_si256(_mm256_and_si256(l, m4), q6_hi2(h0, k + u));
                        uo[u] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l, 4), m4),
                                                q6_hi2(h1, k + u));
                    }
#pragma GCC unroll 4
                    for (int t = 0; t < nt; t++) {
                        const int8_t *yq = tok[t][i].qs + 32 * p;
                        const __m256i e =
                            _mm256_add_epi16(_mm256_maddubs_epi16(ue[0], bc32(yq + 4 * k)),
                                             _mm256_maddubs_epi16(ue[1], bc32(yq + 4 * k + 4)));
                        const __m256i od =
                            _mm256_add_epi16(_mm256_maddubs_epi16(uo[0], bc32(yq + 16 + 4 * k)),
                                             _mm256_maddubs_epi16(uo[1], bc32(yq + 20 + 4 * k)));
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(e, se));
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(od, so));
                        P2_CHAIN(isum[t]);
                    }
                }
                /* 32 * scale still fits int16 (|scale| <= 128): the offsets' madd then needs no
                 * shift per token */
                const __m256i sp32 = _mm256_slli_epi16(sp, 5);
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++)
                    isum[t] = _mm256_sub_epi32(
                        isum[t],
                        _mm256_madd_epi16(sp32, bc32((const int8_t *)(tok[t][i].bsums + 2 * p))));
            }
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(o + 16 * h)));
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++)
                add_scaled8(&acc[t][2 * h], dw, isum[t], _mm256_setzero_ps(),
                            _mm256_setzero_si256(), (double)tok[t][i].d);
        }
    }
    store_pd(nt, acc, y, ys, g, r0, r1);
}

P2_GEMM(gemm_q6_k_x16, q6_k_tile, QUANT_Q6_K_X16_BYTES, QUANT_QKK, P2_K_TOK)

static const quant_pack pack_q6_k = {
    "q6_k.x16/avx2",     QUANT_Q6_K_X16_BYTES, QUANT_QKK, GGUF_T_Q8_K, NULL,
    quant_pack_q6_k_x16, gemm_q6_k_x16};

static const quant_pack pack_q4_k = {
    "q4_k.x16/avx2",     QUANT_Q4_K_X16_BYTES, QUANT_QKK, GGUF_T_Q8_K, NULL,
    quant_pack_q4_k_x16, gemm_q4_k_x16};

static const quant_pack pack_f16 = {"f16.x16/avx2",     32,          2, GGUF_T_F32, f32_via_f16,
                                    quant_pack_f16_x16, gemm_f16_x16};

static const quant_pack pack_mxfp4 = {
    "mxfp4.x16/avx2",     QUANT_MXFP4_X16_BYTES, QUANT_QK, GGUF_T_Q8_0, NULL,
    quant_pack_mxfp4_x16, gemm_mxfp4_x16};

void quant_x86_avx2_install_pack(quant_traits *t) {
    t[GGUF_T_MXFP4].pack = &pack_mxfp4;
    t[GGUF_T_F16].pack = &pack_f16;
    t[GGUF_T_Q4_K].pack = &pack_q4_k;
    t[GGUF_T_Q6_K].pack = &pack_q6_k;
}
