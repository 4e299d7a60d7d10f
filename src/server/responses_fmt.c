/* OpenAI Responses output: the response object (output items: reasoning, message, function_call)
 * and its event stream (response.created ... response.completed, each with sequence_number), and
 * the /v1/responses handlers. */
#include "compat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static server_compat_req *state(server_job *j) {
    return j->ext;
}

static json_t *text_value(const char *text, size_t len) {
    json_t *v = json_stringn(text, len);
    return v ? v : json_string("");
}

static void buf_append(char **buf, size_t *len, size_t *cap, const char *text, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) return;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, text, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static json_t *echoed(server_job *j, const char *key, json_t *dflt) {
    json_t *v = json_object_get(state(j)->echo, key);
    if (v) {
        json_decref(dflt);
        return json_incref(v);
    }
    return dflt;
}

/* A float option as the decimal it was set from (0.95f is 0.949999988079071 as a double); the
 * dumps print 15 digits, so it reads 0.95. */
static json_t *real6(float f) {
    return json_real(round((double)f * 1e6) / 1e6);
}

/* The response object; status "in_progress", "completed", "incomplete" or "failed". */
static json_t *response_object(server_job *j, const char *status, const char *finish) {
    server_compat_req *x = state(j);
    bool done = strcmp(status, "in_progress") != 0;
    json_t *usage = json_null();
    if (done)
        usage = json_pack(
            "{s:I,s:{s:I},s:I,s:{s:i},s:I}", "input_tokens", (json_int_t)j->usage_prompt,
            "input_tokens_details", "cached_tokens", (json_int_t)j->usage_cached, "output_tokens",
            (json_int_t)j->usage_completion, "output_tokens_details", "reasoning_tokens", 0,
            "total_tokens", (json_int_t)(j->usage_prompt + j->usage_completion));
    json_t *incomplete = strcmp(status, "incomplete") == 0
                             ? json_pack("{s:s}", "reason", "max_output_tokens")
                             : json_null();
    (void)finish;
    json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:n,s:o,s:s,s:o,s:n,s:b}", "id", x->resp_id, "object",
                          "response", "created_at", (json_int_t)j->created, "status", status,
                          "error", "incomplete_details", incomplete, "model", j->req.model,
                          "output", done && x->output ? json_incref(x->output) : json_array(),
                          "previous_response_id", "store", 0);
    if (!r) return NULL;
    json_object_set_new(r, "instructions", echoed(j, "instructions", json_null()));
    json_object_set_new(r, "max_output_tokens", echoed(j, "max_output_tokens", json_null()));
    json_object_set_new(r, "metadata", echoed(j, "metadata", json_object()));
    json_object_set_new(r, "parallel_tool_calls",
                        echoed(j, "parallel_tool_calls", json_boolean(j->req.tools.parallel)));
    json_object_set_new(r, "reasoning",
                        echoed(j, "reasoning", json_pack("{s:n,s:n}", "effort", "summary")));
    json_object_set_new(r, "temperature", echoed(j, "temperature", real6(j->req.gen.temperature)));
    json_object_set_new(r, "top_p", echoed(j, "top_p", real6(j->req.gen.top_p)));
    json_object_set_new(r, "text",
                        echoed(j, "text", json_pack("{s:{s:s}}", "format", "type", "text")));
    json_object_set_new(r, "tool_choice", echoed(j, "tool_choice", json_string("auto")));
    json_object_set_new(r, "tools", echoed(j, "tools", json_array()));
    json_object_set_new(r, "truncation", echoed(j, "truncation", json_string("disabled")));
    json_object_set_new(r, "user", echoed(j, "user", json_null()));
    json_object_set_new(r, "usage", usage);
    return r;
}

static const char *final_status(const char *finish) {
    return finish && strcmp(finish, "length") == 0 ? "incomplete" : "completed";
}

/* A message cut by max_output_tokens is "incomplete", as the response is. */
static const char *item_status(const char *finish) {
    return finish && strcmp(finish, "length") == 0 ? "incomplete" : "completed";
}

/* The token records of a text() call (logprobs requested) join the message's list and the
 * list the next delta carries. */
