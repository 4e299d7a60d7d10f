/* Ollama request bodies -> server_request + ollama_opts. Pure: no server state, no I/O. */
#include "ollama.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static shimmy_status bad(shimmy_error *err, const char *where, const char *what) {
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where, "'%s' %s", where, what);
}

/* ---- keep_alive ---- */

shimmy_status ollama_duration_parse(const json_t *v, const char *where, double *seconds,
                                    shimmy_error *err) {
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!isfinite(d)) return bad(err, where, "must be a finite number of seconds");
        *seconds = d < 0 ? -1 : d;
        return SHIMMY_OK;
    }
    if (!json_is_string(v))
        return bad(err, where, "must be a duration (\"5m\", \"1h\", \"-1\") or seconds");
    const char *s = json_string_value(v);
    /* Go's time.ParseDuration units, and a bare number meaning seconds (as Ollama reads it). */
    static const struct {
        const char *unit;
        double s;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3},
                 {"s", 1},     {"m", 60},    {"h", 3600}};
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!*s) return bad(err, where, "is not a duration (e.g. \"5m\", \"30s\", \"-1\")");
    double total = 0;
    bool bare = true;
    while (*s) {
        char *end;
        if (!isdigit((unsigned char)*s) && *s != '.')
            return bad(err, where, "is not a duration (e.g. \"5m\", \"30s\", \"-1\")");
        double n = strtod(s, &end);
        if (end == s || !isfinite(n))
            return bad(err, where, "is not a duration (e.g. \"5m\", \"30s\", \"-1\")");
        s = end;
        if (!*s && bare) { /* "300", "-1": seconds */
            total = n;
            break;
        }
        size_t best = 0, k = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t ul = strlen(units[i].unit);
            /* the longest unit that matches ("ms" before "m") */
            if (strncmp(s, units[i].unit, ul) == 0 && ul > best) {
                best = ul;
                k = i;
            }
        }
        if (!best) return bad(err, where, "has an unknown unit (use ns, us, ms, s, m or h)");
        total += n * units[k].s;
        s += best;
        bare = false;
    }
    if (!isfinite(total) || total > 1e12) return bad(err, where, "is too long");
    *seconds = neg && total != 0 ? -1 : total;
    return SHIMMY_OK;
}

/* ---- options ---- */

typedef struct opt_ctx {
    server_request *r;
    ollama_opts *o;
    bool no_lookback; /* repeat_last_n 0: the penalties look at nothing */
} opt_ctx;

