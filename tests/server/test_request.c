/* server: request validation (field names in errors, defaults, normalisation) and the one
 * error-JSON mapping. */
#include "server.h"
#include "test.h"

typedef struct bad_case {
    server_api api;
    const char *body;
    shimmy_status status;
    const char *where; /* expected err.where */
} bad_case;

static const bad_case bad_cases[] = {
    {SERVER_API_CHAT, "{", SHIMMY_ERR_INVALID_JSON, ""},
    {SERVER_API_CHAT, "[1,2]", SHIMMY_ERR_INVALID_JSON, ""},
    {SERVER_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}",
     SHIMMY_ERR_INVALID_JSON, ""},
    {SERVER_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
     SHIMMY_ERR_INVALID_ARG, "model"},
    {SERVER_API_CHAT, "{\"model\":\"m\"}", SHIMMY_ERR_INVALID_ARG, "messages"},
    {SERVER_API_CHAT, "{\"model\":\"m\",\"messages\":[]}", SHIMMY_ERR_INVALID_ARG, "messages"},
    {SERVER_API_CHAT, "{\"model\":\"m\",\"messages\":{}}", SHIMMY_ERR_INVALID_ARG, "messages"},
    {SERVER_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].role"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\"}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[1].content"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content[0]"},
    {SERVER_API_CHAT, "{\"model\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     SHIMMY_ERR_INVALID_ARG, "model"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}",
     SHIMMY_ERR_INVALID_ARG, "temperature"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":"
     "\"hot\"}",
     SHIMMY_ERR_INVALID_ARG, "temperature"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":1.5}",
     SHIMMY_ERR_INVALID_ARG, "top_p"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
     SHIMMY_ERR_INVALID_ARG, "max_tokens"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2.5}",
     SHIMMY_ERR_INVALID_ARG, "max_tokens"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"max_completion_tokens\":-3}",
     SHIMMY_ERR_INVALID_ARG, "max_completion_tokens"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
     SHIMMY_ERR_INVALID_ARG, "n"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",3]}",
     SHIMMY_ERR_INVALID_ARG, "stop"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"\"}",
     SHIMMY_ERR_INVALID_ARG, "stop"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
     SHIMMY_ERR_INVALID_ARG, "stream"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"logit_bias\":{\"abc\":1}}",
     SHIMMY_ERR_INVALID_ARG, "logit_bias"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"logit_bias\":{\"5\":101}}",
     SHIMMY_ERR_INVALID_ARG, "logit_bias"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"1\"}",
     SHIMMY_ERR_INVALID_ARG, "seed"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"presence_penalty\":-2.5}",
     SHIMMY_ERR_INVALID_ARG, "presence_penalty"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_k\":-1}",
     SHIMMY_ERR_INVALID_ARG, "top_k"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"stream_options\":{\"include_usage\":1}}",
     SHIMMY_ERR_INVALID_ARG, "stream_options.include_usage"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"repeat_penalty\":0}",
     SHIMMY_ERR_INVALID_ARG, "repeat_penalty"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\"}", SHIMMY_ERR_INVALID_ARG, "prompt"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[1,2,3]}", SHIMMY_ERR_INVALID_ARG,
     "prompt"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[]}", SHIMMY_ERR_INVALID_ARG, "prompt"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"echo\":1}",
     SHIMMY_ERR_INVALID_ARG, "echo"},
    {SERVER_API_GENERATE, "{\"model\":\"m\"}", SHIMMY_ERR_INVALID_ARG, "prompt"},
    {SERVER_API_GENERATE, "{\"prompt\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     SHIMMY_ERR_INVALID_ARG, "prompt"},
    {SERVER_API_GENERATE, "{\"prompt\":\"x\",\"system\":5}", SHIMMY_ERR_INVALID_ARG, "system"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"lora\":{\"name\":\"a\"}}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"lora\":[\"a\"]}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"lora\":[{\"scale\":1}]}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
    {SERVER_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"lora\":[{\"name\":\"\"}]}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
    {SERVER_API_CHAT,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"lora\":[{\"name\":\"a\",\"scale\":\"1\"}]}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
    {SERVER_API_GENERATE, "{\"prompt\":\"x\",\"lora\":[{\"name\":\"a\",\"scale\":1e300}]}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
    {SERVER_API_GENERATE, "{\"prompt\":\"x\",\"lora\":[{\"name\":\"a\",\"rank\":4}]}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
    {SERVER_API_GENERATE,
     "{\"prompt\":\"x\",\"lora\":[{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{"
     "\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{"
     "\"name\":\"a\"}]}",
     SHIMMY_ERR_INVALID_ARG, "lora"},
};

/* "lora": names and scales in order, scale 1 by default, null = none. */
static void test_lora_field(void) {
    const char *body = "{\"model\":\"m\",\"prompt\":\"x\",\"lora\":[{\"name\":\"r4\"},"
                       "{\"name\":\"r8\",\"scale\":0.5},{\"name\":\"z\",\"scale\":-2}]}";
    server_request r;
    shimmy_error err;
    CHECK(server_request_parse(SERVER_API_COMPLETIONS, body, strlen(body), 4096, &r, &err) ==
          SHIMMY_OK);
    CHECK(r.n_lora == 3);
    CHECK(strcmp(r.lora[0].name, "r4") == 0 && r.lora[0].scale == 1.0f);
    CHECK(strcmp(r.lora[1].name, "r8") == 0 && r.lora[1].scale == 0.5f);
    CHECK(strcmp(r.lora[2].name, "z") == 0 && r.lora[2].scale == -2.0f);
    server_request_deinit(&r);
    body = "{\"model\":\"m\",\"prompt\":\"x\",\"lora\":null}";
    CHECK(server_request_parse(SERVER_API_COMPLETIONS, body, strlen(body), 4096, &r, &err) ==
          SHIMMY_OK);
    CHECK(r.n_lora == 0);
    server_request_deinit(&r);
}

static void test_bad_requests(void) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *bc = &bad_cases[i];
        server_request r;
        shimmy_error err;
        shimmy_error_clear(&err);
        shimmy_status st =
            server_request_parse(bc->api, bc->body, strlen(bc->body), 4096, &r, &err);
        CHECK_MSG(st == bc->status, "case %zu (%s): status %s, want %s (%s)", i, bc->body,
                  shimmy_status_name(st), shimmy_status_name(bc->status), err.message);
        CHECK_MSG(strcmp(err.where, bc->where) == 0, "case %zu: where '%s', want '%s'", i,
                  err.where, bc->where);
        CHECK_MSG(err.message[0] != '\0', "case %zu: empty message", i);
        /* the message names the field, so a user knows what to fix */
        if (bc->where[0] && bc->status == SHIMMY_ERR_INVALID_ARG)
            CHECK_MSG(strstr(err.message, bc->where) != NULL, "case %zu: '%s' does not name %s", i,
                      err.message, bc->where);
    }
}

static void test_chat_request(void) {
    const char *body =
        "{\"model\":\"tiny\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\","
        "\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":null}],"
        "\"max_tokens\":100000,\"temperature\":0,\"stop\":\"END\",\"seed\":42,\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"logit_bias\":{\"7\":-100,\"9\":2.5},"
        "\"top_k\":5,\"min_p\":0.1,\"repeat_penalty\":1.1,\"unknown_field\":{\"x\":1},"
        "\"n\":1,\"user\":\"u\",\"top_p\":null}";
    server_request r;
    shimmy_error err;
    CHECK(server_request_parse(SERVER_API_CHAT, body, strlen(body), 512, &r, &err) == SHIMMY_OK);
    CHECK_STR(r.model, "tiny");
    CHECK_EQ_INT(r.max_tokens, 512); /* clamped to the cap */
    CHECK_EQ_INT(json_array_size(r.messages), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.messages, 0), "role")), "system");
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.messages, 1), "content")), "a\nb");
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.messages, 2), "content")), "");
    CHECK(r.gen.temperature == 0.0f);
    CHECK_EQ_INT(r.n_stop, 1);
    CHECK_STR(r.stop[0], "END");
    CHECK(r.stream && r.include_usage);
    CHECK_EQ_INT(r.n_bias, 2);
    CHECK_EQ_INT(r.bias[0].token, 7);
    CHECK(r.bias[0].bias == -100.0f);
    CHECK_EQ_INT(r.gen.top_k, 5);
    CHECK_NEAR(r.gen.min_p, 0.1, 1e-6);
    CHECK_NEAR(r.gen.repeat_penalty, 1.1, 1e-6);
    CHECK(r.gen.seed != SHIMMY_SEED_RANDOM);
    CHECK(shimmy_gen_options_check(&r.gen, &err) == SHIMMY_OK); /* what the library accepts */
    server_request_deinit(&r);

    /* same seed, same folded seed; defaults when fields are absent */
    const char *b2 = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"seed\":42}";
    server_request r2;
    CHECK(server_request_parse(SERVER_API_CHAT, b2, strlen(b2), 512, &r2, &err) == SHIMMY_OK);
    shimmy_gen_options def;
    server_gen_defaults(&def);
    CHECK_EQ_INT(r2.max_tokens, -1);
    CHECK(r2.gen.temperature == def.temperature);
    CHECK(def.temperature == 0.8f && def.top_k == 40 && def.top_p == 0.95f && def.min_p == 0.05f);
    CHECK(r2.gen.seed == r.gen.seed); /* the same seed folds the same way */
    CHECK(shimmy_gen_options_check(&r2.gen, &err) == SHIMMY_OK);
    CHECK(!r2.stream && !r2.include_usage);
    server_request_deinit(&r2);
}

