/* NEON (SDOT) dots of the i-quants, the ternary formats and MXFP4 (element orders in
 * ref/iq_grid.c, ref/iq4.c, ref/ternary.c, ref/mxfp4.c).
 *
 * Levels are decoded to signed bytes (table lookups through vqtbl1q for the 4-bit formats,
 * codebook entries gathered 8 or 4 bytes at a time, signs multiplied in as +1/-1 bytes) and SDOT
 * sums them against the activations; per group the int32 lanes are scaled exactly (vmlaq_n) and
 * the float step is quant_iq_term / quant_iq1_term as in the reference, so these kernels give
 * the scalar reference's bits, like the x86 ones. IQ4_XS also has tiles (a decoded super-block
 * for up to 4 tokens). */
#include "quant/quant_impl.h"

#include <arm_neon.h>

static inline float h2f(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* 32 values of 4-bit codes (low nibbles first) through a 16-entry table, dotted with y */
static inline int32x4_t nl_dot32(int8x16_t tab, const uint8_t *qs, const int8_t *y) {
    const uint8x16_t q = vld1q_u8(qs);
    const int8x16_t lo = vqtbl1q_s8(tab, vandq_u8(q, vdupq_n_u8(0x0F)));
    const int8x16_t hi = vqtbl1q_s8(tab, vshrq_n_u8(q, 4));
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y)), hi, vld1q_s8(y + 16));
}

static void vec_dot_iq4_nl(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq4_nl *x = vx;
    const quant_block_q8_0 *y = vy;
    const int8x16_t tab = vld1q_s8(quant_iq4nl_values);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++)
        sum += quant_iq_term(h2f(x[i].d), h2f(y[i].d), vaddvq_s32(nl_dot32(tab, x[i].qs, y[i].qs)));
    *s = sum;
}

static void vec_dot_mxfp4(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_mxfp4 *x = vx;
    const quant_block_q8_0 *y = vy;
    const int8x16_t tab = vld1q_s8(quant_mxfp4_values);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++)
        sum += quant_iq_term(quant_e8m0_half(x[i].e), h2f(y[i].d),
                             vaddvq_s32(nl_dot32(tab, x[i].qs, y[i].qs)));
    *s = sum;
}

static void vec_dot_iq4_xs(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq4_xs *x = vx;
    const quant_block_q8_k *y = vy;
    const int8x16_t tab = vld1q_s8(quant_iq4nl_values);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++) {
            const int lo = (x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
            const int ls = (lo | ((x[i].scales_h >> (2 * ib)) & 3) << 4) - 32;
            acc = vmlaq_n_s32(acc, nl_dot32(tab, x[i].qs + 16 * ib, y[i].qs + 32 * ib), ls);
        }
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc));
    }
    *s = sum;
}

/* IQ4_XS tiles: one weight row against up to 4 activation rows, the super-block's levels decoded
 * once for them; per token the integer sum and float step of vec_dot_iq4_xs. */
#define NT_RN 4

static inline __attribute__((always_inline)) void iq4xs_tile(int rn, int64_t nb,
                                                             const quant_block_iq4_xs *x,
                                                             const unsigned char *xv, size_t xs,
                                                             float *out, size_t ys) {
    const int8x16_t tab = vld1q_s8(quant_iq4nl_values);
    float sum[NT_RN] = {0};
    for (int64_t i = 0; i < nb; i++) {
        int8x16_t lo[8], hi[8];
        int32_t ls[8];
        for (int ib = 0; ib < 8; ib++) {
            const uint8x16_t q = vld1q_u8(x[i].qs + 16 * ib);
            lo[ib] = vqtbl1q_s8(tab, vandq_u8(q, vdupq_n_u8(0x0F)));
            hi[ib] = vqtbl1q_s8(tab, vshrq_n_u8(q, 4));
            const int l = (x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
            ls[ib] = (l | ((x[i].scales_h >> (2 * ib)) & 3) << 4) - 32;
        }
        const float dx = h2f(x[i].d);
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)(xv + (size_t)t * xs) + i;
            int32x4_t acc = vdupq_n_s32(0);
            for (int ib = 0; ib < 8; ib++) {
                const int32x4_t d =
                    vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo[ib], vld1q_s8(yb->qs + 32 * ib)), hi[ib],
                              vld1q_s8(yb->qs + 32 * ib + 16));
                acc = vmlaq_n_s32(acc, d, ls[ib]);
            }
            sum[t] += quant_iq_term(dx, yb->d, vaddvq_s32(acc));
        }
    }
    for (int t = 0; t < rn; t++) out[(size_t)t * ys] = sum[t];
}

