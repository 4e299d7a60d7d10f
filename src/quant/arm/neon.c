/* ARM64 NEON kernels (ARMv8.2-A with the dot-product extension: SDOT).
 *
 * Activation quantizers Q8_0/Q8_1/Q8_K give the reference's bytes (vcvtnq rounds to nearest even
 * like the reference's integer rounding, and every multiply is the same single rounding). Dots:
 * Q8_0 and Q4_0 keep float lanes like the x86 ones; Q4_K and Q6_K sum integers exactly per
 * super-block and scale in the reference's order (bit-identical); F16/F32 accumulate in float. */
#include "quant/quant_impl.h"

#include <arm_neon.h>
#include <math.h>

static inline float h2f(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* 32 int32 in eight vectors -> 32 saturated int8 at out. */
static inline void store_q32(const int32x4_t q[8], int8_t *out) {
    for (int k = 0; k < 8; k += 2) {
        int16x8_t h = vcombine_s16(vqmovn_s32(q[k]), vqmovn_s32(q[k + 1]));
        vst1_s8(out + 4 * k, vqmovn_s16(h));
    }
}

/* ---- activation quantizers ---- */

/* One block of 32 with multiplier 127/amax; returns d = amax/127. */
static inline float q8_block(const float *x, int32x4_t q[8]) {
    float32x4_t v[8], m = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        m = vmaxnmq_f32(m, vabsq_f32(v[k])); /* NaN-ignoring, like the reference's compare */
    }
    const float amax = vmaxvq_f32(m);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int k = 0; k < 8; k++) q[k] = vcvtnq_s32_f32(vmulq_n_f32(v[k], id));
    return amax / 127.0f;
}

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    quant_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        int32x4_t q[8];
        const float d = q8_block(x + i * QUANT_QK, q);
        y[i].d = quant_f32_to_f16(d);
        store_q32(q, y[i].qs);
    }
}

static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    quant_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        int32x4_t q[8];
        const float d = q8_block(x + i * QUANT_QK, q);
        int32x4_t s = q[0];
        for (int k = 1; k < 8; k++) s = vaddq_s32(s, q[k]);
        y[i].d = quant_f32_to_f16(d);
        y[i].s = quant_f32_to_f16(d * (float)vaddvq_s32(s));
        store_q32(q, y[i].qs);
    }
}

static void from_float_q8_k(const float *x, void *vy, int64_t n) {
    quant_block_q8_k *y = vy;
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 64; k++) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + 4 * k)));
        const float amax = vmaxvq_f32(m);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0; /* the sign of the first extreme decides */
        while (first < QUANT_QKK - 1 && fabsf(x[first]) != amax) first++;
        const float iscale = -127.0f / x[first];
        const int32x4_t top = vdupq_n_s32(127);
        for (int g = 0; g < 16; g++) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++)
                q[k] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 16 * g + 4 * k), iscale)),
                                 top);
            int32x4_t s = vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]));
            y[i].bsums[g] = (int16_t)vaddvq_s32(s);
            int16x8_t a = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
            int16x8_t b = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
            vst1q_s8(y[i].qs + 16 * g, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- legacy dots ---- */

static inline int32x4_t dot32(int8x16_t a0, int8x16_t a1, const int8_t *y) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, vld1q_s8(y)), a1, vld1q_s8(y + 16));
}

static void vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q8_0 *x = vx, *y = vy;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        int32x4_t p = dot32(vld1q_s8(x[i].qs), vld1q_s8(x[i].qs + 16), y[i].qs);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x[i].d) * h2f(y[i].d));
    }
    *s = vaddvq_f32(acc);
}

static void vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    const int8x16_t eight = vdupq_n_s8(8);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        uint8x16_t q = vld1q_u8(x[i].qs);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot32(lo, hi, y[i].qs)), h2f(x[i].d) * h2f(y[i].d));
    }
    *s = vaddvq_f32(acc);
}

/* ---- K-quant dots ---- */

static inline int dot16(int8x16_t a, const int8_t *y) {
    return vaddvq_s32(vdotq_s32(vdupq_n_s32(0), a, vld1q_s8(y)));
}

