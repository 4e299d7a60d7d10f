/* Device strings, shared by the Vulkan build and the build without it. */
#include "gpu.h"

#include <stdlib.h>
#include <string.h>

shimmy_status gpu_parse_device(const char *device, bool *wants_gpu, shimmy_error *err) {
    *wants_gpu = false;
    if (!device || !*device || strcmp(device, "cpu") == 0) return SHIMMY_OK;
    if (strcmp(device, "auto") == 0 || strcmp(device, "gpu") == 0 ||
        strcmp(device, "vulkan") == 0 || strcmp(device, "cuda") == 0) {
        *wants_gpu = true;
        return SHIMMY_OK;
    }
    if (strncmp(device, "vulkan:", 7) == 0 && device[7] >= '0' && device[7] <= '9') {
        char *end = NULL;
        long n = strtol(device + 7, &end, 10);
        if (*end == '\0' && n >= 0 && n < 64) {
            *wants_gpu = true;
            return SHIMMY_OK;
        }
    }
    return core_error(err, SHIMMY_ERR_INVALID_ARG, "device",
                      "unknown device '%s': use cpu, auto (a GPU when there is one), gpu, "
                      "vulkan, vulkan:N (shimmy probe --devices lists them) or cuda (the first "
                      "NVIDIA GPU, through Vulkan)",
                      device);
}
