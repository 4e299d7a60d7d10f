/*
 * engine — a generation: prompt tokens in, tokens and text out through a sink.
 *
 * An engine_model bundles what is loaded once per file: the GGUF mapping, the bound weights
 * (model), the vocabulary (tokenizer), the chat template text, BOS/EOS strings and a summary
 * (engine_model_info). An engine_session is one sequence: KV cache, scratch and sampler, reused
 * across requests with prefix caching (the KV of the longest common prefix of the previous
 * tokens and the new prompt is kept). engine_generate runs prompt processing in batches, then
 * one token per step: sample, detokenize (UTF-8 safe), match stop strings (never emitted, even
 * across token boundaries), and hand text to the sink.
 *
 * Invariants:
 *  - Prompts longer than the context, or prompt + max_tokens beyond it, fail with
 *    SHIMMY_ERR_CONTEXT_EXCEEDED naming both numbers; nothing is truncated silently.
 *  - The decode loop allocates nothing (everything is sized at engine_session_new).
 *  - A sink returning false, or engine_session_cancel, stops generation within one token
 *    (finish = ENGINE_FINISH_CANCELLED).
 *
 * Ownership: engine_model_open/engine_model_close, engine_session_new/engine_session_free;
 * both free functions accept NULL. A session borrows its model (close the model after freeing
 * its sessions) and the optional pool/compute_lock of its params. Accessor results are borrowed
 * until engine_model_close / the next call on the session.
 *
 * Thread-safety: an engine_model is immutable after open and may be shared by any number of
 * sessions and threads. A session is used by one thread at a time, except
 * engine_session_cancel, which any thread may call.
 */
#ifndef SHIMMY_ENGINE_H
#define SHIMMY_ENGINE_H

#include "core/core.h"
#include "model/model.h"
#include "sampling/sampling.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tok_vocab tok_vocab;

/* ---- loaded model bundle ---- */

typedef struct engine_model_params {
    bool no_tokenizer; /* load weights only (tests of the forward pass without a vocabulary) */
    /* Where the forward pass runs (gpu.h's device strings). NULL or "auto": a hardware GPU when
     * there is one (software Vulkan devices are skipped), else the CPU; a GPU that "auto" finds
     * but cannot use (no device support for the architecture, a failed upload) is a warning in
     * the log and the CPU runs the model. "cpu": the CPU. "gpu", "vulkan", "vulkan:N", "cuda":
     * named outright, so failing to open it is the load's error. */
    const char *device;
    /* Layers whose weights go to the device: 0 or -1 = all (so a zeroed struct means all
     * layers), N > 0 = the first N (the rest run on the CPU). "No layers" is device "cpu". */
    int32_t n_gpu_layers;
} engine_model_params;

typedef struct engine_model_info {
    char architecture[32]; /* "llama", "qwen2", "qwen3" */
    char name[128];        /* general.name, or the file's base name */
    char file_type[32];    /* dominant matrix type: "Q4_K", "F16", ... */
    uint64_t n_params;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_vocab;
    uint64_t file_bytes;
    uint64_t weight_bytes;
    char device[256];      /* "cpu", or the GPU's name as the driver gives it */
    int32_t n_gpu_layers;  /* layers whose weights are on the GPU (0 on the CPU) */
    uint64_t device_bytes; /* bytes of weights on the GPU (0 on the CPU) */
    /* the CPU's kernel set and the repacked layouts its matrices got (model_repack), e.g.
     * "avx512-vnni; repacked q4_k.x16/avx512-vnni, q6_k.x16/avx512-vnni: 112 of 113 matrices,
     * 150.0 MiB" or "avx2" */
    char cpu_kernels[192];
} engine_model_info;

typedef struct engine_model engine_model;

/* p may be NULL (defaults: device "auto", all layers). Errors name the file and what is
 * missing or unsupported, or the device and why it cannot be used. */
shimmy_status engine_model_open(const char *path, const engine_model_params *p, engine_model **out,
                                shimmy_error *err);
void engine_model_close(engine_model *m);

const engine_model_info *engine_model_get_info(const engine_model *m);
/* NULL when opened with no_tokenizer. */
const tok_vocab *engine_model_vocab(const engine_model *m);
/* tokenizer.chat_template (NUL-terminated copy), or NULL when the file has none. */
const char *engine_model_chat_template(const engine_model *m);
/* Text of the BOS / EOS tokens ("" when absent). */
const char *engine_model_bos_text(const engine_model *m);
const char *engine_model_eos_text(const engine_model *m);
const model *engine_model_weights(const engine_model *m);
const gguf_file *engine_model_file(const engine_model *m);
/* The GPU the model's contexts run on, for model_ctx_params.device (borrowed until
 * engine_model_close), or NULL: the CPU. Every context the engine makes passes it. */
