/* The catalog: a registry scan (replaced whole by a rescan) behind the internal manager, which
 * loads each listed file once, keeps the memory budget and unloads idle models. Every model it
 * hands out wraps its own manager handle, so "users" counts the references callers hold. */
#include "api.h"

#include "registry/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shimmy_catalog {
    manager *mgr;
    /* The scan's inputs, owned, so that a rescan repeats it exactly. */
    char *paths;
    char **files, **adapters;
    size_t n_files, n_adapters;
    bool no_defaults, ignore_env;
    int32_t ctx_len, threads;
    char *device;          /* owned copy of the options' device, or NULL */
    api_device_loader dev; /* the manager loader (device points at `device`) */
};

static char **copy_strings(const char *const *v, size_t n, bool *ok) {
    if (!n) return NULL;
    char **out = core_calloc(n, sizeof *out);
    if (!out) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!v[i] || !(out[i] = core_strdup(v[i]))) *ok = false;
    return out;
}

static void free_strings(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static void catalog_destroy(shimmy_catalog *c) {
    manager_free(c->mgr);
    api_device_loader_deinit(&c->dev);
    free(c->paths);
    free(c->device);
    free_strings(c->files, c->n_files);
    free_strings(c->adapters, c->n_adapters);
    free(c);
}

static shimmy_status scan(const shimmy_catalog *c, registry **out, shimmy_error *err) {
    registry_options ro = {.dirs = c->paths,
                           .files = (const char *const *)c->files,
                           .n_files = c->n_files,
                           .adapter_files = (const char *const *)c->adapters,
                           .n_adapter_files = c->n_adapters,
                           .disable = c->no_defaults ? REGISTRY_NO_DEFAULTS : 0,
                           .ignore_env = c->ignore_env};
    return registry_scan(&ro, out, err);
}

static shimmy_status check_options(const shimmy_catalog_options *o, shimmy_error *err) {
    api_problems p = {0};
    api_check_range(&p, "ctx_len", o->ctx_len, 1048576);
    api_check_range(&p, "threads", o->threads, 512);
    if (o->n_model_files && !o->model_files)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "model_files",
                    "n_model_files is %zu but "
                    "model_files is NULL",
                    o->n_model_files);
    if (o->n_adapter_files && !o->adapter_files)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "adapter_files",
                    "n_adapter_files is %zu but "
                    "adapter_files is NULL",
                    o->n_adapter_files);
    api_check_device(o->device, o->gpu_layers, &p);
    if (o->keep_alive_s != o->keep_alive_s)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "keep_alive_s", "keep_alive_s is NaN");
    return api_problems_report(&p, err);
}

shimmy_status shimmy_catalog_open(const shimmy_catalog_options *opts, shimmy_catalog **out,
                                  shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    const shimmy_catalog_options none = {0};
    const shimmy_catalog_options *o = opts ? opts : &none;
    shimmy_status st = check_options(o, err);
    if (st) return st;
    shimmy_catalog *c = core_calloc(1, sizeof *c);
    if (!c) return core_error(err, SHIMMY_ERR_NOMEM, "catalog", "out of memory");
    bool ok = true;
    if (o->device && !(c->device = core_strdup(o->device))) ok = false;
    api_device_loader_init(&c->dev, c->device, o->gpu_layers, o->ignore_env);
    if (o->paths && !(c->paths = core_strdup(o->paths))) ok = false;
    c->files = copy_strings(o->model_files, o->n_model_files, &ok);
    c->n_files = o->n_model_files;
    c->adapters = copy_strings(o->adapter_files, o->n_adapter_files, &ok);
    c->n_adapters = o->n_adapter_files;
    c->no_defaults = o->no_default_roots;
    c->ignore_env = o->ignore_env;
    c->ctx_len = o->ctx_len;
    c->threads = o->threads;
    if (!ok) {
        catalog_destroy(c);
        return core_error(err, SHIMMY_ERR_NOMEM, "catalog", "out of memory (or a NULL file name)");
    }
    registry *reg = NULL;
    st = scan(c, &reg, err);
    if (!st) {
        manager_options mo = {.loader = api_manager_loader(&c->dev),
                              .max_loaded_bytes = o->max_loaded_bytes,
                              .keep_alive_s = o->keep_alive_s};
        st = manager_new(&mo, reg, &c->mgr, err);
    }
    registry_free(reg);
    if (st) {
        catalog_destroy(c);
        return st;
    }
    *out = c;
    return SHIMMY_OK;
}

void shimmy_catalog_free(shimmy_catalog *c) {
    if (c) catalog_destroy(c);
}

