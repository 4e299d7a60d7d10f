/*
 * The smaller dense families (phi3, mistral3, smollm3, granite, olmo2) on tiny random F32 models
 * written here with the gguf writer: each is loaded and run (a batch, then single steps, F32
 * cache) and its logits compared at every step with a plain double-precision forward pass of
 * the same weights written in this file from the families' definitions. For each family the
 * same reference with its special mechanism turned off must differ clearly, so that the check
 * can fail. Malformed variants must be refused with an error naming the problem.
 * SHIMMY_TEST_DEVICE (CTest's unit/gpu/arch_dense): the families run on that device (every layer,
 * or the first SHIMMY_TEST_GPU_LAYERS), held to the same reference.
 */
#include "gguf/gguf.h"
#include "gpu/gpu.h"
#include "model/model.h"
#include "test.h"

#include <math.h>
#include <stdbool.h>

enum { E = 32, NH = 4, NKV = 2, HD = 8, NFF = 48, NV = 64, NL = 4, QD = NH * HD, KD = NKV * HD };
enum { N_TOK = 7, N_PROMPT = 5 };

typedef struct spec {
    const char *arch;
    bool neox, fused, post_norm, untied;
    int n_rot;
    float embd_scale, residual_scale, attn_scale, logit_scale, temp_scale, attn_factor;
    int no_rope_step, orig_ctx;
    bool longrope;
    bool sep_qkv;      /* phi3 with attn_q/k/v instead of attn_qkv */
    bool no_finetuned; /* granite: rope.scaling.finetuned false (no rope at all) */
    int n_swa;         /* OLMo 3: window on layers il % 4 < 3, their rope unscaled */
    float base_swa;    /* rope.freq_base_swa, written but unused (as llama.cpp's olmo2) */
    float rope_factor, yarn_log_mul; /* rope.scaling.factor, .yarn_log_multiplier (0: absent) */
    /* malformed variants */
    const char *omit; /* a tensor left out */
    int up_rows;      /* phi3's ffn_up rows instead of 2*NFF (0: right) */
    int factors_len;  /* LongRoPE factor length instead of n_rot/2 (0: right) */
    int expert_count; /* written when > 0 */
    const char *rope_type;
    bool no_logit_scale;
} spec;

typedef struct layer_w {
    float attn_norm[E], ffn_norm[E], q_norm[QD], k_norm[KD], post_a[E], post_f[E];
    float wq[QD * E], wk[KD * E], wv[KD * E], wo[E * QD];
    float wg[NFF * E], wu[NFF * E], wd[E * NFF];
} layer_w;

typedef struct weights {
    float embd[NV * E], out[NV * E], out_norm[E], f_short[HD / 2], f_long[HD / 2];
    layer_w l[NL];
} weights;

static void fill(test_rng *r, float *w, int n, double sd, double mean) {
    for (int i = 0; i < n; i++) w[i] = (float)(mean + sd * test_rng_normal(r));
}

static void make_weights(weights *w, unsigned long long seed) {
    test_rng r;
    test_rng_seed(&r, seed);
    fill(&r, w->embd, NV * E, 0.5, 0);
    fill(&r, w->out, NV * E, 1.0 / sqrt(E), 0);
    fill(&r, w->out_norm, E, 0.1, 1);
    for (int i = 0; i < HD / 2; i++) {
        w->f_short[i] = (float)(1.0 + 0.5 * i + 0.25 * test_rng_uniform(&r));
        w->f_long[i] = (float)(2.0 + 4.0 * i + test_rng_uniform(&r));
    }
    for (int il = 0; il < NL; il++) {
        fill(&r, w->l[il].attn_norm, E, 0.1, 1);
        fill(&r, w->l[il].ffn_norm, E, 0.1, 1);
        fill(&r, w->l[il].q_norm, QD, 0.1, 1);
        fill(&r, w->l[il].k_norm, KD, 0.1, 1);
        fill(&r, w->l[il].post_a, E, 0.1, 1);
        fill(&r, w->l[il].post_f, E, 0.1, 1);
        /* q and k large enough that positions (rope) matter to the scores */
        fill(&r, w->l[il].wq, QD * E, 3.0 / sqrt(E), 0);
        fill(&r, w->l[il].wk, KD * E, 3.0 / sqrt(E), 0);
        fill(&r, w->l[il].wv, KD * E, 1.0 / sqrt(E), 0);
        fill(&r, w->l[il].wo, E * QD, 2.0 / sqrt(QD), 0);
        fill(&r, w->l[il].wg, NFF * E, 1.0 / sqrt(E), 0);
        fill(&r, w->l[il].wu, NFF * E, 1.0 / sqrt(E), 0);
        fill(&r, w->l[il].wd, E * NFF, 2.0 / sqrt(NFF), 0);
    }
}

