/*
 * dequant.glsl — the weight formats of src/quant as GLSL: one run of 32 consecutive elements of
 * a weight row dequantized to floats, exactly as the CPU's reference to_float
 * (src/quant/ref/*.c) computes them. Included by matmul.comp; the including shader declares
 * the weight buffer `w` (raw GGUF bytes as 32-bit words) and the push constant `p.n_in`, and
 * defines exactly one TYPE_<NAME>.
 *
 * Each type defines
 *   uint dequant_run(uint rb, uint k, out float v[32])
 * rb: byte offset of the row in `w`; k: index of the run (elements 32k .. 32k+31); returns how
 * many of the 32 are inside the row (32 except the tail of a float row, whose other entries are
 * 0); and void dequant_init(), which main calls once, in uniform control flow, before any run
 * (the types with a lookup table, IQ4_NL/IQ4_XS/MXFP4 and the codebook i-quants, copy it into
 * shared memory there, then a barrier). Blocks are not 4-byte aligned in general (Q4_0's are 18
 * bytes, and the row itself may start at any byte), so every field is read through
 * rd8/rd16/rd32, which extract bytes from the words and read the second word only when a field
 * straddles two. The host must size the buffer to the bytes rounded up to a multiple of 4.
 *
 * Element orders (quant_impl.h): Q4/Q5/IQ4_NL/MXFP4 blocks hold element j in the low nibble of
 * byte j and element j+16 in the high one; the K-quants' sub-blocks of 32 are described at
 * each type below.
 */

uint rd8(uint o) {
    return (w[o >> 2] >> ((o & 3u) << 3)) & 0xFFu;
}

uint rd16(uint o) {
    const uint s = (o & 3u) << 3;
    uint v = w[o >> 2] >> s;
    if (s == 24u) v |= w[(o >> 2) + 1u] << 8;
    return v & 0xFFFFu;
}

uint rd32(uint o) {
    const uint s = (o & 3u) << 3, i = o >> 2;
    uint v = w[i];
    if (s != 0u) v = (v >> s) | (w[i + 1u] << (32u - s));
    return v;
}

float rdh(uint o) {
    return unpackHalf2x16(rd16(o)).x;
}

/* byte j (0..15 or 0..31) of words read by rd_words */
#define BYTE_OF(q, j) (((q)[(j) >> 2] >> (((j) & 3u) << 3)) & 0xFFu)

void rd_words4(uint o, out uint q[4]) {
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = rd32(o + 4u * i);
}

void rd_words8(uint o, out uint q[8]) {
    [[unroll]] for (uint i = 0u; i < 8u; i++) q[i] = rd32(o + 4u * i);
}

/* ---------------- float formats: any n_in, the tail guarded ---------------- */

#if defined(TYPE_F32)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint i0 = 32u * k, o = rb + 4u * i0;
    if (i0 + 32u <= p.n_in) {
        [[unroll]] for (uint j = 0u; j < 32u; j++) v[j] = uintBitsToFloat(rd32(o + 4u * j));
        return 32u;
    }
    const uint cnt = p.n_in - i0;
    [[unroll]] for (uint j = 0u; j < 32u; j++)
        v[j] = j < cnt ? uintBitsToFloat(rd32(o + 4u * j)) : 0.0;
    return cnt;
}
#endif

#if defined(TYPE_F16) || defined(TYPE_BF16)
#define MATMUL_TYPE_OK
#if defined(TYPE_F16)
vec2 two_halves(uint u) {
    return unpackHalf2x16(u);
}
float one_half(uint h) {
    return unpackHalf2x16(h).x;
}
#else
/* BF16 = the upper 16 bits of an f32 */
vec2 two_halves(uint u) {
    return vec2(uintBitsToFloat(u << 16), uintBitsToFloat(u & 0xFFFF0000u));
}
float one_half(uint h) {
    return uintBitsToFloat(h << 16);
}
#endif
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint i0 = 32u * k, o = rb + 2u * i0;
    if (i0 + 32u <= p.n_in) {
        [[unroll]] for (uint j = 0u; j < 16u; j++) {
            const vec2 h = two_halves(rd32(o + 4u * j));
            v[2u * j] = h.x;
            v[2u * j + 1u] = h.y;
        }
        return 32u;
    }
    const uint cnt = p.n_in - i0;
    [[unroll]] for (uint j = 0u; j < 32u; j++) v[j] = j < cnt ? one_half(rd16(o + 2u * j)) : 0.0;
    return cnt;
}
#endif

