/* server/toolcall: the parser of generated tool calls for each template format (answers in the
 * exact shape the templates' system prompts ask for, and the templates' own rendering of a call
 * parsed back), malformed calls as content, several calls, text around calls, UTF-8, the
 * stream's hold-back scan, call ids, and the request checks of tools / tool_choice / messages. */
#include "server.h"
#include "test.h"

static server_toolcalls parse(server_tool_format f, const char *text) {
    server_toolcalls c;
    shimmy_error err;
    CHECK_EQ_INT(server_toolcall_parse(f, text, strlen(text), &c, &err), SHIMMY_OK);
    return c;
}

/* Expects exactly one call name(args) and the given content (NULL: none). */
static void expect_one(server_tool_format f, const char *text, const char *name, const char *args,
                       const char *content) {
    server_toolcalls c = parse(f, text);
    CHECK_MSG(c.n == 1, "%zu calls in [%s]", c.n, text);
    if (c.n == 1) {
        CHECK_STR(c.calls[0].name, name);
        CHECK_STR(c.calls[0].arguments, args);
    }
    if (content)
        CHECK_STR(c.content, content);
    else
        CHECK_MSG(c.content == NULL, "content [%s]", c.content);
    server_toolcalls_free(&c);
}

static void expect_none(server_tool_format f, const char *text) {
    server_toolcalls c = parse(f, text);
    CHECK_MSG(c.n == 0 && !c.calls && !c.content, "[%s] gave %zu calls", text, c.n);
    server_toolcalls_free(&c);
}

static void test_hermes(void) {
    const server_tool_format H = SERVER_TOOLS_HERMES;
    /* Qwen2.5's system prompt: <tool_call>\n{"name": <function-name>, "arguments": <args>}\n
     * </tool_call> */
    expect_one(H,
               "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", "
               "\"days\": 3}}\n</tool_call>",
               "get_weather", "{\"city\":\"Paris\",\"days\":3}", NULL);
    /* text around the call is content, trimmed */
    expect_one(H,
               "Let me check.\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n"
               "</tool_call>\nDone.",
               "get_time", "{}", "Let me check.\n\nDone.");
    /* the closing tag may be cut off when nothing follows; arguments as a JSON string */
    expect_one(H, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": [1, 2]}\"}", "f",
               "{\"x\":[1,2]}", NULL);
    /* UTF-8 kept as written, not escaped */
    expect_one(H,
               "<tool_call>\n{\"name\": \"translate\", \"arguments\": {\"text\": \"Zürich "
               "東京 🚀\"}}\n</tool_call>",
               "translate", "{\"text\":\"Zürich 東京 🚀\"}", NULL);
    /* several calls, in order */
    server_toolcalls c = parse(H, "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"i\": 1}}\n"
                                  "</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": "
                                  "{\"i\": 2}}\n</tool_call>");
    CHECK_EQ_INT(c.n, 2);
    if (c.n == 2) {
        CHECK_STR(c.calls[0].name, "a");
        CHECK_STR(c.calls[1].arguments, "{\"i\":2}");
    }
    CHECK(c.content == NULL);
    server_toolcalls_free(&c);
    /* malformed: plain content */
    expect_none(H, "no calls here");
    expect_none(H, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}\n</tool_call>");
    expect_none(H, "<tool_call>\n{\"arguments\": {}}\n</tool_call>");
    expect_none(H, "<tool_call>\n{\"name\": \"bad name!\", \"arguments\": {}}\n</tool_call>");
    expect_none(H, "<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>");
    expect_none(H, "<tool_call>\n{\"name\": \"f\"} trailing\n</tool_call>");
    expect_none(H, "<tool_call><tool_call><tool_call>");
    /* one good call and one broken: the whole answer is content (never half a list) */
    expect_none(H, "<tool_call>{\"name\": \"a\"}</tool_call><tool_call>{\"name\": </tool_call>");
}

