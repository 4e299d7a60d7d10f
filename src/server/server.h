/*
 * server — `shimmy serve`: OpenAI-compatible (/v1/...) and native (/api/..., /health, /metrics,
 * /ws/generate) HTTP APIs on libmicrohttpd.
 *
 * Shape of a request:
 *   MHD connection thread: route table -> auth/CORS/limits -> body -> server_request_parse
 *   (pure validation) -> model reference (shimmy_catalog_get) -> shimmy_prompt (chat template
 *   + tokenizer, context check) -> server_job submitted to the FIFO queue (503 when full).
 *   Slot worker (one of --parallel, each owning one shimmy_session; sessions share one
 *   shimmy_threadpool, so they take turns token by token): shimmy_session_generate -> callback ->
 *   the job's formatter (a vtable: OpenAI chat / completion / native, as SSE chunks, WebSocket
 *   frames or a JSON body) -> the job's bounded output buffer.
 *   Connection side: the SSE content reader, the WebSocket handler or the waiting handler (all on
 *   the connection's own thread) drain that buffer and watch the socket: a client that goes away
 *   cancels its job within a token.
 *
 * Invariants:
 *  - MHD runs one thread per connection, so a connection waiting for tokens never blocks another;
 *    /health, /v1/models and /metrics never touch a slot.
 *  - A job's output buffer is bounded (SERVER_OUT_LIMIT): a reader that falls that far behind is
 *    cancelled instead of stalling its slot (and the thread pool's turn with it).
 *  - server_error_object is the one function that turns a shimmy_error into OpenAI error JSON
 *    (server_error_json only serialises it); the HTTP status is shimmy_status_http(err->status)
 *    and `param` is err->where.
 *  - Library code never prints; the listening address is returned by server_url for the CLI.
 *  - LoRA adapters belong to the job (lora.c): a request's "lora" list and adapter model resolve
 *    to listed adapter names only, the job holds references to its adapters (shared through the
 *    server's cache) and the slot applies exactly that set (or none) to its session before each
 *    job (shimmy_session_set_adapters keeps the KV prefix when the set is unchanged).
 *  - The server uses the public library only (include/shimmy.h): what it needs is API.
 *
 * Ownership: server_new/server_free (free accepts NULL and a server that never started);
 * server_request_parse fills a caller-embedded struct released by server_request_deinit; strings
 * returned by server_error_json are malloc'd (caller frees). Jobs are reference counted
 * (connection + worker), see server_job_release.
 * Thread-safety: server_stop may be called from any thread and is idempotent (signal handling
 * lives in the CLI); everything else is internal and documented at each declaration.
 */
#ifndef SHIMMY_SERVER_H
#define SHIMMY_SERVER_H

#include "shimmy.h"
#include "reasoning.h"
#include "toolcall.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- configuration and lifecycle ---- */

typedef struct server_config {
    const char *host;          /* "127.0.0.1" */
    int port;                  /* 11435; 0 = any free port (--bind auto) */
    const char *model_dirs;    /* colon-separated, NULL = registry defaults */
    const char *const *models; /* explicit model files (--model), borrowed */
    size_t n_models;
    int n_threads;           /* compute threads; 0 = physical cores */
    int ctx_size;            /* per-slot context; 0 = min(n_ctx_train, 4096) */
    int parallel;            /* slots (concurrent generations) */
    bool no_batching;        /* slots take turns per step instead of sharing steps */
    int cache_ram_mib;       /* prompt cache kept after requests end (--cache-ram); 0 = none */
    const char *api_key;     /* NULL/"" = no authentication */
    const char *cors_origin; /* NULL = no CORS headers */
    size_t max_body;         /* bytes */
    int max_tokens_cap;      /* upper bound for max_tokens (and the default) */
    int max_connections;
    int timeout_s;             /* idle/slow client timeout */
    int queue_cap;             /* jobs waiting for a slot before 503 */
    uint64_t max_loaded_bytes; /* memory budget of loaded models; 0 = half the machine's RAM */
    double keep_alive_s;       /* idle seconds before a model unloads; 0 = 300; < 0 = never */
    bool ignore_env;           /* registry: read no environment (tests) */
    /* A second address served too (serve --ollama: 127.0.0.1:11434, where tools that hard-code
     * Ollama's port look; or a second --bind). NULL = none. Borrowed. */
    const char *extra_host;
    int extra_port;
    /* serve --lora / --lora-scaled: adapters registered with the registry (paired with a
     * compatible served base) and listed as adapter models; scale is what a request naming the
     * adapter as its model gets. Borrowed. */
    const struct server_lora_arg *loras;
    size_t n_loras;
    /* serve --device / --gpu-layers: where every model runs (shimmy_catalog_options' device
     * and gpu_layers: NULL = SHIMMY_DEVICE, else auto; 0 = all layers). Borrowed. */
    const char *device;
    int gpu_layers;
} server_config;

