/* Evaluators: an engine session owned by the caller instead of the model's idle-session slot,
 * with the settings tools need (KV type, batch, logits of every position) and direct access to
 * the forward pass (teacher forcing) besides generation from token ids. */
#include "api.h"
#include "grammar/grammar.h"

#include "lora/lora.h"

#include <stdlib.h>
#include <string.h>

struct shimmy_evaluator {
    shimmy_model *m; /* one reference */
    engine_session *s;
    struct lora_set *lora; /* owned; borrowed by s, so freed after it */
};

static shimmy_status check_params(const shimmy_evaluator_params *p, shimmy_error *err) {
    api_problems pr = {0};
    api_check_range(&pr, "ctx_len", p->ctx_len, 1 << 24);
    if (p->batch < 0) api_problem(&pr, SHIMMY_ERR_INVALID_ARG, "batch", "must be >= 0");
    if (p->n_logits < 0) api_problem(&pr, SHIMMY_ERR_INVALID_ARG, "n_logits", "must be >= 0");
    if (p->kv != SHIMMY_KV_F16 && p->kv != SHIMMY_KV_F32)
        api_problem(&pr, SHIMMY_ERR_INVALID_ARG, "kv", "must be SHIMMY_KV_F16 or SHIMMY_KV_F32");
    api_check_range(&pr, "threads", p->threads, 512);
    if (p->n_lora > API_MAX_LORA || (p->n_lora && !p->lora))
        api_problem(&pr, SHIMMY_ERR_INVALID_ARG, "lora", "at most %d adapters, and not NULL",
                    API_MAX_LORA);
    for (size_t i = 0; p->lora && i < p->n_lora && i < API_MAX_LORA; i++)
        if (!p->lora[i].path || !(p->lora[i].scale >= -100.0f && p->lora[i].scale <= 100.0f))
            api_problem(&pr, SHIMMY_ERR_INVALID_ARG, "lora",
                        "adapter %zu needs a path and a scale in [-100, 100]", i);
    return api_problems_report(&pr, err);
}

/* The adapters: the caller's, else a set of the model's own (a set is used by one session). */
static shimmy_status open_lora(shimmy_evaluator *e, const shimmy_evaluator_params *p,
                               shimmy_error *err) {
    if (p->n_lora) {
        engine_adapter_spec as[API_MAX_LORA];
        for (size_t i = 0; i < p->n_lora; i++)
            as[i] = (engine_adapter_spec){p->lora[i].path, p->lora[i].scale};
        return engine_lora_open(e->m->em, as, p->n_lora, &e->lora, err);
    }
    if (!e->m->lora) return SHIMMY_OK;
    shimmy_status st = lora_set_new(&e->lora, err);
    for (size_t i = 0; !st && i < lora_set_count(e->m->lora); i++)
        st = lora_set_add(e->lora, lora_set_adapter(e->m->lora, i),
                          lora_set_user_scale(e->m->lora, i), err);
    return st;
}

shimmy_status shimmy_evaluator_new(shimmy_model *m, const shimmy_evaluator_params *p,
                                   shimmy_evaluator **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    shimmy_evaluator_params defaults = {0};
    if (!p) p = &defaults;
    shimmy_status st = check_params(p, err);
    if (st) return st;
    shimmy_evaluator *e = core_calloc(1, sizeof *e);
    if (!e) return core_error(err, SHIMMY_ERR_NOMEM, m->spec.f.name, "out of memory");
    e->m = shimmy_model_ref(m);
    engine_session_params sp = {
        .n_ctx = p->ctx_len ? p->ctx_len : m->n_ctx,
        .n_batch = p->batch,
        .n_logits = p->n_logits,
        .kv_type = p->kv == SHIMMY_KV_F32 ? MODEL_KV_F32 : MODEL_KV_F16,
        .n_threads = p->threads ? p->threads : m->spec.f.threads,
    };
    st = engine_session_new(m->em, &sp, &e->s, err);
    if (!st) st = open_lora(e, p, err);
    if (!st && e->lora) st = engine_session_set_lora(e->s, e->lora, err);
    if (st) {
        shimmy_evaluator_free(e);
        return st;
    }
    *out = e;
    return SHIMMY_OK;
}

void shimmy_evaluator_free(shimmy_evaluator *e) {
    if (!e) return;
    engine_session_free(e->s);
    lora_set_free(e->lora);
    shimmy_model_unref(e->m);
    free(e);
}

int32_t shimmy_evaluator_ctx_len(const shimmy_evaluator *e) {
    return e ? engine_session_n_ctx(e->s) : 0;
}

int32_t shimmy_evaluator_vocab_size(const shimmy_evaluator *e) {
    return e ? engine_n_vocab(e->s) : 0;
}

