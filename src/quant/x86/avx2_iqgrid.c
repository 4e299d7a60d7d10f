/* AVX2 kernels of the codebook i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M;
 * element orders in ref/iq_grid.c): dots against Q8_K and tiles of one weight row against up to
 * 8 activation rows.
 *
 * A super-block is decoded once into, per 32 values, the unsigned grid levels (gathered 8 or 4
 * bytes at a time from the expanded codebooks), their signs as +1/-1 bytes, the int16 scale
 * (2s + 1) of every int16 pair and, for IQ1, the scale times the offset sign of every pair. Per
 * token the integer sums are then maddubs(levels, sign-applied activations) widened by madd with
 * the scales (levels <= 62, activations <= 127: no int16 pair saturates), and for IQ1 the
 * activations' sums times the offset factors. Every sum is exact and the float step is the
 * reference's (quant_iq_term / quant_iq1_term, then the format's power of two), one lane per
 * token in the tiles, so dots and tiles give the scalar reference's bits. */
#include "quant/x86/avx2_util.h"

typedef struct iq_sb {
    __m256i mag[8]; /* unsigned levels per 32 */
    __m256i sgn[8]; /* +1/-1 (IQ1: -1/0/+1, the level itself) */
    __m256i sc[8];  /* int16 scale per pair */
    __m256i dv[8];  /* IQ1: int16 scale * offset sign per pair */
    uint16_t d;
} iq_sb;

#define IQ_ALWAYS static inline __attribute__((always_inline))

IQ_ALWAYS __m256i grid4x8(const uint64_t *g, int a, int b, int c, int d) {
    return _mm256_set_epi64x((long long)g[d], (long long)g[c], (long long)g[b], (long long)g[a]);
}

IQ_ALWAYS __m256i signs_from_index(uint32_t a) {
    const uint64_t *t = quant_iq_signs64;
    return _mm256_set_epi64x((long long)t[(a >> 21) & 127], (long long)t[(a >> 14) & 127],
                             (long long)t[(a >> 7) & 127], (long long)t[a & 127]);
}

IQ_ALWAYS __m256i signs_from_bytes(const uint8_t *b) {
    const uint64_t *t = quant_iq_bits64;
    return _mm256_set_epi64x((long long)t[b[3]], (long long)t[b[2]], (long long)t[b[1]],
                             (long long)t[b[0]]);
}

IQ_ALWAYS __m256i scale2(int s0, int s1) {
    return _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
}

IQ_ALWAYS void decode_iq2_xxs(const quant_block_iq2_xxs *b, iq_sb *o) {
    o->d = b->d;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t a[2];
        memcpy(a, b->qs + 8 * ib, 8);
        const uint8_t *ix = b->qs + 8 * ib;
        o->mag[ib] = grid4x8(quant_iq2xxs_grid, ix[0], ix[1], ix[2], ix[3]);
        o->sgn[ib] = signs_from_index(a[1]);
        o->sc[ib] = _mm256_set1_epi16((short)(2 * (a[1] >> 28) + 1));
    }
}

IQ_ALWAYS void decode_iq2_xs(const quant_block_iq2_xs *b, iq_sb *o) {
    o->d = b->d;
    const uint64_t *t = quant_iq_signs64;
    for (int ib = 0; ib < 8; ib++) {
        uint16_t q[4];
        memcpy(q, b->qs + 8 * ib, 8);
        o->mag[ib] = grid4x8(quant_iq2xs_grid, q[0] & 511, q[1] & 511, q[2] & 511, q[3] & 511);
        o->sgn[ib] = _mm256_set_epi64x((long long)t[q[3] >> 9], (long long)t[q[2] >> 9],
                                       (long long)t[q[1] >> 9], (long long)t[q[0] >> 9]);
        const int sc = b->scales[ib];
        o->sc[ib] = scale2(2 * (sc & 0xF) + 1, 2 * (sc >> 4) + 1);
    }
}

IQ_ALWAYS void decode_iq2_s(const quant_block_iq2_s *b, iq_sb *o) {
    o->d = b->d;
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *qs = b->qs + 4 * ib;
        const int h = b->qh[ib];
        o->mag[ib] = grid4x8(quant_iq2s_grid, qs[0] | (h & 3) << 8, qs[1] | ((h >> 2) & 3) << 8,
                             qs[2] | ((h >> 4) & 3) << 8, qs[3] | ((h >> 6) & 3) << 8);
        o->sgn[ib] = signs_from_bytes(qs + 32);
        const int sc = b->scales[ib];
        o->sc[ib] = scale2(2 * (sc & 0xF) + 1, 2 * (sc >> 4) + 1);
    }
}

IQ_ALWAYS void decode_iq3_xxs(const quant_block_iq3_xxs *b, iq_sb *o) {
    o->d = b->d;
    const uint32_t *g = quant_iq3xxs_grid;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t a;
        memcpy(&a, b->qs + 64 + 4 * ib, 4);
        const uint8_t *ix = b->qs + 8 * ib;
        o->mag[ib] = _mm256_set_epi32((int)g[ix[7]], (int)g[ix[6]], (int)g[ix[5]], (int)g[ix[4]],
                                      (int)g[ix[3]], (int)g[ix[2]], (int)g[ix[1]], (int)g[ix[0]]);
        o->sgn[ib] = signs_from_index(a);
        o->sc[ib] = _mm256_set1_epi16((short)(2 * (a >> 28) + 1));
    }
}