static void gemm_iq4_xs(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws,
                        const void *vx, size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t t = 0; t < nt; t += NT_RN) {
            const quant_block_iq4_xs *wr = (const quant_block_iq4_xs *)(w + (size_t)r * ws);
            float *o = y + (size_t)t * ys + r;
            if (nt - t >= NT_RN)
                iq4xs_tile(NT_RN, n / QUANT_QKK, wr, x + (size_t)t * xs, xs, o, ys);
            else
                iq4xs_tile((int)(nt - t), n / QUANT_QKK, wr, x + (size_t)t * xs, xs, o, ys);
        }
}

/* ---- codebook types ---- */

static inline int8x16_t pair8(uint64_t a, uint64_t b) {
    return vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(a), vcreate_u64(b)));
}

static inline int8x16_t quad4(const uint32_t *g, int a, int b, int c, int d) {
    const uint32_t v[4] = {g[a], g[b], g[c], g[d]};
    return vreinterpretq_s8_u32(vld1q_u32(v));
}

/* levels (unsigned, <= 62) times +1/-1 sign bytes, dotted with 16 activations */
static inline int32x4_t signed_dot16(int8x16_t lv, int8x16_t sg, const int8_t *y) {
    return vdotq_s32(vdupq_n_s32(0), vmulq_s8(lv, sg), vld1q_s8(y));
}

static inline int8x16_t signs_idx(uint32_t a, int l) {
    return pair8(quant_iq_signs64[(a >> (7 * l)) & 127],
                 quant_iq_signs64[(a >> (7 * l + 7)) & 127]);
}

static void vec_dot_iq2_xxs(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq2_xxs *x = vx;
    const quant_block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++) {
            uint32_t a[2];
            memcpy(a, x[i].qs + 8 * ib, 8);
            const uint8_t *ix = x[i].qs + 8 * ib;
            const uint64_t *g = quant_iq2xxs_grid;
            const int8_t *q8 = y[i].qs + 32 * ib;
            int32x4_t d = signed_dot16(pair8(g[ix[0]], g[ix[1]]), signs_idx(a[1], 0), q8);
            d = vaddq_s32(d, signed_dot16(pair8(g[ix[2]], g[ix[3]]), signs_idx(a[1], 2), q8 + 16));
            acc = vmlaq_n_s32(acc, d, (int32_t)(2 * (a[1] >> 28) + 1));
        }
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc));
    }
    *s = 0.125f * sum;
}

static void vec_dot_iq2_xs(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq2_xs *x = vx;
    const quant_block_q8_k *y = vy;
    const uint64_t *g = quant_iq2xs_grid, *t = quant_iq_signs64;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++) {
            uint16_t q[4];
            memcpy(q, x[i].qs + 8 * ib, 8);
            const int8_t *q8 = y[i].qs + 32 * ib;
            const int sc = x[i].scales[ib];
            const int32x4_t d0 = signed_dot16(pair8(g[q[0] & 511], g[q[1] & 511]),
                                              pair8(t[q[0] >> 9], t[q[1] >> 9]), q8);
            const int32x4_t d1 = signed_dot16(pair8(g[q[2] & 511], g[q[3] & 511]),
                                              pair8(t[q[2] >> 9], t[q[3] >> 9]), q8 + 16);
            acc = vmlaq_n_s32(acc, d0, 2 * (sc & 0xF) + 1);
            acc = vmlaq_n_s32(acc, d1, 2 * (sc >> 4) + 1);
        }
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc));
    }
    *s = 0.125f * sum;
}

