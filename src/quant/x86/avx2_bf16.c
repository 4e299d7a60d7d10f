/* BF16 x BF16 dots (AVX2 + FMA) in the reference machine's order.
 *
 * The reference data was made on a CPU with AVX512-BF16, where llama.cpp multiplies BF16 rows
 * with vdpbf16ps: per 32-bit lane l, the product of elements 2l+1 and then the product of
 * elements 2l are added to the lane, each addition rounded to float. Two BF16 values multiply
 * exactly in float, so one FMA per product gives the same bits (tests/quant/test_engine_order.c
 * checks this against the instruction itself where the CPU has it). The instruction also treats
 * inputs and results below FLT_MIN as zero; that is not reproduced here (no weight, activation
 * or partial sum of a model comes near 1e-38).
 *
 * One instruction covers 32 elements with 16 lanes; here they are two registers: lanes 0..7
 * take elements 0..15, lanes 8..15 elements 16..31. The engine's two kernels:
 *  - single rows (its vec_dot): two 16-lane accumulators, the first and second 32 of every 64
 *    elements, each reduced as qx_reduce16, summed in double with the tail's products;
 *  - batches (its tiled GEMM, n % 32 == 0): one 16-lane accumulator, reduced the same way.
 * A product of several tokens that took the single-row order would flip a BF16 rounding of some
 * activation now and then, and random-weight models amplify each flip (0.03 in a logit). */
#include "quant/x86/avx2_util.h"

#define GB_ALWAYS static inline __attribute__((always_inline))

static inline __m256i load8x2(const unsigned char *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* 16 elements (8 lanes of pairs) into acc: odd element's product first, then the even one's. */
GB_ALWAYS __m256 dp8(__m256 acc, __m256i a, __m256i b) {
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(a, hi)),
                          _mm256_castsi256_ps(_mm256_and_si256(b, hi)), acc);
    return _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)),
                           _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)), acc);
}

static inline float one_bf16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return quant_bf16_to_f32(h);
}

static void vec_dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const unsigned char *x = vx, *y = vy;
    __m256 c1l = _mm256_setzero_ps(), c1h = c1l, c2l = c1l, c2h = c1l;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const unsigned char *a = x + 2 * i, *b = y + 2 * i;
        c1l = dp8(c1l, load8x2(a), load8x2(b));
        c1h = dp8(c1h, load8x2(a + 32), load8x2(b + 32));
        c2l = dp8(c2l, load8x2(a + 64), load8x2(b + 64));
        c2h = dp8(c2h, load8x2(a + 96), load8x2(b + 96));
    }
    double sum = qx_reduce16(c1l, c1h);
    sum += qx_reduce16(c2l, c2h);
    for (; i < n; i++) {
        const float p = one_bf16(x + 2 * i) * one_bf16(y + 2 * i);
        sum += (double)p;
    }
    *s = (float)sum;
}

static inline float dot_tiled(int64_t n, const unsigned char *x, const unsigned char *y) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int64_t i = 0; i < n; i += 32) {
        lo = dp8(lo, load8x2(x + 2 * i), load8x2(y + 2 * i));
        hi = dp8(hi, load8x2(x + 2 * i + 32), load8x2(y + 2 * i + 32));
    }
    return qx_reduce16(lo, hi);
}

static void vec_dot_batch_bf16(int64_t n, float *s, const void *x, const void *y) {
    if (n % 32) {
        vec_dot_bf16(n, s, x, y);
        return;
    }
    *s = dot_tiled(n, x, y);
}

/* Tiles of up to 2 weight rows x 2 tokens: each 32-element step loads a row's and a token's
 * elements once for two products; every element keeps dot_tiled's steps. */
GB_ALWAYS void bf16_tile(int rm, int rn, int64_t n, const unsigned char *w, size_t ws,
                         const unsigned char *x, size_t xs, float *y, size_t ys) {
    __m256 lo[2][2], hi[2][2];
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < 2; t++) lo[r][t] = hi[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 32) {
#pragma GCC unroll 2
        for (int t = 0; t < rn; t++) {
            const unsigned char *xt = x + (size_t)t * xs + 2 * i;
            const __m256i xl = load8x2(xt), xh = load8x2(xt + 32);
#pragma GCC unroll 2
            for (int r = 0; r < rm; r++) {
                const unsigned char *wr = w + (size_t)r * ws + 2 * i;
                lo[r][t] = dp8(lo[r][t], load8x2(wr), xl);
                hi[r][t] = dp8(hi[r][t], load8x2(wr + 32), xh);
            }
        }
    }
    for (int r = 0; r < rm; r++)
        for (int t = 0; t < rn; t++) y[(size_t)t * ys + r] = qx_reduce16(lo[r][t], hi[r][t]);
}

QX_GEMM_2X2(gemm_bf16, bf16_tile, 32, vec_dot_bf16)

void quant_x86_avx2_install_bf16(quant_traits *t) {
    t[GGUF_T_BF16].vec_dot = vec_dot_bf16;
    t[GGUF_T_BF16].vec_dot_batch = vec_dot_batch_bf16;
    t[GGUF_T_BF16].gemm = gemm_bf16;
}
