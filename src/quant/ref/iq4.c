/* Reference kernels of the 4-bit non-linear formats: IQ4_NL (blocks of 32, one fp16 scale) and
 * IQ4_XS (super-blocks of 256: an fp16 scale and eight 6-bit block scales offset by 32). Both map
 * each 4-bit code through the 16 levels of quant_iq4nl_values; inside a 32 the code of element
 * j is the low nibble of qs[j] and that of element j+16 the high nibble.
 *
 * Dots: IQ4_NL against Q8_0 (per block one float term), IQ4_XS against Q8_K (per super-block the
 * exact integer sum of scale * products, then one float term); quant_iq_term is the float step.
 *
 * Quantizers (no importance matrix; what llama-quantize does without one): per 32 a weighted
 * least-squares scale (weights x^2) chosen among 15 trial scales around the one that maps the
 * largest magnitude to the outermost level; IQ4_XS then rounds the block scales to 6 bits of
 * a super-block scale and re-picks the codes with the rounded scale. */
#include "quant/quant_impl.h"

#include <math.h>

/* ---- dequantization ---- */

void quant_ref_to_float_iq4_nl(const void *vx, float *y, int64_t n) {
    const quant_block_iq4_nl *x = vx;
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_f16_to_f32(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)quant_iq4nl_values[x[i].qs[j] & 0xF];
            y[j + 16] = d * (float)quant_iq4nl_values[x[i].qs[j] >> 4];
        }
    }
}

/* Six-bit scale of the ib-th 32 of an IQ4_XS block, offset removed (-32..31). */
static int iq4xs_scale(const quant_block_iq4_xs *b, int ib) {
    const int lo = (b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
    const int hi = (b->scales_h >> (2 * ib)) & 3;
    return (lo | hi << 4) - 32;
}

void quant_ref_to_float_iq4_xs(const void *vx, float *y, int64_t n) {
    const quant_block_iq4_xs *x = vx;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = quant_f16_to_f32(x[i].d);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            const float dl = d * (float)iq4xs_scale(&x[i], ib);
            const uint8_t *qs = x[i].qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)quant_iq4nl_values[qs[j] & 0xF];
                y[j + 16] = dl * (float)quant_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

/* ---- dot products ---- */

static int32_t dot32_nl(const uint8_t *qs, const int8_t *q8) {
    int32_t sum = 0;
    for (int j = 0; j < 16; j++)
        sum +=
            quant_iq4nl_values[qs[j] & 0xF] * q8[j] + quant_iq4nl_values[qs[j] >> 4] * q8[j + 16];
    return sum;
}

void quant_ref_vec_dot_iq4_nl(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq4_nl *x = vx;
    const quant_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++)
        sum += quant_iq_term(quant_f16_to_f32(x[i].d), quant_f16_to_f32(y[i].d),
                             dot32_nl(x[i].qs, y[i].qs));
    *s = sum;
}

void quant_ref_vec_dot_iq4_xs(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_iq4_xs *x = vx;
    const quant_block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        int32_t isum = 0;
        for (int ib = 0; ib < 8; ib++)
            isum += iq4xs_scale(&x[i], ib) * dot32_nl(x[i].qs + 16 * ib, y[i].qs + 32 * ib);
        sum += quant_iq_term(quant_f16_to_f32(x[i].d), y[i].d, isum);
    }
    *s = sum;
}

/* ---- quantizers ---- */

/* Index of the level nearest to v (the lower one on a tie); levels ascending. */
static int nearest_level(float v) {
    const int8_t *lv = quant_iq4nl_values;
    if (v <= lv[0]) return 0;
    if (v >= lv[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < lv[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - lv[hi - 1] < lv[hi] - v ? hi - 1 : hi;
}

/* Weighted fit of codes picked with multiplier id: *sqx = sum w*q*x, *sq2 = sum w*q*q. */
static void fit(const float *x, const float *w, float id, float *sqx, float *sq2) {
    float a = 0.0f, b = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float q = (float)quant_iq4nl_values[nearest_level(id * x[j])];
        const float wq = w[j] * q;
        a += wq * x[j];
        b += wq * q;
    }
    *sqx = a;
    *sq2 = b;
}

/* The best float scale of 32 values (0 for an all-zero block). */
static float block_scale(const float *x) {
    float w[32], amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        w[j] = x[j] * x[j];
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax < 1e-15f) return 0.0f;
    const float v0 = (float)quant_iq4nl_values[0];
    float sqx, sq2;
    fit(x, w, 1.0f / (-max / v0), &sqx, &sq2);
    float d = sqx / sq2, best = d * sqx;
    for (int t = -7; t <= 7; t++) {
        fit(x, w, ((float)t + v0) / max, &sqx, &sq2);
        if (sq2 > 0.0f && sqx * sqx > best * sq2) {
            d = sqx / sq2;
            best = d * sqx;
        }
    }
    return d;
}

static void put_codes(const float *x, float id, uint8_t *qs) {
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)(nearest_level(id * x[j]) | nearest_level(id * x[j + 16]) << 4);
}

void quant_ref_from_float_iq4_nl(const float *x, void *vy, int64_t n) {
    quant_block_iq4_nl *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++, x += QUANT_QK) {
        const float d = block_scale(x);
        y[i].d = quant_f32_to_f16(d);
        put_codes(x, d != 0.0f ? 1.0f / d : 0.0f, y[i].qs);
    }
}

void quant_ref_from_float_iq4_xs(const float *x, void *vy, int64_t n) {
    quant_block_iq4_xs *y = vy;
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        float sc[8], amax = 0.0f, max = 0.0f;
        for (int ib = 0; ib < 8; ib++) {
            sc[ib] = block_scale(x + 32 * ib);
            if (fabsf(sc[ib]) > amax) {
                amax = fabsf(sc[ib]);
                max = sc[ib];
            }
        }
        const float d = -max / 32.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        y[i].scales_h = 0;
        memset(y[i].scales_l, 0, sizeof y[i].scales_l);
        for (int ib = 0; ib < 8; ib++) {
            int l = quant_nearest_int(id * sc[ib]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            const float dl = d * (float)l;
            put_codes(x + 32 * ib, dl != 0.0f ? 1.0f / dl : 0.0f, y[i].qs + 16 * ib);
            l += 32;
            y[i].scales_l[ib / 2] |= (uint8_t)((l & 0xF) << (4 * (ib % 2)));
            y[i].scales_h |= (uint16_t)((l >> 4) << (2 * ib));
        }
    }
}
