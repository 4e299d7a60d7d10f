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

/* ==== Tokens, inspection and evaluation ==== */
/* What tools built on a model need below generation: vocabularies and token ids, a read-only
 * view of a GGUF file, chat template rendering, the registry's full scan report, and an
 * evaluator (a model's forward pass with its own KV cache) for teacher-forced logits,
 * perplexity, benchmarks and generation from token ids. The `shimmy` CLI is built on these. */

/* ---- process: logging, machine facts, library buffers ---------------------------------- */

/* What `threads = 0` means everywhere: the physical cores available to this process. */
int32_t shimmy_default_threads(void);
/* The best instruction set the kernels use here ("avx512-vnni", "avx2", "neon", "scalar"; the
 * SHIMMY_ISA environment variable narrows it). A static string. */
const char *shimmy_cpu_isa(void);
/* Frees a buffer documented "Owned: shimmy_free" (token ids, text). NULL is a no-op. */
void shimmy_free(void *p);

/* ---- structured output: checking grammars and schemas (docs/grammar.md) ------------------ */

/* Converts a JSON Schema (JSON text, at most SHIMMY_MAX_GRAMMAR_LEN bytes) to the GBNF grammar
 * that gen options' json_schema is enforced with (start rule `root`; compact JSON with bounded
 * optional whitespace). *gbnf Owned: shimmy_free. Errors: SHIMMY_ERR_INVALID_JSON (message gives
 * line and column), SHIMMY_ERR_INVALID_ARG for a keyword that cannot be enforced, a bad keyword
 * value, an unsatisfiable schema or a limit: `where` is the JSON pointer of the keyword in the
 * schema ("/properties/age/multipleOf") and the message names it. */
SHIMMY_NODISCARD shimmy_status shimmy_json_schema_to_gbnf(const char *schema, char **gbnf,
                                                          shimmy_error *err);
/* Checks that GBNF text compiles (it is then cached for the generations that use it). Errors:
 * SHIMMY_ERR_INVALID_ARG with the message "line L, column C: ...", SHIMMY_ERR_TOO_LARGE. */
SHIMMY_NODISCARD shimmy_status shimmy_grammar_check(const char *gbnf, shimmy_error *err);

/* ---- vocabularies and tokens ------------------------------------------------------------ */

/* A tokenizer: the vocabulary, merges/scores and special tokens of a model. Immutable, so any
 * number of threads may use one at once. */
typedef struct shimmy_vocab shimmy_vocab;

/* Reads only the tokenizer metadata of a GGUF file (never the weights), so it is cheap on any
 * model size. Owned: shimmy_vocab_free. Errors name the file: SHIMMY_ERR_IO, _FORMAT,
 * _UNSUPPORTED (a tokenizer type shimmy does not implement), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_vocab_open(const char *path, shimmy_vocab **out,
                                                 shimmy_error *err);
/* Frees a vocabulary from shimmy_vocab_open (never one from shimmy_model_vocab). */
void shimmy_vocab_free(shimmy_vocab *v);
/* A loaded model's vocabulary: borrowed until the model's last unref. NULL for NULL. */
const shimmy_vocab *shimmy_model_vocab(const shimmy_model *m);
int32_t shimmy_vocab_size(const shimmy_vocab *v);
/* Special token ids; -1 when the vocabulary has none. */
int32_t shimmy_vocab_bos(const shimmy_vocab *v);
int32_t shimmy_vocab_eos(const shimmy_vocab *v);
int32_t shimmy_vocab_eot(const shimmy_vocab *v); /* end of a chat turn */
/* BERT's [SEP] (WordPiece vocabularies); -1 when the vocabulary has none. */
int32_t shimmy_vocab_sep(const shimmy_vocab *v);
/* True when tokenizing with SHIMMY_TOKENIZE_ADD_SPECIAL puts BOS first (the model asks so). */
bool shimmy_vocab_adds_bos(const shimmy_vocab *v);
/* True when SHIMMY_TOKENIZE_ADD_SPECIAL appends EOS (tokenizer.ggml.add_eos_token: e.g.
 * Qwen3-Embedding, whose LAST pooling reads that token). WordPiece vocabularies append [SEP]
 * instead (after [CLS] first). */
bool shimmy_vocab_adds_eos(const shimmy_vocab *v);
/* The stored text of token id as the file spells it (e.g. "▁the"), *len bytes, not
 * NUL-terminated, borrowed like v; NULL (and *len 0) out of range. len may be NULL. */
const char *shimmy_vocab_token_text(const shimmy_vocab *v, int32_t id, size_t *len);
/* The bytes token id decodes to, written to buf (at most cap bytes, no NUL added). Returns the
 * piece's full length: more than cap means buf was too small (call again with a larger one).
 * special: control tokens (BOS, <|im_end|>) give their text instead of nothing. 0 out of range.
 * A piece may be part of a UTF-8 character (byte tokens). */
size_t shimmy_token_piece(const shimmy_vocab *v, int32_t id, bool special, char *buf, size_t cap);

/* shimmy_tokenize flags */
#define SHIMMY_TOKENIZE_ADD_SPECIAL   1u /* BOS/EOS as the model's metadata asks */
#define SHIMMY_TOKENIZE_PARSE_SPECIAL 2u /* special-token text ("<|im_end|>") becomes its id */

/* Tokenizes text[0..len) (bytes; invalid UTF-8 is tokenized as bytes). *ids (Owned:
 * shimmy_free; NULL when *n is 0) receives *n ids. Errors: SHIMMY_ERR_INVALID_ARG (NULL
 * pointers), _TOO_LARGE (over 1 GiB of text), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_tokenize(const shimmy_vocab *v, const char *text, size_t len,
                                               unsigned flags, int32_t **ids, size_t *n,
                                               shimmy_error *err);

/* shimmy_tokenize_pair flags: SHIMMY_TOKENIZE_PARSE_SPECIAL and */
#define SHIMMY_TOKENIZE_PAIR_LLAMA_SERVER 4u /* llama-server's /v1/rerank form (below) */