static void test_completion_and_generate(void) {
    const char *b = "{\"model\":\"m\",\"prompt\":[\"one\",\"two\"],\"echo\":true,\"stop\":[\"x\","
                    "\"y\"]}";
    server_request r;
    shimmy_error err;
    CHECK(server_request_parse(SERVER_API_COMPLETIONS, b, strlen(b), 64, &r, &err) == SHIMMY_OK);
    CHECK_EQ_INT(r.n_prompts, 2);
    CHECK_STR(r.prompts[1], "two");
    CHECK(r.echo && r.messages == NULL);
    CHECK_EQ_INT(r.n_stop, 2);
    server_request_deinit(&r);

    const char *g = "{\"prompt\":\"hello\",\"system\":\"sys\"}";
    CHECK(server_request_parse(SERVER_API_GENERATE, g, strlen(g), 64, &r, &err) == SHIMMY_OK);
    CHECK_STR(r.model, ""); /* resolved later to the only model */
    CHECK_EQ_INT(json_array_size(r.messages), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.messages, 1), "content")),
              "hello");
    server_request_deinit(&r);

    const char *raw = "{\"model\":\"m\",\"prompt\":\"hello\",\"raw\":true}";
    CHECK(server_request_parse(SERVER_API_GENERATE, raw, strlen(raw), 64, &r, &err) == SHIMMY_OK);
    CHECK(r.messages == NULL && r.n_prompts == 1);
    server_request_deinit(&r);
}

