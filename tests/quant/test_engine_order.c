/* The SIMD dot kernels reproduce the reference engine's floating-point order exactly (llama.cpp
 * c392e509 built for x86 with AVX-512, whose logits the model tests compare against): this test
 * recomputes each dot with that order written out in scalar code (8 float lanes, one FMA per
 * block, the same horizontal sums, the min terms folded where that engine folds them) and
 * requires bit-identical results from every SIMD variant, x86 and ARM alike. BF16 rows follow
 * that machine's vdpbf16ps, whose scalar model here is checked against the instruction itself
 * where the CPU has AVX512-BF16.
 *
 * The integer parts come from dequantizing a copy of each block whose fp16 scale is set to 1 (and
 * min scale to 0): every value is then exactly its integer level times its group scale. */
#include "quant/quant_impl.h"
#include "quant_fixture.h"

#include <math.h>
#include <stddef.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct order_case {
    uint32_t type;
    int d_off, dmin_off; /* byte offsets of the fp16 scale and min scale/min (-1: none) */
} order_case;

static const order_case cases[] = {
    {GGUF_T_Q8_0, offsetof(quant_block_q8_0, d), -1},
    {GGUF_T_Q4_0, offsetof(quant_block_q4_0, d), -1},
    {GGUF_T_Q5_0, offsetof(quant_block_q5_0, d), -1},
    {GGUF_T_Q4_1, offsetof(quant_block_q4_1, d), offsetof(quant_block_q4_1, m)},
    {GGUF_T_Q5_1, offsetof(quant_block_q5_1, d), offsetof(quant_block_q5_1, m)},
    {GGUF_T_Q2_K, offsetof(quant_block_q2_k, d), offsetof(quant_block_q2_k, dmin)},
    {GGUF_T_Q3_K, offsetof(quant_block_q3_k, d), -1},
    {GGUF_T_Q4_K, offsetof(quant_block_q4_k, d), offsetof(quant_block_q4_k, dmin)},
    {GGUF_T_Q5_K, offsetof(quant_block_q5_k, d), offsetof(quant_block_q5_k, dmin)},
    {GGUF_T_Q6_K, offsetof(quant_block_q6_k, d), -1},
};

static float h16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return quant_f16_to_f32(h);
}

/* The integer values (level times group scale) of one block, and its mins (per value, already
 * multiplied by their 4/6-bit factor) when the format has them. */
static void block_ints(const quant_traits *q, const order_case *c, const unsigned char *blk,
                       int32_t *val, int32_t *min) {
    unsigned char tmp[256];
    float f[256];
    const uint16_t one = 0x3C00, zero = 0;
    memcpy(tmp, blk, q->type_size);
    memcpy(tmp + c->d_off, &one, 2);
    if (c->dmin_off >= 0) memcpy(tmp + c->dmin_off, &zero, 2);
    q->to_float(tmp, f, q->block_size);
    for (uint32_t e = 0; e < q->block_size; e++) val[e] = (int32_t)f[e];
    if (min && c->dmin_off >= 0) {
        memcpy(tmp, blk, q->type_size);
        memcpy(tmp + c->d_off, &zero, 2);
        memcpy(tmp + c->dmin_off, &one, 2);
        q->to_float(tmp, f, q->block_size);
        for (uint32_t e = 0; e < q->block_size; e++) min[e] = (int32_t)-f[e];
    }
}

/* lane k of a block: values 4k..4k+3 of every 32 */
static void lanes(const int32_t *val, const int8_t *y, int n, int32_t out[8]) {
    memset(out, 0, 8 * sizeof *out);
    for (int e = 0; e < n; e++) out[(e % 32) / 4] += val[e] * y[e];
}

static float hsum8(const float l[8]) {
    float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    float b0 = a0 + a2, b1 = a1 + a3;
    return b0 + b1;
}

static float hsum4(const float m[4]) {
    float b0 = m[0] + m[2], b1 = m[1] + m[3];
    return b0 + b1;
}

