/* Tool calls: request checks, the template's call format, and the parser of generated text (see
 * toolcall.h for the invariants). */
#include "toolcall.h"

#include <stdlib.h>
#include <string.h>

/* ---- requests ---- */

static shimmy_status invalid(shimmy_error *err, const char *where, const char *what) {
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where, "'%s' %s", where, what);
}

/* OpenAI's rule for function names: 1-64 of a-z, A-Z, 0-9, '_' and '-'. */
static bool valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static shimmy_status check_tool(const json_t *t, size_t i, shimmy_error *err) {
    char w[96];
    snprintf(w, sizeof w, "tools[%zu]", i);
    if (!json_is_object(t)) return invalid(err, w, "must be an object {\"type\", \"function\"}");
    const char *type = json_string_value(json_object_get(t, "type"));
    snprintf(w, sizeof w, "tools[%zu].type", i);
    if (!type) return invalid(err, w, "is required and must be \"function\"");
    if (strcmp(type, "function") != 0)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, w,
                                "'%s' must be \"function\" (got \"%.64s\"); no other tool type is "
                                "supported",
                                w, type);
    const json_t *f = json_object_get(t, "function");
    snprintf(w, sizeof w, "tools[%zu].function", i);
    if (!json_is_object(f)) return invalid(err, w, "is required and must be an object");
    const json_t *name = json_object_get(f, "name");
    snprintf(w, sizeof w, "tools[%zu].function.name", i);
    if (!name) return invalid(err, w, "is required");
    if (!json_is_string(name) || !valid_name(json_string_value(name)))
        return invalid(err, w, "must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'");
    const json_t *d = json_object_get(f, "description");
    snprintf(w, sizeof w, "tools[%zu].function.description", i);
    if (d && !json_is_null(d) && !json_is_string(d)) return invalid(err, w, "must be a string");
    const json_t *p = json_object_get(f, "parameters");
    snprintf(w, sizeof w, "tools[%zu].function.parameters", i);
    if (p && !json_is_null(p) && !json_is_object(p))
        return invalid(err, w, "must be a JSON Schema object");
    const json_t *s = json_object_get(f, "strict");
    snprintf(w, sizeof w, "tools[%zu].function.strict", i);
    if (s && !json_is_null(s) && !json_is_boolean(s)) return invalid(err, w, "must be a boolean");
    return SHIMMY_OK;
}

static const char *tool_name(const json_t *t) {
    return json_string_value(json_object_get(json_object_get(t, "function"), "name"));
}

/* The name a tool_choice object forces, or NULL after setting err. */
static const char *forced_name(const json_t *choice, shimmy_error *err) {
    const char *type = json_string_value(json_object_get(choice, "type"));
    if (!type || strcmp(type, "function") != 0) {
        invalid(err, "tool_choice.type", "must be \"function\"");
        return NULL;
    }
    const json_t *f = json_object_get(choice, "function");
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!json_is_object(f) || !name || !*name) {
        invalid(err, "tool_choice.function.name", "is required (the name of a tool)");
        return NULL;
    }
    return name;
}

