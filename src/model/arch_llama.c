/* llama (Llama 1/2/3, Mistral and the many models that reuse the layout): RoPE on adjacent pairs,
 * optional q/k/v/o biases, optional llama3 rope_freqs factors. The block, also used by qwen2 and
 * qwen3 (which differ only in what they bind and their rope mode):
 *   x += wo · attention(rope(q), rope(k), v) of rms_norm(x)
 *   x += down(silu(gate(h)) * up(h)), h = rms_norm(x)
 * with a per-head RMSNorm of q and k before RoPE when the layer has one (qwen3). */
#include "model.h"

#include <math.h>

shimmy_status model_llama_hparams(model_loader *ld, model_hparams *hp) {
    return model_load_key_f32(ld, "attention.layer_norm_rms_epsilon", true, &hp->rms_eps);
}

/* The llama layout; biases are bound when present (required: qwen2), per-head q/k norms are
 * required when qk_norm (qwen3) and refused otherwise, since the block would ignore them. */
shimmy_status model_llama_bind(model_loader *ld, int32_t il, model_layer *L, bool bias,
                               bool qk_norm) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t o_dim = (int64_t)hp->n_head * hp->head_dim_v;
    shimmy_status st;
    if ((st = model_load_vector(ld, il, "attn_norm.weight", E, true, &L->attn_norm)) ||
        (st = model_load_matrix(ld, il, "attn_q.weight", E, q_dim, true, &L->wq)) ||
        (st = model_load_matrix(ld, il, "attn_k.weight", E, k_dim, true, &L->wk)) ||
        (st = model_load_matrix(ld, il, "attn_v.weight", E, v_dim, true, &L->wv)) ||
        (st = model_load_matrix(ld, il, "attn_output.weight", o_dim, E, true, &L->wo)) ||
        (st = model_load_vector(ld, il, "attn_q.bias", q_dim, bias, &L->bq)) ||
        (st = model_load_vector(ld, il, "attn_k.bias", k_dim, bias, &L->bk)) ||
        (st = model_load_vector(ld, il, "attn_v.bias", v_dim, bias, &L->bv)) ||
        (st = model_load_vector(ld, il, "attn_output.bias", E, false, &L->bo)) ||
        (st = model_load_vector(ld, il, "attn_q_norm.weight", hp->head_dim, qk_norm, &L->q_norm)) ||
        (st = model_load_vector(ld, il, "attn_k_norm.weight", hp->head_dim, qk_norm, &L->k_norm)) ||
        (st = model_load_vector(ld, il, "ffn_norm.weight", E, true, &L->ffn_norm)) ||
        (st = model_load_matrix(ld, il, "ffn_gate.weight", E, hp->n_ff, true, &L->w_gate)) ||
        (st = model_load_matrix(ld, il, "ffn_up.weight", E, hp->n_ff, true, &L->w_up)) ||
        (st = model_load_matrix(ld, il, "ffn_down.weight", hp->n_ff, E, true, &L->w_down)))
        return st;
    if (!qk_norm && (L->q_norm || L->k_norm))
        return model_load_fail(
            ld, SHIMMY_ERR_UNSUPPORTED,
            "tensor 'blk.%d.attn_%c_norm.weight' (per-head q/k norm) is not used "
            "by architecture %s",
            il, L->q_norm ? 'q' : 'k', model_loader_model(ld)->arch->name);
    return SHIMMY_OK;
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    return model_llama_bind(ld, il, L, false, false);
}

void model_llama_forward(model_ctx *c) {
    model_llama_forward_ffn(c, NULL);
}

void model_llama_forward_ffn(model_ctx *c, const struct model_moe_params *moe) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const model_rope_cfg rope = model_rope_cfg_of(m);
    const model_attn_params attn = {.scale = 1.0f / sqrtf((float)hp->head_dim)};
    model_op_embed(c, 1.0f);
    model_op_rope_prepare(c, 0, &rope);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        model_op_rms_norm(c, c->x, L->attn_norm, c->xn, E);
        model_op_qkv(c, L);
        model_op_head_norm(c, c->q, L->q_norm, hp->n_head, hp->head_dim, hp->rms_eps);
        model_op_head_norm(c, c->k, L->k_norm, hp->n_head_kv, hp->head_dim, hp->rms_eps);
        model_op_rope_qk(c, 0, &rope);
        model_op_attention(c, il, &attn);
        model_linear(c, &L->wo, c->att, c->xn, c->n_tok);
        model_op_add_bias(c, c->xn, L->bo, E);
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

const model_arch model_arch_llama = {
    .name = "llama",
    .rope_mode = MODEL_ROPE_NORM,
    .hparams = model_llama_hparams,
    .bind_layer = bind_layer,
    .forward = model_llama_forward,
    .device = true,
};
