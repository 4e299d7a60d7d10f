/* Structured-output request fields: OpenAI's response_format (text, json_object, json_schema),
 * llama.cpp's grammar (GBNF) and json_schema. Each is checked while the request is parsed (a
 * schema converted, a grammar compiled, through the public API) so that a bad one is a 400 that
 * names the field and, in the message, the place in the schema or grammar. The job then passes
 * the GBNF text to the library as gen.grammar. */
#include "reasoning.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static shimmy_status fail(shimmy_error *err, const char *field, const char *fmt, const char *a) {
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, field, fmt, field, a);
}

/* Converts a schema (object or boolean) into r->grammar; errors keep the converter's message
 * (which gives the JSON pointer in the schema) under the request field's name. */
static shimmy_status from_schema(server_request *r, const char *field, const json_t *schema,
                                 shimmy_error *err) {
    if (!json_is_object(schema) && !json_is_boolean(schema))
        return fail(err, field, "'%s' must be a JSON Schema (an object)%s", "");
    char *text = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, field, "out of memory");
    char *gbnf = NULL;
    shimmy_error e = {0};
    shimmy_status st = shimmy_json_schema_to_gbnf(text, &gbnf, &e);
    free(text);
    /* Compiled now too: past the grammar's own limits it is a 400 here, not a failed job. */
    if (!st && (st = shimmy_grammar_check(gbnf, &e))) shimmy_free(gbnf);
    if (st) return shimmy_error_set(err, st, field, "'%s': %s", field, e.message);
    free(r->grammar);
    r->gen.grammar = r->grammar = gbnf; /* malloc'd by the library: shimmy_free is free */
    snprintf(r->grammar_from, sizeof r->grammar_from, "%s", field);
    return SHIMMY_OK;
}

static shimmy_status response_format(server_request *r, const json_t *v, shimmy_error *err) {
    const char *f = "response_format";
    if (!json_is_object(v)) return fail(err, f, "'%s' must be an object%s", "");
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!type)
        return fail(err, f, "'%s.type' must be \"text\", \"json_object\" or \"json_schema\"%s", "");
    if (!strcmp(type, "text")) return SHIMMY_OK;
    if (!strcmp(type, "json_object")) {
        /* llama.cpp's extension: {"type": "json_object", "schema": {...}}. */
        const json_t *schema = json_object_get(v, "schema");
        json_t *any = json_pack("{s:s}", "type", "object");
        shimmy_status st = from_schema(r, f, schema ? schema : any, err);
        json_decref(any);
        return st;
    }
    if (strcmp(type, "json_schema"))
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, f,
                                "'%s.type' \"%s\" is not one of \"text\", \"json_object\", "
                                "\"json_schema\"",
                                f, type);
    const json_t *js = json_object_get(v, "json_schema");
    if (!json_is_object(js))
        return fail(err, f, "'%s.json_schema' must be an object with \"name\" and \"schema\"%s",
                    "");
    const json_t *name = json_object_get(js, "name"), *strict = json_object_get(js, "strict");
    if (name && !json_is_string(name))
        return fail(err, f, "'%s.json_schema.name' must be a string%s", "");
    if (strict && !json_is_boolean(strict) && !json_is_null(strict))
        return fail(err, f, "'%s.json_schema.strict' must be a boolean%s", "");
    /* Enforced whether or not strict is set: the grammar is the only way to honour a schema. */
    const json_t *schema = json_object_get(js, "schema");
    json_t *any = json_pack("{s:s}", "type", "object");
    shimmy_status st = from_schema(r, f, schema ? schema : any, err);
    json_decref(any);
    return st;
}

shimmy_status server_structured_field(server_request *r, const char *name, const json_t *v,
                                      shimmy_error *err) {
    if (r->grammar_from[0] && strcmp(r->grammar_from, name))
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                "'%s' cannot be combined with '%s': pass one constraint", name,
                                r->grammar_from);
    if (!strcmp(name, "response_format")) return response_format(r, v, err);
    if (!strcmp(name, "json_schema")) return from_schema(r, name, v, err);
    /* grammar: GBNF text */
    if (!json_is_string(v)) return fail(err, name, "'%s' must be a string (GBNF)%s", "");
    if (!json_string_length(v)) return SHIMMY_OK;
    if (json_string_length(v) > SHIMMY_MAX_GRAMMAR_LEN)
        return fail(err, name, "'%s' is longer than the limit (1 MiB)%s", "");
    shimmy_error e = {0};
    shimmy_status st = shimmy_grammar_check(json_string_value(v), &e);
    if (st) return shimmy_error_set(err, st, name, "'%s': %s", name, e.message);
    char *copy = strdup(json_string_value(v));
    if (!copy) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, name, "out of memory");
    free(r->grammar);
    r->gen.grammar = r->grammar = copy;
    snprintf(r->grammar_from, sizeof r->grammar_from, "%s", name);
    return SHIMMY_OK;
}

void server_structured_finish(server_request *r) {
    r->gen.grammar = r->grammar;
}

void server_structured_deinit(server_request *r) {
    free(r->grammar);
    r->grammar = NULL;
    r->gen.grammar = NULL;
    r->grammar_from[0] = 0;
}

/* A prompt that opens the thinking ("<think>" at its end: DeepSeek-R1's template) gets an answer
 * that starts after "</think>", so the constraint starts there. A model that merely can think is
 * held to the grammar from its first token (it answers without thinking): an optional thinking
 * block cannot be told apart from an answer that breaks the grammar. */
const char *server_structured_after(const server_job *j) {
    if (!j->req.grammar || !j->req.messages || !j->n_choices) return NULL;
    const shimmy_prompt *p = j->prompt[0];
    size_t n = shimmy_prompt_token_count(p), k = n < 4 ? n : 4;
    char *text = NULL;
    size_t len = 0;
    if (!k || shimmy_detokenize(shimmy_model_vocab(j->model), shimmy_prompt_tokens(p) + n - k, k,
                                SHIMMY_DETOKENIZE_SPECIAL, &text, &len, NULL))
        return NULL;
    bool opens = server_reasoning_prompt_opens(text, len);
    shimmy_free(text);
    return opens ? "</think>" : NULL;
}