shimmy_status server_tools_check(const json_t *tools, const json_t *choice, const json_t *parallel,
                                 server_tools *out, shimmy_error *err) {
    out->tools = NULL;
    out->parallel = true;
    out->required = false;
    if (parallel && !json_is_null(parallel)) {
        if (!json_is_boolean(parallel))
            return invalid(err, "parallel_tool_calls", "must be true or false");
        out->parallel = json_is_true(parallel);
    }
    size_t n = 0;
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) return invalid(err, "tools", "must be an array of tools");
        n = json_array_size(tools);
        for (size_t i = 0; i < n; i++) {
            shimmy_status st = check_tool(json_array_get(tools, i), i, err);
            if (st) return st;
            for (size_t k = 0; k < i; k++) {
                if (strcmp(tool_name(json_array_get(tools, k)),
                           tool_name(json_array_get(tools, i))) == 0) {
                    char w[64];
                    snprintf(w, sizeof w, "tools[%zu].function.name", i);
                    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, w,
                                            "'%s' repeats the name of tools[%zu]", w, k);
                }
            }
        }
    }
    const char *forced = NULL;
    if (choice && !json_is_null(choice)) {
        const char *s = json_string_value(choice);
        if (s && strcmp(s, "none") == 0) return SHIMMY_OK;
        if (s && strcmp(s, "auto") != 0 && strcmp(s, "required") != 0)
            return invalid(err, "tool_choice",
                           "must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                           "\"function\": {\"name\": ...}}");
        if (!s && !json_is_object(choice))
            return invalid(err, "tool_choice", "must be a string or an object");
        if (!s && !(forced = forced_name(choice, err))) return SHIMMY_ERR_INVALID_ARG;
        bool needs_tools = forced || strcmp(s, "required") == 0;
        out->required = needs_tools;
        if (n == 0 && needs_tools)
            return invalid(err, "tool_choice",
                           forced ? "names a function but 'tools' is missing"
                                  : "is \"required\" but 'tools' is missing");
    }
    if (n == 0) return SHIMMY_OK;
    json_t *kept = json_array();
    for (size_t i = 0; kept && i < n; i++) {
        const json_t *t = json_array_get(tools, i);
        if (forced && strcmp(tool_name(t), forced) != 0) continue;
        if (json_array_append_new(kept, json_deep_copy(t))) {
            json_decref(kept);
            kept = NULL;
        }
    }
    if (!kept) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "tools", "out of memory");
    if (json_array_size(kept) == 0) {
        json_decref(kept);
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "tool_choice.function.name",
                                "'tool_choice.function.name' is \"%.64s\", which is not in "
                                "'tools'",
                                forced);
    }
    out->tools = kept;
    return SHIMMY_OK;
}

static shimmy_status check_call(json_t *call, const char *w, shimmy_error *err) {
    char f[128];
    if (!json_is_object(call))
        return invalid(err, w,
                       "must be an object {\"id\", \"type\", "
                       "\"function\"}");
    const json_t *type = json_object_get(call, "type");
    snprintf(f, sizeof f, "%s.type", w);
    if (type && !json_is_null(type) &&
        (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0))
        return invalid(err, f, "must be \"function\"");
    const json_t *id = json_object_get(call, "id");
    snprintf(f, sizeof f, "%s.id", w);
    if (id && !json_is_null(id) && !json_is_string(id)) return invalid(err, f, "must be a string");
    json_t *fn = json_object_get(call, "function");
    snprintf(f, sizeof f, "%s.function", w);
    if (!json_is_object(fn)) return invalid(err, f, "is required and must be an object");
    snprintf(f, sizeof f, "%s.function.name", w);
    if (!json_string_value(json_object_get(fn, "name")))
        return invalid(err, f, "is required and must be a string");
    json_t *args = json_object_get(fn, "arguments");
    snprintf(f, sizeof f, "%s.function.arguments", w);
    if (args && !json_is_string(args) && !json_is_object(args))
        return invalid(err, f, "must be a string of JSON");
    if (json_is_string(args)) {
        /* Templates print arguments with tojson, as the model wrote them: an object. Text that
         * is not a JSON object stays as it came. */
        json_t *obj = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
        if (json_is_object(obj)) json_object_set(fn, "arguments", obj);
        json_decref(obj);
    }
    return SHIMMY_OK;
}

shimmy_status server_tools_message(json_t *msg, size_t index, shimmy_error *err) {
    char w[96];
    const char *role = json_string_value(json_object_get(msg, "role"));
    if (role && strcmp(role, "tool") == 0) {
        snprintf(w, sizeof w, "messages[%zu].tool_call_id", index);
        if (!json_is_string(json_object_get(msg, "tool_call_id")))
            return invalid(err, w, "is required in a tool message (the id of the call it answers)");
    }
    json_t *calls = json_object_get(msg, "tool_calls");
    if (!calls) return SHIMMY_OK;
    snprintf(w, sizeof w, "messages[%zu].tool_calls", index);
    if (!role || strcmp(role, "assistant") != 0)
        return invalid(err, w, "is for assistant messages");
    /* Templates test `'tool_calls' in message`: an empty or null list means no call. */
    if (json_is_null(calls) || (json_is_array(calls) && json_array_size(calls) == 0)) {
        json_object_del(msg, "tool_calls");
        return SHIMMY_OK;
    }
    if (!json_is_array(calls)) return invalid(err, w, "must be an array");
    for (size_t k = 0; k < json_array_size(calls); k++) {
        snprintf(w, sizeof w, "messages[%zu].tool_calls[%zu]", index, k);
        shimmy_status st = check_call(json_array_get(calls, k), w, err);
        if (st) return st;
    }
    return SHIMMY_OK;
}

