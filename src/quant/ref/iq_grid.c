/* Reference kernels of the codebook i-quants (super-blocks of 256): IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ3_XXS, IQ3_S, IQ1_S, IQ1_M. Dequantization and dots against Q8_K; there is no quantizer
 * (llama-quantize makes these only with an importance matrix).
 *
 * Every block is first unpacked into one shape: 256 signed levels v (grid value times sign; for
 * IQ1 the grid value -1/0/1), a 4-bit (IQ1: 3-bit) scale code per group of 16 elements and, for
 * IQ1, the sign of the 1/8 offset per group of 8. Per format (element p = 32*ib + 8*l + j):
 *  - IQ2_XXS: per 32 two u32 words: grid index byte l of the first (8 elements each), 7-bit sign
 *    index (bits 7l..7l+6) of the second, whose top nibble is the 32's scale.
 *  - IQ2_XS: u16 qs[4*ib + l]: 9-bit index, 7-bit sign index above; scales[ib]: low nibble for
 *    the first 16, high nibble for the second.
 *  - IQ2_S: index qs[4*ib + l] | bits 2l..2l+1 of qh[ib] as bits 8-9; sign bits qs[32+4*ib+l];
 *    scales as IQ2_XS.
 *  - IQ3_XXS: two 4-wide grid indices qs[8*ib + 2l], qs[8*ib + 2l + 1]; u32 at qs[64 + 4*ib]: 7-bit
 *    sign indices and the scale nibble on top.
 *  - IQ3_S: indices qs[8*ib + 2l + h] | bit (2l + h) of qh[ib] as bit 8; signs[4*ib + l]; scale
 *    nibble ib%2 of scales[ib/2].
 *  - IQ1_S: u16 qh[ib]: index bits 8-10 of group l at bits 3l, scale at bits 12-14, offset sign
 *    bit 15; low index bits qs[4*ib + l].
 *  - IQ1_M: low index bits qs[4*ib + l]; nibble l%2 of qh[2*ib + l/2]: index bits 8-10 and the
 *    offset sign (bit 3); u16 scale word ib/2: 3-bit scales of the 16s at bits 6*(ib%2) and +3.
 * Sign indices map through quant_iq_signs (the 8th sign is the parity of the 7). The float
 * multiplier of a group with scale code s: IQ2 d*(0.5+s)/4, IQ3_XXS d*(0.5+s)/2, IQ3_S d*(1+2s),
 * IQ1 d*(2s+1) times (v +- 1/8). Dots sum scale (2s+1) times integer products exactly per
 * super-block and apply the float scales once (then 1/8 for IQ2, 1/4 for IQ3_XXS at the end). */
#include "quant/quant_impl.h"

typedef struct iq_unpacked {
    int8_t v[256];
    uint8_t sc[16];   /* scale code per 16 */
    int8_t delta[32]; /* IQ1: +1 or -1 per 8 */
    uint16_t d;       /* fp16 super-block scale */
} iq_unpacked;

static void put8(int8_t *v, uint64_t grid, uint8_t signs) {
    for (int j = 0; j < 8; j++) {
        const int g = (int8_t)(grid >> (8 * j));
        v[j] = (int8_t)((signs >> j) & 1 ? -g : g);
    }
}

static void unpack_iq2_xxs(const quant_block_iq2_xxs *b, iq_unpacked *u) {
    u->d = b->d;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t a[2];
        memcpy(a, b->qs + 8 * ib, 8);
        for (int l = 0; l < 4; l++)
            put8(u->v + 32 * ib + 8 * l, quant_iq2xxs_grid[(a[0] >> (8 * l)) & 255],
                 quant_iq_signs[(a[1] >> (7 * l)) & 127]);
        u->sc[2 * ib] = u->sc[2 * ib + 1] = (uint8_t)(a[1] >> 28);
    }
}

static void unpack_iq2_xs(const quant_block_iq2_xs *b, iq_unpacked *u) {
    u->d = b->d;
    for (int g = 0; g < 32; g++) {
        uint16_t q;
        memcpy(&q, b->qs + 2 * g, 2);
        put8(u->v + 8 * g, quant_iq2xs_grid[q & 511], quant_iq_signs[q >> 9]);
    }
    for (int ib = 0; ib < 8; ib++) {
        u->sc[2 * ib] = b->scales[ib] & 0xF;
        u->sc[2 * ib + 1] = b->scales[ib] >> 4;
    }
}

