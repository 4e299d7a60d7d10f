/*
 * model_ops.h — the shared ops of the forward pass: what the architecture files compose (norms,
 * rope variants, attention with windows/soft-caps/sinks, GLU variants, mixture of experts,
 * encoders' LayerNorm and GELU, Gated DeltaNet) and the kernels under them (scalar references
 * beside their SIMD versions). Part of model.h, which includes it after the types it uses; not
 * included on its own.
 */
#ifndef SHIMMY_MODEL_OPS_H
#define SHIMMY_MODEL_OPS_H

/* ---- shared ops: what the arch files compose (src/model/ops_*.c, attention.c) ----
 * They work on the context's current batch (c->n_tok rows) and its scratch buffers. */

/* x (n_tok, n_embd) = rows of the token embedding, times scale (1 = none). */
void model_op_embed(model_ctx *c, float scale);
/* out = rms_norm(x) * w per row of n (n_tok rows); x and out may alias. */
void model_op_rms_norm(model_ctx *c, const float *x, const float *w, float *out, int64_t n);
/* y (n_tok, dim) += b, b may be NULL. */
void model_op_add_bias(model_ctx *c, float *y, const float *b, int64_t dim);

/* Runs fn over rows [0, n_rows) on the context's pool when the rows hold enough elements
 * (row_elems each) to pay for waking it, else on the calling thread. fn must compute each row
 * alone (the split never changes a result). For the element-wise ops between the products: on
 * a prompt or an encoder batch they were the serial part of a step. */
typedef void (*model_rows_fn)(void *ctx, int64_t lo, int64_t hi);
void model_run_rows(model_ctx *c, int64_t n_rows, int64_t row_elems, model_rows_fn fn, void *ctx);
/* x (n_tok, n) += y. */
void model_op_add(model_ctx *c, float *x, const float *y, int64_t n);
/* dst (n_tok, n) = src, on the host (its rows split over the pool like the ops above) */
void model_op_copy_rows(model_ctx *c, float *dst, const float *src, int64_t n);
/* x (n_tok, n) *= s (s == 1: nothing). */
void model_op_scale(model_ctx *c, float *x, int64_t n, float s);
/* Per-head RMSNorm of y (n_tok, n_head*head_dim) with weights (head_dim); w NULL: nothing. */
void model_op_head_norm(model_ctx *c, float *y, const float *w, int32_t n_head, int32_t head_dim,
                        float eps);

/* RoPE of one configuration. model_op_rope_prepare computes the batch's angles once per step
 * into angle slot `slot` (0 .. MODEL_ROPE_SLOTS-1), shared by every layer that uses it. */
#define MODEL_ROPE_SLOTS 2
typedef struct model_rope_cfg {
    model_rope_mode mode;
    int32_t n_rot;
    float base, freq_scale;
    const float *freq_factors; /* (n_rot/2) or NULL: each frequency divided by its factor */
    float attn_factor;         /* multiplies cos and sin (LongRoPE, YaRN); 0 = 1 */
    /* YaRN (ext_factor > 0): frequencies ramp between interpolated and extrapolated over the
     * dims between beta_fast and beta_slow rotations at n_ctx_orig */
    float ext_factor, beta_fast, beta_slow;
    int32_t n_ctx_orig;
} model_rope_cfg;
void model_op_rope_prepare(model_ctx *c, int slot, const model_rope_cfg *r);
/* Rotates q (n_tok, n_head*head_dim) and k (n_tok, n_head_kv*head_dim) with slot's angles. */
void model_op_rope_qk(model_ctx *c, int slot, const model_rope_cfg *r);

/* Attention of layer il for the batch: stores c->k, c->v (n_tok rows) in the layer's cache
 * cells of each entry's sequence, then c->att (n_tok, n_head*head_dim_v) = softmax(q·Kᵀ·scale)·V
 * over the positions each entry sees: its sequence's positions up to its own (causal) or all of
 * them (not causal), only the last `window` of them when window > 0. softcap > 0 replaces each
 * score s by softcap·tanh(s/softcap); sinks (n_head) add a per-head logit to the softmax's
 * denominator. A plain causal full-window layer keeps the reference engine's float order, except
 * on the fast path with an F16 cache, where a decode entry attends by KV head (model_attn_by_kv).
 */
