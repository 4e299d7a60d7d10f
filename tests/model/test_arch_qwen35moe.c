/*
 * qwen35moe (Qwen3.5/3.6 MoE) on tiny random F32 models written here with the gguf writer:
 * three Gated DeltaNet layers and one gated attention layer, each with the MoE FFN (4 experts,
 * 2 used, renormalised; a shared expert scaled by sigmoid(ffn_gate_inp_shexp · x)).
 *
 * - The mechanism against the dense qwen35 path (itself held to llama.cpp's references by
 *   test_reference_new): with every expert equal to a dense FFN and the shared expert's output
 *   zero, the renormalised routing must give that FFN exactly (to float rounding); with the
 *   experts' down projections halved and the shared expert equal to the FFN under a zero gate
 *   (sigmoid 0.5), again the FFN. A missing renormalisation, an ungated or wrongly gated
 *   shared expert moves the logits by far more than the tolerance.
 * - With distinct random experts, a prompt evaluated in one batch, in chunks of 5 and token by
 *   token gives the same logits (batch: experts grouped over tokens and the chunked delta rule;
 *   single tokens: the token recurrence), within 1e-3 (F32 weights: float rounding only).
 * - A file with the converter's multi-token-prediction block appended (nextn_predict_layers)
 *   is the same model: the block is left out.
 * - Malformed variants are refused with an error naming the problem.
 */
#include "gguf/gguf.h"
#include "gpu/gpu.h"
#include "model/model.h"
#include "test.h"

#include <math.h>
#include <stdbool.h>

enum { E = 32, NH = 4, NKV = 2, HD = 8, NV = 64, NL = 4, QD = NH * HD, KD = NKV * HD };
enum { NFF = 24, NX = 4, NXU = 2, KC = 4, DK = 8, NG = 2, NVH = 4, INNER = NVH * DK };
enum { CD = 2 * NG * DK + INNER, N = 19 };

typedef enum mode { DENSE, MOE_EQUAL, MOE_SHARED_HALF, MOE_RANDOM } mode;

typedef struct spec {
    const char *arch;
    mode mode;
    const char *omit;  /* a tensor left out */
    int used;          /* expert_used_count instead of NXU (0: right) */
    int inner;         /* ssm.inner_size instead of INNER (0: right) */
    bool no_experts;   /* expert_count left out */
    int exp_rows;      /* rows of ffn_up_exps per expert instead of NFF (0: right) */
    bool conv_f16_len; /* ssm_conv1d with the wrong tap count */
    int mtp;           /* multi-token-prediction blocks appended (nextn_predict_layers); -1: the key
                        * claims every block */
} spec;

typedef struct layer_w {
    float attn_norm[E], post_norm[E], q_norm[HD], k_norm[HD];
    float wq[2 * QD * E], wk[KD * E], wv[KD * E], wo[E * QD];
    float qkv[CD * E], gate[INNER * E], alpha[NVH * E], beta[NVH * E], out[E * INNER];
    float conv[CD * KC], dt[NVH], a[NVH], ssm_norm[DK];
    float wg[NFF * E], wu[NFF * E], wd[E * NFF];
    float router[NX * E], xg[NX * NFF * E], xu[NX * NFF * E], xd[NX * E * NFF], shg[E];
} layer_w;

typedef struct weights {
    float embd[NV * E], out_norm[E];
    layer_w l[NL];
} weights;

static void fill(test_rng *r, float *w, int n, double sd, double mean) {
    for (int i = 0; i < n; i++) w[i] = (float)(mean + sd * test_rng_normal(r));
}