static void key(gguf_writer *g, const spec *s, const char *suffix, float v, bool is_float) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", s->arch, suffix);
    if (is_float)
        gguf_writer_set_f32(g, k, v);
    else
        gguf_writer_set_u32(g, k, (uint32_t)v);
}

static void tensor(gguf_writer *g, const spec *s, int il, const char *name, int64_t n_in,
                   int64_t n_out, const float *data) {
    char full[96];
    if (il >= 0)
        snprintf(full, sizeof full, "blk.%d.%s", il, name);
    else
        snprintf(full, sizeof full, "%s", name);
    if (s->omit && strcmp(s->omit, full) == 0) return;
    const int64_t ne[2] = {n_in, n_out};
    gguf_writer_add_tensor(g, full, GGUF_T_F32, n_out == 1 ? 1 : 2, ne, data);
}

static bool write_model(const spec *s, const weights *w, const char *path) {
    gguf_writer *g = NULL;
    shimmy_error err;
    if (gguf_writer_new(&g, &err) != SHIMMY_OK) return false;
    gguf_writer_set_str(g, "general.architecture", s->arch);
    key(g, s, "context_length", 4096, false);
    key(g, s, "embedding_length", E, false);
    key(g, s, "block_count", NL, false);
    key(g, s, "feed_forward_length", NFF, false);
    key(g, s, "attention.head_count", NH, false);
    key(g, s, "attention.head_count_kv", NKV, false);
    key(g, s, "attention.layer_norm_rms_epsilon", 1e-5f, true);
    key(g, s, "rope.freq_base", 10000.0f, true);
    key(g, s, "rope.dimension_count", (float)s->n_rot, false);
    if (s->orig_ctx) key(g, s, "rope.scaling.original_context_length", (float)s->orig_ctx, false);
    if (s->attn_factor != 0.0f) key(g, s, "rope.scaling.attn_factor", s->attn_factor, true);
    if (s->expert_count) key(g, s, "expert_count", (float)s->expert_count, false);
    if (s->n_swa) key(g, s, "attention.sliding_window", (float)s->n_swa, false);
    if (s->rope_factor != 0.0f) key(g, s, "rope.scaling.factor", s->rope_factor, true);
    if (s->yarn_log_mul != 0.0f)
        key(g, s, "rope.scaling.yarn_log_multiplier", s->yarn_log_mul, true);
    if (s->n_swa) key(g, s, "rope.freq_base_swa", s->base_swa, true);
    if (s->logit_scale != 0.0f && !s->no_logit_scale)
        key(g, s, "logit_scale", s->logit_scale, true);
    if (s->residual_scale != 0.0f) key(g, s, "residual_scale", s->residual_scale, true);
    if (s->embd_scale != 0.0f) key(g, s, "embedding_scale", s->embd_scale, true);
    if (s->attn_scale != 0.0f) key(g, s, "attention.scale", s->attn_scale, true);
    if (s->temp_scale != 0.0f) key(g, s, "attention.temperature_scale", s->temp_scale, true);
    if (s->no_finetuned) {
        char k[128];
        snprintf(k, sizeof k, "%s.rope.scaling.finetuned", s->arch);
        gguf_writer_set_bool(g, k, false);
    }
    if (s->rope_type) {
        char k[128];
        snprintf(k, sizeof k, "%s.rope.scaling.type", s->arch);
        gguf_writer_set_str(g, k, s->rope_type);
    }
    tensor(g, s, -1, "token_embd.weight", E, NV, w->embd);
    tensor(g, s, -1, "output_norm.weight", E, 1, w->out_norm);
    if (s->untied) tensor(g, s, -1, "output.weight", E, NV, w->out);
    if (s->longrope) {
        const int n = s->factors_len ? s->factors_len : s->n_rot / 2;
        tensor(g, s, -1, "rope_factors_short.weight", n, 1, w->f_short);
        tensor(g, s, -1, "rope_factors_long.weight", n, 1, w->f_long);
    }
    static float fused[(QD + 2 * KD) * E > 2 * NFF * E ? (QD + 2 * KD) * E : 2 * NFF * E];
    for (int il = 0; il < NL; il++) {
        const layer_w *L = &w->l[il];
        if (!s->post_norm) {
            tensor(g, s, il, "attn_norm.weight", E, 1, L->attn_norm);
            tensor(g, s, il, "ffn_norm.weight", E, 1, L->ffn_norm);
        } else {
            tensor(g, s, il, "attn_q_norm.weight", QD, 1, L->q_norm);
            tensor(g, s, il, "attn_k_norm.weight", KD, 1, L->k_norm);
            tensor(g, s, il, "post_attention_norm.weight", E, 1, L->post_a);
            tensor(g, s, il, "post_ffw_norm.weight", E, 1, L->post_f);
        }
        if (s->fused && !s->sep_qkv) { /* rows q | k | v */
            memcpy(fused, L->wq, sizeof L->wq);
            memcpy(fused + QD * E, L->wk, sizeof L->wk);
            memcpy(fused + (QD + KD) * E, L->wv, sizeof L->wv);
            tensor(g, s, il, "attn_qkv.weight", E, QD + 2 * KD, fused);
        } else {
            tensor(g, s, il, "attn_q.weight", E, QD, L->wq);
            tensor(g, s, il, "attn_k.weight", E, KD, L->wk);
            tensor(g, s, il, "attn_v.weight", E, KD, L->wv);
        }
        if (s->fused) { /* rows gate | up */
            memcpy(fused, L->wg, sizeof L->wg);
            memcpy(fused + NFF * E, L->wu, sizeof L->wu);
            tensor(g, s, il, "ffn_up.weight", E, s->up_rows ? s->up_rows : 2 * NFF, fused);
        } else {
            tensor(g, s, il, "ffn_gate.weight", E, NFF, L->wg);
            tensor(g, s, il, "ffn_up.weight", E, NFF, L->wu);
        }
        tensor(g, s, il, "attn_output.weight", QD, E, L->wo);
        tensor(g, s, il, "ffn_down.weight", NFF, E, L->wd);
    }
    shimmy_status st = gguf_writer_write(g, path, &err);
    gguf_writer_free(g);
    CHECK_MSG(st == SHIMMY_OK, "%s", err.message);
    return st == SHIMMY_OK;
}

