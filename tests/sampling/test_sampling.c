/* Samplers one by one, the standard chain, seeded determinism and penalties. */
#include "sampling/sampling.h"
#include "test.h"

#include <math.h>

static sampling_cand buf[64];

static sampling_cands cands_of(const float *logits, int n) {
    for (int i = 0; i < n; i++) buf[i] = (sampling_cand){i, logits[i], 0.0f};
    return (sampling_cands){buf, (size_t)n, false, -1};
}

static bool has_id(const sampling_cands *c, int32_t id) {
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].id == id) return true;
    return false;
}

static void test_greedy(void) {
    const float l[] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
    sampling_cands c = cands_of(l, 5);
    sampler *g = sampler_new_greedy();
    sampler_apply(g, &c);
    CHECK_EQ_INT(c.data[c.selected].id, 1); /* tie between 1 and 3 goes to the lower id */
    CHECK_EQ_INT(sampling_argmax(l, 5), 1);
    sampler_free(g);
}

static void test_top_k(void) {
    const float l[] = {0.1f, 5.0f, 2.0f, 4.0f, 4.0f, -1.0f, 3.0f};
    sampling_cands c = cands_of(l, 7);
    sampler *s = sampler_new_top_k(3);
    sampler_apply(s, &c);
    CHECK_EQ_INT(c.size, 3);
    CHECK(c.sorted);
    CHECK_EQ_INT(c.data[0].id, 1);
    CHECK_EQ_INT(c.data[1].id, 3);
    CHECK_EQ_INT(c.data[2].id, 4);
    sampler_free(s);
    /* k larger than the list changes nothing */
    c = cands_of(l, 7);
    s = sampler_new_top_k(100);
    sampler_apply(s, &c);
    CHECK_EQ_INT(c.size, 7);
    sampler_free(s);
}

static void test_top_p_min_p(void) {
    const float l[] = {logf(0.2f), logf(0.5f), logf(0.3f)};
    sampling_cands c = cands_of(l, 3);
    sampler *s = sampler_new_top_p(0.7f);
    sampler_apply(s, &c);
    CHECK_EQ_INT(c.size, 2);
    CHECK(has_id(&c, 1) && has_id(&c, 2));
    CHECK_NEAR(c.data[0].p, 0.5, 1e-6);
    sampler_free(s);
    c = cands_of(l, 3);
    s = sampler_new_top_p(0.85f);
    sampler_apply(s, &c);
    CHECK_EQ_INT(c.size, 3);
    sampler_free(s);
    c = cands_of(l, 3);
    s = sampler_new_top_p(0.4f);
    sampler_apply(s, &c);
    CHECK_EQ_INT(c.size, 1);
    CHECK_EQ_INT(c.data[0].id, 1);
    sampler_free(s);

    /* min_p 0.5: keep p >= 0.25 (ids 1 and 2) */
    c = cands_of(l, 3);
    s = sampler_new_min_p(0.5f);
    sampler_apply(s, &c);
    CHECK_EQ_INT(c.size, 2);
    CHECK(has_id(&c, 1) && has_id(&c, 2) && !has_id(&c, 0));
    sampler_free(s);
}

static void test_temp(void) {
    const float l[] = {1.0f, -2.0f};
    sampling_cands c = cands_of(l, 2);
    sampler *s = sampler_new_temp(0.5f);
    sampler_apply(s, &c);
    CHECK_NEAR(c.data[0].logit, 2.0, 1e-6);
    CHECK_NEAR(c.data[1].logit, -4.0, 1e-6);
    sampler_free(s);
}

static void test_penalties(void) {
    const float l[] = {2.0f, -1.0f, 1.0f, 0.5f};
    sampler *s = sampler_new_penalties(3, 2.0f, 0.25f, 0.5f, 4);
    sampler_accept(s, 0);
    sampler_accept(s, 1);
    sampler_accept(s, 0);
    sampling_cands c = cands_of(l, 4);
    sampler_apply(s, &c);
    /* id 0 seen twice: 2/2 - 2*0.25 - 0.5 = 0; id 1 once: -1*2 - 0.25 - 0.5 = -2.75 */
    CHECK_NEAR(c.data[0].logit, 0.0, 1e-6);
    CHECK_NEAR(c.data[1].logit, -2.75, 1e-6);
    CHECK_NEAR(c.data[2].logit, 1.0, 1e-6);
    /* the window holds 3: accepting 3 evicts the first 0 */
    sampler_accept(s, 3);
    c = cands_of(l, 4);
    sampler_apply(s, &c);
    CHECK_NEAR(c.data[0].logit, 2.0 / 2 - 0.25 - 0.5, 1e-6);
    CHECK_NEAR(c.data[3].logit, 0.5 / 2 - 0.25 - 0.5, 1e-6);
    sampler_reset(s);
    c = cands_of(l, 4);
    sampler_apply(s, &c);
    CHECK_NEAR(c.data[0].logit, 2.0, 1e-6);
    sampler_free(s);
}

