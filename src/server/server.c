/* Server lifecycle: registry, manager, compute pool, slots, then the HTTP daemon. */
#include "server.h"

#include "engine/engine.h"

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
}

static shimmy_status check_config(const server_config *c, shimmy_error *err) {
    if (c->parallel < 1 || c->parallel > 256)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "--parallel", "--parallel must be 1..256");
    if (c->max_body < 64)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "--max-body", "--max-body must be >= 64");
    if (c->max_tokens_cap < 1)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "--max-tokens-cap",
                          "--max-tokens-cap must be >= 1");
    if (c->n_loras > 64)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "--lora", "at most 64 --lora adapters");
    if (c->max_connections < 1 || c->timeout_s < 1 || c->queue_cap < 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, NULL,
                          "--max-connections and --timeout must be >= 1, --queue >= 0");
    return SHIMMY_OK;
}

/* Files named with --model must be served: a typo or a corrupt file is an error at start-up,
 * not an empty model list. */
static shimmy_status check_explicit_models(const server_config *cfg, const registry *reg,
                                           shimmy_error *err) {
    for (size_t i = 0; i < cfg->n_models; i++) {
        const char *path = cfg->models[i];
        if (registry_find(reg, path)) continue;
        const char *why = "not found or not a readable GGUF model";
        for (size_t k = 0; k < registry_skipped_count(reg); k++) {
            const registry_skip *sk = registry_skipped_at(reg, k);
            if (strcmp(sk->path, path) == 0) why = sk->reason;
        }
        return core_error(err, SHIMMY_ERR_MODEL_NOT_FOUND, path, "--model %s: %s", path, why);
    }
    return SHIMMY_OK;
}

/* Adapters named with --lora must be known and paired with a served base. */
static shimmy_status check_explicit_adapters(const server_config *cfg, const registry *reg,
                                             shimmy_error *err) {
    for (size_t i = 0; i < cfg->n_loras; i++) {
        const char *path = cfg->loras[i].path;
        const registry_adapter *a = registry_find_adapter(reg, path);
        if (a && a->base) continue;
        const char *why = a ? a->reason : "not found or not a readable LoRA adapter";
        for (size_t k = 0; !a && k < registry_skipped_count(reg); k++) {
            const registry_skip *sk = registry_skipped_at(reg, k);
            if (strcmp(sk->path, path) == 0) why = sk->reason;
        }
        return core_error(err, SHIMMY_ERR_ADAPTER, path, "--lora %s: %s", path, why);
    }
    return SHIMMY_OK;
}

shimmy_status server_registry_scan(const server_config *cfg, registry **out, shimmy_error *err) {
    const char *lora_paths[64];
    size_t n = cfg->n_loras < 64 ? cfg->n_loras : 64;
    for (size_t i = 0; i < n; i++) lora_paths[i] = cfg->loras[i].path;
    registry_options ro = {.dirs = cfg->model_dirs,
                           .files = cfg->models,
                           .n_files = cfg->n_models,
                           .adapter_files = lora_paths,
                           .n_adapter_files = n,
                           .ignore_env = cfg->ignore_env};
    return registry_scan(&ro, out, err);
}

shimmy_status server_new(const server_config *cfg, server **out, shimmy_error *err) {
    *out = NULL;
    shimmy_status st = check_config(cfg, err);
    if (st) return st;
    server *s = calloc(1, sizeof *s);
    if (!s) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    s->cfg = *cfg;
    s->n_slots = cfg->parallel;
    s->listen_fd = -1;
    pthread_mutex_init(&s->compute_lock, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_mutex_init(&s->lmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    server_metrics_init(&s->metrics);
    registry *reg = NULL;
    st = server_registry_scan(cfg, &reg, err);
    if (!st) st = check_explicit_models(cfg, reg, err);
    if (!st) st = check_explicit_adapters(cfg, reg, err);
    if (!st) {
        manager_options mo = {.loader = manager_engine_loader()};
        st = manager_new(&mo, reg, &s->mgr, err);
    }
    registry_free(reg);
    /* One compute pool for every slot: the compute lock lets slots take turns per forward
     * step instead of oversubscribing the cores. */
    if (!st) st = core_pool_new(cfg->n_threads, &s->pool, err);
    if (st) {
        server_free(s);
        return st;
    }
    *out = s;
    return SHIMMY_OK;
}

shimmy_status server_start(server *s, shimmy_error *err) {
    s->t_start = core_time_ms();
    shimmy_status st = server_slots_start(s, err);
    if (!st) st = server_http_start(s, err);
    if (!st) {
        registry *reg = manager_get_registry(s->mgr);
        core_log(CORE_LOG_INFO, "server: %zu models, %d slots, listening on %s",
                 reg ? registry_count(reg) : 0, s->n_slots, s->url);
        registry_free(reg);
    }
    return st;
}

const char *server_url(const server *s) {
    return s->url;
}

void server_stop(server *s) {
    if (!s || atomic_exchange(&s->stopping, true)) return;
    server_http_quiesce(s);
    /* Queued jobs get a 503, running ones stop at their next token. */
    server_slots_stop(s);
    /* Let connections deliver their last bytes (final chunks, errors) before the daemon goes. */
    double deadline = core_time_ms() + 5000;
    while (atomic_load(&s->active) > 0 && core_time_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    server_http_stop(s);
}

void server_free(server *s) {
    if (!s) return;
    server_stop(s);
    server_slots_stop(s);
    manager_free(s->mgr);
    server_lora_cache_free(s);
    pthread_mutex_destroy(&s->lmu);
    core_pool_free(s->pool);
    server_metrics_deinit(&s->metrics);
    pthread_mutex_destroy(&s->compute_lock);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    free(s);
}
