/* AVX-512 (F/BW/VL + VNNI) kernels. This variant extends the AVX2 one: what is not here runs the
 * AVX2 kernel (activation quantizers, all legacy block dots, Q2_K/Q3_K).
 *
 * The legacy block dots stay on AVX2 on purpose: the reference engine adds one FMA per block into
 * 8 float lanes (or one scalar FMA per block for Q4_0) in block order, and reproducing those
 * roundings leaves a chain of dependent FMAs that wider registers cannot shorten. K-quant dots are
 * in avx512_kquants.c; the float dots below keep 4 x 16 float lanes. */
#include "quant/x86/avx2_util.h"

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
    t[GGUF_T_F16].vec_dot = vec_dot_f16;
    t[GGUF_T_BF16].vec_dot = vec_dot_bf16;
    t[GGUF_T_F32].vec_dot = vec_dot_f32;
    quant_x86_avx512_install_kquants(t);
}
