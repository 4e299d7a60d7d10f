/* llama-server's small endpoints that its users script against: POST /tokenize (with_pieces),
 * POST /detokenize, POST /apply-template and GET /props. llama-server serves one model; here
 * "model" picks one and may be left out when the server has exactly one. Errors are the
 * OpenAI-shaped ones of the other /v1-style endpoints. */
#include "server.h"

#include <microhttpd.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static shimmy_status bad(shimmy_error *err, const char *where, const char *what) {
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where, "'%s' %s", where, what);
}

/* The listed model a request names (or the only one); *path borrowed from *l. */
static shimmy_status pick_model(server *s, const json_t *model, shimmy_model_list **l,
                                size_t *index, shimmy_error *err) {
    *l = server_list(s);
    size_t n = shimmy_model_list_count(*l);
    if (!model || json_is_null(model)) {
        if (n == 1) {
            *index = 0;
            return SHIMMY_OK;
        }
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "model",
                                "'model' is required (the server has %zu models; see GET "
                                "/v1/models)",
                                n);
    }
    if (!json_is_string(model)) return bad(err, "model", "must be a string");
    if (!shimmy_model_list_find(*l, json_string_value(model), index))
        return shimmy_error_set(err, SHIMMY_ERR_MODEL_NOT_FOUND, "model",
                                "the model '%.200s' does not exist (see GET /v1/models)",
                                json_string_value(model));
    return SHIMMY_OK;
}

/* The body as an object; errors are 400 with a parse position. */
static json_t *body_object(server_call *c, shimmy_error *err) {
    json_error_t je;
    json_t *v = json_loadb(c->body, c->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, NULL,
                         "request body is not valid JSON: %s (line %d, column %d)", je.text,
                         je.line, je.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, NULL, "request body must be a JSON object");
        return NULL;
    }
    return v;
}

static shimmy_status opt_bool(const json_t *root, const char *key, bool *out, shimmy_error *err) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return SHIMMY_OK;
    if (!json_is_boolean(v)) return bad(err, key, "must be true or false");
    *out = json_is_true(v);
    return SHIMMY_OK;
}

/* Vocabularies opened for these endpoints, kept for the process (immutable, shared by any
 * number of threads) and keyed by file identity, as prompt.c keys call formats: opening one
 * builds the tokenizer from the GGUF header (tens of ms for a 150k-token vocabulary), too much
 * for every /tokenize. A replaced file (inode, size or mtime) misses; past VOCAB_CACHE files a
 * vocabulary is opened for the request and freed after it. */
#define VOCAB_CACHE 8
static struct {
    char path[1024];
    off_t size;
    time_t mtime;
    ino_t ino;
    shimmy_vocab *v;
} vocab_cache[VOCAB_CACHE];
static size_t vocab_used;
static pthread_mutex_t vocab_mu = PTHREAD_MUTEX_INITIALIZER;

/* The vocabulary of the model (header only, no weights: tokenizing never loads a model).
 * *owned: the caller frees it (not cached). */
static shimmy_status open_vocab(server *s, const json_t *root, shimmy_vocab **v, bool *owned,
                                shimmy_error *err) {
    shimmy_model_list *l = NULL;
    size_t i;
    *owned = false;
    shimmy_status st = pick_model(s, json_object_get(root, "model"), &l, &i, err);
    const char *path = st ? NULL : shimmy_model_list_path(l, i);
    struct stat fst;
    bool known = path && stat(path, &fst) == 0 && strlen(path) < sizeof vocab_cache[0].path;
    pthread_mutex_lock(&vocab_mu);
    for (size_t k = 0; known && k < vocab_used && !*v; k++)
        if (strcmp(vocab_cache[k].path, path) == 0 && vocab_cache[k].size == fst.st_size &&
            vocab_cache[k].mtime == fst.st_mtime && vocab_cache[k].ino == fst.st_ino)
            *v = vocab_cache[k].v;
    pthread_mutex_unlock(&vocab_mu);
    if (!st && !*v) {
        st = shimmy_vocab_open(path, v, err);
        *owned = !st;
        pthread_mutex_lock(&vocab_mu);
        if (!st && known && vocab_used < VOCAB_CACHE) {
            size_t k = vocab_used++;
            snprintf(vocab_cache[k].path, sizeof vocab_cache[k].path, "%s", path);
            vocab_cache[k].size = fst.st_size;
            vocab_cache[k].mtime = fst.st_mtime;
            vocab_cache[k].ino = fst.st_ino;
            vocab_cache[k].v = *v;
            *owned = false;
        }
        pthread_mutex_unlock(&vocab_mu);
    }
    shimmy_model_list_free(l);
    return st;
}

