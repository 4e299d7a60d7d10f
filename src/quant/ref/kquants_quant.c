/* Reference quantizers of the K-quant formats Q2_K..Q6_K.
 *
 * Each super-block of 256 values is cut into groups (16 or 32 values). Every group gets its own
 * scale (and, for the affine formats Q2_K/Q4_K/Q5_K, a min) by a small search: a handful of
 * candidate step sizes around the range/levels guess, each refined by the weighted least-squares
 * scale (and min) for the levels it produces, keeping the candidate with the smallest weighted
 * error. The group scales are then themselves quantized (4, 6 or 8 bits against an fp16 super
 * scale) and the values re-rounded against the scales actually stored, so the stored levels are
 * the best ones for what the dequantizer will compute. */
#include "quant/quant_impl.h"

#include <math.h>

#define GROUP_EPS 1e-15f

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Affine fit x ~ scale*L - min, L in [0, nmax], min >= 0 (groups that are all positive get
 * min 0). Weighted error: squared, or absolute when `abs_err`. Returns scale, sets *min. */
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *min_out,
                        float rmin, float rdelta, int nstep, int abs_err) {
    float lo = x[0], hi = x[0], sum_w = 0.0f, sum_x = 0.0f;
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0.0f) lo = 0.0f;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *min_out = -lo;
        return 0.0f;
    }
    float best_scale = (hi - lo) / (float)nmax, best_lo = lo, best_err = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(quant_nearest_int((x[i] - lo) / best_scale), 0, nmax);
        float e = best_scale * L[i] + lo - x[i];
        best_err += w[i] * (abs_err ? fabsf(e) : e * e);
    }
    uint8_t cand[32];
    for (int is = 0; is <= nstep; is++) {
        const float iscale = (rmin + rdelta * (float)is + (float)nmax) / (hi - lo);
        float sl = 0.0f, sl2 = 0.0f, sxl = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = clampi(quant_nearest_int(iscale * (x[i] - lo)), 0, nmax);
            cand[i] = (uint8_t)l;
            sl += w[i] * (float)l;
            sl2 += w[i] * (float)(l * l);
            sxl += w[i] * (float)l * x[i];
        }
        const float det = sum_w * sl2 - sl * sl;
        if (!(det > 0.0f)) continue;
        float scale = (sum_w * sxl - sum_x * sl) / det;
        float off = (sl2 * sum_x - sl * sxl) / det;
        if (off > 0.0f) { /* a positive offset cannot be stored: refit the scale alone */
            off = 0.0f;
            scale = sxl / sl2;
        }
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            float e = scale * cand[i] + off - x[i];
            err += w[i] * (abs_err ? fabsf(e) : e * e);
        }
        if (err < best_err) {
            memcpy(L, cand, (size_t)n);
            best_err = err;
            best_scale = scale;
            best_lo = off;
        }
    }
    *min_out = -best_lo;
    return best_scale;
}

/* Symmetric fit x ~ scale*l, l in [-nmax, nmax-1], weights x^2 (large values matter most).
 * Returns the (signed) scale; levels are not kept, the caller re-rounds. */
static float fit_symmetric(int n, int nmax, const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) return 0.0f;
    float best_scale = -max / (float)nmax, best = -1.0f;
    for (int is = -9; is <= 9; is++) {
        const float iscale = -((float)nmax + 0.1f * (float)is) / max;
        float sxl = 0.0f, sl2 = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sxl += w * x[i] * (float)l;
            sl2 += w * (float)(l * l);
        }
        /* least-squares scale sxl/sl2 leaves error sum(w x^2) - sxl^2/sl2: maximise sxl^2/sl2 */
        if (sl2 > 0.0f && sxl * sxl / sl2 > best) {
            best = sxl * sxl / sl2;
            best_scale = sxl / sl2;
        }
    }
    return best_scale;
}

/* Quantizes group values max_v * k / levels (k in [0, levels]) against the largest of them;
 * returns the super scale and fills q. */
