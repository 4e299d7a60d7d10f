/* lora: y += s·B(A x) against a double-precision reference computed here from the dequantized
 * matrices, with the activation conversions of the README emulated independently (F16/BF16
 * round-to-nearest-even, Q8_0 through the scalar reference quantizer). Buffers are allocated at
 * exactly the sizes the API asks for, so ASan catches any overrun. */
#include "lora/lora_impl.h"
#include "lora_fixtures.h"

#include <float.h>
#include <math.h>

static gguf_file *llama;
static char tmp[512];

/* The activation conversion of type `vd` applied to n floats (in -> out, dequantized). */
static void convert(uint32_t vd, const float *in, float *out, int64_t n) {
    if (vd == GGUF_T_F16) {
        for (int64_t i = 0; i < n; i++) out[i] = quant_f16_to_f32(quant_f32_to_f16(in[i]));
    } else if (vd == GGUF_T_BF16) {
        for (int64_t i = 0; i < n; i++) out[i] = quant_bf16_to_f32(quant_f32_to_bf16(in[i]));
    } else if (vd == GGUF_T_Q8_0) {
        const quant_traits *r = quant_get_ref(GGUF_T_Q8_0);
        void *q = malloc(quant_row_bytes(r, n));
        r->from_float(in, q, n);
        r->to_float(q, out, n);
        free(q);
    } else {
        memcpy(out, in, (size_t)n * sizeof(float));
    }
}

typedef struct ref_out {
    double *y;   /* (n_tok, n_out) reference */
    double *tol; /* per element: float rounding + rounding ties the float sums may land on */
} ref_out;

/* Reference of y0 + s·B(conv_b(A conv_a(x))); `emulate` false skips both conversions. */
static void reference(const lora_pair *p, float s, int n_tok, const float *x, const float *y0,
                      bool emulate, ref_out *r) {
    int64_t n_in = p->n_in, n_out = p->n_out, rank = p->rank;
    float *A = malloc(sizeof(float) * (size_t)(rank * n_in));
    float *B = malloc(sizeof(float) * (size_t)(n_out * rank));
    const quant_traits *ra = quant_get_ref(p->type_a), *rb = quant_get_ref(p->type_b);
    for (int64_t k = 0; k < rank; k++)
        ra->to_float((const char *)p->a + k * p->a_row_bytes, A + k * n_in, n_in);
    for (int64_t o = 0; o < n_out; o++)
        rb->to_float((const char *)p->b + o * p->b_row_bytes, B + o * rank, rank);
    float *xc = malloc(sizeof(float) * (size_t)n_in), *t = malloc(sizeof(float) * (size_t)rank);
    float *lo = malloc(sizeof(float) * (size_t)rank), *hi = malloc(sizeof(float) * (size_t)rank);
    float *tc = malloc(sizeof(float) * (size_t)rank), *tl = malloc(sizeof(float) * (size_t)rank),
          *th = malloc(sizeof(float) * (size_t)rank);
    uint32_t va = emulate ? p->qa->vec_dot_type : GGUF_T_F32;
    uint32_t vb = emulate ? p->qb->vec_dot_type : GGUF_T_F32;
    for (int tok = 0; tok < n_tok; tok++) {
        convert(va, x + tok * n_in, xc, n_in);
        for (int64_t k = 0; k < rank; k++) {
            double acc = 0, mag = 0;
            for (int64_t i = 0; i < n_in; i++) {
                acc += (double)A[k * n_in + i] * xc[i];
                mag += fabs((double)A[k * n_in + i] * xc[i]);
            }
            t[k] = (float)acc;
            /* the kernel sums in float: its A·x may differ by this much, and the conversion of
             * A·x may then round the other way */
            double e = mag * 64 * FLT_EPSILON;
            lo[k] = (float)(acc - e);
            hi[k] = (float)(acc + e);
        }
        convert(vb, t, tc, rank);
        convert(vb, lo, tl, rank);
        convert(vb, hi, th, rank);
        for (int64_t o = 0; o < n_out; o++) {
            double acc = 0, amb = 0, mag = 0;
            for (int64_t k = 0; k < rank; k++) {
                double b = B[o * rank + k];
                acc += b * tc[k];
                mag += fabs(b * tc[k]);
                amb += fabs(b) * fmax(fabs((double)tc[k] - tl[k]), fabs((double)tc[k] - th[k]));
            }
            size_t i = (size_t)(tok * n_out + o);
            r->y[i] = y0[i] + (double)s * acc;
            r->tol[i] = fabs(s) * (amb + mag * 64 * FLT_EPSILON) + fabs(r->y[i]) * 4 * FLT_EPSILON;
        }
    }
    free(A), free(B), free(xc), free(t), free(lo), free(hi), free(tc), free(tl), free(th);
}

