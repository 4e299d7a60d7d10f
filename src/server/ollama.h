/*
 * ollama — Ollama's API on shimmy's port: /api/chat and /api/generate (NDJSON streams, on by
 * default), /api/tags, /api/show, /api/ps, /api/version, HEAD and GET /, clear refusals for
 * the model-store endpoints (pull, push, create, copy, delete); /api/embed and /api/embeddings
 * are served by embed.c.
 *
 * Pieces:
 *  - ollama_req.c: the request parsers (pure; tests/server/test_ollama.c and the fuzz target
 *    tests/fuzz/fuzz_server_ollama.c): an Ollama body becomes a server_request (the shared
 *    generation path) plus ollama_opts (what only Ollama's replies and the model lifetime use).
 *  - ollama_fmt.c: the formatters (NDJSON chunks and the JSON body of chat and generate,
 *    Ollama's timing fields in nanoseconds, tool_calls) and Ollama's error body.
 *  - ollama.c: the handlers.
 *
 * Invariants:
 *  - Every error an Ollama route answers is Ollama's shape, {"error": "..."}, with the HTTP
 *    status of the shimmy_status (400 for a bad field, naming it; 404 for an unknown model).
 *  - Field names in errors are Ollama's own ("options.temperature", "messages[2].images").
 *  - Only what shimmy can honour is accepted: a Go `template`, images and `suffix` are refused
 *    with a message saying so, never silently dropped.
 *
 * Ownership: ollama_request_parse fills caller-embedded structs released by
 * server_request_deinit and ollama_opts_deinit (both safe on zeroed structs).
 */
#ifndef SHIMMY_SERVER_OLLAMA_H
#define SHIMMY_SERVER_OLLAMA_H

#include "server.h"

/* What an Ollama request asks beyond the generation itself. */
typedef struct ollama_opts {
    bool chat;           /* /api/chat (else /api/generate) */
    bool raw;            /* generate: the prompt is used as written, no template */
    int think;           /* -1 not given, 0 false, 1 true (or a level: "low"/"medium"/"high") */
    bool has_keep_alive; /* keep_alive given */
    double keep_alive_s; /* < 0: stay loaded; 0: unload after this reply */
    int32_t num_ctx;     /* options.num_ctx; 0 = not given */
    bool load_only;      /* no prompt (generate) or no messages (chat): load or unload only */
    json_t *format;      /* owned: the string "json" or a JSON Schema object; NULL = free text */
    char *grammar;       /* Owned (shimmy_free): the GBNF that format compiles to; NULL = none */
} ollama_opts;

/* Parses and validates an /api/chat (chat) or /api/generate body into *req (api
 * SERVER_API_CHAT with messages, or SERVER_API_GENERATE with one raw prompt) and *o. Stream is
 * on unless "stream": false. Sampling starts from Ollama's defaults (temperature 0.8, top_k 40,
 * top_p 0.9, min_p 0, repeat_penalty 1.1 over the last 64 tokens). num_predict > cap is
 * clamped. Errors: SHIMMY_ERR_INVALID_JSON, SHIMMY_ERR_INVALID_ARG with err->where the field. */
shimmy_status ollama_request_parse(bool chat, const char *body, size_t len, int32_t cap,
                                   server_request *req, ollama_opts *o, shimmy_error *err);
void ollama_opts_deinit(ollama_opts *o);

/* keep_alive: a number of seconds, or a Go duration string ("5m", "1h30m", "10s", "-1", "0",
 * "300ms"); any negative value means "stay loaded". Errors name `where`. */
shimmy_status ollama_duration_parse(const json_t *v, const char *where, double *seconds,
                                    shimmy_error *err);

/* RFC 3339 UTC time with nanoseconds ("2024-05-01T10:00:00.123456789Z") of a wall-clock
 * instant given in seconds since the epoch; out needs 40 bytes. */
void ollama_time(double epoch_s, char out[40]);

/* Ollama's error body for err: {"error": message}, malloc'd; *http (may be NULL) receives
 * shimmy_status_http(err->status). */
char *ollama_error_json(const shimmy_error *err, int *http);
int ollama_reply_error(server_call *c, const shimmy_error *err);

/* Per-job state of an Ollama reply (the job's ext). */
typedef struct ollama_job {
    ollama_opts o;
    double t0_wall;  /* request start, seconds since the epoch */
    double t0_ms;    /* request start, server_clock_ms */
    double begin_ms; /* generation start */
    bool was_loaded; /* the model was loaded before this request */
    char model[256]; /* the name as the client sent it ("x:latest"), echoed in every reply */
} ollama_job;

ollama_job *ollama_job_new(ollama_opts *o); /* takes o's contents */
void ollama_job_free(void *ext);

extern const server_fmt ollama_fmt_chat_stream, ollama_fmt_chat_json;
extern const server_fmt ollama_fmt_gen_stream, ollama_fmt_gen_json;

#endif
