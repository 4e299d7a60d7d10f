/* Anthropic Messages responses: the Message object, the event stream (message_start,
 * content_block_start / ping / content_block_delta / content_block_stop, message_delta,
 * message_stop), and the /v1/messages and /v1/messages/count_tokens handlers. */
#include "compat.h"

#include <microhttpd.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

static server_compat_req *state(server_job *j) {
    return j->ext;
}

static void buf_append(char **buf, size_t *len, size_t *cap, const char *text, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) return; /* the text is lost, the reply stays well-formed */
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, text, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static json_t *text_value(const char *text, size_t len) {
    json_t *v = json_stringn(text, len);
    return v ? v : json_string("");
}

/* Stop sequences: the text that is final now goes to `answer`; what may begin a sequence waits
 * in x->pend. A match ends the generation (job->stop_now). */
static void stop_filter(server_job *j, const char *text, size_t len,
                        void (*answer)(server_job *, const char *, size_t)) {
    server_compat_req *x = state(j);
    if (x->stopped) return;
    if (!x->n_stop) {
        answer(j, text, len);
        return;
    }
    buf_append(&x->pend, &x->pend_len, &x->pend_cap, text, len);
    int which;
    size_t n = server_compat_stop_scan(x->pend, x->pend_len, x->stop, x->n_stop, &which);
    if (n) answer(j, x->pend, n);
    if (which) {
        x->stopped = which;
        x->pend_len = 0;
        j->stop_now = true;
        return;
    }
    memmove(x->pend, x->pend + n, x->pend_len - n);
    x->pend_len -= n;
}

static void stop_flush(server_job *j, void (*answer)(server_job *, const char *, size_t)) {
    server_compat_req *x = state(j);
    if (!x->stopped && x->pend_len) answer(j, x->pend, x->pend_len);
    x->pend_len = 0;
}

static json_t *usage_json(const server_job *j) {
    /* input_tokens stays the whole prompt (what count_tokens gives); the part whose K/V came
     * from the prompt cache is reported as cache reads too */
    return json_pack("{s:I,s:I,s:i,s:I}", "input_tokens", (json_int_t)j->usage_prompt,
                     "output_tokens", (json_int_t)j->usage_completion,
                     "cache_creation_input_tokens", 0, "cache_read_input_tokens",
                     (json_int_t)j->usage_cached);
}

/* A tool_use block from a parsed call: input is the object its arguments text holds. */
static json_t *tool_use_block(const server_toolcall *c, bool empty_input) {
    char id[40];
    server_compat_id("toolu_", id, sizeof id);
    json_t *input = empty_input ? json_object() : json_loads(c->arguments, 0, NULL);
    if (!input) input = json_object();
    return json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id, "name", c->name, "input",
                     input);
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

static const char *stop_reason(server_job *j, const char *finish, bool tool_use) {
    return server_anthropic_stop_reason(finish, state(j)->stopped > 0, tool_use);
}

static json_t *stop_sequence(server_job *j) {
    server_compat_req *x = state(j);
    return x->stopped ? json_string(x->stop[x->stopped - 1]) : json_null();
}

/* ---- streaming ---- */

static void event(server_job *j, const char *name, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (s) server_job_printf(j, "event: %s\ndata: %s\n\n", name, s);
    free(s);
}

static void block_stop(server_job *j) {
    server_compat_req *x = state(j);
    if (!x->open) return;
    event(j, "content_block_stop",
          json_pack("{s:s,s:i}", "type", "content_block_stop", "index", x->blocks - 1));
    x->open = 0;
}

static void block_start(server_job *j, int kind, json_t *block) {
    server_compat_req *x = state(j);
    block_stop(j);
    event(j, "content_block_start",
          json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index", x->blocks,
                    "content_block", block));
    x->blocks++;
    x->open = kind;
    if (!x->pinged) {
        event(j, "ping", json_pack("{s:s}", "type", "ping"));
        x->pinged = true;
    }
}

static void delta(server_job *j, json_t *d) {
    event(j, "content_block_delta",
          json_pack("{s:s,s:i,s:o}", "type", "content_block_delta", "index", state(j)->blocks - 1,
                    "delta", d));
}

static void sse_text_out(server_job *j, const char *text, size_t len) {
    if (!len) return;
    if (state(j)->open != 1) block_start(j, 1, json_pack("{s:s,s:s}", "type", "text", "text", ""));
    delta(j, json_pack("{s:s,s:o}", "type", "text_delta", "text", text_value(text, len)));
}

