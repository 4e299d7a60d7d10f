/* A generation request made safe to run: options resolved and checked against the model,
 * prompt tokenized, context budget checked with both numbers in the error, stop strings owned. */
#include "api.h"
#include "grammar/grammar.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_TOKENS 128
#define DEFAULT_LAST_N     64

void api_job_init(api_job *j, shimmy_model *m) {
    memset(j, 0, sizeof *j);
    j->m = shimmy_model_ref(m);
    pthread_mutex_init(&j->lock, NULL);
}

void api_job_deinit(api_job *j) {
    for (size_t i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->stop);
    grammar_unref(j->grammar);
    free(j->grammar_after);
    tok_buf_free(&j->prompt);
    pthread_mutex_destroy(&j->lock);
    shimmy_model_unref(j->m);
    memset(j, 0, sizeof *j);
}

shimmy_status api_gen_options_validate(const shimmy_gen_options *o, int32_t n_vocab,
                                       shimmy_error *err) {
    api_problems p = {0};
    api_gen_options_check(o, "", &p);
    if (o->top_k > n_vocab)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "top_k",
                    "%d is more than the model's vocabulary of %d tokens", (int)o->top_k,
                    (int)n_vocab);
    return api_problems_report(&p, err);
}

/* Zero means "default", which for the engine's samplers is usually "off". */
void api_gen_params(const shimmy_gen_options *o, engine_gen_params *gp) {
    engine_gen_params_default(gp);
    sampling_params *sp = &gp->sampling;
    sp->temperature = o->temperature;
    sp->top_k = o->top_k;
    sp->top_p = o->top_p == 0.0f ? 1.0f : o->top_p;
    sp->min_p = o->min_p;
    sp->repeat_penalty = o->repeat_penalty == 0.0f ? 1.0f : o->repeat_penalty;
    sp->frequency_penalty = o->frequency_penalty;
    sp->presence_penalty = o->presence_penalty;
    sp->penalty_last_n = o->repeat_last_n ? o->repeat_last_n : DEFAULT_LAST_N;
    sp->seed = o->seed;
    gp->ignore_eos = o->ignore_eos;
}

static shimmy_status budget(api_job *j, const shimmy_gen_options *o, shimmy_error *err) {
    const int32_t n_ctx = j->m->n_ctx, n_prompt = (int32_t)j->prompt.n;
    const char *name = j->m->spec.f.name;
    j->res.ctx_len = n_ctx;
    j->res.prompt_tokens = n_prompt;
    j->res.max_tokens = o->max_tokens;
    if (j->prompt.n >= (size_t)n_ctx)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "prompt",
                          "model '%s': the prompt has %zu tokens but the context holds %d; "
                          "shorten the prompt or raise ctx_len",
                          name, j->prompt.n, (int)n_ctx);
    const int32_t room = n_ctx - n_prompt;
    if (o->max_tokens > room)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "max_tokens",
                          "model '%s': max_tokens asks for %d tokens but only %d are available "
                          "(context %d, prompt %d); lower max_tokens or raise ctx_len",
                          name, (int)o->max_tokens, (int)room, (int)n_ctx, (int)n_prompt);
    j->gp.max_tokens =
        o->max_tokens ? o->max_tokens : (room < DEFAULT_MAX_TOKENS ? room : DEFAULT_MAX_TOKENS);
    j->res.max_tokens = j->gp.max_tokens;
    return SHIMMY_OK;
}

static shimmy_status copy_stops(api_job *j, const shimmy_gen_options *o, const char *extra,
                                shimmy_error *err) {
    size_t n = o->n_stop + (extra && *extra ? 1 : 0);
    if (!n) return SHIMMY_OK;
    if (!(j->stop = core_calloc(n, sizeof *j->stop)))
        return core_error(err, SHIMMY_ERR_NOMEM, "stop", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = i < o->n_stop ? o->stop[i] : extra;
        if (!(j->stop[i] = core_strdup(s)))
            return core_error(err, SHIMMY_ERR_NOMEM, "stop", "out of memory");
        j->n_stop = i + 1;
    }
    j->gp.stop = (const char *const *)j->stop;
    j->gp.n_stop = j->n_stop;
    return SHIMMY_OK;
}

shimmy_status api_job_prepare(api_job *j, const char *prompt, const shimmy_gen_options *opts,
                              const char *extra_stop, shimmy_error *err) {
    const shimmy_gen_options *o = opts ? opts : &j->m->spec.f.gen;
    const tok_vocab *v = engine_model_vocab(j->m->em);
    shimmy_status st = api_gen_options_validate(o, tok_n_vocab(v), err);
    if (st) return st;
    api_gen_params(o, &j->gp);
    if ((st = api_gen_grammar(o, &j->grammar, err))) return st;
    j->gp.grammar = j->grammar;
    if (j->grammar && o->grammar_after && *o->grammar_after) {
        /* the job may run after the caller's options are gone: keep a copy */
        if (!(j->grammar_after = core_strdup(o->grammar_after)))
            return core_error(err, SHIMMY_ERR_NOMEM, "grammar_after", "out of memory");
        j->gp.grammar_after = j->grammar_after;
    }
    if (prompt) {
        /* A raw prompt is the caller's own text, so control-token text in it counts. */
        tok_encode_opts eo = {.add_special = true, .parse_special = true};
        if ((st = tok_encode(v, prompt, strlen(prompt), &eo, &j->prompt, err))) return st;
    }
    if (j->prompt.n == 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt has no tokens");
    if ((st = budget(j, o, err))) return st;
    return copy_stops(j, o, extra_stop, err);
}

shimmy_status api_job_run(api_job *j, engine_sink_fn sink, void *user, shimmy_error *err) {
    if (__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE)) {
        /* cancelled before it started: not even the prompt is worth processing */
        j->res.finish = SHIMMY_FINISH_CANCELLED;
        return SHIMMY_OK;
    }
    api_session *s = NULL;
    shimmy_status st = api_session_take(j->m, &s, err);
    if (st) return st;
    pthread_mutex_lock(&j->lock);
    j->session = s;
    pthread_mutex_unlock(&j->lock);
    engine_result r = {0};
    st = engine_generate(s->s, j->prompt.ids, j->prompt.n, &j->gp, sink, user, &r, err);
    pthread_mutex_lock(&j->lock);
    j->session = NULL;
    pthread_mutex_unlock(&j->lock);
    /* a failed generation may have left the cache half-written: never reuse that session */
    if (st)
        api_session_free(s);
    else
        api_session_give(j->m, s);
    static const shimmy_finish finish[] = {
        [ENGINE_FINISH_STOP] = SHIMMY_FINISH_STOP,
        [ENGINE_FINISH_LENGTH] = SHIMMY_FINISH_LENGTH,
        [ENGINE_FINISH_CANCELLED] = SHIMMY_FINISH_CANCELLED,
    };
    j->res.finish = finish[r.finish];
    j->res.completion_tokens = r.n_generated;
    j->res.prompt_ms = r.prompt_ms;
    j->res.gen_ms = r.gen_ms;
    return st;
}

void api_job_cancel(api_job *j) {
    __atomic_store_n(&j->cancelled, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&j->lock);
    if (j->session) engine_session_cancel(j->session->s);
    pthread_mutex_unlock(&j->lock);
}
