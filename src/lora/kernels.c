/* B·(A·x) in panels: the SIMD form of B's vec_dot for the low-rank path, which avoids its per-row
 * scalar tail by keeping B in panels of 8 outputs (built at load).
 *
 * A rank-r row of B (r < 64) never reaches the 64-element vector loop of the engine's float dots,
 * so its vec_dot is the plain scalar tail: F32 adds the rounded products in order onto +0 (FMAs
 * only for the last r % 8, which is why F32 panels need r % 8 == 0), F16 adds the exact float
 * products in order onto a double +0 and rounds the sum to float once. The same steps run here for
 * 8 outputs per register, so each output gets the bits of its vec_dot. */
#include "lora/lora_impl.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LORA_X86 1
#endif

/* The kernel sets whose F32/F16 vec_dot have the tails described above: the x86 variants and
 * the scalar reference (F16 only: its F32 dot sums in another order). */
static bool tail_is_ordered(uint32_t type) {
    const char *isa = quant_isa();
    if (strncmp(isa, "avx", 3) == 0) return true;
    return type == GGUF_T_F16 && strcmp(isa, "scalar") == 0;
}

bool lora_pair_panel_ok(const lora_pair *p) {
    if (p->n_out < LORA_PANEL || p->rank < 1 || p->rank >= 64) return false;
    if (p->qb != quant_get(p->type_b) || !tail_is_ordered(p->type_b)) return false;
    if (p->type_b == GGUF_T_F32) return p->rank % 8 == 0;
    return p->type_b == GGUF_T_F16;
}

void lora_panel_f32_ref(const float *bp, int64_t rank, const float *t, float scale, float *y,
                        int64_t n_panels) {
    for (int64_t k = 0; k < n_panels; k++, bp += rank * LORA_PANEL, y += LORA_PANEL)
        for (int o = 0; o < LORA_PANEL; o++) {
            float acc = 0.0f;
            for (int64_t r = 0; r < rank; r++) {
                const float prod = t[r] * bp[r * LORA_PANEL + o];
                acc = acc + prod;
            }
            const float d = scale * acc;
            y[o] = y[o] + d;
        }
}

void lora_panel_f16_ref(const uint16_t *bp, int64_t rank, const uint16_t *t, float scale, float *y,
                        int64_t n_panels) {
    for (int64_t k = 0; k < n_panels; k++, bp += rank * LORA_PANEL, y += LORA_PANEL)
        for (int o = 0; o < LORA_PANEL; o++) {
            double acc = 0.0;
            for (int64_t r = 0; r < rank; r++) {
                const float prod =
                    quant_f16_to_f32(t[r]) * quant_f16_to_f32(bp[r * LORA_PANEL + o]);
                acc = acc + (double)prod;
            }
            const float d = scale * (float)acc;
            y[o] = y[o] + d;
        }
}

#ifdef LORA_X86
/* Each output's sum is one chain of dependent adds, so one panel at a time would wait on their
 * latency; four panels advance together (four independent chains per lane), each with exactly
 * the steps it has alone. */
#define AVX_F32 __attribute__((target("avx"), always_inline)) static inline
#define AVX_F16 __attribute__((target("avx,f16c"), always_inline)) static inline

/* Separate multiply and add (no FMA in this target), as in the F32 tail. */
AVX_F32 void f32_step(__m256 tr, const float *b, __m256 *acc) {
    *acc = _mm256_add_ps(*acc, _mm256_mul_ps(tr, _mm256_loadu_ps(b)));
}

AVX_F32 void f32_end(__m256 acc, __m256 vs, float *y) {
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(vs, acc)));
}

/* At decode the panels come from memory and four panels take only ~50 cycles of arithmetic:
 * the hardware prefetcher, seeing four interleaved streams, does not run far enough ahead (the
 * loop read ~4 bytes per cycle); requesting the block this far ahead doubled that. Prefetches do
 * not fault, so the last blocks may reach past the panels. */
#define PANEL_F32_AHEAD 2048 /* bytes */

