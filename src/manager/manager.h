/*
 * manager — the models that are loaded: loaded once on first use, shared by refcounted handles,
 * unloaded when idle too long or when the memory budget needs room.
 *
 * Names are resolved through a registry (manager_set_registry swaps it at any time, e.g. after a
 * rescan); the manager never opens a file the registry does not list, so a request cannot make a
 * server load an arbitrary path. Loading goes through a loader vtable: production uses
 * manager_engine_loader() (engine_model_open/close); tests may plug their own loader.
 *
 * Invariants:
 *  - Concurrent first requests for one model load it once: the others wait for that load and
 *    share its result (the handle, or the error).
 *  - A loaded model is freed only when no handle refers to it: unloading or evicting drops the
 *    manager's reference, and the memory goes when the last handle is released.
 *  - The budget (max_loaded_bytes) counts every model still in memory, including evicted ones
 *    still in use. Before a load, idle models are evicted least-recently-used first until the new
 *    model (estimated by its file size) fits; when models in use keep the total above budget the
 *    load still happens and a warning is logged (an in-use model is never taken away).
 *  - A failed load is kept as the model's status with its error, is not cached: the next
 *    acquire tries again. Failures never change the registry.
 *  - Idle models (no handle) unload after keep_alive: a reaper thread checks once a second, and
 *    every acquire checks too.
 *
 * Ownership: manager_new/manager_free. manager_acquire gives a handle the caller must pass to
 * manager_release exactly once. A handle stays valid after manager_free (the manager's memory
 * goes when the last handle is released). The model pointer of a handle is borrowed until
 * manager_release. The manager holds its own reference to the registry it is given.
 * Thread-safety: every function may be called from any thread concurrently (one mutex guards
 * the table; loads run outside it). The loader's open/close may be called from any thread.
 */
#ifndef SHIMMY_MANAGER_H
#define SHIMMY_MANAGER_H

#include "core/core.h"
#include "registry/registry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct manager_loader {
    /* Loads the model file at path; *model receives an object close() will free. */
    shimmy_status (*open)(void *ctx, const char *name, const char *path, void **model,
                          shimmy_error *err);
    void (*close)(void *ctx, void *model);
    /* Memory the loaded model occupies (weights mapped or copied), for the budget. */
    uint64_t (*bytes)(void *ctx, const void *model);
    /* Optional: true when the loaded model no longer matches its file (truncated, rewritten or
     * replaced on disk); the next acquire then drops it and loads the file again. */
    bool (*stale)(void *ctx, const void *model);
    void *ctx; /* borrowed; must outlive every model the loader opened */
} manager_loader;

/* Loads with engine_model_open (default params); models are engine_model pointers. */
manager_loader manager_engine_loader(void);

typedef struct manager_options {
    manager_loader loader;     /* required */
    uint64_t max_loaded_bytes; /* 0 = half of the machine's RAM (MemTotal) */
    double keep_alive_s;       /* idle time before unloading; 0 = 300 s; < 0 = never */
    bool no_reaper;            /* true: no background thread (idle checks on acquire only) */
} manager_options;

typedef enum manager_state {
    MANAGER_NOT_LOADED,
    MANAGER_LOADING,
    MANAGER_LOADED,
    MANAGER_FAILED
} manager_state;

/* "not loaded", "loading", "loaded", "failed" */
const char *manager_state_name(manager_state s);

typedef struct manager manager;
typedef struct manager_handle manager_handle;

/* reg may be NULL (set one later); the manager takes its own reference. */
shimmy_status manager_new(const manager_options *o, registry *reg, manager **out,
                          shimmy_error *err);
void manager_free(manager *m);

/* Replaces the registry (the manager takes a reference and drops the old one). Loaded models
 * stay; a model whose name now points to another file is reloaded on its next acquire. */
void manager_set_registry(manager *m, registry *reg);
/* The current registry with a new reference (caller registry_free()s it), or NULL. */
registry *manager_get_registry(manager *m);

/* A handle to the loaded model `name` (a registry name or a listed path), loading it first if
 * needed. Errors: SHIMMY_ERR_MODEL_NOT_FOUND (unknown name, with close matches), or the
 * loader's error. */
shimmy_status manager_acquire(manager *m, const char *name, manager_handle **out,
                              shimmy_error *err);
/* NULL is a no-op. */
void manager_release(manager_handle *h);

void *manager_handle_model(const manager_handle *h); /* borrowed until release */
const char *manager_handle_name(const manager_handle *h);
const char *manager_handle_path(const manager_handle *h);
double manager_handle_load_ms(const manager_handle *h); /* how long the load took */

/* Drops the manager's reference to a loaded model (memory goes with the last handle).
 * SHIMMY_ERR_NOT_FOUND when the model is not loaded. */
shimmy_status manager_unload(manager *m, const char *name, shimmy_error *err);
/* Unloads every model idle for at least idle_s seconds; returns how many. */
size_t manager_unload_idle(manager *m, double idle_s);

typedef struct manager_info {
    char name[256];
    char path[1024];
    manager_state state;
    shimmy_error error; /* the last load error when state == MANAGER_FAILED */
    uint64_t bytes;     /* when loaded */
    int users;          /* handles outstanding */
    double idle_s;      /* since the last release (0 while in use) */
    double load_ms;
} manager_info;

/* The state of one model (NOT_LOADED for a name the manager has not seen). */
void manager_info_of(manager *m, const char *name, manager_info *out);
/* Every model the manager has seen, sorted by name: fills up to cap, returns the total. */
size_t manager_list(manager *m, manager_info *out, size_t cap);

typedef struct manager_stats {
    uint64_t loads;        /* successful loads */
    uint64_t failures;     /* failed loads */
    uint64_t evictions;    /* unloaded for the budget */
    uint64_t expired;      /* unloaded for keep_alive */
    uint64_t closed;       /* models actually freed (last reference dropped) */
    uint64_t loaded_bytes; /* memory of models still alive (including evicted, in use) */
    uint64_t budget_bytes;
} manager_stats;

void manager_get_stats(manager *m, manager_stats *out);

#endif
