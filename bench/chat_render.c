/* bench_chat_render: time to render a 10-message conversation (and to compile the template) for
 * the built-in families and, when $SHIMMY_TESTDATA is set, the publishers' templates there.
 * usage: bench_chat_render [ITERATIONS] */
#include "chat/chat.h"
#include "test.h"

#include <dirent.h>

static json_t *conversation(void) {
    json_t *m = json_array();
    json_array_append_new(m,
                          json_pack("{s:s,s:s}", "role", "system", "content",
                                    "You are a helpful assistant. Answer briefly and precisely."));
    for (int i = 0; i < 9; i++) {
        char text[160];
        snprintf(text, sizeof text,
                 "Message %d: could you explain, in a sentence or two, how step %d of the plan "
                 "works and why it matters?",
                 i, i);
        json_array_append_new(
            m, json_pack("{s:s,s:s}", "role", i % 2 ? "assistant" : "user", "content", text));
    }
    return m;
}

static void bench(const char *label, const char *src, const json_t *msgs, int iters) {
    double t0 = core_time_ms();
    chat_template *t = NULL;
    shimmy_error err;
    for (int i = 0; i < 200; i++) {
        chat_template_free(t);
        if (chat_template_new(src, &t, &err)) {
            printf("%-50s compile error: %s\n", label, err.message);
            return;
        }
    }
    double compile_ms = (core_time_ms() - t0) / 200;
    chat_render_params p = {.messages = msgs,
                            .add_generation_prompt = true,
                            .bos_token = "<s>",
                            .eos_token = "</s>",
                            .fixed_date = "2024-07-26"};
    chat_output out;
    if (chat_render(t, &p, &out, &err)) {
        printf("%-50s render error: %s\n", label, err.message);
        chat_template_free(t);
        return;
    }
    size_t len = out.len;
    chat_output_free(&out);
    t0 = core_time_ms();
    for (int i = 0; i < iters; i++) {
        chat_render(t, &p, &out, NULL);
        chat_output_free(&out);
    }
    double render_us = (core_time_ms() - t0) * 1000.0 / iters;
    printf("%-50s render %8.1f us   compile %7.1f us   %5zu bytes\n", label, render_us,
           compile_ms * 1000.0, len);
    chat_template_free(t);
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 2000;
    if (iters < 1) iters = 1;
    json_t *msgs = conversation();
    printf("10-message conversation, mean of %d renders\n", iters);
    for (size_t i = 0; i < chat_builtin_count(); i++) {
        char label[64];
        snprintf(label, sizeof label, "built-in %s", chat_builtin_name(i));
        bench(label, chat_builtin_get(chat_builtin_name(i)), msgs, iters);
    }
    char dir[1024];
    DIR *d = test_data_path("templates", dir, sizeof dir) ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".jinja") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *src = test_read_file(path, NULL);
        if (src) bench(e->d_name, src, msgs, iters);
        free(src);
    }
    if (d) closedir(d);
    json_decref(msgs);
    return 0;
}
