/* Tile kernels for weight products over several rows and activation rows at once (the `gemm`
 * trait), written once and compiled per ISA: the including file defines
 *
 *   GB_Q8_PREP(w)            a Q8_0 weight vector prepared for GB_Q8_DOT (once per row and block)
 *   GB_Q8_INIT(y)            per activation block: the lanes GB_Q8_DOT starts from
 *   GB_Q8_DOT(init, p, w, y) exact int32 lanes k = sum of w[4k..4k+3] * y[4k..4k+3]
 *   GB_U4_INIT2(ylo, yhi)    per activation block: the start lanes for GB_U4_DOT2
 *   GB_U4_DOT2(init, lo, ylo, hi, yhi)  exact int32 lanes of (lo - 8)*ylo + (hi - 8)*yhi in
 *                            fours, for unsigned nibbles lo, hi
 *
 * and optionally GB_Q4_RN (tokens per Q4_0 tile), GB_F16_ZMM with GB_F16_FALLBACK (the F16 tiles,
 * 512-bit). The functions are static: each including file gets its own copies and installs them.
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

/* Tokens per Q4_0 tile: 8 with 32 vector registers (AVX-512VL), 4 with AVX2's 16. */
#ifndef GB_Q4_RN
#define GB_Q4_RN 4
#endif

#ifndef GB_BCAST_DEFINED
#define GB_BCAST_DEFINED
/* An fp16 value in all 8 lanes as float: a broadcast load and one conversion (the scalar route,
 * convert then broadcast, costs a register move more). */
static inline __m256 gb_bcast_h(uint16_t h) {
    return _mm256_cvtph_ps(_mm_set1_epi16((short)h));
}
#endif

/* ---- Q8_0 x Q8_0: tiles of up to 4 rows x 4 tokens ---- */

GB_ALWAYS void q8_0_tile(int rm, int rn, int64_t nb, const unsigned char *w, size_t ws,
                         const unsigned char *x, size_t xs, float *y, size_t ys,
                         const unsigned char *pf) {
    __m256 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (pf) /* 4 rows of 34-byte blocks: 136 bytes of the tile ahead per block */
            for (int k = 0; k < 3; k++)
                _mm_prefetch((const char *)pf + 136 * b + 64 * k, _MM_HINT_T0);
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
            dw[r] = gb_bcast_h(blk->d);
        }
#pragma GCC unroll 4
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + b;
            const __m256i yq = _mm256_loadu_si256((const __m256i *)yb->qs);
            const __m256i init = GB_Q8_INIT(yq);
            const __m256 dy = gb_bcast_h(yb->d);
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

static void gemm_q8_0(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,
                      size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QK;
    if (nt == 1) { /* decode steps: rows one after the other (interleaved rows are short
                    * streams the hardware prefetcher serves worse than one long one) */
        for (int64_t r = 0; r < nr; r++)
            q8_0_tile(1, 1, nb, w + (size_t)r * ws, ws, x, xs, y + r, ys, NULL);
        return;
    }
    for (int64_t r = 0; r < nr; r += 4) {
        const int rm = nr - r < 4 ? (int)(nr - r) : 4;
        const unsigned char *wr = w + (size_t)r * ws;
        const unsigned char *pf = r + 12 <= nr ? wr + 8 * ws : NULL; /* two tiles ahead */
        for (int64_t t = 0; t < nt; t += 4) {
            const int rn = nt - t < 4 ? (int)(nt - t) : 4;
            const unsigned char *xt = x + (size_t)t * xs;
            float *yt = y + (size_t)t * ys + r;
            /* constant shapes for the common cases: the compiler then keeps the tile in
             * registers (a single token is every decode step) */
            if (rm == 4 && rn == 4)
                q8_0_tile(4, 4, nb, wr, ws, xt, xs, yt, ys, pf);
            else if (rm == 4 && rn == 1)
                q8_0_tile(4, 1, nb, wr, ws, xt, xs, yt, ys, pf);
            else if (rm == 4 && rn == 2)
                q8_0_tile(4, 2, nb, wr, ws, xt, xs, yt, ys, pf);
            else
                q8_0_tile(rm, rn, nb, wr, ws, xt, xs, yt, ys, NULL);
            pf = NULL; /* fetched once */
        }
    }
}

/* ---- Q4_0 x Q8_0: 8 weight rows as the lanes of a vector, up to 4 tokens ---- */

/* Two weight rows share a register: row 2p's 16 bytes in the low half, row 2p+1's in the high
 * half; the low nibbles are then elements 0..15 of both rows and the high nibbles elements
 * 16..31, against the activations' two halves broadcast to both register halves. Lanes 0..3 of
 * pair p's sums belong to row 2p, lanes 4..7 to row 2p+1, and three horizontal adds leave the
 * eight rows' totals in the lane order below. */
static const int gb_q4_lane_row[8] = {0, 2, 4, 6, 1, 3, 5, 7};

