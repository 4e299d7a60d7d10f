/* The OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions, and the
 * formatters that shape their JSON bodies and SSE chunks. */
#include "compat.h"
#include "server.h"

#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- shared pieces ---- */

static json_t *text_value(const char *text, size_t len) {
    /* The engine hands over whole UTF-8 characters; anything else is a bug upstream, and an
     * empty string keeps the stream well-formed. */
    json_t *v = json_stringn(text, len);
    return v ? v : json_string("");
}

static json_t *usage_object(const server_job *j) {
    return json_pack("{s:I,s:I,s:I,s:{s:I}}", "prompt_tokens", (json_int_t)j->usage_prompt,
                     "completion_tokens", (json_int_t)j->usage_completion, "total_tokens",
                     (json_int_t)(j->usage_prompt + j->usage_completion), "prompt_tokens_details",
                     "cached_tokens", (json_int_t)j->usage_cached);
}

static json_t *envelope(const server_job *j, const char *object, json_t *choices) {
    json_t *v = json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "id", j->id, "object", object, "created",
                          (json_int_t)j->created, "model", j->req.model, "system_fingerprint",
                          "shimmy-" SHIMMY_VERSION, "choices", choices);
    /* As OpenAI does: with include_usage every chunk has "usage", null until the last one. */
    if (v && j->req.include_usage) json_object_set_new(v, "usage", json_null());
    return v;
}

static json_t *acc_take(server_job *j) {
    json_t *v = text_value(j->acc ? j->acc : "", j->acc_len);
    j->acc_len = 0;
    return v;
}

static void write_json(server_job *j, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (s) server_job_write(j, s, strlen(s));
    free(s);
}

static void nothing(server_job *j) {
    (void)j;
}

static void json_fail(server_job *j, const shimmy_error *err) {
    write_json(j, server_error_object(err));
}

/* Errors after a stream has started can only travel inside it, as OpenAI does. */
static void sse_fail(server_job *j, const shimmy_error *err) {
    server_job_sse(j, server_error_object(err));
}

static void sse_done(server_job *j) {
    if (j->req.include_usage) {
        json_t *u =
            envelope(j, j->req.api == SERVER_API_CHAT ? "chat.completion.chunk" : "text_completion",
                     json_array());
        if (u) json_object_set_new(u, "usage", usage_object(j));
        server_job_sse(j, u);
    }
    server_job_printf(j, "data: [DONE]\n\n");
}

/* ---- logprobs (the records of j->lp during a text() call) ---- */

static const shimmy_vocab *job_vocab(const server_job *j) {
    return shimmy_model_vocab(j->model);
}

/* Chat: the records join lp_acc until a chunk (or the body) takes them. */
static void chat_lp_collect(server_job *j) {
    if (!j->n_lp) return;
    if (!j->lp_acc) j->lp_acc = json_array();
    for (size_t i = 0; j->lp_acc && i < j->n_lp; i++)
        json_array_append_new(j->lp_acc, server_lp_chat_entry(job_vocab(j), &j->lp[i]));
}

/* {"content": [...]} of what was collected (null when nothing was asked or collected). */
static json_t *chat_lp_take(server_job *j, bool body) {
    if (!j->lp_acc && body && j->req.logprobs) j->lp_acc = json_array();
    json_t *v = j->lp_acc ? json_pack("{s:o}", "content", j->lp_acc) : json_null();
    j->lp_acc = NULL;
    return v;
}

/* Completions: the records as {tokens, token_logprobs, top_logprobs, text_offset}. */
static void compl_lp_collect(server_job *j, json_t **into) {
    if (!j->n_lp) return;
    if (!*into) *into = server_lp_compl_new();
    for (size_t i = 0; *into && i < j->n_lp; i++) {
        server_lp_compl_append(*into, job_vocab(j), &j->lp[i], j->lp_offset);
        j->lp_offset += j->lp[i].n_bytes;
    }
}

/* ---- chat ---- */

static void chat_chunk(server_job *j, json_t *delta, const char *finish) {
    json_t *choice = json_pack("{s:i,s:o,s:o,s:o}", "index", 0, "delta", delta, "logprobs",
                               chat_lp_take(j, false), "finish_reason",
                               finish ? json_string(finish) : json_null());
    server_job_sse(j, envelope(j, "chat.completion.chunk", json_pack("[o]", choice)));
}

static void chat_sse_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    json_t *lp = j->lp_acc; /* records belong to answer chunks */
    j->lp_acc = NULL;
    chat_chunk(j, json_pack("{s:o}", "reasoning_content", text_value(text, len)), NULL);
    j->lp_acc = lp;
}

