/* MODEL arguments: a path to a .gguf file (registry names arrive with the registry module). */
#include "cli.h"

#include <sys/stat.h>

shimmy_status cli_resolve_model(const char *arg, char *buf, size_t cap, shimmy_error *err) {
    struct stat st;
    if (stat(arg, &st) == 0) {
        if ((size_t)snprintf(buf, cap, "%s", arg) >= cap)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, arg, "model path is too long");
        return SHIMMY_OK;
    }
    return core_error(err, SHIMMY_ERR_MODEL_NOT_FOUND, arg,
                      "no model file or registry name '%s' (try `shimmy list`)", arg);
}
