/* AVX2 dot_rows_n for F16 rows: the fast path's attention, where a decode entry's query heads
 * of one KV head meet the same keys and values.
 *
 * The reference-order attention (dot_rows_f16) runs one head at a time, so with grouped-query
 * attention every F16 key and value row is converted once per query head (4 times for GQA 4),
 * and each of its short dots (64 elements of a key) ends in a double-precision fold. Here each
 * 8-element piece of a row is converted once and meets up to 4 vectors (4 FMA chains per
 * conversion instead of one), with F32 accumulators, two per vector (even and odd pieces) so
 * that the chains overlap. Every vector's sum goes through the same tree (sum4) whatever else
 * shares the call: a (row, vector) pair gets the same bits for any nx. */
#include "quant/x86/avx2_util.h"

#include <string.h>

#define RN_ALWAYS static inline __attribute__((always_inline))

/* Lanes 0..3: the sums of a0..a3, each ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
RN_ALWAYS __m128 sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* How far ahead rows are fetched (2 KiB measured best of 2, 4 and 8 on a Zen 3: further ahead,
 * a short row set starts with a burst of more fetches than the core keeps in flight). */
#define PF_BYTES 2048

RN_ALWAYS void prefetch_row(const unsigned char *p, size_t bytes) {
    const uintptr_t first = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + bytes;
    for (uintptr_t l = first; l < end; l += 64) _mm_prefetch((const char *)l, _MM_HINT_T0);
}

static inline uint16_t u16_at(const unsigned char *p, int k) {
    uint16_t h;
    memcpy(&h, p + 2 * k, 2);
    return h;
}

/* The first rem (1..7) F16 values at p, the rest zero, without reading past them: lane by lane
 * (a copy to a stack buffer and one 16-byte load stalled on store forwarding, once per row) */
static inline __m128i tail_f16(const unsigned char *p, int rem) {
    __m128i t = _mm_setzero_si128();
    switch (rem) {
    case 7: t = _mm_insert_epi16(t, u16_at(p, 6), 6); /* fall through */
    case 6: t = _mm_insert_epi16(t, u16_at(p, 5), 5); /* fall through */
    case 5: t = _mm_insert_epi16(t, u16_at(p, 4), 4); /* fall through */
    case 4: t = _mm_insert_epi16(t, u16_at(p, 3), 3); /* fall through */
    case 3: t = _mm_insert_epi16(t, u16_at(p, 2), 2); /* fall through */
    case 2: t = _mm_insert_epi16(t, u16_at(p, 1), 1); /* fall through */
    default: t = _mm_insert_epi16(t, u16_at(p, 0), 0);
    }
    return t;
}

RN_ALWAYS __m256 cvt8(const unsigned char *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* Sums of R x M accumulators (R rows, M vectors), each by the tree of sum4, into y[q][r0 + k]. */
RN_ALWAYS void store_sums(const int R, const int M, __m256 acc[][4], float *const *y, int64_t r0) {
    const __m256 z = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        float s[4];
        _mm_storeu_ps(s, sum4(acc[k][0], M > 1 ? acc[k][1] : z, M > 2 ? acc[k][2] : z,
                              M > 3 ? acc[k][3] : z));
#pragma GCC unroll 4
        for (int q = 0; q < M; q++) y[q][r0 + k] = s[q];
    }
}

/* Rows [r0, r0 + R) against M vectors: one accumulator per (row, vector) taking the 8-element
 * pieces in order, the last n % 8 elements from tail_f16 and a masked load of x (nothing past n
 * enters a sum: a cache row's padding may hold anything, NaN included). R and M are constants
 * in each instance; R rows per pass keep R x M independent chains in flight. */
RN_ALWAYS void rows_pass(const int R, const int M, int64_t n, int64_t r0, const unsigned char *w,
                         size_t ws, const float *const *x, float *const *y, __m256i mask) {
    const int64_t n8 = n & ~(int64_t)7;
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
#pragma GCC unroll 4
        for (int q = 0; q < M; q++) acc[k][q] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n8; i += 8) {
        __m256 xv[4]; /* loaded once for the R rows: loads, not FMAs, were the limit */
#pragma GCC unroll 4
        for (int q = 0; q < M; q++) xv[q] = _mm256_loadu_ps(x[q] + i);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            const __m256 wv = cvt8(w + (size_t)(r0 + k) * ws + 2 * i);
#pragma GCC unroll 4
            for (int q = 0; q < M; q++) acc[k][q] = _mm256_fmadd_ps(wv, xv[q], acc[k][q]);
        }
    }
    if (n > n8) {
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            const __m256 wv =
                _mm256_cvtph_ps(tail_f16(w + (size_t)(r0 + k) * ws + 2 * n8, (int)(n - n8)));
#pragma GCC unroll 4
            for (int q = 0; q < M; q++)
                acc[k][q] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x[q] + n8, mask), acc[k][q]);
        }
    }
    store_sums(R, M, acc, y, r0);
}

/* Rows [0, nr) against M (1..4) vectors, R rows per pass (the leftover rows one by one, with
 * the same arithmetic per row). */
RN_ALWAYS void rows_m(const int R, const int M, int64_t n, int64_t nr, const unsigned char *w,
                      size_t ws, const float *const *x, float *const *y) {
    const int64_t n8 = n & ~(int64_t)7;
    int32_t mv[8];
    for (int k = 0; k < 8; k++) mv[k] = k < n - n8 ? -1 : 0;
    const __m256i mask = _mm256_loadu_si256((const __m256i *)mv);
    /* A cache's rows are read once per step, from memory (the weights stream through the
     * caches in between): a decode entry's attention waited on those loads, not on its
     * arithmetic (the first conversion of a row took 65% of the samples). Each row's lines are
     * fetched about PF_BYTES (at least two rows) before they are used. */
    const size_t row_bytes = (size_t)n * 2;
    const int64_t ahead =
        row_bytes >= PF_BYTES / 2 ? 2 : (int64_t)(PF_BYTES / (row_bytes ? row_bytes : 1));
    for (int64_t r = 0; r < ahead && r < nr; r++) prefetch_row(w + (size_t)r * ws, row_bytes);
    int64_t r = 0;
    for (; r + R <= nr; r += R) {
#pragma GCC unroll 4
        for (int k = 0; k < R; k++)
            if (r + k + ahead < nr) prefetch_row(w + (size_t)(r + k + ahead) * ws, row_bytes);
        rows_pass(R, M, n, r, w, ws, x, y, mask);
    }
    for (; r < nr; r++) rows_pass(1, M, n, r, w, ws, x, y, mask);
}

static void dot_rows_n_f16(int64_t n, int64_t nr, const void *vw, size_t ws, int nx, const float *x,
                           size_t xs, float *y, size_t ys) {
    for (int j0 = 0; j0 < nx; j0 += 4) {
        const int m = nx - j0 < 4 ? nx - j0 : 4;
        const float *xv[4];
        float *yv[4];
        for (int q = 0; q < m; q++) {
            xv[q] = x + (size_t)(j0 + q) * xs;
            yv[q] = y + (size_t)(j0 + q) * ys;
        }
        if (m == 4)
            rows_m(2, 4, n, nr, vw, ws, xv, yv);
        else if (m == 3)
            rows_m(2, 3, n, nr, vw, ws, xv, yv);
        else if (m == 2)
            rows_m(4, 2, n, nr, vw, ws, xv, yv);
        else
            rows_m(4, 1, n, nr, vw, ws, xv, yv);
    }
}

void quant_x86_avx2_install_attn(quant_traits *t) {
    t[GGUF_T_F16].dot_rows_n = dot_rows_n_f16;
}