static void test_llama3(void) {
    const server_tool_format L = SERVER_TOOLS_LLAMA3;
    /* Llama 3.1/3.2: {"name": function name, "parameters": dictionary of argument name and
     * its value} */
    expect_one(L, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
               "get_weather", "{\"city\":\"Paris\"}", NULL);
    expect_one(L, "  <|python_tag|>{\"name\": \"f\", \"arguments\": {\"q\": \"é\"}}\n", "f",
               "{\"q\":\"é\"}", NULL);
    server_toolcalls c = parse(L, "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", "
                                  "\"parameters\": {\"k\": null}}");
    CHECK_EQ_INT(c.n, 2);
    if (c.n == 2) CHECK_STR(c.calls[1].arguments, "{\"k\":null}");
    server_toolcalls_free(&c);
    /* prose, prose before JSON, JSON that is not a call, JSON with text after it */
    expect_none(L, "The weather in Paris is sunny.");
    expect_none(L, "Sure: {\"name\": \"f\", \"parameters\": {}}");
    expect_none(L, "{\"city\": \"Paris\"}");
    expect_none(L, "{\"name\": \"f\", \"parameters\": {}} and more");
    expect_none(L, "{\"name\": \"f\", \"parameters\": {\"x\": ");
}

static void test_mistral(void) {
    const server_tool_format M = SERVER_TOOLS_MISTRAL;
    expect_one(M,
               "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, "
               "\"id\": \"abcDEF123\"}]",
               "get_weather", "{\"city\":\"Paris\"}", NULL);
    expect_one(M, "Checking. [TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}]", "f", "{}",
               "Checking.");
    server_toolcalls c = parse(M, "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}, {\"name\": "
                                  "\"b\", \"arguments\": {\"n\": 1.5}}]");
    CHECK_EQ_INT(c.n, 2);
    if (c.n == 2) CHECK_STR(c.calls[1].arguments, "{\"n\":1.5}");
    server_toolcalls_free(&c);
    expect_none(M, "[TOOL_CALLS][]");
    expect_none(M, "[TOOL_CALLS]{\"name\": \"f\", \"arguments\": {}}");
    expect_none(M, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}");
    expect_none(M, "[{\"name\": \"f\", \"arguments\": {}}]"); /* no marker */
}

static void test_generic(void) {
    const server_tool_format G = SERVER_TOOLS_GENERIC;
    expect_one(G, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>", "a", "{}", NULL);
    expect_one(G, "[TOOL_CALLS][{\"name\": \"b\", \"arguments\": {}}]", "b", "{}", NULL);
    expect_one(G, "{\"name\": \"c\", \"parameters\": {}}", "c", "{}", NULL);
    /* OpenAI's own shape, as some fine-tunes answer */
    expect_one(G, "{\"type\": \"function\", \"function\": {\"name\": \"d\", \"arguments\": {}}}",
               "d", "{}", NULL);
    expect_none(G, "plain text");
    expect_none(G, "");
}

static void test_format_detection(void) {
    static const struct {
        const char *file;
        server_tool_format want;
    } rows[] = {
        {"Qwen-Qwen2.5-7B-Instruct.jinja", SERVER_TOOLS_HERMES},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", SERVER_TOOLS_HERMES},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", SERVER_TOOLS_HERMES},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", SERVER_TOOLS_LLAMA3},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", SERVER_TOOLS_LLAMA3},
        {"meta-llama-Llama-3.3-70B-Instruct.jinja", SERVER_TOOLS_LLAMA3},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", SERVER_TOOLS_MISTRAL},
        {"google-gemma-2-2b-it.jinja", SERVER_TOOLS_GENERIC},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char rel[160], buf[512];
        snprintf(rel, sizeof rel, "templates/%s", rows[i].file);
        char *src = test_read_file(test_require_data(rel, buf, sizeof buf), NULL);
        CHECK(src != NULL);
        shimmy_template *t = NULL;
        shimmy_error err;
        CHECK_EQ_INT(shimmy_template_new(src, &t, &err), SHIMMY_OK);
        server_tool_format f = server_toolcall_format(src, t ? shimmy_template_family(t) : NULL);
        CHECK_MSG(f == rows[i].want, "%s: %s", rows[i].file, server_toolcall_format_name(f));
        shimmy_template_free(t);
        free(src);
    }
    /* without a source, the family decides */
    CHECK_EQ_INT(server_toolcall_format(NULL, "chatml"), SERVER_TOOLS_HERMES);
    CHECK_EQ_INT(server_toolcall_format(NULL, "llama3"), SERVER_TOOLS_LLAMA3);
    CHECK_EQ_INT(server_toolcall_format(NULL, "mistral"), SERVER_TOOLS_MISTRAL);
    CHECK_EQ_INT(server_toolcall_format(NULL, "gemma"), SERVER_TOOLS_GENERIC);
    CHECK_EQ_INT(server_toolcall_format("{{ messages }}", NULL), SERVER_TOOLS_GENERIC);
}

