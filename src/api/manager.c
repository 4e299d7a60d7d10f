/* The public manager: specs registered by name, models loaded on first use through the internal
 * manager (which loads each base file once and keeps the memory budget), cached here with one
 * reference each, and weak references that recognise the instance they named by its epoch. */
#include "api.h"

#include "registry/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DROP_MAX 64 /* evictions one load can cause (one is the norm) */

typedef struct entry {
    shimmy_spec spec;
    shimmy_model *loaded; /* the cache's reference, NULL when not loaded */
    uint64_t epoch;       /* of the loaded instance; never reused */
    uint64_t last_used;
    bool loading;
} entry;

struct shimmy_manager {
    int refs; /* the user's plus one per weak reference; guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t loaded; /* a load finished */
    manager *core;
    entry *entries;
    size_t n, cap;
    size_t max_models;
    uint64_t max_bytes; /* 0 = no limit at this layer */
    uint64_t epochs, ticks;
    bool closed;
};

struct shimmy_weak {
    shimmy_manager *mgr; /* a reference */
    char *name;
    uint64_t epoch;
};

static void mgr_destroy(shimmy_manager *mgr) {
    for (size_t i = 0; i < mgr->n; i++) api_fields_free(&mgr->entries[i].spec.f);
    free(mgr->entries);
    manager_free(mgr->core);
    pthread_cond_destroy(&mgr->loaded);
    pthread_mutex_destroy(&mgr->mu);
    free(mgr);
}

static void mgr_drop(shimmy_manager *mgr) {
    pthread_mutex_lock(&mgr->mu);
    bool last = --mgr->refs == 0;
    pthread_mutex_unlock(&mgr->mu);
    if (last) mgr_destroy(mgr);
}

shimmy_status shimmy_manager_new(const shimmy_manager_options *opts, shimmy_manager **out,
                                 shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    shimmy_manager *mgr = core_calloc(1, sizeof *mgr);
    if (!mgr) return core_error(err, SHIMMY_ERR_NOMEM, "manager", "out of memory");
    /* This layer decides what stays cached, so the core manager neither expires models on its
     * own (no reaper, no keep-alive) nor needs more than the budget. */
    manager_options mo = {
        .loader = api_manager_loader(NULL), /* the spec's device (api_loading_spec) */
        .max_loaded_bytes = opts ? opts->max_loaded_bytes : 0,
        .keep_alive_s = -1,
        .no_reaper = true,
    };
    shimmy_status st = manager_new(&mo, NULL, &mgr->core, err);
    if (st) {
        free(mgr);
        return st;
    }
    mgr->refs = 1;
    mgr->max_models = opts ? opts->max_models : 0;
    mgr->max_bytes = opts ? opts->max_loaded_bytes : 0;
    pthread_mutex_init(&mgr->mu, NULL);
    pthread_cond_init(&mgr->loaded, NULL);
    *out = mgr;
    return SHIMMY_OK;
}

/* Drops the cache reference of e (called with mu held; returns the model to unref after
 * unlocking) and tells the core manager to let the base go unless another cached entry uses the
 * same file. */
static shimmy_model *evict_locked(shimmy_manager *mgr, entry *e) {
    shimmy_model *m = e->loaded;
    e->loaded = NULL;
    e->epoch = 0;
    bool shared = false;
    for (size_t i = 0; i < mgr->n; i++)
        if (mgr->entries[i].loaded &&
            strcmp(mgr->entries[i].spec.f.base_path, e->spec.f.base_path) == 0)
            shared = true;
    if (!shared && m) manager_unload(mgr->core, manager_handle_name(m->handle), NULL);
    return m;
}

void shimmy_manager_free(shimmy_manager *mgr) {
    if (!mgr) return;
    pthread_mutex_lock(&mgr->mu);
    mgr->closed = true;
    while (true) { /* a load in flight finishes before its entry can go */
        bool busy = false;
        for (size_t i = 0; i < mgr->n; i++) busy |= mgr->entries[i].loading;
        if (!busy) break;
        pthread_cond_wait(&mgr->loaded, &mgr->mu);
    }
    for (size_t i = 0; i < mgr->n; i++) {
        shimmy_model *m = evict_locked(mgr, &mgr->entries[i]);
        pthread_mutex_unlock(&mgr->mu);
        shimmy_model_unref(m);
        pthread_mutex_lock(&mgr->mu);
    }
    pthread_mutex_unlock(&mgr->mu);
    mgr_drop(mgr);
}

static entry *find(shimmy_manager *mgr, const char *name) {
    for (size_t i = 0; name && i < mgr->n; i++)
        if (strcmp(mgr->entries[i].spec.f.name, name) == 0) return &mgr->entries[i];
    return NULL;
}

/* The core manager only opens files its registry lists: rescan the registered base files
 * (headers only) so the new one is listed. */
