/* Reference kernels of the 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1:
 * dequantization, quantizers and dot products against Q8_0/Q8_1 activations.
 *
 * Q4/Q5 blocks are first unpacked to 32 small integers (the four formats differ only in the fifth
 * bit and the offset), then shared code scales or multiplies them. The weight quantizers follow
 * llama.cpp's reference quantizers step for step (same float operations, same truncations), so
 * that quantizing an F32 model reproduces the bytes llama-quantize writes. */
#include "quant/quant_impl.h"

#include <float.h>
#include <math.h>

/* Element j of a Q4/Q5 block: low nibble of qs[j] for j < 16, high nibble of qs[j-16] otherwise;
 * the fifth bit (if any) is bit j of qh; minus `offset`. */
static void unpack_q45(const uint8_t qs[16], const uint8_t *qh4, int offset, int8_t out[32]) {
    uint32_t qh = 0;
    if (qh4) memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        out[j] = (int8_t)(lo - offset);
        out[j + 16] = (int8_t)(hi - offset);
    }
}

static void pack_q45(const uint8_t l[32], uint8_t qs[16], uint8_t *qh4) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((l[j] & 0xF) | ((l[j + 16] & 0xF) << 4));
        qh |= (uint32_t)((l[j] >> 4) & 1) << j;
        qh |= (uint32_t)((l[j + 16] >> 4) & 1) << (j + 16);
    }
    if (qh4) memcpy(qh4, &qh, 4);
}

static int dot_i8(const int8_t *a, const int8_t *b, int n) {
    int sum = 0;
    for (int j = 0; j < n; j++) sum += a[j] * b[j];
    return sum;
}

/* ---- symmetric formats: value = d * q ---- */

/* Largest-magnitude value of a block with its sign (the first one on ties). */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

/* Q4_0 (nmax 8) and Q5_0 (nmax 16): d = max / -nmax, q = trunc(x/d + nmax + 0.5). */
static void quantize_sym(const float *x, uint16_t *d_out, uint8_t qs[16], uint8_t *qh, int nmax) {
    const float d = signed_absmax(x, 32) / (float)-nmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t l[32];
    for (int j = 0; j < 32; j++)
        l[j] = (uint8_t)quant_trunc_clamp(x[j] * id + ((float)nmax + 0.5f), 0, 2 * nmax - 1);
    *d_out = quant_f32_to_f16(d);
    pack_q45(l, qs, qh);
}

void quant_ref_to_float_q4_0(const void *vx, float *y, int64_t n) {
    const quant_block_q4_0 *x = vx;
    int8_t q[32];
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_f16_to_f32(x[i].d);
        unpack_q45(x[i].qs, NULL, 8, q);
        for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d;
    }
}

void quant_ref_from_float_q4_0(const float *x, void *vy, int64_t n) {
    quant_block_q4_0 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        uint16_t d;
        quantize_sym(x + i * QUANT_QK, &d, y[i].qs, NULL, 8);
        y[i].d = d;
    }
}

void quant_ref_to_float_q5_0(const void *vx, float *y, int64_t n) {
    const quant_block_q5_0 *x = vx;
    int8_t q[32];
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_f16_to_f32(x[i].d);
        unpack_q45(x[i].qs, x[i].qh, 16, q);
        for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d;
    }
}

void quant_ref_from_float_q5_0(const float *x, void *vy, int64_t n) {
    quant_block_q5_0 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        uint16_t d;
        quantize_sym(x + i * QUANT_QK, &d, y[i].qs, y[i].qh, 16);
        y[i].d = d;
    }
}

/* ---- asymmetric formats: value = d * q + m ---- */

/* Q4_1 (levels 15) and Q5_1 (levels 31): d = (max - min) / levels, q = trunc((x-min)/d + 0.5). */
static void quantize_asym(const float *x, uint16_t *d_out, uint16_t *m_out, uint8_t qs[16],
                          uint8_t *qh, int levels) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / (float)levels;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t l[32];
    for (int j = 0; j < 32; j++)
        l[j] = (uint8_t)quant_trunc_clamp((x[j] - min) * id + 0.5f, 0, levels);
    *d_out = quant_f32_to_f16(d);
    *m_out = quant_f32_to_f16(min);
    pack_q45(l, qs, qh);
}

void quant_ref_to_float_q4_1(const void *vx, float *y, int64_t n) {
    const quant_block_q4_1 *x = vx;
    int8_t q[32];
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_f16_to_f32(x[i].d), m = quant_f16_to_f32(x[i].m);
        unpack_q45(x[i].qs, NULL, 0, q);
        for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d + m;
    }
}

void quant_ref_from_float_q4_1(const float *x, void *vy, int64_t n) {
    quant_block_q4_1 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        uint16_t d, m;
        quantize_asym(x + i * QUANT_QK, &d, &m, y[i].qs, NULL, 15);
        y[i].d = d;
        y[i].m = m;
    }
}

