/* Chat prompts: the one path from messages to prompt tokens that the server and the library
 * share, so both lay out a conversation and treat user text identically. */
#include "engine.h"

#include "chat/chat.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static bool vocab_has(const char *text, void *user) {
    return tok_find(user, text, strlen(text)) >= 0;
}

shimmy_status engine_chat_prompt(const engine_model *m, const engine_chat_params *p, tok_buf *out,
                                 const char **eot, shimmy_error *err) {
    const tok_vocab *v = engine_model_vocab(m);
    if (!v)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, "model",
                          "the model has no tokenizer and cannot take a conversation");
    const char *src =
        p->template_family ? chat_builtin_get(p->template_family) : engine_model_chat_template(m);
    if (p->template_family && !src)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "template", "no built-in chat template '%s'",
                          p->template_family);
    if (!src || !*src)
        src = chat_builtin_get(
            chat_builtin_pick(engine_model_get_info(m)->architecture, vocab_has, (void *)v));
    /* The family's end-of-turn text joins the stop set, for models that spell it as text. */
    if (eot) *eot = chat_family_eot(p->template_family ? p->template_family : chat_family_of(src));
    chat_template *t = NULL;
    shimmy_status st = chat_template_new(src, &t, err);
    if (st) return st;
    chat_render_params rp = {
        .messages = p->messages,
        .tools = p->tools,
        .extra = p->vars,
        .add_generation_prompt = true,
        .bos_token = engine_model_bos_text(m),
        .eos_token = engine_model_eos_text(m),
        /* BOS is added as a token; its text at the start of the render must not be doubled */
        .trim_bos_eos = tok_add_bos(v),
    };
    chat_output r;
    st = chat_render(t, &rp, &r, err);
    chat_template_free(t);
    if (st) return st;
    /* Message content is literal: a user who types "<|im_end|>" gets text, not a control
     * token; only the template's own text may produce special tokens. */
    tok_span *lit = core_calloc(r.n_spans ? r.n_spans : 1, sizeof *lit);
    if (!lit) {
        chat_output_free(&r);
        return core_error(err, SHIMMY_ERR_NOMEM, "messages", "out of memory");
    }
    for (size_t i = 0; i < r.n_spans; i++) lit[i] = (tok_span){r.spans[i].begin, r.spans[i].end};
    tok_encode_opts eo = {
        .add_special = true, .parse_special = true, .literal = lit, .n_literal = r.n_spans};
    st = tok_encode(v, r.text, r.len, &eo, out, err);
    free(lit);
    chat_output_free(&r);
    return st;
}
