/* Reference kernels of the ternary formats (super-blocks of 256 values in {-1, 0, 1} times one
 * fp16 scale), dots against Q8_K.
 *
 * TQ2_0: 2 bits per value (stored value + 1): element 128*h + 32*l + m is bits 2l..2l+1 of
 * qs[32*h + m]. TQ1_0: 5 trits per byte, the byte holding ceil(256 * t / 243) for the base-3
 * number t whose most significant trit comes first; trit n of byte q is (q * 3^n mod 256) * 3 /
 * 256. Elements 0..159: trit n of qs[m] is element 32n + m; 160..239: trit n of qs[32 + m] is
 * 160 + 16n + m; 240..255: trit n of qh[j] (4 trits, shifted up one place) is 240 + 4n + j.
 * Quantizers: scale = largest magnitude, values rounded half away from zero. */
#include "quant/quant_impl.h"

#include <math.h>

static int trit(uint8_t q, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t r = (uint8_t)(q * pow3[n]);
    return (int)(((unsigned)r * 3) >> 8);
}

static void unpack_tq1(const quant_block_tq1_0 *b, int8_t v[256]) {
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 32; m++) v[32 * n + m] = (int8_t)(trit(b->qs[m], n) - 1);
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 16; m++) v[160 + 16 * n + m] = (int8_t)(trit(b->qs[32 + m], n) - 1);
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) v[240 + 4 * n + j] = (int8_t)(trit(b->qh[j], n) - 1);
}

static void unpack_tq2(const quant_block_tq2_0 *b, int8_t v[256]) {
    for (int p = 0; p < 256; p++) {
        const int h = p / 128, l = (p % 128) / 32, m = p % 32;
        v[p] = (int8_t)(((b->qs[32 * h + m] >> (2 * l)) & 3) - 1);
    }
}

void quant_ref_to_float_tq1_0(const void *vx, float *y, int64_t n) {
    const quant_block_tq1_0 *x = vx;
    int8_t v[256];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        const float d = quant_f16_to_f32(x[i].d);
        unpack_tq1(&x[i], v);
        for (int p = 0; p < 256; p++) y[p] = (float)v[p] * d;
    }
}

void quant_ref_to_float_tq2_0(const void *vx, float *y, int64_t n) {
    const quant_block_tq2_0 *x = vx;
    int8_t v[256];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {
        const float d = quant_f16_to_f32(x[i].d);
        unpack_tq2(&x[i], v);
        for (int p = 0; p < 256; p++) y[p] = (float)v[p] * d;
    }
}

static int32_t dot256(const int8_t *v, const int8_t *q8) {
    int32_t s = 0;
    for (int p = 0; p < 256; p++) s += v[p] * q8[p];
    return s;
}

void quant_ref_vec_dot_tq1_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_tq1_0 *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t v[256];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        unpack_tq1(&x[i], v);
        sum += quant_iq_term(quant_f16_to_f32(x[i].d), y[i].d, dot256(v, y[i].qs));
    }
    *s = sum;
}

void quant_ref_vec_dot_tq2_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_tq2_0 *x = vx;
    const quant_block_q8_k *y = vy;
    int8_t v[256];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        unpack_tq2(&x[i], v);
        sum += quant_iq_term(quant_f16_to_f32(x[i].d), y[i].d, dot256(v, y[i].qs));
    }
    *s = sum;
}

/* x / amax rounded to -1, 0, 1, stored + 1 (NaN input stores 1: zero) */
static int ternary(float x, float id) {
    const float r = roundf(x * id);
    return r >= 1.0f ? 2 : r <= -1.0f ? 0 : 1;
}

static float absmax(const float *x) {
    float amax = 0.0f;
    for (int p = 0; p < 256; p++) amax = fmaxf(amax, fabsf(x[p]));
    return amax;
}

/* n trits, first most significant, times 3^(5-n), as a byte: ceil(256 * t / 243) */
static uint8_t pack_trits(const int *t, int n) {
    unsigned q = 0;
    for (int k = 0; k < n; k++) q = q * 3 + (unsigned)t[k];
    for (int k = n; k < 5; k++) q *= 3;
    return (uint8_t)((q * 256 + 242) / 243);
}

void quant_ref_from_float_tq1_0(const float *x, void *vy, int64_t n) {
    quant_block_tq1_0 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        const float d = absmax(x), id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        int t[5];
        for (int m = 0; m < 32; m++) {
            for (int k = 0; k < 5; k++) t[k] = ternary(x[32 * k + m], id);
            y[i].qs[m] = pack_trits(t, 5);
        }
        for (int m = 0; m < 16; m++) {
            for (int k = 0; k < 5; k++) t[k] = ternary(x[160 + 16 * k + m], id);
            y[i].qs[32 + m] = pack_trits(t, 5);
        }
        for (int j = 0; j < 4; j++) {
            for (int k = 0; k < 4; k++) t[k] = ternary(x[240 + 4 * k + j], id);
            y[i].qh[j] = pack_trits(t, 4);
        }
    }
}

void quant_ref_from_float_tq2_0(const float *x, void *vy, int64_t n) {
    quant_block_tq2_0 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        const float d = absmax(x), id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        for (int h = 0; h < 2; h++)
            for (int m = 0; m < 32; m++) {
                unsigned q = 0;
                for (int l = 0; l < 4; l++)
                    q |= (unsigned)ternary(x[128 * h + 32 * l + m], id) << (2 * l);
                y[i].qs[32 * h + m] = (uint8_t)q;
            }
    }
}