static void lp_collect(server_job *j) {
    server_compat_req *x = state(j);
    if (!j->n_lp) return;
    if (!x->lp_item) x->lp_item = json_array();
    if (!x->lp_pending) x->lp_pending = json_array();
    for (size_t i = 0; i < j->n_lp; i++) {
        json_t *e = server_lp_chat_entry(shimmy_model_vocab(j->model), &j->lp[i]);
        json_array_append(x->lp_item, e);
        json_array_append_new(x->lp_pending, e);
    }
}

static json_t *lp_take(json_t **list) {
    json_t *v = *list ? *list : json_array();
    *list = NULL;
    return v;
}

static json_t *output_text(const char *text, size_t len, json_t *logprobs) {
    return json_pack("{s:s,s:o,s:[],s:o}", "type", "output_text", "text", text_value(text, len),
                     "annotations", "logprobs", logprobs ? logprobs : json_array());
}

static json_t *message_item(const char *id, const char *status, const char *text, size_t len,
                            json_t *logprobs) {
    json_t *content = text ? json_pack("[o]", output_text(text, len, logprobs)) : json_array();
    if (!text) json_decref(logprobs);
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", id, "type", "message", "status", status, "role",
                     "assistant", "content", content);
}

static json_t *reasoning_item(const char *id, const char *text, size_t len) {
    json_t *content =
        text ? json_pack("[{s:s,s:o}]", "type", "reasoning_text", "text", text_value(text, len))
             : json_array();
    return json_pack("{s:s,s:s,s:[],s:o}", "id", id, "type", "reasoning", "summary", "content",
                     content);
}

static json_t *call_item(const server_toolcall *c, const char *status, bool empty) {
    char id[40], call[40];
    server_compat_id("fc_", id, sizeof id);
    server_compat_id("call_", call, sizeof call);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "type", "function_call", "status",
                     status, "call_id", call, "name", c->name, "arguments",
                     empty ? "" : c->arguments);
}

static bool parse_calls(server_job *j, server_toolcalls *c) {
    shimmy_error e;
    if (server_toolcall_parse(j->tool_format, j->acc ? j->acc : "", j->acc_len, c, &e))
        return false;
    return c->n > 0;
}

static size_t calls_kept(const server_job *j, const server_toolcalls *c) {
    return j->req.tools.parallel || c->n < 1 ? c->n : 1;
}

static void output_add(server_job *j, json_t *item) {
    server_compat_req *x = state(j);
    if (!x->output) x->output = json_array();
    json_array_append_new(x->output, item);
}

/* ---- streaming ---- */

static void event(server_job *j, const char *type, json_t *v) {
    if (!v) return;
    json_object_set_new(v, "type", json_string(type));
    json_object_set_new(v, "sequence_number", json_integer(state(j)->seq++));
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(v);
    if (s) server_job_printf(j, "event: %s\ndata: %s\n\n", type, s);
    free(s);
}

static int out_index(server_job *j) {
    return state(j)->blocks - 1;
}

static void item_close(server_job *j) {
    server_compat_req *x = state(j);
    const char *text = x->text ? x->text : "";
    if (x->open == 1) {
        json_t *lp = lp_take(&x->lp_item);
        json_decref(lp_take(&x->lp_pending));
        json_t *part = output_text(text, x->text_len, json_incref(lp));
        event(j, "response.output_text.done",
              json_pack("{s:s,s:i,s:i,s:o,s:O}", "item_id", x->item, "output_index", out_index(j),
                        "content_index", 0, "text", text_value(text, x->text_len), "logprobs", lp));
        event(j, "response.content_part.done",
              json_pack("{s:s,s:i,s:i,s:o}", "item_id", x->item, "output_index", out_index(j),
                        "content_index", 0, "part", part));
        json_t *item = message_item(x->item, x->item_status, text, x->text_len, lp);
        event(j, "response.output_item.done",
              json_pack("{s:i,s:O}", "output_index", out_index(j), "item", item));
        output_add(j, item);
    } else if (x->open == 2) {
        event(j, "response.reasoning_text.done",
              json_pack("{s:s,s:i,s:i,s:o}", "item_id", x->item, "output_index", out_index(j),
                        "content_index", 0, "text", text_value(text, x->text_len)));
        json_t *item = reasoning_item(x->item, text, x->text_len);
        event(j, "response.output_item.done",
              json_pack("{s:i,s:O}", "output_index", out_index(j), "item", item));
        output_add(j, item);
    }
    x->open = 0;
    x->text_len = 0;
}

