/* qwen3moe (Qwen3-30B-A3B, Qwen3-235B-A22B, Qwen3-Coder-30B-A3B): qwen3's attention (no biases,
 * per-head RMSNorm of q and k before NeoX RoPE) and a mixture-of-experts FFN in place of the
 * dense one: softmax router over all experts, top expert_used_count of them, weights
 * renormalised to sum 1 (the reference always does for this family: Qwen3-MoE's
 * norm_topk_prob), SwiGLU experts. */
#include "model.h"

#include <math.h>

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_llama_hparams(ld, hp);
    return st ? st : model_moe_hparams(ld, hp);
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
        (st = model_load_vector(ld, il, "attn_q_norm.weight", hp->head_dim, true, &L->q_norm)) ||
        (st = model_load_vector(ld, il, "attn_k_norm.weight", hp->head_dim, true, &L->k_norm)) ||
        (st = model_load_vector(ld, il, "ffn_norm.weight", E, true, &L->ffn_norm)))
        return st;
    return model_moe_bind(ld, il, L, false, false, false);
}

void model_qwen_moe_forward(model_ctx *c, const model_moe_params *moe) {
    model_llama_forward_ffn(c, moe); /* llama's block with the MoE FFN */
}

static void forward(model_ctx *c) {
    const model_moe_params moe = {.gating = MODEL_MOE_SOFTMAX, .act = MODEL_MOE_SILU, .norm = true};
    model_qwen_moe_forward(c, &moe);
}

const model_arch model_arch_qwen3moe = {
    .name = "qwen3moe",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};
