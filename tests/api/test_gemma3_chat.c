/*
 * Gemma 3's chat, end to end. (1) Its Jinja template (tests/chat/gemma3.jinja) renders every
 * conversation of tests/chat/gemma3_cases.json byte for byte as Jinja2 does in Hugging Face's
 * environment (gen_gemma3_cases.py), errors included. (2) A gemma3 file carrying that template
 * and <start_of_turn>/<end_of_turn> as control tokens (tiny-gemma3-F32 with two vocabulary
 * entries renamed, written here): a chat prompt turns the markers into single tokens, the
 * end of turn is what generation stops at, <end_of_turn> is an end-of-generation token, and a
 * generation that samples it stops there with nothing emitted, while one that cannot sample it
 * runs to max_tokens.
 */
#include "chat/chat.h"
#include "gguf/gguf.h"
#include "shimmy.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>

#define ID_START 31998 /* the renamed vocabulary entries */
#define ID_END   31999

static char *read_src(const char *name) {
    const char *src = getenv("SHIMMY_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/chat/%s", src ? src : ".", name);
    char *text = test_read_file(path, NULL);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    return text;
}

static void check_renders(const char *tpl_src) {
    const char *src = getenv("SHIMMY_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/chat/gemma3_cases.json", src ? src : ".");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", path, jerr.text);
    chat_template *t = NULL;
    shimmy_error err;
    CHECK_MSG(chat_template_new(tpl_src, &t, &err) == SHIMMY_OK, "%s", err.message);
    if (!root || !t) goto out;
    size_t i, n_ok = 0;
    json_t *c;
    json_t *cases = json_object_get(root, "cases");
    json_array_foreach(cases, i, c) {
        chat_render_params p = {
            .messages = json_object_get(c, "messages"),
            .add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt")),
            .bos_token = json_string_value(json_object_get(root, "bos_token")),
        };
        chat_output out = {0};
        const shimmy_status st = chat_render(t, &p, &out, &err);
        const char *want = json_string_value(json_object_get(c, "expect"));
        const char *want_err = json_string_value(json_object_get(c, "error"));
        bool ok;
        if (want)
            ok = st == SHIMMY_OK && out.len == strlen(want) && memcmp(out.text, want, out.len) == 0;
        else
            ok = st == SHIMMY_ERR_TEMPLATE && want_err && strstr(err.message, want_err);
        CHECK_MSG(ok, "case %zu: want %s, got %s", i, want ? want : want_err,
                  st == SHIMMY_OK ? out.text : err.message);
        n_ok += ok;
        chat_output_free(&out);
    }
    printf("gemma3_cases.json: %zu/%zu rendered as Jinja2 renders them\n", n_ok,
           json_array_size(cases));
out:
    chat_template_free(t);
    json_decref(root);
}

/* tiny-gemma3-F32 with entries ID_START/ID_END renamed to the markers (control tokens) and the
 * template as tokenizer.chat_template. */
static bool write_model(const char *src_path, const char *path, const char *tpl_src) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    shimmy_error err;
    if (gguf_open(src_path, &f, &err) != SHIMMY_OK || gguf_writer_new(&w, &err) != SHIMMY_OK) {
        CHECK_MSG(0, "%s", err.message);
        gguf_close(f);
        return false;
    }
    gguf_writer_copy_kv(w, f, "");
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
    const gguf_value *types = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_VT_COUNT);
    bool ok = toks && types && toks->v.arr.count == 32000 && types->v.arr.count == 32000;
    CHECK_MSG(ok, "unexpected vocabulary in %s", src_path);
    if (ok) {
        const size_t n = (size_t)toks->v.arr.count;
        char **names = calloc(n, sizeof *names);
        int32_t *ty = calloc(n, sizeof *ty);
        for (size_t i = 0; i < n; i++) {
            const gguf_str s = toks->v.arr.strs[i];
            names[i] = i == ID_START ? strdup("<start_of_turn>")
                       : i == ID_END ? strdup("<end_of_turn>")
                                     : strndup(s.data, (size_t)s.len);
            ty[i] = i == ID_START || i == ID_END ? 3 /* control */
                                                 : (int32_t)gguf_arr_i64(types, i);
        }
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)names, n);
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, ty, n);
        gguf_writer_set_str(w, "tokenizer.chat_template", tpl_src);
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        free(ty);
        for (size_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
        }
        ok = gguf_writer_write(w, path, &err) == SHIMMY_OK;
        CHECK_MSG(ok, "%s", err.message);
    }
    gguf_writer_free(w);
    gguf_close(f);
    return ok;
}

