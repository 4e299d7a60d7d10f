/* Element-wise operations of the forward pass, written to round like ggml's CPU ops (sums of
 * squares and softmax denominators in double, RoPE angles advanced by repeated multiplication)
 * so that logits agree with the reference beyond the last printed digit. */
#include "model.h"

#include <math.h>
#include <string.h>

void model_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

void model_rope(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, int32_t pos, float base,
                float freq_scale, const float *freq_factors, model_rope_mode mode) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const int32_t half = n_rot / 2;
    float theta = (float)pos;
    for (int32_t i0 = 0; i0 < n_rot; i0 += 2) {
        const float ff = freq_factors ? freq_factors[i0 / 2] : 1.0f;
        const float th = freq_scale * (theta / ff);
        const float c = cosf(th), s = sinf(th);
        /* the pair a rotation acts on is the only thing the two modes disagree about */
        const int32_t a = mode == MODEL_ROPE_NEOX ? i0 / 2 : i0;
        const int32_t b = mode == MODEL_ROPE_NEOX ? i0 / 2 + half : i0 + 1;
        for (int32_t h = 0; h < n_head; h++) {
            float *v = x + (int64_t)h * head_dim;
            const float x0 = v[a], x1 = v[b];
            /* the reference's compiler contracts each rotation into one FMA whose product
             * term is x0's (checked bit for bit against its Q/K); the plain expression rounds
             * once more and is an ulp off often enough to flip a later 8-bit rounding */
            v[a] = fmaf(x0, c, -(x1 * s));
            v[b] = fmaf(x0, s, x1 * c);
        }
        theta *= theta_scale;
    }
}

/* exp as the reference engine's AVX-512 build computes it for softmax and SiLU: a degree-5
 * polynomial on a range-reduced argument, scaled by 2^n (Arm optimized-routines' expf, max error
 * about 1.5 ulp). Scalar and portable, so every machine rounds like the reference machine. The
 * operations are spelled out with fmaf so no compiler contraction can change them. */
float model_expf_poly(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (!(fabsf(n) <= 192.0f)) /* out of range, infinite or NaN: never convert those to int */
        return isnan(n) ? n : n <= 0.0f ? 0.0f : INFINITY;
    return ldexpf(j, (int)n);
}

/* The sum of 16 lanes in the order of a 512-bit horizontal add: halves, quarters, pairs. */
static float reduce16(const float *v) {
    float a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) a[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; i++) b[i] = a[i] + a[i + 4];
    for (int i = 0; i < 2; i++) c[i] = b[i] + b[i + 2];
    return c[0] + c[1];
}

/* The reference's tiled GEMM (used for batches of two or more tokens) gives every output 16
 * lanes, lane l an FMA chain over elements l, l+16, ..., then one 512-bit horizontal add. */
static float dot_tiled(const float *a, const float *b, int64_t n) {
    float lane[16] = {0};
    for (int64_t i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) lane[l] = fmaf(a[i + l], b[i + l], lane[l]);
    return reduce16(lane);
}

void model_dot_tiled_f32(int64_t n, float *s, const void *x, const void *y) {
    *s = dot_tiled(x, y, n);
}

void model_dot_tiled_f16(int64_t n, float *s, const void *x, const void *y) {
    const unsigned char *a = x, *b = y;
    float lane[16] = {0};
    for (int64_t i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) {
            uint16_t ha, hb;
            memcpy(&ha, a + 2 * (i + l), 2);
            memcpy(&hb, b + 2 * (i + l), 2);
            lane[l] = fmaf(quant_f16_to_f32(ha), quant_f16_to_f32(hb), lane[l]);
        }
    *s = reduce16(lane);
}

#if defined(__x86_64__) || defined(__i386__)
#define TILED_X86 1
#else
#define TILED_X86 0
#endif

quant_vec_dot_fn model_dot_tiled(bool f16) {
    const uint32_t need = CORE_CPU_AVX2 | CORE_CPU_FMA | CORE_CPU_F16C;
#if TILED_X86
    if ((core_cpu_usable() & need) == need)
        return f16 ? model_dot_tiled_f16_avx2 : model_dot_tiled_f32_avx2;
#else
    (void)need;
#endif
    return f16 ? model_dot_tiled_f16 : model_dot_tiled_f32;
}

void model_softmax(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    /* 16 values at a time, each group reduced in float and added in double, as the reference
     * does over its padded (masked) row: masked lanes are zeros, so every real value is part of
     * a full group */
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += 16) {
        float v[16];
        for (int k = 0; k < 16; k++) {
            const int64_t i = i0 + k;
            v[k] = i < n && x[i] != -INFINITY ? model_expf_poly(x[i] - max) : 0.0f;
            if (i < n) x[i] = v[k];
        }
        sum += (double)reduce16(v);
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void model_swiglu(float *g, const float *u, int64_t n) {
    /* groups of 16 from the start of the row use the polynomial exp, a tail the C library's */
    const int64_t n16 = n & ~(int64_t)15;
    for (int64_t i = 0; i < n16; i++) g[i] = g[i] / (1.0f + model_expf_poly(-g[i]));
    for (int64_t i = n16; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i]));
    for (int64_t i = 0; i < n; i++) g[i] *= u[i];
}