const model_device *engine_model_device(const engine_model *m);
/* Bytes of GPU memory the model holds now: its weights there (info.device_bytes) and the KV
 * caches and activations of its live contexts. 0 on the CPU. */
uint64_t engine_model_device_bytes_now(const engine_model *m);

/* ---- compute backends ---- */

/* What a session needs from the hardware that runs the forward pass. The CPU row wraps
 * model_ctx; a GPU backend would be another row with the same contract. */
typedef struct engine_backend {
    const char *name;
    shimmy_status (*ctx_new)(const model *m, const model_ctx_params *p, void **ctx,
                             shimmy_error *err);
    void (*ctx_free)(void *ctx);
    shimmy_status (*eval)(void *ctx, const int32_t *tokens, int32_t n, int32_t n_logits,
                          shimmy_error *err);
    const float *(*logits)(const void *ctx, int32_t i);
    /* keeps n_keep positions or fewer (sliding-window rings); returns how many it kept */
    int32_t (*truncate)(void *ctx, int32_t n_keep);
    /* optional: the longest prefix of tokens[0..n) another sequence holds, copied into this
     * context's cache when longer than the `have` positions it kept; returns its positions */
    int32_t (*reuse)(void *ctx, const int32_t *tokens, int32_t n, int32_t have);
    int32_t (*n_past)(const void *ctx);
    shimmy_status (*set_lora)(void *ctx, const struct lora_set *set, shimmy_error *err);
} engine_backend;

extern const engine_backend engine_backend_cpu;

/* ---- continuous batching (batcher.c) ----
 * One model context with a sequence per attached session and a thread that runs the sessions'
 * forward steps together (see batcher.c). Sessions join through engine_session_params.batcher;
 * a session's logits do not depend on what shares its steps. */
typedef struct engine_batcher engine_batcher;

typedef struct engine_batcher_params {
    int32_t n_seq;   /* sessions that can be attached at once (1 .. 256) */
    int32_t n_ctx;   /* positions per session */
    int32_t n_chunk; /* prompt tokens a session hands in per step (0 = 256) */
    /* prompt cache: sequences beyond n_seq that keep the caches of sessions that ended, any of
     * which a new prompt's prefix may reuse, within cache_bytes of K/V (LRU eviction) */
    int32_t n_cache;
    uint64_t cache_bytes;
    model_kv_type kv_type;
    core_pool *pool;               /* borrowed, required */
    pthread_mutex_t *compute_lock; /* borrowed; held around each step when non-NULL */
} engine_batcher_params;

typedef struct engine_batcher_stats {
    uint64_t steps, entries, sequences; /* forward steps, tokens in them, sessions in them */
    int32_t last_batch, max_batch;      /* sessions in the last / the largest step */
    int32_t queued, attached;           /* hand-ins waiting now; sessions attached */
    double busy_ms;                     /* time spent in forward steps */
    int32_t cached_seqs;                /* caches kept by detached sequences */
    uint64_t cached_tokens;             /* their positions */
    uint64_t reused_tokens;             /* prompt positions copied from another sequence */
} engine_batcher_stats;

/* The model must outlive the batcher; every session attached must be freed before it. */
shimmy_status engine_batcher_new(const engine_model *m, const engine_batcher_params *p,
                                 engine_batcher **out, shimmy_error *err);
void engine_batcher_free(engine_batcher *b);
void engine_batcher_get_stats(engine_batcher *b, engine_batcher_stats *out);
int32_t engine_batcher_n_chunk(const engine_batcher *b);
int32_t engine_batcher_n_ctx(const engine_batcher *b);
/* A free sequence as a context of engine_backend_batched (SHIMMY_ERR_BUSY when none is free). */
shimmy_status engine_batcher_attach(engine_batcher *b, void **ctx, shimmy_error *err);
extern const engine_backend engine_backend_batched;

/* ---- sessions ---- */

typedef struct engine_session_params {
    int32_t n_ctx;                 /* 0 = min(n_ctx_train, 4096) */
    int32_t n_batch;               /* prompt tokens per forward step (0 = 512, at most n_ctx) */
    int32_t n_logits;              /* positions whose logits one engine_eval may return (0 = 1) */
    model_kv_type kv_type;         /* MODEL_KV_F16 (default) or MODEL_KV_F32 */
    int32_t n_threads;             /* own pool of this size when pool is NULL; 0 = physical cores */
    core_pool *pool;               /* borrowed, shared between sessions; NULL = own pool */
    pthread_mutex_t *compute_lock; /* borrowed; held around each forward step when non-NULL */
    /* borrowed; when set the session is a sequence of this batcher (n_ctx is the batcher's,
     * prompts go in its chunks), or, when all its sequences are taken, a context of
     * its own as without one */
    engine_batcher *batcher;
} engine_session_params;

