/* Tile kernels for weight products over several rows and activation rows at once (the `gemm`
 * trait), written once and compiled per ISA: the including file defines
 *
 *   GB_NAME(x)               the function name for its variant
 *   GB_Q8_PREP(w)            a Q8_0 weight vector prepared for GB_Q8_DOT (once per row and block)
 *   GB_Q8_INIT(y)            per activation block: the lanes GB_Q8_DOT starts from
 *   GB_Q8_DOT(init, p, w, y) exact int32 lanes k = sum of w[4k..4k+3] * y[4k..4k+3]
 *   GB_U4_INIT(y), GB_U4_DOT(init, u, y)  the same for unsigned nibbles u taken as u - 8
 *
 * Every output element takes exactly the float steps of the variant's vec_dot (the integer parts
 * are exact whatever instructions compute them), so a product gives the same bits whichever tile
 * shape, thread split or kernel computes it. What the tiles change is the work around those steps:
 * a weight block is loaded and decoded once for several activation rows, an activation block once
 * for several weight rows, and the independent float chains of a tile overlap.
 *
 * Q8_0 (llama.cpp's x86 order, also its tinyBLAS order for batches): per (row, token) 8 float
 * lanes, one FMA per block with the product of the two scales, summed at the end.
 * Q4_0 (the order of llama.cpp's repacked 8-row kernels): per (row, token) a scalar chain of one
 * FMA per block adding the block's integer total times the scales' product; here 8 weight rows
 * are the 8 lanes of one vector, so one vector FMA advances eight chains with fmaf's rounding.
 * F16 (tinyBLAS with AVX-512): one 16-lane accumulator per (row, token), reduced as
 * qx_reduce16 does; n % 16 == 0, other sizes go to vec_dot_batch. */

#include <immintrin.h>

#define GB_ALWAYS static inline __attribute__((always_inline))

/* ---- Q8_0 x Q8_0: tiles of up to 4 rows x 4 tokens ---- */

GB_ALWAYS void GB_NAME(q8_0_tile)(int rm, int rn, int64_t nb, const unsigned char *w, size_t ws,
                                  const unsigned char *x, size_t xs, float *y, size_t ys) {
    __m256 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[4], wp[4];
        __m256 dw[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) { /* (zeroed: keeps the compiler sure nothing is unset) */
            wq[r] = wp[r] = _mm256_setzero_si256();
            dw[r] = _mm256_setzero_ps();
        }
#pragma GCC unroll 4
        for (int r = 0; r < rm; r++) {
            const quant_block_q8_0 *blk = (const quant_block_q8_0 *)(w + (size_t)r * ws) + b;
            wq[r] = _mm256_loadu_si256((const __m256i *)blk->qs);
            wp[r] = GB_Q8_PREP(wq[r]);
            dw[r] = _mm256_set1_ps(qx_h2f(blk->d));
        }
#pragma GCC unroll 4
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + b;
            const __m256i yq = _mm256_loadu_si256((const __m256i *)yb->qs);
            const __m256i init = GB_Q8_INIT(yq);
            const __m256 dy = _mm256_set1_ps(qx_h2f(yb->d));
#pragma GCC unroll 4
            for (int r = 0; r < rm; r++)
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dy),
                                            _mm256_cvtepi32_ps(GB_Q8_DOT(init, wp[r], wq[r], yq)),
                                            acc[r][t]);
        }
    }
    for (int r = 0; r < rm; r++)
        for (int t = 0; t < rn; t++) y[(size_t)t * ys + r] = qx_hsum_ps(acc[r][t]);
}

static void GB_NAME(gemm_q8_0)(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws,
                               const void *vx, size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QK;
    for (int64_t r = 0; r < nr; r += 4) {
        const int rm = nr - r < 4 ? (int)(nr - r) : 4;
        int64_t t = 0;
        if (rm == 4)
            for (; t + 4 <= nt; t += 4)
                GB_NAME(q8_0_tile)
                (4, 4, nb, w + (size_t)r * ws, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r,
                 ys);
        for (; t < nt; t += 4) {
            const int rn = nt - t < 4 ? (int)(nt - t) : 4;
            GB_NAME(q8_0_tile)
            (rm, rn, nb, w + (size_t)r * ws, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r,
             ys);
        }
    }
}