/* Two texts as one sequence for a cross-encoder (reranker): a query and a document. By default
 * Hugging Face's BERT pair form, [BOS] a END b END (END = SEP, else EOS): for BERT
 * [CLS] a [SEP] b [SEP], which is what llama-embedding scores. With
 * SHIMMY_TOKENIZE_PAIR_LLAMA_SERVER, llama-server's: [BOS] a [EOS if add_eos] [SEP if add_sep]
 * b [EOS if add_eos], for BERT [CLS] a [SEP] b (no final [SEP]). Ownership and errors as
 * shimmy_tokenize. */
SHIMMY_NODISCARD shimmy_status shimmy_tokenize_pair(const shimmy_vocab *v, const char *a,
                                                    size_t a_len, const char *b, size_t b_len,
                                                    unsigned flags, int32_t **ids, size_t *n,
                                                    shimmy_error *err);

/* shimmy_detokenize flags */
#define SHIMMY_DETOKENIZE_SPECIAL    1u /* control tokens are shown as their text */
#define SHIMMY_DETOKENIZE_VALID_UTF8 2u /* invalid sequences (a character cut off) -> U+FFFD */

/* The text of ids (the inverse of shimmy_tokenize: pieces joined, the leading-space rule of
 * the model applied). *text is Owned (shimmy_free), NUL-terminated after *len bytes; without
 * SHIMMY_DETOKENIZE_VALID_UTF8 it is the exact bytes, which may be invalid UTF-8.
 * Errors: SHIMMY_ERR_INVALID_ARG naming the first id outside the vocabulary (`where` "ids"),
 * _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_detokenize(const shimmy_vocab *v, const int32_t *ids,
                                                 size_t n, unsigned flags, char **text, size_t *len,
                                                 shimmy_error *err);

/* ---- GGUF files: a read-only view of the header ----------------------------------------- */

/* A GGUF file's header, metadata and tensor table, read without the tensor data (inspecting a
 * 70 GB model reads a few megabytes). Immutable; every pointer it hands out is borrowed until
 * shimmy_gguf_free. */
typedef struct shimmy_gguf shimmy_gguf;

/* Metadata value types, numbered as in the GGUF format. */
typedef enum shimmy_gguf_type {
    SHIMMY_GGUF_U8 = 0,
    SHIMMY_GGUF_I8 = 1,
    SHIMMY_GGUF_U16 = 2,
    SHIMMY_GGUF_I16 = 3,
    SHIMMY_GGUF_U32 = 4,
    SHIMMY_GGUF_I32 = 5,
    SHIMMY_GGUF_F32 = 6,
    SHIMMY_GGUF_BOOL = 7,
    SHIMMY_GGUF_STRING = 8,
    SHIMMY_GGUF_ARRAY = 9,
    SHIMMY_GGUF_U64 = 10,
    SHIMMY_GGUF_I64 = 11,
    SHIMMY_GGUF_F64 = 12
} shimmy_gguf_type;

/* "u8", "i32", "f32", "bool", "string", "array", ...; "?" outside the enum. */
const char *shimmy_gguf_type_name(shimmy_gguf_type t);

/* One metadata value. Numbers are widened: unsigned types in u64, signed in i64, floats in
 * f64; the other fields are zero. Strings are bytes (not NUL-terminated, maybe not UTF-8). */
typedef struct shimmy_gguf_value {
    shimmy_gguf_type type;
    uint64_t u64;
    int64_t i64;
    double f64;
    bool b;
    const char *str; /* SHIMMY_GGUF_STRING: str_len bytes */
    size_t str_len;
    shimmy_gguf_type elem_type; /* SHIMMY_GGUF_ARRAY: element type and count */
    uint64_t count;
    const void *array_; /* internal: what shimmy_gguf_array_at reads */
} shimmy_gguf_value;

typedef struct shimmy_gguf_info {
    const char *path; /* as given to shimmy_gguf_open */
    uint32_t version;
    uint32_t alignment;
    uint64_t file_size;
    uint64_t data_offset; /* start of the tensor data section */
    size_t n_kv;
    size_t n_tensors;
} shimmy_gguf_info;

typedef struct shimmy_gguf_tensor {
    const char *name; /* name_len bytes, not NUL-terminated */
    size_t name_len;
    uint32_t type;         /* the GGML type number */
    const char *type_name; /* "F32", "Q4_K", ... ("unknown" for a number shimmy does not know) */
    uint32_t n_dims;
    int64_t shape[4]; /* elements per dimension, shape[0] the row length; unused ones are 1 */
    uint64_t offset;  /* relative to data_offset */
    uint64_t bytes;
} shimmy_gguf_tensor;

/* Reads and checks the header (every key, value and tensor record, bounds included). Owned:
 * shimmy_gguf_free. Errors name the file: SHIMMY_ERR_IO, _FORMAT (what is malformed), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_gguf_open(const char *path, shimmy_gguf **out,
                                                shimmy_error *err);
void shimmy_gguf_free(shimmy_gguf *g);
/* Fills *out (zeroed for a NULL g). */
void shimmy_gguf_get_info(const shimmy_gguf *g, shimmy_gguf_info *out);
/* The i-th metadata pair, in file order: key (key_len bytes, not NUL-terminated) and value.
 * false (and nothing written) when i >= n_kv. */
