/* From a validated request to prompts: the model reference, the chat template (the model's
 * own, else a built-in family), tokenization with special tokens parsed only in template text,
 * and the context budget. Runs on the connection thread so that every request error is known
 * before a response starts. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Call formats of the model files seen, keyed by path, size and mtime: reading a template
 * means reading the GGUF header again (7-17 ms for a 150k-token vocabulary), too much for
 * every request with tools. Process-wide; a replaced file (new inode, size or mtime) misses. */
#define FORMAT_CACHE 16
static struct {
    char path[1024];
    off_t size;
    time_t mtime;
    ino_t ino;
    server_tool_format f;
} format_cache[FORMAT_CACHE];
static size_t format_next;
static pthread_mutex_t format_mu = PTHREAD_MUTEX_INITIALIZER;

static bool format_cached(const char *path, const struct stat *st, server_tool_format *f) {
    bool hit = false;
    pthread_mutex_lock(&format_mu);
    for (size_t i = 0; !hit && i < FORMAT_CACHE; i++) {
        hit = strcmp(format_cache[i].path, path) == 0 && format_cache[i].size == st->st_size &&
              format_cache[i].mtime == st->st_mtime && format_cache[i].ino == st->st_ino;
        if (hit) *f = format_cache[i].f;
    }
    pthread_mutex_unlock(&format_mu);
    return hit;
}

static void format_remember(const char *path, const struct stat *st, server_tool_format f) {
    if (strlen(path) >= sizeof format_cache[0].path) return;
    pthread_mutex_lock(&format_mu);
    size_t i = format_next++ % FORMAT_CACHE;
    snprintf(format_cache[i].path, sizeof format_cache[i].path, "%s", path);
    format_cache[i].size = st->st_size;
    format_cache[i].mtime = st->st_mtime;
    format_cache[i].ino = st->st_ino;
    format_cache[i].f = f;
    pthread_mutex_unlock(&format_mu);
}

/* The call format of the template the model renders with: its source says how it asks for
 * calls (toolcall.h). */
static server_tool_format tool_format_of(server *s, const char *name) {
    server_tool_format f = SERVER_TOOLS_GENERIC;
    shimmy_model_list *l = server_list(s);
    size_t i;
    struct stat st;
    const char *path =
        l && shimmy_model_list_find(l, name, &i) ? shimmy_model_list_path(l, i) : NULL;
    if (path && stat(path, &st) == 0 && format_cached(path, &st, &f)) {
        shimmy_model_list_free(l);
        return f;
    }
    if (path) {
        shimmy_template *t = NULL;
        shimmy_error e;
        if (shimmy_template_from_gguf(path, NULL, &t, &e) == SHIMMY_OK) {
            f = server_toolcall_format(shimmy_template_source(t), shimmy_template_family(t));
            if (stat(path, &st) == 0) format_remember(path, &st, f);
        } else {
            f = server_toolcall_format(NULL, shimmy_model_list_template(l, i));
        }
        shimmy_template_free(t);
    }
    shimmy_model_list_free(l);
    return f;
}

/* OpenAI's gpt-oss template reads an earlier answer's thinking from "thinking", refuses an
 * assistant message with both thinking and content beside a call, and cannot read a null
 * content ("in" on None); OpenAI clients send an answer back as they got it: "content": null
 * beside tool_calls, thinking in "reasoning_content". As llama-server does for this format, the
 * thinking moves to "thinking" and such a call's content goes. */
static void harmony_history(server *s, server_job *j) {
    size_t i;
    json_t *m;
    bool any = false;
    json_array_foreach(j->req.messages, i, m) any |=
        json_object_get(m, "tool_calls") || json_object_get(m, "reasoning_content");
    if (!any || tool_format_of(s, j->base) != SERVER_TOOLS_HARMONY) return;
    json_array_foreach(j->req.messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role || strcmp(role, "assistant") != 0) continue;
        json_t *rc = json_object_get(m, "reasoning_content");
        if (json_is_string(rc) && !json_object_get(m, "thinking"))
            json_object_set(m, "thinking", rc);
        if (json_object_get(m, "tool_calls") && (json_is_null(json_object_get(m, "content")) ||
                                                 json_is_string(json_object_get(m, "thinking"))))
            json_object_del(m, "content");
    }
}

