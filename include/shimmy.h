/*
 * shimmy.h — the public C API of libshimmy.
 *
 * Errors are values: every function that can fail returns a shimmy_status (SHIMMY_OK == 0)
 * and, when the caller passes a shimmy_error, fills it with a message a user can act on and
 * the field, file or model concerned. The status list below is the single source of truth
 * for status names, messages and HTTP codes across the library, the CLI and the server.
 *
 * Ownership: x_new/x_free, x_open/x_free, x_ref/x_unref pair up; free functions accept NULL.
 * Every returned pointer is either owned by the caller (documented "Owned") or borrowed until a
 * named event. Strings and arrays passed in are borrowed for the call only (copied if kept).
 * Thread-safety: the status functions are pure. A spec is immutable; models, managers and weak
 * references are thread-safe; a builder, a model list and a stream's consumer side are used by
 * one thread at a time (shimmy_stream_cancel from any thread).
 * C++: the header compiles as C++; the SHIMMY_*(...) initializer macros are C only.
 */
#ifndef SHIMMY_H
#define SHIMMY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHIMMY_VERSION "0.1.0"

/* X(enum name, default message, HTTP status) */
#define SHIMMY_STATUS_LIST(X)                                                                      \
    X(SHIMMY_OK, "ok", 200)                                                                        \
    X(SHIMMY_ERR_INVALID_ARG, "invalid argument", 400)                                             \
    X(SHIMMY_ERR_INVALID_JSON, "malformed JSON", 400)                                              \
    X(SHIMMY_ERR_FORMAT, "malformed model file", 400)                                              \
    X(SHIMMY_ERR_UNSUPPORTED, "unsupported model or feature", 400)                                 \
    X(SHIMMY_ERR_IO, "file could not be read or written", 500)                                     \
    X(SHIMMY_ERR_NOMEM, "out of memory", 500)                                                      \
    X(SHIMMY_ERR_NOT_FOUND, "not found", 404)                                                      \
    X(SHIMMY_ERR_MODEL_NOT_FOUND, "model not found", 404)                                          \
    X(SHIMMY_ERR_CONTEXT_EXCEEDED, "context length exceeded", 400)                                 \
    X(SHIMMY_ERR_TOKENIZER, "text could not be tokenized", 400)                                    \
    X(SHIMMY_ERR_TEMPLATE, "chat template error", 400)                                             \
    X(SHIMMY_ERR_ADAPTER, "LoRA adapter cannot be applied", 400)                                   \
    X(SHIMMY_ERR_UNAUTHORIZED, "missing or invalid API key", 401)                                  \
    X(SHIMMY_ERR_METHOD, "method not allowed", 405)                                                \
    X(SHIMMY_ERR_TOO_LARGE, "request too large", 413)                                              \
    X(SHIMMY_ERR_BUSY, "server is busy", 503)                                                      \
    X(SHIMMY_ERR_CANCELLED, "cancelled", 499)                                                      \
    X(SHIMMY_ERR_GENERATION, "generation failed", 500)                                             \
    X(SHIMMY_ERR_INTERNAL, "internal error", 500)

typedef enum shimmy_status {
#define SHIMMY_X_ENUM(name, msg, http) name,
    SHIMMY_STATUS_LIST(SHIMMY_X_ENUM)
#undef SHIMMY_X_ENUM
        SHIMMY_STATUS_COUNT
} shimmy_status;

/* Details of a failure. Fixed-size buffers: nothing to free, safe to copy. */
typedef struct shimmy_error {
    shimmy_status status;
    char message[512]; /* what went wrong and, where possible, what to do about it */
    char where[256];   /* the field, file, tensor or model concerned ("" if none) */
} shimmy_error;

/* "SHIMMY_ERR_FORMAT"; "SHIMMY_STATUS_UNKNOWN" for values outside the list. */
const char *shimmy_status_name(shimmy_status s);
/* The default human message of a status. */
const char *shimmy_status_message(shimmy_status s);
/* The HTTP status code a server answers with for this status. */
int shimmy_status_http(shimmy_status s);
/* Resets *err to SHIMMY_OK with empty strings. */
void shimmy_error_clear(shimmy_error *err);