typedef struct server_lora_arg {
    const char *path; /* a GGUF adapter or a PEFT folder */
    float scale;      /* --lora: 1 */
} server_lora_arg;

void server_config_defaults(server_config *c);

typedef struct server server;

/* Opens the catalog (scans the model folders, --model and --lora) and checks the explicit files;
 * does not listen yet. */
shimmy_status server_new(const server_config *cfg, server **out, shimmy_error *err);
/* Binds and starts serving (returns at once). */
shimmy_status server_start(server *s, shimmy_error *err);
/* "http://127.0.0.1:PORT" once started (borrowed until server_free). */
const char *server_url(const server *s);
/* The second listener's address (cfg.extra_host), NULL when there is none. */
const char *server_extra_url(const server *s);
/* Stops accepting, cancels queued and running generations, waits for connections to finish
 * (at most a few seconds) and stops the daemon. Idempotent. */
void server_stop(server *s);
void server_free(server *s);

/* ---- request parsing and validation (pure; unit-tested) ---- */

typedef enum server_api {
    SERVER_API_CHAT,        /* POST /v1/chat/completions */
    SERVER_API_COMPLETIONS, /* POST /v1/completions */
    SERVER_API_GENERATE,    /* POST /api/generate and the /ws/generate message */
} server_api;

#define SERVER_MAX_STOP    16
#define SERVER_MAX_PROMPTS 16
#define SERVER_MAX_BIAS    1024
#define SERVER_MAX_LORA    8

/* One entry of a request's "lora" list: a registry adapter name (never a path) and its scale. */
typedef struct server_lora_ref {
    char name[256];
    float scale; /* finite; default 1 */
} server_lora_ref;

typedef struct server_request {
    server_api api;
    char model[256];
    /* Chat form: owned reference to a normalised array of {"role", "content": string} (text parts
     * joined); NULL when the request is a raw prompt. */
    json_t *messages;
    /* Raw prompt form: owned strings (completions: one choice each; generate: one). */
    char *prompts[SERVER_MAX_PROMPTS];
    size_t n_prompts;
    int32_t max_tokens; /* -1: not given (the rest of the context, up to the cap) */
    /* max_tokens is only an upper bound (Anthropic's required max_tokens, Responses'
     * max_output_tokens): more than the context leaves is clamped instead of a 400. */
    bool max_tokens_bound;
    char *stop[SERVER_MAX_STOP]; /* owned */
    size_t n_stop;
    bool stream;
    bool include_usage;     /* stream_options.include_usage */
    bool echo;              /* completions: prefix the prompt */
    shimmy_gen_options gen; /* sampling and seed; max_tokens and stop are set per job */
    shimmy_logit_bias bias[SERVER_MAX_BIAS];
    size_t n_bias;
    server_lora_ref lora[SERVER_MAX_LORA]; /* "lora": applied in this order */
    size_t n_lora;
    server_tools tools; /* chat: tools for the template (toolcall.h); tools.tools NULL = none */
    /* Log-probabilities (piece.c, logprobs.c): chat "logprobs" + "top_logprobs", completions
     * "logprobs": N (logprobs true, top_logprobs N). */
    bool logprobs;
    int32_t top_logprobs; /* [0, SHIMMY_MAX_TOP_LOGPROBS] */
    /* Thinking (reasoning.h): how a chat answer's thinking is returned ("reasoning_format"),
     * and chat_template_kwargs: an owned JSON object of template variables, or NULL. */
    server_reasoning_format reasoning_format;
    json_t *template_vars;
    /* Structured output (structured.c): the GBNF text the generation is constrained by (owned;
     * from "grammar", or converted from "json_schema" / "response_format"), gen.grammar points
     * here; grammar_from names the field it came from ("" = none). */
    char *grammar;
    char grammar_from[24];
} server_request;

