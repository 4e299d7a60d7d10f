/* AVX2 dots and tiles of IQ4_NL, IQ4_XS, MXFP4 and dots of the ternary formats (element orders in
 * ref/iq4.c, ref/mxfp4.c, ref/ternary.c; the codebook i-quants are in avx2_iqgrid.c).
 *
 * Only the integer part is vectorised: each block's or super-block's exact integer sum (scale
 * times products, 32 values per step, int16 pairs widened by madd with the scales) is reduced to
 * one int32, and the float step is quant_iq_term in the reference's order, so these kernels give
 * the scalar reference's bits. The 4-bit codes map to their levels by pshufb; the signed levels
 * multiply the activations as |level| (maddubs' unsigned operand) times sign-adjusted activations
 * (no int16 pair can saturate: 127 * 127 * 2 < 32767). */
#include "quant/x86/avx2_util.h"

/* 16 int8 lookup values in both 128-bit lanes */
static inline __m256i table16(const int8_t *v) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)v));
}

/* 32 signed 4-bit-code values (legacy nibble order) times 32 activations: 8 int32 lanes */
static inline __m256i nl_dot32(__m256i tab, const uint8_t *qs, const int8_t *y) {
    const __m256i w = _mm256_shuffle_epi8(tab, qx_nibbles32(qs));
    return qx_dot_s8s8(w, _mm256_loadu_si256((const __m256i *)y));
}

/* As nl_dot32, int16 pairs only (for a scale applied by madd) */
static inline __m256i nl_pairs32(__m256i tab, const uint8_t *qs, const int8_t *y) {
    const __m256i w = _mm256_shuffle_epi8(tab, qx_nibbles32(qs));
    const __m256i yv = _mm256_loadu_si256((const __m256i *)y);
    return _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(yv, w));
}

static void vec_dot_iq4_nl(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq4_nl *x = vx;
    const quant_block_q8_0 *y = vy;
    const __m256i tab = table16(quant_iq4nl_values);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++)
        sum += quant_iq_term(qx_h2f(x[i].d), qx_h2f(y[i].d),
                             qx_hsum_epi32(nl_dot32(tab, x[i].qs, y[i].qs)));
    *s = sum;
}

static void vec_dot_mxfp4(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_mxfp4 *x = vx;
    const quant_block_q8_0 *y = vy;
    const __m256i tab = table16(quant_mxfp4_values);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++)
        sum += quant_iq_term(quant_e8m0_half(x[i].e), qx_h2f(y[i].d),
                             qx_hsum_epi32(nl_dot32(tab, x[i].qs, y[i].qs)));
    *s = sum;
}

/* ---- IQ4_NL / MXFP4 tiles: one weight row against up to 8 activation rows (Q8_0) ----
 * A 32-value block is decoded once for the tile's tokens; the 8 tokens' exact integer sums are
 * reduced together (one lane per token) and the float step runs on those lanes: per lane the
 * multiplications and the addition of quant_iq_term, so each lane takes the reference's bits. */

#define NL_RN 8

typedef struct nl_fmt {
    const int8_t *values;
    int mx; /* 0: IQ4_NL (fp16 d first), 1: MXFP4 (E8M0 byte first) */
    size_t block, qs_off;
} nl_fmt;

static inline __attribute__((always_inline)) void nl_tile(nl_fmt f, int rn, int64_t nb,
                                                          const unsigned char *w,
                                                          const unsigned char *x, size_t xs,
                                                          float *out, size_t ys) {
    const __m256i tab = table16(f.values);
    const unsigned char *tok[NL_RN];
    for (int t = 0; t < NL_RN; t++) tok[t] = x + (size_t)(t < rn ? t : 0) * xs;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const unsigned char *wb = w + f.block * (size_t)b;
        const __m256i lv = _mm256_shuffle_epi8(tab, qx_nibbles32(wb + f.qs_off));
        const __m256i mag = _mm256_sign_epi8(lv, lv);
        __m256i p[NL_RN];
        uint16_t dh[NL_RN];
#pragma GCC unroll 8
        for (int t = 0; t < NL_RN; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)tok[t] + b;
            const __m256i yv = _mm256_loadu_si256((const __m256i *)yb->qs);
            p[t] = qx_dot_u8s8(mag, _mm256_sign_epi8(yv, lv));
            dh[t] = yb->d;
        }
        uint16_t wd;
        memcpy(&wd, wb, 2);
        const float dx = f.mx ? quant_e8m0_half(wb[0]) : qx_h2f(wd);
        const __m256 dy = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dh));
        const __m256 d = _mm256_mul_ps(_mm256_set1_ps(dx), dy);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(d, _mm256_cvtepi32_ps(qx_reduce8_epi32(p))));
    }
    float lanes[NL_RN];
    _mm256_storeu_ps(lanes, acc);
    for (int t = 0; t < rn; t++) out[(size_t)t * ys] = lanes[t];
}

