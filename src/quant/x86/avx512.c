/* AVX-512 (F/BW/VL + VNNI) kernels. This variant extends the AVX2 one and keeps its kernels
 * except where 512-bit registers measured faster: the Q4_K and Q6_K dots.
 *
 * Those take 64 levels per step (one register of unsigned bytes), maddubs against the activations,
 * madd against a vector of the per-group scales. The two 256-bit halves of the integer lanes are
 * folded into the 8 lanes the AVX2 kernels produce (lane k: elements 4k..4k+3 of every 32 values)
 * and the float part is the AVX2 one, so both variants give bit-identical results, in the
 * reference engine's order.
 *
 * Deliberately not here: the legacy block dots (the engine's per-block FMA chain is
 * latency-bound, wider registers do not shorten it), Q2_K/Q3_K/Q5_K and the float dots (the AVX2
 * kernels, which already follow the engine's 16-lane order, measured as fast or faster). */
#include "quant/x86/avx2_util.h"

/* Byte-wise (v >> k) & mask with k per 256-bit half (the shift runs on 16-bit lanes; the mask
 * removes what crossed from the neighbouring byte). */
static inline __m512i bits2(__m512i v, int k_lo, int k_hi, int mask) {
    __m512i k =
        _mm512_inserti64x4(_mm512_set1_epi16((short)k_lo), _mm256_set1_epi16((short)k_hi), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(v, k), _mm512_set1_epi8((char)mask));
}

static inline __m512i dup256(const uint8_t *p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

/* 64 unsigned levels times 64 activations minus off*y per int16 pair; int16 lane i of the
 * products (elements 2i, 2i+1) is scaled by scale16 lane i. */
static inline __m512i scaled_dot64(__m512i u, const int8_t *y, int off, __m512i scale16) {
    const __m512i yv = _mm512_loadu_si512((const void *)y);
    __m512i p = _mm512_maddubs_epi16(u, yv);
    if (off) p = _mm512_sub_epi16(p, _mm512_maddubs_epi16(_mm512_set1_epi8((char)off), yv));
    return _mm512_madd_epi16(p, scale16);
}

/* 16 int32 lanes folded to the AVX2 kernels' 8 (the halves cover the same lane positions). */
static inline __m256i fold(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* ---- Q4_K ---- */

typedef __m512i (*k45_levels_fn)(const void *block, int c);

static inline __m512i q4k_levels(const void *vb, int c) {
    const quant_block_q4_k *b = vb;
    return bits2(dup256(b->qs + 32 * c), 0, 4, 0xF);
}

/* int16 lane i of chunk c's products (64 values = sub-blocks 2c, 2c+1) takes scale 2c + i/16. */
static const int16_t k45_scale_idx[4][32] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
     3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
     5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
     7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
};

static inline __m256i k45_lanes(const void *block, uint64_t sc8, const quant_block_q8_k *y,
                                k45_levels_fn levels) {
    const __m512i sc16 =
        _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
    __m512i acc = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
        __m512i scv =
            _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)k45_scale_idx[c]), sc16);
        acc = _mm512_add_epi32(acc, scaled_dot64(levels(block, c), y->qs + 64 * c, 0, scv));
    }
    return fold(acc);
}

static void vec_dot_q4_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q4_k *x = vx;
    const quant_block_q8_k *y = vy;
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * qx_h2f(x[i].d);
        const float dmin = -y[i].d * qx_h2f(x[i].dmin);
        uint64_t sc8, m8;
        quant_k4_unpack(x[i].scales, &sc8, &m8);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(qx_k4_mins_prod(m8, &y[i])), acc_m);
        acc = qx_fma_lanes(d, k45_lanes(&x[i], sc8, &y[i], q4k_levels), acc);
    }
    *s = qx_hsum_ps(acc) + qx_hsum4_ps(acc_m);
}

/* ---- Q6_K ---- */

static void vec_dot_q6_k(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_q6_k *x = vx;
    const quant_block_q8_k *y = vy;
    /* int16 lane i of step q (64 values = groups 4q..4q+3) takes scale 4q + i/8 */
    __m512i idx[4];
    for (int q = 0; q < 4; q++) {
        int16_t lanes[32];
        for (int i = 0; i < 32; i++) lanes[i] = (int16_t)(4 * q + i / 8);
        idx[q] = _mm512_loadu_si512((const void *)lanes);
    }
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QUANT_QKK; i++) {
        const float d = y[i].d * qx_h2f(x[i].d);
        const __m512i sc512 = _mm512_castsi256_si512(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales)));
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            /* low nibbles of ql[64h..64h+63] are values 128h + 0..63, high nibbles 64..127 */
            __m512i ql = _mm512_loadu_si512((const void *)(x[i].ql + 64 * h));
            __m512i qh = dup256(x[i].qh + 32 * h);
            for (int half = 0; half < 2; half++) {
                __m512i lo4 =
                    _mm512_and_si512(half ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0F));
                __m512i hi2 = bits2(qh, 4 * half, 4 * half + 2, 3);
                __m512i u = _mm512_or_si512(lo4, _mm512_slli_epi16(hi2, 4));
                __m512i scv = _mm512_permutexvar_epi16(idx[2 * h + half], sc512);
                sumi =
                    _mm512_add_epi32(sumi, scaled_dot64(u, y[i].qs + 128 * h + 64 * half, 32, scv));
            }
        }
        acc = qx_fma_lanes(d, fold(sumi), acc);
    }
    *s = qx_hsum_ps(acc);
}