static shimmy_status render_chat(server *s, server_job *j, shimmy_error *err) {
    harmony_history(s, j);
    /* The JSON path hands the template every key (tool_calls, tool_call_id, name) and the
     * request's tools; content is already one string per message (server_request_parse). */
    char *msgs = json_dumps(j->req.messages, JSON_COMPACT);
    char *tools = j->req.tools.tools ? json_dumps(j->req.tools.tools, JSON_COMPACT) : NULL;
    /* chat_template_kwargs become template variables (enable_thinking) */
    char *vars = j->req.template_vars ? json_dumps(j->req.template_vars, JSON_COMPACT) : NULL;
    shimmy_status st;
    if (!msgs || (j->req.tools.tools && !tools) || (j->req.template_vars && !vars))
        st = shimmy_error_set(err, SHIMMY_ERR_NOMEM, "messages", "out of memory");
    else
        st = shimmy_prompt_from_chat_vars(j->model, msgs, tools, vars, &j->prompt[0], err);
    free(msgs);
    free(tools);
    free(vars);
    if (st) return st;
    j->n_choices = 1;
    if (j->req.tools.tools) j->tool_format = tool_format_of(s, j->base);
    return server_structured_tools(j, err); /* a forced call: its grammar */
}

static shimmy_status encode_prompts(server_job *j, shimmy_error *err) {
    /* A raw prompt is the caller's own text, so control tokens written in it count (as in
     * llama-server's completion endpoint). */
    for (size_t i = 0; i < j->req.n_prompts; i++) {
        shimmy_status st = shimmy_prompt_from_text(j->model, j->req.prompts[i],
                                                   strlen(j->req.prompts[i]), &j->prompt[i], err);
        if (st) return st;
        j->n_choices = i + 1;
    }
    return SHIMMY_OK;
}

shimmy_status server_job_prepare(server *s, server_job *j, shimmy_error *err) {
    shimmy_status st = server_lora_resolve(s, j, err);
    if (st) return st;
    st = shimmy_catalog_get(s->cat, j->base, &j->model, err);
    if (st) {
        if (st == SHIMMY_ERR_MODEL_NOT_FOUND || st == SHIMMY_ERR_UNSUPPORTED)
            snprintf(err->where, sizeof err->where, "model");
        return st;
    }
    st = server_lora_attach(s, j, err);
    if (st) return st;
    st = j->req.messages ? render_chat(s, j, err) : encode_prompts(j, err);
    if (st) {
        if (st == SHIMMY_ERR_TEMPLATE) snprintf(err->where, sizeof err->where, "messages");
        return st;
    }
    const int32_t n_vocab = shimmy_model_vocab_size(j->model);
    for (size_t i = 0; i < j->req.n_bias; i++) {
        if (j->req.bias[i].token >= n_vocab)
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                                    "'logit_bias' names token %d but the vocabulary has %d tokens",
                                    j->req.bias[i].token, n_vocab);
    }
    /* top_k beyond the vocabulary keeps every token, as no top_k does. */
    if (j->req.gen.top_k > n_vocab) j->req.gen.top_k = n_vocab;
    /* The context a slot will have for this model (the catalog gives every model ctx_size). */
    int32_t n_ctx = shimmy_model_ctx_len(j->model);
    size_t longest = 0;
    for (size_t i = 0; i < j->n_choices; i++) {
        size_t n = shimmy_prompt_token_count(j->prompt[i]);
        if (n > longest) longest = n;
    }
    const char *field = j->req.messages ? "messages" : "prompt";
    if (longest == 0)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, field, "the prompt is empty");
    if (longest >= (size_t)n_ctx)
        return shimmy_error_set(err, SHIMMY_ERR_CONTEXT_EXCEEDED, field,
                                "this model's context is %d tokens, but the prompt has %zu "
                                "tokens; shorten the %s",
                                n_ctx, longest, field);
    int32_t room = n_ctx - (int32_t)longest;
    if (j->req.max_tokens > 0) {
        if (j->req.max_tokens > room && j->req.max_tokens_bound) j->req.max_tokens = room;
        if (j->req.max_tokens > room)
            return shimmy_error_set(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "max_tokens",
                                    "this model's context is %d tokens; the prompt has %zu tokens "
                                    "and max_tokens asks for %d more; reduce max_tokens or the "
                                    "prompt",
                                    n_ctx, longest, j->req.max_tokens);
        j->max_tokens = j->req.max_tokens;
    } else {
        j->max_tokens = room < s->cfg.max_tokens_cap ? room : s->cfg.max_tokens_cap;
    }
    return SHIMMY_OK;
}
