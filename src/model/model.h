/*
 * model — transformer weights and their forward pass on the CPU.
 *
 * Purpose: read an architecture's hyper-parameters from GGUF metadata, bind the GGUF tensors to
 * layers (checking every shape and type), and run the forward pass of a batch of (token,
 * sequence) entries over the KV cache (and, for hybrid models, the recurrent state). Each
 * architecture is one file, arch_<name>.c, with three hooks (its keys, its layer binding, its
 * forward pass) that composes the shared ops of model_ops.h; adding a family is adding a file and
 * its row in hparams.c's table.
 *
 * Invariants:
 *  - Weights are never copied or dequantized as a whole: every model_weight points into the
 *    gguf mapping. Every weight matrix product goes through model_linear(), which quantizes the
 *    activations once with the weight type's vec_dot_type (exactly as llama.cpp does) and splits
 *    the output rows over the context's thread pool; LoRA terms are added there, per context or
 *    per entry.
 *  - A model_ctx allocates everything (KV cache, activations, quantized-activation scratch,
 *    logits, recurrent state) in model_ctx_new; a step allocates nothing.
 *  - A sequence's cache holds its positions [0, n_past) (a sliding-window layer the last ring of
 *    them); a step appends at each sequence's n_past. An entry that is its sequence's only one in
 *    a step is computed exactly as alone, so a sequence's logits do not depend on the batch.
 *
 * Ownership: model_load borrows the gguf_file, which must outlive the model; model_free frees
 * the model (not the file). model_ctx_new borrows the model and the optional pool (both must
 * outlive the context); model_ctx_free frees it. Pointers returned by model_ctx_logits are
 * borrowed until the next step/model_ctx_free. free(NULL) is a no-op everywhere.
 *
 * Thread-safety: a model is immutable after model_load and may be shared by any number of
 * contexts and threads. A model_ctx is used by one thread at a time (its pool runs the work).
 */
#ifndef SHIMMY_MODEL_H
#define SHIMMY_MODEL_H

#include "core/core.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- architectures ---- */

typedef enum model_rope_mode {
    MODEL_ROPE_NORM, /* rotate adjacent pairs (x[2i], x[2i+1]) — llama */
    MODEL_ROPE_NEOX  /* rotate (x[i], x[i + n_rot/2]) — qwen2, qwen3 */
} model_rope_mode;

typedef struct model model;
typedef struct model_ctx model_ctx;
typedef struct model_layer model_layer;
typedef struct model_hparams model_hparams;
typedef struct model_loader model_loader;

/* One supported architecture: one file, src/model/arch_<name>.c, that reads the family's own
 * hyper-parameters, binds its tensors and composes the shared ops (below) into its forward pass.
 * Adding a family is adding such a file and its row in hparams.c's table. */
typedef struct model_arch {
    const char *name; /* value of general.architecture, also the metadata key prefix */
    model_rope_mode rope_mode;
    /* Family keys after the common ones (model_hparams_read); may refine or reject. NULL: none. */
    shimmy_status (*hparams)(model_loader *ld, model_hparams *hp);
    /* Binds layer il's tensors (model_load_matrix/model_load_vector). */
    shimmy_status (*bind_layer)(model_loader *ld, int32_t il, model_layer *L);
    /* The forward pass of the batch in c (model_batch_*): embeddings, blocks, and the logits
     * of the entries that asked for them (model_out_logits). Allocates nothing. */
    void (*forward)(model_ctx *c);
    /* Model-level tensors beyond token_embd/output_norm/output (NULL: none). */
    shimmy_status (*bind_model)(model_loader *ld);
    /* A bidirectional encoder (bert family): no output norm or LM head; its contexts must be
     * created with model_ctx_params.embeddings, the only output it has. */
    bool encoder;
    /* Its forward pass runs on a device (model_device): every loop of its own over the
     * context's buffers is behind model_dev_host, checked against the references on the
     * device. A context with a device refuses the other architectures, naming this. */
    bool device;
} model_arch;

extern const model_arch model_arch_llama;
extern const model_arch model_arch_qwen2;
extern const model_arch model_arch_qwen3;
extern const model_arch model_arch_qwen3moe;
extern const model_arch model_arch_gpt_oss;
extern const model_arch model_arch_qwen2moe;
extern const model_arch model_arch_bert;
extern const model_arch model_arch_nomic_bert;
extern const model_arch model_arch_gemma2;
extern const model_arch model_arch_gemma3;
extern const model_arch model_arch_phi3;
extern const model_arch model_arch_mistral3;
extern const model_arch model_arch_smollm3;
extern const model_arch model_arch_granite;
extern const model_arch model_arch_olmo2;
extern const model_arch model_arch_qwen35;
extern const model_arch model_arch_qwen35moe;

