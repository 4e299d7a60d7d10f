/* gemma2 (Gemma 2), and the block gemma3 shares:
 *   x = embedding · sqrt(n_embd)
 *   x += post_norm(wo · attention(q_scale · rope(q), rope(k), v) of rms_norm(x))
 *   x += post_norm(down(gelu(gate(h)) * up(h))), h = rms_norm(x)
 *   logits = final_cap · tanh((output · rms_norm(x)) / final_cap)
 * with NeoX rope, the output tied to the embedding, sliding-window layers on a period (gemma2:
 * even layers, window 4096 unless the file says otherwise) that may use their own rope base,
 * and gemma2's attention scores soft-capped (cap · tanh(s / cap), before the softmax).
 * The query scale is 1/sqrt(head_dim) except for the 27B models, whose query_pre_attn_scalar is
 * n_embd / n_head; GGUF files carry no key for it, so the layer count tells them apart, as in
 * llama.cpp (gemma2 27B: 46 layers). */
#include "model.h"

#include <math.h>
#include <stdio.h>

/* Whether layer il is a sliding-window layer: per the file's attention.sliding_window_pattern,
 * a period or one flag per layer (as newer converters write it), else the family's period.
 * (llama.cpp reads only the period form and falls back to the default for an array; an array
 * says which layers are local outright, so it is honoured here.) */
static shimmy_status layer_is_swa(model_loader *ld, int32_t il, int32_t period, bool *out) {
    const model *m = model_loader_model(ld);
    char key[128];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", m->arch->name);
    const gguf_value *arr = gguf_get_arr(model_loader_file(ld), key, GGUF_VT_COUNT);
    if (arr) {
        const gguf_vtype t = arr->v.arr.elem_type;
        if (arr->v.arr.count != (uint64_t)m->hp.n_layer || t == GGUF_VT_STRING ||
            t == GGUF_VT_ARRAY)
            return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                                   "metadata key '%s' must be a period or one flag per layer "
                                   "(%d)",
                                   key, m->hp.n_layer);
        *out = gguf_arr_i64(arr, (uint64_t)il) != 0;
        return SHIMMY_OK;
    }
    shimmy_status st =
        model_load_key_i32(ld, "attention.sliding_window_pattern", false, 0, 1 << 16, &period);
    *out = period == 0 || il % period < period - 1;
    return st;
}

shimmy_status model_gemma_bind(model_loader *ld, int32_t il, model_layer *L, bool qk_norm,
                               int32_t swa_period) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t o_dim = (int64_t)hp->n_head * hp->head_dim_v;
    bool swa = false;
    shimmy_status st;
    if ((st = layer_is_swa(ld, il, swa_period, &swa)) ||
        (st = model_load_vector(ld, il, "attn_norm.weight", E, true, &L->attn_norm)) ||
        (st = model_load_matrix(ld, il, "attn_q.weight", E, q_dim, true, &L->wq)) ||
        (st = model_load_matrix(ld, il, "attn_k.weight", E, k_dim, true, &L->wk)) ||
        (st = model_load_matrix(ld, il, "attn_v.weight", E, v_dim, true, &L->wv)) ||
        (st = model_load_matrix(ld, il, "attn_output.weight", o_dim, E, true, &L->wo)) ||
        (st = model_load_vector(ld, il, "post_attention_norm.weight", E, true,
                                &L->attn_post_norm)) ||
        (st = model_load_vector(ld, il, "attn_q_norm.weight", hp->head_dim, qk_norm, &L->q_norm)) ||
        (st = model_load_vector(ld, il, "attn_k_norm.weight", hp->head_dim, qk_norm, &L->k_norm)) ||
        (st = model_load_vector(ld, il, "ffn_norm.weight", E, true, &L->ffn_norm)) ||
        (st = model_load_matrix(ld, il, "ffn_gate.weight", E, hp->n_ff, true, &L->w_gate)) ||
        (st = model_load_matrix(ld, il, "ffn_up.weight", E, hp->n_ff, true, &L->w_up)) ||
        (st = model_load_matrix(ld, il, "ffn_down.weight", hp->n_ff, E, true, &L->w_down)) ||
        (st = model_load_vector(ld, il, "post_ffw_norm.weight", E, true, &L->ffn_post_norm)))
        return st;
    if (!qk_norm && (L->q_norm || L->k_norm))
        return model_load_fail(ld, SHIMMY_ERR_UNSUPPORTED,
                               "tensor 'blk.%d.attn_%c_norm.weight' (per-head q/k norm) is not "
                               "used by architecture %s",
                               il, L->q_norm ? 'q' : 'k', model_loader_model(ld)->arch->name);
    if (hp->n_swa > 0 && swa) L->window = hp->n_swa;
    return SHIMMY_OK;
}

