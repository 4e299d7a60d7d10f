/* Anthropic Messages requests -> chat requests (pure; see compat.h), the stop-sequence scan and
 * the pieces of the front ends both APIs share. */
#include "compat.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- shared ---- */

void server_compat_req_free(void *p) {
    server_compat_req *x = p;
    if (!x) return;
    for (size_t i = 0; i < x->n_stop; i++) free(x->stop[i]);
    json_decref(x->echo);
    json_decref(x->schema);
    json_decref(x->output);
    json_decref(x->lp_item);
    json_decref(x->lp_pending);
    free(x->pend);
    free(x->text);
    free(x->think);
    free(x);
}

void server_compat_id(const char *prefix, char *out, size_t cap) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30)) +
                 (atomic_fetch_add(&counter, 1) + 1) * 0x9E3779B97F4A7C15ull;
    size_t n = strlen(prefix);
    if (cap < n + 25) {
        if (cap) out[0] = '\0';
        return;
    }
    memcpy(out, prefix, n);
    for (size_t i = 0; i < 24; i++) {
        /* splitmix64 steps: ids only need to be unique, not secret */
        x += 0x9E3779B97F4A7C15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        out[n + i] = abc[(z ^ (z >> 31)) % 62];
    }
    out[n + 24] = '\0';
}

size_t server_compat_stop_scan(const char *text, size_t len, char *const *stops, size_t n,
                               int *which) {
    *which = 0;
    size_t hold = len;
    for (size_t at = 0; at < len; at++) {
        size_t best = 0;
        for (size_t k = 0; k < n; k++) {
            size_t sl = strlen(stops[k]);
            size_t avail = len - at < sl ? len - at : sl;
            if (memcmp(text + at, stops[k], avail) != 0) continue;
            if (avail == sl) {
                if (sl > best) {
                    best = sl;
                    *which = (int)k + 1;
                }
            } else if (hold == len) {
                hold = at; /* a sequence may begin here: the text ends inside it */
            }
        }
        if (best) return at;
    }
    return hold;
}

/* ---- errors ---- */

const char *server_anthropic_error_type(shimmy_status st) {
    switch (st) {
    case SHIMMY_ERR_UNAUTHORIZED: return "authentication_error";
    case SHIMMY_ERR_MODEL_NOT_FOUND:
    case SHIMMY_ERR_NOT_FOUND: return "not_found_error";
    case SHIMMY_ERR_TOO_LARGE: return "request_too_large";
    case SHIMMY_ERR_BUSY: return "overloaded_error";
    default: break;
    }
    int http = shimmy_status_http(st);
    if (http == 403) return "permission_error";
    if (http == 404) return "not_found_error";
    if (http == 429) return "rate_limit_error";
    return http >= 500 ? "api_error" : "invalid_request_error";
}

json_t *server_anthropic_error_object(const shimmy_error *err) {
    const char *msg = err->message[0] ? err->message : shimmy_status_message(err->status);
    json_t *m = json_string(msg);
    if (!m) m = json_string(shimmy_status_message(err->status));
    return json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type",
                     server_anthropic_error_type(err->status), "message", m);
}

const char *server_anthropic_stop_reason(const char *finish, bool stop_sequence, bool tool_use) {
    if (tool_use) return "tool_use";
    if (stop_sequence) return "stop_sequence";
    if (finish && strcmp(finish, "length") == 0) return "max_tokens";
    return "end_turn";
}

/* ---- requests ---- */

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

static bool valid_tool_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", s[i]))
            return false;
    return true;
}