/* ======================================================================================== */
/* The library API. Every function below that can fail returns a shimmy_status and fills the
 * optional shimmy_error (NULL is allowed everywhere); on failure, out-parameters are NULL/zero
 * and nothing needs freeing. Free functions accept NULL. */

#if defined(__GNUC__) || defined(__clang__)
#define SHIMMY_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SHIMMY_NODISCARD         __attribute__((warn_unused_result))
#else
#define SHIMMY_PRINTF(fmt, args)
#define SHIMMY_NODISCARD
#endif

/* Fills *err (if non-NULL) with status, where (may be NULL) and a printf-style message, for
 * library users who report their own failures the same way. Returns status. */
shimmy_status shimmy_error_set(shimmy_error *err, shimmy_status status, const char *where,
                               const char *fmt, ...) SHIMMY_PRINTF(4, 5);

/* ---- generation options ---------------------------------------------------------------- */

/* The largest max_tokens any request may ask for; SHIMMY_GEN_OPTIONS_MAX checks it at compile
 * time, shimmy_gen_options_check at run time. */
#define SHIMMY_MAX_TOKENS_LIMIT 1048576
/* The most stop strings one request may carry, and their longest length in bytes. */
#define SHIMMY_MAX_STOP     16
#define SHIMMY_MAX_STOP_LEN 256
/* The longest grammar / JSON Schema text a request may carry, in bytes. */
#define SHIMMY_MAX_GRAMMAR_LEN (1 << 20)
/* The most alternatives a token's record may list (OpenAI's top_logprobs bound). */
#define SHIMMY_MAX_TOP_LOGPROBS 20
/* seed value that draws a fresh seed from the clock. */
#define SHIMMY_SEED_RANDOM 0xFFFFFFFFu

/* Every field's zero is its default, so `(shimmy_gen_options){0}` and designated initializers
 * that leave fields out are always valid. The zero defaults are deliberately "off":
 * a zero-initialised request decodes greedily (deterministic) with no sampler. */
typedef struct shimmy_gen_options {
    int32_t max_tokens;      /* [0, SHIMMY_MAX_TOKENS_LIMIT]; 0 = 128 (fewer when the context
                                has less room); an explicit value that does not fit is an error */
    float temperature;       /* [0, 10]; 0 = greedy (argmax) */
    int32_t top_k;           /* [0, vocabulary size]; 0 = off */
    float top_p;             /* [0, 1]; 0 or 1 = off */
    float min_p;             /* [0, 1]; 0 = off */
    float repeat_penalty;    /* [0, 10]; 0 or 1 = off */
    float frequency_penalty; /* [-2, 2]; 0 = off */
    float presence_penalty;  /* [-2, 2]; 0 = off */
    int32_t repeat_last_n;   /* [0, 1048576]; tokens the penalties look back on; 0 = 64 */
    uint32_t seed;           /* any value (0 is a seed like any other); SHIMMY_SEED_RANDOM */
    const char *const *stop; /* up to SHIMMY_MAX_STOP non-empty strings (borrowed for the call;
                                never emitted); the chat template's end of turn is added by
                                shimmy_chat */
    size_t n_stop;
    bool ignore_eos;   /* keep generating after an end-of-generation token */
    int32_t queue_len; /* [0, 4096]: pieces a pull stream buffers before its generator waits
                          for the consumer (backpressure); 0 = 16. Unused by callbacks. */
    /* Structured output (docs/grammar.md): the generated text is constrained token by token so
     * that it matches. At most one of grammar and json_schema; NULL or "" = unconstrained. Both
     * are borrowed for the call (a spec's generation defaults keep copies). A grammar that the
     * model completes ends the generation (finish "stop"); max_tokens first gives "length". */
    const char *grammar;       /* GBNF text as llama.cpp defines it, start rule `root`, at most
                                  SHIMMY_MAX_GRAMMAR_LEN bytes; errors give line:column */
    const char *json_schema;   /* a JSON Schema (JSON text), compiled to a grammar */
    const char *grammar_after; /* NULL or "": the constraint starts with the first generated
                                  token. Else the text up to and including the first occurrence
                                  of this literal is free and the constraint starts right after
                                  it (e.g. "</think>": a reasoning model thinks unconstrained) */
    /* Log-probabilities (docs/server.md, "Logprobs"): with logprobs set, the token records of a
     * generation (shimmy_token_info, through shimmy_session_request.on_piece) carry each
     * token's log-probability and its top_logprobs most likely alternatives: log-softmax of the
     * model's raw logits, before penalties, biases, temperature or truncation. */
    bool logprobs;
    int32_t top_logprobs; /* [0, SHIMMY_MAX_TOP_LOGPROBS]; 0 = the chosen token only */
} shimmy_gen_options;

