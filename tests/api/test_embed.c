/* shimmy_embed and shimmy_rerank through the public API: concurrent callers of one model (their
 * requests combined into shared runs) get what each gets alone, options per caller (raw,
 * dimensions) are applied to each, token-id inputs equal their text, errors name the input,
 * the pooling and sizes are reported, and rerank refuses a model without a head. */
#include "shimmy.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const texts[] = {
    "The quick brown fox jumps over the lazy dog.",
    "Hello",
    "Embeddings are vectors; rerankers score pairs.",
    "def f(x):\n    return x * 2",
    "Grüße aus München",
    "a b c d e f g h i j k l m n o p",
};
#define N_TEXTS (sizeof texts / sizeof texts[0])

static shimmy_model *load(const char *file) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "models/%s", file);
    if (!test_data_path(rel, path, sizeof path)) return NULL;
    shimmy_error err;
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_model_config c = SHIMMY_MODEL_CONFIG(.name = file, .base_path = path, .threads = 2);
    CHECK_EQ_INT(shimmy_spec_from_config(&c, &spec, &err), SHIMMY_OK);
    CHECK_MSG(shimmy_model_load(spec, &m, &err) == SHIMMY_OK, "%s", err.message);
    shimmy_spec_free(spec);
    return m;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* What each text embeds to alone, normalised (the expectations of the threads). */
static float alone[N_TEXTS][64];

typedef struct job {
    shimmy_model *m;
    int id;
    int fails;
} job;

/* Each thread embeds a rotating subset of the texts several times, with its own options. */
static void *worker(void *arg) {
    job *j = arg;
    for (int rep = 0; rep < 4; rep++) {
        shimmy_embed_input in[3];
        size_t idx[3];
        for (int k = 0; k < 3; k++) {
            idx[k] = (size_t)(j->id + rep + 2 * k) % N_TEXTS;
            in[k] = (shimmy_embed_input){.text = texts[idx[k]]};
        }
        const bool raw = j->id % 2 == 1;
        const int32_t dims = j->id == 2 ? 16 : 0;
        const shimmy_embed_options o = {.raw = raw, .dimensions = dims};
        shimmy_embeddings e;
        shimmy_error err;
        if (shimmy_embed(j->m, in, 3, &o, &e, &err) != SHIMMY_OK) {
            j->fails++;
            continue;
        }
        for (int k = 0; k < 3; k++) {
            const float *v = e.data + (size_t)k * (size_t)e.dim;
            const int32_t d = dims ? dims : 64;
            double ss = 0;
            for (int32_t i = 0; i < d; i++) ss += (double)v[i] * v[i];
            /* raw: a multiple of the normalised vector; dims: the first components renormalised */
            float want[64];
            double sw = 0;
            for (int32_t i = 0; i < d; i++) sw += (double)alone[idx[k]][i] * alone[idx[k]][i];
            const double scale = raw ? sqrt(ss / sw) : 1.0 / sqrt(sw);
            for (int32_t i = 0; i < d; i++) want[i] = (float)(alone[idx[k]][i] * scale);
            if (e.dim != d || max_diff(v, want, (size_t)d) > 1e-4 * (raw ? sqrt(ss) : 1.0))
                j->fails++;
        }
        shimmy_embeddings_free(&e);
    }
    return NULL;
}

static void test_concurrent(shimmy_model *m) {
    shimmy_error err;
    for (size_t i = 0; i < N_TEXTS; i++) {
        shimmy_embed_input in = {.text = texts[i]};
        shimmy_embeddings e;
        CHECK_EQ_INT(shimmy_embed(m, &in, 1, NULL, &e, &err), SHIMMY_OK);
        CHECK_EQ_INT(e.dim, 64);
        if (e.data) memcpy(alone[i], e.data, sizeof alone[i]);
        shimmy_embeddings_free(&e);
    }
    enum { THREADS = 6 };
    pthread_t th[THREADS];
    job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (job){.m = m, .id = i};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(jobs[i].fails == 0, "thread %d: %d wrong or failed results", i, jobs[i].fails);
    }
}