/* ---------------- 32-element blocks ---------------- */

/* Q4_0 (18 bytes: d, qs[16]): (q - 8) * d. Q4_1 (20: d, m, qs[16]): q * d + m. */
#if defined(TYPE_Q4_0) || defined(TYPE_Q4_1)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
#if defined(TYPE_Q4_0)
    const uint o = rb + 18u * k, qo = o + 2u;
    const float d = rdh(o), m = 0.0;
    const int off = 8;
#else
    const uint o = rb + 20u * k, qo = o + 4u;
    const float d = rdh(o), m = rdh(o + 2u);
    const int off = 0;
#endif
    uint q[4];
    rd_words4(qo, q);
    [[unroll]] for (uint j = 0u; j < 16u; j++) {
        const uint b = BYTE_OF(q, j);
        v[j] = float(int(b & 15u) - off) * d + m;
        v[j + 16u] = float(int(b >> 4) - off) * d + m;
    }
    return 32u;
}
#endif

/* Q5_0 (22 bytes: d, qh[4], qs[16]): (q - 16) * d. Q5_1 (24: d, m, qh[4], qs[16]): q * d + m.
 * The fifth bit of element j is bit j of qh as a little-endian u32. */
#if defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
#if defined(TYPE_Q5_0)
    const uint o = rb + 22u * k, ho = o + 2u;
    const float d = rdh(o), m = 0.0;
    const int off = 16;
#else
    const uint o = rb + 24u * k, ho = o + 4u;
    const float d = rdh(o), m = rdh(o + 2u);
    const int off = 0;
#endif
    const uint qh = rd32(ho);
    uint q[4];
    rd_words4(ho + 4u, q);
    [[unroll]] for (uint j = 0u; j < 16u; j++) {
        const uint b = BYTE_OF(q, j);
        const uint lo = (b & 15u) | (((qh >> j) & 1u) << 4);
        const uint hi = (b >> 4) | (((qh >> (j + 16u)) & 1u) << 4);
        v[j] = float(int(lo) - off) * d + m;
        v[j + 16u] = float(int(hi) - off) * d + m;
    }
    return 32u;
}
#endif

/* Q8_0 (34 bytes: d, qs[32] signed): q * d */
#if defined(TYPE_Q8_0)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint o = rb + 34u * k;
    const float d = rdh(o);
    uint q[8];
    rd_words8(o + 2u, q);
    [[unroll]] for (uint j = 0u; j < 32u; j++)
        v[j] = float(bitfieldExtract(int(q[j >> 2]), int((j & 3u) << 3), 8)) * d;
    return 32u;
}
#endif

/* IQ4_NL (18 bytes: d, qs[16]): d * kvalues[code]; IQ4_XS below; MXFP4 (17: e, qs[16]): the
 * doubled E2M1 value * 2^(e-128). Their 16 levels are copied into shared memory by dequant_init
 * (a constant array indexed at run time is slow or spilled on some drivers). */
#if defined(TYPE_IQ4_NL) || defined(TYPE_IQ4_XS) || defined(TYPE_MXFP4)
#define DEQUANT_HAS_INIT
#if defined(TYPE_MXFP4)
const float kv_const[16] = float[16](0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 0.0, -1.0, -2.0,
                                     -3.0, -4.0, -6.0, -8.0, -12.0);
#else
const float kv_const[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                     1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
#endif
shared float kv_tab[16];
void dequant_init() {
    const uint i = gl_LocalInvocationID.x;
    if (i < 16u) kv_tab[i] = kv_const[i];
    barrier();
}
#endif

#if defined(TYPE_IQ4_NL) || defined(TYPE_MXFP4)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
#if defined(TYPE_IQ4_NL)
    const uint o = rb + 18u * k, qo = o + 2u;
    const float d = rdh(o);
#else
    const uint o = rb + 17u * k, qo = o + 1u;
    const uint e = rd8(o);
    /* quant_e8m0_half: 2^(e-128), the two smallest as subnormals */
    const float d = uintBitsToFloat(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));