void model_gemma_forward(model_ctx *c, float q_scale) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    /* slot 0: the global layers' rope; slot 1: the sliding-window layers' */
    const model_rope_cfg rope[2] = {{.mode = m->arch->rope_mode,
                                     .n_rot = hp->n_rot,
                                     .base = hp->rope_base,
                                     .freq_scale = hp->rope_freq_scale},
                                    {.mode = m->arch->rope_mode,
                                     .n_rot = hp->n_rot,
                                     .base = hp->rope_base_swa,
                                     .freq_scale = hp->rope_freq_scale_swa}};
    /* the scale is applied to q, not to the scores: the scores are soft-capped as they come
     * out of q·k, as the reference does */
    const model_attn_params attn = {.scale = 1.0f, .softcap = hp->attn_softcap};
    model_op_embed(c, sqrtf((float)E));
    model_op_rope_prepare(c, 0, &rope[0]);
    if (hp->n_swa > 0) model_op_rope_prepare(c, 1, &rope[1]);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        const int slot = L->window > 0 ? 1 : 0;
        model_op_rms_norm(c, c->x, L->attn_norm, c->xn, E);
        model_op_qkv(c, L);
        model_op_head_norm(c, c->q, L->q_norm, hp->n_head, hp->head_dim, hp->rms_eps);
        model_op_head_norm(c, c->k, L->k_norm, hp->n_head_kv, hp->head_dim, hp->rms_eps);
        model_op_rope_qk(c, slot, &rope[slot]);
        model_op_scale(c, c->q, q_dim, q_scale);
        model_op_attention(c, il, &attn);
        model_linear(c, &L->wo, c->att, c->xn, c->n_tok);
        model_op_rms_norm(c, c->xn, L->attn_post_norm, c->xn, E);
        model_op_add(c, c->x, c->xn, E);
        model_op_rms_norm(c, c->x, L->ffn_norm, c->xn, E);
        model_op_ffn_glu(c, L, MODEL_GLU_GELU); /* no biases in this family */
        model_op_rms_norm(c, c->xn, L->ffn_post_norm, c->xn, E);
        model_op_add(c, c->x, c->xn, E);
    }
    model_op_logits(c, m->output_norm, hp->rms_eps, hp->final_softcap);
}

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    hp->n_swa = 4096; /* Gemma 2's window when the file does not say */
    hp->attn_softcap = 50.0f;
    hp->final_softcap = 30.0f;
    hp->rope_base_swa = hp->rope_base;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;
    shimmy_status st;
    if ((st = model_load_key_f32(ld, "attention.layer_norm_rms_epsilon", true, &hp->rms_eps)) ||
        (st = model_load_key_i32(ld, "attention.sliding_window", false, 0, 1 << 24, &hp->n_swa)) ||
        (st = model_load_key_f32(ld, "rope.freq_base_swa", false, &hp->rope_base_swa)) ||
        (st = model_load_key_f32(ld, "attn_logit_softcapping", false, &hp->attn_softcap)) ||
        (st = model_load_key_f32(ld, "final_logit_softcapping", false, &hp->final_softcap)))
        return st;
    if (hp->attn_softcap < 0.0f || hp->final_softcap < 0.0f || !(hp->rope_base_swa > 0.0f))
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "gemma2: soft-caps must not be negative and rope.freq_base_swa "
                               "must be positive");
    return SHIMMY_OK;
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    return model_gemma_bind(ld, il, L, false, 2); /* even layers local, odd layers global */
}

static void forward(model_ctx *c) {
    const model_hparams *hp = &c->m->hp;
    const int32_t pre_attn = hp->n_layer == 46 ? hp->n_embd / hp->n_head : hp->head_dim;
    model_gemma_forward(c, 1.0f / sqrtf((float)pre_attn));
}

const model_arch model_arch_gemma2 = {
    .name = "gemma2",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};
