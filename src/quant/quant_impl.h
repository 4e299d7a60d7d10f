/*
 * quant_impl.h — private to src/quant: block layouts, shared helpers and the kernels each file
 * contributes to the type table. Not part of any other module's interface.
 *
 * Block structs are packed (alignment 1) so that kernels may read blocks at any address, as
 * quant.h promises: a block in the middle of a mapped GGUF has no alignment guarantee beyond the
 * tensor's start, and callers may hand us odd pointers. Their sizes are the GGUF on-disk sizes and
 * are checked below; the field order is the on-disk order.
 *
 * Element order inside a K-quant super-block (256 values), used by every kernel:
 *  - Q2_K/Q3_K: position p = 128*h + 32*j + l (h < 2, j < 4, l < 32) is bits 2j..2j+1 of
 *    qs[32*h + l]; Q3_K's third bit is bit (4*h + j) of hmask[l]. Scale of p: scales[p / 16].
 *  - Q4_K/Q5_K: position p = 64*c + 32*hi + l is the low (hi = 0) or high nibble of
 *    qs[32*c + l]; Q5_K's fifth bit is bit (2*c + hi) of qh[l]. Scale/min of p: sub-block p / 32.
 *  - Q6_K: position p = 128*h + 32*k + l: low 4 bits from ql[64*h + 32*(k & 1) + l] (low nibble
 *    for k < 2, high nibble otherwise), top 2 bits from bits 2k..2k+1 of qh[32*h + l]; scale
 *    scales[p / 16].
 */
#ifndef SHIMMY_QUANT_IMPL_H
#define SHIMMY_QUANT_IMPL_H

#include "quant/quant.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QUANT_QK  32  /* legacy block */
#define QUANT_QKK 256 /* K-quant super-block */

#define QUANT_PACKED __attribute__((packed))

typedef struct QUANT_PACKED quant_block_q4_0 {
    uint16_t d;     /* fp16 scale */
    uint8_t qs[16]; /* element j in the low nibble of qs[j], element j+16 in the high one */
} quant_block_q4_0;
_Static_assert(sizeof(quant_block_q4_0) == 18, "Q4_0 block is 18 bytes");

typedef struct QUANT_PACKED quant_block_q4_1 {
    uint16_t d, m; /* fp16 scale and minimum */
    uint8_t qs[16];
} quant_block_q4_1;
_Static_assert(sizeof(quant_block_q4_1) == 20, "Q4_1 block is 20 bytes");

typedef struct QUANT_PACKED quant_block_q5_0 {
    uint16_t d;
    uint8_t qh[4]; /* fifth bits: bit j of the little-endian u32 belongs to element j */
    uint8_t qs[16];
} quant_block_q5_0;
_Static_assert(sizeof(quant_block_q5_0) == 22, "Q5_0 block is 22 bytes");

typedef struct QUANT_PACKED quant_block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} quant_block_q5_1;
_Static_assert(sizeof(quant_block_q5_1) == 24, "Q5_1 block is 24 bytes");

typedef struct QUANT_PACKED quant_block_q8_0 {
    uint16_t d;
    int8_t qs[32];
} quant_block_q8_0;
_Static_assert(sizeof(quant_block_q8_0) == 34, "Q8_0 block is 34 bytes");

typedef struct QUANT_PACKED quant_block_q8_1 {
    uint16_t d; /* fp16(d) */
    uint16_t s; /* fp16(d * sum(qs)), d in f32 before rounding */
    int8_t qs[32];
} quant_block_q8_1;
_Static_assert(sizeof(quant_block_q8_1) == 36, "Q8_1 block is 36 bytes");

typedef struct QUANT_PACKED quant_block_q2_k {
    uint8_t scales[16]; /* low nibble scale, high nibble min, per 16 values */
    uint8_t qs[64];
    uint16_t d, dmin;
} quant_block_q2_k;
_Static_assert(sizeof(quant_block_q2_k) == 84, "Q2_K block is 84 bytes");

typedef struct QUANT_PACKED quant_block_q3_k {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12]; /* 16 six-bit scales, offset by 32 */
    uint16_t d;
} quant_block_q3_k;
_Static_assert(sizeof(quant_block_q3_k) == 110, "Q3_K block is 110 bytes");

typedef struct QUANT_PACKED quant_block_q4_k {
    uint16_t d, dmin;
    uint8_t scales[12]; /* 8 six-bit scales and 8 six-bit mins (quant_k4_scale_min) */
    uint8_t qs[128];
} quant_block_q4_k;
_Static_assert(sizeof(quant_block_q4_k) == 144, "Q4_K block is 144 bytes");

typedef struct QUANT_PACKED quant_block_q5_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} quant_block_q5_k;
_Static_assert(sizeof(quant_block_q5_k) == 176, "Q5_K block is 176 bytes");

typedef struct QUANT_PACKED quant_block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} quant_block_q6_k;
_Static_assert(sizeof(quant_block_q6_k) == 210, "Q6_K block is 210 bytes");

typedef struct QUANT_PACKED quant_block_q8_k {
    float d; /* f32 scale (may be negative) */
    int8_t qs[256];
    int16_t bsums[16]; /* sum of each 16 consecutive qs */
} quant_block_q8_k;
_Static_assert(sizeof(quant_block_q8_k) == 292, "Q8_K block is 292 bytes");

