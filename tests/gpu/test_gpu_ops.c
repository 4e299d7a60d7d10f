/* The Vulkan backend's kernels other than matmul (src/gpu/shaders: rms_norm, ew, rope, gather,
 * kv_store, attn), each run on its own through gpu_debug_run with the push constants laid out
 * exactly as the shader declares them, against the CPU's scalar reference over odd sizes:
 *
 *   rms_norm  model_rms_norm_ref, with and without a weight, rows of 1, 7, 64, 1000, 4097, 1, 3
 *             and 33 rows (and 65537 rows of 7: the dispatch's second dimension), strided rows
 *             at offsets; 1e-5 relative.
 *   ew        add, add_bias (rows of 7, 3 and 1000: no power of two), scale, softcap, swiglu
 *             (model_swiglu_ref), geglu, over 1, 63, 64, 65 and 100003 elements (and one run
 *             past 65535 workgroups); 1e-6 relative + 1e-7; soft-caps near 0 included. GEGLU
 *             is held to the CPU's F16-table version (model_geglu_ref: input and GELU rounded
 *             to F16) within one F16 ulp of the GELU (the shader's tanh is an ulp from
 *             tanhf's); its largest difference is printed.
 *   rope      modes 0 (adjacent pairs) and 1 (neox), n_rot < and == head_dim, 1 and 3 heads,
 *             head_dim 64, 80, 128, positions 0 .. 32767 (several entries), angles from
 *             model_rope_angles (with and without frequency factors) and model_rope_angles_yarn,
 *             against model_rope_apply_ref; 1e-6 relative + 1e-7 (dims past n_rot unchanged).
 *   gather    rows picked by index, exact.
 *   kv_store  the step's K and V into F32 and F16 caches (position p in cell p % cells, V
 *             transposed), exact (F16: quant_f32_to_f16's rounding); the cells it must not touch
 *             unchanged.
 *   attn      on the cache kv_store wrote: causal, sliding windows over a ring of cells smaller
 *             than the positions, non-causal, soft-capped scores, sinks, GQA 1, 2, 4, head dims
 *             64, 80, 128, 256 (and one with a smaller V head), several sequences interleaved in
 *             one batch, positions that wrap the ring; against a double-precision softmax over
 *             the positions each entry sees (q, K and V rounded to F16 first with an F16 cache);
 *             1e-4 of the largest |V| the entry sees, plus, with an F16 cache, half an F16 ulp
 *             of each probability times its |V| (the CPU rounds the probabilities to F16 before
 *             they weight V; a shader may or may not).
 *
 * Every failure prints its case and index. Skips (77) when there is no usable Vulkan device. */
#include "gpu/gpu.h"
#include "gpu/gpu_vk.h"
#include "model/model.h"
#include "quant/quant.h"
#include "test.h"

#include <stdint.h>

static int n_cases, n_failed_cases;

/* ---- running a shader and comparing ---- */

/* gpu_ctx_run's dispatch: `groups` workgroups as x (up to 65535) by y */
static bool run(const char *what, const char *pipe, gpu_debug_buf *bufs, int n_bufs, const void *pc,
                uint32_t pc_bytes, uint64_t groups) {
    const uint64_t gx = groups < 65535 ? groups : 65535, gy = (groups + gx - 1) / gx;
    shimmy_error err = {0};
    const shimmy_status st =
        gpu_debug_run(pipe, bufs, n_bufs, pc, pc_bytes, (uint32_t)gx, (uint32_t)gy, 1, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s: %s", what, shimmy_status_name(st), err.message);
    return st == SHIMMY_OK;
}

/* A case's comparisons: counts the bad ones and prints the first few. */
typedef struct cmp {
    const char *what;
    int bad;
    double max_err; /* largest |got - want| / tol seen */
} cmp;

static void cmp_one(cmp *c, const char *where, long long idx, double got, double want, double tol) {
    test_checks++;
    const double e = fabs(got - want);
    if (tol > 0 && e / tol > c->max_err) c->max_err = e / tol;
    if (e <= tol) return; /* NaN fails */
    test_failures++;
    if (c->bad++ < 8)
        fprintf(stderr, "FAIL %s: %s %lld: got %.9g want %.9g (|err| %.3g, tol %.3g)\n", c->what,
                where, idx, got, want, e, tol);
}

static void cmp_done(cmp *c) {
    n_cases++;
    if (getenv("SHIMMY_TEST_VERBOSE")) /* the margins */
        fprintf(stderr, "%s: largest |err| / tol %.3g\n", c->what, c->max_err);
    if (c->bad) {
        n_failed_cases++;
        fprintf(stderr, "FAIL %s: %d wrong\n", c->what, c->bad);
    }
}

static float *randn(test_rng *rng, int64_t n, double scale) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(scale * test_rng_normal(rng));
    return v;
}

/* ---- rms_norm ---- */

typedef struct rms_pc {
    uint32_t n, rows, x_off, x_stride, w_off, o_off, o_stride, has_w;
    float eps;
} rms_pc;