static float *fill(size_t n, unsigned seed, float amp) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = amp * fx_value(seed, (int64_t)i) / 0.3f;
    return v;
}

/* Applies p and compares with the reference; returns the largest |error| against the
 * reference *without* conversions (for the caller's "the emulation matters" check). */
static double check_pair(const lora_pair *p, float s, int n_tok, core_pool *pool,
                         const char *what) {
    size_t nx = (size_t)(n_tok * p->n_in), ny = (size_t)(n_tok * p->n_out);
    float *x = fill(nx, 11, 1.0f), *y0 = fill(ny, 12, 0.5f), *y = malloc(ny * sizeof(float));
    memcpy(y, y0, ny * sizeof(float));
    size_t sf = lora_pair_scratch_floats(p, n_tok);
    CHECK(sf >= (size_t)(n_tok * p->rank));
    float *scratch = malloc(sf * sizeof(float));
    lora_pair_apply(p, s, n_tok, x, y, scratch, pool);
    ref_out r = {malloc(ny * sizeof(double)), malloc(ny * sizeof(double))};
    reference(p, s, n_tok, x, y0, true, &r);
    int bad = 0;
    double worst = 0, moved = 0;
    for (size_t i = 0; i < ny; i++) {
        double e = fabs(y[i] - r.y[i]);
        if (e > r.tol[i] && bad++ < 3)
            fprintf(stderr, "%s %s: y[%zu] = %.9g, reference %.9g (tol %.3g)\n", what, p->weight, i,
                    (double)y[i], r.y[i], r.tol[i]);
        moved = fmax(moved, fabs(y[i] - y0[i]));
    }
    CHECK_MSG(bad == 0, "%s %s: %d of %zu elements off", what, p->weight, bad, ny);
    CHECK_MSG(moved > 1e-3, "%s %s: the delta did not change y", what, p->weight);
    reference(p, s, n_tok, x, y0, false, &r);
    for (size_t i = 0; i < ny; i++) worst = fmax(worst, fabs(y[i] - r.y[i]));
    free(x), free(y0), free(y), free(scratch), free(r.y), free(r.tol);
    return worst;
}

static lora_adapter *open_rel(const char *rel) {
    char path[600];
    test_require_data(rel, path, sizeof path);
    lora_adapter *a = NULL;
    shimmy_error err;
    CHECK_MSG(lora_adapter_open(path, llama, &a, &err) == SHIMMY_OK, "%s", err.message);
    return a;
}

static void test_shared(void) {
    lora_adapter *f32 = open_rel("lora/lora-tiny-llama-spm-r4.gguf");
    lora_adapter *f16 = open_rel("lora/peft-tiny-llama-spm-r8-attn");
    for (size_t i = 0; f32 && i < lora_adapter_n_pairs(f32); i++) {
        const lora_pair *p = lora_adapter_pair_at(f32, i);
        /* F32: nothing is rounded, so the unconverted reference is the reference */
        double w = check_pair(p, lora_pair_scale(p, 1.0f), 3, NULL, "F32");
        CHECK_MSG(w < 1e-5, "F32 %s: %g", p->weight, w);
    }
    double worst = 0;
    for (size_t i = 0; f16 && i < lora_adapter_n_pairs(f16); i++) {
        const lora_pair *p = lora_adapter_pair_at(f16, i);
        worst = fmax(worst, check_pair(p, lora_pair_scale(p, 0.5f), 4, NULL, "F16"));
    }
    /* without the two F16 roundings the result would be visibly different */
    CHECK_MSG(worst > 1e-4, "F16 roundings had no visible effect (%g)", worst);
    lora_adapter_unref(f32);
    lora_adapter_unref(f16);
}