/* ---- the reference: the families' definitions in double, one position at a time ---- */

typedef struct ref_opts {
    bool temp_off, scales_off, no_rope_layers_off, factors_off, post_norms_off;
    bool window_off;
    int n_ctx;
} ref_opts;

static void rms(const double *x, const float *w, double *y, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double k = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++) y[i] = x[i] * k * (w ? w[i] : 1.0f);
}

static void matvec(const float *w, const double *x, double *y, int n_out, int n_in) {
    for (int o = 0; o < n_out; o++) {
        double a = 0;
        for (int i = 0; i < n_in; i++) a += (double)w[o * n_in + i] * x[i];
        y[o] = a;
    }
}

static void rope(const spec *s, const weights *w, const ref_opts *o, double *v, int n_heads,
                 int pos, double base) {
    const int half = s->n_rot / 2;
    const float *ff = NULL;
    if (s->longrope && !o->factors_off) ff = o->n_ctx > s->orig_ctx ? w->f_long : w->f_short;
    const double af = s->attn_factor != 0.0f && !o->factors_off ? s->attn_factor : 1.0;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++) {
            double th = pos * pow(base, -2.0 * i / s->n_rot);
            if (ff) th /= ff[i];
            const int a = s->neox ? i : 2 * i, b = s->neox ? i + half : 2 * i + 1;
            double *x = v + h * HD;
            const double x0 = x[a], x1 = x[b];
            x[a] = af * (x0 * cos(th) - x1 * sin(th));
            x[b] = af * (x0 * sin(th) + x1 * cos(th));
        }
}