#endif
    uint q[4];
    rd_words4(qo, q);
    [[unroll]] for (uint j = 0u; j < 16u; j++) {
        const uint b = BYTE_OF(q, j);
        v[j] = d * kv_tab[b & 15u];
        v[j + 16u] = d * kv_tab[b >> 4];
    }
    return 32u;
}
#endif

/* ---------------- 256-element super-blocks: run k is sub-block k % 8 of super-block k / 8 ---- */

/* Q2_K (84 bytes: scales[16], qs[64], d, dmin). Element 32*sub + l (sub = 4h + j) is bits
 * 2j..2j+1 of qs[32h + l]; group g = p / 16 has scale (scales[g] & 15) * d and min
 * (scales[g] >> 4) * dmin: (d * sc) * q - dmin * m. */
#if defined(TYPE_Q2_K)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint sub = k & 7u, o = rb + 84u * (k >> 3), h = sub >> 2, sh = 2u * (sub & 3u);
    const float d = rdh(o + 80u), dmin = rdh(o + 82u);
    const uint s01 = rd16(o + 2u * sub);
    const float dl0 = d * float(s01 & 15u), ml0 = dmin * float((s01 >> 4) & 15u);
    const float dl1 = d * float((s01 >> 8) & 15u), ml1 = dmin * float((s01 >> 12) & 15u);
    uint q[8];
    rd_words8(o + 16u + 32u * h, q);
    [[unroll]] for (uint l = 0u; l < 32u; l++) {
        const float qv = float((BYTE_OF(q, l) >> sh) & 3u);
        v[l] = l < 16u ? dl0 * qv - ml0 : dl1 * qv - ml1;
    }
    return 32u;
}
#endif

/* Q3_K (110 bytes: hmask[32], qs[64], scales[12], d). Element 32*sub + l (sub = 4h + j): low
 * bits 2j..2j+1 of qs[32h + l], minus 4 unless bit sub of hmask[l] is set. Six-bit scale of
 * group g (offset 32): low 4 bits in nibble g / 8 of byte g % 8, top 2 bits at 2*(g/4) of byte
 * 8 + g % 4. */
#if defined(TYPE_Q3_K)
#define MATMUL_TYPE_OK
int q3k_scale(uint so, uint g) {
    const uint lo = (rd8(so + (g & 7u)) >> (4u * (g >> 3))) & 15u;
    const uint hi = (rd8(so + 8u + (g & 3u)) >> (2u * (g >> 2))) & 3u;
    return int(lo | (hi << 4)) - 32;
}
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint sub = k & 7u, o = rb + 110u * (k >> 3), h = sub >> 2, sh = 2u * (sub & 3u);
    const float d = rdh(o + 108u);
    const float dl0 = d * float(q3k_scale(o + 96u, 2u * sub));
    const float dl1 = d * float(q3k_scale(o + 96u, 2u * sub + 1u));
    uint q[8], hm[8];
    rd_words8(o + 32u + 32u * h, q);
    rd_words8(o, hm);
    [[unroll]] for (uint l = 0u; l < 32u; l++) {
        const int lo = int((BYTE_OF(q, l) >> sh) & 3u);
        const int qv = lo - (((BYTE_OF(hm, l) >> sub) & 1u) != 0u ? 0 : 4);
        v[l] = (l < 16u ? dl0 : dl1) * float(qv);
    }
    return 32u;
}
#endif

/* Q4_K (144 bytes: d, dmin, scales[12], qs[128]) and Q5_K (176: d, dmin, scales[12], qh[32],
 * qs[128]). Sub-block sub = 2c + hi: the low (hi = 0) or high nibble of qs[32c + l], Q5_K's fifth
 * bit is bit sub of qh[l]; (d * sc) * q - dmin * m with the six-bit scale/min pair j = sub of
 * quant_k4_scale_min. */
#if defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint sub = k & 7u;
#if defined(TYPE_Q4_K)
    const uint o = rb + 144u * (k >> 3), qo = o + 16u;
#else
    const uint o = rb + 176u * (k >> 3), qo = o + 48u;
#endif
    const float d = rdh(o), dmin = rdh(o + 2u);
    const uint so = o + 4u;
    uint sc, mn;
    if (sub < 4u) {
        sc = rd8(so + sub) & 63u;
        mn = rd8(so + sub + 4u) & 63u;
    } else {
        const uint b = rd8(so + sub + 4u);
        sc = (b & 15u) | ((rd8(so + sub - 4u) >> 6) << 4);
        mn = (b >> 4) | ((rd8(so + sub) >> 6) << 4);
    }
    const float dl = d * float(sc), ml = dmin * float(mn);
    const uint sh = 4u * (sub & 1u);
    uint q[8];
    rd_words8(qo + 32u * (sub >> 1), q);
