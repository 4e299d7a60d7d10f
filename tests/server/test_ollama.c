/* server/ollama: Ollama request bodies -> server_request + ollama_opts (field names in errors,
 * Ollama's defaults, option mapping, messages and tool calls, keep_alive durations), the error
 * body and the timestamps. */
#include "ollama.h"
#include "test.h"

typedef struct bad_case {
    bool chat;
    const char *body;
    shimmy_status status;
    const char *where;
} bad_case;

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static const bad_case bad_cases[] = {
    {true, "{", SHIMMY_ERR_INVALID_JSON, ""},
    {true, "[]", SHIMMY_ERR_INVALID_JSON, ""},
    {true, "{" MSG "}", SHIMMY_ERR_INVALID_ARG, "model"},
    {true, "{\"model\":7," MSG "}", SHIMMY_ERR_INVALID_ARG, "model"},
    {true, "{\"model\":\"m\",\"messages\":{}}", SHIMMY_ERR_INVALID_ARG, "messages"},
    {true, "{\"model\":\"m\",\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].role"},
    {true, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[1]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].content"},
    {true,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGk=\"]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].images"},
    {true, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].tool_calls"},
    {true,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{"
     "\"name\":"
     "\"f\",\"arguments\":\"{}\"}}]}]}",
     SHIMMY_ERR_INVALID_ARG, "messages[0].tool_calls[0].function"},
    {true, "{\"model\":\"m\"," MSG ",\"stream\":\"yes\"}", SHIMMY_ERR_INVALID_ARG, "stream"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":[]}", SHIMMY_ERR_INVALID_ARG, "options"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"temperature\":-1}}", SHIMMY_ERR_INVALID_ARG,
     "options.temperature"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"temperature\":\"hot\"}}",
     SHIMMY_ERR_INVALID_ARG, "options.temperature"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"top_p\":1.5}}", SHIMMY_ERR_INVALID_ARG,
     "options.top_p"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"min_p\":-0.1}}", SHIMMY_ERR_INVALID_ARG,
     "options.min_p"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"top_k\":2.5}}", SHIMMY_ERR_INVALID_ARG,
     "options.top_k"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"num_predict\":0}}", SHIMMY_ERR_INVALID_ARG,
     "options.num_predict"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"num_predict\":-3}}", SHIMMY_ERR_INVALID_ARG,
     "options.num_predict"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"num_ctx\":0}}", SHIMMY_ERR_INVALID_ARG,
     "options.num_ctx"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"seed\":\"x\"}}", SHIMMY_ERR_INVALID_ARG,
     "options.seed"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"stop\":[\"a\",1]}}", SHIMMY_ERR_INVALID_ARG,
     "options.stop"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"repeat_penalty\":11}}", SHIMMY_ERR_INVALID_ARG,
     "options.repeat_penalty"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"repeat_last_n\":-2}}", SHIMMY_ERR_INVALID_ARG,
     "options.repeat_last_n"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"presence_penalty\":3}}", SHIMMY_ERR_INVALID_ARG,
     "options.presence_penalty"},
    {true, "{\"model\":\"m\"," MSG ",\"options\":{\"frequency_penalty\":true}}",
     SHIMMY_ERR_INVALID_ARG, "options.frequency_penalty"},
    {true, "{\"model\":\"m\"," MSG ",\"format\":\"xml\"}", SHIMMY_ERR_INVALID_ARG, "format"},
    {true, "{\"model\":\"m\"," MSG ",\"format\":[1]}", SHIMMY_ERR_INVALID_ARG, "format"},
    {true, "{\"model\":\"m\"," MSG ",\"format\":{\"type\":\"integer\",\"multipleOf\":3}}",
     SHIMMY_ERR_INVALID_ARG, "format"},
    {true, "{\"model\":\"m\"," MSG ",\"format\":{\"type\":\"nope\"}}", SHIMMY_ERR_INVALID_ARG,
     "format"},
    {true, "{\"model\":\"m\"," MSG ",\"think\":\"max\"}", SHIMMY_ERR_INVALID_ARG, "think"},
    {true, "{\"model\":\"m\"," MSG ",\"keep_alive\":\"5 minutes\"}", SHIMMY_ERR_INVALID_ARG,
     "keep_alive"},
    {true, "{\"model\":\"m\"," MSG ",\"keep_alive\":\"5d\"}", SHIMMY_ERR_INVALID_ARG, "keep_alive"},
    {true, "{\"model\":\"m\"," MSG ",\"keep_alive\":[]}", SHIMMY_ERR_INVALID_ARG, "keep_alive"},
    {true, "{\"model\":\"m\"," MSG ",\"tools\":{}}", SHIMMY_ERR_INVALID_ARG, "tools"},
    {true, "{\"model\":\"m\"," MSG ",\"lora\":[{\"name\":\"\"}]}", SHIMMY_ERR_INVALID_ARG, "lora"},
    {false, "{\"model\":\"m\",\"prompt\":5}", SHIMMY_ERR_INVALID_ARG, "prompt"},
    {false, "{\"model\":\"m\",\"prompt\":\"x\",\"system\":1}", SHIMMY_ERR_INVALID_ARG, "system"},
    {false, "{\"model\":\"m\",\"prompt\":\"x\",\"raw\":1}", SHIMMY_ERR_INVALID_ARG, "raw"},
    {false, "{\"model\":\"m\",\"prompt\":\"x\",\"template\":\"{{ .Prompt }}\"}",
     SHIMMY_ERR_INVALID_ARG, "template"},
    {false, "{\"model\":\"m\",\"prompt\":\"x\",\"images\":[\"aGk=\"]}", SHIMMY_ERR_INVALID_ARG,
     "images"},
    {false, "{\"model\":\"m\",\"prompt\":\"x\",\"suffix\":\"y\"}", SHIMMY_ERR_INVALID_ARG,
     "suffix"},
    {false, "{\"model\":\"m\",\"prompt\":\"x\",\"context\":[1,2]}", SHIMMY_ERR_INVALID_ARG,
     "context"},
    {false, "{\"model\":\"m\",\"prompt\":\"x\",\"context\":\"1\"}", SHIMMY_ERR_INVALID_ARG,
     "context"},
};

static void test_bad_requests(void) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        server_request r;
        ollama_opts o;
        shimmy_error err;
        shimmy_error_clear(&err);
        shimmy_status st =
            ollama_request_parse(c->chat, c->body, strlen(c->body), 64, &r, &o, &err);
        CHECK_MSG(st == c->status, "case %zu (%s): status %d, want %d (%s)", i, c->body, st,
                  c->status, err.message);
        CHECK_MSG(strcmp(err.where, c->where) == 0, "case %zu: where '%s', want '%s'", i, err.where,
                  c->where);
        CHECK_MSG(err.message[0] != '\0', "case %zu: no message", i);
    }
}