/* ---- tiles: one weight row against up to four activation rows ----
 * A K-quant super-block's decoding (levels, the scale vectors, the min factors) is most of a
 * dot's work; over a prompt batch each decoded super-block now serves four tokens. Per token the
 * integer sums and float steps are those of vec_dot above, so results are bit-identical. */

#define KT_ALWAYS static inline __attribute__((always_inline))
#define KT_RN     8 /* tokens per decoded super-block */

/* pf: the row to fetch while this one runs (or NULL): the rows of a decode step are one long
 * stream, but the hardware prefetcher alone leaves the kernel waiting on memory. */
static inline void kt_prefetch(const unsigned char *pf, int64_t i, size_t block, int lines) {
    if (pf)
        for (int k = 0; k < lines; k++)
            _mm_prefetch((const char *)pf + block * (size_t)i + 64 * (size_t)k, _MM_HINT_T0);
}

KT_ALWAYS void q4_k_tile(int rn, int64_t nb, const quant_block_q4_k *x, const unsigned char *yv,
                         size_t xs, float *out, size_t ys, const unsigned char *pf) {
    __m256 acc[KT_RN];
    __m128 acc_m[KT_RN];
    for (int t = 0; t < KT_RN; t++) acc[t] = _mm256_setzero_ps(), acc_m[t] = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        kt_prefetch(pf, i, sizeof *x, 3);
        const float dx = qx_h2f(x[i].d), mx = qx_h2f(x[i].dmin);
        uint64_t sc8, m8;
        quant_k4_unpack(x[i].scales, &sc8, &m8);
        const __m512i sc16 =
            _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
        __m512i isum[KT_RN];
        for (int t = 0; t < KT_RN; t++) isum[t] = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const __m512i lv = q4k_levels(&x[i], c);
            const __m512i scv =
                _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)k45_scale_idx[c]), sc16);
#pragma GCC unroll 8
            for (int t = 0; t < rn; t++) {
                const quant_block_q8_k *yb = (const quant_block_q8_k *)(yv + (size_t)t * xs) + i;
                isum[t] = _mm512_add_epi32(isum[t], scaled_dot64(lv, yb->qs + 64 * c, 0, scv));
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)(yv + (size_t)t * xs) + i;
            const float d = yb->d * dx, dmin = -yb->d * mx;
            acc_m[t] =
                _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(qx_k4_mins_prod(m8, yb)), acc_m[t]);
            acc[t] = qx_fma_lanes(d, fold(isum[t]), acc[t]);
        }
    }
    for (int t = 0; t < rn; t++) out[(size_t)t * ys] = qx_hsum_ps(acc[t]) + qx_hsum4_ps(acc_m[t]);
}

KT_ALWAYS void q6_k_tile(int rn, int64_t nb, const quant_block_q6_k *x, const unsigned char *yv,
                         size_t xs, float *out, size_t ys, const __m512i idx[4],
                         const unsigned char *pf) {
    __m256 acc[KT_RN];
    for (int t = 0; t < KT_RN; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        kt_prefetch(pf, i, sizeof *x, 4);
        const float dx = qx_h2f(x[i].d);
        const __m512i sc512 = _mm512_castsi256_si512(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales)));
        __m512i isum[KT_RN];
        for (int t = 0; t < KT_RN; t++) isum[t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            const __m512i ql = _mm512_loadu_si512((const void *)(x[i].ql + 64 * h));
            const __m512i qh = dup256(x[i].qh + 32 * h);
            for (int half = 0; half < 2; half++) {
                const __m512i lo4 =
                    _mm512_and_si512(half ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0F));
                const __m512i u = _mm512_or_si512(
                    lo4, _mm512_slli_epi16(bits2(qh, 4 * half, 4 * half + 2, 3), 4));
                const __m512i scv = _mm512_permutexvar_epi16(idx[2 * h + half], sc512);
#pragma GCC unroll 8
                for (int t = 0; t < rn; t++) {
                    const quant_block_q8_k *yb =
                        (const quant_block_q8_k *)(yv + (size_t)t * xs) + i;
                    isum[t] = _mm512_add_epi32(
                        isum[t], scaled_dot64(u, yb->qs + 128 * h + 64 * half, 32, scv));
                }
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)(yv + (size_t)t * xs) + i;
            acc[t] = qx_fma_lanes(yb->d * dx, fold(isum[t]), acc[t]);
        }
    }
    for (int t = 0; t < rn; t++) out[(size_t)t * ys] = qx_hsum_ps(acc[t]);
}

#define KT_AHEAD 4 /* rows ahead to prefetch */