static void item_open(server_job *j, int kind) {
    server_compat_req *x = state(j);
    item_close(j);
    server_compat_id(kind == 1 ? "msg_" : "rs_", x->item, sizeof x->item);
    x->item_status = "completed";
    x->blocks++;
    x->open = kind;
    json_t *item = kind == 1 ? message_item(x->item, "in_progress", NULL, 0, NULL)
                             : reasoning_item(x->item, NULL, 0);
    event(j, "response.output_item.added",
          json_pack("{s:i,s:o}", "output_index", out_index(j), "item", item));
    if (kind == 1)
        event(j, "response.content_part.added",
              json_pack("{s:s,s:i,s:i,s:{s:s,s:s,s:[]}}", "item_id", x->item, "output_index",
                        out_index(j), "content_index", 0, "part", "type", "output_text", "text", "",
                        "annotations"));
}

static void sse_text_out(server_job *j, const char *text, size_t len) {
    server_compat_req *x = state(j);
    if (!len) return;
    if (x->open != 1) item_open(j, 1);
    buf_append(&x->text, &x->text_len, &x->text_cap, text, len);
    event(j, "response.output_text.delta",
          json_pack("{s:s,s:i,s:i,s:o,s:o}", "item_id", x->item, "output_index", out_index(j),
                    "content_index", 0, "delta", text_value(text, len), "logprobs",
                    lp_take(&x->lp_pending)));
}

static void sse_begin(server_job *j) {
    server_compat_req *x = state(j);
    server_compat_id("resp_", x->resp_id, sizeof x->resp_id);
    event(j, "response.created",
          json_pack("{s:o}", "response", response_object(j, "in_progress", NULL)));
    event(j, "response.in_progress",
          json_pack("{s:o}", "response", response_object(j, "in_progress", NULL)));
}

static void sse_text(server_job *j, size_t choice, const char *text, size_t len) {
    lp_collect(j);
    server_job_stream_answer(j, text, len, sse_text_out);
}

static void sse_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    server_compat_req *x = state(j);
    if (!len) return;
    if (x->open != 2) item_open(j, 2);
    buf_append(&x->text, &x->text_len, &x->text_cap, text, len);
    event(j, "response.reasoning_text.delta",
          json_pack("{s:s,s:i,s:i,s:o}", "item_id", x->item, "output_index", out_index(j),
                    "content_index", 0, "delta", text_value(text, len)));
}

static void sse_end(server_job *j, size_t choice, const char *finish) {
    server_compat_req *x = state(j);
    server_toolcalls c = {0};
    bool calls = j->tool_held && parse_calls(j, &c);
    if (calls) {
        sse_text_out(j, c.content, c.content ? c.content_len : 0);
        item_close(j);
        for (size_t k = 0; k < calls_kept(j, &c); k++) {
            json_t *item = call_item(&c.calls[k], "in_progress", true);
            const char *id = json_string_value(json_object_get(item, "id"));
            int idx = x->blocks++;
            event(j, "response.output_item.added",
                  json_pack("{s:i,s:O}", "output_index", idx, "item", item));
            event(j, "response.function_call_arguments.delta",
                  json_pack("{s:s,s:i,s:s}", "item_id", id, "output_index", idx, "delta",
                            c.calls[k].arguments));
            event(j, "response.function_call_arguments.done",
                  json_pack("{s:s,s:i,s:s,s:s}", "item_id", id, "output_index", idx, "name",
                            c.calls[k].name, "arguments", c.calls[k].arguments));
            json_object_set_new(item, "status", json_string("completed"));
            json_object_set_new(item, "arguments", json_string(c.calls[k].arguments));
            event(j, "response.output_item.done",
                  json_pack("{s:i,s:O}", "output_index", idx, "item", item));
            output_add(j, item);
        }
    } else {
        sse_text_out(j, j->acc, j->acc_len);
        x->item_status = item_status(finish);
        item_close(j);
    }
    server_toolcalls_free(&c);
    j->acc_len = 0;
    /* Whole calls are a complete answer, even when the last token was the limit's. */
    const char *status = calls ? "completed" : final_status(finish);
    event(j, strcmp(status, "completed") == 0 ? "response.completed" : "response.incomplete",
          json_pack("{s:o}", "response", response_object(j, status, finish)));
}