/* Checks every field's range (the vocabulary-dependent top_k bound is checked at generation).
 * SHIMMY_ERR_INVALID_ARG whose `where` lists every bad field, comma-separated ("temperature" or
 * "temperature,top_k"), and whose message gives each value and its range. */
shimmy_status shimmy_gen_options_check(const shimmy_gen_options *o, shimmy_error *err);

#ifndef __cplusplus
/* Declarative options: SHIMMY_GEN_OPTIONS(.temperature = 0.7f, .top_k = 40). */
#define SHIMMY_GEN_OPTIONS(...) ((shimmy_gen_options){__VA_ARGS__})
/* Options with a constant max_tokens N checked at compile time (1 <= N <= the limit):
 * SHIMMY_GEN_OPTIONS_MAX(256, .temperature = 0.5f). A larger N does not compile. */
#define SHIMMY_GEN_OPTIONS_MAX(...) SHIMMY_GEN_OPTIONS_MAX_(__VA_ARGS__, )
#define SHIMMY_GEN_OPTIONS_MAX_(N, ...)                                                            \
    ((shimmy_gen_options){                                                                         \
        .max_tokens = (int32_t)(N) +                                                               \
                      0 * (int32_t)sizeof(struct {                                                 \
                          _Static_assert((N) >= 1 && (N) <= SHIMMY_MAX_TOKENS_LIMIT,               \
                                         "max_tokens must be in [1, SHIMMY_MAX_TOKENS_LIMIT]");    \
                          int shimmy_static_check_;                                                \
                      }),                                                                          \
        __VA_ARGS__})
#endif

/* ---- model specs ----------------------------------------------------------------------- */

/* What to load and how: the declarative form. Unset (zero) fields mean defaults. Strings are
 * borrowed for the duration of shimmy_spec_from_config (the spec copies them). */
typedef struct shimmy_model_config {
    const char *name;      /* required: how the model is called (1..255 printable chars) */
    const char *base_path; /* required: the base .gguf file */
    const char *lora_path; /* optional: one LoRA adapter (GGUF file, PEFT folder) */
    float lora_scale;      /* [-100, 100]; 0 = 1.0 */
#ifdef __cplusplus
    const char *template_; /* `template` is a C++ keyword: same member under another name */
#else
    const char *template; /* NULL = the model's own template (else one picked from its vocabulary);
                             or a built-in family: "chatml", "llama3", "mistral", ... */
#endif
    int32_t ctx_len; /* [0, 1048576]; 0 = min(trained context, 4096) */
    int32_t threads; /* [0, 512]; 0 = physical cores */
    /* Where the model runs: NULL = the SHIMMY_DEVICE environment variable, else "auto" (a
     * hardware GPU through Vulkan when there is one, else the CPU); "cpu"; "gpu" or "vulkan"
     * (the first usable Vulkan device); "vulkan:N" (shimmy_list_devices' index N); "cuda" (the
     * first NVIDIA GPU, through Vulkan). A device named outright that cannot be used fails the
     * load; "auto" falls back to the CPU. */
    const char *device;
    shimmy_gen_options generation; /* defaults for requests that pass no options */
    int32_t gpu_layers; /* >= 0: layers whose weights go to the GPU, 0 = all, N = the first N */
} shimmy_model_config;

#ifndef __cplusplus
/* SHIMMY_MODEL_CONFIG(.name = "prod", .base_path = "./models/prod.gguf", .ctx_len = 16384) */
#define SHIMMY_MODEL_CONFIG(...) ((shimmy_model_config){__VA_ARGS__})
#endif

