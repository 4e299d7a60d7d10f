/*
 * engine: the stop-string matcher, context overflow errors, greedy generation against the
 * reference, sinks that refuse, cancellation, prefix caching and stop strings across tokens.
 */
#include "engine/engine.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <pthread.h>

/* ---- stop matcher alone ---- */

typedef struct acc {
    char buf[4096];
    size_t len;
} acc;

static void acc_add(acc *a, const char *s, size_t n) {
    if (a->len + n < sizeof a->buf) {
        memcpy(a->buf + a->len, s, n);
        a->len += n;
        a->buf[a->len] = '\0';
    }
}

static bool push_all(const char *const *stops, size_t n_stop, const char *const *pieces, size_t n,
                     acc *out) {
    engine_stop st;
    shimmy_error err;
    CHECK(engine_stop_init(&st, stops, n_stop, &err) == SHIMMY_OK);
    bool matched = false;
    const char *e;
    size_t ne;
    for (size_t i = 0; i < n && !matched; i++) {
        matched = engine_stop_push(&st, pieces[i], strlen(pieces[i]), &e, &ne);
        acc_add(out, e, ne);
    }
    if (!matched) {
        engine_stop_flush(&st, &e, &ne);
        acc_add(out, e, ne);
    }
    engine_stop_deinit(&st);
    return matched;
}

static void test_stop_matcher(void) {
    const char *stops[] = {"o w", "###"};
    const char *p1[] = {"Hel", "lo wo", "rld"};
    acc a = {0};
    CHECK(push_all(stops, 2, p1, 3, &a));
    CHECK_STR(a.buf, "Hell");
    /* a partial match that never completes is released at the end */
    const char *p2[] = {"a#", "#", "b#", "#"};
    acc b = {0};
    CHECK(!push_all(stops, 2, p2, 4, &b));
    CHECK_STR(b.buf, "a##b##");
    /* held back while ambiguous: nothing of "##" is emitted before it is ruled out */
    engine_stop st;
    shimmy_error err;
    CHECK(engine_stop_init(&st, stops, 2, &err) == SHIMMY_OK);
    const char *e;
    size_t ne;
    CHECK(!engine_stop_push(&st, "x##", 3, &e, &ne));
    CHECK_EQ_INT(ne, 1);
    CHECK(engine_stop_push(&st, "#tail", 5, &e, &ne));
    CHECK_EQ_INT(ne, 0);
    engine_stop_deinit(&st);
    /* the earliest of several stop strings wins, even if split over three pieces */
    const char *stops2[] = {"cde", "bc"};
    const char *p3[] = {"a", "b", "cdef"};
    acc c = {0};
    CHECK(push_all(stops2, 2, p3, 3, &c));
    CHECK_STR(c.buf, "a");
    /* no stop strings: everything passes */
    const char *p4[] = {"x", "yz"};
    acc d = {0};
    CHECK(!push_all(NULL, 0, p4, 2, &d));
    CHECK_STR(d.buf, "xyz");
    CHECK(engine_stop_init(&st, NULL, 2, &err) == SHIMMY_ERR_INVALID_ARG);
    engine_stop_deinit(&st);
    const char *bad[] = {""};
    CHECK(engine_stop_init(&st, bad, 1, &err) == SHIMMY_ERR_INVALID_ARG);
    engine_stop_deinit(&st);
}

/* ---- with a model ---- */

typedef struct sink_state {
    acc text;
    int calls;
    int refuse_after; /* refuse on this call (1-based), 0 = never */
    int cancel_after;
    engine_session *s;
    int32_t last_token;
    char pieces[64][64];
} sink_state;

static bool sink(void *user, const char *text, size_t len, int32_t token) {
    sink_state *st = user;
    if (st->calls < 64) snprintf(st->pieces[st->calls], 64, "%.*s", (int)len, text);
    st->calls++;
    st->last_token = token;
    acc_add(&st->text, text, len);
    if (st->cancel_after && st->calls == st->cancel_after) engine_session_cancel(st->s);
    return !(st->refuse_after && st->calls == st->refuse_after);
}