/* ---- formats ---- */

static const char *const format_names[] = {"generic", "hermes", "llama3", "mistral", "harmony"};

const char *server_toolcall_format_name(server_tool_format f) {
    return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : "unknown";
}

server_tool_format server_toolcall_format(const char *source, const char *family) {
    /* The template's own words win: what its system prompt or history rendering writes. */
    if (source && strstr(source, "<|channel|>")) return SERVER_TOOLS_HARMONY;
    if (source && strstr(source, "<tool_call>")) return SERVER_TOOLS_HERMES;
    if (source && strstr(source, "[TOOL_CALLS]")) return SERVER_TOOLS_MISTRAL;
    if (source && (strstr(source, "<|python_tag|>") ||
                   (strstr(source, "<|start_header_id|>") && strstr(source, "\"parameters\""))))
        return SERVER_TOOLS_LLAMA3;
    if (!family) return SERVER_TOOLS_GENERIC;
    if (strcmp(family, "chatml") == 0) return SERVER_TOOLS_HERMES;
    if (strcmp(family, "llama3") == 0) return SERVER_TOOLS_LLAMA3;
    if (strcmp(family, "mistral") == 0) return SERVER_TOOLS_MISTRAL;
    if (strcmp(family, "harmony") == 0) return SERVER_TOOLS_HARMONY;
    return SERVER_TOOLS_GENERIC;
}

/* ---- parsing ---- */

static const char HERMES_OPEN[] = "<tool_call>", HERMES_CLOSE[] = "</tool_call>";
static const char MISTRAL_MARK[] = "[TOOL_CALLS]", PYTHON_TAG[] = "<|python_tag|>";
static const char HARMONY_OPEN[] = "<|start|>assistant to=functions.",
                  HARMONY_HEAD[] = "<|channel|>commentary json<|message|>",
                  HARMONY_END[] = "<|call|>";

static bool is_space(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static size_t skip_space(const char *t, size_t len, size_t i) {
    while (i < len && is_space(t[i])) i++;
    return i;
}

static const char *find(const char *t, size_t len, size_t from, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = from; i + n <= len; i++)
        if (t[i] == needle[0] && memcmp(t + i, needle, n) == 0) return t + i;
    return NULL;
}

static bool starts(const char *t, size_t len, size_t i, const char *s) {
    size_t n = strlen(s);
    return i + n <= len && memcmp(t + i, s, n) == 0;
}

/* One JSON value at t[i..len): the value and *end past it; NULL when there is none. */
static json_t *json_at(const char *t, size_t len, size_t i, size_t *end) {
    json_error_t je;
    json_t *v = json_loadb(t + i, len - i, JSON_DISABLE_EOF_CHECK, &je);
    if (v) *end = i + (size_t)je.position;
    return v;
}

typedef struct builder {
    server_toolcalls *out;
    size_t cap;
    bool nomem;
} builder;

/* Adds the call a JSON object describes; false when it is not one ({"name", "arguments" or
 * "parameters"}, or OpenAI's own {"function": {...}} shape). */
static bool add_call(builder *b, const json_t *o) {
    if (json_is_object(o) && !json_object_get(o, "name") &&
        json_is_object(json_object_get(o, "function")))
        o = json_object_get(o, "function");
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name || !valid_name(name)) return false;
    const json_t *args = json_object_get(o, "arguments");
    if (!args) args = json_object_get(o, "parameters");
    json_t *parsed = NULL;
    if (json_is_string(args)) args = parsed = json_loads(json_string_value(args), 0, NULL);
    if (args && !json_is_object(args)) {
        json_decref(parsed);
        return false;
    }
    char *text = args ? json_dumps(args, JSON_COMPACT) : strdup("{}");
    json_decref(parsed);
    server_toolcalls *c = b->out;
    if (text && c->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        server_toolcall *p = realloc(c->calls, cap * sizeof *p);
        if (p) {
            c->calls = p;
            b->cap = cap;
        }
    }
    char *nm = strdup(name);
    if (!text || !nm || c->n == b->cap) {
        free(text);
        free(nm);
        b->nomem = true;
        return false;
    }
    c->calls[c->n++] = (server_toolcall){nm, text};
    return true;
}