/* The template's own rendering of an assistant call (what the model learnt to write) parses
 * back to the same call. The history goes through server_tools_message as the server sends it:
 * arguments as a JSON string become an object. */
static void test_round_trip(void) {
    static const char *const files[] = {
        "Qwen-Qwen2.5-7B-Instruct.jinja",
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "meta-llama-Llama-3.2-3B-Instruct.jinja",
        "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    };
    const char *user = "{\"role\":\"user\",\"content\":\"Weather in Zürich?\"}";
    const char *assistant =
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"abcDEF123\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
        "\"{\\\"city\\\": \\\"Zürich\\\", \\\"days\\\": 3}\"}}]}";
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[160], buf[512];
        snprintf(rel, sizeof rel, "templates/%s", files[i]);
        char *src = test_read_file(test_require_data(rel, buf, sizeof buf), NULL);
        shimmy_template *t = NULL;
        shimmy_error err;
        CHECK_EQ_INT(shimmy_template_new(src, &t, &err), SHIMMY_OK);
        json_t *msg = json_loads(assistant, 0, NULL);
        json_object_set_new(msg, "content", json_string(""));
        CHECK_EQ_INT(server_tools_message(msg, 1, &err), SHIMMY_OK);
        char *a = json_dumps(msg, JSON_COMPACT), one[256], two[1024];
        snprintf(one, sizeof one, "[%s]", user);
        snprintf(two, sizeof two, "[%s,%s]", user, a);
        shimmy_render_options o = {.messages_json = one, .bos = "<s>", .eos = "</s>"};
        shimmy_rendered p = {0}, full = {0};
        CHECK_EQ_INT(shimmy_template_render(t, &o, &p, &err), SHIMMY_OK);
        o.messages_json = two;
        o.no_generation_prompt = true;
        shimmy_status st = shimmy_template_render(t, &o, &full, &err);
        CHECK_MSG(st == SHIMMY_OK, "%s: %s", files[i], err.message);
        /* the answer: after the prompt that opened the turn, up to the end of turn */
        bool prefix = st == SHIMMY_OK && full.len > p.len && memcmp(full.text, p.text, p.len) == 0;
        CHECK_MSG(prefix, "%s: the history does not extend the prompt", files[i]);
        if (prefix) {
            const char *ans = full.text + p.len, *eot = shimmy_template_end_of_turn(t);
            size_t n = full.len - p.len;
            const char *cut = eot ? strstr(ans, eot) : NULL;
            if (!cut) cut = strstr(ans, "</s>");
            if (cut) n = (size_t)(cut - ans);
            server_tool_format f = server_toolcall_format(src, shimmy_template_family(t));
            server_toolcalls c;
            CHECK_EQ_INT(server_toolcall_parse(f, ans, n, &c, &err), SHIMMY_OK);
            CHECK_MSG(c.n == 1, "%s (%s): no call in [%.*s]", files[i],
                      server_toolcall_format_name(f), (int)n, ans);
            if (c.n == 1) {
                CHECK_STR(c.calls[0].name, "get_weather");
                CHECK_STR(c.calls[0].arguments, "{\"city\":\"Zürich\",\"days\":3}");
            }
            server_toolcalls_free(&c);
        }
        shimmy_rendered_free(&p);
        shimmy_rendered_free(&full);
        free(a);
        json_decref(msg);
        shimmy_template_free(t);
        free(src);
    }
}

/* Every truncation of well-formed answers (a stream cut by max_tokens) parses without error in
 * every format, and the held part a stream would keep always starts at a UTF-8 boundary. */