static shimmy_status refresh_registry(shimmy_manager *mgr, shimmy_error *err) {
    const char **files = core_calloc(mgr->n ? mgr->n : 1, sizeof *files);
    if (!files) return core_error(err, SHIMMY_ERR_NOMEM, "manager", "out of memory");
    for (size_t i = 0; i < mgr->n; i++) files[i] = mgr->entries[i].spec.f.base_path;
    registry_options ro = {.files = files,
                           .n_files = mgr->n,
                           .disable = REGISTRY_NO_DEFAULTS,
                           .ignore_env = true,
                           .n_threads = 1};
    registry *reg = NULL;
    shimmy_status st = registry_scan(&ro, &reg, err);
    free(files);
    if (st) return st;
    manager_set_registry(mgr->core, reg);
    registry_free(reg);
    return SHIMMY_OK;
}

shimmy_status shimmy_manager_add(shimmy_manager *mgr, const shimmy_spec *spec, shimmy_error *err) {
    if (!mgr || !spec)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, mgr ? "spec" : "manager", "%s is NULL",
                          mgr ? "the spec" : "the manager");
    pthread_mutex_lock(&mgr->mu);
    shimmy_status st = SHIMMY_OK;
    if (find(mgr, spec->f.name)) {
        st = core_error(err, SHIMMY_ERR_INVALID_ARG, "name",
                        "a model named '%s' is already registered", spec->f.name);
    } else if (mgr->n == mgr->cap) {
        size_t cap = mgr->cap ? mgr->cap * 2 : 8;
        entry *e = core_realloc(mgr->entries, cap * sizeof *e);
        if (!e)
            st = core_error(err, SHIMMY_ERR_NOMEM, "manager", "out of memory");
        else {
            mgr->entries = e;
            mgr->cap = cap;
        }
    }
    if (!st) {
        entry *e = &mgr->entries[mgr->n];
        memset(e, 0, sizeof *e);
        if (!api_fields_copy(&e->spec.f, &spec->f))
            st = core_error(err, SHIMMY_ERR_NOMEM, "manager", "out of memory");
        else if (mgr->n++, (st = refresh_registry(mgr, err)))
            api_fields_free(&mgr->entries[--mgr->n].spec.f);
    }
    pthread_mutex_unlock(&mgr->mu);
    return st;
}

static shimmy_status not_found(shimmy_manager *mgr, const char *name, shimmy_error *err) {
    char known[256] = "";
    for (size_t i = 0; i < mgr->n; i++) {
        size_t n = strlen(known);
        snprintf(known + n, sizeof known - n, "%s'%s'", i ? ", " : "", mgr->entries[i].spec.f.name);
    }
    return core_error(err, SHIMMY_ERR_MODEL_NOT_FOUND, name ? name : "",
                      "no model named '%s' is registered (known: %s); add its spec with "
                      "shimmy_manager_add",
                      name ? name : "(null)", mgr->n ? known : "none");
}

static uint64_t model_bytes(const shimmy_model *m) {
    const engine_model_info *info = engine_model_get_info(m->em);
    return info->weight_bytes ? info->weight_bytes : info->file_bytes;
}

/* Memory of the cached models, each base file counted once (specs sharing a file share its
 * mapping). */
static uint64_t cached_bytes(const shimmy_manager *mgr) {
    uint64_t total = 0;
    for (size_t i = 0; i < mgr->n; i++) {
        const entry *e = &mgr->entries[i];
        if (!e->loaded) continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = mgr->entries[j].loaded && mgr->entries[j].loaded->em == e->loaded->em;
        if (!seen) total += model_bytes(e->loaded);
    }
    return total;
}

/* Evicts least-recently-used models, never `keep` (the one just loaded), until at most
 * max_models stay and the cache fits max_bytes (mu held). The models to unref after unlocking
 * go to drop[]. */
static size_t enforce_limits(shimmy_manager *mgr, const entry *keep, shimmy_model **drop) {
    size_t n_drop = 0, loaded = 0;
    for (size_t i = 0; i < mgr->n; i++) loaded += mgr->entries[i].loaded != NULL;
    while (n_drop < DROP_MAX && ((mgr->max_models && loaded > mgr->max_models) ||
                                 (mgr->max_bytes && cached_bytes(mgr) > mgr->max_bytes))) {
        entry *lru = NULL;
        for (size_t i = 0; i < mgr->n; i++) {
            entry *e = &mgr->entries[i];
            if (e->loaded && e != keep && (!lru || e->last_used < lru->last_used)) lru = e;
        }
        if (!lru) break; /* only the new model is left: it is kept even above the budget */
        drop[n_drop++] = evict_locked(mgr, lru);
        loaded--;
    }
    return n_drop;
}