bool shimmy_gguf_kv_at(const shimmy_gguf *g, size_t i, const char **key, size_t *key_len,
                       shimmy_gguf_value *value);
/* The value of key ("general.architecture", "llama.context_length"); false when absent. */
bool shimmy_gguf_find(const shimmy_gguf *g, const char *key, shimmy_gguf_value *value);
/* Element i of an array value (arrays nest); false when arr is no array or i >= count. */
bool shimmy_gguf_array_at(const shimmy_gguf_value *arr, uint64_t i, shimmy_gguf_value *out);
/* The i-th tensor record, in file order; false when i >= n_tensors. */
bool shimmy_gguf_tensor_at(const shimmy_gguf *g, size_t i, shimmy_gguf_tensor *out);

/* ---- chat templates ---------------------------------------------------------------------- */

/* A compiled chat template (Jinja) with the BOS/EOS texts of its model. Immutable. */
typedef struct shimmy_template shimmy_template;

/* Compiles Jinja source (copied). Errors: SHIMMY_ERR_TEMPLATE (line and what is wrong). */
SHIMMY_NODISCARD shimmy_status shimmy_template_new(const char *source, shimmy_template **out,
                                                   shimmy_error *err);
/* A built-in family: "chatml", "llama2", "llama3", "mistral", "phi3", "gemma", "zephyr",
 * "vicuna", "openchat", "deepseek", "command-r". Unknown: SHIMMY_ERR_NOT_FOUND, `where`
 * "template", the message lists the families. */
SHIMMY_NODISCARD shimmy_status shimmy_template_builtin(const char *family, shimmy_template **out,
                                                       shimmy_error *err);
/* The template of a GGUF file (header only): tokenizer.chat_template, or with name non-NULL
 * tokenizer.chat_template.<name>; when the file has none, the built-in family `name`, or for
 * name NULL the family its vocabulary and architecture suggest. BOS/EOS texts come from the
 * file's vocabulary. Errors: those of shimmy_gguf_open, SHIMMY_ERR_NOT_FOUND (`where`
 * "template": no such template in the file nor among the built-ins), _TEMPLATE. */
SHIMMY_NODISCARD shimmy_status shimmy_template_from_gguf(const char *path, const char *name,
                                                         shimmy_template **out, shimmy_error *err);
void shimmy_template_free(shimmy_template *t);
/* Borrowed until shimmy_template_free: the Jinja source; the family it belongs to (a built-in
 * name, or "unknown"); the text that ends a model turn in that family (NULL when unknown); the
 * model's BOS and EOS token texts ("" when not from a model or absent). */
const char *shimmy_template_source(const shimmy_template *t);
const char *shimmy_template_family(const shimmy_template *t);
const char *shimmy_template_end_of_turn(const shimmy_template *t);
const char *shimmy_template_bos(const shimmy_template *t);
const char *shimmy_template_eos(const shimmy_template *t);

typedef struct shimmy_render_options {
    const char *messages_json; /* required: a JSON array of {role, content, tool_calls, ...} */
    const char *tools_json;    /* NULL, or a JSON array: the template's `tools` */
    const char *vars_json;     /* NULL, or a JSON object of more variables (enable_thinking) */
    bool no_generation_prompt; /* false: end with the assistant's turn opened */
    const char *bos, *eos;     /* NULL = the template's own texts */
    bool trim_bos_eos;         /* drop one leading BOS and one trailing EOS text */
    const char *date;          /* "YYYY-MM-DD" for strftime_now (reproducible); NULL = today */
} shimmy_render_options;

typedef struct shimmy_span {
    size_t begin, end; /* byte range [begin, end) */
} shimmy_span;

/* A rendering: text (NUL-terminated after len bytes) and the spans of it that came from
 * message content (sorted, disjoint). Free with shimmy_rendered_free. */
typedef struct shimmy_rendered {
    char *text;
    size_t len;
    shimmy_span *spans;
    size_t n_spans;
} shimmy_rendered;

/* Renders o's conversation. On failure *out is zeroed. Errors: SHIMMY_ERR_INVALID_JSON
 * (`where` "messages", "tools" or "vars"), SHIMMY_ERR_TEMPLATE (what the template raised or
 * where it went wrong), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_template_render(const shimmy_template *t,
                                                      const shimmy_render_options *o,
                                                      shimmy_rendered *out, shimmy_error *err);
/* Frees what a rendering owns and zeroes it; NULL is a no-op. */
void shimmy_rendered_free(shimmy_rendered *r);

/* ---- the registry's full scan report ------------------------------------------------------ */

/* How far a scan has come, for a progress display: folders entered, model files (and adapter
 * folders) found, files read so far; done on the last call. */
typedef struct shimmy_scan_progress {
    uint64_t folders, found, read;
    bool done;
} shimmy_scan_progress;

typedef struct shimmy_scan_options {
    const char *dirs;         /* colon-separated folders scanned as well; NULL = none */
    const char *const *files; /* explicit model files (borrowed for the call) */
    size_t n_files;
    bool no_defaults; /* scan only dirs and files, not the usual places */
    bool ignore_env;  /* read no environment variable (SHIMMY_MODEL_PATHS, HOME, ...) */
    /* Called now and then while the scan runs (at most every 100 ms, from the scan's threads but
     * never two calls at once) and once at the end with done set; NULL = none. p is borrowed for
     * the call. */
    void (*progress)(void *user, const shimmy_scan_progress *p);
    void *progress_user;
} shimmy_scan_options;

/* A scan with options (NULL = the defaults, as shimmy_discover(NULL)). Unreadable places and
 * files are reported (shimmy_model_list_skipped_count), not errors. Owned: shimmy_model_list_free.
 */