/* The reference engine's x86 arithmetic for one row. */
static float engine_dot(const quant_traits *q, const order_case *c, int64_t n,
                        const unsigned char *w, const unsigned char *a) {
    const quant_traits *at = quant_get_ref(q->vec_dot_type);
    float acc[8] = {0}, acc_m[4] = {0}, scalar = 0.0f;
    int32_t val[256], min[256], l[8];
    for (int64_t b = 0; b < n / q->block_size; b++) {
        const unsigned char *wb = w + b * q->type_size, *ab = a + b * at->type_size;
        block_ints(q, c, wb, val, min);
        if (q->block_size == 32) {
            const int8_t *yq = (const int8_t *)(ab + (q->vec_dot_type == GGUF_T_Q8_1 ? 4 : 2));
            const float d = h16(wb + c->d_off) * h16(ab);
            lanes(val, yq, 32, l);
            if (c->type == GGUF_T_Q4_0) { /* repacked kernel: block total, one scalar FMA */
                int32_t t = 0;
                for (int k = 0; k < 8; k++) t += l[k];
                scalar = fmaf((float)t, d, scalar);
                continue;
            }
            if (c->dmin_off >= 0) scalar = fmaf(h16(wb + c->dmin_off), h16(ab + 2), scalar);
            for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)l[k], acc[k]);
            continue;
        }
        float yd;
        memcpy(&yd, ab, 4);
        const int8_t *yq = (const int8_t *)(ab + offsetof(quant_block_q8_k, qs));
        int16_t bs[16];
        memcpy(bs, ab + offsetof(quant_block_q8_k, bsums), sizeof bs);
        const float d = yd * h16(wb + c->d_off);
        if (c->type == GGUF_T_Q2_K || c->type == GGUF_T_Q4_K || c->type == GGUF_T_Q5_K) {
            const float dmin = -yd * h16(wb + c->dmin_off);
            if (c->type == GGUF_T_Q2_K) { /* 8 lanes of two 16-groups each, before the values */
                for (int k = 0; k < 8; k++)
                    acc[k] = fmaf(
                        dmin, (float)(min[32 * k] * bs[2 * k] + min[32 * k + 16] * bs[2 * k + 1]),
                        acc[k]);
            } else { /* mins of 32-groups j against bsums 2j, 2j+1 */
                int32_t p[4], t = 0;
                for (int k = 0; k < 4; k++) {
                    p[k] = min[64 * k] * (bs[4 * k] + bs[4 * k + 1]) +
                           min[64 * k + 32] * (bs[4 * k + 2] + bs[4 * k + 3]);
                    t += p[k];
                }
                if (c->type == GGUF_T_Q4_K)
                    for (int k = 0; k < 4; k++) acc_m[k] = fmaf(dmin, (float)p[k], acc_m[k]);
                else
                    scalar = fmaf(dmin, (float)t, scalar);
            }
        }
        lanes(val, yq, 256, l);
        for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)l[k], acc[k]);
    }
    if (c->type == GGUF_T_Q4_0) return scalar;
    float r = hsum8(acc);
    if (c->type == GGUF_T_Q4_K) return r + hsum4(acc_m);
    return r + scalar;
}

/* The AVX-512 build's F32/F16 vec_dot: 4 x 16 lanes over n & ~63, folded (a0+a2)+(a1+a3),
 * reduced hi+lo 256, hi+lo 128, (l0+l2)+(l1+l3); tail: F32 rounded products in groups of 8
 * then FMAs for the last n % 8, F16 in double. */