static void test_error_json(void) {
    static const struct {
        shimmy_status st;
        const char *where;
        int http;
        const char *type;
        const char *code; /* NULL = JSON null */
    } rows[] = {
        {SHIMMY_ERR_INVALID_ARG, "temperature", 400, "invalid_request_error", NULL},
        {SHIMMY_ERR_INVALID_JSON, "", 400, "invalid_request_error", "invalid_json"},
        {SHIMMY_ERR_MODEL_NOT_FOUND, "model", 404, "invalid_request_error", "model_not_found"},
        {SHIMMY_ERR_CONTEXT_EXCEEDED, "messages", 400, "invalid_request_error",
         "context_length_exceeded"},
        {SHIMMY_ERR_UNAUTHORIZED, "", 401, "invalid_request_error", "invalid_api_key"},
        {SHIMMY_ERR_METHOD, "", 405, "invalid_request_error", "method_not_allowed"},
        {SHIMMY_ERR_TOO_LARGE, "", 413, "invalid_request_error", "request_too_large"},
        {SHIMMY_ERR_BUSY, "", 503, "server_error", "server_overloaded"},
        {SHIMMY_ERR_INTERNAL, "", 500, "server_error", NULL},
        {SHIMMY_ERR_NOT_FOUND, "", 404, "invalid_request_error", "not_found"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        shimmy_error err;
        shimmy_error_set(&err, rows[i].st, rows[i].where, "problem %zu", i);
        int http = 0;
        char *s = server_error_json(&err, &http);
        CHECK(s != NULL);
        CHECK_EQ_INT(http, rows[i].http);
        json_error_t je;
        json_t *v = s ? json_loads(s, 0, &je) : NULL;
        json_t *e = json_object_get(v, "error");
        CHECK_MSG(json_is_object(e), "row %zu: %s", i, s ? s : "(null)");
        char want[32];
        snprintf(want, sizeof want, "problem %zu", i);
        CHECK_STR(json_string_value(json_object_get(e, "message")), want);
        CHECK_STR(json_string_value(json_object_get(e, "type")), rows[i].type);
        json_t *param = json_object_get(e, "param");
        if (rows[i].where[0])
            CHECK_STR(json_string_value(param), rows[i].where);
        else
            CHECK(json_is_null(param));
        json_t *code = json_object_get(e, "code");
        if (rows[i].code)
            CHECK_STR(json_string_value(code), rows[i].code);
        else
            CHECK(json_is_null(code));
        json_decref(v);
        free(s);
    }
    /* a message holding bytes that are not UTF-8 still yields valid JSON */
    shimmy_error err;
    shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "model", "bad \xff name");
    char *s = server_error_json(&err, NULL);
    json_error_t je;
    json_t *v = s ? json_loads(s, 0, &je) : NULL;
    CHECK(v != NULL);
    json_decref(v);
    free(s);
}

