/* The status table and core_error: the single place errors are described. */
#include "core.h"

#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
#define X(name, msg, http) #name,
    SHIMMY_STATUS_LIST(X)
#undef X
};
static const char *const status_messages[] = {
#define X(name, msg, http) msg,
    SHIMMY_STATUS_LIST(X)
#undef X
};
static const int status_http[] = {
#define X(name, msg, http) http,
    SHIMMY_STATUS_LIST(X)
#undef X
};

static bool status_known(shimmy_status s) {
    return (unsigned)s < SHIMMY_STATUS_COUNT;
}

const char *shimmy_status_name(shimmy_status s) {
    return status_known(s) ? status_names[s] : "SHIMMY_STATUS_UNKNOWN";
}

const char *shimmy_status_message(shimmy_status s) {
    return status_known(s) ? status_messages[s] : "unknown status";
}

int shimmy_status_http(shimmy_status s) {
    return status_known(s) ? status_http[s] : 500;
}

void shimmy_error_clear(shimmy_error *err) {
    if (!err) return;
    err->status = SHIMMY_OK;
    err->message[0] = '\0';
    err->where[0] = '\0';
}

shimmy_status core_error(shimmy_error *err, shimmy_status status, const char *where,
                         const char *fmt, ...) {
    if (!err) return status;
    err->status = status;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    } else {
        snprintf(err->message, sizeof err->message, "%s", shimmy_status_message(status));
    }
    snprintf(err->where, sizeof err->where, "%s", where ? where : "");
    return status;
}
