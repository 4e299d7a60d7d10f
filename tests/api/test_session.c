/* Sessions, prompts, thread pools and the log hook on a fixture model: a session generates what
 * shimmy_generate does, reuses its KV prefix, applies logit bias, checks every option and the
 * context budget, stops on the callback or on shimmy_session_cancel from another thread. */
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
static shimmy_threadpool *pool;

typedef struct text {
    char buf[8192];
    size_t len;
    int pieces;
    int stop_after;
    shimmy_session *cancel_on_first; /* shimmy_session_cancel from another thread */
    pthread_t canceller;
    bool started;
} text;

static void *cancel_later(void *arg) {
    shimmy_session_cancel(arg);
    return NULL;
}

static shimmy_next collect(const char *piece, size_t len, void *user) {
    text *t = user;
    if (t->len + len < sizeof t->buf) memcpy(t->buf + t->len, piece, len), t->len += len;
    t->buf[t->len] = '\0';
    t->pieces++;
    if (t->cancel_on_first && !t->started) {
        t->started = pthread_create(&t->canceller, NULL, cancel_later, t->cancel_on_first) == 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL); /* the cancel lands while this generation runs */
    }
    return t->stop_after && t->pieces >= t->stop_after ? SHIMMY_STOP : SHIMMY_CONTINUE;
}

static shimmy_session *new_session(int32_t ctx) {
    shimmy_session *s = NULL;
    shimmy_error err;
    shimmy_session_options o = {.ctx_len = ctx, .pool = pool};
    CHECK_EQ_INT(shimmy_session_new(model, &o, &s, &err), SHIMMY_OK);
    return s;
}

