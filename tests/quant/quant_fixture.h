/* Fixtures shared by the quant tests: the weight types with a dot product, row lengths with odd
 * block counts, rows placed at odd addresses, and data patterns that stress the kernels. */
#ifndef SHIMMY_QUANT_FIXTURE_H
#define SHIMMY_QUANT_FIXTURE_H

#include "quant/quant.h"
#include "test.h"

static const uint32_t qf_weight_types[] = {
    GGUF_T_F32,  GGUF_T_F16,  GGUF_T_BF16, GGUF_T_Q4_0, GGUF_T_Q4_1, GGUF_T_Q5_0, GGUF_T_Q5_1,
    GGUF_T_Q8_0, GGUF_T_Q2_K, GGUF_T_Q3_K, GGUF_T_Q4_K, GGUF_T_Q5_K, GGUF_T_Q6_K,
};
#define QF_N_WEIGHT_TYPES (sizeof qf_weight_types / sizeof qf_weight_types[0])

static const uint32_t qf_act_types[] = {GGUF_T_F32,  GGUF_T_F16,  GGUF_T_BF16,
                                        GGUF_T_Q8_0, GGUF_T_Q8_1, GGUF_T_Q8_K};
#define QF_N_ACT_TYPES (sizeof qf_act_types / sizeof qf_act_types[0])

/* Block counts: one, odd counts that leave every SIMD tail path something to do, and a long row. */
static const int qf_blocks[] = {1, 3, 7, 16};
/* Elements for block-size-1 types: odd lengths around the vector widths. */
static const int qf_elems[] = {1, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 144, 257, 4096};
/* Byte offsets of a row from an aligned start. */
static const int qf_misalign[] = {0, 1, 3};

typedef enum qf_pattern {
    QF_NORMAL,  /* N(0,1) */
    QF_SCALED,  /* N(0.3, 1) * 1e-3: small magnitudes and an offset */
    QF_EXTREME, /* alternating +-max with zeros: every level at its extreme, saturation paths */
    QF_N_PATTERNS
} qf_pattern;

static inline void qf_fill(float *x, int64_t n, qf_pattern p, test_rng *rng) {
    for (int64_t i = 0; i < n; i++) {
        switch (p) {
        case QF_NORMAL: x[i] = (float)test_rng_normal(rng); break;
        case QF_SCALED: x[i] = (float)(1e-3 * (test_rng_normal(rng) + 0.3)); break;
        default: x[i] = (i % 3 == 2) ? 0.0f : (i & 1 ? -8.0f : 8.0f); break;
        }
    }
}

/* n elements of a type quantized by fn into fresh memory at byte offset `off` from a 64-byte
 * aligned start; *base receives the pointer to free. */
static inline void *qf_row(const quant_traits *q, quant_from_float_fn fn, const float *x, int64_t n,
                           int off, void **base) {
    size_t bytes = quant_row_bytes(q, n);
    unsigned char *b = aligned_alloc(64, (bytes + off + 63) / 64 * 64);
    *base = b;
    if (!b) return NULL;
    fn(x, b + off, n);
    return b + off;
}

#endif
