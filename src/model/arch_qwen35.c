/* qwen35 (Qwen3.5 / Qwen3.6 dense): a hybrid of Gated DeltaNet layers and gated full-attention
 * layers (every full_attention_interval-th layer is full attention, the others DeltaNet).
 *
 *   DeltaNet layer:  h = rms_norm(x); conv/delta rule over wqkv(h) (ops_deltanet.c), each value
 *                    head's output RMS-normed and times silu(z), z = ssm_z(h); x += ssm_out(...)
 *   attention layer: attn_q gives per head [query | gate]; per-head RMSNorm of q and k, rope on
 *                    the first n_rot dims (IMRoPE: for text every section sees the same position,
 *                    which is NeoX rope), attention, output times sigmoid(gate); x += wo(...)
 *   then x += ffn(rms_norm(x)) with post_attention_norm as the FFN's input norm (SwiGLU).
 *
 * qwen35moe (Qwen3.5/3.6 MoE, here too since it shares every layer but the FFN): the FFN is
 * model_op_moe, a softmax router over all experts, top expert_used_count, weights renormalised,
 * SwiGLU experts, plus the shared expert every token runs, scaled by
 * sigmoid(ffn_gate_inp_shexp · x) (required, as in the reference).
 *
 * The recurrent state of each sequence (conv window + state matrices) lives in c->rstate. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool is_recurrent(int32_t il, int32_t interval) {
    return (il + 1) % interval != 0;
}

static int32_t interval_of(model_loader *ld) {
    int32_t interval = 4;
    model_load_key_i32(ld, "full_attention_interval", false, 1, 4096, &interval);
    return interval;
}

static int64_t conv_dim(const model_hparams *hp) {
    return 2 * (int64_t)hp->ssm_groups * hp->ssm_state + hp->ssm_inner;
}

static int64_t layer_state(const model_hparams *hp) {
    const int64_t dv = hp->ssm_inner / hp->ssm_dt_rank;
    return (int64_t)(hp->ssm_conv - 1) * conv_dim(hp) +
           (int64_t)hp->ssm_dt_rank * hp->ssm_state * dv;
}

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st;
    int32_t interval = 4, nextn = 0;
    if ((st = model_llama_hparams(ld, hp)) ||
        (st = model_load_key_i32(ld, "ssm.conv_kernel", true, 1, 64, &hp->ssm_conv)) ||
        (st = model_load_key_i32(ld, "ssm.inner_size", true, 1, 1 << 20, &hp->ssm_inner)) ||
        (st = model_load_key_i32(ld, "ssm.state_size", true, 1, 4096, &hp->ssm_state)) ||
        (st = model_load_key_i32(ld, "ssm.time_step_rank", true, 1, 4096, &hp->ssm_dt_rank)) ||
        (st = model_load_key_i32(ld, "ssm.group_count", true, 1, 4096, &hp->ssm_groups)) ||
        (st = model_load_key_i32(ld, "full_attention_interval", false, 1, 4096, &interval)) ||
        (st = model_load_key_i32(ld, "nextn_predict_layers", false, 0, 4096, &nextn)))
        return st;
    /* the converter appends the multi-token-prediction blocks after the main stack (block_count
     * counts them); the model proper is the blocks before them */
    if (nextn >= hp->n_layer)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "%s: nextn_predict_layers %d leaves none of the %d blocks",
                               model_loader_model(ld)->arch->name, nextn, hp->n_layer);
    hp->n_layer -= nextn;
    if (hp->ssm_inner % hp->ssm_dt_rank || hp->ssm_dt_rank % hp->ssm_groups ||
        hp->ssm_inner / hp->ssm_dt_rank != hp->ssm_state)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "%s: ssm.inner_size %d must be ssm.time_step_rank %d value "
                               "heads of ssm.state_size %d, over ssm.group_count %d key heads",
                               model_loader_model(ld)->arch->name, hp->ssm_inner, hp->ssm_dt_rank,
                               hp->ssm_state, hp->ssm_groups);
    int64_t n_rec = 0;
    for (int32_t il = 0; il < hp->n_layer; il++) n_rec += is_recurrent(il, interval);
    hp->state_floats = n_rec * layer_state(hp);
    /* per entry: wqkv's output, z, alpha, beta and the heads' outputs; or the attention layer's
     * [query | gate] rows and the gates */
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    /* + the chunked delta rule's scratch: a chunk never holds more entries than the step, so
     * per entry its floats for a full chunk, divided by the chunk's length, suffice */
    const int64_t rec =
        conv_dim(hp) + 2 * (int64_t)hp->ssm_inner + 2 * (int64_t)hp->ssm_dt_rank +
        model_deltanet_scratch_floats(hp->ssm_state, hp->ssm_state, MODEL_DELTANET_CHUNK) /
            MODEL_DELTANET_CHUNK;
    hp->aux_floats = rec > 3 * q_dim ? rec : 3 * q_dim;
    return SHIMMY_OK;
}

