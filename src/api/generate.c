/* Generation with a token callback, on the caller's thread. */
#include "api.h"

typedef struct callback_ctx {
    shimmy_token_fn fn;
    void *user;
} callback_ctx;

static bool callback_sink(void *user, const char *text, size_t len, int32_t token) {
    (void)token;
    callback_ctx *c = user;
    if (!c->fn || len == 0) return true;
    return c->fn(text, len, c->user) == SHIMMY_CONTINUE;
}

shimmy_status api_run_callback(api_job *j, shimmy_token_fn on_token, void *user,
                               shimmy_result *result, shimmy_error *err) {
    callback_ctx c = {on_token, user};
    shimmy_status st = api_job_run(j, callback_sink, &c, err);
    if (result) *result = j->res;
    return st;
}

shimmy_status shimmy_generate(shimmy_model *m, const char *prompt, const shimmy_gen_options *opts,
                              shimmy_token_fn on_token, void *user, shimmy_result *result,
                              shimmy_error *err) {
    if (result) *result = (shimmy_result){0};
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    if (!prompt) return core_error(err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt is NULL");
    api_job j;
    api_job_init(&j, m);
    shimmy_status st = api_job_prepare(&j, prompt, opts, NULL, err);
    if (st) {
        if (result) *result = j.res;
    } else {
        st = api_run_callback(&j, on_token, user, result, err);
    }
    api_job_deinit(&j);
    return st;
}