static void vec_dot_q4_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_k *x = vx;
    const quant_block_q8_k *y = vy;
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        uint64_t sc8, m8;
        quant_k4_unpack(x[i].scales, &sc8, &m8);
        int isum = 0, imin = 0;
        for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(x[i].qs + 32 * c), q1 = vld1q_u8(x[i].qs + 32 * c + 16);
            const int8_t *yc = y[i].qs + 64 * c;
            int lo = dot16(vreinterpretq_s8_u8(vandq_u8(q0, low4)), yc) +
                     dot16(vreinterpretq_s8_u8(vandq_u8(q1, low4)), yc + 16);
            int hi = dot16(vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), yc + 32) +
                     dot16(vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), yc + 48);
            isum += (int)((sc8 >> (16 * c)) & 0xFF) * lo + (int)((sc8 >> (16 * c + 8)) & 0xFF) * hi;
        }
        for (int j = 0; j < 8; j++)
            imin += (int)((m8 >> (8 * j)) & 0xFF) * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        const float d = h2f(x[i].d) * y[i].d, dmin = h2f(x[i].dmin) * y[i].d;
        const float a = d * (float)isum;
        const float b = dmin * (float)imin;
        sum += a - b;
    }
    *s = sum;
}

static void vec_dot_q6_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q6_k *x = vx;
    const quant_block_q8_k *y = vy;
    const uint8x16_t low4 = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
    const int8x16_t off = vdupq_n_s8(32);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int isum = 0;
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 4; k++) {
                for (int part = 0; part < 2; part++) { /* 16 values: group 8h + 2k + part */
                    const int l0 = 16 * part;
                    uint8x16_t ql = vld1q_u8(x[i].ql + 64 * h + 32 * (k & 1) + l0);
                    uint8x16_t qh = vld1q_u8(x[i].qh + 32 * h + l0);
                    uint8x16_t lo = (k >> 1) ? vshrq_n_u8(ql, 4) : vandq_u8(ql, low4);
                    uint8x16_t hi = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(-2 * k))), three);
                    int8x16_t q =
                        vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hi, 4))), off);
                    isum += x[i].scales[8 * h + 2 * k + part] *
                            dot16(q, y[i].qs + 128 * h + 32 * k + l0);
                }
            }
        }
        const float t = h2f(x[i].d) * y[i].d * (float)isum;
        sum += t;
    }
    *s = sum;
}

/* ---- float dots ---- */

static void vec_dot_f16(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t a = vreinterpretq_f16_u8(vld1q_u8(x + 2 * i));
        float16x8_t b = vreinterpretq_f16_u8(vld1q_u8(y + 2 * i));
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(a)), vcvt_f32_f16(vget_low_f16(b)));
        acc1 = vfmaq_f32(acc1, vcvt_high_f32_f16(a), vcvt_high_f32_f16(b));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) {
        uint16_t a, b;
        memcpy(&a, x + 2 * i, 2);
        memcpy(&b, y + 2 * i, 2);
        sum += h2f(a) * h2f(b);
    }
    *s = sum;
}

static void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t a0 = vreinterpretq_f32_u8(vld1q_u8(x + 4 * i));
        float32x4_t a1 = vreinterpretq_f32_u8(vld1q_u8(x + 4 * i + 16));
        float32x4_t b0 = vreinterpretq_f32_u8(vld1q_u8(y + 4 * i));
        float32x4_t b1 = vreinterpretq_f32_u8(vld1q_u8(y + 4 * i + 16));
        acc0 = vfmaq_f32(acc0, a0, b0);
        acc1 = vfmaq_f32(acc1, a1, b1);
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) {
        float a, b;
        memcpy(&a, x + 4 * i, 4);
        memcpy(&b, y + 4 * i, 4);
        sum += a * b;
    }
    *s = sum;
}

void quant_arm_neon_install(quant_traits *t) {
    t[GGUF_T_Q8_0].from_float = from_float_q8_0;
    t[GGUF_T_Q8_1].from_float = from_float_q8_1;
    t[GGUF_T_Q8_K].from_float = from_float_q8_k;
    t[GGUF_T_Q8_0].vec_dot = vec_dot_q8_0;
    t[GGUF_T_Q4_0].vec_dot = vec_dot_q4_0;
    t[GGUF_T_Q4_K].vec_dot = vec_dot_q4_k;
    t[GGUF_T_Q6_K].vec_dot = vec_dot_q6_k;
    t[GGUF_T_F16].vec_dot = vec_dot_f16;
    t[GGUF_T_F32].vec_dot = vec_dot_f32;
}
