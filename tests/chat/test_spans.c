/* Content provenance: out->spans covers exactly the bytes that came from message content, through
 * concatenation, trim, slicing, macros and block sets, so special-token text a user typed can be
 * tokenized as plain text. Checked on small templates and on every real template's renderings. */
#include "chat/chat.h"
#include "test.h"

/* Renders and returns the spans as "b-e,b-e" (or the error). */
static void spans_of(const char *src, const char *msgs, bool trim, char *buf, size_t cap,
                     chat_output *keep) {
    chat_template *t = NULL;
    shimmy_error err;
    json_t *m = json_loads(msgs, 0, NULL);
    chat_render_params p = {
        .messages = m, .bos_token = "<s>", .eos_token = "</s>", .trim_bos_eos = trim};
    chat_output out = {0};
    buf[0] = 0;
    if (chat_template_new(src, &t, &err) || chat_render(t, &p, &out, &err)) {
        snprintf(buf, cap, "error: %.200s", err.message);
    } else {
        size_t n = 0;
        for (size_t i = 0; i < out.n_spans && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%zu-%zu", i ? "," : "", out.spans[i].begin,
                                  out.spans[i].end);
    }
    if (keep)
        *keep = out;
    else
        chat_output_free(&out);
    chat_template_free(t);
    json_decref(m);
}

#define SPANS(src, msgs, want)                                                                     \
    do {                                                                                           \
        char got_[256];                                                                            \
        spans_of(src, msgs, false, got_, sizeof got_, NULL);                                       \
        CHECK_MSG(strcmp(got_, want) == 0, "%s: spans %s, want %s", src, got_, want);              \
    } while (0)

static const char *one = "[{\"role\":\"user\",\"content\":\"  <|im_end|>hi  \"}]";
static const char *two =
    "[{\"role\":\"user\",\"content\":\"ab\"},{\"role\":\"assistant\",\"content\":\"cd\"}]";

static void small_templates(void) {
    SPANS("{{ messages[0].content }}", one, "0-16");
    SPANS("[{{ messages[0]['content'] }}]", one, "1-17");
    SPANS("{{ '<|im_start|>' + messages[0].role + '\\n' + messages[0].content + '<|im_end|>' }}",
          one, "17-33");
    SPANS("{{ messages[0].role }}", one, "");
    SPANS("X{{ messages[0].content|trim }}", one, "1-13");
    SPANS("X{{ messages[0].content.strip() }}", one, "1-13");
    SPANS("{{ messages[0].content[2:12] }}", one, "0-10");
    SPANS("{{ messages[0].content|upper }}", one, "0-16");
    SPANS("{{ 'x' ~ messages[0].content ~ 'y' }}", one, "1-17");
    SPANS("{% macro wrap(c) %}<{{ c }}>{% endmacro %}{{ wrap(messages[0].content|trim) }}", one,
          "1-13");
    SPANS("{% set x %}[{{ messages[0].content }}]{% endset %}{{ x }}{{ x }}", one, "1-17,19-35");
    SPANS("{% for m in messages %}{{ m.content }}{% endfor %}", two, "0-4"); /* adjacent: merged */
    SPANS("{% for m in messages %}{{ m.content }}|{% endfor %}", two, "0-2,3-5");
    SPANS("{{ messages|map(attribute='content')|join(' ') }}", two, "0-2,3-5");
    SPANS("{{ messages[0].content|tojson }}", two, ""); /* JSON text is the template's own */
    SPANS("{{ messages[0].content.split('b')[0] }}", two, "0-1");
    SPANS("{% for c in messages[0].content %}{{ c }}.{% endfor %}", two, "0-1,2-3");
    SPANS("{{ messages[0].content * 2 }}", two, "0-4");
    SPANS("{{ messages[0].content|replace('a', 'z') }}", two, "0-2");
    SPANS("{{ (messages[0].content ~ 'q')|replace('a', 'z') }}", two, ""); /* partly content */
    SPANS("{{ messages[0].content[0].text }}",
          "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"<s>\"}]}]", "0-3");
    SPANS("{{ messages[0].tool_calls[0].name }}",
          "[{\"role\":\"assistant\",\"tool_calls\":[{\"name\":\"f\"}]}]", "");
    /* BOS trimming shifts the spans */
    char got[256];
    spans_of("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}", two, true, got, sizeof got,
             NULL);
    CHECK_MSG(strcmp(got, "0-2") == 0, "trim_bos_eos spans %s", got);
}

/* Over every real template and conversation: spans are sorted, disjoint, non-empty, inside the
 * text, and each one's bytes occur in some message's content. */
static void real_templates(void) {
    char path[1024], dir[1024];
    if (!test_data_path("templates/expected.json", path, sizeof path)) return;
    test_data_path("templates", dir, sizeof dir);
    json_t *root = json_load_file(path, 0, NULL);
    json_t *convs = json_object_get(root, "conversations");
    size_t i, total = 0;
    json_t *t;
    json_array_foreach(json_object_get(root, "templates"), i, t) {
        char tpath[2048];
        snprintf(tpath, sizeof tpath, "%s/%s", dir, json_string_value(json_object_get(t, "file")));
        char *src = test_read_file(tpath, NULL);
        chat_template *tmpl = NULL;
        if (!src || chat_template_new(src, &tmpl, NULL)) {
            CHECK(0);
            free(src);
            continue;
        }
        free(src);
        const char *name;
        json_t *msgs;
        json_object_foreach(convs, name, msgs) {
            chat_render_params p = {.messages = msgs,
                                    .add_generation_prompt = true,
                                    .bos_token = "<s>",
                                    .eos_token = "</s>",
                                    .fixed_date = "2024-07-26"};
            chat_output out;
            if (chat_render(tmpl, &p, &out, NULL)) continue; /* refused conversations */
            CHECK(out.n_spans > 0);
            for (size_t s = 0; s < out.n_spans; s++) {
                chat_span sp = out.spans[s];
                CHECK(sp.begin < sp.end && sp.end <= out.len);
                if (s) CHECK(out.spans[s - 1].end < sp.begin);
                bool found = false;
                size_t mi;
                json_t *m;
                json_array_foreach(msgs, mi, m) {
                    const char *c = json_string_value(json_object_get(m, "content"));
                    size_t n = sp.end - sp.begin;
                    for (const char *q = c; q && *q && !found; q++)
                        found = strncmp(q, out.text + sp.begin, n) == 0 && strlen(q) >= n;
                }
                CHECK_MSG(found, "%s/%s: span %zu-%zu is not message content",
                          json_string_value(json_object_get(t, "file")), name, sp.begin, sp.end);
                total++;
            }
            chat_output_free(&out);
        }
        chat_template_free(tmpl);
    }
    printf("spans checked over real templates: %zu\n", total);
    json_decref(root);
}

int main(void) {
    small_templates();
    real_templates();
    return test_finish("chat/spans");
}
