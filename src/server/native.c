/* The native API: /health, /metrics and model management under /api/models (/api/generate is
 * Ollama's, ollama.c; the WebSocket generation, ws.c, shares server_gen_final). */
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* ---- the final object of a native (WebSocket) generation ---- */

static json_t *gen_usage(const server_job *j) {
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)j->usage_prompt,
                     "completion_tokens", (json_int_t)j->usage_completion, "total_tokens",
                     (json_int_t)(j->usage_prompt + j->usage_completion));
}

/* The final event/body of a native generation; text is the whole response for JSON bodies. */
json_t *server_gen_final(const server_job *j, const char *finish) {
    return json_pack("{s:s,s:s,s:b,s:s,s:o,s:{s:f}}", "id", j->id, "model", j->req.model, "done", 1,
                     "finish_reason", finish ? finish : "stop", "usage", gen_usage(j), "timings",
                     "ttft_ms", j->ttft_ms);
}

/* ---- health and metrics ---- */

shimmy_load_status *server_models_snapshot(server *s, size_t *n) {
    /* The list may grow between the two calls; a little room and a clamp cover that. */
    size_t cap = shimmy_catalog_statuses(s->cat, NULL, 0) + 8;
    shimmy_load_status *infos = calloc(cap, sizeof *infos);
    *n = 0;
    if (!infos) return NULL;
    *n = shimmy_catalog_statuses(s->cat, infos, cap);
    if (*n > cap) *n = cap;
    return infos;
}

static json_t *loaded_models(server *s, size_t *n_loaded) {
    size_t n;
    shimmy_load_status *infos = server_models_snapshot(s, &n);
    json_t *arr = json_array();
    *n_loaded = 0;
    for (size_t i = 0; i < n; i++) {
        if (infos[i].state != SHIMMY_LOAD_LOADED) continue;
        json_array_append_new(arr, json_pack("{s:s,s:I,s:i}", "name", infos[i].name, "bytes",
                                             (json_int_t)infos[i].bytes, "users", infos[i].users));
        (*n_loaded)++;
    }
    free(infos);
    return arr;
}

int server_handle_health(server_call *c) {
    server *s = c->srv;
    int queued, running;
    server_queue_depth(s, &queued, &running);
    shimmy_model_list *l = server_list(s);
    size_t available = shimmy_model_list_count(l);
    shimmy_model_list_free(l);
    size_t n_loaded;
    json_t *loaded = loaded_models(s, &n_loaded);
    return server_reply_json(c, 200,
                             json_pack("{s:s,s:s,s:I,s:o,s:{s:i,s:i,s:i},s:f}", "status", "ok",
                                       "version", SHIMMY_VERSION, "models_available",
                                       (json_int_t)available, "models_loaded", loaded, "slots",
                                       "total", s->n_slots, "busy", running, "queued", queued,
                                       "uptime_s", (server_clock_ms() - s->t_start) / 1000.0));
}

int server_handle_metrics(server_call *c) {
    char *text = server_metrics_render(c->srv);
    if (!text) {
        shimmy_error err;
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory while rendering metrics");
        return server_reply_error(c, &err);
    }
    int ok = server_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return ok;
}

/* ---- model management ---- */

static json_t *entry_object(server *s, const shimmy_model_list *l, size_t i) {
    shimmy_model_entry e;
    if (!shimmy_model_list_entry(l, i, &e)) return NULL;
    shimmy_load_status info;
    shimmy_catalog_status(s->cat, e.name, &info);
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:I}", "name", e.name, "path",
                     e.path, "size", (json_int_t)e.size, "architecture", e.architecture, "quant",
                     e.quant ? e.quant : "", "size_label", e.size_label ? e.size_label : "",
                     "context_length", (json_int_t)e.ctx_len, "template",
                     e.template_family ? e.template_family : "", "source", e.source, "state",
                     shimmy_load_state_name(info.state), "bytes", (json_int_t)info.bytes);
}

/* Bytes of the adapter's file (or PEFT folder); 0 when it cannot be read. */
static uint64_t adapter_bytes(const char *path) {
    shimmy_adapter_desc d;
    if (shimmy_adapter_describe(path, &d, NULL)) return 0;
    uint64_t bytes = d.bytes;
    shimmy_adapter_desc_free(&d);
    return bytes;
}

/* An adapter model: the base's facts, the adapter's name, path and size, and "parent". */
static json_t *adapter_model_object(server *s, const shimmy_model_list *l,
                                    const shimmy_adapter_info *a) {
    size_t bi;
    json_t *v = shimmy_model_list_find(l, a->base, &bi) ? entry_object(s, l, bi) : NULL;
    if (!v) return NULL;
    json_object_set_new(v, "name", json_string(a->name));
    json_object_set_new(v, "path", json_string(a->path));
    json_object_set_new(v, "size", json_integer((json_int_t)adapter_bytes(a->path)));
    json_object_set_new(v, "parent", json_string(a->base));
    json_object_set_new(v, "scale", json_real(server_lora_default_scale(s, l, a->name)));
    return v;
}

