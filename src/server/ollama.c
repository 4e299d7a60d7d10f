/* Ollama's API handlers: chat and generate on the shared generation path, the listings
 * (tags, ps), show, version, "/", and clear refusals for what shimmy does not do. */
#include "ollama.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Ollama's version whose API shapes these endpoints follow (clients compare it to decide what
 * they may send, e.g. "think" needs 0.9). */
#define OLLAMA_API_VERSION "0.12.0"

bool server_route_is_ollama(const char *route) {
    static const char *const paths[] = {
        "/",         "/api/generate", "/api/chat",  "/api/tags",      "/api/show",
        "/api/ps",   "/api/version",  "/api/pull",  "/api/push",      "/api/create",
        "/api/copy", "/api/delete",   "/api/embed", "/api/embeddings"};
    for (size_t i = 0; route && i < sizeof paths / sizeof paths[0]; i++)
        if (strcmp(route, paths[i]) == 0) return true;
    return false;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int reply_status(server_call *c, int http, const char *msg) {
    json_t *v = json_pack("{s:s}", "error", msg);
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    int ok = server_reply(c, http, "application/json", s ? s : "", s ? strlen(s) : 0);
    free(s);
    return ok;
}

/* The listed name for `name`: as given, or without Ollama's default tag ":latest" that clients
 * add. False (and err filled, 404 in Ollama's words) when nothing matches. */
static bool resolve_model(server *s, const char *name, char *out, size_t cap, shimmy_error *err) {
    shimmy_model_list *l = server_list(s);
    size_t i;
    bool ok = shimmy_model_list_find(l, name, &i);
    size_t n = strlen(name);
    if (!ok && n > 7 && strcmp(name + n - 7, ":latest") == 0) {
        char bare[256];
        snprintf(bare, sizeof bare, "%.*s", (int)(n - 7), name);
        ok = shimmy_model_list_find(l, bare, &i);
    }
    if (ok) snprintf(out, cap, "%s", shimmy_model_list_name(l, i));
    /* An adapter model (serve --lora) is a model too: the generation path resolves it. */
    size_t k;
    shimmy_adapter_info a;
    if (!ok && shimmy_model_list_find_adapter(l, name, &k) && shimmy_model_list_adapter(l, k, &a) &&
        a.base) {
        snprintf(out, cap, "%s", a.name);
        ok = true;
    }
    shimmy_model_list_free(l);
    if (!ok)
        shimmy_error_set(err, SHIMMY_ERR_MODEL_NOT_FOUND, "model",
                         "model \"%.200s\" not found; shimmy serves the GGUF files it finds (GET "
                         "/api/tags lists them) and downloads with `shimmy pull`",
                         name);
    return ok;
}

/* ---- chat and generate ---- */

/* An empty prompt or message list loads the model (or with keep_alive 0 unloads it): Ollama's
 * way of preloading, answered with done_reason "load" / "unload". */
static int load_only(server_call *c, server_request *req, ollama_opts *o, const char *asked) {
    shimmy_error err;
    bool unload = o->has_keep_alive && o->keep_alive_s == 0;
    if (unload) {
        server_keepalive_set(c->srv, req->model, NULL, 0);
    } else {
        shimmy_model *m = NULL;
        if (shimmy_catalog_get(c->srv->cat, req->model, &m, &err))
            return ollama_reply_error(c, &err);
        if (o->has_keep_alive) server_keepalive_set(c->srv, req->model, m, o->keep_alive_s);
        shimmy_model_unref(m);
    }
    char ts[40];
    ollama_time(wall_now(), ts);
    json_t *v = json_pack("{s:s,s:s,s:b,s:s}", "model", asked, "created_at", ts, "done", 1,
                          "done_reason", unload ? "unload" : "load");
    if (v && o->chat)
        json_object_set_new(v, "message",
                            json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
    else if (v)
        json_object_set_new(v, "response", json_string(""));
    return server_reply_json(c, 200, v);
}

static int chat_or_generate(server_call *c, bool chat) {
    server *s = c->srv;
    server_call_hold(s, c->conn, true); /* loading is not the client's idleness */
    server_request req;
    ollama_opts o;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (ollama_request_parse(chat, c->body, c->body_len, s->cfg.max_tokens_cap, &req, &o, &err))
        return ollama_reply_error(c, &err);
    char name[256], asked[256];
    snprintf(asked, sizeof asked, "%s", req.model);
    if (!resolve_model(s, req.model, name, sizeof name, &err)) {
        server_request_deinit(&req);
        ollama_opts_deinit(&o);
        return ollama_reply_error(c, &err);
    }
    snprintf(req.model, sizeof req.model, "%s", name);
    if (o.load_only) {
        int ok = load_only(c, &req, &o, asked);
        server_request_deinit(&req);
        ollama_opts_deinit(&o);
        return ok;
    }
    shimmy_load_status before;
    shimmy_catalog_status(s->cat, req.model, &before);
    ollama_job *oj = ollama_job_new(&o);
    if (!oj) {
        server_request_deinit(&req);
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        return ollama_reply_error(c, &err);
    }
    oj->was_loaded = before.state == SHIMMY_LOAD_LOADED;
    snprintf(oj->model, sizeof oj->model, "%s", asked);
    if (oj->o.grammar) {
        /* The grammar text lives in the job's ext as long as the job's options point at it. */
        req.gen.grammar = oj->o.grammar;
        /* With thinking asked for, the answer after the thinking is what must match. */
        if (oj->o.think == 1) req.gen.grammar_after = "</think>";
    }
    const server_fmt *fmt = chat ? (req.stream ? &ollama_fmt_chat_stream : &ollama_fmt_chat_json)
                                 : (req.stream ? &ollama_fmt_gen_stream : &ollama_fmt_gen_json);
    return server_run_parsed(c, &req, fmt, oj, ollama_job_free, ollama_reply_error);
}

int server_handle_ollama_chat(server_call *c) {
    return chat_or_generate(c, true);
}

int server_handle_ollama_generate(server_call *c) {
    return chat_or_generate(c, false);
}

/* ---- listings ---- */

/* A stable identifier of the file's version (path, size, mtime): Ollama's digest names a
 * manifest, which a GGUF file found on disk does not have. */
static void file_digest(const char *path, char out[65]) {
    struct stat st;
    char key[1200];
    if (stat(path, &st) != 0) memset(&st, 0, sizeof st);
    int n = snprintf(key, sizeof key, "%s|%lld|%lld", path, (long long)st.st_size,
                     (long long)st.st_mtime);
    unsigned char h[20];
    server_sha1(key, n > 0 ? (size_t)n : 0, h);
    for (int i = 0; i < 20; i++) snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static json_t *details_of(const shimmy_model_entry *e) {
    const char *family = e->architecture && *e->architecture ? e->architecture : "unknown";
    return json_pack("{s:s,s:s,s:s,s:[s],s:s,s:s}", "parent_model", "", "format", "gguf", "family",
                     family, "families", family, "parameter_size",
                     e->size_label ? e->size_label : "", "quantization_level",
                     e->quant ? e->quant : "");
}

static json_t *model_entry(const shimmy_model_entry *e) {
    struct stat st;
    char ts[40], digest[65];
    ollama_time(stat(e->path, &st) == 0 ? (double)st.st_mtime : 0, ts);
    file_digest(e->path, digest);
    return json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", e->name, "model", e->name, "modified_at",
                     ts, "size", (json_int_t)e->size, "digest", digest, "details", details_of(e));
}

int server_handle_ollama_tags(server_call *c) {
    shimmy_model_list *l = server_list(c->srv);
    json_t *arr = json_array();
    for (size_t i = 0; i < shimmy_model_list_count(l); i++) {
        shimmy_model_entry e;
        if (shimmy_model_list_entry(l, i, &e)) json_array_append_new(arr, model_entry(&e));
    }
    shimmy_model_list_free(l);
    return server_reply_json(c, 200, json_pack("{s:o}", "models", arr));
}

int server_handle_ollama_ps(server_call *c) {
    size_t n;
    shimmy_load_status *st = server_models_snapshot(c->srv, &n);
    shimmy_model_list *l = server_list(c->srv);
    json_t *arr = json_array();
    double keep = c->srv->cfg.keep_alive_s == 0 ? 300 : c->srv->cfg.keep_alive_s;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        shimmy_model_entry e;
        if (st[i].state != SHIMMY_LOAD_LOADED || !shimmy_model_list_find(l, st[i].name, &k) ||
            !shimmy_model_list_entry(l, k, &e))
            continue;
        json_t *v = model_entry(&e);
        if (!v) continue;
        /* A request's keep_alive sets the deadline; otherwise the catalog's idle unload. */
        double left;
        if (!server_keepalive_expiry(c->srv, st[i].name, &left))
            left = keep < 0 ? -1 : keep - st[i].idle_s;
        char ts[40];
        ollama_time(left < 0 ? 4102444800.0 /* 2100-01-01: never */ : wall_now() + left, ts);
        json_object_set_new(v, "size", json_integer((json_int_t)st[i].bytes));
        json_object_set_new(v, "size_vram", json_integer((json_int_t)st[i].device_bytes));
        json_object_set_new(v, "expires_at", json_string(ts));
        json_object_set_new(
            v, "context_length",
            json_integer(c->srv->cfg.ctx_size > 0
                             ? c->srv->cfg.ctx_size
                             : (json_int_t)(e.ctx_len < 4096 && e.ctx_len ? e.ctx_len : 4096)));
        json_array_append_new(arr, v);
    }
    shimmy_model_list_free(l);
    free(st);
    return server_reply_json(c, 200, json_pack("{s:o}", "models", arr));
}

int server_handle_ollama_version(server_call *c) {
    return server_reply_json(
        c, 200,
        json_pack("{s:s,s:s}", "version", OLLAMA_API_VERSION, "shimmy_version", SHIMMY_VERSION));
}

int server_handle_ollama_root(server_call *c) {
    static const char text[] = "Ollama is running";
    return server_reply(c, 200, "text/plain; charset=utf-8", text, sizeof text - 1);
}

int server_handle_ollama_store(server_call *c) {
    if (strcmp(c->route, "/api/pull") == 0)
        return reply_status(c, 501,
                            "shimmy does not pull over the Ollama API: run `shimmy pull "
                            "<huggingface-repo>` to download a GGUF model, then it is listed by "
                            "GET /api/tags");
    char msg[256];
    snprintf(msg, sizeof msg,
             "%s is not supported: shimmy serves the GGUF files it finds on disk and does not "
             "manage a model store (see `shimmy list`)",
             c->route);
    return reply_status(c, 501, msg);
}
