/* The SIMD pieces of the low-rank path that keep B's vec_dot numerics while avoiding its per-row
 * scalar tail: B in panels of 8 outputs (built at load), and the F16 conversion of x.
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

void lora_f16_row_ref(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = quant_f32_to_f16(x[i]);
}

#ifdef LORA_X86
/* Separate multiply and add (no FMA in this target), as in the F32 tail. */
__attribute__((target("avx"))) static void panel_f32_avx(const float *bp, int64_t rank,
                                                         const float *t, float scale, float *y,
                                                         int64_t n_panels) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int64_t k = 0; k < n_panels; k++, bp += rank * LORA_PANEL, y += LORA_PANEL) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t r = 0; r < rank; r++)
            acc = _mm256_add_ps(
                acc, _mm256_mul_ps(_mm256_set1_ps(t[r]), _mm256_loadu_ps(bp + r * LORA_PANEL)));
        _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(vs, acc)));
    }
}

/* Products of two halves are exact in float; they are widened and summed in double per lane. */
__attribute__((target("avx,f16c"))) static void panel_f16_avx(const uint16_t *bp, int64_t rank,
                                                              const uint16_t *t, float scale,
                                                              float *y, int64_t n_panels) {
    const __m256 vs = _mm256_set1_ps(scale);
    float tf[64];
    for (int64_t r = 0; r < rank; r++) tf[r] = quant_f16_to_f32(t[r]);
    for (int64_t k = 0; k < n_panels; k++, bp += rank * LORA_PANEL, y += LORA_PANEL) {
        __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
        for (int64_t r = 0; r < rank; r++) {
            const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(bp + r * 8)));
            const __m256 prod = _mm256_mul_ps(_mm256_set1_ps(tf[r]), b);
            lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(prod)));
            hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(prod, 1)));
        }
        const __m256 d = _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
        _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(vs, d)));
    }
}

/* Round to nearest even, as quant_f32_to_f16 (they differ only in the payload of a NaN). */
__attribute__((target("avx,f16c"))) static void f16_row_f16c(const float *x, uint16_t *y,
                                                             int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    lora_f16_row_ref(x + i, y + i, n - i);
}

static bool have_avx(void) {
    return (core_cpu_usable() & CORE_CPU_AVX2) != 0;
}
static bool have_f16c(void) {
    return have_avx() && (core_cpu_usable() & CORE_CPU_F16C) != 0;
}
#endif

void lora_panel_f32(const float *bp, int64_t rank, const float *t, float scale, float *y,
                    int64_t n_panels) {
#ifdef LORA_X86
    if (have_avx()) {
        panel_f32_avx(bp, rank, t, scale, y, n_panels);
        return;
    }
#endif
    lora_panel_f32_ref(bp, rank, t, scale, y, n_panels);
}

void lora_panel_f16(const uint16_t *bp, int64_t rank, const uint16_t *t, float scale, float *y,
                    int64_t n_panels) {
#ifdef LORA_X86
    if (have_f16c()) {
        panel_f16_avx(bp, rank, t, scale, y, n_panels);
        return;
    }
#endif
    lora_panel_f16_ref(bp, rank, t, scale, y, n_panels);
}

void lora_f16_row(const float *x, uint16_t *y, int64_t n) {
#ifdef LORA_X86
    if (have_f16c()) {
        f16_row_f16c(x, y, n);
        return;
    }
#endif
    lora_f16_row_ref(x, y, n);
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
