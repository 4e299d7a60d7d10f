/* server: the bounded output buffer between a slot and a connection, and queue admission. */
#include "server.h"
#include "test.h"

#include <pthread.h>

static void fmt_none(server_job *j) {
    (void)j;
}
static void fmt_text(server_job *j, size_t c, const char *t, size_t n) {
    (void)j, (void)c, (void)t, (void)n;
}
static void fmt_end(server_job *j, size_t c, const char *f) {
    (void)j, (void)c, (void)f;
}
static void fmt_fail(server_job *j, const shimmy_error *e) {
    (void)j, (void)e;
}
static const server_fmt test_fmt = {"test", fmt_none, fmt_text, fmt_end, fmt_none, fmt_fail, NULL};

static void server_init_for_test(server *s, int slots, int queue) {
    memset(s, 0, sizeof *s);
    server_config_defaults(&s->cfg);
    s->cfg.queue_cap = queue;
    s->n_slots = slots;
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
}

static server_job *new_job(server *s) {
    server_request req;
    memset(&req, 0, sizeof req);
    req.api = SERVER_API_CHAT;
    return server_job_new(s, &req, &test_fmt, "/test");
}

static void test_buffer(void) {
    server s;
    server_init_for_test(&s, 1, 0);
    server_job *j = new_job(&s);
    CHECK(j != NULL);
    CHECK(strncmp(j->id, "chatcmpl-", 9) == 0);
    CHECK_EQ_INT(atomic_load(&s.active), 1);
    char buf[64];
    CHECK_EQ_INT(server_job_read(j, buf, sizeof buf, 10), 0); /* nothing yet: timeout */
    server_job_printf(j, "data: %d\n\n", 42);
    long n = server_job_read(j, buf, 4, 0);
    CHECK_EQ_INT(n, 4);
    CHECK(memcmp(buf, "data", 4) == 0);
    n = server_job_read(j, buf, sizeof buf, 0);
    CHECK_EQ_INT(n, 6);
    CHECK(memcmp(buf, ": 42\n\n", 6) == 0);
    server_job_finish(j, 200);
    CHECK_EQ_INT(server_job_read(j, buf, sizeof buf, 10), -1); /* finished and drained */
    server_job_write(j, "late", 4);                            /* ignored after finish */
    CHECK_EQ_INT(server_job_read(j, buf, sizeof buf, 0), -1);
    CHECK(server_job_wait(j, 0));
    CHECK_EQ_INT(j->http_status, 200);
    server_job_release(j);
    CHECK_EQ_INT(atomic_load(&s.active), 0);
}

static void test_overflow_cancels(void) {
    server s;
    server_init_for_test(&s, 1, 0);
    server_job *j = new_job(&s);
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    size_t written = 0;
    /* a reader that never reads: the writer is never blocked, the job is cancelled instead */
    while (!atomic_load(&j->cancelled) && written < 2 * SERVER_OUT_LIMIT) {
        server_job_write(j, chunk, sizeof chunk);
        written += sizeof chunk;
    }
    CHECK(atomic_load(&j->cancelled));
    CHECK(written <= SERVER_OUT_LIMIT + sizeof chunk);
    size_t pending = j->out_len - j->out_off;
    CHECK(pending <= SERVER_OUT_LIMIT);
    server_job_release(j);
}

typedef struct pump {
    server_job *j;
    size_t total;
} pump;

static void *writer(void *arg) {
    pump *p = arg;
    char line[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(line, sizeof line, "%d\n", i);
        server_job_write(p->j, line, (size_t)n);
        p->total += (size_t)n;
    }
    server_job_finish(p->j, 200);
    return NULL;
}

static void test_concurrent_order(void) {
    server s;
    server_init_for_test(&s, 1, 0);
    pump p = {.j = new_job(&s)};
    pthread_t th;
    pthread_create(&th, NULL, writer, &p);
    /* the reader sees every byte, in order, then end of stream */
    char buf[700];
    int expect = 0;
    size_t got = 0;
    char line[32];
    size_t ll = 0;
    bool ordered = true;
    long n;
    while ((n = server_job_read(p.j, buf, sizeof buf, 100)) != -1) {
        for (long i = 0; i < n; i++) {
            got++;
            if (buf[i] != '\n') {
                if (ll < sizeof line - 1) line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            ordered = ordered && atoi(line) == expect;
            expect++;
            ll = 0;
        }
    }
    pthread_join(th, NULL);
    CHECK(ordered);
    CHECK_EQ_INT(expect, 20000);
    CHECK_EQ_INT(got, p.total);
    server_job_release(p.j);
}

static void test_admission(void) {
    server s;
    server_init_for_test(&s, 2, 1); /* two slots, one waiting place */
    server_job *jobs[4];
    shimmy_error err;
    for (int i = 0; i < 4; i++) jobs[i] = new_job(&s);
    CHECK(server_submit(&s, jobs[0], &err) == SHIMMY_OK);
    CHECK(server_submit(&s, jobs[1], &err) == SHIMMY_OK);
    CHECK(server_submit(&s, jobs[2], &err) == SHIMMY_OK);
    CHECK(server_submit(&s, jobs[3], &err) == SHIMMY_ERR_BUSY);
    CHECK_EQ_INT(shimmy_status_http(err.status), 503);
    int queued, running;
    server_queue_depth(&s, &queued, &running);
    CHECK_EQ_INT(queued, 3);
    /* FIFO: the queue holds them in submission order */
    CHECK(s.qhead == jobs[0] && jobs[0]->next == jobs[1] && jobs[1]->next == jobs[2]);
    atomic_store(&s.stopping, true);
    CHECK(server_submit(&s, jobs[3], &err) == SHIMMY_ERR_BUSY);
    for (server_job *q = s.qhead, *next; q; q = next) {
        next = q->next;
        server_job_release(q); /* the queue's references */
    }
    for (int i = 0; i < 4; i++) server_job_release(jobs[i]);
    CHECK_EQ_INT(atomic_load(&s.active), 0);
}

int main(void) {
    test_buffer();
    test_overflow_cancels();
    test_concurrent_order();
    test_admission();
    return test_finish("server/job");
}
