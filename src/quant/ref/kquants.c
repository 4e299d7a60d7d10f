/* Reference kernels of the K-quant super-block formats Q2_K..Q6_K (dequantization and dot
 * products against Q8_K) and of the Q8_K activation format itself.
 *
 * Each format is unpacked to its 256 integer levels plus per-group scales (element order in
 * quant_impl.h); dequantization and the dot then share one shape. Dots sum integers exactly per
 * super-block and apply the float scales once per super-block, as the reference engine does:
 * sum += d_w*d_x * sum_g(scale_g * sum(q_w*q_x)) - dmin_w*d_x * sum_g(min_g * bsum_g).
 * Each product is its own statement so that no compiler contracts it into an FMA: the SIMD
 * kernels reproduce these roundings exactly. */
#include "quant/quant_impl.h"

#include <math.h>

/* ---- unpacking ---- */

static void unpack_q2k(const quant_block_q2_k *b, int8_t q[256]) {
    for (int p = 0; p < 256; p++) {
        int h = p / 128, j = (p % 128) / 32, l = p % 32;
        q[p] = (int8_t)((b->qs[32 * h + l] >> (2 * j)) & 3);
    }
}

static void unpack_q3k(const quant_block_q3_k *b, int8_t q[256]) {
    for (int p = 0; p < 256; p++) {
        int h = p / 128, j = (p % 128) / 32, l = p % 32;
        int lo = (b->qs[32 * h + l] >> (2 * j)) & 3;
        int high = (b->hmask[l] >> (4 * h + j)) & 1;
        q[p] = (int8_t)(lo - (high ? 0 : 4));
    }
}

static void unpack_q4k(const quant_block_q4_k *b, int8_t q[256]) {
    for (int p = 0; p < 256; p++) {
        int c = p / 64, hi = (p % 64) / 32, l = p % 32;
        q[p] = (int8_t)((b->qs[32 * c + l] >> (4 * hi)) & 0xF);
    }
}

static void unpack_q5k(const quant_block_q5_k *b, int8_t q[256]) {
    for (int p = 0; p < 256; p++) {
        int c = p / 64, hi = (p % 64) / 32, l = p % 32;
        int lo = (b->qs[32 * c + l] >> (4 * hi)) & 0xF;
        int h = (b->qh[l] >> (2 * c + hi)) & 1;
        q[p] = (int8_t)(lo | (h << 4));
    }
}

static void unpack_q6k(const quant_block_q6_k *b, int8_t q[256]) {
    for (int p = 0; p < 256; p++) {
        int h = p / 128, k = (p % 128) / 32, l = p % 32;
        int lo = (b->ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF;
        int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
        q[p] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static void k4_scales_mins(const uint8_t s12[12], uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 8; j++) quant_k4_scale_min(j, s12, &sc[j], &m[j]);
}

/* ---- dequantization ---- */

void quant_ref_to_float_q2_k(const void *vx, float *y, int64_t n) {
    const quant_block_q2_k *x = vx;
    int8_t q[256];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        const float d = quant_f16_to_f32(x[i].d), dmin = quant_f16_to_f32(x[i].dmin);
        unpack_q2k(&x[i], q);
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)(x[i].scales[g] & 0xF);
            const float ml = dmin * (float)(x[i].scales[g] >> 4);
            for (int l = 0; l < 16; l++) y[16 * g + l] = dl * (float)q[16 * g + l] - ml;
        }
    }
}

void quant_ref_to_float_q3_k(const void *vx, float *y, int64_t n) {
    const quant_block_q3_k *x = vx;
    int8_t q[256], sc[16];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        const float d = quant_f16_to_f32(x[i].d);
        unpack_q3k(&x[i], q);
        quant_q3k_scales(x[i].scales, sc);
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)sc[g];
            for (int l = 0; l < 16; l++) y[16 * g + l] = dl * (float)q[16 * g + l];
        }
    }
}

/* Q4_K and Q5_K share the scale/min layout and differ only in their levels. */
static void to_float_k45(const uint16_t d16, uint16_t dmin16, const uint8_t s12[12],
                         const int8_t q[256], float *y) {
    const float d = quant_f16_to_f32(d16), dmin = quant_f16_to_f32(dmin16);
    uint8_t sc[8], m[8];
    k4_scales_mins(s12, sc, m);
    for (int j = 0; j < 8; j++) {
        const float dl = d * (float)sc[j], ml = dmin * (float)m[j];
        for (int l = 0; l < 32; l++) y[32 * j + l] = dl * (float)q[32 * j + l] - ml;
    }
}

void quant_ref_to_float_q4_k(const void *vx, float *y, int64_t n) {
    const quant_block_q4_k *x = vx;
    int8_t q[256];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        unpack_q4k(&x[i], q);
        to_float_k45(x[i].d, x[i].dmin, x[i].scales, q, y);
    }
}