/* A decode step (one token): 8 weight rows at once, one lane per row. The 8 rows' exact integer
 * sums of a block are reduced together and lane r takes row r's float steps in its vec_dot's
 * order (d = dx * dy, then acc + d * isum, block after block), so each output has its vec_dot's
 * bits; what the tile saves is the per-block horizontal sum and the serial float chain of one
 * row at a time, which left a row dot waiting on latency. */
static inline __attribute__((always_inline)) void nl_rows8(nl_fmt f, int64_t nb,
                                                           const unsigned char *w, size_t ws,
                                                           const unsigned char *x, float *out) {
    const __m256i tab = table16(f.values);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const quant_block_q8_0 *yb = (const quant_block_q8_0 *)x + b;
        const __m256i yv = _mm256_loadu_si256((const __m256i *)yb->qs);
        const unsigned char *wb = w + f.block * (size_t)b;
        __m256i p[8];
        float dx[8];
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            const unsigned char *wr = wb + (size_t)r * ws;
            const __m256i lv = _mm256_shuffle_epi8(tab, qx_nibbles32(wr + f.qs_off));
            p[r] = qx_dot_u8s8(_mm256_sign_epi8(lv, lv), _mm256_sign_epi8(yv, lv));
            uint16_t h;
            memcpy(&h, wr, 2);
            dx[r] = f.mx ? quant_e8m0_half(wr[0]) : qx_h2f(h);
        }
        const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(dx), _mm256_set1_ps(qx_h2f(yb->d)));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(d, _mm256_cvtepi32_ps(qx_reduce8_epi32(p))));
    }
    _mm256_storeu_ps(out, acc);
}

static inline __attribute__((always_inline)) void nl_gemm(nl_fmt f, quant_vec_dot_fn dot, int64_t n,
                                                          int64_t nr, int64_t nt, const void *vw,
                                                          size_t ws, const void *vx, size_t xs,
                                                          float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QK;
    if (nt == 1) { /* a decode step: 8 rows at a time */
        int64_t r = 0;
        for (; r + 8 <= nr; r += 8) nl_rows8(f, nb, w + (size_t)r * ws, ws, x, y + r);
        for (; r < nr; r++) dot(n, y + r, w + (size_t)r * ws, x);
        return;
    }
    for (int64_t r = 0; r < nr; r++)
        for (int64_t t = 0; t < nt; t += NL_RN) {
            const int rn = nt - t < NL_RN ? (int)(nt - t) : NL_RN;
            nl_tile(f, rn, nb, w + (size_t)r * ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r,
                    ys);
        }
}

static void vec_dot_iq4_nl(int64_t n, float *s, const void *vx, const void *vy);
static void vec_dot_mxfp4(int64_t n, float *s, const void *vx, const void *vy);

static void gemm_iq4_nl(int64_t n, int64_t nr, int64_t nt, const void *w, size_t ws, const void *x,
                        size_t xs, float *y, size_t ys) {
    const nl_fmt f = {quant_iq4nl_values, 0, sizeof(quant_block_iq4_nl), 2};
    nl_gemm(f, vec_dot_iq4_nl, n, nr, nt, w, ws, x, xs, y, ys);
}

static void gemm_mxfp4(int64_t n, int64_t nr, int64_t nt, const void *w, size_t ws, const void *x,
                       size_t xs, float *y, size_t ys) {
    const nl_fmt f = {quant_mxfp4_values, 1, sizeof(quant_block_mxfp4), 1};
    nl_gemm(f, vec_dot_mxfp4, n, nr, nt, w, ws, x, xs, y, ys);
}