static shimmy_status opt_float(opt_ctx *c, const char *key, const json_t *v, char *where,
                               shimmy_error *err) {
    static const struct {
        const char *key;
        double lo, hi;
        size_t off;
    } rows[] = {
        {"temperature", 0, 10, offsetof(shimmy_gen_options, temperature)},
        {"top_p", 0, 1, offsetof(shimmy_gen_options, top_p)},
        {"min_p", 0, 1, offsetof(shimmy_gen_options, min_p)},
        {"repeat_penalty", 0, 10, offsetof(shimmy_gen_options, repeat_penalty)},
        {"presence_penalty", -2, 2, offsetof(shimmy_gen_options, presence_penalty)},
        {"frequency_penalty", -2, 2, offsetof(shimmy_gen_options, frequency_penalty)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (strcmp(rows[i].key, key) != 0) continue;
        double d = 0;
        shimmy_status st = server_json_number_in(v, where, rows[i].lo, rows[i].hi, &d, err);
        if (!st) *(float *)((char *)&c->r->gen + rows[i].off) = (float)d;
        return st;
    }
    return SHIMMY_ERR_NOT_FOUND;
}

static shimmy_status opt_one(opt_ctx *c, const char *key, const json_t *v, int32_t cap,
                             shimmy_error *err) {
    char where[96];
    snprintf(where, sizeof where, "options.%.80s", key);
    shimmy_status st = opt_float(c, key, v, where, err);
    if (st != SHIMMY_ERR_NOT_FOUND) return st;
    st = SHIMMY_OK;
    json_int_t i;
    if (strcmp(key, "top_k") == 0) {
        if (!(st = server_json_integer_in(v, where, 0, INT32_MAX, &i, err)))
            c->r->gen.top_k = (int32_t)i;
    } else if (strcmp(key, "num_predict") == 0) {
        /* -1: until the context is full; -2: fill the context (both: no limit here). */
        if ((st = server_json_integer_in(v, where, -2, INT32_MAX, &i, err))) return st;
        if (i == 0) return bad(err, where, "must be -1 (no limit), -2 (fill the context) or >= 1");
        c->r->max_tokens = i < 0 ? -1 : (int32_t)(i > cap ? cap : i);
    } else if (strcmp(key, "num_ctx") == 0) {
        if (!(st = server_json_integer_in(v, where, 1, 1048576, &i, err)))
            c->o->num_ctx = (int32_t)i;
    } else if (strcmp(key, "seed") == 0) {
        if ((st = server_json_integer_in(v, where, INT64_MIN, INT64_MAX, &i, err))) return st;
        /* Ollama's -1 (and any negative) means a random seed; others fold into 32 bits, clear
         * of the random marker so that an explicit seed always reproduces. */
        uint64_t u = (uint64_t)i;
        uint32_t s = (uint32_t)(u ^ (u >> 32));
        c->r->gen.seed = i < 0 ? SHIMMY_SEED_RANDOM : (s == SHIMMY_SEED_RANDOM ? s - 1 : s);
    } else if (strcmp(key, "repeat_last_n") == 0) {
        /* Ollama: -1 = the whole context, 0 = off. */
        if ((st = server_json_integer_in(v, where, -1, 1048576, &i, err))) return st;
        c->no_lookback = i == 0;
        c->r->gen.repeat_last_n = i < 0 ? 1048576 : (int32_t)i;
    } else if (strcmp(key, "stop") == 0) {
        st = server_request_add_stops(c->r, v, where, err);
    }
    /* Ollama's runner knobs shimmy has no counterpart for (num_gpu, num_thread, num_batch,
     * mirostat, typical_p, use_mmap, ...) are ignored, as Ollama ignores unknown options. */
    return st;
}

static shimmy_status parse_options(opt_ctx *c, const json_t *v, int32_t cap, shimmy_error *err) {
    if (!json_is_object(v)) return bad(err, "options", "must be an object");
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (json_is_null(val)) continue;
        shimmy_status st = opt_one(c, key, val, cap, err);
        if (st) return st;
    }
    /* The library reads top_p 0 as "off"; Ollama's top_p 0 keeps only the top token. */
    const json_t *tp = json_object_get(v, "top_p");
    if (json_is_number(tp) && json_number_value(tp) == 0) c->r->gen.top_k = 1;
    if (c->no_lookback) { /* penalties over zero tokens change nothing */
        c->r->gen.repeat_penalty = 1;
        c->r->gen.presence_penalty = c->r->gen.frequency_penalty = 0;
    }
    return SHIMMY_OK;
}

/* ---- messages ---- */

static shimmy_status check_images(const json_t *v, const char *where, shimmy_error *err) {
    if (!json_is_array(v)) return bad(err, where, "must be an array of base64 images");
    if (json_array_size(v) == 0) return SHIMMY_OK;
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where,
                            "'%s': shimmy serves text models only; images are not supported",
                            where);
}

/* Ollama's assistant tool_calls, [{"function": {"name", "arguments": {...}}}], in the form
 * templates read (type "function", arguments an object). */
static shimmy_status message_calls(json_t *msg, size_t idx, shimmy_error *err) {
    char w[96];
    json_t *calls = json_object_get(msg, "tool_calls");
    if (!calls) return SHIMMY_OK;
    snprintf(w, sizeof w, "messages[%zu].tool_calls", idx);
    if (json_is_null(calls) || (json_is_array(calls) && json_array_size(calls) == 0)) {
        json_object_del(msg, "tool_calls");
        return SHIMMY_OK;
    }
    if (!json_is_array(calls)) return bad(err, w, "must be an array");
    size_t k;
    json_t *call;
    json_array_foreach(calls, k, call) {
        snprintf(w, sizeof w, "messages[%zu].tool_calls[%zu].function", idx, k);
        json_t *fn = json_is_object(call) ? json_object_get(call, "function") : NULL;
        if (!json_is_object(fn)) return bad(err, w, "must be an object {name, arguments}");
        if (!json_is_string(json_object_get(fn, "name")))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, w, "'%s.name' must be a string",
                                    w);
        json_t *args = json_object_get(fn, "arguments");
        if (args && !json_is_object(args))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, w,
                                    "'%s.arguments' must be an object", w);
        if (!args) json_object_set_new(fn, "arguments", json_object());
        json_object_set_new(call, "type", json_string("function"));
    }
    return SHIMMY_OK;
}

