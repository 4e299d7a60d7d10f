/*
 * Continuous batching: sessions of one batcher, each generating on its own thread, get exactly
 * the tokens they get alone (greedy and seeded sampling), their steps are actually shared (the
 * batcher's largest step holds several sessions), a session cancelled mid-stream frees its place
 * and leaves the others' output unchanged, and clients with different adapters (or none) in the
 * same steps get what they get alone with their adapters attached. The prompt cache: a session's
 * prompt reuses the prefix an ended session's cache holds (also across a sliding-window ring),
 * with the same tokens as without it, and a cache beyond the budget is dropped.
 */
#include "engine/engine.h"
#include "lora/lora.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <pthread.h>

enum { N_CLIENTS = 6, N_GEN = 24 };

typedef struct client {
    engine_model *m;
    engine_batcher *b;
    core_pool *pool;
    pthread_mutex_t *lock;
    int idx;
    bool cancel_early;           /* stop after a few tokens */
    const struct lora_set *lora; /* attached before generating, or NULL */
    int32_t prompt[40];
    size_t n_prompt;
    int32_t out[N_GEN];
    int32_t n_out;
    shimmy_status st;
} client;

static void gen_params(const client *c, engine_gen_params *gp) {
    engine_gen_params_default(gp);
    gp->max_tokens = N_GEN;
    gp->ignore_eos = true;
    gp->out_tokens = ((client *)c)->out;
    gp->out_tokens_cap = N_GEN;
    if (c->idx % 2) { /* odd clients sample with a seed, even ones are greedy */
        gp->sampling.temperature = 0.8f;
        gp->sampling.seed = 1000u + (uint32_t)c->idx;
    } else {
        gp->sampling.temperature = 0.0f;
    }
}

typedef struct stop_after {
    int left;
} stop_after;

static bool sink_stop(void *user, const char *text, size_t len, int32_t token) {
    (void)text, (void)len, (void)token;
    stop_after *s = user;
    return --s->left > 0;
}

static void *run_client(void *arg) {
    client *c = arg;
    engine_session_params sp = {
        .n_ctx = 128, .pool = c->pool, .compute_lock = c->lock, .batcher = c->b};
    engine_session *s = NULL;
    shimmy_error err;
    c->st = engine_session_new(c->m, &sp, &s, &err);
    if (c->st) return NULL;
    if (c->lora && (c->st = engine_session_set_lora(s, c->lora, &err))) {
        engine_session_free(s);
        return NULL;
    }
    engine_gen_params gp;
    gen_params(c, &gp);
    engine_result r;
    stop_after sa = {3};
    c->st = engine_generate(s, c->prompt, c->n_prompt, &gp, c->cancel_early ? sink_stop : NULL, &sa,
                            &r, &err);
    c->n_out = r.n_generated;
    engine_session_free(s);
    return NULL;
}

static void make_prompts(client *cl, const tok_vocab *v) {
    const char *texts[] = {"Hello",
                           "The quick brown fox jumps over the lazy dog",
                           "In a village by the river there lived an old miller",
                           "1 2 3 4 5",
                           "Once upon a time",
                           "A long time ago in a galaxy far, far away, there was"};
    for (int i = 0; i < N_CLIENTS; i++) {
        tok_buf tb = {0};
        tok_encode_opts o = {.add_special = true};
        shimmy_error err;
        CHECK(tok_encode(v, texts[i], strlen(texts[i]), &o, &tb, &err) == SHIMMY_OK);
        cl[i].n_prompt = tb.n < 40 ? tb.n : 40;
        memcpy(cl[i].prompt, tb.ids, cl[i].n_prompt * sizeof(int32_t));
        tok_buf_free(&tb);
    }
}

/* Adapters for the base of `name` from the shared test data, or NULL when absent. */
static lora_set *open_set(engine_model *m, const char *file, float scale) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "lora/%s", file);
    if (!test_data_path(rel, path, sizeof path)) return NULL;
    engine_adapter_spec spec = {path, scale};
    lora_set *set = NULL;
    shimmy_error err;
    CHECK_MSG(engine_lora_open(m, &spec, 1, &set, &err) == SHIMMY_OK, "%s: %s", file, err.message);
    return set;
}

