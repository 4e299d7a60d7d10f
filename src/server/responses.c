/* OpenAI Responses requests -> chat requests (pure; see compat.h). The server keeps no
 * responses, so the fields that refer to stored state are refused with a message saying so. */
#include "compat.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static shimmy_status fail(shimmy_error *err, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static shimmy_status fail(shimmy_error *err, const char *where, const char *fmt, ...) {
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where, "'%s' %s", where, msg);
}

static shimmy_status nomem(shimmy_error *err, const char *where) {
    return shimmy_error_set(err, SHIMMY_ERR_NOMEM, where, "out of memory");
}

static bool is_set(const json_t *v) {
    return v && !json_is_null(v);
}

/* An input_text, output_text or refusal part's text; images, files and audio are refused
 * (text-only models). */
static shimmy_status text_part(const json_t *p, const char *w, const json_t **text,
                               shimmy_error *err) {
    const char *type = json_string_value(json_object_get(p, "type"));
    const char *key = type && strcmp(type, "refusal") == 0 ? "refusal" : "text";
    const json_t *t = json_object_get(p, key);
    bool is_text = type && (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0 ||
                            strcmp(type, "refusal") == 0);
    if (json_is_object(p) && is_text && json_is_string(t)) {
        *text = t;
        return SHIMMY_OK;
    }
    if (type && strncmp(type, "input_", 6) == 0)
        return fail(
            err, w,
            "is \"%.40s\": shimmy serves text-only models, only input_text content is supported",
            type);
    return fail(err, w, "must be {\"type\":\"input_text\",\"text\":string}");
}

/* Text of a string or an array of text parts, joined with newlines. */
static shimmy_status text_of(const json_t *v, const char *where, json_t **out, shimmy_error *err) {
    return server_compat_join_text(v, where, "must be a string or an array of content parts",
                                   text_part, out, err);
}

static shimmy_status message_item(const json_t *it, size_t i, json_t *msgs, shimmy_error *err) {
    char w[96];
    const char *role = json_string_value(json_object_get(it, "role"));
    snprintf(w, sizeof w, "input[%zu].role", i);
    static const char *const roles[] = {"user", "assistant", "system", "developer"};
    bool known = false;
    for (size_t k = 0; role && k < 4; k++) known = known || strcmp(role, roles[k]) == 0;
    if (!known) return fail(err, w, "must be \"user\", \"assistant\", \"system\" or \"developer\"");
    json_t *text = NULL;
    snprintf(w, sizeof w, "input[%zu].content", i);
    const json_t *c = json_object_get(it, "content");
    if (!c) return fail(err, w, "is required");
    shimmy_status st = text_of(c, w, &text, err);
    if (st) return st;
    if (strcmp(role, "developer") == 0) role = "system";
    return json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", text))
               ? nomem(err, w)
               : SHIMMY_OK;
}

/* A function_call item joins the assistant turn right before it (or opens one): templates
 * expect one assistant message carrying all of a turn's calls. */
static shimmy_status call_item(const json_t *it, size_t i, json_t *msgs, shimmy_error *err) {
    char w[96];
    const char *call_id = json_string_value(json_object_get(it, "call_id"));
    const char *name = json_string_value(json_object_get(it, "name"));
    const char *args = json_string_value(json_object_get(it, "arguments"));
    snprintf(w, sizeof w, "input[%zu].call_id", i);
    if (!call_id || !*call_id) return fail(err, w, "is required (a string)");
    snprintf(w, sizeof w, "input[%zu].name", i);
    if (!name || !*name) return fail(err, w, "is required (a string)");
    snprintf(w, sizeof w, "input[%zu].arguments", i);
    if (!args) return fail(err, w, "is required (the JSON text of the arguments)");
    json_t *parsed = json_loads(args, 0, NULL);
    bool object = json_is_object(parsed);
    json_decref(parsed);
    if (!object) return fail(err, w, "must be the JSON text of an object");
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    const char *lrole = json_string_value(json_object_get(last, "role"));
    json_t *msg = last;
    if (!lrole || strcmp(lrole, "assistant") != 0) {
        msg = json_pack("{s:s,s:s}", "role", "assistant", "content", "");
        if (!msg || json_array_append_new(msgs, msg)) return nomem(err, w);
    }
    json_t *calls = json_object_get(msg, "tool_calls");
    if (!calls) {
        calls = json_array();
        if (!calls || json_object_set_new(msg, "tool_calls", calls)) return nomem(err, w);
    }
    return json_array_append_new(calls,
                                 json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", call_id, "type",
                                           "function", "function", "name", name, "arguments", args))
               ? nomem(err, w)
               : SHIMMY_OK;
}

