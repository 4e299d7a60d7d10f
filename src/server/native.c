/* The native API: /health, /metrics, /api/generate and model management under /api/models. */
#include "server.h"

#include "gguf/gguf.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- /api/generate formats ---- */

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

static void gen_nothing(server_job *j) {
    (void)j;
}

static void gen_sse_text(server_job *j, size_t choice, const char *text, size_t len) {
    json_t *t = json_stringn(text, len);
    server_job_sse(j, json_pack("{s:o}", "token", t ? t : json_string("")));
}

static void gen_sse_end(server_job *j, size_t choice, const char *finish) {
    server_job_sse(j, server_gen_final(j, finish));
}

static void gen_sse_fail(server_job *j, const shimmy_error *err) {
    server_job_sse(j, server_error_object(err));
}

const server_fmt server_fmt_gen_sse = {"generate-sse", gen_nothing, gen_sse_text,
                                       gen_sse_end,    gen_nothing, gen_sse_fail};

static void gen_json_text(server_job *j, size_t choice, const char *text, size_t len) {
    server_job_acc_append(j, text, len);
}

static void gen_json_end(server_job *j, size_t choice, const char *finish) {
    json_t *v = server_gen_final(j, finish);
    json_t *t = json_stringn(j->acc ? j->acc : "", j->acc_len);
    if (v) json_object_set_new(v, "response", t ? t : json_string(""));
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (s) server_job_write(j, s, strlen(s));
    free(s);
}

static void gen_json_fail(server_job *j, const shimmy_error *err) {
    char *s = server_error_json(err, NULL);
    if (s) server_job_write(j, s, strlen(s));
    free(s);
}

const server_fmt server_fmt_gen_json = {"generate-json", gen_nothing, gen_json_text,
                                        gen_json_end,    gen_nothing, gen_json_fail};

int server_handle_generate(server_call *c) {
    return server_run(c, SERVER_API_GENERATE, &server_fmt_gen_sse, &server_fmt_gen_json);
}

/* ---- health and metrics ---- */

manager_info *server_models_snapshot(server *s, size_t *n) {
    /* The list may grow between the two calls; a little room and a clamp cover that. */
    manager_info probe; /* never written with cap 0; only counts */
    size_t cap = manager_list(s->mgr, &probe, 0) + 8;
    manager_info *infos = calloc(cap, sizeof *infos);
    *n = 0;
    if (!infos) return NULL;
    *n = manager_list(s->mgr, infos, cap);
    if (*n > cap) *n = cap;
    return infos;
}

static json_t *loaded_models(server *s, size_t *n_loaded) {
    size_t n;
    manager_info *infos = server_models_snapshot(s, &n);
    json_t *arr = json_array();
    *n_loaded = 0;
    for (size_t i = 0; i < n; i++) {
        if (infos[i].state != MANAGER_LOADED) continue;
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
    registry *reg = manager_get_registry(s->mgr);
    size_t available = reg ? registry_count(reg) : 0;
    registry_free(reg);
    size_t n_loaded;
    json_t *loaded = loaded_models(s, &n_loaded);
    return server_reply_json(c, 200,
                             json_pack("{s:s,s:s,s:I,s:o,s:{s:i,s:i,s:i},s:f}", "status", "ok",
                                       "version", SHIMMY_VERSION, "models_available",
                                       (json_int_t)available, "models_loaded", loaded, "slots",
                                       "total", s->n_slots, "busy", running, "queued", queued,
                                       "uptime_s", (core_time_ms() - s->t_start) / 1000.0));
}

int server_handle_metrics(server_call *c) {
    char *text = server_metrics_render(c->srv);
    if (!text) {
        shimmy_error err;
        core_error(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory while rendering metrics");
        return server_reply_error(c, &err);
    }
    int ok = server_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return ok;
}

/* ---- model management ---- */

static json_t *entry_object(server *s, const registry_entry *e) {
    manager_info info;
    manager_info_of(s->mgr, e->name, &info);
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:I}", "name", e->name, "path",
                     e->path, "size", (json_int_t)e->size, "architecture", e->architecture, "quant",
                     e->quant ? e->quant : "", "size_label", e->size_label ? e->size_label : "",
                     "context_length", (json_int_t)e->context_length, "template",
                     e->template ? e->template : "", "source", registry_source_name(e->source),
                     "state", manager_state_name(info.state), "bytes", (json_int_t)info.bytes);
}

