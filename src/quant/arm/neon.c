/* ARM64 NEON kernels (ARMv8.2-A with the dot-product extension: SDOT).
 *
 * Activation quantizers Q8_0/Q8_1/Q8_K give the reference's bytes (vcvtnq rounds to nearest even
 * like the reference's integer rounding, and every multiply is the same single rounding). The
 * dots (Q8_0, Q4_0, Q4_K, Q6_K, F16, F32, and the batched F16/F32) reproduce the x86 reference
 * engine's float order, so an ARM machine computes the same logits, bit for bit, as the x86 one
 * the reference data came from. */
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

/* ---- dots, in the reference engine's x86 order ----
 * The reference data comes from llama.cpp on x86, so these reproduce its x86 float order (see
 * x86/avx2.c and tests/quant/test_engine_order.c): 8 int32 lanes per block or super-block (lane k:
 * values 4k..4k+3 of every 32, which is what SDOT on two 16-byte halves gives), one fused
 * multiply-add per block into 8 float lanes (two NEON registers), the same horizontal sums. */

typedef struct lanes8 {
    int32x4_t lo, hi; /* lanes 0..3 and 4..7 */
} lanes8;

static inline lanes8 lanes_dot32(int8x16_t a0, int8x16_t a1, const int8_t *y) {
    lanes8 r = {vdotq_s32(vdupq_n_s32(0), a0, vld1q_s8(y)),
                vdotq_s32(vdupq_n_s32(0), a1, vld1q_s8(y + 16))};
    return r;
}

static inline lanes8 lanes_mla(lanes8 acc, lanes8 v, int32_t scale) {
    acc.lo = vmlaq_n_s32(acc.lo, v.lo, scale);
    acc.hi = vmlaq_n_s32(acc.hi, v.hi, scale);
    return acc;
}

typedef struct flanes8 {
    float32x4_t lo, hi;
} flanes8;

static inline flanes8 flanes_fma(flanes8 acc, float d, lanes8 v) {
    acc.lo = vfmaq_f32(acc.lo, vdupq_n_f32(d), vcvtq_f32_s32(v.lo));
    acc.hi = vfmaq_f32(acc.hi, vdupq_n_f32(d), vcvtq_f32_s32(v.hi));
    return acc;
}

/* (l0+l4 + l2+l6) + (l1+l5 + l3+l7), as the engine's x86 horizontal sum. */
static inline float hsum8(flanes8 v) {
    float32x4_t a = vaddq_f32(v.lo, v.hi);
    float b0 = vgetq_lane_f32(a, 0) + vgetq_lane_f32(a, 2);
    float b1 = vgetq_lane_f32(a, 1) + vgetq_lane_f32(a, 3);
    return b0 + b1;
}

static inline float hsum4(float32x4_t v) {
    float b0 = vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 2);
    float b1 = vgetq_lane_f32(v, 1) + vgetq_lane_f32(v, 3);
    return b0 + b1;
}

static const flanes8 fzero = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};

static void vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q8_0 *x = vx, *y = vy;
    flanes8 acc = fzero;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        lanes8 l = lanes_dot32(vld1q_s8(x[i].qs), vld1q_s8(x[i].qs + 16), y[i].qs);
        acc = flanes_fma(acc, h2f(x[i].d) * h2f(y[i].d), l);
    }
    *s = hsum8(acc);
}

/* Q4_0 as the engine's repacked kernel: each block's integer total, one scalar FMA per block. */
static void vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    const int8x16_t eight = vdupq_n_s8(8);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        uint8x16_t q = vld1q_u8(x[i].qs);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
        lanes8 l = lanes_dot32(lo, hi, y[i].qs);
        const int total = vaddvq_s32(vaddq_s32(l.lo, l.hi));
        sum = fmaf((float)total, h2f(x[i].d) * h2f(y[i].d), sum);
    }
    *s = sum;
}

