/* The repacked layouts (quant.h, quant_pack) and their scalar kernels.
 *
 * A group is QUANT_PACK_ROWS (16) rows; a group's super-block (256 inputs of each row) is one
 * record, records of a group follow each other, groups follow each other. Inside a record every
 * field is [..][16 rows]: one 512-bit load gives one field of all 16 rows, lane r = row r.
 *
 * q4_k.x16, 2368 bytes (144 per row, as Q4_K, + 4):
 *   uint16 d[16], dmin[16]          the rows' f16 scales
 *   uint8  sc[8][16]                sub-block j's 6-bit scale
 *   uint8  mn[4][16][2]             the 6-bit mins of sub-blocks 2p and 2p+1
 *   uint8  qs[8][4][16][4]          sub-block j, step k: row r's 4 bytes; byte b holds level
 *                                   32j + 4k + b in its low nibble, 32j + 16 + 4k + b in its high
 * q6_k.x16, 3360 bytes (210 per row, as Q6_K):
 *   uint16 d[16]
 *   int8   sc[8][16][2]             the scales of sub-blocks 2p and 2p+1 (16 inputs each)
 *   uint8  ql[8][4][16][4]          pair p (inputs 32p..32p+31), step k: low 4 bits of level
 *                                   32p + 4k + b (low nibble) and 32p + 16 + 4k + b (high)
 *   uint8  qh[8][2][16][4]          pair p, half h: bits 2s..2s+1 of byte b are the high 2 bits of
 *                                   level 32p + 16h + 4s + b
 * q4_0.x16, 288 bytes per 32 inputs (18 per row, as Q4_0):
 *   uint16 d[16]
 *   uint8  qs[4][16][4]             step k: row r's Q4_0 bytes 4k..4k+3 as they are (levels
 *                                   4k + b in the low nibbles, 16 + 4k + b in the high ones)
 * mxfp4.x16, 272 bytes per 32 inputs (17 per row, as MXFP4):
 *   uint8  e[16]                    the rows' E8M0 exponents
 *   uint8  qs[4][16][4]             as q4_0.x16: row r's MXFP4 code bytes 4k..4k+3 as they are;
 *                                   the kernels look the codes up as value + 12 (unsigned) and
 *                                   take 12 * sum(y) off
 * q8_0.x16, 544 bytes per 32 inputs (34 per row, as Q8_0):
 *   uint16 d[16]
 *   uint8  qs[8][16][4]             step k: row r's values 4k..4k+3 plus 128 (unsigned, for the
 *                                   unsigned-by-signed dot; the kernels take 128 * sum(y) off)
 * bf16.x16, 64 bytes per 2 inputs (2 per row per input, as BF16):
 *   uint16 w[16][2]                 record p: row r's weights of inputs 2p, 2p+1 (one vdpbf16ps
 *                                   lane), read with the reference's BF16 activations
 * f16.x16, 32 bytes per input (2 per row, as F16):
 *   uint16 w[16]                    the 16 rows' weights of input k (record k)
 *   read with F32 activations that are the reference's F16 ones (quant_ref_f32_via_f16): each
 *   record is one conversion and one broadcast FMA per token for 16 rows.
 * Levels are the format's unsigned ones (Q4_K 0..15 with value d*sc*q - dmin*m, Q6_K 0..63 with
 * value d*sc*(q - 32), Q4_0 0..15 with value d*(q - 8)). With 4 consecutive levels of a row in one
 * lane, an unsigned-by-signed byte dot (VNNI vpdpbusd) against 4 activations of one token gives
 * that row's partial sum in its lane: no horizontal sums, and one float step per row and
 * super-block for 16 rows at once.
 *
 * The kernels here are the layouts' scalar references: per row, token and super-block the
 * integer sums are exact, the super-block's value d * sum - dmin * mins is the exact one rounded
 * once to double (products of an f16 scale and a 32-bit sum are exact in double), added times
 * the token's scale with one fused step to a double sum, which is rounded to float once: the
 * SIMD kernels take the same steps, so the two give the same bits (tests/quant/test_pack.c). */
#include "quant/quant_impl.h"

#include <math.h>

enum { R = QUANT_PACK_ROWS };

/* The packers move 4 bytes (4 inputs of a row) at a time: loading at load time runs over the
 * whole file, so they take 32-bit words, not levels one by one. */
static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void wr32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}

#define LO4 0x0F0F0F0Fu

