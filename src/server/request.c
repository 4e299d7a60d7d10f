/* Request bodies -> server_request: every field is checked against a table of parsers, so a bad
 * field is reported by name and unknown fields are ignored (as OpenAI's API does). */
#include "server.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    API_CHAT = 1u << SERVER_API_CHAT,
    API_COMPL = 1u << SERVER_API_COMPLETIONS,
    API_GEN = 1u << SERVER_API_GENERATE,
    API_ALL = API_CHAT | API_COMPL | API_GEN,
};

/* Parse state shared by the field parsers: the request plus fields that combine later. */
typedef struct parse_ctx {
    server_request *r;
    const json_t *messages;
    const json_t *prompt;
    const json_t *tools, *tool_choice, *parallel_tool_calls; /* checked together (toolcall.c) */
    const char *system;
    bool raw;
    bool has_max_tokens;
    bool top_p_zero; /* top_p 0: only the most likely token survives */
} parse_ctx;

typedef shimmy_status (*field_fn)(parse_ctx *c, const char *name, const json_t *v,
                                  shimmy_error *err);

typedef struct field_rule {
    const char *name;
    unsigned apis;
    field_fn parse;
} field_rule;

static shimmy_status bad(shimmy_error *err, const char *name, const char *what) {
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name, "'%s' %s", name, what);
}

shimmy_status server_json_number_in(const json_t *v, const char *name, double lo, double hi,
                                    double *out, shimmy_error *err) {
    if (!json_is_number(v)) return bad(err, name, "must be a number");
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                "'%s' must be between %g and %g (got %g)", name, lo, hi, d);
    }
    *out = d;
    return SHIMMY_OK;
}

shimmy_status server_json_integer_in(const json_t *v, const char *name, json_int_t lo,
                                     json_int_t hi, json_int_t *out, shimmy_error *err) {
    /* Clients written in JavaScript send 5.0 as 5; accept integral reals too. */
    json_int_t i;
    if (json_is_integer(v)) {
        i = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        i = (json_int_t)json_real_value(v);
    } else {
        return bad(err, name, "must be an integer");
    }
    if (i < lo || i > hi) {
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                "'%s' must be between %lld and %lld (got %lld)", name,
                                (long long)lo, (long long)hi, (long long)i);
    }
    *out = i;
    return SHIMMY_OK;
}

static shimmy_status parse_model(parse_ctx *c, const char *name, const json_t *v,
                                 shimmy_error *err) {
    if (!json_is_string(v)) return bad(err, name, "must be a string");
    size_t n = json_string_length(v);
    if (n == 0) return bad(err, name, "must not be empty");
    if (n >= sizeof c->r->model) return bad(err, name, "is too long");
    memcpy(c->r->model, json_string_value(v), n + 1);
    return SHIMMY_OK;
}

static shimmy_status parse_store_json(parse_ctx *c, const char *name, const json_t *v,
                                      shimmy_error *err) {
    if (strcmp(name, "messages") == 0)
        c->messages = v;
    else if (strcmp(name, "tools") == 0)
        c->tools = v;
    else if (strcmp(name, "tool_choice") == 0)
        c->tool_choice = v;
    else if (strcmp(name, "parallel_tool_calls") == 0)
        c->parallel_tool_calls = v;
    else
        c->prompt = v;
    return SHIMMY_OK;
}

static shimmy_status parse_system(parse_ctx *c, const char *name, const json_t *v,
                                  shimmy_error *err) {
    if (!json_is_string(v)) return bad(err, name, "must be a string");
    c->system = json_string_value(v);
    return SHIMMY_OK;
}

static shimmy_status parse_max_tokens(parse_ctx *c, const char *name, const json_t *v,
                                      shimmy_error *err) {
    json_int_t i;
    shimmy_status st = server_json_integer_in(v, name, 1, INT32_MAX, &i, err);
    if (st) return st;
    c->r->max_tokens = (int32_t)i;
    c->has_max_tokens = true;
    return SHIMMY_OK;
}

