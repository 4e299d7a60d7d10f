/*
 * The loaded-model table. One mutex guards everything; the slow parts (loader open/close) run
 * outside it. A loaded model is a refcounted mgr_obj: the table holds one reference while the
 * model is "loaded", every handle holds one, and the object is closed when the count reaches
 * zero, wherever that happens (release, unload, eviction, expiry, manager_free).
 * The manager struct itself is refcounted the same way (owner + one per handle), so a handle
 * released after manager_free still finds its mutex.
 */
#include "manager.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MGR_DEFAULT_KEEP_ALIVE_S 300.0
#define MGR_SUGGESTIONS          3

typedef struct mgr_obj {
    void *model;
    uint64_t bytes;
    int refs; /* guarded by manager.mu */
    uint64_t last_used_ns;
    double load_ms;
    char *name, *path;
} mgr_obj;

typedef struct mgr_rec {
    char *name, *path;
    manager_state state;
    shimmy_error error; /* last failure */
    mgr_obj *obj;       /* the table's reference while LOADED */
    uint64_t attempt;   /* bumped by every load start: waiters know which load they waited on */
    int pins;           /* acquires holding this record across an unlock: it must not be freed */
} mgr_rec;

struct manager_handle {
    manager *m;
    mgr_obj *obj;
};

struct manager {
    pthread_mutex_t mu;
    pthread_cond_t loaded_cv; /* a load finished */
    pthread_cond_t reaper_cv; /* wakes the reaper early (shutdown) */
    manager_loader loader;
    uint64_t budget;
    double keep_alive_s;
    registry *reg;
    mgr_rec **recs;
    size_t n_recs, cap_recs;
    int refs; /* owner + handles; guarded by mu */
    bool stopping;
    bool has_reaper;
    pthread_t reaper;
    manager_stats stats;
};

/* Objects whose last reference was dropped under the lock, closed after unlocking. */
typedef struct mgr_graveyard {
    mgr_obj *v[64];
    size_t n;
} mgr_graveyard;