static shimmy_status output_item(const json_t *it, size_t i, json_t *msgs, shimmy_error *err) {
    char w[96];
    const char *call_id = json_string_value(json_object_get(it, "call_id"));
    snprintf(w, sizeof w, "input[%zu].call_id", i);
    if (!call_id || !*call_id)
        return fail(err, w, "is required (the call_id of the function_call)");
    snprintf(w, sizeof w, "input[%zu].output", i);
    const json_t *o = json_object_get(it, "output");
    if (!o) return fail(err, w, "is required");
    json_t *text = NULL;
    shimmy_status st = text_of(o, w, &text, err);
    if (st) return st;
    return json_array_append_new(msgs, json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id",
                                                 call_id, "content", text))
               ? nomem(err, w)
               : SHIMMY_OK;
}

static shimmy_status convert_input(const json_t *input, json_t *msgs, shimmy_error *err) {
    if (!is_set(input)) return fail(err, "input", "is required (a string or an array of items)");
    if (json_is_string(input))
        return json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", input))
                   ? nomem(err, "input")
                   : SHIMMY_OK;
    if (!json_is_array(input)) return fail(err, "input", "must be a string or an array of items");
    if (json_array_size(input) == 0) return fail(err, "input", "must not be empty");
    size_t i;
    const json_t *it;
    json_array_foreach(input, i, it) {
        char w[96];
        snprintf(w, sizeof w, "input[%zu]", i);
        if (!json_is_object(it)) return fail(err, w, "must be an object (an input item)");
        const char *type = json_string_value(json_object_get(it, "type"));
        shimmy_status st;
        if (!type || strcmp(type, "message") == 0)
            st = message_item(it, i, msgs, err);
        else if (strcmp(type, "function_call") == 0)
            st = call_item(it, i, msgs, err);
        else if (strcmp(type, "function_call_output") == 0)
            st = output_item(it, i, msgs, err);
        else if (strcmp(type, "reasoning") == 0)
            st = SHIMMY_OK; /* earlier thinking: the templates drop it from the history too */
        else if (strcmp(type, "item_reference") == 0)
            st = fail(err, strcat(w, ".type"),
                      "is \"item_reference\": this server is stateless and stores no items; send "
                      "the items themselves");
        else
            st = fail(err, strcat(w, ".type"),
                      "\"%.40s\" is not supported (message, function_call, function_call_output, "
                      "reasoning)",
                      type);
        if (st) return st;
    }
    if (json_array_size(msgs) == 0) return fail(err, "input", "holds no message");
    return SHIMMY_OK;
}

static shimmy_status convert_tools(const json_t *tools, json_t *chat, shimmy_error *err) {
    if (!json_is_array(tools)) return fail(err, "tools", "must be an array of tools");
    json_t *arr = json_array();
    if (!arr || json_object_set_new(chat, "tools", arr)) return nomem(err, "tools");
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        char w[64];
        snprintf(w, sizeof w, "tools[%zu]", i);
        if (!json_is_object(t))
            return fail(err, w, "must be an object {\"type\":\"function\", ...}");
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!type || strcmp(type, "function") != 0)
            return fail(err, strcat(w, ".type"),
                        "must be \"function\" (got \"%.40s\"): hosted tools (web search, file "
                        "search, computer use, ...) are not available on this server",
                        type ? type : "");
        json_t *f = json_object();
        if (!f) return nomem(err, w);
        static const char *const keys[] = {"name", "description", "parameters", "strict"};
        for (size_t k = 0; k < 4; k++) {
            const json_t *v = json_object_get(t, keys[k]);
            if (v) json_object_set(f, keys[k], (json_t *)v);
        }
        if (json_array_append_new(arr, json_pack("{s:s,s:o}", "type", "function", "function", f)))
            return nomem(err, w);
    }
    return SHIMMY_OK;
}

static shimmy_status convert_tool_choice(const json_t *c, json_t *chat, shimmy_error *err) {
    if (json_is_string(c)) return json_object_set(chat, "tool_choice", (json_t *)c), SHIMMY_OK;
    const char *type = json_string_value(json_object_get(c, "type"));
    if (!json_is_object(c) || !type || strcmp(type, "function") != 0)
        return fail(err, "tool_choice",
                    "must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"name\"}");
    const char *name = json_string_value(json_object_get(c, "name"));
    if (!name) return fail(err, "tool_choice.name", "is required (the name of a tool)");
    json_t *v = json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", name);
    return !v || json_object_set_new(chat, "tool_choice", v) ? nomem(err, "tool_choice")
                                                             : SHIMMY_OK;
}

