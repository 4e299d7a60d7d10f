/* shimmy run's conversation (turns, the system prompt, /save and /load as OpenAI-shaped JSON)
 * and its streaming output, where reasoning is told apart from the answer. */
#include "term.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

bool run_conv_add(run_conv *c, const char *role, const char *content, size_t len) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        run_msg *m = realloc(c->m, cap * sizeof *m);
        if (!m) return false;
        c->m = m;
        c->cap = cap;
    }
    char *r = strdup(role), *t = malloc(len + 1);
    if (!r || !t) {
        free(r);
        free(t);
        return false;
    }
    memcpy(t, content, len);
    t[len] = '\0';
    c->m[c->n++] = (run_msg){r, t};
    return true;
}

bool run_conv_set_system(run_conv *c, const char *text) {
    free(c->system);
    c->system = NULL;
    if (!text || !*text) return true;
    return (c->system = strdup(text)) != NULL;
}

void run_conv_drop_oldest(run_conv *c) {
    /* a user message and everything up to the next user message (its answer) */
    size_t k = c->n ? 1 : 0;
    while (k < c->n && strcmp(c->m[k].role, "user") != 0) k++;
    for (size_t i = 0; i < k; i++) {
        free(c->m[i].role);
        free(c->m[i].content);
    }
    memmove(c->m, c->m + k, (c->n - k) * sizeof *c->m);
    c->n -= k;
}

void run_conv_clear(run_conv *c) {
    while (c->n) run_conv_drop_oldest(c);
}

void run_conv_free(run_conv *c) {
    run_conv_clear(c);
    free(c->m);
    free(c->system);
    memset(c, 0, sizeof *c);
}

static json_t *conv_array(const run_conv *c) {
    json_t *a = json_array();
    if (c->system)
        json_array_append_new(a, json_pack("{s:s,s:s}", "role", "system", "content", c->system));
    for (size_t i = 0; i < c->n; i++) {
        json_t *v = json_object();
        json_object_set_new(v, "role", json_string(c->m[i].role));
        /* a model's bytes need not be UTF-8; JSON wants it */
        json_object_set_new(v, "content", cli_json_text(c->m[i].content));
        json_array_append_new(a, v);
    }
    return a;
}

char *run_conv_json(const run_conv *c) {
    json_t *a = conv_array(c);
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

shimmy_status run_conv_save(const run_conv *c, const char *options_json, const char *path,
                            shimmy_error *err) {
    json_t *root = json_object();
    json_object_set_new(root, "messages", conv_array(c));
    json_t *o = options_json ? json_loads(options_json, 0, NULL) : NULL;
    if (o) json_object_set_new(root, "options", o);
    int rc = json_dump_file(root, path, JSON_INDENT(2));
    json_decref(root);
    if (rc != 0) return shimmy_error_set(err, SHIMMY_ERR_IO, path, "cannot write %s", path);
    return SHIMMY_OK;
}

shimmy_status run_conv_load(run_conv *c, const char *path, char **options_json, shimmy_error *err) {
    *options_json = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, path, "cannot read %s: %s (line %d)",
                                path, je.text, je.line);
    /* a saved chat, or a bare messages array */
    json_t *msgs = json_is_array(root) ? root : json_object_get(root, "messages");
    if (!json_is_array(msgs)) {
        json_decref(root);
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, path,
                                "%s has no \"messages\" array (it is not a saved chat)", path);
    }
    run_conv fresh = {0};
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role || !json_is_string(content) ||
            (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
            run_conv_free(&fresh);
            json_decref(root);
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, path,
                                    "%s: messages[%zu] needs a role (system, user or assistant) "
                                    "and a text content",
                                    path, i);
        }
        bool ok = strcmp(role, "system") == 0
                      ? run_conv_set_system(&fresh, json_string_value(content))
                      : run_conv_add(&fresh, role, json_string_value(content),
                                     json_string_length(content));
        if (!ok) {
            run_conv_free(&fresh);
            json_decref(root);
            return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        }
    }
    json_t *o = json_object_get(root, "options");
    if (json_is_object(o)) *options_json = json_dumps(o, JSON_COMPACT);
    run_conv_free(c);
    *c = fresh;
    json_decref(root);
    return SHIMMY_OK;
}

/* ---- output ---- */

static const char THINK_OPEN[] = "<think>", THINK_CLOSE[] = "</think>";

void run_out_begin(run_out *o) {
    o->in_think = o->any = o->apart = false;
    o->n_pend = 0;
    o->text.len = 0;
    if (o->text.data) o->text.data[0] = '\0';
}

static void emit(run_out *o, const char *s, size_t n) {
    if (!n || (o->in_think && o->hide_think)) return;
    fwrite(s, 1, n, o->f);
    o->any = true;
}

static void set_think(run_out *o, bool on) {
    if (o->in_think == on) return;
    o->in_think = on;
    if (o->ansi && !o->hide_think) fputs(on ? "\033[2m" : "\033[0m", o->f);
}

/* One byte at a time through a small holding buffer: a tag may arrive split over pieces. */
static void feed(run_out *o, char ch) {
    o->pend[o->n_pend++] = ch;
    const char *tag = o->in_think ? THINK_CLOSE : THINK_OPEN;
    const size_t tl = strlen(tag);
    if (o->n_pend <= tl && memcmp(o->pend, tag, o->n_pend) == 0) {
        if (o->n_pend < tl) return; /* maybe a tag: wait */
        o->n_pend = 0;
        if (o->ansi || o->hide_think) { /* the tag itself is not shown on a terminal */
            set_think(o, !o->in_think);
        } else {
            emit(o, tag, tl);
            o->in_think = !o->in_think;
        }
        return;
    }
    /* not the tag: the first held byte is plain text; the rest may start a tag again */
    const size_t n = o->n_pend;
    char held[16];
    memcpy(held, o->pend, n);
    o->n_pend = 0;
    emit(o, held, 1);
    for (size_t k = 1; k < n; k++) feed(o, held[k]);
}

static void close_apart(run_out *o) {
    if (!o->apart) return;
    o->apart = false;
    if (!o->ansi && !o->hide_think) emit(o, THINK_CLOSE, strlen(THINK_CLOSE));
    if (o->ansi && !o->hide_think) fputs("\033[0m\n", o->f);
    o->in_think = false;
}

void run_out_text(run_out *o, const char *s, size_t n) {
    if (n) close_apart(o);
    cli_buf_add(&o->text, s, n);
    for (size_t i = 0; i < n; i++) feed(o, s[i]);
    fflush(o->f);
}

void run_out_reasoning(run_out *o, const char *s, size_t n) {
    if (!o->in_think) {
        if (o->ansi || o->hide_think) {
            set_think(o, true);
        } else {
            emit(o, THINK_OPEN, strlen(THINK_OPEN));
            o->in_think = true;
        }
        o->apart = true;
    }
    emit(o, s, n);
    fflush(o->f);
}

void run_out_end(run_out *o) {
    close_apart(o);
    const size_t n = o->n_pend;
    o->n_pend = 0;
    emit(o, o->pend, n);
    if (o->in_think && !o->ansi && !o->hide_think) emit(o, THINK_CLOSE, strlen(THINK_CLOSE));
    set_think(o, false);
    o->in_think = false;
    fflush(o->f);
}

void run_out_think_opened(run_out *o) {
    if (o->ansi || o->hide_think)
        set_think(o, true);
    else
        o->in_think = true; /* the tag was the prompt's: not printed, its end will be */
}