typedef struct model_attn_params {
    float scale;
    float softcap;
    const float *sinks;
    bool non_causal;
} model_attn_params;
void model_op_attention(model_ctx *c, int32_t il, const model_attn_params *a);
/* Whether a decode entry's query heads of one KV head attend together with an F16 cache
 * (quant_traits.dot_rows_n, F32 sums in the variant's order): the fast path (model_repack ran)
 * on a CPU whose kernel set has its own dot_rows_n. */
bool model_attn_by_kv(const model *m);

/* GLU of gate and up (n_tok, n_ff): gate = act(gate) * up. */
typedef enum model_glu { MODEL_GLU_SILU, MODEL_GLU_GELU } model_glu;
void model_op_glu(model_ctx *c, model_glu act, float *gate, const float *up, int64_t n_ff);
/* The usual gated FFN of layer L on c->xn: c->xn = down(act(gate(xn)) * up(xn)). */
void model_op_ffn_glu(model_ctx *c, const model_layer *L, model_glu act);
/* The usual attention input: q, k, v = xn · (wq, wk, wv)ᵀ + biases. */
void model_op_qkv(model_ctx *c, const model_layer *L);
/* Final norm (w, eps) and output projection of the entries that asked for logits, then each
 * logit l replaced by softcap·tanh(l/softcap) when softcap > 0. */
void model_op_logits(model_ctx *c, const float *norm_w, float eps, float softcap);

/* ---- shared ops of the smaller dense families (ops_dense.c) ---- */
/* The FFN of a layer whose ffn_up (w_up) holds gate and up as one matrix of 2*n_ff rows (first
 * half gate): c->xn = down(silu(gate(xn)) * up(xn)) + b_down. */
void model_op_ffn_swiglu_fused(model_ctx *c, const model_layer *L);
/* LongRoPE: L's long factors when the context holds more positions than
 * hp.n_ctx_orig_yarn, else its short ones (NULL when the file has none). */
const float *model_rope_longrope_factors(const model_ctx *c, const model_layer *L);
/* Llama-4-style attention temperature: each entry's q row (q_dim) times
 * 1 + temp_scale·ln(floor(pos / floor_scale) + 1); temp_scale 0: nothing. */
void model_op_attn_temperature(model_ctx *c, float *q, int64_t q_dim, float temp_scale,
                               int32_t floor_scale);
/* llama's block with the knobs of hparams (embd/residual/attention/logit scales, layers without
 * rope, attention temperature) and LongRoPE factors: mistral3, smollm3, granite. Its hparams
 * hook (the rms_eps key; refuses MoE variants and n_rot or value heads unlike the key head) and
 * layer binding (llama's, plus optional FFN biases and the LongRoPE factor tensors). */
shimmy_status model_dense_hparams(model_loader *ld, model_hparams *hp);
shimmy_status model_dense_bind(model_loader *ld, int32_t il, model_layer *L);
void model_dense_forward(model_ctx *c);

/* The rope configuration the file describes (base, scaling, YaRN) for hp->n_rot dims. */
model_rope_cfg model_rope_cfg_of(const model *m);
/* YaRN's angles (model_rope_angles' layout): each frequency ramps from interpolated
 * (freq_scale) to extrapolated between the dims corr_dims[0..1] (model_yarn_corr_dims),
 * weighted by ext_factor, and cos/sin are multiplied by attn_factor·(1 + 0.1 ln(1/freq_scale)),
 * as ggml's rope computes them. */
void model_rope_angles_yarn(float *cs, int32_t n_rot, int32_t pos, float base, float freq_scale,
                            const float *freq_factors, float ext_factor, const float corr_dims[2],
                            float attn_factor);
