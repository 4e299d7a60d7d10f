/* The catalog and listings a server uses: scanning a folder with explicit adapters, lookups by
 * name and path, skipped files with their reasons, adapter facts and descriptions, loading on
 * demand with users counted per reference, unloading, rescans that leave old snapshots alone,
 * and adapters applied to a session (an unchanged set keeps the KV prefix). */
#include "shimmy.h"
#include "api_text.h"
#include "test.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char dir[256], llama[512], qwen[512], lora[512], peft[512];

static void copy_file(const char *from, const char *to) {
    size_t n = 0;
    char *data = test_read_file(from, &n);
    FILE *f = fopen(to, "wb");
    CHECK(data && f);
    if (data && f) CHECK(fwrite(data, 1, n, f) == n);
    if (f) fclose(f);
    free(data);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

static shimmy_catalog *open_catalog(void) {
    const char *adapters[] = {lora};
    shimmy_catalog_options o = {.paths = dir,
                                .no_default_roots = true,
                                .ignore_env = true,
                                .adapter_files = adapters,
                                .n_adapter_files = 1,
                                .ctx_len = 64,
                                .threads = 1};
    shimmy_catalog *c = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_catalog_open(&o, &c, &err), SHIMMY_OK);
    return c;
}

static void test_options(void) {
    shimmy_catalog_options bad = {.ctx_len = -1, .threads = 9999};
    shimmy_catalog *c = (shimmy_catalog *)&bad; /* must be reset to NULL */
    shimmy_error err;
    CHECK_EQ_INT(shimmy_catalog_open(&bad, &c, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(c == NULL);
    CHECK_STR(err.where, "ctx_len,threads");
    CHECK_EQ_INT(shimmy_catalog_open(NULL, NULL, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(shimmy_load_state_name(SHIMMY_LOAD_LOADED), "loaded");
    CHECK_STR(shimmy_load_state_name((shimmy_load_state)42), "unknown");
}

static void test_listing(shimmy_catalog *c, char *llama_name, size_t cap) {
    shimmy_model_list *l = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_catalog_list(c, &l, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_model_list_count(l), 2);
    size_t i = 99, j = 99;
    CHECK(shimmy_model_list_find(l, llama, &i)); /* by path */
    CHECK(i < 2);
    snprintf(llama_name, cap, "%s", shimmy_model_list_name(l, i));
    CHECK(shimmy_model_list_find(l, llama_name, &j) && j == i); /* by name */
    CHECK(!shimmy_model_list_find(l, "no-such-model", &j));
    CHECK(!shimmy_model_list_find(NULL, llama_name, &j));
    CHECK(shimmy_model_list_scan_ms(l) >= 0.0);

    /* the corrupt file is left out, with a reason */
    bool saw_bad = false;
    for (size_t k = 0; k < shimmy_model_list_skipped_count(l); k++) {
        const char *p = shimmy_model_list_skipped_path(l, k);
        if (p && strstr(p, "broken.gguf")) {
            saw_bad = true;
            CHECK(strlen(shimmy_model_list_skipped_reason(l, k)) > 0);
        }
    }
    CHECK(saw_bad);
    CHECK(shimmy_model_list_skipped_path(l, 1000) == NULL);

    /* the explicit adapter, paired with the llama base */
    CHECK_EQ_INT(shimmy_model_list_adapter_count(l), 1);
    shimmy_adapter_info a;
    CHECK(shimmy_model_list_adapter(l, 0, &a));
    CHECK_STR(a.path, lora);
    CHECK_STR(a.format, "gguf");
    CHECK_STR(a.architecture, "llama");
    CHECK_NEAR(a.alpha, 8.0, 1e-6);
    CHECK(a.base && strcmp(a.base, llama_name) == 0);
    CHECK(a.reason != NULL);
    size_t k = 99;
    CHECK(shimmy_model_list_find_adapter(l, lora, &k) && k == 0);
    CHECK(shimmy_model_list_find_adapter(l, a.name, &k) && k == 0);
    CHECK(!shimmy_model_list_find_adapter(l, "nope", &k));
    CHECK(!shimmy_model_list_adapter(l, 1, &a));
    CHECK(a.name == NULL); /* zeroed out of range */
    shimmy_model_list_free(l);
}

static void test_describe(void) {
    shimmy_adapter_desc d;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_adapter_describe(lora, &d, &err), SHIMMY_OK);
    CHECK_EQ_INT(d.rank, 4);
    CHECK_EQ_INT(d.n_targets, 14); /* 7 weights x 2 layers */
    CHECK_EQ_INT(d.bytes, 21728);
    bool q0 = false;
    for (size_t i = 0; i < d.n_targets; i++) q0 |= strcmp(d.targets[i], "blk.0.attn_q.weight") == 0;
    CHECK(q0);
    shimmy_adapter_desc_free(&d);
    CHECK_EQ_INT(shimmy_adapter_describe(peft, &d, &err), SHIMMY_OK);
    CHECK_EQ_INT(d.rank, 4);
    CHECK_EQ_INT(d.n_targets, 7);
    CHECK(d.bytes > 0);
    shimmy_adapter_desc_free(&d);
    CHECK_EQ_INT(shimmy_adapter_describe("/no/such/adapter", &d, &err), SHIMMY_ERR_IO);
    CHECK_STR(err.where, "/no/such/adapter");
    CHECK(d.n_targets == 0 && d.targets == NULL);
    shimmy_adapter_desc_free(NULL);
}

static void test_load_and_unload(shimmy_catalog *c, const char *name) {
    shimmy_error err;
    shimmy_model *m = NULL;
    CHECK_EQ_INT(shimmy_catalog_get(c, "tiny-lama", &m, &err), SHIMMY_ERR_MODEL_NOT_FOUND);
    CHECK(m == NULL);
    CHECK_STR(err.where, "tiny-lama");
    shimmy_load_status ls;
    shimmy_catalog_status(c, name, &ls);
    CHECK_EQ_INT(ls.state, SHIMMY_LOAD_NONE);
    CHECK_EQ_INT(shimmy_catalog_get(c, name, &m, &err), SHIMMY_OK);
    CHECK_STR(shimmy_model_name(m), name);
    CHECK_EQ_INT(shimmy_model_ctx_len(m), 64); /* the catalog's ctx_len */
    shimmy_model *m2 = NULL;
    CHECK_EQ_INT(shimmy_catalog_get(c, llama, &m2, &err), SHIMMY_OK); /* by path: same load */
    CHECK(shimmy_model_same_weights(m, m2));
    shimmy_catalog_status(c, name, &ls);
    CHECK_EQ_INT(ls.state, SHIMMY_LOAD_LOADED);
    CHECK_EQ_INT(ls.users, 2);
    CHECK(ls.bytes > 0);
    CHECK_STR(ls.name, name);
    shimmy_load_status all[4];
    CHECK_EQ_INT(shimmy_catalog_statuses(c, all, 4), 1);
    CHECK_EQ_INT(shimmy_catalog_statuses(c, NULL, 0), 1);
    CHECK_STR(all[0].name, name);
    shimmy_model_unref(m2);
    shimmy_catalog_status(c, name, &ls);
    CHECK_EQ_INT(ls.users, 1);
    CHECK_EQ_INT(shimmy_catalog_unload(c, name, &err), SHIMMY_OK);
    shimmy_catalog_status(c, name, &ls);
    CHECK(ls.state != SHIMMY_LOAD_LOADED);
    CHECK_EQ_INT(shimmy_catalog_unload(c, name, &err), SHIMMY_ERR_NOT_FOUND);
    /* the caller's reference outlives the unload */
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_text(m, "Hello", 5, &p, &err), SHIMMY_OK);
    CHECK(shimmy_prompt_token_count(p) > 0);
    shimmy_prompt_free(p);
    shimmy_model_unref(m);
}

static void test_rescan(shimmy_catalog *c) {
    shimmy_model_list *before = NULL, *after = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_catalog_list(c, &before, &err), SHIMMY_OK);
    char extra[600];
    snprintf(extra, sizeof extra, "%s/extra-copy.gguf", dir);
    copy_file(qwen, extra);
    CHECK_EQ_INT(shimmy_catalog_rescan(c, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_catalog_list(c, &after, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_model_list_count(before), 2); /* a snapshot */
    CHECK(shimmy_model_list_find(after, extra, NULL) ||
          shimmy_model_list_skipped_count(after) > shimmy_model_list_skipped_count(before));
    shimmy_model_list_free(before);
    shimmy_model_list_free(after);
    CHECK_EQ_INT(shimmy_catalog_rescan(NULL, &err), SHIMMY_ERR_INVALID_ARG);
}

static void test_session_adapters(shimmy_catalog *c, const char *name) {
    shimmy_error err;
    shimmy_model *m = NULL, *q = NULL;
    shimmy_model_list *l = NULL;
    CHECK_EQ_INT(shimmy_catalog_get(c, name, &m, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_catalog_list(c, &l, &err), SHIMMY_OK);
    size_t qi = 0;
    CHECK(shimmy_model_list_find(l, qwen, &qi));
    CHECK_EQ_INT(shimmy_catalog_get(c, shimmy_model_list_name(l, qi), &q, &err), SHIMMY_OK);
    shimmy_model_list_free(l);
    if (!m || !q) return;
    shimmy_adapter *ad = NULL, *bad = NULL;
    CHECK_EQ_INT(shimmy_adapter_open(m, lora, &ad, &err), SHIMMY_OK);
    CHECK_STR(shimmy_adapter_path(ad), lora);
    CHECK_EQ_INT(shimmy_adapter_check(ad, m, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_adapter_check(ad, q, &err), SHIMMY_ERR_ADAPTER); /* another model */
    CHECK_EQ_INT(shimmy_adapter_open(q, lora, &bad, &err), SHIMMY_ERR_ADAPTER);
    CHECK(bad == NULL);

    shimmy_threadpool *pool = NULL;
    CHECK_EQ_INT(shimmy_threadpool_new(1, &pool, &err), SHIMMY_OK);
    shimmy_session *s = NULL;
    shimmy_session_options so = {.pool = pool};
    CHECK_EQ_INT(shimmy_session_new(m, &so, &s, &err), SHIMMY_OK);
    shimmy_prompt *p = NULL;
    CHECK_EQ_INT(shimmy_prompt_from_text(m, "Once upon a time", 16, &p, &err), SHIMMY_OK);
    shimmy_gen_options o = {.max_tokens = 12, .ignore_eos = true};
    shimmy_session_request req = {.options = &o};
    shimmy_session_result r;
    test_text plain = {0}, with = {0}, again = {0};
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, test_collect, &plain, &r, &err), SHIMMY_OK);
    float one = 1.0f, big = 1000.0f;
    CHECK_EQ_INT(shimmy_session_set_adapters(s, &ad, &one, 1, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, test_collect, &with, &r, &err), SHIMMY_OK);
    CHECK_EQ_INT(r.cached_tokens, 0); /* other weights: the prefix was dropped */
    CHECK(strcmp(plain.buf, with.buf) != 0);
    CHECK_EQ_INT(shimmy_session_set_adapters(s, &ad, &one, 1, &err), SHIMMY_OK); /* same set */
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, test_collect, &again, &r, &err), SHIMMY_OK);
    CHECK(r.cached_tokens > 0);
    CHECK_STR(again.buf, with.buf);
    CHECK_EQ_INT(shimmy_session_set_adapters(s, &ad, &big, 1, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "scales");
    shimmy_adapter *nine[9] = {ad, ad, ad, ad, ad, ad, ad, ad, ad};
    float scales[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_EQ_INT(shimmy_session_set_adapters(s, nine, scales, 9, &err), SHIMMY_ERR_INVALID_ARG);
    /* after a failure the session has no adapters: the plain text again */
    test_text back = {0};
    CHECK_EQ_INT(shimmy_session_generate(s, p, &req, test_collect, &back, &r, &err), SHIMMY_OK);
    CHECK_STR(back.buf, plain.buf);
    shimmy_prompt_free(p);
    shimmy_session_free(s);
    shimmy_threadpool_free(pool);
    shimmy_adapter_unref(ad);
    shimmy_model_unref(q);
    shimmy_model_unref(m);
}

int main(void) {
    char src[512];
    if (!test_data_path("models/tiny-llama-spm-F32.gguf", src, sizeof src) ||
        access(src, R_OK) != 0)
        test_skip("test data not available");
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    snprintf(llama, sizeof llama, "%s/tiny-llama-spm-F32.gguf", dir);
    snprintf(qwen, sizeof qwen, "%s/tiny-qwen2-Q4_0.gguf", dir);
    copy_file(src, llama);
    CHECK(test_data_path("models/tiny-qwen2-Q4_0.gguf", src, sizeof src) != NULL);
    copy_file(src, qwen);
    CHECK(test_data_path("lora/lora-tiny-llama-spm-r4.gguf", lora, sizeof lora) != NULL);
    CHECK(test_data_path("lora/peft-tiny-llama-spm-r4", peft, sizeof peft) != NULL);
    char broken[600];
    snprintf(broken, sizeof broken, "%s/broken.gguf", dir);
    write_text(broken, "GGUF but not really a model file");

    test_options();
    test_describe();
    shimmy_catalog *c = open_catalog();
    if (c) {
        char name[256];
        test_listing(c, name, sizeof name);
        test_load_and_unload(c, name);
        test_session_adapters(c, name);
        test_rescan(c);
    }
    shimmy_catalog_free(c);
    shimmy_catalog_free(NULL);
    test_rm_rf(dir);
    return test_finish("api/catalog");
}
