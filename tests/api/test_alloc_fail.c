/* Allocation failures (core_alloc_fail_after): for n = 0, 1, 2, ... the n-th allocation of a
 * load + chat + session sequence fails. Each failure must come back as SHIMMY_ERR_NOMEM with a
 * message (or be absorbed: the sequence still succeeds), never a crash, another status or a leak
 * (the ASan copy of this test checks for leaks after every step). The walk covers every
 * allocation of the sequence when there are at most WALK_MAX, else an even spread of them. */
#include "api_text.h"
#include "core/core.h"
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SHIMMY_TEST_SANITIZED
#include <sanitizer/lsan_interface.h>
#define LEAKED() (__lsan_do_recoverable_leak_check() != 0)
#else
#define LEAKED() false
#endif

#define WALK_MAX 4000

/* spec -> model load (GGUF, weights, tokenizer, template) -> chat (template rendering, tokenizer,
 * samplers, generation) -> prompt + session + generation -> free. */
static shimmy_status sequence(const char *path, shimmy_error *err) {
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_prompt *p = NULL;
    shimmy_session *s = NULL;
    shimmy_model_config cfg =
        SHIMMY_MODEL_CONFIG(.name = "fixture", .base_path = path, .ctx_len = 64, .threads = 1);
    shimmy_status st = shimmy_spec_from_config(&cfg, &spec, err);
    if (!st) st = shimmy_model_load(spec, &m, err);
    shimmy_gen_options o = {
        .max_tokens = 3, .temperature = 0.7f, .seed = 1, .top_k = 5, .repeat_penalty = 1.1f};
    shimmy_result r;
    shimmy_message msgs[] = {{"system", "Be brief."}, {"user", "Hello there"}};
    if (!st) st = shimmy_chat(m, msgs, 2, &o, NULL, NULL, &r, err);
    if (!st)
        st = shimmy_prompt_from_chat_json(
            m, "[{\"role\":\"user\",\"content\":\"caf\\u00e9 \\ud83d\\ude00\"}]", NULL, &p, err);
    if (!st) st = shimmy_session_new(m, NULL, &s, err);
    test_text t = {.len = 0};
    shimmy_logit_bias bias[] = {{.token = 5, .bias = -3}};
    shimmy_session_request req = {.options = &o, .logit_bias = bias, .n_logit_bias = 1};
    shimmy_session_result sr;
    if (!st) st = shimmy_session_generate(s, p, &req, test_collect, &t, &sr, err);
    shimmy_session_free(s);
    shimmy_prompt_free(p);
    shimmy_model_unref(m);
    shimmy_spec_free(spec);
    return st;
}

int main(void) {
    char dir[512], path[700];
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    shimmy_error err;
    /* Once without failures: it must work, and it says how many allocations there are. */
    long before = core_alloc_count();
    CHECK_MSG(sequence(path, &err) == SHIMMY_OK, "%s", err.message);
    long total = core_alloc_count() - before;
    CHECK(total > 100); /* the library allocates through core_*: the hook is in the path */
    long step = total <= WALK_MAX ? 1 : total / WALK_MAX;
    int nomem = 0, absorbed = 0, wrong = 0, leaks = 0;
    for (long n = 0; n < total; n += step) {
        core_alloc_fail_after(n);
        memset(&err, 0, sizeof err);
        shimmy_status st = sequence(path, &err);
        bool fired = core_alloc_fail_fired();
        core_alloc_fail_after(-1);
        if (!fired) break; /* the sequence allocates less this time: done */
        if (st == SHIMMY_OK) {
            if (getenv("SHIMMY_TEST_VERBOSE")) printf("allocation %ld failed: absorbed\n", n);
            absorbed++;
        } else if (st == SHIMMY_ERR_NOMEM && err.message[0]) {
            nomem++;
        } else if (wrong++ < 20) {
            CHECK_MSG(false, "allocation %ld failed: %s (%s)", n, shimmy_status_name(st),
                      err.message);
        }
        if (LEAKED() && leaks++ < 5) CHECK_MSG(false, "allocation %ld failed: leak (above)", n);
    }
    printf("alloc_fail: %ld allocations, step %ld: %d out of memory, %d absorbed, %d other "
           "statuses, %d leaking\n",
           total, step, nomem, absorbed, wrong, leaks);
    CHECK(wrong == 0);
    CHECK(nomem > 0);
    test_rm_rf(dir);
    return test_finish("api/alloc_fail");
}