/* A validated, immutable model spec. */
typedef struct shimmy_spec shimmy_spec;
/* A mutable spec under construction. Setters never fail: they record the value (a copy) and
 * shimmy_spec_build reports every problem at once. */
typedef struct shimmy_spec_builder shimmy_spec_builder;

/* Owned: free with shimmy_spec_builder_free. NULL only when out of memory. */
shimmy_spec_builder *shimmy_spec_new(void);
void shimmy_spec_builder_free(shimmy_spec_builder *b);
void shimmy_spec_set_name(shimmy_spec_builder *b, const char *name);
void shimmy_spec_set_base_path(shimmy_spec_builder *b, const char *path);
/* Adds an adapter (call again for more; at most 8). */
void shimmy_spec_add_lora(shimmy_spec_builder *b, const char *path, float scale);
void shimmy_spec_set_template(shimmy_spec_builder *b, const char *family);
void shimmy_spec_set_ctx_len(shimmy_spec_builder *b, int32_t ctx_len);
void shimmy_spec_set_threads(shimmy_spec_builder *b, int32_t threads);
void shimmy_spec_set_device(shimmy_spec_builder *b, const char *device);
void shimmy_spec_set_gpu_layers(shimmy_spec_builder *b, int32_t gpu_layers); /* 0 = all */
/* Copies the options; stop strings are copied too. */
void shimmy_spec_set_generation(shimmy_spec_builder *b, const shimmy_gen_options *o);

/* Validates everything (files exist and are GGUF, ranges, device, template family, generation)
 * and, when all is well, makes an owned spec (*out; shimmy_spec_free). Otherwise
 * SHIMMY_ERR_INVALID_ARG (or NOT_FOUND/FORMAT/UNSUPPORTED when that is the only problem) whose
 * `where` is the comma-separated list of bad fields ("base_path,ctx_len") and whose message
 * explains each. The builder is left as it was (fix and build again). */
SHIMMY_NODISCARD shimmy_status shimmy_spec_build(const shimmy_spec_builder *b, shimmy_spec **out,
                                                 shimmy_error *err);
/* The same validation for the declarative form. */
SHIMMY_NODISCARD shimmy_status shimmy_spec_from_config(const shimmy_model_config *c,
                                                       shimmy_spec **out, shimmy_error *err);
void shimmy_spec_free(shimmy_spec *s);
/* Accessors: strings borrowed until shimmy_spec_free. */
const char *shimmy_spec_name(const shimmy_spec *s);
const char *shimmy_spec_base_path(const shimmy_spec *s);
size_t shimmy_spec_lora_count(const shimmy_spec *s);
const char *shimmy_spec_lora_path(const shimmy_spec *s, size_t i); /* NULL out of range */
int32_t shimmy_spec_ctx_len(const shimmy_spec *s);                 /* as given (0 = default) */

/* ---- models ---------------------------------------------------------------------------- */

/* A loaded model: weights (mapped), vocabulary, template, adapters. Refcounted: every function
 * that hands one out gives the caller a reference to drop with shimmy_model_unref. A model may
 * be used by any number of threads at once (each generation has its own session). */
typedef struct shimmy_model shimmy_model;

/* Loads spec's model without a manager (the spec is borrowed for the call). Errors name the
 * file: SHIMMY_ERR_IO, _FORMAT, _UNSUPPORTED, _ADAPTER, _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_model_load(const shimmy_spec *spec, shimmy_model **out,
                                                 shimmy_error *err);
/* Adds a reference and returns m. */
shimmy_model *shimmy_model_ref(shimmy_model *m);
/* Drops one; the last frees the model. NULL is a no-op. */
void shimmy_model_unref(shimmy_model *m);
/* Borrowed until the last unref. */
const char *shimmy_model_name(const shimmy_model *m);
const char *shimmy_model_architecture(const shimmy_model *m);
int32_t shimmy_model_ctx_len(const shimmy_model *m); /* the context each generation gets */
int32_t shimmy_model_vocab_size(const shimmy_model *m);
/* Where it runs: "cpu" or the GPU's name (borrowed until the last unref); the layers whose
 * weights are on the GPU (0 on the CPU); bytes of GPU memory it holds now (weights, and the KV
 * caches of its live sessions; 0 on the CPU). */
