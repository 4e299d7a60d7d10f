/* Pull streams: a generator thread fills a ring of at most queue_len pieces; the consumer takes
 * them one at a time. The piece a consumer holds still counts against the bound until its next
 * call, so a slow consumer caps the memory at queue_len pieces and the generator waits. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_QUEUE 16

typedef struct piece {
    char *data; /* owned, grown as needed and reused */
    size_t len, cap;
} piece;

struct shimmy_stream {
    api_job job;
    pthread_t thread;
    bool started, joined;
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    piece *ring; /* (cap) */
    size_t cap, head, count;
    bool held;      /* the consumer holds ring[head] (returned by the last next) */
    bool done;      /* the generator has finished */
    bool cancelled; /* shimmy_stream_cancel was called */
    bool discard;   /* shimmy_stream_result is waiting: pieces are dropped, not queued */
    size_t highest;
    shimmy_status status;
    shimmy_error error;
};

static bool stream_sink(void *user, const char *text, size_t len, int32_t token) {
    (void)token;
    shimmy_stream *s = user;
    if (len == 0) return true;
    pthread_mutex_lock(&s->mu);
    while (s->count == s->cap && !s->cancelled && !s->discard)
        pthread_cond_wait(&s->nonfull, &s->mu);
    if (s->cancelled || s->discard) {
        /* read under the lock: shimmy_stream_cancel writes it from another thread */
        const bool go_on = !s->cancelled;
        pthread_mutex_unlock(&s->mu);
        return go_on;
    }
    piece *p = &s->ring[(s->head + s->count) % s->cap];
    if (len + 1 > p->cap) {
        char *d = core_realloc(p->data, len + 1);
        if (!d) {
            pthread_mutex_unlock(&s->mu);
            core_error(&s->error, SHIMMY_ERR_NOMEM, "stream", "out of memory buffering a piece");
            return false;
        }
        p->data = d;
        p->cap = len + 1;
    }
    memcpy(p->data, text, len);
    p->data[len] = '\0';
    p->len = len;
    s->count++;
    if (s->count > s->highest) s->highest = s->count;
    pthread_cond_signal(&s->nonempty);
    pthread_mutex_unlock(&s->mu);
    return true;
}

static void *generator(void *arg) {
    shimmy_stream *s = arg;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st = api_job_run(&s->job, stream_sink, s, &err);
    pthread_mutex_lock(&s->mu);
    /* a piece that could not be buffered is the stream's failure even though the engine only
     * saw a refusing sink */
    if (!st && s->error.status)
        st = s->error.status;
    else
        s->error = err;
    s->status = st;
    s->done = true;
    pthread_cond_broadcast(&s->nonempty);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void stream_destroy(shimmy_stream *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->ring[i].data);
    free(s->ring);
    pthread_cond_destroy(&s->nonempty);
    pthread_cond_destroy(&s->nonfull);
    pthread_mutex_destroy(&s->mu);
    api_job_deinit(&s->job);
    free(s);
}

shimmy_status shimmy_stream_open(shimmy_model *m, const char *prompt,
                                 const shimmy_gen_options *opts, shimmy_stream **out,
                                 shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    if (!prompt) return core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt is NULL");
    shimmy_stream *s = core_calloc(1, sizeof *s);
    if (!s) return core_error(err, SHIMMY_ERR_NOMEM, "stream", "out of memory");
    api_job_init(&s->job, m);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->nonempty, NULL);
    pthread_cond_init(&s->nonfull, NULL);
    shimmy_error_clear(&s->error);
    const shimmy_gen_options *o = opts ? opts : &m->spec.f.gen;
    shimmy_status st = api_job_prepare(&s->job, prompt, o, NULL, err);
    if (!st) {
        s->cap = o->queue_len > 0 ? (size_t)o->queue_len : DEFAULT_QUEUE;
        if (!(s->ring = core_calloc(s->cap, sizeof *s->ring)))
            st = core_error(err, SHIMMY_ERR_NOMEM, "stream", "out of memory");
    }
    if (!st && pthread_create(&s->thread, NULL, generator, s) != 0)
        st = core_error(err, SHIMMY_ERR_NOMEM, "stream", "cannot start the generator thread");
    if (st) {
        stream_destroy(s);
        return st;
    }
    s->started = true;
    *out = s;
    return SHIMMY_OK;
}

shimmy_status shimmy_stream_next(shimmy_stream *s, const char **out_piece, size_t *len) {
    if (out_piece) *out_piece = NULL;
    if (len) *len = 0;
    if (!s || !out_piece || !len) return SHIMMY_ERR_INVALID_ARG;
    pthread_mutex_lock(&s->mu);
    if (s->held) {
        s->held = false;
        s->head = (s->head + 1) % s->cap;
        s->count--;
        pthread_cond_signal(&s->nonfull);
    }
    while (s->count == 0 && !s->done && !s->cancelled && !s->discard)
        pthread_cond_wait(&s->nonempty, &s->mu);
    shimmy_status st = SHIMMY_OK;
    if (s->cancelled || s->discard) {
        /* nothing more, not even what was buffered */
    } else if (s->count > 0) {
        s->held = true;
        *out_piece = s->ring[s->head].data;
        *len = s->ring[s->head].len;
    } else {
        st = s->status;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

void shimmy_stream_cancel(shimmy_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    pthread_cond_broadcast(&s->nonfull);
    pthread_cond_broadcast(&s->nonempty);
    pthread_mutex_unlock(&s->mu);
    api_job_cancel(&s->job);
}

static void join(shimmy_stream *s) {
    if (s->started && !s->joined) {
        pthread_join(s->thread, NULL);
        s->joined = true;
    }
}

shimmy_status shimmy_stream_result(shimmy_stream *s, shimmy_result *result, shimmy_error *err) {
    if (result) *result = (shimmy_result){0};
    if (!s) return core_error(err, SHIMMY_ERR_INVALID_ARG, "stream", "the stream is NULL");
    /* nobody will read what is left, so the generator must not wait for a reader */
    pthread_mutex_lock(&s->mu);
    s->discard = true;
    s->count = s->held ? 1 : 0;
    pthread_cond_broadcast(&s->nonfull);
    pthread_mutex_unlock(&s->mu);
    join(s);
    if (result) {
        *result = s->job.res;
        result->queue_highest = s->highest;
    }
    if (err) *err = s->error;
    return s->status;
}

void shimmy_stream_free(shimmy_stream *s) {
    if (!s) return;
    shimmy_stream_cancel(s);
    join(s);
    stream_destroy(s);
}
