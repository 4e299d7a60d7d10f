/* Ollama's reply shapes: NDJSON chunks and JSON bodies of /api/chat and /api/generate, with
 * its timing fields (nanoseconds) and tool_calls; and Ollama's error body. */
#include "ollama.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ollama_time(double epoch_s, char out[40]) {
    time_t secs = (time_t)floor(epoch_s);
    long ns = (long)((epoch_s - (double)secs) * 1e9);
    if (ns < 0) ns = 0;
    if (ns > 999999999L) ns = 999999999L;
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%09ldZ", ns % 1000000000L);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *ollama_error_json(const shimmy_error *err, int *http) {
    if (http) *http = shimmy_status_http(err->status);
    json_t *v = json_pack("{s:s}", "error",
                          err->message[0] ? err->message : shimmy_status_message(err->status));
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return s;
}

int ollama_reply_error(server_call *c, const shimmy_error *err) {
    int http;
    char *s = ollama_error_json(err, &http);
    int ok = server_reply(c, http, "application/json", s ? s : "", s ? strlen(s) : 0);
    free(s);
    return ok;
}

ollama_job *ollama_job_new(ollama_opts *o) {
    ollama_job *oj = calloc(1, sizeof *oj);
    if (!oj) {
        ollama_opts_deinit(o);
        return NULL;
    }
    oj->o = *o;
    memset(o, 0, sizeof *o);
    oj->t0_wall = wall_now();
    oj->t0_ms = server_clock_ms();
    return oj;
}

void ollama_job_free(void *ext) {
    ollama_job *oj = ext;
    if (!oj) return;
    ollama_opts_deinit(&oj->o);
    free(oj);
}

/* ---- pieces ---- */

static json_t *text_value(const char *text, size_t len) {
    json_t *v = json_stringn(text, len);
    return v ? v : json_string("");
}

/* {"model", "created_at"} of every chunk. */
static json_t *head(const server_job *j) {
    const ollama_job *oj = j->ext;
    char ts[40];
    ollama_time(wall_now(), ts);
    return json_pack("{s:s,s:s}", "model", oj->model[0] ? oj->model : j->req.model, "created_at",
                     ts);
}

static void write_line(server_job *j, json_t *v, bool newline) {
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s) return;
    server_job_write(j, s, strlen(s));
    if (newline) server_job_write(j, "\n", 1);
    free(s);
}

static json_t *message(const char *content, size_t len) {
    return json_pack("{s:s,s:o}", "role", "assistant", "content", text_value(content, len));
}

/* The counters and durations of the final chunk: Ollama's fields, nanoseconds. */
static void add_stats(const server_job *j, json_t *v, const char *finish) {
    const ollama_job *oj = j->ext;
    double now = server_clock_ms();
    double ttft = j->ttft_ms > 0 ? j->ttft_ms : 0;
    double eval = oj->begin_ms > 0 ? now - oj->begin_ms - ttft : 0;
    if (eval < 0) eval = 0;
    /* "length" when max tokens ran out; every other end (stop string, end of turn) is "stop". */
    json_object_set_new(v, "done", json_true());
    json_object_set_new(v, "done_reason",
                        json_string(finish && strcmp(finish, "length") == 0 ? "length" : "stop"));
    json_object_set_new(v, "total_duration", json_integer((json_int_t)((now - oj->t0_ms) * 1e6)));
    double load_ms = 0;
    if (!oj->was_loaded) { /* this request loaded the model */
        shimmy_load_status ls;
        shimmy_catalog_status(j->srv->cat, j->base, &ls);
        load_ms = ls.load_ms;
    }
    json_object_set_new(v, "load_duration", json_integer((json_int_t)(load_ms * 1e6)));
    json_object_set_new(v, "prompt_eval_count", json_integer((json_int_t)j->usage_prompt));
    json_object_set_new(v, "prompt_eval_duration", json_integer((json_int_t)(ttft * 1e6)));
    json_object_set_new(v, "eval_count", json_integer((json_int_t)j->usage_completion));
    json_object_set_new(v, "eval_duration", json_integer((json_int_t)(eval * 1e6)));
}

/* Ollama's calls: [{"function": {"name", "arguments": {...}}}] (arguments an object). */
static json_t *calls_json(const server_job *j, const server_toolcalls *c) {
    json_t *arr = json_array();
    size_t n = j->req.tools.parallel || c->n < 1 ? c->n : 1;
    for (size_t k = 0; k < n; k++) {
        json_t *args = json_loads(c->calls[k].arguments, 0, NULL);
        json_array_append_new(arr, json_pack("{s:{s:s,s:o}}", "function", "name", c->calls[k].name,
                                             "arguments", args ? args : json_object()));
    }
    return arr;
}

static bool parse_calls(server_job *j, server_toolcalls *c) {
    shimmy_error e;
    if (server_toolcall_parse(j->tool_format, j->acc ? j->acc : "", j->acc_len, c, &e))
        return false;
    return c->n > 0;
}

/* ---- callbacks ---- */

static void begin(server_job *j) {
    ollama_job *oj = j->ext;
    oj->begin_ms = server_clock_ms();
}

/* keep_alive: the model stays loaded that long after this reply (0: it goes now; the slot lets
 * go of its session when it sees the model unloaded). */
static void done(server_job *j) {
    const ollama_job *oj = j->ext;
    if (oj->o.has_keep_alive) server_keepalive_set(j->srv, j->base, j->model, oj->o.keep_alive_s);
}

static void stream_fail(server_job *j, const shimmy_error *err) {
    char *s = ollama_error_json(err, NULL);
    if (s) {
        server_job_write(j, s, strlen(s));
        server_job_write(j, "\n", 1);
    }
    free(s);
}

