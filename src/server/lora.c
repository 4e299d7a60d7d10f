/* LoRA adapters per request: "lora": [{"name", "scale"}] and adapter models resolve to listed
 * adapters (names only, never paths, so a request cannot open an arbitrary file); adapters are
 * opened once and shared by reference through a small cache keyed by listed name and path. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct server_lora_cached {
    char *name;
    char *path;
    shimmy_adapter *ad; /* the cache's reference */
} server_lora_cached;

/* The adapter `name` names, by listed name only (a path that happens to be an adapter's file
 * is refused too). */
static bool adapter_named(const shimmy_model_list *l, const char *name, shimmy_adapter_info *a) {
    size_t i;
    return shimmy_model_list_find_adapter(l, name, &i) && shimmy_model_list_adapter(l, i, a) &&
           strcasecmp(a->name, name) == 0;
}

float server_lora_default_scale(const server *s, const shimmy_model_list *l, const char *name) {
    for (size_t i = 0; i < s->cfg.n_loras; i++) {
        size_t k;
        shimmy_adapter_info a;
        if (shimmy_model_list_find_adapter(l, s->cfg.loras[i].path, &k) &&
            shimmy_model_list_adapter(l, k, &a) && strcasecmp(a.name, name) == 0)
            return s->cfg.loras[i].scale;
    }
    return 1.0f;
}

static shimmy_status unknown_adapter(const shimmy_model_list *l, const char *name,
                                     shimmy_error *err) {
    size_t k;
    shimmy_adapter_info by_path;
    if (shimmy_model_list_find_adapter(l, name, &k) && shimmy_model_list_adapter(l, k, &by_path))
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "lora",
                                "'lora' names adapters by their registry name, not a path: use "
                                "'%s' instead of '%.200s' (see GET /api/adapters)",
                                by_path.name, name);
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "lora",
                            "'lora': '%.200s' is not an adapter this server knows; use a name from "
                            "GET /api/adapters (paths are not accepted)",
                            name);
}

shimmy_status server_lora_resolve(server *s, server_job *j, shimmy_error *err) {
    server_request *r = &j->req;
    snprintf(j->base, sizeof j->base, "%s", r->model);
    shimmy_model_list *l = server_list(s);
    if (!l) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    size_t ei = 0;
    bool is_model = shimmy_model_list_find(l, r->model, &ei);
    shimmy_status st = SHIMMY_OK;
    shimmy_adapter_info as_model;
    if (!is_model && adapter_named(l, r->model, &as_model)) {
        /* An adapter model: its base, with the adapter first at its scale. */
        if (!as_model.base) {
            st = shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "model",
                                  "the adapter '%s' is not paired with a base model (%s); name a "
                                  "base model and pass the adapter in \"lora\"",
                                  as_model.name, as_model.reason);
        } else if (r->n_lora == SERVER_MAX_LORA) {
            st = shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "lora",
                                  "'lora' may list at most %d adapters besides the adapter model",
                                  SERVER_MAX_LORA - 1);
        } else {
            memmove(&r->lora[1], &r->lora[0], r->n_lora * sizeof r->lora[0]);
            r->n_lora++;
            snprintf(r->lora[0].name, sizeof r->lora[0].name, "%s", as_model.name);
            r->lora[0].scale = server_lora_default_scale(s, l, as_model.name);
            is_model = shimmy_model_list_find(l, as_model.base, &ei);
            snprintf(j->base, sizeof j->base, "%s", as_model.base);
        }
    }
    const char *base_name = is_model ? shimmy_model_list_name(l, ei) : NULL;
    const char *base_arch = is_model ? shimmy_model_list_architecture(l, ei) : NULL;
    for (size_t i = 0; !st && i < r->n_lora; i++) {
        shimmy_adapter_info a;
        if (!adapter_named(l, r->lora[i].name, &a)) {
            st = unknown_adapter(l, r->lora[i].name, err);
            break;
        }
        snprintf(r->lora[i].name, sizeof r->lora[i].name, "%s", a.name); /* canonical */
        if (base_name && a.architecture[0] && base_arch && base_arch[0] &&
            strcasecmp(a.architecture, base_arch) != 0)
            st = shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "lora",
                                  "the adapter '%s' is for %s models, but '%s' is a %s model",
                                  a.name, a.architecture, base_name, base_arch);
    }
    shimmy_model_list_free(l);
    return st;
}