static float engine_dot_float(uint32_t type, int64_t n, const unsigned char *x,
                              const unsigned char *y) {
    const int esz = type == GGUF_T_F32 ? 4 : 2;
    float e[2];
    float acc[4][16] = {{0}};
    const int64_t np = n & ~(int64_t)63;
    for (int64_t i = 0; i < np; i += 64)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 16; l++) {
                const int64_t at = (i + 16 * k + l) * esz;
                if (esz == 4) {
                    memcpy(&e[0], x + at, 4);
                    memcpy(&e[1], y + at, 4);
                } else {
                    e[0] = h16(x + at);
                    e[1] = h16(y + at);
                }
                acc[k][l] = fmaf(e[0], e[1], acc[k][l]);
            }
    float v[16], t8[8], t4[4];
    for (int l = 0; l < 16; l++) {
        float a02 = acc[0][l] + acc[2][l], a13 = acc[1][l] + acc[3][l];
        v[l] = a02 + a13;
    }
    for (int l = 0; l < 8; l++) t8[l] = v[l] + v[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    float l02 = t4[0] + t4[2], l13 = t4[1] + t4[3];
    float r = l02 + l13;
    if (esz == 4) {
        /* the compiler vectorized the tail's products in groups of 8 (rounded, then added in
         * order) and contracted only the last n % 8 into FMAs */
        const int64_t nv = np + ((n - np) & ~(int64_t)7);
        for (int64_t i = np; i < n; i++) {
            memcpy(&e[0], x + 4 * i, 4);
            memcpy(&e[1], y + 4 * i, 4);
            if (i < nv) {
                const float p = e[0] * e[1];
                r += p;
            } else {
                r = fmaf(e[0], e[1], r);
            }
        }
        return r;
    }
    double d = r;
    for (int64_t i = np; i < n; i++) {
        const float p = h16(x + 2 * i) * h16(y + 2 * i);
        d += (double)p;
    }
    return (float)d;
}

/* The batched (tinyBLAS) order: one 16-lane accumulator, one FMA per 16 elements, the same
 * reduction; only for lengths that are multiples of 16. */
static float engine_dot_tiled(uint32_t type, int64_t n, const unsigned char *x,
                              const unsigned char *y) {
    if (n % 16) return engine_dot_float(type, n, x, y);
    const int esz = type == GGUF_T_F32 ? 4 : 2;
    float acc[16] = {0}, e[2];
    for (int64_t i = 0; i < n; i++) {
        if (esz == 4) {
            memcpy(&e[0], x + 4 * i, 4);
            memcpy(&e[1], y + 4 * i, 4);
        } else {
            e[0] = h16(x + 2 * i);
            e[1] = h16(y + 2 * i);
        }
        acc[i % 16] = fmaf(e[0], e[1], acc[i % 16]);
    }
    float t8[8], t4[4];
    for (int l = 0; l < 8; l++) t8[l] = acc[l] + acc[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    float l02 = t4[0] + t4[2], l13 = t4[1] + t4[3];
    return l02 + l13;
}

static int check_float_dots(int v, test_rng *rng) {
    int checked = 0;
    const uint32_t types[] = {GGUF_T_F32, GGUF_T_F16};
    for (size_t t = 0; t < 2; t++) {
        const quant_traits *var = quant_variant_get(v, types[t]), *ref = quant_get_ref(types[t]);
        if (!var || var->vec_dot == ref->vec_dot) continue;
        for (size_t l = 0; l < sizeof qf_elems / sizeof qf_elems[0]; l++) {
            const int64_t n = qf_elems[l];
            float *xw = malloc((size_t)n * sizeof *xw), *xa = malloc((size_t)n * sizeof *xa);
            qf_fill(xw, n, QF_NORMAL, rng);
            qf_fill(xa, n, QF_NORMAL, rng);
            void *bw, *ba;
            const unsigned char *rw = qf_row(ref, ref->from_float, xw, n, 1, &bw);
            const unsigned char *ra = qf_row(ref, ref->from_float, xa, n, 2, &ba);
            float got = NAN;
            var->vec_dot(n, &got, rw, ra);
            float want = engine_dot_float(types[t], n, rw, ra);
            CHECK_MSG(got == want, "%s %s n=%lld: %.9g, engine order %.9g", quant_variant_name(v),
                      ref->name, (long long)n, got, want);
            var->vec_dot_batch(n, &got, rw, ra);
            want = engine_dot_tiled(types[t], n, rw, ra);
            CHECK_MSG(got == want, "%s %s batched n=%lld: %.9g, engine order %.9g",
                      quant_variant_name(v), ref->name, (long long)n, got, want);
            checked++;
            free(bw);
            free(ba);
            free(xw);
            free(xa);
        }
    }
    return checked;
}

/* ---- BF16: the engine's machine multiplies BF16 rows with AVX512-BF16's vdpbf16ps ---- */

static float b16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return quant_bf16_to_f32(h);
}