/* text.format -> the chat API's response_format (structured outputs run there). */
static shimmy_status convert_text(const json_t *text, json_t *chat, server_compat_req *x,
                                  shimmy_error *err) {
    if (!json_is_object(text)) return fail(err, "text", "must be an object {\"format\"}");
    const json_t *f = json_object_get(text, "format");
    if (!is_set(f)) return SHIMMY_OK;
    const char *type = json_string_value(json_object_get(f, "type"));
    if (!json_is_object(f) || !type)
        return fail(err, "text.format.type", "is required (text, json_object or json_schema)");
    if (strcmp(type, "text") == 0) return SHIMMY_OK;
    json_t *rf;
    if (strcmp(type, "json_object") == 0) {
        x->format = 1;
        rf = json_pack("{s:s}", "type", "json_object");
    } else if (strcmp(type, "json_schema") == 0) {
        const json_t *schema = json_object_get(f, "schema");
        const json_t *name = json_object_get(f, "name");
        if (!json_is_string(name) || json_string_length(name) == 0)
            return fail(err, "text.format.name", "is required (a string)");
        if (!json_is_object(schema))
            return fail(err, "text.format.schema", "is required and must be a JSON Schema object");
        x->format = 2;
        x->schema = json_incref((json_t *)schema);
        rf = json_pack("{s:s,s:{s:O,s:O}}", "type", "json_schema", "json_schema", "name", name,
                       "schema", schema);
        const json_t *strict = json_object_get(f, "strict");
        if (rf && is_set(strict))
            json_object_set(json_object_get(rf, "json_schema"), "strict", (json_t *)strict);
    } else {
        return fail(err, "text.format.type",
                    "must be \"text\", \"json_object\" or \"json_schema\"");
    }
    return !rf || json_object_set_new(chat, "response_format", rf) ? nomem(err, "text") : SHIMMY_OK;
}

/* Fields naming stored state: refused, because nothing is stored. */
static shimmy_status check_stateless(const json_t *root, shimmy_error *err) {
    const json_t *v;
    if (is_set(v = json_object_get(root, "previous_response_id")))
        return fail(err, "previous_response_id",
                    "is not supported: this server's Responses API is stateless and keeps no "
                    "responses; send the whole conversation in 'input' (with the output items you "
                    "got back)");
    if (is_set(v = json_object_get(root, "conversation")))
        return fail(err, "conversation",
                    "is not supported: this server is stateless; send the conversation in 'input'");
    if (json_is_true(json_object_get(root, "store")))
        return fail(err, "store",
                    "must be false or absent: this server's Responses API is stateless and cannot "
                    "store responses");
    if (json_is_true(json_object_get(root, "background")))
        return fail(err, "background", "is not supported: responses run in the foreground");
    if (is_set(v = json_object_get(root, "prompt")))
        return fail(err, "prompt", "is not supported: stored prompt templates need OpenAI's store");
    return SHIMMY_OK;
}