static void vec_dot_iq4_xs(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq4_xs *x = vx;
    const quant_block_q8_k *y = vy;
    const __m256i tab = table16(quant_iq4nl_values);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        __m256i acc = _mm256_setzero_si256();
        const unsigned h = x[i].scales_h;
        for (int ib = 0; ib < 8; ib += 2) {
            const int l0 = x[i].scales_l[ib / 2];
            const int s0 = ((l0 & 0xF) | ((h >> (2 * ib)) & 3) << 4) - 32;
            const int s1 = ((l0 >> 4) | ((h >> (2 * ib + 2)) & 3) << 4) - 32;
            const __m256i p0 = nl_pairs32(tab, x[i].qs + 16 * ib, y[i].qs + 32 * ib);
            const __m256i p1 = nl_pairs32(tab, x[i].qs + 16 * ib + 16, y[i].qs + 32 * ib + 32);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p0, _mm256_set1_epi16((short)s0)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p1, _mm256_set1_epi16((short)s1)));
        }
        sum += quant_iq_term(qx_h2f(x[i].d), y[i].d, qx_hsum_epi32(acc));
    }
    *s = sum;
}

/* IQ4_XS tiles: one weight row against up to 8 activation rows (Q8_K), the super-block decoded
 * once (levels and scale vectors), each token's exact integer sum as in vec_dot_iq4_xs, the 8
 * sums reduced together and the float step on one lane per token. */
static inline __attribute__((always_inline)) void iq4xs_tile(int rn, int64_t nb,
                                                             const quant_block_iq4_xs *x,
                                                             const unsigned char *xv, size_t xs,
                                                             float *out, size_t ys) {
    const __m256i tab = table16(quant_iq4nl_values);
    const unsigned char *tok[NL_RN];
    for (int t = 0; t < NL_RN; t++) tok[t] = xv + (size_t)(t < rn ? t : 0) * xs;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i lv[8], sc[8];
        const unsigned h = x[i].scales_h;
        for (int ib = 0; ib < 8; ib++) {
            const int l = (x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
            sc[ib] = _mm256_set1_epi16((short)((l | ((h >> (2 * ib)) & 3) << 4) - 32));
            lv[ib] = _mm256_shuffle_epi8(tab, qx_nibbles32(x[i].qs + 16 * ib));
        }
        __m256i p[NL_RN];
        float dyf[NL_RN];
#pragma GCC unroll 8
        for (int t = 0; t < NL_RN; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)tok[t] + i;
            __m256i a = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ib++) {
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(yb->qs + 32 * ib));
                const __m256i pr = _mm256_maddubs_epi16(_mm256_sign_epi8(lv[ib], lv[ib]),
                                                        _mm256_sign_epi8(yv, lv[ib]));
                a = _mm256_add_epi32(a, _mm256_madd_epi16(pr, sc[ib]));
            }
            p[t] = a;
            dyf[t] = yb->d;
        }
        const __m256 d = _mm256_mul_ps(_mm256_set1_ps(qx_h2f(x[i].d)), _mm256_loadu_ps(dyf));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(d, _mm256_cvtepi32_ps(qx_reduce8_epi32(p))));
    }
    float lanes[NL_RN];
    _mm256_storeu_ps(lanes, acc);
    for (int t = 0; t < rn; t++) out[(size_t)t * ys] = lanes[t];
}

static void gemm_iq4_xs(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws,
                        const void *vx, size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    if (nt == 1) { /* a decode step: one row after the other */
        for (int64_t r = 0; r < nr; r++) vec_dot_iq4_xs(n, y + r, w + (size_t)r * ws, x);
        return;
    }
    for (int64_t r = 0; r < nr; r++)
        for (int64_t t = 0; t < nt; t += NL_RN) {
            const int rn = nt - t < NL_RN ? (int)(nt - t) : NL_RN;
            iq4xs_tile(rn, n / QUANT_QKK, (const quant_block_iq4_xs *)(w + (size_t)r * ws),
                       x + (size_t)t * xs, xs, y + (size_t)t * ys + r, ys);
        }
}

/* ---- ternary ---- */

static inline int32_t q8k_total(const quant_block_q8_k *y) {
    const __m256i bs = qx_load_bsums(y);
    return qx_hsum_epi32(_mm256_madd_epi16(bs, _mm256_set1_epi16(1)));
}

static void vec_dot_tq2_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_tq2_0 *x = vx;
    const quant_block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int l = 0; l < 4; l++) {
                const __m256i t = _mm256_and_si256(_mm256_srli_epi16(q, 2 * l), m3);
                acc = _mm256_add_epi32(
                    acc, qx_dot_u8s8(
                             t, _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * l))));
            }
        }
        sum += quant_iq_term(qx_h2f(x[i].d), y[i].d, qx_hsum_epi32(acc) - q8k_total(&y[i]));
    }
    *s = sum;
}

