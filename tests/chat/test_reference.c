/* The 3 tiny models' own templates (tokenizer.chat_template in their GGUFs), rendered with their
 * BOS/EOS token texts, reproduce llama-server's --jinja renderings in
 * reference/chat-templates.json (which drops a leading BOS text: the server adds BOS as a token).
 */
#include "chat/chat.h"
#include "gguf/gguf.h"
#include "test.h"

static char *dup_str(gguf_str s) {
    char *c = malloc((size_t)s.len + 1);
    gguf_str_copy(s, c, (size_t)s.len + 1);
    return c;
}

static char *token_text(const gguf_file *f, const char *key) {
    uint32_t id;
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
    if (!toks || !gguf_get_u32(f, key, &id) || id >= toks->v.arr.count) return NULL;
    return dup_str(toks->v.arr.strs[id]);
}

int main(void) {
    char path[1024], models[1024];
    test_require_data("reference/chat-templates.json", path, sizeof path);
    test_require_data("models", models, sizeof models);
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL);
    json_t *convs = json_object_get(root, "conversations");
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(root, "results"), i, r) {
        if (!json_is_true(json_object_get(r, "jinja"))) continue;
        const char *file = json_string_value(json_object_get(r, "model_file"));
        char mpath[2048];
        snprintf(mpath, sizeof mpath, "%s/%s", models, file);
        gguf_file *f = NULL;
        shimmy_error err;
        CHECK_MSG(gguf_open_header(mpath, &f, &err) == SHIMMY_OK, "%s: %s", file, err.message);
        if (!f) continue;
        gguf_str s;
        CHECK(gguf_get_str(f, "tokenizer.chat_template", &s));
        char *src = dup_str(s), *bos = token_text(f, "tokenizer.ggml.bos_token_id"),
             *eos = token_text(f, "tokenizer.ggml.eos_token_id");
        gguf_close(f);
        /* the GGUF carries the template llama-server reported */
        CHECK_STR(src, json_string_value(json_object_get(r, "chat_template_from_props")));
        chat_template *t = NULL;
        CHECK(chat_template_new(src, &t, &err) == SHIMMY_OK);
        const char *conv;
        json_t *c;
        json_object_foreach(json_object_get(r, "cases"), conv, c) {
            chat_render_params p = {.messages = json_object_get(convs, conv),
                                    .add_generation_prompt = true,
                                    .bos_token = bos,
                                    .eos_token = eos,
                                    .trim_bos_eos = true};
            chat_output out;
            shimmy_status st = chat_render(t, &p, &out, &err);
            const char *want = json_string_value(json_object_get(c, "prompt"));
            CHECK_MSG(st == SHIMMY_OK && strcmp(out.text, want) == 0, "%s %s: got \"%s\"", file,
                      conv, st == SHIMMY_OK ? out.text : err.message);
            printf("%-28s %-18s %s\n", file, conv,
                   st == SHIMMY_OK && strcmp(out.text, want) == 0 ? "same as llama-server"
                                                                  : "DIFFERS");
            if (st == SHIMMY_OK) chat_output_free(&out);
            n++;
        }
        chat_template_free(t);
        free(src);
        free(bos);
        free(eos);
    }
    CHECK_EQ_INT(n, 6);
    json_decref(root);
    return test_finish("chat/reference");
}
