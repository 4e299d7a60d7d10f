/* Slots: --parallel worker threads, each owning one engine_session, fed by one FIFO queue. */
#include "server.h"

#include "engine/engine.h"
#include "lora/lora.h"

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
    j->req.sampling.logit_bias = j->req.bias; /* the copy must point at its own array */
    j->fmt = fmt;
    j->route = route;
    j->refs = 1;
    j->created = (int64_t)time(NULL);
    static atomic_uint_fast64_t counter;
    uint64_t n = atomic_fetch_add(&counter, 1) + 1;
    uint64_t salt = core_time_ns();
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
    manager_release(j->handle);
    lora_set_free(j->loras); /* NULL when a slot took it over (slot_set_loras) */
    for (size_t i = 0; i < j->n_choices; i++) free(j->prompt[i]);
    free(j->acc);
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
        return core_error(err, SHIMMY_ERR_BUSY, NULL, "the server is shutting down");
    }
    /* A free slot takes the job at once; otherwise it waits its turn (up to --queue jobs). */
    if (s->running + s->qlen >= s->n_slots + s->cfg.queue_cap) {
        pthread_mutex_unlock(&s->qmu);
        return core_error(err, SHIMMY_ERR_BUSY, NULL,
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

typedef struct sink_ctx {
    server_job *job;
    size_t choice;
} sink_ctx;

static bool job_sink(void *user, const char *text, size_t len, int32_t token) {
    sink_ctx *c = user;
    server_job *j = c->job;
    if (atomic_load(&j->cancelled) || atomic_load(&j->srv->stopping)) return false;
    if (len) j->fmt->text(j, c->choice, text, len);
    return !atomic_load(&j->cancelled);
}

static void slot_drop_session(server_slot *sl) {
    engine_session_free(sl->session);
    sl->session = NULL;
    lora_set_free(sl->loras); /* after the session it was attached to */
    sl->loras = NULL;
    manager_release(sl->held);
    sl->held = NULL;
}

/* The slot keeps the session (and a handle on its model) after a job so that the next request
 * for the same model reuses the KV prefix; a different model replaces it. */
static shimmy_status slot_bind(server_slot *sl, server_job *j, shimmy_error *err) {
    engine_model *em = manager_handle_model(j->handle);
    if (sl->session && manager_handle_model(sl->held) == em) return SHIMMY_OK;
    slot_drop_session(sl);
    engine_session_params p = {0};
    p.n_ctx = sl->srv->cfg.ctx_size;
    p.pool = sl->srv->pool;
    p.compute_lock = &sl->srv->compute_lock;
    shimmy_status st = engine_session_new(em, &p, &sl->session, err);
    if (st) return st;
    sl->held = j->handle; /* the slot takes over the job's reference */
    j->handle = NULL;
    return SHIMMY_OK;
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

/* Same adapters (shared by pointer through the server's cache) with the same scales in the same
 * order: the deltas are identical. */
static bool same_loras(const lora_set *a, const lora_set *b) {
    size_t n = a ? lora_set_count(a) : 0;
    if (n != (b ? lora_set_count(b) : 0)) return false;
    for (size_t i = 0; i < n; i++)
        if (lora_set_adapter(a, i) != lora_set_adapter(b, i) ||
            lora_set_user_scale(a, i) != lora_set_user_scale(b, i))
            return false;
    return true;
}

/* The adapters belong to the job: the slot's session gets exactly the job's set (none = NULL),
 * so a slot never carries one request's deltas into the next. The slot keeps the set attached
 * after the job (it takes the job's set over), so that the next request with the same adapters
 * and scales keeps the KV prefix; any other set replaces it and drops the prefix. */
static shimmy_status slot_set_loras(server_slot *sl, server_job *j, shimmy_error *err) {
    if (same_loras(sl->loras, j->loras)) return SHIMMY_OK;
    shimmy_status st = engine_session_set_lora(sl->session, j->loras, err);
    if (st) {
        slot_drop_session(sl); /* unknown attachment state: start over next time */
        return st;
    }
    lora_set_free(sl->loras); /* no longer attached */
    sl->loras = j->loras;
    j->loras = NULL;
    return SHIMMY_OK;
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
    shimmy_status st = slot_bind(sl, j, &err);
    if (!st) st = slot_set_loras(sl, j, &err);
    if (st) {
        slot_idle(sl);
        j->fmt->fail(j, &err);
        server_job_finish(j, shimmy_status_http(st));
        return;
    }
    const char *stops[SERVER_MAX_STOP + 1];
    size_t n_stop = 0;
    for (size_t i = 0; i < j->req.n_stop; i++) stops[n_stop++] = j->req.stop[i];
    if (j->eot_stop) stops[n_stop++] = j->eot_stop;
    engine_gen_params gp;
    engine_gen_params_default(&gp);
    gp.sampling = j->req.sampling;
    gp.max_tokens = j->max_tokens;
    gp.stop = stops;
    gp.n_stop = n_stop;
    j->fmt->begin(j);
    for (size_t c = 0; c < j->n_choices; c++) {
        sink_ctx sc = {.job = j, .choice = c};
        if (j->req.echo) j->fmt->text(j, c, j->req.prompts[c], strlen(j->req.prompts[c]));
        engine_result res;
        memset(&res, 0, sizeof res);
        st = engine_generate(sl->session, j->prompt[c], j->n_prompt[c], &gp, job_sink, &sc, &res,
                             &err);
        bool cancelled = !st && res.finish == ENGINE_FINISH_CANCELLED;
        server_metrics_generation(&s->metrics, res.n_prompt - res.n_cached, res.prompt_ms,
                                  res.n_generated, res.gen_ms, cancelled);
        if (c == 0) j->ttft_ms = res.ttft_ms;
        if (st || cancelled) slot_idle(sl);
        if (st) {
            core_log(CORE_LOG_WARN, "server: %s: %s", j->id, err.message);
            j->fmt->fail(j, &err);
            server_job_finish(j, shimmy_status_http(st));
            return;
        }
        if (cancelled && atomic_load(&s->stopping)) {
            core_error(&err, SHIMMY_ERR_BUSY, NULL, "the server is shutting down");
            j->fmt->fail(j, &err);
            server_job_finish(j, 503);
            return;
        }
        if (cancelled) {
            server_job_finish(j, 499);
            return;
        }
        j->usage_prompt += res.n_prompt;
        j->usage_completion += res.n_generated;
        if (c + 1 == j->n_choices) slot_idle(sl);
        j->fmt->choice_end(j, c, engine_finish_name(res.finish));
        core_log(CORE_LOG_INFO,
                 "server: %s %s slot %d: %d prompt tokens (%d cached), %d generated, %s, "
                 "ttft %.0f ms, %.1f tok/s",
                 j->id, j->req.model, sl->index, res.n_prompt, res.n_cached, res.n_generated,
                 engine_finish_name(res.finish), res.ttft_ms,
                 res.gen_ms > 0 ? (res.n_generated - 1) * 1000.0 / res.gen_ms : 0.0);
    }
    j->fmt->done(j);
    server_job_finish(j, 200);
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
        if (sl->held) {
            manager_info info;
            manager_info_of(s->mgr, manager_handle_name(sl->held), &info);
            if (info.state != MANAGER_LOADED) slot_drop_session(sl);
        }
        slot_idle(sl);
        pthread_mutex_lock(&s->qmu);
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
    if (!s->slots) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory for slots");
    for (int i = 0; i < s->n_slots; i++) {
        server_slot *sl = &s->slots[i];
        sl->srv = s;
        sl->index = i;
        if (pthread_create(&sl->thread, NULL, slot_main, sl) != 0)
            return core_error(err, SHIMMY_ERR_INTERNAL, NULL, "cannot start slot thread %d", i);
        sl->started = true;
    }
    return SHIMMY_OK;
}

void server_slots_stop(server *s) {
    if (!s->slots) return;
    pthread_mutex_lock(&s->qmu);
    atomic_store(&s->stopping, true);
    shimmy_error err;
    core_error(&err, SHIMMY_ERR_BUSY, NULL, "the server is shutting down");
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
}

void server_slots_drop_unloaded(server *s) {
    /* Only idle slots are touched; a busy one re-checks when its job ends. */
    pthread_mutex_lock(&s->qmu);
    for (int i = 0; i < s->n_slots; i++) {
        server_slot *sl = &s->slots[i];
        if (sl->job || !sl->held) continue;
        manager_info info;
        manager_info_of(s->mgr, manager_handle_name(sl->held), &info);
        if (info.state != MANAGER_LOADED) slot_drop_session(sl);
    }
    pthread_mutex_unlock(&s->qmu);
}
