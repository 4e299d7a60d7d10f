/* nomic-bert (nomic-embed-text): bert's post-LN encoder block without learned positions or
 * linear biases, with NeoX rotary positions on q and k, a fused q/k/v product and a SwiGLU FFN
 * (down(silu(gate(x)) * up(x))). */
#include "model.h"

static shimmy_status bind_model(model_loader *ld) {
    return model_bert_bind_model(ld, false);
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t qkv_dim = q_dim + 2 * (int64_t)hp->n_head_kv * hp->head_dim;
    shimmy_status st;
    if ((st = model_load_matrix(ld, il, "attn_qkv.weight", E, qkv_dim, true, &L->wqkv)) ||
        (st = model_load_vector(ld, il, "attn_qkv.bias", qkv_dim, false, &L->bqkv)) ||
        (st = model_load_matrix(ld, il, "attn_output.weight", q_dim, E, true, &L->wo)) ||
        (st = model_load_vector(ld, il, "attn_output.bias", E, false, &L->bo)) ||
        (st = model_load_matrix(ld, il, "ffn_gate.weight", E, hp->n_ff, true, &L->w_gate)) ||
        (st = model_load_matrix(ld, il, "ffn_up.weight", E, hp->n_ff, true, &L->w_up)) ||
        (st = model_load_matrix(ld, il, "ffn_down.weight", hp->n_ff, E, true, &L->w_down)))
        return st;
    return model_bert_bind_norms(ld, il, L);
}

static void forward(model_ctx *c) {
    const model_hparams *hp = &c->m->hp;
    const model_rope_cfg rope = {.mode = MODEL_ROPE_NEOX,
                                 .n_rot = hp->n_rot,
                                 .base = hp->rope_base,
                                 .freq_scale = hp->rope_freq_scale};
    model_bert_forward_impl(c, &rope);
}

const model_arch model_arch_nomic_bert = {
    .name = "nomic-bert",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = model_bert_hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .bind_model = bind_model,
    .encoder = true,
    .device = true,
};