typedef struct engine_session engine_session;

/* p may be NULL (defaults). */
shimmy_status engine_session_new(engine_model *m, const engine_session_params *p,
                                 engine_session **out, shimmy_error *err);
void engine_session_free(engine_session *s);
int32_t engine_session_n_ctx(const engine_session *s);
/* Attaches LoRA adapters to the session (borrowed until replaced or engine_session_free; NULL
 * detaches; the set must not change while attached, and must be detached before it is freed).
 * Attaching a different set drops the cached prefix, whose K/V were computed with the old
 * weights. */
shimmy_status engine_session_set_lora(engine_session *s, const struct lora_set *set,
                                      shimmy_error *err);
/* An adapter to attach: a GGUF LoRA file, a PEFT folder or .safetensors, and its user scale. */
typedef struct engine_adapter_spec {
    const char *path;
    float scale; /* --lora means 1.0 */
} engine_adapter_spec;

/* Opens the adapters against m's file (each validated against the base) into a new lora_set
 * that the caller owns (lora_set_free) and may attach to any session of m. */
shimmy_status engine_lora_open(const engine_model *m, const engine_adapter_spec *specs, size_t n,
                               struct lora_set **out, shimmy_error *err);
/* Asks a running engine_generate to stop (from any thread). engine_generate clears the request
 * when it starts, so a cancel must be issued while the generation runs (or via the sink). */
void engine_session_cancel(engine_session *s);

/* ---- chat prompts ---- */

struct json_t;
struct tok_buf;

typedef struct engine_chat_params {
    const struct json_t *messages; /* array of {role, content, ...}; borrowed for the call */
    const struct json_t *tools;    /* the request's tools or NULL; borrowed for the call */
    const struct json_t *vars;     /* an object of more template variables or NULL (borrowed) */
    const char *template_family;   /* NULL: the model's own template; else a built-in family */
} engine_chat_params;

/* The one path from a conversation to prompt tokens (server and library alike): renders the
 * messages with the model's chat template (a built-in family picked from the architecture and
 * vocabulary when the file has none) and tokenizes the result with BOS per metadata, special
 * tokens parsed in the template's own text only, message content kept literal. Appends to out
 * (caller-owned). *eot, when eot is non-NULL, receives the family's end-of-turn text (static
 * storage) or NULL. Template errors are SHIMMY_ERR_TEMPLATE. */
shimmy_status engine_chat_prompt(const engine_model *m, const engine_chat_params *p,
                                 struct tok_buf *out, const char **eot, shimmy_error *err);

/* ---- generation ---- */

typedef enum engine_finish {
    ENGINE_FINISH_STOP,     /* end-of-generation token or a stop string */
    ENGINE_FINISH_LENGTH,   /* max_tokens reached (or the context is full) */
    ENGINE_FINISH_CANCELLED /* the sink refused or engine_session_cancel */
} engine_finish;

/* "stop", "length", "cancelled" */
const char *engine_finish_name(engine_finish f);

/* Text with the generated tokens it completes (shimmy_piece_fn's contract, in shimmy.h). Return
 * false to stop. */
typedef bool (*engine_piece_fn)(void *user, const char *text, size_t len,
                                const shimmy_token_info *tokens, size_t n_tokens);

typedef struct engine_gen_params {
    sampling_params sampling;
    int32_t max_tokens;      /* <= 0: until the context is full */
    const char *const *stop; /* stop strings (borrowed for the call); never emitted */
    size_t n_stop;
    bool ignore_eos;       /* keep going after an end-of-generation token */
    int32_t *out_tokens;   /* optional: receives the generated ids (borrowed for the call) */
    size_t out_tokens_cap; /* capacity of out_tokens; ids beyond it are not stored */
    /* Structured output (constrain.h): the text must match grammar (borrowed for the call; NULL =
     * free); with grammar_after, only the text after that literal's first occurrence. A grammar
     * that is complete ends the generation (ENGINE_FINISH_STOP). */
    const struct grammar *grammar;
    const char *grammar_after;
    /* Token records (pieces.c): when piece is set it receives the text instead of the sink
     * (same user pointer), with the tokens each piece completes. */
    engine_piece_fn piece;
    int32_t n_probs;   /* with piece: < 0 no log-probabilities; else the alternatives listed per
                          token, [0, SHIMMY_MAX_TOP_LOGPROBS] */
    bool prompt_probs; /* with piece and n_probs >= 0: the prompt's records first (teacher-forced,
                          one position per step, no prefix reuse) */
} engine_gen_params;