static shimmy_status one_message(const json_t *m, size_t i, json_t *out, shimmy_error *err) {
    char w[96];
    snprintf(w, sizeof w, "messages[%zu]", i);
    if (!json_is_object(m)) return bad(err, w, "must be an object {role, content}");
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    const char *role = json_string_value(json_object_get(m, "role"));
    bool known = false;
    for (size_t k = 0; role && k < sizeof roles / sizeof roles[0]; k++)
        known = known || strcmp(role, roles[k]) == 0;
    snprintf(w, sizeof w, "messages[%zu].role", i);
    if (!known) return bad(err, w, "must be one of system, user, assistant, tool");
    const json_t *content = json_object_get(m, "content");
    snprintf(w, sizeof w, "messages[%zu].content", i);
    if (content && !json_is_null(content) && !json_is_string(content))
        return bad(err, w, "must be a string");
    const json_t *images = json_object_get(m, "images");
    snprintf(w, sizeof w, "messages[%zu].images", i);
    if (images && !json_is_null(images) && check_images(images, w, err)) return err->status;
    static const char *const strs[] = {"thinking", "tool_name", "name", "tool_call_id"};
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
        const json_t *s = json_object_get(m, strs[k]);
        snprintf(w, sizeof w, "messages[%zu].%s", i, strs[k]);
        if (s && !json_is_null(s) && !json_is_string(s)) return bad(err, w, "must be a string");
    }
    json_t *copy = json_deep_copy(m);
    if (!copy) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "messages", "out of memory");
    json_object_del(copy, "images");
    if (!content || json_is_null(content)) json_object_set_new(copy, "content", json_string(""));
    /* Templates that render tool results by name read "name" (Ollama sends tool_name). */
    const json_t *tn = json_object_get(m, "tool_name");
    if (json_is_string(tn) && !json_object_get(copy, "name"))
        json_object_set(copy, "name", (json_t *)tn);
    /* Thinking templates (Qwen3, DeepSeek-R1) read an assistant turn's reasoning_content. */
    const json_t *th = json_object_get(m, "thinking");
    if (json_is_string(th)) json_object_set(copy, "reasoning_content", (json_t *)th);
    shimmy_status st = message_calls(copy, i, err);
    if (!st)
        st = json_array_append_new(out, copy) ? SHIMMY_ERR_NOMEM : SHIMMY_OK;
    else
        json_decref(copy);
    if (st == SHIMMY_ERR_NOMEM) shimmy_error_set(err, st, "messages", "out of memory");
    return st;
}

static shimmy_status parse_messages(const json_t *v, server_request *r, ollama_opts *o,
                                    shimmy_error *err) {
    if (!json_is_array(v)) return bad(err, "messages", "must be an array");
    if (json_array_size(v) == 0) {
        o->load_only = true;
        return SHIMMY_OK;
    }
    json_t *arr = json_array();
    if (!arr) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "messages", "out of memory");
    size_t i;
    const json_t *m;
    json_array_foreach(v, i, m) {
        shimmy_status st = one_message(m, i, arr, err);
        if (st) {
            json_decref(arr);
            return st;
        }
    }
    r->messages = arr;
    return SHIMMY_OK;
}

/* ---- the body ---- */

static shimmy_status parse_think(const json_t *v, ollama_opts *o, shimmy_error *err) {
    if (json_is_boolean(v)) {
        o->think = json_is_true(v);
        return SHIMMY_OK;
    }
    const char *s = json_string_value(v);
    if (s && (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high"))) {
        o->think = 1;
        return SHIMMY_OK;
    }
    return bad(err, "think", "must be true, false, \"low\", \"medium\" or \"high\"");
}

/* "json" (any JSON object, as Ollama's JSON mode) or a JSON Schema, converted to the grammar the
 * answer is held to now, so that a schema the grammar cannot enforce is a 400 before anything
 * streams. */
static shimmy_status parse_format(const json_t *v, ollama_opts *o, shimmy_error *err) {
    char *schema;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0) return SHIMMY_OK; /* "" = free text, as in Ollama */
        if (strcmp(json_string_value(v), "json") != 0)
            return bad(err, "format", "must be \"json\" or a JSON Schema object");
        schema = strdup("{\"type\":\"object\"}");
    } else if (!json_is_object(v)) {
        return bad(err, "format", "must be \"json\" or a JSON Schema object");
    } else {
        schema = json_dumps(v, JSON_COMPACT);
    }
    if (!schema) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "format", "out of memory");
    shimmy_error e;
    shimmy_status st = shimmy_json_schema_to_gbnf(schema, &o->grammar, &e);
    free(schema);
    if (st == SHIMMY_ERR_NOMEM) return shimmy_error_set(err, st, "format", "out of memory");
    if (st)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "format", "'format': %s%s%s",
                                e.message, e.where[0] ? " (at " : "", e.where[0] ? e.where : "");
    o->format = json_deep_copy(v);
    return o->format ? SHIMMY_OK : shimmy_error_set(err, SHIMMY_ERR_NOMEM, "format", "no memory");
}