static void test_pool_and_options(void) {
    shimmy_error err;
    CHECK_EQ_INT(shimmy_threadpool_size(pool), 1);
    shimmy_threadpool *p = (shimmy_threadpool *)&err;
    CHECK_EQ_INT(shimmy_threadpool_new(-1, &p, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(p == NULL);
    CHECK_STR(err.where, "threads");
    shimmy_session *s = NULL;
    shimmy_session_options bad = {.ctx_len = -5};
    CHECK_EQ_INT(shimmy_session_new(model, &bad, &s, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(s == NULL);
    CHECK_STR(err.where, "ctx_len");
    CHECK_EQ_INT(shimmy_session_new(NULL, NULL, &s, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_EQ_INT(shimmy_session_new(model, NULL, &s, &err), SHIMMY_OK); /* own threads */
    CHECK_EQ_INT(shimmy_session_ctx_len(s), CTX);
    CHECK(shimmy_session_model(s) == model);
    CHECK(shimmy_model_same_weights(model, shimmy_session_model(s)));
    CHECK(!shimmy_model_same_weights(model, NULL));
    shimmy_session_free(s);
    shimmy_session_free(NULL);
}

static void test_prompts(void) {
    shimmy_error err;
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_text(model, "Hello world", 11, &p, &err), SHIMMY_OK);
    size_t n = shimmy_prompt_token_count(p);
    CHECK(n >= 2);
    CHECK_EQ_INT(shimmy_prompt_tokens(p)[0], FIXTURE_BOS_ID);
    CHECK(shimmy_prompt_end_of_turn(p) == NULL);
    shimmy_prompt *q = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_tokens(model, shimmy_prompt_tokens(p), n, &q, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_prompt_token_count(q), n);
    CHECK(memcmp(shimmy_prompt_tokens(q), shimmy_prompt_tokens(p), n * sizeof(int32_t)) == 0);
    shimmy_prompt_free(q);
    shimmy_prompt_free(p);
    int32_t bad[] = {1, 512};
    CHECK_EQ_INT(shimmy_prompt_from_tokens(model, bad, 2, &q, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(q == NULL);
    CHECK_STR(err.where, "tokens");
    shimmy_message msgs[] = {{"system", "be brief"}, {"user", "hi"}};
    CHECK_EQ_INT(shimmy_prompt_from_chat(model, msgs, 2, &p, &err), SHIMMY_OK);
    CHECK(shimmy_prompt_token_count(p) > 4);
    shimmy_prompt_free(p);
    /* the JSON form renders the same conversation to the same tokens */
    CHECK_EQ_INT(shimmy_prompt_from_chat(model, msgs, 2, &p, &err), SHIMMY_OK);
    shimmy_prompt *j = NULL;
    const char *js = "[{\"role\":\"system\",\"content\":\"be brief\"},"
                     "{\"role\":\"user\",\"content\":\"hi\"}]";
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]";
    CHECK_EQ_INT(shimmy_prompt_from_chat_json(model, js, tools, &j, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_prompt_token_count(j), shimmy_prompt_token_count(p));
    if (j && p)
        CHECK(memcmp(shimmy_prompt_tokens(j), shimmy_prompt_tokens(p),
                     shimmy_prompt_token_count(p) * sizeof(int32_t)) == 0);
    shimmy_prompt_free(j);
    shimmy_prompt_free(p);
    CHECK_EQ_INT(shimmy_prompt_from_chat_json(model, "[{\"role\":", NULL, &j, &err),
                 SHIMMY_ERR_INVALID_JSON);
    CHECK(j == NULL);
    CHECK_STR(err.where, "messages");
    CHECK_EQ_INT(shimmy_prompt_from_chat_json(model, js, "{}", &j, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "tools");
    CHECK_EQ_INT(shimmy_prompt_from_chat_json(model, "[]", NULL, &j, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_message broken[] = {{"user", NULL}};
    CHECK_EQ_INT(shimmy_prompt_from_chat(model, broken, 1, &p, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "messages[0].content");
    CHECK_EQ_INT(shimmy_prompt_from_chat(model, msgs, 0, &p, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_EQ_INT(shimmy_prompt_from_text(NULL, "x", 1, &p, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_prompt_free(NULL);
}

static void test_matches_generate_and_reuses_prefix(void) {
    shimmy_error err;
    const char *prompt = "The quick brown fox";
    shimmy_gen_options o = {.max_tokens = 20, .ignore_eos = true};
    text ref = {0}, a = {0}, b = {0};
    shimmy_result gr;
    CHECK_EQ_INT(shimmy_generate(model, prompt, &o, collect, &ref, &gr, &err), SHIMMY_OK);
    shimmy_session *s = new_session(0);
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_text(model, prompt, strlen(prompt), &p, &err), SHIMMY_OK);
    shimmy_session_request req = {.options = &o};
    shimmy_session_result r;
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, collect, &a, &r, &err), SHIMMY_OK);
    CHECK_STR(a.buf, ref.buf);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_LENGTH);
    CHECK_EQ_INT(r.completion_tokens, 20);
    CHECK_EQ_INT(r.prompt_tokens, (int)shimmy_prompt_token_count(p));
    CHECK_EQ_INT(r.cached_tokens, 0);
    CHECK_EQ_INT(r.max_tokens, 20);
    CHECK(r.ttft_ms > 0 && r.prompt_ms >= 0 && r.gen_ms >= 0);
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, collect, &b, &r, &err), SHIMMY_OK);
    CHECK_STR(b.buf, ref.buf);
    CHECK(r.cached_tokens > 0); /* the same prompt again: its KV is reused */
    shimmy_prompt_free(p);
    shimmy_session_free(s);
}

static void test_logit_bias(void) {
    shimmy_error err;
    shimmy_session *s = new_session(0);
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_text(model, "abc", 3, &p, &err), SHIMMY_OK);
    shimmy_gen_options o = {.max_tokens = 5, .ignore_eos = true};
    /* a huge bias on one piece token makes greedy decoding repeat it */
    shimmy_logit_bias bias = {.token = FIXTURE_FIRST_PIECE + 7, .bias = 100.0f};
    shimmy_session_request req = {.options = &o, .logit_bias = &bias, .n_logit_bias = 1};
    text t = {0};
    shimmy_session_result r;
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, collect, &t, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.completion_tokens, 5);
    CHECK(t.len > 0 && t.len % 5 == 0);
    size_t unit = t.len / 5;
    for (size_t i = 1; i < 5; i++) CHECK(memcmp(t.buf, t.buf + i * unit, unit) == 0);
    bias.token = 512; /* outside the vocabulary */
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "logit_bias");
    bias.token = 5;
    bias.bias = 1000.0f;
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_prompt_free(p);
    shimmy_session_free(s);
}

static void test_errors(void) {
    shimmy_error err;
    shimmy_session *s = new_session(32);
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_text(model, "abc", 3, &p, &err), SHIMMY_OK);
    shimmy_gen_options o = {.max_tokens = 31, .ignore_eos = true};
    shimmy_session_request req = {.options = &o};
    shimmy_session_result r;
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, NULL, NULL, &r, &err),
                 SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK_STR(err.where, "max_tokens");
    CHECK_EQ_INT(r.max_tokens, 31);
    CHECK(strstr(err.message, "31") != NULL);
    o.max_tokens = 4;
    o.temperature = -1.0f;
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "temperature");
    o.temperature = 0.0f;
    o.top_k = 100000; /* more than the vocabulary */
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "top_k");
    shimmy_prompt_free(p);
    char longtext[400];
    memset(longtext, 0, sizeof longtext);
    for (size_t i = 0; i + 2 < sizeof longtext; i += 2) memcpy(longtext + i, "a ", 2);
    CHECK_EQ_INT(shimmy_prompt_from_text(model, longtext, strlen(longtext), &p, &err), SHIMMY_OK);
    o.top_k = 0;
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, NULL, NULL, &r, &err),
                 SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK_STR(err.where, "prompt");
    CHECK_EQ_INT(shimmy_session_generate(s, NULL, &req, NULL, NULL, &r, &err),
                 SHIMMY_ERR_INVALID_ARG);
    shimmy_prompt_free(p);
    CHECK_EQ_INT(shimmy_prompt_from_tokens(model, NULL, 0, &p, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_session_generate(s, p, NULL, NULL, NULL, &r, &err),
                 SHIMMY_ERR_INVALID_ARG); /* no tokens */
    shimmy_prompt_free(p);
    shimmy_session_free(s);
}

static void test_cancel(void) {
    shimmy_error err;
    shimmy_session *s = new_session(0);
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_text(model, "abc", 3, &p, &err), SHIMMY_OK);
    shimmy_gen_options o = {.max_tokens = 60, .ignore_eos = true};
    shimmy_session_request req = {.options = &o};
    shimmy_session_result r;
    text t = {.stop_after = 3};
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, collect, &t, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_CANCELLED);
    CHECK_EQ_INT(t.pieces, 3);
    CHECK(r.completion_tokens < 60);
    text u = {.cancel_on_first = s};
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, collect, &u, &r, &err), SHIMMY_OK);
    if (u.started) pthread_join(u.canceller, NULL);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_CANCELLED);
    CHECK(r.completion_tokens < 60);
    /* a cancel does not carry over into the next generation */
    text v = {0};
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, collect, &v, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.finish, SHIMMY_FINISH_LENGTH);
    shimmy_session_cancel(NULL);
    shimmy_prompt_free(p);
    shimmy_session_free(s);
}

