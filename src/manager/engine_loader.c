/* The production loader: models are engine_model bundles (weights mapped, vocabulary, template). */
#include "manager.h"

#include "engine/engine.h"

static shimmy_status engine_open(void *ctx, const char *name, const char *path, void **out,
                                 shimmy_error *err) {
    (void)ctx;
    (void)name;
    engine_model *m = NULL;
    shimmy_status st = engine_model_open(path, NULL, &m, err);
    *out = m;
    return st;
}

static void engine_close(void *ctx, void *obj) {
    (void)ctx;
    engine_model_close(obj);
}

/* Weights are mapped, not copied, but they become resident as they are used: the budget counts
 * them (the file size when the engine cannot tell). */
static uint64_t engine_bytes(void *ctx, const void *obj) {
    (void)ctx;
    const engine_model_info *info = engine_model_get_info(obj);
    return info->weight_bytes ? info->weight_bytes : info->file_bytes;
}

/* A file changed on disk since it was mapped: replaced (a new download, a re-quantized model)
 * or truncated under the mapping. One stat call per acquire. */
static bool engine_stale(void *ctx, const void *obj) {
    (void)ctx;
    shimmy_error err;
    if (!gguf_check_unchanged(engine_model_file(obj), &err)) return false;
    core_log(CORE_LOG_INFO, "manager: %s; reloading it", err.message);
    return true;
}

manager_loader manager_engine_loader(void) {
    return (manager_loader){
        .open = engine_open, .close = engine_close, .bytes = engine_bytes, .stale = engine_stale};
}