static void rms_case(test_rng *rng, uint32_t n, uint32_t rows, bool has_w, bool strided) {
    char what[128];
    snprintf(what, sizeof what, "rms_norm n %u rows %u%s%s", n, rows, has_w ? " weight" : "",
             strided ? " strided" : "");
    rms_pc pc = {.n = n,
                 .rows = rows,
                 .x_off = strided ? 5 : 0,
                 .x_stride = strided ? n + 3 : n,
                 .w_off = strided ? 3 : 0,
                 .o_off = strided ? 2 : 0,
                 .o_stride = strided ? n + 1 : n,
                 .has_w = has_w,
                 .eps = 1e-6f};
    const int64_t nx = pc.x_off + (int64_t)rows * pc.x_stride;
    const int64_t no = pc.o_off + (int64_t)rows * pc.o_stride, nw = pc.w_off + n;
    float *x = randn(rng, nx, 1.0), *w = randn(rng, nw, 1.0), *o = malloc((size_t)no * 4);
    float *want = malloc((size_t)n * 4);
    for (uint32_t r = 0; r < rows; r++) /* rows of different magnitudes */
        for (uint32_t i = 0; i < n; i++) x[pc.x_off + r * pc.x_stride + i] *= (float)(1 + r % 5);
    for (int64_t i = 0; i < no; i++) o[i] = -7.0f;
    gpu_debug_buf b[3] = {
        {x, (size_t)nx * 4, false}, {w, (size_t)nw * 4, false}, {o, (size_t)no * 4, true}};
    cmp c = {.what = what};
    if (run(what, "rms_norm", b, 3, &pc, sizeof pc, rows)) {
        for (uint32_t r = 0; r < rows; r++) {
            model_rms_norm_ref(x + pc.x_off + r * pc.x_stride, has_w ? w + pc.w_off : NULL, want, n,
                               pc.eps);
            for (uint32_t i = 0; i < n; i++)
                cmp_one(&c, "element", (long long)r * n + i, o[pc.o_off + r * pc.o_stride + i],
                        want[i], 1e-5 * fabs(want[i]) + 1e-30);
        }
        for (int64_t i = 0; i < no; i++) /* the gaps between strided rows stay */
            if (i < pc.o_off || (i - pc.o_off) % pc.o_stride >= n)
                cmp_one(&c, "untouched", i, o[i], -7.0, 0.0);
    } else {
        c.bad++;
    }
    cmp_done(&c);
    free(x);
    free(w);
    free(o);
    free(want);
}

/* ---- ew ---- */

enum { EW_ADD, EW_ADD_BIAS, EW_SCALE, EW_SOFTCAP, EW_SWIGLU, EW_GEGLU };
static const char *const ew_names[] = {"add", "add_bias", "scale", "softcap", "swiglu", "geglu"};

typedef struct ew_pc {
    uint32_t op, n, a_off, b_off, dim;
    float s;
} ew_pc;

/* ggml's tanh GELU in double, with the shader's (and the CPU's) ends at |10|; 0.5 (1 + tanh z)
 * as 1 / (1 + e^-2z), which even double cannot cancel (near -10 the value is about 1e-37) */

static double geglu_vs_table; /* largest |device - model_geglu_ref| */

static void ew_case(test_rng *rng, uint32_t op, uint32_t n, uint32_t dim, float s, bool offsets) {
    char what[128];
    snprintf(what, sizeof what, "ew %s n %u%s dim %u s %g", ew_names[op], n,
             offsets ? " at offsets" : "", dim, (double)s);
    ew_pc pc = {
        .op = op, .n = n, .a_off = offsets ? 3 : 0, .b_off = offsets ? 6 : 0, .dim = dim, .s = s};
    const double scale = op == EW_SOFTCAP ? 3.0 * s : op >= EW_SWIGLU ? 4.0 : 1.0;
    const int64_t na = pc.a_off + (int64_t)n;
    const int64_t nb = pc.b_off + (op == EW_ADD_BIAS ? (int64_t)dim : (int64_t)n);
    float *a = randn(rng, na, scale), *b = randn(rng, nb, 1.0), *got = malloc((size_t)na * 4);
    /* the ends: zeros, tiny values (softcap near 0), GELU's |10| limits */
    if (n > 8) {
        a[pc.a_off + 0] = 0.0f;
        a[pc.a_off + 1] = 1e-4f;
        a[pc.a_off + 2] = -3e-3f;
        a[pc.a_off + 3] = -10.0f;
        a[pc.a_off + 4] = 10.0f;
        a[pc.a_off + 5] = -9.99f;
        a[pc.a_off + 6] = 9.99f;
    }
    memcpy(got, a, (size_t)na * 4);
    float *want = malloc((size_t)n * 4), *table = NULL;
    memcpy(want, a + pc.a_off, (size_t)n * 4);
    switch (op) {
    case EW_ADD:
        for (uint32_t i = 0; i < n; i++) want[i] += b[pc.b_off + i];
        break;
    case EW_ADD_BIAS:
        for (uint32_t i = 0; i < n; i++) want[i] += b[pc.b_off + i % dim];
        break;
    case EW_SCALE:
        for (uint32_t i = 0; i < n; i++) want[i] *= s;
        break;
    case EW_SOFTCAP: /* model_op_logits' soft-cap */
        for (uint32_t i = 0; i < n; i++) want[i] = s * tanhf(want[i] * (1.0f / s));
        break;
    case EW_SWIGLU: model_swiglu_ref(want, b + pc.b_off, n); break;
    default:
        table = malloc((size_t)n * 4);
        memcpy(table, want, (size_t)n * 4);
        model_geglu_ref(table, b + pc.b_off, n);
        break;
    }
    gpu_debug_buf bufs[2] = {{got, (size_t)na * 4, true}, {b, (size_t)nb * 4, false}};
    cmp c = {.what = what};
    if (run(what, "ew", bufs, 2, &pc, sizeof pc, ((uint64_t)n + 63) / 64)) {
        for (int64_t i = 0; i < pc.a_off; i++) cmp_one(&c, "untouched", i, got[i], a[i], 0.0);
        for (uint32_t i = 0; i < n; i++) {
            const double g = got[pc.a_off + i];
            if (op == EW_GEGLU) {
                /* the CPU's F16 table: input and GELU rounded to F16; the shader's tanh is an
                 * ulp from tanhf's, which can move a GELU across an F16 rounding boundary:
                 * one F16 ulp of the GELU times |u| */
                const double u = b[pc.b_off + i];
                const double ge = fabs(table[i] / (u != 0.0 ? u : 1.0));
                const double ulp = fmax(ldexp(1.0, ilogb(ge + 1e-30) - 10), ldexp(1.0, -24));
                cmp_one(&c, "element", i, g, table[i], ulp * fabs(u) + 1e-30);
                if (fabs(g - table[i]) > geglu_vs_table) geglu_vs_table = fabs(g - table[i]);
            } else {
                cmp_one(&c, "element", i, g, want[i], 1e-6 * fabs(want[i]) + 1e-7);
            }
        }
    } else {
        c.bad++;
    }
    cmp_done(&c);
    free(a);
    free(b);
    free(got);
    free(want);
    free(table);
}

