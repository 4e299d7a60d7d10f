/* Sessions for servers: an engine session bound to a model reference, its attached adapter set,
 * per-request options and logit bias checked before anything runs; plus the shared thread pool
 * (whose lock lets sessions take turns per forward step) and refcounted adapters. */
#include "api.h"
#include "grammar/grammar.h"

#include "lora/lora.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BIAS 1024

/* ---- thread pools ---- */

shimmy_status shimmy_threadpool_new(int32_t n_threads, shimmy_threadpool **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (n_threads < 0 || n_threads > 512)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "threads", "%d is outside [0, 512]",
                          (int)n_threads);
    shimmy_threadpool *p = core_calloc(1, sizeof *p);
    if (!p) return core_error(err, SHIMMY_ERR_NOMEM, "threads", "out of memory");
    shimmy_status st = core_pool_new(n_threads, &p->pool, err);
    if (st) {
        free(p);
        return st;
    }
    pthread_mutex_init(&p->compute_lock, NULL);
    *out = p;
    return SHIMMY_OK;
}

void shimmy_threadpool_free(shimmy_threadpool *p) {
    if (!p) return;
    core_pool_free(p->pool);
    pthread_mutex_destroy(&p->compute_lock);
    free(p);
}

int32_t shimmy_threadpool_size(const shimmy_threadpool *p) {
    return p ? core_pool_size(p->pool) : 0;
}

/* ---- adapters ---- */

struct shimmy_adapter {
    lora_adapter *ad; /* one reference */
    int refs;         /* atomic */
};

shimmy_status shimmy_adapter_open(const shimmy_model *m, const char *path, shimmy_adapter **out,
                                  shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    if (!path) return core_error(err, SHIMMY_ERR_INVALID_ARG, "path", "the path is NULL");
    shimmy_adapter *a = core_calloc(1, sizeof *a);
    if (!a) return core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory");
    shimmy_status st = lora_adapter_open(path, engine_model_file(m->em), &a->ad, err);
    if (st) {
        free(a);
        return st;
    }
    a->refs = 1;
    *out = a;
    return SHIMMY_OK;
}

shimmy_adapter *shimmy_adapter_ref(shimmy_adapter *a) {
    if (a) __atomic_add_fetch(&a->refs, 1, __ATOMIC_RELAXED);
    return a;
}

void shimmy_adapter_unref(shimmy_adapter *a) {
    if (!a || __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    lora_adapter_unref(a->ad);
    free(a);
}

const char *shimmy_adapter_path(const shimmy_adapter *a) {
    return a ? lora_adapter_path(a->ad) : NULL;
}

shimmy_status shimmy_adapter_check(const shimmy_adapter *a, const shimmy_model *m,
                                   shimmy_error *err) {
    if (!a || !m)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, a ? "model" : "adapter", "%s is NULL",
                          a ? "the model" : "the adapter");
    return lora_adapter_validate(a->ad, engine_model_file(m->em), err);
}

/* ---- sessions ---- */

struct shimmy_session {
    shimmy_model *m; /* one reference */
    engine_session_params params;
    engine_session *es;
    lora_set *lora;       /* attached to es (owned), NULL = none */
    int cancel;           /* atomic: checked at every piece */
    pthread_mutex_t lock; /* es against shimmy_session_cancel while it is replaced */
};

