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

/* ---- i-quants, ternary and MXFP4 (ref/iq_*.c, ref/ternary.c, ref/mxfp4.c describe the
 * element order of each) ---- */

typedef struct QUANT_PACKED quant_block_iq4_nl {
    uint16_t d;
    uint8_t qs[16]; /* codes into quant_iq4nl_values: element j low nibble, j+16 high nibble */
} quant_block_iq4_nl;
_Static_assert(sizeof(quant_block_iq4_nl) == 18, "IQ4_NL block is 18 bytes");

typedef struct QUANT_PACKED quant_block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;   /* top 2 bits of the 8 six-bit scales (offset 32), bits 2j..2j+1 */
    uint8_t scales_l[4]; /* low 4 bits: scale j in nibble j%2 of byte j/2 */
    uint8_t qs[128];     /* per 32: 16 bytes as in IQ4_NL */
} quant_block_iq4_xs;
_Static_assert(sizeof(quant_block_iq4_xs) == 136, "IQ4_XS block is 136 bytes");

typedef struct QUANT_PACKED quant_block_iq2_xxs {
    uint16_t d;
    uint8_t qs[64]; /* per 32: 4 grid index bytes, then a u32 of 4x7 sign bits and a 4-bit scale */
} quant_block_iq2_xxs;
_Static_assert(sizeof(quant_block_iq2_xxs) == 66, "IQ2_XXS block is 66 bytes");

typedef struct QUANT_PACKED quant_block_iq2_xs {
    uint16_t d;
    uint8_t qs[64];    /* 32 u16: 9-bit grid index, 7 sign bits */
    uint8_t scales[8]; /* two 4-bit scales per 32 (one per 16) */
} quant_block_iq2_xs;
_Static_assert(sizeof(quant_block_iq2_xs) == 74, "IQ2_XS block is 74 bytes");

typedef struct QUANT_PACKED quant_block_iq2_s {
    uint16_t d;
    uint8_t qs[64]; /* 32 low index bytes, then 32 sign bytes */
    uint8_t qh[8];  /* index bits 8-9, two bits per group of 8 */
    uint8_t scales[8];
} quant_block_iq2_s;
_Static_assert(sizeof(quant_block_iq2_s) == 82, "IQ2_S block is 82 bytes");

typedef struct QUANT_PACKED quant_block_iq3_xxs {
    uint16_t d;
    uint8_t qs[96]; /* 64 grid index bytes (one per 4), then per 32 a u32 of signs + scale */
} quant_block_iq3_xxs;
_Static_assert(sizeof(quant_block_iq3_xxs) == 98, "IQ3_XXS block is 98 bytes");

typedef struct QUANT_PACKED quant_block_iq3_s {
    uint16_t d;
    uint8_t qs[64];    /* low 8 bits of the 9-bit grid indices, one per 4 */
    uint8_t qh[8];     /* bit 8 of the 8 indices of a 32 */
    uint8_t signs[32]; /* one bit per element */
    uint8_t scales[4]; /* 4-bit scales, two per byte */
} quant_block_iq3_s;
_Static_assert(sizeof(quant_block_iq3_s) == 110, "IQ3_S block is 110 bytes");

typedef struct QUANT_PACKED quant_block_iq1_s {
    uint16_t d;
    uint8_t qs[32]; /* low 8 bits of the 11-bit grid indices, one per 8 */
    uint8_t qh[16]; /* 8 u16 per 32: 4x3 index bits, 3-bit scale, delta sign (bit 15) */
} quant_block_iq1_s;
_Static_assert(sizeof(quant_block_iq1_s) == 50, "IQ1_S block is 50 bytes");

typedef struct QUANT_PACKED quant_block_iq1_m {
    uint8_t qs[32];    /* low 8 bits of the grid indices */
    uint8_t qh[16];    /* per 8 (a nibble): index bits 8-10 and the delta sign (bit 3) */
    uint8_t scales[8]; /* 4 u16: 3-bit scales per 16 and, in the top nibbles, the fp16 scale */
} quant_block_iq1_m;
_Static_assert(sizeof(quant_block_iq1_m) == 56, "IQ1_M block is 56 bytes");

typedef struct QUANT_PACKED quant_block_tq1_0 {
    uint8_t qs[48]; /* 5 trits per byte (base 3, scaled to 0..255) */
    uint8_t qh[4];  /* 4 trits per byte */
    uint16_t d;
} quant_block_tq1_0;
_Static_assert(sizeof(quant_block_tq1_0) == 54, "TQ1_0 block is 54 bytes");