/* Defaults: llama.cpp's sampling defaults, max_tokens 128, no stop strings. */
void engine_gen_params_default(engine_gen_params *p);

/* Receives generated text as it becomes final (whole UTF-8 characters, stop strings held back
 * until they can be ruled out). token is the id whose decoding completed the text (-1 for text
 * released at the end). Return false to stop (e.g. the client went away). */
typedef bool (*engine_sink_fn)(void *user, const char *text, size_t len, int32_t token);

typedef struct engine_result {
    int32_t n_prompt;
    int32_t n_generated;
    int32_t n_cached; /* prompt tokens whose KV came from the previous request */
    engine_finish finish;
    double prompt_ms; /* prompt processing */
    double gen_ms;    /* generation after the first token */
    double ttft_ms;   /* from the call to the first generated token */
} engine_result;

/* Generates a continuation of prompt (n_prompt >= 1). sink may be NULL. res may be NULL. */
shimmy_status engine_generate(engine_session *s, const int32_t *prompt, size_t n_prompt,
                              const engine_gen_params *gp, engine_sink_fn sink, void *user,
                              engine_result *res, shimmy_error *err);

/* ---- token records (pieces.c; internal to engine_generate) ---- */

/* ln softmax(logits)[token] and, with n_top > 0, the n_top most likely tokens, most likely
 * first (ties: lower id first), into top (n_top entries; n_top <= n_vocab). scratch: n_vocab
 * floats. */
float engine_logprob(const float *logits, int32_t n_vocab, float *scratch, int32_t token,
                     int32_t n_top, shimmy_logprob *top);

/* The tokens sampled but not yet handed over, with their place in the decoder's output:
 * [start, end) once the decoder has written all of their bytes (done). */
typedef struct engine_pending {
    int32_t token;
    bool done;
    float logprob;
    size_t start, end;
    int32_t n_top;
    shimmy_logprob top[SHIMMY_MAX_TOP_LOGPROBS];
} engine_pending;

typedef struct engine_pieces {
    const tok_vocab *v;
    int32_t n_vocab, n_probs;
    engine_piece_fn fn;
    void *user;
    engine_pending *q; /* (cap) [head, n) pending */
    size_t head, n, cap;
    size_t out, emitted;     /* decoder output bytes so far; of them, handed over as text */
    shimmy_token_info *info; /* (cap) scratch for one hand-over */
    char *bytes;             /* (cap * max_piece) their bytes */
    size_t max_piece;
    float *prompt_lp;           /* (n_prompt) prompt_probs: teacher-forced values */
    shimmy_logprob *prompt_top; /* (n_prompt * n_probs) */
    float *scratch;             /* (n_vocab) for the softmax */
} engine_pieces;

shimmy_status engine_pieces_init(engine_pieces *p, const tok_vocab *v, int32_t n_vocab,
                                 const engine_gen_params *gp, void *user, size_t n_prompt,
                                 shimmy_error *err);
void engine_pieces_deinit(engine_pieces *p);
/* Prompt records: the logits after prompt position i - 1 score token i (i >= 1). */
void engine_pieces_prompt_logits(engine_pieces *p, size_t i, const float *logits, int32_t token);
/* Hands the prompt's records over (text-less). False when the receiver said stop. */
bool engine_pieces_prompt_send(engine_pieces *p, const int32_t *prompt, size_t n);
/* A sampled token pushed to the decoder, which wrote `wrote` bytes and holds none back
 * (complete) or some. logits: those it was sampled from. False when out of memory. */
bool engine_pieces_token(engine_pieces *p, int32_t token, const float *logits, size_t wrote,
                         bool complete);
/* The decoder's final flush wrote `wrote` bytes: every pending token is complete. */
void engine_pieces_flush(engine_pieces *p, size_t wrote);
/* Text now final (len may be 0): handed over with the tokens it completes. False: stop. */
bool engine_pieces_emit(engine_pieces *p, const char *text, size_t len);
/* The end (not cancelled): a token that a stop string cut into goes out text-less; tokens
 * wholly past the text are dropped. */
void engine_pieces_end(engine_pieces *p);

/* ---- teacher forcing (logits, perplexity) ---- */

/* Evaluates tokens at positions pos..pos+n-1, first discarding cached positions >= pos
 * (pos <= engine_session_n_past). Any n (split into n_batch steps) when only the last position's
 * logits are wanted; with want_all the logits of every position are kept, which needs
 * n <= min(n_batch, n_logits). */
