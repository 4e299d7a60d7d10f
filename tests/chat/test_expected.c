/* Every case of templates/expected.json (popular models' own templates rendered by Jinja2 with
 * trim_blocks/lstrip_blocks) reproduced byte for byte, or refused where the reference refused;
 * then the same for tests/chat/tool_cases.json: those templates with tools, tool calls and tool
 * results, rendered by Jinja2 in the same environment (gen_tool_cases.py). */
#include "chat/chat.h"
#include "test.h"

/* The message a template raised itself (raise_exception) must come through verbatim; other
 * failures are Python's wording (TypeError, UndefinedError), where only the refusal counts. */
static const char *raised_text(const char *e) {
    static const char *const raised[] = {"TemplateError: ", "Exception: "};
    for (size_t i = 0; i < sizeof raised / sizeof raised[0]; i++)
        if (strncmp(e, raised[i], strlen(raised[i])) == 0) return e + strlen(raised[i]);
    return "";
}

static void show_diff(const char *want, const char *got) {
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    fprintf(stderr, "  first difference at byte %zu\n  want: %.80s\n  got:  %.80s\n", i, want + i,
            got + i);
}

static void run_fixture(const char *path, const char *dir) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "cannot parse %s: %s", path, jerr.text);
    if (!root) return;
    printf("%s\n", path);
    json_t *convs = json_object_get(root, "conversations");
    json_t *tmpls = json_object_get(root, "templates");
    size_t ti, total = 0, passed = 0;
    json_t *t;
    json_array_foreach(tmpls, ti, t) {
        const char *file = json_string_value(json_object_get(t, "file"));
        char tpath[2048];
        snprintf(tpath, sizeof tpath, "%s/%s", dir, file);
        char *src = test_read_file(tpath, NULL);
        CHECK_MSG(src != NULL, "cannot read %s", tpath);
        if (!src) continue;
        chat_template *tmpl = NULL;
        shimmy_error err;
        shimmy_status st = chat_template_new(src, &tmpl, &err);
        CHECK_MSG(st == SHIMMY_OK, "%s: %s", file, err.message);
        free(src);
        size_t ci, n_ok = 0, n = 0;
        json_t *c;
        json_array_foreach(json_object_get(t, "cases"), ci, c) {
            n++;
            if (!tmpl) continue;
            const char *conv = json_string_value(json_object_get(c, "conversation"));
            json_t *cv = json_object_get(convs, conv);
            chat_render_params p = {
                .messages = json_is_object(cv) ? json_object_get(cv, "messages") : cv,
                .tools = json_is_object(cv) ? json_object_get(cv, "tools") : NULL,
                .add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt")),
                .bos_token = json_string_value(json_object_get(t, "bos_token")),
                .eos_token = json_string_value(json_object_get(t, "eos_token")),
                .fixed_date = "2024-07-26",
            };
            chat_output out;
            st = chat_render(tmpl, &p, &out, &err);
            json_t *want = json_object_get(c, "output");
            bool ok;
            if (want) {
                const char *w = json_string_value(want);
                ok = st == SHIMMY_OK && out.len == strlen(w) && memcmp(out.text, w, out.len) == 0;
                if (!ok && st != SHIMMY_OK)
                    fprintf(stderr, "%s [%s, gen=%d]: error: %s\n", file, conv,
                            p.add_generation_prompt, err.message);
                else if (!ok) {
                    fprintf(stderr, "%s [%s, gen=%d]: output differs\n", file, conv,
                            p.add_generation_prompt);
                    show_diff(w, out.text);
                }
            } else {
                const char *e = json_string_value(json_object_get(c, "error"));
                ok = st == SHIMMY_ERR_TEMPLATE && strstr(err.message, raised_text(e)) != NULL;
                if (!ok)
                    fprintf(stderr, "%s [%s]: expected error '%s', got status %d (%s)\n", file,
                            conv, e, (int)st, st ? err.message : "rendered");
            }
            if (st == SHIMMY_OK) chat_output_free(&out);
            CHECK(ok);
            n_ok += ok;
        }
        printf("%-55s %zu/%zu\n", file, n_ok, n);
        total += n;
        passed += n_ok;
        chat_template_free(tmpl);
    }
    printf("all templates: %zu/%zu cases\n", passed, total);
    json_decref(root);
}

int main(void) {
    char path[1024], dir[1024], tools[1024];
    test_require_data("templates/expected.json", path, sizeof path);
    test_require_data("templates", dir, sizeof dir);
    run_fixture(path, dir);
    const char *src = getenv("SHIMMY_SRC");
    snprintf(tools, sizeof tools, "%s/tests/chat/tool_cases.json", src ? src : ".");
    run_fixture(tools, dir);
    return test_finish("chat/expected");
}
