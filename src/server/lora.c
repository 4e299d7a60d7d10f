/* LoRA adapters per request: "lora": [{"name", "scale"}] and adapter models resolve to registry
 * adapters (names only, never paths, so a request cannot open an arbitrary file); adapters are
 * opened once and shared by reference through a small cache keyed by registry name and path. */
#include "server.h"

#include "engine/engine.h"
#include "lora/lora.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct server_lora_cached {
    char *name;
    char *path;
    lora_adapter *ad; /* the cache's reference */
} server_lora_cached;

/* The adapter `name` names, by registry name only (a path that happens to be an adapter's file
 * is refused too). */
static const registry_adapter *adapter_named(const registry *reg, const char *name) {
    const registry_adapter *a = reg ? registry_find_adapter(reg, name) : NULL;
    return a && strcasecmp(a->name, name) == 0 ? a : NULL;
}

float server_lora_default_scale(const server *s, const registry *reg, const char *name) {
    for (size_t i = 0; i < s->cfg.n_loras; i++) {
        const registry_adapter *a = registry_find_adapter(reg, s->cfg.loras[i].path);
        if (a && strcasecmp(a->name, name) == 0) return s->cfg.loras[i].scale;
    }
    return 1.0f;
}

static shimmy_status unknown_adapter(const registry *reg, const char *name, shimmy_error *err) {
    const registry_adapter *by_path = reg ? registry_find_adapter(reg, name) : NULL;
    if (by_path)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "lora",
                          "'lora' names adapters by their registry name, not a path: use '%s' "
                          "instead of '%.200s' (see GET /api/adapters)",
                          by_path->name, name);
    return core_error(err, SHIMMY_ERR_INVALID_ARG, "lora",
                      "'lora': '%.200s' is not an adapter this server knows; use a name from GET "
                      "/api/adapters (paths are not accepted)",
                      name);
}

shimmy_status server_lora_resolve(server *s, server_job *j, shimmy_error *err) {
    server_request *r = &j->req;
    snprintf(j->base, sizeof j->base, "%s", r->model);
    registry *reg = manager_get_registry(s->mgr);
    const registry_entry *e = reg ? registry_find(reg, r->model) : NULL;
    shimmy_status st = SHIMMY_OK;
    const registry_adapter *as_model = e ? NULL : adapter_named(reg, r->model);
    if (as_model) {
        /* An adapter model: its base, with the adapter first at its scale. */
        if (!as_model->base) {
            st = core_error(err, SHIMMY_ERR_INVALID_ARG, "model",
                            "the adapter '%s' is not paired with a base model (%s); name a base "
                            "model and pass the adapter in \"lora\"",
                            as_model->name, as_model->reason);
        } else if (r->n_lora == SERVER_MAX_LORA) {
            st = core_error(err, SHIMMY_ERR_INVALID_ARG, "lora",
                            "'lora' may list at most %d adapters besides the adapter model",
                            SERVER_MAX_LORA - 1);
        } else {
            memmove(&r->lora[1], &r->lora[0], r->n_lora * sizeof r->lora[0]);
            r->n_lora++;
            snprintf(r->lora[0].name, sizeof r->lora[0].name, "%s", as_model->name);
            r->lora[0].scale = server_lora_default_scale(s, reg, as_model->name);
            e = as_model->base;
            snprintf(j->base, sizeof j->base, "%s", e->name);
        }
    }
    for (size_t i = 0; !st && i < r->n_lora; i++) {
        const registry_adapter *a = adapter_named(reg, r->lora[i].name);
        if (!a) {
            st = unknown_adapter(reg, r->lora[i].name, err);
            break;
        }
        snprintf(r->lora[i].name, sizeof r->lora[i].name, "%s", a->name); /* canonical */
        if (e && a->architecture[0] && e->architecture[0] &&
            strcasecmp(a->architecture, e->architecture) != 0)
            st = core_error(err, SHIMMY_ERR_INVALID_ARG, "lora",
                            "the adapter '%s' is for %s models, but '%s' is a %s model", a->name,
                            a->architecture, e->name, e->architecture);
    }
    registry_free(reg);
    return st;
}