/* logits (N_TOK, NV) of tokens tok[0..N_TOK) at positions 0.. */
static void reference(const spec *s, const weights *w, const ref_opts *o, const int32_t *tok,
                      double *logits) {
    static double x[N_TOK][E], K[NL][N_TOK][KD], V[NL][N_TOK][KD];
    const bool post = s->post_norm && !o->post_norms_off;
    for (int t = 0; t < N_TOK; t++) {
        const double es = s->embd_scale != 0.0f && !o->scales_off ? s->embd_scale : 1.0;
        for (int i = 0; i < E; i++) x[t][i] = w->embd[tok[t] * E + i] * es;
        for (int il = 0; il < NL; il++) {
            const layer_w *L = &w->l[il];
            const double rs = s->residual_scale != 0.0f && !o->scales_off ? s->residual_scale : 1.0;
            double h[E], q[QD], att[QD], a[E], g[NFF], u[NFF];
            if (s->post_norm)
                memcpy(h, x[t], sizeof h);
            else
                rms(x[t], L->attn_norm, h, E);
            matvec(L->wq, h, q, QD, E);
            matvec(L->wk, h, K[il][t], KD, E);
            matvec(L->wv, h, V[il][t], KD, E);
            if (post) {
                rms(q, L->q_norm, q, QD);
                rms(K[il][t], L->k_norm, K[il][t], KD);
            }
            const bool no_rope =
                (s->no_rope_step && !o->no_rope_layers_off && (il + 1) % s->no_rope_step == 0) ||
                (s->no_finetuned && !o->no_rope_layers_off);
            const bool swa = s->n_swa && !o->window_off && il % 4 < 3;
            const double base = 10000.0;
            if (!no_rope) {
                rope(s, w, o, q, NH, t, base);
                rope(s, w, o, K[il][t], NKV, t, base);
            }
            const int j0 = swa && t >= s->n_swa ? t - s->n_swa + 1 : 0;
            if (s->temp_scale != 0.0f && !o->temp_off) {
                const double f = log(floor((double)t / s->orig_ctx) + 1.0) * s->temp_scale + 1.0;
                for (int i = 0; i < QD; i++) q[i] *= f;
            }
            const double sc =
                s->attn_scale != 0.0f && !o->scales_off ? s->attn_scale : 1.0 / sqrt((double)HD);
            for (int hh = 0; hh < NH; hh++) {
                const int kh = hh / (NH / NKV);
                double p[N_TOK], mx = -INFINITY, sum = 0;
                for (int j = j0; j <= t; j++) {
                    double d = 0;
                    for (int i = 0; i < HD; i++) d += q[hh * HD + i] * K[il][j][kh * HD + i];
                    p[j] = d * sc;
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = j0; j <= t; j++) sum += p[j] = exp(p[j] - mx);
                for (int i = 0; i < HD; i++) {
                    double acc = 0;
                    for (int j = j0; j <= t; j++) acc += p[j] / sum * V[il][j][kh * HD + i];
                    att[hh * HD + i] = acc;
                }
            }
            matvec(L->wo, att, a, E, QD);
            if (post) rms(a, L->post_a, a, E);
            for (int i = 0; i < E; i++) x[t][i] += rs * a[i];
            if (s->post_norm)
                memcpy(h, x[t], sizeof h);
            else
                rms(x[t], L->ffn_norm, h, E);
            matvec(L->wg, h, g, NFF, E);
            matvec(L->wu, h, u, NFF, E);
            for (int i = 0; i < NFF; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            matvec(L->wd, g, a, E, NFF);
            if (post) rms(a, L->post_f, a, E);
            for (int i = 0; i < E; i++) x[t][i] += rs * a[i];
        }
        double hn[E];
        rms(x[t], w->out_norm, hn, E);
        matvec(s->untied ? w->out : w->embd, hn, logits + t * NV, NV, E);
        const double ls = s->logit_scale != 0.0f && !o->scales_off ? s->logit_scale : 1.0;
        for (int i = 0; i < NV; i++) logits[t * NV + i] /= ls;
    }
}

static double max_diff(const double *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static const int32_t toks[N_TOK] = {3, 17, 42, 5, 60, 9, 33};

/* shimmy's logits for every position: the first N_PROMPT as one batch, then single steps */
static bool run(const char *path, int n_ctx, double *out) {
    gguf_file *f = NULL;
    model *m = NULL;
    model_ctx *c = NULL;
    shimmy_error err;
    bool ok = gguf_open(path, &f, &err) == SHIMMY_OK && model_load(f, &m, &err) == SHIMMY_OK;
    gpu_model *gm = NULL;
    const char *dev = getenv("SHIMMY_TEST_DEVICE");
    if (ok && dev) {
        const gpu_model_params gp = {.device = dev, .n_gpu_layers = test_device_layers()};
        ok = gpu_model_open(m, &gp, &gm, &err) == SHIMMY_OK && gm;
    }
    const model_ctx_params cp = {.n_ctx = n_ctx,
                                 .n_batch = N_PROMPT,
                                 .n_logits = N_PROMPT,
                                 .kv_type = MODEL_KV_F32,
                                 .device = gpu_model_device(gm)};
    ok = ok && model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK &&
         model_ctx_eval(c, toks, N_PROMPT, N_PROMPT, &err) == SHIMMY_OK;
    for (int t = 0; ok && t < N_PROMPT; t++)
        for (int i = 0; i < NV; i++) out[t * NV + i] = model_ctx_logits(c, t)[i];
    for (int t = N_PROMPT; ok && t < N_TOK; t++) {
        ok = model_ctx_eval(c, &toks[t], 1, 1, &err) == SHIMMY_OK;
        for (int i = 0; ok && i < NV; i++) out[t * NV + i] = model_ctx_logits(c, 0)[i];
    }
    CHECK_MSG(ok, "%s: %s", path, err.message);
    model_ctx_free(c);
    gpu_model_close(gm);
    model_free(m);
    gguf_close(f);
    return ok;
}

/* Runs family s against the reference; `off` turns its mechanism off in a second reference,
 * which must then be clearly farther from shimmy than the tolerance. */
static void check_family(const spec *s, const weights *w, const char *dir, int n_ctx,
                         ref_opts off) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, s->arch);
    if (!write_model(s, w, path)) return;
    static double got[N_TOK * NV], want[N_TOK * NV], other[N_TOK * NV];
    if (!run(path, n_ctx, got)) return;
    ref_opts on = {.n_ctx = n_ctx};
    off.n_ctx = n_ctx;
    reference(s, w, &on, toks, want);
    reference(s, w, &off, toks, other);
    const double d = max_diff(got, want, N_TOK * NV), d_off = max_diff(got, other, N_TOK * NV);
    printf("%-9s n_ctx %3d swa %d: max |dlogit| %.2e vs reference, %.3f with the mechanism off\n",
           s->arch, n_ctx, s->n_swa, d, d_off);
    CHECK_MSG(d < 2e-3, "%s: logits differ from the reference by %g", s->arch, d);
    CHECK_MSG(d_off > 0.05, "%s: the mechanism makes no difference (%g)", s->arch, d_off);
}