void model_yarn_corr_dims(int32_t n_rot, int32_t n_ctx_orig, float base, float beta_fast,
                          float beta_slow, float dims[2]);

/* Mixture of experts (ops_moe.c). The router's logits (+ bias) pick each token's
 * n_expert_used experts; their outputs, weighted, are summed. */
typedef enum model_moe_gating {
    MODEL_MOE_SOFTMAX, /* weights = softmax over all experts, top-k of them */
    MODEL_MOE_SIGMOID, /* weights = sigmoid of each logit, top-k of them */
    /* top-k of the logits, weights = softmax over the chosen (gpt-oss) */
    MODEL_MOE_SOFTMAX_TOPK
} model_moe_gating;
typedef enum model_moe_act {
    MODEL_MOE_SILU, /* silu(gate) * up */
    /* g = min(gate, 7), u = clamp(up, -7, 7): g·sigmoid(1.702 g)·(u + 1) */
    MODEL_MOE_SWIGLU_OAI
} model_moe_act;
typedef struct model_moe_params {
    model_moe_gating gating;
    model_moe_act act;
    bool norm;   /* chosen weights divided by their sum */
    float scale; /* weights multiplied by it (0 or 1: not) */
} model_moe_params;
/* out (n_tok, n_embd) = the layer's experts applied to x (n_tok, n_embd); out may alias x.
 * Each routed expert's rows are read once per step for all the tokens routed to it. */
void model_op_moe(model_ctx *c, const model_layer *L, const model_moe_params *p, const float *x,
                  float *out);
/* The MoE keys (expert_count, expert_used_count, expert_feed_forward_length,
 * expert_shared_feed_forward_length) into hp. */
shimmy_status model_moe_hparams(model_loader *ld, model_hparams *hp);
/* The router (its bias required when router_bias) and the three expert tensors of layer il
 * (their biases required when expert_bias; the shared expert and its gate when
 * shared_expert). */
shimmy_status model_moe_bind(model_loader *ld, int32_t il, model_layer *L, bool router_bias,
                             bool expert_bias, bool shared_expert);
/* Bytes of a context's MoE scratch for batches of n_batch (0 for a dense model). */
uint64_t model_moe_scratch_bytes(const model *m, int32_t n_batch);

/* ---- shared ops of encoders (ops_encoder.c) ---- */
/* x += row 0 of the token types and each entry's learned position (absent weights: nothing),
 * then x = LayerNorm of the embeddings when the model has one. */
void model_op_embed_encoder(model_ctx *c);
/* out = (x - mean) / sqrt(var + eps) * w + b per row of n (w, b may be NULL); may alias. */
void model_op_layer_norm(model_ctx *c, const float *x, const float *w, const float *b, float *out,
                         int64_t n, float eps);
/* x (n_tok, n) = gelu(x), ggml's way: the tanh form looked up in an F16 table (model_gelu). */
void model_op_gelu(model_ctx *c, float *x, int64_t n);
/* The plain FFN of layer L on c->xn: c->xn = down(gelu(up(xn) + b_up)) + b_down. */
void model_op_ffn_gelu(model_ctx *c, const model_layer *L);
/* q, k, v from the fused product xn · wqkvᵀ (+ bqkv): rows q | k | v. */
void model_op_qkv_fused(model_ctx *c, const model_layer *L);
/* The output of an encoder: the final hidden rows (x) of the entries that asked for output,
 * copied out for model_ctx_embedding. */
void model_op_hidden(model_ctx *c);
/* ggml's CPU GELU: x <= -10 gives 0, x >= 10 gives x, else f16(gelu_tanh(f16(x))). */
float model_gelu(float x);
/* Its table: the F16 bits of the GELU of each F16 input (1 << 16 entries, built once). */
const uint16_t *model_gelu_table(void);
/* GEGLU of one row (ops_gelu.c): g[i] = model_gelu(g[i]) * u[i] over n (u NULL: g[i] =
 * model_gelu(g[i])); the AVX2+F16C version
 * (x86 builds only) is bit-identical to the reference and runs when the CPU has them. */
