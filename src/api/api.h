/*
 * api — libshimmy, the public C API of include/shimmy.h, built on the modules below it:
 * registry (discovery), manager (loading once, budget), engine (sessions, generation),
 * lora (adapters), chat (templates) and tokenizer.
 *
 * Layers inside this folder: spec.c/options.c validate what a user asks for (every problem of
 * a spec is reported at once); model.c wraps a loaded engine_model, its adapters and a cached
 * idle session in a refcounted shimmy_model; job.c turns a prompt and options into a checked
 * engine request and runs it; generate.c, chat.c and stream.c are the three ways to run one;
 * manager.c caches models by spec name and hands out weak references; discover.c wraps the
 * registry.
 *
 * Invariants: a shimmy_spec is validated and immutable; a shimmy_model holds its engine_model
 * (directly or through a manager handle) for as long as any reference exists; an api_job owns
 * everything the generator thread reads (prompt ids, stop strings, a model reference), so a
 * stream never borrows the caller's memory after shimmy_stream_open returns.
 *
 * Ownership: as documented in include/shimmy.h; the helpers below say what they take.
 * Thread-safety: model refcounts are atomic; a model's idle-session slot is guarded by its own
 * mutex; a job is used by one generator thread, except api_job_cancel (any thread).
 */
#ifndef SHIMMY_API_H
#define SHIMMY_API_H

#include "core/core.h"
#include "engine/engine.h"
#include "manager/manager.h"
#include "tokenizer/tokenizer.h"

#include <pthread.h>

#define API_MAX_LORA 8

/* ---- problem lists: every bad field of a spec or options, reported at once ---- */

typedef struct api_problems {
    shimmy_status status; /* the common status of every problem, INVALID_ARG when they differ */
    int n;
    char where[256];   /* "base_path,ctx_len" */
    char message[512]; /* "base_path: ...; ctx_len: ..." */
} api_problems;

