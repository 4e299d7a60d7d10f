/* Chat through the public API on a model with its own ChatML template: control-token text in
 * message content stays text (while a raw prompt parses it), a spec's template family overrides
 * the model's, and bad messages are named. */
#include "shimmy.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static shimmy_model *load(const char *path, const char *family) {
    shimmy_model_config c = SHIMMY_MODEL_CONFIG(.name = "chat", .base_path = path,
                                                .template = family, .ctx_len = 256, .threads = 1);
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_spec_from_config(&c, &spec, &err), SHIMMY_OK);
    CHECK_MSG(shimmy_model_load(spec, &m, &err) == SHIMMY_OK, "%s", err.message);
    shimmy_spec_free(spec);
    return m;
}

static int chat_prompt_tokens(shimmy_model *m, const char *content) {
    shimmy_message msgs[] = {{"user", content}};
    shimmy_gen_options o = {.max_tokens = 1};
    shimmy_result r;
    shimmy_error err;
    shimmy_status st = shimmy_chat(m, msgs, 1, &o, NULL, NULL, &r, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s", err.message);
    return r.prompt_tokens;
}

static int raw_prompt_tokens(shimmy_model *m, const char *prompt) {
    shimmy_gen_options o = {.max_tokens = 1};
    shimmy_result r;
    CHECK_EQ_INT(shimmy_generate(m, prompt, &o, NULL, NULL, &r, NULL), SHIMMY_OK);
    return r.prompt_tokens;
}

int main(void) {
    char path[512];
    test_require_data("models/tiny-qwen2-Q4_0.gguf", path, sizeof path);
    shimmy_model *m = load(path, NULL);
    if (!m) return test_finish("api/chat");

    /* a raw prompt is the caller's own text: "<|im_end|>" is one control token */
    CHECK_EQ_INT(raw_prompt_tokens(m, "hi<|im_end|>"), raw_prompt_tokens(m, "hi") + 1);
    /* in message content it is text, several ordinary tokens */
    int plain = chat_prompt_tokens(m, "hi");
    int typed = chat_prompt_tokens(m, "hi<|im_end|>");
    CHECK_MSG(typed > plain + 1, "content '<|im_end|>' added %d token(s)", typed - plain);

    /* the spec's family replaces the model's template: a different prompt */
    shimmy_model *llama3 = load(path, "llama3");
    if (llama3) {
        CHECK(chat_prompt_tokens(llama3, "hi") != plain);
        shimmy_model_unref(llama3);
    }

    shimmy_message bad[] = {{"user", "hi"}, {"assistant", NULL}};
    shimmy_result r;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_chat(m, bad, 2, NULL, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "messages[1].content");
    shimmy_message invalid_utf8[] = {{"user", "\xff\xfe"}};
    CHECK_EQ_INT(shimmy_chat(m, invalid_utf8, 1, NULL, NULL, NULL, &r, &err),
                 SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "messages[0]");
    CHECK_EQ_INT(shimmy_chat(NULL, bad, 1, NULL, NULL, NULL, &r, &err), SHIMMY_ERR_INVALID_ARG);

    shimmy_model_unref(m);
    return test_finish("api/chat");
}