/* shimmy's extensions "lora" and "logit_bias" follow the native API's rules: that parser
 * validates them (same messages) and its result is copied. */
static shimmy_status parse_extension(const char *key, const json_t *v, server_request *r,
                                     shimmy_error *err) {
    json_t *probe = json_pack("{s:s,s:s,s:b,s:O}", "model", "x", "prompt", "x", "raw", 1, key, v);
    char *text = probe ? json_dumps(probe, JSON_COMPACT) : NULL;
    json_decref(probe);
    if (!text) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, key, "out of memory");
    server_request tmp;
    shimmy_status st = server_request_parse(SERVER_API_GENERATE, text, strlen(text), 1, &tmp, err);
    free(text);
    if (st) return st;
    if (strcmp(key, "lora") == 0) {
        memcpy(r->lora, tmp.lora, sizeof r->lora);
        r->n_lora = tmp.n_lora;
    } else {
        memcpy(r->bias, tmp.bias, tmp.n_bias * sizeof r->bias[0]);
        r->n_bias = tmp.n_bias;
    }
    server_request_deinit(&tmp);
    return SHIMMY_OK;
}

static shimmy_status parse_prompt(const json_t *root, server_request *r, ollama_opts *o,
                                  shimmy_error *err) {
    const json_t *p = json_object_get(root, "prompt"), *sys = json_object_get(root, "system");
    if (p && !json_is_null(p) && !json_is_string(p)) return bad(err, "prompt", "must be a string");
    if (sys && !json_is_null(sys) && !json_is_string(sys))
        return bad(err, "system", "must be a string");
    const json_t *suffix = json_object_get(root, "suffix");
    if (suffix && !json_is_null(suffix)) {
        if (!json_is_string(suffix)) return bad(err, "suffix", "must be a string");
        if (json_string_length(suffix))
            return bad(err, "suffix", "(fill-in-the-middle) is not supported by shimmy");
    }
    const json_t *ctx = json_object_get(root, "context");
    if (ctx && !json_is_null(ctx) && !json_is_array(ctx))
        return bad(err, "context", "must be an array of token ids");
    if (json_array_size(ctx))
        return bad(err, "context", "is not supported: send the conversation with /api/chat");
    if (!json_is_string(p) || json_string_length(p) == 0) {
        o->load_only = true;
        return SHIMMY_OK;
    }
    if (o->raw) {
        if (!(r->prompts[0] = strdup(json_string_value(p))))
            return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "prompt", "out of memory");
        r->n_prompts = 1;
        return SHIMMY_OK;
    }
    json_t *msgs = json_array();
    if (json_is_string(sys) && json_string_length(sys))
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", sys));
    json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", p));
    if (!msgs || json_array_size(msgs) == 0) {
        json_decref(msgs);
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "prompt", "out of memory");
    }
    r->messages = msgs;
    return SHIMMY_OK;
}