GB_ALWAYS void q4_0_tile(int rm, int rn, int64_t nb, const unsigned char *w, size_t ws,
                         const unsigned char *x, size_t xs, float *y, size_t ys,
                         const unsigned char *pf) {
    static const quant_block_q4_0 zero_block;
    const quant_block_q4_0 *rows[8];
    for (int r = 0; r < 8; r++)
        rows[r] = r < rm ? (const quant_block_q4_0 *)(w + (size_t)r * ws) : &zero_block;
    const int64_t step = 1; /* row 0 always exists */
    __m256 acc[GB_Q4_RN];
    for (int t = 0; t < GB_Q4_RN; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        if (pf) /* 8 rows of 18-byte blocks: 144 bytes of the tile ahead per block */
            for (int k = 0; k < 3; k++)
                _mm_prefetch((const char *)pf + 144 * b + 64 * k, _MM_HINT_T0);
        __m256i lo[4], hi[4];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            const quant_block_q4_0 *b0 = rows[2 * p] + (2 * p < rm ? b : 0);
            const quant_block_q4_0 *b1 = rows[2 * p + 1] + (2 * p + 1 < rm ? b : 0);
            const __m256i raw =
                _mm256_loadu2_m128i((const __m128i *)b1->qs, (const __m128i *)b0->qs);
            lo[p] = _mm256_and_si256(raw, m4);
            hi[p] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        }
        /* the scales in lane order, built in a register (through memory they stall on
         * store forwarding) */
        __m128i dh = _mm_cvtsi32_si128(rows[0][b * step].d);
        dh = _mm_insert_epi16(dh, rows[2][2 < rm ? b : 0].d, 1);
        dh = _mm_insert_epi16(dh, rows[4][4 < rm ? b : 0].d, 2);
        dh = _mm_insert_epi16(dh, rows[6][6 < rm ? b : 0].d, 3);
        dh = _mm_insert_epi16(dh, rows[1][1 < rm ? b : 0].d, 4);
        dh = _mm_insert_epi16(dh, rows[3][3 < rm ? b : 0].d, 5);
        dh = _mm_insert_epi16(dh, rows[5][5 < rm ? b : 0].d, 6);
        dh = _mm_insert_epi16(dh, rows[7][7 < rm ? b : 0].d, 7);
        const __m256 dw = _mm256_cvtph_ps(dh);
#pragma GCC unroll 8
        for (int t = 0; t < rn; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)(x + (size_t)t * xs) + b;
            const __m256i ylo =
                _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)yb->qs));
            const __m256i yhi =
                _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(yb->qs + 16)));
            const __m256i init = GB_U4_INIT2(ylo, yhi);
            __m256i v[4];
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) v[p] = GB_U4_DOT2(init, lo[p], ylo, hi[p], yhi);
            const __m256i tot =
                _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
            const __m256 d = _mm256_mul_ps(dw, gb_bcast_h(yb->d));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot), d, acc[t]);
        }
    }
    for (int t = 0; t < rn; t++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[t]);
        for (int l = 0; l < 8; l++)
            if (gb_q4_lane_row[l] < rm) y[(size_t)t * ys + gb_q4_lane_row[l]] = lanes[l];
    }
}

static void gemm_q4_0(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,
                      size_t xs, float *y, size_t ys) {
    const unsigned char *w = vw, *x = vx;
    const int64_t nb = n / QUANT_QK;
    for (int64_t r = 0; r < nr; r += 8) {
        const int rm = nr - r < 8 ? (int)(nr - r) : 8;
        const unsigned char *wr = w + (size_t)r * ws;
        /* the rows two tiles ahead, fetched while this tile runs: eight rows read side by side
         * are eight short streams the hardware prefetcher does not run ahead on */
        const unsigned char *pf = r + 24 <= nr ? wr + 16 * ws : NULL;
        int64_t t = 0;
        if (rm == 8) /* (constant shapes: the compiler keeps the tile in registers) */
            for (; t + GB_Q4_RN <= nt; t += GB_Q4_RN)
                q4_0_tile(8, GB_Q4_RN, nb, wr, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r,
                          ys, pf);
        for (; t < nt; t++) {
            if (rm == 8)
                q4_0_tile(8, 1, nb, wr, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r, ys, pf);
            else
                q4_0_tile(rm, 1, nb, wr, ws, x + (size_t)t * xs, xs, y + (size_t)t * ys + r, ys,
                          NULL);
            pf = NULL; /* fetched once */
        }
    }
}

/* ---- F16 x F16 (batched order): tiles of up to 4 rows x 4 tokens, 16 lanes each ---- */

#ifdef GB_F16_ZMM
GB_ALWAYS void f16_tile(int rm, int rn, int64_t n, const unsigned char *w, size_t ws,
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

static void gemm_f16(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws, const void *vx,
                     size_t xs, float *y, size_t ys) {
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
                f16_tile(4, 4, n, w + (size_t)r * ws, ws, x + (size_t)t * xs, xs,
                         y + (size_t)t * ys + r, ys);
        for (; t < nt; t += 4) {
            const int rn = nt - t < 4 ? (int)(nt - t) : 4;
            const unsigned char *wr = w + (size_t)r * ws, *xt = x + (size_t)t * xs;
            float *yt = y + (size_t)t * ys + r;
            /* constant shapes for the common cases: the compiler then keeps the tile in
             * registers (a single token is every decode step) */
            if (rm == 4 && rn == 1)
                f16_tile(4, 1, n, wr, ws, xt, xs, yt, ys);
            else if (rm == 4 && rn == 2)
                f16_tile(4, 2, n, wr, ws, xt, xs, yt, ys);
            else
                f16_tile(rm, rn, n, wr, ws, xt, xs, yt, ys);
        }
    }
}
#endif
