/* AVX2 (+FMA, F16C) kernels: the activation quantizers Q8_0/Q8_1/Q8_K, the legacy block dots
 * and the float dots. K-quant dots are in avx2_kquants.c.
 *
 * The quantizers produce exactly the bytes of the scalar reference (same float operations:
 * vector max/abs are exact, the multiply is the same single rounding, and round-to-nearest-even
 * is what the reference's integer rounding computes). The dots follow llama.cpp's x86 order of
 * float operations (see below), which the scalar reference does not: they agree with it to float
 * re-association error. */
#include "quant/x86/avx2_util.h"

#include <math.h>

/* ---- activation quantizers ---- */

/* One block of 32: quants as 4 x 8 int32 with multiplier 127/amax; returns d = amax/127. */
static inline float q8_block(const float *x, __m256i q[4]) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, qx_abs_ps(v[k]));
    }
    const float amax = qx_max_ps(m);
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return amax / 127.0f;
}

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    quant_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        __m256i q[4];
        const float d = q8_block(x + i * QUANT_QK, q);
        y[i].d = quant_f32_to_f16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, qx_pack32(q[0], q[1], q[2], q[3]));
    }
}

static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    quant_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        __m256i q[4];
        const float d = q8_block(x + i * QUANT_QK, q);
        const int sum = qx_hsum_epi32(
            _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        y[i].d = quant_f32_to_f16(d);
        y[i].s = quant_f32_to_f16(d * (float)sum);
        _mm256_storeu_si256((__m256i *)y[i].qs, qx_pack32(q[0], q[1], q[2], q[3]));
    }
}

/* Q8_K: scale -127/max, max the first value of largest magnitude (its sign matters). */
static void from_float_q8_k(const float *x, void *vy, int64_t n) {
    quant_block_q8_k *y = vy;
    for (int64_t i = 0; i < n / QUANT_QKK; i++, x += QUANT_QKK) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) m = _mm256_max_ps(m, qx_abs_ps(_mm256_loadu_ps(x + 8 * k)));
        const float amax = qx_max_ps(m);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m256 am = _mm256_set1_ps(amax);
        int first = 0;
        for (int k = 0; k < 32; k++) {
            int mask = _mm256_movemask_ps(
                _mm256_cmp_ps(qx_abs_ps(_mm256_loadu_ps(x + 8 * k)), am, _CMP_EQ_OQ));
            if (mask) {
                first = 8 * k + __builtin_ctz((unsigned)mask);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i top = _mm256_set1_epi32(127);
        for (int g = 0; g < 8; g++) { /* 32 values = 2 groups of 16 per step */
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * k), is);
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_round_ps(
                                            v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)),
                                        top);
            }
            y[i].bsums[2 * g] = (int16_t)qx_hsum_epi32(_mm256_add_epi32(q[0], q[1]));
            y[i].bsums[2 * g + 1] = (int16_t)qx_hsum_epi32(_mm256_add_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + 32 * g), qx_pack32(q[0], q[1], q[2], q[3]));
        }
        y[i].d = 1.0f / iscale;
    }
}

/* F16 rows: F16C rounds to nearest even with the reference's subnormals and overflow; only NaNs
 * differ (payloads), so a group holding one takes the scalar path (tests/quant/test_f16_rows.c). */
static void from_float_f16(const float *x, void *vy, int64_t n) {
    unsigned char *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            quant_ref_from_float_f16(x + i, y + 2 * i, 8);
            continue;
        }
        _mm_storeu_si128((__m128i *)(y + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    if (i < n) quant_ref_from_float_f16(x + i, y + 2 * i, n - i);
}

static void to_float_f16(const void *vx, float *y, int64_t n) {
    const unsigned char *x = vx;
    int64_t i = 0;
    const __m128i exp_mask = _mm_set1_epi16(0x7C00);
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(x + 2 * i));
        /* F16C quiets signalling NaNs, the reference keeps their bits: inf/NaN go scalar */
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, exp_mask), exp_mask))) {
            quant_ref_to_float_f16(x + 2 * i, y + i, 8);
            continue;
        }
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
    }
    if (i < n) quant_ref_to_float_f16(x + 2 * i, y + i, n - i);
}

