/* AVX-512 (F/BW/VL + VNNI) kernels. This variant extends the AVX2 one: what is not here runs the
 * AVX2 kernel (activation quantizers, Q4_1/Q5_0/Q5_1, Q2_K/Q3_K).
 *
 * Legacy dots take two 32-element blocks per 512-bit register and multiply with VNNI's
 * vpdpbusd (unsigned x signed bytes summed in fours into int32); K-quant dots take 64 values
 * per step with maddubs/madd against a vector of per-group scales, summing integers exactly per
 * super-block like the AVX2 and scalar kernels, so they are bit-identical to the reference. */
#include "quant/x86/avx2_util.h"

/* ---- legacy block dots ---- */

static inline __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m512 two_scales(float a, float b) {
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(a), _mm512_set1_ps(b));
}

/* Signed x signed bytes (x may be -128, y never is) summed in fours. */
static inline __m512i dot_s8s8_512(__m512i x, __m512i y) {
    __mmask64 neg = _mm512_movepi8_mask(x);
    __m512i sy = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(x), sy);
}

static inline __m256i dot_s8s8_256(__m256i x, __m256i y) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x),
                               _mm256_sign_epi8(y, x));
}

static void vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q8_0 *x = vx, *y = vy;
    const int64_t nb = n / QUANT_QK;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i xv = join256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                             _mm256_loadu_si256((const __m256i *)x[i + 1].qs));
        __m512i yv = join256(_mm256_loadu_si256((const __m256i *)y[i].qs),
                             _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        __m512 d =
            two_scales(qx_h2f(x[i].d) * qx_h2f(y[i].d), qx_h2f(x[i + 1].d) * qx_h2f(y[i + 1].d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(dot_s8s8_512(xv, yv)), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        __m256i p = dot_s8s8_256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                 _mm256_loadu_si256((const __m256i *)y[i].qs));
        sum += qx_hsum_ps(
            _mm256_mul_ps(_mm256_set1_ps(qx_h2f(x[i].d) * qx_h2f(y[i].d)), _mm256_cvtepi32_ps(p)));
    }
    *s = sum;
}

/* Q4_0: nibbles u in 0..15 against y; the offset 8 comes back as 8*sum(y). */
static inline __m512i q40_dot(__m512i u, __m512i y) {
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y);
    __m512i sy = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), y);
    return _mm512_sub_epi32(p, _mm512_slli_epi32(sy, 3));
}

static void vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    const int64_t nb = n / QUANT_QK;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i u = join256(qx_nibbles32(x[i].qs), qx_nibbles32(x[i + 1].qs));
        __m512i yv = join256(_mm256_loadu_si256((const __m256i *)y[i].qs),
                             _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        __m512 d =
            two_scales(qx_h2f(x[i].d) * qx_h2f(y[i].d), qx_h2f(x[i + 1].d) * qx_h2f(y[i + 1].d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(q40_dot(u, yv)), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        __m256i q = _mm256_sub_epi8(qx_nibbles32(x[i].qs), _mm256_set1_epi8(8));
        __m256i p = dot_s8s8_256(q, _mm256_loadu_si256((const __m256i *)y[i].qs));
        sum += qx_hsum_ps(
            _mm256_mul_ps(_mm256_set1_ps(qx_h2f(x[i].d) * qx_h2f(y[i].d)), _mm256_cvtepi32_ps(p)));
    }
    *s = sum;
}

/* ---- float dots: 64 elements per step in 4 accumulators, 16 per step, scalar tail ---- */

static inline __m512 load16_f16(const unsigned char *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512 load16_bf16(const unsigned char *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline __m512 load16_f32(const unsigned char *p) {
    return _mm512_castsi512_ps(_mm512_loadu_si512((const void *)p));
}

typedef __m512 (*load16_fn)(const unsigned char *p);

static inline float dot_float(int64_t n, const unsigned char *a, const unsigned char *b, int esz,
                              load16_fn load, float (*one)(const unsigned char *)) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++)
            acc[k] =
                _mm512_fmadd_ps(load(a + (i + 16 * k) * esz), load(b + (i + 16 * k) * esz), acc[k]);
    for (; i + 16 <= n; i += 16)
        acc[0] = _mm512_fmadd_ps(load(a + i * esz), load(b + i * esz), acc[0]);
    float sum = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += one(a + i * esz) * one(b + i * esz);
    return sum;
}

static float one_f16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return qx_h2f(h);
}

static float one_bf16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return quant_bf16_to_f32(h);
}

static float one_f32(const unsigned char *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

static void vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    *s = dot_float(n, x, y, 2, load16_f16, one_f16);
}

static void vec_dot_bf16(int64_t n, float *s, const void *x, const void *y) {
    *s = dot_float(n, x, y, 2, load16_bf16, one_bf16);
}

static void vec_dot_f32(int64_t n, float *s, const void *x, const void *y) {
    *s = dot_float(n, x, y, 4, load16_f32, one_f32);
}

void quant_x86_avx512_install(quant_traits *t) {
    t[GGUF_T_Q8_0].vec_dot = vec_dot_q8_0;
    t[GGUF_T_Q4_0].vec_dot = vec_dot_q4_0;
    t[GGUF_T_F16].vec_dot = vec_dot_f16;
    t[GGUF_T_BF16].vec_dot = vec_dot_bf16;
    t[GGUF_T_F32].vec_dot = vec_dot_f32;
    quant_x86_avx512_install_kquants(t);
}