static void chat_sse_begin(server_job *j) {
    chat_chunk(j, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
}

/* ---- tool calls (toolcall.h) ---- */

static void call_id(server_job *j, char out[32]) {
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t bits[2] = {(uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)j,
                        atomic_fetch_add(&counter, 1) + 0x632BE59BD9B4E019ull};
    server_toolcall_id(j->tool_format, bits, out);
}

/* The calls of a finished answer (stream: with "index"); parallel_tool_calls false keeps the
 * first. */
static json_t *call_json(server_job *j, const server_toolcall *c, size_t k, bool stream) {
    char id[32];
    call_id(j, id);
    json_t *v = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name",
                          c->name, "arguments", c->arguments);
    if (v && stream) json_object_set_new(v, "index", json_integer((json_int_t)k));
    return v;
}

static size_t calls_kept(const server_job *j, const server_toolcalls *c) {
    return j->req.tools.parallel || c->n < 1 ? c->n : 1;
}

/* Parses the held text; false (nothing to free) when it holds no call. */
static bool parse_calls(server_job *j, server_toolcalls *c) {
    shimmy_error e;
    if (server_toolcall_parse(j->tool_format, j->acc ? j->acc : "", j->acc_len, c, &e))
        return false;
    return c->n > 0;
}

static void chat_content_out(server_job *j, const char *text, size_t len) {
    chat_chunk(j, json_pack("{s:o}", "content", text_value(text, len)), NULL);
}

static void chat_sse_text(server_job *j, size_t choice, const char *text, size_t len) {
    chat_lp_collect(j);
    server_job_stream_answer(j, text, len, chat_content_out);
}

static void chat_sse_end(server_job *j, size_t choice, const char *finish) {
    server_toolcalls c = {0};
    if (j->tool_held && parse_calls(j, &c)) {
        if (c.content)
            chat_chunk(j, json_pack("{s:o}", "content", text_value(c.content, c.content_len)),
                       NULL);
        for (size_t k = 0; k < calls_kept(j, &c); k++)
            chat_chunk(j, json_pack("{s:[o]}", "tool_calls", call_json(j, &c.calls[k], k, true)),
                       NULL);
        finish = "tool_calls";
    } else if (j->acc_len) { /* a marker that led to no call: it was text after all */
        chat_chunk(j, json_pack("{s:o}", "content", text_value(j->acc, j->acc_len)), NULL);
    }
    server_toolcalls_free(&c);
    j->acc_len = 0;
    j->tool_held = j->tool_sent = false;
    chat_chunk(j, json_object(), finish);
}

const server_fmt server_fmt_chat_sse = {.name = "chat-sse",
                                        .begin = chat_sse_begin,
                                        .text = chat_sse_text,
                                        .choice_end = chat_sse_end,
                                        .done = sse_done,
                                        .fail = sse_fail,
                                        .reasoning = chat_sse_reasoning};

static void json_text(server_job *j, size_t choice, const char *text, size_t len) {
    server_job_acc_append(j, text, len);
    if (j->req.api == SERVER_API_CHAT)
        chat_lp_collect(j);
    else
        compl_lp_collect(j, &j->lp_acc);
}

static void json_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    server_job_think_append(j, text, len);
}

static void chat_json_end(server_job *j, size_t choice, const char *finish) {
    if (!j->choices) j->choices = json_array();
    server_toolcalls c = {0};
    json_t *msg;
    if (j->req.tools.tools && parse_calls(j, &c)) {
        json_t *calls = json_array();
        for (size_t k = 0; k < calls_kept(j, &c); k++)
            json_array_append_new(calls, call_json(j, &c.calls[k], k, false));
        msg = json_pack("{s:s,s:o,s:o}", "role", "assistant", "content",
                        c.content ? text_value(c.content, c.content_len) : json_null(),
                        "tool_calls", calls);
        server_toolcalls_free(&c);
        j->acc_len = 0;
        finish = "tool_calls";
    } else {
        msg = json_pack("{s:s,s:o}", "role", "assistant", "content", acc_take(j));
    }
    if (msg && j->think_len)
        json_object_set_new(msg, "reasoning_content", text_value(j->think_acc, j->think_len));
    j->think_len = 0;
    json_array_append_new(j->choices, json_pack("{s:I,s:o,s:o,s:s}", "index", (json_int_t)choice,
                                                "message", msg, "logprobs", chat_lp_take(j, true),
                                                "finish_reason", finish));
}

static void json_done(server_job *j) {
    const char *object = j->req.api == SERVER_API_CHAT ? "chat.completion" : "text_completion";
    json_t *v = envelope(j, object, j->choices ? json_incref(j->choices) : json_array());
    if (v) json_object_set_new(v, "usage", usage_object(j));
    write_json(j, v);
}