__attribute__((target("avx"))) static void panel_f32_avx(const float *bp, int64_t rank,
                                                         const float *t, float scale, float *y,
                                                         int64_t n_panels) {
    const __m256 vs = _mm256_set1_ps(scale);
    const int64_t step = rank * LORA_PANEL;
    int64_t k = 0;
    for (; k + 4 <= n_panels; k += 4, bp += 4 * step, y += 4 * LORA_PANEL) {
        const char *ahead = (const char *)bp + PANEL_F32_AHEAD;
        for (int64_t l = 0; l < 4 * step * (int64_t)sizeof(float); l += 64)
            _mm_prefetch(ahead + l, _MM_HINT_T0);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t r = 0; r < rank; r++) {
            const __m256 tr = _mm256_set1_ps(t[r]);
            const float *b = bp + r * LORA_PANEL;
            f32_step(tr, b, &a0);
            f32_step(tr, b + step, &a1);
            f32_step(tr, b + 2 * step, &a2);
            f32_step(tr, b + 3 * step, &a3);
        }
        f32_end(a0, vs, y);
        f32_end(a1, vs, y + LORA_PANEL);
        f32_end(a2, vs, y + 2 * LORA_PANEL);
        f32_end(a3, vs, y + 3 * LORA_PANEL);
    }
    for (; k < n_panels; k++, bp += step, y += LORA_PANEL) {
        __m256 a0 = _mm256_setzero_ps();
        for (int64_t r = 0; r < rank; r++) f32_step(_mm256_set1_ps(t[r]), bp + r * LORA_PANEL, &a0);
        f32_end(a0, vs, y);
    }
}

/* Products of two halves are exact in float; they are widened and summed in double per lane. */
AVX_F16 void f16_step(__m256 tr, const uint16_t *b, __m256d *lo, __m256d *hi) {
    const __m256 prod = _mm256_mul_ps(tr, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b)));
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(prod)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(prod, 1)));
}

AVX_F16 void f16_end(__m256d lo, __m256d hi, __m256 vs, float *y) {
    const __m256 d = _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(vs, d)));
}

__attribute__((target("avx,f16c"))) static void panel_f16_avx(const uint16_t *bp, int64_t rank,
                                                              const uint16_t *t, float scale,
                                                              float *y, int64_t n_panels) {
    const __m256 vs = _mm256_set1_ps(scale);
    float tf[64];
    for (int64_t r = 0; r < rank; r++) tf[r] = quant_f16_to_f32(t[r]);
    const int64_t step = rank * LORA_PANEL;
    int64_t k = 0;
    for (; k + 4 <= n_panels; k += 4, bp += 4 * step, y += 4 * LORA_PANEL) {
        __m256d l0 = _mm256_setzero_pd(), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0,
                h3 = l0;
        for (int64_t r = 0; r < rank; r++) {
            const __m256 tr = _mm256_set1_ps(tf[r]);
            const uint16_t *b = bp + r * LORA_PANEL;
            f16_step(tr, b, &l0, &h0);
            f16_step(tr, b + step, &l1, &h1);
            f16_step(tr, b + 2 * step, &l2, &h2);
            f16_step(tr, b + 3 * step, &l3, &h3);
        }
        f16_end(l0, h0, vs, y);
        f16_end(l1, h1, vs, y + LORA_PANEL);
        f16_end(l2, h2, vs, y + 2 * LORA_PANEL);
        f16_end(l3, h3, vs, y + 3 * LORA_PANEL);
    }
    for (; k < n_panels; k++, bp += step, y += LORA_PANEL) {
        __m256d l0 = _mm256_setzero_pd(), h0 = l0;
        for (int64_t r = 0; r < rank; r++)
            f16_step(_mm256_set1_ps(tf[r]), bp + r * LORA_PANEL, &l0, &h0);
        f16_end(l0, h0, vs, y);
    }
}

/* AVX-512: B is widened to double and multiplied there, one FMA per 8 outputs: a product of two
 * halves is exact in float and in double, so fma(t, b, acc) rounds exactly like
 * acc + (double)(t·b in float), with one conversion and no multiply in float (the conversions
 * are what bounds this kernel). */
#define AVX512_F16 __attribute__((target("avx512f,avx2,f16c,fma"), always_inline)) static inline

AVX512_F16 void f16_step512(__m512d tr, const uint16_t *b, __m512d *acc) {
    const __m512d bd = _mm512_cvtps_pd(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b)));
    *acc = _mm512_fmadd_pd(tr, bd, *acc);
}

AVX512_F16 void f16_end512(__m512d acc, __m256 vs, float *y) {
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(vs, _mm512_cvtpd_ps(acc))));
}