static void test_chat(void) {
    const char *body =
        "{\"model\":\"qwen3:latest\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"thinking\":\"hm\","
        "\"tool_calls\":[{\"function\":{\"name\":\"get\",\"arguments\":{\"city\":\"Oslo\"}}}]},"
        "{\"role\":\"tool\",\"tool_name\":\"get\",\"content\":\"5C\"}],"
        "\"options\":{\"temperature\":0,\"top_k\":5,\"top_p\":0.5,\"min_p\":0.1,\"num_predict\":"
        "100,\"num_ctx\":2048,\"seed\":42,\"stop\":[\"\\n\\n\",\"END\"],\"repeat_penalty\":1.2,"
        "\"repeat_last_n\":32,\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"num_gpu\":99},"
        "\"stream\":false,\"think\":true,\"keep_alive\":\"10m\",\"format\":\"json\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"parameters\":{"
        "\"type\":\"object\"}}}]}";
    server_request r;
    ollama_opts o;
    shimmy_error err;
    shimmy_status st = ollama_request_parse(true, body, strlen(body), 64, &r, &o, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s", err.where, err.message);
    CHECK_STR(r.model, "qwen3:latest");
    CHECK_EQ_INT(r.api, SERVER_API_CHAT);
    CHECK(!r.stream);
    CHECK(o.chat && !o.load_only);
    CHECK_EQ_INT(r.max_tokens, 64); /* clamped to the cap */
    CHECK_NEAR(r.gen.temperature, 0, 0);
    CHECK_EQ_INT(r.gen.top_k, 5);
    CHECK_NEAR(r.gen.top_p, 0.5, 1e-6);
    CHECK_NEAR(r.gen.min_p, 0.1, 1e-6);
    CHECK_NEAR(r.gen.repeat_penalty, 1.2, 1e-6);
    CHECK_EQ_INT(r.gen.repeat_last_n, 32);
    CHECK_NEAR(r.gen.presence_penalty, 0.5, 1e-6);
    CHECK_NEAR(r.gen.frequency_penalty, -0.5, 1e-6);
    CHECK_EQ_INT(r.gen.seed, 42);
    CHECK_EQ_INT(r.n_stop, 2);
    CHECK_STR(r.stop[1], "END");
    CHECK_EQ_INT(o.num_ctx, 2048);
    CHECK_EQ_INT(o.think, 1);
    CHECK(o.has_keep_alive);
    CHECK_NEAR(o.keep_alive_s, 600, 0);
    CHECK(json_is_string(o.format));
    CHECK(o.grammar && strstr(o.grammar, "root"));           /* "json": the grammar of any object */
    CHECK_EQ_INT(r.reasoning_format, SERVER_REASONING_AUTO); /* think: split */
    CHECK(r.template_vars == NULL);
    CHECK(r.tools.tools && json_array_size(r.tools.tools) == 1);
    CHECK_EQ_INT(json_array_size(r.messages), 4);
    json_t *a = json_array_get(r.messages, 2);
    CHECK_STR(json_string_value(json_object_get(a, "content")), "");
    CHECK_STR(json_string_value(json_object_get(a, "reasoning_content")), "hm");
    json_t *call = json_array_get(json_object_get(a, "tool_calls"), 0);
    CHECK_STR(json_string_value(json_object_get(call, "type")), "function");
    CHECK(json_is_object(json_object_get(json_object_get(call, "function"), "arguments")));
    json_t *t = json_array_get(r.messages, 3);
    CHECK_STR(json_string_value(json_object_get(t, "name")), "get");
    server_request_deinit(&r);
    ollama_opts_deinit(&o);
}

/* A think level is gpt-oss's reasoning effort: its template's reasoning_effort variable. */
static void test_think_level(void) {
    const char *body = "{\"model\":\"gpt-oss\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"hi\"}],\"think\":\"high\"}";
    server_request r;
    ollama_opts o;
    shimmy_error err;
    CHECK(ollama_request_parse(true, body, strlen(body), 64, &r, &o, &err) == SHIMMY_OK);
    CHECK_EQ_INT(o.think, 1);
    CHECK_EQ_INT(r.reasoning_format, SERVER_REASONING_AUTO);
    CHECK_STR(json_string_value(json_object_get(r.template_vars, "reasoning_effort")), "high");
    server_request_deinit(&r);
    ollama_opts_deinit(&o);
}

static void test_defaults_and_generate(void) {
    const char *body = "{\"model\":\"m\",\"prompt\":\"Why?\",\"system\":\"Answer.\"}";
    server_request r;
    ollama_opts o;
    shimmy_error err;
    CHECK_EQ_INT(ollama_request_parse(false, body, strlen(body), 4096, &r, &o, &err), SHIMMY_OK);
    CHECK(r.stream); /* Ollama streams by default */
    CHECK_EQ_INT(r.max_tokens, -1);
    CHECK_NEAR(r.gen.temperature, 0.8, 1e-6);
    CHECK_EQ_INT(r.gen.top_k, 40);
    CHECK_NEAR(r.gen.top_p, 0.9, 1e-6);
    CHECK_NEAR(r.gen.repeat_penalty, 1.1, 1e-6);
    CHECK_EQ_INT(r.gen.seed, SHIMMY_SEED_RANDOM);
    CHECK(shimmy_gen_options_check(&r.gen, &err) == SHIMMY_OK);
    CHECK_EQ_INT(o.think, -1);
    CHECK(!o.has_keep_alive && !o.format && !o.grammar);
    CHECK_EQ_INT(r.reasoning_format, SERVER_REASONING_NONE); /* think not given: raw text */
    CHECK_EQ_INT(json_array_size(r.messages), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.messages, 0), "role")), "system");
    CHECK_STR(json_string_value(json_object_get(json_array_get(r.messages, 1), "content")), "Why?");
    server_request_deinit(&r);

    const char *raw =
        "{\"model\":\"m\",\"prompt\":\"<s>[INST] x [/INST]\",\"raw\":true,"
        "\"options\":{\"num_predict\":-1,\"seed\":-1,\"top_p\":0,\"repeat_last_n\":0},"
        "\"lora\":[{\"name\":\"ad\",\"scale\":0.5}]}";
    CHECK_EQ_INT(ollama_request_parse(false, raw, strlen(raw), 64, &r, &o, &err), SHIMMY_OK);
    CHECK(r.messages == NULL);
    CHECK_EQ_INT(r.n_prompts, 1);
    CHECK_STR(r.prompts[0], "<s>[INST] x [/INST]");
    CHECK_EQ_INT(r.max_tokens, -1);
    CHECK_EQ_INT(r.gen.seed, SHIMMY_SEED_RANDOM);
    CHECK_EQ_INT(r.gen.top_k, 1);           /* top_p 0: the top token only */
    CHECK_NEAR(r.gen.repeat_penalty, 1, 0); /* repeat_last_n 0: no penalty */
    CHECK_EQ_INT(r.n_lora, 1);
    CHECK_STR(r.lora[0].name, "ad");
    CHECK_NEAR(r.lora[0].scale, 0.5, 1e-6);
    server_request_deinit(&r);
    ollama_opts_deinit(&o);

    /* No prompt / no messages: load (or unload) only. */
    const char *load = "{\"model\":\"m\",\"keep_alive\":0}";
    CHECK_EQ_INT(ollama_request_parse(false, load, strlen(load), 64, &r, &o, &err), SHIMMY_OK);
    CHECK(o.load_only && o.has_keep_alive && o.keep_alive_s == 0);
    server_request_deinit(&r);
    const char *cload = "{\"model\":\"m\",\"messages\":[]}";
    CHECK_EQ_INT(ollama_request_parse(true, cload, strlen(cload), 64, &r, &o, &err), SHIMMY_OK);
    CHECK(o.load_only);
    server_request_deinit(&r);
    /* "name" is the older spelling of "model"; a schema is a format. */
    const char *older = "{\"name\":\"m\"," MSG ",\"format\":{\"type\":\"object\"}}";
    CHECK_EQ_INT(ollama_request_parse(true, older, strlen(older), 64, &r, &o, &err), SHIMMY_OK);
    CHECK_STR(r.model, "m");
    CHECK(json_is_object(o.format) && o.grammar);
    server_request_deinit(&r);
    ollama_opts_deinit(&o);
    /* think false: the template's thinking off, thinking split out (and dropped). */
    const char *nothink = "{\"model\":\"m\"," MSG ",\"think\":false}";
    CHECK_EQ_INT(ollama_request_parse(true, nothink, strlen(nothink), 64, &r, &o, &err), SHIMMY_OK);
    CHECK_EQ_INT(o.think, 0);
    CHECK_EQ_INT(r.reasoning_format, SERVER_REASONING_AUTO);
    CHECK(json_is_false(json_object_get(r.template_vars, "enable_thinking")));
    server_request_deinit(&r);
    ollama_opts_deinit(&o);
}