const char *shimmy_model_device(const shimmy_model *m);
int32_t shimmy_model_gpu_layers(const shimmy_model *m);
uint64_t shimmy_model_device_bytes(const shimmy_model *m);
/* The CPU's kernels for this model (borrowed until the last unref): the kernel set and the
 * layouts its matrices were repacked into at load, e.g. "avx512-vnni; repacked
 * q4_k.x16/avx512-vnni, q6_k.x16/avx512-vnni: 112 matrices, 150.0 MiB", or "avx2". */
const char *shimmy_model_cpu_kernels(const shimmy_model *m);

/* One GPU as the Vulkan loader reports it. */
typedef struct shimmy_device_info {
    int32_t index;       /* N of device "vulkan:N" */
    char name[256];      /* "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char type[16];       /* "discrete", "integrated", "virtual", "cpu", "other" */
    uint32_t vendor_id;  /* PCI vendor id */
    char driver[128];    /* driver name and version */
    uint64_t vram_bytes; /* the largest device-local heap */
    bool software;       /* a CPU implementation (lavapipe): "auto" never picks it */
    bool usable;         /* the backend can run on it; else `why` says what it lacks */
    char why[160];
} shimmy_device_info;

/* Fills up to cap devices (out may be NULL to count) and returns how many there are. 0 when
 * there are none; err (may be NULL) then says why: SHIMMY_ERR_UNSUPPORTED when this build has
 * no Vulkan backend, else no loader or no device. */
int32_t shimmy_list_devices(shimmy_device_info *out, int32_t cap, shimmy_error *err);

/* ---- embeddings and reranking ------------------------------------------------------------ */

/* One input of shimmy_embed: a text (tokenized as the model expects: [CLS] .. [SEP] for BERT,
 * BOS/EOS as the vocab says; special-token text in it counts, as llama.cpp tokenizes embedding
 * inputs) or, when text is NULL, token ids used as given. */
typedef struct shimmy_embed_input {
    const char *text; /* NUL-terminated, or NULL */
    const int32_t *tokens;
    size_t n_tokens;
} shimmy_embed_input;

typedef struct shimmy_embed_options {
    bool raw;           /* the pooled vectors as they are (default: L2-normalised) */
    int32_t dimensions; /* keep the first n components, then normalise (Matryoshka); 0 = all */
    /* an input longer than the model's context is cut to it, keeping the final [SEP]/EOS;
     * otherwise SHIMMY_ERR_CONTEXT_EXCEEDED naming the input ("input[i]") */
    bool truncate;
    /* run on this pool's threads (shimmy_threadpool below), taking turns per forward step with
     * the sessions sharing it; NULL = the model's own threads. Borrowed for the call. */
    struct shimmy_threadpool *pool;
} shimmy_embed_options;

/* Vectors of shimmy_embed: n rows of dim floats; n_tokens[i] the tokens input i used.
 * Owned: shimmy_embeddings_free. */
typedef struct shimmy_embeddings {
    size_t n;
    int32_t dim;
    float *data;
    int32_t *n_tokens;
    uint64_t prompt_tokens; /* sum of n_tokens */
} shimmy_embeddings;

/* Embeds n inputs, evaluated together in batches (each input attends only to itself), pooled
 * as the model's GGUF says (<arch>.pooling_type: mean, cls, last; a generative model without
 * one: mean over its final, output-normed hidden states). Rank-pooling models (rerankers) give
 * their classifier's scores (dim = its outputs, never normalised). o may be NULL (defaults).
 * Concurrent calls on one model are combined: their inputs share forward steps, each caller
 * gets what it would get alone. Errors name the input ("input[3]"):
 * SHIMMY_ERR_INVALID_ARG (empty input, token id out of range), _CONTEXT_EXCEEDED,
 * _UNSUPPORTED (a model with per-token pooling 'none'). */
SHIMMY_NODISCARD shimmy_status shimmy_embed(shimmy_model *m, const shimmy_embed_input *in, size_t n,
                                            const shimmy_embed_options *o, shimmy_embeddings *out,
                                            shimmy_error *err);
