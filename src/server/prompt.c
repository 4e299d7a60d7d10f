/* From a validated request to prompt tokens: the model handle, the chat template (the model's
 * own, else a built-in family), tokenization with special tokens parsed only in template text,
 * and the context budget. Runs on the connection thread so that every request error is known
 * before a response starts. */
#include "server.h"

#include "chat/chat.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static bool vocab_has(const char *text, void *user) {
    return tok_find(user, text, strlen(text)) >= 0;
}

static shimmy_status take_tokens(server_job *j, size_t i, tok_buf *b) {
    j->prompt[i] = b->ids;
    j->n_prompt[i] = b->n;
    b->ids = NULL;
    b->n = b->cap = 0;
    return SHIMMY_OK;
}

static shimmy_status render_chat(server_job *j, const engine_model *em, const tok_vocab *v,
                                 shimmy_error *err) {
    const char *src = engine_model_chat_template(em);
    if (!src || !*src)
        src = chat_builtin_get(
            chat_builtin_pick(engine_model_get_info(em)->architecture, vocab_has, (void *)v));
    /* The family's end-of-turn text joins the stop set, for models that spell it as plain text. */
    j->eot_stop = chat_family_eot(chat_family_of(src));
    chat_template *t = NULL;
    shimmy_status st = chat_template_new(src, &t, err);
    if (st) return st;
    chat_render_params rp = {
        .messages = j->req.messages,
        .add_generation_prompt = true,
        .bos_token = engine_model_bos_text(em),
        .eos_token = engine_model_eos_text(em),
        .trim_bos_eos = tok_add_bos(v),
    };
    chat_output out;
    st = chat_render(t, &rp, &out, err);
    chat_template_free(t);
    if (st) return st;
    /* Content spans are literal: a user typing "<|im_end|>" gets text, not a control token. */
    tok_span *lit = calloc(out.n_spans ? out.n_spans : 1, sizeof *lit);
    if (!lit) {
        chat_output_free(&out);
        return core_error(err, SHIMMY_ERR_NOMEM, "messages", "out of memory");
    }
    for (size_t i = 0; i < out.n_spans; i++) {
        lit[i].begin = out.spans[i].begin;
        lit[i].end = out.spans[i].end;
    }
    tok_encode_opts eo = {
        .add_special = true, .parse_special = true, .literal = lit, .n_literal = out.n_spans};
    tok_buf b = {0};
    st = tok_encode(v, out.text, out.len, &eo, &b, err);
    free(lit);
    chat_output_free(&out);
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
    st = j->req.messages ? render_chat(j, em, v, err) : encode_prompts(j, v, err);
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