SHIMMY_NODISCARD shimmy_status shimmy_scan(const shimmy_scan_options *o, shimmy_model_list **out,
                                           shimmy_error *err);

/* Everything the registry knows of model i; strings borrowed until shimmy_model_list_free. */
typedef struct shimmy_model_entry {
    const char *name, *path;     /* path: the first part of a split model */
    const char *architecture;    /* "" when the file does not say */
    const char *size_label;      /* "30.5M", "7B" */
    const char *quant;           /* "Q4_K_M", "F16", ... */
    const char *template_family; /* "chatml", "llama3", ... or "none" */
    const char *source;          /* where it was found: "dir", "ollama", "hf", ... */
    const char *origin;          /* the folder, manifest or repository it came from */
    uint64_t size;               /* bytes, all parts */
    uint64_t parameters;
    uint32_t ctx_len;  /* trained context, 0 when absent */
    int32_t parts;     /* 1, or N of a split model */
    size_t n_adapters; /* adapters paired with it: shimmy_model_list_paired */
} shimmy_model_entry;

/* false (nothing written) when i is out of range. */
bool shimmy_model_list_entry(const shimmy_model_list *l, size_t i, shimmy_model_entry *out);
/* Index (for shimmy_model_list_adapter) of the k-th adapter paired with model i; SIZE_MAX out
 * of range. */
size_t shimmy_model_list_paired(const shimmy_model_list *l, size_t i, size_t k);
/* Up to max listed names close to name (typos), best first, into out (borrowed strings);
 * returns how many. */
size_t shimmy_model_list_suggestions(const shimmy_model_list *l, const char *name, const char **out,
                                     size_t max);
/* The places searched, in order. */
size_t shimmy_model_list_root_count(const shimmy_model_list *l);
const char *shimmy_model_list_root(const shimmy_model_list *l, size_t i);
/* Files the scan opened. */
size_t shimmy_model_list_files_read(const shimmy_model_list *l);

/* ---- evaluators: a model's forward pass with its own KV cache ------------------------------ */

typedef enum shimmy_kv_type { SHIMMY_KV_F16 = 0, SHIMMY_KV_F32 = 1 } shimmy_kv_type;

/* A LoRA adapter to apply: a GGUF adapter file, a PEFT folder or .safetensors, and its scale. */
typedef struct shimmy_lora {
    const char *path;
    float scale; /* [-100, 100] */
} shimmy_lora;

/* Zero is the default of every field. */
typedef struct shimmy_evaluator_params {
    int32_t ctx_len;  /* [0, 16777216] positions; 0 = shimmy_model_ctx_len */
    int32_t batch;    /* tokens per forward step; 0 = 512 (at most ctx_len) */
    int32_t n_logits; /* positions of one shimmy_evaluator_eval whose logits are kept; 0 = 1 */
    shimmy_kv_type kv;
    int32_t threads;         /* [0, 512]; 0 = shimmy_default_threads() */
    const shimmy_lora *lora; /* adapters (at most 8; borrowed for the call); none = the */
    size_t n_lora;           /*  model spec's adapters */
} shimmy_evaluator_params;

/* Not thread-safe: one thread at a time uses an evaluator (any number of evaluators may share
 * a model). */
typedef struct shimmy_evaluator shimmy_evaluator;

/* Allocates the KV cache and scratch for m (a reference is taken) and opens the adapters,
 * each checked against the model. Owned: shimmy_evaluator_free. Errors: SHIMMY_ERR_INVALID_ARG
 * (a field, `where` names it), _ADAPTER/_IO/_FORMAT (`where` the adapter), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_evaluator_new(shimmy_model *m,
                                                    const shimmy_evaluator_params *p,
                                                    shimmy_evaluator **out, shimmy_error *err);
void shimmy_evaluator_free(shimmy_evaluator *e);
int32_t shimmy_evaluator_ctx_len(const shimmy_evaluator *e);
int32_t shimmy_evaluator_vocab_size(const shimmy_evaluator *e);
/* Evaluates tokens at positions pos .. pos+n-1 after discarding every cached position >= pos
 * (pos 0 starts from an empty cache), in batches. all_logits keeps the logits of every
 * position (n <= n_logits); otherwise only the last one's. Errors: SHIMMY_ERR_INVALID_ARG (an
 * id outside the vocabulary, pos beyond the cache, n > n_logits), _CONTEXT_EXCEEDED. */
SHIMMY_NODISCARD shimmy_status shimmy_evaluator_eval(shimmy_evaluator *e, const int32_t *tokens,
                                                     size_t n, int32_t pos, bool all_logits,
                                                     shimmy_error *err);
/* The vocab_size logits of the i-th position of the last eval (i = 0 when !all_logits), borrowed
 * until the next eval or generate; NULL when there is no such position. */
const float *shimmy_evaluator_logits(const shimmy_evaluator *e, int32_t i);

/* What shimmy_evaluator_generate reports beyond shimmy_result. */
typedef struct shimmy_eval_output {
    int32_t *ids;          /* in: optional buffer receiving the generated ids */
    size_t ids_cap;        /* in: its capacity (ids beyond it are counted, not stored) */
    shimmy_result result;  /* out */
    int32_t cached_tokens; /* out: prompt tokens whose KV was reused from the last call */
    double ttft_ms;        /* out: from the call to the first generated token */
} shimmy_eval_output;

/* Generates a continuation of prompt ids (n_prompt >= 1) with opts (NULL = the model spec's),
 * reusing the cached prefix the prompt shares with what the evaluator holds. Same options,
 * errors and context budget as shimmy_generate against shimmy_evaluator_ctx_len. out may be
 * NULL; on_token may be NULL. */