static void check_refused(spec s, const weights *w, const char *dir, const char *needle) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    if (!write_model(&s, w, path)) return;
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err = {0};
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    const shimmy_status st = f ? model_load(f, &m, &err) : SHIMMY_OK;
    CHECK_MSG(st != SHIMMY_OK && strstr(err.message, needle),
              "%s variant: expected an error about '%s', got '%s'", s.arch, needle,
              st ? err.message : "(loaded)");
    model_free(m);
    gguf_close(f);
}

/* The rope.scaling keys as llama.cpp reads them: hp after loading s. */
static bool load_hparams(const spec *s, const weights *w, const char *dir, model_hparams *hp) {
    char path[512];
    snprintf(path, sizeof path, "%s/keys.gguf", dir);
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    bool ok = write_model(s, w, path) && gguf_open(path, &f, &err) == SHIMMY_OK &&
              model_load(f, &m, &err) == SHIMMY_OK;
    CHECK_MSG(ok, "%s", err.message);
    if (ok) *hp = m->hp;
    model_free(m);
    gguf_close(f);
    return ok;
}

static void check_rope_keys(const spec *base, const weights *w, const char *dir) {
    model_hparams hp;
    spec s = *base;
    s.rope_factor = 4.0f; /* no type: linear, as llama.cpp defaults */
    if (load_hparams(&s, w, dir, &hp)) CHECK_NEAR(hp.rope_freq_scale, 0.25, 1e-7);
    s.rope_type = "none";
    if (load_hparams(&s, w, dir, &hp)) CHECK_NEAR(hp.rope_freq_scale, 1.0, 0);
    s.rope_type = "longrope";
    if (load_hparams(&s, w, dir, &hp)) {
        CHECK_NEAR(hp.rope_freq_scale, 0.25, 1e-7);
        CHECK_NEAR(hp.rope_ext_factor, 0.0, 0);
    }
    /* YaRN with yarn_log_multiplier 1 (Ministral 3): the mscale ratio is 1, so cos/sin end up
     * unscaled once rope multiplies its own 1 + 0.1 ln(factor) back in */
    s.rope_type = "yarn";
    s.yarn_log_mul = 1.0f;
    s.orig_ctx = 1024;
    if (load_hparams(&s, w, dir, &hp)) {
        CHECK_NEAR(hp.rope_ext_factor, 1.0, 0);
        CHECK_EQ_INT(hp.n_ctx_orig_yarn, 1024);
        CHECK_NEAR(hp.yarn_attn_factor * (1.0 + 0.1 * log(4.0)), 1.0, 1e-6);
    }
    s.yarn_log_mul = 0.0f; /* without it: mscale 1 + 0.1 ln 4, cancelled by the same */
    s.attn_factor = 2.0f;
    if (load_hparams(&s, w, dir, &hp)) CHECK_NEAR(hp.yarn_attn_factor, 2.0, 1e-6);
}