/* ---- Q4_0 x Q8_0: 8 weight rows as the lanes of a vector, up to 4 tokens ---- */

/* Eight vectors of int32 lanes -> one vector of their eight totals (exact). */
GB_ALWAYS __m256i GB_NAME(total8)(const __m256i v[8]) {
    const __m256i a =
        _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    const __m256i b =
        _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

GB_ALWAYS void GB_NAME(q4_0_tile)(int rm, int rn, int64_t nb, const unsigned char *w, size_t ws,
                                  const unsigned char *x, size_t xs, float *y, size_t ys) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        __m256i u[8];
        uint16_t dh[8] = {0};
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            if (r < rm) {
                const quant_block_q4_0 *blk = (const quant_block_q4_0 *)(w + (size_t)r * ws) + b;
                u[r] = qx_nibbles32(blk->qs);
                dh[r] = blk->d;
            } else {
                u[r] = _mm256_setzero_si256();
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dh));
#pragma GCC unroll 4
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + b;
            const __m256i yq = _mm256_loadu_si256((const __m256i *)yb->qs);
            const __m256i init = GB_U4_INIT(yq);
            __m256i v[8];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) v[r] = GB_U4_DOT(init, u[r], yq);
            const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(qx_h2f(yb->d)));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(GB_NAME(total8)(v)), d, acc[t]);
        }
    }
    for (int t = 0; t < rn; t++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[t]);
        for (int r = 0; r < rm; r++) y[(size_t)t * ys + r] = lanes[r];
    }
}

static void GB_NAME(gemm_q4_0)(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws,
                               const void *vx, size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QK;
    for (int64_t r = 0; r < nr; r += 8) {
        const int rm = nr - r < 8 ? (int)(nr - r) : 8;
        int64_t t = 0;
        if (rm == 8)
            for (; t + 4 <= nt; t += 4)
                GB_NAME(q4_0_tile)
                (8, 4, nb, w + (size_t)r * ws, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r,
                 ys);
        for (; t < nt; t++)
            GB_NAME(q4_0_tile)
            (rm, 1, nb, w + (size_t)r * ws, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r, ys);
    }
}

/* ---- F16 x F16 (batched order): tiles of up to 4 rows x 4 tokens, 16 lanes each ---- */

#ifdef GB_F16_ZMM
GB_ALWAYS void GB_NAME(f16_tile)(int rm, int rn, int64_t n, const unsigned char *w, size_t ws,
                                 const unsigned char *x, size_t xs, float *y, size_t ys) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __m512 wv[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                        _mm512_setzero_ps()};
#pragma GCC unroll 4
        for (int r = 0; r < rm; r++)
            wv[r] =
                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + (size_t)r * ws + 2 * i)));
#pragma GCC unroll 4
        for (int t = 0; t < rn; t++) {
            const __m512 xv =
                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + (size_t)t * xs + 2 * i)));
#pragma GCC unroll 4
            for (int r = 0; r < rm; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    for (int r = 0; r < rm; r++)
        for (int t = 0; t < rn; t++)
            y[(size_t)t * ys + r] = qx_reduce16(_mm512_castps512_ps256(acc[r][t]),
                                                _mm512_extractf32x8_ps(acc[r][t], 1));
}

static void GB_NAME(gemm_f16)(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws,
                              const void *vx, size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    if (n % 16) {
        for (int64_t t = 0; t < nt; t++)
            for (int64_t r = 0; r < nr; r++)
                GB_F16_FALLBACK(n, &y[(size_t)t * ys + r], w + (size_t)r * ws, x + (size_t)t * xs);
        return;
    }
    for (int64_t r = 0; r < nr; r += 4) {
        const int rm = nr - r < 4 ? (int)(nr - r) : 4;
        int64_t t = 0;
        if (rm == 4)
            for (; t + 4 <= nt; t += 4)
                GB_NAME(f16_tile)
                (4, 4, n, w + (size_t)r * ws, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r,
                 ys);
        for (; t < nt; t += 4) {
            const int rn = nt - t < 4 ? (int)(nt - t) : 4;
            GB_NAME(f16_tile)
            (rm, rn, n, w + (size_t)r * ws, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r, ys);
        }
    }
}
#endif