typedef struct log_capture {
    char last[256];
    int count;
} log_capture;

static void capture(shimmy_log_level level, const char *msg, void *user) {
    log_capture *c = user;
    snprintf(c->last, sizeof c->last, "%d:%s", (int)level, msg);
    c->count++;
}

static void test_log_and_rss(void) {
    log_capture c = {0};
    shimmy_log_set_handler(capture, &c, SHIMMY_LOG_INFO);
    shimmy_log(SHIMMY_LOG_DEBUG, "hidden %d", 1);
    CHECK_EQ_INT(c.count, 0);
    shimmy_log(SHIMMY_LOG_WARN, "shown %d", 2);
    CHECK_EQ_INT(c.count, 1);
    CHECK_STR(c.last, "2:shown 2");
    shimmy_log_set_handler(NULL, NULL, SHIMMY_LOG_DEBUG);
    shimmy_log(SHIMMY_LOG_ERROR, "nobody listens");
    CHECK_EQ_INT(c.count, 1);
    CHECK(shimmy_process_rss_bytes() > 1024 * 1024);
}

int main(void) {
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    shimmy_error err;
    model = test_load_fixture(path, CTX, &err);
    CHECK_MSG(model != NULL, "loading the fixture: %s", err.message);
    CHECK_EQ_INT(shimmy_threadpool_new(1, &pool, &err), SHIMMY_OK);
    if (!model || !pool) return test_finish("api/session");

    test_pool_and_options();
    test_prompts();
    test_matches_generate_and_reuses_prefix();
    test_logit_bias();
    test_errors();
    test_cancel();
    test_log_and_rss();

    shimmy_threadpool_free(pool);
    shimmy_model_unref(model);
    test_rm_rf(dir);
    return test_finish("api/session");
}