void shimmy_embeddings_free(shimmy_embeddings *e);

/* Relevance of each document to the query with a reranker (rank pooling and a classification
 * head; otherwise SHIMMY_ERR_UNSUPPORTED): the first output of the head for the pair
 * [CLS] query [SEP] document [SEP] (Hugging Face's pair encoding, what llama-embedding scores).
 * scores has n_docs floats; *prompt_tokens (may be NULL) the tokens of all pairs. o: only
 * truncate is used (a pair over the context is cut, keeping its final [SEP]). */
SHIMMY_NODISCARD shimmy_status shimmy_rerank(shimmy_model *m, const char *query,
                                             const char *const *docs, size_t n_docs,
                                             const shimmy_embed_options *o, float *scores,
                                             uint64_t *prompt_tokens, shimmy_error *err);

/* "mean", "cls", "last", "rank" or "none": how shimmy_embed pools this model's states. */
const char *shimmy_model_pooling(const shimmy_model *m);
/* Floats per shimmy_embed vector (n_embd, or a reranker's outputs). */
int32_t shimmy_model_embedding_size(const shimmy_model *m);

/* ---- generation ------------------------------------------------------------------------ */

typedef enum shimmy_finish {
    SHIMMY_FINISH_STOP,     /* end-of-generation token or a stop string */
    SHIMMY_FINISH_LENGTH,   /* max_tokens reached, or the context is full */
    SHIMMY_FINISH_CANCELLED /* the callback said stop, or shimmy_stream_cancel */
} shimmy_finish;

/* "stop", "length", "cancelled" ("unknown" outside the enum). */
const char *shimmy_finish_name(shimmy_finish f);

typedef struct shimmy_result {
    shimmy_finish finish;
    int32_t prompt_tokens;
    int32_t completion_tokens;
    int32_t ctx_len;      /* the context the generation had (also set on CONTEXT_EXCEEDED) */
    int32_t max_tokens;   /* the limit in effect (also set on CONTEXT_EXCEEDED: what was asked) */
    double prompt_ms;     /* prompt processing */
    double gen_ms;        /* generation after the first token */
    size_t queue_highest; /* pull streams: the most pieces ever buffered (<= queue_len) */
} shimmy_result;

typedef enum shimmy_next { SHIMMY_CONTINUE = 0, SHIMMY_STOP = 1 } shimmy_next;

/* Receives text as it becomes final (whole UTF-8 characters; stop strings never appear).
 * piece is borrowed for the call and not NUL-terminated. */
typedef shimmy_next (*shimmy_token_fn)(const char *piece, size_t len, void *user);

/* A candidate token and its log-probability. */
typedef struct shimmy_logprob {
    int32_t token;
    float logprob; /* ln p, <= 0 */
} shimmy_logprob;

/* One token of a generation (or of its prompt), as shimmy_piece_fn hands it over. The pointers
 * are borrowed for the call. */
typedef struct shimmy_token_info {
    int32_t token;
    const char *bytes; /* what the token decodes to (n_bytes; may be part of a UTF-8 character;
                          control tokens of a prompt give their text, generated ones nothing) */
    size_t n_bytes;
    bool prompt;               /* a prompt token (shimmy_session_request.prompt_logprobs) */
    bool has_logprob;          /* false when logprobs are off, and for a prompt's first token */
    float logprob;             /* ln p(token | everything before it) under the raw logits */
    const shimmy_logprob *top; /* the n_top most likely tokens, most likely first (ties: lower
                                  id first); n_top = min(top_logprobs, vocabulary size) */
    size_t n_top;
} shimmy_token_info;

/* Receives text like shimmy_token_fn together with the generated tokens whose bytes that text
 * completes, in order: the tokens of all calls concatenated give exactly the text of all calls
 * (a character split across tokens arrives with the token that completes it; its earlier
 * tokens arrive with it). len may be 0 when a call only hands over tokens: prompt tokens (all
 * in the first call, before any generated token), or at the end a token that a stop string cut
 * into (its bytes run past the text: the stop string itself is never text). Tokens that end
 * the generation (end of turn) and tokens wholly inside a matched stop string are not handed
 * over. */