#if defined(TYPE_Q5_K)
    uint qh[8];
    rd_words8(o + 16u, qh);
#endif
    [[unroll]] for (uint l = 0u; l < 32u; l++) {
        uint qv = (BYTE_OF(q, l) >> sh) & 15u;
#if defined(TYPE_Q5_K)
        qv |= ((BYTE_OF(qh, l) >> sub) & 1u) << 4;
#endif
        v[l] = dl * float(qv) - ml;
    }
    return 32u;
}
#endif

/* Q6_K (210 bytes: ql[128], qh[64], scales[16] signed, d). Sub-block sub = 4h + kk: low 4 bits
 * from ql[64h + 32(kk & 1) + l] (nibble kk >> 1), top 2 from bits 2kk of qh[32h + l], minus 32;
 * (d * scales[g]) * q. */
#if defined(TYPE_Q6_K)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint sub = k & 7u, o = rb + 210u * (k >> 3), h = sub >> 2, kk = sub & 3u;
    const float d = rdh(o + 208u);
    const uint s01 = rd16(o + 192u + 2u * sub);
    const float dl0 = d * float(bitfieldExtract(int(s01), 0, 8));
    const float dl1 = d * float(bitfieldExtract(int(s01), 8, 8));
    uint ql[8], qh[8];
    rd_words8(o + 64u * h + 32u * (kk & 1u), ql);
    rd_words8(o + 128u + 32u * h, qh);
    const uint lsh = 4u * (kk >> 1), hsh = 2u * kk;
    [[unroll]] for (uint l = 0u; l < 32u; l++) {
        const uint lo = (BYTE_OF(ql, l) >> lsh) & 15u, hi = (BYTE_OF(qh, l) >> hsh) & 3u;
        v[l] = (l < 16u ? dl0 : dl1) * float(int(lo | (hi << 4)) - 32);
    }
    return 32u;
}
#endif

/* IQ4_XS (136 bytes: d, scales_h u16, scales_l[4], qs[128]): the 32 of sub-block ib as IQ4_NL
 * with scale d * ls, ls = (nibble ib % 2 of scales_l[ib / 2] | bits 2ib of scales_h << 4) - 32. */
#if defined(TYPE_IQ4_XS)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 136u * (k >> 3);
    const float d = rdh(o);
    const uint lo = (rd8(o + 4u + (ib >> 1)) >> (4u * (ib & 1u))) & 15u;
    const uint hi = (rd16(o + 2u) >> (2u * ib)) & 3u;
    const float dl = d * float(int(lo | (hi << 4)) - 32);
    uint q[4];
    rd_words4(o + 8u + 16u * ib, q);
    [[unroll]] for (uint j = 0u; j < 16u; j++) {
        const uint b = BYTE_OF(q, j);
        v[j] = dl * kv_tab[b & 15u];
        v[j + 16u] = dl * kv_tab[b >> 4];
    }
    return 32u;
}
#endif

/* TQ2_0 (66 bytes: qs[64], d): element 32*sub + m (sub = 4h + l) is bits 2l..2l+1 of
 * qs[32h + m], minus 1; times d. */
#if defined(TYPE_TQ2_0)
#define MATMUL_TYPE_OK
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint sub = k & 7u, o = rb + 66u * (k >> 3), sh = 2u * (sub & 3u);
    const float d = rdh(o + 64u);
    uint q[8];
    rd_words8(o + 32u * (sub >> 2), q);
    [[unroll]] for (uint m = 0u; m < 32u; m++)
        v[m] = float(int((BYTE_OF(q, m) >> sh) & 3u) - 1) * d;
    return 32u;
}
#endif

/* TQ1_0 (54 bytes: qs[48], qh[4], d): trit n of byte q is ((q * 3^n) mod 256) * 3 >> 8.
 * Elements 0..159: trit n of qs[m] is 32n + m; 160..239: trit n of qs[32 + m] is 160 + 16n + m;
 * 240..255: trit n of qh[j] is 240 + 4n + j. Value trit - 1, times d. */