shimmy_status server_compat_join_text(const json_t *v, const char *where, const char *shape,
                                      server_compat_part_fn part, json_t **out, shimmy_error *err) {
    if (json_is_string(v)) {
        *out = json_incref((json_t *)v);
        return SHIMMY_OK;
    }
    if (!json_is_array(v)) return fail(err, where, "%s", shape);
    char *buf = NULL;
    size_t len = 0, i;
    const json_t *b;
    json_array_foreach(v, i, b) {
        char w[128];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        const json_t *t = NULL;
        shimmy_status st = part(b, w, &t, err);
        if (st) {
            free(buf);
            return st;
        }
        size_t n = json_string_length(t);
        char *p = realloc(buf, len + n + 2);
        if (!p) {
            free(buf);
            return nomem(err, where);
        }
        buf = p;
        if (i) buf[len++] = '\n';
        memcpy(buf + len, json_string_value(t), n);
        len += n;
    }
    *out = json_stringn_nocheck(buf ? buf : "", len);
    free(buf);
    return *out ? SHIMMY_OK : nomem(err, where);
}

/* A {"type":"text","text"} block's text. */
static shimmy_status text_block(const json_t *b, const char *w, const json_t **text,
                                shimmy_error *err) {
    const char *type = json_string_value(json_object_get(b, "type"));
    const json_t *t = json_object_get(b, "text");
    if (json_is_object(b) && type && strcmp(type, "text") == 0 && json_is_string(t)) {
        *text = t;
        return SHIMMY_OK;
    }
    if (type && (strcmp(type, "image") == 0 || strcmp(type, "document") == 0))
        return fail(err, w, "is %s content: shimmy serves text-only models", type);
    return fail(err, w, "must be {\"type\":\"text\",\"text\":string}");
}

/* Text of a string or an array of {"type":"text","text"} blocks, joined with newlines. */
static shimmy_status text_of(const json_t *v, const char *where, json_t **out, shimmy_error *err) {
    return server_compat_join_text(v, where, "must be a string or an array of text blocks",
                                   text_block, out, err);
}

/* One Anthropic message -> chat messages appended to out: a user turn's tool_result blocks
 * become tool messages (first, in order), its text one user message; an assistant turn's
 * tool_use blocks become tool_calls. Thinking blocks of earlier turns are dropped. */
