/* server: the structured-output request fields (structured.c) through server_request_parse:
 * response_format, grammar and json_schema become GBNF on gen.grammar; bad ones are 400s naming
 * the field with the place in the schema or grammar; at most one constraint per request. */
#include "server.h"
#include "test.h"

#define CHAT(extra)                                                                                \
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]," extra "}"
#define COMPL(extra) "{\"model\":\"m\",\"prompt\":\"x\"," extra "}"

typedef struct ok_case {
    server_api api;
    const char *body;
    const char *has; /* a piece the GBNF must contain; NULL = no grammar */
} ok_case;

static const ok_case ok_cases[] = {
    {SERVER_API_CHAT, CHAT("\"response_format\":{\"type\":\"text\"}"), NULL},
    {SERVER_API_CHAT, CHAT("\"response_format\":{\"type\":\"json_object\"}"), "\"{\""},
    {SERVER_API_CHAT,
     CHAT("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\","
          "\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"zz\":{\"type\":"
          "\"boolean\"}},\"required\":[\"zz\"]}}}"),
     "\\\"zz\\\""},
    {SERVER_API_CHAT,
     CHAT("\"response_format\":{\"type\":\"json_object\",\"schema\":{\"enum\":[\"qq\"]}}"),
     "\\\"qq\\\""},
    {SERVER_API_COMPLETIONS, COMPL("\"grammar\":\"root ::= \\\"yy\\\"\""), "\"yy\""},
    {SERVER_API_COMPLETIONS, COMPL("\"grammar\":\"\""), NULL},
    {SERVER_API_COMPLETIONS, COMPL("\"json_schema\":{\"const\":7}"), "\"7\""},
    {SERVER_API_GENERATE, "{\"prompt\":\"x\",\"json_schema\":{\"type\":\"null\"}}", "\"null\""},
};

typedef struct bad_case {
    server_api api;
    const char *body;
    const char *where;
    const char *says; /* a piece of the message */
} bad_case;

static const bad_case bad_cases[] = {
    {SERVER_API_CHAT, CHAT("\"response_format\":{\"type\":\"xml\"}"), "response_format", "xml"},
    {SERVER_API_CHAT, CHAT("\"response_format\":\"json\""), "response_format", "object"},
    {SERVER_API_CHAT, CHAT("\"response_format\":{\"type\":\"json_schema\"}"), "response_format",
     "json_schema"},
    {SERVER_API_CHAT,
     CHAT("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":1,"
          "\"schema\":{}}}"),
     "response_format", "name"},
    {SERVER_API_CHAT,
     CHAT("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\","
          "\"schema\":{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"multipleOf\":2}}}}"),
     "response_format", "/items/multipleOf"},
    {SERVER_API_COMPLETIONS, COMPL("\"grammar\":\"root ::= nope\""), "grammar", "line 1"},
    {SERVER_API_COMPLETIONS, COMPL("\"grammar\":7"), "grammar", "string"},
    {SERVER_API_COMPLETIONS, COMPL("\"json_schema\":\"{}\""), "json_schema", "object"},
    {SERVER_API_COMPLETIONS,
     COMPL("\"json_schema\":{\"type\":\"string\",\"format\":\"uri-template\"}"), "json_schema",
     "/format"},
    {SERVER_API_COMPLETIONS,
     COMPL("\"grammar\":\"root ::= \\\"a\\\"\",\"json_schema\":{\"type\":\"string\"}"),
     "json_schema", "cannot be combined"},
    {SERVER_API_COMPLETIONS,
     COMPL("\"response_format\":{\"type\":\"json_object\"},\"grammar\":\"root ::= \\\"a\\\"\""),
     "grammar", "cannot be combined"},
};

int main(void) {
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const ok_case *c = &ok_cases[i];
        server_request r;
        shimmy_error err = {0};
        shimmy_status st = server_request_parse(c->api, c->body, strlen(c->body), 4096, &r, &err);
        CHECK_MSG(st == SHIMMY_OK, "%s: %s", c->body, err.message);
        if (st) continue;
        if (c->has) {
            CHECK_MSG(r.gen.grammar && r.gen.grammar == r.grammar, "%s: no grammar", c->body);
            CHECK_MSG(r.grammar && strstr(r.grammar, c->has), "%s: grammar %s lacks %s", c->body,
                      r.grammar ? r.grammar : "(null)", c->has);
            CHECK(r.grammar && !strncmp(r.grammar, "root ::=", 8));
        } else {
            CHECK_MSG(!r.grammar && !r.gen.grammar, "%s: unexpected grammar", c->body);
        }
        server_request_deinit(&r);
        CHECK(r.grammar == NULL);
    }
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        server_request r;
        shimmy_error err = {0};
        shimmy_status st = server_request_parse(c->api, c->body, strlen(c->body), 4096, &r, &err);
        CHECK_MSG(st == SHIMMY_ERR_INVALID_ARG, "%s: status %d", c->body, (int)st);
        if (st == SHIMMY_OK) server_request_deinit(&r);
        CHECK_MSG(!strcmp(err.where, c->where), "%s: where %s, want %s", c->body, err.where,
                  c->where);
        CHECK_MSG(strstr(err.message, c->says) != NULL, "%s: message \"%s\" lacks \"%s\"", c->body,
                  err.message, c->says);
        /* the error shape the client sees: param is the field */
        int http = 0;
        char *json = server_error_json(&err, &http);
        CHECK_EQ_INT(http, 400);
        CHECK(json && strstr(json, "\"param\":\"") != NULL);
        free(json);
    }
    return test_finish("server/test_structured");
}