static void test_durations(void) {
    static const struct {
        const char *json;
        double s;
    } ok[] = {{"\"5m\"", 300},    {"\"1h30m\"", 5400}, {"\"10s\"", 10},  {"\"300ms\"", 0.3},
              {"\"1.5h\"", 5400}, {"\"-1\"", -1},      {"\"-1m\"", -1},  {"\"0\"", 0},
              {"\"0s\"", 0},      {"\"45\"", 45},      {"60", 60},       {"-1", -1},
              {"0", 0},           {"2.5", 2.5},        {"\"1m30s\"", 90}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_t *v = json_loads(ok[i].json, JSON_DECODE_ANY, NULL);
        double s = 123456;
        shimmy_error err;
        CHECK_MSG(ollama_duration_parse(v, "keep_alive", &s, &err) == SHIMMY_OK, "%s: %s",
                  ok[i].json, err.message);
        CHECK_MSG(s == ok[i].s, "%s: %g, want %g", ok[i].json, s, ok[i].s);
        json_decref(v);
    }
    static const char *const bad[] = {"\"\"",    "\"m\"", "\"5x\"",     "\"5 m\"", "\"--5\"",
                                      "\"5m3\"", "true",  "\"1e999s\"", "null",    "\"-\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        double s;
        shimmy_error err;
        shimmy_error_clear(&err);
        CHECK_MSG(ollama_duration_parse(v, "keep_alive", &s, &err) == SHIMMY_ERR_INVALID_ARG,
                  "%s accepted", bad[i]);
        CHECK_STR(err.where, "keep_alive");
        json_decref(v);
    }
}

static void test_error_and_time(void) {
    shimmy_error err;
    shimmy_error_set(&err, SHIMMY_ERR_MODEL_NOT_FOUND, "model", "model \"x\" not found");
    int http = 0;
    char *s = ollama_error_json(&err, &http);
    CHECK_EQ_INT(http, 404);
    CHECK_STR(s, "{\"error\":\"model \\\"x\\\" not found\"}");
    free(s);
    char ts[40];
    ollama_time(1700000000.25, ts);
    CHECK_STR(ts, "2023-11-14T22:13:20.250000000Z");
    ollama_time(0, ts);
    CHECK_STR(ts, "1970-01-01T00:00:00.000000000Z");
}

int main(void) {
    test_bad_requests();
    test_chat();
    test_think_level();
    test_defaults_and_generate();
    test_durations();
    test_error_and_time();
    return test_finish("server/ollama");
}