static shimmy_status convert_message(const json_t *m, size_t i, json_t *out, shimmy_error *err) {
    char w[128];
    snprintf(w, sizeof w, "messages[%zu]", i);
    if (!json_is_object(m)) return fail(err, w, "must be an object {\"role\", \"content\"}");
    const char *role = json_string_value(json_object_get(m, "role"));
    snprintf(w, sizeof w, "messages[%zu].role", i);
    if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
        return fail(err, w, "must be \"user\" or \"assistant\" (the system prompt is 'system')");
    bool user = role[0] == 'u';
    const json_t *content = json_object_get(m, "content");
    snprintf(w, sizeof w, "messages[%zu].content", i);
    if (json_is_string(content))
        return json_array_append_new(out, json_pack("{s:s,s:O}", "role", role, "content", content))
                   ? nomem(err, w)
                   : SHIMMY_OK;
    if (!json_is_array(content)) return fail(err, w, "must be a string or an array of blocks");
    json_t *calls = json_array(), *text = NULL;
    char *buf = NULL;
    size_t len = 0, k;
    shimmy_status st = calls ? SHIMMY_OK : nomem(err, w);
    const json_t *b;
    json_array_foreach(content, k, b) {
        if (st) break;
        snprintf(w, sizeof w, "messages[%zu].content[%zu]", i, k);
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!json_is_object(b) || !type) {
            st = fail(err, w, "must be a content block object with a \"type\"");
        } else if (strcmp(type, "text") == 0) {
            const json_t *t = json_object_get(b, "text");
            char *p = json_is_string(t) ? realloc(buf, len + json_string_length(t) + 2) : NULL;
            if (!json_is_string(t)) {
                snprintf(w, sizeof w, "messages[%zu].content[%zu].text", i, k);
                st = fail(err, w, "is required and must be a string");
            } else if (!p) {
                st = nomem(err, w);
            } else {
                buf = p;
                if (len) buf[len++] = '\n';
                memcpy(buf + len, json_string_value(t), json_string_length(t));
                len += json_string_length(t);
            }
        } else if (strcmp(type, "tool_use") == 0 && !user) {
            const char *id = json_string_value(json_object_get(b, "id"));
            const char *name = json_string_value(json_object_get(b, "name"));
            const json_t *input = json_object_get(b, "input");
            char *args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
            if (!id || !*id)
                st = fail(err, strcat(w, ".id"), "is required (the tool_use id)");
            else if (!name || !valid_tool_name(name))
                st = fail(err, strcat(w, ".name"), "must be a tool name");
            else if (!json_is_object(input))
                st = fail(err, strcat(w, ".input"), "must be an object");
            else if (!args ||
                     json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id,
                                                            "type", "function", "function", "name",
                                                            name, "arguments", args)))
                st = nomem(err, w);
            free(args);
        } else if (strcmp(type, "tool_result") == 0 && user) {
            const char *id = json_string_value(json_object_get(b, "tool_use_id"));
            const json_t *c = json_object_get(b, "content");
            json_t *res = NULL;
            char cw[160];
            snprintf(cw, sizeof cw, "%s.content", w);
            if (!id || !*id)
                st = fail(err, strcat(w, ".tool_use_id"), "is required (the id of the tool_use)");
            else if (!c || json_is_null(c))
                res = json_string("");
            else
                st = text_of(c, cw, &res, err);
            if (!st && json_is_true(json_object_get(b, "is_error"))) {
                /* The template has no error flag: say it in the text the model reads. */
                char *e = NULL;
                if (asprintf(&e, "Error: %s", json_string_value(res)) < 0) e = NULL;
                json_decref(res);
                res = e ? json_string(e) : NULL;
                free(e);
            }
            if (!st &&
                (!res || json_array_append_new(out, json_pack("{s:s,s:s,s:o}", "role", "tool",
                                                              "tool_call_id", id, "content", res))))
                st = nomem(err, w);
        } else if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0) {
            if (user) st = fail(err, strcat(w, ".type"), "thinking blocks belong to assistant");
        } else if (strcmp(type, "image") == 0 || strcmp(type, "document") == 0) {
            st = fail(err, strcat(w, ".type"),
                      "is \"%s\": shimmy serves text-only models, only text content is supported",
                      type);
        } else {
            st =
                fail(err, strcat(w, ".type"), "\"%.40s\" is not supported in a %s message (text%s)",
                     type, role, user ? ", tool_result" : ", tool_use, thinking");
        }
    }
    if (!st && (len || json_array_size(calls) == 0 || !user)) {
        text = json_stringn_nocheck(buf ? buf : "", len);
        json_t *msg = text ? json_pack("{s:s,s:o}", "role", role, "content", text) : NULL;
        if (msg && !user && json_array_size(calls)) json_object_set(msg, "tool_calls", calls);
        if (!msg || json_array_append_new(out, msg)) st = nomem(err, "messages");
    }
    free(buf);
    json_decref(calls);
    return st;
}

static shimmy_status convert_tools(const json_t *tools, json_t *chat, shimmy_error *err) {
    if (!json_is_array(tools)) return fail(err, "tools", "must be an array of tools");
    json_t *arr = json_array();
    if (!arr) return nomem(err, "tools");
    json_object_set_new(chat, "tools", arr);
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        char w[64];
        snprintf(w, sizeof w, "tools[%zu]", i);
        if (!json_is_object(t))
            return fail(err, w, "must be an object {\"name\", \"input_schema\"}");
        const char *type = json_string_value(json_object_get(t, "type"));
        if (type && strcmp(type, "custom") != 0)
            return fail(err, strcat(w, ".type"),
                        "\"%.60s\" is not supported: only client tools (name, description, "
                        "input_schema) are; Anthropic's server tools run on Anthropic's side",
                        type);
        const char *name = json_string_value(json_object_get(t, "name"));
        if (!name || !valid_tool_name(name))
            return fail(err, strcat(w, ".name"),
                        "must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'");
        for (size_t k = 0; k < i; k++)
            if (strcmp(name,
                       json_string_value(json_object_get(json_array_get(tools, k), "name"))) == 0)
                return fail(err, strcat(w, ".name"), "repeats the name of tools[%zu]", k);
        const json_t *d = json_object_get(t, "description");
        if (d && !json_is_null(d) && !json_is_string(d))
            return fail(err, strcat(w, ".description"), "must be a string");
        const json_t *schema = json_object_get(t, "input_schema");
        if (!json_is_object(schema))
            return fail(err, strcat(w, ".input_schema"),
                        "is required and must be a JSON Schema object");
        json_t *f = json_pack("{s:s,s:O}", "name", name, "parameters", schema);
        if (f && json_is_string(d)) json_object_set(f, "description", (json_t *)d);
        if (!f ||
            json_array_append_new(arr, json_pack("{s:s,s:o}", "type", "function", "function", f)))
            return nomem(err, w);
    }
    return SHIMMY_OK;
}