void quant_ref_to_float_q5_k(const void *vx, float *y, int64_t n) {
    const quant_block_q5_k *x = vx;
    int8_t q[256];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        unpack_q5k(&x[i], q);
        to_float_k45(x[i].d, x[i].dmin, x[i].scales, q, y);
    }
}

void quant_ref_to_float_q6_k(const void *vx, float *y, int64_t n) {
    const quant_block_q6_k *x = vx;
    int8_t q[256];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        const float d = quant_f16_to_f32(x[i].d);
        unpack_q6k(&x[i], q);
        for (int p = 0; p < 256; p++) y[p] = d * (float)x[i].scales[p / 16] * (float)q[p];
    }
}

void quant_ref_to_float_q8_k(const void *vx, float *y, int64_t n) {
    const quant_block_q8_k *x = vx;
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        const float d = x[i].d;
        for (int p = 0; p < 256; p++) y[p] = d * (float)x[i].qs[p];
    }
}

/* ---- the Q8_K activation quantizer ---- */

/* Scale -127/max with max the signed largest-magnitude value, so the extreme maps to -127 and
 * every level fits in [-127, 127] (the product of two levels then fits the integer kernels). */
void quant_ref_from_float_q8_k(const float *x, void *vy, int64_t n) {
    quant_block_q8_k *y = vy;
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        float max = 0.0f, amax = 0.0f;
        for (int p = 0; p < 256; p++) {
            if (fabsf(x[p]) > amax) {
                amax = fabsf(x[p]);
                max = x[p];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int p = 0; p < 256; p++) {
            int v = quant_nearest_int(iscale * x[p]);
            y[i].qs[p] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * g + l];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- dot products ---- */

static int dot16(const int8_t *a, const int8_t *b) {
    int sum = 0;
    for (int l = 0; l < 16; l++) sum += a[l] * b[l];
    return sum;
}

void quant_ref_vec_dot_q2_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q2_k *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t q[256];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        unpack_q2k(&x[i], q);
        int isum = 0, imin = 0;
        for (int g = 0; g < 16; g++) {
            isum += (x[i].scales[g] & 0xF) * dot16(q + 16 * g, y[i].qs + 16 * g);
            imin += (x[i].scales[g] >> 4) * y[i].bsums[g];
        }
        const float d = y[i].d * quant_f16_to_f32(x[i].d);
        const float dmin = y[i].d * quant_f16_to_f32(x[i].dmin);
        const float a = d * (float)isum;
        const float b = dmin * (float)imin;
        sum += a - b;
    }
    *s = sum;
}

void quant_ref_vec_dot_q3_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q3_k *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t q[256], sc[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        unpack_q3k(&x[i], q);
        quant_q3k_scales(x[i].scales, sc);
        int isum = 0;
        for (int g = 0; g < 16; g++) isum += sc[g] * dot16(q + 16 * g, y[i].qs + 16 * g);
        const float t = quant_f16_to_f32(x[i].d) * y[i].d * (float)isum;
        sum += t;
    }
    *s = sum;
}

static float dot_k45(uint16_t d16, uint16_t dmin16, const uint8_t s12[12], const int8_t q[256],
                     const quant_block_q8_k *y) {
    uint8_t sc[8], m[8];
    k4_scales_mins(s12, sc, m);
    int isum = 0, imin = 0;
    for (int j = 0; j < 8; j++) {
        isum += sc[j] *
                (dot16(q + 32 * j, y->qs + 32 * j) + dot16(q + 32 * j + 16, y->qs + 32 * j + 16));
        imin += m[j] * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
    }
    const float d = quant_f16_to_f32(d16) * y->d, dmin = quant_f16_to_f32(dmin16) * y->d;
    const float a = d * (float)isum;
    const float b = dmin * (float)imin;
    return a - b;
}

void quant_ref_vec_dot_q4_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_k *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t q[256];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        unpack_q4k(&x[i], q);
        sum += dot_k45(x[i].d, x[i].dmin, x[i].scales, q, &y[i]);
    }
    *s = sum;
}

void quant_ref_vec_dot_q5_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q5_k *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t q[256];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        unpack_q5k(&x[i], q);
        sum += dot_k45(x[i].d, x[i].dmin, x[i].scales, q, &y[i]);
    }
    *s = sum;
}

void quant_ref_vec_dot_q6_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q6_k *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t q[256];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        unpack_q6k(&x[i], q);
        int isum = 0;
        for (int g = 0; g < 16; g++) isum += x[i].scales[g] * dot16(q + 16 * g, y[i].qs + 16 * g);
        const float t = quant_f16_to_f32(x[i].d) * y[i].d * (float)isum;
        sum += t;
    }
    *s = sum;
}