static shimmy_status hparams_moe(model_loader *ld, model_hparams *hp) {
    shimmy_status st;
    if ((st = hparams(ld, hp)) || (st = model_moe_hparams(ld, hp))) return st;
    if (hp->n_ff_shexp == 0) hp->n_ff_shexp = hp->n_ff;
    /* the shared expert runs in the context's dense FFN scratch, sized by n_ff */
    if (hp->n_ff < hp->n_ff_shexp) hp->n_ff = hp->n_ff_shexp;
    return SHIMMY_OK;
}

static shimmy_status bind_mixer(model_loader *ld, int32_t il, model_layer *L);

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd;
    shimmy_status st;
    if ((st = model_load_matrix(ld, il, "ffn_gate.weight", E, hp->n_ff, true, &L->w_gate)) ||
        (st = model_load_matrix(ld, il, "ffn_up.weight", E, hp->n_ff, true, &L->w_up)) ||
        (st = model_load_matrix(ld, il, "ffn_down.weight", hp->n_ff, E, true, &L->w_down)))
        return st;
    return bind_mixer(ld, il, L);
}

static shimmy_status bind_layer_moe(model_loader *ld, int32_t il, model_layer *L) {
    shimmy_status st = model_moe_bind(ld, il, L, false, false, true);
    return st ? st : bind_mixer(ld, il, L);
}

/* the norms and the layer's attention or DeltaNet part */
static shimmy_status bind_mixer(model_loader *ld, int32_t il, model_layer *L) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd, nv = hp->ssm_dt_rank, inner = hp->ssm_inner;
    const int32_t interval = interval_of(ld);
    shimmy_status st;
    if ((st = model_load_vector(ld, il, "attn_norm.weight", E, true, &L->attn_norm)) ||
        (st = model_load_vector(ld, il, "post_attention_norm.weight", E, true, &L->ffn_norm)))
        return st;
    if (!is_recurrent(il, interval)) {
        const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
        const int64_t kv = (int64_t)hp->n_head_kv * hp->head_dim;
        return (st = model_load_matrix(ld, il, "attn_q.weight", E, 2 * q_dim, true, &L->wq)) ||
                       (st = model_load_matrix(ld, il, "attn_k.weight", E, kv, true, &L->wk)) ||
                       (st = model_load_matrix(ld, il, "attn_v.weight", E, kv, true, &L->wv)) ||
                       (st = model_load_matrix(ld, il, "attn_output.weight", q_dim, E, true,
                                               &L->wo)) ||
                       (st = model_load_vector(ld, il, "attn_q_norm.weight", hp->head_dim, true,
                                               &L->q_norm)) ||
                       (st = model_load_vector(ld, il, "attn_k_norm.weight", hp->head_dim, true,
                                               &L->k_norm))
                   ? st
                   : SHIMMY_OK;
    }
    L->recurrent = true;
    int64_t before = 0;
    for (int32_t j = 0; j < il; j++) before += is_recurrent(j, interval);
    L->state_off = before * layer_state(hp);
    if ((st = model_load_matrix(ld, il, "attn_qkv.weight", E, conv_dim(hp), true, &L->wqkv)) ||
        (st = model_load_matrix(ld, il, "attn_gate.weight", E, inner, true, &L->ssm_z)) ||
        (st = model_load_matrix(ld, il, "ssm_alpha.weight", E, nv, true, &L->ssm_alpha)) ||
        (st = model_load_matrix(ld, il, "ssm_beta.weight", E, nv, true, &L->ssm_beta)) ||
        (st = model_load_matrix(ld, il, "ssm_out.weight", inner, E, true, &L->ssm_out)) ||
        (st = model_load_vector(ld, il, "ssm_dt.bias", nv, true, &L->ssm_dt_b)) ||
        (st = model_load_vector(ld, il, "ssm_a", nv, true, &L->ssm_a)) ||
        (st = model_load_vector(ld, il, "ssm_norm.weight", hp->ssm_state, true, &L->ssm_norm)))
        return st;
    /* the conv taps: conv_dim rows of ssm_conv (GGUF shape [ssm_conv, conv_dim]) */
    const gguf_tensor *t = NULL;
    char name[96];
    snprintf(name, sizeof name, "blk.%d.ssm_conv1d.weight", il);
    t = gguf_find_tensor(model_loader_file(ld), name);
    if (!t || t->type != GGUF_T_F32 || t->ne[0] != hp->ssm_conv || t->ne[1] != conv_dim(hp) ||
        t->ne[2] != 1 || (uintptr_t)t->data % sizeof(float))
        return model_load_fail(ld, SHIMMY_ERR_FORMAT, "tensor '%s' must be F32 of shape [%d, %lld]",
                               name, hp->ssm_conv, (long long)conv_dim(hp));
    L->ssm_conv1d = t->data;
    return SHIMMY_OK;
}

static float softplus(float x) {
    return x > 20.0f ? x : log1pf(expf(x));
}
static float sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}