void quant_pack_q4_k_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst) {
    const int64_t nb = n_in / QUANT_QKK;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *o = (uint8_t *)dst + i * QUANT_Q4_K_X16_BYTES;
        memset(o, 0, QUANT_Q4_K_X16_BYTES);
        for (int r = 0; r < n_rows; r++) {
            const quant_block_q4_k *b =
                (const quant_block_q4_k *)((const uint8_t *)src + (size_t)r * src_stride) + i;
            memcpy(o + 2 * r, &b->d, 2);
            memcpy(o + 32 + 2 * r, &b->dmin, 2);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, mn;
                quant_k4_scale_min(j, b->scales, &sc, &mn);
                o[64 + 16 * j + r] = sc;
                o[192 + 32 * (j / 2) + 2 * r + (j & 1)] = mn;
                /* qs[32c + l]: input 64c + l in the low nibble, 64c + 32 + l in the high one;
                 * sub-block j = 2c takes the low nibbles, 2c + 1 the high ones */
                const uint8_t *q = b->qs + 32 * (j / 2);
                for (int k = 0; k < 4; k++) {
                    const uint32_t a = rd32(q + 4 * k), c = rd32(q + 16 + 4 * k);
                    const uint32_t v =
                        j & 1 ? ((a >> 4) & LO4) | (c & ~LO4) : (a & LO4) | ((c & LO4) << 4);
                    wr32(o + 320 + 256 * j + 64 * k + 4 * r, v);
                }
            }
        }
    }
}

void quant_pack_q6_k_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst) {
    const int64_t nb = n_in / QUANT_QKK;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *o = (uint8_t *)dst + i * QUANT_Q6_K_X16_BYTES;
        memset(o, 0, QUANT_Q6_K_X16_BYTES);
        for (int r = 0; r < n_rows; r++) {
            const quant_block_q6_k *b =
                (const quant_block_q6_k *)((const uint8_t *)src + (size_t)r * src_stride) + i;
            memcpy(o + 2 * r, &b->d, 2);
            for (int j = 0; j < 16; j++)
                o[32 + 32 * (j / 2) + 2 * r + (j & 1)] = (uint8_t)b->scales[j];
            /* pair p (inputs 32p..32p+31) is quarter qq = p % 4 of half n = p / 4: input l of it
             * has its low 4 bits in ql[64n + 32(qq & 1) + l] (the low nibble for qq < 2) and its
             * high 2 bits at 2qq of qh[32n + l] */
            for (int p = 0; p < 8; p++) {
                const int n = p / 4, qq = p % 4;
                const uint8_t *ql = b->ql + 64 * n + 32 * (qq & 1), *qh = b->qh + 32 * n;
                uint32_t h[2] = {0, 0};
                for (int k = 0; k < 4; k++) {
                    const uint32_t a = rd32(ql + 4 * k), c = rd32(ql + 16 + 4 * k);
                    const uint32_t v =
                        qq < 2 ? (a & LO4) | ((c & LO4) << 4) : ((a >> 4) & LO4) | (c & ~LO4);
                    wr32(o + 288 + 256 * p + 64 * k + 4 * r, v);
                    for (int hh = 0; hh < 2; hh++)
                        h[hh] |= ((rd32(qh + 16 * hh + 4 * k) >> (2 * qq)) & 0x03030303u)
                                 << (2 * k);
                }
                wr32(o + 2336 + 128 * p + 4 * r, h[0]);
                wr32(o + 2336 + 128 * p + 64 + 4 * r, h[1]);
            }
        }
    }
}

void quant_pack_q4_0_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst) {
    const int64_t nb = n_in / QUANT_QK;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *o = (uint8_t *)dst + i * QUANT_Q4_0_X16_BYTES;
        memset(o, 0, QUANT_Q4_0_X16_BYTES);
        for (int r = 0; r < n_rows; r++) {
            const quant_block_q4_0 *b =
                (const quant_block_q4_0 *)((const uint8_t *)src + (size_t)r * src_stride) + i;
            memcpy(o + 2 * r, &b->d, 2);
            for (int k = 0; k < 4; k++) memcpy(o + 32 + 64 * k + 4 * r, b->qs + 4 * k, 4);
        }
    }
}

void quant_pack_f16_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst) {
    uint16_t *o = dst;
    memset(o, 0, (size_t)n_in * R * 2);
    for (int r = 0; r < n_rows; r++) {
        const uint16_t *row = (const uint16_t *)((const uint8_t *)src + (size_t)r * src_stride);
        for (int64_t k = 0; k < n_in; k++) o[k * R + r] = row[k];
    }
}