/* llama's pieces, which the families built on its block reuse (arch_llama.c): the rms_eps key,
 * the layer binding (biases required or optional, per-head q/k norms required or refused) and
 * the forward pass. */
shimmy_status model_llama_hparams(model_loader *ld, model_hparams *hp);
shimmy_status model_llama_bind(model_loader *ld, int32_t il, model_layer *L, bool bias,
                               bool qk_norm);
void model_llama_forward(model_ctx *c);
struct model_moe_params;
/* llama's forward pass with the mixture-of-experts FFN of moe in place of SwiGLU (NULL: SwiGLU). */
void model_llama_forward_ffn(model_ctx *c, const struct model_moe_params *moe);
/* The qwen MoE block (arch_qwen3moe.c, also qwen2moe's): llama's attention (q/k norms and
 * biases when the layer has them) and model_op_moe with p as the FFN. */
void model_qwen_moe_forward(model_ctx *c, const struct model_moe_params *p);

/* gemma's pieces, shared by gemma2 and gemma3 (arch_gemma2.c): the layer binding (post-norms,
 * per-head q/k norms required when qk_norm, the window on layer il iff il % swa_period <
 * swa_period - 1, or on every layer for period 0, unless the file's
 * attention.sliding_window_pattern gives the period or a flag per layer) and the block, whose
 * queries are multiplied by q_scale after rope (the scores are not scaled again). */
shimmy_status model_gemma_bind(model_loader *ld, int32_t il, model_layer *L, bool qk_norm,
                               int32_t swa_period);
void model_gemma_forward(model_ctx *c, float q_scale);

/* bert's pieces, shared with nomic-bert (arch_bert.c): the LayerNorm epsilon key, the token
 * types / positions / embedding norm (positions required or not), a block's post-LN norms and
 * the encoder stack (rope NULL: no rotary positions). */
shimmy_status model_bert_hparams(model_loader *ld, model_hparams *hp);
shimmy_status model_bert_bind_model(model_loader *ld, bool positions);
shimmy_status model_bert_bind_norms(model_loader *ld, int32_t il, model_layer *L);
struct model_rope_cfg;
void model_bert_forward_impl(model_ctx *c, const struct model_rope_cfg *rope);

/* The architecture named `name` (general.architecture), or NULL when unsupported. */
const model_arch *model_arch_find(const char *name);
/* Comma-separated list of supported architecture names (for error messages). */
const char *model_arch_names(void);
/* What a known but unsupported architecture lacks (arch_refused.c), or NULL. */
const char *model_arch_refusal(const char *name);

/* ---- hyper-parameters ---- */

struct model_hparams {
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
    /* Sliding-window attention: layers whose model_layer.window > 0 attend to the last
     * n_swa positions (their own included) and keep only a ring of cells in the KV cache. */
    int32_t n_swa; /* <arch>.attention.sliding_window, 0 = none */
    /* Rope of the sliding-window layers where a family gives them their own (gemma2/3:
     * <arch>.rope.freq_base_swa, no scaling); the other layers use rope_base/rope_freq_scale. */
    float rope_base_swa, rope_freq_scale_swa;
    /* Soft-caps (gemma2/3): a score s becomes cap·tanh(s/cap); 0 = none. attn_softcap on the
     * attention scores (<arch>.attn_logit_softcapping), final_softcap on the output logits
     * (<arch>.final_logit_softcapping). */
    float attn_softcap, final_softcap;
    /* YaRN (<arch>.rope.scaling.type = yarn): rope_ext_factor 1 (else 0), the training context
     * the frequencies were made for, the ramp's rotation bounds and llama.cpp's attention factor
     * (the cos/sin magnitude before rope's own 1 + 0.1 ln(factor)) */
    float rope_ext_factor, yarn_beta_fast, yarn_beta_slow, yarn_attn_factor;
    int32_t n_ctx_orig_yarn;
    /* <arch>.rope.scaling.attn_factor (default 1): multiplies rope's cos and sin whatever the
     * scaling type (LongRoPE files carry it; YaRN folds it into yarn_attn_factor).
     * n_ctx_orig_yarn (rope.scaling.original_context_length, default n_ctx_train) is read for
     * every type: LongRoPE picks its factors by it. */
    float rope_attn_factor;
    /* Knobs of model_dense_forward (0 = off): granite's embedding_scale (embeddings times it),
     * residual_scale (attention and FFN outputs times it), attention.scale (replaces
     * 1/sqrt(head_dim)) and logit_scale (logits divided by it); mistral3's
     * attention.temperature_scale (model_op_attn_temperature, floor n_ctx_orig_yarn); layers il
     * with (il + 1) % no_rope_step == 0 get no rope (smollm3: 4; 1: none has rope). */
    float embd_scale, residual_scale, attn_scale, logit_scale, attn_temp_scale;
    int32_t no_rope_step;
    /* mixture of experts (model_moe_hparams; 0 = dense): experts per layer, experts each token
     * uses, rows of one expert's gate/up (<arch>.expert_feed_forward_length), of the shared
     * expert (0 = none) */
    int32_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp;
    /* LayerNorm epsilon (<arch>.attention.layer_norm_epsilon, default 1e-12) */
    float norm_eps;
    /* model_pooling from <arch>.pooling_type; MODEL_POOL_UNSPEC when absent */
    int32_t pooling;
    /* Gated DeltaNet (qwen35): <arch>.ssm.conv_kernel, .inner_size (value heads x head size),
     * .state_size (key head size), .time_step_rank (value heads), .group_count (key heads); 0 =
     * no recurrent layers */
    int32_t ssm_conv, ssm_inner, ssm_state, ssm_dt_rank, ssm_groups;
    /* What a family needs beyond the generic buffers, set by its hparams hook (0 = none): scratch
     * floats per step entry (c->aux) and recurrent-state floats per sequence (c->rstate; a model
     * with recurrent state keeps a sequence only whole: truncation to an earlier position empties
     * it) */
    int64_t aux_floats, state_floats;
};