static void sse_begin(server_job *j) {
    server_compat_req *x = state(j);
    server_compat_id("msg_", x->resp_id, sizeof x->resp_id);
    json_int_t in = j->n_choices ? (json_int_t)shimmy_prompt_token_count(j->prompt[0]) : 0;
    json_t *msg =
        json_pack("{s:s,s:s,s:s,s:[],s:s,s:n,s:n,s:{s:I,s:i,s:i,s:i}}", "id", x->resp_id, "type",
                  "message", "role", "assistant", "content", "model", j->req.model, "stop_reason",
                  "stop_sequence", "usage", "input_tokens", in, "output_tokens", 0,
                  "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0);
    event(j, "message_start", json_pack("{s:s,s:o}", "type", "message_start", "message", msg));
}

/* Answer text: with tools it is held from where a call may begin (as the chat stream does). */
static void sse_answer(server_job *j, const char *text, size_t len) {
    server_job_stream_answer(j, text, len, sse_text_out);
}

static void sse_text(server_job *j, size_t choice, const char *text, size_t len) {
    stop_filter(j, text, len, sse_answer);
}

/* Thinking (the reasoning split): its own block, before the answer's. */
static void sse_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    if (!len) return;
    if (state(j)->open != 2)
        block_start(
            j, 2, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "", "signature", ""));
    delta(j, json_pack("{s:s,s:o}", "type", "thinking_delta", "thinking", text_value(text, len)));
}

static void sse_end(server_job *j, size_t choice, const char *finish) {
    server_compat_req *x = state(j);
    stop_flush(j, sse_answer);
    server_toolcalls c = {0};
    bool tool_use = false;
    if (j->tool_held && parse_calls(j, &c)) {
        sse_text_out(j, c.content, c.content ? c.content_len : 0);
        for (size_t k = 0; k < calls_kept(j, &c); k++) {
            json_t *b = tool_use_block(&c.calls[k], true);
            block_start(j, 3, b);
            delta(j, json_pack("{s:s,s:s}", "type", "input_json_delta", "partial_json",
                               c.calls[k].arguments));
        }
        tool_use = true;
    } else {
        sse_text_out(j, j->acc, j->acc_len);
    }
    server_toolcalls_free(&c);
    j->acc_len = 0;
    block_stop(j);
    if (!x->pinged) event(j, "ping", json_pack("{s:s}", "type", "ping"));
    x->pinged = true;
    json_t *d = json_pack("{s:s,s:o}", "stop_reason", stop_reason(j, finish, tool_use),
                          "stop_sequence", stop_sequence(j));
    event(j, "message_delta",
          json_pack("{s:s,s:o,s:{s:I}}", "type", "message_delta", "delta", d, "usage",
                    "output_tokens", (json_int_t)j->usage_completion));
    event(j, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

static void nothing(server_job *j) {
    (void)j;
}

static void sse_fail(server_job *j, const shimmy_error *err) {
    event(j, "error", server_anthropic_error_object(err));
}

const server_fmt server_fmt_anthropic_sse = {
    .name = "anthropic-sse",
    .begin = sse_begin,
    .text = sse_text,
    .choice_end = sse_end,
    .done = nothing,
    .fail = sse_fail,
    .reasoning = sse_reasoning,
};

/* ---- one JSON body ---- */

static void json_answer(server_job *j, const char *text, size_t len) {
    server_job_acc_append(j, text, len);
}

static void json_text(server_job *j, size_t choice, const char *text, size_t len) {
    stop_filter(j, text, len, json_answer);
}

static void json_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    server_compat_req *x = state(j);
    buf_append(&x->think, &x->think_len, &x->think_cap, text, len);
}

static void json_end(server_job *j, size_t choice, const char *finish) {
    server_compat_req *x = state(j);
    stop_flush(j, json_answer);
    json_t *content = json_array();
    if (x->think_len)
        json_array_append_new(content,
                              json_pack("{s:s,s:o,s:s}", "type", "thinking", "thinking",
                                        text_value(x->think, x->think_len), "signature", ""));
    server_toolcalls c = {0};
    bool tool_use = j->req.tools.tools && parse_calls(j, &c);
    const char *text = tool_use ? c.content : j->acc;
    size_t len = tool_use ? (c.content ? c.content_len : 0) : j->acc_len;
    if (len || (!tool_use && json_array_size(content) == 0))
        json_array_append_new(content, json_pack("{s:s,s:o}", "type", "text", "text",
                                                 text_value(text ? text : "", len)));
    for (size_t k = 0; tool_use && k < calls_kept(j, &c); k++)
        json_array_append_new(content, tool_use_block(&c.calls[k], false));
    server_toolcalls_free(&c);
    j->acc_len = 0;
    server_compat_id("msg_", x->resp_id, sizeof x->resp_id);
    x->output = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:o,s:o}", "id", x->resp_id, "type", "message",
                          "role", "assistant", "content", content, "model", j->req.model,
                          "stop_reason", stop_reason(j, finish, tool_use), "stop_sequence",
                          stop_sequence(j), "usage", usage_json(j));
}

