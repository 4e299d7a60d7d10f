/* Shared ops of the smaller dense families: the fused gate+up FFN (phi3), LongRoPE's choice of
 * frequency factors (phi3, and mistral3/granite files whose scaling type is longrope), the
 * per-position attention temperature of Llama-4-style scaling (mistral3), and llama's block with
 * the knobs those families turn (model_dense_*: mistral3, smollm3, granite). */
#include "model.h"

#include <math.h>
#include <string.h>

/* The rows [r0, r0 + n) of w as a weight of their own (same name and slot: only for products
 * that no adapter touches). */
static model_weight rows_of(const model_weight *w, int64_t r0, int64_t n) {
    model_weight v = *w;
    v.data = (const unsigned char *)w->data + (size_t)r0 * w->row_bytes;
    v.n_out = n;
    v.pack = NULL; /* a view of the file's rows (a repacked copy holds whole groups) */
    v.pk = NULL;
    return v;
}

/* Whether a fused product runs on the device as row views: its weight is there and no adapter
 * is attached (adapters key on the whole tensor, and their products are the CPU's anyway). */
static bool split_on_device(const model_ctx *c, const model_weight *w) {
    return c->dev && !c->lora && !c->tok_lora && c->dev->ops->holds(c->dev->impl, w->data);
}

void model_op_ffn_swiglu_fused(model_ctx *c, const model_layer *L) {
    const int64_t n_ff = L->w_down.n_in;
    if (split_on_device(c, &L->w_up)) {
        /* on a device: the two halves as two products into gate and up, whose rows the
         * device's SwiGLU takes (the fused rows of 2*n_ff would be split by the host) */
        const model_weight g = rows_of(&L->w_up, 0, n_ff), u = rows_of(&L->w_up, n_ff, n_ff);
        const model_weight *gu[2] = {&g, &u};
        float *const gu_out[2] = {c->gate, c->up};
        model_linear_n(c, 2, gu, c->xn, gu_out, c->n_tok);
        model_op_glu(c, MODEL_GLU_SILU, c->gate, c->up, n_ff);
        model_linear(c, &L->w_down, c->gate, c->xn, c->n_tok);
        model_op_add_bias(c, c->xn, L->b_down, L->w_down.n_out);
        return;
    }
    /* one product gives rows of [gate | up]; gate and up are one region of the context (ctx.c)
     * that holds (n_batch, 2*n_ff) */
    float *gu = c->gate;
    model_linear(c, &L->w_up, c->xn, gu, c->n_tok);
    model_dev_host(c);
    for (int32_t t = 0; t < c->n_tok; t++) {
        float *g = gu + (int64_t)t * 2 * n_ff;
        /* the SwiGLU of one row (its own exp grouping, as over a separate gate row), then the
         * row moves to its place in a (n_tok, n_ff) matrix: t*n_ff <= t*2*n_ff, so the rows
         * that follow are not yet overwritten */
        model_swiglu(g, g + n_ff, n_ff);
        memmove(gu + (int64_t)t * n_ff, g, sizeof(float) * (size_t)n_ff);
    }
    model_linear(c, &L->w_down, gu, c->xn, c->n_tok);
    model_op_add_bias(c, c->xn, L->b_down, L->w_down.n_out);
}

const float *model_rope_longrope_factors(const model_ctx *c, const model_layer *L) {
    /* llama.cpp picks by the context size, not the position: a context longer than the
     * original one uses the long factors for every position */
    return c->n_ctx > c->m->hp.n_ctx_orig_yarn ? L->rope_long : L->rope_short;
}

/* Entry t's factor: the reference computes it in double from float positions, then stores it
 * as a float that multiplies q. */
static float temp_factor(const model_ctx *c, int32_t t, float temp_scale, int32_t floor_scale) {
    const float steps = floorf((float)c->tok_pos[t] / (float)floor_scale);
    return (float)(log((double)steps + 1.0) * (double)temp_scale + 1.0);
}

void model_op_attn_temperature(model_ctx *c, float *q, int64_t q_dim, float temp_scale,
                               int32_t floor_scale) {
    if (temp_scale == 0.0f || floor_scale <= 0) return;
    /* one factor for the whole step (every position below floor_scale: 1, nothing to do) is a
     * plain scale, which a device runs where q is */
    const float s0 = temp_factor(c, 0, temp_scale, floor_scale);
    bool uniform = true;
    for (int32_t t = 1; t < c->n_tok && uniform; t++)
        uniform = temp_factor(c, t, temp_scale, floor_scale) == s0;
    if (uniform) {
        model_op_scale(c, q, q_dim, s0);
        return;
    }
    model_dev_host(c);
    for (int32_t t = 0; t < c->n_tok; t++) {
        const float s = temp_factor(c, t, temp_scale, floor_scale);
        float *row = q + (int64_t)t * q_dim;
        for (int64_t i = 0; i < q_dim; i++) row[i] *= s;
    }
}