static shimmy_status convert_tool_choice(const json_t *c, json_t *chat, shimmy_error *err) {
    if (!json_is_object(c)) return fail(err, "tool_choice", "must be an object {\"type\"}");
    const char *type = json_string_value(json_object_get(c, "type"));
    const json_t *dp = json_object_get(c, "disable_parallel_tool_use");
    if (dp && !json_is_null(dp)) {
        if (!json_is_boolean(dp))
            return fail(err, "tool_choice.disable_parallel_tool_use", "must be true or false");
        json_object_set_new(chat, "parallel_tool_calls", json_boolean(!json_is_true(dp)));
    }
    json_t *v = NULL;
    if (type && strcmp(type, "auto") == 0) {
        v = json_string("auto");
    } else if (type && strcmp(type, "any") == 0) {
        v = json_string("required");
    } else if (type && strcmp(type, "none") == 0) {
        v = json_string("none");
    } else if (type && strcmp(type, "tool") == 0) {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (!name || !*name) return fail(err, "tool_choice.name", "is required with type \"tool\"");
        v = json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", name);
    } else {
        return fail(err, "tool_choice.type", "must be \"auto\", \"any\", \"tool\" or \"none\"");
    }
    if (!v) return nomem(err, "tool_choice");
    json_object_set_new(chat, "tool_choice", v);
    return SHIMMY_OK;
}

/* The chat parser's names for what came from Anthropic fields, renamed back. */
static void rename_field(shimmy_error *err) {
    static const char *const map[][2] = {
        {".function.parameters", ".input_schema"},
        {".function.name", ".name"},
        {"parallel_tool_calls", "tool_choice.disable_parallel_tool_use"},
        {"'stop'", "'stop_sequences'"}};
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
    if (strcmp(err->where, "stop") == 0) snprintf(err->where, sizeof err->where, "stop_sequences");
}

/* Copied as they are: shimmy's sampling extensions, named as in its other APIs. */
static const char *const passthrough[] = {"model",
                                          "stream",
                                          "max_tokens",
                                          "temperature",
                                          "top_p",
                                          "top_k",
                                          "seed",
                                          "min_p",
                                          "repeat_penalty",
                                          "presence_penalty",
                                          "frequency_penalty",
                                          "logit_bias",
                                          "lora"};