void quant_pack_mxfp4_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst) {
    const int64_t nb = n_in / QUANT_QK;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *o = (uint8_t *)dst + i * QUANT_MXFP4_X16_BYTES;
        memset(o, 0, QUANT_MXFP4_X16_BYTES);
        for (int r = 0; r < n_rows; r++) {
            const quant_block_mxfp4 *b =
                (const quant_block_mxfp4 *)((const uint8_t *)src + (size_t)r * src_stride) + i;
            o[r] = b->e;
            for (int k = 0; k < 4; k++) memcpy(o + 16 + 64 * k + 4 * r, b->qs + 4 * k, 4);
        }
    }
}

void quant_pack_q8_0_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst) {
    const int64_t nb = n_in / QUANT_QK;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *o = (uint8_t *)dst + i * QUANT_Q8_0_X16_BYTES;
        memset(o, 0, QUANT_Q8_0_X16_BYTES);
        for (int r = 0; r < n_rows; r++) {
            const quant_block_q8_0 *b =
                (const quant_block_q8_0 *)((const uint8_t *)src + (size_t)r * src_stride) + i;
            memcpy(o + 2 * r, &b->d, 2);
            for (int k = 0; k < 8; k++)
                wr32(o + 32 + 64 * k + 4 * r, rd32((const uint8_t *)b->qs + 4 * k) ^ 0x80808080u);
        }
        for (int r = n_rows; r < R; r++) /* missing rows: level 128, value 0 */
            for (int k = 0; k < 8; k++) wr32(o + 32 + 64 * k + 4 * r, 0x80808080u);
    }
}

void quant_pack_bf16_x16(const void *src, size_t src_stride, int n_rows, int64_t n_in, void *dst) {
    uint8_t *o = dst;
    memset(o, 0, (size_t)n_in * R * 2);
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)src + (size_t)r * src_stride;
        for (int64_t p = 0; p < n_in / 2; p++) memcpy(o + p * 4 * R + 4 * r, row + 4 * p, 4);
    }
}

void quant_ref_f32_via_f16(const float *x, void *vy, int64_t n) {
    float *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = quant_f16_to_f32(quant_f32_to_f16(x[i]));
}

static void store_rows(int64_t g, int64_t r0, int64_t r1, const double acc[R], float *y) {
    for (int r = 0; r < R; r++) {
        const int64_t row = g * R + r;
        if (row >= r0 && row < r1) y[row] = (float)acc[r];
    }
}

static void gemm_q4_k_x16(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w,
                          const void *x, size_t xs, float *y, size_t ys) {
    const int64_t nb = n_in / QUANT_QKK;
    for (int64_t g = r0 / R; g * R < r1; g++) {
        const uint8_t *gw = (const uint8_t *)w + (size_t)(g * nb) * QUANT_Q4_K_X16_BYTES;
        for (int64_t t = 0; t < nt; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)((const uint8_t *)x + t * xs);
            double acc[R] = {0};
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *o = gw + i * QUANT_Q4_K_X16_BYTES;
                for (int r = 0; r < R; r++) {
                    int32_t isum = 0, msum = 0;
                    for (int j = 0; j < 8; j++) {
                        int32_t dot = 0;
                        for (int k = 0; k < 4; k++)
                            for (int bb = 0; bb < 4; bb++) {
                                const uint8_t q = o[320 + 256 * j + 64 * k + 4 * r + bb];
                                dot += (q & 0xF) * yb[i].qs[32 * j + 4 * k + bb];
                                dot += (q >> 4) * yb[i].qs[32 * j + 16 + 4 * k + bb];
                            }
                        isum += o[64 + 16 * j + r] * dot;
                        msum += o[192 + 32 * (j / 2) + 2 * r + (j & 1)] *
                                (yb[i].bsums[2 * j] + yb[i].bsums[2 * j + 1]);
                    }
                    uint16_t d, dm;
                    memcpy(&d, o + 2 * r, 2);
                    memcpy(&dm, o + 32 + 2 * r, 2);
                    /* exact products in double, one rounding (see avx512_pack.c) */
                    const double v =
                        (double)quant_f16_to_f32(d) * isum - (double)quant_f16_to_f32(dm) * msum;
                    acc[r] = fma(v, (double)yb[i].d, acc[r]);
                }
            }
            store_rows(g, r0, r1, acc, y + t * ys);
        }
    }
}

