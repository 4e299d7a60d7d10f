/* Sessions: one sequence's KV cache and buffers, prefix caching across requests, teacher-forced
 * evaluation, and the generation loop (sample -> detokenize -> stop strings -> sink). */
#include "constrain.h"
#include "engine.h"
#include "lora/lora.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

struct engine_session {
    engine_model *m;
    const engine_backend *be;
    void *ctx;
    core_pool *pool;
    bool own_pool;
    pthread_mutex_t *lock;
    int32_t n_ctx, n_batch, n_logits, n_vocab;
    int32_t *hist; /* (n_ctx) the tokens whose K/V are in the cache, in order */
    int32_t n_hist;
    char *text; /* (text_cap) one decoder push */
    size_t text_cap;
    int cancel;
    const struct lora_set *lora; /* borrowed */
    engine_batcher *batcher;     /* borrowed: the batch it belongs to (NULL: none) */
    model_kv_type kv_type;
};

shimmy_status engine_session_new(engine_model *m, const engine_session_params *p,
                                 engine_session **out, shimmy_error *err) {
    *out = NULL;
    engine_session_params def = {0};
    if (!p) p = &def;
    const model *w = engine_model_weights(m);
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_logits < 0 || p->n_threads < 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_ctx",
                          "context, batch, logits and thread counts must not be negative");
    if (p->pool && !p->compute_lock)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "pool",
                          "a shared thread pool needs a compute_lock (one job at a time)");
    engine_session *s = core_calloc(1, sizeof *s);
    if (!s) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a session");
    s->m = m;
    s->be = &engine_backend_cpu;
    s->lock = p->compute_lock;
    s->n_ctx = p->n_ctx;
    if (s->n_ctx == 0) s->n_ctx = w->hp.n_ctx_train < 4096 ? w->hp.n_ctx_train : 4096;
    s->n_batch = p->n_batch ? p->n_batch : 512;
    if (s->n_batch > s->n_ctx) s->n_batch = s->n_ctx;
    s->n_logits = p->n_logits ? p->n_logits : 1;
    s->n_vocab = w->hp.n_vocab;
    shimmy_status st = SHIMMY_OK;
    s->kv_type = p->kv_type;
    if (p->batcher && p->pool && s->n_logits == 1 &&
        engine_batcher_attach(p->batcher, &s->ctx, NULL) == SHIMMY_OK) {
        /* a sequence of the shared batch: its steps run with the other sessions' */
        s->batcher = p->batcher;
        s->be = &engine_backend_batched;
        s->pool = p->pool;
        if (s->n_ctx > engine_batcher_n_ctx(p->batcher))
            s->n_ctx = engine_batcher_n_ctx(p->batcher);
        if (s->n_batch > engine_batcher_n_chunk(p->batcher))
            s->n_batch = engine_batcher_n_chunk(p->batcher);
    } else if (p->pool) {
        s->pool = p->pool;
    } else {
        st = core_pool_new(p->n_threads, &s->pool, err);
        s->own_pool = true;
    }
    model_ctx_params cp = {.n_ctx = s->n_ctx,
                           .n_batch = s->n_batch,
                           .n_logits = s->n_logits,
                           .kv_type = p->kv_type,
                           .pool = s->pool,
                           .device = engine_model_device(m)};
    if (!st && !s->ctx) st = s->be->ctx_new(w, &cp, &s->ctx, err);
    if (!st) {
        s->hist = core_malloc(sizeof *s->hist * (size_t)s->n_ctx);
        const tok_vocab *v = engine_model_vocab(m);
        s->text_cap = v ? tok_decoder_max_out(v) + 1 : 64;
        s->text = core_malloc(s->text_cap);
        if (!s->hist || !s->text)
            st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate session buffers");
    }
    if (st) {
        engine_session_free(s);
        return st;
    }
    *out = s;
    return SHIMMY_OK;
}

void engine_session_free(engine_session *s) {
    if (!s) return;
    if (s->ctx) s->be->ctx_free(s->ctx);
    if (s->own_pool) core_pool_free(s->pool);
    free(s->hist);
    free(s->text);
    free(s);
}