static void vec_dot_q4_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_k *x = vx;
    const quant_block_q8_k *y = vy;
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    flanes8 acc = fzero;
    float32x4_t acc_m = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = -y[i].d * h2f(x[i].dmin);
        uint64_t sc8, m8;
        quant_k4_unpack(x[i].scales, &sc8, &m8);
        int32_t prod[4];
        for (int k = 0; k < 4; k++) {
            const int m_lo = (int)((m8 >> (16 * k)) & 0xFF),
                      m_hi = (int)((m8 >> (16 * k + 8)) & 0xFF);
            prod[k] = m_lo * (y[i].bsums[4 * k] + y[i].bsums[4 * k + 1]) +
                      m_hi * (y[i].bsums[4 * k + 2] + y[i].bsums[4 * k + 3]);
        }
        acc_m = vfmaq_f32(acc_m, vdupq_n_f32(dmin), vcvtq_f32_s32(vld1q_s32(prod)));
        lanes8 sumi = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(x[i].qs + 32 * c), q1 = vld1q_u8(x[i].qs + 32 * c + 16);
            const int8_t *yc = y[i].qs + 64 * c;
            lanes8 lo = lanes_dot32(vreinterpretq_s8_u8(vandq_u8(q0, low4)),
                                    vreinterpretq_s8_u8(vandq_u8(q1, low4)), yc);
            lanes8 hi = lanes_dot32(vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)),
                                    vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), yc + 32);
            sumi = lanes_mla(sumi, lo, (int32_t)((sc8 >> (16 * c)) & 0xFF));
            sumi = lanes_mla(sumi, hi, (int32_t)((sc8 >> (16 * c + 8)) & 0xFF));
        }
        acc = flanes_fma(acc, d, sumi);
    }
    *s = hsum8(acc) + hsum4(acc_m);
}

static void vec_dot_q6_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q6_k *x = vx;
    const quant_block_q8_k *y = vy;
    const uint8x16_t low4 = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
    const int8x16_t off = vdupq_n_s8(32);
    flanes8 acc = fzero;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * h2f(x[i].d);
        lanes8 sumi = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 4; k++) { /* 32 values: groups 8h + 2k and 8h + 2k + 1 */
                int8x16_t q[2];
                for (int part = 0; part < 2; part++) {
                    const int l0 = 16 * part;
                    uint8x16_t ql = vld1q_u8(x[i].ql + 64 * h + 32 * (k & 1) + l0);
                    uint8x16_t qh = vld1q_u8(x[i].qh + 32 * h + l0);
                    uint8x16_t lo = (k >> 1) ? vshrq_n_u8(ql, 4) : vandq_u8(ql, low4);
                    uint8x16_t hi = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(-2 * k))), three);
                    q[part] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hi, 4))), off);
                }
                const int g = 8 * h + 2 * k;
                const int8_t *yk = y[i].qs + 128 * h + 32 * k;
                int32x4_t l0 = vdotq_s32(vdupq_n_s32(0), q[0], vld1q_s8(yk));
                int32x4_t l1 = vdotq_s32(vdupq_n_s32(0), q[1], vld1q_s8(yk + 16));
                sumi.lo = vmlaq_n_s32(sumi.lo, l0, x[i].scales[g]);
                sumi.hi = vmlaq_n_s32(sumi.hi, l1, x[i].scales[g + 1]);
            }
        }
        acc = flanes_fma(acc, d, sumi);
    }
    *s = hsum8(acc);
}

/* ---- float dots: the engine's 4 x 16 lanes over n & ~63 (16 NEON registers), folded
 * (a0+a2)+(a1+a3), reduced lane i + i+8, then + i+4, then (0+2)+(1+3); tails as x86/avx2.c ---- */

typedef float32x4_t (*load4_fn)(const unsigned char *p);

static inline float32x4_t load4_f32(const unsigned char *p) {
    return vreinterpretq_f32_u8(vld1q_u8(p));
}

