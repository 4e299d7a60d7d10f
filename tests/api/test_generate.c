/* Generation through the public API on a fixture model: callback and pull streams agree,
 * the pull queue never exceeds its bound with a slow reader, cancellation from another thread
 * stops within one token, context errors carry both numbers, stop strings end the text. */
#include "api_text.h"
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CTX 96

static char dir[256], path[512];
static shimmy_model *model;

typedef struct text {
    char buf[8192];
    size_t len;
    int pieces;
    int stop_after; /* callback returns SHIMMY_STOP at this piece (0 = never) */
} text;

static void add(text *t, const char *p, size_t n) {
    if (t->len + n < sizeof t->buf) memcpy(t->buf + t->len, p, n), t->len += n;
    t->buf[t->len] = '\0';
    t->pieces++;
}

static shimmy_next collect(const char *piece, size_t len, void *user) {
    text *t = user;
    add(t, piece, len);
    return t->stop_after && t->pieces >= t->stop_after ? SHIMMY_STOP : SHIMMY_CONTINUE;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads a whole stream; delay_ms between pieces. */
static shimmy_status drain(shimmy_stream *s, text *t, int delay_ms) {
    const char *p;
    size_t n;
    shimmy_status st;
    while ((st = shimmy_stream_next(s, &p, &n)) == SHIMMY_OK && p) {
        add(t, p, n);
        if (delay_ms) sleep_ms(delay_ms);
    }
    return st;
}

static const shimmy_gen_options greedy = {.max_tokens = 40, .ignore_eos = true};

static void test_callback_and_pull_agree(void) {
    const shimmy_gen_options sets[] = {
        greedy,
        {.max_tokens = 30, .temperature = 0.9f, .top_k = 20, .seed = 7, .ignore_eos = true},
    };
    for (size_t i = 0; i < 2; i++) {
        static text a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        shimmy_result ra, rb;
        shimmy_error err;
        CHECK_EQ_INT(shimmy_generate(model, "the cat", &sets[i], collect, &a, &ra, &err),
                     SHIMMY_OK);
        shimmy_stream *s = NULL;
        CHECK_EQ_INT(shimmy_stream_open(model, "the cat", &sets[i], &s, &err), SHIMMY_OK);
        CHECK_EQ_INT(drain(s, &b, 0), SHIMMY_OK);
        CHECK_EQ_INT(shimmy_stream_result(s, &rb, &err), SHIMMY_OK);
        shimmy_stream_free(s);
        CHECK(a.len > 0);
        CHECK_MSG(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0, "set %zu: '%s' vs '%s'", i,
                  a.buf, b.buf);
        CHECK_EQ_INT(ra.completion_tokens, sets[i].max_tokens);
        CHECK_EQ_INT(rb.completion_tokens, sets[i].max_tokens);
        CHECK_EQ_INT(ra.finish, SHIMMY_FINISH_LENGTH);
        CHECK_EQ_INT(rb.finish, SHIMMY_FINISH_LENGTH);
        CHECK_EQ_INT(ra.prompt_tokens, rb.prompt_tokens);
        CHECK(ra.prompt_tokens >= 2);
        CHECK_EQ_INT(ra.ctx_len, CTX);
    }
}

static void test_backpressure(void) {
    shimmy_gen_options o = greedy;
    o.max_tokens = 24;
    o.queue_len = 2;
    shimmy_stream *s = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_stream_open(model, "the cat", &o, &s, &err), SHIMMY_OK);
    static text t;
    memset(&t, 0, sizeof t);
    CHECK_EQ_INT(drain(s, &t, 15), SHIMMY_OK); /* far slower than the generator */
    shimmy_result r;
    CHECK_EQ_INT(shimmy_stream_result(s, &r, &err), SHIMMY_OK);
    shimmy_stream_free(s);
    CHECK_EQ_INT(r.completion_tokens, 24);
    /* full, never over: the generator waited instead of buffering ahead */
    CHECK_EQ_INT(r.queue_highest, 2);
}

typedef struct canceller {
    shimmy_stream *s;
    int delay_ms;
} canceller;

static void *cancel_later(void *arg) {
    canceller *c = arg;
    sleep_ms(c->delay_ms);
    shimmy_stream_cancel(c->s);
    return NULL;
}