void model_geglu(float *g, const float *u, int64_t n);
void model_geglu_ref(float *g, const float *u, int64_t n);
void model_geglu_avx2(float *g, const float *u, int64_t n);

/* ---- operations of the forward pass (exposed for tests) ----
 * model_rms_norm, model_rope_apply, model_softmax and model_swiglu run an AVX2 version when the
 * CPU has one (SHIMMY_ISA=scalar forces the reference); every *_avx2 is bit-identical to its
 * *_ref scalar reference (tests/model/test_ops_simd.c holds them equal). */

/* y = x / sqrt(mean(x^2) + eps) * w over n elements (w may be NULL: no scaling). */
void model_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);
/* Rotates the first n_rot dims of each of n_head heads of size head_dim at position pos.
 * freq_factors (n_rot/2) may be NULL. */
void model_rope(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, int32_t pos, float base,
                float freq_scale, const float *freq_factors, model_rope_mode mode);
/* The rotation RoPE applies at position pos, computed once and shared by q, k and every layer:
 * cs[0..n_rot/2) the cosines, cs[n_rot/2..n_rot) the sines (the angles of model_rope). */
void model_rope_angles(float *cs, int32_t n_rot, int32_t pos, float base, float freq_scale,
                       const float *freq_factors);
/* model_rope with the angles of model_rope_angles: the same results bit for bit. */
void model_rope_apply(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float *cs,
                      model_rope_mode mode);
/* In place softmax of x[0..n) (max-subtracted, groups of 16 summed as the reference does). */
void model_softmax(float *x, int64_t n);
/* g[i] = silu(g[i]) * u[i] over one row of n (the exp grouping restarts at each row). */
void model_swiglu(float *g, const float *u, int64_t n);
/* x[0..n) rounded to F16 (y: n half floats) exactly as quant_f32_to_f16 rounds; the KV cache's
 * and attention's conversions. */
void model_f32_to_f16(const float *x, void *y, int64_t n);
void model_f32_to_f16_ref(const float *x, void *y, int64_t n);
void model_f32_to_f16_avx2(const float *x, void *y, int64_t n);
void model_rms_norm_ref(const float *x, const float *w, float *y, int64_t n, float eps);
void model_rope_apply_ref(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot,
                          const float *cs, model_rope_mode mode);
void model_softmax_ref(float *x, int64_t n);
void model_swiglu_ref(float *g, const float *u, int64_t n);
/* AVX2+FMA(+F16C) versions (x86 builds only; call them only when the CPU has those). */
void model_rms_norm_avx2(const float *x, const float *w, float *y, int64_t n, float eps);
void model_rope_apply_avx2(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot,
                           const float *cs, model_rope_mode mode);
void model_softmax_avx2(float *x, int64_t n);
void model_swiglu_avx2(float *g, const float *u, int64_t n);
/* Dots in the float order of the reference's tiled GEMM (16 FMA lanes + horizontal add), which
 * it uses for batches of two or more tokens; n % 16 == 0. Same signature as quant_vec_dot_fn. */
void model_dot_tiled_f32(int64_t n, float *s, const void *x, const void *y);
void model_dot_tiled_f16(int64_t n, float *s, const void *x, const void *y);
/* AVX2+FMA+F16C versions, bit-identical to the two above (x86 builds only). */
void model_dot_tiled_f32_avx2(int64_t n, float *s, const void *x, const void *y);
void model_dot_tiled_f16_avx2(int64_t n, float *s, const void *x, const void *y);
/* The fastest tiled dot this CPU runs for an F16 (f16) or F32 cache; SHIMMY_ISA=scalar forces
 * the scalar one. */
quant_vec_dot_fn model_dot_tiled(bool f16);
/* The reference engine's vector exp (polynomial, ~1.5 ulp), bit for bit. */
float model_expf_poly(float x);

#endif
