/* Element-wise operations of the forward pass, written to round like ggml's CPU ops (sums of
 * squares and softmax denominators in double, RoPE angles advanced by repeated multiplication)
 * so that logits agree with the reference beyond the last printed digit. */
#include "model.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

void model_rms_norm_ref(const float *x, const float *w, float *y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

void model_rope_angles(float *cs, int32_t n_rot, int32_t pos, float base, float freq_scale,
                       const float *freq_factors) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const int32_t half = n_rot / 2;
    float theta = (float)pos;
    for (int32_t i = 0; i < half; i++) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float th = freq_scale * (theta / ff);
        cs[i] = cosf(th);
        cs[half + i] = sinf(th);
        theta *= theta_scale;
    }
}

void model_rope_apply_ref(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot,
                          const float *cs, model_rope_mode mode) {
    const int32_t half = n_rot / 2;
    for (int32_t i = 0; i < half; i++) {
        const float c = cs[i], s = cs[half + i];
        /* the pair a rotation acts on is the only thing the two modes disagree about */
        const int32_t a = mode == MODEL_ROPE_NEOX ? i : 2 * i;
        const int32_t b = mode == MODEL_ROPE_NEOX ? i + half : 2 * i + 1;
        for (int32_t h = 0; h < n_head; h++) {
            float *v = x + (int64_t)h * head_dim;
            const float x0 = v[a], x1 = v[b];
            /* the reference's compiler contracts each rotation into one FMA whose product
             * term is x0's (checked bit for bit against its Q/K); the plain expression rounds
             * once more and is an ulp off often enough to flip a later 8-bit rounding */
            v[a] = fmaf(x0, c, -(x1 * s));
            v[b] = fmaf(x0, s, x1 * c);
        }
    }
}

void model_rope(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, int32_t pos, float base,
                float freq_scale, const float *freq_factors, model_rope_mode mode) {
    /* the same angles and rotations as model_rope_angles + model_rope_apply_ref, one pair at a
     * time (the tests hold the two paths equal) */
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const int32_t half = n_rot / 2;
    float theta = (float)pos;
    for (int32_t i = 0; i < half; i++) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float th = freq_scale * (theta / ff);
        const float cs[2] = {cosf(th), sinf(th)};
        const int32_t a = mode == MODEL_ROPE_NEOX ? i : 2 * i;
        const int32_t b = mode == MODEL_ROPE_NEOX ? i + half : 2 * i + 1;
        for (int32_t h = 0; h < n_head; h++) {
            float *v = x + (int64_t)h * head_dim;
            const float x0 = v[a], x1 = v[b];
            v[a] = fmaf(x0, cs[0], -(x1 * cs[1]));
            v[b] = fmaf(x0, cs[1], x1 * cs[0]);
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

/* x[i0..i0+16) ∩ [0, n) replaced by exp(x - max) (-inf: 0), the group reduced in float: the
 * reference's padded group, masked lanes being zeros. */
static double exp_group16(float *x, int64_t i0, int64_t n, float max) {
    float v[16];
    for (int k = 0; k < 16; k++) {
        const int64_t i = i0 + k;
        v[k] = i < n && x[i] != -INFINITY ? model_expf_poly(x[i] - max) : 0.0f;
        if (i < n) x[i] = v[k];
    }
    return (double)reduce16(v);
}

void model_softmax_ref(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    /* 16 values at a time, each group reduced in float and added in double, as the reference
     * does over its padded (masked) row: masked lanes are zeros, so every real value is part of
     * a full group */
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += 16) sum += exp_group16(x, i0, n, max);
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void model_swiglu_ref(float *g, const float *u, int64_t n) {
    /* groups of 16 from the start of the row use the polynomial exp, a tail the C library's */
    const int64_t n16 = n & ~(int64_t)15;
    for (int64_t i = 0; i < n16; i++) g[i] = g[i] / (1.0f + model_expf_poly(-g[i]));
    for (int64_t i = n16; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i]));
    for (int64_t i = 0; i < n; i++) g[i] *= u[i];
}

void model_f32_to_f16_ref(const float *x, void *y, int64_t n) {
    unsigned char *p = y;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = quant_f32_to_f16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

#if TILED_X86
/* AVX2+FMA versions. Each does per lane exactly the operations of its scalar reference, in the
 * same order: fmaf becomes a vector FMA, a division or product stays one rounding, and the
 * reductions keep the scalar order (RMSNorm's sum of squares is a sequential double sum, so it
 * stays scalar; only its scaling is vectorised). */
#define AVX2_FN __attribute__((target("avx2,fma")))

AVX2_FN static __m256 neg8(__m256 v) {
    return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f));
}

