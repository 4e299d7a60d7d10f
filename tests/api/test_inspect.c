/* GGUF inspection and chat templates through the public API: a written file's header, every
 * value type (nested arrays included), the tensor table, lookups; templates from a file (its
 * own, a named one, a built-in when it has none), from source and by family; rendering with
 * tools, variables, BOS/EOS and content spans; and every error as a value. */
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <string.h>

static char dir[256], meta_path[512], bare_path[512];

static shimmy_status write_meta(shimmy_error *err) {
    gguf_writer *w = NULL;
    shimmy_status st = gguf_writer_new(&w, err);
    if (st) return st;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u64(w, "big", UINT64_MAX);
    gguf_writer_set_i32(w, "neg", -5);
    gguf_writer_set_f32(w, "half", 0.5f);
    gguf_writer_set_bool(w, "yes", true);
    const uint32_t a[2] = {1, 2}, b[2] = {3, 4};
    gguf_value inner[2] = {{.type = GGUF_VT_ARRAY}, {.type = GGUF_VT_ARRAY}};
    inner[0].v.arr.elem_type = inner[1].v.arr.elem_type = GGUF_VT_UINT32;
    inner[0].v.arr.count = inner[1].v.arr.count = 2;
    inner[0].v.arr.data = a;
    inner[1].v.arr.data = b;
    gguf_value outer = {.type = GGUF_VT_ARRAY};
    outer.v.arr.elem_type = GGUF_VT_ARRAY;
    outer.v.arr.count = 2;
    outer.v.arr.arrays = inner;
    gguf_writer_set_value(w, "nested", &outer);
    const char *names[] = {"x", "yy"};
    gguf_writer_set_arr_str(w, "names", names, 2);
    if (!(st = fixture_add_tokenizer(w, 300, err))) {
        gguf_writer_set_str(w, "tokenizer.chat_template",
                            "{{ bos_token }}OWN{{ messages[0].content }}");
        gguf_writer_set_str(w, "tokenizer.chat_template.tool_use",
                            "TOOLS={{ tools | length }} V={{ flag }}");
        const float t[4] = {1, 2, 3, 4};
        const int64_t ne[2] = {2, 2};
        gguf_writer_add_tensor(w, "t.weight", GGUF_T_F32, 2, ne, t);
        st = gguf_writer_write(w, meta_path, err);
    }
    gguf_writer_free(w);
    return st;
}

