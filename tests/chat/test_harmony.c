/* OpenAI's harmony chat format (gpt-oss). The publisher's template (gpt-oss.jinja) renders every
 * case of gpt_oss_cases.json byte for byte as Jinja2 in Hugging Face's environment does
 * (gen_gpt_oss_cases.py): tools as TypeScript, tool calls and results, thinking, the
 * reasoning_effort / model_identity variables, and the template's own refusals. The built-in
 * "harmony" family renders the tool-less conversations exactly as the template does, and is the
 * one chosen for a template-less gpt-oss file or a harmony vocabulary. */
#include "chat/chat.h"
#include "test.h"

static bool has_channel(const char *text, void *user) {
    (void)user;
    return strcmp(text, "<|channel|>") == 0;
}

static shimmy_status render(const chat_template *t, const json_t *conv, bool gen, const char *date,
                            chat_output *out, shimmy_error *err) {
    chat_render_params p = {.messages = json_object_get(conv, "messages"),
                            .tools = json_object_get(conv, "tools"),
                            .extra = json_object_get(conv, "vars"),
                            .add_generation_prompt = gen,
                            .fixed_date = date};
    return chat_render(t, &p, out, err);
}

/* Conversations the built-in renders as the template does: no tools, no tool messages. */
static bool plain(const json_t *conv) {
    if (json_object_get(conv, "tools")) return false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(conv, "messages"), i, m) {
        if (json_object_get(m, "tool_calls")) return false;
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && strcmp(role, "tool") == 0) return false;
    }
    return true;
}

int main(void) {
    const char *src_dir = getenv("SHIMMY_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/chat/gpt_oss_cases.json", src_dir ? src_dir : ".");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "cannot parse %s: %s", path, jerr.text);
    if (!root) return test_finish("chat/harmony");
    snprintf(path, sizeof path, "%s/tests/chat/gpt-oss.jinja", src_dir ? src_dir : ".");
    char *src = test_read_file(path, NULL);
    CHECK_MSG(src != NULL, "cannot read %s", path);
    shimmy_error err;
    chat_template *real = NULL, *builtin = NULL;
    CHECK(src && chat_template_new(src, &real, &err) == SHIMMY_OK);
    CHECK(chat_template_new(chat_builtin_get("harmony"), &builtin, &err) == SHIMMY_OK);
    CHECK_STR(chat_family_of(src), "harmony");
    CHECK_STR(chat_family_eot("harmony"), "<|return|>");
    CHECK_STR(chat_builtin_pick("gpt-oss", NULL, NULL), "harmony");
    CHECK_STR(chat_builtin_pick(NULL, has_channel, NULL), "harmony");
    free(src);
    if (!real || !builtin) return test_finish("chat/harmony");

    const char *date = json_string_value(json_object_get(root, "date"));
    json_t *convs = json_object_get(root, "conversations");
    size_t i, n = 0, same = 0, n_builtin = 0;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        const char *name = json_string_value(json_object_get(c, "conversation"));
        const json_t *conv = json_object_get(convs, name);
        bool gen = json_is_true(json_object_get(c, "add_generation_prompt"));
        const char *want = json_string_value(json_object_get(c, "output"));
        chat_output out;
        shimmy_status st = render(real, conv, gen, date, &out, &err);
        bool ok;
        if (want) {
            ok = st == SHIMMY_OK && out.len == strlen(want) && memcmp(out.text, want, out.len) == 0;
            CHECK_MSG(ok, "%s gen=%d: %s\n want: %s", name, gen, st ? err.message : out.text, want);
        } else {
            const char *e = json_string_value(json_object_get(c, "error"));
            ok = st == SHIMMY_ERR_TEMPLATE && strstr(err.message, e) != NULL;
            CHECK_MSG(ok, "%s: expected the template's refusal '%s', got %s", name, e,
                      st ? err.message : "a rendering");
        }
        if (st == SHIMMY_OK) chat_output_free(&out);
        n++;
        same += ok;
        if (!want || !plain(conv)) continue;
        st = render(builtin, conv, gen, date, &out, &err);
        ok = st == SHIMMY_OK && strcmp(out.text, want) == 0;
        CHECK_MSG(ok, "built-in harmony, %s gen=%d: %s\n want: %s", name, gen,
                  st ? err.message : out.text, want);
        if (st == SHIMMY_OK) chat_output_free(&out);
        n_builtin++;
    }
    printf("gpt-oss.jinja: %zu/%zu cases as Jinja2 renders them; built-in harmony: %zu cases\n",
           same, n, n_builtin);
    CHECK_EQ_INT(n, 22);
    CHECK_EQ_INT(n_builtin, 10);
    chat_template_free(real);
    chat_template_free(builtin);
    json_decref(root);
    return test_finish("chat/harmony");
}