shimmy_status shimmy_evaluator_eval(shimmy_evaluator *e, const int32_t *tokens, size_t n,
                                    int32_t pos, bool all_logits, shimmy_error *err) {
    if (!e || (!tokens && n))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, !e ? "evaluator" : "tokens",
                          "a required pointer is NULL");
    const int32_t n_vocab = engine_n_vocab(e->s);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens",
                              "token %zu is id %d, outside the vocabulary of %d tokens", i,
                              (int)tokens[i], (int)n_vocab);
    return engine_eval(e->s, tokens, n, pos, all_logits, err);
}

const float *shimmy_evaluator_logits(const shimmy_evaluator *e, int32_t i) {
    return e && i >= 0 ? engine_logits(e->s, i) : NULL;
}

typedef struct piece_relay {
    shimmy_token_fn fn;
    void *user;
} piece_relay;

static bool relay(void *user, const char *text, size_t len, int32_t token) {
    (void)token;
    piece_relay *r = user;
    return !r->fn || len == 0 || r->fn(text, len, r->user) == SHIMMY_CONTINUE;
}

/* The context budget of shimmy_generate, against this evaluator's context. */
static shimmy_status budget(const shimmy_evaluator *e, size_t n_prompt, const shimmy_gen_options *o,
                            engine_gen_params *gp, shimmy_result *r, shimmy_error *err) {
    const int32_t n_ctx = engine_session_n_ctx(e->s);
    const char *name = e->m->spec.f.name;
    r->ctx_len = n_ctx;
    r->prompt_tokens = (int32_t)n_prompt;
    r->max_tokens = o->max_tokens;
    if (n_prompt >= (size_t)n_ctx)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "prompt",
                          "model '%s': the prompt has %zu tokens but the context holds %d; "
                          "shorten the prompt or raise the context size",
                          name, n_prompt, (int)n_ctx);
    const int32_t room = n_ctx - (int32_t)n_prompt;
    if (o->max_tokens > room)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "max_tokens",
                          "model '%s': max_tokens asks for %d tokens but only %d are available "
                          "(context %d, prompt %zu); lower max_tokens or raise the context size",
                          name, (int)o->max_tokens, (int)room, (int)n_ctx, n_prompt);
    gp->max_tokens = o->max_tokens ? o->max_tokens : (room < 128 ? room : 128);
    r->max_tokens = gp->max_tokens;
    return SHIMMY_OK;
}

shimmy_status shimmy_evaluator_generate(shimmy_evaluator *e, const int32_t *prompt, size_t n_prompt,
                                        const shimmy_gen_options *opts, shimmy_token_fn on_token,
                                        void *user, shimmy_eval_output *out, shimmy_error *err) {
    shimmy_eval_output local = {0};
    if (!out) out = &local;
    memset(&out->result, 0, sizeof out->result);
    out->cached_tokens = 0;
    out->ttft_ms = 0;
    if (!e || !prompt || n_prompt == 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, !e ? "evaluator" : "prompt",
                          !e ? "the evaluator is NULL" : "the prompt has no tokens");
    const shimmy_gen_options *o = opts ? opts : &e->m->spec.f.gen;
    shimmy_status st = api_gen_options_validate(o, engine_n_vocab(e->s), err);
    if (st) return st;
    engine_gen_params gp;
    api_gen_params(o, &gp);
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= engine_n_vocab(e->s))
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt",
                              "token %zu is id %d, outside the vocabulary", i, (int)prompt[i]);
    if ((st = budget(e, n_prompt, o, &gp, &out->result, err))) return st;
    gp.stop = o->stop;
    gp.n_stop = o->n_stop;
    gp.out_tokens = out->ids;
    gp.out_tokens_cap = out->ids ? out->ids_cap : 0;
    struct grammar *g = NULL;
    if ((st = api_gen_grammar(o, &g, err))) return st;
    gp.grammar = g;
    gp.grammar_after = o->grammar_after;
    piece_relay r = {on_token, user};
    engine_result er = {0};
    st = engine_generate(e->s, prompt, n_prompt, &gp, relay, &r, &er, err);
    grammar_unref(g);
    static const shimmy_finish finish[] = {
        [ENGINE_FINISH_STOP] = SHIMMY_FINISH_STOP,
        [ENGINE_FINISH_LENGTH] = SHIMMY_FINISH_LENGTH,
        [ENGINE_FINISH_CANCELLED] = SHIMMY_FINISH_CANCELLED,
    };
    out->result.finish = finish[er.finish];
    out->result.prompt_tokens = er.n_prompt ? er.n_prompt : (int32_t)n_prompt;
    out->result.completion_tokens = er.n_generated;
    out->result.prompt_ms = er.prompt_ms;
    out->result.gen_ms = er.gen_ms;
    out->cached_tokens = er.n_cached;
    out->ttft_ms = er.ttft_ms;
    return st;
}

uint64_t shimmy_model_weight_bytes(const shimmy_model *m) {
    return m ? engine_model_get_info(m->em)->weight_bytes : 0;
}
