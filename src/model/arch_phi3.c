/* phi3 (Phi-3, Phi-3.5, Phi-4-mini, Phi-4): llama's pre-norm block with
 *  - q, k, v from one fused matrix attn_qkv (rows q | k | v), or three separate ones;
 *  - gate and up from one fused ffn_up of 2*n_ff rows (first half gate, second up), SwiGLU;
 *  - NeoX rope on the first rope.dimension_count dims of each head only (partial rotary);
 *  - LongRoPE: global rope_factors_short / rope_factors_long (n_rot/2) divide the frequencies,
 *    the long ones when the context is longer than rope.scaling.original_context_length, and
 *    rope.scaling.attn_factor multiplies cos and sin;
 *  - q multiplied by 1/sqrt(head_dim) after rope, the scores not scaled again (the reference's
 *    order of roundings).
 * attention.sliding_window is in Phi-3/3.5 files but llama.cpp disables it for this architecture
 * (its converters do not write which layers it applies to; Phi-3.5's 262144 exceeds the context
 * anyway), so every layer here is global too, as in the logits it produces. */
#include "model.h"

#include <math.h>

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_llama_hparams(ld, hp);
    if (st) return st;
    if (hp->head_dim_v != hp->head_dim)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "phi3: key and value heads must have one size (%d vs %d)",
                               hp->head_dim, hp->head_dim_v);
    hp->n_swa = 0;
    return SHIMMY_OK;
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    shimmy_status st;
    if ((st = model_load_vector(ld, il, "attn_norm.weight", E, true, &L->attn_norm)) ||
        (st = model_load_matrix(ld, il, "attn_qkv.weight", E, q_dim + 2 * kv_dim, false, &L->wqkv)))
        return st;
    if (L->wqkv.data) {
        st = model_load_vector(ld, il, "attn_qkv.bias", q_dim + 2 * kv_dim, false, &L->bqkv);
    } else if (!(st = model_load_matrix(ld, il, "attn_q.weight", E, q_dim, true, &L->wq)) &&
               !(st = model_load_matrix(ld, il, "attn_k.weight", E, kv_dim, true, &L->wk)) &&
               !(st = model_load_matrix(ld, il, "attn_v.weight", E, kv_dim, true, &L->wv)) &&
               !(st = model_load_vector(ld, il, "attn_q.bias", q_dim, false, &L->bq)) &&
               !(st = model_load_vector(ld, il, "attn_k.bias", kv_dim, false, &L->bk))) {
        st = model_load_vector(ld, il, "attn_v.bias", kv_dim, false, &L->bv);
    }
    if (st || (st = model_load_matrix(ld, il, "attn_output.weight", q_dim, E, true, &L->wo)) ||
        (st = model_load_vector(ld, il, "ffn_norm.weight", E, true, &L->ffn_norm)) ||
        (st = model_load_matrix(ld, il, "ffn_up.weight", E, 2 * (int64_t)hp->n_ff, true,
                                &L->w_up)) ||
        (st = model_load_matrix(ld, il, "ffn_down.weight", hp->n_ff, E, true, &L->w_down)) ||
        (st = model_load_vector(ld, -1, "rope_factors_long.weight", hp->n_rot / 2, false,
                                &L->rope_long)) ||
        (st = model_load_vector(ld, -1, "rope_factors_short.weight", hp->n_rot / 2, false,
                                &L->rope_short)))
        return st;
    return SHIMMY_OK;
}

static void forward(model_ctx *c) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    model_rope_cfg rope = model_rope_cfg_of(m);
    const float *factors = model_rope_longrope_factors(c, &m->layers[0]);
    if (factors) rope.freq_factors = factors;
    const model_attn_params attn = {.scale = 1.0f};
    const float q_scale = 1.0f / sqrtf((float)hp->head_dim);
    model_op_embed(c, 1.0f);
    model_op_rope_prepare(c, 0, &rope);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        model_op_rms_norm(c, c->x, L->attn_norm, c->xn, E);
        if (L->wqkv.data)
            model_op_qkv_fused(c, L);
        else
            model_op_qkv(c, L);
        model_op_rope_qk(c, 0, &rope);
        model_op_scale(c, c->q, q_dim, q_scale);
        model_op_attention(c, il, &attn);
        model_linear(c, &L->wo, c->att, c->xn, c->n_tok);
        model_op_add(c, c->x, c->xn, E);
        model_op_rms_norm(c, c->x, L->ffn_norm, c->xn, E);
        model_op_ffn_swiglu_fused(c, L);
        model_op_add(c, c->x, c->xn, E);
    }
    model_op_logits(c, m->output_norm, hp->rms_eps, 0.0f);
}

const model_arch model_arch_phi3 = {
    .name = "phi3",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};