/* ---- legacy block dots ----
 * These reproduce the reference engine's x86 arithmetic, not just its integers: Q8_0, Q5_0,
 * Q4_1 and Q5_1 keep 8 float lanes (lane k holds elements 4k..4k+3 of each block) updated by one
 * FMA per block in block order and summed at the end; Q4_0 (which llama.cpp runs through its
 * repacked 8-row kernel) adds each block's integer total with one scalar FMA per block. A
 * different summation order would move results by an ulp, enough to flip a later activation
 * rounding and change logits visibly. The min terms of Q4_1/Q5_1 are FMAs because the
 * reference's compiler contracts them. */

static inline __m256i load_qs(const int8_t *qs) {
    return _mm256_loadu_si256((const __m256i *)qs);
}

static inline __m256 scaled(uint16_t dx, uint16_t dy, __m256i p, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_set1_ps(qx_h2f(dx) * qx_h2f(dy)), _mm256_cvtepi32_ps(p), acc);
}

static inline __m256i fifth_bits(const uint8_t *qh4) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    return _mm256_and_si256(qx_bits32(qh), _mm256_set1_epi8(0x10));
}

static void vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q8_0 *x = vx, *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QK; i++)
        acc = scaled(x[i].d, y[i].d, qx_dot_s8s8(load_qs(x[i].qs), load_qs(y[i].qs)), acc);
    *s = qx_hsum_ps(acc);
}

static void vec_dot_q5_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q5_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        __m256i q = _mm256_sub_epi8(_mm256_or_si256(qx_nibbles32(x[i].qs), fifth_bits(x[i].qh)),
                                    _mm256_set1_epi8(16));
        acc = scaled(x[i].d, y[i].d, qx_dot_s8s8(q, load_qs(y[i].qs)), acc);
    }
    *s = qx_hsum_ps(acc);
}

static inline __m256i q4_0_lanes(const quant_block_q4_0 *x, const quant_block_q8_0 *y) {
    __m256i q = _mm256_sub_epi8(qx_nibbles32(x->qs), _mm256_set1_epi8(8));
    return qx_dot_s8s8(q, load_qs(y->qs));
}

/* The chain of scalar FMAs is the bound here, so the work around it is batched: four blocks'
 * integer totals by a tree of horizontal adds, their scales converted together. */
static void vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_0 *x = vx;
    const quant_block_q8_0 *y = vy;
    const int64_t nb = n / QUANT_QK;
    float sum = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m256i h01 = _mm256_hadd_epi32(q4_0_lanes(&x[i], &y[i]), q4_0_lanes(&x[i + 1], &y[i + 1]));
        __m256i h23 =
            _mm256_hadd_epi32(q4_0_lanes(&x[i + 2], &y[i + 2]), q4_0_lanes(&x[i + 3], &y[i + 3]));
        __m256i h = _mm256_hadd_epi32(h01, h23);
        __m128 t = _mm_cvtepi32_ps(
            _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
        __m128i hx = _mm_setr_epi16((short)x[i].d, (short)x[i + 1].d, (short)x[i + 2].d,
                                    (short)x[i + 3].d, 0, 0, 0, 0);
        __m128i hy = _mm_setr_epi16((short)y[i].d, (short)y[i + 1].d, (short)y[i + 2].d,
                                    (short)y[i + 3].d, 0, 0, 0, 0);
        __m128 d = _mm_mul_ps(_mm_cvtph_ps(hx), _mm_cvtph_ps(hy));
        float tv[4], dv[4];
        _mm_storeu_ps(tv, t);
        _mm_storeu_ps(dv, d);
        for (int k = 0; k < 4; k++) sum = fmaf(tv[k], dv[k], sum);
    }
    for (; i < nb; i++) {
        const int isum = qx_hsum_epi32(q4_0_lanes(&x[i], &y[i]));
        sum = fmaf((float)isum, qx_h2f(x[i].d) * qx_h2f(y[i].d), sum);
    }
    *s = sum;
}

static void vec_dot_q4_1(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_1 *x = vx;
    const quant_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        mins = fmaf(qx_h2f(x[i].m), qx_h2f(y[i].s), mins);
        acc = scaled(x[i].d, y[i].d, qx_dot_u8s8(qx_nibbles32(x[i].qs), load_qs(y[i].qs)), acc);
    }
    *s = qx_hsum_ps(acc) + mins;
}

