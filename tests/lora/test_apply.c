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

static uint16_t *halves(size_t n, uint32_t seed) {
    float *f = fill_wide(n, seed);
    uint16_t *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = quant_f32_to_f16(f[i]);
    free(f);
    return h;
}

/* Several tokens over the same F16 panels: the bits of one token at a time. */
static void test_panel_tokens(void) {
    const int64_t ranks[] = {1, 5, 16, 63}, panels[] = {1, 7, 8, 9, 17};
    for (size_t k = 0; k < sizeof ranks / sizeof ranks[0]; k++)
        for (size_t q = 0; q < sizeof panels / sizeof panels[0]; q++) {
            const int64_t rank = ranks[k], np = panels[q], n_out = np * LORA_PANEL + 3;
            const int n_tok = 5;
            uint16_t *hp = halves((size_t)(rank * np * LORA_PANEL), 61 + (uint32_t)k);
            const size_t ts_row = (size_t)(rank + 2) * 2; /* rows with a gap */
            uint16_t *ht = halves(ts_row / 2 * (size_t)n_tok, 62 + (uint32_t)q);
            float *y1 = fill_wide((size_t)(n_out * n_tok), 63),
                  *y2 = malloc(sizeof(float) * (size_t)(n_out * n_tok));
            memcpy(y2, y1, sizeof(float) * (size_t)(n_out * n_tok));
            lora_panel_f16_tokens_ref(hp, rank, ht, ts_row, n_tok, 0.5f, y1, n_out, np);
            lora_panel_f16_tokens(hp, rank, ht, ts_row, n_tok, 0.5f, y2, n_out, np);
            CHECK_MSG(memcmp(y1, y2, sizeof(float) * (size_t)(n_out * n_tok)) == 0,
                      "F16 panels over %d tokens != one token at a time (rank %lld, %lld panels)",
                      n_tok, (long long)rank, (long long)np);
            free(hp), free(ht), free(y1), free(y2);
        }
}

/* The SIMD panel kernels give the bits of their scalar references. */
static void test_panel_kernels(void) {
    const int64_t ranks[] = {1, 3, 8, 16, 33, 56, 63};
    for (size_t k = 0; k < sizeof ranks / sizeof ranks[0]; k++)
        for (int64_t np = 1; np <= 5; np += 2) {
            const int64_t rank = ranks[k], n = np * LORA_PANEL;
            float *y1 = fill_wide((size_t)n, 60), *y2 = malloc((size_t)n * sizeof(float));
            memcpy(y2, y1, (size_t)n * sizeof(float));
            if (rank % 8 == 0) {
                float *bp = fill_wide((size_t)(rank * n), 40 + (uint32_t)k);
                float *t = fill_wide((size_t)rank, 50 + (uint32_t)k);
                lora_panel_f32_ref(bp, rank, t, 0.75f, y1, np);
                lora_panel_f32(bp, rank, t, 0.75f, y2, np);
                CHECK_MSG(memcmp(y1, y2, (size_t)n * sizeof(float)) == 0,
                          "F32 panels != scalar reference (rank %lld, %lld panels)",
                          (long long)rank, (long long)np);
                free(bp), free(t);
            }
            uint16_t *hp = halves((size_t)(rank * n), 41 + (uint32_t)k);
            uint16_t *ht = halves((size_t)rank, 51 + (uint32_t)k);
            for (int v = 1; v <= 3; v++) { /* each SIMD variant this CPU runs, and the dispatch */
                lora_panel_f16_fn fn = v == 3 ? lora_panel_f16 : lora_panel_f16_variant(v);
                if (!fn) continue;
                memcpy(y2, y1, (size_t)n * sizeof(float));
                float *y0 = malloc((size_t)n * sizeof(float));
                memcpy(y0, y1, (size_t)n * sizeof(float));
                lora_panel_f16_ref(hp, rank, ht, -1.25f, y0, np);
                fn(hp, rank, ht, -1.25f, y2, np);
                CHECK_MSG(memcmp(y0, y2, (size_t)n * sizeof(float)) == 0,
                          "F16 panels (variant %d) != scalar reference (rank %lld, %lld panels)", v,
                          (long long)rank, (long long)np);
                free(y0);
            }
            free(hp), free(ht), free(y1), free(y2);
        }
}

/* A pair with random A and B of the given types (F32 or F16), B's panels optional. */
typedef struct rand_pair {
    lora_pair p;
    void *a, *b, *bp;
} rand_pair;

static void *rand_matrix(uint32_t type, size_t n, uint32_t seed) {
    return type == GGUF_T_F16 ? (void *)halves(n, seed) : (void *)fill_wide(n, seed);
}

