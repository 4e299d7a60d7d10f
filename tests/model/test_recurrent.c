/*
 * The recurrent state of a hybrid model (qwen35: Gated DeltaNet layers beside full attention)
 * follows the cache's operations: a prompt evaluated in one batch, in chunks and token by token
 * gives the same logits within 2e-2: single rows take the single-token float order, a run of
 * entries the chunked delta rule (its own summation order, different for a chunk of 7 and one
 * of 37), and on this F16 file (activations rounded to 16 bits before every product) a flipped
 * rounding moves logits by a few 1e-3 — a wrong state (a lost token, a stale conv window) moves
 * them by whole units; a sequence copied whole continues exactly as the original; a
 * truncation to an earlier position empties the sequence (the state cannot go back) and a fresh
 * evaluation after it equals the first one bit for bit.
 */
#include "gguf/gguf.h"
#include "model/model.h"
#include "test.h"

#include <math.h>
#include <string.h>

enum { N = 37 };

static void eval_chunks(const model *m, const int32_t *tok, int chunk, float *out) {
    model_ctx_params cp = {.n_ctx = 64, .n_batch = N, .kv_type = MODEL_KV_F32};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
    if (!c) return;
    for (int i = 0; i < N; i += chunk) {
        const int k = N - i < chunk ? N - i : chunk;
        CHECK_MSG(model_ctx_eval(c, tok + i, k, 1, &err) == SHIMMY_OK, "%s", err.message);
    }
    memcpy(out, model_ctx_logits(c, 0), sizeof(float) * (size_t)m->hp.n_vocab);
    model_ctx_free(c);
}

int main(void) {
    char path[1024];
    test_require_data("models/tiny-qwen35-spm-F16.gguf", path, sizeof path);
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK_MSG(model_load(f, &m, &err) == SHIMMY_OK, "%s", err.message);
    if (!m) return test_finish("model/recurrent");
    const int32_t V = m->hp.n_vocab;
    int32_t tok[N + 1];
    for (int i = 0; i <= N; i++) tok[i] = (int32_t)((i * 2654435761u) % (uint32_t)(V - 3)) + 3;
    float *a = malloc(sizeof(float) * (size_t)V * 4);
    float *b = a + V, *t1 = b + V, *d = t1 + V;
    eval_chunks(m, tok, N, a);
    eval_chunks(m, tok, 7, b);
    eval_chunks(m, tok, 1, t1);
    double worst_chunks = 0, worst_single = 0;
    for (int32_t i = 0; i < V; i++) {
        worst_chunks = fmax(worst_chunks, fabs((double)a[i] - b[i]));
        worst_single = fmax(worst_single, fabs((double)a[i] - t1[i]));
    }
    printf("one batch vs chunks of 7: %.2e; vs token by token: %.2e\n", worst_chunks, worst_single);
    CHECK(worst_chunks < 2e-2 && worst_single < 2e-2);

    /* two sequences: copy the whole of 0 into 1, then both take the same token */
    model_ctx_params cp = {
        .n_ctx = 64, .n_seq = 2, .n_batch = N, .n_logits = 2, .kv_type = MODEL_KV_F32};
    model_ctx *c = NULL;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
    if (c) {
        CHECK(model_ctx_eval(c, tok, N, 1, &err) == SHIMMY_OK);
        CHECK(model_ctx_seq_copy(c, 1, 0, N - 3) == 0); /* a state cannot be cut */
        CHECK(model_ctx_seq_copy(c, 1, 0, N) == N);
        const int32_t toks[2] = {tok[N], tok[N]}, seqs[2] = {0, 1};
        const uint8_t want[2] = {1, 1};
        model_batch bt = {.n = 2, .token = toks, .seq = seqs, .logits = want};
        CHECK(model_ctx_decode(c, &bt, &err) == SHIMMY_OK);
        CHECK(memcmp(model_ctx_logits(c, 0), model_ctx_logits(c, 1), sizeof(float) * V) == 0);
        /* truncation to an earlier position empties the sequence */
        CHECK(model_ctx_seq_truncate(c, 0, N - 5) == 0);
        CHECK(model_ctx_seq_n_past(c, 0) == 0);
        CHECK(model_ctx_eval(c, tok, N, 1, &err) == SHIMMY_OK);
        memcpy(d, model_ctx_logits(c, 0), sizeof(float) * (size_t)V);
        CHECK(memcmp(d, a, sizeof(float) * (size_t)V) == 0);
        model_ctx_free(c);
    }
    free(a);
    model_free(m);
    gguf_close(f);
    return test_finish("model/recurrent");
}
