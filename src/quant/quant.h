/*
 * quant — the table of tensor types: block layout, dequantize, quantize and dot products.
 *
 * One row per GGUF type id. Each row carries the scalar reference kernels (src/quant/ref/) and,
 * after quant_init(), the fastest variant the CPU supports (src/quant/x86/, src/quant/arm/),
 * chosen once from core_cpu_usable() (so SHIMMY_ISA=scalar forces the reference).
 *
 * Dot products follow the established engine's numerics (llama.cpp c392e509): a weight row of
 * type T is multiplied with activations already converted to T's vec_dot_type (Q8_0 for
 * Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, F16 for F16, BF16 for BF16, F32 for
 * F32; Q8_0 for IQ4_NL and MXFP4, Q8_K for the other i-quants and TQ1_0/TQ2_0). from_float of the
 * vec_dot_type is how activations are converted, byte for byte as that engine does. The x86
 * variants also reproduce its order of float operations (so logits match bit for bit where the
 * inputs do); the scalar reference sums in a plain order and agrees to float rounding. The
 * i-quants, TQ1_0/TQ2_0 and MXFP4 take one float order in every variant (exact integer sums per
 * block, the engine's generic float step), so all their kernels give the same bits. Their
 * codebook types (IQ2_*, IQ3_*, IQ1_*) have no quantizer: from_float and quantize are NULL.
 * vec_dot_batch is the dot for products over several activation rows.
 *
 * Invariants: kernels never allocate; n is a multiple of the type's block size (callers check);
 * kernels accept unaligned pointers. Ownership: the traits are static; nothing to free.
 * Thread-safety: quant_init() is idempotent and thread-safe; after it everything is read-only.
 */
#ifndef SHIMMY_QUANT_H
#define SHIMMY_QUANT_H

#include "core/core.h"
#include "gguf/gguf.h"

#include <stdint.h>
#include <string.h>

typedef void (*quant_to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*quant_from_float_fn)(const float *x, void *y, int64_t n);
/* *s = dot(row x of the weight type, y of the vec_dot_type), n elements. */
typedef void (*quant_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);
/* y[t * y_stride + r] = dot(weight row r, activation row t) for r < nr, t < nt: weight rows
 * w_stride bytes apart, activation rows x_stride bytes apart, y_stride floats between tokens. */
typedef void (*quant_gemm_fn)(int64_t n, int64_t nr, int64_t nt, const void *w, size_t w_stride,
                              const void *x, size_t x_stride, float *y, size_t y_stride);

/* A repacked layout of a weight type (issue #19's "kernel-friendly layouts"): the rows in groups
 * of QUANT_PACK_ROWS, interleaved so that one 32-bit lane of a 512-bit vector holds one row and
 * one integer dot instruction multiplies 4 values of 16 rows with 4 activations of a token.
 * quant/ref/pack.c documents each layout. Products through it keep exact integer sums per
 * sub-block but take their own float order (a fast path in DESIGN.md's "Numerics"): they agree
 * with vec_dot to float rounding, not bit for bit. */
#define QUANT_PACK_ROWS 16

typedef struct quant_pack {
    const char *name;     /* the layout and its kernels, e.g. "q4_k.x16/avx512-vnni" */
    size_t block_bytes;   /* one group's bytes per block_size input elements */
    uint32_t in_multiple; /* n_in must be a multiple of this */
    /* The activations the gemm reads: act_type rows made by act_from_float (NULL: that type's
     * from_float). The float layouts read F32 rows already rounded as the weight type's
     * vec_dot_type would round them, so the products are the reference's products. */
    uint32_t act_type;
    quant_from_float_fn act_from_float;
    /* Packs rows [0, n_rows) of src (src_stride bytes apart, n_in elements each; n_rows <=
     * QUANT_PACK_ROWS, missing rows are zero) into one group at dst (n_in / block_size *
     * block_bytes bytes). */
    void (*pack)(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst);
    /* y[t * y_stride + r] = dot(row r, activation row t) for r0 <= r < r1, t < nt: the packed
     * matrix starts at w (groups n_in / block_size * block_bytes bytes apart), activations of the
     * vec_dot_type x_stride bytes apart. Rows of a group outside [r0, r1) are not written. */
    void (*gemm)(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w, const void *x,
                 size_t x_stride, float *y, size_t y_stride);
} quant_pack;

/* Bytes of a packed matrix of n_out rows of n_in elements. */
static inline size_t quant_pack_bytes(const quant_pack *p, uint32_t block_size, int64_t n_in,
                                      int64_t n_out) {
    const size_t groups = (size_t)((n_out + QUANT_PACK_ROWS - 1) / QUANT_PACK_ROWS);
    return groups * (size_t)(n_in / block_size) * p->block_bytes;
}

/* y[r] = dot(row r, x) for r < nr: rows w_stride bytes apart, x of the vec_dot_type. */
typedef void (*quant_dot_rows_fn)(int64_t n, int64_t nr, const void *w, size_t w_stride,
                                  const void *x, float *y);

/* y[j * y_stride + r] = dot(row r, x + j * x_stride) for r < nr, j < nx: rows of the type w_stride
 * bytes apart, nx vectors of n floats. */