SHIMMY_NODISCARD shimmy_status shimmy_evaluator_generate(
    shimmy_evaluator *e, const int32_t *prompt, size_t n_prompt, const shimmy_gen_options *opts,
    shimmy_token_fn on_token, void *user, shimmy_eval_output *out, shimmy_error *err);
/* Bytes of weights the model holds in memory (mapped or converted). */
uint64_t shimmy_model_weight_bytes(const shimmy_model *m);

/* ==== Sessions and serving ==== */
/* What an embedding server needs (the shimmy server is built on exactly this): a catalog of the
 * models and adapters found on disk with a cache of loaded models, prepared prompts, sessions
 * (a reusable generation context with its own KV cache), adapters applied per request, a shared
 * thread pool, a logging hook and process metrics. */

/* ---- logging --------------------------------------------------------------------------- */

typedef enum shimmy_log_level {
    SHIMMY_LOG_DEBUG,
    SHIMMY_LOG_INFO,
    SHIMMY_LOG_WARN,
    SHIMMY_LOG_ERROR
} shimmy_log_level;

/* Receives one message (no trailing newline; borrowed for the call). May be called from any
 * thread, concurrently: it must be thread-safe. */
typedef void (*shimmy_log_fn)(shimmy_log_level level, const char *message, void *user);

/* Installs the process-wide log handler: messages at min_level and above go to fn (NULL: no
 * logging, the default; the library never prints on its own). Not synchronised with messages
 * in flight: set it at start-up. */
void shimmy_log_set_handler(shimmy_log_fn fn, void *user, shimmy_log_level min_level);
/* A built-in handler writing "shimmy: <level>: message" lines to stderr. */
void shimmy_log_stderr(shimmy_log_level level, const char *message, void *user);
/* Sends a printf-style message through the installed handler, as library messages go. */
void shimmy_log(shimmy_log_level level, const char *fmt, ...) SHIMMY_PRINTF(2, 3);

/* Resident memory of the calling process in bytes (0 when the platform cannot tell). */
uint64_t shimmy_process_rss_bytes(void);

/* ---- catalog: models and adapters on disk, loaded on demand ----------------------------- */

/* A scanned set of model files and LoRA adapters (a shimmy_model_list snapshot that a rescan
 * replaces) and a cache of the models loaded from it: each loaded once, shared by reference,
 * unloaded when idle past keep_alive or when the memory budget needs room (least recently used
 * first; a model in use is never taken away). Only files the scan listed can be loaded, so a
 * name from a request can never open an arbitrary path. Thread-safe: every shimmy_catalog_*
 * function may be called from any thread concurrently. */
typedef struct shimmy_catalog shimmy_catalog;

typedef struct shimmy_catalog_options {
    const char *paths;              /* colon-separated directories scanned (NULL = none) ... */
    bool no_default_roots;          /* ... in addition to the default roots unless this is set */
    const char *const *model_files; /* files that must be listed (highest priority); borrowed */
    size_t n_model_files;
    const char *const *adapter_files; /* LoRA adapters (.gguf or PEFT folders), each paired with
                                         a compatible base; borrowed */
    size_t n_adapter_files;
    bool ignore_env;           /* read no environment variable (SHIMMY_MODEL_PATHS, ...) */
    int32_t ctx_len;           /* [0, 1048576]: the context of every loaded model (0 = trained
                                  context capped at 4096) */
    int32_t threads;           /* [0, 512]: threads of sessions without a pool (0 = cores) */
    uint64_t max_loaded_bytes; /* memory budget of loaded models; 0 = half the machine's RAM */
    double keep_alive_s;       /* idle time before a model unloads; 0 = 300 s; < 0 = never */
    const char *device;        /* every loaded model's device, as shimmy_model_config.device (NULL =
                                  SHIMMY_DEVICE unless ignore_env, else "auto") */
    int32_t gpu_layers;        /* >= 0, as shimmy_model_config.gpu_layers */
} shimmy_catalog_options;

/* Scans (the options are copied) and makes an empty cache. Errors: SHIMMY_ERR_INVALID_ARG (a
 * range; `where` names the field), SHIMMY_ERR_NOMEM. Unreadable paths are skipped, not errors.
 * Owned: shimmy_catalog_free. */
SHIMMY_NODISCARD shimmy_status shimmy_catalog_open(const shimmy_catalog_options *opts,
                                                   shimmy_catalog **out, shimmy_error *err);
/* Drops the cache; models still referenced by callers live on until their last unref. */
void shimmy_catalog_free(shimmy_catalog *c);
/* Scans again with the same options and replaces the listing. Loaded models stay; a name that
 * now points at another file loads that file on its next use. */
SHIMMY_NODISCARD shimmy_status shimmy_catalog_rescan(shimmy_catalog *c, shimmy_error *err);
/* The current listing as an immutable snapshot (unaffected by later rescans). Owned:
 * shimmy_model_list_free. */
SHIMMY_NODISCARD shimmy_status shimmy_catalog_list(shimmy_catalog *c, shimmy_model_list **out,
                                                   shimmy_error *err);
/* A reference to the model `name` (a listed name or path), loading it first when needed
 * (concurrent first calls load once). The model's name is the listed name. Errors:
 * SHIMMY_ERR_MODEL_NOT_FOUND (`where` the name; the message suggests close names), the load's
 * error (SHIMMY_ERR_IO, _FORMAT, _UNSUPPORTED, _NOMEM). Owned: shimmy_model_unref. */
SHIMMY_NODISCARD shimmy_status shimmy_catalog_get(shimmy_catalog *c, const char *name,
                                                  shimmy_model **out, shimmy_error *err);
/* Drops the cache's reference to a loaded model (memory goes with the last reference).
 * SHIMMY_ERR_NOT_FOUND when it is not loaded. */