/* Hermes: <tool_call> JSON </tool_call> blocks anywhere; the closing tag may be missing after
 * the last one when nothing but space follows. Text between blocks is content. */
static bool parse_hermes(builder *b, const char *t, size_t len, char *content, size_t *clen) {
    size_t i = 0;
    const char *open;
    while ((open = find(t, len, i, HERMES_OPEN))) {
        size_t at = (size_t)(open - t), end;
        memcpy(content + *clen, t + i, at - i);
        *clen += at - i;
        json_t *v = json_at(t, len, skip_space(t, len, at + sizeof HERMES_OPEN - 1), &end);
        bool ok = v && add_call(b, v);
        json_decref(v);
        if (!ok) return false;
        end = skip_space(t, len, end);
        if (starts(t, len, end, HERMES_CLOSE))
            i = end + sizeof HERMES_CLOSE - 1;
        else if (end == len)
            i = len;
        else
            return false;
    }
    memcpy(content + *clen, t + i, len - i);
    *clen += len - i;
    return b->out->n > 0;
}

/* Mistral: [TOOL_CALLS] then a JSON array of calls; text before and after is content. */
static bool parse_mistral(builder *b, const char *t, size_t len, char *content, size_t *clen) {
    size_t i = 0;
    const char *mark;
    while ((mark = find(t, len, i, MISTRAL_MARK))) {
        size_t at = (size_t)(mark - t), end;
        memcpy(content + *clen, t + i, at - i);
        *clen += at - i;
        json_t *v = json_at(t, len, skip_space(t, len, at + sizeof MISTRAL_MARK - 1), &end);
        bool ok = json_is_array(v) && json_array_size(v) > 0;
        for (size_t k = 0; ok && k < json_array_size(v); k++)
            ok = add_call(b, json_array_get(v, k));
        json_decref(v);
        if (!ok) return false;
        i = end;
    }
    memcpy(content + *clen, t + i, len - i);
    *clen += len - i;
    return b->out->n > 0;
}

/* Harmony: call blocks anywhere (the splitter's form, toolcall.h), arguments a JSON object and
 * "<|call|>" after it; text between blocks is content. */
static bool parse_harmony(builder *b, const char *t, size_t len, char *content, size_t *clen) {
    size_t i = 0;
    const char *open;
    while ((open = find(t, len, i, HARMONY_OPEN))) {
        size_t at = (size_t)(open - t), name = at + sizeof HARMONY_OPEN - 1, end;
        memcpy(content + *clen, t + i, at - i);
        *clen += at - i;
        const char *head = find(t, len, name, HARMONY_HEAD);
        if (!head || (size_t)(head - t) - name > 64) return false;
        json_t *args = json_at(t, len, (size_t)(head - t) + sizeof HARMONY_HEAD - 1, &end);
        json_t *call = json_is_object(args) ? json_object() : NULL;
        json_t *nm = json_stringn(t + name, (size_t)(head - t) - name);
        bool ok = call && nm && !json_object_set(call, "name", nm) &&
                  !json_object_set(call, "arguments", args) && add_call(b, call);
        json_decref(nm);
        json_decref(call);
        json_decref(args);
        if (!ok || !starts(t, len, end, HARMONY_END)) return false;
        i = end + sizeof HARMONY_END - 1;
    }
    memcpy(content + *clen, t + i, len - i);
    *clen += len - i;
    return b->out->n > 0;
}

/* Llama 3: the whole answer is one or more call objects (after an optional <|python_tag|>),
 * separated by space or ';'. */
static bool parse_llama3(builder *b, const char *t, size_t len) {
    size_t i = skip_space(t, len, 0);
    if (starts(t, len, i, PYTHON_TAG)) i = skip_space(t, len, i + sizeof PYTHON_TAG - 1);
    if (i == len || t[i] != '{') return false;
    while (i < len) {
        size_t end;
        json_t *v = json_at(t, len, i, &end);
        bool ok = json_is_object(v) && add_call(b, v);
        json_decref(v);
        if (!ok) return false;
        i = skip_space(t, len, end);
        if (i < len && t[i] == ';') i = skip_space(t, len, i + 1);
    }
    return true;
}

