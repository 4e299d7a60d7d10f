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

/* Q4_0: nibbles u in 0..15 against y; the offset 8 comes back as 8*sum(y). */
static inline __m512i q40_dot(__m512i u, __m512i y) {
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y);
    __m512i sy = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), y);
    return _mm512_sub_epi32(p, _mm512_slli_epi32(sy, 3));
}

/* The nibbles of blocks b and b+1 as [lo(b), hi(b), lo(b+1), hi(b+1)], 16 bytes each: the
 * legacy element order of two consecutive blocks. */
static inline __m512i q40_nibbles2(const quant_block_q4_0 *b) {
    __m256i both =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)b[0].qs)),
                                _mm_loadu_si128((const __m128i *)b[1].qs), 1);
    __m512i dup = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                           _mm512_castsi256_si512(both));
    __m512i shift = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0,
                                      0x0004000400040004, 0x0004000400040004);
    return _mm512_and_si512(_mm512_srlv_epi16(dup, shift), _mm512_set1_epi8(0x0F));
}

/* fp16 scales of 4 consecutive weight and activation blocks multiplied: lanes 0..3. */
static inline __m128 scales4(uint16_t x0, uint16_t x1, uint16_t x2, uint16_t x3, uint16_t y0,
                             uint16_t y1, uint16_t y2, uint16_t y3) {
    __m128i hx = _mm_setr_epi16((short)x0, (short)x1, (short)x2, (short)x3, 0, 0, 0, 0);
    __m128i hy = _mm_setr_epi16((short)y0, (short)y1, (short)y2, (short)y3, 0, 0, 0, 0);
    return _mm_mul_ps(_mm_cvtph_ps(hx), _mm_cvtph_ps(hy));
}

static inline __m512 spread2(__m128 d, int k) {
    __m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(k), _mm256_set1_epi32(k + 1), 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d));
}

static inline __m512i load2_qs(const int8_t *a, const int8_t *b) {
    return join256(_mm256_loadu_si256((const __m256i *)a), _mm256_loadu_si256((const __m256i *)b));
}

static void vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q8_0 *x = vx, *y = vy;
    const int64_t nb = n / QUANT_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m128 d = scales4(x[i].d, x[i + 1].d, x[i + 2].d, x[i + 3].d, y[i].d, y[i + 1].d,
                           y[i + 2].d, y[i + 3].d);
        __m512i p01 = dot_s8s8_512(load2_qs(x[i].qs, x[i + 1].qs), load2_qs(y[i].qs, y[i + 1].qs));
        __m512i p23 =
            dot_s8s8_512(load2_qs(x[i + 2].qs, x[i + 3].qs), load2_qs(y[i + 2].qs, y[i + 3].qs));
        acc0 = _mm512_fmadd_ps(spread2(d, 0), _mm512_cvtepi32_ps(p01), acc0);
        acc1 = _mm512_fmadd_ps(spread2(d, 2), _mm512_cvtepi32_ps(p23), acc1);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) {
        __m256i p = dot_s8s8_256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                 _mm256_loadu_si256((const __m256i *)y[i].qs));
        sum += qx_hsum_ps(
            _mm256_mul_ps(_mm256_set1_ps(qx_h2f(x[i].d) * qx_h2f(y[i].d)), _mm256_cvtepi32_ps(p)));
    }
    *s = sum;
}

static void vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    const int64_t nb = n / QUANT_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m128 d = scales4(x[i].d, x[i + 1].d, x[i + 2].d, x[i + 3].d, y[i].d, y[i + 1].d,
                           y[i + 2].d, y[i + 3].d);
        __m512i y01 = load2_qs(y[i].qs, y[i + 1].qs), y23 = load2_qs(y[i + 2].qs, y[i + 3].qs);
        acc0 = _mm512_fmadd_ps(spread2(d, 0), _mm512_cvtepi32_ps(q40_dot(q40_nibbles2(x + i), y01)),
                               acc0);
        acc1 = _mm512_fmadd_ps(spread2(d, 2),
                               _mm512_cvtepi32_ps(q40_dot(q40_nibbles2(x + i + 2), y23)), acc1);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) {
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