/* Trit n of every byte: (byte * 3^n mod 256) * 3 >> 8, on 16-bit lanes (even and odd bytes apart,
 * since AVX2 has no byte multiply). */
static inline __m256i trits(__m256i q, int p) {
    const __m256i lo8 = _mm256_set1_epi16(0x00FF), hi8 = _mm256_set1_epi16((short)0xFF00);
    const __m256i pv = _mm256_set1_epi16((short)p);
    const __m256i qn = _mm256_or_si256(_mm256_and_si256(_mm256_mullo_epi16(q, pv), lo8),
                                       _mm256_mullo_epi16(_mm256_and_si256(q, hi8), pv));
    const __m256i three = _mm256_set1_epi16(3);
    const __m256i even = _mm256_srli_epi16(_mm256_mullo_epi16(_mm256_and_si256(qn, lo8), three), 8);
    const __m256i odd = _mm256_slli_epi16(_mm256_mulhi_epu16(_mm256_and_si256(qn, hi8), three), 8);
    return _mm256_or_si256(even, odd);
}

static inline __m128i lo128(__m256i v) {
    return _mm256_castsi256_si128(v);
}

static inline int32_t hsum128_epi32(__m128i v) {
    v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

static void vec_dot_tq1_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_tq1_0 *x = vx;
    const quant_block_q8_k *y = vy;
    static const int pow3[5] = {1, 3, 9, 27, 81};
    const __m128i ones = _mm_set1_epi16(1);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const int8_t *q8 = y[i].qs;
        /* elements 0..159: trit k of qs[0..31] */
        __m256i acc = _mm256_setzero_si256();
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)x[i].qs);
        for (int k = 0; k < 5; k++)
            acc = _mm256_add_epi32(acc,
                                   qx_dot_u8s8(trits(q0, pow3[k]),
                                               _mm256_loadu_si256((const __m256i *)(q8 + 32 * k))));
        /* 160..239: trit k of qs[32..47], two trits' 16 values per step, the fifth alone */
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(x[i].qs + 32));
        const __m256i q1x = _mm256_set_m128i(q1, q1);
        for (int k = 0; k < 4; k += 2) {
            const __m256i t =
                _mm256_set_m128i(lo128(trits(q1x, pow3[k + 1])), lo128(trits(q1x, pow3[k])));
            acc = _mm256_add_epi32(
                acc, qx_dot_u8s8(t, _mm256_loadu_si256((const __m256i *)(q8 + 160 + 16 * k))));
        }
        const __m128i y4 = _mm_loadu_si128((const __m128i *)(q8 + 224));
        __m128i acc4 = _mm_madd_epi16(_mm_maddubs_epi16(lo128(trits(q1x, pow3[4])), y4), ones);
        /* 240..255: trit k of qh[0..3], 4 values each */
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        const __m256i qhv = _mm256_set1_epi32((int)qh);
        const __m128i t01 =
            _mm_unpacklo_epi32(lo128(trits(qhv, pow3[0])), lo128(trits(qhv, pow3[1])));
        const __m128i t23 =
            _mm_unpacklo_epi32(lo128(trits(qhv, pow3[2])), lo128(trits(qhv, pow3[3])));
        const __m128i yh = _mm_loadu_si128((const __m128i *)(q8 + 240));
        acc4 = _mm_add_epi32(
            acc4, _mm_madd_epi16(_mm_maddubs_epi16(_mm_unpacklo_epi64(t01, t23), yh), ones));
        const int32_t isum = qx_hsum_epi32(acc) + hsum128_epi32(acc4) - q8k_total(&y[i]);
        sum += quant_iq_term(qx_h2f(x[i].d), y[i].d, isum);
    }
    *s = sum;
}

void quant_x86_avx2_install_iquants(quant_traits *t) {
    t[GGUF_T_IQ4_NL].vec_dot = vec_dot_iq4_nl;
    t[GGUF_T_IQ4_NL].gemm = gemm_iq4_nl;
    t[GGUF_T_IQ4_XS].vec_dot = vec_dot_iq4_xs;
    t[GGUF_T_IQ4_XS].gemm = gemm_iq4_xs;
    t[GGUF_T_MXFP4].vec_dot = vec_dot_mxfp4;
    t[GGUF_T_MXFP4].gemm = gemm_mxfp4;
    t[GGUF_T_TQ1_0].vec_dot = vec_dot_tq1_0;
    quant_x86_avx2_install_iqgrid(t);
    t[GGUF_T_TQ2_0].vec_dot = vec_dot_tq2_0;
}