static void check_model(const char *name, const char *lora_a, const char *lora_b) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    if (!test_data_path(rel, path, sizeof path)) return;
    engine_model *m = NULL;
    shimmy_error err;
    CHECK_MSG(engine_model_open(path, NULL, &m, &err) == SHIMMY_OK, "%s", err.message);
    if (!m) return;
    core_pool *pool = NULL;
    CHECK(core_pool_new(2, &pool, &err) == SHIMMY_OK);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    client alone[N_CLIENTS], batched[N_CLIENTS];
    memset(alone, 0, sizeof alone);
    make_prompts(alone, engine_model_vocab(m));
    /* clients 1 and 4 with one adapter, 2 with another (or the first at another scale) */
    lora_set *sa = lora_a ? open_set(m, lora_a, 1.0f) : NULL;
    lora_set *sb = lora_b ? open_set(m, lora_b, 0.5f) : NULL;
    for (int i = 0; i < N_CLIENTS; i++) {
        alone[i].m = m, alone[i].pool = pool, alone[i].lock = &lock, alone[i].idx = i;
        alone[i].lora = i == 1 || i == 4 ? sa : i == 2 ? sb : NULL;
        run_client(&alone[i]); /* one after another, each with a context of its own */
        CHECK(alone[i].st == SHIMMY_OK && alone[i].n_out == N_GEN);
    }
    engine_batcher *b = NULL;
    engine_batcher_params bp = {
        .n_seq = N_CLIENTS, .n_ctx = 128, .n_chunk = 8, .pool = pool, .compute_lock = &lock};
    CHECK(engine_batcher_new(m, &bp, &b, &err) == SHIMMY_OK);
    pthread_t th[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        batched[i] = alone[i];
        batched[i].b = b;
        batched[i].cancel_early = i == 3; /* one client leaves mid-stream */
        memset(batched[i].out, 0, sizeof batched[i].out);
        pthread_create(&th[i], NULL, run_client, &batched[i]);
    }
    for (int i = 0; i < N_CLIENTS; i++) pthread_join(th[i], NULL);
    engine_batcher_stats bs;
    engine_batcher_get_stats(b, &bs);
    printf("%s: %llu steps, %llu entries, largest step %d sessions, %.1f ms busy\n", name,
           (unsigned long long)bs.steps, (unsigned long long)bs.entries, bs.max_batch, bs.busy_ms);
    CHECK_MSG(bs.max_batch >= 2, "%s: no step held two sessions", name);
    CHECK(bs.attached == 0);
    for (int i = 0; i < N_CLIENTS; i++) {
        CHECK_MSG(batched[i].st == SHIMMY_OK, "%s client %d failed", name, i);
        if (i == 3) {
            CHECK(batched[i].n_out < N_GEN);
            CHECK(memcmp(batched[i].out, alone[i].out, sizeof(int32_t) * 3) == 0);
            continue;
        }
        CHECK_MSG(batched[i].n_out == N_GEN &&
                      memcmp(batched[i].out, alone[i].out, sizeof alone[i].out) == 0,
                  "%s client %d: batched tokens differ from the client alone", name, i);
    }
    /* more sessions than sequences: the extra one runs with a context of its own */
    engine_session *ss[N_CLIENTS + 1];
    engine_session_params sp = {.n_ctx = 128, .pool = pool, .compute_lock = &lock, .batcher = b};
    for (int i = 0; i <= N_CLIENTS; i++)
        CHECK(engine_session_new(m, &sp, &ss[i], &err) == SHIMMY_OK);
    engine_batcher_get_stats(b, &bs);
    CHECK(bs.attached == N_CLIENTS);
    for (int i = 0; i <= N_CLIENTS; i++) engine_session_free(ss[i]);
    engine_batcher_free(b);
    lora_set_free(sa);
    lora_set_free(sb);
    core_pool_free(pool);
    engine_model_close(m);
}