static void greedy_params(engine_gen_params *gp, int32_t max, int32_t *out, size_t cap) {
    engine_gen_params_default(gp);
    gp->sampling.temperature = 0.0f;
    gp->max_tokens = max;
    gp->ignore_eos = true;
    gp->out_tokens = out;
    gp->out_tokens_cap = cap;
}

static void test_with_model(void) {
    char path[1024], jpath[1024];
    if (!test_data_path("models/tiny-llama-spm-F32.gguf", path, sizeof path) ||
        !test_data_path("reference/tiny-llama-spm-F32.json", jpath, sizeof jpath)) {
        printf("model tests skipped: test data absent\n");
        return;
    }
    shimmy_error err;
    engine_model *m = NULL;
    CHECK(engine_model_open(path, NULL, &m, &err) == SHIMMY_OK);
    if (!m) return;
    const engine_model_info *info = engine_model_get_info(m);
    CHECK_STR(info->architecture, "llama");
    CHECK_STR(info->file_type, "F32");
    CHECK_EQ_INT(info->n_vocab, 32000);
    CHECK(engine_model_chat_template(m) != NULL);
    CHECK_STR(engine_model_bos_text(m), "<s>");
    CHECK_STR(engine_model_eos_text(m), "</s>");

    engine_session_params sp = {.n_ctx = 64, .kv_type = MODEL_KV_F32, .n_threads = 2};
    engine_session *s = NULL;
    CHECK(engine_session_new(m, &sp, &s, &err) == SHIMMY_OK);
    if (!s) {
        engine_model_close(m);
        return;
    }
    engine_gen_params gp;
    int32_t out[64];
    engine_result r;

    /* context overflow: both numbers in the message, nothing run */
    int32_t big[65];
    for (int i = 0; i < 65; i++) big[i] = 100 + i;
    greedy_params(&gp, 1, out, 64);
    CHECK(engine_generate(s, big, 65, &gp, NULL, NULL, &r, &err) == SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK_MSG(strstr(err.message, "65") && strstr(err.message, "64"), "%s", err.message);
    greedy_params(&gp, 60, out, 64);
    CHECK(engine_generate(s, big, 10, &gp, NULL, NULL, &r, &err) == SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK_MSG(strstr(err.message, "10") && strstr(err.message, "60") && strstr(err.message, "64"),
              "%s", err.message);
    big[3] = 32000;
    greedy_params(&gp, 4, out, 64);
    CHECK(engine_generate(s, big, 5, &gp, NULL, NULL, &r, &err) == SHIMMY_ERR_INVALID_ARG);

    /* greedy generation reproduces the reference up to its first near-tie */
    json_error_t jerr;
    json_t *root = json_load_file(jpath, 0, &jerr);
    CHECK(root != NULL);
    json_t *cs = json_array_get(json_object_get(root, "cases"), 1);
    json_t *jp = json_object_get(cs, "prompt_tokens");
    json_t *kv = json_object_get(cs, "kv_f32");
    size_t n_prompt = json_array_size(jp);
    int32_t prompt[16];
    for (size_t i = 0; i < n_prompt && i < 16; i++)
        prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
    sink_state ss = {.s = s};
    greedy_params(&gp, 32, out, 64);
    CHECK(engine_generate(s, prompt, n_prompt, &gp, sink, &ss, &r, &err) == SHIMMY_OK);
    CHECK_EQ_INT(r.n_generated, 32);
    CHECK_EQ_INT(r.n_prompt, (int)n_prompt);
    CHECK(r.finish == ENGINE_FINISH_LENGTH);
    json_t *top5 = json_object_get(kv, "top5_per_step");
    for (size_t i = 0; i < 32; i++) {
        json_t *t = json_array_get(top5, i);
        double margin = json_number_value(json_array_get(json_array_get(t, 0), 1)) -
                        json_number_value(json_array_get(json_array_get(t, 1), 1));
        if (margin < 0.01) break;
        CHECK_EQ_INT(out[i],
                     json_integer_value(json_array_get(json_object_get(kv, "greedy_tokens"), i)));
    }
    /* the streamed text is the detokenized continuation */
    const tok_vocab *v = engine_model_vocab(m);
    char *whole = NULL;
    size_t wlen = 0;
    CHECK(tok_decode(v, out, 32, false, &whole, &wlen, &err) == SHIMMY_OK);
    /* decoding after a prompt keeps the leading space that tok_decode strips; the streamed text
     * replaces invalid UTF-8 with U+FFFD, so compare bytes only when the decode is valid */
    if (core_utf8_valid(whole, wlen))
        CHECK_MSG(ss.text.len >= wlen && memcmp(ss.text.buf + ss.text.len - wlen, whole, wlen) == 0,
                  "streamed \"%s\" vs decoded \"%s\"", ss.text.buf, whole);
    free(whole);

    /* prefix caching: the same prompt again reuses all but the last prompt token */
    int32_t out2[64];
    greedy_params(&gp, 32, out2, 64);
    CHECK(engine_generate(s, prompt, n_prompt, &gp, NULL, NULL, &r, &err) == SHIMMY_OK);
    CHECK_EQ_INT(r.n_cached, (int)n_prompt - 1);
    CHECK(memcmp(out, out2, sizeof(int32_t) * 32) == 0);

    /* a stop string that spans two streamed pieces is never emitted */
    int k = -1;
    for (int i = 2; i + 1 < ss.calls && i < 63; i++)
        if (strlen(ss.pieces[i]) >= 2 && strlen(ss.pieces[i + 1]) >= 2) {
            k = i;
            break;
        }
    if (k >= 0) {
        char stop_s[8], expect[4096];
        size_t a = strlen(ss.pieces[k]);
        snprintf(stop_s, sizeof stop_s, "%c%c%c%c", ss.pieces[k][a - 2], ss.pieces[k][a - 1],
                 ss.pieces[k + 1][0], ss.pieces[k + 1][1]);
        const char *where = strstr(ss.text.buf, stop_s);
        CHECK(where != NULL);
        snprintf(expect, sizeof expect, "%.*s", (int)(where - ss.text.buf), ss.text.buf);
        const char *stops[] = {stop_s};
        sink_state s2 = {.s = s};
        greedy_params(&gp, 32, out2, 64);
        gp.stop = stops;
        gp.n_stop = 1;
        CHECK(engine_generate(s, prompt, n_prompt, &gp, sink, &s2, &r, &err) == SHIMMY_OK);
        CHECK(r.finish == ENGINE_FINISH_STOP);
        CHECK_STR(s2.text.buf, expect);
        CHECK(strstr(s2.text.buf, stop_s) == NULL);
    }

    /* a sink that refuses stops the generation at that token */
    sink_state s3 = {.s = s, .refuse_after = 3};
    greedy_params(&gp, 32, out2, 64);
    CHECK(engine_generate(s, prompt, n_prompt, &gp, sink, &s3, &r, &err) == SHIMMY_OK);
    CHECK(r.finish == ENGINE_FINISH_CANCELLED);
    CHECK_EQ_INT(s3.calls, 3);
    CHECK_EQ_INT(out2[r.n_generated - 1], s3.last_token);

    /* engine_session_cancel from inside the stream: no further token is sampled */
    sink_state s4 = {.s = s, .cancel_after = 2};
    greedy_params(&gp, 32, out2, 64);
    CHECK(engine_generate(s, prompt, n_prompt, &gp, sink, &s4, &r, &err) == SHIMMY_OK);
    CHECK(r.finish == ENGINE_FINISH_CANCELLED);
    CHECK_EQ_INT(s4.calls, 2);
    CHECK_EQ_INT(out2[r.n_generated - 1], s4.last_token);

    /* teacher forcing gives the logits the generation used */
    CHECK(engine_eval(s, prompt, n_prompt, 0, false, &err) == SHIMMY_OK);
    CHECK_EQ_INT(sampling_argmax(engine_logits(s, 0), engine_n_vocab(s)), out[0]);
    CHECK(engine_eval(s, &out[0], 1, (int32_t)n_prompt, false, &err) == SHIMMY_OK);
    CHECK_EQ_INT(sampling_argmax(engine_logits(s, 0), engine_n_vocab(s)), out[1]);
    CHECK(engine_eval(s, prompt, 1, 99, false, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(engine_eval(s, prompt, n_prompt, 0, true, &err) == SHIMMY_ERR_INVALID_ARG);

    /* seeded sampling is reproducible */
    int32_t o1[16], o2[16];
    engine_gen_params_default(&gp);
    gp.sampling.seed = 1234;
    gp.sampling.temperature = 1.0f;
    gp.max_tokens = 16;
    gp.ignore_eos = true;
    gp.out_tokens = o1;
    gp.out_tokens_cap = 16;
    CHECK(engine_generate(s, prompt, n_prompt, &gp, NULL, NULL, &r, &err) == SHIMMY_OK);
    gp.out_tokens = o2;
    CHECK(engine_generate(s, prompt, n_prompt, &gp, NULL, NULL, &r, &err) == SHIMMY_OK);
    CHECK(memcmp(o1, o2, sizeof o1) == 0);

    json_decref(root);
    engine_session_free(s);
    engine_model_close(m);
}

typedef struct conc_job {
    engine_session *s;
    const int32_t *prompt;
    size_t n_prompt;
    int32_t out[16];
    shimmy_status st;
} conc_job;

static void *conc_main(void *arg) {
    conc_job *j = arg;
    engine_gen_params gp;
    greedy_params(&gp, 16, j->out, 16);
    engine_result r;
    shimmy_error err;
    j->st = engine_generate(j->s, j->prompt, j->n_prompt, &gp, NULL, NULL, &r, &err);
    return NULL;
}

/* Two sessions sharing one pool under one compute lock, generating at the same time, give what
 * one session alone gives. */
static void test_concurrent_sessions(void) {
    char path[1024];
    if (!test_data_path("models/tiny-llama-spm-F32.gguf", path, sizeof path)) return;
    shimmy_error err;
    engine_model *m = NULL;
    CHECK(engine_model_open(path, NULL, &m, &err) == SHIMMY_OK);
    if (!m) return;
    core_pool *pool = NULL;
    CHECK(core_pool_new(2, &pool, &err) == SHIMMY_OK);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    engine_session_params sp = {.n_ctx = 64, .pool = pool, .compute_lock = &lock};
    engine_session *a = NULL, *b = NULL;
    CHECK(engine_session_new(m, &sp, &a, &err) == SHIMMY_OK);
    CHECK(engine_session_new(m, &sp, &b, &err) == SHIMMY_OK);
    engine_session_params bad = {.n_ctx = 64, .pool = pool};
    engine_session *c = NULL;
    CHECK(engine_session_new(m, &bad, &c, &err) == SHIMMY_ERR_INVALID_ARG);
    const int32_t prompt[] = {1, 450, 4996, 17354, 1701, 29916};
    conc_job ja = {a, prompt, 6, {0}, 0}, jb = {b, prompt + 1, 5, {0}, 0};
    if (a && b) {
        pthread_t ta, tb;
        pthread_create(&ta, NULL, conc_main, &ja);
        pthread_create(&tb, NULL, conc_main, &jb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        CHECK(ja.st == SHIMMY_OK && jb.st == SHIMMY_OK);
        /* alone, one after the other on session a */
        conc_job sa = {a, prompt, 6, {0}, 0}, sb = {a, prompt + 1, 5, {0}, 0};
        conc_main(&sa);
        conc_main(&sb);
        CHECK(memcmp(ja.out, sa.out, sizeof ja.out) == 0);
        CHECK(memcmp(jb.out, sb.out, sizeof jb.out) == 0);
    }
    engine_session_free(a);
    engine_session_free(b);
    core_pool_free(pool);
    engine_model_close(m);
}

static void test_open_errors(void) {
    shimmy_error err;
    engine_model *m = (engine_model *)1;
    CHECK(engine_model_open("/nonexistent/x.gguf", NULL, &m, &err) != SHIMMY_OK);
    CHECK(m == NULL);
    CHECK(err.message[0] != '\0');
    engine_model_close(NULL);
    engine_session_free(NULL);
}

int main(void) {
    test_stop_matcher();
    test_open_errors();
    test_with_model();
    test_concurrent_sessions();
    return test_finish("engine");
}