#if defined(TYPE_TQ1_0)
#define MATMUL_TYPE_OK
float tq1_trit(uint b, uint n) {
    const uint pw = n == 0u ? 1u : n == 1u ? 3u : n == 2u ? 9u : n == 3u ? 27u : 81u;
    return float(int((((b * pw) & 255u) * 3u) >> 8) - 1);
}
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint sub = k & 7u, o = rb + 54u * (k >> 3);
    const float d = rdh(o + 52u);
    if (sub < 5u) {
        uint q[8];
        rd_words8(o, q);
        [[unroll]] for (uint m = 0u; m < 32u; m++) v[m] = tq1_trit(BYTE_OF(q, m), sub) * d;
    } else {
        uint q[4];
        rd_words4(o + 32u, q);
        const uint n0 = 2u * (sub - 5u); /* 0, 2, 4 */
        [[unroll]] for (uint m = 0u; m < 16u; m++) v[m] = tq1_trit(BYTE_OF(q, m), n0) * d;
        if (sub < 7u) {
            [[unroll]] for (uint m = 0u; m < 16u; m++)
                v[16u + m] = tq1_trit(BYTE_OF(q, m), n0 + 1u) * d;
        } else {
            const uint qh = rd32(o + 48u);
            [[unroll]] for (uint m = 0u; m < 16u; m++)
                v[16u + m] = tq1_trit((qh >> (8u * (m & 3u))) & 255u, m >> 2) * d;
        }
    }
    return 32u;
}
#endif

/* ---------------- the codebook i-quants (ref/iq_grid.c): super-blocks of 256, run = the 32 of
 * sub-block ib = k % 8, four groups of 8 (l = 0..3) ---------------- */

#if defined(TYPE_IQ2_XXS) || defined(TYPE_IQ2_XS) || defined(TYPE_IQ2_S) ||                     \
    defined(TYPE_IQ3_XXS) || defined(TYPE_IQ3_S) || defined(TYPE_IQ1_S) || defined(TYPE_IQ1_M)
#define MATMUL_TYPE_OK
#define DEQUANT_HAS_INIT
#include "dequant_iq_grids.glsl"

/* The codebook, copied into shared memory once per workgroup (a constant array indexed by a
 * run-time value is slow or spilled on many drivers). */
shared uint iq_grid[IQ_GRID_WORDS];
void dequant_init() {
    for (uint i = gl_LocalInvocationID.x; i < IQ_GRID_WORDS; i += gl_WorkGroupSize.x)
        iq_grid[i] = iq_grid_packed[i];
    barrier();
}

uint iq_entry(uint e) {
    return (iq_grid[e >> 1] >> (16u * (e & 1u))) & 0xFFFFu;
}

int iq_level(uint i) {
    return bitfieldExtract(int(i < 4u ? IQ_LEVELS_LO : IQ_LEVELS_HI), int(8u * (i & 3u)), 8);
}

/* 7 stored sign bits -> 8 (the 8th is their parity) */
uint iq_signs7(uint s) {
    return s | (uint(bitCount(s) & 1) << 7);
}

/* v[8l .. 8l+7] = dl * (grid value, negated where the sign bit is set) of an 8-wide entry */
#define IQ_PUT8(l, entry, signs, dl)                                                               \
    {                                                                                              \
        const uint e_ = (entry), s_ = (signs);                                                     \
        [[unroll]] for (uint j_ = 0u; j_ < 8u; j_++) {                                             \
            const int g_ = iq_level((e_ >> (2u * j_)) & 3u);                                       \
            v[8u * (l) + j_] = (dl) * float(((s_ >> j_) & 1u) != 0u ? -g_ : g_);                   \
        }                                                                                          \
    }

/* the same from two 4-wide entries */
#define IQ_PUT4X2(l, e0, e1, signs, dl)                                                            \
    {                                                                                              \
        const uint e_ = (e0) | ((e1) << 16), s_ = (signs);                                         \
        [[unroll]] for (uint j_ = 0u; j_ < 8u; j_++) {                                             \
            const int g_ = iq_level((e_ >> (3u * (j_ & 3u) + 16u * (j_ >> 2))) & 7u);              \
            v[8u * (l) + j_] = (dl) * float(((s_ >> j_) & 1u) != 0u ? -g_ : g_);                   \
        }                                                                                          \
    }

