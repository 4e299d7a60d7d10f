/* Prepared prompts: token ids for one model's vocabulary, made from raw text, a conversation
 * (the model's chat template) or ids, so that a server can check a prompt against the context
 * before it queues the generation. */
#include "api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct shimmy_prompt {
    tok_buf toks;
    const char *eot; /* static storage of the template family, or NULL */
};

static shimmy_status prompt_new(const shimmy_model *m, shimmy_prompt **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    if (!(*out = core_calloc(1, sizeof **out)))
        return core_error(err, SHIMMY_ERR_NOMEM, "prompt", "out of memory");
    return SHIMMY_OK;
}

static shimmy_status prompt_done(shimmy_status st, shimmy_prompt **out) {
    if (st) {
        shimmy_prompt_free(*out);
        *out = NULL;
    }
    return st;
}

shimmy_status shimmy_prompt_from_text(const shimmy_model *m, const char *text, size_t len,
                                      shimmy_prompt **out, shimmy_error *err) {
    shimmy_status st = prompt_new(m, out, err);
    if (st) return st;
    if (!text && len)
        return prompt_done(core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt", "the text is NULL"),
                           out);
    /* A raw prompt is the caller's own text, so control-token text in it counts. */
    tok_encode_opts eo = {.add_special = true, .parse_special = true};
    st = tok_encode(engine_model_vocab(m->em), text ? text : "", len, &eo, &(*out)->toks, err);
    return prompt_done(st, out);
}

shimmy_status shimmy_prompt_from_chat(const shimmy_model *m, const shimmy_message *messages,
                                      size_t n_messages, shimmy_prompt **out, shimmy_error *err) {
    shimmy_status st = prompt_new(m, out, err);
    if (st) return st;
    if (!messages || n_messages == 0)
        return prompt_done(core_error(err, SHIMMY_ERR_INVALID_ARG, "messages", "no messages given"),
                           out);
    json_t *msgs = NULL;
    st = api_messages_json(messages, n_messages, &msgs, err);
    if (st) return prompt_done(st, out);
    engine_chat_params cp = {.messages = msgs, .template_family = m->spec.f.template_name};
    st = engine_chat_prompt(m->em, &cp, &(*out)->toks, &(*out)->eot, err);
    json_decref(msgs);
    if (st == SHIMMY_ERR_TEMPLATE && err) snprintf(err->where, sizeof err->where, "messages");
    return prompt_done(st, out);
}

/* A JSON array parsed from text, or an error naming the field. */
static shimmy_status json_array_of(const char *text, const char *field, json_t **out,
                                   shimmy_error *err) {
    json_error_t je;
    *out = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return core_error(err, SHIMMY_ERR_INVALID_JSON, field, "%s: %s (line %d, column %d)", field,
                          je.text, je.line, je.column);
    if (!json_is_array(*out)) {
        json_decref(*out);
        *out = NULL;
        return core_error(err, SHIMMY_ERR_INVALID_ARG, field, "%s must be a JSON array", field);
    }
    return SHIMMY_OK;
}

shimmy_status shimmy_prompt_from_chat_json(const shimmy_model *m, const char *messages_json,
                                           const char *tools_json, shimmy_prompt **out,
                                           shimmy_error *err) {
    return shimmy_prompt_from_chat_vars(m, messages_json, tools_json, NULL, out, err);
}

/* chat_template_kwargs: an object, or an error naming "vars". */
static shimmy_status vars_of(const char *text, json_t **out, shimmy_error *err) {
    json_error_t je;
    *out = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return core_error(err, SHIMMY_ERR_INVALID_JSON, "vars", "vars: %s (line %d, column %d)",
                          je.text, je.line, je.column);
    if (json_is_object(*out)) return SHIMMY_OK;
    json_decref(*out);
    *out = NULL;
    return core_error(err, SHIMMY_ERR_INVALID_ARG, "vars", "vars must be a JSON object");
}

shimmy_status shimmy_prompt_from_chat_vars(const shimmy_model *m, const char *messages_json,
                                           const char *tools_json, const char *vars_json,
                                           shimmy_prompt **out, shimmy_error *err) {
    shimmy_status st = prompt_new(m, out, err);
    if (st) return st;
    if (!messages_json)
        return prompt_done(core_error(err, SHIMMY_ERR_INVALID_ARG, "messages", "no messages given"),
                           out);
    json_t *msgs = NULL, *tools = NULL, *vars = NULL;
    st = json_array_of(messages_json, "messages", &msgs, err);
    if (!st && json_array_size(msgs) == 0)
        st = core_error(err, SHIMMY_ERR_INVALID_ARG, "messages", "no messages given");
    if (!st && tools_json) st = json_array_of(tools_json, "tools", &tools, err);
    if (!st && vars_json) st = vars_of(vars_json, &vars, err);
    if (!st) {
        engine_chat_params cp = {.messages = msgs,
                                 .tools = tools,
                                 .vars = vars,
                                 .template_family = m->spec.f.template_name};
        st = engine_chat_prompt(m->em, &cp, &(*out)->toks, &(*out)->eot, err);
        if (st == SHIMMY_ERR_TEMPLATE && err) snprintf(err->where, sizeof err->where, "messages");
    }
    json_decref(msgs);
    json_decref(tools);
    json_decref(vars);
    return prompt_done(st, out);
}

shimmy_status shimmy_prompt_from_tokens(const shimmy_model *m, const int32_t *ids, size_t n,
                                        shimmy_prompt **out, shimmy_error *err) {
    shimmy_status st = prompt_new(m, out, err);
    if (st) return st;
    if (n && !ids)
        return prompt_done(core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens", "ids is NULL"), out);
    const int32_t n_vocab = tok_n_vocab(engine_model_vocab(m->em));
    for (size_t i = 0; !st && i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n_vocab)
            st = core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens",
                            "token %zu is %d, outside the vocabulary of %d tokens", i, (int)ids[i],
                            (int)n_vocab);
        else
            st = tok_buf_push(&(*out)->toks, ids[i], err);
    }
    return prompt_done(st, out);
}

void shimmy_prompt_free(shimmy_prompt *p) {
    if (!p) return;
    tok_buf_free(&p->toks);
    free(p);
}

size_t shimmy_prompt_token_count(const shimmy_prompt *p) {
    return p ? p->toks.n : 0;
}

const int32_t *shimmy_prompt_tokens(const shimmy_prompt *p) {
    return p ? p->toks.ids : NULL;
}

const char *shimmy_prompt_end_of_turn(const shimmy_prompt *p) {
    return p ? p->eot : NULL;
}
