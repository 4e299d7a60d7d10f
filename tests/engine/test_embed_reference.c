/*
 * Embedding and reranking models against llama.cpp's (2026) references
 * (testdata/reference/<model>.embed.json, `f32_attn` setting: attention in F32):
 *  - token ids from engine_embed_tokenize equal the reference's, for single texts and for the
 *    rerank pairs ([CLS] q [SEP] d [SEP]) and llama-server's pair form ([CLS] q [SEP] d);
 *  - the 6 inputs embedded together in one batch: every normalised component within 1e-4 (F32
 *    weights) / 2e-3 (Q8_0) and cosine >= 0.9999 against the reference, raw vectors with cosine
 *    >= 0.9999 (their largest difference is printed);
 *  - the same inputs one at a time give the batch's vectors (within the same tolerance);
 *  - rank pooling: scores within 1e-3 (F32) / 0.03 (Q8_0) of the single-text and pair scores.
 * Prints one row per input.
 * SHIMMY_TEST_DEVICE (CTest's unit/gpu/embed_reference): the same on that device (every layer, or
 * the first SHIMMY_TEST_GPU_LAYERS), held to the same tolerances.
 */
#include "engine/engine.h"
#include "gpu/gpu.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct embed_ref {
    const char *name;
    bool f32;
} embed_ref;

static const embed_ref refs[] = {
    {"tiny-bert-cls-Q8_0", false},        {"tiny-bert-mean-F32", true},
    {"tiny-bert-rerank-Q8_0", false},     {"tiny-nomic-bert-Q8_0", false},
    {"tiny-qwen3-embed-F32-tokQ8", true},
};