/* Parses and validates a JSON body. Errors are SHIMMY_ERR_INVALID_JSON (malformed, not an object,
 * invalid UTF-8) or SHIMMY_ERR_INVALID_ARG with err->where = the offending field ("messages[1].
 * role", "temperature", ...). max_tokens above max_tokens_cap is clamped (see docs/server.md). */
/* Field checks shared by the dialects' parsers: a number (integer: also an integral real, as
 * JavaScript clients send 5.0) within [lo, hi], else SHIMMY_ERR_INVALID_ARG naming the field and
 * the range; stop strings (one or an array) appended to r->stop with their limits. */
shimmy_status server_json_number_in(const json_t *v, const char *name, double lo, double hi,
                                    double *out, shimmy_error *err);
shimmy_status server_json_integer_in(const json_t *v, const char *name, json_int_t lo,
                                     json_int_t hi, json_int_t *out, shimmy_error *err);
shimmy_status server_request_add_stops(server_request *r, const json_t *v, const char *name,
                                       shimmy_error *err);

/* A request body as a JSON object (owned: *out, NULL on failure): SHIMMY_ERR_INVALID_JSON with
 * jansson's line and column when it is not JSON (invalid UTF-8 and duplicate keys included), or
 * when it is not an object. Every dialect's parser starts here. */
shimmy_status server_json_body(const char *body, size_t len, json_t **out, shimmy_error *err);
shimmy_status server_request_parse(server_api api, const char *body, size_t len,
                                   int32_t max_tokens_cap, server_request *out, shimmy_error *err);
void server_request_deinit(server_request *r);
/* messages.c: a request's "messages" as the chat template reads them (owned array in *out):
 * roles checked ("developer" becomes "system"), text content parts joined with newlines, other
 * keys kept; errors name the field ("messages[1].content"). */
shimmy_status server_messages_normalise(const json_t *msgs, json_t **out, shimmy_error *err);
/* The sampling a request gets for the fields it leaves out (llama.cpp's server defaults:
 * temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, last 64 tokens, a random seed). */
void server_gen_defaults(shimmy_gen_options *o);
/* structured.c: "response_format", "grammar" or "json_schema" of a request (at most one of them
 * may constrain it): checked and kept as GBNF in r->grammar. Errors: SHIMMY_ERR_INVALID_ARG with
 * err->where the field and the message saying where in the schema or grammar. */
shimmy_status server_structured_field(server_request *r, const char *name, const json_t *v,
                                      shimmy_error *err);
void server_structured_deinit(server_request *r);

/* ---- errors ---- */

/* The OpenAI error body {"error":{"message","type","param","code"}} for err, as a malloc'd
 * string; *http receives shimmy_status_http(err->status). NULL only when out of memory. */
char *server_error_json(const shimmy_error *err, int *http);
/* The same object as a json_t (owned), for embedding in stream events. */
json_t *server_error_object(const shimmy_error *err);

/* ---- output buffer between a worker and a connection ---- */

#define SERVER_OUT_LIMIT (4u << 20) /* bytes a reader may fall behind before it is cancelled */

/* ---- jobs (internal) ---- */

typedef struct server_job server_job;

/* How generated text becomes bytes on the wire: one row per API x transport. Called on the
 * worker thread with the job's lock NOT held; they append through server_job_write. */
typedef struct server_fmt {
    const char *name;
    void (*begin)(server_job *j); /* before the first token of the first choice */
    void (*text)(server_job *j, size_t choice, const char *text, size_t len);
    void (*choice_end)(server_job *j, size_t choice, const char *finish);
    void (*done)(server_job *j);                          /* after the last choice */
    void (*fail)(server_job *j, const shimmy_error *err); /* instead of done */
    /* Optional: the thinking of a chat answer (the job layer splits it from the answer, see
     * reasoning.h; text() then only gets the answer). NULL, or reasoning_format "none": nothing
     * is split and the raw text, tags included, goes to text(). */
    void (*reasoning)(server_job *j, size_t choice, const char *text, size_t len);
} server_fmt;