__attribute__((target("avx512f,avx2,f16c,fma"))) static void
panel_f16_avx512(const uint16_t *bp, int64_t rank, const uint16_t *t, float scale, float *y,
                 int64_t n_panels) {
    const __m256 vs = _mm256_set1_ps(scale);
    double td[64];
    for (int64_t r = 0; r < rank; r++) td[r] = (double)quant_f16_to_f32(t[r]);
    const int64_t step = rank * LORA_PANEL;
    int64_t k = 0;
    for (; k + 4 <= n_panels; k += 4, bp += 4 * step, y += 4 * LORA_PANEL) {
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t r = 0; r < rank; r++) {
            const __m512d tr = _mm512_set1_pd(td[r]);
            const uint16_t *b = bp + r * LORA_PANEL;
            f16_step512(tr, b, &a0);
            f16_step512(tr, b + step, &a1);
            f16_step512(tr, b + 2 * step, &a2);
            f16_step512(tr, b + 3 * step, &a3);
        }
        f16_end512(a0, vs, y);
        f16_end512(a1, vs, y + LORA_PANEL);
        f16_end512(a2, vs, y + 2 * LORA_PANEL);
        f16_end512(a3, vs, y + 3 * LORA_PANEL);
    }
    for (; k < n_panels; k++, bp += step, y += LORA_PANEL) {
        __m512d a0 = _mm512_setzero_pd();
        for (int64_t r = 0; r < rank; r++)
            f16_step512(_mm512_set1_pd(td[r]), bp + r * LORA_PANEL, &a0);
        f16_end512(a0, vs, y);
    }
}

/* Several tokens over the same panels (prompt processing): B is widened to double once per block
 * of panels and reused by every token. A product of two halves is exact in double, so
 * fma(t, b, acc) rounds exactly like acc + (double)(t·b in float): the same bits. */
#define LORA_TOK_BLOCK 8  /* panels per widened block: 8 · 63 · 64 bytes at most, on the stack */
#define LORA_TOK_CHUNK 32 /* tokens whose A·x is widened at once: 32 · 64 · 8 bytes */

__attribute__((target("avx512f,avx2,f16c,fma"))) static void
panel_f16_tokens_avx512(const uint16_t *bp, int64_t rank, const void *ts, size_t ts_row, int n_tok,
                        float scale, float *y, int64_t y_stride, int64_t n_panels) {
    const __m256 vs = _mm256_set1_ps(scale);
    const int64_t step = rank * LORA_PANEL;
    __m512d wb[LORA_TOK_BLOCK * 63];
    double td[LORA_TOK_CHUNK][64];
    for (int t0 = 0; t0 < n_tok; t0 += LORA_TOK_CHUNK) {
        const int nt = n_tok - t0 < LORA_TOK_CHUNK ? n_tok - t0 : LORA_TOK_CHUNK;
        for (int t = 0; t < nt; t++) {
            const uint16_t *h = (const uint16_t *)((const char *)ts + (size_t)(t0 + t) * ts_row);
            for (int64_t r = 0; r < rank; r++) td[t][r] = (double)quant_f16_to_f32(h[r]);
        }
        for (int64_t k0 = 0; k0 < n_panels; k0 += LORA_TOK_BLOCK) {
            const int64_t nk = n_panels - k0 < LORA_TOK_BLOCK ? n_panels - k0 : LORA_TOK_BLOCK;
            for (int64_t k = 0; k < nk; k++)
                for (int64_t r = 0; r < rank; r++)
                    wb[k * rank + r] = _mm512_cvtps_pd(_mm256_cvtph_ps(
                        _mm_loadu_si128((const __m128i *)(bp + (k0 + k) * step + r * LORA_PANEL))));
            for (int t = 0; t < nt; t++) {
                float *yt = y + (int64_t)(t0 + t) * y_stride + k0 * LORA_PANEL;
                if (nk == LORA_TOK_BLOCK) {
                    __m512d acc[LORA_TOK_BLOCK];
#pragma GCC unroll 8
                    for (int k = 0; k < LORA_TOK_BLOCK; k++) acc[k] = _mm512_setzero_pd();
                    for (int64_t r = 0; r < rank; r++) {
                        const __m512d tr = _mm512_set1_pd(td[t][r]);
#pragma GCC unroll 8
                        for (int k = 0; k < LORA_TOK_BLOCK; k++)
                            acc[k] = _mm512_fmadd_pd(tr, wb[k * rank + r], acc[k]);
                    }
#pragma GCC unroll 8
                    for (int k = 0; k < LORA_TOK_BLOCK; k++)
                        f16_end512(acc[k], vs, yt + k * LORA_PANEL);
                } else {
                    for (int64_t k = 0; k < nk; k++) {
                        __m512d acc = _mm512_setzero_pd();
                        for (int64_t r = 0; r < rank; r++)
                            acc = _mm512_fmadd_pd(_mm512_set1_pd(td[t][r]), wb[k * rank + r], acc);
                        f16_end512(acc, vs, yt + k * LORA_PANEL);
                    }
                }
            }
        }
    }
}