/* model_expf_poly on 8 lanes. *ok is cleared when a lane's exponent leaves [-126, 127] (or is
 * NaN): there scaling by 2^n is not one rounding like ldexpf, so the caller redoes those lanes
 * with the scalar function. Inside the range j * 2^n is the correctly rounded ldexpf(j, n). */
AVX2_FN static __m256 expf_poly8(__m256 x, bool *ok) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 nn = neg8(n);
    const __m256 b = _mm256_fmadd_ps(nn, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                     _mm256_fmadd_ps(nn, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 p5 =
        _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f));
    const __m256 p3 =
        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f));
    const __m256 p1 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f));
    const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p5, u, p3), u, p1);
    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(n, _mm256_set1_ps(-126.0f), _CMP_GE_OQ),
                                    _mm256_cmp_ps(n, _mm256_set1_ps(127.0f), _CMP_LE_OQ));
    if (_mm256_movemask_ps(in) != 0xFF) *ok = false;
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_and_ps(n, in)), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(j, _mm256_castsi256_ps(e));
}

/* reduce16's order: halves, quarters, pairs */
AVX2_FN static float reduce16_avx2(__m256 lo, __m256 hi) {
    const __m256 t = _mm256_add_ps(lo, hi);
    const __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

AVX2_FN void model_rms_norm_avx2(const float *x, const float *w, float *y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

AVX2_FN void model_rope_apply_avx2(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot,
                                   const float *cs, model_rope_mode mode) {
    const int32_t half = n_rot / 2;
    /* NeoX: x0 = v[i..i+8), x1 = v[half+i..); normal: 4 interleaved pairs per vector, x0 and x1
     * duplicated into both lanes of their pair, the coefficients arranged so that lane a gets
     * fma(x0, c, x1 * -s) and lane b fma(x0, s, x1 * c) (negating s is exact) */
    const int32_t step = mode == MODEL_ROPE_NEOX ? 8 : 4;
    const int32_t nv = half / step * step;
    for (int32_t h = 0; h < n_head; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int32_t i = 0; i < nv; i += step) {
            if (mode == MODEL_ROPE_NEOX) {
                const __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(cs + half + i);
                const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + half + i);
                _mm256_storeu_ps(v + i, _mm256_fmadd_ps(x0, c, neg8(_mm256_mul_ps(x1, s))));
                _mm256_storeu_ps(v + half + i, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
            } else {
                const __m128 c4 = _mm_loadu_ps(cs + i), s4 = _mm_loadu_ps(cs + half + i);
                const __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
                const __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
                const __m256 xv = _mm256_loadu_ps(v + 2 * i);
                const __m256 pa = _mm256_blend_ps(c, s, 0xAA),
                             pb = _mm256_blend_ps(neg8(s), c, 0xAA);
                _mm256_storeu_ps(v + 2 * i,
                                 _mm256_fmadd_ps(_mm256_moveldup_ps(xv), pa,
                                                 _mm256_mul_ps(_mm256_movehdup_ps(xv), pb)));
            }
        }
        for (int32_t i = nv; i < half; i++) {
            const float c = cs[i], s = cs[half + i];
            const int32_t a = mode == MODEL_ROPE_NEOX ? i : 2 * i;
            const int32_t b = mode == MODEL_ROPE_NEOX ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = fmaf(x0, c, -(x1 * s));
            v[b] = fmaf(x0, s, x1 * c);
        }
    }
}

AVX2_FN void model_softmax_avx2(float *x, int64_t n) {
    const int64_t n16 = n & ~(int64_t)15;
    /* the maximum does not depend on the order; NaNs are skipped as the scalar compare does
     * (max_ps returns its second operand when the first is NaN) */
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(_mm256_loadu_ps(x + i), vmax);
    float m8[8];
    _mm256_storeu_ps(m8, vmax);
    float max = -INFINITY;
    for (int k = 0; k < 8; k++)
        if (m8[k] > max) max = m8[k];
    for (; i < n; i++)
        if (x[i] > max) max = x[i];
    const __m256 vm = _mm256_set1_ps(max), ninf = _mm256_set1_ps(-INFINITY);
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < n16; i0 += 16) {
        const __m256 a = _mm256_loadu_ps(x + i0), b = _mm256_loadu_ps(x + i0 + 8);
        bool ok = true;
        __m256 ea = expf_poly8(_mm256_sub_ps(a, vm), &ok);
        __m256 eb = expf_poly8(_mm256_sub_ps(b, vm), &ok);
        ea = _mm256_andnot_ps(_mm256_cmp_ps(a, ninf, _CMP_EQ_OQ), ea);
        eb = _mm256_andnot_ps(_mm256_cmp_ps(b, ninf, _CMP_EQ_OQ), eb);
        if (!ok) { /* a lane outside the vector exp's range: this group the scalar way */
            float v[16];
            for (int k = 0; k < 16; k++)
                v[k] = x[i0 + k] != -INFINITY ? model_expf_poly(x[i0 + k] - max) : 0.0f;
            ea = _mm256_loadu_ps(v);
            eb = _mm256_loadu_ps(v + 8);
        }
        _mm256_storeu_ps(x + i0, ea);
        _mm256_storeu_ps(x + i0 + 8, eb);
        sum += (double)reduce16_avx2(ea, eb);
    }
    if (n16 < n) sum += exp_group16(x, n16, n, max);
    const float inv = (float)(1.0 / sum);
    const __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
    for (; i < n; i++) x[i] *= inv;
}