int server_handle_api_models(server_call *c) {
    shimmy_model_list *l = server_list(c->srv);
    json_t *arr = json_array();
    for (size_t i = 0; i < shimmy_model_list_count(l); i++)
        json_array_append_new(arr, entry_object(c->srv, l, i));
    for (size_t i = 0; i < shimmy_model_list_adapter_count(l); i++) {
        shimmy_adapter_info a;
        if (shimmy_model_list_adapter(l, i, &a) && a.base &&
            !shimmy_model_list_find(l, a.name, NULL))
            json_array_append_new(arr, adapter_model_object(c->srv, l, &a));
    }
    shimmy_model_list_free(l);
    return server_reply_json(c, 200, json_pack("{s:o}", "models", arr));
}

/* ---- adapters ---- */

/* What the adapter targets, its rank (the listing's, else the file's) and size. */
static void adapter_targets(const shimmy_adapter_info *a, json_t *v) {
    json_t *targets = json_array();
    int rank = a->rank;
    uint64_t bytes = 0;
    shimmy_adapter_desc d;
    if (shimmy_adapter_describe(a->path, &d, NULL) == SHIMMY_OK) {
        for (size_t i = 0; i < d.n_targets; i++)
            json_array_append_new(targets, json_string(d.targets[i]));
        if (!rank) rank = d.rank;
        bytes = d.bytes;
        shimmy_adapter_desc_free(&d);
    }
    json_object_set_new(v, "size", json_integer((json_int_t)bytes));
    json_object_set_new(v, "rank", json_integer(rank));
    json_object_set_new(v, "n_targets", json_integer((json_int_t)json_array_size(targets)));
    json_object_set_new(v, "targets", targets);
}

int server_handle_adapters(server_call *c) {
    shimmy_model_list *l = server_list(c->srv);
    json_t *arr = json_array();
    for (size_t i = 0; i < shimmy_model_list_adapter_count(l); i++) {
        shimmy_adapter_info a;
        if (!shimmy_model_list_adapter(l, i, &a)) continue;
        json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:s}", "name", a.name, "path", a.path,
                              "format", a.format, "architecture", a.architecture, "source",
                              a.source, "alpha", (double)a.alpha, "reason", a.reason);
        if (!v) continue;
        json_object_set_new(v, "base", a.base ? json_string(a.base) : json_null());
        json_object_set_new(v, "parent", a.base ? json_string(a.base) : json_null());
        if (a.base)
            json_object_set_new(v, "scale",
                                json_real(server_lora_default_scale(c->srv, l, a.name)));
        adapter_targets(&a, v);
        json_array_append_new(arr, v);
    }
    shimmy_model_list_free(l);
    return server_reply_json(c, 200, json_pack("{s:o}", "adapters", arr));
}

int server_handle_discover(server_call *c) {
    server *s = c->srv;
    shimmy_error err;
    if (shimmy_catalog_rescan(s->cat, &err)) return server_reply_error(c, &err);
    shimmy_model_list *l = server_list(s);
    json_t *v = json_pack("{s:I,s:I,s:f}", "models", (json_int_t)shimmy_model_list_count(l),
                          "skipped", (json_int_t)shimmy_model_list_skipped_count(l), "scan_ms",
                          shimmy_model_list_scan_ms(l));
    shimmy_model_list_free(l);
    return server_reply_json(c, 200, v);
}

/* A name the listing does not have is a 404 before the catalog is asked anything. */
static bool known_model(server_call *c, shimmy_error *err) {
    shimmy_model_list *l = server_list(c->srv);
    size_t i;
    bool ok = shimmy_model_list_find(l, c->param, &i);
    if (ok) /* the canonical spelling */
        snprintf(c->param, sizeof c->param, "%s", shimmy_model_list_name(l, i));
    shimmy_model_list_free(l);
    if (!ok)
        shimmy_error_set(err, SHIMMY_ERR_MODEL_NOT_FOUND, "model",
                         "the model '%.200s' does not exist (see GET /api/models)", c->param);
    return ok;
}

static json_t *status_object(server *s, const char *name) {
    shimmy_load_status info;
    shimmy_catalog_status(s->cat, name, &info);
    json_t *v = json_pack("{s:s,s:s,s:I,s:i,s:f,s:f}", "name", name, "state",
                          shimmy_load_state_name(info.state), "bytes", (json_int_t)info.bytes,
                          "users", info.users, "idle_s", info.idle_s, "load_ms", info.load_ms);
    if (v && info.state == SHIMMY_LOAD_FAILED)
        json_object_set_new(v, "error", json_string(info.error.message));
    return v;
}

int server_handle_load(server_call *c) {
    shimmy_error err;
    if (!known_model(c, &err)) return server_reply_error(c, &err);
    shimmy_model *m = NULL;
    if (shimmy_catalog_get(c->srv->cat, c->param, &m, &err)) return server_reply_error(c, &err);
    shimmy_model_unref(m); /* the catalog keeps it loaded until keep_alive or unload */
    return server_reply_json(c, 200, status_object(c->srv, c->param));
}

int server_handle_unload(server_call *c) {
    shimmy_error err;
    if (!known_model(c, &err)) return server_reply_error(c, &err);
    if (shimmy_catalog_unload(c->srv->cat, c->param, &err)) {
        snprintf(err.where, sizeof err.where, "model");
        return server_reply_error(c, &err);
    }
    server_slots_drop_unloaded(c->srv);
    return server_reply_json(c, 200, status_object(c->srv, c->param));
}

int server_handle_status(server_call *c) {
    shimmy_error err;
    if (!known_model(c, &err)) return server_reply_error(c, &err);
    return server_reply_json(c, 200, status_object(c->srv, c->param));
}