shimmy_status shimmy_catalog_unload(shimmy_catalog *c, const char *name, shimmy_error *err);

typedef enum shimmy_load_state {
    SHIMMY_LOAD_NONE,    /* not loaded (or never seen) */
    SHIMMY_LOAD_LOADING, /* a load is in progress */
    SHIMMY_LOAD_LOADED,
    SHIMMY_LOAD_FAILED /* the last load failed (the next get tries again) */
} shimmy_load_state;

/* "not loaded", "loading", "loaded", "failed" ("unknown" outside the enum). */
const char *shimmy_load_state_name(shimmy_load_state s);

typedef struct shimmy_load_status {
    char name[256];
    shimmy_load_state state;
    shimmy_error error; /* the load error when state is SHIMMY_LOAD_FAILED */
    uint64_t bytes;     /* memory of the loaded model */
    int32_t users;      /* references handed out by shimmy_catalog_get and not yet dropped */
    double idle_s;      /* since the last reference was dropped (0 while in use) */
    double load_ms;     /* how long the load took */
    /* GPU memory it holds now (weights, KV caches); 0 on the CPU */
    uint64_t device_bytes;
} shimmy_load_status;

/* The state of the model `name` (SHIMMY_LOAD_NONE for a name never loaded). */
void shimmy_catalog_status(shimmy_catalog *c, const char *name, shimmy_load_status *out);
/* Every model the cache has seen, sorted by name: fills up to cap entries of out (may be NULL
 * when cap is 0) and returns the total, which may exceed cap. */
size_t shimmy_catalog_statuses(shimmy_catalog *c, shimmy_load_status *out, size_t cap);

/* ---- listings: more of a shimmy_model_list (from shimmy_discover or shimmy_catalog_list) -- */

/* Finds a model by name (case-insensitive) or path: true and *index when listed. */
bool shimmy_model_list_find(const shimmy_model_list *l, const char *name, size_t *index);
/* Milliseconds the scan took. */
double shimmy_model_list_scan_ms(const shimmy_model_list *l);
/* Files the scan looked at and left out, with the reason ("corrupt: ...", "duplicate of ..."). */
size_t shimmy_model_list_skipped_count(const shimmy_model_list *l);
const char *shimmy_model_list_skipped_path(const shimmy_model_list *l, size_t i);
const char *shimmy_model_list_skipped_reason(const shimmy_model_list *l, size_t i);

/* A LoRA adapter the scan found. Strings borrowed until shimmy_model_list_free. */
typedef struct shimmy_adapter_info {
    const char *name;         /* unique among adapters */
    const char *path;         /* the .gguf file or the PEFT folder */
    const char *format;       /* "gguf" or "peft" */
    const char *architecture; /* "" when unknown */
    const char *source;       /* where it was found: "dir", "ollama", "hf", ... */
    float alpha;              /* 0 when absent */
    int32_t rank;       /* 0 when the listing does not know it (see shimmy_adapter_describe) */
    const char *base;   /* the listed model it is paired with, NULL when unpaired */
    const char *reason; /* how it was paired, or why not */
} shimmy_adapter_info;

size_t shimmy_model_list_adapter_count(const shimmy_model_list *l);
/* Fills *out for adapter i; false (and *out zeroed) out of range. */
bool shimmy_model_list_adapter(const shimmy_model_list *l, size_t i, shimmy_adapter_info *out);
/* Finds an adapter by name (case-insensitive) or path: true and *index when listed. */
bool shimmy_model_list_find_adapter(const shimmy_model_list *l, const char *name, size_t *index);

/* What an adapter file changes: read from a GGUF adapter's tensors or a PEFT folder's
 * adapter_config.json. */
typedef struct shimmy_adapter_desc {
    int32_t rank;     /* 0 when the file does not tell */
    size_t n_targets; /* base weights modified ("blk.0.attn_q.weight", or PEFT module names) */
    char **targets;   /* owned with the struct */
    uint64_t bytes;   /* the file, or every regular file of the folder */
} shimmy_adapter_desc;

/* Fills *out (owned: shimmy_adapter_desc_free). Errors: SHIMMY_ERR_IO (`where` the path),
 * SHIMMY_ERR_FORMAT, SHIMMY_ERR_NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_adapter_describe(const char *path, shimmy_adapter_desc *out,
                                                       shimmy_error *err);
void shimmy_adapter_desc_free(shimmy_adapter_desc *d);

/* ---- prompts --------------------------------------------------------------------------- */

/* Token ids ready for a session, made for one model's vocabulary, and the end-of-turn text a
 * chat prompt's generation stops at. Immutable; any thread may read it. */
typedef struct shimmy_prompt shimmy_prompt;

/* Raw text (len bytes; need not be NUL-terminated): BOS per the model's metadata, and
 * special-token text in it is parsed (the caller's own text). Errors: SHIMMY_ERR_INVALID_ARG,
 * _TOKENIZER, _NOMEM. Owned: shimmy_prompt_free. */
SHIMMY_NODISCARD shimmy_status shimmy_prompt_from_text(const shimmy_model *m, const char *text,
                                                       size_t len, shimmy_prompt **out,
                                                       shimmy_error *err);
/* A conversation rendered with the model's chat template (the spec's family if it names one):
 * the assistant's turn is opened, message content stays literal text. Errors as
 * shimmy_prompt_from_text and SHIMMY_ERR_TEMPLATE (`where` "messages"); a NULL role or content
 * is SHIMMY_ERR_INVALID_ARG naming "messages[i].role". */
SHIMMY_NODISCARD shimmy_status shimmy_prompt_from_chat(const shimmy_model *m,
                                                       const shimmy_message *messages,
                                                       size_t n_messages, shimmy_prompt **out,
                                                       shimmy_error *err);