static shimmy_status parse_float(parse_ctx *c, const char *name, const json_t *v,
                                 shimmy_error *err) {
    /* Ranges follow OpenAI's reference; the local extensions use llama.cpp's meaningful ranges. */
    static const struct {
        const char *name;
        double lo, hi;
        size_t off;
    } rows[] = {
        {"temperature", 0, 2, offsetof(shimmy_gen_options, temperature)},
        {"top_p", 0, 1, offsetof(shimmy_gen_options, top_p)},
        {"min_p", 0, 1, offsetof(shimmy_gen_options, min_p)},
        {"presence_penalty", -2, 2, offsetof(shimmy_gen_options, presence_penalty)},
        {"frequency_penalty", -2, 2, offsetof(shimmy_gen_options, frequency_penalty)},
        {"repeat_penalty", 0.01, 10, offsetof(shimmy_gen_options, repeat_penalty)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (strcmp(rows[i].name, name) != 0) continue;
        double d;
        shimmy_status st = server_json_number_in(v, name, rows[i].lo, rows[i].hi, &d, err);
        if (st) return st;
        *(float *)((char *)&c->r->gen + rows[i].off) = (float)d;
        if (strcmp(name, "top_p") == 0) c->top_p_zero = d == 0.0;
        return SHIMMY_OK;
    }
    return shimmy_error_set(err, SHIMMY_ERR_INTERNAL, name, "no range for '%s'", name);
}

static shimmy_status parse_top_k(parse_ctx *c, const char *name, const json_t *v,
                                 shimmy_error *err) {
    json_int_t i;
    shimmy_status st = server_json_integer_in(v, name, 0, INT32_MAX, &i, err);
    if (!st) c->r->gen.top_k = (int32_t)i;
    return st;
}

static shimmy_status parse_seed(parse_ctx *c, const char *name, const json_t *v,
                                shimmy_error *err) {
    json_int_t i;
    shimmy_status st = server_json_integer_in(v, name, INT64_MIN, INT64_MAX, &i, err);
    if (st) return st;
    /* OpenAI seeds are 64-bit; fold them into the sampler's 32 bits, keeping clear of the
     * "random seed" marker so an explicit seed is always reproducible. */
    uint64_t u = (uint64_t)i;
    uint32_t s = (uint32_t)(u ^ (u >> 32));
    c->r->gen.seed = s == SHIMMY_SEED_RANDOM ? s - 1 : s;
    return SHIMMY_OK;
}

static shimmy_status add_stop(server_request *r, const json_t *v, const char *where,
                              shimmy_error *err) {
    if (!json_is_string(v)) return bad(err, where, "must be a string or an array of strings");
    if (json_string_length(v) == 0) return bad(err, where, "must not contain empty strings");
    if (json_string_length(v) > SHIMMY_MAX_STOP_LEN)
        return bad(err, where, "has an entry longer than 256 bytes");
    if (r->n_stop == SERVER_MAX_STOP) return bad(err, where, "has too many entries (at most 16)");
    r->stop[r->n_stop] = strdup(json_string_value(v));
    if (!r->stop[r->n_stop]) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, where, "out of memory");
    r->n_stop++;
    return SHIMMY_OK;
}

shimmy_status server_request_add_stops(server_request *r, const json_t *v, const char *name,
                                       shimmy_error *err) {
    if (!json_is_array(v)) return add_stop(r, v, name, err);
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s) {
        shimmy_status st = add_stop(r, s, name, err);
        if (st) return st;
    }
    return SHIMMY_OK;
}

static shimmy_status parse_stop(parse_ctx *c, const char *name, const json_t *v,
                                shimmy_error *err) {
    return server_request_add_stops(c->r, v, name, err);
}

static shimmy_status parse_bool(parse_ctx *c, const char *name, const json_t *v,
                                shimmy_error *err) {
    if (!json_is_boolean(v)) return bad(err, name, "must be true or false");
    bool b = json_is_true(v);
    if (strcmp(name, "stream") == 0)
        c->r->stream = b;
    else if (strcmp(name, "echo") == 0)
        c->r->echo = b;
    else
        c->raw = b;
    return SHIMMY_OK;
}

