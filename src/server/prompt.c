/* From a validated request to prompt tokens: the model handle, the chat template (the model's
 * own, else a built-in family), tokenization with special tokens parsed only in template text,
 * and the context budget. Runs on the connection thread so that every request error is known
 * before a response starts. */
#include "server.h"

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static shimmy_status take_tokens(server_job *j, size_t i, tok_buf *b) {
    j->prompt[i] = b->ids;
    j->n_prompt[i] = b->n;
    b->ids = NULL;
    b->n = b->cap = 0;
    return SHIMMY_OK;
}

static shimmy_status render_chat(server_job *j, const engine_model *em, shimmy_error *err) {
    /* the request's tools are not passed yet: generation has no tool-call parsing to match */
    engine_chat_params cp = {.messages = j->req.messages};
    tok_buf b = {0};
    shimmy_status st = engine_chat_prompt(em, &cp, &b, &j->eot_stop, err);
    if (st) {
        tok_buf_free(&b);
        return st;
    }
    j->n_choices = 1;
    return take_tokens(j, 0, &b);
}

static shimmy_status encode_prompts(server_job *j, const tok_vocab *v, shimmy_error *err) {
    /* A raw prompt is the caller's own text, so control tokens written in it count (as in
     * llama-server's completion endpoint). */
    tok_encode_opts eo = {.add_special = true, .parse_special = true};
    for (size_t i = 0; i < j->req.n_prompts; i++) {
        tok_buf b = {0};
        shimmy_status st =
            tok_encode(v, j->req.prompts[i], strlen(j->req.prompts[i]), &eo, &b, err);
        if (st) {
            tok_buf_free(&b);
            return st;
        }
        take_tokens(j, i, &b);
        j->n_choices = i + 1;
    }
    return SHIMMY_OK;
}

shimmy_status server_job_prepare(server *s, server_job *j, shimmy_error *err) {
    shimmy_status st = server_lora_resolve(s, j, err);
    if (st) return st;
    st = manager_acquire(s->mgr, j->base, &j->handle, err);
    if (st) {
        if (st == SHIMMY_ERR_MODEL_NOT_FOUND) snprintf(err->where, sizeof err->where, "model");
        return st;
    }
    st = server_lora_attach(s, j, err);
    if (st) return st;
    const engine_model *em = manager_handle_model(j->handle);
    const tok_vocab *v = engine_model_vocab(em);
    if (!v)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, "model",
                          "model '%s' has no tokenizer and cannot serve text", j->req.model);
    st = j->req.messages ? render_chat(j, em, err) : encode_prompts(j, v, err);
    if (st) {
        if (st == SHIMMY_ERR_TEMPLATE) snprintf(err->where, sizeof err->where, "messages");
        return st;
    }
    for (size_t i = 0; i < j->req.sampling.n_logit_bias; i++) {
        if (j->req.bias[i].token >= tok_n_vocab(v))
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                              "'logit_bias' names token %d but the vocabulary has %d tokens",
                              j->req.bias[i].token, tok_n_vocab(v));
    }
    /* The context a slot will have for this model (see engine_session_params.n_ctx). */
    int32_t n_ctx = s->cfg.ctx_size;
    if (n_ctx <= 0) {
        n_ctx = engine_model_get_info(em)->n_ctx_train;
        if (n_ctx <= 0 || n_ctx > 4096) n_ctx = 4096;
    }
    size_t longest = 0;
    for (size_t i = 0; i < j->n_choices; i++)
        if (j->n_prompt[i] > longest) longest = j->n_prompt[i];
    const char *field = j->req.messages ? "messages" : "prompt";
    if (longest == 0) return core_error(err, SHIMMY_ERR_INVALID_ARG, field, "the prompt is empty");
    if (longest >= (size_t)n_ctx)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, field,
                          "this model's context is %d tokens, but the prompt has %zu tokens; "
                          "shorten the %s",
                          n_ctx, longest, field);
    int32_t room = n_ctx - (int32_t)longest;
    if (j->req.max_tokens > 0) {
        if (j->req.max_tokens > room)
            return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "max_tokens",
                              "this model's context is %d tokens; the prompt has %zu tokens and "
                              "max_tokens asks for %d more; reduce max_tokens or the prompt",
                              n_ctx, longest, j->req.max_tokens);
        j->max_tokens = j->req.max_tokens;
    } else {
        j->max_tokens = room < s->cfg.max_tokens_cap ? room : s->cfg.max_tokens_cap;
    }
    return SHIMMY_OK;
}