static void unpack_iq2_s(const quant_block_iq2_s *b, iq_unpacked *u) {
    u->d = b->d;
    for (int g = 0; g < 32; g++) {
        const int ib = g / 4, l = g % 4;
        const int idx = b->qs[g] | ((b->qh[ib] >> (2 * l)) & 3) << 8;
        put8(u->v + 8 * g, quant_iq2s_grid[idx], b->qs[32 + g]);
    }
    for (int ib = 0; ib < 8; ib++) {
        u->sc[2 * ib] = b->scales[ib] & 0xF;
        u->sc[2 * ib + 1] = b->scales[ib] >> 4;
    }
}

static void unpack_iq3_xxs(const quant_block_iq3_xxs *b, iq_unpacked *u) {
    u->d = b->d;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t a;
        memcpy(&a, b->qs + 64 + 4 * ib, 4);
        for (int l = 0; l < 4; l++) {
            const uint64_t grid = quant_iq3xxs_grid[b->qs[8 * ib + 2 * l]] |
                                  (uint64_t)quant_iq3xxs_grid[b->qs[8 * ib + 2 * l + 1]] << 32;
            put8(u->v + 32 * ib + 8 * l, grid, quant_iq_signs[(a >> (7 * l)) & 127]);
        }
        u->sc[2 * ib] = u->sc[2 * ib + 1] = (uint8_t)(a >> 28);
    }
}

static void unpack_iq3_s(const quant_block_iq3_s *b, iq_unpacked *u) {
    u->d = b->d;
    for (int ib = 0; ib < 8; ib++) {
        for (int l = 0; l < 4; l++) {
            const int i0 = b->qs[8 * ib + 2 * l] | ((b->qh[ib] >> (2 * l)) & 1) << 8;
            const int i1 = b->qs[8 * ib + 2 * l + 1] | ((b->qh[ib] >> (2 * l + 1)) & 1) << 8;
            const uint64_t grid = quant_iq3s_grid[i0] | (uint64_t)quant_iq3s_grid[i1] << 32;
            put8(u->v + 32 * ib + 8 * l, grid, b->signs[4 * ib + l]);
        }
        u->sc[2 * ib] = u->sc[2 * ib + 1] = (b->scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
    }
}

static void unpack_iq1_s(const quant_block_iq1_s *b, iq_unpacked *u) {
    u->d = b->d;
    for (int ib = 0; ib < 8; ib++) {
        uint16_t h;
        memcpy(&h, b->qh + 2 * ib, 2);
        for (int l = 0; l < 4; l++) {
            const int idx = b->qs[4 * ib + l] | ((h >> (3 * l)) & 7) << 8;
            put8(u->v + 32 * ib + 8 * l, quant_iq1s_grid[idx], 0);
            u->delta[4 * ib + l] = h & 0x8000 ? -1 : 1;
        }
        u->sc[2 * ib] = u->sc[2 * ib + 1] = (h >> 12) & 7;
    }
}

static void unpack_iq1_m(const quant_block_iq1_m *b, iq_unpacked *u) {
    u->d = quant_iq1m_d(b);
    uint16_t sw[4];
    memcpy(sw, b->scales, 8);
    for (int ib = 0; ib < 8; ib++) {
        for (int l = 0; l < 4; l++) {
            const int nib = (b->qh[2 * ib + l / 2] >> (4 * (l % 2))) & 0xF;
            put8(u->v + 32 * ib + 8 * l, quant_iq1s_grid[b->qs[4 * ib + l] | (nib & 7) << 8], 0);
            u->delta[4 * ib + l] = nib & 8 ? -1 : 1;
        }
        u->sc[2 * ib] = (sw[ib / 2] >> (6 * (ib % 2))) & 7;
        u->sc[2 * ib + 1] = (sw[ib / 2] >> (6 * (ib % 2) + 3)) & 7;
    }
}

/* ---- dequantization ---- */

typedef enum iq_family { FAM_IQ2, FAM_IQ3_XXS, FAM_IQ3_S, FAM_IQ1 } iq_family;

static void to_float_unpacked(const iq_unpacked *u, iq_family f, float *y) {
    const float d = quant_f16_to_f32(u->d);
    for (int g = 0; g < 16; g++) {
        float dl;
        switch (f) {
        case FAM_IQ2: dl = d * (0.5f + (float)u->sc[g]) * 0.25f; break;
        case FAM_IQ3_XXS: dl = d * (0.5f + (float)u->sc[g]) * 0.5f; break;
        case FAM_IQ3_S: dl = d * (float)(1 + 2 * u->sc[g]); break;
        default: dl = d * (float)(2 * u->sc[g] + 1); break;
        }
        for (int j = 0; j < 16; j++) {
            const int p = 16 * g + j;
            if (f == FAM_IQ1)
                y[p] = dl * ((float)u->v[p] + (float)u->delta[p / 8] * QUANT_IQ1_DELTA);
            else
                y[p] = dl * (float)u->v[p];
        }
    }
}

#define IQ_TO_FLOAT(t, fam)                                                                        \
    void quant_ref_to_float_##t(const void *vx, float *y, int64_t n) {                             \
        const quant_block_##t *x = vx;                                                             \
        iq_unpacked u;                                                                             \
        for (int64_t i = 0; i < n / QUANT_QKK; i++, y += QUANT_QKK) {                              \
            unpack_##t(&x[i], &u);                                                                 \
            to_float_unpacked(&u, fam, y);                                                         \
        }                                                                                          \
    }