static void test_truncations(void) {
    static const char *const answers[] = {
        "Sure. <tool_call>\n{\"name\": \"a\", \"arguments\": {\"s\": \"é 東\"}}\n</tool_call>",
        "[TOOL_CALLS][{\"name\": \"b\", \"arguments\": {\"n\": [1, {\"x\": null}]}}]",
        "<|python_tag|>{\"name\": \"c\", \"parameters\": {\"q\": \"\\\"}\"}}",
    };
    for (size_t a = 0; a < sizeof answers / sizeof answers[0]; a++) {
        size_t len = strlen(answers[a]);
        for (int f = SERVER_TOOLS_GENERIC; f <= SERVER_TOOLS_MISTRAL; f++) {
            for (size_t n = 0; n <= len; n++) {
                server_toolcalls c;
                shimmy_error err;
                CHECK_EQ_INT(server_toolcall_parse((server_tool_format)f, answers[a], n, &c, &err),
                             SHIMMY_OK);
                server_toolcalls_free(&c);
                bool started;
                size_t keep =
                    server_toolcall_hold((server_tool_format)f, answers[a], n, true, &started);
                CHECK(keep <= n && (keep == n || (answers[a][keep] & 0xC0) != 0x80));
            }
        }
        server_toolcalls c = parse(SERVER_TOOLS_GENERIC, answers[a]);
        CHECK_MSG(c.n == 1, "generic parse of answer %zu", a);
        server_toolcalls_free(&c);
    }
}

static size_t hold(server_tool_format f, const char *text, bool at_start, bool *started) {
    return server_toolcall_hold(f, text, strlen(text), at_start, started);
}

static void test_hold(void) {
    bool s;
    CHECK_EQ_INT(hold(SERVER_TOOLS_HERMES, "Hello there", true, &s), 11);
    CHECK(!s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_HERMES, "Hello <tool_", false, &s), 6); /* may be a marker */
    CHECK(!s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_HERMES, "Hello <b>", false, &s), 9);
    CHECK_EQ_INT(hold(SERVER_TOOLS_HERMES, "Hi <tool_call>\n{\"na", false, &s), 3);
    CHECK(s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_HERMES, "{\"name\"", true, &s), 7); /* not this format */
    CHECK_EQ_INT(hold(SERVER_TOOLS_LLAMA3, "  {\"name\"", true, &s), 0);
    CHECK(s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_LLAMA3, " \n", true, &s), 0); /* form not shown yet */
    CHECK(!s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_LLAMA3, "<|pyth", true, &s), 0);
    CHECK(!s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_LLAMA3, "x = {1}", false, &s), 7);
    CHECK_EQ_INT(hold(SERVER_TOOLS_LLAMA3, "Sure {", true, &s), 6);
    CHECK(!s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_MISTRAL, "ok [TOOL", false, &s), 3);
    CHECK_EQ_INT(hold(SERVER_TOOLS_MISTRAL, "ok [TOOL_CALLS][", false, &s), 3);
    CHECK(s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_GENERIC, "é [TOOL_CALLS]", false, &s), 3);
    CHECK(s);
    CHECK_EQ_INT(hold(SERVER_TOOLS_GENERIC, "é <tool_call>", false, &s), 3);
    CHECK(s);
}

static void test_ids(void) {
    uint64_t a[2] = {1, 2}, b[2] = {1, 3};
    char x[32], y[32], z[32];
    server_toolcall_id(SERVER_TOOLS_HERMES, a, x);
    server_toolcall_id(SERVER_TOOLS_HERMES, b, y);
    server_toolcall_id(SERVER_TOOLS_MISTRAL, a, z);
    CHECK_EQ_INT(strlen(x), 29);
    CHECK(strncmp(x, "call_", 5) == 0);
    CHECK(strcmp(x, y) != 0);
    CHECK_EQ_INT(strlen(z), 9);
    for (const char *p = z; *p; p++)
        CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));
}

/* extra: more fields; it may start with its own "messages" (then the default is left out). */
static void check_request(const char *extra, shimmy_status want, const char *where) {
    char body[2048];
    bool own = strncmp(extra, ",\"messages\"", 11) == 0;
    snprintf(body, sizeof body, "{\"model\":\"m\"%s%s}",
             own ? "" : ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]", extra);
    server_request r;
    shimmy_error err = {0};
    shimmy_status st = server_request_parse(SERVER_API_CHAT, body, strlen(body), 4096, &r, &err);
    CHECK_MSG(st == want, "%s: status %d (%s)", extra, (int)st, err.message);
    if (st) {
        CHECK_MSG(strcmp(err.where, where) == 0, "%s: where '%s', want '%s'", extra, err.where,
                  where);
        CHECK_MSG(strstr(err.message, where) != NULL, "message names the field: %s", err.message);
    } else {
        server_request_deinit(&r);
    }
}

#define TOOL(name) "{\"type\":\"function\",\"function\":{\"name\":\"" name "\"}}"

