/* compat: the Anthropic and Responses formatters driven directly (no model): event sequences,
 * stop sequences and tool calls with the generated text cut at every byte offset, thinking
 * blocks / reasoning items, and the non-streaming bodies. */
#include "compat.h"
#include "test.h"

static server_job *job_new(const server_fmt *fmt, server_compat_req *x, bool tools) {
    server_job *j = calloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->fmt = fmt;
    j->ext = x;
    j->ext_free = server_compat_req_free;
    snprintf(j->req.model, sizeof j->req.model, "m");
    j->req.tools.parallel = true;
    if (tools) {
        j->req.tools.tools = json_array();
        j->tool_format = SERVER_TOOLS_HERMES;
    }
    return j;
}

static void job_free(server_job *j) {
    free(j->out);
    free(j->acc);
    j->ext_free(j->ext);
    json_decref(j->req.tools.tools);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static char *out_of(server_job *j) {
    char *s = malloc(j->out_len - j->out_off + 1);
    memcpy(s, j->out + j->out_off, j->out_len - j->out_off);
    s[j->out_len - j->out_off] = '\0';
    return s;
}

/* The SSE frames of an output: names (one string, space-separated) and data objects. */
static json_t *frames(const char *sse, char *names, size_t cap) {
    json_t *arr = json_array();
    names[0] = '\0';
    const char *p = sse;
    while ((p = strstr(p, "event: "))) {
        const char *nl = strchr(p, '\n');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(nl - p - 7), p + 7);
        if (names[0]) strncat(names, " ", cap - strlen(names) - 1);
        strncat(names, name, cap - strlen(names) - 1);
        const char *d = nl + 1 + 6, *end = strstr(d, "\n\n");
        json_t *v = json_loadb(d, (size_t)(end - d), 0, NULL);
        CHECK_MSG(v && strcmp(json_string_value(json_object_get(v, "type")), name) == 0,
                  "data.type is the event name %s", name);
        json_array_append_new(arr, v ? v : json_null());
        p = end;
    }
    return arr;
}

/* Feeds text in two pieces cut at `cut` (0: byte by byte) and ends the choice. */
static server_job *run(const server_fmt *fmt, const char *think, const char *text, size_t cut,
                       char **stops, size_t n_stop, bool tools, const char *finish) {
    server_compat_req *x = calloc(1, sizeof *x);
    for (size_t i = 0; i < n_stop; i++) x->stop[x->n_stop++] = strdup(stops[i]);
    server_job *j = job_new(fmt, x, tools);
    j->fmt->begin(j);
    if (think) j->fmt->reasoning(j, 0, think, strlen(think));
    size_t n = strlen(text);
    if (cut) {
        j->fmt->text(j, 0, text, cut);
        if (!j->stop_now) j->fmt->text(j, 0, text + cut, n - cut);
    } else {
        for (size_t i = 0; i < n && !j->stop_now; i++) j->fmt->text(j, 0, text + i, 1);
    }
    j->usage_completion = 5;
    j->fmt->choice_end(j, 0, j->stop_now ? "stop" : finish);
    j->fmt->done(j);
    return j;
}

static void test_anthropic_stop_every_cut(void) {
    const char *text = "Hello world. STOP here";
    char *stops[] = {"STOP", "never"};
    for (size_t cut = 0; cut < strlen(text); cut++) {
        server_job *j = run(&server_fmt_anthropic_sse, NULL, text, cut, stops, 2, false, "length");
        char *out = out_of(j), names[2048];
        json_t *ev = frames(out, names, sizeof names);
        CHECK_MSG(
            strncmp(names, "message_start content_block_start ping content_block_delta", 58) == 0,
            "cut %zu: %s", cut, names);
        static const char tail[] = "content_block_stop message_delta message_stop";
        size_t n = strlen(names), nt = strlen(tail);
        CHECK_MSG(n > nt && strcmp(names + n - nt, tail) == 0, "cut %zu: %s", cut, names);
        char got[64] = "";
        size_t i;
        json_t *e;
        json_array_foreach(ev, i, e) {
            json_t *d = json_object_get(e, "delta");
            if (json_string_value(json_object_get(d, "text")))
                strncat(got, json_string_value(json_object_get(d, "text")), 63 - strlen(got));
        }
        CHECK_MSG(strcmp(got, "Hello world. ") == 0, "cut %zu: '%s'", cut, got);
        json_t *md = json_array_get(ev, json_array_size(ev) - 2);
        CHECK_STR(json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
                  "stop_sequence");
        CHECK_STR(json_string_value(json_object_get(json_object_get(md, "delta"), "stop_sequence")),
                  "STOP");
        json_decref(ev);
        free(out);
        job_free(j);
    }
    /* a held prefix of a sequence that never completes is text after all */
    server_job *j = run(&server_fmt_anthropic_json, NULL, "abc ST", 0, stops, 2, false, "length");
    char *out = out_of(j);
    json_t *m = json_loads(out, 0, NULL);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(m, "content"), 0), "text")),
              "abc ST");
    CHECK_STR(json_string_value(json_object_get(m, "stop_reason")), "max_tokens");
    CHECK(json_is_null(json_object_get(m, "stop_sequence")));
    json_decref(m);
    free(out);
    job_free(j);
}