static void test_quantized(void) {
    const fx_tensor q8b16[] = {{"blk.0.attn_q.weight.lora_a", GGUF_T_Q8_0, 32, 32},
                               {"blk.0.attn_q.weight.lora_b", GGUF_T_BF16, 32, 32},
                               {"blk.1.ffn_down.weight.lora_a", GGUF_T_BF16, 96, 32},
                               {"blk.1.ffn_down.weight.lora_b", GGUF_T_Q8_0, 32, 32}};
    const fx_gguf m = {"llama", "adapter", "lora", true, 16.0f};
    char path[700];
    snprintf(path, sizeof path, "%s/q8.gguf", tmp);
    CHECK(fx_write_gguf(path, &m, q8b16, 4));
    lora_adapter *a = NULL;
    shimmy_error err;
    CHECK_MSG(lora_adapter_open(path, llama, &a, &err) == SHIMMY_OK, "%s", err.message);
    for (size_t i = 0; a && i < lora_adapter_n_pairs(a); i++) {
        const lora_pair *p = lora_adapter_pair_at(a, i);
        double w = check_pair(p, lora_pair_scale(p, 1.0f), 3, NULL, "Q8_0/BF16");
        CHECK_MSG(w > 1e-4, "%s: conversions had no visible effect (%g)", p->weight, w);
    }
    lora_adapter_unref(a);
}

/* PEFT matrices straight from a safetensors mapping, at unaligned addresses. */
static void test_peft_unaligned(void) {
    const fx_st ts[] = {{FX_PEFT "1.mlp.down_proj.lora_A.weight", "F16", 4, 96, NULL},
                        {FX_PEFT "1.mlp.down_proj.lora_B.weight", "BF16", 32, 4, NULL},
                        {FX_PEFT "0.self_attn.k_proj.lora_A.weight", "F32", 4, 32, NULL},
                        {FX_PEFT "0.self_attn.k_proj.lora_B.weight", "F32", 16, 4, NULL}};
    char path[700];
    CHECK(fx_peft(tmp, "unaligned", "", ts, 4, path, sizeof path) != NULL);
    lora_adapter *a = NULL;
    shimmy_error err;
    CHECK_MSG(lora_adapter_open(path, llama, &a, &err) == SHIMMY_OK, "%s", err.message);
    for (size_t i = 0; a && i < lora_adapter_n_pairs(a); i++) {
        const lora_pair *p = lora_adapter_pair_at(a, i);
        CHECK(((uintptr_t)p->a & 3) != 0); /* the fixture really is unaligned */
        check_pair(p, lora_pair_scale(p, 1.0f), 2, NULL, "PEFT");
    }
    lora_adapter_unref(a);
}

/* The same result, bit for bit, with and without a pool, for any token count. */
static void test_pool(void) {
    core_pool *pool = NULL;
    CHECK(core_pool_new(2, &pool, NULL) == SHIMMY_OK);
    lora_adapter *a = open_rel("lora/lora-tiny-llama-spm-r8-attn.gguf");
    const lora_pair *p = a ? lora_adapter_find(a, "blk.1.attn_output.weight") : NULL;
    /* 301 tokens make the products big enough to be split over the pool */
    const int counts[] = {1, 3, 301};
    for (size_t c = 0; p && pool && c < sizeof counts / sizeof counts[0]; c++) {
        int n = counts[c];
        size_t ny = (size_t)(n * p->n_out);
        float *x = fill((size_t)(n * p->n_in), 5, 1.0f), *y1 = fill(ny, 6, 1.0f);
        float *y2 = malloc(ny * sizeof(float));
        memcpy(y2, y1, ny * sizeof(float));
        float *s = malloc(lora_pair_scratch_floats(p, n) * sizeof(float));
        lora_pair_apply(p, 2.0f, n, x, y1, s, NULL);
        lora_pair_apply(p, 2.0f, n, x, y2, s, pool);
        CHECK_MSG(memcmp(y1, y2, ny * sizeof(float)) == 0, "pool changes the result (n=%d)", n);
        free(x), free(y1), free(y2), free(s);
    }
    if (p && pool) check_pair(p, 2.0f, 301, pool, "pool");
    lora_adapter_unref(a);
    core_pool_free(pool);
}

/* Random floats over a wide range of magnitudes, so that any change in the order of the roundings
 * shows in the bits. */
static float *fill_wide(size_t n, uint32_t seed) {
    float *v = malloc(n * sizeof(float));
    uint32_t st = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        st = st * 1664525u + 1013904223u;
        float m = (float)((st >> 8) & 0xffff) / 65536.0f - 0.5f;
        st = st * 1664525u + 1013904223u;
        v[i] = ldexpf(m, (int)((st >> 24) % 24) - 12);
    }
    return v;
}