const char *manager_state_name(manager_state s) {
    static const char *const names[] = {"not loaded", "loading", "loaded", "failed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static uint64_t default_budget(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 4ull << 30;
    return (uint64_t)pages * (uint64_t)page / 2;
}

static void obj_free(const manager_loader *l, mgr_obj *o) {
    if (!o) return;
    if (o->model) l->close(l->ctx, o->model);
    free(o->name);
    free(o->path);
    free(o);
}

/* Drops one reference under the lock; the object goes to the graveyard at zero. */
static void obj_unref(manager *m, mgr_obj *o, mgr_graveyard *g) {
    if (--o->refs > 0) return;
    m->stats.loaded_bytes -= o->bytes;
    m->stats.closed++;
    if (g->n < sizeof g->v / sizeof g->v[0])
        g->v[g->n++] = o;
    else
        obj_free(&m->loader, o); /* graveyard full: close under the lock rather than leak */
}

static void graveyard_close(manager *m, mgr_graveyard *g) {
    for (size_t i = 0; i < g->n; i++) obj_free(&m->loader, g->v[i]);
#ifdef __GLIBC__
    /* A model's tables (vocabulary, merges, template) were allocated in the arena of whichever
     * thread loaded it; glibc keeps freed arena memory resident, so loads and unloads on the
     * server's many connection threads grew RSS by every arena's high-water mark (the soak
     * test: +18 MiB at rest per 100 s, 57 MiB of it free). Closing a model is rare and frees a
     * lot: give the pages back then. */
    if (g->n) malloc_trim(0);
#endif
    g->n = 0;
}

/* The table lets go of a loaded model (it stays alive while handles use it). */
static void rec_drop(manager *m, mgr_rec *r, mgr_graveyard *g) {
    if (!r->obj) return;
    mgr_obj *o = r->obj;
    r->obj = NULL;
    r->state = MANAGER_NOT_LOADED;
    obj_unref(m, o, g);
}

static bool rec_idle(const mgr_rec *r) {
    return r->state == MANAGER_LOADED && r->obj && r->obj->refs == 1;
}

/* Evicts idle models, least recently used first, until `need` more bytes fit the budget. */
static void evict_for(manager *m, uint64_t need, const mgr_rec *keep, mgr_graveyard *g) {
    while (m->stats.loaded_bytes + need > m->budget) {
        mgr_rec *lru = NULL;
        for (size_t i = 0; i < m->n_recs; i++) {
            mgr_rec *r = m->recs[i];
            if (r != keep && rec_idle(r) && (!lru || r->obj->last_used_ns < lru->obj->last_used_ns))
                lru = r;
        }
        if (!lru) {
            core_log(CORE_LOG_WARN,
                     "manager: memory budget of %llu MiB exceeded (%llu MiB loaded, %llu MiB more "
                     "needed) and no idle model is left to evict",
                     (unsigned long long)(m->budget >> 20),
                     (unsigned long long)(m->stats.loaded_bytes >> 20),
                     (unsigned long long)(need >> 20));
            return;
        }
        core_log(CORE_LOG_INFO, "manager: evicting idle model %s to stay within the budget",
                 lru->name);
        m->stats.evictions++;
        rec_drop(m, lru, g);
    }
}

static size_t expire_idle(manager *m, double idle_s, mgr_graveyard *g, bool count_expired) {
    uint64_t now = core_time_ns(), limit = (uint64_t)(idle_s * 1e9);
    size_t n = 0;
    for (size_t i = 0; i < m->n_recs; i++) {
        mgr_rec *r = m->recs[i];
        if (rec_idle(r) && now - r->obj->last_used_ns >= limit) {
            core_log(CORE_LOG_INFO, "manager: unloading %s (idle)", r->name);
            rec_drop(m, r, g);
            if (count_expired) m->stats.expired++;
            n++;
        }
    }
    return n;
}

static void *reaper_main(void *arg) {
    manager *m = arg;
    double period = m->keep_alive_s / 2;
    if (period > 1.0) period = 1.0;
    if (period < 0.01) period = 0.01;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)(period * 1e9);
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&m->reaper_cv, &m->mu, &ts);
        if (m->stopping) break;
        mgr_graveyard g = {.n = 0};
        expire_idle(m, m->keep_alive_s, &g, true);
        pthread_mutex_unlock(&m->mu);
        graveyard_close(m, &g);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void manager_destroy(manager *m) {
    for (size_t i = 0; i < m->n_recs; i++) {
        free(m->recs[i]->name);
        free(m->recs[i]->path);
        free(m->recs[i]);
    }
    free(m->recs);
    pthread_cond_destroy(&m->loaded_cv);
    pthread_cond_destroy(&m->reaper_cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

shimmy_status manager_new(const manager_options *o, registry *reg, manager **out,
                          shimmy_error *err) {
    *out = NULL;
    if (!o || !o->loader.open || !o->loader.close || !o->loader.bytes)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "loader",
                          "the manager needs a loader with open, close and bytes");
    manager *m = core_calloc(1, sizeof *m);
    if (!m) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "no memory for the model manager");
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->loaded_cv, NULL);
    pthread_cond_init(&m->reaper_cv, NULL);
    m->loader = o->loader;
    m->budget = o->max_loaded_bytes ? o->max_loaded_bytes : default_budget();
    m->stats.budget_bytes = m->budget;
    m->keep_alive_s = o->keep_alive_s == 0 ? MGR_DEFAULT_KEEP_ALIVE_S : o->keep_alive_s;
    m->reg = registry_ref(reg);
    m->refs = 1;
    if (!o->no_reaper && m->keep_alive_s > 0) {
        if (pthread_create(&m->reaper, NULL, reaper_main, m) != 0) {
            registry_free(m->reg);
            manager_destroy(m);
            return core_error(err, SHIMMY_ERR_INTERNAL, NULL,
                              "cannot start the model manager's reaper thread");
        }
        m->has_reaper = true;
    }
    *out = m;
    return SHIMMY_OK;
}

/* Drops one reference to the manager struct; the caller holds mu, which this releases. */
static void manager_unref_unlock(manager *m) {
    bool last = --m->refs == 0;
    pthread_mutex_unlock(&m->mu);
    if (last) manager_destroy(m);
}