/* A new reference to the adapter `a`, opened against base on first use. Under s->lmu. */
static shimmy_status cache_get(server *s, const registry_adapter *a, const gguf_file *base,
                               lora_adapter **out, shimmy_error *err) {
    for (size_t i = 0; i < s->n_lcache; i++) {
        server_lora_cached *c = &s->lcache[i];
        if (strcmp(c->name, a->name) != 0) continue;
        if (strcmp(c->path, a->path) == 0) {
            shimmy_status st = lora_adapter_validate(c->ad, base, err);
            if (st) return st;
            *out = lora_adapter_ref(c->ad);
            return SHIMMY_OK;
        }
        /* A rescan points the name at another file: forget the old one (in-flight sets keep
         * their own references). */
        lora_adapter_unref(c->ad);
        free(c->name);
        free(c->path);
        *c = s->lcache[--s->n_lcache];
        break;
    }
    if (s->n_lcache == s->cap_lcache) {
        size_t cap = s->cap_lcache ? s->cap_lcache * 2 : 8;
        server_lora_cached *v = realloc(s->lcache, cap * sizeof *v);
        if (!v) return core_error(err, SHIMMY_ERR_NOMEM, "lora", "out of memory");
        s->lcache = v;
        s->cap_lcache = cap;
    }
    lora_adapter *ad = NULL;
    shimmy_status st = lora_adapter_open(a->path, base, &ad, err);
    if (st) return st;
    server_lora_cached *c = &s->lcache[s->n_lcache];
    c->name = strdup(a->name);
    c->path = strdup(a->path);
    if (!c->name || !c->path) {
        free(c->name);
        free(c->path);
        lora_adapter_unref(ad);
        return core_error(err, SHIMMY_ERR_NOMEM, "lora", "out of memory");
    }
    c->ad = ad;
    s->n_lcache++;
    core_log(CORE_LOG_INFO, "server: adapter %s loaded from %s", a->name, a->path);
    *out = lora_adapter_ref(ad);
    return SHIMMY_OK;
}

shimmy_status server_lora_attach(server *s, server_job *j, shimmy_error *err) {
    const server_request *r = &j->req;
    if (r->n_lora == 0) return SHIMMY_OK;
    const engine_model *em = manager_handle_model(j->handle);
    const gguf_file *base = engine_model_file(em);
    shimmy_status st = lora_set_new(&j->loras, err);
    if (st) return st;
    registry *reg = manager_get_registry(s->mgr);
    for (size_t i = 0; !st && i < r->n_lora; i++) {
        const registry_adapter *a = adapter_named(reg, r->lora[i].name);
        if (!a) {
            st = unknown_adapter(reg, r->lora[i].name, err);
            break;
        }
        lora_adapter *ad = NULL;
        pthread_mutex_lock(&s->lmu);
        st = cache_get(s, a, base, &ad, err);
        pthread_mutex_unlock(&s->lmu);
        if (st) {
            /* The module's message names the file and the tensor; say which adapter and model. */
            shimmy_error why = *err;
            core_error(err, st == SHIMMY_ERR_NOMEM ? st : SHIMMY_ERR_ADAPTER, "lora",
                       "the adapter '%s' cannot be used with the model '%s': %s", a->name, j->base,
                       why.message);
            break;
        }
        st = lora_set_add(j->loras, ad, r->lora[i].scale, err);
        lora_adapter_unref(ad);
    }
    registry_free(reg);
    return st;
}

void server_lora_cache_free(server *s) {
    for (size_t i = 0; i < s->n_lcache; i++) {
        lora_adapter_unref(s->lcache[i].ad);
        free(s->lcache[i].name);
        free(s->lcache[i].path);
    }
    free(s->lcache);
    s->lcache = NULL;
    s->n_lcache = s->cap_lcache = 0;
}