void server_toolcalls_free(server_toolcalls *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->calls[i].name);
        free(c->calls[i].arguments);
    }
    free(c->calls);
    free(c->content);
    *c = (server_toolcalls){0};
}

shimmy_status server_toolcall_parse(server_tool_format f, const char *text, size_t len,
                                    server_toolcalls *out, shimmy_error *err) {
    *out = (server_toolcalls){0};
    if (f == SERVER_TOOLS_GENERIC) {
        f = find(text, len, 0, HERMES_OPEN)    ? SERVER_TOOLS_HERMES
            : find(text, len, 0, MISTRAL_MARK) ? SERVER_TOOLS_MISTRAL
                                               : SERVER_TOOLS_LLAMA3;
    }
    char *content = malloc(len + 1);
    if (!content) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    size_t clen = 0;
    builder b = {out, 0, false};
    bool found = f == SERVER_TOOLS_HERMES    ? parse_hermes(&b, text, len, content, &clen)
                 : f == SERVER_TOOLS_MISTRAL ? parse_mistral(&b, text, len, content, &clen)
                 : f == SERVER_TOOLS_HARMONY ? parse_harmony(&b, text, len, content, &clen)
                                             : parse_llama3(&b, text, len);
    if (!found || b.nomem) {
        free(content);
        server_toolcalls_free(out);
        return b.nomem ? shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory") : SHIMMY_OK;
    }
    size_t s = skip_space(content, clen, 0);
    while (clen > s && is_space(content[clen - 1])) clen--;
    if (clen > s) {
        memmove(content, content + s, clen - s);
        content[clen - s] = '\0';
        out->content = content;
        out->content_len = clen - s;
    } else {
        free(content);
    }
    return SHIMMY_OK;
}

/* ---- streaming ---- */

/* Where a full marker first occurs (len when nowhere), and the first offset whose tail is a
 * proper prefix of the marker (len when none). */
static void scan_marker(const char *t, size_t len, const char *m, size_t *full, size_t *part) {
    const char *at = find(t, len, 0, m);
    *full = at ? (size_t)(at - t) : len;
    *part = len;
    size_t n = strlen(m);
    for (size_t i = len > n ? len - n + 1 : 0; i < len; i++) {
        if (memcmp(t + i, m, len - i) == 0) {
            *part = i;
            break;
        }
    }
}

size_t server_toolcall_hold(server_tool_format f, const char *text, size_t len, bool at_start,
                            bool *started) {
    *started = false;
    if ((f == SERVER_TOOLS_LLAMA3 || f == SERVER_TOOLS_GENERIC) && at_start) {
        size_t i = skip_space(text, len, 0);
        if (i == len) return 0; /* only space so far: the answer has not shown its form yet */
        size_t rest = len - i, tag = sizeof PYTHON_TAG - 1;
        if (text[i] == '{' || (rest >= tag && memcmp(text + i, PYTHON_TAG, tag) == 0)) {
            *started = true;
            return 0;
        }
        if (rest < tag && memcmp(text + i, PYTHON_TAG, rest) == 0) return 0;
    }
    const char *marks[2];
    size_t n = 0;
    if (f == SERVER_TOOLS_HARMONY) marks[n++] = HARMONY_OPEN;
    if (f == SERVER_TOOLS_HERMES || f == SERVER_TOOLS_GENERIC) marks[n++] = HERMES_OPEN;
    if (f == SERVER_TOOLS_MISTRAL || f == SERVER_TOOLS_GENERIC) marks[n++] = MISTRAL_MARK;
    size_t full = len, part = len;
    for (size_t k = 0; k < n; k++) {
        size_t fu, pa;
        scan_marker(text, len, marks[k], &fu, &pa);
        if (fu < full) full = fu;
        if (pa < part) part = pa;
    }
    if (full < len) {
        *started = true;
        return full;
    }
    return part;
}

void server_toolcall_id(server_tool_format f, uint64_t bits[2], char out[32]) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bool mistral = f == SERVER_TOOLS_MISTRAL;
    size_t n = mistral ? 9 : 24, o = 0;
    if (!mistral) {
        memcpy(out, "call_", 5);
        o = 5;
    }
    /* splitmix64 over the caller's bits: every character from a fresh 64-bit draw */
    uint64_t s = bits[0] ^ (bits[1] * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        out[o++] = alnum[z % 62];
    }
    out[o] = '\0';
}
