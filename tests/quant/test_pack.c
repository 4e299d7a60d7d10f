/* The repacked layouts (quant_pack): a matrix packed in groups of 16 rows and multiplied by each
 * variant's kernels gives every row's dot to float rounding of the reference vec_dot on the
 * original rows (within 1e-5 of the outputs' RMS, or of the RMS of their sums of |products| where
 * that is larger; the integer sums are exact, only the float order differs), the SIMD kernels
 * agree with the layout's scalar kernels within 1e-6 of the same scale,
 * and a product over a row range writes exactly those rows: partial groups (n_out not a multiple
 * of 16), ranges that start and end inside a group, one token, tiles and their remainders. */
#include "quant/quant.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL -12345.0f

typedef struct shape {
    int64_t n_in, n_out, nt, r0, r1;
} shape;

static const shape shapes[] = {
    {256, 16, 1, 0, 16},   {256, 1, 1, 0, 1},    {768, 40, 5, 0, 40},  {768, 40, 9, 3, 37},
    {4096, 33, 4, 16, 33}, {512, 17, 3, 15, 17}, {1024, 64, 8, 5, 60}, {256, 48, 13, 0, 48},
    {512, 80, 1, 3, 77}, /* one token over several groups at once (AVX2 F16: 4 per pass) */
};

/* pattern 0: N(0,1) weights and activations; 1: every level at its extremes (weights +-8 and
 * zeros, activations with a large outlier so that some quantized ones reach -128/127) */
static void fill(float *x, int64_t n, int pattern, test_rng *rng) {
    for (int64_t i = 0; i < n; i++)
        x[i] = pattern ? (i % 3 == 2 ? 0.0f : (i & 1 ? -8.0f : 8.0f)) : (float)test_rng_normal(rng);
}

static double rms(const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * y[i];
    return sqrt(s / (double)(n ? n : 1));
}