static void write_json(server_job *j, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (s) server_job_write(j, s, strlen(s));
    free(s);
}

static void json_done(server_job *j) {
    write_json(j, json_incref(state(j)->output));
}

static void json_fail(server_job *j, const shimmy_error *err) {
    write_json(j, server_anthropic_error_object(err));
}

const server_fmt server_fmt_anthropic_json = {
    .name = "anthropic-json",
    .begin = nothing,
    .text = json_text,
    .choice_end = json_end,
    .done = json_done,
    .fail = json_fail,
    .reasoning = json_reasoning,
};

/* ---- handlers ---- */

static void anthropic_model(json_t *m) {
    /* Anthropic's ModelInfo beside OpenAI's fields: type, display_name, created_at (RFC 3339). */
    time_t t = (time_t)json_integer_value(json_object_get(m, "created"));
    struct tm tm;
    char when[32] = "1970-01-01T00:00:00Z";
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(m, "type", json_string("model"));
    json_object_set(m, "display_name", json_object_get(m, "id"));
    json_object_set_new(m, "created_at", json_string(when));
}

json_t *server_anthropic_models_shape(server_call *c, json_t *v) {
    if (!v || !MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "anthropic-version")) return v;
    json_t *data = json_object_get(v, "data");
    if (!json_is_array(data)) {
        anthropic_model(v);
        return v;
    }
    size_t i, n = json_array_size(data);
    json_t *m;
    json_array_foreach(data, i, m) anthropic_model(m);
    json_object_set_new(v, "has_more", json_false());
    json_object_set(v, "first_id",
                    n ? json_object_get(json_array_get(data, 0), "id") : json_null());
    json_object_set(v, "last_id",
                    n ? json_object_get(json_array_get(data, n - 1), "id") : json_null());
    return v;
}

int server_anthropic_reply_error(server_call *c, const shimmy_error *err) {
    json_t *v = server_anthropic_error_object(err);
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    int ok = server_reply(c, shimmy_status_http(err->status), "application/json", s ? s : "",
                          s ? strlen(s) : 0);
    free(s);
    return ok;
}

static int parse_or_reply(server_call *c, bool count_only, server_request *req,
                          server_compat_req **x) {
    shimmy_error err;
    shimmy_error_clear(&err);
    *x = calloc(1, sizeof **x);
    if (!*x) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        return server_anthropic_reply_error(c, &err);
    }
    shimmy_status st = server_anthropic_parse(c->body, c->body_len, c->srv->cfg.max_tokens_cap,
                                              count_only, req, *x, &err);
    if (!st) return -1;
    server_compat_req_free(*x);
    *x = NULL;
    return server_anthropic_reply_error(c, &err);
}

int server_handle_messages(server_call *c) {
    server_request req;
    server_compat_req *x;
    int r = parse_or_reply(c, false, &req, &x);
    if (r >= 0) return r;
    const server_fmt *fmt = req.stream ? &server_fmt_anthropic_sse : &server_fmt_anthropic_json;
    return server_run_parsed(c, &req, fmt, x, server_compat_req_free, server_anthropic_reply_error);
}

int server_handle_count_tokens(server_call *c) {
    server_request req;
    server_compat_req *x;
    int r = parse_or_reply(c, true, &req, &x);
    if (r >= 0) return r;
    server_call_hold(c->srv, c->conn, true); /* a model may load first */
    server_job *j = server_job_new(c->srv, &req, &server_fmt_anthropic_json, c->route);
    shimmy_error err;
    shimmy_error_clear(&err);
    if (!j) {
        server_compat_req_free(x);
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        return server_anthropic_reply_error(c, &err);
    }
    j->ext = x;
    j->ext_free = server_compat_req_free;
    shimmy_status st = server_job_prepare(c->srv, j, &err);
    /* A client counts to learn whether a prompt fits: over the context, the count is the answer. */
    if (st == SHIMMY_ERR_CONTEXT_EXCEEDED && j->n_choices) st = SHIMMY_OK;
    json_int_t n = st ? 0 : (json_int_t)shimmy_prompt_token_count(j->prompt[0]);
    server_job_release(j);
    if (st) return server_anthropic_reply_error(c, &err);
    return server_reply_json(c, 200, json_pack("{s:I}", "input_tokens", n));
}
