/* compat: Anthropic Messages requests -> chat requests (field names in errors, blocks, tools,
 * tool_choice, stop sequences), the error shape, stop reasons, and the stop-sequence scan. */
#include "compat.h"
#include "test.h"

typedef struct bad_case {
    const char *body;
    shimmy_status status;
    const char *where;
} bad_case;

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static const bad_case bad_cases[] = {
    {"{", SHIMMY_ERR_INVALID_JSON, ""},
    {"[]", SHIMMY_ERR_INVALID_JSON, ""},
    {"{\"max_tokens\":5," MSG "}", SHIMMY_ERR_INVALID_ARG, "model"},
    {"{\"model\":\"m\"," MSG "}", SHIMMY_ERR_INVALID_ARG, "max_tokens"},
    {"{\"model\":\"m\",\"max_tokens\":0," MSG "}", SHIMMY_ERR_INVALID_ARG, "max_tokens"},
    {"{\"model\":\"m\",\"max_tokens\":\"5\"," MSG "}", SHIMMY_ERR_INVALID_ARG, "max_tokens"},
    {"{\"model\":\"m\",\"max_tokens\":5}", SHIMMY_ERR_INVALID_ARG, "messages"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", SHIMMY_ERR_INVALID_ARG, "messages"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].role"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":5}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
     "\"image\",\"source\":{}}]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content[0].type"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
     "\"text\"}]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content[0].text"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
     "\"tool_use\",\"id\":\"a\",\"name\":\"f\",\"input\":{}}]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content[0].type"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{"
     "\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"f\",\"input\":[]}]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content[0].input"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
     "\"tool_result\",\"content\":\"x\"}]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content[0].tool_use_id"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"system\":7," MSG "}", SHIMMY_ERR_INVALID_ARG, "system"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":\"image\"}]," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "system[0]"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"temperature\":1.5," MSG "}", SHIMMY_ERR_INVALID_ARG,
     "temperature"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"top_p\":2," MSG "}", SHIMMY_ERR_INVALID_ARG, "top_p"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"top_k\":-1," MSG "}", SHIMMY_ERR_INVALID_ARG, "top_k"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":\"x\"," MSG "}", SHIMMY_ERR_INVALID_ARG,
     "stop_sequences"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":[\"\"]," MSG "}", SHIMMY_ERR_INVALID_ARG,
     "stop_sequences"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":{}," MSG "}", SHIMMY_ERR_INVALID_ARG, "tools"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"name\":\"f\"}]," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tools[0].input_schema"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"name\":\"a b\",\"input_schema\":{}}]," MSG
     "}",
     SHIMMY_ERR_INVALID_ARG, "tools[0].name"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\",\"name\":"
     "\"web_search\"}]," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tools[0].type"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"name\":\"f\",\"input_schema\":{}},{\"name\":"
     "\"f\",\"input_schema\":{}}]," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tools[1].name"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"maybe\"}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tool_choice.type"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"tool\"}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tool_choice.name"},
    /* a named tool that is not in tools: the chat check's field, renamed back */
    {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"name\":\"f\",\"input_schema\":{}}],"
     "\"tool_choice\":{\"type\":\"tool\",\"name\":\"g\"}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tool_choice.name"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"any\"}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tool_choice"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"auto\","
     "\"disable_parallel_tool_use\":1}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "tool_choice.disable_parallel_tool_use"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"metadata\":{\"user_id\":5}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "metadata.user_id"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"thinking\":{\"type\":\"on\"}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "thinking.type"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"thinking\":{\"type\":\"enabled\"}," MSG "}",
     SHIMMY_ERR_INVALID_ARG, "thinking.budget_tokens"},
    {"{\"model\":\"m\",\"max_tokens\":5,\"stream\":\"yes\"," MSG "}", SHIMMY_ERR_INVALID_ARG,
     "stream"},
};

static void test_bad(void) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *b = &bad_cases[i];
        server_request r;
        server_compat_req x = {0};
        shimmy_error err;
        shimmy_error_clear(&err);
        shimmy_status st =
            server_anthropic_parse(b->body, strlen(b->body), 4096, false, &r, &x, &err);
        CHECK_MSG(st == b->status, "case %zu: status %d (%s)", i, st, err.message);
        CHECK_MSG(strcmp(err.where, b->where) == 0, "case %zu: where '%s' != '%s' (%s)", i,
                  err.where, b->where, err.message);
        CHECK_MSG(err.message[0], "case %zu: a message", i);
        if (!st) server_request_deinit(&r);
        for (size_t k = 0; k < x.n_stop; k++) free(x.stop[k]);
    }
}

