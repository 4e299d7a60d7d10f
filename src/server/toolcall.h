/*
 * toolcall — OpenAI tool calling for the chat endpoint: a request's "tools" / "tool_choice" /
 * "parallel_tool_calls" checked into what the chat template reads, the format a template asks
 * the model to call tools in, and the parser from generated text to calls (with the marker scan
 * a stream uses to hold text back once a call may have begun). Pure: no I/O, no server state,
 * so every piece is unit-tested alone (tests/server/test_toolcall.c).
 *
 * Invariants:
 *  - The model's text never causes an error: what is not a well-formed call in the format is
 *    content (n == 0), so a broken generation is a plain answer, never a 500.
 *  - A parsed call's arguments is the compact JSON text of an object (OpenAI's "arguments"
 *    string), key order and UTF-8 kept as the model wrote them.
 *  - The format comes from the template source (or the library's family name), never from the
 *    model's name.
 *
 * Ownership: server_toolcalls is filled by server_toolcall_parse and released by
 * server_toolcalls_free; server_tools_check returns an owned json_t (NULL when the template
 * gets no tools). Errors are values: SHIMMY_ERR_INVALID_ARG naming the field for requests,
 * SHIMMY_ERR_NOMEM otherwise.
 */
#ifndef SHIMMY_SERVER_TOOLCALL_H
#define SHIMMY_SERVER_TOOLCALL_H

#include "shimmy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- requests ---- */

typedef struct server_tools {
    json_t *tools; /* owned: the tools the template renders; NULL = none ("tool_choice":"none") */
    bool parallel; /* parallel_tool_calls (default true): false keeps the first call only */
    bool required; /* tool_choice "required" or a named function: the answer must be a call
                      (enforced by a grammar of the model's call format, structured.c) */
} server_tools;

/* Checks a chat request's tools (array of {"type":"function","function":{"name",
 * "description","parameters","strict"}}), tool_choice ("none" | "auto" | "required" |
 * {"type":"function","function":{"name"}}) and parallel_tool_calls (bool); any may be NULL.
 * "none" drops the tools; a named choice keeps only that tool, so the model sees the one it
 * must call. Errors: SHIMMY_ERR_INVALID_ARG with `where` the field ("tools[1].type",
 * "tools[0].function.name", "tool_choice.function.name", ...). */
shimmy_status server_tools_check(const json_t *tools, const json_t *choice, const json_t *parallel,
                                 server_tools *out, shimmy_error *err);

/* A message as templates read it: an assistant's tool_calls are checked (where
 * "messages[i].tool_calls[k]...") and their "arguments" JSON strings become objects, since
 * templates print them with tojson as the model wrote them; a tool message needs
 * tool_call_id (a string). msg is a copy owned by the caller, changed in place. */
shimmy_status server_tools_message(json_t *msg, size_t index, shimmy_error *err);

/* ---- formats of calls in generated text ---- */

typedef enum server_tool_format {
    SERVER_TOOLS_GENERIC, /* unknown template: any of the formats below */
    SERVER_TOOLS_HERMES,  /* <tool_call>\n{"name": .., "arguments": {..}}\n</tool_call> (Qwen,
                             Hermes) */
    SERVER_TOOLS_LLAMA3,  /* the answer is {"name": .., "parameters": {..}} (Llama 3.1+) */
    SERVER_TOOLS_MISTRAL, /* [TOOL_CALLS][{"name": .., "arguments": {..}, "id": ..}, ..] */
    SERVER_TOOLS_HARMONY, /* <|start|>assistant to=functions.NAME<|channel|>commentary
                             json<|message|>{..}<|call|> (gpt-oss: what reasoning.h's harmony
                             splitter makes of a call message; never the generic format's) */
} server_tool_format;

/* The format a template asks for, from its source (may be NULL) and the library's family name
 * ("chatml", "llama3", "mistral", ...; may be NULL). */
server_tool_format server_toolcall_format(const char *source, const char *family);
const char *server_toolcall_format_name(server_tool_format f); /* "hermes", "llama3", ... */

typedef struct server_toolcall {
    char *name;      /* owned */
    char *arguments; /* owned: compact JSON object text */
} server_toolcall;

typedef struct server_toolcalls {
    server_toolcall *calls; /* owned, n of them */
    size_t n;
    char *content; /* owned: the text outside the calls, trimmed; NULL when there is none */
    size_t content_len;
} server_toolcalls;

/* Finds the calls in a finished answer text[0..len). n == 0 (and nothing allocated) when the
 * text holds no well-formed call in format f. Errors: SHIMMY_ERR_NOMEM only. */
shimmy_status server_toolcall_parse(server_tool_format f, const char *text, size_t len,
                                    server_toolcalls *out, shimmy_error *err);
void server_toolcalls_free(server_toolcalls *c);

/* Streaming: how many leading bytes of text[0..len) can be sent as content now. The rest is
 * held because a call starts there (*started = true: hold until the end) or a marker may be
 * beginning at the end of the text. at_start: text begins the answer (a Llama 3 call is the
 * whole answer, so its "{" only counts there). Markers are ASCII, so the cut never splits a
 * UTF-8 character. */
size_t server_toolcall_hold(server_tool_format f, const char *text, size_t len, bool at_start,
                            bool *started);

/* A call id from random bits: "call_" + 24 alphanumerics, or 9 alphanumerics for Mistral
 * (its template refuses other ids when the call comes back in the history). */
void server_toolcall_id(server_tool_format f, uint64_t bits[2], char out[32]);

#endif