static int32_t *json_ids(json_t *arr, int32_t *n) {
    *n = (int32_t)json_array_size(arr);
    int32_t *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    for (int32_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

static bool same_ids(const tok_buf *b, const int32_t *ids, int32_t n) {
    return b->n == (size_t)n && !memcmp(b->ids, ids, (size_t)n * sizeof *ids);
}

typedef struct cmp {
    double max_diff, cosine;
} cmp;

static cmp compare(const float *v, json_t *ref, int32_t dim) {
    cmp c = {0, 0};
    double dot = 0, nv = 0, nr = 0;
    CHECK_EQ_INT((int32_t)json_array_size(ref), dim);
    for (int32_t i = 0; i < dim && i < (int32_t)json_array_size(ref); i++) {
        const double r = json_number_value(json_array_get(ref, (size_t)i));
        const double d = fabs((double)v[i] - r);
        if (d > c.max_diff) c.max_diff = d;
        dot += v[i] * r;
        nv += (double)v[i] * v[i];
        nr += r * r;
    }
    c.cosine = nv > 0 && nr > 0 ? dot / sqrt(nv * nr) : 0;
    return c;
}

/* Embeds the n inputs together (one batch) and one at a time; returns the batch's rows. */
static float *embed_all(engine_embedder *e, int32_t *const *toks, const int32_t *n_toks, int32_t n,
                        bool normalize, double tol, const char *name) {
    const int32_t dim = engine_embed_dim(e);
    float *out = calloc((size_t)n * (size_t)dim, sizeof *out);
    float *one = calloc((size_t)dim, sizeof *one);
    shimmy_error err;
    const engine_embed_opts o = {.normalize = normalize};
    CHECK_MSG(engine_embed_run(e, (const int32_t *const *)toks, n_toks, n, &o, out, &err) ==
                  SHIMMY_OK,
              "%s: %s", name, err.message);
    for (int32_t i = 0; i < n; i++) {
        CHECK(engine_embed_run(e, (const int32_t *const *)&toks[i], &n_toks[i], 1, &o, one, &err) ==
              SHIMMY_OK);
        double d = 0;
        for (int32_t k = 0; k < dim; k++) {
            const double x = fabs((double)one[k] - out[(int64_t)i * dim + k]);
            if (x > d) d = x;
        }
        CHECK_MSG(d <= tol, "%s input %d: alone vs batched differ by %g", name, i, d);
    }
    free(one);
    return out;
}

static void check_embeddings(const embed_ref *r, engine_embedder *e, json_t *cases) {
    const double tol = r->f32 ? 1e-4 : 2e-3;
    const int32_t n = (int32_t)json_array_size(cases), dim = engine_embed_dim(e);
    int32_t **toks = calloc((size_t)n, sizeof *toks), *n_toks = calloc((size_t)n, sizeof *n_toks);
    for (int32_t i = 0; i < n; i++) {
        json_t *cs = json_array_get(cases, (size_t)i);
        toks[i] = json_ids(json_object_get(cs, "tokens"), &n_toks[i]);
        const char *text = json_string_value(json_object_get(cs, "text"));
        tok_buf b = {0};
        shimmy_error err;
        CHECK(engine_embed_tokenize(e, text, strlen(text), NULL, 0, false, &b, &err) == SHIMMY_OK);
        CHECK_MSG(same_ids(&b, toks[i], n_toks[i]), "%s input %d: token ids differ", r->name, i);
        tok_buf_free(&b);
    }
    float *norm = embed_all(e, toks, n_toks, n, true, tol, r->name);
    float *raw = embed_all(e, toks, n_toks, n, false, tol * 10, r->name);
    for (int32_t i = 0; i < n; i++) {
        json_t *cs = json_array_get(cases, (size_t)i), *f32 = json_object_get(cs, "f32_attn");
        const cmp cn = compare(norm + (int64_t)i * dim, json_object_get(f32, "embedding"), dim);
        const cmp cr = compare(raw + (int64_t)i * dim, json_object_get(f32, "embedding_raw"), dim);
        const bool pass = cn.max_diff <= tol && cn.cosine >= 0.9999 && cr.cosine >= 0.9999;
        printf("%-28s %-16s %4d %10.2e %10.2e %9.6f %s\n", r->name,
               json_string_value(json_object_get(cs, "name")), n_toks[i], cn.max_diff, cr.max_diff,
               cn.cosine, pass ? "pass" : "FAIL");
        CHECK_MSG(pass, "%s input %d: max |diff| %g, cosine %.6f (raw %.6f)", r->name, i,
                  cn.max_diff, cn.cosine, cr.cosine);
    }
    for (int32_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
    free(n_toks);
    free(norm);
    free(raw);
}

/* Scores of texts or pairs against their references (f32_attn.score[0]). */
static void check_scores(const embed_ref *r, engine_embedder *e, json_t *items, const char *query) {
    const double tol = r->f32 ? 1e-3 : 0.03;
    const int32_t n = (int32_t)json_array_size(items);
    int32_t **toks = calloc((size_t)n, sizeof *toks), *n_toks = calloc((size_t)n, sizeof *n_toks);
    for (int32_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, (size_t)i);
        toks[i] = json_ids(json_object_get(it, "tokens"), &n_toks[i]);
        const char *a = query ? query : json_string_value(json_object_get(it, "text"));
        const char *b = query ? json_string_value(json_object_get(it, "document")) : NULL;
        tok_buf tb = {0};
        shimmy_error err;
        CHECK(engine_embed_tokenize(e, a, strlen(a), b, b ? strlen(b) : 0, false, &tb, &err) ==
              SHIMMY_OK);
        CHECK_MSG(same_ids(&tb, toks[i], n_toks[i]), "%s item %d: token ids differ", r->name, i);
        tok_buf_free(&tb);
    }
    float *sc = embed_all(e, toks, n_toks, n, false, tol, r->name);
    for (int32_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, (size_t)i);
        const double want = json_number_value(
            json_array_get(json_object_get(json_object_get(it, "f32_attn"), "score"), 0));
        const double d = fabs(sc[i] - want);
        printf("%-28s %-16s %4d %10.2e %10s %9.5f %s\n", r->name,
               query ? "pair" : json_string_value(json_object_get(it, "name")), n_toks[i], d, "-",
               sc[i], d <= tol ? "pass" : "FAIL");
        CHECK_MSG(d <= tol, "%s item %d: score %.6f, reference %.6f", r->name, i, sc[i], want);
    }
    for (int32_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
    free(n_toks);
    free(sc);
}

/* llama-server's rerank pairs ([CLS] q [SEP] d, no final [SEP]): the tokenizer's other pair
 * form gives its token ids (its scores come from the F16 flash-attention setting). */
static void check_server_pairs(const embed_ref *r, engine_embedder *e, const engine_model *em,
                               json_t *rr) {
    json_t *srv = json_object_get(rr, "llama_server"), *pairs = json_object_get(rr, "pairs");
    const char *q = json_string_value(json_object_get(rr, "query"));
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        const char *d = json_string_value(json_object_get(json_array_get(pairs, i), "document"));
        int32_t n;
        int32_t *want = json_ids(json_array_get(json_object_get(srv, "tokens"), i), &n);
        tok_buf b = {0};
        shimmy_error err;
        CHECK(tok_encode_pair(engine_model_vocab(em), q, strlen(q), d, strlen(d),
                              TOK_PAIR_LLAMA_SERVER, NULL, &b, &err) == SHIMMY_OK);
        CHECK_MSG(same_ids(&b, want, n), "%s: llama-server pair %zu token ids differ", r->name, i);
        tok_buf_free(&b);
        free(want);
    }
    (void)e;
}

static void check_file(const embed_ref *r) {
    char path[1024], jpath[1024], rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", r->name);
    if (!test_data_path(rel, path, sizeof path)) return;
    snprintf(rel, sizeof rel, "reference/%s.embed.json", r->name);
    if (!test_data_path(rel, jpath, sizeof jpath)) return;
    json_error_t jerr;
    json_t *root = json_load_file(jpath, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", jpath, jerr.text);
    if (!root) return;
    engine_model *em = NULL;
    engine_embedder *e = NULL;
    shimmy_error err;
    /* the engine reads 0 as every layer, as test_gpu_layers' -1 */
    const engine_model_params mp = {.device = getenv("SHIMMY_TEST_DEVICE"),
                                    .n_gpu_layers = test_device_layers()};
    CHECK_MSG(engine_model_open(path, mp.device ? &mp : NULL, &em, &err) == SHIMMY_OK, "%s",
              err.message);
    if (em && mp.device)
        CHECK_MSG(engine_model_get_info(em)->n_gpu_layers > 0, "%s: not on the device (%s)",
                  r->name, engine_model_get_info(em)->device);
    /* 4 inputs per step: the 6 inputs take two steps, each of several sequences */
    const engine_embed_params ep = {.n_ctx = 512, .n_seq = 4, .n_threads = 2};
    if (em)
        CHECK_MSG(engine_embed_new(em, &ep, &e, &err) == SHIMMY_OK, "%s: %s", r->name, err.message);
    if (e) {
        json_t *rr = json_object_get(root, "rerank");
        if (rr) {
            CHECK(engine_embed_pooling(e) == MODEL_POOL_RANK);
            check_scores(r, e, json_object_get(root, "cases"), NULL);
            check_scores(r, e, json_object_get(rr, "pairs"),
                         json_string_value(json_object_get(rr, "query")));
            check_server_pairs(r, e, em, rr);
        } else {
            check_embeddings(r, e, json_object_get(root, "cases"));
        }
    }
    engine_embed_free(e);
    engine_model_close(em);
    json_decref(root);
}

/* Options and errors: dimensions truncate then renormalise, inputs over the context name their
 * index or are cut keeping the final [SEP]. */
static void check_options(void) {
    char path[1024];
    if (!test_data_path("models/tiny-bert-cls-Q8_0.gguf", path, sizeof path)) return;
    engine_model *em = NULL;
    engine_embedder *e = NULL;
    shimmy_error err;
    CHECK(engine_model_open(path, NULL, &em, &err) == SHIMMY_OK);
    const engine_embed_params ep = {.n_ctx = 16, .n_seq = 2, .n_threads = 1};
    CHECK(em && engine_embed_new(em, &ep, &e, &err) == SHIMMY_OK);
    if (!e) {
        engine_model_close(em);
        return;
    }
    const int32_t t[] = {101, 7592, 2088, 102};
    const int32_t *tp = t, nt = 4;
    float full[64], cut[8];
    engine_embed_opts o = {.normalize = true};
    CHECK(engine_embed_run(e, &tp, &nt, 1, &o, full, &err) == SHIMMY_OK);
    o.dimensions = 8;
    CHECK(engine_embed_run(e, &tp, &nt, 1, &o, cut, &err) == SHIMMY_OK);
    double ss = 0, ssf = 0;
    for (int i = 0; i < 8; i++) ss += (double)cut[i] * cut[i], ssf += (double)full[i] * full[i];
    CHECK_NEAR(ss, 1.0, 1e-5);
    for (int i = 0; i < 8; i++) CHECK_NEAR(cut[i], full[i] / sqrt(ssf), 1e-6);
    const char *long_text = "one two three four five six seven eight nine ten eleven twelve "
                            "thirteen fourteen fifteen sixteen seventeen";
    tok_buf b = {0};
    CHECK(engine_embed_tokenize(e, long_text, strlen(long_text), NULL, 0, false, &b, &err) ==
          SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK(b.n == 0);
    CHECK(engine_embed_tokenize(e, long_text, strlen(long_text), NULL, 0, true, &b, &err) ==
          SHIMMY_OK);
    CHECK(b.n == 16 && b.ids[0] == 101 && b.ids[15] == 102);
    tok_buf_free(&b);
    /* special-token text is parsed, as llama.cpp tokenizes embedding inputs */
    CHECK(engine_embed_tokenize(e, "a [SEP] b", 9, NULL, 0, false, &b, &err) == SHIMMY_OK);
    CHECK(b.n == 5 && b.ids[0] == 101 && b.ids[2] == 102 && b.ids[4] == 102);
    tok_buf_free(&b);
    const int32_t bad[] = {101, 40000};
    const int32_t *bp = bad, nb = 2;
    const int32_t *both[2] = {tp, bp};
    const int32_t nboth[2] = {nt, nb};
    CHECK(engine_embed_run(e, both, nboth, 2, &o, full, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "input 1") != NULL);
    engine_embed_free(e);
    engine_model_close(em);
}

int main(void) {
    char buf[1024];
    test_require_data("reference/tiny-bert-cls-Q8_0.embed.json", buf, sizeof buf);
    test_device_get();
    printf("%-28s %-16s %4s %10s %10s %9s\n", "model", "input", "toks", "max|d|", "raw|d|",
           "cos/score");
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) check_file(&refs[i]);
    check_options();
    return test_finish("engine/embed_reference");
}