static shimmy_next collect(const char *piece, size_t len, void *user) {
    size_t *n = user;
    *n += len;
    (void)piece;
    return SHIMMY_CONTINUE;
}

static void generate(shimmy_model *m, const shimmy_prompt *p, float bias, shimmy_finish want_finish,
                     int32_t want_tokens, size_t want_bytes) {
    shimmy_session *s = NULL;
    shimmy_error err;
    CHECK_MSG(shimmy_session_new(m, NULL, &s, &err) == SHIMMY_OK, "%s", err.message);
    if (!s) return;
    const shimmy_gen_options o = {.max_tokens = 6};
    const shimmy_logit_bias lb = {ID_END, bias};
    const shimmy_session_request req = {.options = &o, .logit_bias = &lb, .n_logit_bias = 1};
    shimmy_session_result res = {0};
    size_t bytes = 0;
    CHECK_MSG(shimmy_session_generate(s, p, &req, collect, &bytes, &res, &err) == SHIMMY_OK, "%s",
              err.message);
    printf("bias %+.0f on <end_of_turn>: finish %s, %d tokens, %zu bytes\n", bias,
           shimmy_finish_name(res.finish), res.completion_tokens, bytes);
    CHECK_EQ_INT(res.finish, want_finish);
    CHECK_EQ_INT(res.completion_tokens, want_tokens);
    if (want_bytes == 0) CHECK_EQ_INT(bytes, 0);
    shimmy_session_free(s);
}

static void check_model(const char *path) {
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    if (f) CHECK_MSG(tok_vocab_load(f, &v, &err) == SHIMMY_OK, "%s", err.message);
    if (v) {
        CHECK(tok_is_eog(v, ID_END));
        CHECK(!tok_is_eog(v, ID_START));
    }
    tok_vocab_free(v);
    gguf_close(f);

    shimmy_spec_builder *b = shimmy_spec_new();
    shimmy_spec_set_name(b, "tiny-gemma3-chat");
    shimmy_spec_set_base_path(b, path);
    shimmy_spec_set_ctx_len(b, 128);
    shimmy_spec_set_threads(b, 1);
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    CHECK_MSG(shimmy_spec_build(b, &spec, &err) == SHIMMY_OK, "%s", err.message);
    shimmy_spec_builder_free(b);
    if (spec) CHECK_MSG(shimmy_model_load(spec, &m, &err) == SHIMMY_OK, "%s", err.message);
    shimmy_spec_free(spec);
    if (!m) return;
    const shimmy_message msgs[] = {
        {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}};
    shimmy_prompt *p = NULL;
    CHECK_MSG(shimmy_prompt_from_chat(m, msgs, 4, &p, &err) == SHIMMY_OK, "%s", err.message);
    if (p) {
        /* <bos> <start_of_turn> user ... <end_of_turn> ... <start_of_turn> model \n */
        const int32_t *ids = shimmy_prompt_tokens(p);
        const size_t n = shimmy_prompt_token_count(p);
        int starts = 0, ends = 0;
        for (size_t i = 0; i < n; i++) {
            starts += ids[i] == ID_START;
            ends += ids[i] == ID_END;
        }
        CHECK_EQ_INT(starts, 4);
        CHECK_EQ_INT(ends, 3);
        CHECK(n > 2 && ids[0] == 1 && ids[1] == ID_START);
        CHECK_STR(shimmy_prompt_end_of_turn(p), "<end_of_turn>");
        generate(m, p, 100.0f, SHIMMY_FINISH_STOP, 1, 0); /* the end of turn counts as generated */
        generate(m, p, -100.0f, SHIMMY_FINISH_LENGTH, 6, 1);
    }
    shimmy_prompt_free(p);
    shimmy_model_unref(m);
}

int main(void) {
    char src[1024], dir[1024], path[1200];
    test_require_data("models/tiny-gemma3-F32.gguf", src, sizeof src);
    char *tpl = read_src("gemma3.jinja");
    if (!tpl) return test_finish("api/gemma3_chat");
    check_renders(tpl);
    CHECK_STR(chat_family_of(tpl), "gemma");
    CHECK_STR(chat_family_eot(chat_family_of(tpl)), "<end_of_turn>");
    if (test_tmpdir(dir, sizeof dir)) {
        snprintf(path, sizeof path, "%s/tiny-gemma3-chat.gguf", dir);
        if (write_model(src, path, tpl)) check_model(path);
        test_rm_rf(dir);
    }
    free(tpl);
    return test_finish("api/gemma3_chat");
}
