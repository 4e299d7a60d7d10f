/* AVX-512 (F/BW/VL + VNNI) kernels. This variant extends the AVX2 one: what is not here runs the
 * AVX2 kernel (activation quantizers, all legacy block dots, Q2_K/Q3_K).
 *
 * The legacy block dots stay on AVX2 on purpose: the reference engine adds one FMA per block into
 * 8 float lanes (or one scalar FMA per block for Q4_0) in block order, and reproducing those
 * roundings leaves a chain of dependent FMAs that wider registers cannot shorten. K-quant dots are
 * in avx512_kquants.c; the float dots below keep 4 x 16 float lanes. */
#include "quant/x86/avx2_util.h"

#include <math.h>

/* ---- float dots ----
 * F32 and F16 follow the reference engine's AVX-512 vec_dot exactly: 4 accumulators of 16 lanes
 * over the largest multiple of 64 elements, folded as (a0+a2)+(a1+a3), reduced like gcc's
 * _mm512_reduce_add_ps, then the tail: F32 with contracted scalar FMAs, F16 summed in double.
 * (Its batched prompt path, tinyBLAS, orders things differently; one row cannot know.) */

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

/* hi 256 + lo 256, hi 128 + lo 128, then (l0 + l2) + (l1 + l3). */
static inline float reduce16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(c) + _mm_cvtss_f32(_mm_shuffle_ps(c, c, 1));
}

/* The vector part over the first np = n & ~63 elements. */
static inline float dot_64s(int64_t np, const unsigned char *a, const unsigned char *b, int esz,
                            load16_fn load) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int64_t i = 0; i < np; i += 64)
        for (int k = 0; k < 4; k++)
            acc[k] =
                _mm512_fmadd_ps(load(a + (i + 16 * k) * esz), load(b + (i + 16 * k) * esz), acc[k]);
    acc[0] = _mm512_add_ps(acc[0], acc[2]);
    acc[1] = _mm512_add_ps(acc[1], acc[3]);
    return reduce16(_mm512_add_ps(acc[0], acc[1]));
}

static void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    const int64_t np = n & ~(int64_t)63;
    float sum = dot_64s(np, x, y, 4, load16_f32);
    for (int64_t i = np; i < n; i++) {
        float a, b;
        memcpy(&a, x + 4 * i, 4);
        memcpy(&b, y + 4 * i, 4);
        sum = fmaf(a, b, sum);
    }
    *s = sum;
}

static void vec_dot_f16(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    const int64_t np = n & ~(int64_t)63;
    double sum = dot_64s(np, x, y, 2, load16_f16);
    for (int64_t i = np; i < n; i++) {
        uint16_t a, b;
        memcpy(&a, x + 2 * i, 2);
        memcpy(&b, y + 2 * i, 2);
        const float p = qx_h2f(a) * qx_h2f(b);
        sum += (double)p;
    }
    *s = (float)sum;
}

/* BF16: 64 per step in 4 accumulators, then a scalar tail. */
static void vec_dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    const int64_t np = n & ~(int64_t)63;
    float sum = dot_64s(np, x, y, 2, load16_bf16);
    for (int64_t i = np; i < n; i++) {
        uint16_t a, b;
        memcpy(&a, x + 2 * i, 2);
        memcpy(&b, y + 2 * i, 2);
        const float p = quant_bf16_to_f32(a) * quant_bf16_to_f32(b);
        sum += p;
    }
    *s = sum;
}

/* The engine's batched (tiled) kernel: one 16-lane accumulator per output, one FMA per 16
 * elements in order, then the same reduction. It only takes rows whose length is a multiple of
 * 16; other products stay on the single-row kernel. */
static inline float dot_tiled(int64_t n, const unsigned char *a, const unsigned char *b, int esz,
                              load16_fn load) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16)
        acc = _mm512_fmadd_ps(load(a + i * esz), load(b + i * esz), acc);
    return reduce16(acc);
}

static void vec_dot_batch_f32(int64_t n, float *s, const void *x, const void *y) {
    if (n % 16) {
        vec_dot_f32(n, s, x, y);
        return;
    }
    *s = dot_tiled(n, x, y, 4, load16_f32);
}

static void vec_dot_batch_f16(int64_t n, float *s, const void *x, const void *y) {
    if (n % 16) {
        vec_dot_f16(n, s, x, y);
        return;
    }
    *s = dot_tiled(n, x, y, 2, load16_f16);
}

void quant_x86_avx512_install(quant_traits *t) {
    t[GGUF_T_F16].vec_dot = vec_dot_f16;
    t[GGUF_T_BF16].vec_dot = vec_dot_bf16;
    t[GGUF_T_F32].vec_dot = vec_dot_f32;
    t[GGUF_T_F32].vec_dot_batch = vec_dot_batch_f32;
    t[GGUF_T_F16].vec_dot_batch = vec_dot_batch_f16;
    quant_x86_avx512_install_kquants(t);
}
