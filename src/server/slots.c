/* Slots: --parallel worker threads, each owning one shimmy_session, fed by one FIFO queue. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

server_job *server_job_new(server *s, server_request *req, const server_fmt *fmt,
                           const char *route) {
    server_job *j = calloc(1, sizeof *j);
    if (!j) {
        server_request_deinit(req);
        return NULL;
    }
    j->srv = s;
    atomic_fetch_add(&s->active, 1);
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->fmt = fmt;
    j->route = route;
    j->refs = 1;
    j->created = (int64_t)time(NULL);
    static atomic_uint_fast64_t counter;
    uint64_t n = atomic_fetch_add(&counter, 1) + 1;
    uint64_t salt = (uint64_t)(server_clock_ms() * 1e6);
    snprintf(j->id, sizeof j->id, "%s-%016llx%08llx",
             j->req.api == SERVER_API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)(salt * 0x9E3779B97F4A7C15ull), (unsigned long long)n);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    return j;
}

void server_job_release(server_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    server_request_deinit(&j->req);
    shimmy_model_unref(j->model);
    for (size_t i = 0; i < j->n_ads; i++) shimmy_adapter_unref(j->ads[i]);
    for (size_t i = 0; i < j->n_choices; i++) shimmy_prompt_free(j->prompt[i]);
    free(j->acc);
    json_decref(j->lp_acc);
    server_lp_stash_free(j->lp_stash);
    free(j->think_acc);
    if (j->ext_free) j->ext_free(j->ext);
    json_decref(j->choices);
    free(j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    atomic_fetch_sub(&j->srv->active, 1);
    free(j);
}

static void job_ref(server_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

shimmy_status server_submit(server *s, server_job *j, shimmy_error *err) {
    pthread_mutex_lock(&s->qmu);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&s->qmu);
        return shimmy_error_set(err, SHIMMY_ERR_BUSY, NULL, "the server is shutting down");
    }
    /* A free slot takes the job at once; otherwise it waits its turn (up to --queue jobs). */
    if (s->running + s->qlen >= s->n_slots + s->cfg.queue_cap) {
        pthread_mutex_unlock(&s->qmu);
        return shimmy_error_set(err, SHIMMY_ERR_BUSY, NULL,
                                "all %d slots are busy and %d requests are waiting; retry later",
                                s->n_slots, s->qlen);
    }
    job_ref(j);
    j->next = NULL;
    if (s->qtail)
        s->qtail->next = j;
    else
        s->qhead = j;
    s->qtail = j;
    s->qlen++;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    return SHIMMY_OK;
}

void server_queue_depth(server *s, int *queued, int *running) {
    pthread_mutex_lock(&s->qmu);
    *queued = s->qlen;
    *running = s->running;
    pthread_mutex_unlock(&s->qmu);
}

/* ---- the worker ---- */

typedef struct piece_ctx {
    server_job *job;
    size_t choice;
} piece_ctx;

/* Pieces go through the job layer (piece.c: thinking split, token records) to the formatter. */
static shimmy_next job_tokens(const char *text, size_t len, const shimmy_token_info *t, size_t n,
                              void *user) {
    piece_ctx *c = user;
    server_job *j = c->job;
    if (atomic_load(&j->cancelled) || atomic_load(&j->srv->stopping)) return SHIMMY_STOP;
    server_job_piece(j, c->choice, text, len, t, n);
    return atomic_load(&j->cancelled) || j->stop_now ? SHIMMY_STOP : SHIMMY_CONTINUE;
}

static shimmy_next job_piece(const char *text, size_t len, void *user) {
    return job_tokens(text, len, NULL, 0, user);
}

/* Under srv->qmu: server_slots_drop_unloaded looks at idle slots from other threads. */
static void slot_drop_session(server_slot *sl) {
    shimmy_session_free(sl->session); /* drops its model reference */
    sl->session = NULL;
    if (sl->batch >= 0) { /* the batch goes with its last session (and its model reference) */
        struct server_batch *e = &sl->srv->batches[sl->batch];
        if (--e->users == 0) {
            shimmy_batch_free(e->b);
            e->b = NULL;
            e->m = NULL;
        }
        sl->batch = -1;
    }
}

/* Under srv->qmu: the batch of m's weights (made on first use), or -1 (batching off, or it
 * cannot be made: the session then runs alone). */
static int batch_for(server *s, shimmy_model *m) {
    if (s->cfg.no_batching || s->n_slots < 2 || !s->batches) return -1;
    int free_ent = -1;
    for (int i = 0; i < s->n_slots; i++) {
        if (s->batches[i].b && shimmy_model_same_weights(s->batches[i].m, m)) return i;
        if (!s->batches[i].b && free_ent < 0) free_ent = i;
    }
    if (free_ent < 0) return -1;
    /* as many more sequences keep the caches of ended requests, within --cache-ram */
    shimmy_batch_options bo = {.slots = s->n_slots,
                               .ctx_len = s->cfg.ctx_size,
                               .pool = s->pool,
                               .cache_slots = s->cfg.cache_ram_mib > 0 ? s->n_slots : 0,
                               .cache_mib = s->cfg.cache_ram_mib};
    shimmy_error err;
    if (shimmy_batch_new(m, &bo, &s->batches[free_ent].b, &err) != SHIMMY_OK) {
        shimmy_log(SHIMMY_LOG_WARN, "slots: no shared batch for '%s' (%s): its slots take turns",
                   shimmy_model_name(m), err.message);
        return -1;
    }
    s->batches[free_ent].m = m;
    s->batches[free_ent].users = 0;
    return free_ent;
}