static void gemm_q4_k(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,
                      size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    for (int64_t r = 0; r < nr; r++) {
        const quant_block_q4_k *wr = (const quant_block_q4_k *)(w + (size_t)r * ws);
        const unsigned char *pf = r + KT_AHEAD < nr ? w + (size_t)(r + KT_AHEAD) * ws : NULL;
        for (int64_t t = 0; t < nt; t += KT_RN, pf = NULL) {
            const unsigned char *xt = x + (size_t)t * xs;
            float *out = y + (size_t)t * ys + r;
            if (nt - t >= KT_RN)
                q4_k_tile(KT_RN, n / QUANT_QKK, wr, xt, xs, out, ys, pf);
            else if (nt - t == 1)
                q4_k_tile(1, n / QUANT_QKK, wr, xt, xs, out, ys, pf);
            else
                q4_k_tile((int)(nt - t), n / QUANT_QKK, wr, xt, xs, out, ys, pf);
        }
    }
}

static void gemm_q6_k(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,
                      size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    __m512i idx[4]; /* int16 lane i of step q (64 values = groups 4q..4q+3) takes scale 4q + i/8 */
    for (int q = 0; q < 4; q++) {
        int16_t lanes[32];
        for (int i = 0; i < 32; i++) lanes[i] = (int16_t)(4 * q + i / 8);
        idx[q] = _mm512_loadu_si512((const void *)lanes);
    }
    for (int64_t r = 0; r < nr; r++) {
        const quant_block_q6_k *wr = (const quant_block_q6_k *)(w + (size_t)r * ws);
        const unsigned char *pf = r + KT_AHEAD < nr ? w + (size_t)(r + KT_AHEAD) * ws : NULL;
        for (int64_t t = 0; t < nt; t += KT_RN, pf = NULL) {
            const unsigned char *xt = x + (size_t)t * xs;
            float *out = y + (size_t)t * ys + r;
            if (nt - t >= KT_RN)
                q6_k_tile(KT_RN, n / QUANT_QKK, wr, xt, xs, out, ys, idx, pf);
            else if (nt - t == 1)
                q6_k_tile(1, n / QUANT_QKK, wr, xt, xs, out, ys, idx, pf);
            else
                q6_k_tile((int)(nt - t), n / QUANT_QKK, wr, xt, xs, out, ys, idx, pf);
        }
    }
}

/* ---- F32 rows against one vector: 4 rows per pass, one 16-lane accumulator each, the tail
 * of n % 16 through masked loads; the four sums reduced together ---- */

static inline float hsum512(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    return qx_hsum_ps(h);
}

static void dot_rows_f32(int64_t n, int64_t nr, const void *vw, size_t ws, const void *vx,
                         float *y) {
    const unsigned char *w = vw;
    const float *x = vx;
    const __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);
    const int64_t n16 = n - n % 16;
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) {
        const float *a = (const float *)(w + (size_t)r * ws),
                    *b = (const float *)((const unsigned char *)a + ws);
        const float *c = (const float *)((const unsigned char *)b + ws),
                    *d = (const float *)((const unsigned char *)c + ws);
        __m512 sa = _mm512_setzero_ps(), sb = sa, sc = sa, sd = sa;
        for (int64_t i = 0; i < n16; i += 16) {
            const __m512 xv = _mm512_loadu_ps(x + i);
            sa = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), xv, sa);
            sb = _mm512_fmadd_ps(_mm512_loadu_ps(b + i), xv, sb);
            sc = _mm512_fmadd_ps(_mm512_loadu_ps(c + i), xv, sc);
            sd = _mm512_fmadd_ps(_mm512_loadu_ps(d + i), xv, sd);
        }
        if (tail) {
            const __m512 xv = _mm512_maskz_loadu_ps(tail, x + n16);
            sa = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + n16), xv, sa);
            sb = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, b + n16), xv, sb);
            sc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, c + n16), xv, sc);
            sd = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, d + n16), xv, sd);
        }
        y[r] = hsum512(sa), y[r + 1] = hsum512(sb), y[r + 2] = hsum512(sc), y[r + 3] = hsum512(sd);
    }
    for (; r < nr; r++) {
        const float *a = (const float *)(w + (size_t)r * ws);
        __m512 sa = _mm512_setzero_ps();
        for (int64_t i = 0; i < n16; i += 16)
            sa = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(x + i), sa);
        if (tail)
            sa = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + n16),
                                 _mm512_maskz_loadu_ps(tail, x + n16), sa);
        y[r] = hsum512(sa);
    }
}

void quant_x86_avx512_install(quant_traits *t) {
    t[GGUF_T_F32].dot_rows = dot_rows_f32;
    t[GGUF_T_Q4_K].vec_dot = vec_dot_q4_k;
    t[GGUF_T_Q6_K].vec_dot = vec_dot_q6_k;
    t[GGUF_T_Q4_K].gemm = gemm_q4_k;
    t[GGUF_T_Q6_K].gemm = gemm_q6_k;
    quant_x86_avx512_install_iquants(t);
    quant_x86_avx512_install_gemm(t);
    quant_x86_avx512_install_pack(t);
}