struct server_job {
    server *srv;
    server_request req;  /* owned */
    shimmy_model *model; /* owned reference to the loaded model */
    const server_fmt *fmt;
    char base[256]; /* the model loaded: req.model, or the base of an adapter model */
    shimmy_adapter *ads[SERVER_MAX_LORA]; /* owned references: the adapters of this request */
    float scales[SERVER_MAX_LORA];
    size_t n_ads;
    shimmy_prompt *prompt[SERVER_MAX_PROMPTS]; /* owned, one per choice */
    size_t n_choices;
    int32_t max_tokens; /* resolved: > 0 */
    char id[48];
    int64_t created;
    const char *route; /* metrics label */

    /* Worker-side state (only the worker touches these while running). */
    char *acc; /* non-streaming: text of the current choice */
    size_t acc_len, acc_cap;
    json_t *choices; /* non-streaming: finished choices */
    int64_t usage_prompt, usage_completion;
    int64_t usage_cached; /* prompt tokens whose K/V came from a cache */
    double ttft_ms;
    /* Tool calls (chat with tools): the template's format; a stream holds text back in acc
     * from the moment a call may begin (tool_held), tool_sent once content went out. */
    server_tool_format tool_format;
    bool tool_held, tool_sent;
    /* Pieces (piece.c): the thinking splitter of the current choice (think: splitting is on),
     * and the token records (logprobs) that the text() call being made completes: borrowed for
     * that call; text() may come with len 0 and records only (requests with logprobs). */
    server_reasoning think;
    bool thinks;
    const shimmy_token_info *lp;
    size_t n_lp;
    json_t *lp_acc;   /* formatter-owned: records of the current choice (non-streaming) */
    size_t lp_offset; /* completions: text bytes before the next record (text_offset) */
    struct server_lp_stash *lp_stash; /* piece.c: records whose text the splitter holds */
    char *think_acc; /* non-streaming: thinking of the current choice (server_job_think_append) */
    size_t think_len, think_cap;
    /* Per-job state of an API front end (compat.h: Anthropic, Responses), freed with ext_free
     * when the job is; stop_now: the formatter found the end itself (an Anthropic stop
     * sequence) and the worker ends the generation as a normal "stop". */
    void *ext;
    void (*ext_free)(void *ext);
    bool stop_now;

    /* Shared state under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *out; /* bytes ready for the connection: [out_off, out_len) */
    size_t out_off, out_len, out_cap;
    bool finished;   /* no more bytes will be written */
    int http_status; /* for non-streaming responses, set before finished */
    atomic_bool cancelled;
    shimmy_session *running; /* the slot session generating for this job, to cancel it */
    int refs;
    server_job *next; /* queue link */
};

/* Appends bytes for the connection; when the reader is SERVER_OUT_LIMIT behind the job is
 * cancelled instead. Wakes the reader. */