/* The SIMD axpy kernel gives the bits of its scalar reference, for any output range. */
static void test_axpy_kernel(void) {
    const int64_t ranks[] = {8, 16, 32, 56}, n_out = 45;
    for (size_t k = 0; k < sizeof ranks / sizeof ranks[0]; k++) {
        int64_t rank = ranks[k];
        float *bt = fill_wide((size_t)(rank * n_out), 40 + (uint32_t)k);
        float *t = fill_wide((size_t)rank, 50 + (uint32_t)k);
        float *y1 = fill_wide((size_t)n_out, 60), *y2 = malloc((size_t)n_out * sizeof(float));
        const int64_t ranges[][2] = {{0, 45}, {3, 45}, {5, 12}, {0, 7}, {8, 40}, {44, 45}};
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            memcpy(y2, y1, (size_t)n_out * sizeof(float));
            lora_axpy_ref(bt, rank, n_out, t, 0.75f, y1, ranges[r][0], ranges[r][1]);
            lora_axpy(bt, rank, n_out, t, 0.75f, y2, ranges[r][0], ranges[r][1]);
            CHECK_MSG(memcmp(y1, y2, (size_t)n_out * sizeof(float)) == 0,
                      "axpy != its scalar reference (rank %lld, range %lld..%lld)", (long long)rank,
                      (long long)ranges[r][0], (long long)ranges[r][1]);
        }
        free(bt), free(t), free(y1), free(y2);
    }
}

/* The axpy path (B transposed) gives the bits of the per-output vec_dot path on random data. */
static void test_axpy_exact(void) {
    core_pool *pool = NULL;
    CHECK(core_pool_new(2, &pool, NULL) == SHIMMY_OK);
    const quant_traits *f32 = quant_get(GGUF_T_F32);
    const int64_t ranks[] = {8, 16, 32}, outs[] = {37, 131, 1001};
    const int toks[] = {1, 2, 7, 70};
    for (size_t k = 0; k < sizeof ranks / sizeof ranks[0]; k++)
        for (size_t q = 0; q < sizeof outs / sizeof outs[0]; q++) {
            const int64_t rank = ranks[k], n_out = outs[q], n_in = 96;
            float *a = fill_wide((size_t)(rank * n_in), 70 + (uint32_t)k);
            float *b = fill_wide((size_t)(n_out * rank), 80 + (uint32_t)q);
            float *bt = malloc((size_t)(n_out * rank) * sizeof(float));
            for (int64_t o = 0; o < n_out; o++)
                for (int64_t r = 0; r < rank; r++) bt[r * n_out + o] = b[o * rank + r];
            lora_pair p = {.weight = "w",
                           .a = a,
                           .b = b,
                           .type_a = GGUF_T_F32,
                           .type_b = GGUF_T_F32,
                           .qa = f32,
                           .qb = f32,
                           .xa = f32,
                           .xb = f32,
                           .n_in = n_in,
                           .n_out = n_out,
                           .rank = rank,
                           .a_row_bytes = (size_t)n_in * 4,
                           .b_row_bytes = (size_t)rank * 4};
            lora_pair pt = p;
            pt.bt = bt;
            if (!lora_pair_axpy_ok(&pt)) {
                /* this kernel set keeps the vec_dot path: nothing to compare */
                free(a), free(b), free(bt);
                continue;
            }
            for (size_t c = 0; c < sizeof toks / sizeof toks[0]; c++) {
                int n = toks[c];
                size_t ny = (size_t)n * (size_t)n_out;
                float *x = fill_wide((size_t)n * (size_t)n_in, 90 + (uint32_t)c);
                float *y1 = fill_wide(ny, 91), *y2 = malloc(ny * sizeof(float));
                float *y3 = malloc(ny * sizeof(float));
                memcpy(y2, y1, ny * sizeof(float));
                memcpy(y3, y1, ny * sizeof(float));
                float *s = malloc(lora_pair_scratch_floats(&p, n) * sizeof(float));
                lora_pair_apply(&p, 1.5f, n, x, y1, s, NULL);
                lora_pair_apply(&pt, 1.5f, n, x, y2, s, NULL);
                lora_pair_apply(&pt, 1.5f, n, x, y3, s, pool);
                CHECK_MSG(memcmp(y1, y2, ny * sizeof(float)) == 0,
                          "axpy != vec_dot path (rank %lld, n_out %lld, %d tokens)",
                          (long long)rank, (long long)n_out, n);
                CHECK_MSG(memcmp(y1, y3, ny * sizeof(float)) == 0,
                          "axpy on the pool != vec_dot path (rank %lld, n_out %lld, %d tokens)",
                          (long long)rank, (long long)n_out, n);
                free(x), free(y1), free(y2), free(y3), free(s);
            }
            free(a), free(b), free(bt);
        }
    core_pool_free(pool);
    /* a loaded F32 adapter gets B transposed exactly when the axpy path reproduces it */
    lora_adapter *ad = open_rel("lora/lora-tiny-llama-spm-r8-attn.gguf");
    for (size_t i = 0; ad && i < lora_adapter_n_pairs(ad); i++) {
        const lora_pair *lp = lora_adapter_pair_at(ad, i);
        CHECK_MSG((lp->bt != NULL) == lora_pair_axpy_ok(lp), "%s: bt", lp->weight);
    }
    lora_adapter_unref(ad);
}