/* One vdpbf16ps over 32 elements into 16 lanes: lane l adds the product of elements 2l+1, then
 * that of elements 2l, each sum rounded (the products are exact in float). */
static void engine_dpbf16(float acc[16], const unsigned char *x, const unsigned char *y) {
    for (int l = 0; l < 16; l++) {
        const float po = b16(x + 4 * l + 2) * b16(y + 4 * l + 2),
                    pe = b16(x + 4 * l) * b16(y + 4 * l);
        acc[l] += po;
        acc[l] += pe;
    }
}

static float engine_reduce16(const float v[16]) {
    float t8[8], t4[4];
    for (int l = 0; l < 8; l++) t8[l] = v[l] + v[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    float l02 = t4[0] + t4[2], l13 = t4[1] + t4[3];
    return l02 + l13;
}

/* Single rows: two 16-lane accumulators (the first and second 32 of every 64), reduced, summed
 * in double with the tail's products. */
static float engine_dot_bf16(int64_t n, const unsigned char *x, const unsigned char *y) {
    float c1[16] = {0}, c2[16] = {0};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        engine_dpbf16(c1, x + 2 * i, y + 2 * i);
        engine_dpbf16(c2, x + 2 * i + 64, y + 2 * i + 64);
    }
    double d = engine_reduce16(c1);
    d += engine_reduce16(c2);
    for (; i < n; i++) {
        const float p = b16(x + 2 * i) * b16(y + 2 * i);
        d += (double)p;
    }
    return (float)d;
}

/* Batches (tinyBLAS): one accumulator, one instruction per 32 elements; other sizes as above. */
static float engine_dot_bf16_tiled(int64_t n, const unsigned char *x, const unsigned char *y) {
    if (n % 32) return engine_dot_bf16(n, x, y);
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i += 32) engine_dpbf16(acc, x + 2 * i, y + 2 * i);
    return engine_reduce16(acc);
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bf16"))) static void
hw_dpbf16(float acc[16], const unsigned char *x, const unsigned char *y) {
    __m512 c = _mm512_loadu_ps(acc);
    c = _mm512_dpbf16_ps(c, (__m512bh)_mm512_loadu_si512(x), (__m512bh)_mm512_loadu_si512(y));
    _mm512_storeu_ps(acc, c);
}
#endif

/* The model above is the instruction itself, where this CPU has it: random lanes, products and
 * sums over magnitudes from 2^-20 to 2^20. Returns the number of instructions compared. */
static int check_dpbf16_model(test_rng *rng) {
#if defined(__x86_64__)
    if (!(core_cpu_features() & CORE_CPU_AVX512BF16)) return 0;
    int n = 0;
    for (int it = 0; it < 2000; it++) {
        unsigned char x[64], y[64];
        float acc[16], got[16];
        for (int e = 0; e < 32; e++) {
            const float sx = ldexpf(1.0f, (int)(test_rng_u64(rng) % 41) - 20);
            const float sy = ldexpf(1.0f, (int)(test_rng_u64(rng) % 41) - 20);
            quant_ref_from_float_bf16((const float[]){(float)test_rng_normal(rng) * sx}, x + 2 * e,
                                      1);
            quant_ref_from_float_bf16((const float[]){(float)test_rng_normal(rng) * sy}, y + 2 * e,
                                      1);
        }
        for (int l = 0; l < 16; l++) acc[l] = got[l] = (float)test_rng_normal(rng);
        engine_dpbf16(acc, x, y);
        hw_dpbf16(got, x, y);
        int same = 1;
        for (int l = 0; l < 16; l++) same &= memcmp(&acc[l], &got[l], 4) == 0;
        CHECK_MSG(same, "vdpbf16ps differs from its model (iteration %d)", it);
        n++;
    }
    return n;
#else
    (void)rng;
    return 0;
#endif
}