void api_problem(api_problems *p, shimmy_status st, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An integer field outside [0, max]: "<field>: <v> is outside [0, <max>]" (the ctx_len and
 * threads of the options structs). */
void api_check_range(api_problems *p, const char *field, int64_t v, int64_t max);
/* Copies the collected problems into err; returns their status (SHIMMY_OK when none). */
shimmy_status api_problems_report(const api_problems *p, shimmy_error *err);

/* Checks o's fields, each named prefix + field ("generation.top_p"). */
void api_gen_options_check(const shimmy_gen_options *o, const char *prefix, api_problems *p);

/* ---- specs ---- */

typedef struct api_lora {
    char *path; /* owned */
    float scale;
} api_lora;

/* The fields a builder records and a spec freezes (strings owned). */
typedef struct api_fields {
    char *name, *base_path, *template_name, *device;
    api_lora lora[API_MAX_LORA];
    size_t n_lora;
    bool too_many_lora;
    int32_t ctx_len, threads, gpu_layers;
    shimmy_gen_options gen; /* gen.stop points into stop[] */
    char *stop[SHIMMY_MAX_STOP];
    char *grammar, *json_schema, *grammar_after; /* gen.grammar etc. point here */
    bool nomem;                                  /* a setter could not copy its value */
} api_fields;

struct shimmy_spec_builder {
    api_fields f;
};
struct shimmy_spec {
    api_fields f;
};

/* Deep copy of src into a zeroed dst; false when out of memory (dst is then freed). */
bool api_fields_copy(api_fields *dst, const api_fields *src);
void api_fields_free(api_fields *f);
/* Copies o (and its stop strings, up to SHIMMY_MAX_STOP) into f->gen; records nomem. */
void api_fields_set_gen(api_fields *f, const shimmy_gen_options *o);

/* ---- models ---- */

/* One engine session and the adapter set attached to it (owned together). */
typedef struct api_session {
    engine_session *s;
    struct lora_set *lora;
} api_session;

struct shimmy_threadpool {
    core_pool *pool;
    pthread_mutex_t compute_lock; /* held by a session around each forward step */
};

struct shimmy_batch {
    shimmy_model *m; /* one reference */
    engine_batcher *b;
    shimmy_threadpool *pool; /* borrowed */
};

struct shimmy_model {
    int refs; /* atomic */
    shimmy_spec spec;
    engine_model *em;       /* borrowed from handle, or owned when handle is NULL */
    manager_handle *handle; /* when loaded by a manager; released with the last reference */
    struct lora_set *lora;  /* owned; NULL without adapters */
    int32_t n_ctx;
    pthread_mutex_t lock;
    api_session *idle; /* one finished session kept for reuse (prefix cache) */
    /* embeddings (embed.c): the embedder is made on first use; callers queue their tokenized
     * inputs in embed_queue and whoever finds the embedder idle runs everything queued in one
     * call (concurrent requests share forward steps). All under embed_lock. */
    pthread_mutex_t embed_lock;
    pthread_cond_t embed_cv; /* a run finished */
    engine_embedder *embedder;
    const struct shimmy_threadpool *embed_pool; /* the pool embedder runs on (NULL: its own) */
    struct api_embed_wait *embed_queue;
    bool embed_busy;
};

/* Wraps a loaded engine_model: takes ownership of em (handle NULL) or of handle (em is then the
 * handle's model), also on failure. spec is copied. One reference in *out. */
shimmy_status api_model_new(const shimmy_spec *spec, engine_model *em, manager_handle *handle,
                            shimmy_model **out, shimmy_error *err);
/* ---- devices (device.c) ---- */

/* The engine's load parameters for a device and layer count as a spec or catalog gives them:
 * a NULL or "" device means SHIMMY_DEVICE (unless ignore_env; a value gpu_parse_device refuses
 * is SHIMMY_ERR_INVALID_ARG naming the variable), else "auto". out->device borrows device or
 * the environment's string. */
shimmy_status api_model_params(const char *device, int32_t gpu_layers, bool ignore_env,
                               engine_model_params *out, shimmy_error *err);
/* A spec's or catalog's device and gpu_layers fields, as problems. */
void api_check_device(const char *device, int32_t gpu_layers, api_problems *p);
/* The manager loader of models with a device: the catalog passes its settings (borrowed for
 * the loader's life); the public manager passes NULL and sets api_loading_spec (the spec whose
 * file this thread is loading) around manager_acquire. */
typedef struct api_device_loader {
    const char *device;
    int32_t gpu_layers;
    bool ignore_env;
    /* the models it has open, for their GPU memory (api_device_bytes); guarded by mu */
    pthread_mutex_t mu;
    struct api_open_model *open;
} api_device_loader;
void api_device_loader_init(api_device_loader *dl, const char *device, int32_t gpu_layers,
                            bool ignore_env);
void api_device_loader_deinit(api_device_loader *dl); /* after the manager is freed */
manager_loader api_manager_loader(api_device_loader *dl);
/* GPU memory the model dl opened from path holds now (0: on the CPU or not open). */
uint64_t api_device_bytes(api_device_loader *dl, const char *path);
extern _Thread_local const api_fields *api_loading_spec;

/* A session for one generation (the idle one, or a new one with the spec's settings). */
shimmy_status api_session_take(shimmy_model *m, api_session **out, shimmy_error *err);
/* Returns a session after use (kept as the idle one, or freed). */
void api_session_give(shimmy_model *m, api_session *s);
void api_session_free(api_session *s);

/* ---- jobs: one checked generation request ---- */

typedef struct api_job {
    shimmy_model *m; /* one reference, dropped by api_job_deinit */
    tok_buf prompt;  /* owned ids */
    char **stop;     /* owned copies */
    size_t n_stop;
    engine_gen_params gp;
    struct grammar *grammar; /* a reference (gp.grammar), or NULL */
    char *grammar_after;     /* owned copy (gp.grammar_after) */
    shimmy_result res;
    api_session *session; /* while running; guarded by lock for api_job_cancel */
    pthread_mutex_t lock;
    int cancelled; /* atomic */
} api_job;

/* The compiled grammar of o's grammar or json_schema (a reference the caller drops with
 * grammar_unref), NULL when o asks for none. Errors: SHIMMY_ERR_INVALID_ARG with where "grammar"
 * or the schema's JSON pointer and line:column / the keyword in the message. */
shimmy_status api_gen_grammar(const shimmy_gen_options *o, struct grammar **out, shimmy_error *err);

/* Resolves opts (NULL = the spec's), checks them, tokenizes `prompt` (NULL: the caller already
 * filled j->prompt, e.g. a chat rendering) and the context budget, and copies the stop strings
 * plus `extra_stop` (may be NULL). Takes a reference to m. On failure j->res carries the
 * numbers of a CONTEXT_EXCEEDED and the job must still be api_job_deinit'ed. */
void api_job_init(api_job *j, shimmy_model *m);
shimmy_status api_job_prepare(api_job *j, const char *prompt, const shimmy_gen_options *opts,
                              const char *extra_stop, shimmy_error *err);
/* Runs the generation on the calling thread; sink as in engine_generate. */
shimmy_status api_job_run(api_job *j, engine_sink_fn sink, void *user, shimmy_error *err);
void api_job_cancel(api_job *j);
void api_job_deinit(api_job *j);

/* The engine's parameters for checked options (zero fields mean the library's defaults). */
void api_gen_params(const shimmy_gen_options *o, engine_gen_params *gp);
/* Options checked as a job does: every field's range and top_k against n_vocab. */
shimmy_status api_gen_options_validate(const shimmy_gen_options *o, int32_t n_vocab,
                                       shimmy_error *err);

/* Messages as the JSON array engine_chat_prompt reads (owned: json_decref); errors name
 * "messages[i].role" etc. */
struct json_t;
shimmy_status api_messages_json(const shimmy_message *msgs, size_t n, struct json_t **out,
                                shimmy_error *err);

/* ---- listings (discover.c, catalog.c, registry_view.c) ---- */

struct registry;
struct shimmy_model_list {
    struct registry *reg; /* one reference */
};

/* Runs a prepared job with a token callback (shared by shimmy_generate and shimmy_chat). */
shimmy_status api_run_callback(api_job *j, shimmy_token_fn on_token, void *user,
                               shimmy_result *result, shimmy_error *err);

#endif
