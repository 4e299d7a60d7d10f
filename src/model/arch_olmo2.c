/* olmo2 (OLMo 2, and OLMo 3 whose files keep this architecture): no norm before attention or
 * FFN; instead
 *   x += rms_norm(wo · attention(rope(rms_norm(q)), rope(rms_norm(k)), v)) of x
 *   x += rms_norm(down(silu(gate(x)) * up(x)))
 * where the q and k norms run over the whole projection (n_head*head_dim and
 * n_head_kv*head_dim weights), not per head. NeoX rope; untied output. OLMo 3 adds a sliding
 * window (attention.sliding_window) on layers il % period < period - 1 (period
 * attention.sliding_window_pattern, default 4) whose rope has no scaling (no YaRN) but the same
 * base: llama.cpp reads rope.freq_base_swa for this architecture and does not use it. */
#include "model.h"

#include <math.h>

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_llama_hparams(ld, hp);
    if (st) return st;
    if (hp->n_rot != hp->head_dim || hp->head_dim_v != hp->head_dim)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "olmo2: rope.dimension_count %d and the value head size %d must "
                               "equal the key head size %d",
                               hp->n_rot, hp->head_dim_v, hp->head_dim);
    return model_load_key_i32(ld, "attention.sliding_window", false, 0, 1 << 24, &hp->n_swa);
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    const model *m = model_loader_model(ld);
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    if (m->tied_output)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "tensor 'output.weight' is missing (architecture olmo2 has an "
                               "untied output projection)");
    if (hp->n_swa > 0) {
        int32_t period = 4;
        shimmy_status st =
            model_load_key_i32(ld, "attention.sliding_window_pattern", false, 0, 1 << 16, &period);
        if (st) return st;
        if (period == 0 || il % period < period - 1) L->window = hp->n_swa;
    }
    shimmy_status st;
    if ((st = model_load_matrix(ld, il, "attn_q.weight", E, q_dim, true, &L->wq)) ||
        (st = model_load_matrix(ld, il, "attn_k.weight", E, kv_dim, true, &L->wk)) ||
        (st = model_load_matrix(ld, il, "attn_v.weight", E, kv_dim, true, &L->wv)) ||
        (st = model_load_matrix(ld, il, "attn_output.weight", q_dim, E, true, &L->wo)) ||
        (st = model_load_vector(ld, il, "attn_q_norm.weight", q_dim, true, &L->q_norm)) ||
        (st = model_load_vector(ld, il, "attn_k_norm.weight", kv_dim, true, &L->k_norm)) ||
        (st = model_load_vector(ld, il, "post_attention_norm.weight", E, true,
                                &L->attn_post_norm)) ||
        (st = model_load_matrix(ld, il, "ffn_gate.weight", E, hp->n_ff, true, &L->w_gate)) ||
        (st = model_load_matrix(ld, il, "ffn_up.weight", E, hp->n_ff, true, &L->w_up)) ||
        (st = model_load_matrix(ld, il, "ffn_down.weight", hp->n_ff, E, true, &L->w_down)) ||
        (st = model_load_vector(ld, il, "post_ffw_norm.weight", E, true, &L->ffn_post_norm)))
        return st;
    return SHIMMY_OK;
}

/* q, k, v of the un-normed x (OLMo 2 has no norm before its attention) */
static void qkv_of_x(model_ctx *c, const model_layer *L) {
    const model_weight *w[3] = {&L->wq, &L->wk, &L->wv};
    float *const y[3] = {c->q, c->k, c->v};
    model_linear_n(c, 3, w, c->x, y, c->n_tok);
}

/* xn = down(silu(gate(x)) * up(x)): the FFN of the un-normed x (no biases in this family) */
static void ffn_of_x(model_ctx *c, const model_layer *L) {
    const model_weight *w[2] = {&L->w_gate, &L->w_up};
    float *const y[2] = {c->gate, c->up};
    model_linear_n(c, 2, w, c->x, y, c->n_tok);
    model_op_glu(c, MODEL_GLU_SILU, c->gate, c->up, L->w_up.n_out);
    model_linear(c, &L->w_down, c->gate, c->xn, c->n_tok);
}

static void forward(model_ctx *c) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const model_rope_cfg rope = model_rope_cfg_of(m);
    const model_rope_cfg rope_swa = {
        .mode = rope.mode, .n_rot = rope.n_rot, .base = hp->rope_base, .freq_scale = 1.0f};
    const model_attn_params attn = {.scale = 1.0f / sqrtf((float)hp->head_dim)};
    model_op_embed(c, 1.0f);
    model_op_rope_prepare(c, 0, &rope);
    if (hp->n_swa > 0) model_op_rope_prepare(c, 1, &rope_swa);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        /* the products read x itself: the same rows a copy into xn would give them, and
         * nothing for the device to move */
        qkv_of_x(c, L);
        model_op_rms_norm(c, c->q, L->q_norm, c->q, q_dim);
        model_op_rms_norm(c, c->k, L->k_norm, c->k, kv_dim);
        if (L->window > 0)
            model_op_rope_qk(c, 1, &rope_swa);
        else
            model_op_rope_qk(c, 0, &rope);
        model_op_attention(c, il, &attn);
        model_linear(c, &L->wo, c->att, c->xn, c->n_tok);
        model_op_rms_norm(c, c->xn, L->attn_post_norm, c->xn, E);
        model_op_add(c, c->x, c->xn, E);
        ffn_of_x(c, L);
        model_op_rms_norm(c, c->xn, L->ffn_post_norm, c->xn, E);
        model_op_add(c, c->x, c->xn, E);
    }
    model_op_logits(c, m->output_norm, hp->rms_eps, 0.0f);
}

const model_arch model_arch_olmo2 = {
    .name = "olmo2",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};
