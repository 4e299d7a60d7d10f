/*
 * compat — the other APIs clients speak to a local server, as front ends of the chat pipeline:
 * Anthropic's Messages API (POST /v1/messages, POST /v1/messages/count_tokens) and OpenAI's
 * Responses API (POST /v1/responses, stateless).
 *
 * A request is checked field by field in its own API's terms (err->where and the message name
 * the API's field: "messages[1].content[0].type", "input[2].call_id") and translated into the
 * chat request the rest of the server runs (server_request with api SERVER_API_CHAT: messages,
 * tools and sampling), plus the extras only the front end knows (server_compat_req). The
 * formatters (anthropic_fmt.c, responses_fmt.c) shape the generated text as that API's
 * response object or event stream, tool calls included (toolcall.h parses them).
 *
 * Invariants:
 *  - The parsers are pure (no server state, no I/O) and unit-tested (tests/server/test_anthropic.c,
 *    test_responses.c) and fuzzed (tests/fuzz/fuzz_compat.c): any bytes give a request or an
 *    error value, never a crash.
 *  - Anthropic stop sequences are matched by the formatter (server_compat_stop_scan), not by the
 *    library, because the reply must name the sequence that matched (stop_sequence); the
 *    formatter ends the generation through job->stop_now.
 *  - Errors reach Anthropic clients as {"type":"error","error":{"type","message"}} (every route
 *    under /v1/messages, auth and routing errors included); Responses errors keep OpenAI's shape.
 *
 * Ownership: server_compat_req is filled by a parser and released by server_compat_req_free
 * (it becomes the job's ext); strings inside are owned.
 */
#ifndef SHIMMY_SERVER_COMPAT_H
#define SHIMMY_SERVER_COMPAT_H

#include "server.h"

/* What a front end keeps beside the chat request: echoed fields and the formatter's state. */
typedef struct server_compat_req {
    /* Anthropic */
    char *stop[SERVER_MAX_STOP]; /* stop_sequences, matched by the formatter */
    size_t n_stop;
    bool count_only; /* count_tokens: no max_tokens needed */
    /* Responses: the request's own fields the response object repeats (owned object). */
    json_t *echo;
    /* Structured output asked for (Responses text.format): 0 text, 1 json_object, 2 json_schema;
     * schema is owned (json_schema only). */
    int format;
    json_t *schema;

    /* Worker-side formatter state (zero at parse time). */
    char *pend; /* text held back while it may be the start of a stop sequence */
    size_t pend_len, pend_cap;
    int stopped;             /* index of the stop sequence that matched + 1; 0 = none */
    int blocks;              /* content blocks / output items started so far */
    int open;                /* the open block: 0 none, 1 text, 2 thinking */
    bool pinged;             /* Anthropic ping sent */
    long seq;                /* Responses sequence_number */
    char item[40];           /* Responses: id of the open output item */
    const char *item_status; /* Responses: the status the open item closes with */
    char *text;              /* Responses: the open item's whole text so far */
    size_t text_len, text_cap;
    char *think; /* non-streaming: reasoning text */
    size_t think_len, think_cap;
    json_t *output; /* non-streaming Responses: finished output items; Anthropic: content */
    json_t *lp_item, *lp_pending; /* Responses logprobs: of the message, and not yet in a delta */
    char resp_id[48];
} server_compat_req;

void server_compat_req_free(void *x); /* accepts NULL; frees the struct too */

/* The stop-sequence scan of text[0..len): returns how many leading bytes are final text. When a
 * sequence occurs, *which = its index + 1 and the return value is where it starts; otherwise
 * *which = 0 and the bytes after the return value may still begin a sequence (hold them). The
 * earliest occurrence wins; at the same position, the longest sequence. */
size_t server_compat_stop_scan(const char *text, size_t len, char *const *stops, size_t n,
                               int *which);

/* ---- Anthropic Messages ---- */

/* Parses a /v1/messages body (count_only: a /v1/messages/count_tokens body, where max_tokens is
 * not required) into out (a chat request) and x. Errors: SHIMMY_ERR_INVALID_JSON, or
 * SHIMMY_ERR_INVALID_ARG with err->where the field. max_tokens above cap is clamped. */
shimmy_status server_anthropic_parse(const char *body, size_t len, int32_t cap, bool count_only,
                                     server_request *out, server_compat_req *x, shimmy_error *err);
/* Anthropic's error type for a status: "invalid_request_error", "authentication_error",
 * "not_found_error", "request_too_large", "overloaded_error", "api_error", ... */
const char *server_anthropic_error_type(shimmy_status st);
/* {"type":"error","error":{"type","message"}} (owned; NULL when out of memory). */
json_t *server_anthropic_error_object(const shimmy_error *err);
/* "end_turn", "max_tokens", "stop_sequence" or "tool_use" for a finish and what the formatter
 * saw. */
const char *server_anthropic_stop_reason(const char *finish, bool stop_sequence, bool tool_use);

int server_anthropic_reply_error(server_call *c, const shimmy_error *err);
/* GET /v1/models and /v1/models/{id} asked by an Anthropic client (an anthropic-version header):
 * v (the OpenAI list or model, owned) gains Anthropic's fields (type, display_name, created_at;
 * has_more, first_id, last_id). Other requests get v unchanged. */
json_t *server_anthropic_models_shape(server_call *c, json_t *v);
int server_handle_messages(server_call *c);
int server_handle_count_tokens(server_call *c);
extern const server_fmt server_fmt_anthropic_sse, server_fmt_anthropic_json;

/* ---- OpenAI Responses ---- */

/* Parses a /v1/responses body into out and x (x->echo holds the fields the response object
 * repeats). previous_response_id, conversation, store: true and background: true are
 * SHIMMY_ERR_INVALID_ARG naming the field (the server keeps no responses). */
shimmy_status server_responses_parse(const char *body, size_t len, int32_t cap, server_request *out,
                                     server_compat_req *x, shimmy_error *err);

int server_handle_responses(server_call *c);
int server_handle_response_get(server_call *c);
extern const server_fmt server_fmt_responses_sse, server_fmt_responses_json;

/* The text of v: a string as it is, or an array of parts joined with newlines, where part()
 * gives a part's text (borrowed) or its error (w names the part: "where[i]"). The
 * caller's message when v is neither is `shape`. *out is a new reference. */
typedef shimmy_status (*server_compat_part_fn)(const json_t *part, const char *w,
                                               const json_t **text, shimmy_error *err);
shimmy_status server_compat_join_text(const json_t *v, const char *where, const char *shape,
                                      server_compat_part_fn part, json_t **out, shimmy_error *err);

/* A random id with a prefix ("msg_", "toolu_", "resp_", "fc_", ...): prefix + 24 alphanumerics. */
void server_compat_id(const char *prefix, char *out, size_t cap);

#endif