static void test_gguf(void) {
    shimmy_error err;
    shimmy_gguf *g = NULL;
    CHECK_EQ_INT(shimmy_gguf_open(meta_path, &g, &err), SHIMMY_OK);
    if (!g) return;
    shimmy_gguf_info in;
    shimmy_gguf_get_info(g, &in);
    CHECK_STR(in.path, meta_path);
    CHECK_EQ_INT(in.version, 3);
    CHECK_EQ_INT(in.n_tensors, 1);
    CHECK(in.n_kv >= 10 && in.data_offset > 0 && in.file_size > in.data_offset);
    shimmy_gguf_value v;
    CHECK(shimmy_gguf_find(g, "big", &v) && v.type == SHIMMY_GGUF_U64 && v.u64 == UINT64_MAX);
    CHECK(shimmy_gguf_find(g, "neg", &v) && v.type == SHIMMY_GGUF_I32 && v.i64 == -5);
    CHECK(shimmy_gguf_find(g, "half", &v) && v.type == SHIMMY_GGUF_F32 && v.f64 == 0.5);
    CHECK(shimmy_gguf_find(g, "yes", &v) && v.type == SHIMMY_GGUF_BOOL && v.b);
    CHECK(shimmy_gguf_find(g, "general.architecture", &v) && v.type == SHIMMY_GGUF_STRING &&
          v.str_len == 5 && memcmp(v.str, "llama", 5) == 0);
    CHECK(!shimmy_gguf_find(g, "absent", &v));
    CHECK(shimmy_gguf_find(g, "names", &v) && v.type == SHIMMY_GGUF_ARRAY &&
          v.elem_type == SHIMMY_GGUF_STRING && v.count == 2);
    shimmy_gguf_value e, f;
    CHECK(shimmy_gguf_array_at(&v, 1, &e) && e.type == SHIMMY_GGUF_STRING && e.str_len == 2 &&
          memcmp(e.str, "yy", 2) == 0);
    CHECK(!shimmy_gguf_array_at(&v, 2, &e));
    CHECK(shimmy_gguf_find(g, "nested", &v) && v.elem_type == SHIMMY_GGUF_ARRAY && v.count == 2);
    CHECK(shimmy_gguf_array_at(&v, 1, &e) && e.type == SHIMMY_GGUF_ARRAY && e.count == 2);
    CHECK(shimmy_gguf_array_at(&e, 0, &f) && f.type == SHIMMY_GGUF_U32 && f.u64 == 3);
    CHECK(!shimmy_gguf_array_at(&f, 0, &e)); /* a scalar is no array */
    /* every key is reachable by index, in file order, and found by name */
    const char *key;
    size_t klen;
    size_t seen = 0;
    for (size_t i = 0; shimmy_gguf_kv_at(g, i, &key, &klen, &v); i++, seen++) {
        char k[128];
        snprintf(k, sizeof k, "%.*s", (int)klen, key);
        shimmy_gguf_value w;
        CHECK_MSG(shimmy_gguf_find(g, k, &w) && w.type == v.type, "%s", k);
    }
    CHECK_EQ_INT(seen, in.n_kv);
    shimmy_gguf_tensor t;
    CHECK(shimmy_gguf_tensor_at(g, 0, &t));
    CHECK(t.name_len == 8 && memcmp(t.name, "t.weight", 8) == 0);
    CHECK_STR(t.type_name, "F32");
    CHECK(t.n_dims == 2 && t.shape[0] == 2 && t.shape[1] == 2 && t.bytes == 16);
    CHECK(!shimmy_gguf_tensor_at(g, 1, &t));
    CHECK_STR(shimmy_gguf_type_name(SHIMMY_GGUF_F64), "f64");
    CHECK_STR(shimmy_gguf_type_name((shimmy_gguf_type)99), "?");
    shimmy_gguf_free(g);

    /* errors name the file */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing.gguf", dir);
    g = (shimmy_gguf *)1;
    CHECK(shimmy_gguf_open(bad, &g, &err) != SHIMMY_OK && g == NULL);
    CHECK(strstr(err.message, "missing.gguf") || strstr(err.where, "missing.gguf"));
    FILE *fp = fopen(bad, "wb");
    if (fp) fputs("NOTGGUF-at-all", fp), fclose(fp);
    CHECK_EQ_INT(shimmy_gguf_open(bad, &g, &err), SHIMMY_ERR_FORMAT);
    CHECK_EQ_INT(shimmy_gguf_open(NULL, &g, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_gguf_free(NULL);
    shimmy_gguf_get_info(NULL, &in);
    CHECK(in.path == NULL && in.n_kv == 0);
}

static char *render(const shimmy_template *t, const shimmy_render_options *o, shimmy_rendered *r) {
    shimmy_error err;
    shimmy_status st = shimmy_template_render(t, o, r, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s", err.message);
    return st ? NULL : r->text;
}

static void test_templates(void) {
    shimmy_error err;
    shimmy_template *t = NULL;
    shimmy_rendered r;
    const char *msgs = "[{\"role\":\"user\",\"content\":\"hi\"}]";
    shimmy_render_options o = {.messages_json = msgs};

    /* the file's own template, with its BOS text */
    CHECK_EQ_INT(shimmy_template_from_gguf(meta_path, NULL, &t, &err), SHIMMY_OK);
    CHECK_STR(shimmy_template_bos(t), "<s>");
    CHECK_STR(shimmy_template_eos(t), "</s>");
    char *s = render(t, &o, &r);
    CHECK(s && strcmp(s, "<s>OWNhi") == 0);
    CHECK(r.n_spans == 1 && r.spans[0].end - r.spans[0].begin == 2);
    shimmy_rendered_free(&r);
    CHECK(r.text == NULL && r.n_spans == 0);
    o.bos = "[B]";
    s = render(t, &o, &r);
    CHECK(s && strcmp(s, "[B]OWNhi") == 0);
    shimmy_rendered_free(&r);
    o.bos = NULL;
    shimmy_template_free(t);

    /* a named template, with tools and variables */
    CHECK_EQ_INT(shimmy_template_from_gguf(meta_path, "tool_use", &t, &err), SHIMMY_OK);
    o.tools_json = "[{\"type\":\"function\"},{\"type\":\"function\"}]";
    o.vars_json = "{\"flag\":\"on\"}";
    s = render(t, &o, &r);
    CHECK_MSG(s && strcmp(s, "TOOLS=2 V=on") == 0, "%s", s ? s : "");
    shimmy_rendered_free(&r);
    CHECK_STR(shimmy_template_family(t), "unknown");
    CHECK(shimmy_template_end_of_turn(t) == NULL);
    /* bad JSON is an error naming the input */
    o.vars_json = "{nope";
    CHECK_EQ_INT(shimmy_template_render(t, &o, &r, &err), SHIMMY_ERR_INVALID_JSON);
    CHECK_STR(err.where, "vars");
    CHECK(r.text == NULL);
    o.tools_json = o.vars_json = NULL;
    shimmy_template_free(t);

    /* a name the file does not have falls back to that built-in; an unknown one is NOT_FOUND */
    CHECK_EQ_INT(shimmy_template_from_gguf(meta_path, "chatml", &t, &err), SHIMMY_OK);
    CHECK_STR(shimmy_template_family(t), "chatml");
    CHECK_STR(shimmy_template_end_of_turn(t), "<|im_end|>");
    s = render(t, &o, &r);
    CHECK(s && strstr(s, "<|im_start|>user\nhi<|im_end|>") && strstr(s, "<|im_start|>assistant"));
    shimmy_rendered_free(&r);
    o.no_generation_prompt = true;
    s = render(t, &o, &r);
    CHECK(s && !strstr(s, "<|im_start|>assistant"));
    shimmy_rendered_free(&r);
    o.no_generation_prompt = false;
    shimmy_template_free(t);
    t = (shimmy_template *)1;
    CHECK_EQ_INT(shimmy_template_from_gguf(meta_path, "nonesuch", &t, &err), SHIMMY_ERR_NOT_FOUND);
    CHECK(t == NULL);
    CHECK_STR(err.where, "template");
    CHECK(strstr(err.message, "chatml") != NULL); /* the message lists the families */

    /* a file without a template: the family its vocabulary suggests */
    CHECK_EQ_INT(shimmy_template_from_gguf(bare_path, NULL, &t, &err), SHIMMY_OK);
    CHECK(t && strcmp(shimmy_template_family(t), "unknown") != 0);
    shimmy_template_free(t);

    /* from source, and by family */
    CHECK_EQ_INT(shimmy_template_new("{% for m in messages %}[{{ m.role }}]{% endfor %}", &t, &err),
                 SHIMMY_OK);
    CHECK_STR(shimmy_template_bos(t), "");
    s = render(t, &o, &r);
    CHECK(s && strcmp(s, "[user]") == 0);
    shimmy_rendered_free(&r);
    o.messages_json = "{\"not\":\"a list\"";
    CHECK_EQ_INT(shimmy_template_render(t, &o, &r, &err), SHIMMY_ERR_INVALID_JSON);
    CHECK_STR(err.where, "messages");
    o.messages_json = msgs;
    shimmy_template_free(t);
    CHECK_EQ_INT(shimmy_template_new("{% for %}", &t, &err), SHIMMY_ERR_TEMPLATE);
    CHECK(t == NULL);
    CHECK_EQ_INT(shimmy_template_builtin("llama3", &t, &err), SHIMMY_OK);
    CHECK_STR(shimmy_template_family(t), "llama3");
    CHECK(strstr(shimmy_template_source(t), "start_header_id") != NULL);
    shimmy_template_free(t);
    CHECK_EQ_INT(shimmy_template_builtin("nope", &t, &err), SHIMMY_ERR_NOT_FOUND);
    CHECK_EQ_INT(shimmy_template_builtin(NULL, &t, &err), SHIMMY_ERR_NOT_FOUND);
    CHECK_EQ_INT(shimmy_template_render(NULL, &o, &r, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_template_free(NULL);
    shimmy_rendered_free(NULL);
}

int main(void) {
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    snprintf(meta_path, sizeof meta_path, "%s/meta.gguf", dir);
    snprintf(bare_path, sizeof bare_path, "%s/bare.gguf", dir);
    shimmy_error err;
    if (write_meta(&err)) test_skip(err.message);
    /* the same file without any chat template */
    gguf_file *mf = NULL;
    gguf_writer *w = NULL;
    if (gguf_open_header(meta_path, &mf, &err) || gguf_writer_new(&w, &err)) test_skip(err.message);
    for (size_t i = 0; i < gguf_n_kv(mf); i++) {
        const gguf_kv *kv = gguf_kv_at(mf, i);
        char key[128];
        gguf_str_copy(kv->key, key, sizeof key);
        if (strncmp(key, "tokenizer.chat_template", 23) != 0)
            gguf_writer_set_value(w, key, &kv->value);
    }
    gguf_close(mf);
    if (gguf_writer_write(w, bare_path, &err)) test_skip(err.message);
    gguf_writer_free(w);

    test_gguf();
    test_templates();

    test_rm_rf(dir);
    return test_finish("api/inspect");
}
