/* The gpu module of a build without Vulkan (no libvulkan-dev or glslc at configure time): no
 * device exists; "auto" and "gpu" run on the CPU, a device named outright is refused with how to
 * build one in. */
#include "gpu.h"

#include <string.h>

bool gpu_built(void) {
    return false;
}

int32_t gpu_list(gpu_device_info *out, int32_t cap, shimmy_error *err) {
    (void)out;
    (void)cap;
    core_error(err, SHIMMY_ERR_UNSUPPORTED, "device",
               "this shimmy was built without the Vulkan backend (install libvulkan-dev and "
               "glslc, then rebuild)");
    return 0;
}

shimmy_status gpu_model_open(const model *m, const gpu_model_params *p, gpu_model **out,
                             shimmy_error *err) {
    (void)m;
    *out = NULL;
    bool gpu = false;
    shimmy_status st = gpu_parse_device(p ? p->device : NULL, &gpu, err);
    if (st || !gpu) return st;
    if (strncmp(p->device, "vulkan:", 7) == 0)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, "device",
                          "device %s: this shimmy was built without the Vulkan backend (install "
                          "libvulkan-dev and glslc, then rebuild)",
                          p->device);
    core_log(CORE_LOG_INFO, "device %s: built without Vulkan, running on the CPU", p->device);
    return SHIMMY_OK;
}

void gpu_model_close(gpu_model *g) {
    (void)g;
}

const model_device *gpu_model_device(const gpu_model *g) {
    (void)g;
    return NULL;
}

void gpu_model_get_info(const gpu_model *g, gpu_model_info *out) {
    (void)g;
    memset(out, 0, sizeof *out);
}

uint64_t gpu_model_ctx_bytes(const gpu_model *g) {
    (void)g;
    return 0;
}