/* ---- rope ---- */

typedef struct rope_pc {
    uint32_t x_off, cs_off, rows, n_head, head_dim, n_rot, mode, cs_stride, x_stride;
} rope_pc;

typedef enum { ANG_PLAIN, ANG_FREQ, ANG_YARN } angles_kind;
static const char *const ang_names[] = {"plain", "freq_factors", "yarn"};

static void rope_case(test_rng *rng, uint32_t mode, uint32_t n_head, uint32_t head_dim,
                      uint32_t n_rot, angles_kind ang, bool offsets) {
    static const int32_t positions[] = {0, 1, 2, 17, 63, 64, 1000, 4095, 32767};
    const uint32_t rows = sizeof positions / sizeof positions[0];
    char what[160];
    snprintf(what, sizeof what, "rope mode %u n_head %u head_dim %u n_rot %u angles %s%s", mode,
             n_head, head_dim, n_rot, ang_names[ang], offsets ? " at offsets" : "");
    /* rows of n_head heads, inside a wider row when offsets (q of a fused qkv row) */
    rope_pc pc = {.x_off = offsets ? 9 : 0,
                  .cs_off = offsets ? 4 : 0,
                  .rows = rows,
                  .n_head = n_head,
                  .head_dim = head_dim,
                  .n_rot = n_rot,
                  .mode = mode,
                  .cs_stride = head_dim,
                  .x_stride = n_head * head_dim + (offsets ? 2 * head_dim : 0)};
    const int64_t nx = pc.x_off + (int64_t)rows * pc.x_stride;
    const int64_t ncs = pc.cs_off + (int64_t)rows * pc.cs_stride;
    float *x = randn(rng, nx, 1.0), *got = malloc((size_t)nx * 4), *cs = malloc((size_t)ncs * 4);
    float ff[256];
    for (uint32_t i = 0; i < n_rot / 2; i++) ff[i] = (float)(1.0 + 40.0 * test_rng_uniform(rng));
    for (int64_t i = 0; i < ncs; i++) cs[i] = NAN; /* the row's tail past n_rot is unused */
    float corr[2];
    model_yarn_corr_dims((int32_t)n_rot, 4096, 10000.0f, 32.0f, 1.0f, corr);
    for (uint32_t t = 0; t < rows; t++) {
        float *row = cs + pc.cs_off + t * pc.cs_stride;
        if (ang == ANG_YARN)
            model_rope_angles_yarn(row, (int32_t)n_rot, positions[t], 10000.0f, 0.25f, NULL, 1.0f,
                                   corr, 1.0f);
        else
            model_rope_angles(row, (int32_t)n_rot, positions[t], 10000.0f, 1.0f,
                              ang == ANG_FREQ ? ff : NULL);
    }
    memcpy(got, x, (size_t)nx * 4);
    gpu_debug_buf b[2] = {{got, (size_t)nx * 4, true}, {cs, (size_t)ncs * 4, false}};
    cmp c = {.what = what};
    const uint64_t items = (uint64_t)rows * n_head * (n_rot / 2);
    if (run(what, "rope", b, 2, &pc, sizeof pc, (items + 63) / 64)) {
        float *want = malloc((size_t)nx * 4);
        memcpy(want, x, (size_t)nx * 4);
        for (uint32_t t = 0; t < rows; t++)
            model_rope_apply_ref(want + pc.x_off + t * pc.x_stride, (int32_t)n_head,
                                 (int32_t)head_dim, (int32_t)n_rot,
                                 cs + pc.cs_off + t * pc.cs_stride,
                                 mode ? MODEL_ROPE_NEOX : MODEL_ROPE_NORM);
        for (int64_t i = 0; i < nx; i++) /* every element: the rest must stay as it was */
            cmp_one(&c, "element", i, got[i], want[i], 1e-6 * fabs(want[i]) + 1e-7);
        free(want);
    } else {
        c.bad++;
    }
    cmp_done(&c);
    free(x);
    free(got);
    free(cs);
}

/* ---- gather ---- */

typedef struct gather_pc {
    uint32_t n, rows, src_off, dst_off, idx_off;
} gather_pc;

