/* qwen2moe (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): qwen2's attention (q/k/v biases, NeoX RoPE) and
 * a mixture-of-experts FFN: softmax router over all experts, top expert_used_count of them, the
 * chosen probabilities used as they are (not renormalised), SwiGLU experts, plus a shared
 * expert every token runs (expert_shared_feed_forward_length rows, default feed_forward_length)
 * whose output is scaled by sigmoid(ffn_gate_inp_shexp · x). */
#include "model.h"

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st;
    if ((st = model_llama_hparams(ld, hp)) || (st = model_moe_hparams(ld, hp))) return st;
    if (hp->n_ff_shexp == 0) hp->n_ff_shexp = hp->n_ff;
    /* the shared expert runs in the context's dense FFN scratch, sized by n_ff */
    if (hp->n_ff < hp->n_ff_shexp) hp->n_ff = hp->n_ff_shexp;
    return SHIMMY_OK;
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
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
        (st = model_load_vector(ld, il, "attn_q.bias", q_dim, false, &L->bq)) ||
        (st = model_load_vector(ld, il, "attn_k.bias", k_dim, false, &L->bk)) ||
        (st = model_load_vector(ld, il, "attn_v.bias", v_dim, false, &L->bv)) ||
        (st = model_load_vector(ld, il, "ffn_norm.weight", E, true, &L->ffn_norm)))
        return st;
    return model_moe_bind(ld, il, L, false, false, true);
}

static void forward(model_ctx *c) {
    const model_moe_params moe = {.gating = MODEL_MOE_SOFTMAX, .act = MODEL_MOE_SILU};
    model_qwen_moe_forward(c, &moe);
}

const model_arch model_arch_qwen2moe = {
    .name = "qwen2moe",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};
