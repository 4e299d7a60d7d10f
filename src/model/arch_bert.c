/* bert (BERT, bge, all-MiniLM, bge-reranker): an encoder. Embeddings are the token's row plus
 * token type 0 plus a learned absolute position, LayerNorm'd; each post-LN block is
 *   x = LN(x + wo · attention(q, k, v of x) + bo)     (q/k/v with biases, every token sees all)
 *   x = LN(x + down(gelu(up(x) + b_up)) + b_down)
 * and the output is the final hidden states (pooled by the caller) or, for rerankers, the
 * classification head's score. nomic-bert reuses the block with rotary positions (its file). */
#include "model.h"

#include <math.h>
#include <string.h>

shimmy_status model_bert_hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_load_key_f32(ld, "attention.layer_norm_epsilon", true, &hp->norm_eps);
    if (st) return st;
    if (!(hp->norm_eps > 0.0f))
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "%s.attention.layer_norm_epsilon must be positive",
                               model_loader_model(ld)->arch->name);
    if (hp->n_head_kv != hp->n_head)
        return model_load_fail(ld, SHIMMY_ERR_UNSUPPORTED,
                               "%s with %d KV heads for %d heads is not supported",
                               model_loader_model(ld)->arch->name, hp->n_head_kv, hp->n_head);
    return SHIMMY_OK;
}

/* token types, learned positions (required when `positions`) and the embeddings' LayerNorm */
shimmy_status model_bert_bind_model(model_loader *ld, bool positions) {
    model *m = ld->m;
    const int64_t E = m->hp.n_embd;
    const gguf_tensor *tt = gguf_find_tensor(ld->f, "token_types.weight");
    const gguf_tensor *pe = gguf_find_tensor(ld->f, "position_embd.weight");
    shimmy_status st;
    if (tt && (st = model_load_matrix(ld, -1, "token_types.weight", E,
                                      tt->ne[1] > 0 ? tt->ne[1] : 1, true, &m->type_embd)))
        return st;
    if (positions && !pe)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "tensor 'position_embd.weight' is missing (architecture %s)",
                               m->arch->name);
    if (pe && (st = model_load_matrix(ld, -1, "position_embd.weight", E,
                                      pe->ne[1] > 0 ? pe->ne[1] : 1, true, &m->pos_embd)))
        return st;
    if ((st = model_load_vector(ld, -1, "token_embd_norm.weight", E, true, &m->embd_norm)) ||
        (st = model_load_vector(ld, -1, "token_embd_norm.bias", E, false, &m->embd_norm_b)))
        return st;
    return SHIMMY_OK;
}

static shimmy_status bind_model(model_loader *ld) {
    return model_bert_bind_model(ld, true);
}

/* The post-LN norms of a block, shared with nomic-bert. */
shimmy_status model_bert_bind_norms(model_loader *ld, int32_t il, model_layer *L) {
    const int64_t E = model_loader_model(ld)->hp.n_embd;
    shimmy_status st;
    if ((st = model_load_vector(ld, il, "attn_output_norm.weight", E, true, &L->attn_post_norm)) ||
        (st = model_load_vector(ld, il, "attn_output_norm.bias", E, false, &L->attn_post_norm_b)) ||
        (st = model_load_vector(ld, il, "layer_output_norm.weight", E, true, &L->ffn_post_norm)) ||
        (st = model_load_vector(ld, il, "layer_output_norm.bias", E, false, &L->ffn_post_norm_b)))
        return st;
    return SHIMMY_OK;
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    shimmy_status st;
    if ((st = model_load_matrix(ld, il, "attn_q.weight", E, q_dim, true, &L->wq)) ||
        (st = model_load_matrix(ld, il, "attn_k.weight", E, q_dim, true, &L->wk)) ||
        (st = model_load_matrix(ld, il, "attn_v.weight", E, v_dim, true, &L->wv)) ||
        (st = model_load_matrix(ld, il, "attn_output.weight", v_dim, E, true, &L->wo)) ||
        (st = model_load_vector(ld, il, "attn_q.bias", q_dim, false, &L->bq)) ||
        (st = model_load_vector(ld, il, "attn_k.bias", q_dim, false, &L->bk)) ||
        (st = model_load_vector(ld, il, "attn_v.bias", v_dim, false, &L->bv)) ||
        (st = model_load_vector(ld, il, "attn_output.bias", E, false, &L->bo)) ||
        (st = model_load_matrix(ld, il, "ffn_up.weight", E, hp->n_ff, true, &L->w_up)) ||
        (st = model_load_vector(ld, il, "ffn_up.bias", hp->n_ff, false, &L->b_up)) ||
        (st = model_load_matrix(ld, il, "ffn_down.weight", hp->n_ff, E, true, &L->w_down)) ||
        (st = model_load_vector(ld, il, "ffn_down.bias", E, false, &L->b_down)))
        return st;
    return model_bert_bind_norms(ld, il, L);
}

/* The block stack of bert and nomic-bert. x holds the residual stream and xn a copy of it at
 * each block's start (the q/k/v and FFN ops read xn). */
void model_bert_forward_impl(model_ctx *c, const model_rope_cfg *rope) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const model_attn_params attn = {.scale = 1.0f / sqrtf((float)hp->head_dim), .non_causal = true};
    model_op_embed(c, 1.0f);
    model_op_embed_encoder(c);
    model_op_copy_rows(c, c->xn, c->x, E);
    if (rope) model_op_rope_prepare(c, 0, rope);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        if (L->wqkv.data)
            model_op_qkv_fused(c, L);
        else
            model_op_qkv(c, L);
        if (rope) model_op_rope_qk(c, 0, rope);
        model_op_attention(c, il, &attn);
        model_linear(c, &L->wo, c->att, c->xn, c->n_tok);
        model_op_add_bias(c, c->xn, L->bo, E);
        model_op_add(c, c->x, c->xn, E);
        model_op_layer_norm(c, c->x, L->attn_post_norm, L->attn_post_norm_b, c->x, E, hp->norm_eps);
        model_op_copy_rows(c, c->xn, c->x, E);
        if (L->w_gate.data)
            model_op_ffn_glu(c, L, MODEL_GLU_SILU);
        else
            model_op_ffn_gelu(c, L);
        model_op_add(c, c->x, c->xn, E);
        model_op_layer_norm(c, c->x, L->ffn_post_norm, L->ffn_post_norm_b, c->x, E, hp->norm_eps);
        model_op_copy_rows(c, c->xn, c->x, E);
    }
    model_op_hidden(c);
}

static void forward(model_ctx *c) {
    model_bert_forward_impl(c, NULL);
}

const model_arch model_arch_bert = {
    .name = "bert",
    .rope_mode = MODEL_ROPE_NORM,
    .hparams = model_bert_hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .bind_model = bind_model,
    .encoder = true,
    .device = true,
};