shimmy_status engine_eval(engine_session *s, const int32_t *tokens, size_t n, int32_t pos,
                          bool want_all, shimmy_error *err);
/* Logits (n_vocab floats) of the i-th position of the last engine_eval (0 when !want_all). */
const float *engine_logits(const engine_session *s, int32_t i);
int32_t engine_session_n_past(const engine_session *s);
int32_t engine_n_vocab(const engine_session *s);

/* ---- stop strings (exposed for tests) ---- */

/* Holds generated text back while it could still be the start of a stop string. */
typedef struct engine_stop {
    const char *const *stop; /* borrowed */
    size_t n_stop;
    size_t max_len;
    char *buf; /* owned: [0, off) emitted by the last call, [off, len) held back */
    size_t off, len, cap;
} engine_stop;

shimmy_status engine_stop_init(engine_stop *st, const char *const *stop, size_t n_stop,
                               shimmy_error *err);
void engine_stop_deinit(engine_stop *st);
/* Appends text. Sets *emit and *n_emit to the text that is now safe to emit (borrowed until the
 * next call) and returns true when a stop string matched (the text before it is emitted, the
 * stop string and anything after it are dropped). */
bool engine_stop_push(engine_stop *st, const char *text, size_t len, const char **emit,
                      size_t *n_emit);
/* Releases what is still held back (at the end of generation). */
void engine_stop_flush(engine_stop *st, const char **emit, size_t *n_emit);

/* ---- embeddings and reranking (embed.c) ----
 * An engine_embedder is a model context with one sequence per input evaluated together: inputs
 * are packed whole into forward steps (each attends only to itself), pooled as the model says
 * (<arch>.pooling_type; a generative model without one: MEAN over its output-normed hidden
 * states) and L2-normalised on request. Rank pooling returns the classification head's scores.
 * One caller at a time; with a compute lock, each forward step holds it (so that embeddings take
 * turns with the generations sharing the pool instead of stalling them). */
typedef struct engine_embedder engine_embedder;

typedef struct engine_embed_params {
    int32_t n_ctx;     /* tokens per input; 0 = min(n_ctx_train, 8192), 2048 for decoders */
    int32_t n_seq;     /* inputs per step, [0, 256]; 0 = what a 4 GiB (virtual) F32 cache holds */
    int32_t n_batch;   /* tokens per step (at least n_ctx: inputs are whole); 0 = 2048 */
    int32_t n_threads; /* own pool of this size when pool is NULL; 0 = cores */
    core_pool *pool;   /* borrowed or NULL */
    pthread_mutex_t *compute_lock; /* borrowed; held around each forward step when non-NULL */
} engine_embed_params;

typedef struct engine_embed_opts {
    bool normalize;     /* L2-normalise each vector (ignored for rank scores) */
    int32_t dimensions; /* keep the first n dims (then renormalise when normalize); 0 = all */
} engine_embed_opts;

/* The model must outlive the embedder. SHIMMY_ERR_UNSUPPORTED for pooling NONE (per-token
 * vectors) and for rank pooling without a classification head. */
shimmy_status engine_embed_new(const engine_model *m, const engine_embed_params *p,
                               engine_embedder **out, shimmy_error *err);
void engine_embed_free(engine_embedder *e);
int32_t engine_embed_n_ctx(const engine_embedder *e);
/* Floats per output: n_embd, or the head's n_cls_out for rank pooling. */
int32_t engine_embed_dim(const engine_embedder *e);
model_pooling engine_embed_pooling(const engine_embedder *e);
/* An input's tokens as the model expects them (add_special: [CLS] .. [SEP], or BOS/EOS per the
 * vocab); pair (b non-NULL): the Hugging Face pair encoding [CLS] a [SEP] b [SEP]. Longer than
 * n_ctx: cut to n_ctx keeping the final special token when truncate, else
 * SHIMMY_ERR_CONTEXT_EXCEEDED. Appends to out. */
shimmy_status engine_embed_tokenize(const engine_embedder *e, const char *a, size_t a_len,
                                    const char *b, size_t b_len, bool truncate, struct tok_buf *out,
                                    shimmy_error *err);
/* Embeds n inputs (tokens[i], n_tokens[i] of them, 1 .. n_ctx each, ids in range): out gets n
 * rows of engine_embed_dim floats (dimensions: of min(dimensions, dim) floats). Errors name
 * the input index. */
shimmy_status engine_embed_run(engine_embedder *e, const int32_t *const *tokens,
                               const int32_t *n_tokens, int32_t n, const engine_embed_opts *o,
                               float *out, shimmy_error *err);

#endif