/* A set applies each adapter's term in attach order, with its own scale. */
static void test_set(void) {
    lora_adapter *r4 = open_rel("lora/lora-tiny-llama-spm-r4.gguf");
    lora_adapter *r8 = open_rel("lora/peft-tiny-llama-spm-r8-attn");
    lora_set *set = NULL;
    CHECK(lora_set_new(&set, NULL) == SHIMMY_OK);
    if (!r4 || !r8 || !set) goto out;
    shimmy_error err;
    CHECK(lora_set_add(set, r4, 0.25f, &err) == SHIMMY_OK);
    CHECK(lora_set_add(set, r8, 0.5f, &err) == SHIMMY_OK);
    CHECK(lora_set_add(set, r4, 1.0f, &err) == SHIMMY_OK); /* replaces the scale */
    CHECK(lora_set_add(set, r4, NAN, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK_EQ_INT(lora_set_count(set), 2);
    CHECK(lora_set_adapter(set, 0) == r4 && lora_set_user_scale(set, 0) == 1.0f);
    CHECK(lora_set_user_scale(set, 1) == 0.5f);
    const lora_pair *p4 = lora_adapter_find(r4, "blk.0.attn_k.weight");
    const lora_pair *p8 = lora_adapter_find(r8, "blk.0.attn_k.weight");
    const int n = 3;
    size_t sf = lora_set_scratch_floats(set, n);
    CHECK(p4 && p8 && sf >= lora_pair_scratch_floats(p4, n) &&
          sf >= lora_pair_scratch_floats(p8, n));
    /* the set keeps its adapters alive after the caller lets go */
    lora_adapter_unref(r4);
    lora_adapter_unref(r8);
    r4 = r8 = NULL;
    if (!p4 || !p8) goto out;
    size_t ny = (size_t)(n * p4->n_out);
    float *x = fill((size_t)(n * p4->n_in), 8, 1.0f), *y1 = fill(ny, 9, 1.0f);
    float *y2 = malloc(ny * sizeof(float)), *y3 = malloc(ny * sizeof(float));
    memcpy(y2, y1, ny * sizeof(float));
    memcpy(y3, y1, ny * sizeof(float));
    float *s = malloc(sf * sizeof(float));
    lora_set_apply(set, "blk.0.attn_k.weight", n, x, y1, s, NULL);
    lora_pair_apply(p4, 2.0f, n, x, y2, s, NULL);
    lora_pair_apply(p8, 1.0f, n, x, y2, s, NULL);
    CHECK(memcmp(y1, y2, ny * sizeof(float)) == 0);
    lora_set_apply(set, "blk.0.attn_k.weight.lora_a", n, x, y3, s, NULL);
    lora_set_apply(set, "output.weight", n, x, y3, s, NULL);
    CHECK(memcmp(y3, y2, ny * sizeof(float)) != 0); /* untouched weights leave y alone: */
    float *y4 = fill(ny, 9, 1.0f);
    CHECK(memcmp(y3, y4, ny * sizeof(float)) == 0);
    free(x), free(y1), free(y2), free(y3), free(y4), free(s);
out:
    lora_adapter_unref(r4);
    lora_adapter_unref(r8);
    lora_set_free(set);
    lora_set_free(NULL);
    lora_adapter_unref(NULL);
}

int main(void) {
    llama = fx_base(FX_LLAMA);
    if (!llama || !test_tmpdir(tmp, sizeof tmp)) {
        gguf_close(llama);
        CHECK(!"setup");
        return test_finish("lora/apply");
    }
    test_shared();
    test_quantized();
    test_peft_unaligned();
    test_pool();
    test_axpy_kernel();
    test_axpy_exact();
    test_set();
    test_rm_rf(tmp);
    gguf_close(llama);
    return test_finish("lora/apply");
}