static void json_fail(server_job *j, const shimmy_error *err) {
    char *s = ollama_error_json(err, NULL);
    if (s) server_job_write(j, s, strlen(s));
    free(s);
}

static void chat_chunk(server_job *j, json_t *msg) {
    json_t *v = head(j);
    if (v) {
        json_object_set_new(v, "message", msg);
        json_object_set_new(v, "done", json_false());
    } else {
        json_decref(msg);
    }
    write_line(j, v, true);
}

/* Thinking (think true) goes out as Ollama's "thinking"; with think false it is dropped. */
static bool keeps_thinking(const server_job *j) {
    const ollama_job *oj = j->ext;
    return oj->o.think == 1;
}

static void chat_stream_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    if (!len || !keeps_thinking(j)) return;
    json_t *m = message("", 0);
    if (m) json_object_set_new(m, "thinking", text_value(text, len));
    chat_chunk(j, m);
}

static void acc_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    if (keeps_thinking(j)) server_job_think_append(j, text, len);
}

/* The thinking of a finished body, once. */
static void take_thinking(server_job *j, json_t *into) {
    if (into && j->think_len)
        json_object_set_new(into, "thinking", text_value(j->think_acc, j->think_len));
    j->think_len = 0;
}

static void message_out(server_job *j, const char *text, size_t len) {
    chat_chunk(j, message(text, len));
}

static void chat_stream_text(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    if (!len) return;
    server_job_stream_answer(j, text, len, message_out);
}

static void chat_stream_end(server_job *j, size_t choice, const char *finish) {
    (void)choice;
    server_toolcalls c = {0};
    if (j->tool_held && parse_calls(j, &c)) {
        json_t *m = message(c.content ? c.content : "", c.content ? c.content_len : 0);
        if (m) json_object_set_new(m, "tool_calls", calls_json(j, &c));
        chat_chunk(j, m);
    } else if (j->acc_len) { /* a marker that led to no call: text after all */
        chat_chunk(j, message(j->acc, j->acc_len));
    }
    server_toolcalls_free(&c);
    j->acc_len = 0;
    j->tool_held = j->tool_sent = false;
    json_t *v = head(j);
    if (!v) return;
    json_object_set_new(v, "message", message("", 0));
    add_stats(j, v, finish);
    write_line(j, v, true);
}

const server_fmt ollama_fmt_chat_stream = {.name = "ollama-chat-ndjson",
                                           .begin = begin,
                                           .text = chat_stream_text,
                                           .choice_end = chat_stream_end,
                                           .done = done,
                                           .fail = stream_fail,
                                           .reasoning = chat_stream_reasoning};

static void acc_text(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    server_job_acc_append(j, text, len);
}

static void chat_json_end(server_job *j, size_t choice, const char *finish) {
    (void)choice;
    server_toolcalls c = {0};
    json_t *m;
    if (j->req.tools.tools && parse_calls(j, &c)) {
        m = message(c.content ? c.content : "", c.content ? c.content_len : 0);
        if (m) json_object_set_new(m, "tool_calls", calls_json(j, &c));
    } else {
        m = message(j->acc ? j->acc : "", j->acc_len);
    }
    take_thinking(j, m);
    server_toolcalls_free(&c);
    j->acc_len = 0;
    json_t *v = head(j);
    if (!v) {
        json_decref(m);
        return;
    }
    json_object_set_new(v, "message", m);
    add_stats(j, v, finish);
    write_line(j, v, false);
}

const server_fmt ollama_fmt_chat_json = {.name = "ollama-chat-json",
                                         .begin = begin,
                                         .text = acc_text,
                                         .choice_end = chat_json_end,
                                         .done = done,
                                         .fail = json_fail,
                                         .reasoning = acc_reasoning};

static void gen_stream_text(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    if (!len) return;
    json_t *v = head(j);
    if (!v) return;
    json_object_set_new(v, "response", text_value(text, len));
    json_object_set_new(v, "done", json_false());
    write_line(j, v, true);
}

static void gen_stream_reasoning(server_job *j, size_t choice, const char *text, size_t len) {
    (void)choice;
    if (!len || !keeps_thinking(j)) return;
    json_t *v = head(j);
    if (!v) return;
    json_object_set_new(v, "response", json_string(""));
    json_object_set_new(v, "thinking", text_value(text, len));
    json_object_set_new(v, "done", json_false());
    write_line(j, v, true);
}

static void gen_stream_end(server_job *j, size_t choice, const char *finish) {
    (void)choice;
    json_t *v = head(j);
    if (!v) return;
    json_object_set_new(v, "response", json_string(""));
    add_stats(j, v, finish);
    write_line(j, v, true);
}

const server_fmt ollama_fmt_gen_stream = {.name = "ollama-generate-ndjson",
                                          .begin = begin,
                                          .text = gen_stream_text,
                                          .choice_end = gen_stream_end,
                                          .done = done,
                                          .fail = stream_fail,
                                          .reasoning = gen_stream_reasoning};

static void gen_json_end(server_job *j, size_t choice, const char *finish) {
    (void)choice;
    json_t *v = head(j);
    if (!v) return;
    json_object_set_new(v, "response", text_value(j->acc ? j->acc : "", j->acc_len));
    j->acc_len = 0;
    take_thinking(j, v);
    add_stats(j, v, finish);
    write_line(j, v, false);
}

const server_fmt ollama_fmt_gen_json = {.name = "ollama-generate-json",
                                        .begin = begin,
                                        .text = acc_text,
                                        .choice_end = gen_json_end,
                                        .done = done,
                                        .fail = json_fail,
                                        .reasoning = acc_reasoning};