static void vec_dot_q5_1(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q5_1 *x = vx;
    const quant_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        mins = fmaf(qx_h2f(x[i].m), qx_h2f(y[i].s), mins);
        __m256i q = _mm256_or_si256(qx_nibbles32(x[i].qs), fifth_bits(x[i].qh));
        acc = scaled(x[i].d, y[i].d, qx_dot_u8s8(q, load_qs(y[i].qs)), acc);
    }
    *s = qx_hsum_ps(acc) + mins;
}

/* ---- float dots ----
 * The reference engine's AVX-512 order, written with pairs of 256-bit registers for its 16
 * lanes, so this variant gives the same bits as the AVX-512 one (and as the engine): single-row
 * dots keep 4 x 16 lanes over n & ~63, folded (a0+a2)+(a1+a3), then a scalar tail (F32:
 * rounded products for groups of 8, FMAs for the last n % 8; F16: double); batched F32/F16 dots
 * keep one 16-lane accumulator (its tiled kernel, n % 16 == 0). BF16 is in avx2_bf16.c. */

static inline __m256 load_f16(const unsigned char *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_f32(const unsigned char *p) {
    return _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)p));
}

typedef __m256 (*load8_fn)(const unsigned char *p);

/* The vector part over the first np = n & ~63 elements: a<k><h> holds lanes 8h..8h+7 of the
 * engine's accumulator k (named registers: an array here ends up on the stack). */
static inline float dot_64s_ab(int64_t np, const unsigned char *a, int ea, load8_fn la,
                               const unsigned char *b, int eb, load8_fn lb) {
    __m256 a0l = _mm256_setzero_ps(), a0h = a0l, a1l = a0l, a1h = a0l, a2l = a0l, a2h = a0l,
           a3l = a0l, a3h = a0l;
    for (int64_t i = 0; i < np; i += 64) {
        const unsigned char *pa = a + i * ea, *pb = b + i * eb;
        a0l = _mm256_fmadd_ps(la(pa), lb(pb), a0l);
        a0h = _mm256_fmadd_ps(la(pa + 8 * ea), lb(pb + 8 * eb), a0h);
        a1l = _mm256_fmadd_ps(la(pa + 16 * ea), lb(pb + 16 * eb), a1l);
        a1h = _mm256_fmadd_ps(la(pa + 24 * ea), lb(pb + 24 * eb), a1h);
        a2l = _mm256_fmadd_ps(la(pa + 32 * ea), lb(pb + 32 * eb), a2l);
        a2h = _mm256_fmadd_ps(la(pa + 40 * ea), lb(pb + 40 * eb), a2h);
        a3l = _mm256_fmadd_ps(la(pa + 48 * ea), lb(pb + 48 * eb), a3l);
        a3h = _mm256_fmadd_ps(la(pa + 56 * ea), lb(pb + 56 * eb), a3h);
    }
    __m256 lo = _mm256_add_ps(_mm256_add_ps(a0l, a2l), _mm256_add_ps(a1l, a3l));
    __m256 hi = _mm256_add_ps(_mm256_add_ps(a0h, a2h), _mm256_add_ps(a1h, a3h));
    return qx_reduce16(lo, hi);
}

static inline float dot_64s(int64_t np, const unsigned char *a, const unsigned char *b, int esz,
                            load8_fn load) {
    return dot_64s_ab(np, a, esz, load, b, esz, load);
}

static inline float dot_tiled(int64_t n, const unsigned char *a, const unsigned char *b, int esz,
                              load8_fn load) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        lo = _mm256_fmadd_ps(load(a + i * esz), load(b + i * esz), lo);
        hi = _mm256_fmadd_ps(load(a + (i + 8) * esz), load(b + (i + 8) * esz), hi);
    }
    return qx_reduce16(lo, hi);
}

static inline float one_f16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return qx_h2f(h);
}

static inline float one_f32(const unsigned char *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* The F32 tail is what the reference's compiler made of `sum += x[i]*y[i]`: it vectorized the
 * products of whole groups of 8 (each product rounded, then added one by one in order) and
 * contracted only the last n % 8 into scalar FMAs (read from its object code; an FMA for every
 * tail element is an ulp off on attention over 32 cache cells). */
static void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    const int64_t np = n & ~(int64_t)63, nv = np + ((n - np) & ~(int64_t)7);
    float sum = dot_64s(np, x, y, 4, load_f32);
    for (int64_t i = np; i < nv; i++) {
        const float p = one_f32(x + 4 * i) * one_f32(y + 4 * i);
        sum += p;
    }
    for (int64_t i = nv; i < n; i++) sum = fmaf(one_f32(x + 4 * i), one_f32(y + 4 * i), sum);
    *s = sum;
}

