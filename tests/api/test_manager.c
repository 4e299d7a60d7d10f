/* The public manager: models cached by spec name, shared references that outlive eviction and
 * the manager itself, weak references that fail cleanly after eviction, LRU by max_models,
 * concurrent first use loading once; discovery of fixture files. */
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static char dir[256], path_a[512], path_b[512];

static shimmy_status add(shimmy_manager *mgr, const char *name, const char *path) {
    shimmy_spec *spec = NULL;
    shimmy_error err;
    shimmy_model_config c =
        SHIMMY_MODEL_CONFIG(.name = name, .base_path = path, .ctx_len = 64, .threads = 1);
    shimmy_status st = shimmy_spec_from_config(&c, &spec, &err);
    if (!st) st = shimmy_manager_add(mgr, spec, &err);
    shimmy_spec_free(spec);
    return st;
}

/* One greedy token: the model is usable. */
static bool usable(shimmy_model *m) {
    shimmy_result r;
    shimmy_gen_options o = {.max_tokens = 2, .ignore_eos = true};
    return shimmy_generate(m, "the", &o, NULL, NULL, &r, NULL) == SHIMMY_OK &&
           r.completion_tokens == 2;
}

static void test_cache_and_weak(void) {
    shimmy_manager *mgr = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_manager_new(NULL, &mgr, &err), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "a", path_a), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "b", path_b), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "a-again", path_a), SHIMMY_OK); /* same base, another spec */
    CHECK_EQ_INT(add(mgr, "a", path_b), SHIMMY_ERR_INVALID_ARG);

    shimmy_model *m = (shimmy_model *)1;
    CHECK_EQ_INT(shimmy_manager_get(mgr, "nope", &m, &err), SHIMMY_ERR_MODEL_NOT_FOUND);
    CHECK(m == NULL);
    CHECK_STR(err.where, "nope");
    CHECK(strstr(err.message, "'nope'") && strstr(err.message, "'a-again'"));
    shimmy_weak *w = (shimmy_weak *)1;
    CHECK_EQ_INT(shimmy_manager_weak(mgr, "a", &w, &err), SHIMMY_ERR_NOT_FOUND); /* not loaded */
    CHECK(w == NULL);
    CHECK_EQ_INT(shimmy_manager_loaded_count(mgr), 0);

    shimmy_model *m1 = NULL, *m2 = NULL, *m3 = NULL;
    CHECK_EQ_INT(shimmy_manager_get(mgr, "a", &m1, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_get(mgr, "a", &m2, &err), SHIMMY_OK);
    CHECK(m1 != NULL && m1 == m2); /* cached */
    CHECK_EQ_INT(shimmy_manager_get(mgr, "a-again", &m3, &err), SHIMMY_OK);
    CHECK(m3 != m1);
    CHECK_STR(shimmy_model_name(m3), "a-again");
    CHECK_EQ_INT(shimmy_manager_loaded_count(mgr), 2);

    CHECK_EQ_INT(shimmy_manager_weak(mgr, "a", &w, &err), SHIMMY_OK);
    shimmy_model *locked = NULL;
    CHECK_EQ_INT(shimmy_weak_lock(w, &locked, &err), SHIMMY_OK);
    CHECK(locked == m1);
    shimmy_model_unref(locked);

    CHECK_EQ_INT(shimmy_manager_evict(mgr, "a", &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_evict(mgr, "a", &err), SHIMMY_ERR_NOT_FOUND);
    CHECK_STR(err.where, "a");
    locked = (shimmy_model *)1;
    CHECK_EQ_INT(shimmy_weak_lock(w, &locked, &err), SHIMMY_ERR_NOT_FOUND);
    CHECK(locked == NULL);
    CHECK_STR(err.where, "a");
    CHECK(strstr(err.message, "evicted") != NULL);
    /* strong references outlive eviction; the other spec on the same file is unaffected */
    CHECK(usable(m1));
    CHECK(usable(m3));
    shimmy_model_unref(m1);
    shimmy_model_unref(m2);

    /* loaded again: a new instance, and the old weak reference still refuses */
    CHECK_EQ_INT(shimmy_manager_get(mgr, "a", &m1, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_weak_lock(w, &locked, &err), SHIMMY_ERR_NOT_FOUND);
    shimmy_weak_free(w);

    /* a weak reference and a model both outlive the manager */
    CHECK_EQ_INT(shimmy_manager_weak(mgr, "a", &w, &err), SHIMMY_OK);
    shimmy_manager_free(mgr);
    CHECK_EQ_INT(shimmy_weak_lock(w, &locked, &err), SHIMMY_ERR_NOT_FOUND);
    shimmy_weak_free(w);
    CHECK(usable(m1));
    shimmy_model_unref(m1);
    shimmy_model_unref(m3);
}

static void test_lru(void) {
    shimmy_manager *mgr = NULL;
    shimmy_error err;
    shimmy_manager_options o = {.max_models = 1};
    CHECK_EQ_INT(shimmy_manager_new(&o, &mgr, &err), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "a", path_a), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "b", path_b), SHIMMY_OK);
    shimmy_model *a = NULL, *b = NULL;
    shimmy_weak *wa = NULL;
    CHECK_EQ_INT(shimmy_manager_get(mgr, "a", &a, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_weak(mgr, "a", &wa, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_get(mgr, "b", &b, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_loaded_count(mgr), 1);
    shimmy_model *locked = NULL;
    CHECK_EQ_INT(shimmy_weak_lock(wa, &locked, &err), SHIMMY_ERR_NOT_FOUND);
    CHECK(usable(a)); /* evicted from the cache, still alive for its holder */
    shimmy_weak_free(wa);
    shimmy_model_unref(a);
    shimmy_model_unref(b);
    shimmy_manager_free(mgr);
}

static void test_byte_budget(void) {
    struct stat sb;
    CHECK(stat(path_a, &sb) == 0);
    /* room for one model's weights, not two */
    shimmy_manager_options o = {.max_loaded_bytes = (uint64_t)sb.st_size * 3 / 2};
    shimmy_manager *mgr = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_manager_new(&o, &mgr, &err), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "a", path_a), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "a-again", path_a), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "b", path_b), SHIMMY_OK);
    shimmy_model *m[3] = {0};
    CHECK_EQ_INT(shimmy_manager_get(mgr, "a", &m[0], &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_get(mgr, "a-again", &m[1], &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_loaded_count(mgr), 2); /* one file, counted once */
    CHECK_EQ_INT(shimmy_manager_get(mgr, "b", &m[2], &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_manager_loaded_count(mgr), 1); /* both users of alpha.gguf went */
    shimmy_weak *w = NULL;
    CHECK_EQ_INT(shimmy_manager_weak(mgr, "b", &w, &err), SHIMMY_OK);
    shimmy_weak_free(w);
    CHECK_EQ_INT(shimmy_manager_weak(mgr, "a", &w, &err), SHIMMY_ERR_NOT_FOUND);
    for (int i = 0; i < 3; i++) {
        CHECK(usable(m[i]));
        shimmy_model_unref(m[i]);
    }
    shimmy_manager_free(mgr);
}

typedef struct getter {
    shimmy_manager *mgr;
    shimmy_model *m;
    shimmy_status st;
} getter;

static void *get_thread(void *arg) {
    getter *g = arg;
    g->st = shimmy_manager_get(g->mgr, "b", &g->m, NULL);
    return NULL;
}

static void test_concurrent_first_use(void) {
    shimmy_manager *mgr = NULL;
    CHECK_EQ_INT(shimmy_manager_new(NULL, &mgr, NULL), SHIMMY_OK);
    CHECK_EQ_INT(add(mgr, "b", path_b), SHIMMY_OK);
    getter g[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        g[i] = (getter){.mgr = mgr};
        pthread_create(&t[i], NULL, get_thread, &g[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(g[i].st, SHIMMY_OK);
        CHECK(g[i].m == g[0].m);
        shimmy_model_unref(g[i].m);
    }
    CHECK_EQ_INT(shimmy_manager_loaded_count(mgr), 1);
    shimmy_manager_free(mgr);
}

static void test_discover(void) {
    shimmy_model_list *l = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_discover(dir, &l, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_model_list_count(l), 2);
    CHECK_STR(shimmy_model_list_name(l, 0), "alpha");
    CHECK_STR(shimmy_model_list_name(l, 1), "beta");
    CHECK_STR(shimmy_model_list_path(l, 0), path_a);
    CHECK_STR(shimmy_model_list_architecture(l, 1), "llama");
    CHECK(shimmy_model_list_size(l, 0) > 0);
    CHECK_EQ_INT(shimmy_model_list_ctx_len(l, 0), 256);
    CHECK(shimmy_model_list_quant(l, 0) != NULL);
    CHECK(shimmy_model_list_template(l, 0) != NULL);
    CHECK(shimmy_model_list_name(l, 2) == NULL);
    CHECK_EQ_INT(shimmy_model_list_size(l, 2), 0);
    CHECK(shimmy_model_list_spec(l, 2) == NULL);
    shimmy_spec_builder *b = shimmy_model_list_spec(l, 1);
    shimmy_spec *spec = NULL;
    CHECK_EQ_INT(shimmy_spec_build(b, &spec, &err), SHIMMY_OK);
    CHECK_STR(shimmy_spec_name(spec), "beta");
    shimmy_spec_free(spec);
    shimmy_spec_builder_free(b);
    shimmy_model_list_free(l);

    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    CHECK_EQ_INT(shimmy_discover(missing, &l, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_model_list_count(l), 0);
    shimmy_model_list_free(l);
    shimmy_model_list_free(NULL);
    CHECK_EQ_INT(shimmy_model_list_count(NULL), 0);
}

int main(void) {
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    snprintf(path_a, sizeof path_a, "%s/alpha.gguf", dir);
    snprintf(path_b, sizeof path_b, "%s/beta.gguf", dir);
    fixture_params p = fixture_params_default();
    shimmy_error err;
    if (fixture_write_llama(path_a, &p, &err)) test_skip(err.message);
    p.seed = 2;
    if (fixture_write_llama(path_b, &p, &err)) test_skip(err.message);
    test_cache_and_weak();
    test_lru();
    test_byte_budget();
    test_concurrent_first_use();
    test_discover();
    test_rm_rf(dir);
    return test_finish("api/manager");
}