static void nothing(server_job *j) {
    (void)j;
}

static void sse_fail(server_job *j, const shimmy_error *err) {
    json_t *e = server_error_object(err);
    json_t *inner = json_object_get(e, "error");
    json_t *r = response_object(j, "failed", NULL);
    if (r && inner)
        json_object_set_new(r, "error",
                            json_pack("{s:O,s:O}", "code", json_object_get(inner, "type"),
                                      "message", json_object_get(inner, "message")));
    event(j, "response.failed", json_pack("{s:o}", "response", r));
    if (inner)
        event(j, "error",
              json_pack("{s:O,s:O,s:O}", "code", json_object_get(inner, "code"), "message",
                        json_object_get(inner, "message"), "param",
                        json_object_get(inner, "param")));
    json_decref(e);
}

const server_fmt server_fmt_responses_sse = {
    .name = "responses-sse",
    .begin = sse_begin,
    .text = sse_text,
    .choice_end = sse_end,
    .done = nothing,
    .fail = sse_fail,
    .reasoning = sse_reasoning,
};

/* ---- one JSON body ---- */

static void json_text(server_job *j, size_t choice, const char *text, size_t len) {
    lp_collect(j);
    server_job_acc_append(j, text, len);
}

static void json_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    server_compat_req *x = state(j);
    buf_append(&x->think, &x->think_len, &x->think_cap, text, len);
}

static void json_end(server_job *j, size_t choice, const char *finish) {
    server_compat_req *x = state(j);
    server_compat_id("resp_", x->resp_id, sizeof x->resp_id);
    char id[40];
    if (x->think_len) {
        server_compat_id("rs_", id, sizeof id);
        output_add(j, reasoning_item(id, x->think, x->think_len));
    }
    server_toolcalls c = {0};
    bool calls = j->req.tools.tools && parse_calls(j, &c);
    const char *text = calls ? c.content : j->acc;
    size_t len = calls ? (c.content ? c.content_len : 0) : j->acc_len;
    if (len || !calls) {
        server_compat_id("msg_", id, sizeof id);
        output_add(j, message_item(id, calls ? "completed" : item_status(finish), text ? text : "",
                                   len, lp_take(&state(j)->lp_item)));
    }
    for (size_t k = 0; calls && k < calls_kept(j, &c); k++)
        output_add(j, call_item(&c.calls[k], "completed", false));
    server_toolcalls_free(&c);
    j->acc_len = 0;
    json_t *r = response_object(j, calls ? "completed" : final_status(finish), finish);
    char *s = r ? json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(r);
    if (s) server_job_write(j, s, strlen(s));
    free(s);
}

static void json_fail(server_job *j, const shimmy_error *err) {
    char *s = server_error_json(err, NULL);
    if (s) server_job_write(j, s, strlen(s));
    free(s);
}

const server_fmt server_fmt_responses_json = {
    .name = "responses-json",
    .begin = nothing,
    .text = json_text,
    .choice_end = json_end,
    .done = nothing,
    .fail = json_fail,
    .reasoning = json_reasoning,
};

/* ---- handlers ---- */

int server_handle_responses(server_call *c) {
    shimmy_error err;
    shimmy_error_clear(&err);
    server_compat_req *x = calloc(1, sizeof *x);
    if (!x) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        return server_reply_error(c, &err);
    }
    server_request req;
    shimmy_status st =
        server_responses_parse(c->body, c->body_len, c->srv->cfg.max_tokens_cap, &req, x, &err);
    if (st) {
        server_compat_req_free(x);
        return server_reply_error(c, &err);
    }
    const server_fmt *fmt = req.stream ? &server_fmt_responses_sse : &server_fmt_responses_json;
    return server_run_parsed(c, &req, fmt, x, server_compat_req_free, NULL);
}

int server_handle_response_get(server_call *c) {
    shimmy_error err;
    shimmy_error_set(&err, SHIMMY_ERR_NOT_FOUND, NULL,
                     "response '%.200s' is not stored: this server's Responses API is stateless "
                     "and keeps no responses",
                     c->param);
    return server_reply_error(c, &err);
}