static void gather_case(test_rng *rng, uint32_t n, uint32_t n_src, uint32_t rows) {
    char what[96];
    snprintf(what, sizeof what, "gather n %u from %u rows to %u", n, n_src, rows);
    gather_pc pc = {.n = n, .rows = rows, .src_off = 3, .dst_off = 1, .idx_off = 5};
    const int64_t ns = pc.src_off + (int64_t)n_src * n, nd = pc.dst_off + (int64_t)rows * n;
    float *src = randn(rng, ns, 1.0), *dst = malloc((size_t)nd * 4);
    int32_t *idx = malloc((size_t)(pc.idx_off + rows) * 4);
    for (uint32_t i = 0; i < pc.idx_off; i++) idx[i] = -1; /* before the offset: never read */
    for (uint32_t j = 0; j < rows; j++)
        idx[pc.idx_off + j] = j == 0 ? (int32_t)n_src - 1 : (int32_t)(test_rng_u64(rng) % n_src);
    for (int64_t i = 0; i < nd; i++) dst[i] = -7.0f;
    gpu_debug_buf b[3] = {{src, (size_t)ns * 4, false},
                          {dst, (size_t)nd * 4, true},
                          {idx, (size_t)(pc.idx_off + rows) * 4, false}};
    cmp c = {.what = what};
    if (run(what, "gather", b, 3, &pc, sizeof pc, ((uint64_t)n * rows + 63) / 64)) {
        for (int64_t i = 0; i < pc.dst_off; i++) cmp_one(&c, "untouched", i, dst[i], -7.0, 0.0);
        for (uint32_t j = 0; j < rows; j++)
            for (uint32_t e = 0; e < n; e++)
                cmp_one(&c, "element", (long long)j * n + e, dst[pc.dst_off + j * n + e],
                        src[pc.src_off + (int64_t)idx[pc.idx_off + j] * n + e], 0.0);
    } else {
        c.bad++;
    }
    cmp_done(&c);
    free(src);
    free(dst);
    free(idx);
}

/* ---- kv_store + attn ---- */

typedef struct kv_pc {
    uint32_t rows, k_dim, v_dim, cells, ks_off, vs_off, kc_off, vc_off, meta_off;
} kv_pc;

typedef struct attn_pc {
    uint32_t n_tok, n_head, gqa, hd, hdv, q_off, q_stride, o_off, o_stride, kc_off, vc_off, cells,
        k_dim, v_dim, meta_off, window, non_causal, has_sink, sink_off;
    float scale, softcap;
} attn_pc;

#define MAX_SEQ 4
typedef struct attn_cfg {
    const char *name;
    int32_t n_head, gqa, hd, hdv;
    int32_t cells, window;
    bool non_causal, sinks;
    float softcap;
    double q_scale; /* spread of q: peakier softmaxes */
    int32_t n_seq;
    int32_t n_past[MAX_SEQ], n_new[MAX_SEQ];
} attn_cfg;

static float f16_round(float x) {
    return quant_f16_to_f32(quant_f32_to_f16(x));
}

/* An F16 ulp at p >= 0 (p < 1: the spacing of the F16 values around it) */
static double ulp_f16(double p) {
    if (p < 0x1p-14) return 0x1p-24; /* subnormal */
    int e;
    frexp(p, &e); /* p = m 2^e, m in [0.5, 1) */
    return ldexp(1.0, e - 11);
}

/* One step: history already in the cache (host-written), the step's entries (the sequences'
 * next positions, interleaved) stored by kv_store, then attention over them. */
