/* compat: OpenAI Responses requests -> chat requests (input items, instructions, tools,
 * text.format, the stateless refusals) with errors naming the Responses field. */
#include "compat.h"
#include "test.h"

typedef struct bad_case {
    const char *body;
    shimmy_status status;
    const char *where;
} bad_case;

static const bad_case bad_cases[] = {
    {"{", SHIMMY_ERR_INVALID_JSON, ""},
    {"\"x\"", SHIMMY_ERR_INVALID_JSON, ""},
    {"{\"input\":\"hi\"}", SHIMMY_ERR_INVALID_ARG, "model"},
    {"{\"model\":\"m\"}", SHIMMY_ERR_INVALID_ARG, "input"},
    {"{\"model\":\"m\",\"input\":5}", SHIMMY_ERR_INVALID_ARG, "input"},
    {"{\"model\":\"m\",\"input\":[]}", SHIMMY_ERR_INVALID_ARG, "input"},
    {"{\"model\":\"m\",\"input\":[7]}", SHIMMY_ERR_INVALID_ARG, "input[0]"},
    {"{\"model\":\"m\",\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}", SHIMMY_ERR_INVALID_ARG,
     "input[0].role"},
    {"{\"model\":\"m\",\"input\":[{\"role\":\"user\"}]}", SHIMMY_ERR_INVALID_ARG,
     "input[0].content"},
    {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
     "\"image_url\":\"x\"}]}]}",
     SHIMMY_ERR_INVALID_ARG, "input[0].content[0]"},
    {"{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"name\":\"f\",\"arguments\":\"{}\"}]"
     "}",
     SHIMMY_ERR_INVALID_ARG, "input[0].call_id"},
    {"{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
     "\"arguments\":\"[1]\"}]}",
     SHIMMY_ERR_INVALID_ARG, "input[0].arguments"},
    {"{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\"}]}",
     SHIMMY_ERR_INVALID_ARG, "input[0].output"},
    {"{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}",
     SHIMMY_ERR_INVALID_ARG, "input[0].type"},
    {"{\"model\":\"m\",\"input\":[{\"type\":\"web_search_call\"}]}", SHIMMY_ERR_INVALID_ARG,
     "input[0].type"},
    {"{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
     SHIMMY_ERR_INVALID_ARG, "previous_response_id"},
    {"{\"model\":\"m\",\"input\":\"x\",\"store\":true}", SHIMMY_ERR_INVALID_ARG, "store"},
    {"{\"model\":\"m\",\"input\":\"x\",\"conversation\":\"conv_1\"}", SHIMMY_ERR_INVALID_ARG,
     "conversation"},
    {"{\"model\":\"m\",\"input\":\"x\",\"background\":true}", SHIMMY_ERR_INVALID_ARG, "background"},
    {"{\"model\":\"m\",\"input\":\"x\",\"instructions\":5}", SHIMMY_ERR_INVALID_ARG,
     "instructions"},
    {"{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", SHIMMY_ERR_INVALID_ARG,
     "max_output_tokens"},
    {"{\"model\":\"m\",\"input\":\"x\",\"temperature\":2.5}", SHIMMY_ERR_INVALID_ARG,
     "temperature"},
    {"{\"model\":\"m\",\"input\":\"x\",\"top_p\":-1}", SHIMMY_ERR_INVALID_ARG, "top_p"},
    {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}",
     SHIMMY_ERR_INVALID_ARG, "tools[0].type"},
    {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\"}]}",
     SHIMMY_ERR_INVALID_ARG, "tools[0].name"},
    {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\","
     "\"parameters\":5}]}",
     SHIMMY_ERR_INVALID_ARG, "tools[0].parameters"},
    {"{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"always\"}", SHIMMY_ERR_INVALID_ARG,
     "tool_choice"},
    {"{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"file_search\"}}",
     SHIMMY_ERR_INVALID_ARG, "tool_choice"},
    {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\"}],"
     "\"tool_choice\":{\"type\":\"function\",\"name\":\"g\"}}",
     SHIMMY_ERR_INVALID_ARG, "tool_choice.name"},
    {"{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}",
     SHIMMY_ERR_INVALID_ARG, "text.format.type"},
    {"{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\","
     "\"name\":\"n\"}}}",
     SHIMMY_ERR_INVALID_ARG, "text.format.schema"},
    {"{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\","
     "\"schema\":{}}}}",
     SHIMMY_ERR_INVALID_ARG, "text.format.name"},
    {"{\"model\":\"m\",\"input\":\"x\",\"metadata\":{\"a\":1}}", SHIMMY_ERR_INVALID_ARG,
     "metadata"},
    {"{\"model\":\"m\",\"input\":\"x\",\"truncation\":\"sometimes\"}", SHIMMY_ERR_INVALID_ARG,
     "truncation"},
    {"{\"model\":\"m\",\"input\":\"x\",\"parallel_tool_calls\":\"no\"}", SHIMMY_ERR_INVALID_ARG,
     "parallel_tool_calls"},
    {"{\"model\":\"m\",\"input\":\"x\",\"include\":\"all\"}", SHIMMY_ERR_INVALID_ARG, "include"},
    {"{\"model\":\"m\",\"input\":\"x\",\"top_logprobs\":21}", SHIMMY_ERR_INVALID_ARG,
     "top_logprobs"},
};