shimmy_status shimmy_manager_get(shimmy_manager *mgr, const char *name, shimmy_model **out,
                                 shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!mgr) return core_error(err, SHIMMY_ERR_INVALID_ARG, "manager", "the manager is NULL");
    pthread_mutex_lock(&mgr->mu);
    entry *e;
    while ((e = find(mgr, name)) && e->loading) pthread_cond_wait(&mgr->loaded, &mgr->mu);
    if (!e || mgr->closed) {
        shimmy_status st = not_found(mgr, name, err);
        pthread_mutex_unlock(&mgr->mu);
        return st;
    }
    if (e->loaded) {
        e->last_used = ++mgr->ticks;
        *out = shimmy_model_ref(e->loaded);
        pthread_mutex_unlock(&mgr->mu);
        return SHIMMY_OK;
    }
    /* Load outside the lock; entries may move (realloc), so find it again afterwards. */
    e->loading = true;
    shimmy_spec spec;
    bool copied = api_fields_copy(&spec.f, &e->spec.f);
    pthread_mutex_unlock(&mgr->mu);
    shimmy_model *m = NULL;
    shimmy_status st = SHIMMY_OK;
    if (!copied) {
        st = core_error(err, SHIMMY_ERR_NOMEM, name, "out of memory");
    } else {
        manager_handle *h = NULL;
        api_loading_spec = &spec.f;
        st = manager_acquire(mgr->core, spec.f.base_path, &h, err);
        api_loading_spec = NULL;
        if (!st) st = api_model_new(&spec, NULL, h, &m, err);
        api_fields_free(&spec.f);
    }
    shimmy_model *drop[DROP_MAX];
    size_t n_drop = 0;
    pthread_mutex_lock(&mgr->mu);
    e = find(mgr, name);
    e->loading = false;
    if (!st) {
        e->loaded = shimmy_model_ref(m);
        e->epoch = ++mgr->epochs;
        e->last_used = ++mgr->ticks;
        n_drop = enforce_limits(mgr, e, drop);
    }
    pthread_cond_broadcast(&mgr->loaded);
    pthread_mutex_unlock(&mgr->mu);
    for (size_t i = 0; i < n_drop; i++) shimmy_model_unref(drop[i]);
    *out = m;
    return st;
}

shimmy_status shimmy_manager_evict(shimmy_manager *mgr, const char *name, shimmy_error *err) {
    if (!mgr) return core_error(err, SHIMMY_ERR_INVALID_ARG, "manager", "the manager is NULL");
    pthread_mutex_lock(&mgr->mu);
    entry *e = find(mgr, name);
    shimmy_model *m = e && e->loaded ? evict_locked(mgr, e) : NULL;
    pthread_mutex_unlock(&mgr->mu);
    if (!m)
        return core_error(err, SHIMMY_ERR_NOT_FOUND, name ? name : "",
                          "model '%s' is not loaded, so there is nothing to evict",
                          name ? name : "(null)");
    shimmy_model_unref(m);
    return SHIMMY_OK;
}

size_t shimmy_manager_loaded_count(shimmy_manager *mgr) {
    if (!mgr) return 0;
    pthread_mutex_lock(&mgr->mu);
    size_t n = 0;
    for (size_t i = 0; i < mgr->n; i++) n += mgr->entries[i].loaded != NULL;
    pthread_mutex_unlock(&mgr->mu);
    return n;
}

shimmy_status shimmy_manager_weak(shimmy_manager *mgr, const char *name, shimmy_weak **out,
                                  shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!mgr || !name)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, mgr ? "name" : "manager", "%s is NULL",
                          mgr ? "the name" : "the manager");
    shimmy_weak *w = core_calloc(1, sizeof *w);
    if (!w || !(w->name = core_strdup(name))) {
        free(w);
        return core_error(err, SHIMMY_ERR_NOMEM, name, "out of memory");
    }
    pthread_mutex_lock(&mgr->mu);
    entry *e = find(mgr, name);
    if (e && e->loaded) {
        w->epoch = e->epoch;
        w->mgr = mgr;
        mgr->refs++;
    }
    pthread_mutex_unlock(&mgr->mu);
    if (!w->mgr) {
        shimmy_weak_free(w);
        return core_error(err, SHIMMY_ERR_NOT_FOUND, name,
                          "model '%s' is not loaded; a weak reference names a loaded model "
                          "(load it with shimmy_manager_get first)",
                          name);
    }
    *out = w;
    return SHIMMY_OK;
}

shimmy_status shimmy_weak_lock(shimmy_weak *w, shimmy_model **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!w) return core_error(err, SHIMMY_ERR_INVALID_ARG, "weak", "the weak reference is NULL");
    shimmy_manager *mgr = w->mgr;
    pthread_mutex_lock(&mgr->mu);
    entry *e = find(mgr, w->name);
    if (e && e->loaded && e->epoch == w->epoch) {
        e->last_used = ++mgr->ticks;
        *out = shimmy_model_ref(e->loaded);
    }
    pthread_mutex_unlock(&mgr->mu);
    if (!*out)
        return core_error(err, SHIMMY_ERR_NOT_FOUND, w->name,
                          "model '%s' was evicted since this weak reference was taken; get a "
                          "fresh reference with shimmy_manager_get",
                          w->name);
    return SHIMMY_OK;
}

void shimmy_weak_free(shimmy_weak *w) {
    if (!w) return;
    if (w->mgr) mgr_drop(w->mgr);
    free(w->name);
    free(w);
}