static void make_weights(weights *w, unsigned long long seed) {
    test_rng r;
    test_rng_seed(&r, seed);
    fill(&r, w->embd, NV * E, 0.5, 0);
    fill(&r, w->out_norm, E, 0.1, 1);
    for (int il = 0; il < NL; il++) {
        layer_w *L = &w->l[il];
        fill(&r, L->attn_norm, E, 0.1, 1);
        fill(&r, L->post_norm, E, 0.1, 1);
        fill(&r, L->q_norm, HD, 0.1, 1);
        fill(&r, L->k_norm, HD, 0.1, 1);
        fill(&r, L->wq, 2 * QD * E, 2.0 / sqrt(E), 0);
        fill(&r, L->wk, KD * E, 2.0 / sqrt(E), 0);
        fill(&r, L->wv, KD * E, 1.0 / sqrt(E), 0);
        fill(&r, L->wo, E * QD, 1.0 / sqrt(QD), 0);
        fill(&r, L->qkv, CD * E, 1.0 / sqrt(E), 0);
        fill(&r, L->gate, INNER * E, 1.0 / sqrt(E), 0);
        fill(&r, L->alpha, NVH * E, 1.0 / sqrt(E), 0);
        fill(&r, L->beta, NVH * E, 1.0 / sqrt(E), 0);
        fill(&r, L->out, E * INNER, 1.0 / sqrt(INNER), 0);
        fill(&r, L->conv, CD * KC, 0.5, 0);
        fill(&r, L->dt, NVH, 0.5, 0);
        for (int h = 0; h < NVH; h++) L->a[h] = (float)-exp(test_rng_normal(&r) * 0.5);
        fill(&r, L->ssm_norm, DK, 0.1, 1);
        fill(&r, L->wg, NFF * E, 1.0 / sqrt(E), 0);
        fill(&r, L->wu, NFF * E, 1.0 / sqrt(E), 0);
        fill(&r, L->wd, E * NFF, 1.0 / sqrt(NFF), 0);
        fill(&r, L->router, NX * E, 1.0 / sqrt(E), 0);
        fill(&r, L->xg, NX * NFF * E, 1.0 / sqrt(E), 0);
        fill(&r, L->xu, NX * NFF * E, 1.0 / sqrt(E), 0);
        fill(&r, L->xd, NX * E * NFF, 1.0 / sqrt(NFF), 0);
        fill(&r, L->shg, E, 1.0 / sqrt(E), 0);
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

static void tensor(gguf_writer *g, const spec *s, int il, const char *name, int n_dims, int64_t ne0,
                   int64_t ne1, int64_t ne2, const float *data) {
    char full[96];
    if (il >= 0)
        snprintf(full, sizeof full, "blk.%d.%s", il, name);
    else
        snprintf(full, sizeof full, "%s", name);
    if (s->omit && strcmp(s->omit, full) == 0) return;
    const int64_t ne[3] = {ne0, ne1, ne2};
    gguf_writer_add_tensor(g, full, GGUF_T_F32, (uint32_t)n_dims, ne, data);
}

/* the experts and the shared expert of layer L as s->mode wants them */
static void write_ffn(gguf_writer *g, const spec *s, int il, const layer_w *L) {
    /* xu has room for the malformed variant's extra rows */
    static float xg[NX * NFF * E], xu[NX * (NFF + 2) * E], xd[NX * E * NFF], shg[E], shd[E * NFF];
    const float *sg = L->wg, *su = L->wu, *sd = shd;
    memset(shd, 0, sizeof shd);
    memset(shg, 0, sizeof shg);
    if (s->mode == MOE_RANDOM) {
        memcpy(xg, L->xg, sizeof xg), memcpy(xu, L->xu, sizeof L->xu);
        memcpy(xd, L->xd, sizeof xd);
        memcpy(shg, L->shg, sizeof shg);
        sd = L->wd;
    } else {
        const float scale = s->mode == MOE_SHARED_HALF ? 0.5f : 1.0f;
        for (int e = 0; e < NX; e++) {
            memcpy(xg + e * NFF * E, L->wg, sizeof L->wg);
            memcpy(xu + e * NFF * E, L->wu, sizeof L->wu);
            for (int i = 0; i < E * NFF; i++) xd[e * E * NFF + i] = scale * L->wd[i];
        }
        if (s->mode == MOE_SHARED_HALF) sd = L->wd; /* gate 0: sigmoid 0.5 */
    }
    const int rows = s->exp_rows ? s->exp_rows : NFF; /* at most NFF + 2 */
    tensor(g, s, il, "ffn_gate_inp.weight", 2, E, NX, 1, L->router);
    tensor(g, s, il, "ffn_gate_exps.weight", 3, E, NFF, NX, xg);
    tensor(g, s, il, "ffn_up_exps.weight", 3, E, rows, NX, xu);
    tensor(g, s, il, "ffn_down_exps.weight", 3, NFF, E, NX, xd);
    tensor(g, s, il, "ffn_gate_inp_shexp.weight", 1, E, 1, 1, shg);
    tensor(g, s, il, "ffn_gate_shexp.weight", 2, E, NFF, 1, sg);
    tensor(g, s, il, "ffn_up_shexp.weight", 2, E, NFF, 1, su);
    tensor(g, s, il, "ffn_down_shexp.weight", 2, NFF, E, 1, sd);
}

static bool write_model(const spec *s, const weights *w, const char *path) {
    gguf_writer *g = NULL;
    shimmy_error err;
    if (gguf_writer_new(&g, &err) != SHIMMY_OK) return false;
    gguf_writer_set_str(g, "general.architecture", s->arch);
    key(g, s, "context_length", 4096, false);
    key(g, s, "embedding_length", E, false);
    const int n_mtp = s->mtp > 0 ? s->mtp : 0;
    key(g, s, "block_count", NL + n_mtp, false);
    if (s->mtp) key(g, s, "nextn_predict_layers", s->mtp > 0 ? s->mtp : NL, false);
    key(g, s, "feed_forward_length", NFF, false);
    key(g, s, "attention.head_count", NH, false);
    key(g, s, "attention.head_count_kv", NKV, false);
    key(g, s, "attention.key_length", HD, false);
    key(g, s, "attention.value_length", HD, false);
    key(g, s, "attention.layer_norm_rms_epsilon", 1e-6f, true);
    key(g, s, "rope.freq_base", 10000.0f, true);
    key(g, s, "rope.dimension_count", HD / 2, false);
    key(g, s, "full_attention_interval", 4, false);
    key(g, s, "ssm.conv_kernel", KC, false);
    key(g, s, "ssm.inner_size", s->inner ? s->inner : INNER, false);
    key(g, s, "ssm.state_size", DK, false);
    key(g, s, "ssm.time_step_rank", NVH, false);
    key(g, s, "ssm.group_count", NG, false);
    if (s->mode != DENSE) {
        if (!s->no_experts) key(g, s, "expert_count", NX, false);
        key(g, s, "expert_used_count", s->used ? s->used : NXU, false);
        key(g, s, "expert_feed_forward_length", NFF, false);
        key(g, s, "expert_shared_feed_forward_length", NFF, false);
    }
    tensor(g, s, -1, "token_embd.weight", 2, E, NV, 1, w->embd);
    tensor(g, s, -1, "output_norm.weight", 1, E, 1, 1, w->out_norm);
    for (int il = 0; il < NL; il++) {
        const layer_w *L = &w->l[il];
        tensor(g, s, il, "attn_norm.weight", 1, E, 1, 1, L->attn_norm);
        tensor(g, s, il, "post_attention_norm.weight", 1, E, 1, 1, L->post_norm);
        if (il % 4 == 3) {
            tensor(g, s, il, "attn_q.weight", 2, E, 2 * QD, 1, L->wq);
            tensor(g, s, il, "attn_k.weight", 2, E, KD, 1, L->wk);
            tensor(g, s, il, "attn_v.weight", 2, E, KD, 1, L->wv);
            tensor(g, s, il, "attn_output.weight", 2, QD, E, 1, L->wo);
            tensor(g, s, il, "attn_q_norm.weight", 1, HD, 1, 1, L->q_norm);
            tensor(g, s, il, "attn_k_norm.weight", 1, HD, 1, 1, L->k_norm);
        } else {
            tensor(g, s, il, "attn_qkv.weight", 2, E, CD, 1, L->qkv);
            tensor(g, s, il, "attn_gate.weight", 2, E, INNER, 1, L->gate);
            tensor(g, s, il, "ssm_alpha.weight", 2, E, NVH, 1, L->alpha);
            tensor(g, s, il, "ssm_beta.weight", 2, E, NVH, 1, L->beta);
            tensor(g, s, il, "ssm_out.weight", 2, INNER, E, 1, L->out);
            tensor(g, s, il, "ssm_conv1d.weight", 2, s->conv_f16_len ? KC - 1 : KC, CD, 1, L->conv);
            tensor(g, s, il, "ssm_dt.bias", 1, NVH, 1, 1, L->dt);
            tensor(g, s, il, "ssm_a", 1, NVH, 1, 1, L->a);
            tensor(g, s, il, "ssm_norm.weight", 1, DK, 1, 1, L->ssm_norm);
        }
        if (s->mode == DENSE) {
            tensor(g, s, il, "ffn_gate.weight", 2, E, NFF, 1, L->wg);
            tensor(g, s, il, "ffn_up.weight", 2, E, NFF, 1, L->wu);
            tensor(g, s, il, "ffn_down.weight", 2, NFF, E, 1, L->wd);
        } else {
            write_ffn(g, s, il, L);
        }
    }
    /* an MTP block: the hidden/embedding projection and norms (its own weights; not run) */
    for (int il = NL; il < NL + n_mtp; il++) {
        tensor(g, s, il, "nextn.eh_proj.weight", 2, 2 * E, E, 1, w->l[0].wq);
        tensor(g, s, il, "nextn.enorm.weight", 1, E, 1, 1, w->l[0].attn_norm);
        tensor(g, s, il, "attn_norm.weight", 1, E, 1, 1, w->l[0].attn_norm);
    }
    shimmy_status st = gguf_writer_write(g, path, &err);
    gguf_writer_free(g);
    CHECK_MSG(st == SHIMMY_OK, "%s", err.message);
    return st == SHIMMY_OK;
}

static int32_t toks[N];
static const model_device *cur_device; /* the device run() uses, or NULL: the CPU */

/* the last entry's logits after the prompt fed in pieces of chunk */
static bool run(const model *m, int chunk, float *out) {
    model_ctx_params cp = {
        .n_ctx = 64, .n_batch = N, .kv_type = MODEL_KV_F32, .device = cur_device};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK_MSG(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK, "%s", err.message);
    if (!c) return false;
    bool ok = true;
    for (int i = 0; i < N && ok; i += chunk) {
        const int k = N - i < chunk ? N - i : chunk;
        ok = model_ctx_eval(c, toks + i, k, 1, &err) == SHIMMY_OK;
        CHECK_MSG(ok, "%s", err.message);
    }
    if (ok) memcpy(out, model_ctx_logits(c, 0), sizeof(float) * NV);
    model_ctx_free(c);
    return ok;
}

static bool load(const spec *s, const weights *w, const char *dir, gguf_file **f, model **m) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s-%d.gguf", dir, s->arch, (int)s->mode);
    shimmy_error err;
    *f = NULL, *m = NULL;
    if (!write_model(s, w, path)) return false;
    CHECK(gguf_open(path, f, &err) == SHIMMY_OK);
    if (*f) CHECK_MSG(model_load(*f, m, &err) == SHIMMY_OK, "%s", err.message);
    return *m != NULL;
}

static double max_diff(const float *a, const float *b) {
    double d = 0;
    for (int i = 0; i < NV; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* a qwen35moe file whose FFN equals the dense file's, in one batch */
static void check_equal_to_dense(const weights *w, const char *dir, mode md, const float *dense) {
    const spec s = {.arch = "qwen35moe", .mode = md};
    gguf_file *f;
    model *m;
    float got[NV];
    if (load(&s, w, dir, &f, &m) && run(m, N, got)) {
        const double d = max_diff(got, dense);
        printf("qwen35moe (%s) vs dense qwen35: max |dlogit| %.2e\n",
               md == MOE_EQUAL ? "equal experts, no shared output" : "halved experts + shared", d);
        CHECK_MSG(d < 1e-3, "mode %d: %g", (int)md, d);
    }
    model_free(m);
    gguf_close(f);
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
              "expected an error about '%s', got '%s'", needle, st ? err.message : "(loaded)");
    if (st) printf("refused: %s\n", err.message);
    model_free(m);
    gguf_close(f);
}

int main(void) {
    test_device_get();
    char dir[512];
    test_tmpdir(dir, sizeof dir);
    static weights w;
    make_weights(&w, 35);
    for (int i = 0; i < N; i++) toks[i] = (int32_t)((i * 2654435761u) % (NV - 1)) + 1;

    const spec dense = {.arch = "qwen35", .mode = DENSE};
    gguf_file *f;
    model *m;
    float want[NV], got[NV], chunks[NV], single[NV];
    if (load(&dense, &w, dir, &f, &m) && run(m, N, want)) {
        check_equal_to_dense(&w, dir, MOE_EQUAL, want);
        check_equal_to_dense(&w, dir, MOE_SHARED_HALF, want);
    }
    model_free(m);
    gguf_close(f);

    const spec moe = {.arch = "qwen35moe", .mode = MOE_RANDOM};
    if (load(&moe, &w, dir, &f, &m)) {
        CHECK(strcmp(m->arch->name, "qwen35moe") == 0);
        CHECK_EQ_INT(m->hp.n_expert, NX);
        CHECK_EQ_INT(m->hp.n_expert_used, NXU);
        CHECK(m->layers[0].recurrent && !m->layers[3].recurrent);
        if (run(m, N, got) && run(m, 5, chunks) && run(m, 1, single)) {
            const double dc = max_diff(got, chunks), ds = max_diff(got, single);
            const double dd = max_diff(got, want);
            printf("random experts: one batch vs chunks of 5 %.2e, vs token by token %.2e; "
                   "vs the dense FFN %.3f\n",
                   dc, ds, dd);
            CHECK(dc < 1e-3 && ds < 1e-3);
            CHECK(dd > 0.05); /* the experts make a difference */
        }
        /* SHIMMY_TEST_DEVICE (CTest's unit/gpu/arch_qwen35moe): on that device (every layer, or
         * the first SHIMMY_TEST_GPU_LAYERS), as one batch and token by token, against the CPU */
        const char *dev = getenv("SHIMMY_TEST_DEVICE");
        gpu_model *gm = NULL;
        shimmy_error err;
        const gpu_model_params gp = {.device = dev, .n_gpu_layers = test_device_layers()};
        if (dev)
            CHECK_MSG(gpu_model_open(m, &gp, &gm, &err) == SHIMMY_OK && gm, "on %s: %s", dev,
                      gm ? "" : err.message);
        cur_device = gpu_model_device(gm);
        float dev_batch[NV], dev_single[NV];
        if (gm && run(m, N, dev_batch) && run(m, 1, dev_single)) {
            const double db = max_diff(dev_batch, got), ds = max_diff(dev_single, got);
            printf("on %s: one batch vs the CPU %.2e, token by token %.2e\n", dev, db, ds);
            CHECK(db < 1e-3 && ds < 1e-3);
        }
        cur_device = NULL;
        gpu_model_close(gm);
    }
    model_free(m);
    gguf_close(f);

    /* a file with the converter's MTP block appended: the same model, the block left out */
    spec mtp = moe;
    mtp.mtp = 1;
    if (load(&mtp, &w, dir, &f, &m)) {
        CHECK_EQ_INT(m->hp.n_layer, NL);
        float with_mtp[NV];
        if (run(m, N, with_mtp)) CHECK(memcmp(with_mtp, got, sizeof got) == 0);
    }
    model_free(m);
    gguf_close(f);

    spec bad = moe;
    bad.omit = "blk.2.ffn_gate_inp_shexp.weight";
    check_refused(bad, &w, dir, "ffn_gate_inp_shexp");
    bad = moe, bad.omit = "blk.3.ffn_down_exps.weight";
    check_refused(bad, &w, dir, "ffn_down_exps");
    bad = moe, bad.used = NX + 1;
    check_refused(bad, &w, dir, "expert_used_count");
    bad = moe, bad.no_experts = true;
    check_refused(bad, &w, dir, "expert_count");
    bad = moe, bad.exp_rows = NFF + 2;
    check_refused(bad, &w, dir, "ffn_up_exps");
    bad = moe, bad.inner = INNER + NVH;
    check_refused(bad, &w, dir, "ssm.inner_size");
    bad = moe, bad.conv_f16_len = true;
    check_refused(bad, &w, dir, "ssm_conv1d");
    bad = moe, bad.omit = "blk.1.ssm_a";
    check_refused(bad, &w, dir, "ssm_a");
    bad = moe, bad.mtp = -1;
    check_refused(bad, &w, dir, "nextn_predict_layers");
    return test_finish("model/arch_qwen35moe");
}