void server_job_write(server_job *j, const char *data, size_t len);
void server_job_printf(server_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Serialises v compactly (steals the reference) and writes it as one SSE event. */
void server_job_sse(server_job *j, json_t *v);
/* Marks the job finished (sets http_status) and wakes the reader. */
void server_job_finish(server_job *j, int http_status);
/* Copies up to cap pending bytes into buf, waiting up to wait_ms for some. Returns bytes copied,
 * 0 on timeout, -1 when finished and drained. */
long server_job_read(server_job *j, char *buf, size_t cap, int wait_ms);
/* Appends to the worker-side text of the current choice (non-streaming bodies). */
void server_job_acc_append(server_job *j, const char *text, size_t len);
/* Answer text of a stream: without tools it goes to out() as it comes; with tools it goes out
 * until a call may have begun (server_toolcall_hold) and from there is held in j->acc for the
 * choice's end to parse. Every dialect's stream shares this rule. */
void server_job_stream_answer(server_job *j, const char *text, size_t len,
                              void (*out)(server_job *j, const char *text, size_t len));
/* Waits up to wait_ms for the job to finish; true when it has. */
bool server_job_wait(server_job *j, int wait_ms);
void server_job_cancel(server_job *j);
void server_job_release(server_job *j); /* drops one reference; the last frees */

/* Creates a job for a parsed request (the request moves into the job; on failure it is
 * released). One reference, owned by the caller. */
server_job *server_job_new(server *s, server_request *req, const server_fmt *fmt,
                           const char *route);

/* ---- the server (internal) ---- */

struct MHD_Connection;
struct MHD_Daemon;

typedef struct server_slot {
    server *srv;
    int index;
    pthread_t thread;
    bool started;
    shimmy_session *session; /* kept between jobs (KV prefix); holds its model */
    int batch;               /* the server_batch its session decodes in, -1 = none */
    server_job *job;         /* running job, under srv->qmu */
    bool counted;            /* counted in srv->running, under srv->qmu */
} server_slot;

#define SERVER_METRIC_ROWS 128

typedef struct server_metrics {
    pthread_mutex_t mu;
    struct {
        const char *route; /* static string from the route table */
        int status;
        uint64_t count;
    } req[SERVER_METRIC_ROWS];
    size_t n_req;
    uint64_t prompt_tokens, gen_tokens;
    double prompt_ms, gen_ms; /* cumulative engine time */
    uint64_t generations, cancelled;
} server_metrics;

struct server {
    server_config cfg;
    shimmy_catalog *cat;
    shimmy_threadpool *pool; /* shared by the slot sessions */
    struct MHD_Daemon *daemon;
    int listen_fd; /* returned by the quiesce at shutdown, closed after the daemon stops */
    struct MHD_Daemon *daemon2; /* the listener of cfg.extra_host (NULL: none) */
    int listen_fd2;
    bool has_fd2;
    char url2[160];
    struct server_keepalive *keep; /* keepalive.c: per-request keep_alive deadlines */
    char url[160];
    double t_start;

    pthread_mutex_t qmu; /* queue and slots */
    pthread_cond_t qcv;
    server_job *qhead, *qtail;
    int qlen;
    int running; /* jobs on slots */
    server_slot *slots;
    int n_slots;
    /* Continuous batching (slots.c): one batch per model weights that slots' sessions use, freed
     * with its last session. Under qmu. */
    struct server_batch {
        shimmy_batch *b;
        shimmy_model *m; /* the batch's model (its reference) */
        int users;
    } * batches; /* (n_slots) */

    atomic_bool stopping;
    atomic_int active; /* connections holding a job (HTTP or WebSocket) */
    server_metrics metrics;

    /* Opened LoRA adapters shared by reference between requests, keyed by listed name and
     * path (lora.c). Under lmu. */
    pthread_mutex_t lmu;
    struct server_lora_cached *lcache;
    size_t n_lcache, cap_lcache;
};

/* job.c: a monotonic clock in milliseconds. */
double server_clock_ms(void);

/* slots.c: worker threads and the FIFO queue. */
shimmy_status server_slots_start(server *s, shimmy_error *err);
void server_slots_stop(server *s); /* cancels queued and running jobs, joins the workers */
/* Queues a job (takes a reference). SHIMMY_ERR_BUSY when the queue is full or stopping. */
shimmy_status server_submit(server *s, server_job *j, shimmy_error *err);
/* Frees idle slot sessions whose model the catalog no longer has loaded. */
void server_slots_drop_unloaded(server *s);
void server_queue_depth(server *s, int *queued, int *running);

/* lora.c: resolves j->req.model (a model, or an adapter model: its base plus the adapter at its
 * scale) and j->req.lora (listed adapter names; SHIMMY_ERR_INVALID_ARG naming the entry,
 * param "lora", for anything else) into j->base and the adapter list; then, once the model is
 * loaded, opens the adapters (cached, shared by reference) and checks them against that base
 * into j->ads. */
shimmy_status server_lora_resolve(server *s, server_job *j, shimmy_error *err);
shimmy_status server_lora_attach(server *s, server_job *j, shimmy_error *err);
/* The scale a request naming adapter `name` as its model gets (serve --lora-scaled; else 1). */
float server_lora_default_scale(const server *s, const shimmy_model_list *list, const char *name);
void server_lora_cache_free(server *s);

/* prompt.c: model handle, prompt tokens, resolved max_tokens and stop set for a job. */
shimmy_status server_job_prepare(server *s, server_job *j, shimmy_error *err);

/* native.c: every model the catalog has seen (malloc'd array of *n; NULL when out of memory). */
shimmy_load_status *server_models_snapshot(server *s, size_t *n);
/* The catalog's current listing (owned: shimmy_model_list_free); NULL only when out of memory. */
shimmy_model_list *server_list(server *s);

/* keepalive.c: keep the model `name` (m: the loaded model, referenced while kept) loaded for
 * `seconds` from now (< 0: until the server stops or another deadline is set); 0 unloads it
 * now (a running job finishes first, then its slot lets go). Thread-safe. expiry: the seconds
 * left (-1: never) when a deadline is set. stop (in server_stop, before the slots stop) ends
 * the reaper thread; free (server_free) drops the references. */
void server_keepalive_set(server *s, const char *name, shimmy_model *m, double seconds);
bool server_keepalive_expiry(server *s, const char *name, double *seconds_left);
void server_keepalive_stop(server *s);
void server_keepalive_free(server *s);

/* metrics.c */
void server_metrics_init(server_metrics *m);
void server_metrics_deinit(server_metrics *m);
void server_metrics_request(server_metrics *m, const char *route, int status);
void server_metrics_generation(server_metrics *m, int64_t n_prompt, double prompt_ms, int64_t n_gen,
                               double gen_ms, bool cancelled);
/* Prometheus text exposition (malloc'd). */
char *server_metrics_render(server *s);

/* ---- HTTP calls (http.c) ---- */

shimmy_status server_http_start(server *s, shimmy_error *err);
void server_http_quiesce(server *s); /* stop accepting connections */
void server_http_stop(server *s);

typedef struct server_call {
    server *srv;
    struct MHD_Connection *conn;
    const char *route; /* the matched pattern, or "other" */
    char param[512];   /* the {name} part of the path */
    char *body;        /* NUL-terminated */
    size_t body_len, body_cap;
    int status; /* sent status, for metrics */
    bool responded;
    bool oversized; /* the body is over --max-body: drained, then refused with 413 */
    size_t dropped; /* bytes drained */
} server_call;

/* Bytes of an oversized body read and dropped before the 413 (beyond it: reply and close). */
#define SERVER_DRAIN_LIMIT (16u << 20)

typedef int (*server_handler)(server_call *c); /* returns an MHD_Result */

int server_reply(server_call *c, int status, const char *ctype, const char *body, size_t len);
int server_reply_json(server_call *c, int status, json_t *v); /* steals v */
int server_reply_error(server_call *c, const shimmy_error *err);
/* Streams the job's output as text/event-stream (takes a reference). */
int server_reply_stream(server_call *c, server_job *j);
/* Suspends (hold) or restores and restarts the connection's idle timeout around waits for the
 * worker. */
void server_call_hold(server *s, struct MHD_Connection *conn, bool hold);
/* True when the client's socket has hung up. */
bool server_call_gone(struct MHD_Connection *conn);

/* WebSocket pieces (ws.c), exposed for tests: SHA-1 of data, the Sec-WebSocket-Accept value of
 * a key (28 characters + NUL), and a server frame header (returns its length, 2..10). */
void server_sha1(const void *data, size_t len, unsigned char out[20]);
void server_ws_accept_key(const char *key, char out[29]);
size_t server_ws_frame_header(int opcode, size_t len, unsigned char hdr[10]);
/* One client frame at the start of in[0..n), unmasked in place (pure; fuzzed). */
typedef struct server_ws_frame {
    int opcode;
    bool fin;
    unsigned char *payload; /* inside in */
    size_t len;
    size_t consumed; /* header, mask and payload bytes */
} server_ws_frame;
/* 1 parsed, 0 more bytes needed, -1 protocol error, -2 payload longer than limit. */
int server_ws_parse_frame(unsigned char *in, size_t n, size_t limit, server_ws_frame *f);

/* Handlers (openai.c, native.c, ws.c). */
int server_handle_chat(server_call *c);
int server_handle_completions(server_call *c);
int server_handle_models(server_call *c);
int server_handle_model(server_call *c);
int server_handle_health(server_call *c);
int server_handle_metrics(server_call *c);
int server_handle_api_models(server_call *c);
int server_handle_discover(server_call *c);
int server_handle_load(server_call *c);
int server_handle_unload(server_call *c);
int server_handle_status(server_call *c);
int server_handle_ws(server_call *c);
int server_handle_adapters(server_call *c);
/* Ollama's API (ollama.c) and llama-server's small endpoints (extras.c). */
int server_handle_ollama_chat(server_call *c);
int server_handle_ollama_generate(server_call *c);
int server_handle_ollama_tags(server_call *c);
int server_handle_ollama_show(server_call *c);
int server_handle_ollama_ps(server_call *c);
int server_handle_ollama_version(server_call *c);
int server_handle_ollama_root(server_call *c);
int server_handle_ollama_store(server_call *c); /* pull, push, create, copy, delete: refused */
/* embed.c: /api/embed and /api/embeddings (Ollama), /v1/embeddings, /v1/rerank and /rerank */
int server_handle_ollama_embed(server_call *c);
int server_handle_embeddings(server_call *c);
int server_handle_rerank(server_call *c);
/* True for the paths that answer in Ollama's error shape ({"error": "..."}). */
bool server_route_is_ollama(const char *route);
int server_handle_tokenize(server_call *c);
int server_handle_detokenize(server_call *c);
int server_handle_apply_template(server_call *c);
int server_handle_props(server_call *c);

/* Runs a generation request end to end for a handler: parse, prepare, queue, then stream or
 * wait for the JSON body. */
int server_run(server_call *c, server_api api, const server_fmt *stream_fmt,
               const server_fmt *json_fmt);
/* The same for a request an API front end parsed itself (moved into the job; released on
 * failure). ext/ext_free become the job's (freed on failure too); errors before the reply
 * starts go through reply_error (NULL: server_reply_error). */
int server_run_parsed(server_call *c, server_request *req, const server_fmt *fmt, void *ext,
                      void (*ext_free)(void *),
                      int (*reply_error)(server_call *, const shimmy_error *));

/* piece.c: the request fields logprobs, top_logprobs, reasoning_format and
 * chat_template_kwargs (called by server_request_parse for those names), their joint check,
 * and the job layer between a slot's session and the formatter: choice_begin before a
 * choice's generation, piece for each piece (t/n: token records, NULL/0 without logprobs),
 * choice_end after it (releases what the splitter held) and before fmt->choice_end. */
shimmy_status server_request_output_field(server_request *r, const char *name, const json_t *v,
                                          shimmy_error *err);
shimmy_status server_request_output_check(server_request *r, shimmy_error *err);
void server_job_choice_begin(server_job *j, size_t choice);
shimmy_next server_job_piece(server_job *j, size_t choice, const char *text, size_t len,
                             const shimmy_token_info *t, size_t n);
void server_job_choice_end(server_job *j, size_t choice);
void server_lp_stash_free(struct server_lp_stash *s);
/* Appends to think_acc (a formatter's reasoning() of a non-streaming body; NUL-terminated). */
void server_job_think_append(server_job *j, const char *text, size_t len);

/* logprobs.c: token records as JSON. token: the bytes as a string, bytes that are no UTF-8
 * character on their own written "\xNN"; chat entry {token, logprob, bytes, top_logprobs};
 * the completions object {tokens, token_logprobs, top_logprobs, text_offset} and one more
 * token appended to it. */
json_t *server_lp_token_string(const char *bytes, size_t n);
json_t *server_lp_chat_entry(const shimmy_vocab *v, const shimmy_token_info *t);
json_t *server_lp_compl_new(void);
void server_lp_compl_append(json_t *obj, const shimmy_vocab *v, const shimmy_token_info *t,
                            size_t text_offset);

/* structured.c: the gen option grammar_after of a job ("</think>" when its prompt opens the
 * thinking, else NULL). */
const char *server_structured_after(const server_job *j);
/* structured.c: with tool_choice "required" or a named function, the grammar of one call to
 * one of the request's tools in the model's call format (j->tool_format; call after it is set),
 * its arguments held to the tool's parameters schema. Errors: SHIMMY_ERR_INVALID_ARG, `where`
 * "tools[i].function.parameters" (a schema the converter refuses) or "tool_choice". */
shimmy_status server_structured_tools(server_job *j, shimmy_error *err);

/* Output formats (openai.c, native.c). */
extern const server_fmt server_fmt_chat_sse, server_fmt_chat_json;
extern const server_fmt server_fmt_compl_sse, server_fmt_compl_json;
/* The final object of a native generation (done, finish_reason, usage, timings). */
json_t *server_gen_final(const server_job *j, const char *finish);
extern const server_fmt server_fmt_gen_ws;

#endif