int32_t engine_session_n_ctx(const engine_session *s) {
    return s->n_ctx;
}
int32_t engine_session_n_past(const engine_session *s) {
    return s->n_hist;
}
int32_t engine_n_vocab(const engine_session *s) {
    return s->n_vocab;
}
void engine_session_cancel(engine_session *s) {
    __atomic_store_n(&s->cancel, 1, __ATOMIC_RELEASE);
}

shimmy_status engine_session_set_lora(engine_session *s, const struct lora_set *set,
                                      shimmy_error *err) {
    if (set == s->lora) return SHIMMY_OK;
    shimmy_status st = s->be->set_lora(s->ctx, set, err);
    s->lora = st ? NULL : set;
    s->be->truncate(s->ctx, 0); /* K/V of the old weights are stale either way */
    s->n_hist = 0;
    return st;
}

const float *engine_logits(const engine_session *s, int32_t i) {
    return s->be->logits(s->ctx, i);
}

/* One forward step under the compute lock; the history follows the cache. */
static shimmy_status step(engine_session *s, const int32_t *tok, int32_t n, int32_t n_logits,
                          shimmy_error *err) {
    /* the batcher takes the compute lock itself, around the shared step */
    pthread_mutex_t *lock = s->be == &engine_backend_batched ? NULL : s->lock;
    if (lock) pthread_mutex_lock(lock);
    shimmy_status st = s->be->eval(s->ctx, tok, n, n_logits, err);
    if (lock) pthread_mutex_unlock(lock);
    /* A model file truncated under its mapping reads as zero pages from then on (see
     * core_mapguard_add): what this step computed is wrong, so it fails instead. */
    if (!st && gguf_damaged(engine_model_file(s->m)))
        st = gguf_check_unchanged(engine_model_file(s->m), err);
    if (!st) {
        memmove(s->hist + s->n_hist, tok, sizeof *tok * (size_t)n); /* tok may be hist's own */
        s->n_hist += n;
    }
    return st;
}

/* Keeps n positions of the cache or fewer (a sliding-window ring may not hold what position n
 * would look back on); returns how many it kept. */
static int32_t truncate_to(engine_session *s, int32_t n) {
    s->n_hist = s->be->truncate(s->ctx, n);
    return s->n_hist;
}

static shimmy_status check_tokens(const engine_session *s, const int32_t *t, size_t n,
                                  shimmy_error *err) {
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= s->n_vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens",
                              "token id %d at index %zu is outside the vocabulary (0 .. %d)", t[i],
                              i, s->n_vocab - 1);
    return SHIMMY_OK;
}

/* Runs tokens in n_batch chunks; the last chunk computes logits of its last n_last positions. */
static shimmy_status eval_chunks(engine_session *s, const int32_t *t, size_t n, int32_t n_last,
                                 shimmy_error *err) {
    for (size_t i = 0; i < n;) {
        int32_t k = (int32_t)(n - i < (size_t)s->n_batch ? n - i : (size_t)s->n_batch);
        shimmy_status st = step(s, t + i, k, i + (size_t)k == n ? n_last : 0, err);
        if (st) return st;
        i += (size_t)k;
    }
    return SHIMMY_OK;
}

shimmy_status engine_eval(engine_session *s, const int32_t *tokens, size_t n, int32_t pos,
                          bool want_all, shimmy_error *err) {
    if (n == 0) return core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens", "no tokens to evaluate");
    if (pos < 0 || pos > s->n_hist)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "pos",
                          "position %d is beyond the %d cached tokens", pos, s->n_hist);
    if (n > (size_t)(s->n_ctx - pos))
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "n_ctx",
                          "%d cached + %zu new tokens exceed the context size %d", pos, n,
                          s->n_ctx);
    if (want_all && (n > (size_t)s->n_batch || n > (size_t)s->n_logits))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_logits",
                          "logits of %zu positions requested; the session keeps at most %d", n,
                          s->n_batch < s->n_logits ? s->n_batch : s->n_logits);
    shimmy_status st = check_tokens(s, tokens, n, err);
    if (st) return st;
    const int32_t kept = truncate_to(s, pos);
    if (kept < pos) /* evaluate again what the cache could not keep */
        st = eval_chunks(s, s->hist + kept, (size_t)(pos - kept), 0, err);
    if (st) return st;
    return eval_chunks(s, tokens, n, want_all ? (int32_t)n : 1, err);
}