static shimmy_status parse_stream_options(parse_ctx *c, const char *name, const json_t *v,
                                          shimmy_error *err) {
    if (!json_is_object(v)) return bad(err, name, "must be an object");
    const json_t *u = json_object_get(v, "include_usage");
    if (u && !json_is_null(u)) {
        if (!json_is_boolean(u))
            return bad(err, "stream_options.include_usage", "must be true or false");
        c->r->include_usage = json_is_true(u);
    }
    return SHIMMY_OK;
}

static shimmy_status parse_n(parse_ctx *c, const char *name, const json_t *v, shimmy_error *err) {
    json_int_t i;
    shimmy_status st = server_json_integer_in(v, name, INT64_MIN, INT64_MAX, &i, err);
    if (st) return st;
    if (i != 1) {
        return shimmy_error_set(
            err, SHIMMY_ERR_INVALID_ARG, name,
            "'n' must be 1: this server generates one choice per request (got %lld)", (long long)i);
    }
    return SHIMMY_OK;
}

static shimmy_status parse_logit_bias(parse_ctx *c, const char *name, const json_t *v,
                                      shimmy_error *err) {
    if (!json_is_object(v)) return bad(err, name, "must be an object mapping token ids to numbers");
    const char *key;
    const json_t *val;
    server_request *r = c->r;
    json_object_foreach((json_t *)v, key, val) {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0 || id > INT32_MAX)
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                    "'logit_bias' keys must be token ids (got \"%.64s\")", key);
        double b;
        shimmy_status st = server_json_number_in(val, name, -100, 100, &b, err);
        if (st) return st;
        if (r->n_bias == SERVER_MAX_BIAS) return bad(err, name, "has too many entries");
        r->bias[r->n_bias].token = (int32_t)id;
        r->bias[r->n_bias].bias = (float)b;
        r->n_bias++;
    }
    return SHIMMY_OK;
}

static shimmy_status parse_user(parse_ctx *c, const char *name, const json_t *v,
                                shimmy_error *err) {
    return json_is_string(v) ? SHIMMY_OK : bad(err, name, "must be a string");
}

/* "lora": [{"name": "<registry adapter name>", "scale": 0.5}, ...]; names are checked against
 * the registry later (server_lora_resolve). */
static shimmy_status parse_lora(parse_ctx *c, const char *name, const json_t *v,
                                shimmy_error *err) {
    if (!json_is_array(v)) return bad(err, name, "must be an array of {\"name\", \"scale\"}");
    if (json_array_size(v) > SERVER_MAX_LORA)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                "'lora' may list at most %d adapters (got %zu)", SERVER_MAX_LORA,
                                json_array_size(v));
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_object(item))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                    "'lora[%zu]' must be an object {\"name\", \"scale\"}", i);
        const char *key;
        const json_t *val;
        json_object_foreach((json_t *)item, key, val) {
            if (strcmp(key, "name") != 0 && strcmp(key, "scale") != 0)
                return shimmy_error_set(
                    err, SHIMMY_ERR_INVALID_ARG, name,
                    "'lora[%zu]' has an unknown key '%.100s' (only name and scale)", i, key);
        }
        const json_t *n = json_object_get(item, "name");
        if (!json_is_string(n) || json_string_length(n) == 0 ||
            json_string_length(n) >= sizeof c->r->lora[0].name)
            return shimmy_error_set(
                err, SHIMMY_ERR_INVALID_ARG, name,
                "'lora[%zu].name' must be an adapter name (a non-empty string of "
                "at most %zu bytes; see GET /api/adapters)",
                i, sizeof c->r->lora[0].name - 1);
        const json_t *sc = json_object_get(item, "scale");
        double scale = 1.0;
        if (sc && !json_is_null(sc)) {
            if (!json_is_number(sc) || !isfinite(json_number_value(sc)) ||
                fabs(json_number_value(sc)) > 1e6)
                return shimmy_error_set(
                    err, SHIMMY_ERR_INVALID_ARG, name,
                    "'lora[%zu].scale' must be a finite number (|scale| <= 1e6)", i);
            scale = json_number_value(sc);
        }
        server_lora_ref *ref = &c->r->lora[c->r->n_lora++];
        memcpy(ref->name, json_string_value(n), json_string_length(n) + 1);
        ref->scale = (float)scale;
        if (strlen(ref->name) != json_string_length(n))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                    "'lora[%zu].name' contains a NUL byte", i);
    }
    return SHIMMY_OK;
}

