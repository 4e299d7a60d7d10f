/* Evaluators and the full scan report through the public API. Evaluators: teacher-forced
 * logits are deterministic and agree between one batch and token-by-token steps, all-position
 * logits match the last position's, the F32 and F16 caches agree closely, generation from ids
 * matches shimmy_generate and reports its ids, LoRA adapters change the logits, and every bad
 * input is an error value. Scans: explicit folders only, every fact of an entry, skipped files
 * with reasons, suggestions, roots, and adapters paired by index. */
#include "fixture.h"
#include "shimmy.h"
#include "api_text.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTX 64

static char dir[256], path[512];
static shimmy_model *model;

static double max_diff(const float *a, const float *b, int32_t n) {
    double d = 0;
    for (int32_t i = 0; i < n; i++) {
        double x = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (x > d) d = x;
    }
    return d;
}

static void test_teacher_forcing(void) {
    shimmy_error err;
    shimmy_evaluator *e = NULL, *f = NULL;
    shimmy_evaluator_params p = {.ctx_len = CTX, .n_logits = 8, .threads = 1};
    CHECK_EQ_INT(shimmy_evaluator_new(model, &p, &e, &err), SHIMMY_OK);
    if (!e) return;
    CHECK_EQ_INT(shimmy_evaluator_ctx_len(e), CTX);
    const int32_t n_vocab = shimmy_evaluator_vocab_size(e);
    CHECK_EQ_INT(n_vocab, 512);
    const int32_t toks[6] = {FIXTURE_BOS_ID, 300, 301, 302, 303, 304};
    static float all[6][512], last[512], step[512];
    CHECK_EQ_INT(shimmy_evaluator_eval(e, toks, 6, 0, true, &err), SHIMMY_OK);
    for (int i = 0; i < 6; i++) {
        const float *l = shimmy_evaluator_logits(e, i);
        CHECK(l != NULL);
        if (l) memcpy(all[i], l, sizeof all[i]);
    }
    CHECK(shimmy_evaluator_logits(e, 6) == NULL);
    CHECK(shimmy_evaluator_logits(e, -1) == NULL);
    /* the same batch again (pos 0 discards the cache): the same logits, bit for bit */
    CHECK_EQ_INT(shimmy_evaluator_eval(e, toks, 6, 0, false, &err), SHIMMY_OK);
    memcpy(last, shimmy_evaluator_logits(e, 0), sizeof last);
    CHECK(shimmy_evaluator_logits(e, 1) == NULL);
    CHECK_NEAR(max_diff(last, all[5], n_vocab), 0, 1e-4);
    /* token by token from position 3 on reuses the cached prefix */
    CHECK_EQ_INT(shimmy_evaluator_eval(e, toks, 3, 0, false, &err), SHIMMY_OK);
    for (int i = 3; i < 6; i++) {
        CHECK_EQ_INT(shimmy_evaluator_eval(e, &toks[i], 1, i, false, &err), SHIMMY_OK);
        memcpy(step, shimmy_evaluator_logits(e, 0), sizeof step);
        CHECK_MSG(max_diff(step, all[i], n_vocab) < 1e-3, "position %d: %g", i,
                  max_diff(step, all[i], n_vocab));
    }
    /* an F32 cache gives nearly the same numbers */
    p.kv = SHIMMY_KV_F32;
    CHECK_EQ_INT(shimmy_evaluator_new(model, &p, &f, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_evaluator_eval(f, toks, 6, 0, false, &err), SHIMMY_OK);
    const double d = f ? max_diff(shimmy_evaluator_logits(f, 0), all[5], n_vocab) : 1e9;
    CHECK_MSG(d < 0.05, "f16 vs f32 cache: %g", d);
    shimmy_evaluator_free(f);

    /* errors */
    const int32_t bad[2] = {5, 512};
    CHECK_EQ_INT(shimmy_evaluator_eval(e, bad, 2, 0, false, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "tokens");
    CHECK(shimmy_evaluator_eval(e, toks, 6, 40, false, &err) != SHIMMY_OK); /* beyond the cache */
    CHECK(shimmy_evaluator_eval(e, toks, 6, CTX - 2, false, &err) != SHIMMY_OK);
    CHECK_EQ_INT(shimmy_evaluator_eval(NULL, toks, 1, 0, false, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_evaluator_free(e);
}

static void test_bad_params(void) {
    shimmy_error err;
    shimmy_evaluator *e = (shimmy_evaluator *)1;
    shimmy_evaluator_params p = {.kv = (shimmy_kv_type)7, .threads = 999};
    CHECK_EQ_INT(shimmy_evaluator_new(model, &p, &e, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(e == NULL);
    CHECK_MSG(strstr(err.where, "kv") && strstr(err.where, "threads"), "%s", err.where);
    const shimmy_lora missing = {.path = "/nonexistent/adapter.gguf", .scale = 1};
    shimmy_evaluator_params q = {.ctx_len = CTX, .lora = &missing, .n_lora = 1};
    CHECK(shimmy_evaluator_new(model, &q, &e, &err) != SHIMMY_OK && e == NULL);
    CHECK_MSG(strstr(err.message, "adapter.gguf") || strstr(err.where, "adapter.gguf"), "%s",
              err.message);
    CHECK_EQ_INT(shimmy_evaluator_new(NULL, NULL, &e, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_evaluator_free(NULL);
}

static void test_generate(void) {
    shimmy_error err;
    static test_text a, b;
    const shimmy_gen_options o = {.max_tokens = 12, .ignore_eos = true};
    shimmy_result ra;
    CHECK_EQ_INT(shimmy_generate(model, "the cat", &o, test_collect, &a, &ra, &err), SHIMMY_OK);
    int32_t *prompt = NULL;
    size_t n = 0;
    CHECK_EQ_INT(shimmy_tokenize(shimmy_model_vocab(model), "the cat", 7,
                                 SHIMMY_TOKENIZE_ADD_SPECIAL | SHIMMY_TOKENIZE_PARSE_SPECIAL,
                                 &prompt, &n, &err),
                 SHIMMY_OK);
    shimmy_evaluator *e = NULL;
    shimmy_evaluator_params p = {.ctx_len = CTX, .threads = 1};
    CHECK_EQ_INT(shimmy_evaluator_new(model, &p, &e, &err), SHIMMY_OK);
    int32_t ids[16];
    shimmy_eval_output out = {.ids = ids, .ids_cap = 16};
    CHECK_EQ_INT(shimmy_evaluator_generate(e, prompt, n, &o, test_collect, &b, &out, &err),
                 SHIMMY_OK);
    CHECK_MSG(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0, "'%s' vs '%s'", a.buf, b.buf);
    CHECK_EQ_INT(out.result.completion_tokens, 12);
    CHECK_EQ_INT(out.result.prompt_tokens, (int32_t)n);
    CHECK_EQ_INT(out.result.finish, SHIMMY_FINISH_LENGTH);
    CHECK_EQ_INT(out.result.ctx_len, CTX);
    CHECK(out.ttft_ms > 0);
    /* the ids are what was generated: the prompt's text and theirs is the prompt and the text */
    int32_t all[64];
    memcpy(all, prompt + 1, sizeof *all * (n - 1));
    memcpy(all + n - 1, ids, sizeof ids[0] * 12);
    char *txt = NULL, want[4200];
    size_t len = 0;
    snprintf(want, sizeof want, "the cat%s", b.buf);
    CHECK_EQ_INT(shimmy_detokenize(shimmy_model_vocab(model), all, n - 1 + 12,
                                   SHIMMY_DETOKENIZE_VALID_UTF8, &txt, &len, &err),
                 SHIMMY_OK);
    CHECK_MSG(txt && strcmp(txt, want) == 0, "ids give '%s', want '%s'", txt ? txt : "", want);
    shimmy_free(txt);
    /* the same prompt again reuses its cached prefix */
    CHECK_EQ_INT(shimmy_evaluator_generate(e, prompt, n, &o, NULL, NULL, &out, &err), SHIMMY_OK);
    CHECK(out.cached_tokens > 0);
    /* the context budget of shimmy_generate, with both numbers */
    shimmy_gen_options big = {.max_tokens = CTX};
    CHECK_EQ_INT(shimmy_evaluator_generate(e, prompt, n, &big, NULL, NULL, &out, &err),
                 SHIMMY_ERR_CONTEXT_EXCEEDED);
    CHECK_STR(err.where, "max_tokens");
    CHECK(strstr(err.message, "64") != NULL);
    shimmy_gen_options hot = {.temperature = 11};
    CHECK_EQ_INT(shimmy_evaluator_generate(e, prompt, n, &hot, NULL, NULL, NULL, &err),
                 SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "temperature");
    const int32_t bad = 9999;
    CHECK_EQ_INT(shimmy_evaluator_generate(e, &bad, 1, &o, NULL, NULL, NULL, &err),
                 SHIMMY_ERR_INVALID_ARG);
    CHECK_EQ_INT(shimmy_evaluator_generate(e, prompt, 0, &o, NULL, NULL, NULL, &err),
                 SHIMMY_ERR_INVALID_ARG);
    shimmy_free(prompt);
    /* the evaluator keeps the model alive */
    shimmy_model *extra = shimmy_model_ref(model);
    shimmy_model_unref(extra);
    shimmy_evaluator_free(e);
    CHECK(shimmy_model_weight_bytes(model) > 0);
    CHECK_EQ_INT(shimmy_model_weight_bytes(NULL), 0);
}

/* LoRA on the shared test models: an adapter at scale 1 moves the logits, the same at scale 0
 * does not, one made for another architecture is refused naming it. */
static void test_lora(const char *base, const char *lora, const char *wrong) {
    shimmy_error err;
    shimmy_model *m = NULL;
    shimmy_spec *spec = NULL;
    shimmy_model_config c = SHIMMY_MODEL_CONFIG(.name = "base", .base_path = base, .threads = 1);
    CHECK_EQ_INT(shimmy_spec_from_config(&c, &spec, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_model_load(spec, &m, &err), SHIMMY_OK);
    shimmy_spec_free(spec);
    if (!m) return;
    const int32_t toks[3] = {1, 15043, 29892};
    static float plain[65536];
    const float scales[3] = {0, 0, 1};
    int32_t n_vocab = 0;
    for (int k = 0; k < 3; k++) {
        shimmy_lora l = {.path = lora, .scale = scales[k]};
        shimmy_evaluator_params p = {.ctx_len = 16, .lora = &l, .n_lora = k ? 1 : 0};
        shimmy_evaluator *e = NULL;
        CHECK_MSG(shimmy_evaluator_new(m, &p, &e, &err) == SHIMMY_OK, "%s", err.message);
        if (!e) continue;
        n_vocab = shimmy_evaluator_vocab_size(e);
        int32_t n = n_vocab < 65536 ? 3 : 0;
        for (int i = 0; i < 3; i++) n = toks[i] < n_vocab ? n : 0;
        if (n && shimmy_evaluator_eval(e, toks, 3, 0, false, &err) == SHIMMY_OK) {
            const float *l0 = shimmy_evaluator_logits(e, 0);
            if (k == 0) memcpy(plain, l0, sizeof(float) * (size_t)n_vocab);
            const double d = max_diff(plain, l0, n_vocab);
            CHECK_MSG(k == 2 ? d > 1e-3 : d < 1e-5, "scale %g: %g", (double)scales[k], d);
        }
        shimmy_evaluator_free(e);
    }
    shimmy_lora w = {.path = wrong, .scale = 1};
    shimmy_evaluator_params p = {.ctx_len = 16, .lora = &w, .n_lora = 1};
    shimmy_evaluator *e = (shimmy_evaluator *)1;
    CHECK(shimmy_evaluator_new(m, &p, &e, &err) != SHIMMY_OK && e == NULL);
    CHECK_MSG(strstr(err.message, "qwen2") || strstr(err.where, "qwen2"), "%s", err.message);
    shimmy_model_unref(m);
}

static void test_scan(void) {
    char models[600], skip[700], dirs[700];
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(skip, sizeof skip, "%s/vocab.gguf", models);
    shimmy_error err;
    gguf_writer *w = NULL;
    mkdir(models, 0700);
    if (gguf_writer_new(&w, &err) || fixture_add_tokenizer(w, 300, &err) ||
        gguf_writer_write(w, skip, &err)) {
        gguf_writer_free(w);
        CHECK_MSG(0, "%s", err.message);
        return;
    }
    gguf_writer_free(w);
    char copy[700];
    snprintf(copy, sizeof copy, "%s/tinymodel.gguf", models);
    CHECK(symlink(path, copy) == 0);
    snprintf(dirs, sizeof dirs, "%s", models);
    shimmy_scan_options o = {.dirs = dirs, .no_defaults = true, .ignore_env = true};
    shimmy_model_list *l = NULL;
    CHECK_EQ_INT(shimmy_scan(&o, &l, &err), SHIMMY_OK);
    if (!l) return;
    CHECK_EQ_INT(shimmy_model_list_count(l), 1);
    shimmy_model_entry e;
    CHECK(shimmy_model_list_entry(l, 0, &e));
    CHECK_STR(e.architecture, "llama");
    CHECK_STR(e.path, copy);
    CHECK(e.parts == 1 && e.parameters > 0 && e.size > 0 && e.ctx_len == 256);
    CHECK(e.source && *e.source && e.origin && strstr(e.origin, "models"));
    CHECK(e.quant && *e.quant && e.size_label && *e.size_label && e.template_family);
    CHECK(!shimmy_model_list_entry(l, 1, &e));
    CHECK_EQ_INT(shimmy_model_list_paired(l, 0, 0), SIZE_MAX);
    CHECK_EQ_INT(shimmy_model_list_root_count(l), 1);
    CHECK(strstr(shimmy_model_list_root(l, 0), "models") != NULL);
    CHECK(shimmy_model_list_root(l, 1) == NULL);
    CHECK(shimmy_model_list_files_read(l) >= 2);
    CHECK(shimmy_model_list_skipped_count(l) == 1 &&
          strstr(shimmy_model_list_skipped_reason(l, 0), "vocab-only"));
    const char *close[3];
    char typo[300];
    shimmy_model_list_entry(l, 0, &e);
    snprintf(typo, sizeof typo, "%sx", e.name);
    size_t n = shimmy_model_list_suggestions(l, typo, close, 3);
    CHECK(n == 1 && strcmp(close[0], e.name) == 0);
    CHECK_EQ_INT(shimmy_model_list_suggestions(l, "zzzzzzzzzzzzzzzzzzzzzz", close, 3), 0);
    shimmy_model_list_free(l);
    /* one explicit file, nothing else */
    const char *files[1] = {copy};
    shimmy_scan_options one = {
        .files = files, .n_files = 1, .no_defaults = true, .ignore_env = true};
    CHECK_EQ_INT(shimmy_scan(&one, &l, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_model_list_count(l), 1);
    shimmy_model_list_free(l);
    shimmy_scan_options bad = {.n_files = 2};
    l = (shimmy_model_list *)1;
    CHECK_EQ_INT(shimmy_scan(&bad, &l, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(l == NULL);
    CHECK_EQ_INT(shimmy_model_list_root_count(NULL), 0);
    CHECK_EQ_INT(shimmy_model_list_files_read(NULL), 0);
}

/* Progress reports of a scan: counts never go back, the last report (and only it) is done, and it
 * counts every folder entered, every model file found and every file read. */
typedef struct progress_log {
    shimmy_scan_progress last;
    int calls, done_calls, went_back;
} progress_log;

static void on_progress(void *user, const shimmy_scan_progress *p) {
    progress_log *g = user;
    g->went_back |= p->folders < g->last.folders || p->found < g->last.found ||
                    p->read < g->last.read || g->last.done;
    g->done_calls += p->done;
    g->last = *p;
    g->calls++;
}

static void test_scan_progress(void) {
    char d[600], sub[700], f[800];
    snprintf(d, sizeof d, "%s/progress", dir);
    CHECK(mkdir(d, 0700) == 0);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        snprintf(sub, sizeof sub, "%s/m%02d", d, i);
        snprintf(f, sizeof f, "%s/model-%02d.gguf", sub, i);
        CHECK(mkdir(sub, 0700) == 0 && symlink(path, f) == 0);
    }
    progress_log g = {0};
    shimmy_scan_options o = {.dirs = d,
                             .no_defaults = true,
                             .ignore_env = true,
                             .progress = on_progress,
                             .progress_user = &g};
    shimmy_model_list *l = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_scan(&o, &l, &err), SHIMMY_OK);
    CHECK(g.calls >= 1 && g.done_calls == 1 && g.last.done && !g.went_back);
    CHECK_EQ_INT(g.last.folders, N + 1); /* the folder itself and its N subfolders */
    CHECK_EQ_INT(g.last.found, N);
    CHECK_EQ_INT(g.last.read, N);
    shimmy_model_list_free(l);
}

/* A base and an adapter in one folder are paired; the model's k-th adapter is found by index. */
static void test_paired(const char *base, const char *lora) {
    char d[600], p1[700], p2[700];
    snprintf(d, sizeof d, "%s/pair", dir);
    mkdir(d, 0700);
    snprintf(p1, sizeof p1, "%s/tiny-llama-spm-F32.gguf", d);
    snprintf(p2, sizeof p2, "%s/lora-tiny-llama-spm-r4.gguf", d);
    CHECK(symlink(base, p1) == 0 && symlink(lora, p2) == 0);
    shimmy_scan_options o = {.dirs = d, .no_defaults = true, .ignore_env = true};
    shimmy_model_list *l = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_scan(&o, &l, &err), SHIMMY_OK);
    shimmy_model_entry e;
    CHECK(shimmy_model_list_entry(l, 0, &e) && e.n_adapters == 1);
    size_t k = shimmy_model_list_paired(l, 0, 0);
    shimmy_adapter_info a;
    CHECK(k != SIZE_MAX && shimmy_model_list_adapter(l, k, &a));
    CHECK(k != SIZE_MAX && a.base && strcmp(a.base, e.name) == 0 && strcmp(a.path, p2) == 0);
    CHECK_EQ_INT(shimmy_model_list_paired(l, 0, 1), SIZE_MAX);
    shimmy_model_list_free(l);
}

int main(void) {
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    shimmy_error err;
    model = test_load_fixture(path, 0, &err);
    CHECK_MSG(model != NULL, "loading the fixture: %s", err.message);
    if (!model) return test_finish("api/eval");

    test_teacher_forcing();
    test_bad_params();
    test_generate();
    test_scan();
    test_scan_progress();
    char base[512], lora[512], wrong[512];
    if (test_data_path("models/tiny-llama-spm-F32.gguf", base, sizeof base) &&
        test_data_path("lora/lora-tiny-llama-spm-r4.gguf", lora, sizeof lora) &&
        test_data_path("lora/lora-tiny-qwen2-r4.gguf", wrong, sizeof wrong) &&
        access(base, R_OK) == 0 && access(lora, R_OK) == 0 && access(wrong, R_OK) == 0) {
        test_lora(base, lora, wrong);
        test_paired(base, lora);
    }

    shimmy_model_unref(model);
    test_rm_rf(dir);
    return test_finish("api/eval");
}
