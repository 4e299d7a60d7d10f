/*
 * model — decoder-only transformer weights and their forward pass on the CPU.
 *
 * Purpose: read an architecture's hyper-parameters from GGUF metadata, bind the GGUF tensors to
 * layers (checking every shape and type), and run the forward pass over a KV cache. What differs
 * between architectures (q/k/v biases, per-head q/k RMSNorm, RoPE mode) is one row of a table
 * (`model_arch`, one arch_<name>.c per architecture); the forward pass is shared.
 *
 * Invariants:
 *  - Weights are never copied or dequantized as a whole: every model_weight points into the
 *    gguf mapping. Every weight matrix product goes through model_linear(), which quantizes the
 *    activations once with the weight type's vec_dot_type (exactly as llama.cpp does) and splits
 *    the output rows over the context's thread pool (model_linear_n runs a group of products of
 *    one input in one parallel step). LoRA deltas will be added there.
 *  - A model_ctx allocates everything (KV cache, activations, quantized-activation scratch,
 *    logits) in model_ctx_new; model_ctx_eval allocates nothing.
 *  - KV cache rows hold positions [0, n_past); evaluation appends at n_past.
 *
 * Ownership: model_load borrows the gguf_file, which must outlive the model; model_free frees
 * the model (not the file). model_ctx_new borrows the model and the optional pool (both must
 * outlive the context); model_ctx_free frees it. Pointers returned by model_ctx_logits are
 * borrowed until the next model_ctx_eval/model_ctx_free. free(NULL) is a no-op everywhere.
 *
 * Thread-safety: a model is immutable after model_load and may be shared by any number of
 * contexts and threads. A model_ctx is used by one thread at a time (its pool runs the work).
 */
#ifndef SHIMMY_MODEL_H
#define SHIMMY_MODEL_H

#include "core/core.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- architectures ---- */

typedef enum model_rope_mode {
    MODEL_ROPE_NORM, /* rotate adjacent pairs (x[2i], x[2i+1]) — llama */
    MODEL_ROPE_NEOX  /* rotate (x[i], x[i + n_rot/2]) — qwen2, qwen3 */
} model_rope_mode;

/* One supported architecture: the differences the shared forward pass is parameterised by. */
typedef struct model_arch {
    const char *name; /* value of general.architecture, also the metadata key prefix */
    model_rope_mode rope_mode;
    bool qkv_bias; /* attn_{q,k,v}.bias required (qwen2); otherwise bound when present */
    bool qk_norm;  /* per-head RMSNorm of q and k before RoPE (qwen3) */
} model_arch;

extern const model_arch model_arch_llama;
extern const model_arch model_arch_qwen2;
extern const model_arch model_arch_qwen3;

/* The architecture named `name` (general.architecture), or NULL when unsupported. */
const model_arch *model_arch_find(const char *name);
/* Comma-separated list of supported architecture names (for error messages). */
const char *model_arch_names(void);

/* ---- hyper-parameters ---- */

typedef struct model_hparams {
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;   /* key/query head size (<arch>.attention.key_length or n_embd/n_head) */
    int32_t head_dim_v; /* value head size */
    int32_t n_ff;
    int32_t n_rot; /* rotated dimensions per head (<arch>.rope.dimension_count or head_dim) */
    float rms_eps;
    float rope_base;       /* <arch>.rope.freq_base (default 10000) */
    float rope_freq_scale; /* 1/<arch>.rope.scaling.factor for linear scaling, else 1 */
} model_hparams;

/* Reads hyper-parameters of architecture a from f; errors name the missing/bad key. */
shimmy_status model_hparams_read(const gguf_file *f, const model_arch *a, model_hparams *hp,
                                 shimmy_error *err);

/* ---- weights ---- */

/* A weight matrix in the mapping: n_out rows of n_in elements of `type` (GGUF shape
 * [n_in, n_out]). `slot` is a dense index unique within the model (adapters key on it). */
typedef struct model_weight {
    const void *data; /* borrowed from the gguf mapping */
    const quant_traits *qt;
    uint32_t type;
    int64_t n_in;
    int64_t n_out;
    size_t row_bytes;
    int32_t slot;
    char name[64]; /* GGUF tensor name, for error messages and adapter binding */
} model_weight;

typedef struct model_layer {
    const float *attn_norm; /* (n_embd) */
    model_weight wq, wk, wv, wo;
    const float *bq, *bk, *bv;    /* (n_head*head_dim), (n_head_kv*head_dim), ... or NULL */
    const float *q_norm, *k_norm; /* (head_dim) or NULL */
    const float *ffn_norm;        /* (n_embd) */
    model_weight w_gate, w_up, w_down;
} model_layer;

typedef struct model {
    const gguf_file *file; /* borrowed */
    const model_arch *arch;
    model_hparams hp;
    model_weight tok_embd; /* (n_vocab rows of n_embd) */
    const float *output_norm;
    model_weight output; /* == tok_embd rows when the embedding is tied */
    bool tied_output;
    const float *rope_freqs;  /* (n_rot/2) llama3 frequency factors, or NULL */
    model_layer *layers;      /* owned, n_layer */
    int32_t n_weights;        /* number of slots */
    uint64_t n_params;        /* elements of all tensors */
    uint64_t weight_bytes;    /* bytes of all tensors */
    uint32_t file_type;       /* dominant matrix type (gguf_ttype) */
    size_t max_act_row_bytes; /* largest quantized activation row any product needs */
    int64_t max_in;           /* largest n_in of any weight */
} model;

/* Binds f's tensors. Unsupported architecture, missing tensor, wrong shape or an unsupported
 * type gives a clear error naming the tensor. */