/* A new reference to the adapter `a`, opened for model m on first use. Under s->lmu. */
static shimmy_status cache_get(server *s, const shimmy_adapter_info *a, const shimmy_model *m,
                               shimmy_adapter **out, shimmy_error *err) {
    for (size_t i = 0; i < s->n_lcache; i++) {
        server_lora_cached *c = &s->lcache[i];
        if (strcmp(c->name, a->name) != 0) continue;
        if (strcmp(c->path, a->path) == 0) {
            shimmy_status st = shimmy_adapter_check(c->ad, m, err);
            if (st) return st;
            *out = shimmy_adapter_ref(c->ad);
            return SHIMMY_OK;
        }
        /* A rescan points the name at another file: forget the old one (in-flight jobs keep
         * their own references). */
        shimmy_adapter_unref(c->ad);
        free(c->name);
        free(c->path);
        *c = s->lcache[--s->n_lcache];
        break;
    }
    if (s->n_lcache == s->cap_lcache) {
        size_t cap = s->cap_lcache ? s->cap_lcache * 2 : 8;
        server_lora_cached *v = realloc(s->lcache, cap * sizeof *v);
        if (!v) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "lora", "out of memory");
        s->lcache = v;
        s->cap_lcache = cap;
    }
    shimmy_adapter *ad = NULL;
    shimmy_status st = shimmy_adapter_open(m, a->path, &ad, err);
    if (st) return st;
    server_lora_cached *c = &s->lcache[s->n_lcache];
    c->name = strdup(a->name);
    c->path = strdup(a->path);
    if (!c->name || !c->path) {
        free(c->name);
        free(c->path);
        shimmy_adapter_unref(ad);
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "lora", "out of memory");
    }
    c->ad = ad;
    s->n_lcache++;
    shimmy_log(SHIMMY_LOG_INFO, "server: adapter %s loaded from %s", a->name, a->path);
    *out = shimmy_adapter_ref(ad);
    return SHIMMY_OK;
}

shimmy_status server_lora_attach(server *s, server_job *j, shimmy_error *err) {
    const server_request *r = &j->req;
    if (r->n_lora == 0) return SHIMMY_OK;
    shimmy_model_list *l = server_list(s);
    if (!l) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    shimmy_status st = SHIMMY_OK;
    for (size_t i = 0; !st && i < r->n_lora; i++) {
        shimmy_adapter_info a;
        if (!adapter_named(l, r->lora[i].name, &a)) {
            st = unknown_adapter(l, r->lora[i].name, err);
            break;
        }
        shimmy_adapter *ad = NULL;
        pthread_mutex_lock(&s->lmu);
        st = cache_get(s, &a, j->model, &ad, err);
        pthread_mutex_unlock(&s->lmu);
        if (st) {
            /* The library's message names the file and the tensor; say which adapter and model. */
            shimmy_error why = *err;
            shimmy_error_set(err, st == SHIMMY_ERR_NOMEM ? st : SHIMMY_ERR_ADAPTER, "lora",
                             "the adapter '%s' cannot be used with the model '%s': %s", a.name,
                             j->base, why.message);
            break;
        }
        j->ads[j->n_ads] = ad;
        j->scales[j->n_ads] = r->lora[i].scale;
        j->n_ads++;
    }
    shimmy_model_list_free(l);
    return st;
}

void server_lora_cache_free(server *s) {
    for (size_t i = 0; i < s->n_lcache; i++) {
        shimmy_adapter_unref(s->lcache[i].ad);
        free(s->lcache[i].name);
        free(s->lcache[i].path);
    }
    free(s->lcache);
    s->lcache = NULL;
    s->n_lcache = s->cap_lcache = 0;
}
