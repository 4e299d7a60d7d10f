/* gpt-oss (OpenAI's gpt-oss-20b / -120b; the reference's LLM_ARCH_OPENAI_MOE): sliding-window
 * attention on even layers (window attention.sliding_window, period
 * attention.sliding_window_pattern, default 2) and full attention on odd ones; attention
 * sinks (a learned per-head logit in the softmax's denominator); q/k/v/o biases; NeoX RoPE with
 * YaRN (rope.scaling.type = yarn); scores scaled by 1/sqrt(head_dim); the FFN is a mixture of
 * experts after post_attention_norm: router with a bias, top expert_used_count of the biased
 * logits, softmax over the chosen ones (not renormalised further), experts with gate/up/down
 * biases and the clamped "swiglu_oai" activation (alpha 1.702, limit 7, fixed by the reference
 * rather than stored in the file). The output projection is untied. */
#include "model.h"

#include <math.h>

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st;
    if ((st = model_llama_hparams(ld, hp)) || (st = model_moe_hparams(ld, hp)) ||
        (st = model_load_key_i32(ld, "attention.sliding_window", true, 1, 1 << 24, &hp->n_swa)))
        return st;
    return SHIMMY_OK;
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    const model *m = model_loader_model(ld);
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t o_dim = (int64_t)hp->n_head * hp->head_dim_v;
    int32_t period = 2;
    shimmy_status st;
    if ((st = model_load_key_i32(ld, "attention.sliding_window_pattern", false, 1, 1 << 16,
                                 &period)))
        return st;
    /* the reference's pattern: layer il is local unless il % period is the last of the period */
    L->window = il % period < period - 1 ? hp->n_swa : 0;
    if (il == 0 && !gguf_find_tensor(model_loader_file(ld), "output.weight"))
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "tensor 'output.weight' is missing (architecture gpt-oss has an "
                               "untied output projection)");
    if ((st = model_load_vector(ld, il, "attn_norm.weight", E, true, &L->attn_norm)) ||
        (st = model_load_matrix(ld, il, "attn_q.weight", E, q_dim, true, &L->wq)) ||
        (st = model_load_matrix(ld, il, "attn_k.weight", E, k_dim, true, &L->wk)) ||
        (st = model_load_matrix(ld, il, "attn_v.weight", E, v_dim, true, &L->wv)) ||
        (st = model_load_matrix(ld, il, "attn_output.weight", o_dim, E, true, &L->wo)) ||
        (st = model_load_vector(ld, il, "attn_q.bias", q_dim, true, &L->bq)) ||
        (st = model_load_vector(ld, il, "attn_k.bias", k_dim, true, &L->bk)) ||
        (st = model_load_vector(ld, il, "attn_v.bias", v_dim, true, &L->bv)) ||
        (st = model_load_vector(ld, il, "attn_output.bias", E, true, &L->bo)) ||
        (st = model_load_vector(ld, il, "attn_sinks.weight", hp->n_head, true, &L->attn_sinks)) ||
        (st = model_load_vector(ld, il, "post_attention_norm.weight", E, true, &L->ffn_norm)))
        return st;
    return model_moe_bind(ld, il, L, true, true, false);
}

static void forward(model_ctx *c) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const model_rope_cfg rope = model_rope_cfg_of(m);
    const model_moe_params moe = {.gating = MODEL_MOE_SOFTMAX_TOPK, .act = MODEL_MOE_SWIGLU_OAI};
    model_op_embed(c, 1.0f);
    model_op_rope_prepare(c, 0, &rope);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        const model_attn_params attn = {.scale = 1.0f / sqrtf((float)hp->head_dim),
                                        .sinks = L->attn_sinks};
        model_op_rms_norm(c, c->x, L->attn_norm, c->xn, E);
        model_op_qkv(c, L);
        model_op_rope_qk(c, 0, &rope);
        model_op_attention(c, il, &attn);
        model_linear(c, &L->wo, c->att, c->xn, c->n_tok);
        model_op_add_bias(c, c->xn, L->bo, E);
        model_op_add(c, c->x, c->xn, E);
        model_op_rms_norm(c, c->x, L->ffn_norm, c->xn, E);
        model_op_moe(c, L, &moe, c->xn, c->xn);
        model_op_add(c, c->x, c->xn, E);
    }
    model_op_logits(c, m->output_norm, hp->rms_eps, 0.0f);
}

const model_arch model_arch_gpt_oss = {
    .name = "gpt-oss",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};
