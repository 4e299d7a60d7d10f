/* Built-in families: each one against the publisher's template of the same family, through the
 * reference outputs in templates/expected.json (same conversation, same BOS/EOS -> same text),
 * and against llama.cpp's own built-in renderings (reference/chat-templates.json, jinja=false);
 * then family classification, end-of-turn tokens and the choice for a template-less GGUF. */
#include "chat/chat.h"
#include "test.h"

/* Built-in -> official template file; `skip_system` where the official template has no system
 * role (gemma refuses it) or adds a default one when absent (Qwen's ChatML), so only the
 * conversations both define the same way are compared. */
static const struct {
    const char *builtin, *file;
    int system_only; /* 1: compare only conversations that start with a system message;
                        -1: only those without one; 0: all */
} pairs[] = {
    {"gemma", "google-gemma-2-2b-it.jinja", -1},
    {"phi3", "microsoft-Phi-3.5-mini-instruct.jinja", 0},
    {"mistral", "mistralai-Mistral-Nemo-Instruct-2407.jinja", 0},
    {"deepseek", "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", 0},
    {"chatml", "Qwen-Qwen2.5-7B-Instruct.jinja", 1},
};

static bool render(const char *src, const json_t *msgs, bool gen, const char *bos, const char *eos,
                   bool trim, chat_output *out) {
    chat_template *t = NULL;
    shimmy_error err;
    if (chat_template_new(src, &t, &err) != SHIMMY_OK) {
        fprintf(stderr, "compile: %s\n", err.message);
        return false;
    }
    chat_render_params p = {.messages = msgs,
                            .add_generation_prompt = gen,
                            .bos_token = bos,
                            .eos_token = eos,
                            .trim_bos_eos = trim};
    shimmy_status st = chat_render(t, &p, out, &err);
    if (st) fprintf(stderr, "render: %s\n", err.message);
    chat_template_free(t);
    return st == SHIMMY_OK;
}

static void against_official(void) {
    char path[1024];
    if (!test_data_path("templates/expected.json", path, sizeof path)) return;
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL);
    json_t *convs = json_object_get(root, "conversations");
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        size_t i, n = 0, ok = 0;
        json_t *t;
        json_array_foreach(json_object_get(root, "templates"), i, t) {
            if (strcmp(json_string_value(json_object_get(t, "file")), pairs[k].file) != 0) continue;
            size_t ci;
            json_t *c;
            json_array_foreach(json_object_get(t, "cases"), ci, c) {
                json_t *msgs =
                    json_object_get(convs, json_string_value(json_object_get(c, "conversation")));
                const char *role =
                    json_string_value(json_object_get(json_array_get(msgs, 0), "role"));
                bool sys = role && strcmp(role, "system") == 0;
                if ((pairs[k].system_only == 1 && !sys) || (pairs[k].system_only == -1 && sys))
                    continue;
                const char *want = json_string_value(json_object_get(c, "output"));
                if (!want) continue;
                n++;
                chat_output out;
                bool r = render(chat_builtin_get(pairs[k].builtin), msgs,
                                json_is_true(json_object_get(c, "add_generation_prompt")),
                                json_string_value(json_object_get(t, "bos_token")),
                                json_string_value(json_object_get(t, "eos_token")), false, &out);
                bool same = r && strcmp(out.text, want) == 0;
                CHECK_MSG(same, "built-in %s vs %s (%s): got \"%s\"", pairs[k].builtin,
                          pairs[k].file, json_string_value(json_object_get(c, "conversation")),
                          r ? out.text : "");
                ok += same;
                if (r) chat_output_free(&out);
            }
        }
        CHECK_MSG(n > 0, "no cases compared for %s", pairs[k].builtin);
        printf("built-in %-9s = %-48s %zu/%zu\n", pairs[k].builtin, pairs[k].file, ok, n);
    }
    json_decref(root);
}

/* llama-server's renderings: with --jinja, of the publishers' Llama-2 and Llama-3 templates in
 * the tiny models; without, of llama.cpp's own built-in ChatML and Llama-3. The server drops a
 * leading BOS (it adds BOS as a token), hence trim_bos_eos. */
static void against_llama_cpp(void) {
    static const struct {
        const char *model, *builtin, *bos, *eos;
        bool jinja;
    } models[] = {
        {"tiny-llama-spm-F32.gguf", "llama2", "<s>", "</s>", true},
        {"tiny-llama-bpe-Q4_0.gguf", "llama3", "<|begin_of_text|>", "<|eot_id|>", true},
        {"tiny-llama-bpe-Q4_0.gguf", "llama3", "<|begin_of_text|>", "<|eot_id|>", false},
        {"tiny-qwen2-Q4_0.gguf", "chatml", "", "<|im_end|>", false},
    };
    char path[1024];
    if (!test_data_path("reference/chat-templates.json", path, sizeof path)) return;
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL);
    json_t *convs = json_object_get(root, "conversations");
    size_t i, n_checked = 0;
    json_t *r;
    json_array_foreach(json_object_get(root, "results"), i, r) {
        bool jinja = json_is_true(json_object_get(r, "jinja"));
        for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
            if (strcmp(json_string_value(json_object_get(r, "model_file")), models[m].model) != 0 ||
                jinja != models[m].jinja)
                continue;
            const char *name;
            json_t *c;
            json_object_foreach(json_object_get(r, "cases"), name, c) {
                chat_output out;
                bool ok = render(chat_builtin_get(models[m].builtin), json_object_get(convs, name),
                                 true, models[m].bos, models[m].eos, true, &out);
                const char *want = json_string_value(json_object_get(c, "prompt"));
                CHECK_MSG(ok && strcmp(out.text, want) == 0, "%s %s (jinja=%d): got \"%s\"",
                          models[m].builtin, name, jinja, ok ? out.text : "");
                n_checked++;
                if (ok) chat_output_free(&out);
            }
        }
    }
    CHECK_EQ_INT(n_checked, 8);
    json_decref(root);
}