static rand_pair make_pair(uint32_t type_a, uint32_t type_b, int64_t n_in, int64_t n_out,
                           int64_t rank, uint32_t seed) {
    rand_pair r = {0};
    r.a = rand_matrix(type_a, (size_t)(rank * n_in), seed);
    r.b = rand_matrix(type_b, (size_t)(n_out * rank), seed + 1);
    const quant_traits *qa = quant_get(type_a), *qb = quant_get(type_b);
    r.p = (lora_pair){.weight = "w",
                      .a = r.a,
                      .b = r.b,
                      .type_a = type_a,
                      .type_b = type_b,
                      .qa = qa,
                      .qb = qb,
                      .xa = quant_get(qa->vec_dot_type),
                      .xb = quant_get(qb->vec_dot_type),
                      .n_in = n_in,
                      .n_out = n_out,
                      .rank = rank,
                      .a_row_bytes = quant_row_bytes(qa, n_in),
                      .b_row_bytes = quant_row_bytes(qb, rank)};
    return r;
}

/* B in panels gives the bits of the per-output vec_dot path on random data, with and without a
 * pool (F32: ranks that are multiples of 8; F16: any rank below 64). */
static void test_panel_exact(void) {
    core_pool *pool = NULL;
    CHECK(core_pool_new(2, &pool, NULL) == SHIMMY_OK);
    const struct {
        uint32_t ta, tb;
        int64_t rank;
    } cases[] = {{GGUF_T_F32, GGUF_T_F32, 8},  {GGUF_T_F32, GGUF_T_F32, 16},
                 {GGUF_T_F32, GGUF_T_F32, 32}, {GGUF_T_F16, GGUF_T_F16, 16},
                 {GGUF_T_F16, GGUF_T_F16, 5},  {GGUF_T_F32, GGUF_T_F16, 40}};
    const int64_t outs[] = {37, 131, 1001};
    const int toks[] = {1, 2, 7, 70};
    int compared = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (size_t q = 0; q < sizeof outs / sizeof outs[0]; q++) {
            rand_pair r =
                make_pair(cases[k].ta, cases[k].tb, 128, outs[q], cases[k].rank, 70 + (uint32_t)k);
            lora_pair pp = r.p;
            if (lora_pair_panel_ok(&pp)) {
                r.bp = malloc(lora_panel_bytes(&pp));
                lora_panel_build(&pp, r.bp);
                pp.bp = r.bp;
            }
            for (size_t c = 0; pp.bp && c < sizeof toks / sizeof toks[0]; c++) {
                int n = toks[c];
                size_t ny = (size_t)n * (size_t)outs[q];
                float *x = fill_wide((size_t)n * 128, 90 + (uint32_t)c);
                float *y1 = fill_wide(ny, 91), *y2 = malloc(ny * sizeof(float));
                float *y3 = malloc(ny * sizeof(float));
                memcpy(y2, y1, ny * sizeof(float));
                memcpy(y3, y1, ny * sizeof(float));
                float *s = malloc(lora_pair_scratch_floats(&r.p, n) * sizeof(float));
                lora_pair_apply(&r.p, 1.5f, n, x, y1, s, NULL);
                lora_pair_apply(&pp, 1.5f, n, x, y2, s, NULL);
                lora_pair_apply(&pp, 1.5f, n, x, y3, s, pool);
                CHECK_MSG(memcmp(y1, y2, ny * sizeof(float)) == 0,
                          "panels != vec_dot path (B type %u, rank %lld, n_out %lld, %d tokens)",
                          cases[k].tb, (long long)cases[k].rank, (long long)outs[q], n);
                CHECK_MSG(memcmp(y1, y3, ny * sizeof(float)) == 0,
                          "panels on the pool != vec_dot path (rank %lld, n_out %lld, %d tokens)",
                          (long long)cases[k].rank, (long long)outs[q], n);
                compared++;
                free(x), free(y1), free(y2), free(y3), free(s);
            }
            free(r.a), free(r.b), free(r.bp);
        }
    /* the x86 kernel sets and the scalar one take panels for these cases */
    const char *isa = quant_isa();
    if (strncmp(isa, "avx", 3) == 0) CHECK_EQ_INT(compared, 6 * 3 * 4);
    if (strcmp(isa, "scalar") == 0) CHECK_EQ_INT(compared, 3 * 3 * 4);
    core_pool_free(pool);
    /* a loaded adapter gets panels exactly where they reproduce B's vec_dot */
    lora_adapter *ad = open_rel("lora/lora-tiny-llama-spm-r8-attn.gguf");
    for (size_t i = 0; ad && i < lora_adapter_n_pairs(ad); i++) {
        const lora_pair *lp = lora_adapter_pair_at(ad, i);
        CHECK_MSG((lp->bp != NULL) == lora_pair_panel_ok(lp), "%s: bp", lp->weight);
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

/* Stands in for the base products: writes every y[k] (its share of rows) with known values. */
typedef struct fake_base {
    float *const *y;
    const int64_t *n_out;
    int n_w, n_tok;
} fake_base;

/* Units of FAKE_UNIT outputs (of every token) over the weights' outputs one after the other. */
#define FAKE_UNIT 12
static void fake_base_units(void *ctx, int64_t lo, int64_t hi) {
    const fake_base *b = ctx;
    int64_t row0 = 0;
    for (int k = 0; k < b->n_w; k++) {
        for (int64_t o = 0; o < b->n_out[k]; o++) {
            const int64_t u = (row0 + o) / FAKE_UNIT;
            if (u < lo || u >= hi) continue;
            for (int tok = 0; tok < b->n_tok; tok++) {
                const int64_t i = tok * b->n_out[k] + o;
                b->y[k][i] = 0.01f * (float)(k + 1) * (float)(i % 97);
            }
        }
        row0 += b->n_out[k];
    }
}

/* lora_set_run (base products and every term of a group in one pool run) gives the bits of the
 * base followed by lora_set_apply per weight, with and without a pool, also when the terms do
 * not fit one run. */
static void test_run(void) {
    enum { N_AD = 10, N_W = 5 };
    /* attn_norm has no pair in any adapter: only the base writes its rows */
    const char *names[N_W] = {"blk.1.attn_q.weight", "blk.1.attn_k.weight",
                              "blk.1.attn_norm.weight", "blk.1.attn_v.weight",
                              "blk.1.ffn_gate.weight"};
    const int64_t n_out[N_W] = {32, 16, 20, 16, 96};
    lora_adapter *ads[N_AD] = {0};
    lora_set *set = NULL;
    core_pool *pool = NULL;
    CHECK(lora_set_new(&set, NULL) == SHIMMY_OK && core_pool_new(2, &pool, NULL) == SHIMMY_OK);
    /* an F16 adapter (q,k,v only) between F32 ones; the last ones need a second run */
    for (int i = 0; i < N_AD && set; i++) {
        ads[i] = open_rel(i == 1 ? "lora/peft-tiny-llama-spm-r8-attn"
                                 : "lora/lora-tiny-llama-spm-r4.gguf");
        CHECK(ads[i] && lora_set_add(set, ads[i], 0.25f * (float)(i + 1), NULL) == SHIMMY_OK);
    }
    const int counts[] = {1, 3, 301};
    for (size_t c = 0; set && pool && ads[N_AD - 1] && c < sizeof counts / sizeof counts[0]; c++) {
        const int n = counts[c], use[] = {1, N_AD};
        for (size_t u = 0; u < 2; u++) {
            lora_set *one = NULL; /* the first adapter alone, then all of them */
            CHECK(lora_set_new(&one, NULL) == SHIMMY_OK);
            for (int i = 0; i < use[u]; i++)
                lora_set_add(one, ads[i], lora_set_user_scale(set, (size_t)i), NULL);
            float *x = fill((size_t)n * 32, 21, 1.0f);
            float *want[N_W], *got1[N_W], *got2[N_W];
            for (int k = 0; k < N_W; k++) {
                size_t ny = (size_t)(n * n_out[k]);
                want[k] = malloc(ny * sizeof(float));
                got1[k] = malloc(ny * sizeof(float));
                got2[k] = malloc(ny * sizeof(float));
            }
            float *s = malloc(lora_set_scratch_floats(one, n) * sizeof(float));
            fake_base fw = {want, n_out, N_W, n}, f1 = {got1, n_out, N_W, n},
                      f2 = {got2, n_out, N_W, n};
            fake_base_units(&fw, 0, INT64_MAX);
            for (int k = 0; k < N_W; k++) lora_set_apply(one, names[k], n, x, want[k], s, NULL);
            const lora_base b1 = {fake_base_units, &f1, n_out, FAKE_UNIT},
                            b2 = {fake_base_units, &f2, n_out, FAKE_UNIT};
            lora_set_run(one, N_W, names, n, x, got1, s, NULL, &b1);
            lora_set_run(one, N_W, names, n, x, got2, s, pool, &b2);
            for (int k = 0; k < N_W; k++) {
                size_t nb = (size_t)(n * n_out[k]) * sizeof(float);
                CHECK_MSG(memcmp(want[k], got1[k], nb) == 0, "run != apply (%s, %d tokens, %d)",
                          names[k], n, use[u]);
                CHECK_MSG(memcmp(want[k], got2[k], nb) == 0,
                          "run on the pool != apply (%s, %d tokens, %d)", names[k], n, use[u]);
                free(want[k]), free(got1[k]), free(got2[k]);
            }
            free(x), free(s);
            lora_set_free(one);
        }
    }
    for (int i = 0; i < N_AD; i++) lora_adapter_unref(ads[i]);
    lora_set_free(set);
    core_pool_free(pool);
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
    test_panel_kernels();
    test_panel_tokens();
    test_panel_exact();
    test_set();
    test_run();
    test_rm_rf(tmp);
    gguf_close(llama);
    return test_finish("lora/apply");
}