static void vec_dot_iq2_s(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq2_s *x = vx;
    const quant_block_q8_k *y = vy;
    const uint64_t *g = quant_iq2s_grid, *t = quant_iq_bits64;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = x[i].qs + 4 * ib, *sg = qs + 32;
            const int h = x[i].qh[ib], sc = x[i].scales[ib];
            const int8_t *q8 = y[i].qs + 32 * ib;
            const int32x4_t d0 =
                signed_dot16(pair8(g[qs[0] | (h & 3) << 8], g[qs[1] | ((h >> 2) & 3) << 8]),
                             pair8(t[sg[0]], t[sg[1]]), q8);
            const int32x4_t d1 =
                signed_dot16(pair8(g[qs[2] | ((h >> 4) & 3) << 8], g[qs[3] | ((h >> 6) & 3) << 8]),
                             pair8(t[sg[2]], t[sg[3]]), q8 + 16);
            acc = vmlaq_n_s32(acc, d0, 2 * (sc & 0xF) + 1);
            acc = vmlaq_n_s32(acc, d1, 2 * (sc >> 4) + 1);
        }
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc));
    }
    *s = 0.125f * sum;
}

static void vec_dot_iq3_xxs(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq3_xxs *x = vx;
    const quant_block_q8_k *y = vy;
    const uint32_t *g = quant_iq3xxs_grid;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++) {
            uint32_t a;
            memcpy(&a, x[i].qs + 64 + 4 * ib, 4);
            const uint8_t *ix = x[i].qs + 8 * ib;
            const int8_t *q8 = y[i].qs + 32 * ib;
            int32x4_t d = signed_dot16(quad4(g, ix[0], ix[1], ix[2], ix[3]), signs_idx(a, 0), q8);
            d = vaddq_s32(
                d, signed_dot16(quad4(g, ix[4], ix[5], ix[6], ix[7]), signs_idx(a, 2), q8 + 16));
            acc = vmlaq_n_s32(acc, d, (int32_t)(2 * (a >> 28) + 1));
        }
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc));
    }
    *s = 0.25f * sum;
}

static void vec_dot_iq3_s(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq3_s *x = vx;
    const quant_block_q8_k *y = vy;
    const uint32_t *g = quant_iq3s_grid;
    const uint64_t *t = quant_iq_bits64;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = x[i].qs + 8 * ib, *sg = x[i].signs + 4 * ib;
            const unsigned h = x[i].qh[ib];
            int idx[8];
            for (int k = 0; k < 8; k++) idx[k] = qs[k] | ((h >> k) & 1) << 8;
            const int8_t *q8 = y[i].qs + 32 * ib;
            int32x4_t d = signed_dot16(quad4(g, idx[0], idx[1], idx[2], idx[3]),
                                       pair8(t[sg[0]], t[sg[1]]), q8);
            d = vaddq_s32(d, signed_dot16(quad4(g, idx[4], idx[5], idx[6], idx[7]),
                                          pair8(t[sg[2]], t[sg[3]]), q8 + 16));
            acc = vmlaq_n_s32(acc, d, 2 * ((x[i].scales[ib / 2] >> (4 * (ib % 2))) & 0xF) + 1);
        }
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc));
    }
    *s = sum;
}