IQ_ALWAYS void decode_iq3_s(const quant_block_iq3_s *b, iq_sb *o) {
    o->d = b->d;
    const uint32_t *g = quant_iq3s_grid;
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *qs = b->qs + 8 * ib;
        const unsigned h = b->qh[ib];
        o->mag[ib] = _mm256_set_epi32(
            (int)g[qs[7] | ((h >> 7) & 1) << 8], (int)g[qs[6] | ((h >> 6) & 1) << 8],
            (int)g[qs[5] | ((h >> 5) & 1) << 8], (int)g[qs[4] | ((h >> 4) & 1) << 8],
            (int)g[qs[3] | ((h >> 3) & 1) << 8], (int)g[qs[2] | ((h >> 2) & 1) << 8],
            (int)g[qs[1] | ((h >> 1) & 1) << 8], (int)g[qs[0] | (h & 1) << 8]);
        o->sgn[ib] = signs_from_bytes(b->signs + 4 * ib);
        o->sc[ib] =
            _mm256_set1_epi16((short)(2 * ((b->scales[ib / 2] >> (4 * (ib % 2))) & 0xF) + 1));
    }
}

IQ_ALWAYS void decode_iq1_s(const quant_block_iq1_s *b, iq_sb *o) {
    o->d = b->d;
    for (int ib = 0; ib < 8; ib++) {
        uint16_t h;
        memcpy(&h, b->qh + 2 * ib, 2);
        const uint8_t *qs = b->qs + 4 * ib;
        const __m256i g =
            grid4x8(quant_iq1s_grid, qs[0] | (h & 7) << 8, qs[1] | ((h >> 3) & 7) << 8,
                    qs[2] | ((h >> 6) & 7) << 8, qs[3] | ((h >> 9) & 7) << 8);
        o->mag[ib] = _mm256_sign_epi8(g, g);
        o->sgn[ib] = g;
        const int ls = 2 * ((h >> 12) & 7) + 1;
        o->sc[ib] = _mm256_set1_epi16((short)ls);
        o->dv[ib] = _mm256_set1_epi16((short)(h & 0x8000 ? -ls : ls));
    }
}