shimmy_status shimmy_session_new(shimmy_model *m, const shimmy_session_options *opts,
                                 shimmy_session **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    const shimmy_session_options none = {0};
    const shimmy_session_options *o = opts ? opts : &none;
    api_problems p = {0};
    api_check_range(&p, "ctx_len", o->ctx_len, 1048576);
    api_check_range(&p, "threads", o->threads, 512);
    shimmy_status st = api_problems_report(&p, err);
    if (st) return st;
    shimmy_session *s = core_calloc(1, sizeof *s);
    if (!s) return core_error(err, SHIMMY_ERR_NOMEM, m->spec.f.name, "out of memory");
    s->params.n_ctx = o->ctx_len ? o->ctx_len : m->n_ctx;
    s->params.n_threads = o->threads ? o->threads : m->spec.f.threads;
    if (o->pool) {
        s->params.pool = o->pool->pool;
        s->params.compute_lock = &o->pool->compute_lock;
    }
    if (o->batch) {
        if (o->batch->m->em != m->em || o->batch->pool != o->pool) {
            free(s);
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "batch",
                              "the batch belongs to another model or thread pool");
        }
        s->params.batcher = o->batch->b;
    }
    st = engine_session_new(m->em, &s->params, &s->es, err);
    if (st) {
        free(s);
        return st;
    }
    s->m = shimmy_model_ref(m);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return SHIMMY_OK;
}

void shimmy_session_free(shimmy_session *s) {
    if (!s) return;
    engine_session_free(s->es);
    lora_set_free(s->lora); /* after the session it was attached to */
    shimmy_model_unref(s->m);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

shimmy_model *shimmy_session_model(const shimmy_session *s) {
    return s ? s->m : NULL;
}

int32_t shimmy_session_ctx_len(const shimmy_session *s) {
    return s ? engine_session_n_ctx(s->es) : 0;
}

bool shimmy_model_same_weights(const shimmy_model *a, const shimmy_model *b) {
    return a && b && a->em == b->em;
}

static bool same_set(const lora_set *cur, shimmy_adapter *const *ads, const float *scales,
                     size_t n) {
    if ((cur ? lora_set_count(cur) : 0) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (lora_set_adapter(cur, i) != ads[i]->ad || lora_set_user_scale(cur, i) != scales[i])
            return false;
    return true;
}

static void detach(shimmy_session *s) {
    engine_session_set_lora(s->es, NULL, NULL); /* detaching cannot fail */
    lora_set_free(s->lora);
    s->lora = NULL;
}

shimmy_status shimmy_session_set_adapters(shimmy_session *s, shimmy_adapter *const *adapters,
                                          const float *scales, size_t n, shimmy_error *err) {
    if (!s) return core_error(err, SHIMMY_ERR_INVALID_ARG, "session", "the session is NULL");
    shimmy_status st = SHIMMY_OK;
    if (n > API_MAX_LORA)
        st = core_error(err, SHIMMY_ERR_INVALID_ARG, "adapters",
                        "%zu adapters; at most %d may be applied at once", n, API_MAX_LORA);
    else if (n && (!adapters || !scales))
        st = core_error(err, SHIMMY_ERR_INVALID_ARG, "adapters", "n is %zu but %s is NULL", n,
                        adapters ? "scales" : "adapters");
    for (size_t i = 0; !st && i < n; i++) {
        if (!adapters[i])
            st = core_error(err, SHIMMY_ERR_INVALID_ARG, "adapters", "adapter %zu is NULL", i);
        else if (!(scales[i] >= -100.0f && scales[i] <= 100.0f))
            st = core_error(err, SHIMMY_ERR_INVALID_ARG, "scales",
                            "scale %zu is %g; scales must be in [-100, 100]", i, (double)scales[i]);
        else
            st = shimmy_adapter_check(adapters[i], s->m, err);
    }
    if (st) {
        detach(s);
        return st;
    }
    if (same_set(s->lora, adapters, scales, n)) return SHIMMY_OK; /* the KV prefix stays valid */
    lora_set *set = NULL;
    if (n) {
        st = lora_set_new(&set, err);
        for (size_t i = 0; !st && i < n; i++)
            st = lora_set_add(set, adapters[i]->ad, scales[i], err);
    }
    if (!st) st = engine_session_set_lora(s->es, set, err);
    if (st) {
        lora_set_free(set);
        detach(s);
        return st;
    }
    lora_set_free(s->lora); /* no longer attached */
    s->lora = set;
    return SHIMMY_OK;
}

void shimmy_session_cancel(shimmy_session *s) {
    if (!s) return;
    __atomic_store_n(&s->cancel, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&s->lock);
    engine_session_cancel(s->es);
    pthread_mutex_unlock(&s->lock);
}

typedef struct sink_ctx {
    shimmy_session *s;
    shimmy_token_fn fn;
    shimmy_piece_fn piece;
    void *user;
} sink_ctx;

static bool session_piece(void *user, const char *text, size_t len, const shimmy_token_info *tokens,
                          size_t n_tokens) {
    sink_ctx *c = user;
    if (__atomic_load_n(&c->s->cancel, __ATOMIC_ACQUIRE)) return false;
    return c->piece(text, len, tokens, n_tokens, c->user) == SHIMMY_CONTINUE;
}

static bool session_sink(void *user, const char *text, size_t len, int32_t token) {
    (void)token;
    sink_ctx *c = user;
    if (__atomic_load_n(&c->s->cancel, __ATOMIC_ACQUIRE)) return false;
    if (!c->fn || len == 0) return true;
    return c->fn(text, len, c->user) == SHIMMY_CONTINUE;
}

static shimmy_status check_request(const shimmy_session *s, const shimmy_gen_options *o,
                                   const shimmy_session_request *req, shimmy_error *err) {
    const int32_t n_vocab = tok_n_vocab(engine_model_vocab(s->m->em));
    shimmy_status st = api_gen_options_validate(o, n_vocab, err);
    if (st || !req) return st;
    if (req->n_logit_bias > MAX_BIAS)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                          "%zu logit biases; at most %d are allowed", req->n_logit_bias, MAX_BIAS);
    if (req->n_logit_bias && !req->logit_bias)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                          "n_logit_bias is %zu but logit_bias is NULL", req->n_logit_bias);
    for (size_t i = 0; i < req->n_logit_bias; i++) {
        const shimmy_logit_bias *b = &req->logit_bias[i];
        if (b->token < 0 || b->token >= n_vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                              "logit_bias %zu names token %d but the vocabulary has %d tokens", i,
                              (int)b->token, (int)n_vocab);
        if (!(b->bias >= -100.0f && b->bias <= 100.0f))
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                              "logit_bias %zu is %g; biases must be in [-100, 100]", i,
                              (double)b->bias);
    }
    return SHIMMY_OK;
}