/* logprobs, reasoning and template variables live with the job layer that uses them (piece.c) */
static shimmy_status parse_output(parse_ctx *c, const char *name, const json_t *v,
                                  shimmy_error *err) {
    return server_request_output_field(c->r, name, v, err);
}

static shimmy_status parse_structured(parse_ctx *c, const char *name, const json_t *v,
                                      shimmy_error *err) {
    return server_structured_field(c->r, name, v, err); /* structured.c */
}

static const field_rule field_rules[] = {
    {"model", API_ALL, parse_model},
    {"messages", API_CHAT | API_GEN, parse_store_json},
    {"prompt", API_COMPL | API_GEN, parse_store_json},
    {"system", API_GEN, parse_system},
    {"max_tokens", API_ALL, parse_max_tokens},
    {"max_completion_tokens", API_CHAT, parse_max_tokens},
    {"temperature", API_ALL, parse_float},
    {"top_p", API_ALL, parse_float},
    {"min_p", API_ALL, parse_float},
    {"presence_penalty", API_ALL, parse_float},
    {"frequency_penalty", API_ALL, parse_float},
    {"repeat_penalty", API_ALL, parse_float},
    {"top_k", API_ALL, parse_top_k},
    {"seed", API_ALL, parse_seed},
    {"stop", API_ALL, parse_stop},
    {"stream", API_ALL, parse_bool},
    {"echo", API_COMPL, parse_bool},
    {"raw", API_GEN, parse_bool},
    {"stream_options", API_CHAT | API_COMPL, parse_stream_options},
    {"n", API_CHAT | API_COMPL, parse_n},
    {"logit_bias", API_ALL, parse_logit_bias},
    {"user", API_CHAT | API_COMPL, parse_user},
    {"lora", API_ALL, parse_lora},
    {"tools", API_CHAT, parse_store_json},
    {"tool_choice", API_CHAT, parse_store_json},
    {"parallel_tool_calls", API_CHAT, parse_store_json},
    {"response_format", API_CHAT | API_COMPL, parse_structured},
    {"grammar", API_ALL, parse_structured},
    {"json_schema", API_COMPL | API_GEN, parse_structured},
    {"logprobs", API_CHAT | API_COMPL, parse_output},
    {"top_logprobs", API_CHAT, parse_output},
    {"reasoning_format", API_CHAT | API_GEN, parse_output},
    {"chat_template_kwargs", API_CHAT | API_GEN, parse_output},
};

static shimmy_status add_prompt(server_request *r, const json_t *v, const char *where,
                                shimmy_error *err) {
    if (!json_is_string(v))
        return shimmy_error_set(
            err, SHIMMY_ERR_INVALID_ARG, where,
            "'%s' must be a string or an array of strings (token arrays are not "
            "supported)",
            where);
    if (r->n_prompts == SERVER_MAX_PROMPTS)
        return bad(err, where, "has too many entries (at most 16)");
    r->prompts[r->n_prompts] = strdup(json_string_value(v));
    if (!r->prompts[r->n_prompts])
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, where, "out of memory");
    r->n_prompts++;
    return SHIMMY_OK;
}

/* Native generate: a prompt goes through the chat template as one user turn (after an optional
 * system turn) unless raw is set; messages work as in chat completions. */
static shimmy_status finish_generate(parse_ctx *c, shimmy_error *err) {
    server_request *r = c->r;
    if (c->messages) {
        if (c->prompt) return bad(err, "prompt", "cannot be combined with 'messages'");
        return server_messages_normalise(c->messages, &r->messages, err);
    }
    if (!c->prompt)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "prompt",
                                "'prompt' or 'messages' is required");
    if (!json_is_string(c->prompt)) return bad(err, "prompt", "must be a string");
    if (c->raw) return add_prompt(r, c->prompt, "prompt", err);
    json_t *msgs = json_array();
    if (c->system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", c->system));
    json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", c->prompt));
    if (!msgs || json_array_size(msgs) != (c->system ? 2u : 1u)) {
        json_decref(msgs);
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "prompt", "out of memory");
    }
    r->messages = msgs;
    return SHIMMY_OK;
}

