/* Token records of a session generation (shimmy_piece_fn): log-probabilities and top
 * alternatives against log-softmax computed here from an evaluator's teacher-forced logits of
 * the same tokens, the prompt's records (echo), each piece's records making up exactly its text,
 * a stop string cutting into a token, and the option's range check. */
#include "api_text.h"
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CTX  128
#define TOP  5
#define MAXT 64

static char dir[256], path[512];
static shimmy_model *model;

typedef struct rec {
    int32_t token;
    bool has, prompt;
    float lp;
    size_t n_top, n_bytes;
    shimmy_logprob top[TOP];
} rec;

typedef struct got {
    rec r[MAXT * 2];
    size_t n;
    char text[4096], bytes[4096];
    size_t text_len, bytes_len;
    bool aligned; /* after every call with text, the records' bytes equal the text so far */
    int calls_with_prompt;
    bool stop_at_prompt; /* the callback says stop when the prompt's records arrive */
} got;

static shimmy_next on_piece(const char *text, size_t len, const shimmy_token_info *t, size_t n,
                            void *user) {
    got *g = user;
    if (n && t[0].prompt) g->calls_with_prompt++;
    for (size_t i = 0; i < n && g->n < MAXT * 2; i++) {
        rec *r = &g->r[g->n++];
        *r = (rec){.token = t[i].token,
                   .has = t[i].has_logprob,
                   .prompt = t[i].prompt,
                   .lp = t[i].logprob,
                   .n_top = t[i].n_top,
                   .n_bytes = t[i].n_bytes};
        CHECK(t[i].n_top <= TOP);
        if (t[i].n_top) /* top is NULL without alternatives */
            memcpy(r->top, t[i].top, sizeof *r->top * (t[i].n_top < TOP ? t[i].n_top : TOP));
        if (!t[i].prompt && g->bytes_len + t[i].n_bytes < sizeof g->bytes) {
            memcpy(g->bytes + g->bytes_len, t[i].bytes, t[i].n_bytes);
            g->bytes_len += t[i].n_bytes;
        }
    }
    if (g->text_len + len < sizeof g->text) {
        memcpy(g->text + g->text_len, text, len);
        g->text_len += len;
    }
    if (len && (g->bytes_len != g->text_len || memcmp(g->bytes, g->text, g->text_len) != 0))
        g->aligned = false;
    return n && t[0].prompt && g->stop_at_prompt ? SHIMMY_STOP : SHIMMY_CONTINUE;
}

/* Bans the 256 byte tokens so that every piece is whole UTF-8 (the text equals the bytes). */
static shimmy_logit_bias bans[256];

static shimmy_finish last_finish;

static shimmy_status run(const char *prompt_text, const shimmy_gen_options *o, bool prompt_lp,
                         bool ban_bytes, got *g, shimmy_prompt **prompt_out) {
    shimmy_error err;
    shimmy_session *s = NULL;
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_session_new(model, NULL, &s, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_prompt_from_text(model, prompt_text, strlen(prompt_text), &p, &err),
                 SHIMMY_OK);
    for (int i = 0; i < 256; i++) bans[i] = (shimmy_logit_bias){FIXTURE_N_SPECIAL + i, -100.0f};
    shimmy_session_request req = {.options = o,
                                  .logit_bias = ban_bytes ? bans : NULL,
                                  .n_logit_bias = ban_bytes ? 256 : 0,
                                  .on_piece = on_piece,
                                  .prompt_logprobs = prompt_lp};
    bool stop_at_prompt = g->stop_at_prompt;
    memset(g, 0, sizeof *g);
    g->aligned = true;
    g->stop_at_prompt = stop_at_prompt;
    shimmy_session_result res;
    shimmy_status st = shimmy_session_generate(s, p, &req, NULL, g, &res, &err);
    last_finish = res.finish;
    CHECK_MSG(st == SHIMMY_OK, "generate: %s", err.message);
    shimmy_session_free(s);
    if (prompt_out)
        *prompt_out = p;
    else
        shimmy_prompt_free(p);
    return st;
}

/* ln softmax(logits)[token], in long double: the reference the records are held to. */
static double log_softmax(const float *l, int32_t n, int32_t token) {
    long double mx = l[0], sum = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > mx) mx = l[i];
    for (int32_t i = 0; i < n; i++) sum += expl((long double)l[i] - mx);
    return (double)((long double)l[token] - mx - logl(sum));
}

/* Checks records against the evaluator's logits of ids[0..n): record k scores ids[first + k]
 * from the logits after position first + k - 1. */
static void check_against_eval(const int32_t *ids, size_t n, const rec *r, size_t first,
                               size_t n_rec) {
    shimmy_evaluator *e = NULL;
    shimmy_error err;
    shimmy_evaluator_params ep = {.ctx_len = CTX, .n_logits = (int32_t)n, .threads = 1};
    CHECK_EQ_INT(shimmy_evaluator_new(model, &ep, &e, &err), SHIMMY_OK);
    if (!e) return;
    CHECK_EQ_INT(shimmy_evaluator_eval(e, ids, n, 0, true, &err), SHIMMY_OK);
    const int32_t nv = shimmy_evaluator_vocab_size(e);
    for (size_t k = 0; k < n_rec; k++) {
        size_t pos = first + k;
        if (pos == 0) continue;
        const float *l = shimmy_evaluator_logits(e, (int32_t)pos - 1);
        CHECK_EQ_INT(r[k].token, ids[pos]);
        double want = log_softmax(l, nv, ids[pos]);
        CHECK_MSG(r[k].has && fabs(r[k].lp - want) < 2e-3, "position %zu: %g vs %g", pos,
                  (double)r[k].lp, want);
        /* the alternatives: the most likely tokens, in order, with their own values */
        for (size_t i = 0; i < r[k].n_top; i++) {
            const shimmy_logprob *a = &r[k].top[i];
            CHECK(a->logprob <= 0.0f);
            CHECK_MSG(fabs(a->logprob - log_softmax(l, nv, a->token)) < 2e-3, "top %zu", i);
            if (i) CHECK(r[k].top[i - 1].logprob >= a->logprob);
            int better = 0; /* tokens strictly more likely than this one: fewer than its rank */
            for (int32_t v = 0; v < nv; v++) better += l[v] > l[a->token] + 1e-4f;
            CHECK_MSG(better <= (int)i, "top %zu has %d more likely tokens", i, better);
        }
    }
    shimmy_evaluator_free(e);
}