AVX2_FN void model_swiglu_avx2(float *g, const float *u, int64_t n) {
    const int64_t n16 = n & ~(int64_t)15;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n16; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        bool ok = true;
        const __m256 e = expf_poly8(neg8(x), &ok);
        __m256 y = _mm256_div_ps(x, _mm256_add_ps(one, e));
        if (!ok) {
            float t[8];
            for (int k = 0; k < 8; k++) t[k] = g[i + k] / (1.0f + model_expf_poly(-g[i + k]));
            y = _mm256_loadu_ps(t);
        }
        _mm256_storeu_ps(g + i, _mm256_mul_ps(y, _mm256_loadu_ps(u + i)));
    }
    for (int64_t i = n16; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
/* F16C rounds to nearest even like quant_f32_to_f16, subnormals and overflow to infinity
 * included; only a NaN's payload could come out differently, so groups holding one take the
 * scalar path. */
__attribute__((target("avx2,f16c"))) void model_f32_to_f16_avx2(const float *x, void *y,
                                                                int64_t n) {
    unsigned char *p = y;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            model_f32_to_f16_ref(x + i, p + 2 * i, 8);
            continue;
        }
        _mm_storeu_si128((__m128i *)(p + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    model_f32_to_f16_ref(x + i, p + 2 * i, n - i);
}
#endif

/* The element-wise operations run their AVX2 versions (below, bit-identical to the scalar
 * references above) when the CPU has AVX2, FMA and F16C and SHIMMY_ISA does not force scalar
 * code.
 * The choice is made once; every thread that races to make it makes the same one. */
#if TILED_X86
static bool use_avx2(void) {
    static int cached; /* 0 unknown, 1 scalar, 2 avx2 */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        const uint32_t need = CORE_CPU_AVX2 | CORE_CPU_FMA | CORE_CPU_F16C;
        v = (core_cpu_usable() & need) == need ? 2 : 1;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v == 2;
}
#endif

void model_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps) {
#if TILED_X86
    if (use_avx2()) return model_rms_norm_avx2(x, w, y, n, eps);
#endif
    model_rms_norm_ref(x, w, y, n, eps);
}

void model_rope_apply(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float *cs,
                      model_rope_mode mode) {
#if TILED_X86
    if (use_avx2()) return model_rope_apply_avx2(x, n_head, head_dim, n_rot, cs, mode);
#endif
    model_rope_apply_ref(x, n_head, head_dim, n_rot, cs, mode);
}

void model_softmax(float *x, int64_t n) {
#if TILED_X86
    if (use_avx2()) return model_softmax_avx2(x, n);
#endif
    model_softmax_ref(x, n);
}

void model_swiglu(float *g, const float *u, int64_t n) {
#if TILED_X86
    if (use_avx2()) return model_swiglu_avx2(g, u, n);
#endif
    model_swiglu_ref(g, u, n);
}

void model_f32_to_f16(const float *x, void *y, int64_t n) {
#if TILED_X86
    if (use_avx2()) return model_f32_to_f16_avx2(x, y, n);
#endif
    model_f32_to_f16_ref(x, y, n);
}