/* A piece as llama-server writes it: a string when it is valid UTF-8 on its own, else its
 * bytes (a byte token, part of a character). */
static json_t *piece_json(const shimmy_vocab *v, int32_t id) {
    char small[128];
    size_t n = shimmy_token_piece(v, id, true, small, sizeof small);
    char *buf = n > sizeof small ? malloc(n) : small;
    if (!buf) return json_null();
    if (buf != small) shimmy_token_piece(v, id, true, buf, n);
    json_t *s = json_stringn(buf, n);
    if (!s) {
        s = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(s, json_integer((unsigned char)buf[k]));
    }
    if (buf != small) free(buf);
    return s;
}

int server_handle_tokenize(server_call *c) {
    shimmy_error err;
    json_t *root = body_object(c, &err);
    if (!root) return server_reply_error(c, &err);
    bool add_special = false, parse_special = true, with_pieces = false;
    const json_t *content = json_object_get(root, "content");
    shimmy_status st = SHIMMY_OK;
    if (!json_is_string(content)) st = bad(&err, "content", "is required (a string)");
    if (!st) st = opt_bool(root, "add_special", &add_special, &err);
    if (!st) st = opt_bool(root, "parse_special", &parse_special, &err);
    if (!st) st = opt_bool(root, "with_pieces", &with_pieces, &err);
    shimmy_vocab *v = NULL;
    bool owned = false;
    if (!st) st = open_vocab(c->srv, root, &v, &owned, &err);
    int32_t *ids = NULL;
    size_t n = 0;
    unsigned flags = (add_special ? SHIMMY_TOKENIZE_ADD_SPECIAL : 0) |
                     (parse_special ? SHIMMY_TOKENIZE_PARSE_SPECIAL : 0);
    if (!st)
        st = shimmy_tokenize(v, json_string_value(content), json_string_length(content), flags,
                             &ids, &n, &err);
    json_decref(root);
    if (st) {
        if (owned) shimmy_vocab_free(v);
        return server_reply_error(c, &err);
    }
    json_t *tokens = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(tokens, with_pieces ? json_pack("{s:i,s:o}", "id", ids[i], "piece",
                                                              piece_json(v, ids[i]))
                                                  : json_integer(ids[i]));
    shimmy_free(ids);
    if (owned) shimmy_vocab_free(v);
    return server_reply_json(c, 200, json_pack("{s:o}", "tokens", tokens));
}

int server_handle_detokenize(server_call *c) {
    shimmy_error err;
    json_t *root = body_object(c, &err);
    if (!root) return server_reply_error(c, &err);
    const json_t *tokens = json_object_get(root, "tokens");
    shimmy_status st = SHIMMY_OK;
    size_t n = json_array_size(tokens);
    int32_t *ids = NULL;
    if (!json_is_array(tokens)) st = bad(&err, "tokens", "is required (an array of token ids)");
    if (!st && n && !(ids = malloc(n * sizeof *ids)))
        st = shimmy_error_set(&err, SHIMMY_ERR_NOMEM, "tokens", "out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        const json_t *t = json_array_get(tokens, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            st = shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "tokens",
                                  "'tokens[%zu]' must be a token id (an integer >= 0)", i);
        else
            ids[i] = (int32_t)json_integer_value(t);
    }
    shimmy_vocab *v = NULL;
    bool owned = false;
    if (!st) st = open_vocab(c->srv, root, &v, &owned, &err);
    char *text = NULL;
    size_t len = 0;
    /* Special tokens show as their text (llama-server's behaviour); a cut-off character
     * becomes U+FFFD so that the reply is valid JSON. */
    if (!st)
        st = shimmy_detokenize(v, ids, n, SHIMMY_DETOKENIZE_SPECIAL | SHIMMY_DETOKENIZE_VALID_UTF8,
                               &text, &len, &err);
    if (st == SHIMMY_ERR_INVALID_ARG) snprintf(err.where, sizeof err.where, "tokens");
    free(ids);
    if (owned) shimmy_vocab_free(v);
    json_decref(root);
    if (st) return server_reply_error(c, &err);
    json_t *s = json_stringn(text ? text : "", len);
    shimmy_free(text);
    return server_reply_json(c, 200, json_pack("{s:o}", "content", s ? s : json_string("")));
}