shimmy_status model_dense_hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_llama_hparams(ld, hp);
    if (st) return st;
    const char *arch = model_loader_model(ld)->arch->name;
    int32_t n_expert = 0;
    if ((st = model_load_key_i32(ld, "expert_count", false, 0, 1 << 16, &n_expert))) return st;
    if (n_expert > 0)
        return model_load_fail(ld, SHIMMY_ERR_UNSUPPORTED,
                               "%s: the mixture-of-experts variant (%s.expert_count %d) is not "
                               "supported; only dense %s files are",
                               arch, arch, n_expert, arch);
    /* the reference asserts these for the families built on this block */
    if (hp->n_rot != hp->head_dim || hp->head_dim_v != hp->head_dim)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "%s: rope.dimension_count %d and the value head size %d must "
                               "equal the key head size %d",
                               arch, hp->n_rot, hp->head_dim_v, hp->head_dim);
    return SHIMMY_OK;
}

shimmy_status model_dense_bind(model_loader *ld, int32_t il, model_layer *L) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    shimmy_status st;
    if ((st = model_llama_bind(ld, il, L, false, false)) ||
        (st = model_load_vector(ld, il, "ffn_gate.bias", hp->n_ff, false, &L->b_gate)) ||
        (st = model_load_vector(ld, il, "ffn_up.bias", hp->n_ff, false, &L->b_up)) ||
        (st = model_load_vector(ld, il, "ffn_down.bias", hp->n_embd, false, &L->b_down)) ||
        (st = model_load_vector(ld, -1, "rope_factors_long.weight", hp->n_rot / 2, false,
                                &L->rope_long)) ||
        (st = model_load_vector(ld, -1, "rope_factors_short.weight", hp->n_rot / 2, false,
                                &L->rope_short)))
        return st;
    return SHIMMY_OK;
}

void model_dense_forward(model_ctx *c) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    model_rope_cfg rope = model_rope_cfg_of(m);
    const float *factors = model_rope_longrope_factors(c, &m->layers[0]);
    if (factors) rope.freq_factors = factors;
    const model_attn_params attn = {
        .scale = hp->attn_scale != 0.0f ? hp->attn_scale : 1.0f / sqrtf((float)hp->head_dim)};
    const float res_scale = hp->residual_scale != 0.0f ? hp->residual_scale : 1.0f;
    model_op_embed(c, hp->embd_scale != 0.0f ? hp->embd_scale : 1.0f);
    model_op_rope_prepare(c, 0, &rope);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        model_op_rms_norm(c, c->x, L->attn_norm, c->xn, E);
        model_op_qkv(c, L);
        if (hp->no_rope_step <= 0 || (il + 1) % hp->no_rope_step != 0)
            model_op_rope_qk(c, 0, &rope);
        model_op_attn_temperature(c, c->q, q_dim, hp->attn_temp_scale, hp->n_ctx_orig_yarn);
        model_op_attention(c, il, &attn);
        model_linear(c, &L->wo, c->att, c->xn, c->n_tok);
        model_op_add_bias(c, c->xn, L->bo, E);
        model_op_scale(c, c->xn, E, res_scale);
        model_op_add(c, c->x, c->xn, E);
        model_op_rms_norm(c, c->x, L->ffn_norm, c->xn, E);
        model_op_ffn_glu(c, L, MODEL_GLU_SILU);
        model_op_scale(c, c->xn, E, res_scale);
        model_op_add(c, c->x, c->xn, E);
    }
    model_op_logits(c, m->output_norm, hp->rms_eps, 0.0f);
    if (hp->logit_scale != 0.0f && hp->logit_scale != 1.0f) {
        /* the reference multiplies by the reciprocal; the logits are the step's result, in
         * host memory whichever side made them (model_op_logits fetched them), and no device
         * op reads them again */
        const float s = 1.0f / hp->logit_scale;
        for (int32_t j = 0; j < c->n_logits_last; j++) {
            float *l = (float *)model_ctx_logits(c, j);
            if (!l) break; /* an embeddings context has no logits */
            for (int64_t i = 0; i < hp->n_vocab; i++) l[i] *= s;
        }
    }
}
