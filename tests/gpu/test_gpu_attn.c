/* The Vulkan backend's KV-cache store and attention kernels (src/gpu/shaders: kv_store, attn),
 * run on their own through gpu_debug_run with the push constants laid out exactly as the shaders
 * declare them, against the CPU's scalar reference:
 *
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
 * The other kernels are test_gpu_ops.c's, which shares the running and comparing (gpu_check.h).
 * Every failure prints its case and index. Skips (77) when there is no usable Vulkan device. */
#include "gpu_check.h"
#include "quant/quant.h"

#include <stdint.h>

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
    gpu_check_device("gpu/attn");
    /* the state test_gpu_ops.c's seed 0x0B5EED5 reaches after its cases: these draw the inputs
     * they drew when the two were one program */
    test_rng rng;
    test_rng_seed(&rng, 0xE0EF16DC623E0AD0ull);
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
    fprintf(stderr, "gpu/attn: kv_store + attn %s\n", n_failed_cases == 0 ? "ok" : "FAILED");

    return gpu_check_finish("gpu/attn");
}