static void attn_case(test_rng *rng, const attn_cfg *cfg, bool f16) {
    char what[256];
    int len = snprintf(what, sizeof what,
                       "attn %s %s n_head %d gqa %d hd %d hdv %d cells %d window %d%s%s softcap "
                       "%g seqs",
                       cfg->name, f16 ? "f16" : "f32", cfg->n_head, cfg->gqa, cfg->hd, cfg->hdv,
                       cfg->cells, cfg->window, cfg->non_causal ? " non-causal" : "",
                       cfg->sinks ? " sinks" : "", (double)cfg->softcap);
    for (int32_t s = 0; s < cfg->n_seq && len > 0 && len < (int)sizeof what; s++)
        len += snprintf(what + len, sizeof what - (size_t)len, " %d+%d", cfg->n_past[s],
                        cfg->n_new[s]);
    const int32_t n_head = cfg->n_head, n_kv = n_head / cfg->gqa, hd = cfg->hd, hdv = cfg->hdv;
    const int32_t k_dim = n_kv * hd, v_dim = n_kv * hdv, cells = cfg->cells;
    const size_t elt = f16 ? 2 : 4;
    int32_t seq_end[MAX_SEQ], n_tok = 0;
    for (int32_t s = 0; s < cfg->n_seq; s++) {
        seq_end[s] = cfg->n_past[s] + cfg->n_new[s];
        n_tok += cfg->n_new[s];
        /* the case itself must fit its ring: what an entry sees was not overwritten */
        const int32_t need =
            cfg->window > 0 && !cfg->non_causal ? cfg->window + cfg->n_new[s] - 1 : seq_end[s];
        CHECK_MSG(cells >= need || (cfg->window > 0 && seq_end[s] <= cells),
                  "%s: a ring of %d cells cannot hold what the entries see", what, cells);
    }
    /* K (seq, pos, k_dim) and V (seq, pos, v_dim) of every position, rounded to the cache's
     * type when F16 */
    int32_t max_end = 0;
    for (int32_t s = 0; s < cfg->n_seq; s++) max_end = seq_end[s] > max_end ? seq_end[s] : max_end;
    const int64_t per_seq = (int64_t)max_end;
    float *K = randn(rng, (int64_t)cfg->n_seq * per_seq * k_dim, 1.0);
    float *V = randn(rng, (int64_t)cfg->n_seq * per_seq * v_dim, 1.0);
    float *Kr = malloc((size_t)(cfg->n_seq * per_seq * k_dim) * 4);
    float *Vr = malloc((size_t)(cfg->n_seq * per_seq * v_dim) * 4);
    for (int64_t i = 0; i < cfg->n_seq * per_seq * k_dim; i++) Kr[i] = f16 ? f16_round(K[i]) : K[i];
    for (int64_t i = 0; i < cfg->n_seq * per_seq * v_dim; i++) Vr[i] = f16 ? f16_round(V[i]) : V[i];
#define KAT(arr, s, p) ((arr) + ((int64_t)(s)*per_seq + (p)) * k_dim)
#define VAT(arr, s, p) ((arr) + ((int64_t)(s)*per_seq + (p)) * v_dim)
    /* the step's entries: round robin over the sequences with entries left */
    int32_t tok_seq[128], tok_pos[128], done[MAX_SEQ] = {0};
    for (int32_t t = 0; t < n_tok;) {
        for (int32_t s = 0; s < cfg->n_seq; s++) {
            if (done[s] < cfg->n_new[s]) {
                tok_seq[t] = s;
                tok_pos[t] = cfg->n_past[s] + done[s]++;
                t++;
            }
        }
    }
    /* the caches at offsets; history in place (later positions overwrite earlier cells),
     * cells never written NaN; want = the cache after the step */
    const uint32_t kc_off = 6, vc_off = 10;
    const int64_t nkc = kc_off + (int64_t)cfg->n_seq * cells * k_dim;
    const int64_t nvc = vc_off + (int64_t)cfg->n_seq * v_dim * cells;
    unsigned char *kc = malloc((size_t)nkc * elt), *vc = malloc((size_t)nvc * elt);
    unsigned char *kc_want = malloc((size_t)nkc * elt), *vc_want = malloc((size_t)nvc * elt);
    const uint16_t nan16 = 0x7E00;
    const float nan32 = NAN;
    for (int64_t i = 0; i < nkc; i++)
        memcpy(kc + i * elt, f16 ? (const void *)&nan16 : &nan32, elt);
    for (int64_t i = 0; i < nvc; i++)
        memcpy(vc + i * elt, f16 ? (const void *)&nan16 : &nan32, elt);
    unsigned char *cache[2] = {kc, kc_want}, *vcache[2] = {vc, vc_want};
    memcpy(kc_want, kc, (size_t)nkc * elt);
    memcpy(vc_want, vc, (size_t)nvc * elt);
    for (int pass = 0; pass < 2; pass++) { /* pass 0: history; pass 1: history and the step */
        for (int32_t s = 0; s < cfg->n_seq; s++) {
            const int32_t end = pass ? seq_end[s] : cfg->n_past[s];
            for (int32_t p = 0; p < end; p++) {
                const int32_t cell = p % cells;
                for (int32_t d = 0; d < k_dim; d++) {
                    const float v = KAT(K, s, p)[d];
                    const uint16_t h = quant_f32_to_f16(v);
                    memcpy(cache[pass] +
                               ((size_t)kc_off + ((size_t)s * cells + cell) * k_dim + d) * elt,
                           f16 ? (const void *)&h : &v, elt);
                }
                for (int32_t d = 0; d < v_dim; d++) {
                    const float v = VAT(V, s, p)[d];
                    const uint16_t h = quant_f32_to_f16(v);
                    memcpy(vcache[pass] +
                               ((size_t)vc_off + ((size_t)s * v_dim + d) * cells + cell) * elt,
                           f16 ? (const void *)&h : &v, elt);
                }
            }
        }
    }
    /* the step's K and V rows (at offsets), meta (pos, seq, seq_end per entry) */
    const uint32_t ks_off = 2, vs_off = 7, meta_off = 3;
    float *ks = malloc((size_t)(ks_off + n_tok * k_dim) * 4);
    float *vs = malloc((size_t)(vs_off + n_tok * v_dim) * 4);
    int32_t *meta = malloc((size_t)(meta_off + 3 * n_tok) * 4);
    for (uint32_t i = 0; i < meta_off; i++) meta[i] = -1;
    for (uint32_t i = 0; i < ks_off; i++) ks[i] = NAN;
    for (uint32_t i = 0; i < vs_off; i++) vs[i] = NAN;
    for (int32_t t = 0; t < n_tok; t++) {
        memcpy(ks + ks_off + t * k_dim, KAT(K, tok_seq[t], tok_pos[t]), (size_t)k_dim * 4);
        memcpy(vs + vs_off + t * v_dim, VAT(V, tok_seq[t], tok_pos[t]), (size_t)v_dim * 4);
        meta[meta_off + 3 * t] = tok_pos[t];
        meta[meta_off + 3 * t + 1] = tok_seq[t];
        meta[meta_off + 3 * t + 2] = seq_end[tok_seq[t]];
    }
    cmp c = {.what = what};
    kv_pc kp = {.rows = (uint32_t)n_tok,
                .k_dim = (uint32_t)k_dim,
                .v_dim = (uint32_t)v_dim,
                .cells = (uint32_t)cells,
                .ks_off = ks_off,
                .vs_off = vs_off,
                .kc_off = kc_off,
                .vc_off = vc_off,
                .meta_off = meta_off};
    gpu_debug_buf kb[5] = {{ks, (size_t)(ks_off + n_tok * k_dim) * 4, false},
                           {vs, (size_t)(vs_off + n_tok * v_dim) * 4, false},
                           {kc, (size_t)nkc * elt, true},
                           {vc, (size_t)nvc * elt, true},
                           {meta, (size_t)(meta_off + 3 * n_tok) * 4, false}};
    const uint64_t items = (uint64_t)n_tok * (uint64_t)(k_dim > v_dim ? k_dim : v_dim);
    if (!run(what, f16 ? "kv_store_f16" : "kv_store_f32", kb, 5, &kp, sizeof kp,
             (items + 63) / 64)) {
        c.bad++;
        goto done;
    }
    /* the caches bit for bit (NaN cells compare as bits too) */
    for (int64_t i = 0; i < nkc; i++) {
        test_checks++;
        if (memcmp(kc + i * elt, kc_want + i * elt, elt)) {
            test_failures++;
            if (c.bad++ < 8)
                fprintf(stderr, "FAIL %s: kv_store K cache element %lld differs\n", what,
                        (long long)i);
        }
    }
    for (int64_t i = 0; i < nvc; i++) {
        test_checks++;
        if (memcmp(vc + i * elt, vc_want + i * elt, elt)) {
            test_failures++;
            if (c.bad++ < 8)
                fprintf(stderr, "FAIL %s: kv_store V cache element %lld differs\n", what,
                        (long long)i);
        }
    }
    {
        attn_pc ap = {.n_tok = (uint32_t)n_tok,
                      .n_head = (uint32_t)n_head,
                      .gqa = (uint32_t)cfg->gqa,
                      .hd = (uint32_t)hd,
                      .hdv = (uint32_t)hdv,
                      .q_off = 1,
                      .q_stride = (uint32_t)(n_head * hd + 3),
                      .o_off = 4,
                      .o_stride = (uint32_t)(n_head * hdv + 5),
                      .kc_off = kc_off,
                      .vc_off = vc_off,
                      .cells = (uint32_t)cells,
                      .k_dim = (uint32_t)k_dim,
                      .v_dim = (uint32_t)v_dim,
                      .meta_off = meta_off,
                      .window = (uint32_t)cfg->window,
                      .non_causal = cfg->non_causal,
                      .has_sink = cfg->sinks,
                      .sink_off = 2,
                      .scale = 1.0f / sqrtf((float)hd),
                      .softcap = cfg->softcap};
        const int64_t nq = ap.q_off + (int64_t)n_tok * ap.q_stride;
        const int64_t no = ap.o_off + (int64_t)n_tok * ap.o_stride;
        float *q = randn(rng, nq, cfg->q_scale), *o = malloc((size_t)no * 4);
        float *sinks = randn(rng, ap.sink_off + n_head, 2.0);
        for (int64_t i = 0; i < no; i++) o[i] = -7.0f;
        gpu_debug_buf ab[6] = {{q, (size_t)nq * 4, false},
                               {kc, (size_t)nkc * elt, false},
                               {vc, (size_t)nvc * elt, false},
                               {o, (size_t)no * 4, true},
                               {meta, (size_t)(meta_off + 3 * n_tok) * 4, false},
                               {sinks, (size_t)(ap.sink_off + n_head) * 4, false}};
        if (run(what, f16 ? "attn_f16" : "attn_f32", ab, 6, &ap, sizeof ap,
                (uint64_t)n_tok * (uint64_t)n_head)) {
            double *sc = malloc((size_t)max_end * sizeof *sc), *acc = malloc((size_t)hdv * 8);
            double *slack = malloc((size_t)hdv * 8);
            double qd[512];
            char where[96];
            for (int32_t t = 0; t < n_tok; t++) {
                const int32_t s = tok_seq[t], pos = tok_pos[t];
                const int32_t last = cfg->non_causal ? seq_end[s] - 1 : pos;
                const int32_t first =
                    !cfg->non_causal && cfg->window > 0 && pos - cfg->window + 1 > 0
                        ? pos - cfg->window + 1
                        : 0;
                for (int32_t h = 0; h < n_head; h++) {
                    const int32_t kvh = h / cfg->gqa;
                    const float *qh = q + ap.q_off + t * ap.q_stride + h * hd;
                    for (int32_t d = 0; d < hd; d++) qd[d] = f16 ? f16_round(qh[d]) : qh[d];
                    double mx = cfg->sinks ? sinks[ap.sink_off + h] : -INFINITY, vmax = 0.0;
                    for (int32_t p = first; p <= last; p++) {
                        const float *kr = KAT(Kr, s, p) + kvh * hd;
                        double dot = 0.0;
                        for (int32_t d = 0; d < hd; d++) dot += qd[d] * kr[d];
                        dot *= (double)ap.scale;
                        if (cfg->softcap > 0) dot = cfg->softcap * tanh(dot / cfg->softcap);
                        sc[p] = dot;
                        if (dot > mx) mx = dot;
                        for (int32_t d = 0; d < hdv; d++)
                            if (fabs(VAT(Vr, s, p)[kvh * hdv + d]) > vmax)
                                vmax = fabs(VAT(Vr, s, p)[kvh * hdv + d]);
                    }
                    double sum = cfg->sinks ? exp(sinks[ap.sink_off + h] - mx) : 0.0;
                    for (int32_t p = first; p <= last; p++) sum += exp(sc[p] - mx);
                    for (int32_t d = 0; d < hdv; d++) acc[d] = slack[d] = 0.0;
                    for (int32_t p = first; p <= last; p++) {
                        const double pr = exp(sc[p] - mx) / sum, half_ulp = 0.5 * ulp_f16(pr);
                        for (int32_t d = 0; d < hdv; d++) {
                            acc[d] += pr * VAT(Vr, s, p)[kvh * hdv + d];
                            if (f16) slack[d] += half_ulp * fabs(VAT(Vr, s, p)[kvh * hdv + d]);
                        }
                    }
                    snprintf(where, sizeof where, "entry %d (seq %d pos %d) head %d dim", t, s, pos,
                             h);
                    for (int32_t d = 0; d < hdv; d++)
                        cmp_one(&c, where, d, o[ap.o_off + t * ap.o_stride + h * hdv + d], acc[d],
                                1e-4 * vmax + slack[d]);
                }
            }
            for (int64_t i = 0; i < no; i++) /* the gaps between output rows stay */
                if (i < ap.o_off || (i - ap.o_off) % ap.o_stride >= (uint32_t)(n_head * hdv))
                    cmp_one(&c, "untouched output", i, o[i], -7.0, 0.0);
            free(sc);
            free(acc);
            free(slack);
        } else {
            c.bad++;
        }
        free(q);
        free(o);
        free(sinks);
    }
done:
    cmp_done(&c);
#undef KAT
#undef VAT
    free(K);
    free(V);
    free(Kr);
    free(Vr);
    free(kc);
    free(vc);
    free(kc_want);
    free(vc_want);
    free(ks);
    free(vs);
    free(meta);
}