int main(void) {
    test_device_get();
    char dir[512];
    test_tmpdir(dir, sizeof dir);
    static weights w;
    make_weights(&w, 7);
    const spec phi3 = {.arch = "phi3",
                       .neox = true,
                       .fused = true,
                       .n_rot = 4,
                       .longrope = true,
                       .orig_ctx = 16,
                       .attn_factor = 1.19f};
    const spec mistral3 = {.arch = "mistral3", .n_rot = HD, .temp_scale = 0.5f, .orig_ctx = 2};
    const spec smollm3 = {.arch = "smollm3", .n_rot = HD, .no_rope_step = 4};
    const spec granite = {.arch = "granite",
                          .n_rot = HD,
                          .embd_scale = 3.0f,
                          .residual_scale = 0.5f,
                          .attn_scale = 0.25f,
                          .logit_scale = 4.0f};
    const spec olmo2 = {
        .arch = "olmo2", .neox = true, .post_norm = true, .untied = true, .n_rot = HD};
    /* LongRoPE: short factors while n_ctx <= original_context_length, long ones beyond */
    check_family(&phi3, &w, dir, 16, (ref_opts){.factors_off = true});
    check_family(&phi3, &w, dir, 32, (ref_opts){.factors_off = true});
    check_family(&mistral3, &w, dir, 16, (ref_opts){.temp_off = true});
    check_family(&smollm3, &w, dir, 16, (ref_opts){.no_rope_layers_off = true});
    check_family(&granite, &w, dir, 16, (ref_opts){.scales_off = true});
    spec phi3_sep = phi3, granite_norope = granite;
    phi3_sep.sep_qkv = true;
    check_family(&phi3_sep, &w, dir, 16, (ref_opts){.factors_off = true});
    granite_norope.no_finetuned = true; /* no rope at all; the "off" reference has it */
    check_family(&granite_norope, &w, dir, 16, (ref_opts){.no_rope_layers_off = true});
    check_family(&olmo2, &w, dir, 16, (ref_opts){.post_norms_off = true});
    spec olmo3 = olmo2;
    olmo3.n_swa = 3;
    olmo3.base_swa = 500.0f;
    check_family(&olmo3, &w, dir, 16, (ref_opts){.window_off = true});

    /* granite's logit multiplier alone: logits with scale s are those of scale 1 divided by s */
    {
        spec g1 = granite, g4 = granite;
        g1.logit_scale = 1.0f;
        char p1[600], p4[600];
        snprintf(p1, sizeof p1, "%s/g1.gguf", dir);
        snprintf(p4, sizeof p4, "%s/g4.gguf", dir);
        static double l1[N_TOK * NV], l4[N_TOK * NV];
        if (write_model(&g1, &w, p1) && write_model(&g4, &w, p4) && run(p1, 16, l1) &&
            run(p4, 16, l4)) {
            double d = 0;
            for (int i = 0; i < N_TOK * NV; i++) d = fmax(d, fabs(l4[i] - l1[i] / 4.0));
            CHECK_MSG(d < 1e-5, "granite: logit_scale 4 is not a division by 4 (%g)", d);
        }
    }

    check_rope_keys(&mistral3, &w, dir);

    /* malformed variants */
    spec bad = phi3;
    bad.up_rows = NFF;
    check_refused(bad, &w, dir, "ffn_up.weight");
    bad = phi3;
    bad.factors_len = 3;
    check_refused(bad, &w, dir, "rope_factors_long.weight");
    bad = phi3;
    bad.rope_type = "weird";
    check_refused(bad, &w, dir, "'weird'");
    bad = phi3;
    bad.omit = "blk.2.attn_qkv.weight";
    check_refused(bad, &w, dir, "blk.2.attn_q.weight");
    bad = olmo2;
    bad.omit = "blk.1.post_ffw_norm.weight";
    check_refused(bad, &w, dir, "blk.1.post_ffw_norm.weight");
    bad = olmo2;
    bad.untied = false;
    check_refused(bad, &w, dir, "output.weight");
    bad = granite;
    bad.no_logit_scale = true;
    check_refused(bad, &w, dir, "granite.logit_scale");
    bad = mistral3;
    bad.expert_count = 4;
    check_refused(bad, &w, dir, "mixture-of-experts");
    bad = smollm3;
    bad.n_rot = HD / 2;
    check_refused(bad, &w, dir, "rope.dimension_count");
    bad = smollm3;
    bad.arch = "smollm9";
    check_refused(bad, &w, dir, "'smollm9' is not supported (supported: ");
    check_refused(bad, &w, dir, "olmo2");
    test_rm_rf(dir);
    return test_finish("model/arch_dense");
}