/* Greedy generation of prompt (n) from a session of b (or alone when b is NULL). */
static engine_result gen_once(engine_model *m, engine_batcher *b, core_pool *pool,
                              pthread_mutex_t *lock, const int32_t *prompt, size_t n,
                              int32_t *out) {
    engine_session_params sp = {.n_ctx = 128, .pool = pool, .compute_lock = lock, .batcher = b};
    engine_session *s = NULL;
    shimmy_error err;
    engine_result r = {0};
    CHECK(engine_session_new(m, &sp, &s, &err) == SHIMMY_OK);
    if (!s) return r;
    engine_gen_params gp;
    engine_gen_params_default(&gp);
    gp.max_tokens = 12;
    gp.ignore_eos = true;
    gp.sampling.temperature = 0.0f;
    gp.out_tokens = out;
    gp.out_tokens_cap = 12;
    CHECK_MSG(engine_generate(s, prompt, n, &gp, NULL, NULL, &r, &err) == SHIMMY_OK, "%s",
              err.message);
    engine_session_free(s);
    return r;
}

static void check_prompt_cache(const char *name) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    if (!test_data_path(rel, path, sizeof path)) return;
    engine_model *m = NULL;
    shimmy_error err;
    CHECK_MSG(engine_model_open(path, NULL, &m, &err) == SHIMMY_OK, "%s", err.message);
    if (!m) return;
    core_pool *pool = NULL;
    CHECK(core_pool_new(2, &pool, &err) == SHIMMY_OK);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    const int32_t V = engine_model_get_info(m)->n_vocab;
    int32_t p1[40], p2[52];
    for (int i = 0; i < 52; i++) p2[i] = (int32_t)((i * 7919u + 13u) % (uint32_t)(V - 3)) + 3;
    memcpy(p1, p2, sizeof p1); /* p2 continues p1 */
    int32_t want[12], got[12], tmp[12];
    gen_once(m, NULL, pool, &lock, p2, 52, want);
    for (int budget = 0; budget < 2; budget++) {
        engine_batcher *b = NULL;
        engine_batcher_params bp = {.n_seq = 2,
                                    .n_ctx = 128,
                                    .n_chunk = 8,
                                    .pool = pool,
                                    .compute_lock = &lock,
                                    .n_cache = 2,
                                    .cache_bytes = budget ? 1 : (uint64_t)64 << 20};
        CHECK(engine_batcher_new(m, &bp, &b, &err) == SHIMMY_OK);
        gen_once(m, b, pool, &lock, p1, 40, tmp); /* ends: its cache stays (or is dropped) */
        engine_result r = gen_once(m, b, pool, &lock, p2, 52, got);
        CHECK_MSG(r.n_cached == (budget ? 0 : 40), "%s budget %d: %d cached", name, budget,
                  r.n_cached);
        CHECK_MSG(memcmp(got, want, sizeof want) == 0, "%s budget %d: tokens differ", name, budget);
        engine_batcher_stats bs;
        engine_batcher_get_stats(b, &bs);
        printf("%s cache budget %s: %d cached of 52 prompt tokens, reused %llu, kept caches %d\n",
               name, budget ? "1 byte" : "64 MiB", r.n_cached, (unsigned long long)bs.reused_tokens,
               bs.cached_seqs);
        engine_batcher_free(b);
    }
    core_pool_free(pool);
    engine_model_close(m);
}

int main(void) {
    char buf[1024];
    test_require_data("models/tiny-llama-spm-F16.gguf", buf, sizeof buf);
    check_model("tiny-llama-spm-F16", NULL, NULL);
    check_model("tiny-llama-spm-F32", "lora-tiny-llama-spm-r4.gguf", "peft-tiny-llama-spm-r8-attn");
    check_model("tiny-llama-spm-e256-Q4_K_M", NULL, NULL);
    check_model("tiny-qwen2-Q4_0", "lora-tiny-qwen2-r4.gguf", "lora-tiny-qwen2-r4.gguf");
    check_prompt_cache("tiny-llama-spm-F32");
    check_prompt_cache("tiny-gemma3-F32"); /* sliding-window layers: the ring is copied too */
    return test_finish("engine/batcher");
}