/* ---- generation ---- */

const char *engine_finish_name(engine_finish f) {
    static const char *const names[] = {"stop", "length", "cancelled"};
    return (unsigned)f < 3 ? names[f] : "unknown";
}

void engine_gen_params_default(engine_gen_params *p) {
    memset(p, 0, sizeof *p);
    sampling_params_default(&p->sampling);
    p->max_tokens = 128;
}

typedef struct gen_out {
    engine_sink_fn sink;
    void *user;
    engine_pieces *pieces; /* the piece callback's records instead of the sink */
    bool refused;
} gen_out;

static void emit(gen_out *o, const char *text, size_t len, int32_t token) {
    if (o->refused) return;
    if (o->pieces) {
        if (!engine_pieces_emit(o->pieces, text, len)) o->refused = true;
        return;
    }
    if (len == 0 || !o->sink) return;
    if (!o->sink(o->user, text, len, token)) o->refused = true;
}

/* The prompt one position at a time, scoring each next prompt token (echo's logprobs). */
static shimmy_status eval_prompt_probs(engine_session *s, const int32_t *t, size_t n,
                                       engine_pieces *pc, shimmy_error *err) {
    for (size_t i = 0; i < n; i++) {
        /* one step per token: a long prompt must still stop within a step of a cancel */
        if (__atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE)) return SHIMMY_OK;
        shimmy_status st = step(s, t + i, 1, 1, err);
        if (st) return st;
        if (i + 1 < n) engine_pieces_prompt_logits(pc, i + 1, s->be->logits(s->ctx, 0), t[i + 1]);
    }
    return SHIMMY_OK;
}