typedef shimmy_next (*shimmy_piece_fn)(const char *text, size_t len,
                                       const shimmy_token_info *tokens, size_t n_tokens,
                                       void *user);

/* Generates a continuation of prompt (raw text; special-token text in it is parsed) on the
 * calling thread. opts NULL = the spec's generation options. on_token may be NULL. result may
 * be NULL. Errors: SHIMMY_ERR_INVALID_ARG (an option, `where` names it), _CONTEXT_EXCEEDED
 * (`where` "prompt" or "max_tokens"; the message and result->prompt_tokens, ->max_tokens and
 * ->ctx_len give the numbers), _TOKENIZER, _NOMEM, _GENERATION. */
SHIMMY_NODISCARD shimmy_status shimmy_generate(shimmy_model *m, const char *prompt,
                                               const shimmy_gen_options *opts,
                                               shimmy_token_fn on_token, void *user,
                                               shimmy_result *result, shimmy_error *err);

/* A role and its text; both borrowed for the call. */
typedef struct shimmy_message {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} shimmy_message;

/* Renders messages with the model's chat template (the spec's family if it names one), then
 * generates the assistant's turn like shimmy_generate. Special-token text inside message
 * content stays text. The template's end-of-turn text is added to the stop strings.
 * Errors: those of shimmy_generate, and SHIMMY_ERR_TEMPLATE (`where` "messages"). */
SHIMMY_NODISCARD shimmy_status shimmy_chat(shimmy_model *m, const shimmy_message *messages,
                                           size_t n_messages, const shimmy_gen_options *opts,
                                           shimmy_token_fn on_token, void *user,
                                           shimmy_result *result, shimmy_error *err);

/* ---- pull streams ---------------------------------------------------------------------- */

/* A generation running on its own thread, handing pieces through a bounded queue of
 * opts->queue_len pieces: when the consumer is slow the generator waits (backpressure), so
 * memory never grows with the consumer's delay. */
typedef struct shimmy_stream shimmy_stream;

/* Validates and tokenizes synchronously (same errors as shimmy_generate, returned here), then
 * starts the generator. The stream holds a model reference until shimmy_stream_free. */
SHIMMY_NODISCARD shimmy_status shimmy_stream_open(shimmy_model *m, const char *prompt,
                                                  const shimmy_gen_options *opts,
                                                  shimmy_stream **out, shimmy_error *err);
/* Waits for the next piece. SHIMMY_OK with *piece != NULL: a piece, borrowed until the next call
 * on the stream. SHIMMY_OK with *piece == NULL and *len == 0: the end (see shimmy_stream_result).
 * An error status: the generation failed (details from shimmy_stream_result). One consumer
 * thread at a time. */
shimmy_status shimmy_stream_next(shimmy_stream *s, const char **piece, size_t *len);
/* Stops the generation within one token and discards what is buffered: the next
 * shimmy_stream_next returns the end. Any thread, any time, repeatable. */
void shimmy_stream_cancel(shimmy_stream *s);
/* Waits for the generator to finish and returns its status; fills result and err (either may
 * be NULL). Pieces not read yet are discarded (the generator no longer waits for a reader), so
 * calling it early never blocks forever. */
shimmy_status shimmy_stream_result(shimmy_stream *s, shimmy_result *result, shimmy_error *err);
/* Cancels if still running, waits for the generator thread, drops the model reference. */
void shimmy_stream_free(shimmy_stream *s);

/* ---- manager: a cache of loaded models ------------------------------------------------- */

typedef struct shimmy_manager shimmy_manager;

typedef struct shimmy_manager_options {
    size_t max_models;         /* models kept cached (LRU beyond it); 0 = unlimited */
    uint64_t max_loaded_bytes; /* weights the cache may hold (each file counted once; LRU
                                  beyond it, the newest model always stays); 0 = unlimited */
} shimmy_manager_options;

/* opts NULL = defaults. Owned: shimmy_manager_free. Thread-safe: every shimmy_manager_* and
 * shimmy_weak_* function may be called from any thread concurrently. */
SHIMMY_NODISCARD shimmy_status shimmy_manager_new(const shimmy_manager_options *opts,
                                                  shimmy_manager **out, shimmy_error *err);