/* The prompt must fit with room to generate; max_tokens 0 takes what the options default to. */
static shimmy_status budget(const shimmy_session *s, size_t n_prompt, int32_t asked,
                            int32_t *max_tokens, shimmy_error *err) {
    const int32_t n_ctx = engine_session_n_ctx(s->es);
    const char *name = s->m->spec.f.name;
    if (n_prompt >= (size_t)n_ctx)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "prompt",
                          "model '%s': the prompt has %zu tokens but the session's context holds "
                          "%d; shorten the prompt or raise ctx_len",
                          name, n_prompt, (int)n_ctx);
    const int32_t room = n_ctx - (int32_t)n_prompt;
    if (asked > room)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "max_tokens",
                          "model '%s': max_tokens asks for %d tokens but only %d are available "
                          "(context %d, prompt %zu); lower max_tokens or raise ctx_len",
                          name, (int)asked, (int)room, (int)n_ctx, n_prompt);
    *max_tokens = asked ? asked : (room < 128 ? room : 128);
    return SHIMMY_OK;
}

static shimmy_status check_ids(const shimmy_session *s, const shimmy_prompt *p, shimmy_error *err) {
    const int32_t n_vocab = tok_n_vocab(engine_model_vocab(s->m->em));
    const int32_t *ids = shimmy_prompt_tokens(p);
    for (size_t i = 0; i < shimmy_prompt_token_count(p); i++)
        if (ids[i] < 0 || ids[i] >= n_vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt",
                              "prompt token %zu is %d, outside this model's vocabulary of %d "
                              "tokens (was the prompt made for another model?)",
                              i, (int)ids[i], (int)n_vocab);
    return SHIMMY_OK;
}

