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

/* ---- a forced tool call ---- */

/* $ref "#..." inside a tool's parameters, moved under `base` of the combined schema. */
static void rebase_refs(json_t *s, const char *base) {
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(s)) json_array_foreach(s, i, v) rebase_refs(v, base);
    if (!json_is_object(s)) return;
    json_object_foreach(s, k, v) {
        const char *ref = json_string_value(v);
        if (!strcmp(k, "$ref") && ref && ref[0] == '#') {
            char *to = malloc(strlen(base) + strlen(ref) + 1);
            if (!to) continue;
            sprintf(to, "%s%s", base, ref + 1);
            json_object_set_new(s, k, json_string(to));
            free(to);
        } else {
            rebase_refs(v, base);
        }
    }
}

/* The JSON Schema of one call object: {"name": <const>, "arguments"|"parameters": <params>}. */
static json_t *call_schema(const json_t *tool, const char *args_key, const char *base) {
    const json_t *fn = json_object_get(tool, "function");
    const json_t *params = json_object_get(fn, "parameters");
    json_t *p = params ? json_deep_copy(params) : json_pack("{s:s}", "type", "object");
    if (json_is_object(p) && !json_object_get(p, "type"))
        json_object_set_new(p, "type", json_string("object"));
    if (json_is_object(p)) rebase_refs(p, base);
    return json_pack("{s:s,s:{s:{s:O},s:o},s:[s,s],s:b}", "type", "object", "properties", "name",
                     "const", json_object_get(fn, "name"), args_key, p, "required", "name",
                     args_key, "additionalProperties", 0);
}

shimmy_status server_structured_tools(server_job *j, shimmy_error *err) {
    const json_t *tools = j->req.tools.tools;
    if (!j->req.tools.required || !tools) return SHIMMY_OK;
    if (j->req.grammar)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "tool_choice",
                                "'tool_choice' forces a tool call, which cannot be combined with "
                                "'%s'",
                                j->req.grammar_from);
    if (j->tool_format == SERVER_TOOLS_HARMONY)
        return shimmy_error_set(err, SHIMMY_ERR_UNSUPPORTED, "tool_choice",
                                "'tool_choice' cannot force a call for this model: its harmony "
                                "format (gpt-oss) calls tools in messages that no grammar here "
                                "describes; use \"auto\"");
    /* Each tool's parameters alone first, so that an error points into that tool. */
    size_t n = json_array_size(tools), i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        const json_t *params = json_object_get(json_object_get(t, "function"), "parameters");
        char *text = params ? json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *gbnf = NULL;
        shimmy_error e = {0};
        shimmy_status st = text ? shimmy_json_schema_to_gbnf(text, &gbnf, &e) : SHIMMY_OK;
        free(text);
        shimmy_free(gbnf);
        if (st) {
            char w[64];
            snprintf(w, sizeof w, "tools[%zu].function.parameters", i);
            return shimmy_error_set(err, st, w, "'%s' cannot be enforced for tool_choice: %s", w,
                                    e.message);
        }
    }
    const server_tool_format f = j->tool_format;
    const char *key = f == SERVER_TOOLS_LLAMA3 ? "parameters" : "arguments";
    json_t *root = n == 1 ? NULL : json_pack("{s:[]}", "anyOf");
    json_t *one = NULL;
    json_array_foreach(tools, i, t) {
        char base[96];
        if (n == 1)
            snprintf(base, sizeof base, "#/properties/%s", key);
        else
            snprintf(base, sizeof base, "#/anyOf/%zu/properties/%s", i, key);
        json_t *c = call_schema(t, key, base);
        if (n == 1)
            one = c;
        else if (root)
            json_array_append_new(json_object_get(root, "anyOf"), c);
    }
    if (n == 1) root = one;
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    char *gbnf = NULL;
    shimmy_error e = {0};
    shimmy_status st = text ? shimmy_json_schema_to_gbnf(text, &gbnf, &e) : SHIMMY_ERR_NOMEM;
    free(text);
    if (st) return shimmy_error_set(err, st, "tools", "'tools': %s", e.message);
    /* The call object is `root`; the format's markers go around it. */
    static const char *const wrap[][2] = {
        [SERVER_TOOLS_GENERIC] = {"", ""},
        [SERVER_TOOLS_HERMES] = {"\"<tool_call>\\n\" ", " \"\\n</tool_call>\""},
        [SERVER_TOOLS_LLAMA3] = {"", ""},
        [SERVER_TOOLS_MISTRAL] = {"\"[TOOL_CALLS][\" ", " \"]\""},
    };
    const char *nl = strchr(gbnf, '\n');
    size_t head = sizeof "root ::= " - 1;
    if (strncmp(gbnf, "root ::= ", head) || !nl) {
        shimmy_free(gbnf);
        return shimmy_error_set(err, SHIMMY_ERR_INTERNAL, "tools", "unexpected grammar shape");
    }
    size_t len = strlen(gbnf) + strlen(wrap[f][0]) + strlen(wrap[f][1]) + 1;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "root ::= %s%.*s%s%s", wrap[f][0], (int)(nl - gbnf - head), gbnf + head,
                 wrap[f][1], nl);
    shimmy_free(gbnf);
    if (!out) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "tools", "out of memory");
    if ((st = shimmy_grammar_check(out, &e))) {
        free(out);
        return shimmy_error_set(err, st, "tools", "'tools': %s", e.message);
    }
    free(j->req.grammar);
    j->req.gen.grammar = j->req.grammar = out;
    snprintf(j->req.grammar_from, sizeof j->req.grammar_from, "tool_choice");
    return SHIMMY_OK;
}