static void test_logit_bias(void) {
    const float l[] = {5.0f, 1.0f, 4.0f};
    sampling_logit_bias b[] = {{0, -INFINITY}, {1, 10.0f}, {7, 1.0f} /* out of range: ignored */};
    sampling_params p;
    sampling_params_default(&p);
    p.temperature = 0.0f;
    p.logit_bias = b;
    p.n_logit_bias = 2;
    sampler *c = NULL;
    shimmy_error err;
    CHECK(sampler_chain_new(&p, 3, &c, &err) == SHIMMY_OK);
    CHECK_EQ_INT(sampler_sample(c, l), 1);
    sampler_free(c);
    p.n_logit_bias = 3;
    CHECK(sampler_chain_new(&p, 3, &c, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(c == NULL);
}

static void draw(uint32_t seed, const float *l, int n, int32_t *out, int count) {
    sampling_params p;
    sampling_params_default(&p);
    p.seed = seed;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.temperature = 1.0f;
    sampler *c = NULL;
    shimmy_error err;
    CHECK(sampler_chain_new(&p, n, &c, &err) == SHIMMY_OK);
    for (int i = 0; i < count; i++) out[i] = sampler_sample(c, l);
    /* reset reseeds: the same stream again */
    sampler_reset(c);
    for (int i = 0; i < count; i++) CHECK_EQ_INT(sampler_sample(c, l), out[i]);
    sampler_free(c);
}

static void test_seeded(void) {
    float l[10];
    for (int i = 0; i < 10; i++) l[i] = logf((float)(i + 1));
    enum { N = 4000 };
    static int32_t a[N], b[N], c[N];
    draw(42, l, 10, a, N);
    draw(42, l, 10, b, N);
    draw(43, l, 10, c, N);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* the draws follow p_i = (i+1)/55 */
    int hist[10] = {0};
    for (int i = 0; i < N; i++) hist[a[i]]++;
    for (int i = 0; i < 10; i++) {
        double expect = N * (i + 1) / 55.0, sd = sqrt(expect * (1 - (i + 1) / 55.0));
        CHECK_MSG(fabs(hist[i] - expect) < 5 * sd, "token %d drawn %d times, expected %.0f", i,
                  hist[i], expect);
    }
}

static void test_chain_greedy_ignores_filters(void) {
    const float l[] = {0.0f, 9.0f, 8.9f, -3.0f};
    sampling_params p;
    sampling_params_default(&p);
    p.temperature = 0.0f;
    sampler *c = NULL;
    shimmy_error err;
    CHECK(sampler_chain_new(&p, 4, &c, &err) == SHIMMY_OK);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(sampler_sample(c, l), 1);
    sampler_free(c);
    /* top_k 1 with a temperature is greedy too */
    p.temperature = 1.5f;
    p.top_k = 1;
    CHECK(sampler_chain_new(&p, 4, &c, &err) == SHIMMY_OK);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(sampler_sample(c, l), 1);
    sampler_free(c);
}

static void test_params_check(void) {
    sampling_params p;
    shimmy_error err;
    sampling_params_default(&p);
    CHECK(sampling_params_check(&p, 10, &err) == SHIMMY_OK);
    p.top_p = 1.5f;
    CHECK(sampling_params_check(&p, 10, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "top_p");
    sampling_params_default(&p);
    p.temperature = -1.0f;
    CHECK(sampling_params_check(&p, 10, &err) == SHIMMY_ERR_INVALID_ARG);
    sampling_params_default(&p);
    p.temperature = NAN;
    CHECK(sampling_params_check(&p, 10, &err) == SHIMMY_ERR_INVALID_ARG);
    sampling_params_default(&p);
    p.repeat_penalty = 0.0f;
    CHECK(sampling_params_check(&p, 10, &err) == SHIMMY_ERR_INVALID_ARG);
    sampler_free(NULL);
}

int main(void) {
    test_greedy();
    test_top_k();
    test_top_p_min_p();
    test_temp();
    test_penalties();
    test_logit_bias();
    test_seeded();
    test_chain_greedy_ignores_filters();
    test_params_check();
    return test_finish("sampling");
}