/* How an embedding model pools its final hidden states (llama.cpp's numbering). */
typedef enum model_pooling {
    MODEL_POOL_UNSPEC = -1,
    MODEL_POOL_NONE = 0,
    MODEL_POOL_MEAN = 1,
    MODEL_POOL_CLS = 2,
    MODEL_POOL_LAST = 3,
    MODEL_POOL_RANK = 4, /* the first row through the classification head (cls.*) */
} model_pooling;

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
    char name[96]; /* GGUF tensor name, for error messages and adapter binding */
    /* A 3-D expert tensor [n_in, expert_rows, n_expert] is one weight of n_expert*expert_rows
     * rows; expert e owns rows [e*expert_rows, (e+1)*expert_rows). 0: a plain matrix. */
    int64_t expert_rows;
    /* The rows repacked by model_repack for this CPU's fastest kernels (pk describes the layout,
     * owned by the model's pack memory), or NULL: products on the CPU read pack when it is set;
     * data keeps pointing into the mapping (the device, row views and adapters key on it). */
    const void *pack;
    const quant_pack *pk;
    /* Expert tensors with a layout (pk): expert e's rows in it (model_expert_pack, on the
     * expert's first use, so resident memory grows only with the experts a model routes to), or
     * NULL until then; n_expert entries, the array and the copies owned by the model. */
    _Atomic(const void *) *xpack;
} model_weight;

/* A layer's tensors: the union of what the architectures bind (NULL / zeroed when absent). */
struct model_layer {
    int32_t window; /* sliding-window layer: attends to the last hp.n_swa positions; 0 = all */
    const float *attn_norm, *attn_norm_b; /* (n_embd) */
    model_weight wq, wk, wv, wo;
    model_weight wqkv;                  /* fused q/k/v (phi3, nomic-bert) */
    const float *bq, *bk, *bv, *bo;     /* biases or NULL */
    const float *bqkv;                  /* fused bias or NULL */
    const float *q_norm, *k_norm;       /* (head_dim) or NULL */
    const float *attn_post_norm;        /* (n_embd) norm of the attention output (gemma2/3) */
    const float *ffn_norm, *ffn_norm_b; /* (n_embd) */
    model_weight w_gate, w_up, w_down;
    const float *b_up, *b_down, *b_gate; /* FFN biases or NULL */
    const float *ffn_post_norm;          /* (n_embd) norm of the FFN output (gemma2/3) */
    /* LongRoPE frequency factors (n_rot/2): the file's global rope_factors_short/_long, bound
     * to every layer (model_rope_longrope_factors picks one); NULL when absent */
    const float *rope_short, *rope_long;
    /* LayerNorm biases of the post-norms; bert's post-LN blocks norm x + attention with
     * attn_post_norm(_b) and x + FFN with ffn_post_norm(_b) */
    const float *attn_post_norm_b, *ffn_post_norm_b;
    const float *attn_sinks; /* (n_head) per-head sink logits (gpt-oss) or NULL */
    /* Gated DeltaNet layer (qwen35; recurrent true): wqkv gives the conv's input (q, k, v),
     * ssm_z the output gate, ssm_alpha/ssm_beta the decay and write strengths per value head;
     * ssm_conv1d (conv_dim rows of ssm_conv taps), ssm_dt_b and ssm_a (value heads), ssm_norm
     * (value head size); its state is at state_off floats into a sequence's c->rstate */
    bool recurrent;
    model_weight ssm_z, ssm_alpha, ssm_beta, ssm_out;
    const float *ssm_conv1d, *ssm_dt_b, *ssm_a, *ssm_norm;
    int64_t state_off;
    /* mixture of experts: the router (n_expert rows of n_embd) and its bias, the experts'
     * gate/up (n_ff_exp rows each) and down (n_embd rows each) and their per-expert biases
     * ((n_expert, n_ff_exp) / (n_expert, n_embd)) */
    model_weight ffn_gate_inp;
    const float *ffn_gate_inp_b;
    model_weight ffn_gate_exps, ffn_up_exps, ffn_down_exps;
    const float *ffn_gate_exps_b, *ffn_up_exps_b, *ffn_down_exps_b;
    /* a shared expert every token runs (qwen2moe), its output scaled by
     * sigmoid(ffn_gate_inp_shexp · x) */
    model_weight ffn_gate_shexp, ffn_up_shexp, ffn_down_shexp;
    const float *ffn_gate_inp_shexp; /* (n_embd) */
};