typedef struct QUANT_PACKED quant_block_tq2_0 {
    uint8_t qs[64]; /* 2 bits per element, value - 1 */
    uint16_t d;
} quant_block_tq2_0;
_Static_assert(sizeof(quant_block_tq2_0) == 66, "TQ2_0 block is 66 bytes");

typedef struct QUANT_PACKED quant_block_mxfp4 {
    uint8_t e;      /* E8M0 shared exponent */
    uint8_t qs[16]; /* E2M1 codes: element j low nibble, j+16 high nibble */
} quant_block_mxfp4;
_Static_assert(sizeof(quant_block_mxfp4) == 17, "MXFP4 block is 17 bytes");

/* IQ1 grid values carry this offset, its sign per group of 8 (IQ1_M) or 32 (IQ1_S). */
#define QUANT_IQ1_DELTA 0.125f

/* The codebooks (ref/iq_grids.c, generated; see there how they were derived) and their expanded
 * forms (ref/iq_tables.c; filled by quant_iq_tables_init, which quant_init runs before any
 * kernel can be reached, read-only afterwards). An 8-wide grid entry is 8 bytes (element j in
 * byte j), a 4-wide one 4 bytes; IQ1's bytes are signed (-1, 0, 1). */
extern const int8_t quant_iq4nl_values[16];
extern const int8_t quant_iq2xxs_levels[4], quant_iq2xs_levels[4], quant_iq2s_levels[4];
extern const int8_t quant_iq3xxs_levels[8], quant_iq3s_levels[8], quant_iq1s_levels[4];
extern const uint16_t quant_iq2xxs_packed[256], quant_iq2xs_packed[512], quant_iq2s_packed[1024];
extern const uint16_t quant_iq3xxs_packed[256], quant_iq3s_packed[512], quant_iq1s_packed[2048];
extern uint64_t quant_iq2xxs_grid[256], quant_iq2xs_grid[512], quant_iq2s_grid[1024];
extern uint64_t quant_iq1s_grid[2048];
extern uint32_t quant_iq3xxs_grid[256], quant_iq3s_grid[512];
/* 7 stored sign bits -> the 8 signs (the 8th is their parity), as a mask and as 8 bytes of +1
 * or -1 (for sign-multiplying instructions). */
extern uint8_t quant_iq_signs[128];
extern uint64_t quant_iq_signs64[128];
/* Bit patterns -> 8 bytes of +1/-1 (bit j set: byte j is -1), for IQ2_S/IQ3_S's stored signs. */
extern uint64_t quant_iq_bits64[256];
void quant_iq_tables_init(void);

/* E8M0 exponent -> 2^(e-128) as float (MXFP4's codes are stored doubled: E2M1 value x2), with
 * the two smallest as subnormals. */
static inline float quant_e8m0_half(uint8_t e) {
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
extern const int8_t quant_mxfp4_values[16];

/* The fp16 scale of an IQ1_M block, kept in the top nibbles of its four scale words. */
static inline uint16_t quant_iq1m_d(const quant_block_iq1_m *b) {
    uint16_t sc[4];
    memcpy(sc, b->scales, 8);
    return (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) |
                      (sc[3] & 0xF000));
}

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
QUANT_DECLARE_TYPE(iq4_nl);
QUANT_DECLARE_TYPE(iq4_xs);
QUANT_DECLARE_TYPE(tq1_0);
QUANT_DECLARE_TYPE(tq2_0);
QUANT_DECLARE_TYPE(mxfp4);
#undef QUANT_DECLARE_TYPE

/* Model-file quantizers that differ from the activation quantizer (llama-quantize's
 * quantize_row_q8_0_ref / q8_1_ref: 1/d as multiplier, rounding half away from zero). */
void quant_ref_quantize_q8_0(const float *x, void *y, int64_t n);
void quant_ref_quantize_q8_1(const float *x, void *y, int64_t n);