static shimmy_status build_chat(const json_t *root, bool count_only, server_compat_req *x,
                                json_t *chat, shimmy_error *err) {
    const json_t *v;
    if (!json_is_string(json_object_get(root, "model")))
        return fail(err, "model", "is required and must be a string");
    if (!count_only && !json_object_get(root, "max_tokens"))
        return fail(err, "max_tokens", "is required (the most tokens to generate)");
    for (size_t i = 0; i < sizeof passthrough / sizeof passthrough[0]; i++)
        if ((v = json_object_get(root, passthrough[i])) && !json_is_null(v))
            json_object_set(chat, passthrough[i], (json_t *)v);
    if (count_only) {
        json_object_del(chat, "max_tokens");
        json_object_del(chat, "stream");
    }
    v = json_object_get(root, "temperature");
    if (json_is_number(v) && json_number_value(v) > 1)
        return fail(err, "temperature", "must be between 0 and 1 (got %g)", json_number_value(v));
    json_t *msgs = json_array();
    if (!msgs) return nomem(err, "messages");
    json_object_set_new(chat, "messages", msgs);
    if ((v = json_object_get(root, "system")) && !json_is_null(v)) {
        json_t *sys = NULL;
        shimmy_status st = text_of(v, "system", &sys, err);
        if (st) return st;
        if (json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "system", "content", sys)))
            return nomem(err, "system");
    }
    v = json_object_get(root, "messages");
    if (!json_is_array(v)) return fail(err, "messages", "is required and must be an array");
    if (json_array_size(v) == 0) return fail(err, "messages", "must not be empty");
    size_t i;
    const json_t *m;
    json_array_foreach(v, i, m) {
        shimmy_status st = convert_message(m, i, msgs, err);
        if (st) return st;
    }
    if ((v = json_object_get(root, "stop_sequences")) && !json_is_null(v)) {
        if (!json_is_array(v)) return fail(err, "stop_sequences", "must be an array of strings");
        json_array_foreach(v, i, m) {
            if (!json_is_string(m) || json_string_length(m) == 0 ||
                json_string_length(m) > SHIMMY_MAX_STOP_LEN)
                return fail(err, "stop_sequences",
                            "must hold non-empty strings of at most %d bytes", SHIMMY_MAX_STOP_LEN);
            if (x->n_stop == SERVER_MAX_STOP)
                return fail(err, "stop_sequences", "has too many entries (at most %d)",
                            SERVER_MAX_STOP);
            if (!(x->stop[x->n_stop] = strdup(json_string_value(m))))
                return nomem(err, "stop_sequences");
            x->n_stop++;
        }
    }
    if ((v = json_object_get(root, "tools")) && !json_is_null(v)) {
        shimmy_status st = convert_tools(v, chat, err);
        if (st) return st;
    }
    if ((v = json_object_get(root, "tool_choice")) && !json_is_null(v)) {
        shimmy_status st = convert_tool_choice(v, chat, err);
        if (st) return st;
    }
    if ((v = json_object_get(root, "metadata")) && !json_is_null(v)) {
        const json_t *u = json_object_get(v, "user_id");
        if (!json_is_object(v)) return fail(err, "metadata", "must be an object");
        if (u && !json_is_null(u) && !json_is_string(u))
            return fail(err, "metadata.user_id", "must be a string");
    }
    if ((v = json_object_get(root, "thinking")) && !json_is_null(v)) {
        const char *type = json_string_value(json_object_get(v, "type"));
        if (!json_is_object(v) || !type ||
            (strcmp(type, "enabled") != 0 && strcmp(type, "disabled") != 0 &&
             strcmp(type, "adaptive") != 0))
            return fail(err, "thinking.type", "must be \"enabled\", \"disabled\" or \"adaptive\"");
        const json_t *b = json_object_get(v, "budget_tokens");
        if (strcmp(type, "enabled") == 0 && (!json_is_integer(b) || json_integer_value(b) < 1))
            return fail(err, "thinking.budget_tokens", "must be a positive integer");
        /* A template that thinks hears "disabled" as enable_thinking false. */
        if (strcmp(type, "disabled") == 0)
            json_object_set_new(chat, "chat_template_kwargs",
                                json_pack("{s:b}", "enable_thinking", 0));
    }
    return SHIMMY_OK;
}

shimmy_status server_anthropic_parse(const char *body, size_t len, int32_t cap, bool count_only,
                                     server_request *out, server_compat_req *x, shimmy_error *err) {
    memset(out, 0, sizeof *out);
    x->count_only = count_only;
    json_t *root;
    shimmy_status bst = server_json_body(body, len, &root, err);
    if (bst) return bst;
    json_t *chat = json_object();
    shimmy_status st = chat ? build_chat(root, count_only, x, chat, err) : nomem(err, NULL);
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