static uint64_t adapter_bytes(const registry_adapter *a);

/* An adapter model: the base's facts, the adapter's name, path and size, and "parent". */
static json_t *adapter_model_object(server *s, const registry *reg, const registry_adapter *a) {
    json_t *v = entry_object(s, a->base);
    if (!v) return NULL;
    json_object_set_new(v, "name", json_string(a->name));
    json_object_set_new(v, "path", json_string(a->path));
    json_object_set_new(v, "size", json_integer((json_int_t)adapter_bytes(a)));
    json_object_set_new(v, "parent", json_string(a->base->name));
    json_object_set_new(v, "scale", json_real(server_lora_default_scale(s, reg, a->name)));
    return v;
}

int server_handle_api_models(server_call *c) {
    registry *reg = manager_get_registry(c->srv->mgr);
    json_t *arr = json_array();
    for (size_t i = 0; reg && i < registry_count(reg); i++)
        json_array_append_new(arr, entry_object(c->srv, registry_entry_at(reg, i)));
    for (size_t i = 0; reg && i < registry_adapter_count(reg); i++) {
        const registry_adapter *a = registry_adapter_at(reg, i);
        if (a->base && !registry_find(reg, a->name))
            json_array_append_new(arr, adapter_model_object(c->srv, reg, a));
    }
    registry_free(reg);
    return server_reply_json(c, 200, json_pack("{s:o}", "models", arr));
}

/* ---- adapters ---- */

/* Bytes of a GGUF adapter, or of every regular file in a PEFT folder. */
static uint64_t adapter_bytes(const registry_adapter *a) {
    struct stat st;
    if (stat(a->path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return (uint64_t)st.st_size;
    uint64_t total = 0;
    DIR *d = opendir(a->path);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char p[4096];
        if (de->d_name[0] == '.') continue;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", a->path, de->d_name) >= sizeof p) continue;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) total += (uint64_t)st.st_size;
    }
    if (d) closedir(d);
    return total;
}

/* What the adapter targets: the base weights of a GGUF adapter's lora_a tensors (and the rank
 * from their shape), or a PEFT config's target_modules; the registry's rank otherwise. */
static void adapter_targets(const registry_adapter *a, json_t *v) {
    json_t *targets = json_array();
    int rank = a->rank;
    if (a->format == REGISTRY_ADAPTER_GGUF) {
        gguf_file *f = NULL;
        shimmy_error err;
        if (gguf_open_header(a->path, &f, &err) == SHIMMY_OK) {
            for (size_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                size_t n = (size_t)t->name.len;
                if (n > 7 && memcmp(t->name.data + n - 7, ".lora_a", 7) == 0) {
                    json_array_append_new(targets, json_stringn(t->name.data, n - 7));
                    if (!rank && t->n_dims >= 2) rank = (int)t->ne[1];
                }
            }
            gguf_close(f);
        }
    } else {
        char p[4096];
        json_error_t je;
        json_t *cfg = (size_t)snprintf(p, sizeof p, "%s/adapter_config.json", a->path) < sizeof p
                          ? json_load_file(p, 0, &je)
                          : NULL;
        const json_t *tm = json_object_get(cfg, "target_modules");
        if (json_is_array(tm)) {
            size_t i;
            const json_t *m;
            json_array_foreach(tm, i, m) {
                if (json_is_string(m)) json_array_append_new(targets, json_copy((json_t *)m));
            }
        } else if (json_is_string(tm)) {
            json_array_append_new(targets, json_copy((json_t *)tm));
        }
        json_decref(cfg);
    }
    json_object_set_new(v, "rank", json_integer(rank));
    json_object_set_new(v, "n_targets", json_integer((json_int_t)json_array_size(targets)));
    json_object_set_new(v, "targets", targets);
}

int server_handle_adapters(server_call *c) {
    registry *reg = manager_get_registry(c->srv->mgr);
    json_t *arr = json_array();
    for (size_t i = 0; reg && i < registry_adapter_count(reg); i++) {
        const registry_adapter *a = registry_adapter_at(reg, i);
        json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:I,s:s}", "name", a->name, "path", a->path,
                              "format", a->format == REGISTRY_ADAPTER_PEFT ? "peft" : "gguf",
                              "architecture", a->architecture, "source",
                              registry_source_name(a->source), "alpha", (double)a->alpha, "size",
                              (json_int_t)adapter_bytes(a), "reason", a->reason);
        if (!v) continue;
        json_object_set_new(v, "base", a->base ? json_string(a->base->name) : json_null());
        json_object_set_new(v, "parent", a->base ? json_string(a->base->name) : json_null());
        if (a->base)
            json_object_set_new(v, "scale",
                                json_real(server_lora_default_scale(c->srv, reg, a->name)));
        adapter_targets(a, v);
        json_array_append_new(arr, v);
    }
    registry_free(reg);
    return server_reply_json(c, 200, json_pack("{s:o}", "adapters", arr));
}

