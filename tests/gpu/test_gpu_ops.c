/* The Vulkan backend's elementwise and row kernels (src/gpu/shaders: rms_norm, ew, rope,
 * gather), each run on its own through gpu_debug_run with the push constants laid out exactly as
 * the shader declares them, against the CPU's scalar reference over odd sizes:
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
 *
 * kv_store and attn are test_gpu_attn.c's, matmul test_gpu_matmul.c's; the running and comparing
 * (gpu_check.h) is shared with test_gpu_attn.c. Every failure prints its case and index. Skips
 * (77) when there is no usable Vulkan device. */
#include "gpu_check.h"
#include "model/model.h"

#include <stdint.h>

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

int main(void) {
    gpu_check_device("gpu/ops");
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

    return gpu_check_finish("gpu/ops");
}