static void test_inputs_and_errors(shimmy_model *m) {
    shimmy_error err;
    CHECK(strcmp(shimmy_model_pooling(m), "mean") == 0);
    CHECK_EQ_INT(shimmy_model_embedding_size(m), 64);
    /* token ids equal their text: [CLS] hello [SEP] */
    int32_t *ids = NULL;
    size_t n_ids = 0;
    CHECK_EQ_INT(shimmy_tokenize(shimmy_model_vocab(m), "Hello", 5, SHIMMY_TOKENIZE_ADD_SPECIAL,
                                 &ids, &n_ids, &err),
                 SHIMMY_OK);
    shimmy_embed_input in[2] = {{.text = "Hello"}, {.tokens = ids, .n_tokens = n_ids}};
    shimmy_embeddings e;
    CHECK_EQ_INT(shimmy_embed(m, in, 2, NULL, &e, &err), SHIMMY_OK);
    CHECK(e.n == 2 && e.prompt_tokens == 2 * n_ids);
    if (e.data) CHECK(max_diff(e.data, e.data + 64, 64) < 1e-6);
    shimmy_embeddings_free(&e);
    shimmy_free(ids);
    /* over the context: refused naming the input, or cut keeping [SEP] */
    size_t len = 6 * 600;
    char *big = malloc(len + 1);
    for (size_t i = 0; i < len; i += 6) memcpy(big + i, "word. ", 6);
    big[len] = '\0';
    shimmy_embed_input two[2] = {{.text = "ok"}, {.text = big}};
    CHECK_EQ_INT(shimmy_embed(m, two, 2, NULL, &e, &err), SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK(strcmp(err.where, "input[1]") == 0);
    CHECK(strstr(err.message, "input 1") != NULL);
    CHECK(e.data == NULL && e.n == 0);
    const shimmy_embed_options cut = {.truncate = true};
    CHECK_EQ_INT(shimmy_embed(m, two, 2, &cut, &e, &err), SHIMMY_OK);
    CHECK(e.n_tokens && e.n_tokens[1] == 512);
    shimmy_embeddings_free(&e);
    free(big);
    const int32_t bad[] = {101, 1 << 30};
    shimmy_embed_input b[1] = {{.tokens = bad, .n_tokens = 2}};
    CHECK_EQ_INT(shimmy_embed(m, b, 1, NULL, &e, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(strcmp(err.where, "input[0]") == 0);
    const shimmy_embed_options too_wide = {.dimensions = 65};
    CHECK_EQ_INT(shimmy_embed(m, in, 1, &too_wide, &e, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_EQ_INT(shimmy_embed(m, in, 0, NULL, &e, &err), SHIMMY_ERR_INVALID_ARG);
    float score;
    const char *doc = "d";
    CHECK_EQ_INT(shimmy_rerank(m, "q", &doc, 1, NULL, &score, NULL, &err), SHIMMY_ERR_UNSUPPORTED);
}

static void test_rerank(shimmy_model *m) {
    shimmy_error err;
    CHECK(strcmp(shimmy_model_pooling(m), "rank") == 0);
    CHECK_EQ_INT(shimmy_model_embedding_size(m), 1);
    const char *docs[] = {"Paris is the capital and largest city of France.", "hello"};
    float s[2];
    uint64_t n_tok = 0;
    CHECK_EQ_INT(shimmy_rerank(m, "What is the capital of France?", docs, 2, NULL, s, &n_tok, &err),
                 SHIMMY_OK);
    /* llama.cpp (f32 attention) scores the first pair -0.9865718 */
    CHECK_NEAR(s[0], -0.9865718, 0.03);
    CHECK(n_tok == 20 + 11); /* [CLS] 7 [SEP] 9 [SEP], [CLS] 7 [SEP] hello [SEP] */
}

int main(void) {
    char buf[1024];
    test_require_data("models/tiny-bert-mean-F32.gguf", buf, sizeof buf);
    shimmy_model *m = load("tiny-bert-mean-F32.gguf");
    if (m) {
        test_concurrent(m);
        test_inputs_and_errors(m);
    }
    shimmy_model_unref(m);
    shimmy_model *r = load("tiny-bert-rerank-Q8_0.gguf");
    if (r) test_rerank(r);
    shimmy_model_unref(r);
    return test_finish("api/embed");
}
