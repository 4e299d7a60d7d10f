/* Interpreter semantics, case by case: tests/chat/jinja_cases.json holds small templates with the
 * output Jinja2 gives in the environment of expected.json (checked against Jinja2 itself by
 * verify_jinja_cases.py), or `error` where Jinja2 refuses them; whitespace_cases.json holds 400
 * random mixes of text and whitespace-control markers rendered by Jinja2
 * (gen_whitespace_cases.py); expression_cases.json 600 random expressions rendered by Jinja2
 * (gen_expression_cases.py). */
#include "chat/chat.h"
#include "test.h"

static void run_file(const char *name) {
    const char *src = getenv("SHIMMY_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/chat/%s", src ? src : ".", name);
    json_error_t jerr;
    json_t *cases = json_load_file(path, 0, &jerr);
    CHECK_MSG(cases != NULL, "cannot load %s: %s", path, jerr.text);
    if (!cases) return;
    size_t i, n_ok = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "template"));
        json_t *vars = json_object_get(c, "vars");
        json_t *extra = vars ? json_deep_copy(vars) : json_object();
        json_t *empty = json_array();
        json_t *msgs = json_object_get(extra, "messages");
        json_t *agp = json_object_get(extra, "add_generation_prompt");
        json_t *bos = json_object_get(extra, "bos_token");
        chat_render_params p = {
            .messages = msgs ? msgs : empty,
            .extra = extra,
            .add_generation_prompt = json_is_true(agp),
            .bos_token = json_string_value(bos),
            .fixed_date = "2024-07-26",
            .max_steps = 200000,
        };
        chat_template *t = NULL;
        chat_output out = {0};
        shimmy_error err;
        shimmy_status st = chat_template_new(text, &t, &err);
        if (st == SHIMMY_OK) st = chat_render(t, &p, &out, &err);
        json_t *want = json_object_get(c, "expect");
        bool ok;
        if (want) {
            const char *w = json_string_value(want);
            ok = st == SHIMMY_OK && out.len == strlen(w) && memcmp(out.text, w, out.len) == 0;
            if (!ok)
                fprintf(stderr, "case %zu %s\n  want %s\n  got  %s\n", i, text, w,
                        st == SHIMMY_OK ? out.text : err.message);
        } else {
            ok = st == SHIMMY_ERR_TEMPLATE && err.message[0];
            if (!ok)
                fprintf(stderr, "case %zu %s: expected a template error, got status %d (%s)\n", i,
                        text, (int)st, st == SHIMMY_OK ? out.text : err.message);
        }
        CHECK(ok);
        n_ok += ok;
        chat_output_free(&out);
        chat_template_free(t);
        json_decref(extra);
        json_decref(empty);
    }
    printf("%s: %zu/%zu\n", name, n_ok, json_array_size(cases));
    json_decref(cases);
}

int main(void) {
    run_file("jinja_cases.json");
    run_file("whitespace_cases.json");
    run_file("expression_cases.json");
    return test_finish("chat/jinja");
}