static void test_requests(void) {
    check_request(",\"tools\":[" TOOL("a") "]", SHIMMY_OK, "");
    check_request(",\"tools\":{}", SHIMMY_ERR_INVALID_ARG, "tools");
    check_request(",\"tools\":[{\"type\":\"retrieval\"}]", SHIMMY_ERR_INVALID_ARG, "tools[0].type");
    check_request(",\"tools\":[" TOOL("a") ",{\"type\":\"function\",\"function\":{}}]",
                  SHIMMY_ERR_INVALID_ARG, "tools[1].function.name");
    check_request(",\"tools\":[{\"type\":\"function\"}]", SHIMMY_ERR_INVALID_ARG,
                  "tools[0].function");
    check_request(",\"tools\":[" TOOL("a b") "]", SHIMMY_ERR_INVALID_ARG, "tools[0].function.name");
    check_request(",\"tools\":[" TOOL("a") "," TOOL("a") "]", SHIMMY_ERR_INVALID_ARG,
                  "tools[1].function.name");
    check_request(
        ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":[]}}]",
        SHIMMY_ERR_INVALID_ARG, "tools[0].function.parameters");
    check_request(",\"tools\":[" TOOL("a") "],\"tool_choice\":\"sometimes\"",
                  SHIMMY_ERR_INVALID_ARG, "tool_choice");
    check_request(",\"tool_choice\":\"required\"", SHIMMY_ERR_INVALID_ARG, "tool_choice");
    check_request(",\"tool_choice\":\"auto\"", SHIMMY_OK, "");
    check_request(",\"tools\":[" TOOL("a") "],\"tool_choice\":{\"type\":\"function\","
                                           "\"function\":{\"name\":\"b\"}}",
                  SHIMMY_ERR_INVALID_ARG, "tool_choice.function.name");
    check_request(",\"tools\":[" TOOL("a") "],\"tool_choice\":{\"type\":\"function\"}",
                  SHIMMY_ERR_INVALID_ARG, "tool_choice.function.name");
    check_request(",\"tools\":[" TOOL("a") "],\"parallel_tool_calls\":1", SHIMMY_ERR_INVALID_ARG,
                  "parallel_tool_calls");
    check_request(",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                  "\"tool\",\"content\":\"1\"}]",
                  SHIMMY_ERR_INVALID_ARG, "messages[1].tool_call_id");
    check_request(",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                  "\"assistant\",\"tool_calls\":{}}]",
                  SHIMMY_ERR_INVALID_ARG, "messages[1].tool_calls");
    check_request(",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                  "\"assistant\",\"tool_calls\":[{\"type\":\"function\",\"function\":{}}]}]",
                  SHIMMY_ERR_INVALID_ARG, "messages[1].tool_calls[0].function.name");

    /* what the template gets: "none" drops the tools, a named choice keeps that tool only */
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":"
        "\"{\\\"k\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","
        "\"content\":\"2\"}],\"tools\":[" TOOL("a") "," TOOL(
            "b") "],"
                 "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"b\"}},"
                 "\"parallel_tool_calls\":false}";
    server_request r;
    shimmy_error err;
    CHECK_EQ_INT(server_request_parse(SERVER_API_CHAT, body, strlen(body), 64, &r, &err),
                 SHIMMY_OK);
    CHECK_EQ_INT(json_array_size(r.tools.tools), 1);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_array_get(r.tools.tools, 0), "function"), "name")),
              "b");
    CHECK(!r.tools.parallel);
    const json_t *args = json_object_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(r.messages, 1), "tool_calls"), 0),
            "function"),
        "arguments");
    CHECK(json_is_object(args) && json_integer_value(json_object_get(args, "k")) == 1);
    server_request_deinit(&r);
    const char *none = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tools\":[" TOOL("a") "],\"tool_choice\":\"none\"}";
    CHECK_EQ_INT(server_request_parse(SERVER_API_CHAT, none, strlen(none), 64, &r, &err),
                 SHIMMY_OK);
    CHECK(r.tools.tools == NULL);
    server_request_deinit(&r);
}

int main(void) {
    test_hermes();
    test_llama3();
    test_mistral();
    test_generic();
    test_format_detection();
    test_round_trip();
    test_truncations();
    test_hold();
    test_ids();
    test_requests();
    return test_finish("server/toolcall");
}