static shimmy_status finish(parse_ctx *c, server_api api, int32_t cap, shimmy_error *err) {
    server_request *r = c->r;
    if (api != SERVER_API_GENERATE && !r->model[0])
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "model", "'model' is required");
    shimmy_status st = SHIMMY_OK;
    if (api == SERVER_API_CHAT) {
        if (!c->messages)
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "messages",
                                    "'messages' is required");
        st = server_messages_normalise(c->messages, &r->messages, err);
        if (!st)
            st = server_tools_check(c->tools, c->tool_choice, c->parallel_tool_calls, &r->tools,
                                    err);
    } else if (api == SERVER_API_COMPLETIONS) {
        if (!c->prompt)
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "prompt", "'prompt' is required");
        if (json_is_array(c->prompt)) {
            size_t i;
            const json_t *p;
            if (json_array_size(c->prompt) == 0) return bad(err, "prompt", "must not be empty");
            json_array_foreach(c->prompt, i, p) {
                if ((st = add_prompt(r, p, "prompt", err))) return st;
            }
        } else {
            st = add_prompt(r, c->prompt, "prompt", err);
        }
    } else {
        st = finish_generate(c, err);
    }
    if (st) return st;
    if (r->max_tokens > cap) r->max_tokens = cap;
    if (r->include_usage && !r->stream) r->include_usage = false;
    /* The library reads top_p 0 as "off"; nucleus sampling with p = 0 keeps the top token. */
    if (c->top_p_zero) r->gen.top_k = 1;
    st = server_request_output_check(r, err);
    if (st) return st;
    return SHIMMY_OK;
}

void server_gen_defaults(shimmy_gen_options *o) {
    /* llama.cpp's server defaults, which clients of a local server expect (a zero
     * shimmy_gen_options would be greedy). */
    memset(o, 0, sizeof *o);
    o->temperature = 0.8f;
    o->top_k = 40;
    o->top_p = 0.95f;
    o->min_p = 0.05f;
    o->repeat_last_n = 64;
    o->seed = SHIMMY_SEED_RANDOM;
}

shimmy_status server_json_body(const char *body, size_t len, json_t **out, shimmy_error *err) {
    json_error_t je;
    /* jansson validates UTF-8 and refuses NUL bytes in strings unless asked not to. */
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, NULL,
                                "request body is not valid JSON: %s (line %d, column %d)", je.text,
                                je.line, je.column);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, NULL,
                                "request body must be a JSON object");
    }
    return SHIMMY_OK;
}

shimmy_status server_request_parse(server_api api, const char *body, size_t len,
                                   int32_t max_tokens_cap, server_request *out, shimmy_error *err) {
    memset(out, 0, sizeof *out);
    out->api = api;
    out->max_tokens = -1;
    server_gen_defaults(&out->gen);
    json_t *root;
    shimmy_status bst = server_json_body(body, len, &root, err);
    if (bst) return bst;
    parse_ctx c = {.r = out};
    shimmy_status st = SHIMMY_OK;
    for (size_t i = 0; !st && i < sizeof field_rules / sizeof field_rules[0]; i++) {
        const field_rule *f = &field_rules[i];
        if (!(f->apis & (1u << api))) continue;
        const json_t *v = json_object_get(root, f->name);
        if (!v || json_is_null(v)) continue; /* null means "use the default", as in OpenAI's API */
        st = f->parse(&c, f->name, v, err);
    }
    if (!st) st = finish(&c, api, max_tokens_cap, err);
    json_decref(root);
    if (st) server_request_deinit(out);
    return st;
}

void server_request_deinit(server_request *r) {
    if (!r) return;
    json_decref(r->messages);
    r->messages = NULL;
    json_decref(r->tools.tools);
    server_structured_deinit(r);
    json_decref(r->template_vars);
    r->template_vars = NULL;
    r->tools.tools = NULL;
    for (size_t i = 0; i < r->n_prompts; i++) free(r->prompts[i]);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    r->n_prompts = r->n_stop = 0;
}