/* IQ1: dl * (grid value -1/0/1 + delta / 8) */
#define IQ1_PUT8(l, entry, neg, dl)                                                                \
    {                                                                                              \
        const uint e_ = (entry);                                                                   \
        const float dt_ = (neg) ? -0.125 : 0.125;                                                  \
        [[unroll]] for (uint j_ = 0u; j_ < 8u; j_++)                                               \
            v[8u * (l) + j_] = (dl) * (float(iq_level((e_ >> (2u * j_)) & 3u)) + dt_);             \
    }
#endif

/* IQ2_XXS (66 bytes: d, qs[64]): per 32 two u32: grid index byte l of the first, 7-bit sign
 * index l (bits 7l) of the second, whose top nibble s gives d * (0.5 + s) / 4. */
#if defined(TYPE_IQ2_XXS)
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 66u * (k >> 3);
    const float d = rdh(o);
    const uint a0 = rd32(o + 2u + 8u * ib), a1 = rd32(o + 6u + 8u * ib);
    const float dl = d * (0.5 + float(a1 >> 28)) * 0.25;
    [[unroll]] for (uint l = 0u; l < 4u; l++)
        IQ_PUT8(l, iq_entry((a0 >> (8u * l)) & 255u), iq_signs7((a1 >> (7u * l)) & 127u), dl)
    return 32u;
}
#endif

/* IQ2_XS (74 bytes: d, qs[32] u16, scales[8]): u16 4ib + l: 9-bit index, 7-bit sign index;
 * scales[ib] low nibble for the first 16, high for the second; d * (0.5 + s) / 4. */
#if defined(TYPE_IQ2_XS)
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 74u * (k >> 3);
    const float d = rdh(o);
    const uint sc = rd8(o + 66u + ib);
    const float dl0 = d * (0.5 + float(sc & 15u)) * 0.25, dl1 = d * (0.5 + float(sc >> 4)) * 0.25;
    [[unroll]] for (uint l = 0u; l < 4u; l++) {
        const uint q = rd16(o + 2u + 8u * ib + 2u * l);
        IQ_PUT8(l, iq_entry(q & 511u), iq_signs7(q >> 9), l < 2u ? dl0 : dl1)
    }
    return 32u;
}
#endif

/* IQ2_S (82 bytes: d, qs[64] = 32 index bytes then 32 sign bytes, qh[8], scales[8]): index
 * qs[4ib + l] | bits 2l of qh[ib] << 8, signs qs[32 + 4ib + l]; scales as IQ2_XS. */
#if defined(TYPE_IQ2_S)
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 82u * (k >> 3);
    const float d = rdh(o);
    const uint sc = rd8(o + 74u + ib), qh = rd8(o + 66u + ib);
    const uint idx = rd32(o + 2u + 4u * ib), sg = rd32(o + 34u + 4u * ib);
    const float dl0 = d * (0.5 + float(sc & 15u)) * 0.25, dl1 = d * (0.5 + float(sc >> 4)) * 0.25;
    [[unroll]] for (uint l = 0u; l < 4u; l++)
        IQ_PUT8(l, iq_entry(((idx >> (8u * l)) & 255u) | (((qh >> (2u * l)) & 3u) << 8)),
                (sg >> (8u * l)) & 255u, l < 2u ? dl0 : dl1)
    return 32u;
}
#endif

/* IQ3_XXS (98 bytes: d, qs[96]): 4-wide indices qs[8ib + 2l], qs[8ib + 2l + 1]; u32 at
 * qs[64 + 4ib]: 7-bit sign indices, scale nibble on top: d * (0.5 + s) / 2. */
#if defined(TYPE_IQ3_XXS)
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 98u * (k >> 3);
    const float d = rdh(o);
    const uint a = rd32(o + 66u + 4u * ib);
    const uint i0 = rd32(o + 2u + 8u * ib), i1 = rd32(o + 6u + 8u * ib);
    const float dl = d * (0.5 + float(a >> 28)) * 0.5;
    [[unroll]] for (uint l = 0u; l < 4u; l++) {
        const uint two = l < 2u ? i0 >> (16u * l) : i1 >> (16u * (l - 2u));
        IQ_PUT4X2(l, iq_entry(two & 255u), iq_entry((two >> 8) & 255u),
                  iq_signs7((a >> (7u * l)) & 127u), dl)
    }
    return 32u;
}
#endif

