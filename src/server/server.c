/* Server lifecycle: catalog, thread pool, slots, then the HTTP daemon. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void server_config_defaults(server_config *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 11435;
    c->parallel = 2;
    c->max_body = 1u << 20;
    c->max_tokens_cap = 4096;
    c->max_connections = 256;
    c->timeout_s = 60;
    c->queue_cap = 64;
    c->cache_ram_mib = 256;
}

static shimmy_status check_config(const server_config *c, shimmy_error *err) {
    if (c->parallel < 1 || c->parallel > 256)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "--parallel",
                                "--parallel must be 1..256");
    if (c->max_body < 64)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "--max-body",
                                "--max-body must be >= 64");
    if (c->max_tokens_cap < 1)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "--max-tokens-cap",
                                "--max-tokens-cap must be >= 1");
    if (c->n_loras > 64)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "--lora",
                                "at most 64 --lora adapters");
    if (c->max_connections < 1 || c->timeout_s < 1 || c->queue_cap < 0)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, NULL,
                                "--max-connections and --timeout must be >= 1, --queue >= 0");
    return SHIMMY_OK;
}

/* Why the listing left out `path`, when the scan saw it. */
static const char *skip_reason(const shimmy_model_list *l, const char *path, const char *why) {
    for (size_t k = 0; k < shimmy_model_list_skipped_count(l); k++)
        if (strcmp(shimmy_model_list_skipped_path(l, k), path) == 0)
            return shimmy_model_list_skipped_reason(l, k);
    return why;
}

/* Files named with --model must be served: a typo or a corrupt file is an error at start-up,
 * not an empty model list. */
static shimmy_status check_explicit_models(const server_config *cfg, const shimmy_model_list *l,
                                           shimmy_error *err) {
    for (size_t i = 0; i < cfg->n_models; i++) {
        const char *path = cfg->models[i];
        if (shimmy_model_list_find(l, path, NULL)) continue;
        const char *why = skip_reason(l, path, "not found or not a readable GGUF model");
        return shimmy_error_set(err, SHIMMY_ERR_MODEL_NOT_FOUND, path, "--model %s: %s", path, why);
    }
    return SHIMMY_OK;
}

/* Adapters named with --lora must be known and paired with a served base. */
static shimmy_status check_explicit_adapters(const server_config *cfg, const shimmy_model_list *l,
                                             shimmy_error *err) {
    for (size_t i = 0; i < cfg->n_loras; i++) {
        const char *path = cfg->loras[i].path;
        size_t k;
        shimmy_adapter_info a;
        bool found =
            shimmy_model_list_find_adapter(l, path, &k) && shimmy_model_list_adapter(l, k, &a);
        if (found && a.base) continue;
        const char *why =
            found ? a.reason : skip_reason(l, path, "not found or not a readable LoRA adapter");
        return shimmy_error_set(err, SHIMMY_ERR_ADAPTER, path, "--lora %s: %s", path, why);
    }
    return SHIMMY_OK;
}

static shimmy_status open_catalog(const server_config *cfg, shimmy_catalog **out,
                                  shimmy_error *err) {
    const char *lora_paths[64];
    size_t n = cfg->n_loras < 64 ? cfg->n_loras : 64;
    for (size_t i = 0; i < n; i++) lora_paths[i] = cfg->loras[i].path;
    shimmy_catalog_options co = {.paths = cfg->model_dirs,
                                 .model_files = cfg->models,
                                 .n_model_files = cfg->n_models,
                                 .adapter_files = lora_paths,
                                 .n_adapter_files = n,
                                 .ignore_env = cfg->ignore_env,
                                 .ctx_len = cfg->ctx_size,
                                 .max_loaded_bytes = cfg->max_loaded_bytes,
                                 .keep_alive_s = cfg->keep_alive_s,
                                 .device = cfg->device,
                                 .gpu_layers = cfg->gpu_layers};
    return shimmy_catalog_open(&co, out, err);
}

shimmy_model_list *server_list(server *s) {
    shimmy_model_list *l = NULL;
    return shimmy_catalog_list(s->cat, &l, NULL) ? NULL : l;
}

shimmy_status server_new(const server_config *cfg, server **out, shimmy_error *err) {
    *out = NULL;
    shimmy_status st = check_config(cfg, err);
    if (st) return st;
    server *s = calloc(1, sizeof *s);
    if (!s) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    s->cfg = *cfg;
    s->n_slots = cfg->parallel;
    s->listen_fd = -1;
    pthread_mutex_init(&s->qmu, NULL);
    pthread_mutex_init(&s->lmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    server_metrics_init(&s->metrics);
    st = open_catalog(cfg, &s->cat, err);
    shimmy_model_list *l = NULL;
    if (!st) st = shimmy_catalog_list(s->cat, &l, err);
    if (!st) st = check_explicit_models(cfg, l, err);
    if (!st) st = check_explicit_adapters(cfg, l, err);
    shimmy_model_list_free(l);
    /* One thread pool for every slot: its sessions take turns per forward step instead of
     * oversubscribing the cores. */
    if (!st) st = shimmy_threadpool_new(cfg->n_threads, &s->pool, err);
    if (st) {
        server_free(s);
        return st;
    }
    *out = s;
    return SHIMMY_OK;
}

shimmy_status server_start(server *s, shimmy_error *err) {
    s->t_start = server_clock_ms();
    shimmy_status st = server_slots_start(s, err);
    if (!st) st = server_http_start(s, err);
    if (!st) {
        shimmy_model_list *l = server_list(s);
        shimmy_log(SHIMMY_LOG_INFO, "server: %zu models, %d slots, listening on %s",
                   shimmy_model_list_count(l), s->n_slots, s->url);
        shimmy_model_list_free(l);
    }
    return st;
}

const char *server_url(const server *s) {
    return s->url;
}

void server_stop(server *s) {
    if (!s || atomic_exchange(&s->stopping, true)) return;
    server_http_quiesce(s);
    server_keepalive_stop(s); /* its reaper touches the slots */
    /* Queued jobs get a 503, running ones stop at their next token. */
    server_slots_stop(s);
    /* Let connections deliver their last bytes (final chunks, errors) before the daemon goes. */
    double deadline = server_clock_ms() + 5000;
    while (atomic_load(&s->active) > 0 && server_clock_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    server_http_stop(s);
}

void server_free(server *s) {
    if (!s) return;
    server_stop(s);
    server_slots_stop(s);
    server_keepalive_free(s);
    server_lora_cache_free(s);
    shimmy_catalog_free(s->cat);
    pthread_mutex_destroy(&s->lmu);
    shimmy_threadpool_free(s->pool); /* after the slots' sessions */
    server_metrics_deinit(&s->metrics);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    free(s);
}