void manager_free(manager *m) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->reaper_cv);
    pthread_mutex_unlock(&m->mu);
    if (m->has_reaper) pthread_join(m->reaper, NULL);
    pthread_mutex_lock(&m->mu);
    mgr_graveyard g = {.n = 0};
    for (size_t i = 0; i < m->n_recs; i++) {
        rec_drop(m, m->recs[i], &g);
        if (g.n == sizeof g.v / sizeof g.v[0]) {
            pthread_mutex_unlock(&m->mu);
            graveyard_close(m, &g);
            pthread_mutex_lock(&m->mu);
        }
    }
    registry *reg = m->reg;
    m->reg = NULL;
    pthread_mutex_unlock(&m->mu);
    graveyard_close(m, &g);
    registry_free(reg);
    pthread_mutex_lock(&m->mu);
    manager_unref_unlock(m);
}

void manager_set_registry(manager *m, registry *reg) {
    registry_ref(reg);
    pthread_mutex_lock(&m->mu);
    registry *old = m->reg;
    m->reg = reg;
    /* forget models that left the registry and hold nothing, so a long-running server's status
     * list does not fill with names of deleted files */
    size_t kept = 0;
    for (size_t i = 0; i < m->n_recs; i++) {
        mgr_rec *r = m->recs[i];
        bool idle =
            !r->obj && !r->pins && (r->state == MANAGER_NOT_LOADED || r->state == MANAGER_FAILED);
        if (idle && (!reg || !registry_find(reg, r->name))) {
            free(r->name);
            free(r->path);
            free(r);
        } else {
            m->recs[kept++] = r;
        }
    }
    m->n_recs = kept;
    pthread_mutex_unlock(&m->mu);
    registry_free(old);
}

registry *manager_get_registry(manager *m) {
    pthread_mutex_lock(&m->mu);
    registry *r = registry_ref(m->reg);
    pthread_mutex_unlock(&m->mu);
    return r;
}

static mgr_rec *rec_find(manager *m, const char *name) {
    for (size_t i = 0; i < m->n_recs; i++)
        if (strcmp(m->recs[i]->name, name) == 0) return m->recs[i];
    return NULL;
}

static mgr_rec *rec_get(manager *m, const char *name, const char *path) {
    mgr_rec *r = rec_find(m, name);
    if (r) return r;
    if (m->n_recs == m->cap_recs) {
        size_t cap = m->cap_recs ? m->cap_recs * 2 : 8;
        mgr_rec **v = core_realloc(m->recs, cap * sizeof *v);
        if (!v) return NULL;
        m->recs = v;
        m->cap_recs = cap;
    }
    r = core_calloc(1, sizeof *r);
    if (!r || !(r->name = core_strdup(name)) || !(r->path = core_strdup(path))) {
        if (r) free(r->name);
        free(r);
        return NULL;
    }
    m->recs[m->n_recs++] = r;
    return r;
}

static shimmy_status not_found(manager *m, const char *name, shimmy_error *err) {
    if (!m->reg)
        return core_error(err, SHIMMY_ERR_MODEL_NOT_FOUND, name,
                          "model '%s' not found: no model registry is loaded", name);
    const char *close[MGR_SUGGESTIONS];
    size_t n = registry_suggest(m->reg, name, close, MGR_SUGGESTIONS);
    char hint[300] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof hint; i++)
        off += (size_t)snprintf(hint + off, sizeof hint - off, "%s'%s'",
                                i ? ", " : "; did you mean ", close[i]);
    return core_error(err, SHIMMY_ERR_MODEL_NOT_FOUND, name,
                      "model '%s' not found (see `shimmy list`)%s", name, hint);
}

static manager_handle *handle_new(manager *m, mgr_obj *o) {
    manager_handle *h = core_malloc(sizeof *h);
    if (!h) return NULL;
    h->m = m;
    h->obj = o;
    o->refs++;
    o->last_used_ns = core_time_ns();
    m->refs++;
    return h;
}