/* A failed generation may have left the KV cache half-written: start from a fresh one. */
static void reset_after_failure(shimmy_session *s) {
    engine_session *fresh = NULL;
    if (engine_session_new(s->m->em, &s->params, &fresh, NULL)) return;
    if (s->lora && engine_session_set_lora(fresh, s->lora, NULL)) {
        engine_session_free(fresh);
        return;
    }
    pthread_mutex_lock(&s->lock);
    engine_session *old = s->es;
    s->es = fresh;
    pthread_mutex_unlock(&s->lock);
    engine_session_free(old);
}

shimmy_status shimmy_session_generate(shimmy_session *s, const shimmy_prompt *p,
                                      const shimmy_session_request *req, shimmy_token_fn on_token,
                                      void *user, shimmy_session_result *result,
                                      shimmy_error *err) {
    if (result) memset(result, 0, sizeof *result);
    if (!s) return core_error(err, SHIMMY_ERR_INVALID_ARG, "session", "the session is NULL");
    if (!p) return core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt is NULL");
    const shimmy_gen_options *o = req && req->options ? req->options : &s->m->spec.f.gen;
    shimmy_status st = check_request(s, o, req, err);
    const size_t n_prompt = shimmy_prompt_token_count(p);
    if (!st && n_prompt == 0)
        st = core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt has no tokens");
    if (!st) st = check_ids(s, p, err);
    engine_gen_params gp;
    api_gen_params(o, &gp);
    if (!st) st = budget(s, n_prompt, o->max_tokens, &gp.max_tokens, err);
    if (result) {
        result->prompt_tokens = (int32_t)n_prompt;
        result->max_tokens = st ? o->max_tokens : gp.max_tokens;
    }
    if (st) return st;
    const char *stops[SHIMMY_MAX_STOP + 1];
    size_t n_stop = 0;
    for (size_t i = 0; i < o->n_stop; i++) stops[n_stop++] = o->stop[i];
    if (shimmy_prompt_end_of_turn(p)) stops[n_stop++] = shimmy_prompt_end_of_turn(p);
    gp.stop = stops;
    gp.n_stop = n_stop;
    sampling_logit_bias bias[MAX_BIAS];
    for (size_t i = 0; req && i < req->n_logit_bias; i++)
        bias[i] = (sampling_logit_bias){req->logit_bias[i].token, req->logit_bias[i].bias};
    gp.sampling.logit_bias = bias;
    gp.sampling.n_logit_bias = req ? req->n_logit_bias : 0;
    struct grammar *g = NULL;
    if ((st = api_gen_grammar(o, &g, err))) return st;
    gp.grammar = g;
    gp.grammar_after = o->grammar_after;
    __atomic_store_n(&s->cancel, 0, __ATOMIC_RELEASE);
    sink_ctx sc = {s, on_token, req ? req->on_piece : NULL, user};
    if (sc.piece) {
        gp.piece = session_piece;
        gp.n_probs = o->logprobs ? o->top_logprobs : -1;
        gp.prompt_probs = req->prompt_logprobs;
    }
    engine_result r = {0};
    st = engine_generate(s->es, shimmy_prompt_tokens(p), n_prompt, &gp, session_sink, &sc, &r, err);
    grammar_unref(g);
    if (st) reset_after_failure(s);
    if (result) {
        static const shimmy_finish finish[] = {
            [ENGINE_FINISH_STOP] = SHIMMY_FINISH_STOP,
            [ENGINE_FINISH_LENGTH] = SHIMMY_FINISH_LENGTH,
            [ENGINE_FINISH_CANCELLED] = SHIMMY_FINISH_CANCELLED,
        };
        result->finish = finish[r.finish];
        result->cached_tokens = r.n_cached;
        result->completion_tokens = r.n_generated;
        result->ttft_ms = r.ttft_ms;
        result->prompt_ms = r.prompt_ms;
        result->gen_ms = r.gen_ms;
    }
    return st;
}