static void gemm_q6_k_x16(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w,
                          const void *x, size_t xs, float *y, size_t ys) {
    const int64_t nb = n_in / QUANT_QKK;
    for (int64_t g = r0 / R; g * R < r1; g++) {
        const uint8_t *gw = (const uint8_t *)w + (size_t)(g * nb) * QUANT_Q6_K_X16_BYTES;
        for (int64_t t = 0; t < nt; t++) {
            const quant_block_q8_k *yb = (const quant_block_q8_k *)((const uint8_t *)x + t * xs);
            double acc[R] = {0};
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *o = gw + i * QUANT_Q6_K_X16_BYTES;
                for (int r = 0; r < R; r++) {
                    int32_t isum = 0, osum = 0;
                    for (int j = 0; j < 16; j++) {
                        const int p = j / 2, h = j & 1;
                        int32_t dot = 0;
                        for (int k = 0; k < 4; k++)
                            for (int bb = 0; bb < 4; bb++) {
                                const uint8_t l = o[288 + 256 * p + 64 * k + 4 * r + bb];
                                const uint8_t hb = o[2336 + 128 * p + 64 * h + 4 * r + bb];
                                const int q = (h ? l >> 4 : l & 0xF) | ((hb >> (2 * k)) & 3) << 4;
                                dot += q * yb[i].qs[16 * j + 4 * k + bb];
                            }
                        const int sc = (int8_t)o[32 + 32 * p + 2 * r + h];
                        isum += sc * dot;
                        osum += sc * yb[i].bsums[j];
                    }
                    uint16_t d;
                    memcpy(&d, o + 2 * r, 2);
                    const double v = (double)quant_f16_to_f32(d) * (isum - 32 * osum);
                    acc[r] = fma(v, (double)yb[i].d, acc[r]);
                }
            }
            store_rows(g, r0, r1, acc, y + t * ys);
        }
    }
}

/* The three layouts of 32-value blocks against Q8_0 activations (q4_0.x16, mxfp4.x16,
 * q8_0.x16). Per row and block: (scale * dy) * (sum v*y) with v the signed value (Q4_0: q - 8,
 * MXFP4: the code's doubled E2M1 value, Q8_0: q), the sum exact (the SIMD kernels sum unsigned
 * levels and take offset * sum(y) off: the same integer), one fmaf. */
enum { LEG_Q4_0, LEG_MXFP4, LEG_Q8_0 };

static int legacy_value(int kind, const uint8_t *o, int r, int j) {
    if (kind == LEG_Q8_0) return o[32 + 64 * (j / 4) + 4 * r + j % 4] - 128;
    const int jj = j % 16, off = kind == LEG_MXFP4 ? 16 : 32;
    const uint8_t b = o[off + 64 * (jj / 4) + 4 * r + jj % 4];
    const int q = j < 16 ? b & 0xF : b >> 4;
    return kind == LEG_MXFP4 ? quant_mxfp4_values[q] : q - 8;
}

static float legacy_scale(int kind, const uint8_t *o, int r) {
    if (kind == LEG_MXFP4) return quant_e8m0_half(o[r]);
    uint16_t d;
    memcpy(&d, o + 2 * r, 2);
    return quant_f16_to_f32(d);
}

static void gemm_legacy(int kind, size_t bytes, int64_t n_in, int64_t r0, int64_t r1, int64_t nt,
                        const void *w, const void *x, size_t xs, float *y, size_t ys) {
    const int64_t nb = n_in / QUANT_QK;
    for (int64_t g = r0 / R; g * R < r1; g++) {
        const uint8_t *gw = (const uint8_t *)w + (size_t)(g * nb) * bytes;
        for (int64_t t = 0; t < nt; t++) {
            const quant_block_q8_0 *yb = (const quant_block_q8_0 *)((const uint8_t *)x + t * xs);
            float acc[R] = {0};
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *o = gw + i * bytes;
                const float dy = quant_f16_to_f32(yb[i].d);
                for (int r = 0; r < R; r++) {
                    int32_t dot = 0;
                    for (int j = 0; j < QUANT_QK; j++)
                        dot += legacy_value(kind, o, r, j) * yb[i].qs[j];
                    acc[r] = fmaf((float)dot, legacy_scale(kind, o, r) * dy, acc[r]);
                }
            }
            double out[R]; /* exact: store_rows rounds them back to the same floats */
            for (int r = 0; r < R; r++) out[r] = acc[r];
            store_rows(g, r0, r1, out, y + t * ys);
        }
    }
}

#define LEGACY_GEMM(name, kind, bytes)                                                             \
    static void name(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w,              \
                     const void *x, size_t xs, float *y, size_t ys) {                              \
        gemm_legacy(kind, bytes, n_in, r0, r1, nt, w, x, xs, y, ys);                               \
    }
LEGACY_GEMM(gemm_q4_0_x16, LEG_Q4_0, QUANT_Q4_0_X16_BYTES)
LEGACY_GEMM(gemm_mxfp4_x16, LEG_MXFP4, QUANT_MXFP4_X16_BYTES)
LEGACY_GEMM(gemm_q8_0_x16, LEG_Q8_0, QUANT_Q8_0_X16_BYTES)