static void vec_dot_iq1_s(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq1_s *x = vx;
    const quant_block_q8_k *y = vy;
    const uint64_t *g = quant_iq1s_grid;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        int32_t isum1 = 0;
        for (int ib = 0; ib < 8; ib++) {
            uint16_t h;
            memcpy(&h, x[i].qh + 2 * ib, 2);
            const uint8_t *qs = x[i].qs + 4 * ib;
            const int8_t *q8 = y[i].qs + 32 * ib;
            int32x4_t d = vdotq_s32(vdupq_n_s32(0),
                                    pair8(g[qs[0] | (h & 7) << 8], g[qs[1] | ((h >> 3) & 7) << 8]),
                                    vld1q_s8(q8));
            d = vdotq_s32(d, pair8(g[qs[2] | ((h >> 6) & 7) << 8], g[qs[3] | ((h >> 9) & 7) << 8]),
                          vld1q_s8(q8 + 16));
            const int ls = 2 * ((h >> 12) & 7) + 1;
            acc = vmlaq_n_s32(acc, d, ls);
            isum1 += (h & 0x8000 ? -ls : ls) * (y[i].bsums[2 * ib] + y[i].bsums[2 * ib + 1]);
        }
        sum += quant_iq1_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc), isum1);
    }
    *s = sum;
}

static void vec_dot_iq1_m(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq1_m *x = vx;
    const quant_block_q8_k *y = vy;
    const uint64_t *g = quant_iq1s_grid;
    const int8x16_t ones = vdupq_n_s8(1);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        uint16_t sw[4];
        memcpy(sw, x[i].scales, 8);
        int32x4_t acc = vdupq_n_s32(0);
        int32_t isum1 = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = x[i].qs + 4 * ib;
            const int h0 = x[i].qh[2 * ib], h1 = x[i].qh[2 * ib + 1];
            const int8_t *q8 = y[i].qs + 32 * ib;
            const int8x16_t y0 = vld1q_s8(q8), y1 = vld1q_s8(q8 + 16);
            const int ls0 = 2 * ((sw[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
            const int ls1 = 2 * ((sw[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
            const int32x4_t d0 =
                vdotq_s32(vdupq_n_s32(0),
                          pair8(g[qs[0] | (h0 & 7) << 8], g[qs[1] | ((h0 >> 4) & 7) << 8]), y0);
            const int32x4_t d1 =
                vdotq_s32(vdupq_n_s32(0),
                          pair8(g[qs[2] | (h1 & 7) << 8], g[qs[3] | ((h1 >> 4) & 7) << 8]), y1);
            acc = vmlaq_n_s32(vmlaq_n_s32(acc, d0, ls0), d1, ls1);
            /* sums of the activations per 8: lanes 0+1 and 2+3 of a 16's SDOT with ones */
            const int32x4_t s0 = vdotq_s32(vdupq_n_s32(0), ones, y0);
            const int32x4_t s1 = vdotq_s32(vdupq_n_s32(0), ones, y1);
            const int32_t a0 = vgetq_lane_s32(s0, 0) + vgetq_lane_s32(s0, 1);
            const int32_t a1 = vgetq_lane_s32(s0, 2) + vgetq_lane_s32(s0, 3);
            const int32_t a2 = vgetq_lane_s32(s1, 0) + vgetq_lane_s32(s1, 1);
            const int32_t a3 = vgetq_lane_s32(s1, 2) + vgetq_lane_s32(s1, 3);
            isum1 += ls0 * ((h0 & 8 ? -a0 : a0) + (h0 & 0x80 ? -a1 : a1)) +
                     ls1 * ((h1 & 8 ? -a2 : a2) + (h1 & 0x80 ? -a3 : a3));
        }
        sum +=
            quant_iq1_term(quant_f16_to_f32(quant_iq1m_d(&x[i])), y[i].d, vaddvq_s32(acc), isum1);
    }
    *s = sum;
}

/* ---- ternary ---- */

static inline int32_t q8k_total(const quant_block_q8_k *y) {
    const unsigned char *bs = (const unsigned char *)y + offsetof(quant_block_q8_k, bsums);
    const int16x8_t a = vreinterpretq_s16_u8(vld1q_u8(bs));
    const int16x8_t b = vreinterpretq_s16_u8(vld1q_u8(bs + 16));
    return vaddlvq_s16(a) + vaddlvq_s16(b);
}

static void vec_dot_tq2_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_tq2_0 *x = vx;
    const quant_block_q8_k *y = vy;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++)
            for (int half = 0; half < 2; half++) {
                const uint8x16_t q = vld1q_u8(x[i].qs + 32 * h + 16 * half);
                for (int l = 0; l < 4; l++) {
                    const uint8x16_t t = vandq_u8(vshlq_u8(q, vdupq_n_s8((int8_t)(-2 * l))), m3);
                    acc = vdotq_s32(acc, vreinterpretq_s8_u8(t),
                                    vld1q_s8(y[i].qs + 128 * h + 32 * l + 16 * half));
                }
            }
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc) - q8k_total(&y[i]));
    }
    *s = sum;
}