static const char *role_of(const server_request *r, size_t i) {
    return json_string_value(json_object_get(json_array_get(r->messages, i), "role"));
}

static const char *content_of(const server_request *r, size_t i) {
    return json_string_value(json_object_get(json_array_get(r->messages, i), "content"));
}

static void test_conversation(void) {
    const char *body =
        "{\"model\":\"m\",\"max_tokens\":100000,\"system\":[{\"type\":\"text\",\"text\":\"Be "
        "brief.\"},{\"type\":\"text\",\"text\":\"Use tools.\"}],\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","
        "\"signature\":\"\"},{\"type\":\"text\",\"text\":\"Let me check.\"},{\"type\":"
        "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]}"
        ","
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
        "\"content\":[{\"type\":\"text\",\"text\":\"18 C\"}]},{\"type\":\"text\",\"text\":"
        "\"Thanks\"}]}],"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"d\",\"input_schema\":{\"type\":"
        "\"object\"}}],\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
        "\"stop_sequences\":[\"END\",\"\\n\\n\"],\"temperature\":0.5,\"top_k\":7,\"stream\":true,"
        "\"metadata\":{\"user_id\":\"u\"}}";
    server_request r;
    server_compat_req x = {0};
    shimmy_error err;
    shimmy_status st = server_anthropic_parse(body, strlen(body), 512, false, &r, &x, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s (%s)", err.message, err.where);
    if (st) return;
    CHECK_EQ_INT(json_array_size(r.messages), 5);
    CHECK_STR(role_of(&r, 0), "system");
    CHECK_STR(content_of(&r, 0), "Be brief.\nUse tools.");
    CHECK_STR(role_of(&r, 1), "user");
    CHECK_STR(content_of(&r, 1), "Weather?");
    CHECK_STR(role_of(&r, 2), "assistant");
    CHECK_STR(content_of(&r, 2), "Let me check.");
    json_t *call = json_array_get(json_object_get(json_array_get(r.messages, 2), "tool_calls"), 0);
    CHECK_STR(json_string_value(json_object_get(call, "id")), "toolu_1");
    json_t *f = json_object_get(call, "function");
    CHECK_STR(json_string_value(json_object_get(f, "name")), "get_weather");
    /* the chat layer hands templates the arguments as an object */
    CHECK_STR(json_string_value(json_object_get(json_object_get(f, "arguments"), "city")), "Paris");
    CHECK_STR(role_of(&r, 3), "tool");
    CHECK_STR(content_of(&r, 3), "18 C");
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.messages, 3), "tool_call_id")),
              "toolu_1");
    CHECK_STR(role_of(&r, 4), "user");
    CHECK_STR(content_of(&r, 4), "Thanks");
    CHECK(r.tools.tools != NULL && json_array_size(r.tools.tools) == 1);
    CHECK(!r.tools.parallel);
    CHECK_EQ_INT(r.max_tokens, 512); /* clamped to the cap */
    CHECK(r.max_tokens_bound);       /* and to the context's room at prepare time */
    CHECK(r.stream);
    CHECK_NEAR(r.gen.temperature, 0.5, 1e-6);
    CHECK_EQ_INT(r.gen.top_k, 7);
    /* stop sequences are the formatter's, never the library's */
    CHECK_EQ_INT(r.n_stop, 0);
    CHECK_EQ_INT(x.n_stop, 2);
    CHECK_STR(x.stop[0], "END");
    CHECK_STR(x.stop[1], "\n\n");
    server_request_deinit(&r);
    for (size_t k = 0; k < x.n_stop; k++) free(x.stop[k]);
}