shimmy_status model_load(const gguf_file *f, model **out, shimmy_error *err);
void model_free(model *m);

/* ---- compute context (KV cache + scratch) ---- */

typedef enum model_kv_type { MODEL_KV_F16 = 0, MODEL_KV_F32 = 1 } model_kv_type;

/* Attention runs over the used cache positions rounded up to this (masked to zero), as the
 * reference engine does: the float order of its dot kernels depends on that length. */
#define MODEL_KV_PAD 32

typedef struct model_ctx_params {
    int32_t n_ctx;    /* KV positions (required, 1 .. n_ctx_train*4) */
    int32_t n_batch;  /* max tokens per model_ctx_eval (0 = min(512, n_ctx)) */
    int32_t n_logits; /* max positions whose logits one eval can return (0 = 1) */
    model_kv_type kv_type;
    core_pool *pool; /* borrowed; NULL = single-threaded */
} model_ctx_params;

typedef struct model_ctx model_ctx;
struct lora_set; /* lora/lora.h: adapters attached to a context */

shimmy_status model_ctx_new(const model *m, const model_ctx_params *p, model_ctx **out,
                            shimmy_error *err);
void model_ctx_free(model_ctx *c);

/* Runs tokens[0..n) at positions n_past..n_past+n-1, appending them to the KV cache.
 * n <= n_batch; n_past + n <= n_ctx; every token < n_vocab (checked). When n_logits_out > 0 the
 * logits of the last n_logits_out positions are computed (n_logits_out <= the ctx's n_logits). */
shimmy_status model_ctx_eval(model_ctx *c, const int32_t *tokens, int32_t n, int32_t n_logits_out,
                             shimmy_error *err);
/* Logits of the i-th of the positions computed by the last eval: (n_vocab) floats. */
const float *model_ctx_logits(const model_ctx *c, int32_t i);
int32_t model_ctx_n_past(const model_ctx *c);
int32_t model_ctx_n_ctx(const model_ctx *c);
int32_t model_ctx_n_batch(const model_ctx *c);
/* Forgets positions >= n (n <= n_past): keeps the cache of a prefix. */
void model_ctx_truncate(model_ctx *c, int32_t n);
/* Attaches LoRA adapters (borrowed until detached or model_ctx_free; NULL detaches): every later
 * product of a weight an adapter touches adds its low-rank term (before any bias), as llama.cpp
 * does. Allocates the adapters' scratch here, not per product. The cache is not touched: a
 * caller that changes adapters must truncate K/V computed with the old ones. */
shimmy_status model_ctx_set_lora(model_ctx *c, const struct lora_set *set, shimmy_error *err);
/* Bytes allocated by the context (KV cache + scratch). */
size_t model_ctx_bytes(const model_ctx *c);

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

/* ---- context layout (shared by the model's own files; opaque to other modules) ---- */

/* Query tokens of one head the attention handles together (scratch rows per thread). */
#define ATT_Q 4

struct model_ctx {
    const model *m;
    core_pool *pool; /* borrowed or NULL */
    int n_threads;
    int32_t n_ctx, n_batch, n_logits, n_past;
    int32_t n_ctx_pad;     /* KV rows allocated: n_ctx rounded up to MODEL_KV_PAD */
    int32_t n_logits_last; /* positions computed by the last eval */
    model_kv_type kv_type;
    size_t kv_elt; /* bytes per cache element */
    void *block;   /* owned: the one zeroed mapping every buffer below is a slice of */
    size_t block_bytes;
    void *k_cache; /* (n_layer, n_ctx, n_head_kv*head_dim) F16 or F32 */
    void *v_cache; /* (n_layer, n_head_kv*head_dim_v, n_ctx): transposed, a row per dim */
    float *x;      /* (n_batch, n_embd) residual stream */
    float *xn;     /* (n_batch, max(n_embd, n_head*head_dim_v)) normed input / projections */
    /* q, k, v, att and gate, up overlap (the attention's and the FFN's scratch): see ctx.c */
    float *q;      /* (n_batch, n_head*head_dim) */
    float *k;      /* (n_batch, n_head_kv*head_dim) */
    float *v;      /* (n_batch, n_head_kv*head_dim_v) */
    float *att;    /* (n_batch, n_head*head_dim_v) attention output */
    float *gate;   /* (n_batch, n_ff) */
    float *up;     /* (n_batch, n_ff) */
    void *xq;      /* (n_batch, max_act_row_bytes) quantized activations */
    float *scores; /* (n_threads, scores_per_thread): scores, q and probabilities per thread */
    int64_t scores_per_thread;
    quant_vec_dot_fn tiled_dot;  /* model_dot_tiled for the cache type */
    float *logits;               /* (n_logits, n_vocab) */
    float *rope_cs;              /* (n_batch, n_rot) model_rope_angles of the eval's positions */
    const struct lora_set *lora; /* borrowed, or NULL */
    float *lora_scratch;         /* owned: lora_set_scratch_floats(lora, n_batch) floats */
    size_t bytes;
};

/* y (n_tok, w->n_out) = x (n_tok, w->n_in) · wᵀ. The single entry point for every weight
 * product (quantizes x once with w's vec_dot_type into the ctx scratch). */
void model_linear(model_ctx *c, const model_weight *w, const float *x, float *y, int32_t n_tok);
/* Several products of the same input (q/k/v, gate/up) in one parallel run: y[i] = x · w[i]ᵀ.
 * Same results as n_w calls of model_linear, with one thread hand-off instead of n_w. */
void model_linear_n(model_ctx *c, int n_w, const model_weight *const *w, const float *x,
                    float *const *y, int32_t n_tok);

#endif