int server_handle_apply_template(server_call *c) {
    shimmy_error err;
    json_t *root = body_object(c, &err);
    if (!root) return server_reply_error(c, &err);
    const json_t *msgs = json_object_get(root, "messages");
    shimmy_status st = SHIMMY_OK;
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        st = bad(&err, "messages", "is required (a non-empty array of {role, content})");
    for (size_t i = 0; !st && i < json_array_size(msgs); i++) {
        const json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            st = shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "messages",
                                  "'messages[%zu]' must be an object with a string 'role'", i);
    }
    shimmy_model_list *l = NULL;
    size_t i = 0;
    if (!st) st = pick_model(c->srv, json_object_get(root, "model"), &l, &i, &err);
    shimmy_template *t = NULL;
    if (!st) st = shimmy_template_from_gguf(shimmy_model_list_path(l, i), NULL, &t, &err);
    shimmy_model_list_free(l);
    char *mj = st ? NULL : json_dumps(msgs, JSON_COMPACT);
    shimmy_rendered r = {0};
    if (!st) {
        shimmy_render_options ro = {.messages_json = mj};
        st = shimmy_template_render(t, &ro, &r, &err);
        if (st == SHIMMY_ERR_TEMPLATE || st == SHIMMY_ERR_INVALID_JSON)
            snprintf(err.where, sizeof err.where, "messages");
    }
    free(mj);
    shimmy_template_free(t);
    json_decref(root);
    if (st) return server_reply_error(c, &err);
    json_t *p = json_stringn(r.text, r.len);
    shimmy_rendered_free(&r);
    return server_reply_json(c, 200, json_pack("{s:o}", "prompt", p ? p : json_string("")));
}

int server_handle_props(server_call *c) {
    shimmy_error err;
    const char *q = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "model");
    json_t *model = q ? json_string(q) : NULL;
    shimmy_model_list *l = NULL;
    size_t i;
    shimmy_status st = pick_model(c->srv, model, &l, &i, &err);
    json_decref(model);
    if (st) {
        shimmy_model_list_free(l);
        return server_reply_error(c, &err);
    }
    shimmy_model_entry e;
    shimmy_model_list_entry(l, i, &e);
    shimmy_template *t = NULL;
    const char *source = "";
    if (shimmy_template_from_gguf(e.path, NULL, &t, NULL) == SHIMMY_OK)
        source = shimmy_template_source(t);
    int32_t n_ctx = c->srv->cfg.ctx_size > 0
                        ? c->srv->cfg.ctx_size
                        : (int32_t)(e.ctx_len && e.ctx_len < 4096 ? e.ctx_len : 4096);
    shimmy_gen_options d;
    server_gen_defaults(&d);
    json_t *params =
        json_pack("{s:f,s:i,s:f,s:f,s:f,s:i,s:i}", "temperature", d.temperature, "top_k", d.top_k,
                  "top_p", d.top_p, "min_p", d.min_p, "repeat_penalty", 1.0, "repeat_last_n",
                  d.repeat_last_n, "n_predict", c->srv->cfg.max_tokens_cap);
    json_t *v =
        json_pack("{s:{s:i,s:o},s:i,s:s,s:s,s:s,s:{s:b,s:b},s:s}", "default_generation_settings",
                  "n_ctx", n_ctx, "params", params, "total_slots", c->srv->n_slots, "model_path",
                  e.path, "model_alias", e.name, "chat_template", source, "modalities",
                  "completion", 1, "vision", 0, "build_info", "shimmy " SHIMMY_VERSION);
    shimmy_template_free(t);
    shimmy_model_list_free(l);
    return server_reply_json(c, 200, v);
}
