/* Devices: the GPU a model is loaded onto (a spec's or catalog's device, else SHIMMY_DEVICE,
 * else "auto"), the Vulkan devices there are, and where a loaded model runs. */
#include "api.h"

#include "gpu/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shimmy_status api_model_params(const char *device, int32_t gpu_layers, bool ignore_env,
                               engine_model_params *out, shimmy_error *err) {
    memset(out, 0, sizeof *out);
    out->n_gpu_layers = gpu_layers; /* 0: all, as the engine reads it */
    const char *env = ignore_env ? NULL : getenv("SHIMMY_DEVICE");
    if ((!device || !*device) && env && *env) {
        bool gpu;
        shimmy_error perr;
        memset(&perr, 0, sizeof perr);
        if (gpu_parse_device(env, &gpu, &perr))
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "SHIMMY_DEVICE", "SHIMMY_DEVICE: %s",
                              perr.message);
        device = env;
    }
    out->device = device && *device ? device : NULL; /* NULL: "auto" */
    return SHIMMY_OK;
}

void api_check_device(const char *device, int32_t gpu_layers, api_problems *p) {
    bool gpu;
    shimmy_error perr;
    memset(&perr, 0, sizeof perr);
    if (device && gpu_parse_device(device, &gpu, &perr))
        api_problem(p, SHIMMY_ERR_INVALID_ARG, "device", "%s", perr.message);
    if (gpu_layers < 0)
        api_problem(p, SHIMMY_ERR_INVALID_ARG, "gpu_layers",
                    "%d is negative (0 = all layers on the GPU, N = the first N; device \"cpu\" "
                    "for none)",
                    (int)gpu_layers);
}

/* The manager's open with a device: the catalog's settings (ctx: the api_device_loader) or,
 * for a manager without one, the spec being loaded on this thread (api_loading_spec). */
_Thread_local const api_fields *api_loading_spec;

typedef struct api_open_model {
    engine_model *m;
    struct api_open_model *next;
} api_open_model;

void api_device_loader_init(api_device_loader *dl, const char *device, int32_t gpu_layers,
                            bool ignore_env) {
    *dl = (api_device_loader){.device = device, .gpu_layers = gpu_layers, .ignore_env = ignore_env};
    pthread_mutex_init(&dl->mu, NULL);
}

void api_device_loader_deinit(api_device_loader *dl) {
    for (api_open_model *o = dl->open, *next; o; o = next) {
        next = o->next;
        free(o);
    }
    dl->open = NULL;
    pthread_mutex_destroy(&dl->mu);
}

static shimmy_status device_open(void *ctx, const char *name, const char *path, void **out,
                                 shimmy_error *err) {
    (void)name;
    *out = NULL;
    api_device_loader *dl = ctx;
    const api_fields *f = api_loading_spec;
    engine_model_params mp;
    shimmy_status st = dl  ? api_model_params(dl->device, dl->gpu_layers, dl->ignore_env, &mp, err)
                       : f ? api_model_params(f->device, f->gpu_layers, false, &mp, err)
                           : api_model_params(NULL, 0, false, &mp, err);
    if (st) return st;
    engine_model *m = NULL;
    st = engine_model_open(path, &mp, &m, err);
    api_open_model *o = !st && dl ? core_malloc(sizeof *o) : NULL;
    if (o) { /* without the entry the model only reports no GPU memory */
        pthread_mutex_lock(&dl->mu);
        *o = (api_open_model){.m = m, .next = dl->open};
        dl->open = o;
        pthread_mutex_unlock(&dl->mu);
    }
    *out = m;
    return st;
}

static void device_close(void *ctx, void *obj) {
    api_device_loader *dl = ctx;
    if (dl) {
        pthread_mutex_lock(&dl->mu);
        for (api_open_model **o = &dl->open; *o; o = &(*o)->next)
            if ((*o)->m == obj) {
                api_open_model *gone = *o;
                *o = gone->next;
                free(gone);
                break;
            }
        pthread_mutex_unlock(&dl->mu);
    }
    engine_model_close(obj);
}

manager_loader api_manager_loader(api_device_loader *dl) {
    manager_loader l = manager_engine_loader(); /* bytes and stale as the engine's */
    l.open = device_open;
    l.close = device_close;
    l.ctx = dl;
    return l;
}

uint64_t api_device_bytes(api_device_loader *dl, const char *path) {
    uint64_t bytes = 0;
    pthread_mutex_lock(&dl->mu);
    for (api_open_model *o = dl->open; o && !bytes; o = o->next)
        if (strcmp(gguf_path(engine_model_file(o->m)), path) == 0)
            bytes = engine_model_device_bytes_now(o->m);
    pthread_mutex_unlock(&dl->mu);
    return bytes;
}

int32_t shimmy_list_devices(shimmy_device_info *out, int32_t cap, shimmy_error *err) {
    if (!out) cap = 0;
    gpu_device_info *d = NULL;
    int32_t n = gpu_list(NULL, 0, err);
    if (n > 0 && cap > 0) {
        d = core_calloc((size_t)n, sizeof *d);
        if (!d) {
            core_error(err, SHIMMY_ERR_NOMEM, "devices", "out of memory");
            return 0;
        }
        n = gpu_list(d, n, err);
    }
    for (int32_t i = 0; d && i < n && i < cap; i++) {
        shimmy_device_info *o = &out[i];
        memset(o, 0, sizeof *o);
        o->index = d[i].index;
        snprintf(o->name, sizeof o->name, "%s", d[i].name);
        snprintf(o->type, sizeof o->type, "%s", d[i].type);
        o->vendor_id = d[i].vendor_id;
        snprintf(o->driver, sizeof o->driver, "%s", d[i].driver);
        o->vram_bytes = d[i].vram_bytes;
        o->software = d[i].software;
        o->usable = d[i].usable;
        snprintf(o->why, sizeof o->why, "%s", d[i].why);
    }
    free(d);
    return n;
}

const char *shimmy_model_device(const shimmy_model *m) {
    return m ? engine_model_get_info(m->em)->device : NULL;
}
int32_t shimmy_model_gpu_layers(const shimmy_model *m) {
    return m ? engine_model_get_info(m->em)->n_gpu_layers : 0;
}
uint64_t shimmy_model_device_bytes(const shimmy_model *m) {
    return m ? engine_model_device_bytes_now(m->em) : 0;
}
const char *shimmy_model_cpu_kernels(const shimmy_model *m) {
    return m ? engine_model_get_info(m->em)->cpu_kernels : NULL;
}