static bool vocab_has(const char *text, void *user) {
    for (const char *const *t = user; *t; t++)
        if (strcmp(*t, text) == 0) return true;
    return false;
}

static void pick_and_classify(void) {
    static const char *const qwen[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", NULL};
    static const char *const llama3[] = {"<|begin_of_text|>", "<|start_header_id|>", NULL};
    static const char *const gemma[] = {"<bos>", "<start_of_turn>", "<end_of_turn>", NULL};
    static const char *const phi3[] = {"<s>", "<|user|>", "<|assistant|>", "<|end|>", NULL};
    static const char *const mistral[] = {"<s>", "[INST]", "[/INST]", NULL};
    static const char *const spm[] = {"<unk>", "<s>", "</s>", NULL};
    CHECK_STR(chat_builtin_pick("qwen2", vocab_has, (void *)qwen), "chatml");
    CHECK_STR(chat_builtin_pick("llama", vocab_has, (void *)llama3), "llama3");
    CHECK_STR(chat_builtin_pick("gemma2", vocab_has, (void *)gemma), "gemma");
    CHECK_STR(chat_builtin_pick("phi3", vocab_has, (void *)phi3), "phi3");
    CHECK_STR(chat_builtin_pick("llama", vocab_has, (void *)mistral), "mistral");
    CHECK_STR(chat_builtin_pick("llama", vocab_has, (void *)spm), "llama2");
    CHECK_STR(chat_builtin_pick("gemma", NULL, NULL), "gemma");
    CHECK_STR(chat_builtin_pick(NULL, NULL, NULL), "chatml");
    CHECK_STR(chat_builtin_pick("no-such-arch", vocab_has, (void *)spm), "chatml");

    /* every built-in classifies as itself and has a usable end-of-turn text */
    CHECK(chat_builtin_count() == 12);
    for (size_t i = 0; i < chat_builtin_count(); i++) {
        const char *name = chat_builtin_name(i);
        CHECK_STR(chat_family_of(chat_builtin_get(name)), name);
        CHECK(chat_family_eot(name) && chat_family_eot(name)[0]);
        chat_template *t = NULL;
        CHECK_MSG(chat_template_new(chat_builtin_get(name), &t, NULL) == SHIMMY_OK, "%s", name);
        chat_template_free(t);
    }
    CHECK(chat_builtin_name(chat_builtin_count()) == NULL);
    CHECK(chat_builtin_get("nope") == NULL);
    CHECK(chat_family_eot("unknown") == NULL);
    CHECK_STR(chat_family_eot("chatml"), "<|im_end|>");
    CHECK_STR(chat_family_eot("llama3"), "<|eot_id|>");
    CHECK_STR(chat_family_eot("llama2"), "</s>");
    CHECK_STR(chat_family_of("{{ 'hello' }}"), "unknown");

    /* the publishers' templates classify into their families */
    static const struct {
        const char *file, *family;
    } files[] = {
        {"Qwen-Qwen2.5-7B-Instruct.jinja", "chatml"},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "chatml"},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3"},
        {"meetkai-functionary-medium-v3.2.jinja", "llama3"},
        {"google-gemma-2-2b-it.jinja", "gemma"},
        {"microsoft-Phi-3.5-mini-instruct.jinja", "phi3"},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral"},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "deepseek"},
        {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", "command-r"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[256], path[1024];
        snprintf(rel, sizeof rel, "templates/%s", files[i].file);
        if (!test_data_path(rel, path, sizeof path)) continue;
        char *src = test_read_file(path, NULL);
        CHECK_MSG(src && strcmp(chat_family_of(src), files[i].family) == 0, "%s -> %s",
                  files[i].file, src ? chat_family_of(src) : "(unreadable)");
        free(src);
    }
}

/* Content given as a list of text parts renders like the plain string. */
static void content_parts(void) {
    json_t *plain = json_loads("[{\"role\":\"user\",\"content\":\"ab\"}]", 0, NULL);
    json_t *parts =
        json_loads("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                   "{\"type\":\"image_url\"},{\"type\":\"text\",\"text\":\"b\"}]}]",
                   0, NULL);
    for (size_t i = 0; i < chat_builtin_count(); i++) {
        chat_output x, y;
        const char *src = chat_builtin_get(chat_builtin_name(i));
        bool ok = render(src, plain, true, "<s>", "</s>", false, &x) &&
                  render(src, parts, true, "<s>", "</s>", false, &y);
        CHECK_MSG(ok && strcmp(x.text, y.text) == 0, "%s", chat_builtin_name(i));
        CHECK_MSG(ok && strstr(x.text, "ab"), "%s lost the content", chat_builtin_name(i));
        if (ok) {
            chat_output_free(&x);
            chat_output_free(&y);
        }
    }
    json_decref(plain);
    json_decref(parts);
}

int main(void) {
    against_official();
    against_llama_cpp();
    pick_and_classify();
    content_parts();
    return test_finish("chat/builtin");
}