typedef void (*quant_dot_rows_n_fn)(int64_t n, int64_t nr, const void *w, size_t w_stride, int nx,
                                    const float *x, size_t x_stride, float *y, size_t y_stride);

typedef struct quant_traits {
    const char *name;
    uint32_t type;
    uint32_t block_size;
    uint32_t type_size;
    uint32_t vec_dot_type;
    quant_to_float_fn to_float;
    /* Converts a float row the way the reference engine converts activations at run time (for
     * Q8_0/Q8_1: round half to even with 127/amax as multiplier, like its x86 path); a valid
     * quantizer for every type. NULL if the type cannot be made. */
    quant_from_float_fn from_float;
    quant_vec_dot_fn vec_dot; /* NULL for activation-only types */
    /* The model-file quantizer (what llama-quantize writes without an importance matrix;
     * byte-exact for Q4_0..Q8_0). Same as from_float except for Q8_0/Q8_1. */
    quant_from_float_fn quantize;
    /* The same dot for a product the reference engine runs through its tiled GEMM: two or more
     * activation rows at once (prompt processing) and a weight matrix whose row count is a
     * multiple of 4. There it sums F32/F16 rows in another order (one 16-lane accumulator, when
     * n % 16 == 0; this kernel falls back to vec_dot otherwise); for every other type it is
     * vec_dot. Agrees with vec_dot to float rounding. */
    quant_vec_dot_fn vec_dot_batch;
    /* Optional (NULL = none): a whole block of products in tiles (several weight rows and
     * activation rows per step), each element bit-identical to vec_dot_batch of the same pair.
     * The fast path for prompt batches and, where vec_dot_batch is vec_dot (every quantized
     * type), for single tokens too. */
    quant_gemm_fn gemm;
    /* Optional (NULL = none): this variant's repacked layout and its kernels. Only variants
     * whose dots make it pay have one (AVX-512 VNNI: Q4_0, Q8_0, Q4_K, Q6_K, MXFP4, F16, and
     * BF16 where the CPU has AVX512-BF16; AVX2: F16, MXFP4, Q4_K and Q6_K); the reference-order
     * path (SHIMMY_ISA=avx2) uses none (model_repack). */
    const quant_pack *pack;
    /* Optional (NULL = none): many rows against one activation row, for attention (a query
     * against every key, probabilities against every value row). F32 with AVX2 and AVX-512: the
     * variant's own float order (agrees with vec_dot to rounding; an encoder's attention). F16
     * with AVX2 and up: each row bit-identical to vec_dot (the reference-order attention uses
     * it: x converted once, no call per row). */
    quant_dot_rows_fn dot_rows;
    /* Optional (NULL = none): many rows against a few F32 vectors at once, each row converted
     * once for all of them: the fast path's attention, every query head of a KV head against
     * its keys and values (F16). The variant's own order, which for a (row, vector) pair does
     * not depend on nx or on the other vectors (a decode entry's heads may be split differently
     * from step to step); agrees with the exact sum to float rounding. */
    quant_dot_rows_n_fn dot_rows_n;
} quant_traits;

/* Bytes of a row of n elements of this type (n a multiple of block_size). */
static inline size_t quant_row_bytes(const quant_traits *t, int64_t n) {
    return (size_t)(n / t->block_size) * t->type_size;
}

/* Selects kernels for this CPU; idempotent and thread-safe; quant_get calls it. */
void quant_init(void);
/* The active traits of a type, or NULL when this build does not support it. */
const quant_traits *quant_get(uint32_t type);
/* The scalar reference traits of a type (for tests), or NULL. */
const quant_traits *quant_get_ref(uint32_t type);
/* Name of the kernel set in use: "avx512-vnni", "avx2-vnni", "avx2", "neon-dotprod" or
 * "scalar". */
const char *quant_isa(void);

/* The scalar kernels of a repacked layout (same layout and integer sums as the variant's, for
 * tests and as the reference beside the SIMD ones), or NULL when the type has no layout. */
const quant_pack *quant_pack_ref(uint32_t type);

/* Every compiled ISA variant, for tests that hold each equal to the reference.
 * quant_variant_get returns NULL when the variant has no kernel for the type or the CPU cannot
 * run it. Index 0 is always "scalar". */
int quant_n_variants(void);
const char *quant_variant_name(int i);
const quant_traits *quant_variant_get(int i, uint32_t type);

/* ---- half-precision scalars (exact IEEE round-to-nearest-even) ---- */

static inline float quant_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t quant_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7C00 | (absx > 0x7F800000u ? 0x200 : 0));
    if (absx >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds to inf */
    if (absx < 0x38800000u) {                                  /* subnormal or zero in f16 */
        if (absx < 0x33000000u) return (uint16_t)sign;         /* < half the smallest subnormal */
        uint32_t e = absx >> 23, m = (absx & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (113 - e) */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((absx >> 13) - ((127 - 15) << 10));
    uint32_t rem = absx & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float quant_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t quant_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 64); /* quiet nan */
    return (uint16_t)((x + (0x7FFF + ((x >> 16) & 1))) >> 16);
}

#endif