/* trit of every byte for multiplier p: (byte * p mod 256) * 3 >> 8 */
static inline int8x16_t trits16(uint8x16_t q, uint8_t p) {
    const uint8x16_t qn = vmulq_u8(q, vdupq_n_u8(p));
    const uint8x8_t three = vdup_n_u8(3);
    return vreinterpretq_s8_u8(vcombine_u8(vshrn_n_u16(vmull_u8(vget_low_u8(qn), three), 8),
                                           vshrn_n_u16(vmull_high_u8(qn, vdupq_n_u8(3)), 8)));
}

static void vec_dot_tq1_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_tq1_0 *x = vx;
    const quant_block_q8_k *y = vy;
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const int8_t *q8 = y[i].qs;
        int32x4_t acc = vdupq_n_s32(0);
        const uint8x16_t a = vld1q_u8(x[i].qs), b = vld1q_u8(x[i].qs + 16);
        const uint8x16_t c = vld1q_u8(x[i].qs + 32);
        for (int k = 0; k < 5; k++) {
            acc = vdotq_s32(acc, trits16(a, pow3[k]), vld1q_s8(q8 + 32 * k));
            acc = vdotq_s32(acc, trits16(b, pow3[k]), vld1q_s8(q8 + 32 * k + 16));
            acc = vdotq_s32(acc, trits16(c, pow3[k]), vld1q_s8(q8 + 160 + 16 * k));
        }
        /* qh: trit k of bytes 0..3 are elements 240 + 4k .. 240 + 4k + 3 */
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        const uint8x16_t hv = vreinterpretq_u8_u32(vdupq_n_u32(qh));
        const uint8x16_t mul = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
        const uint8x16_t qn = vmulq_u8(hv, mul);
        const int8x16_t th =
            vreinterpretq_s8_u8(vcombine_u8(vshrn_n_u16(vmull_u8(vget_low_u8(qn), vdup_n_u8(3)), 8),
                                            vshrn_n_u16(vmull_high_u8(qn, vdupq_n_u8(3)), 8)));
        acc = vdotq_s32(acc, th, vld1q_s8(q8 + 240));
        sum += quant_iq_term(h2f(x[i].d), y[i].d, vaddvq_s32(acc) - q8k_total(&y[i]));
    }
    *s = sum;
}

void quant_arm_neon_install_iquants(quant_traits *t) {
    t[GGUF_T_IQ4_NL].vec_dot = vec_dot_iq4_nl;
    t[GGUF_T_IQ4_XS].vec_dot = vec_dot_iq4_xs;
    t[GGUF_T_IQ4_XS].gemm = gemm_iq4_xs;
    t[GGUF_T_MXFP4].vec_dot = vec_dot_mxfp4;
    t[GGUF_T_IQ2_XXS].vec_dot = vec_dot_iq2_xxs;
    t[GGUF_T_IQ2_XS].vec_dot = vec_dot_iq2_xs;
    t[GGUF_T_IQ2_S].vec_dot = vec_dot_iq2_s;
    t[GGUF_T_IQ3_XXS].vec_dot = vec_dot_iq3_xxs;
    t[GGUF_T_IQ3_S].vec_dot = vec_dot_iq3_s;
    t[GGUF_T_IQ1_S].vec_dot = vec_dot_iq1_s;
    t[GGUF_T_IQ1_M].vec_dot = vec_dot_iq1_m;
    t[GGUF_T_TQ1_0].vec_dot = vec_dot_tq1_0;
    t[GGUF_T_TQ2_0].vec_dot = vec_dot_tq2_0;
}