int main(void) {
    shimmy_error err = {0};
    gpu_device_info devs[16];
    const int32_t n_dev = gpu_list(devs, 16, &err);
    int usable = -1;
    for (int32_t i = 0; i < n_dev && i < 16 && usable < 0; i++)
        if (devs[i].usable) usable = i;
    if (usable < 0) {
        char why[700];
        snprintf(why, sizeof why, "gpu/ops: no usable Vulkan device (%s)",
                 n_dev > 0        ? devs[0].why
                 : err.message[0] ? err.message
                                  : "gpu_list found none");
        test_skip(why);
    }
    fprintf(stderr, "gpu/ops: %d Vulkan device(s), the first usable: %s\n", (int)n_dev,
            devs[usable].name);
    test_rng rng;
    test_rng_seed(&rng, 0x0B5EED5ull);
    int before = n_failed_cases;

    static const uint32_t rms_n[] = {1, 7, 64, 1000, 4097}, rms_rows[] = {1, 3, 33};
    for (size_t i = 0; i < sizeof rms_n / sizeof rms_n[0]; i++)
        for (size_t j = 0; j < sizeof rms_rows / sizeof rms_rows[0]; j++)
            for (int w = 0; w < 2; w++) rms_case(&rng, rms_n[i], rms_rows[j], w, (i + j + w) % 2);
    rms_case(&rng, 7, 65537, true, false); /* rows past 65535 groups: the y dimension */
    fprintf(stderr, "gpu/ops: rms_norm %s\n", n_failed_cases == before ? "ok" : "FAILED");

    before = n_failed_cases;
    static const uint32_t ew_n[] = {1, 63, 64, 65, 100003};
    for (size_t i = 0; i < sizeof ew_n / sizeof ew_n[0]; i++) {
        const uint32_t n = ew_n[i];
        const bool off = i % 2;
        ew_case(&rng, EW_ADD, n, 0, 0.0f, off);
        ew_case(&rng, EW_ADD_BIAS, n, 7, 0.0f, off);
        ew_case(&rng, EW_ADD_BIAS, n, 3, 0.0f, !off);
        if (n >= 1000) ew_case(&rng, EW_ADD_BIAS, n, 1000, 0.0f, off);
        ew_case(&rng, EW_SCALE, n, 0, 0.37f, off);
        ew_case(&rng, EW_SCALE, n, 0, -1.5f, !off);
        ew_case(&rng, EW_SOFTCAP, n, 0, 30.0f, off);
        ew_case(&rng, EW_SOFTCAP, n, 0, 50.0f, !off);
        ew_case(&rng, EW_SWIGLU, n, 0, 0.0f, off);
        ew_case(&rng, EW_GEGLU, n, 0, 0.0f, off);
    }
    ew_case(&rng, EW_ADD_BIAS, 64u * 65535u + 4321u, 7, 0.0f, true); /* the y dimension */
    fprintf(stderr, "gpu/ops: ew %s (geglu: largest difference from the CPU's F16 table %.3g)\n",
            n_failed_cases == before ? "ok" : "FAILED", geglu_vs_table);

    before = n_failed_cases;
    static const uint32_t rope_hd[] = {64, 80, 128}, rope_heads[] = {1, 3};
    int k = 0;
    for (uint32_t mode = 0; mode < 2; mode++)
        for (size_t i = 0; i < sizeof rope_hd / sizeof rope_hd[0]; i++)
            for (size_t j = 0; j < sizeof rope_heads / sizeof rope_heads[0]; j++)
                for (int full = 0; full < 2; full++) {
                    const uint32_t hd = rope_hd[i], n_rot = full ? hd : (hd == 80 ? 32 : hd / 2);
                    rope_case(&rng, mode, rope_heads[j], hd, n_rot, (angles_kind)(k % 3), k % 2);
                    k++;
                }
    fprintf(stderr, "gpu/ops: rope %s\n", n_failed_cases == before ? "ok" : "FAILED");

    before = n_failed_cases;
    gather_case(&rng, 1, 1, 1);
    gather_case(&rng, 7, 5, 3);
    gather_case(&rng, 1000, 33, 17);
    gather_case(&rng, 4097, 40, 1100); /* past 65535 groups */
    fprintf(stderr, "gpu/ops: gather %s\n", n_failed_cases == before ? "ok" : "FAILED");

    before = n_failed_cases;
    static const int32_t hds[] = {64, 80, 128, 256}, gqas[] = {1, 2, 4};
    for (size_t i = 0; i < sizeof hds / sizeof hds[0]; i++)
        for (size_t j = 0; j < sizeof gqas / sizeof gqas[0]; j++) {
            /* causal, two sequences with history (more than one chunk of 64 positions) */
            const attn_cfg cfg = {.name = "causal",
                                  .n_head = 2 * gqas[j],
                                  .gqa = gqas[j],
                                  .hd = hds[i],
                                  .hdv = hds[i],
                                  .cells = 160,
                                  .q_scale = 1.0 + (double)j,
                                  .n_seq = 2,
                                  .n_past = {70, 3},
                                  .n_new = {2, 3}};
            for (int f = 0; f < 2; f++) attn_case(&rng, &cfg, f);
        }
    const attn_cfg special[] = {
        {.name = "prompt",
         .n_head = 4,
         .gqa = 2,
         .hd = 64,
         .hdv = 64,
         .cells = 64,
         .q_scale = 1,
         .n_seq = 1,
         .n_past = {0},
         .n_new = {9}},
        {.name = "batch",
         .n_head = 8,
         .gqa = 4,
         .hd = 80,
         .hdv = 80,
         .cells = 140,
         .q_scale = 2,
         .n_seq = 3,
         .n_past = {0, 10, 129},
         .n_new = {3, 1, 4}},
        {.name = "window-ring",
         .n_head = 4,
         .gqa = 2,
         .hd = 256,
         .hdv = 256,
         .cells = 40,
         .window = 32,
         .q_scale = 1,
         .n_seq = 2,
         .n_past = {100, 37},
         .n_new = {4, 2}},
        {.name = "window-short",
         .n_head = 3,
         .gqa = 1,
         .hd = 128,
         .hdv = 128,
         .cells = 56,
         .window = 50,
         .q_scale = 1,
         .n_seq = 2,
         .n_past = {5, 200},
         .n_new = {3, 1}},
        {.name = "window-long",
         .n_head = 2,
         .gqa = 1,
         .hd = 64,
         .hdv = 64,
         .cells = 140,
         .window = 130,
         .q_scale = 1,
         .n_seq = 1,
         .n_past = {333},
         .n_new = {5}},
        {.name = "non-causal",
         .n_head = 2,
         .gqa = 1,
         .hd = 64,
         .hdv = 64,
         .cells = 80,
         .non_causal = true,
         .q_scale = 1,
         .n_seq = 2,
         .n_past = {0, 0},
         .n_new = {9, 70}},
        {.name = "softcap",
         .n_head = 4,
         .gqa = 2,
         .hd = 256,
         .hdv = 256,
         .cells = 64,
         .softcap = 50.0f,
         .q_scale = 30,
         .n_seq = 1,
         .n_past = {40},
         .n_new = {2}},
        {.name = "softcap-small",
         .n_head = 2,
         .gqa = 2,
         .hd = 128,
         .hdv = 128,
         .cells = 100,
         .softcap = 2.0f,
         .q_scale = 5,
         .n_seq = 1,
         .n_past = {90},
         .n_new = {1}},
        {.name = "sinks-window",
         .n_head = 8,
         .gqa = 4,
         .hd = 64,
         .hdv = 64,
         .cells = 24,
         .window = 16,
         .sinks = true,
         .q_scale = 1,
         .n_seq = 2,
         .n_past = {50, 3},
         .n_new = {2, 2}},
        {.name = "sinks",
         .n_head = 4,
         .gqa = 1,
         .hd = 64,
         .hdv = 64,
         .cells = 128,
         .sinks = true,
         .q_scale = 0.1,
         .n_seq = 1,
         .n_past = {0},
         .n_new = {5}},
        {.name = "all",
         .n_head = 2,
         .gqa = 1,
         .hd = 128,
         .hdv = 128,
         .cells = 72,
         .window = 64,
         .sinks = true,
         .softcap = 20.0f,
         .q_scale = 4,
         .n_seq = 1,
         .n_past = {300},
         .n_new = {3}},
        {.name = "v-head",
         .n_head = 4,
         .gqa = 2,
         .hd = 192,
         .hdv = 128,
         .cells = 96,
         .q_scale = 1,
         .n_seq = 2,
         .n_past = {65, 0},
         .n_new = {1, 2}},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        for (int f = 0; f < 2; f++) attn_case(&rng, &special[i], f);
    fprintf(stderr, "gpu/ops: kv_store + attn %s\n", n_failed_cases == before ? "ok" : "FAILED");

    fprintf(stderr, "gpu/ops: %d cases, %d failed\n", n_cases, n_failed_cases);
    return test_finish("gpu/ops");
}