/* Runs one load with mu released; returns with mu held and the record updated. */
static shimmy_status load_unlocked(manager *m, mgr_rec *r, uint64_t estimate, mgr_graveyard *g,
                                   shimmy_error *err) {
    r->state = MANAGER_LOADING;
    r->attempt++;
    evict_for(m, estimate, r, g);
    char *name = core_strdup(r->name), *path = core_strdup(r->path);
    pthread_mutex_unlock(&m->mu);
    graveyard_close(m, g);
    shimmy_error lerr;
    shimmy_error_clear(&lerr);
    void *model = NULL;
    double t0 = core_time_ms();
    shimmy_status st = name && path ? m->loader.open(m->loader.ctx, name, path, &model, &lerr)
                                    : core_error(&lerr, SHIMMY_ERR_NOMEM, r->name,
                                                 "no memory to load %s", r->name);
    double ms = core_time_ms() - t0;
    mgr_obj *o = NULL;
    if (st == SHIMMY_OK) {
        o = core_calloc(1, sizeof *o);
        if (!o) {
            m->loader.close(m->loader.ctx, model);
            st = core_error(&lerr, SHIMMY_ERR_NOMEM, name, "no memory to track model %s", name);
        } else {
            o->model = model;
            o->bytes = m->loader.bytes(m->loader.ctx, model);
            o->name = name;
            o->path = path;
            o->load_ms = ms;
            o->refs = 1; /* the table's */
            o->last_used_ns = core_time_ns();
            name = path = NULL;
        }
    }
    free(name);
    free(path);
    pthread_mutex_lock(&m->mu);
    if (st == SHIMMY_OK) {
        m->stats.loads++;
        m->stats.loaded_bytes += o->bytes;
        r->obj = o;
        r->state = MANAGER_LOADED;
        shimmy_error_clear(&r->error);
        /* the real size may exceed the estimate */
        evict_for(m, 0, r, g);
    } else {
        m->stats.failures++;
        r->state = MANAGER_FAILED;
        r->error = lerr;
        if (err) *err = lerr;
        core_log(CORE_LOG_WARN, "manager: loading %s failed: %s", r->name, lerr.message);
    }
    pthread_cond_broadcast(&m->loaded_cv);
    return st;
}

shimmy_status manager_acquire(manager *m, const char *name, manager_handle **out,
                              shimmy_error *err) {
    *out = NULL;
    if (!name || !*name)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "no model name given");
    mgr_graveyard g = {.n = 0};
    shimmy_status st = SHIMMY_OK;
    pthread_mutex_lock(&m->mu);
    if (m->keep_alive_s > 0) expire_idle(m, m->keep_alive_s, &g, true);
    /* our own reference: the entry stays valid while we wait with the lock released, even if
     * the registry is swapped meanwhile */
    registry *reg = registry_ref(m->reg);
    const registry_entry *e = reg ? registry_find(reg, name) : NULL;
    mgr_rec *r = NULL;
    if (!e) {
        st = not_found(m, name, err);
    } else if (!(r = rec_get(m, e->name, e->path))) {
        st = core_error(err, SHIMMY_ERR_NOMEM, name, "no memory to track model %s", name);
    } else {
        r->pins++; /* the lock is released while loading or waiting for a load */
    }
    while (st == SHIMMY_OK) {
        if (r->state == MANAGER_LOADING) {
            uint64_t attempt = r->attempt;
            while (r->state == MANAGER_LOADING && r->attempt == attempt)
                pthread_cond_wait(&m->loaded_cv, &m->mu);
            if (r->state == MANAGER_FAILED && r->attempt == attempt) {
                /* the load we waited for failed: share its error rather than retrying at once */
                if (err) *err = r->error;
                st = r->error.status ? r->error.status : SHIMMY_ERR_INTERNAL;
            }
            continue;
        }
        if (strcmp(r->path, e->path) != 0) {
            /* a rescan pointed the name at another file: the old model serves its current
             * users, new requests get the new file */
            char *p = core_strdup(e->path);
            if (!p) {
                st = core_error(err, SHIMMY_ERR_NOMEM, name, "no memory");
                break;
            }
            rec_drop(m, r, &g);
            free(r->path);
            r->path = p;
        }
        if (r->state == MANAGER_LOADED && m->loader.stale &&
            m->loader.stale(m->loader.ctx, r->obj->model))
            rec_drop(m, r, &g); /* users keep the old model; this request loads the file again */
        if (r->state == MANAGER_LOADED) {
            manager_handle *h = handle_new(m, r->obj);
            if (!h) st = core_error(err, SHIMMY_ERR_NOMEM, name, "no memory for a model handle");
            *out = h;
            break;
        }
        st = load_unlocked(m, r, e->size, &g, err);
        if (st == SHIMMY_OK) {
            manager_handle *h = handle_new(m, r->obj);
            if (!h) st = core_error(err, SHIMMY_ERR_NOMEM, name, "no memory for a model handle");
            *out = h;
        }
        break;
    }
    if (r) r->pins--;
    pthread_mutex_unlock(&m->mu);
    graveyard_close(m, &g);
    registry_free(reg);
    return st;
}