static void test_anthropic_tool_every_cut(void) {
    const char *text =
        "Sure.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>";
    for (size_t cut = 0; cut < strlen(text); cut++) {
        server_job *j = run(&server_fmt_anthropic_sse, "hm", text, cut, NULL, 0, true, "stop");
        char *out = out_of(j), names[4096];
        json_t *ev = frames(out, names, sizeof names);
        char kinds[128] = "", text_got[64] = "", args[64] = "";
        size_t i;
        json_t *e;
        json_array_foreach(ev, i, e) {
            json_t *b = json_object_get(e, "content_block"), *d = json_object_get(e, "delta");
            if (b) {
                strncat(kinds, json_string_value(json_object_get(b, "type")), 100 - strlen(kinds));
                strcat(kinds, " ");
            }
            if (json_string_value(json_object_get(d, "text")))
                strncat(text_got, json_string_value(json_object_get(d, "text")),
                        63 - strlen(text_got));
            if (json_string_value(json_object_get(d, "partial_json")))
                strncat(args, json_string_value(json_object_get(d, "partial_json")),
                        63 - strlen(args));
        }
        CHECK_MSG(strcmp(kinds, "thinking text tool_use ") == 0, "cut %zu: %s", cut, kinds);
        /* the newline before the marker goes out when it came in before the marker did */
        size_t tl = strlen(text_got);
        if (tl && text_got[tl - 1] == '\n') text_got[tl - 1] = '\0';
        CHECK_MSG(strcmp(text_got, "Sure.") == 0, "cut %zu: '%s'", cut, text_got);
        CHECK_MSG(strcmp(args, "{\"a\":1}") == 0, "cut %zu: '%s'", cut, args);
        json_t *md = json_array_get(ev, json_array_size(ev) - 2);
        CHECK_STR(json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
                  "tool_use");
        json_decref(ev);
        free(out);
        job_free(j);
    }
    server_job *j = run(&server_fmt_anthropic_json, "hm", text, 0, NULL, 0, true, "stop");
    char *out = out_of(j);
    json_t *m = json_loads(out, 0, NULL), *c = json_object_get(m, "content");
    CHECK_EQ_INT(json_array_size(c), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0), "thinking")), "hm");
    CHECK_STR(json_string_value(json_object_get(json_array_get(c, 1), "text")), "Sure.");
    json_t *tu = json_array_get(c, 2);
    CHECK_STR(json_string_value(json_object_get(tu, "name")), "f");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(tu, "input"), "a")), 1);
    CHECK(strncmp(json_string_value(json_object_get(tu, "id")), "toolu_", 6) == 0);
    CHECK_STR(json_string_value(json_object_get(m, "stop_reason")), "tool_use");
    json_decref(m);
    free(out);
    job_free(j);
}

static void test_responses_stream(void) {
    const char *text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
    for (size_t cut = 0; cut < strlen(text); cut += 7) {
        server_job *j = run(&server_fmt_responses_sse, "hm", text, cut, NULL, 0, true, "length");
        char *out = out_of(j), names[4096];
        json_t *ev = frames(out, names, sizeof names);
        CHECK_MSG(strcmp(names, "response.created response.in_progress response.output_item.added "
                                "response.reasoning_text.delta response.reasoning_text.done "
                                "response.output_item.done response.output_item.added "
                                "response.function_call_arguments.delta "
                                "response.function_call_arguments.done "
                                "response.output_item.done response.completed") == 0,
                  "cut %zu: %s", cut, names);
        size_t i;
        json_t *e;
        json_array_foreach(ev, i, e) {
            CHECK_EQ_INT(json_integer_value(json_object_get(e, "sequence_number")), i);
        }
        json_t *r = json_object_get(json_array_get(ev, json_array_size(ev) - 1), "response");
        json_t *items = json_object_get(r, "output");
        CHECK_EQ_INT(json_array_size(items), 2);
        CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "type")),
                  "reasoning");
        CHECK_STR(json_string_value(json_object_get(json_array_get(items, 1), "arguments")), "{}");
        json_decref(ev);
        free(out);
        job_free(j);
    }
    /* text cut by the limit: incomplete, and the message item says so */
    server_job *j = run(&server_fmt_responses_json, NULL, "Once upon", 3, NULL, 0, false, "length");
    char *out = out_of(j);
    json_t *r = json_loads(out, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(r, "status")), "incomplete");
    json_t *msg = json_array_get(json_object_get(r, "output"), 0);
    CHECK_STR(json_string_value(json_object_get(msg, "status")), "incomplete");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(msg, "content"), 0), "text")),
              "Once upon");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r, "usage"), "output_tokens")),
                 5);
    json_decref(r);
    free(out);
    job_free(j);
}

int main(void) {
    test_anthropic_stop_every_cut();
    test_anthropic_tool_every_cut();
    test_responses_stream();
    return test_finish("test_compat_fmt");
}