static inline float32x4_t load4_f16(const unsigned char *p) {
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

/* Accumulator k of the engine, quarter j (lanes 4j..4j+3), is acc[4k + j]. */
static inline float dot_64s(int64_t np, const unsigned char *a, const unsigned char *b, int esz,
                            load4_fn load) {
    float32x4_t acc[16];
    for (int r = 0; r < 16; r++) acc[r] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < np; i += 64)
        for (int r = 0; r < 16; r++)
            acc[r] = vfmaq_f32(acc[r], load(a + (i + 4 * r) * esz), load(b + (i + 4 * r) * esz));
    float32x4_t v[4];
    for (int j = 0; j < 4; j++)
        v[j] = vaddq_f32(vaddq_f32(acc[j], acc[8 + j]), vaddq_f32(acc[4 + j], acc[12 + j]));
    /* lane i + lane i+8, then + i+4 */
    float32x4_t t4 = vaddq_f32(vaddq_f32(v[0], v[2]), vaddq_f32(v[1], v[3]));
    return hsum4(t4);
}

/* The tail as the x86 engine's compiler made it: rounded products added in order for whole
 * groups of 8, FMAs for the last n % 8 (see x86/avx2.c). */
static void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    const int64_t np = n & ~(int64_t)63, nv = np + ((n - np) & ~(int64_t)7);
    float sum = dot_64s(np, x, y, 4, load4_f32);
    for (int64_t i = np; i < n; i++) {
        float a, b;
        memcpy(&a, x + 4 * i, 4);
        memcpy(&b, y + 4 * i, 4);
        if (i < nv) {
            const float p = a * b;
            sum += p;
        } else {
            sum = fmaf(a, b, sum);
        }
    }
    *s = sum;
}

static void vec_dot_f16(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    const int64_t np = n & ~(int64_t)63;
    double sum = dot_64s(np, x, y, 2, load4_f16);
    for (int64_t i = np; i < n; i++) {
        uint16_t a, b;
        memcpy(&a, x + 2 * i, 2);
        memcpy(&b, y + 2 * i, 2);
        const float p = h2f(a) * h2f(b);
        sum += (double)p;
    }
    *s = (float)sum;
}

/* The engine's tiled kernel (products over several activation rows, n % 16 == 0): one 16-lane
 * accumulator, one FMA per 16 values, the same reduction. */
static inline float dot_tiled(int64_t n, const unsigned char *a, const unsigned char *b, int esz,
                              load4_fn load) {
    float32x4_t q0 = vdupq_n_f32(0.0f), q1 = q0, q2 = q0, q3 = q0;
    for (int64_t i = 0; i < n; i += 16) {
        q0 = vfmaq_f32(q0, load(a + i * esz), load(b + i * esz));
        q1 = vfmaq_f32(q1, load(a + (i + 4) * esz), load(b + (i + 4) * esz));
        q2 = vfmaq_f32(q2, load(a + (i + 8) * esz), load(b + (i + 8) * esz));
        q3 = vfmaq_f32(q3, load(a + (i + 12) * esz), load(b + (i + 12) * esz));
    }
    return hsum4(vaddq_f32(vaddq_f32(q0, q2), vaddq_f32(q1, q3)));
}

static void vec_dot_batch_f32(int64_t n, float *s, const void *x, const void *y) {
    if (n % 16) {
        vec_dot_f32(n, s, x, y);
        return;
    }
    *s = dot_tiled(n, x, y, 4, load4_f32);
}

static void vec_dot_batch_f16(int64_t n, float *s, const void *x, const void *y) {
    if (n % 16) {
        vec_dot_f16(n, s, x, y);
        return;
    }
    *s = dot_tiled(n, x, y, 2, load4_f16);
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
    t[GGUF_T_F16].vec_dot_batch = vec_dot_batch_f16;
    t[GGUF_T_F32].vec_dot_batch = vec_dot_batch_f32;
    quant_arm_neon_install_iquants(t);
    quant_arm_neon_install_gemm(t);
}