/* The slot keeps its session (and with it a reference to its model) after a job so that the
 * next request for the same model reuses the KV prefix; a different model replaces it. */
static shimmy_status slot_bind(server_slot *sl, server_job *j, shimmy_error *err) {
    if (sl->session && shimmy_model_same_weights(shimmy_session_model(sl->session), j->model))
        return SHIMMY_OK;
    pthread_mutex_lock(&sl->srv->qmu);
    slot_drop_session(sl);
    pthread_mutex_unlock(&sl->srv->qmu);
    shimmy_session_options so = {.ctx_len = sl->srv->cfg.ctx_size, .pool = sl->srv->pool};
    pthread_mutex_lock(&sl->srv->qmu);
    const int bi = batch_for(sl->srv, j->model);
    if (bi >= 0) {
        sl->srv->batches[bi].users++; /* before the session: the batch stays while it is made */
        so.batch = sl->srv->batches[bi].b;
    }
    sl->batch = bi;
    pthread_mutex_unlock(&sl->srv->qmu);
    shimmy_session *ses = NULL;
    shimmy_status st = shimmy_session_new(j->model, &so, &ses, err);
    pthread_mutex_lock(&sl->srv->qmu);
    sl->session = ses;
    if (st) slot_drop_session(sl); /* releases the batch */
    pthread_mutex_unlock(&sl->srv->qmu);
    return st;
}

/* Gives the slot's capacity back as soon as the engine is done with a job, before the final
 * bytes reach the client: a client that sends its next request the moment it reads [DONE] must
 * find the slot free, not a 503. The session stays this worker's until it loops. */
static void slot_idle(server_slot *sl) {
    server *s = sl->srv;
    pthread_mutex_lock(&s->qmu);
    if (sl->counted) {
        sl->counted = false;
        s->running--;
    }
    pthread_mutex_unlock(&s->qmu);
}

static void job_set_running(server_job *j, shimmy_session *ses) {
    pthread_mutex_lock(&j->mu);
    j->running = ses;
    pthread_mutex_unlock(&j->mu);
}

static void run_job(server_slot *sl, server_job *j) {
    server *s = sl->srv;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (atomic_load(&j->cancelled)) {
        slot_idle(sl);
        server_job_finish(j, 499);
        return;
    }
    /* The adapters belong to the job: the session gets exactly the job's set (none = none), so
     * a slot never carries one request's deltas into the next; an unchanged set keeps the KV
     * prefix. */
    shimmy_status st = slot_bind(sl, j, &err);
    if (!st) st = shimmy_session_set_adapters(sl->session, j->ads, j->scales, j->n_ads, &err);
    if (st) {
        slot_idle(sl);
        j->fmt->fail(j, &err);
        server_job_finish(j, shimmy_status_http(st));
        return;
    }
    const char *stops[SERVER_MAX_STOP];
    for (size_t i = 0; i < j->req.n_stop; i++) stops[i] = j->req.stop[i];
    shimmy_gen_options o = j->req.gen;
    o.max_tokens = j->max_tokens;
    o.stop = stops;
    o.n_stop = j->req.n_stop;
    o.logprobs = j->req.logprobs;
    o.top_logprobs = j->req.top_logprobs;
    o.grammar_after = server_structured_after(j); /* structured.c */
    shimmy_session_request sr = {.options = &o,
                                 .logit_bias = j->req.bias,
                                 .n_logit_bias = j->req.n_bias,
                                 .on_piece = j->req.logprobs ? job_tokens : NULL,
                                 .prompt_logprobs = j->req.logprobs && j->req.echo};
    j->fmt->begin(j);
    for (size_t c = 0; c < j->n_choices; c++) {
        piece_ctx pc = {.job = j, .choice = c};
        server_job_choice_begin(j, c);
        /* with logprobs, the echo comes with the prompt's records (piece.c) */
        if (j->req.echo && !j->req.logprobs)
            j->fmt->text(j, c, j->req.prompts[c], strlen(j->req.prompts[c]));
        shimmy_session_result res;
        job_set_running(j, sl->session);
        st = shimmy_session_generate(sl->session, j->prompt[c], &sr, job_piece, &pc, &res, &err);
        job_set_running(j, NULL);
        /* The formatter's own stop (stop_now) is the answer's end, not a cancellation. */
        if (!st && j->stop_now && res.finish == SHIMMY_FINISH_CANCELLED &&
            !atomic_load(&j->cancelled))
            res.finish = SHIMMY_FINISH_STOP;
        j->stop_now = false;
        bool cancelled = !st && res.finish == SHIMMY_FINISH_CANCELLED;
        server_metrics_generation(&s->metrics, res.prompt_tokens - res.cached_tokens, res.prompt_ms,
                                  res.completion_tokens, res.gen_ms, cancelled);
        if (c == 0) j->ttft_ms = res.ttft_ms;
        if (st || cancelled) slot_idle(sl);
        if (st) {
            shimmy_log(SHIMMY_LOG_WARN, "server: %s: %s", j->id, err.message);
            j->fmt->fail(j, &err);
            server_job_finish(j, shimmy_status_http(st));
            return;
        }
        if (cancelled && atomic_load(&s->stopping)) {
            shimmy_error_set(&err, SHIMMY_ERR_BUSY, NULL, "the server is shutting down");
            j->fmt->fail(j, &err);
            server_job_finish(j, 503);
            return;
        }
        if (cancelled) {
            server_job_finish(j, 499);
            return;
        }
        j->usage_prompt += res.prompt_tokens;
        j->usage_cached += res.cached_tokens;
        j->usage_completion += res.completion_tokens;
        if (c + 1 == j->n_choices) slot_idle(sl);
        server_job_choice_end(j, c);
        j->fmt->choice_end(j, c, shimmy_finish_name(res.finish));
        shimmy_log(SHIMMY_LOG_INFO,
                   "server: %s %s slot %d: %d prompt tokens (%d cached), %d generated, %s, "
                   "ttft %.0f ms, %.1f tok/s",
                   j->id, j->req.model, sl->index, res.prompt_tokens, res.cached_tokens,
                   res.completion_tokens, shimmy_finish_name(res.finish), res.ttft_ms,
                   res.gen_ms > 0 ? (res.completion_tokens - 1) * 1000.0 / res.gen_ms : 0.0);
    }
    j->fmt->done(j);
    server_job_finish(j, 200);
}