/* The same from OpenAI-style JSON: messages_json an array of {"role", "content", "tool_calls",
 * ...} objects as the template reads them, tools_json NULL or an array (the template's `tools`,
 * for models whose template renders tool definitions). Errors as shimmy_prompt_from_chat, and
 * SHIMMY_ERR_INVALID_JSON / _INVALID_ARG with `where` "messages" or "tools". */
SHIMMY_NODISCARD shimmy_status shimmy_prompt_from_chat_json(const shimmy_model *m,
                                                            const char *messages_json,
                                                            const char *tools_json,
                                                            shimmy_prompt **out, shimmy_error *err);
/* The same with more template variables: vars_json NULL or a JSON object whose keys the
 * template sees as variables (chat_template_kwargs: {"enable_thinking": false}); they cannot
 * replace messages, tools or add_generation_prompt. Errors as shimmy_prompt_from_chat_json, and
 * SHIMMY_ERR_INVALID_JSON / _INVALID_ARG with `where` "vars". */
SHIMMY_NODISCARD shimmy_status shimmy_prompt_from_chat_vars(const shimmy_model *m,
                                                            const char *messages_json,
                                                            const char *tools_json,
                                                            const char *vars_json,
                                                            shimmy_prompt **out, shimmy_error *err);
/* Token ids as given (copied); an id outside the vocabulary is SHIMMY_ERR_INVALID_ARG. */
SHIMMY_NODISCARD shimmy_status shimmy_prompt_from_tokens(const shimmy_model *m, const int32_t *ids,
                                                         size_t n, shimmy_prompt **out,
                                                         shimmy_error *err);
void shimmy_prompt_free(shimmy_prompt *p);
size_t shimmy_prompt_token_count(const shimmy_prompt *p);
const int32_t *shimmy_prompt_tokens(const shimmy_prompt *p); /* borrowed until free */
/* The template's end of turn for chat prompts (a generation from it stops there; never
 * emitted), NULL otherwise. Borrowed until free. */
const char *shimmy_prompt_end_of_turn(const shimmy_prompt *p);

/* ---- thread pools and adapters --------------------------------------------------------- */

/* Compute threads shared by sessions. Sessions on one pool take turns per forward step (one
 * step at a time on all the threads) instead of oversubscribing the cores. */
typedef struct shimmy_threadpool shimmy_threadpool;

/* n_threads [0, 512]; 0 = physical cores. Owned: shimmy_threadpool_free, after every session
 * using it has been freed. */
SHIMMY_NODISCARD shimmy_status shimmy_threadpool_new(int32_t n_threads, shimmy_threadpool **out,
                                                     shimmy_error *err);
void shimmy_threadpool_free(shimmy_threadpool *p);
int32_t shimmy_threadpool_size(const shimmy_threadpool *p);

/* A LoRA adapter opened (and completely validated) against a model's weights. Immutable and
 * refcounted; one adapter may be used by any number of sessions at once. */
typedef struct shimmy_adapter shimmy_adapter;

/* Opens the GGUF adapter or PEFT folder at path for model m. Errors name the file and tensor:
 * SHIMMY_ERR_IO, _FORMAT, _ADAPTER (does not fit the model), _NOMEM. Owned: one reference. */
SHIMMY_NODISCARD shimmy_status shimmy_adapter_open(const shimmy_model *m, const char *path,
                                                   shimmy_adapter **out, shimmy_error *err);
shimmy_adapter *shimmy_adapter_ref(shimmy_adapter *a);
void shimmy_adapter_unref(shimmy_adapter *a);
const char *shimmy_adapter_path(const shimmy_adapter *a); /* borrowed until the last unref */
/* Whether a fits model m (every target tensor present with a matching shape):
 * SHIMMY_OK or SHIMMY_ERR_ADAPTER naming the tensor. */
shimmy_status shimmy_adapter_check(const shimmy_adapter *a, const shimmy_model *m,
                                   shimmy_error *err);

/* ---- sessions -------------------------------------------------------------------------- */

/* A reusable generation context bound to one model: its KV cache (a generation whose prompt
 * starts like the previous one's reuses that prefix), its context size, its adapter set. One
 * generation at a time (one thread), except shimmy_session_cancel (any thread). */
typedef struct shimmy_session shimmy_session;

/* Continuous batching: sessions created with the same shimmy_batch decode in shared forward
 * steps (each weight row is read once per step for all of them) while each keeps its own
 * sampling, grammar, stop strings and prefix cache, and gets exactly the tokens it would get
 * alone. Sessions with different adapters share steps too (each adds its own adapters' terms to
 * the shared base products); a session beyond `slots` gets a context of its own. */
typedef struct shimmy_batch shimmy_batch;

typedef struct shimmy_batch_options {
    int32_t slots;           /* sessions decoding together, [1, 256] */
    int32_t ctx_len;         /* positions per session, [0, 1048576]; 0 = shimmy_model_ctx_len */
    int32_t chunk;           /* prompt tokens a session adds per step, [0, 4096]; 0 = 256 */
    shimmy_threadpool *pool; /* required, borrowed: runs the shared steps */
    /* Prompt cache: this many more sequences keep the caches of sessions that were freed, and
     * a session's prompt reuses the longest prefix any sequence of the batch holds (the cached
     * part is reported as cached_tokens); at most cache_mib MiB of them stay (least recently
     * used go first). [0, 256] and [0, 1048576]; 0 = none. */
    int32_t cache_slots;
    int32_t cache_mib;
} shimmy_batch_options;