shimmy_status shimmy_catalog_rescan(shimmy_catalog *c, shimmy_error *err) {
    if (!c) return core_error(err, SHIMMY_ERR_INVALID_ARG, "catalog", "the catalog is NULL");
    registry *reg = NULL;
    shimmy_status st = scan(c, &reg, err);
    if (st) return st;
    manager_set_registry(c->mgr, reg);
    registry_free(reg);
    return SHIMMY_OK;
}

shimmy_status shimmy_catalog_list(shimmy_catalog *c, shimmy_model_list **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!c) return core_error(err, SHIMMY_ERR_INVALID_ARG, "catalog", "the catalog is NULL");
    shimmy_model_list *l = core_calloc(1, sizeof *l);
    if (!l) return core_error(err, SHIMMY_ERR_NOMEM, "catalog", "out of memory");
    l->reg = manager_get_registry(c->mgr);
    if (!l->reg) { /* the manager was made with one and never loses it */
        free(l);
        return core_error(err, SHIMMY_ERR_INTERNAL, "catalog", "the catalog has no listing");
    }
    *out = l;
    return SHIMMY_OK;
}

shimmy_status shimmy_catalog_get(shimmy_catalog *c, const char *name, shimmy_model **out,
                                 shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!c) return core_error(err, SHIMMY_ERR_INVALID_ARG, "catalog", "the catalog is NULL");
    if (!name) return core_error(err, SHIMMY_ERR_INVALID_ARG, "name", "the name is NULL");
    manager_handle *h = NULL;
    shimmy_status st = manager_acquire(c->mgr, name, &h, err);
    if (st) return st;
    /* The spec a catalog model reports: its listed name and file, the catalog's settings. */
    shimmy_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.f.name = (char *)manager_handle_name(h);
    spec.f.base_path = (char *)manager_handle_path(h);
    spec.f.ctx_len = c->ctx_len;
    spec.f.threads = c->threads;
    spec.f.device = c->device;
    spec.f.gpu_layers = c->dev.gpu_layers;
    return api_model_new(&spec, NULL, h, out, err);
}

shimmy_status shimmy_catalog_unload(shimmy_catalog *c, const char *name, shimmy_error *err) {
    if (!c) return core_error(err, SHIMMY_ERR_INVALID_ARG, "catalog", "the catalog is NULL");
    if (!name) return core_error(err, SHIMMY_ERR_INVALID_ARG, "name", "the name is NULL");
    return manager_unload(c->mgr, name, err);
}

const char *shimmy_load_state_name(shimmy_load_state s) {
    static const char *const names[] = {"not loaded", "loading", "loaded", "failed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static void to_status(shimmy_catalog *c, const manager_info *in, shimmy_load_status *out) {
    static const shimmy_load_state states[] = {
        [MANAGER_NOT_LOADED] = SHIMMY_LOAD_NONE,
        [MANAGER_LOADING] = SHIMMY_LOAD_LOADING,
        [MANAGER_LOADED] = SHIMMY_LOAD_LOADED,
        [MANAGER_FAILED] = SHIMMY_LOAD_FAILED,
    };
    memset(out, 0, sizeof *out);
    memcpy(out->name, in->name, sizeof out->name);
    out->name[sizeof out->name - 1] = '\0';
    out->state = states[in->state];
    out->error = in->error;
    out->bytes = in->bytes;
    out->users = in->users;
    out->idle_s = in->idle_s;
    out->load_ms = in->load_ms;
    if (c && in->state == MANAGER_LOADED) out->device_bytes = api_device_bytes(&c->dev, in->path);
}

void shimmy_catalog_status(shimmy_catalog *c, const char *name, shimmy_load_status *out) {
    if (!out) return;
    manager_info info;
    memset(&info, 0, sizeof info);
    if (c && name) manager_info_of(c->mgr, name, &info);
    if (!c || !name) snprintf(info.name, sizeof info.name, "%s", name ? name : "");
    to_status(c, &info, out);
}

size_t shimmy_catalog_statuses(shimmy_catalog *c, shimmy_load_status *out, size_t cap) {
    if (!c) return 0;
    if (!out) cap = 0;
    manager_info probe;
    size_t n = manager_list(c->mgr, &probe, 0);
    if (cap == 0) return n;
    /* The table may grow between the two calls: a little room, and the second count wins. */
    size_t room = n + 8;
    manager_info *infos = core_calloc(room, sizeof *infos);
    if (!infos) return n;
    n = manager_list(c->mgr, infos, room);
    for (size_t i = 0; i < n && i < cap && i < room; i++) to_status(c, &infos[i], &out[i]);
    free(infos);
    return n;
}
