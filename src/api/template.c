/* Chat templates for library users: a compiled chat_template together with the BOS/EOS texts
 * of the model it came from, so a rendering needs nothing else. The JSON inputs arrive as text
 * and are parsed here, so the public API never exposes a JSON library's types. */
#include "api.h"

#include "chat/chat.h"
#include "gguf/gguf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct shimmy_template {
    chat_template *t;
    char *bos, *eos; /* owned; "" when absent */
};

static shimmy_status make(const char *source, char *bos, char *eos, shimmy_template **out,
                          shimmy_error *err) {
    shimmy_template *t = core_calloc(1, sizeof *t);
    if (!t || (!bos && !(bos = core_strdup(""))) || (!eos && !(eos = core_strdup("")))) {
        free(t);
        free(bos);
        free(eos);
        return core_error(err, SHIMMY_ERR_NOMEM, "template", "out of memory");
    }
    t->bos = bos;
    t->eos = eos;
    shimmy_status st = chat_template_new(source, &t->t, err);
    if (st) {
        shimmy_template_free(t);
        return st;
    }
    *out = t;
    return SHIMMY_OK;
}

shimmy_status shimmy_template_new(const char *source, shimmy_template **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!source) return core_error(err, SHIMMY_ERR_INVALID_ARG, "source", "no template source");
    return make(source, NULL, NULL, out, err);
}

static shimmy_status no_builtin(const char *name, shimmy_error *err) {
    char list[256] = "";
    size_t off = 0;
    for (size_t i = 0; i < chat_builtin_count() && off < sizeof list; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "",
                                chat_builtin_name(i));
    return core_error(err, SHIMMY_ERR_NOT_FOUND, "template",
                      "no template '%s' in the model or among the built-ins (%s)", name, list);
}

shimmy_status shimmy_template_builtin(const char *family, shimmy_template **out,
                                      shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    const char *src = family ? chat_builtin_get(family) : NULL;
    if (!src) return no_builtin(family ? family : "(null)", err);
    return make(src, NULL, NULL, out, err);
}

static char *gstr_dup(gguf_str s) {
    char *c = core_malloc((size_t)s.len + 1);
    if (c) gguf_str_copy(s, c, (size_t)s.len + 1);
    return c;
}

static char *token_text(const gguf_file *f, const char *id_key) {
    uint32_t id;
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
    if (!toks || !gguf_get_u32(f, id_key, &id) || id >= toks->v.arr.count) return NULL;
    return gstr_dup(toks->v.arr.strs[id]);
}

static bool vocab_has(const char *text, void *user) {
    const gguf_value *toks = user;
    for (uint64_t i = 0; i < toks->v.arr.count; i++)
        if (gguf_str_eq(toks->v.arr.strs[i], text)) return true;
    return false;
}

shimmy_status shimmy_template_from_gguf(const char *path, const char *name, shimmy_template **out,
                                        shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!path) return core_error(err, SHIMMY_ERR_INVALID_ARG, "path", "no model file given");
    gguf_file *f = NULL;
    shimmy_status st = gguf_open_header(path, &f, err);
    if (st) return st;
    char key[320];
    gguf_str s;
    snprintf(key, sizeof key, "tokenizer.chat_template%s%s", name ? "." : "", name ? name : "");
    char *own = gguf_get_str(f, key, &s) ? gstr_dup(s) : NULL;
    const char *src = own;
    if (!src) {
        const char *family = name;
        if (!family) {
            char arch[128] = "";
            if (gguf_get_str(f, "general.architecture", &s)) gguf_str_copy(s, arch, sizeof arch);
            const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
            family =
                chat_builtin_pick(arch[0] ? arch : NULL, toks ? vocab_has : NULL, (void *)toks);
        }
        src = chat_builtin_get(family);
        if (!src) {
            gguf_close(f);
            return no_builtin(family, err);
        }
    }
    char *bos = token_text(f, "tokenizer.ggml.bos_token_id");
    char *eos = token_text(f, "tokenizer.ggml.eos_token_id");
    gguf_close(f);
    st = make(src, bos, eos, out, err);
    free(own);
    return st;
}

void shimmy_template_free(shimmy_template *t) {
    if (!t) return;
    chat_template_free(t->t);
    free(t->bos);
    free(t->eos);
    free(t);
}

const char *shimmy_template_source(const shimmy_template *t) {
    return t ? chat_template_source(t->t) : NULL;
}
const char *shimmy_template_family(const shimmy_template *t) {
    return t ? chat_family_of(chat_template_source(t->t)) : NULL;
}
const char *shimmy_template_end_of_turn(const shimmy_template *t) {
    return t ? chat_family_eot(shimmy_template_family(t)) : NULL;
}
const char *shimmy_template_bos(const shimmy_template *t) {
    return t ? t->bos : NULL;
}
const char *shimmy_template_eos(const shimmy_template *t) {
    return t ? t->eos : NULL;
}

static shimmy_status parse(const char *text, const char *what, json_t **out, shimmy_error *err) {
    if (!text) return SHIMMY_OK;
    json_error_t je;
    if (!(*out = json_loads(text, JSON_DECODE_ANY, &je)))
        return core_error(err, SHIMMY_ERR_INVALID_JSON, what, "%s is not valid JSON: %s (line %d)",
                          what, je.text, je.line);
    return SHIMMY_OK;
}

shimmy_status shimmy_template_render(const shimmy_template *t, const shimmy_render_options *o,
                                     shimmy_rendered *out, shimmy_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!t || !o || !out)
        return core_error(err, SHIMMY_ERR_INVALID_ARG,
                          !t   ? "template"
                          : !o ? "options"
                               : "out",
                          "a required pointer is NULL");
    if (!o->messages_json)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "messages", "no messages given");
    json_t *messages = NULL, *tools = NULL, *vars = NULL;
    shimmy_status st = parse(o->messages_json, "messages", &messages, err);
    if (!st) st = parse(o->tools_json, "tools", &tools, err);
    if (!st) st = parse(o->vars_json, "vars", &vars, err);
    if (!st) {
        chat_render_params p = {
            .messages = messages,
            .tools = tools,
            .extra = vars,
            .add_generation_prompt = !o->no_generation_prompt,
            .bos_token = o->bos ? o->bos : t->bos,
            .eos_token = o->eos ? o->eos : t->eos,
            .trim_bos_eos = o->trim_bos_eos,
            .fixed_date = o->date,
        };
        chat_output co = {0};
        st = chat_render(t->t, &p, &co, err);
        if (!st) {
            _Static_assert(sizeof(shimmy_span) == sizeof(chat_span), "spans are copied as is");
            out->text = co.text;
            out->len = co.len;
            out->spans = (shimmy_span *)(void *)co.spans;
            out->n_spans = co.n_spans;
        }
    }
    json_decref(messages);
    json_decref(tools);
    json_decref(vars);
    return st;
}

void shimmy_rendered_free(shimmy_rendered *r) {
    if (!r) return;
    free(r->text);
    free(r->spans);
    memset(r, 0, sizeof *r);
}