struct model {
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
    /* encoders (bert family): learned positions (n_ctx_train rows, or absent), token types (row
     * 0 is added to every token) and the LayerNorm of the embeddings */
    model_weight pos_embd, type_embd;
    const float *embd_norm, *embd_norm_b;
    /* classification head of rank pooling: score = cls_out · tanh(cls · h + cls_b) + cls_out_b
     * (cls absent: cls_out applies to h directly); n_cls_out scores per input, 0 = no head */
    model_weight cls, cls_out;
    const float *cls_b, *cls_out_b;
    int32_t n_cls_out;
    /* model_repack's copies (owned; NULL before or without it), their size, how many weights
     * and bytes of the file they replace, and the layouts used ("q4_k.x16/avx512-vnni, ...") */
    void *pack_mem;
    size_t pack_bytes;
    int32_t n_packed;
    int32_t n_xpacked; /* expert tensors whose experts are packed on first use */
    uint64_t packed_file_bytes;
    char pack_layouts[96];
    /* model_repack ran on the fast path (not SHIMMY_ISA=avx2/scalar, not SHIMMY_REPACK=0): the
     * repacked layouts and, for a decode entry, attention by KV head (dot_rows_n) in the
     * variant's own order. False keeps the reference's order everywhere. */
    bool fast_order;
};

/* Binds f's tensors. Unsupported architecture, missing tensor, wrong shape or an unsupported
 * type gives a clear error naming the tensor. */
shimmy_status model_load(const gguf_file *f, model **out, shimmy_error *err);
void model_free(model *m);

/* Repacks the weight matrices this CPU has a faster layout for (quant_traits.pack: Q4_0, Q8_0,
 * Q4_K, Q6_K, MXFP4, F16, BF16 with AVX-512; F16, MXFP4, Q4_K and Q6_K with AVX2) into memory the
 * model owns, in parallel on n_threads (<= 0: every core), and releases the file pages they came
 * from, so resident memory stays about the file's size. Weights a device holds (held(ud, w->data)
 * true) and the token embedding (read by rows) stay as they are; expert tensors with a layout get
 * it per expert on first use (model_expert_pack), expert tensors without one keep the row
 * kernels.
 * Call once, after any device took its copies and before any context is created. No-op with
 * SHIMMY_REPACK=0 or SHIMMY_ISA=avx2|scalar in the environment (the reference-order kernels:
 * DESIGN.md "Numerics"). On failure (no memory) nothing is repacked and the model works as before.
 */
shimmy_status model_repack(model *m, bool (*held)(void *ud, const void *data), void *ud,
                           int n_threads, shimmy_error *err);
/* Expert e of w in w->pk's layout, packed now if this is its first use (thread-safe: several
 * contexts may race, one copy wins), its file pages released; NULL when w has no expert layout
 * or there was no memory for it (the row kernels then serve it). */
const void *model_expert_pack(const model *m, const model_weight *w, int32_t e);
/* Frees the expert copies (model_free). */
void model_expert_packs_free(model *m);

/* ---- loading (used by the arch files' hparams and bind_layer hooks) ----
 * A model_loader is the state of one model_load: the file, the model being built and the error
 * to fill. il >= 0 prefixes a tensor name with "blk.<il>."; il < 0 takes it as it is. Every
 * function returns SHIMMY_OK or an error naming the tensor or key and what was expected; an
 * absent optional item leaves *out zeroed (NULL data) and returns SHIMMY_OK. */
const gguf_file *model_loader_file(const model_loader *ld);
const model *model_loader_model(const model_loader *ld);
/* A matrix of n_out rows of n_in elements that model_linear can multiply. */
shimmy_status model_load_matrix(model_loader *ld, int32_t il, const char *name, int64_t n_in,
                                int64_t n_out, bool required, model_weight *out);
