/*
 * shimmy/serving.h — part of the public C API of libshimmy: the catalog, prompts, sessions,
 * adapters and thread pools a server is built on. Included by shimmy.h (include that); shimmy.h's
 * conventions (errors, ownership, thread-safety) hold here too.
 */
#ifndef SHIMMY_SERVING_H
#define SHIMMY_SERVING_H

#ifndef SHIMMY_H
#error "include <shimmy.h>, which includes this part"
#endif

#ifdef __cplusplus
extern "C" {
#endif

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