static void vec_dot_f16(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    const int64_t np = n & ~(int64_t)63;
    double sum = dot_64s(np, x, y, 2, load_f16);
    for (int64_t i = np; i < n; i++) {
        const float p = one_f16(x + 2 * i) * one_f16(y + 2 * i);
        sum += (double)p;
    }
    *s = (float)sum;
}

/* Attention's rows (a query against every key, probabilities against every value row): each
 * row gets vec_dot_f16's bits (the same accumulators, fold and tail), with x converted to F32
 * once instead of once per row and no call per row. The tail past n & ~63 (32 cells of a
 * value row half the time) is a chain of double additions in element order; four rows go
 * through it together, one row per lane (products rounded to float as there, a 4 x 4
 * transpose, then the adds in order), so four chains overlap instead of one waiting on each
 * add. Longer x than the stack copy holds (past 4096 cache cells) goes row by row. */
#define ROWS_F16_MAX 4096

/* rows a..a+3 (stride ws) times xf over elements [i0, i1), i1 - i0 a multiple of 4, added in
 * order to each row's lane of sum */
static inline __m256d tail4_f16(__m256d sum, const unsigned char *a, size_t ws, const float *xf,
                                int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i += 4) {
        const __m128 xv = _mm_load_ps(xf + i);
        __m256d p[4];
        for (int q = 0; q < 4; q++)
            p[q] = _mm256_cvtps_pd(_mm_mul_ps(
                _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(a + (size_t)q * ws + 2 * i))), xv));
        const __m256d t0 = _mm256_unpacklo_pd(p[0], p[1]), t1 = _mm256_unpackhi_pd(p[0], p[1]);
        const __m256d t2 = _mm256_unpacklo_pd(p[2], p[3]), t3 = _mm256_unpackhi_pd(p[2], p[3]);
        sum = _mm256_add_pd(sum, _mm256_permute2f128_pd(t0, t2, 0x20));
        sum = _mm256_add_pd(sum, _mm256_permute2f128_pd(t1, t3, 0x20));
        sum = _mm256_add_pd(sum, _mm256_permute2f128_pd(t0, t2, 0x31));
        sum = _mm256_add_pd(sum, _mm256_permute2f128_pd(t1, t3, 0x31));
    }
    return sum;
}

static void dot_rows_f16(int64_t n, int64_t nr, const void *vw, size_t ws, const void *vx,
                         float *y) {
    const unsigned char *w = vw, *x = vx;
    if (n > ROWS_F16_MAX) {
        for (int64_t r = 0; r < nr; r++) vec_dot_f16(n, y + r, w + (size_t)r * ws, x);
        return;
    }
    const int64_t np = n & ~(int64_t)63, n4 = n & ~(int64_t)3;
    float xf[ROWS_F16_MAX] __attribute__((aligned(32)));
    for (int64_t i = 0; i < np; i += 8) _mm256_store_ps(xf + i, load_f16(x + 2 * i));
    for (int64_t i = np; i < n; i++) xf[i] = one_f16(x + 2 * i);
    const unsigned char *xb = (const unsigned char *)xf;
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) {
        const unsigned char *a = w + (size_t)r * ws;
        __m256d sum = _mm256_set_pd(dot_64s_ab(np, a + 3 * ws, 2, load_f16, xb, 4, load_f32),
                                    dot_64s_ab(np, a + 2 * ws, 2, load_f16, xb, 4, load_f32),
                                    dot_64s_ab(np, a + ws, 2, load_f16, xb, 4, load_f32),
                                    dot_64s_ab(np, a, 2, load_f16, xb, 4, load_f32));
        sum = tail4_f16(sum, a, ws, xf, np, n4);
        double s4[4];
        _mm256_storeu_pd(s4, sum);
        for (int q = 0; q < 4; q++) {
            for (int64_t i = n4; i < n; i++)
                s4[q] += (double)(one_f16(a + (size_t)q * ws + 2 * i) * xf[i]);
            y[r + q] = (float)s4[q];
        }
    }
    for (; r < nr; r++) {
        const unsigned char *a = w + (size_t)r * ws;
        double sum = dot_64s_ab(np, a, 2, load_f16, xb, 4, load_f32);
        for (int64_t i = np; i < n; i++) sum += (double)(one_f16(a + 2 * i) * xf[i]);
        y[r] = (float)sum;
    }
}