typedef struct shimmy_batch_stats {
    uint64_t steps;         /* forward steps run */
    uint64_t tokens;        /* tokens (prompt and generated) in them */
    uint64_t sequences;     /* sessions in them, summed over steps */
    int32_t last_batch;     /* sessions in the last step */
    int32_t max_batch;      /* sessions in the largest step */
    int32_t queued;         /* sessions waiting for the next step now */
    int32_t attached;       /* sessions of the batch now */
    double busy_ms;         /* time spent in forward steps */
    int32_t cached_seqs;    /* prompt caches kept for sessions that ended */
    uint64_t cached_tokens; /* their positions */
    uint64_t reused_tokens; /* prompt positions copied from another sequence's cache */
} shimmy_batch_stats;

/* Holds a reference to m until shimmy_batch_free, which must come after every session created
 * with the batch is freed. Errors: SHIMMY_ERR_INVALID_ARG (`where` the field), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_batch_new(shimmy_model *m, const shimmy_batch_options *o,
                                                shimmy_batch **out, shimmy_error *err);
void shimmy_batch_free(shimmy_batch *b);
void shimmy_batch_get_stats(shimmy_batch *b, shimmy_batch_stats *out);

typedef struct shimmy_session_options {
    int32_t ctx_len;         /* [0, 1048576]; 0 = shimmy_model_ctx_len(m) */
    int32_t threads;         /* [0, 512] without a pool; 0 = the spec's threads */
    shimmy_threadpool *pool; /* borrowed, shared; NULL = the session's own threads */
    shimmy_batch *batch;     /* borrowed: decode in this batch's shared steps (NULL: alone); the
                                batch's model must be the session's (same weights) and pool */
} shimmy_session_options;

/* opts NULL = defaults. Holds a reference to m until shimmy_session_free. Errors:
 * SHIMMY_ERR_INVALID_ARG (`where` the field), _NOMEM. Owned: shimmy_session_free. */
SHIMMY_NODISCARD shimmy_status shimmy_session_new(shimmy_model *m,
                                                  const shimmy_session_options *opts,
                                                  shimmy_session **out, shimmy_error *err);
void shimmy_session_free(shimmy_session *s);
shimmy_model *shimmy_session_model(const shimmy_session *s); /* borrowed until free */
int32_t shimmy_session_ctx_len(const shimmy_session *s);
/* True when a and b are the same loaded weights (one catalog load, or one model): a session of
 * either serves prompts made for the other. */
bool shimmy_model_same_weights(const shimmy_model *a, const shimmy_model *b);

/* Applies exactly these adapters (n may be 0: none) at these scales ([-100, 100], finite) to
 * the session's next generations; the session takes references. An equal set (the same
 * adapters, scales and order) keeps the KV prefix; any other drops it (its K/V were computed
 * with other weights). Errors: SHIMMY_ERR_INVALID_ARG (at most 8; a scale), _ADAPTER (does not
 * fit the session's model); on failure the session has no adapters. */
SHIMMY_NODISCARD shimmy_status shimmy_session_set_adapters(shimmy_session *s,
                                                           shimmy_adapter *const *adapters,
                                                           const float *scales, size_t n,
                                                           shimmy_error *err);

/* Adds bias to a token's logit before sampling (-100 bans it in practice). */
typedef struct shimmy_logit_bias {
    int32_t token;
    float bias; /* finite, [-100, 100] */
} shimmy_logit_bias;

/* One generation's options on a session. */
typedef struct shimmy_session_request {
    const shimmy_gen_options *options;   /* NULL = the model spec's generation options */
    const shimmy_logit_bias *logit_bias; /* borrowed for the call */
    size_t n_logit_bias;                 /* at most 1024 */
    /* Optional: receives the text with its token records (shimmy_piece_fn) instead of
     * on_token, with the same user pointer. */
    shimmy_piece_fn on_piece;
    /* With on_piece and options->logprobs: first hand over the prompt's tokens with their
     * teacher-forced log-probabilities (echo). The prompt is then evaluated from its start one
     * position at a time (no KV prefix reuse): slower than a plain prompt. */
    bool prompt_logprobs;
} shimmy_session_request;

typedef struct shimmy_session_result {
    shimmy_finish finish;
    int32_t prompt_tokens;
    int32_t cached_tokens; /* prompt tokens whose KV came from the previous generation */
    int32_t completion_tokens;
    int32_t max_tokens; /* the limit in effect */
    double ttft_ms;     /* from the call to the first generated token */
    double prompt_ms;   /* prompt processing */
    double gen_ms;      /* generation after the first token */
} shimmy_session_result;

/* Generates a continuation of prompt p on the calling thread (p must have been made for this
 * session's model or one with the same weights). The end of turn of a chat prompt is added to
 * the stop strings. req NULL = defaults; on_token and result may be NULL. finish is
 * SHIMMY_FINISH_CANCELLED when on_token returned SHIMMY_STOP or shimmy_session_cancel was
 * called. Errors: SHIMMY_ERR_INVALID_ARG (an option or bias, `where` names it: "top_k",
 * "logit_bias"), _CONTEXT_EXCEEDED (`where` "prompt" or "max_tokens", the numbers in the
 * message), _NOMEM, _GENERATION (the KV prefix is then dropped). */
SHIMMY_NODISCARD shimmy_status shimmy_session_generate(shimmy_session *s, const shimmy_prompt *p,
                                                       const shimmy_session_request *req,
                                                       shimmy_token_fn on_token, void *user,
                                                       shimmy_session_result *result,
                                                       shimmy_error *err);
/* Stops the generation running on s within one token (from any thread; no effect when none
 * runs). */
void shimmy_session_cancel(shimmy_session *s);

#ifdef __cplusplus
}
#endif
#endif