static float quantize_scales(const float *v, int n, int levels, uint8_t *q) {
    float max_v = 0.0f;
    for (int j = 0; j < n; j++) max_v = fmaxf(max_v, v[j]);
    if (!(max_v > 0.0f)) {
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    const float inv = (float)levels / max_v;
    for (int j = 0; j < n; j++) q[j] = (uint8_t)clampi(quant_nearest_int(inv * v[j]), 0, levels);
    return max_v / (float)levels;
}

/* Re-rounds 'n' values to the levels [0, nmax] of stored step d and offset dm. */
static void requantize_affine(const float *x, int n, float d, float dm, int nmax, uint8_t *L) {
    if (d == 0.0f) return;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)clampi(quant_nearest_int((x[i] + dm) / d), 0, nmax);
}

void quant_ref_from_float_q2_k(const float *x, void *vy, int64_t n) {
    quant_block_q2_k *y = vy;
    uint8_t L[256], qs[16], qm[16];
    float w[16], scales[16], mins[16];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        for (int g = 0; g < 16; g++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * g + l]);
            scales[g] = fit_affine(16, 3, x + 16 * g, w, L + 16 * g, &mins[g], -0.5f, 0.1f, 15, 1);
        }
        const float d = quantize_scales(scales, 16, 15, qs);
        const float dmin = quantize_scales(mins, 16, 15, qm);
        y[i].d = quant_f32_to_f16(d);
        y[i].dmin = quant_f32_to_f16(dmin);
        for (int g = 0; g < 16; g++) {
            y[i].scales[g] = (uint8_t)(qs[g] | (qm[g] << 4));
            requantize_affine(x + 16 * g, 16, quant_f16_to_f32(y[i].d) * qs[g],
                              quant_f16_to_f32(y[i].dmin) * qm[g], 3, L + 16 * g);
        }
        for (int p = 0; p < 256; p++) {
            int h = p / 128, j = (p % 128) / 32, l = p % 32;
            if (j == 0) y[i].qs[32 * h + l] = 0;
            y[i].qs[32 * h + l] |= (uint8_t)(L[p] << (2 * j));
        }
    }
}

/* Q3_K and Q6_K: signed group scales quantized against the largest-magnitude one. */
static float quantize_signed_scales(const float *scales, int levels_neg, int levels_pos,
                                    int8_t *q) {
    float amax = 0.0f, max = 0.0f;
    for (int g = 0; g < 16; g++) {
        if (fabsf(scales[g]) > amax) {
            amax = fabsf(scales[g]);
            max = scales[g];
        }
    }
    if (amax < GROUP_EPS) {
        memset(q, 0, 16);
        return 0.0f;
    }
    const float iscale = -(float)levels_neg / max;
    for (int g = 0; g < 16; g++)
        q[g] = (int8_t)clampi(quant_nearest_int(iscale * scales[g]), -levels_neg, levels_pos);
    return 1.0f / iscale;
}

static void requantize_signed(const float *x, float d, int nmax, int8_t *L) {
    for (int l = 0; l < 16; l++)
        L[l] = (int8_t)(d != 0.0f ? clampi(quant_nearest_int(x[l] / d), -nmax, nmax - 1) : 0);
}

void quant_ref_from_float_q3_k(const float *x, void *vy, int64_t n) {
    quant_block_q3_k *y = vy;
    int8_t L[256], qsc[16];
    float scales[16];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        for (int g = 0; g < 16; g++) scales[g] = fit_symmetric(16, 4, x + 16 * g);
        y[i].d = quant_f32_to_f16(quantize_signed_scales(scales, 32, 31, qsc));
        memset(y[i].scales, 0, 12);
        for (int g = 0; g < 16; g++) {
            int v = qsc[g] + 32;
            if (g < 8)
                y[i].scales[g] = (uint8_t)(v & 0xF);
            else
                y[i].scales[g - 8] |= (uint8_t)((v & 0xF) << 4);
            y[i].scales[8 + g % 4] |= (uint8_t)((v >> 4) << (2 * (g / 4)));
            requantize_signed(x + 16 * g, quant_f16_to_f32(y[i].d) * qsc[g], 4, L + 16 * g);
        }
        memset(y[i].hmask, 0, 32);
        memset(y[i].qs, 0, 64);
        for (int p = 0; p < 256; p++) {
            int h = p / 128, j = (p % 128) / 32, l = p % 32, u = L[p] + 4;
            if (u > 3) y[i].hmask[l] |= (uint8_t)(1u << (4 * h + j));
            y[i].qs[32 * h + l] |= (uint8_t)((u & 3) << (2 * j));
        }
    }
}