static void test_count_and_choice(void) {
    /* count_tokens needs no max_tokens; tool_choice none drops the tools */
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tools\":[{\"name\":\"f\",\"input_schema\":{}}],\"tool_choice\":{"
                       "\"type\":\"none\"}}";
    server_request r;
    server_compat_req x = {0};
    shimmy_error err;
    CHECK(server_anthropic_parse(body, strlen(body), 64, true, &r, &x, &err) == SHIMMY_OK);
    CHECK(r.tools.tools == NULL);
    CHECK_EQ_INT(r.max_tokens, -1);
    server_request_deinit(&r);
    CHECK(server_anthropic_parse(body, strlen(body), 64, false, &r, &x, &err) ==
          SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "max_tokens");
}

static void test_errors(void) {
    shimmy_error err;
    shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "max_tokens", "bad");
    json_t *e = server_anthropic_error_object(&err);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "error");
    CHECK_STR(json_string_value(json_object_get(json_object_get(e, "error"), "type")),
              "invalid_request_error");
    CHECK_STR(json_string_value(json_object_get(json_object_get(e, "error"), "message")), "bad");
    json_decref(e);
    CHECK_STR(server_anthropic_error_type(SHIMMY_ERR_UNAUTHORIZED), "authentication_error");
    CHECK_STR(server_anthropic_error_type(SHIMMY_ERR_MODEL_NOT_FOUND), "not_found_error");
    CHECK_STR(server_anthropic_error_type(SHIMMY_ERR_NOT_FOUND), "not_found_error");
    CHECK_STR(server_anthropic_error_type(SHIMMY_ERR_BUSY), "overloaded_error");
    CHECK_STR(server_anthropic_error_type(SHIMMY_ERR_TOO_LARGE), "request_too_large");
    CHECK_STR(server_anthropic_error_type(SHIMMY_ERR_INTERNAL), "api_error");
    CHECK_STR(server_anthropic_stop_reason("stop", false, false), "end_turn");
    CHECK_STR(server_anthropic_stop_reason("length", false, false), "max_tokens");
    CHECK_STR(server_anthropic_stop_reason("stop", true, false), "stop_sequence");
    CHECK_STR(server_anthropic_stop_reason("stop", false, true), "tool_use");
}

static void test_stop_scan(void) {
    char *stops[] = {"END", "\n\n", "ENDING"};
    int which;
    /* no sequence: everything is final */
    CHECK_EQ_INT(server_compat_stop_scan("hello", 5, stops, 3, &which), 5);
    CHECK_EQ_INT(which, 0);
    /* a partial sequence at the end is held */
    CHECK_EQ_INT(server_compat_stop_scan("hello E", 7, stops, 3, &which), 6);
    CHECK_EQ_INT(which, 0);
    CHECK_EQ_INT(server_compat_stop_scan("hello\n", 6, stops, 3, &which), 5);
    /* a match: where it starts, and which one (the longest at the same place) */
    CHECK_EQ_INT(server_compat_stop_scan("ab END cd", 9, stops, 3, &which), 3);
    CHECK_EQ_INT(which, 1);
    CHECK_EQ_INT(server_compat_stop_scan("abENDING", 8, stops, 3, &which), 2);
    CHECK_EQ_INT(which, 3);
    CHECK_EQ_INT(server_compat_stop_scan("x\n\ny END", 8, stops, 3, &which), 1);
    CHECK_EQ_INT(which, 2);
    /* the earliest match wins over a later one */
    CHECK_EQ_INT(server_compat_stop_scan("END\n\n", 5, stops, 3, &which), 0);
    CHECK_EQ_INT(which, 1);
    /* no stops at all */
    CHECK_EQ_INT(server_compat_stop_scan("abc", 3, stops, 0, &which), 3);
    /* an earlier partial ("E" of END at 0 is complete? no: "EN" then "END" later) */
    CHECK_EQ_INT(server_compat_stop_scan("EN END", 6, stops, 3, &which), 3);
    CHECK_EQ_INT(which, 1);
}

static void test_ids(void) {
    char a[40], b[40];
    server_compat_id("msg_", a, sizeof a);
    server_compat_id("msg_", b, sizeof b);
    CHECK_EQ_INT(strlen(a), 28);
    CHECK(strncmp(a, "msg_", 4) == 0);
    CHECK(strcmp(a, b) != 0);
    char small[8];
    server_compat_id("msg_", small, sizeof small);
    CHECK_STR(small, "");
}

int main(void) {
    test_bad();
    test_conversation();
    test_count_and_choice();
    test_errors();
    test_stop_scan();
    test_ids();
    return test_finish("test_anthropic");
}