static void check_shape(uint32_t type, const shape *s, int pattern, test_rng *rng, int *n_checked) {
    const quant_traits *ref = quant_get_ref(type), *act = quant_get_ref(ref->vec_dot_type);
    const quant_pack *pref = quant_pack_ref(type);
    const size_t wrow = quant_row_bytes(ref, s->n_in), arow = quant_row_bytes(act, s->n_in);
    const size_t pbytes = quant_pack_bytes(pref, ref->block_size, s->n_in, s->n_out);
    const size_t group = pbytes / (size_t)((s->n_out + 15) / 16);
    float *xf = malloc((size_t)s->n_in * sizeof *xf);
    /* the pack's own activation rows, made from the same values (the float layouts read F32
     * rows rounded as the reference rounds them) */
    const quant_traits *pact = quant_get_ref(pref->act_type);
    const quant_from_float_fn pconv =
        pref->act_from_float ? pref->act_from_float : pact->from_float;
    const size_t parow = quant_row_bytes(pact, s->n_in);
    unsigned char *w = malloc(wrow * (size_t)s->n_out), *a = malloc(arow * (size_t)s->nt);
    unsigned char *pa = malloc(parow * (size_t)s->nt);
    unsigned char *pw = aligned_alloc(64, (pbytes + 63) / 64 * 64);
    const size_t ys = (size_t)s->n_out + 2, ny = ys * (size_t)s->nt;
    float *want = calloc(ny, sizeof *want), *got = malloc(ny * sizeof *got);
    for (int64_t r = 0; r < s->n_out; r++) {
        fill(xf, s->n_in, pattern, rng);
        ref->quantize(xf, w + (size_t)r * wrow, s->n_in);
    }
    for (int64_t t = 0; t < s->nt; t++) {
        for (int64_t i = 0; i < s->n_in; i++)
            xf[i] = (float)test_rng_normal(rng) * (pattern && i == t ? 40.0f : 1.0f);
        act->from_float(xf, a + (size_t)t * arow, s->n_in);
        pconv(xf, pa + (size_t)t * parow, s->n_in);
    }
    for (int64_t g = 0; g * 16 < s->n_out; g++) {
        const int rows = (int)(s->n_out - g * 16 < 16 ? s->n_out - g * 16 : 16);
        pref->pack(w + (size_t)(g * 16) * wrow, wrow, rows, s->n_in, pw + (size_t)g * group);
    }
    for (int64_t t = 0; t < s->nt; t++)
        for (int64_t r = 0; r < s->n_out; r++)
            ref->vec_dot(s->n_in, &want[(size_t)t * ys + (size_t)r], w + (size_t)r * wrow,
                         a + (size_t)t * arow);
    /* the scale of the error: the outputs' RMS, or, where the products cancel (one row and one
     * token can sum to nearly zero), the RMS of their sums of |products| (the quantity a float
     * dot's rounding error is proportional to) */
    double mag2 = 0;
    {
        float *wf = malloc(sizeof(float) * (size_t)s->n_in),
              *af = malloc(sizeof(float) * (size_t)s->n_in);
        for (int64_t r = 0; r < s->n_out; r++) {
            ref->to_float(w + (size_t)r * wrow, wf, s->n_in);
            for (int64_t t = 0; t < s->nt; t++) {
                act->to_float(a + (size_t)t * arow, af, s->n_in);
                double m = 0;
                for (int64_t i = 0; i < s->n_in; i++) m += fabs((double)wf[i] * af[i]);
                mag2 += m * m;
            }
        }
        free(wf);
        free(af);
    }
    const double mag = sqrt(mag2 / (double)(s->n_out * s->nt));
    const double scale = (rms(want, ny) > mag ? rms(want, ny) : mag) + 1e-30;
    /* the scalar layout kernels first, then every variant that has the layout */
    for (int v = -1; v < quant_n_variants(); v++) {
        const quant_traits *var = v < 0 ? NULL : quant_variant_get(v, type);
        const quant_pack *p = v < 0 ? pref : var ? var->pack : NULL;
        if (!p) continue;
        for (size_t i = 0; i < ny; i++) got[i] = SENTINEL;
        if (var) /* one layout: the same bytes and activation rows as its scalar kernels' */
            CHECK(p->act_type == pref->act_type && p->block_bytes == pref->block_bytes &&
                  p->in_multiple == pref->in_multiple && p->pack == pref->pack);
        p->gemm(s->n_in, s->r0, s->r1, s->nt, pw, pa, parow, got, ys);
        double worst = 0;
        int outside = 0;
        for (int64_t t = 0; t < s->nt; t++)
            for (size_t r = 0; r < ys; r++) {
                const float g = got[(size_t)t * ys + r];
                if ((int64_t)r < s->r0 || (int64_t)r >= s->r1) {
                    outside += g != SENTINEL;
                    continue;
                }
                const double d = fabs((double)g - want[(size_t)t * ys + r]) / scale;
                worst = d > worst || isnan(d) ? d : worst;
            }
        CHECK_MSG(outside == 0, "%s n_in=%lld rows [%lld,%lld) of %lld: %d outputs outside written",
                  p->name, (long long)s->n_in, (long long)s->r0, (long long)s->r1,
                  (long long)s->n_out, outside);
        if (getenv("PACK_VERBOSE"))
            printf("%s %lld %lld pattern %d worst %.3g\n", p->name, (long long)s->n_in,
                   (long long)s->n_out, pattern, worst);
        CHECK_MSG(worst <= 1e-5,
                  "%s n_in=%lld n_out=%lld nt=%lld pattern %d: max |diff| %.3g of the RMS vs "
                  "vec_dot",
                  p->name, (long long)s->n_in, (long long)s->n_out, (long long)s->nt, pattern,
                  worst);
        if (v >= 0) { /* against the scalar layout kernels */
            float *sref = malloc(ny * sizeof *sref);
            for (size_t i = 0; i < ny; i++) sref[i] = SENTINEL;
            pref->gemm(s->n_in, s->r0, s->r1, s->nt, pw, pa, parow, sref, ys);
            double d = 0;
            for (size_t i = 0; i < ny; i++) {
                const double e = fabs((double)got[i] - sref[i]) / scale;
                d = e > d ? e : d;
            }
            CHECK_MSG(d <= 1e-6, "%s vs %s: max |diff| %.3g of the RMS", p->name, pref->name, d);
            free(sref);
        }
        (*n_checked)++;
    }
    free(xf);
    free(w);
    free(a);
    free(pa);
    free(pw);
    free(want);
    free(got);
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 11);
    int n_checked = 0;
    const uint32_t types[] = {GGUF_T_F16,   GGUF_T_BF16, GGUF_T_Q4_0, GGUF_T_Q8_0,
                              GGUF_T_MXFP4, GGUF_T_Q4_K, GGUF_T_Q6_K};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        CHECK(quant_pack_ref(types[ti]) != NULL);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int pattern = 0; pattern < 2; pattern++)
                check_shape(types[ti], &shapes[si], pattern, &rng, &n_checked);
    }
    CHECK(quant_pack_ref(GGUF_T_Q5_K) == NULL);
    printf("%d products checked (kernel set %s)\n", n_checked, quant_isa());
    return test_finish("quant/pack");
}