#endif

void lora_panel_f16_tokens_ref(const uint16_t *bp, int64_t rank, const void *ts, size_t ts_row,
                               int n_tok, float scale, float *y, int64_t y_stride,
                               int64_t n_panels) {
    for (int tok = 0; tok < n_tok; tok++)
        lora_panel_f16(bp, rank, (const uint16_t *)((const char *)ts + (size_t)tok * ts_row), scale,
                       y + (int64_t)tok * y_stride, n_panels);
}

#ifdef LORA_X86
static bool have_avx(void) {
    return (core_cpu_usable() & CORE_CPU_AVX2) != 0;
}
static bool have_f16c(void) {
    return have_avx() && (core_cpu_usable() & CORE_CPU_F16C) != 0;
}

/* The kernel set the per-product calls use, chosen once: core_cpu_usable reads the environment,
 * which a decode step would otherwise do once per product (measurable in a profile). Threads
 * racing to choose make the same choice. 1 scalar, 2 AVX2+F16C, 3 AVX-512. */
static int level(void) {
    static int cached;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        v = !have_f16c() ? 1 : (core_cpu_usable() & CORE_CPU_AVX512F) ? 3 : 2;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

lora_panel_f16_fn lora_panel_f16_variant(int i) {
#ifdef LORA_X86
    if (i == 1 && have_f16c()) return panel_f16_avx;
    if (i == 2 && have_f16c() && (core_cpu_usable() & CORE_CPU_AVX512F)) return panel_f16_avx512;
#endif
    return i == 0 ? lora_panel_f16_ref : NULL;
}

void lora_panel_f32(const float *bp, int64_t rank, const float *t, float scale, float *y,
                    int64_t n_panels) {
#ifdef LORA_X86
    if (level() > 1) {
        panel_f32_avx(bp, rank, t, scale, y, n_panels);
        return;
    }
#endif
    lora_panel_f32_ref(bp, rank, t, scale, y, n_panels);
}

void lora_panel_f16(const uint16_t *bp, int64_t rank, const uint16_t *t, float scale, float *y,
                    int64_t n_panels) {
#ifdef LORA_X86
    const int l = level();
    lora_panel_f16_fn fn = l == 3 ? panel_f16_avx512 : l == 2 ? panel_f16_avx : lora_panel_f16_ref;
#else
    lora_panel_f16_fn fn = lora_panel_f16_ref;
#endif
    fn(bp, rank, t, scale, y, n_panels);
}

size_t lora_panel_bytes(const lora_pair *p) {
    return (size_t)(p->n_out / LORA_PANEL) * LORA_PANEL * (size_t)p->rank *
           quant_get(p->type_b)->type_size;
}

void lora_panel_build(const lora_pair *p, void *out) {
    const size_t es = quant_get(p->type_b)->type_size; /* 4 or 2: one element per block */
    unsigned char *dst = out;
    const unsigned char *b = p->b;
    for (int64_t k = 0; k < p->n_out / LORA_PANEL; k++)
        for (int64_t r = 0; r < p->rank; r++)
            for (int o = 0; o < LORA_PANEL; o++, dst += es)
                memcpy(dst, b + (size_t)(k * LORA_PANEL + o) * p->b_row_bytes + (size_t)r * es, es);
}

void lora_panel_f16_tokens(const uint16_t *bp, int64_t rank, const void *ts, size_t ts_row,
                           int n_tok, float scale, float *y, int64_t y_stride, int64_t n_panels) {
#ifdef LORA_X86
    if (level() == 3) {
        panel_f16_tokens_avx512(bp, rank, ts, ts_row, n_tok, scale, y, y_stride, n_panels);
        return;
    }
#endif
    lora_panel_f16_tokens_ref(bp, rank, ts, ts_row, n_tok, scale, y, y_stride, n_panels);
}
