/* ARM64 NEON tile kernels (the `gemm` trait) for Q8_0 and Q4_0: the x86 tile kernels' idea
 * (src/quant/x86/gemm_body.h) with SDOT. Every element keeps the float steps of this variant's
 * vec_dot (the engine's x86 order), so results are bit-identical to it:
 * Q8_0, per (row, token) 8 float lanes and one FMA per block, tiles of 2 rows x 4 tokens;
 * Q4_0, per (row, token) one FMA per block on the block's integer total, with 4 weight rows as
 * the lanes of one vector, tiles of 4 rows x 4 tokens. */
#include "quant/quant_impl.h"

#include <arm_neon.h>

#define NG_ALWAYS static inline __attribute__((always_inline))

static inline float ng_h2f(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* (l0+l4 + l2+l6) + (l1+l5 + l3+l7), as the engine's x86 horizontal sum. */
static inline float ng_hsum8(float32x4_t lo, float32x4_t hi) {
    const float32x4_t a = vaddq_f32(lo, hi);
    const float b0 = vgetq_lane_f32(a, 0) + vgetq_lane_f32(a, 2);
    const float b1 = vgetq_lane_f32(a, 1) + vgetq_lane_f32(a, 3);
    return b0 + b1;
}

NG_ALWAYS void q8_0_tile(int rm, int rn, int64_t nb, const unsigned char *w, size_t ws,
                         const unsigned char *x, size_t xs, float *y, size_t ys) {
    float32x4_t lo[2][4], hi[2][4];
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < 4; t++) lo[r][t] = hi[r][t] = vdupq_n_f32(0.0f);
    const int32x4_t zero = vdupq_n_s32(0);
    for (int64_t b = 0; b < nb; b++) {
        int8x16_t w0[2] = {vdupq_n_s8(0), vdupq_n_s8(0)}, w1[2] = {vdupq_n_s8(0), vdupq_n_s8(0)};
        float dw[2] = {0.0f, 0.0f};
        for (int r = 0; r < rm; r++) {
            const quant_block_q8_0 *blk = (const quant_block_q8_0 *)(w + (size_t)r * ws) + b;
            w0[r] = vld1q_s8(blk->qs);
            w1[r] = vld1q_s8(blk->qs + 16);
            dw[r] = ng_h2f(blk->d);
        }
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + b;
            const int8x16_t y0 = vld1q_s8(yb->qs), y1 = vld1q_s8(yb->qs + 16);
            const float dy = ng_h2f(yb->d);
            for (int r = 0; r < rm; r++) {
                const float32x4_t d = vdupq_n_f32(dw[r] * dy);
                lo[r][t] = vfmaq_f32(lo[r][t], d, vcvtq_f32_s32(vdotq_s32(zero, w0[r], y0)));
                hi[r][t] = vfmaq_f32(hi[r][t], d, vcvtq_f32_s32(vdotq_s32(zero, w1[r], y1)));
            }
        }
    }
    for (int r = 0; r < rm; r++)
        for (int t = 0; t < rn; t++) y[(size_t)t * ys + r] = ng_hsum8(lo[r][t], hi[r][t]);
}

static void gemm_q8_0(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,
                      size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QK;
    for (int64_t r = 0; r < nr; r += 2) {
        const int rm = nr - r < 2 ? (int)(nr - r) : 2;
        for (int64_t t = 0; t < nt; t += 4) {
            const int rn = nt - t < 4 ? (int)(nt - t) : 4;
            const unsigned char *wr = w + (size_t)r * ws, *xt = x + (size_t)t * xs;
            float *yt = y + (size_t)t * ys + r;
            /* constant shapes for the common cases keep the tile in registers */
            if (rm == 2 && rn == 4)
                q8_0_tile(2, 4, nb, wr, ws, xt, xs, yt, ys);
            else if (rm == 2 && rn == 1)
                q8_0_tile(2, 1, nb, wr, ws, xt, xs, yt, ys);
            else
                q8_0_tile(rm, rn, nb, wr, ws, xt, xs, yt, ys);
        }
    }
}

NG_ALWAYS void q4_0_tile(int rm, int rn, int64_t nb, const unsigned char *w, size_t ws,
                         const unsigned char *x, size_t xs, float *y, size_t ys) {
    static const quant_block_q4_0 zero_block;
    const quant_block_q4_0 *rows[4];
    int64_t step[4];
    for (int r = 0; r < 4; r++) {
        rows[r] = r < rm ? (const quant_block_q4_0 *)(w + (size_t)r * ws) : &zero_block;
        step[r] = r < rm ? 1 : 0;
    }
    float32x4_t acc[4];
    for (int t = 0; t < 4; t++) acc[t] = vdupq_n_f32(0.0f);
    const int32x4_t zero = vdupq_n_s32(0);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t b = 0; b < nb; b++) {
        int8x16_t lo[4], hi[4];
        float dwv[4];
        for (int r = 0; r < 4; r++) {
            const quant_block_q4_0 *blk = rows[r] + b * step[r];
            const uint8x16_t q = vld1q_u8(blk->qs);
            lo[r] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
            hi[r] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
            dwv[r] = ng_h2f(blk->d);
        }
        const float32x4_t dw = vld1q_f32(dwv);
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + b;
            const int8x16_t y0 = vld1q_s8(yb->qs), y1 = vld1q_s8(yb->qs + 16);
            int32x4_t s[4];
            for (int r = 0; r < 4; r++) s[r] = vdotq_s32(vdotq_s32(zero, lo[r], y0), hi[r], y1);
            const int32x4_t tot = vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));
            acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(tot), vmulq_n_f32(dw, ng_h2f(yb->d)));
        }
    }
    for (int t = 0; t < rn; t++) {
        float lanes[4];
        vst1q_f32(lanes, acc[t]);
        for (int r = 0; r < rm; r++) y[(size_t)t * ys + r] = lanes[r];
    }
}

static void gemm_q4_0(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,
                      size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QK;
    for (int64_t r = 0; r < nr; r += 4) {
        const int rm = nr - r < 4 ? (int)(nr - r) : 4;
        for (int64_t t = 0; t < nt; t += 4) {
            const int rn = nt - t < 4 ? (int)(nt - t) : 4;
            const unsigned char *wr = w + (size_t)r * ws, *xt = x + (size_t)t * xs;
            float *yt = y + (size_t)t * ys + r;
            if (rm == 4 && rn == 4)
                q4_0_tile(4, 4, nb, wr, ws, xt, xs, yt, ys);
            else if (rm == 4 && rn == 1)
                q4_0_tile(4, 1, nb, wr, ws, xt, xs, yt, ys);
            else
                q4_0_tile(rm, rn, nb, wr, ws, xt, xs, yt, ys);
        }
    }
}

void quant_arm_neon_install_gemm(quant_traits *t) {
    t[GGUF_T_Q8_0].gemm = gemm_q8_0;
    t[GGUF_T_Q4_0].gemm = gemm_q4_0;
}
