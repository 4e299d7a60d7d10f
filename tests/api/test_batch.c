/* Batches through the public API: shimmy_batch_new checks its options; sessions of a batch,
 * generating on their own threads, give the texts sessions alone give (greedy and seeded); the
 * statistics count shared steps; a session of another model's batch is refused; a prompt that
 * repeats an ended session's prefix reports it as cached. */
#include "api_text.h"
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <pthread.h>
#include <string.h>

#define CTX 96
#define N   4

static char dir[256], path[512];
static shimmy_model *model;
static shimmy_threadpool *pool;

typedef struct run {
    shimmy_batch *batch;
    int idx;
    char text[4096];
    size_t len;
    int32_t cached;
    shimmy_status st;
} run;

static shimmy_next collect(const char *piece, size_t len, void *user) {
    run *r = user;
    if (r->len + len < sizeof r->text) memcpy(r->text + r->len, piece, len), r->len += len;
    r->text[r->len] = '\0';
    return SHIMMY_CONTINUE;
}

static const char *const prompts[N] = {"The quick brown fox", "Once upon a time", "Databases store",
                                       "The quick brown fox jumps"};

static void *generate(void *arg) {
    run *r = arg;
    shimmy_error err;
    shimmy_session *s = NULL;
    shimmy_session_options o = {.ctx_len = CTX, .pool = pool, .batch = r->batch};
    if ((r->st = shimmy_session_new(model, &o, &s, &err))) return NULL;
    shimmy_prompt *p = NULL;
    if (!(r->st =
              shimmy_prompt_from_text(model, prompts[r->idx], strlen(prompts[r->idx]), &p, &err))) {
        shimmy_gen_options g = {.max_tokens = 16,
                                .temperature = r->idx % 2 ? 0.8f : 0.0f,
                                .seed = 7u + (uint32_t)r->idx};
        shimmy_session_request req = {.options = &g};
        shimmy_session_result res;
        r->st = shimmy_session_generate(s, p, &req, collect, r, &res, &err);
        r->cached = res.cached_tokens;
    }
    shimmy_prompt_free(p);
    shimmy_session_free(s);
    return NULL;
}

static void test_options(void) {
    shimmy_error err;
    shimmy_batch *b = (shimmy_batch *)&err;
    shimmy_batch_options o = {.slots = 0, .pool = pool};
    CHECK_EQ_INT(shimmy_batch_new(model, &o, &b, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(b == NULL);
    CHECK_STR(err.where, "slots");
    o = (shimmy_batch_options){.slots = 2};
    CHECK_EQ_INT(shimmy_batch_new(model, &o, &b, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "pool");
    o = (shimmy_batch_options){.slots = 2, .pool = pool, .chunk = -1};
    CHECK_EQ_INT(shimmy_batch_new(model, &o, &b, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "chunk");
    CHECK_EQ_INT(shimmy_batch_new(NULL, &o, &b, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_batch_free(NULL);
    shimmy_batch_stats st;
    shimmy_batch_get_stats(NULL, &st);
    CHECK(st.steps == 0);
}

static void test_same_texts(void) {
    run alone[N], together[N];
    pthread_t th[N];
    memset(alone, 0, sizeof alone);
    for (int i = 0; i < N; i++) {
        alone[i].idx = i;
        generate(&alone[i]);
        CHECK_MSG(alone[i].st == SHIMMY_OK && alone[i].len > 0, "alone %d", i);
    }
    shimmy_error err;
    shimmy_batch *b = NULL;
    shimmy_batch_options o = {
        .slots = N, .ctx_len = CTX, .chunk = 8, .pool = pool, .cache_slots = 2, .cache_mib = 16};
    CHECK_EQ_INT(shimmy_batch_new(model, &o, &b, &err), SHIMMY_OK);
    if (!b) return;
    memset(together, 0, sizeof together);
    for (int i = 0; i < N; i++) {
        together[i].idx = i;
        together[i].batch = b;
        pthread_create(&th[i], NULL, generate, &together[i]);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        CHECK_MSG(together[i].st == SHIMMY_OK, "together %d", i);
        CHECK_MSG(strcmp(together[i].text, alone[i].text) == 0, "client %d: '%s' vs '%s'", i,
                  together[i].text, alone[i].text);
    }
    shimmy_batch_stats st;
    shimmy_batch_get_stats(b, &st);
    CHECK(st.steps > 0 && st.max_batch >= 2 && st.attached == 0);
    CHECK(st.sequences >= st.steps);
    /* the fourth prompt continues the first: its prefix comes from an ended session's cache */
    run again = {.batch = b, .idx = 3};
    generate(&again);
    CHECK_EQ_INT(again.st, SHIMMY_OK);
    CHECK_MSG(again.cached > 0, "cached %d", (int)again.cached);
    CHECK(strcmp(again.text, alone[3].text) == 0);
    shimmy_batch_free(b);
}

int main(void) {
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    shimmy_error err;
    model = test_load_fixture(path, CTX, &err);
    CHECK_MSG(model != NULL, "loading the fixture: %s", err.message);
    CHECK_EQ_INT(shimmy_threadpool_new(2, &pool, &err), SHIMMY_OK);
    if (!model || !pool) return test_finish("api/batch");
    test_options();
    test_same_texts();
    shimmy_threadpool_free(pool);
    shimmy_model_unref(model);
    test_rm_rf(dir);
    return test_finish("api/batch");
}