IQ_ALWAYS void decode_iq1_m(const quant_block_iq1_m *b, iq_sb *o) {
    o->d = quant_iq1m_d(b);
    uint16_t sw[4];
    memcpy(sw, b->scales, 8);
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *qs = b->qs + 4 * ib;
        const int h0 = b->qh[2 * ib], h1 = b->qh[2 * ib + 1];
        const __m256i g =
            grid4x8(quant_iq1s_grid, qs[0] | (h0 & 7) << 8, qs[1] | ((h0 >> 4) & 7) << 8,
                    qs[2] | (h1 & 7) << 8, qs[3] | ((h1 >> 4) & 7) << 8);
        o->mag[ib] = _mm256_sign_epi8(g, g);
        o->sgn[ib] = g;
        const int ls0 = 2 * ((sw[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
        const int ls1 = 2 * ((sw[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
        o->sc[ib] = scale2(ls0, ls1);
        const short d0 = (short)(h0 & 8 ? -ls0 : ls0), d1 = (short)(h0 & 0x80 ? -ls0 : ls0);
        const short d2 = (short)(h1 & 8 ? -ls1 : ls1), d3 = (short)(h1 & 0x80 ? -ls1 : ls1);
        o->dv[ib] =
            _mm256_setr_epi16(d0, d0, d0, d0, d1, d1, d1, d1, d2, d2, d2, d2, d3, d3, d3, d3);
    }
}

/* One token's integer sums over a decoded super-block, as 8 int32 lanes (and the IQ1 offsets'). */
IQ_ALWAYS __m256i tok_isum(const iq_sb *w, const int8_t *y) {
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < 8; ib++) {
        const __m256i yv = _mm256_loadu_si256((const __m256i *)(y + 32 * ib));
        const __m256i p = _mm256_maddubs_epi16(w->mag[ib], _mm256_sign_epi8(yv, w->sgn[ib]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, w->sc[ib]));
    }
    return acc;
}

IQ_ALWAYS __m256i tok_isum1(const iq_sb *w, const int8_t *y) {
    __m256i acc = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi8(1);
#pragma GCC unroll 8
    for (int ib = 0; ib < 8; ib++) {
        const __m256i yv = _mm256_loadu_si256((const __m256i *)(y + 32 * ib));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ones, yv), w->dv[ib]));
    }
    return acc;
}

/* The dot and the tile of a type, from its decoder: iq1 selects the offset term, post is the
 * format's final power of two. */
#define IQ_KERNELS(t, iq1, post)                                                                   \
    static void vec_dot_##t(int64_t n, float *s, const void *vx, const void *vy) {                 \
        const quant_block_##t *x = vx;                                                             \
        const quant_block_q8_k *y = vy;                                                            \
        float sum = 0.0f;                                                                          \
        for (int64_t i = 0; i < n / QUANT_QKK; i++) {                                              \
            iq_sb w;                                                                               \
            decode_##t(&x[i], &w);                                                                 \
            const int32_t isum = qx_hsum_epi32(tok_isum(&w, y[i].qs));                             \
            if (iq1)                                                                               \
                sum += quant_iq1_term(qx_h2f(w.d), y[i].d, isum,                                   \
                                      qx_hsum_epi32(tok_isum1(&w, y[i].qs)));                      \
            else                                                                                   \
                sum += quant_iq_term(qx_h2f(w.d), y[i].d, isum);                                   \
        }                                                                                          \
        *s = (post)*sum;                                                                           \
    }                                                                                              \
    static void tile_##t(int rn, int64_t nb, const quant_block_##t *x, const unsigned char *xv,    \
                         size_t xs, float *out, size_t ys) {                                       \
        const unsigned char *tok[8];                                                               \
        for (int k = 0; k < 8; k++) tok[k] = xv + (size_t)(k < rn ? k : 0) * xs;                   \
        __m256 acc = _mm256_setzero_ps();                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            iq_sb w;                                                                               \
            decode_##t(&x[i], &w);                                                                 \
            __m256i p[8], p1[8];                                                                   \
            float dy[8];                                                                           \
            for (int k = 0; k < 8; k++) {                                                          \
                const quant_block_q8_k *yb = (const quant_block_q8_k *)tok[k] + i;                 \
                p[k] = tok_isum(&w, yb->qs);                                                       \
                if (iq1) p1[k] = tok_isum1(&w, yb->qs);                                            \
                dy[k] = yb->d;                                                                     \
            }                                                                                      \
            const __m256 d = _mm256_mul_ps(_mm256_set1_ps(qx_h2f(w.d)), _mm256_loadu_ps(dy));      \
            __m256 v = _mm256_cvtepi32_ps(qx_reduce8_epi32(p));                                    \
            if (iq1) {                                                                             \
                const __m256 t1 = _mm256_mul_ps(_mm256_set1_ps(QUANT_IQ1_DELTA),                   \
                                                _mm256_cvtepi32_ps(qx_reduce8_epi32(p1)));         \
                v = _mm256_add_ps(v, t1);                                                          \
            }                                                                                      \
            acc = _mm256_add_ps(acc, _mm256_mul_ps(d, v));                                         \
        }                                                                                          \
        float lanes[8];                                                                            \
        _mm256_storeu_ps(lanes, _mm256_mul_ps(_mm256_set1_ps(post), acc));                         \
        for (int k = 0; k < rn; k++) out[(size_t)k * ys] = lanes[k];                               \
    }                                                                                              \
    static void gemm_##t(int64_t n, int64_t nr, int64_t nt, const void *vw, size_t ws,             \
                         const void *vx, size_t xs, float *y, size_t ys) {                         \
        const unsigned char *w = vw, *x = vx;                                                      \
        if (nt == 1) {                                                                             \
            for (int64_t r = 0; r < nr; r++) vec_dot_##t(n, y + r, w + (size_t)r * ws, x);         \
            return;                                                                                \
        }                                                                                          \
        for (int64_t r = 0; r < nr; r++)                                                           \
            for (int64_t k = 0; k < nt; k += 8)                                                    \
                tile_##t(nt - k < 8 ? (int)(nt - k) : 8, n / QUANT_QKK,                            \
                         (const quant_block_##t *)(w + (size_t)r * ws), x + (size_t)k * xs, xs,    \
                         y + (size_t)k * ys + r, ys);                                              \
    }

IQ_KERNELS(iq2_xxs, 0, 0.125f)
IQ_KERNELS(iq2_xs, 0, 0.125f)
IQ_KERNELS(iq2_s, 0, 0.125f)
IQ_KERNELS(iq3_xxs, 0, 0.25f)
IQ_KERNELS(iq3_s, 0, 1.0f)
IQ_KERNELS(iq1_s, 1, 1.0f)
IQ_KERNELS(iq1_m, 1, 1.0f)

#define IQ_INSTALL(T, t)                                                                           \
    tab[GGUF_T_##T].vec_dot = vec_dot_##t;                                                         \
    tab[GGUF_T_##T].gemm = gemm_##t

void quant_x86_avx2_install_iqgrid(quant_traits *tab) {
    IQ_INSTALL(IQ2_XXS, iq2_xxs);
    IQ_INSTALL(IQ2_XS, iq2_xs);
    IQ_INSTALL(IQ2_S, iq2_s);
    IQ_INSTALL(IQ3_XXS, iq3_xxs);
    IQ_INSTALL(IQ3_S, iq3_s);
    IQ_INSTALL(IQ1_S, iq1_s);
    IQ_INSTALL(IQ1_M, iq1_m);
}