/* IQ3_S (110 bytes: d, qs[64], qh[8], signs[32], scales[4]): 9-bit indices qs[8ib + 2l + h] |
 * bit (2l + h) of qh[ib] << 8, signs[4ib + l], scale nibble ib % 2 of scales[ib / 2]:
 * d * (1 + 2s). */
#if defined(TYPE_IQ3_S)
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 110u * (k >> 3);
    const float d = rdh(o);
    const uint qh = rd8(o + 66u + ib), sg = rd32(o + 74u + 4u * ib);
    const uint sc = (rd8(o + 106u + (ib >> 1)) >> (4u * (ib & 1u))) & 15u;
    const uint i0 = rd32(o + 2u + 8u * ib), i1 = rd32(o + 6u + 8u * ib);
    const float dl = d * float(1u + 2u * sc);
    [[unroll]] for (uint l = 0u; l < 4u; l++) {
        const uint two = l < 2u ? i0 >> (16u * l) : i1 >> (16u * (l - 2u));
        const uint e0 = iq_entry((two & 255u) | (((qh >> (2u * l)) & 1u) << 8));
        const uint e1 = iq_entry(((two >> 8) & 255u) | (((qh >> (2u * l + 1u)) & 1u) << 8));
        IQ_PUT4X2(l, e0, e1, (sg >> (8u * l)) & 255u, dl)
    }
    return 32u;
}
#endif

/* IQ1_S (50 bytes: d, qs[32], qh[8] u16): u16 qh[ib]: index bits 8-10 of group l at bits 3l,
 * scale s at bits 12-14 (d * (2s + 1)), delta sign bit 15; low index bits qs[4ib + l]. */
#if defined(TYPE_IQ1_S)
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 50u * (k >> 3);
    const float d = rdh(o);
    const uint h = rd16(o + 34u + 2u * ib), lo = rd32(o + 2u + 4u * ib);
    const float dl = d * float(2u * ((h >> 12) & 7u) + 1u);
    const bool neg = (h & 0x8000u) != 0u;
    [[unroll]] for (uint l = 0u; l < 4u; l++)
        IQ1_PUT8(l, iq_entry(((lo >> (8u * l)) & 255u) | (((h >> (3u * l)) & 7u) << 8)), neg, dl)
    return 32u;
}
#endif

/* IQ1_M (56 bytes: qs[32], qh[16], scales[8] = 4 u16): low index bits qs[4ib + l]; nibble l % 2
 * of qh[2ib + l / 2]: index bits 8-10 and the delta sign (bit 3); scale word ib / 2: 3-bit
 * scales of the two 16s at bits 6 (ib % 2) and + 3; the fp16 d in the words' top nibbles. */
#if defined(TYPE_IQ1_M)
uint dequant_run(uint rb, uint k, out float v[32]) {
    const uint ib = k & 7u, o = rb + 56u * (k >> 3);
    const uint s01 = rd32(o + 48u), s23 = rd32(o + 52u);
    const uint d16 = ((s01 >> 12) & 0x000Fu) | ((s01 >> 24) & 0x00F0u) | ((s23 >> 4) & 0x0F00u) |
                     ((s23 >> 16) & 0xF000u);
    const float d = unpackHalf2x16(d16).x;
    const uint sw = ((ib < 4u ? s01 : s23) >> (16u * ((ib >> 1) & 1u))) & 0xFFFFu;
    const uint sh = 6u * (ib & 1u);
    const float dl0 = d * float(2u * ((sw >> sh) & 7u) + 1u);
    const float dl1 = d * float(2u * ((sw >> (sh + 3u)) & 7u) + 1u);
    const uint lo = rd32(o + 4u * ib), qh = rd16(o + 32u + 2u * ib);
    [[unroll]] for (uint l = 0u; l < 4u; l++) {
        const uint nib = (qh >> (4u * l)) & 15u;
        IQ1_PUT8(l, iq_entry(((lo >> (8u * l)) & 255u) | ((nib & 7u) << 8)), (nib & 8u) != 0u,
                 l < 2u ? dl0 : dl1)
    }
    return 32u;
}
#endif

#if !defined(DEQUANT_HAS_INIT)
void dequant_init() {
}
#endif

#if !defined(MATMUL_TYPE_OK)
#error "matmul.comp: define one TYPE_<NAME> that dequant.glsl knows"
#endif