static shimmy_status parse_root(bool chat, const json_t *root, int32_t cap, server_request *r,
                                ollama_opts *o, shimmy_error *err) {
    const json_t *v = json_object_get(root, "model");
    if (!v || json_is_null(v)) v = json_object_get(root, "name"); /* older clients */
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) return bad(err, "model", "must be a string");
        if (json_string_length(v) >= sizeof r->model) return bad(err, "model", "is too long");
        memcpy(r->model, json_string_value(v), json_string_length(v) + 1);
        if (strlen(r->model) != json_string_length(v)) return bad(err, "model", "contains NUL");
    }
    shimmy_status st = SHIMMY_OK;
    if ((v = json_object_get(root, "stream")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) return bad(err, "stream", "must be true or false");
        r->stream = json_is_true(v);
    }
    if ((v = json_object_get(root, "raw")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) return bad(err, "raw", "must be true or false");
        o->raw = json_is_true(v) && !chat;
    }
    if ((v = json_object_get(root, "template")) && !json_is_null(v)) {
        if (!json_is_string(v)) return bad(err, "template", "must be a string");
        if (json_string_length(v))
            return bad(err, "template",
                       "(a Go template) is not supported: shimmy renders the model's own chat "
                       "template; send a formatted prompt with \"raw\": true instead");
    }
    if ((v = json_object_get(root, "images")) && !json_is_null(v) && !chat &&
        (st = check_images(v, "images", err)))
        return st;
    if ((v = json_object_get(root, "think")) && !json_is_null(v) && (st = parse_think(v, o, err)))
        return st;
    if ((v = json_object_get(root, "format")) && !json_is_null(v) && (st = parse_format(v, o, err)))
        return st;
    if ((v = json_object_get(root, "keep_alive")) && !json_is_null(v)) {
        if ((st = ollama_duration_parse(v, "keep_alive", &o->keep_alive_s, err))) return st;
        o->has_keep_alive = true;
    }
    opt_ctx oc = {.r = r, .o = o};
    if ((v = json_object_get(root, "options")) && !json_is_null(v) &&
        (st = parse_options(&oc, v, cap, err)))
        return st;
    static const char *const extensions[] = {"lora", "logit_bias"};
    for (size_t k = 0; k < 2; k++)
        if ((v = json_object_get(root, extensions[k])) && !json_is_null(v) &&
            (st = parse_extension(extensions[k], v, r, err)))
            return st;
    /* think false turns thinking off in templates that can (Qwen3's enable_thinking) and drops
     * any thinking; not given, the text stays as the model wrote it, tags included (Ollama's
     * behaviour before "think" existed). */
    if (o->think == 0 && !(r->template_vars = json_pack("{s:b}", "enable_thinking", 0)))
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "think", "out of memory");
    /* A level is gpt-oss's reasoning effort (its template's reasoning_effort), as Ollama has it. */
    const char *level = json_string_value(json_object_get(root, "think"));
    if (level && o->think == 1 &&
        !(r->template_vars = json_pack("{s:s}", "reasoning_effort", level)))
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "think", "out of memory");
    if (o->think < 0) r->reasoning_format = SERVER_REASONING_NONE;
    if (chat) {
        const json_t *tools = json_object_get(root, "tools");
        if (tools && !json_is_null(tools) &&
            (st = server_tools_check(tools, NULL, NULL, &r->tools, err)))
            return st;
        v = json_object_get(root, "messages");
        if (!v || json_is_null(v)) {
            o->load_only = true;
            return SHIMMY_OK;
        }
        return parse_messages(v, r, o, err);
    }
    return parse_prompt(root, r, o, err);
}

shimmy_status ollama_request_parse(bool chat, const char *body, size_t len, int32_t cap,
                                   server_request *req, ollama_opts *o, shimmy_error *err) {
    memset(req, 0, sizeof *req);
    memset(o, 0, sizeof *o);
    req->api = chat ? SERVER_API_CHAT : SERVER_API_GENERATE;
    req->max_tokens = -1;
    req->stream = true; /* Ollama streams unless told not to */
    o->chat = chat;
    o->think = -1;
    /* Ollama's documented defaults. */
    req->gen = (shimmy_gen_options){.temperature = 0.8f,
                                    .top_k = 40,
                                    .top_p = 0.9f,
                                    .repeat_penalty = 1.1f,
                                    .repeat_last_n = 64,
                                    .seed = SHIMMY_SEED_RANDOM};
    json_t *root;
    shimmy_status st = server_json_body(body, len, &root, err);
    if (!st) st = parse_root(chat, root, cap, req, o, err);
    json_decref(root);
    if (!st && !req->model[0]) st = bad(err, "model", "is required");
    if (st) {
        server_request_deinit(req);
        ollama_opts_deinit(o);
    }
    return st;
}

void ollama_opts_deinit(ollama_opts *o) {
    if (!o) return;
    json_decref(o->format);
    o->format = NULL;
    shimmy_free(o->grammar);
    o->grammar = NULL;
}