/* Drops the cache's references; models still referenced by callers live on. */
void shimmy_manager_free(shimmy_manager *mgr);
/* Registers a spec under its name (copied; the spec stays the caller's). A name already
 * registered is SHIMMY_ERR_INVALID_ARG (`where` "name"). Nothing is loaded yet. */
SHIMMY_NODISCARD shimmy_status shimmy_manager_add(shimmy_manager *mgr, const shimmy_spec *spec,
                                                  shimmy_error *err);
/* A reference to the model `name`, loading it on first use (concurrent first calls load once).
 * SHIMMY_ERR_MODEL_NOT_FOUND (`where` the name; the message suggests close names), or the
 * load error. */
SHIMMY_NODISCARD shimmy_status shimmy_manager_get(shimmy_manager *mgr, const char *name,
                                                  shimmy_model **out, shimmy_error *err);
/* Drops the cache's reference (callers' references keep the model alive until they unref).
 * SHIMMY_ERR_NOT_FOUND when it is not loaded. Weak references to it fail from now on. */
shimmy_status shimmy_manager_evict(shimmy_manager *mgr, const char *name, shimmy_error *err);
/* Models currently cached. */
size_t shimmy_manager_loaded_count(shimmy_manager *mgr);

/* A weak reference: names one loaded instance of a model without keeping it alive. */
typedef struct shimmy_weak shimmy_weak;

/* A weak reference to the model `name` as currently loaded (SHIMMY_ERR_NOT_FOUND when it is
 * not loaded). Owned: shimmy_weak_free; it may outlive the manager. */
SHIMMY_NODISCARD shimmy_status shimmy_manager_weak(shimmy_manager *mgr, const char *name,
                                                   shimmy_weak **out, shimmy_error *err);
/* A strong reference to the same instance, or SHIMMY_ERR_NOT_FOUND once it was evicted (or
 * the manager freed), even if the name has been loaded again since. */
SHIMMY_NODISCARD shimmy_status shimmy_weak_lock(shimmy_weak *w, shimmy_model **out,
                                                shimmy_error *err);
void shimmy_weak_free(shimmy_weak *w);

/* ---- discovery ------------------------------------------------------------------------- */

typedef struct shimmy_model_list shimmy_model_list;

/* Finds GGUF models on disk. paths: colon-separated directories to scan, and only those; NULL =
 * the default roots (SHIMMY_MODEL_PATHS, ./models, ~/models, Ollama, Hugging Face cache, LM
 * Studio, ...). Unreadable paths are skipped, not errors. Owned: shimmy_model_list_free. */
SHIMMY_NODISCARD shimmy_status shimmy_discover(const char *paths, shimmy_model_list **out,
                                               shimmy_error *err);
void shimmy_model_list_free(shimmy_model_list *l);
size_t shimmy_model_list_count(const shimmy_model_list *l);
/* Accessors for entry i < count (NULL / 0 out of range); strings borrowed until
 * shimmy_model_list_free. */
const char *shimmy_model_list_name(const shimmy_model_list *l, size_t i);
const char *shimmy_model_list_path(const shimmy_model_list *l, size_t i);
const char *shimmy_model_list_architecture(const shimmy_model_list *l, size_t i);
const char *shimmy_model_list_quant(const shimmy_model_list *l, size_t i);
const char *shimmy_model_list_template(const shimmy_model_list *l, size_t i);
uint64_t shimmy_model_list_size(const shimmy_model_list *l, size_t i);
uint32_t shimmy_model_list_ctx_len(const shimmy_model_list *l, size_t i);
/* A builder pre-filled with entry i's name, base path and first paired adapter; NULL out of
 * range or out of memory. Owned: shimmy_spec_builder_free. */
shimmy_spec_builder *shimmy_model_list_spec(const shimmy_model_list *l, size_t i);

#ifdef __cplusplus
}
#endif

/* The rest of the API, in parts that each read in one sitting. */
#include "shimmy/tools.h"   /* tokens, GGUF inspection, templates, evaluators */
#include "shimmy/serving.h" /* catalog, prompts, sessions, adapters, thread pools */

#endif