/* What the library cannot take is refused at parse time (before a stream starts), and top_p 0
 * keeps its meaning (only the most likely token) although the library reads 0 as "off". */
static void test_library_limits(void) {
    char body[1024];
    char stop[300];
    memset(stop, 'x', 257);
    stop[257] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"m\",\"prompt\":\"a\",\"stop\":\"%s\"}", stop);
    server_request r;
    shimmy_error err;
    CHECK_EQ_INT(server_request_parse(SERVER_API_COMPLETIONS, body, strlen(body), 64, &r, &err),
                 SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "stop");
    stop[256] = '\0'; /* exactly the limit */
    snprintf(body, sizeof body, "{\"model\":\"m\",\"prompt\":\"a\",\"stop\":\"%s\"}", stop);
    CHECK_EQ_INT(server_request_parse(SERVER_API_COMPLETIONS, body, strlen(body), 64, &r, &err),
                 SHIMMY_OK);
    server_request_deinit(&r);
    const char *zero = "{\"model\":\"m\",\"prompt\":\"a\",\"top_p\":0,\"top_k\":50}";
    CHECK_EQ_INT(server_request_parse(SERVER_API_COMPLETIONS, zero, strlen(zero), 64, &r, &err),
                 SHIMMY_OK);
    CHECK_EQ_INT(r.gen.top_k, 1);
    CHECK(shimmy_gen_options_check(&r.gen, &err) == SHIMMY_OK);
    server_request_deinit(&r);
}

int main(void) {
    test_bad_requests();
    test_library_limits();
    test_chat_request();
    test_completion_and_generate();
    test_error_json();
    test_lora_field();
    return test_finish("server/request");
}