shimmy_status engine_generate(engine_session *s, const int32_t *prompt, size_t n_prompt,
                              const engine_gen_params *gp, engine_sink_fn sink, void *user,
                              engine_result *res, shimmy_error *err) {
    const double t0 = core_time_ms();
    engine_result r = {0};
    __atomic_store_n(&s->cancel, 0, __ATOMIC_RELEASE);
    const tok_vocab *v = engine_model_vocab(s->m);
    if (!v)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "model",
                          "the model was opened without a tokenizer; generation needs one");
    if (n_prompt == 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt has no tokens");
    if (n_prompt > (size_t)s->n_ctx)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "prompt",
                          "the prompt has %zu tokens but the context holds %d", n_prompt, s->n_ctx);
    if (gp->max_tokens > 0 && n_prompt + (size_t)gp->max_tokens > (size_t)s->n_ctx)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "max_tokens",
                          "the prompt (%zu tokens) + max_tokens (%d) exceed the context size %d",
                          n_prompt, gp->max_tokens, s->n_ctx);
    shimmy_status st = check_tokens(s, prompt, n_prompt, err);
    if (st) return st;
    sampling_params sp = gp->sampling;
    if (sp.penalty_last_n < 0) sp.penalty_last_n = s->n_ctx;
    sampler *smp = NULL;
    engine_stop stop;
    if ((st = sampler_chain_new(&sp, s->n_vocab, &smp, err))) return st;
    if ((st = engine_stop_init(&stop, gp->stop, gp->n_stop, err))) {
        sampler_free(smp);
        return st;
    }
    engine_pieces pieces, *pc = NULL;
    if (gp->piece) {
        if ((st = engine_pieces_init(&pieces, v, s->n_vocab, gp, user, n_prompt, err))) {
            sampler_free(smp);
            engine_stop_deinit(&stop);
            return st;
        }
        pc = &pieces;
    }
    const bool prompt_probs = pc && pc->prompt_lp;

    /* prefix caching: keep the K/V of the common prefix, but always recompute the last prompt
     * token, whose logits the first sample needs */
    int32_t keep = 0;
    while (!prompt_probs && keep < s->n_hist && (size_t)keep < n_prompt - 1 &&
           s->hist[keep] == prompt[keep])
        keep++;
    if (!prompt_probs && s->be->reuse) { /* a longer prefix in another sequence's cache */
        const int32_t got = s->be->reuse(s->ctx, prompt, (int32_t)n_prompt - 1, keep);
        if (got > keep) {
            memcpy(s->hist, prompt, sizeof *prompt * (size_t)got);
            s->n_hist = got;
            keep = got;
        }
    }
    keep = truncate_to(s, keep);
    r.n_prompt = (int32_t)n_prompt;
    r.n_cached = keep;
    if (prompt_probs)
        st = eval_prompt_probs(s, prompt, n_prompt, pc, err);
    else
        st = eval_chunks(s, prompt + keep, n_prompt - (size_t)keep, 1, err);
    const double t_prompt = core_time_ms();
    r.prompt_ms = t_prompt - t0;
    for (size_t i = 0; i < n_prompt; i++) sampler_accept(smp, prompt[i]);

    engine_constraint con = {0};
    if (!st) st = engine_constraint_init(&con, s->m, gp, err);
    tok_decoder dec;
    tok_decoder_init(&dec, v, false, false);
    gen_out out = {sink, user, pc, false};
    if (!st && prompt_probs &&
        (__atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE) ||
         !engine_pieces_prompt_send(pc, prompt, n_prompt)))
        out.refused = true; /* a cancel during the prompt: no records of what was not scored */
    double t_first = 0.0;
    bool stop_matched = false;
    r.finish = ENGINE_FINISH_LENGTH;
    while (!st) {
        if (__atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE) || out.refused) {
            r.finish = ENGINE_FINISH_CANCELLED;
            break;
        }
        const float *logits = s->be->logits(s->ctx, 0);
        int32_t tok;
        if ((st = engine_constraint_sample(&con, smp, logits, &tok, err))) break;
        sampler_accept(smp, tok);
        if (gp->out_tokens && (size_t)r.n_generated < gp->out_tokens_cap)
            gp->out_tokens[r.n_generated] = tok;
        r.n_generated++;
        if (r.n_generated == 1) {
            t_first = core_time_ms();
            r.ttft_ms = t_first - t0;
        }
        if (!gp->ignore_eos && tok_is_eog(v, tok)) {
            r.finish = ENGINE_FINISH_STOP;
            break;
        }
        size_t n = tok_decoder_push(&dec, tok, s->text, s->text_cap);
        if (pc && !engine_pieces_token(pc, tok, logits, n, dec.n_pend == 0)) {
            st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory for token records");
            break;
        }
        const char *e;
        size_t ne;
        bool matched = engine_stop_push(&stop, s->text, n, &e, &ne);
        emit(&out, e, ne, tok);
        if (matched) {
            r.finish = ENGINE_FINISH_STOP;
            stop_matched = true;
            break;
        }
        if (out.refused) {
            r.finish = ENGINE_FINISH_CANCELLED;
            break;
        }
        if (engine_constraint_done(&con)) { /* the grammar is complete: nothing may follow */
            r.finish = ENGINE_FINISH_STOP;
            break;
        }
        if (gp->max_tokens > 0 && r.n_generated >= gp->max_tokens) break;
        if (s->n_hist >= s->n_ctx) break; /* the sampled token has no room in the cache */
        st = step(s, &tok, 1, 1, err);
    }
    if (!st && r.finish != ENGINE_FINISH_CANCELLED && !stop_matched) {
        /* release what the decoder and the stop matcher still hold back */
        const char *e;
        size_t ne;
        size_t n = tok_decoder_flush(&dec, s->text, s->text_cap);
        if (pc) engine_pieces_flush(pc, n);
        bool matched = n && engine_stop_push(&stop, s->text, n, &e, &ne);
        if (n) emit(&out, e, ne, -1);
        if (!matched) {
            engine_stop_flush(&stop, &e, &ne);
            emit(&out, e, ne, -1);
        }
    }
    if (pc) {
        if (!st && r.finish != ENGINE_FINISH_CANCELLED && !out.refused) engine_pieces_end(pc);
        engine_pieces_deinit(pc);
    }
    const double t_end = core_time_ms();
    r.gen_ms = t_first > 0.0 ? t_end - t_first : 0.0;
    sampler_free(smp);
    engine_stop_deinit(&stop);
    engine_constraint_deinit(&con);
    if (res) *res = r;
    return st;
}
