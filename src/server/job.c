/* A job's output buffer: the bounded hand-over between a slot worker and a connection. */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void server_job_write(server_job *j, const char *data, size_t len) {
    pthread_mutex_lock(&j->mu);
    size_t pending = j->out_len - j->out_off;
    /* A cancelled job may still write its closing error (shutdown); only a finished one is
     * sealed. */
    if (j->finished) {
        pthread_mutex_unlock(&j->mu);
        return;
    }
    /* The worker never waits for a reader (its session may hold the thread pool's turn): a reader
     * this far behind is treated like one that went away. */
    if (pending + len > SERVER_OUT_LIMIT) {
        atomic_store(&j->cancelled, true);
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        shimmy_log(SHIMMY_LOG_WARN, "server: %s: client fell %zu bytes behind; cancelled", j->id,
                   pending);
        return;
    }
    if (j->out_off > 0 && j->out_len + len > j->out_cap) {
        memmove(j->out, j->out + j->out_off, pending);
        j->out_len = pending;
        j->out_off = 0;
    }
    if (j->out_len + len > j->out_cap) {
        size_t cap = j->out_cap ? j->out_cap : 4096;
        while (cap < j->out_len + len) cap *= 2;
        char *p = realloc(j->out, cap);
        if (!p) {
            atomic_store(&j->cancelled, true);
            pthread_cond_broadcast(&j->cv);
            pthread_mutex_unlock(&j->mu);
            return;
        }
        j->out = p;
        j->out_cap = cap;
    }
    memcpy(j->out + j->out_len, data, len);
    j->out_len += len;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void server_job_printf(server_job *j, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        server_job_write(j, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    server_job_write(j, big, (size_t)n);
    free(big);
}

void server_job_sse(server_job *j, json_t *v) {
    if (!v) return;
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!s) return;
    server_job_printf(j, "data: %s\n\n", s);
    free(s);
}

void server_job_finish(server_job *j, int http_status) {
    pthread_mutex_lock(&j->mu);
    if (!j->finished) {
        j->finished = true;
        j->http_status = http_status;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static struct timespec deadline_in(int wait_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

bool server_job_wait(server_job *j, int wait_ms) {
    struct timespec ts = deadline_in(wait_ms);
    pthread_mutex_lock(&j->mu);
    while (!j->finished)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT) break;
    bool done = j->finished;
    pthread_mutex_unlock(&j->mu);
    return done;
}

long server_job_read(server_job *j, char *buf, size_t cap, int wait_ms) {
    pthread_mutex_lock(&j->mu);
    if (j->out_len == j->out_off && !j->finished && wait_ms > 0) {
        struct timespec ts = deadline_in(wait_ms);
        while (j->out_len == j->out_off && !j->finished) {
            if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT) break;
        }
    }
    long n;
    if (j->out_len > j->out_off) {
        size_t k = j->out_len - j->out_off;
        if (k > cap) k = cap;
        memcpy(buf, j->out + j->out_off, k);
        j->out_off += k;
        n = (long)k;
    } else {
        n = j->finished ? -1 : 0;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

double server_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void server_job_cancel(server_job *j) {
    atomic_store(&j->cancelled, true);
    pthread_mutex_lock(&j->mu);
    /* Also stops a prompt being processed, before any piece reaches the job's callback. */
    if (j->running) shimmy_session_cancel(j->running);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void server_job_acc_append(server_job *j, const char *text, size_t len) {
    if (j->acc_len + len + 1 > j->acc_cap) {
        size_t cap = j->acc_cap ? j->acc_cap : 256;
        while (cap < j->acc_len + len + 1) cap *= 2;
        char *p = realloc(j->acc, cap);
        if (!p) {
            server_job_cancel(j);
            return;
        }
        j->acc = p;
        j->acc_cap = cap;
    }
    memcpy(j->acc + j->acc_len, text, len);
    j->acc_len += len;
}

void server_job_stream_answer(server_job *j, const char *text, size_t len,
                              void (*out)(server_job *j, const char *text, size_t len)) {
    if (!j->req.tools.tools) {
        out(j, text, len);
        return;
    }
    server_job_acc_append(j, text, len);
    if (j->tool_held) return;
    bool started;
    size_t send = server_toolcall_hold(j->tool_format, j->acc, j->acc_len, !j->tool_sent, &started);
    if (send) {
        out(j, j->acc, send);
        memmove(j->acc, j->acc + send, j->acc_len - send);
        j->acc_len -= send;
        j->tool_sent = true;
    }
    j->tool_held = started;
}