void quant_ref_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);
void quant_ref_dot_rows_n_f16(int64_t n, int64_t nr, const void *w, size_t ws, int nx,
                              const float *x, size_t xs, float *y, size_t ys);
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
void quant_ref_vec_dot_iq4_nl(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_iq4_xs(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_tq1_0(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_tq2_0(int64_t n, float *s, const void *x, const void *y);
void quant_ref_vec_dot_mxfp4(int64_t n, float *s, const void *x, const void *y);

/* The grid types: dequantization and dots only (no quantizer without an importance matrix). */
#define QUANT_DECLARE_GRID(t)                                                                      \
    void quant_ref_to_float_##t(const void *x, float *y, int64_t n);                               \
    void quant_ref_vec_dot_##t(int64_t n, float *s, const void *x, const void *y)
QUANT_DECLARE_GRID(iq2_xxs);
QUANT_DECLARE_GRID(iq2_xs);
QUANT_DECLARE_GRID(iq2_s);
QUANT_DECLARE_GRID(iq3_xxs);
QUANT_DECLARE_GRID(iq3_s);
QUANT_DECLARE_GRID(iq1_s);
QUANT_DECLARE_GRID(iq1_m);
#undef QUANT_DECLARE_GRID

/* How every dot of the types above combines its exact integer parts with the float scales, in
 * one place so that the SIMD kernels (which compute only the integers differently) give the
 * reference's bits. A super-block's (or block's) float term: */
static inline float quant_iq_term(float dx, float dy, int32_t isum) {
    const float d = dx * dy;
    return d * (float)isum;
}
/* IQ1_S/IQ1_M: isum over the grid values, isum1 over the activations with the delta signs. */
static inline float quant_iq1_term(float dx, float dy, int32_t isum, int32_t isum1) {
    const float d = dx * dy;
    const float t = QUANT_IQ1_DELTA * (float)isum1;
    const float v = (float)isum + t;
    return d * v;
}

/* ---- ISA variants: each overrides the rows it accelerates in a copy of the table ---- */

typedef void (*quant_install_fn)(quant_traits *table /* [GGUF_T_COUNT] */);

void quant_x86_avx2_install(quant_traits *table);
void quant_x86_avx2_install_kquants(quant_traits *table); /* called by the one above */
void quant_x86_avx2_install_bf16(quant_traits *table);    /* avx2_bf16.c, likewise */
void quant_x86_avx512_install(quant_traits *table);
void quant_x86_avx2_install_gemm(quant_traits *table);   /* tile kernels, avx2_gemm.c */
void quant_x86_avx512_install_gemm(quant_traits *table); /* tile kernels, avx512_gemm.c */
void quant_x86_avxvnni_install(quant_traits *table);     /* AVX-VNNI tiles, avxvnni_gemm.c */
/* The AVX2 batched F16 dot, for the AVX-512 tile kernel's sizes it does not tile. */
void quant_x86_avx2_vec_dot_batch_f16(int64_t n, float *s, const void *x, const void *y);
void quant_x86_avx2_install_iquants(quant_traits *table);   /* avx2_iquants.c */
void quant_x86_avx2_install_iqgrid(quant_traits *table);    /* avx2_iqgrid.c, by the above */
void quant_x86_avx512_install_iquants(quant_traits *table); /* avx512_iquants.c */
void quant_x86_avx512_install_pack(quant_traits *table);    /* repacked layouts, avx512_pack.c */
void quant_x86_avx2_install_pack(quant_traits *table);      /* mxfp4.x16, avx2_pack.c */
void quant_x86_avx2_install_attn(quant_traits *table);      /* dot_rows_n, avx2_attn.c */
/* ref/pack.c: the layouts' packers (shared by every variant that has the layout) */
void quant_pack_q4_k_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
void quant_pack_q6_k_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
void quant_pack_q4_0_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
#define QUANT_Q4_0_X16_BYTES 288 /* one group's block of 32 */
void quant_pack_q8_0_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
#define QUANT_Q8_0_X16_BYTES 544
void quant_pack_mxfp4_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
#define QUANT_MXFP4_X16_BYTES 272
void quant_pack_bf16_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
void quant_pack_f16_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
/* F32 rows rounded to f16 and back: the activations of the f16.x16 layout */
void quant_ref_f32_via_f16(const float *x, void *y, int64_t n);
#define QUANT_Q4_K_X16_BYTES 2368 /* one group's super-block */
#define QUANT_Q6_K_X16_BYTES 3360
void quant_arm_neon_install(quant_traits *table);
void quant_arm_neon_install_iquants(quant_traits *table); /* arm/neon_iquants.c */
void quant_arm_neon_install_gemm(quant_traits *table);    /* tile kernels, arm/neon_gemm.c */

#endif