/* Q4_K and Q5_K: 8 groups of 32 with six-bit scales and mins; `nmax` 15 or 31. Fills L. */
static void quantize_k45(const float *x, int nmax, float rmin, int nstep, uint16_t *d16,
                         uint16_t *dmin16, uint8_t s12[12], uint8_t L[256]) {
    float w[32], scales[8], mins[8];
    uint8_t qs[8], qm[8];
    for (int j = 0; j < 8; j++) {
        const float *g = x + 32 * j;
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += g[l] * g[l];
        const float av = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(g[l]);
        scales[j] = fit_affine(32, nmax, g, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep, 0);
    }
    *d16 = quant_f32_to_f16(quantize_scales(scales, 8, 63, qs));
    *dmin16 = quant_f32_to_f16(quantize_scales(mins, 8, 63, qm));
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s12[j] = qs[j];
            s12[j + 4] = qm[j];
        } else {
            s12[j + 4] = (uint8_t)((qs[j] & 0xF) | ((qm[j] & 0xF) << 4));
            s12[j - 4] |= (uint8_t)((qs[j] >> 4) << 6);
            s12[j] |= (uint8_t)((qm[j] >> 4) << 6);
        }
    }
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        quant_k4_scale_min(j, s12, &sc, &m);
        requantize_affine(x + 32 * j, 32, quant_f16_to_f32(*d16) * sc,
                          quant_f16_to_f32(*dmin16) * m, nmax, L + 32 * j);
    }
}

void quant_ref_from_float_q4_k(const float *x, void *vy, int64_t n) {
    quant_block_q4_k *y = vy;
    uint8_t L[256], s12[12];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        uint16_t d, dmin;
        quantize_k45(x, 15, -1.0f, 20, &d, &dmin, s12, L);
        y[i].d = d;
        y[i].dmin = dmin;
        memcpy(y[i].scales, s12, 12);
        for (int p = 0; p < 256; p++) {
            int c = p / 64, hi = (p % 64) / 32, l = p % 32;
            if (!hi) y[i].qs[32 * c + l] = 0;
            y[i].qs[32 * c + l] |= (uint8_t)(L[p] << (4 * hi));
        }
    }
}

void quant_ref_from_float_q5_k(const float *x, void *vy, int64_t n) {
    quant_block_q5_k *y = vy;
    uint8_t L[256], s12[12];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        uint16_t d, dmin;
        quantize_k45(x, 31, -0.5f, 15, &d, &dmin, s12, L);
        y[i].d = d;
        y[i].dmin = dmin;
        memcpy(y[i].scales, s12, 12);
        memset(y[i].qh, 0, 32);
        for (int p = 0; p < 256; p++) {
            int c = p / 64, hi = (p % 64) / 32, l = p % 32;
            if (!hi) y[i].qs[32 * c + l] = 0;
            y[i].qs[32 * c + l] |= (uint8_t)((L[p] & 0xF) << (4 * hi));
            y[i].qh[l] |= (uint8_t)((L[p] >> 4) << (2 * c + hi));
        }
    }
}

void quant_ref_from_float_q6_k(const float *x, void *vy, int64_t n) {
    quant_block_q6_k *y = vy;
    int8_t L[256], qsc[16];
    float scales[16];
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        for (int g = 0; g < 16; g++) scales[g] = fit_symmetric(16, 32, x + 16 * g);
        y[i].d = quant_f32_to_f16(quantize_signed_scales(scales, 128, 127, qsc));
        memcpy(y[i].scales, qsc, 16);
        for (int g = 0; g < 16; g++)
            requantize_signed(x + 16 * g, quant_f16_to_f32(y[i].d) * qsc[g], 32, L + 16 * g);
        memset(y[i].ql, 0, 128);
        memset(y[i].qh, 0, 64);
        for (int p = 0; p < 256; p++) {
            int h = p / 128, k = (p % 128) / 32, l = p % 32, u = L[p] + 32;
            y[i].ql[64 * h + 32 * (k & 1) + l] |= (uint8_t)((u & 0xF) << (4 * (k >> 1)));
            y[i].qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * k));
        }
    }
}