const server_fmt server_fmt_chat_json = {.name = "chat-json",
                                         .begin = nothing,
                                         .text = json_text,
                                         .choice_end = chat_json_end,
                                         .done = json_done,
                                         .fail = json_fail,
                                         .reasoning = json_reasoning};

/* ---- legacy completions ---- */

static void compl_chunk(server_job *j, size_t choice, json_t *text, json_t *lp,
                        const char *finish) {
    json_t *c = json_pack("{s:o,s:I,s:o,s:o}", "text", text, "index", (json_int_t)choice,
                          "logprobs", lp ? lp : json_null(), "finish_reason",
                          finish ? json_string(finish) : json_null());
    server_job_sse(j, envelope(j, "text_completion", json_pack("[o]", c)));
}

static void compl_sse_text(server_job *j, size_t choice, const char *text, size_t len) {
    json_t *lp = NULL;
    compl_lp_collect(j, &lp);
    compl_chunk(j, choice, text_value(text, len), lp, NULL);
}

static void compl_sse_end(server_job *j, size_t choice, const char *finish) {
    compl_chunk(j, choice, json_string(""), NULL, finish);
}

const server_fmt server_fmt_compl_sse = {
    "completion-sse", nothing, compl_sse_text, compl_sse_end, sse_done, sse_fail, NULL};

static void compl_json_end(server_job *j, size_t choice, const char *finish) {
    if (!j->choices) j->choices = json_array();
    json_array_append_new(j->choices,
                          json_pack("{s:o,s:I,s:o,s:s}", "text", acc_take(j), "index",
                                    (json_int_t)choice, "logprobs",
                                    j->lp_acc ? j->lp_acc : json_null(), "finish_reason", finish));
    j->lp_acc = NULL;
}

const server_fmt server_fmt_compl_json = {"completion-json", nothing,   json_text, compl_json_end,
                                          json_done,         json_fail, NULL};

/* ---- handlers ---- */

int server_handle_chat(server_call *c) {
    return server_run(c, SERVER_API_CHAT, &server_fmt_chat_sse, &server_fmt_chat_json);
}

int server_handle_completions(server_call *c) {
    return server_run(c, SERVER_API_COMPLETIONS, &server_fmt_compl_sse, &server_fmt_compl_json);
}

static json_int_t mtime_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (json_int_t)st.st_mtime : 0;
}

static json_t *model_object(const shimmy_model_list *l, size_t i) {
    return json_pack("{s:s,s:s,s:I,s:s}", "id", shimmy_model_list_name(l, i), "object", "model",
                     "created", mtime_of(shimmy_model_list_path(l, i)), "owned_by", "shimmy");
}

/* A paired adapter is a model of its own: its base with the adapter applied. */
static json_t *adapter_model_object(const shimmy_adapter_info *a) {
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", a->name, "object", "model", "created",
                     mtime_of(a->path), "owned_by", "shimmy", "parent", a->base);
}

int server_handle_models(server_call *c) {
    shimmy_model_list *l = server_list(c->srv);
    json_t *data = json_array();
    for (size_t i = 0; i < shimmy_model_list_count(l); i++)
        json_array_append_new(data, model_object(l, i));
    for (size_t i = 0; i < shimmy_model_list_adapter_count(l); i++) {
        shimmy_adapter_info a;
        if (shimmy_model_list_adapter(l, i, &a) && a.base &&
            !shimmy_model_list_find(l, a.name, NULL))
            json_array_append_new(data, adapter_model_object(&a));
    }
    shimmy_model_list_free(l);
    json_t *v = json_pack("{s:s,s:o}", "object", "list", "data", data);
    return server_reply_json(c, 200, server_anthropic_models_shape(c, v));
}

int server_handle_model(server_call *c) {
    shimmy_model_list *l = server_list(c->srv);
    size_t i;
    shimmy_adapter_info a = {0};
    bool is_model = shimmy_model_list_find(l, c->param, &i);
    bool is_adapter = !is_model && shimmy_model_list_find_adapter(l, c->param, &i) &&
                      shimmy_model_list_adapter(l, i, &a) && a.base &&
                      strcasecmp(a.name, c->param) == 0;
    if (is_model || is_adapter) {
        json_t *v = is_model ? model_object(l, i) : adapter_model_object(&a);
        shimmy_model_list_free(l);
        return server_reply_json(c, 200, server_anthropic_models_shape(c, v));
    }
    const char *near[1];
    size_t n = shimmy_model_list_suggestions(l, c->param, near, 1);
    shimmy_error err;
    shimmy_error_set(&err, SHIMMY_ERR_MODEL_NOT_FOUND, "model",
                     "the model '%.200s' does not exist%s%.200s%s", c->param,
                     n ? " (did you mean '" : "", n ? near[0] : "", n ? "'?)" : "");
    shimmy_model_list_free(l);
    return server_reply_error(c, &err);
}