static void test_values(void) {
    shimmy_gen_options o = {.max_tokens = 24, .logprobs = true, .top_logprobs = TOP};
    got g = {0};
    shimmy_prompt *p = NULL;
    run("the quick brown", &o, false, false, &g, &p);
    CHECK(g.n > 0);
    CHECK_EQ_INT(g.calls_with_prompt, 0);
    /* greedy: the chosen token is the first alternative */
    for (size_t k = 0; k < g.n; k++) {
        CHECK_EQ_INT(g.r[k].n_top, TOP);
        CHECK_EQ_INT(g.r[k].top[0].token, g.r[k].token);
    }
    int32_t ids[CTX];
    size_t np = shimmy_prompt_token_count(p);
    memcpy(ids, shimmy_prompt_tokens(p), sizeof *ids * np);
    for (size_t k = 0; k < g.n; k++) ids[np + k] = g.r[k].token;
    check_against_eval(ids, np + g.n, g.r, np, g.n);
    shimmy_prompt_free(p);

    /* the prompt's records first (echo): one call, the first without a value */
    run("the quick brown", &o, true, false, &g, &p);
    np = shimmy_prompt_token_count(p);
    CHECK_EQ_INT(g.calls_with_prompt, 1);
    CHECK(g.n > np);
    for (size_t k = 0; k < np; k++) CHECK(g.r[k].prompt);
    CHECK(!g.r[0].has && g.r[0].n_top == 0);
    CHECK(!g.r[np].prompt);
    memcpy(ids, shimmy_prompt_tokens(p), sizeof *ids * np);
    for (size_t k = np; k < g.n; k++) ids[k] = g.r[k].token;
    check_against_eval(ids, g.n, g.r, 0, g.n);
    shimmy_prompt_free(p);

    /* the receiver may stop at the prompt's records: nothing is generated */
    g.stop_at_prompt = true;
    run("the quick brown", &o, true, false, &g, &p);
    CHECK_EQ_INT(last_finish, SHIMMY_FINISH_CANCELLED);
    CHECK_EQ_INT((int)g.n, (int)shimmy_prompt_token_count(p));
    shimmy_prompt_free(p);
    g.stop_at_prompt = false;

    /* without logprobs the records still come, with no values */
    o.logprobs = false;
    run("the quick brown", &o, false, false, &g, NULL);
    CHECK(g.n > 0 && !g.r[0].has && g.r[0].n_top == 0);
}

static void test_alignment(void) {
    shimmy_gen_options o = {.max_tokens = 40, .logprobs = true};
    got g = {0};
    run("once upon a time", &o, false, true, &g, NULL);
    CHECK_MSG(g.aligned, "every piece's records spell exactly its text");
    CHECK(g.text_len > 8 && g.bytes_len == g.text_len);
    /* a stop string that begins inside a token: the text ends before it, the token cut into is
     * handed over (its bytes run past the text), tokens wholly inside the stop are not */
    char full[4096];
    size_t full_len = g.text_len;
    memcpy(full, g.text, full_len);
    char stop[8] = {0};
    memcpy(stop, full + full_len / 2, 3);
    size_t at = 0; /* where the stop string first occurs: the text ends there */
    while (memcmp(full + at, stop, 3) != 0) at++;
    const char *stops[] = {stop};
    o.stop = stops;
    o.n_stop = 1;
    run("once upon a time", &o, false, true, &g, NULL);
    CHECK_EQ_INT((int)g.text_len, (int)at);
    CHECK(memcmp(g.text, full, at) == 0);
    CHECK(g.bytes_len >= g.text_len && memcmp(g.bytes, full, g.bytes_len) == 0);
    /* only the last record may reach past the text, and it starts inside it */
    CHECK(g.n > 0);
    if (g.n)
        CHECK_MSG(g.bytes_len - g.r[g.n - 1].n_bytes < at || g.bytes_len == at,
                  "%zu record bytes for %zu bytes of text", g.bytes_len, at);
}

static void test_range(void) {
    shimmy_error err;
    shimmy_gen_options o = {.logprobs = true, .top_logprobs = SHIMMY_MAX_TOP_LOGPROBS + 1};
    CHECK_EQ_INT(shimmy_gen_options_check(&o, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "top_logprobs");
    o.top_logprobs = -1;
    CHECK_EQ_INT(shimmy_gen_options_check(&o, &err), SHIMMY_ERR_INVALID_ARG);
    o.top_logprobs = SHIMMY_MAX_TOP_LOGPROBS;
    CHECK_EQ_INT(shimmy_gen_options_check(&o, &err), SHIMMY_OK);
}

int main(void) {
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    shimmy_error err;
    model = test_load_fixture(path, CTX, &err);
    CHECK_MSG(model != NULL, "loading the fixture: %s", err.message);
    if (!model) return test_finish("api/logprobs");
    test_values();
    test_alignment();
    test_range();
    shimmy_model_unref(model);
    test_rm_rf(dir);
    return test_finish("api/logprobs");
}