static shimmy_status build_chat(const json_t *root, server_compat_req *x, json_t *chat,
                                shimmy_error *err) {
    shimmy_status st = check_stateless(root, err);
    if (st) return st;
    const json_t *v;
    if (!json_is_string(json_object_get(root, "model")))
        return fail(err, "model", "is required and must be a string");
    static const char *const copy[] = {"model",
                                       "stream",
                                       "temperature",
                                       "top_p",
                                       "seed",
                                       "top_k",
                                       "min_p",
                                       "repeat_penalty",
                                       "presence_penalty",
                                       "frequency_penalty",
                                       "logit_bias",
                                       "lora",
                                       "parallel_tool_calls"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++)
        if (is_set(v = json_object_get(root, copy[i]))) json_object_set(chat, copy[i], (json_t *)v);
    if (is_set(v = json_object_get(root, "max_output_tokens"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return fail(err, "max_output_tokens", "must be a positive integer");
        json_object_set(chat, "max_tokens", (json_t *)v);
    }
    json_t *msgs = json_array();
    if (!msgs || json_object_set_new(chat, "messages", msgs)) return nomem(err, "input");
    if (is_set(v = json_object_get(root, "instructions"))) {
        if (!json_is_string(v)) return fail(err, "instructions", "must be a string");
        if (json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", v)))
            return nomem(err, "instructions");
    }
    if ((st = convert_input(json_object_get(root, "input"), msgs, err))) return st;
    if (is_set(v = json_object_get(root, "tools")) && (st = convert_tools(v, chat, err))) return st;
    if (is_set(v = json_object_get(root, "tool_choice")) &&
        (st = convert_tool_choice(v, chat, err)))
        return st;
    if (is_set(v = json_object_get(root, "text")) && (st = convert_text(v, chat, x, err)))
        return st;
    if (is_set(v = json_object_get(root, "metadata"))) {
        const char *k;
        const json_t *m;
        if (!json_is_object(v)) return fail(err, "metadata", "must be an object of strings");
        json_object_foreach((json_t *)v, k, m) {
            if (!json_is_string(m)) return fail(err, "metadata", "must be an object of strings");
        }
    }
    if (is_set(v = json_object_get(root, "reasoning"))) {
        const json_t *e = json_object_get(v, "effort");
        if (!json_is_object(v)) return fail(err, "reasoning", "must be an object {\"effort\"}");
        if (is_set(e) && !json_is_string(e))
            return fail(err, "reasoning.effort", "must be a string");
        /* A template that thinks hears effort "none" as enable_thinking false. */
        if (json_is_string(e) && strcmp(json_string_value(e), "none") == 0)
            json_object_set_new(chat, "chat_template_kwargs",
                                json_pack("{s:b}", "enable_thinking", 0));
    }
    /* Log-probabilities: asked for through include, or by asking for alternatives. */
    if (is_set(v = json_object_get(root, "include"))) {
        size_t i;
        const json_t *e;
        if (!json_is_array(v)) return fail(err, "include", "must be an array of strings");
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) return fail(err, "include", "must be an array of strings");
            if (strcmp(json_string_value(e), "message.output_text.logprobs") == 0)
                json_object_set_new(chat, "logprobs", json_true());
        }
    }
    if (is_set(v = json_object_get(root, "top_logprobs"))) {
        json_object_set(chat, "top_logprobs", (json_t *)v);
        if (json_is_integer(v) && json_integer_value(v) > 0)
            json_object_set_new(chat, "logprobs", json_true());
    }
    if (is_set(v = json_object_get(root, "user")) && !json_is_string(v))
        return fail(err, "user", "must be a string");
    if (is_set(v = json_object_get(root, "truncation")) &&
        (!json_is_string(v) || (strcmp(json_string_value(v), "auto") != 0 &&
                                strcmp(json_string_value(v), "disabled") != 0)))
        return fail(err, "truncation", "must be \"auto\" or \"disabled\"");
    /* What the response object repeats of the request. */
    static const char *const echo[] = {
        "instructions", "max_output_tokens", "metadata", "parallel_tool_calls",
        "reasoning",    "temperature",       "text",     "tool_choice",
        "tools",        "top_logprobs",      "top_p",    "truncation",
        "user"};
    x->echo = json_object();
    if (!x->echo) return nomem(err, NULL);
    for (size_t i = 0; i < sizeof echo / sizeof echo[0]; i++)
        if ((v = json_object_get(root, echo[i]))) json_object_set(x->echo, echo[i], (json_t *)v);
    return SHIMMY_OK;
}

/* The chat parser's names for what came from Responses fields, renamed back. */
static void rename_field(shimmy_error *err) {
    static const char *const map[][2] = {{"max_tokens", "max_output_tokens"},
                                         {"response_format.json_schema", "text.format"},
                                         {"response_format", "text.format"},
                                         {".function.", "."}};
    char *fields[] = {err->where, err->message};
    size_t caps[] = {sizeof err->where, sizeof err->message};
    for (size_t f = 0; f < 2; f++) {
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
            char *p = strstr(fields[f], map[k][0]);
            if (!p) continue;
            char tmp[sizeof err->message];
            snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(p - fields[f]), fields[f], map[k][1],
                     p + strlen(map[k][0]));
            snprintf(fields[f], caps[f], "%s", tmp);
        }
    }
}

shimmy_status server_responses_parse(const char *body, size_t len, int32_t cap, server_request *out,
                                     server_compat_req *x, shimmy_error *err) {
    memset(out, 0, sizeof *out);
    json_t *root;
    shimmy_status bst = server_json_body(body, len, &root, err);
    if (bst) return bst;
    json_t *chat = json_object();
    shimmy_status st = chat ? build_chat(root, x, chat, err) : nomem(err, NULL);
    json_decref(root);
    char *text = st ? NULL : json_dumps(chat, JSON_COMPACT);
    json_decref(chat);
    if (!st && !text) st = nomem(err, NULL);
    if (!st) {
        st = server_request_parse(SERVER_API_CHAT, text, strlen(text), cap, out, err);
        if (st)
            rename_field(err);
        else
            out->max_tokens_bound = true; /* this API's limit is a bound, not a demand */
    }
    free(text);
    return st;
}