/* Under s->qmu. */
static void drop_if_unloaded(server *s, server_slot *sl) {
    if (!sl->session) return;
    shimmy_load_status ls;
    shimmy_catalog_status(s->cat, shimmy_model_name(shimmy_session_model(sl->session)), &ls);
    if (ls.state != SHIMMY_LOAD_LOADED) slot_drop_session(sl);
}

static void *slot_main(void *arg) {
    server_slot *sl = arg;
    server *s = sl->srv;
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        while (!s->qhead && !atomic_load(&s->stopping)) pthread_cond_wait(&s->qcv, &s->qmu);
        if (atomic_load(&s->stopping)) break;
        server_job *j = s->qhead;
        s->qhead = j->next;
        if (!s->qhead) s->qtail = NULL;
        s->qlen--;
        s->running++;
        sl->counted = true;
        sl->job = j;
        pthread_mutex_unlock(&s->qmu);
        run_job(sl, j);
        slot_idle(sl);
        pthread_mutex_lock(&s->qmu);
        drop_if_unloaded(s, sl);
        sl->job = NULL;
        pthread_mutex_unlock(&s->qmu);
        server_job_release(j);
        pthread_mutex_lock(&s->qmu);
    }
    slot_drop_session(sl); /* under qmu: server_slots_drop_unloaded may be looking */
    pthread_mutex_unlock(&s->qmu);
    return NULL;
}

shimmy_status server_slots_start(server *s, shimmy_error *err) {
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->batches = calloc((size_t)s->n_slots, sizeof *s->batches);
    if (!s->slots || !s->batches)
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory for slots");
    for (int i = 0; i < s->n_slots; i++) s->slots[i].batch = -1;
    for (int i = 0; i < s->n_slots; i++) {
        server_slot *sl = &s->slots[i];
        sl->srv = s;
        sl->index = i;
        if (pthread_create(&sl->thread, NULL, slot_main, sl) != 0)
            return shimmy_error_set(err, SHIMMY_ERR_INTERNAL, NULL, "cannot start slot thread %d",
                                    i);
        sl->started = true;
    }
    return SHIMMY_OK;
}

void server_slots_stop(server *s) {
    if (!s->slots) return;
    pthread_mutex_lock(&s->qmu);
    atomic_store(&s->stopping, true);
    shimmy_error err;
    shimmy_error_set(&err, SHIMMY_ERR_BUSY, NULL, "the server is shutting down");
    while (s->qhead) {
        server_job *j = s->qhead;
        s->qhead = j->next;
        s->qlen--;
        j->fmt->fail(j, &err);
        server_job_finish(j, 503);
        server_job_release(j);
    }
    s->qtail = NULL;
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].job) server_job_cancel(s->slots[i].job);
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].started) pthread_join(s->slots[i].thread, NULL);
    free(s->slots);
    s->slots = NULL;
    free(s->batches); /* every slot dropped its session, and with the last one its batch */
    s->batches = NULL;
}

void server_slots_drop_unloaded(server *s) {
    /* Only idle slots are touched; a busy one re-checks when its job ends. */
    pthread_mutex_lock(&s->qmu);
    for (int i = 0; i < s->n_slots; i++) {
        server_slot *sl = &s->slots[i];
        if (!sl->job) drop_if_unloaded(s, sl);
    }
    pthread_mutex_unlock(&s->qmu);
}