IQ_TO_FLOAT(iq2_xxs, FAM_IQ2)
IQ_TO_FLOAT(iq2_xs, FAM_IQ2)
IQ_TO_FLOAT(iq2_s, FAM_IQ2)
IQ_TO_FLOAT(iq3_xxs, FAM_IQ3_XXS)
IQ_TO_FLOAT(iq3_s, FAM_IQ3_S)
IQ_TO_FLOAT(iq1_s, FAM_IQ1)
IQ_TO_FLOAT(iq1_m, FAM_IQ1)

/* ---- dot products ---- */

/* sum over groups of 16 of (2 sc + 1) * (v . q8) */
static int32_t isum_unpacked(const iq_unpacked *u, const int8_t *q8) {
    int32_t isum = 0;
    for (int g = 0; g < 16; g++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) s += u->v[16 * g + j] * q8[16 * g + j];
        isum += (2 * u->sc[g] + 1) * s;
    }
    return isum;
}

/* IQ1's offset part: sum over groups of 16 of (2 sc + 1) * sum over its 8s of delta * sum(q8) */
static int32_t isum_delta(const iq_unpacked *u, const int8_t *q8) {
    int32_t isum = 0;
    for (int g = 0; g < 16; g++) {
        int32_t s = 0;
        for (int h = 0; h < 2; h++) {
            int32_t q = 0;
            for (int j = 0; j < 8; j++) q += q8[16 * g + 8 * h + j];
            s += u->delta[2 * g + h] * q;
        }
        isum += (2 * u->sc[g] + 1) * s;
    }
    return isum;
}

/* The IQ2/IQ3 dots: per super-block one float term, the format's power of two at the end. */
#define IQ_DOT(t, post)                                                                            \
    void quant_ref_vec_dot_##t(int64_t n, float *s, const void *vx, const void *vy) {              \
        const quant_block_##t *x = vx;                                                             \
        const quant_block_q8_k *y = vy;                                                            \
        iq_unpacked u;                                                                             \
        float sum = 0.0f;                                                                          \
        for (int64_t i = 0; i < n / QUANT_QKK; i++) {                                              \
            unpack_##t(&x[i], &u);                                                                 \
            sum += quant_iq_term(quant_f16_to_f32(u.d), y[i].d, isum_unpacked(&u, y[i].qs));       \
        }                                                                                          \
        *s = (post)*sum;                                                                           \
    }

IQ_DOT(iq2_xxs, 0.125f)
IQ_DOT(iq2_xs, 0.125f)
IQ_DOT(iq2_s, 0.125f)
IQ_DOT(iq3_xxs, 0.25f)
IQ_DOT(iq3_s, 1.0f)

#define IQ1_DOT(t)                                                                                 \
    void quant_ref_vec_dot_##t(int64_t n, float *s, const void *vx, const void *vy) {              \
        const quant_block_##t *x = vx;                                                             \
        const quant_block_q8_k *y = vy;                                                            \
        iq_unpacked u;                                                                             \
        float sum = 0.0f;                                                                          \
        for (int64_t i = 0; i < n / QUANT_QKK; i++) {                                              \
            unpack_##t(&x[i], &u);                                                                 \
            sum += quant_iq1_term(quant_f16_to_f32(u.d), y[i].d, isum_unpacked(&u, y[i].qs),       \
                                  isum_delta(&u, y[i].qs));                                        \
        }                                                                                          \
        *s = sum;                                                                                  \
    }

IQ1_DOT(iq1_s)
IQ1_DOT(iq1_m)