/* ---- helpers shared by the kernels ---- */

/* Round to nearest, ties to even, for |v| < 2^22 (adding 1.5*2^23 leaves the integer in the low
 * mantissa bits). Out-of-range or NaN input gives an unspecified int, never undefined behaviour:
 * quantizers fed garbage produce garbage, not a crash. */
static inline int quant_nearest_int(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Truncates v toward zero and clamps it to [lo, hi]; NaN gives lo. */
static inline int quant_trunc_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* The j-th (0..7) six-bit scale and min of a Q4_K/Q5_K scales[12] array. */
static inline void quant_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* All 8 scales and 8 mins of a Q4_K/Q5_K block as the bytes of two words (byte j = the value
 * quant_k4_scale_min gives for j), four at a time on 32-bit words. */
static inline void quant_k4_unpack(const uint8_t *s12, uint64_t *sc, uint64_t *m) {
    uint32_t a, b, c;
    memcpy(&a, s12, 4);
    memcpy(&b, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t low6 = 0x3F3F3F3Fu, low4 = 0x0F0F0F0Fu, low2 = 0x03030303u;
    uint32_t sc_hi = (c & low4) | (((a >> 6) & low2) << 4);
    uint32_t m_hi = ((c >> 4) & low4) | (((b >> 6) & low2) << 4);
    *sc = (uint64_t)(a & low6) | ((uint64_t)sc_hi << 32);
    *m = (uint64_t)(b & low6) | ((uint64_t)m_hi << 32);
}

/* The 16 signed scales (-32..31) of a Q3_K block: scale j has its low 4 bits in byte j (j < 8)
 * or the high nibble of byte j-8, and its top 2 bits in byte 8 + j%4 at bit 2*(j/4). Done four
 * scales at a time on 32-bit words. */
static inline void quant_q3k_scales(const uint8_t *s12, int8_t out[16]) {
    uint32_t a, b, c, w[4];
    memcpy(&a, s12, 4);
    memcpy(&b, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t low4 = 0x0F0F0F0Fu, low2 = 0x03030303u;
    w[0] = (a & low4) | ((c & low2) << 4);
    w[1] = (b & low4) | (((c >> 2) & low2) << 4);
    w[2] = ((a >> 4) & low4) | (((c >> 4) & low2) << 4);
    w[3] = ((b >> 4) & low4) | (((c >> 6) & low2) << 4);
    uint8_t u[16];
    memcpy(u, w, 16);
    for (int j = 0; j < 16; j++) out[j] = (int8_t)(u[j] - 32);
}

/* ---- reference kernels (src/quant/ref/) ---- */

#define QUANT_DECLARE_TYPE(t)                                                                      \
    void quant_ref_to_float_##t(const void *x, float *y, int64_t n);                               \
    void quant_ref_from_float_##t(const float *x, void *y, int64_t n)

QUANT_DECLARE_TYPE(f32);
QUANT_DECLARE_TYPE(f16);
QUANT_DECLARE_TYPE(bf16);
QUANT_DECLARE_TYPE(q4_0);
QUANT_DECLARE_TYPE(q4_1);
QUANT_DECLARE_TYPE(q5_0);
QUANT_DECLARE_TYPE(q5_1);
QUANT_DECLARE_TYPE(q8_0);
QUANT_DECLARE_TYPE(q8_1);
QUANT_DECLARE_TYPE(q2_k);
QUANT_DECLARE_TYPE(q3_k);
QUANT_DECLARE_TYPE(q4_k);
QUANT_DECLARE_TYPE(q5_k);
QUANT_DECLARE_TYPE(q6_k);
QUANT_DECLARE_TYPE(q8_k);
#undef QUANT_DECLARE_TYPE

/* Model-file quantizers that differ from the activation quantizer (llama-quantize's
 * quantize_row_q8_0_ref / q8_1_ref: 1/d as multiplier, rounding half away from zero). */
void quant_ref_quantize_q8_0(const float *x, void *y, int64_t n);
void quant_ref_quantize_q8_1(const float *x, void *y, int64_t n);

void quant_ref_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q4_1(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q5_0(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q5_1(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q2_k(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q3_k(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q4_k(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q5_k(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_q6_k(int64_t n, float *s, const void *x, const void *y);

/* ---- ISA variants: each overrides the rows it accelerates in a copy of the table ---- */

typedef void (*quant_install_fn)(quant_traits *table /* [GGUF_T_COUNT] */);

void quant_x86_avx2_install(quant_traits *table);
void quant_x86_avx2_install_kquants(quant_traits *table); /* called by the one above */
void quant_x86_avx512_install(quant_traits *table);
void quant_x86_avx2_install_gemm(quant_traits *table);   /* tile kernels, avx2_gemm.c */
void quant_x86_avx512_install_gemm(quant_traits *table); /* tile kernels, avx512_gemm.c */
void quant_x86_avxvnni_install(quant_traits *table);     /* AVX-VNNI tiles, avxvnni_gemm.c */
/* The AVX2 batched F16 dot, for the AVX-512 tile kernel's sizes it does not tile. */
void quant_x86_avx2_vec_dot_batch_f16(int64_t n, float *s, const void *x, const void *y);
void quant_arm_neon_install(quant_traits *table);
void quant_arm_neon_install_gemm(quant_traits *table); /* tile kernels, arm/neon_gemm.c */

#endif