/* An encoder's attention on an F32 cache (a query against its input's keys, probabilities
 * against the value rows): four rows per pass share each load of x, two 8-lane accumulators
 * per row keep 8 FMA chains in flight; this variant's own order (agrees with vec_dot to
 * rounding, as AVX-512's). */
static void dot_rows_f32(int64_t n, int64_t nr, const void *vw, size_t ws, const void *vx,
                         float *y) {
    const unsigned char *w = vw;
    const float *x = vx;
    const int64_t n16 = n & ~(int64_t)15, n8 = n & ~(int64_t)7;
    int32_t mv[8];
    for (int k = 0; k < 8; k++) mv[k] = k < n - n8 ? -1 : 0;
    const __m256i mask = _mm256_loadu_si256((const __m256i *)mv);
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) {
        const float *a[4];
        __m256 lo[4], hi[4];
        for (int q = 0; q < 4; q++) {
            a[q] = (const float *)(w + (size_t)(r + q) * ws);
            lo[q] = hi[q] = _mm256_setzero_ps();
        }
        for (int64_t i = 0; i < n16; i += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                lo[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a[q] + i), x0, lo[q]);
                hi[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a[q] + i + 8), x1, hi[q]);
            }
        }
        if (n8 > n16) {
            const __m256 x0 = _mm256_loadu_ps(x + n16);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                lo[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a[q] + n16), x0, lo[q]);
        }
        if (n > n8) {
            const __m256 x0 = _mm256_maskload_ps(x + n8, mask);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                hi[q] = _mm256_fmadd_ps(_mm256_maskload_ps(a[q] + n8, mask), x0, hi[q]);
        }
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) y[r + q] = qx_hsum_ps(_mm256_add_ps(lo[q], hi[q]));
    }
    for (; r < nr; r++) {
        const float *a = (const float *)(w + (size_t)r * ws);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < n8; i += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(x + i), acc);
        if (n > n8)
            acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + n8, mask),
                                  _mm256_maskload_ps(x + n8, mask), acc);
        y[r] = qx_hsum_ps(acc);
    }
}

static void vec_dot_batch_f32(int64_t n, float *s, const void *x, const void *y) {
    if (n % 16) {
        vec_dot_f32(n, s, x, y);
        return;
    }
    *s = dot_tiled(n, x, y, 4, load_f32);
}

void quant_x86_avx2_vec_dot_batch_f16(int64_t n, float *s, const void *x, const void *y) {
    if (n % 16) {
        vec_dot_f16(n, s, x, y);
        return;
    }
    *s = dot_tiled(n, x, y, 2, load_f16);
}

void quant_x86_avx2_install(quant_traits *t) {
    t[GGUF_T_F16].from_float = from_float_f16;
    t[GGUF_T_F16].to_float = to_float_f16;
    t[GGUF_T_Q8_0].from_float = from_float_q8_0;
    t[GGUF_T_Q8_1].from_float = from_float_q8_1;
    t[GGUF_T_Q8_K].from_float = from_float_q8_k;
    t[GGUF_T_Q8_0].vec_dot = vec_dot_q8_0;
    t[GGUF_T_Q4_0].vec_dot = vec_dot_q4_0;
    t[GGUF_T_Q5_0].vec_dot = vec_dot_q5_0;
    t[GGUF_T_Q4_1].vec_dot = vec_dot_q4_1;
    t[GGUF_T_Q5_1].vec_dot = vec_dot_q5_1;
    t[GGUF_T_F16].vec_dot = vec_dot_f16;
    t[GGUF_T_F16].dot_rows = dot_rows_f16;
    t[GGUF_T_F32].dot_rows = dot_rows_f32;
    t[GGUF_T_F32].vec_dot = vec_dot_f32;
    t[GGUF_T_F32].vec_dot_batch = vec_dot_batch_f32;
    t[GGUF_T_F16].vec_dot_batch = quant_x86_avx2_vec_dot_batch_f16;
    quant_x86_avx2_install_kquants(t);
    quant_x86_avx2_install_bf16(t);
    quant_x86_avx2_install_iquants(t);
    quant_x86_avx2_install_gemm(t);
    quant_x86_avx2_install_pack(t);
    quant_x86_avx2_install_attn(t);
}