static void deltanet_layer(model_ctx *c, const model_layer *L) {
    const model_hparams *hp = &c->m->hp;
    const int32_t n = c->n_tok, nv = hp->ssm_dt_rank, dv = hp->ssm_inner / nv;
    const int64_t cd = conv_dim(hp), inner = hp->ssm_inner;
    /* the pieces are laid out by the step's n entries, not n_batch: the first n rows of aux
     * (n * aux_floats floats, what a device moves) hold all but the delta rule's scratch,
     * which the CPU alone uses */
    float *mixed = c->aux, *z = mixed + n * cd, *alpha = z + n * inner, *beta = alpha + n * nv;
    float *o = beta + n * nv, *scratch = o + n * inner;
    const model_weight *w[4] = {&L->wqkv, &L->ssm_z, &L->ssm_alpha, &L->ssm_beta};
    float *const y[4] = {mixed, z, alpha, beta};
    model_linear_n(c, 4, w, c->xn, y, n);
    /* the gates, the recurrence and the gated norm are the CPU's */
    model_dev_host(c);
    for (int32_t t = 0; t < n; t++)
        for (int32_t h = 0; h < nv; h++) {
            float *a = &alpha[(int64_t)t * nv + h];
            *a = softplus(*a + L->ssm_dt_b[h]) * L->ssm_a[h]; /* the decay gate, < 0 */
            beta[(int64_t)t * nv + h] = sigmoid(beta[(int64_t)t * nv + h]);
        }
    model_op_deltanet(c, L, mixed, alpha, beta, o, scratch);
    /* gated RMSNorm per value head: norm(o) * silu(z) */
    for (int64_t r = 0; r < (int64_t)n * nv; r++) {
        float *oh = o + r * dv;
        const float *zh = z + r * dv;
        model_rms_norm(oh, L->ssm_norm, oh, dv, hp->rms_eps);
        for (int32_t j = 0; j < dv; j++) oh[j] *= zh[j] / (1.0f + expf(-zh[j]));
    }
    model_linear(c, &L->ssm_out, o, c->xn, n);
}

static void attention_layer(model_ctx *c, const model_layer *L, int32_t il,
                            const model_rope_cfg *rope) {
    const model_hparams *hp = &c->m->hp;
    const int32_t n = c->n_tok, hd = hp->head_dim;
    const int64_t q_dim = (int64_t)hp->n_head * hd;
    /* [query | gate] rows, then the gates: within aux's first n rows (3 * q_dim <= aux_floats),
     * which a device moves */
    float *qg = c->aux, *gate = qg + (int64_t)n * 2 * q_dim;
    const model_weight *w[3] = {&L->wq, &L->wk, &L->wv};
    float *const y[3] = {qg, c->k, c->v};
    model_linear_n(c, 3, w, c->xn, y, n);
    model_dev_host(c);
    for (int32_t t = 0; t < n; t++) /* per head [query | gate] */
        for (int32_t h = 0; h < hp->n_head; h++) {
            const float *src = qg + (int64_t)t * 2 * q_dim + (int64_t)h * 2 * hd;
            memcpy(c->q + (int64_t)t * q_dim + (int64_t)h * hd, src, sizeof(float) * (size_t)hd);
            memcpy(gate + (int64_t)t * q_dim + (int64_t)h * hd, src + hd,
                   sizeof(float) * (size_t)hd);
        }
    model_op_head_norm(c, c->q, L->q_norm, hp->n_head, hd, hp->rms_eps);
    model_op_head_norm(c, c->k, L->k_norm, hp->n_head_kv, hd, hp->rms_eps);
    model_op_rope_qk(c, 0, rope);
    const model_attn_params attn = {.scale = 1.0f / sqrtf((float)hd)};
    model_op_attention(c, il, &attn);
    model_dev_host(c);
    for (int64_t i = 0; i < (int64_t)n * q_dim; i++) c->att[i] *= sigmoid(gate[i]);
    model_linear(c, &L->wo, c->att, c->xn, n);
}

/* moe NULL: the dense SwiGLU FFN */
static void forward_ffn(model_ctx *c, const model_moe_params *moe) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const model_rope_cfg rope = model_rope_cfg_of(m);
    model_op_embed(c, 1.0f);
    model_op_rope_prepare(c, 0, &rope);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        model_op_rms_norm(c, c->x, L->attn_norm, c->xn, E);
        if (L->recurrent)
            deltanet_layer(c, L);
        else
            attention_layer(c, L, il, &rope);
        model_op_add(c, c->x, c->xn, E);
        model_op_rms_norm(c, c->x, L->ffn_norm, c->xn, E);
        if (moe)
            model_op_moe(c, L, moe, c->xn, c->xn);
        else
            model_op_ffn_glu(c, L, MODEL_GLU_SILU);
        model_op_add(c, c->x, c->xn, E);
    }
    model_op_logits(c, m->output_norm, hp->rms_eps, 0.0f);
}

static void forward(model_ctx *c) {
    forward_ffn(c, NULL);
}

static void forward_moe(model_ctx *c) {
    const model_moe_params moe = {.gating = MODEL_MOE_SOFTMAX, .act = MODEL_MOE_SILU, .norm = true};
    forward_ffn(c, &moe);
}

const model_arch model_arch_qwen35 = {
    .name = "qwen35",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};

const model_arch model_arch_qwen35moe = {
    .name = "qwen35moe",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams_moe,
    .bind_layer = bind_layer_moe,
    .forward = forward_moe,
    .device = true,
};