static void test_bad(void) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *b = &bad_cases[i];
        server_request r;
        server_compat_req *x = calloc(1, sizeof *x);
        shimmy_error err;
        shimmy_error_clear(&err);
        shimmy_status st = server_responses_parse(b->body, strlen(b->body), 4096, &r, x, &err);
        CHECK_MSG(st == b->status, "case %zu: status %d (%s)", i, st, err.message);
        CHECK_MSG(strcmp(err.where, b->where) == 0, "case %zu: where '%s' != '%s' (%s)", i,
                  err.where, b->where, err.message);
        CHECK_MSG(err.message[0], "case %zu: a message", i);
        if (!st) server_request_deinit(&r);
        server_compat_req_free(x);
    }
}

static const char *field(const server_request *r, size_t i, const char *key) {
    return json_string_value(json_object_get(json_array_get(r->messages, i), key));
}

static void test_items(void) {
    const char *body =
        "{\"model\":\"m\",\"instructions\":\"Be brief.\",\"input\":["
        "{\"role\":\"developer\",\"content\":\"Use tools.\"},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
        "\"Weather\"},{\"type\":\"input_text\",\"text\":\"in Paris?\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"call_2\",\"name\":\"get_time\",\"arguments\":"
        "\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"18 C\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_2\",\"output\":[{\"type\":"
        "\"input_text\",\"text\":\"noon\"}]}],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":"
        "\"object\"}},{\"type\":\"function\",\"name\":\"get_time\"}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,\"max_output_tokens\":99999,"
        "\"temperature\":0,\"stream\":true,\"store\":false,\"metadata\":{\"k\":\"v\"},"
        "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"w\",\"schema\":{\"type\":"
        "\"object\"},\"strict\":true}}}";
    server_request r;
    server_compat_req *x = calloc(1, sizeof *x);
    shimmy_error err;
    shimmy_status st = server_responses_parse(body, strlen(body), 256, &r, x, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s (%s)", err.message, err.where);
    if (st) {
        server_compat_req_free(x);
        return;
    }
    CHECK_EQ_INT(json_array_size(r.messages), 6);
    CHECK_STR(field(&r, 0, "role"), "system");
    CHECK_STR(field(&r, 0, "content"), "Be brief.");
    CHECK_STR(field(&r, 1, "role"), "system"); /* developer */
    CHECK_STR(field(&r, 2, "content"), "Weather\nin Paris?");
    CHECK_STR(field(&r, 3, "role"), "assistant");
    json_t *calls = json_object_get(json_array_get(r.messages, 3), "tool_calls");
    CHECK_EQ_INT(json_array_size(calls), 2); /* one assistant turn with both calls */
    CHECK_STR(json_string_value(json_object_get(json_array_get(calls, 1), "id")), "call_2");
    CHECK_STR(field(&r, 4, "role"), "tool");
    CHECK_STR(field(&r, 4, "tool_call_id"), "call_1");
    CHECK_STR(field(&r, 5, "content"), "noon");
    CHECK(r.tools.tools && json_array_size(r.tools.tools) == 2);
    CHECK(!r.tools.parallel);
    CHECK_EQ_INT(r.max_tokens, 256);
    CHECK(r.max_tokens_bound);
    CHECK(r.stream);
    CHECK_EQ_INT(x->format, 2);
    CHECK(json_is_object(x->schema));
    CHECK_STR(json_string_value(json_object_get(x->echo, "instructions")), "Be brief.");
    CHECK(json_is_object(json_object_get(x->echo, "text")));
    server_request_deinit(&r);
    server_compat_req_free(x);
}

static void test_string_input(void) {
    const char *body = "{\"model\":\"m\",\"input\":\"Hello\",\"text\":{\"format\":{\"type\":"
                       "\"json_object\"}},\"previous_response_id\":null}";
    server_request r;
    server_compat_req *x = calloc(1, sizeof *x);
    shimmy_error err;
    CHECK(server_responses_parse(body, strlen(body), 64, &r, x, &err) == SHIMMY_OK);
    CHECK_EQ_INT(json_array_size(r.messages), 1);
    CHECK_STR(field(&r, 0, "role"), "user");
    CHECK_STR(field(&r, 0, "content"), "Hello");
    CHECK_EQ_INT(x->format, 1);
    CHECK_EQ_INT(r.max_tokens, -1);
    CHECK(!r.stream);
    CHECK(!r.logprobs);
    server_request_deinit(&r);
    server_compat_req_free(x);
}

static void test_logprobs(void) {
    static const struct {
        const char *body;
        bool logprobs;
        int top;
    } cases[] = {
        {"{\"model\":\"m\",\"input\":\"x\",\"include\":[\"message.output_text.logprobs\"]}", true,
         0},
        {"{\"model\":\"m\",\"input\":\"x\",\"top_logprobs\":3}", true, 3},
        {"{\"model\":\"m\",\"input\":\"x\",\"top_logprobs\":0,\"include\":[\"reasoning.encrypted_"
         "content\"]}",
         false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        server_request r;
        server_compat_req *x = calloc(1, sizeof *x);
        shimmy_error err;
        shimmy_status st =
            server_responses_parse(cases[i].body, strlen(cases[i].body), 64, &r, x, &err);
        CHECK_MSG(st == SHIMMY_OK, "case %zu: %s", i, err.message);
        if (!st) {
            CHECK_MSG(r.logprobs == cases[i].logprobs, "case %zu", i);
            CHECK_EQ_INT(r.top_logprobs, cases[i].top);
            server_request_deinit(&r);
        }
        server_compat_req_free(x);
    }
}

int main(void) {
    test_bad();
    test_items();
    test_string_input();
    test_logprobs();
    return test_finish("test_responses");
}
