/* Chat: messages rendered with the model's template (or the spec's built-in family), tokenized
 * with message content as literal text, the family's end of turn added to the stop strings. */
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shimmy_status api_messages_json(const shimmy_message *msgs, size_t n, json_t **out,
                                shimmy_error *err) {
    json_t *arr = json_array();
    if (!arr) return core_error(err, SHIMMY_ERR_NOMEM, "messages", "out of memory");
    char field[48];
    for (size_t i = 0; i < n; i++) {
        const char *bad = !msgs[i].role ? "role" : !msgs[i].content ? "content" : NULL;
        if (bad) {
            json_decref(arr);
            snprintf(field, sizeof field, "messages[%zu].%s", i, bad);
            return core_error(err, SHIMMY_ERR_INVALID_ARG, field, "%s is NULL", field);
        }
        json_t *o = json_pack("{s:s, s:s}", "role", msgs[i].role, "content", msgs[i].content);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            snprintf(field, sizeof field, "messages[%zu]", i);
            /* jansson refuses strings that are not valid UTF-8 */
            return core_error(err, SHIMMY_ERR_INVALID_ARG, field,
                              "%s is not valid UTF-8 text (or out of memory)", field);
        }
    }
    *out = arr;
    return SHIMMY_OK;
}

/* Renders and tokenizes into j->prompt; *eot is the family's end-of-turn text (static). */
static shimmy_status render(api_job *j, const json_t *messages, const char **eot,
                            shimmy_error *err) {
    engine_chat_params cp = {.messages = messages, .template_family = j->m->spec.f.template_name};
    return engine_chat_prompt(j->m->em, &cp, &j->prompt, eot, err);
}

shimmy_status shimmy_chat(shimmy_model *m, const shimmy_message *messages, size_t n_messages,
                          const shimmy_gen_options *opts, shimmy_token_fn on_token, void *user,
                          shimmy_result *result, shimmy_error *err) {
    if (result) *result = (shimmy_result){0};
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    if (!messages || n_messages == 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "messages", "no messages given");
    json_t *msgs = NULL;
    shimmy_status st = api_messages_json(messages, n_messages, &msgs, err);
    if (st) return st;
    api_job j;
    api_job_init(&j, m);
    const char *eot = NULL;
    st = render(&j, msgs, &eot, err);
    json_decref(msgs);
    if (st == SHIMMY_ERR_TEMPLATE && err) snprintf(err->where, sizeof err->where, "messages");
    if (!st) st = api_job_prepare(&j, NULL, opts, eot, err);
    if (!st)
        st = api_run_callback(&j, on_token, user, result, err);
    else if (result)
        *result = j.res;
    api_job_deinit(&j);
    return st;
}
