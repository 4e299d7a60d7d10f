/* chat.h's entry points: compiling a template, rendering it with a conversation, and the
 * limits that keep a hostile template from running away. */
#include "jinja.h"

#include <stdlib.h>
#include <string.h>

enum {
    MAX_SOURCE = 1 << 20,        /* longest template accepted (real ones are < 20 KB) */
    DEFAULT_MAX_DEPTH = 100,     /* macro call nesting */
    DEFAULT_MAX_STEPS = 2000000, /* ~0.1 s of interpretation */
};
/* Defaults grow with the request: a template copies its input a few times over while
 * concatenating, so a long conversation must not hit a limit meant for runaway templates. */
#define DEFAULT_MAX_MEMORY ((size_t)64 << 20)
#define DEFAULT_MAX_OUTPUT ((size_t)16 << 20)
enum { MEMORY_PER_INPUT_BYTE = 16, OUTPUT_PER_INPUT_BYTE = 4 };

/* Bytes of text in a JSON value (strings and keys), for the limits above. */
static size_t json_text_bytes(const json_t *j, int depth) {
    size_t n = 0;
    if (!j || depth > 64) return 0;
    if (json_is_string(j)) return json_string_length(j);
    if (json_is_array(j))
        for (size_t i = 0; i < json_array_size(j); i++)
            n += json_text_bytes(json_array_get(j, i), depth + 1);
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) n += strlen(k) + json_text_bytes(v, depth + 1);
    }
    return n;
}

static shimmy_status pass_error(shimmy_error *dst, const shimmy_error *src) {
    if (dst) *dst = *src;
    return src->status;
}

shimmy_status chat_template_new(const char *source, chat_template **out, shimmy_error *err) {
    *out = NULL;
    if (!source)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "chat template", "no template text");
    size_t n = strlen(source);
    if (n > MAX_SOURCE)
        return core_error(err, SHIMMY_ERR_TEMPLATE, "chat template",
                          "template is %zu bytes, more than the %d accepted", n, MAX_SOURCE);
    chat_template *t = core_calloc(1, sizeof *t);
    if (!t) return core_error(err, SHIMMY_ERR_NOMEM, "chat template", "out of memory");
    t->source = core_malloc(n + 1);
    if (!t->source) {
        free(t);
        return core_error(err, SHIMMY_ERR_NOMEM, "chat template", "out of memory");
    }
    memcpy(t->source, source, n + 1);
    /* tokens and nodes are a small multiple of the source */
    t->arena.budget = 256 * n + (1 << 20);
    shimmy_error local;
    shimmy_error_clear(&local);
    chat_parser *p = core_calloc(1, sizeof *p);
    if (!p) {
        chat_template_free(t);
        return core_error(err, SHIMMY_ERR_NOMEM, "chat template", "out of memory");
    }
    p->arena = &t->arena;
    p->src = t->source;
    p->err = &local;
    if (setjmp(p->jb)) {
        free(p->toks);
        free(p);
        chat_template_free(t);
        return pass_error(err, &local);
    }
    chat_parse(p, &t->body, &t->n_body);
    free(p->toks);
    free(p);
    *out = t;
    return SHIMMY_OK;
}

void chat_template_free(chat_template *t) {
    if (!t) return;
    chat_arena_deinit(&t->arena);
    free(t->source);
    free(t);
}

const char *chat_template_source(const chat_template *t) {
    return t->source;
}

static chat_val messages_value(chat_rt *rt, const json_t *msgs) {
    chat_list *l = chat_list_new(rt, json_array_size(msgs));
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m)) {
            l->v[l->n++] = chat_from_json(rt, m, false);
            continue;
        }
        chat_dict *d = chat_dict_new(rt, json_object_size(m));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)m, k, v) {
            chat_dict_set(rt, d, chat_str_cstr(rt, k),
                          chat_from_json(rt, v, strcmp(k, "content") == 0));
        }
        l->v[l->n++] = chat_dictv(d);
    }
    return chat_listv(l);
}

static void set_global(chat_rt *rt, const char *name, chat_val v) {
    chat_scope_set(rt, rt->globals, name, v);
}