/* An F32 vector of n elements (norm weights, biases). */
shimmy_status model_load_vector(model_loader *ld, int32_t il, const char *name, int64_t n,
                                bool required, const float **out);
/* A 3-D expert tensor [n_in, n_out, n_expert] as one weight (model_weight.expert_rows). */
shimmy_status model_load_experts(model_loader *ld, int32_t il, const char *name, int64_t n_in,
                                 int64_t n_out, int64_t n_expert, bool required, model_weight *out);
/* An F32 tensor of count rows of n elements [n, count] (per-expert biases). */
shimmy_status model_load_rows_f32(model_loader *ld, int32_t il, const char *name, int64_t n,
                                  int64_t count, bool required, const float **out);
/* "<arch>.<suffix>" as an integer in [lo, hi] / a finite float; absent and optional: untouched. */
shimmy_status model_load_key_i32(model_loader *ld, const char *suffix, bool required, int32_t lo,
                                 int32_t hi, int32_t *out);
shimmy_status model_load_key_f32(model_loader *ld, const char *suffix, bool required, float *out);
/* An error about the file (SHIMMY_ERR_FORMAT or _UNSUPPORTED) with a printf message. */
shimmy_status model_load_fail(model_loader *ld, shimmy_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- compute context (KV cache + scratch) ---- */

typedef enum model_kv_type { MODEL_KV_F16 = 0, MODEL_KV_F32 = 1 } model_kv_type;

/* Attention runs over the used cache positions rounded up to this (masked to zero), as the
 * reference engine does: the float order of its dot kernels depends on that length. */
#define MODEL_KV_PAD 32

/* ---- compute devices (src/gpu implements one; this module only calls through the table) ----
 * A device holds copies of some of the model's weights and of each context's block (KV cache
 * and activations, at the same byte offsets), and runs some ops there. device.c decides where
 * each op runs: an op with a weight runs on the device iff the device holds that weight (so
 * partial offload and tensor types without a shader run on the CPU); an op without one runs
 * where the activations are; layer il's attention runs where its KV cache is (device_layer).
 * Moving between the two copies the step's rows of the activation buffers. A device op
 * returns false when it cannot run that instance; the CPU then runs it. Device errors (lost
 * device, out of memory) are kept by the device and returned by end(): the step fails. */
typedef struct model_dev_ops {
    const char *name;
    shimmy_status (*ctx_new)(void *impl, model_ctx *c, void **dc, shimmy_error *err);
    void (*ctx_free)(void *dc);
    /* begin: a step's entries are laid out (tok, tok_seq, tok_pos); end: all recorded work
     * done, or the error that stopped it */
    shimmy_status (*begin)(void *dc, model_ctx *c);
    shimmy_status (*end)(void *dc, model_ctx *c, shimmy_error *err);
    /* bytes at host address p (inside c->block) to the device copy / back: recorded in
     * order with the ops; a download's bytes are in host memory once flush returns */
    void (*upload)(void *dc, model_ctx *c, const void *p, size_t bytes);
    void (*download)(void *dc, model_ctx *c, void *p, size_t bytes);
    void (*flush)(void *dc, model_ctx *c);
    /* the device copy of bytes at src (inside c->block) to its copy of dst (sequence copies
     * of the KV cache; between steps) */
    void (*copy)(void *dc, model_ctx *c, void *dst, const void *src, size_t bytes);
    bool (*holds)(const void *impl, const void *p); /* p: a weight or vector of the model */
    bool (*layer)(const void *impl, int32_t il);    /* layer il's KV cache is on the device */
    /* the ops, with model_op_*'s meaning; rows: entries (or rows) they apply to */
    bool (*rms_norm)(void *dc, model_ctx *c, const float *x, const float *w, float *out, int64_t n,
                     int64_t rows, float eps);
    bool (*linear)(void *dc, model_ctx *c, const model_weight *w, const float *x, float *y,
                   int32_t rows);
    bool (*add)(void *dc, model_ctx *c, float *x, const float *y, int64_t n); /* n floats */
    bool (*add_bias)(void *dc, model_ctx *c, float *y, const float *b, int64_t dim, int64_t rows);
    bool (*scale)(void *dc, model_ctx *c, float *x, int64_t n, float s); /* n floats */
    bool (*softcap)(void *dc, model_ctx *c, float *x, int64_t n, float cap);
    /* rows of n_head heads of head_dim, rotated with the angle rows at cs (one per entry) */
    bool (*rope)(void *dc, model_ctx *c, float *x, int32_t n_head, int32_t head_dim, int32_t n_rot,
                 const float *cs, model_rope_mode mode);
    bool (*glu)(void *dc, model_ctx *c, int act, float *gate, const float *up, int64_t n_ff);
    bool (*attention)(void *dc, model_ctx *c, int32_t il, const void *attn_params);
    /* dst row j (n floats) = src row idx[j] for j < rows */
    bool (*gather)(void *dc, model_ctx *c, const float *src, float *dst, int64_t n,
                   const int32_t *idx, int32_t rows);
} model_dev_ops;

typedef struct model_device {
    const model_dev_ops *ops;
    void *impl; /* the backend's per-model state (weights on the device) */
} model_device;

typedef struct model_ctx_params {
    int32_t n_ctx;    /* KV positions per sequence (required, 1 .. 16M) */
    int32_t n_seq;    /* sequences the context holds (0 = 1), each with its own n_ctx positions */
    int32_t n_batch;  /* max entries per model_ctx_decode (0 = min(512, n_ctx)) */
    int32_t n_logits; /* max entries whose logits one step can return (0 = 1) */
    model_kv_type kv_type;
    core_pool *pool; /* borrowed; NULL = single-threaded */
    /* The entries that ask for output give their final hidden state (n_embd, after the output
     * norm for decoders) through model_ctx_embedding instead of logits. Required by encoders. */
    bool embeddings;
    /* borrowed (must outlive the context), or NULL: the CPU alone */
    const model_device *device;
} model_ctx_params;

struct lora_set; /* lora/lora.h: adapters attached to a context */

shimmy_status model_ctx_new(const model *m, const model_ctx_params *p, model_ctx **out,
                            shimmy_error *err);
void model_ctx_free(model_ctx *c);

/* One forward step: entry i is token[i] of sequence seq[i] (seq NULL: all 0), appended at that
 * sequence's next position. A sequence's entries are in order and consecutive positions; the
 * entries of different sequences may interleave. logits[i] != 0 asks for entry i's logits
 * (NULL: none); they come back in entry order through model_ctx_logits. */
typedef struct model_batch {
    int32_t n;
    const int32_t *token;
    const int32_t *seq;
    const uint8_t *logits;
    /* adapters per entry (NULL, or NULL entries: none): each entry's products add its own set's
     * low-rank terms, so sequences with different adapters share a step; needs the sets'
     * scratch reserved (model_ctx_lora_reserve) and no context-wide set */
    const struct lora_set *const *lora;
} model_batch;

/* Runs a batch (n <= n_batch; each sequence's n_past + its entries <= n_ctx; tokens < n_vocab,
 * seq < n_seq, at most n_logits entries asking for logits: all checked, nothing changed on an
 * error). */
shimmy_status model_ctx_decode(model_ctx *c, const model_batch *b, shimmy_error *err);
/* Sequence 0 alone: tokens[0..n) appended at its n_past; the logits of the last n_logits_out
 * positions (n_logits_out <= the ctx's n_logits). */
shimmy_status model_ctx_eval(model_ctx *c, const int32_t *tokens, int32_t n, int32_t n_logits_out,
                             shimmy_error *err);
/* Logits of the i-th entry that asked for them in the last step: (n_vocab) floats. */
const float *model_ctx_logits(const model_ctx *c, int32_t i);
/* Hidden state of the i-th entry that asked for output in the last step of a context made with
 * `embeddings`: (n_embd) floats, borrowed until the next step; NULL out of range. */
const float *model_ctx_embedding(const model_ctx *c, int32_t i);
/* The classification head (model.n_cls_out > 0) over n rows of n_embd (h; n <= n_batch):
 * scores (n rows of n_cls_out). Uses the context's scratch (not its cache). */
shimmy_status model_ctx_classify(model_ctx *c, const float *h, int32_t n, float *scores,
                                 shimmy_error *err);
/* Positions cached for sequence 0 (model_ctx_seq_n_past for any). */
int32_t model_ctx_n_past(const model_ctx *c);
int32_t model_ctx_seq_n_past(const model_ctx *c, int32_t seq);
int32_t model_ctx_n_ctx(const model_ctx *c);
int32_t model_ctx_n_seq(const model_ctx *c);
int32_t model_ctx_n_batch(const model_ctx *c);
/* Forgets sequence seq's positions >= n and returns how many it keeps: n, or fewer when a
 * sliding-window layer's ring no longer holds the window that position n would attend to (the
 * caller then evaluates again from the returned length; 0 at worst). */
int32_t model_ctx_seq_truncate(model_ctx *c, int32_t seq, int32_t n);
/* Copies the cache of sequence src's first n positions (at most its n_past) into dst, whose
 * n_past becomes that; returns it, or 0 when a sliding-window ring of src no longer holds what
 * position n looks back on. Not while a step runs. */
int32_t model_ctx_seq_copy(model_ctx *c, int32_t dst, int32_t src, int32_t n);
/* Empties sequence seq and gives its cache's memory back to the system. */
void model_ctx_seq_release(model_ctx *c, int32_t seq);
/* Gated DeltaNet (ops_deltanet.c): the recurrent part of layer L for the step: conv over the
 * sequence's rolling window of wqkv outputs (mixed, (n_tok, conv_dim), overwritten by the conv's
 * SiLU output), L2-normed q/k, the delta rule over each sequence's state, written to out
 * (n_tok, ssm_inner), entries in order per sequence; a run of 2+ entries of one sequence takes
 * the chunked form. scratch: model_deltanet_scratch_floats(d_k, d_v, n_tok) floats. */
void model_op_deltanet(model_ctx *c, const model_layer *L, float *mixed, const float *g,
                       const float *beta, float *out, float *scratch);
/* One value head's delta rule over n tokens of a sequence: token t's q/k at t * qk_stride, v at
 * t * v_stride, decay gate g (log, < 0) and beta at t * gb_stride, output row at t * o_stride
 * (d_v floats); S is the head's state as S^T, d_v rows of d_k. */
typedef struct model_deltanet_seq {
    const float *q, *k, *v, *g, *beta;
    float *o;
    int64_t qk_stride, v_stride, gb_stride, o_stride;
} model_deltanet_seq;
enum { MODEL_DELTANET_CHUNK = 64 };
/* token by token: the scalar reference, and with the quant module's F32 dots (decode); and
 * chunk-parallel (prompts); all agree to float rounding */
void model_deltanet_tokens(float *S, int32_t dk, int32_t dv, int32_t n,
                           const model_deltanet_seq *s);
void model_deltanet_step(float *S, int32_t dk, int32_t dv, int32_t n, const model_deltanet_seq *s);
void model_deltanet_chunked(float *S, int32_t dk, int32_t dv, int32_t n,
                            const model_deltanet_seq *s, float *scratch);
int64_t model_deltanet_scratch_floats(int32_t dk, int32_t dv, int32_t n_tok);
/* model_ctx_seq_truncate of sequence 0. */
int32_t model_ctx_truncate(model_ctx *c, int32_t n);
/* Attaches LoRA adapters (borrowed until detached or model_ctx_free; NULL detaches): every later
 * product of a weight an adapter touches adds its low-rank term (before any bias), as llama.cpp
 * does. Allocates the adapters' scratch here, not per product. The cache is not touched: a
 * caller that changes adapters must truncate K/V computed with the old ones. */
shimmy_status model_ctx_set_lora(model_ctx *c, const struct lora_set *set, shimmy_error *err);
/* Makes the adapters' scratch big enough for set in a batch of n_batch entries (per-entry
 * adapters, model_batch.lora). Not while a step runs. */
shimmy_status model_ctx_lora_reserve(model_ctx *c, const struct lora_set *set, shimmy_error *err);
/* Leaves the context's device (a device error: model_ctx_decode calls it): later steps run on
 * the CPU, every sequence is emptied (the cache was on the device). */
void model_ctx_drop_device(model_ctx *c);
/* Bytes allocated by the context (KV cache + scratch). */
size_t model_ctx_bytes(const model_ctx *c);

/* The shared ops the architecture files compose, and the kernels under them (model_ops.h: part
 * of this header, split off so that each reads in one sitting). */
#include "model/model_ops.h"

/* ---- context layout (shared by the model's own files; opaque to other modules) ---- */

/* The state of one model_load (load.c); the arch hooks see it through the functions above. */
struct model_loader {
    const gguf_file *f;
    model *m;
    shimmy_error *err;
    uint64_t type_bytes[GGUF_T_COUNT];
};

/* Query tokens of one head the attention handles together (scratch rows per thread). */
#define ATT_Q 4

struct model_ctx {
    const model *m;
    core_pool *pool; /* borrowed or NULL */
    int n_threads;
    int32_t n_ctx, n_seq, n_batch, n_logits;
    int32_t n_ctx_pad; /* cells of a full layer per sequence: n_ctx rounded up to MODEL_KV_PAD */
    int32_t n_logits_last; /* entries whose logits the last step computed */
    int32_t *seq_n_past;   /* (n_seq) positions cached per sequence */
    model_kv_type kv_type;
    size_t kv_elt; /* bytes per cache element */
    void *block;   /* owned: the one zeroed mapping every buffer below is a slice of */
    size_t block_bytes;
    /* Per layer: its K region (n_seq, cells, n_head_kv*head_dim) and its V region (n_seq,
     * n_head_kv*head_dim_v, cells), transposed (a row per dim). cells = n_ctx_pad for a full
     * layer; a sliding-window layer keeps a ring of cells (position p in cell p % cells). */
    size_t *layer_k_off, *layer_v_off; /* (n_layer) byte offsets into k_cache / v_cache */
    int32_t *layer_cells;              /* (n_layer) */
    void *k_cache;
    void *v_cache;
    /* the current step (set by model_ctx_decode) */
    int32_t n_tok;
    int32_t *tok;      /* (n_batch) token per entry */
    int32_t *tok_seq;  /* (n_batch) sequence per entry */
    int32_t *tok_pos;  /* (n_batch) position per entry */
    int32_t *out_rows; /* (n_logits) entries whose logits are computed, in order */
    int32_t *run_end;  /* (n_batch) attention scratch: index after an entry's run of one seq */
    int32_t *seq_end;  /* (n_seq) attention scratch: a sequence's positions after the step */
    int32_t *seq_ntok; /* (n_seq) attention scratch: a sequence's entries in the step */
    uint8_t *want;     /* (n_batch) model_ctx_eval's logits flags */
    float *aux;        /* (n_batch, hp.aux_floats) a family's own scratch, or NULL */
    float *rstate;     /* (n_seq, hp.state_floats) recurrent state, zero when empty, or NULL */
    /* (n_batch) 1 where the entry is its sequence's only one in the step (a decode step): its
     * products then use the single-token kernels, so that a sequence's rows do not depend on
     * what else is in the batch */
    uint8_t *tok_single;
    float *x;  /* (n_batch, n_embd) residual stream */
    float *xn; /* (n_batch, max(n_embd, n_head*head_dim_v)) normed input / projections */
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
    bool embeddings;             /* model_ctx_params.embeddings */
    float *embd;                 /* (n_logits, n_embd) hidden states of an embeddings step */
    float *qkv;                  /* (n_batch, q+k+v dims) fused products, when a layer has wqkv */
    float *rope_cs;              /* (MODEL_ROPE_SLOTS, n_batch, n_rot) angles of the step */
    const struct lora_set *lora; /* borrowed, or NULL */
    float *lora_scratch;         /* owned: lora_set_scratch_floats(lora, n_batch) floats */
    size_t lora_scratch_floats;  /* its size (per thread for per-entry adapters) */
    int lora_scratch_threads;    /* threads it has room for */
    /* per-entry adapters of the step (model_batch.lora), or NULL; row_lora: the sets of other
     * row sets (the logits' rows), (n_batch) */
    const struct lora_set *const *tok_lora;
    const struct lora_set **row_lora;
    void *moe; /* model_moe_scratch_bytes of MoE scratch (ops_moe.c) or NULL */
    size_t bytes;
    /* the device (model_ctx_params.device) or NULL, its copy of this context, and where the
     * step's activations are now (true: the device's copy is the current one) */
    const model_device *dev;
    void *dev_ctx;
    bool dev_resident;
};

/* ---- where ops run (device.c): the ops call these, nothing else does ----
 * model_dev_here: the activations are on the device (an op without weights runs there).
 * model_dev_want: the op using weight p runs on the device (true: activations moved there)
 * or on the CPU (false: moved back). model_dev_host: the CPU is about to read or write the
 * activations (an op the device lacks, an arch's own loop). model_dev_layer: layer il's
 * attention runs on the device (activations moved there) or not. model_dev_fetch: bytes at p
 * (a step's results: logits, hidden states) brought back from the device. All are no-ops
 * without a device. */
bool model_dev_here(model_ctx *c);
bool model_dev_want(model_ctx *c, const void *p);
void model_dev_host(model_ctx *c);
bool model_dev_layer(model_ctx *c, int32_t il);
void model_dev_fetch(model_ctx *c, void *p, size_t bytes);

/* y (n_tok, w->n_out) = x (n_tok, w->n_in) · wᵀ. The single entry point for every weight
 * product (quantizes x once with w's vec_dot_type into the ctx scratch). */
void model_linear(model_ctx *c, const model_weight *w, const float *x, float *y, int32_t n_tok);
/* Several products of the same input (q/k/v, gate/up) in one parallel run: y[i] = x · w[i]ᵀ.
 * Same results as n_w calls of model_linear, with one thread hand-off instead of n_w. */
void model_linear_n(model_ctx *c, int n_w, const model_weight *const *w, const float *x,
                    float *const *y, int32_t n_tok);
/* model_linear over n_rows rows that are not the step's entries (logits of some of them):
 * single[i] != 0 marks a row whose entry is its sequence's only one in the step (NULL: the
 * plain rule by n_rows). */
void model_linear_flags(model_ctx *c, const model_weight *w, const float *x, float *y,
                        int32_t n_rows, const uint8_t *single);

#endif