void quant_ref_to_float_q5_1(const void *vx, float *y, int64_t n) {
    const quant_block_q5_1 *x = vx;
    int8_t q[32];
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_f16_to_f32(x[i].d), m = quant_f16_to_f32(x[i].m);
        unpack_q45(x[i].qs, x[i].qh, 0, q);
        for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d + m;
    }
}

void quant_ref_from_float_q5_1(const float *x, void *vy, int64_t n) {
    quant_block_q5_1 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        uint16_t d, m;
        quantize_asym(x + i * QUANT_QK, &d, &m, y[i].qs, y[i].qh, 31);
        y[i].d = d;
        y[i].m = m;
    }
}

/* ---- 8-bit formats ---- */

/* A plain comparison, not fmaxf: that is a library call unless NaNs are ruled out. */
static float block_absmax(const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    return amax;
}

/* The run-time activation quantizer: multiplier 127/amax, round half to even. Returns sum(q). */
static int quantize_act8(const float *x, int8_t qs[32], float *d) {
    const float amax = block_absmax(x);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    *d = amax / 127.0f;
    for (int j = 0; j < 32; j++) {
        qs[j] = (int8_t)quant_nearest_int(x[j] * id);
        sum += qs[j];
    }
    return sum;
}

/* The model-file quantizer: multiplier 1/d, round half away from zero. Returns sum(q). */
static int quantize_file8(const float *x, int8_t qs[32], float *d) {
    *d = block_absmax(x) / 127.0f;
    const float id = *d != 0.0f ? 1.0f / *d : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        qs[j] = (int8_t)quant_trunc_clamp(roundf(x[j] * id), -127, 127);
        sum += qs[j];
    }
    return sum;
}

typedef int (*quantize8_fn)(const float *x, int8_t qs[32], float *d);

static void quantize_q8_0_with(const float *x, void *vy, int64_t n, quantize8_fn q8) {
    quant_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        float d;
        q8(x + i * QUANT_QK, y[i].qs, &d);
        y[i].d = quant_f32_to_f16(d);
    }
}

static void quantize_q8_1_with(const float *x, void *vy, int64_t n, quantize8_fn q8) {
    quant_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        float d;
        int sum = q8(x + i * QUANT_QK, y[i].qs, &d);
        y[i].d = quant_f32_to_f16(d);
        y[i].s = quant_f32_to_f16(d * (float)sum);
    }
}

void quant_ref_from_float_q8_0(const float *x, void *y, int64_t n) {
    quantize_q8_0_with(x, y, n, quantize_act8);
}

void quant_ref_quantize_q8_0(const float *x, void *y, int64_t n) {
    quantize_q8_0_with(x, y, n, quantize_file8);
}

void quant_ref_from_float_q8_1(const float *x, void *y, int64_t n) {
    quantize_q8_1_with(x, y, n, quantize_act8);
}

void quant_ref_quantize_q8_1(const float *x, void *y, int64_t n) {
    quantize_q8_1_with(x, y, n, quantize_file8);
}

void quant_ref_to_float_q8_0(const void *vx, float *y, int64_t n) {
    const quant_block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_f16_to_f32(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

void quant_ref_to_float_q8_1(const void *vx, float *y, int64_t n) {
    const quant_block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_f16_to_f32(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

/* ---- dot products: per block d_w*d_x*sum(q_w*q_x) (+ m_w*s_x for the _1 formats) ---- */

void quant_ref_vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q8_0 *x = vx, *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        const float d = quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d);
        sum += d * (float)dot_i8(x[i].qs, y[i].qs, 32);
    }
    *s = sum;
}

void quant_ref_vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    int8_t q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        unpack_q45(x[i].qs, NULL, 8, q);
        const float d = quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d);
        sum += d * (float)dot_i8(q, y[i].qs, 32);
    }
    *s = sum;
}

void quant_ref_vec_dot_q5_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q5_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    int8_t q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        unpack_q45(x[i].qs, x[i].qh, 16, q);
        const float d = quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d);
        sum += d * (float)dot_i8(q, y[i].qs, 32);
    }
    *s = sum;
}

void quant_ref_vec_dot_q4_1(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_1 *x = vx;
    const quant_block_q8_1 *y = vy;
    int8_t q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        unpack_q45(x[i].qs, NULL, 0, q);
        const float d = quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d);
        sum +=
            d * (float)dot_i8(q, y[i].qs, 32) + quant_f16_to_f32(x[i].m) * quant_f16_to_f32(y[i].s);
    }
    *s = sum;
}

void quant_ref_vec_dot_q5_1(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q5_1 *x = vx;
    const quant_block_q8_1 *y = vy;
    int8_t q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        unpack_q45(x[i].qs, x[i].qh, 0, q);
        const float d = quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d);
        sum +=
            d * (float)dot_i8(q, y[i].qs, 32) + quant_f16_to_f32(x[i].m) * quant_f16_to_f32(y[i].s);
    }
    *s = sum;
}