static void bind_globals(chat_rt *rt, const chat_render_params *p) {
    rt->globals = chat_scope_new(rt, NULL);
    if (p->extra) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)p->extra, k, v) {
            char *name = chat_alloc(rt, strlen(k) + 1);
            strcpy(name, k);
            set_global(rt, name, chat_from_json(rt, v, false));
        }
    }
    set_global(rt, "messages", messages_value(rt, p->messages));
    if (p->tools) set_global(rt, "tools", chat_from_json(rt, p->tools, false));
    set_global(rt, "add_generation_prompt", chat_bool(p->add_generation_prompt));
    set_global(rt, "bos_token", chat_str_cstr(rt, p->bos_token ? p->bos_token : ""));
    set_global(rt, "eos_token", chat_str_cstr(rt, p->eos_token ? p->eos_token : ""));
}

/* Copies the root buffer out, minus `skip_head` and `skip_tail` bytes, with its spans. */
static shimmy_status emit(chat_rt *rt, const chat_buf *b, size_t skip_head, size_t skip_tail,
                          chat_output *out, shimmy_error *err) {
    size_t len = b->len - skip_head - skip_tail;
    out->text = core_malloc(len + 1);
    out->spans = core_malloc((b->n_r + 1) * sizeof *out->spans);
    if (!out->text || !out->spans) {
        chat_output_free(out);
        return core_error(err, SHIMMY_ERR_NOMEM, "chat template", "out of memory");
    }
    if (len) memcpy(out->text, b->p + skip_head, len);
    out->text[len] = 0;
    out->len = len;
    for (size_t i = 0; i < b->n_r; i++) {
        size_t s = b->r[i].b < skip_head ? 0 : b->r[i].b - skip_head;
        size_t e = b->r[i].e < skip_head ? 0 : b->r[i].e - skip_head;
        if (e > len) e = len;
        if (s < e) {
            out->spans[out->n_spans].begin = s;
            out->spans[out->n_spans++].end = e;
        }
    }
    (void)rt;
    return SHIMMY_OK;
}

shimmy_status chat_render(const chat_template *t, const chat_render_params *p, chat_output *out,
                          shimmy_error *err) {
    memset(out, 0, sizeof *out);
    if (!t || !p || !json_is_array(p->messages))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "messages",
                          "messages must be a JSON array of message objects");
    if (p->tools && !json_is_array(p->tools))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "tools", "tools must be a JSON array");
    if (p->extra && !json_is_object(p->extra))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "chat template",
                          "extra template variables must be a JSON object");
    shimmy_error local;
    shimmy_error_clear(&local);
    chat_rt *rt = core_calloc(1, sizeof *rt);
    if (!rt) return core_error(err, SHIMMY_ERR_NOMEM, "chat template", "out of memory");
    rt->p = p;
    rt->err = &local;
    size_t input = json_text_bytes(p->messages, 0) + json_text_bytes(p->tools, 0) +
                   json_text_bytes(p->extra, 0);
    if (input > SIZE_MAX / 32) input = SIZE_MAX / 32;
    rt->arena.budget =
        p->max_memory ? p->max_memory : DEFAULT_MAX_MEMORY + MEMORY_PER_INPUT_BYTE * input;
    rt->max_steps = p->max_steps ? p->max_steps : DEFAULT_MAX_STEPS;
    rt->max_depth = p->max_depth > 0 ? p->max_depth : DEFAULT_MAX_DEPTH;
    rt->max_output =
        p->max_output ? p->max_output : DEFAULT_MAX_OUTPUT + OUTPUT_PER_INPUT_BYTE * input;
    if (setjmp(rt->jb)) {
        chat_arena_deinit(&rt->arena);
        free(rt);
        return pass_error(err, &local);
    }
    chat_buf *root = chat_alloc(rt, sizeof *root);
    rt->out = root;
    bind_globals(rt, p);
    rt->scope = chat_scope_new(rt, rt->globals);
    chat_exec_body(rt, t->body, t->n_body);
    size_t head = 0, tail = 0;
    if (p->trim_bos_eos) {
        size_t nb = p->bos_token ? strlen(p->bos_token) : 0;
        size_t ne = p->eos_token ? strlen(p->eos_token) : 0;
        if (nb && root->len >= nb && memcmp(root->p, p->bos_token, nb) == 0) head = nb;
        if (ne && root->len - head >= ne && memcmp(root->p + root->len - ne, p->eos_token, ne) == 0)
            tail = ne;
    }
    shimmy_status st = emit(rt, root, head, tail, out, &local);
    chat_arena_deinit(&rt->arena);
    free(rt);
    return st == SHIMMY_OK ? SHIMMY_OK : pass_error(err, &local);
}

void chat_output_free(chat_output *out) {
    if (!out) return;
    free(out->text);
    free(out->spans);
    memset(out, 0, sizeof *out);
}