static int check_bf16_dots(int v, test_rng *rng) {
    const quant_traits *var = quant_variant_get(v, GGUF_T_BF16), *ref = quant_get_ref(GGUF_T_BF16);
    if (!var || var->vec_dot == ref->vec_dot) return 0;
    int checked = 0;
    static const int64_t extra[] = {96, 128, 160, 192, 4160};
    const size_t n_elems = sizeof qf_elems / sizeof qf_elems[0];
    for (size_t l = 0; l < n_elems + sizeof extra / sizeof extra[0]; l++) {
        const int64_t n = l < n_elems ? qf_elems[l] : extra[l - n_elems];
        float *xw = malloc((size_t)n * sizeof *xw), *xa = malloc((size_t)n * sizeof *xa);
        qf_fill(xw, n, QF_NORMAL, rng);
        qf_fill(xa, n, QF_NORMAL, rng);
        void *bw, *ba;
        const unsigned char *rw = qf_row(ref, ref->from_float, xw, n, 1, &bw);
        const unsigned char *ra = qf_row(ref, ref->from_float, xa, n, 2, &ba);
        float got = NAN, want = engine_dot_bf16(n, rw, ra);
        var->vec_dot(n, &got, rw, ra);
        CHECK_MSG(got == want, "%s BF16 n=%lld: %.9g, engine order %.9g", quant_variant_name(v),
                  (long long)n, got, want);
        var->vec_dot_batch(n, &got, rw, ra);
        want = engine_dot_bf16_tiled(n, rw, ra);
        CHECK_MSG(got == want, "%s BF16 batched n=%lld: %.9g, engine order %.9g",
                  quant_variant_name(v), (long long)n, got, want);
        checked++;
        free(bw);
        free(ba);
        free(xw);
        free(xa);
    }
    return checked;
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 23);
    int n_checked = 0;
    for (int v = 1; v < quant_n_variants(); v++) {
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            const order_case *c = &cases[ci];
            const quant_traits *var = quant_variant_get(v, c->type), *ref = quant_get_ref(c->type);
            if (!var || var->vec_dot == ref->vec_dot) continue;
            const quant_traits *act = quant_get_ref(ref->vec_dot_type);
            for (size_t l = 0; l < sizeof qf_blocks / sizeof qf_blocks[0]; l++) {
                int64_t n = (int64_t)qf_blocks[l] * ref->block_size;
                for (int p = 0; p < QF_N_PATTERNS; p++) {
                    float *xw = malloc((size_t)n * sizeof *xw),
                          *xa = malloc((size_t)n * sizeof *xa);
                    qf_fill(xw, n, (qf_pattern)p, &rng);
                    qf_fill(xa, n, p == QF_EXTREME ? QF_NORMAL : (qf_pattern)p, &rng);
                    void *bw, *ba;
                    const unsigned char *rw = qf_row(ref, ref->from_float, xw, n, 1, &bw);
                    const unsigned char *ra = qf_row(act, act->from_float, xa, n, 3, &ba);
                    float got = NAN;
                    var->vec_dot(n, &got, rw, ra);
                    float want = engine_dot(ref, c, n, rw, ra);
                    CHECK_MSG(got == want, "%s %s n=%lld pattern %d: %.9g, engine order %.9g",
                              quant_variant_name(v), ref->name, (long long)n, p, got, want);
                    n_checked++;
                    free(bw);
                    free(ba);
                    free(xw);
                    free(xa);
                }
            }
        }
    }
    /* the float dots follow the engine's AVX-512 build */
    for (int v = 1; v < quant_n_variants(); v++) n_checked += check_float_dots(v, &rng);
    const int n_hw = check_dpbf16_model(&rng);
    fprintf(stderr, "%d vdpbf16ps compared with the BF16 order's model\n", n_hw);
    for (int v = 1; v < quant_n_variants(); v++) n_checked += check_bf16_dots(v, &rng);
    fprintf(stderr, "%d dots checked against the engine order\n", n_checked);
    if (n_checked == 0) test_skip("no SIMD variant runs here");
    return test_finish("quant/engine_order");
}