int server_handle_discover(server_call *c) {
    server *s = c->srv;
    registry *reg = NULL;
    shimmy_error err;
    if (server_registry_scan(&s->cfg, &reg, &err)) return server_reply_error(c, &err);
    manager_set_registry(s->mgr, reg);
    json_t *v =
        json_pack("{s:I,s:I,s:f}", "models", (json_int_t)registry_count(reg), "skipped",
                  (json_int_t)registry_skipped_count(reg), "scan_ms", registry_scan_ms(reg));
    registry_free(reg);
    return server_reply_json(c, 200, v);
}

/* A name the registry does not list is a 404 before the manager is asked anything. */
static bool known_model(server_call *c, shimmy_error *err) {
    registry *reg = manager_get_registry(c->srv->mgr);
    const registry_entry *e = reg ? registry_find(reg, c->param) : NULL;
    bool ok = e != NULL;
    if (e) snprintf(c->param, sizeof c->param, "%s", e->name); /* the canonical spelling */
    registry_free(reg);
    if (!ok)
        core_error(err, SHIMMY_ERR_MODEL_NOT_FOUND, "model",
                   "the model '%.200s' does not exist (see GET /api/models)", c->param);
    return ok;
}

static json_t *status_object(server *s, const char *name) {
    manager_info info;
    manager_info_of(s->mgr, name, &info);
    json_t *v = json_pack("{s:s,s:s,s:I,s:i,s:f,s:f}", "name", name, "state",
                          manager_state_name(info.state), "bytes", (json_int_t)info.bytes, "users",
                          info.users, "idle_s", info.idle_s, "load_ms", info.load_ms);
    if (v && info.state == MANAGER_FAILED)
        json_object_set_new(v, "error", json_string(info.error.message));
    return v;
}

int server_handle_load(server_call *c) {
    shimmy_error err;
    if (!known_model(c, &err)) return server_reply_error(c, &err);
    manager_handle *h = NULL;
    if (manager_acquire(c->srv->mgr, c->param, &h, &err)) return server_reply_error(c, &err);
    manager_release(h); /* the manager keeps it loaded until keep_alive or unload */
    return server_reply_json(c, 200, status_object(c->srv, c->param));
}

int server_handle_unload(server_call *c) {
    shimmy_error err;
    if (!known_model(c, &err)) return server_reply_error(c, &err);
    if (manager_unload(c->srv->mgr, c->param, &err)) {
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