/* Per row and token: one chain over the input pairs, each adding the odd input's product and
 * then the even one's with a rounding after each (what vdpbf16ps does to a lane; two BF16 values
 * multiply exactly in float, so an fmaf per product is the same step). */
static void gemm_bf16_x16(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w,
                          const void *x, size_t xs, float *y, size_t ys) {
    for (int64_t g = r0 / R; g * R < r1; g++) {
        const uint16_t *gw = (const uint16_t *)w + (size_t)g * (size_t)n_in * R;
        for (int64_t t = 0; t < nt; t++) {
            const uint16_t *xt = (const uint16_t *)((const uint8_t *)x + t * xs);
            for (int r = 0; r < R; r++) {
                const int64_t row = g * R + r;
                if (row < r0 || row >= r1) continue;
                float a = 0;
                for (int64_t p = 0; p < n_in / 2; p++) {
                    const uint16_t *wp = gw + p * 2 * R + 2 * r;
                    a = fmaf(quant_bf16_to_f32(wp[1]), quant_bf16_to_f32(xt[2 * p + 1]), a);
                    a = fmaf(quant_bf16_to_f32(wp[0]), quant_bf16_to_f32(xt[2 * p]), a);
                }
                y[t * ys + row] = a;
            }
        }
    }
}

/* Per row and token: one fmaf chain in input order (the SIMD kernels' order, whatever the
 * number of tokens). */
static void gemm_f16_x16(int64_t n_in, int64_t r0, int64_t r1, int64_t nt, const void *w,
                         const void *x, size_t xs, float *y, size_t ys) {
    for (int64_t g = r0 / R; g * R < r1; g++) {
        const uint16_t *gw = (const uint16_t *)w + (size_t)g * (size_t)n_in * R;
        for (int64_t t = 0; t < nt; t++) {
            const float *xt = (const float *)((const uint8_t *)x + t * xs);
            for (int r = 0; r < R; r++) {
                const int64_t row = g * R + r;
                if (row < r0 || row >= r1) continue;
                float a = 0;
                for (int64_t k = 0; k < n_in; k++)
                    a = fmaf(quant_f16_to_f32(gw[k * R + r]), xt[k], a);
                y[t * ys + row] = a;
            }
        }
    }
}

static const quant_pack ref_f16 = {
    "f16.x16/scalar",   2 * R,       2, GGUF_T_F32, quant_ref_f32_via_f16,
    quant_pack_f16_x16, gemm_f16_x16};
static const quant_pack ref_bf16 = {"bf16.x16/scalar",   2 * R,        2, GGUF_T_BF16, NULL,
                                    quant_pack_bf16_x16, gemm_bf16_x16};
static const quant_pack ref_mxfp4 = {
    "mxfp4.x16/scalar",   QUANT_MXFP4_X16_BYTES, QUANT_QK, GGUF_T_Q8_0, NULL,
    quant_pack_mxfp4_x16, gemm_mxfp4_x16};
static const quant_pack ref_q8_0 = {
    "q8_0.x16/scalar",   QUANT_Q8_0_X16_BYTES, QUANT_QK, GGUF_T_Q8_0, NULL,
    quant_pack_q8_0_x16, gemm_q8_0_x16};
static const quant_pack ref_q4_0 = {
    "q4_0.x16/scalar",   QUANT_Q4_0_X16_BYTES, QUANT_QK, GGUF_T_Q8_0, NULL,
    quant_pack_q4_0_x16, gemm_q4_0_x16};
static const quant_pack ref_q4_k = {
    "q4_k.x16/scalar",   QUANT_Q4_K_X16_BYTES, QUANT_QKK, GGUF_T_Q8_K, NULL,
    quant_pack_q4_k_x16, gemm_q4_k_x16};
static const quant_pack ref_q6_k = {
    "q6_k.x16/scalar",   QUANT_Q6_K_X16_BYTES, QUANT_QKK, GGUF_T_Q8_K, NULL,
    quant_pack_q6_k_x16, gemm_q6_k_x16};

const quant_pack *quant_pack_ref(uint32_t type) {
    switch (type) {
    case GGUF_T_F16: return &ref_f16;
    case GGUF_T_BF16: return &ref_bf16;
    case GGUF_T_Q4_0: return &ref_q4_0;
    case GGUF_T_Q8_0: return &ref_q8_0;
    case GGUF_T_MXFP4: return &ref_mxfp4;
    case GGUF_T_Q4_K: return &ref_q4_k;
    case GGUF_T_Q6_K: return &ref_q6_k;
    default: return NULL;
    }
}