void manager_release(manager_handle *h) {
    if (!h) return;
    manager *m = h->m;
    mgr_graveyard g = {.n = 0};
    pthread_mutex_lock(&m->mu);
    h->obj->last_used_ns = core_time_ns();
    obj_unref(m, h->obj, &g);
    free(h);
    pthread_mutex_unlock(&m->mu);
    graveyard_close(m, &g);
    pthread_mutex_lock(&m->mu);
    manager_unref_unlock(m);
}

void *manager_handle_model(const manager_handle *h) {
    return h ? h->obj->model : NULL;
}
const char *manager_handle_name(const manager_handle *h) {
    return h ? h->obj->name : NULL;
}
const char *manager_handle_path(const manager_handle *h) {
    return h ? h->obj->path : NULL;
}
double manager_handle_load_ms(const manager_handle *h) {
    return h ? h->obj->load_ms : 0;
}

shimmy_status manager_unload(manager *m, const char *name, shimmy_error *err) {
    mgr_graveyard g = {.n = 0};
    pthread_mutex_lock(&m->mu);
    mgr_rec *r = rec_find(m, name);
    if (!r && m->reg) {
        const registry_entry *e = registry_find(m->reg, name);
        if (e) r = rec_find(m, e->name);
    }
    shimmy_status st = SHIMMY_OK;
    if (!r || r->state != MANAGER_LOADED)
        st = core_error(
            err, r && r->state == MANAGER_LOADING ? SHIMMY_ERR_BUSY : SHIMMY_ERR_NOT_FOUND, name,
            "model '%s' is %s", name, r ? manager_state_name(r->state) : "not loaded");
    else
        rec_drop(m, r, &g);
    pthread_mutex_unlock(&m->mu);
    graveyard_close(m, &g);
    return st;
}

size_t manager_unload_idle(manager *m, double idle_s) {
    mgr_graveyard g = {.n = 0};
    pthread_mutex_lock(&m->mu);
    size_t n = expire_idle(m, idle_s < 0 ? 0 : idle_s, &g, false);
    pthread_mutex_unlock(&m->mu);
    graveyard_close(m, &g);
    return n;
}

static void info_fill(const mgr_rec *r, manager_info *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", r->name);
    snprintf(out->path, sizeof out->path, "%s", r->path);
    out->state = r->state;
    if (r->state == MANAGER_FAILED) out->error = r->error;
    if (r->obj) {
        out->bytes = r->obj->bytes;
        out->users = r->obj->refs - 1;
        out->load_ms = r->obj->load_ms;
        if (out->users == 0) out->idle_s = (double)(core_time_ns() - r->obj->last_used_ns) / 1e9;
    }
}

void manager_info_of(manager *m, const char *name, manager_info *out) {
    pthread_mutex_lock(&m->mu);
    mgr_rec *r = rec_find(m, name);
    if (!r && m->reg) {
        const registry_entry *e = registry_find(m->reg, name);
        if (e) r = rec_find(m, e->name);
    }
    if (r) {
        info_fill(r, out);
    } else {
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", name);
        out->state = MANAGER_NOT_LOADED;
    }
    pthread_mutex_unlock(&m->mu);
}

static int cmp_info(const void *a, const void *b) {
    return strcmp(((const manager_info *)a)->name, ((const manager_info *)b)->name);
}

size_t manager_list(manager *m, manager_info *out, size_t cap) {
    pthread_mutex_lock(&m->mu);
    size_t n = m->n_recs;
    for (size_t i = 0; i < n && i < cap; i++) info_fill(m->recs[i], &out[i]);
    pthread_mutex_unlock(&m->mu);
    qsort(out, n < cap ? n : cap, sizeof *out, cmp_info);
    return n;
}

void manager_get_stats(manager *m, manager_stats *out) {
    pthread_mutex_lock(&m->mu);
    *out = m->stats;
    pthread_mutex_unlock(&m->mu);
}