static void test_cancel_from_another_thread(void) {
    shimmy_gen_options o = greedy;
    o.max_tokens = 80;
    o.queue_len = 1;
    shimmy_stream *s = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_stream_open(model, "the cat", &o, &s, &err), SHIMMY_OK);
    const char *p;
    size_t n;
    int consumed = 0;
    for (; consumed < 3; consumed++) {
        CHECK_EQ_INT(shimmy_stream_next(s, &p, &n), SHIMMY_OK);
        CHECK(p != NULL);
    }
    /* the consumer stops reading; the generator fills the queue and waits; another thread
     * cancels */
    canceller c = {s, 30};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &c);
    pthread_join(t, NULL);
    CHECK_EQ_INT(shimmy_stream_next(s, &p, &n), SHIMMY_OK);
    CHECK(p == NULL && n == 0); /* nothing more after a cancel, buffered pieces included */
    shimmy_result r;
    CHECK_EQ_INT(shimmy_stream_result(s, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_CANCELLED);
    /* 3 read + 1 in the queue + the one the generator was waiting to push, refused */
    CHECK_MSG(r.completion_tokens <= consumed + o.queue_len + 1, "%d tokens after %d read",
              r.completion_tokens, consumed);
    shimmy_stream_free(s);

    /* cancelled before anything is read: whatever the generator managed before the cancel is
     * bounded by the queue (1 buffered + 1 waiting), and nothing follows the cancel */
    o.max_tokens = CTX - 4;
    CHECK_EQ_INT(shimmy_stream_open(model, "a", &o, &s, &err), SHIMMY_OK);
    shimmy_stream_cancel(s);
    shimmy_stream_cancel(s); /* repeatable */
    CHECK_EQ_INT(shimmy_stream_next(s, &p, &n), SHIMMY_OK);
    CHECK(p == NULL);
    CHECK_EQ_INT(shimmy_stream_result(s, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_CANCELLED);
    CHECK_MSG(r.completion_tokens <= o.queue_len + 1, "%d tokens after an immediate cancel",
              r.completion_tokens);
    shimmy_stream_free(s);

    /* the callback's SHIMMY_STOP stops at that very token */
    static text cb;
    memset(&cb, 0, sizeof cb);
    cb.stop_after = 5;
    CHECK_EQ_INT(shimmy_generate(model, "the cat", &greedy, collect, &cb, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(cb.pieces, 5);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_CANCELLED);
    CHECK_EQ_INT(r.completion_tokens, 5);

    /* freeing a stream nobody reads does not hang */
    CHECK_EQ_INT(shimmy_stream_open(model, "the cat", &greedy, &s, &err), SHIMMY_OK);
    shimmy_stream_free(s);
    /* nor does asking for the result without reading */
    CHECK_EQ_INT(shimmy_stream_open(model, "the cat", &greedy, &s, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_stream_result(s, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.completion_tokens, 40);
    shimmy_stream_free(s);
}

static void test_context_exceeded(void) {
    char prompt[2048] = "";
    for (int i = 0; i < 60; i++) strcat(prompt, "the cat sat ");
    shimmy_result r;
    shimmy_error err;
    shimmy_status st = shimmy_generate(model, prompt, &greedy, NULL, NULL, &r, &err);
    CHECK_EQ_INT(st, SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK_STR(err.where, "prompt");
    CHECK(r.prompt_tokens > CTX);
    CHECK_EQ_INT(r.ctx_len, CTX);
    char num[32];
    snprintf(num, sizeof num, "%d tokens", r.prompt_tokens);
    CHECK_MSG(strstr(err.message, num) != NULL, "'%s' lacks '%s'", err.message, num);
    snprintf(num, sizeof num, "holds %d", CTX);
    CHECK_MSG(strstr(err.message, num) != NULL, "'%s' lacks '%s'", err.message, num);

    shimmy_gen_options o = {.max_tokens = CTX};
    shimmy_stream *s = (shimmy_stream *)1;
    st = shimmy_stream_open(model, "the cat", &o, &s, &err);
    CHECK_EQ_INT(st, SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK(s == NULL);
    CHECK_STR(err.where, "max_tokens");
    st = shimmy_generate(model, "the cat", &o, NULL, NULL, &r, &err);
    CHECK_EQ_INT(st, SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK_EQ_INT(r.max_tokens, CTX);
    char asked[64], room[64];
    snprintf(asked, sizeof asked, "asks for %d tokens", CTX);
    snprintf(room, sizeof room, "only %d are available", CTX - r.prompt_tokens);
    CHECK_MSG(strstr(err.message, asked) && strstr(err.message, room), "'%s'", err.message);

    /* with max_tokens left to its default, the length shrinks to fit instead */
    CHECK_EQ_INT(shimmy_generate(model, "the cat", &(shimmy_gen_options){.ignore_eos = true}, NULL,
                                 NULL, &r, &err),
                 SHIMMY_OK);
    CHECK_EQ_INT(r.completion_tokens, CTX - r.prompt_tokens);
}

static void test_options_against_model(void) {
    shimmy_error err;
    shimmy_result r;
    shimmy_gen_options o = {.top_k = 100000};
    CHECK_EQ_INT(shimmy_generate(model, "x", &o, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "top_k");
    o = (shimmy_gen_options){.temperature = -1};
    CHECK_EQ_INT(shimmy_generate(model, "x", &o, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "temperature");
    CHECK_EQ_INT(shimmy_generate(model, NULL, NULL, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_EQ_INT(shimmy_generate(NULL, "x", NULL, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
}

static void test_stop_string(void) {
    static text full, cut;
    memset(&full, 0, sizeof full);
    memset(&cut, 0, sizeof cut);
    shimmy_error err;
    shimmy_result r;
    CHECK_EQ_INT(shimmy_generate(model, "the cat", &greedy, collect, &full, &r, &err), SHIMMY_OK);
    if (full.len < 12) return;
    char stop[4];
    memcpy(stop, full.buf + full.len / 2, 3);
    stop[3] = '\0';
    const char *stops[] = {stop};
    shimmy_gen_options o = greedy;
    o.stop = stops;
    o.n_stop = 1;
    CHECK_EQ_INT(shimmy_generate(model, "the cat", &o, collect, &cut, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_STOP);
    size_t at = (size_t)(strstr(full.buf, stop) - full.buf);
    CHECK_EQ_INT(cut.len, at);
    CHECK(memcmp(cut.buf, full.buf, at) == 0);
}

static void test_chat(void) {
    static text t;
    memset(&t, 0, sizeof t);
    shimmy_message msgs[] = {{"system", "be brief"}, {"user", "hello"}};
    shimmy_result r;
    shimmy_error err;
    shimmy_gen_options o = {.max_tokens = 8, .ignore_eos = true};
    CHECK_EQ_INT(shimmy_chat(model, msgs, 2, &o, collect, &t, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.completion_tokens, 8);
    CHECK(r.prompt_tokens > 8); /* the template's [INST] scaffolding is there */
    shimmy_message bad[] = {{"user", "hi"}, {NULL, "x"}};
    CHECK_EQ_INT(shimmy_chat(model, bad, 2, &o, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "messages[1].role");
    CHECK_EQ_INT(shimmy_chat(model, msgs, 0, &o, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    /* the llama-2 template refuses roles out of order: a template error, on the messages */
    shimmy_message order[] = {{"assistant", "a"}, {"assistant", "b"}};
    shimmy_status st = shimmy_chat(model, order, 2, &o, NULL, NULL, &r, &err);
    if (st) CHECK_STR(err.where, "messages");
}

typedef struct worker {
    text t;
    shimmy_status st;
} worker;

static void *gen_thread(void *arg) {
    worker *w = arg;
    shimmy_error err;
    w->st = shimmy_generate(model, "the cat", &greedy, collect, &w->t, NULL, &err);
    return NULL;
}

static void test_threads_share_a_model(void) {
    static worker w[3];
    memset(w, 0, sizeof w);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, gen_thread, &w[i]);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    for (int i = 1; i < 3; i++) {
        CHECK_EQ_INT(w[i].st, SHIMMY_OK);
        CHECK(w[i].t.len == w[0].t.len && memcmp(w[i].t.buf, w[0].t.buf, w[0].t.len) == 0);
    }
}

static void test_stream_keeps_model_alive(void) {
    shimmy_model *extra = shimmy_model_ref(model);
    shimmy_stream *s = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_stream_open(extra, "the cat", &greedy, &s, &err), SHIMMY_OK);
    shimmy_model_unref(extra);
    static text t;
    memset(&t, 0, sizeof t);
    CHECK_EQ_INT(drain(s, &t, 0), SHIMMY_OK);
    CHECK(t.len > 0);
    shimmy_stream_free(s);
    CHECK_STR(shimmy_model_name(model), "fixture");
    CHECK_STR(shimmy_model_architecture(model), "llama");
    CHECK_EQ_INT(shimmy_model_ctx_len(model), CTX);
    CHECK_EQ_INT(shimmy_model_vocab_size(model), 512);
}

int main(void) {
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    shimmy_error err;
    model = test_load_fixture(path, CTX, &err);
    CHECK_MSG(model != NULL, "loading the fixture: %s", err.message);
    if (!model) return test_finish("api/generate");

    test_callback_and_pull_agree();
    test_backpressure();
    test_cancel_from_another_thread();
    test_context_exceeded();
    test_options_against_model();
    test_stop_string();
    test_chat();
    test_threads_share_a_model();
    test_stream_keeps_model_alive();

    shimmy_model_unref(model);
    test_rm_rf(dir);
    return test_finish("api/generate");
}
