/* Process-wide services for library users: the log handler (a trampoline onto core_log's sink,
 * so library messages and the program's own go to one place) and resident memory. */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>

static shimmy_log_fn g_fn;
static void *g_user;

static void trampoline(core_log_level level, const char *msg, void *user) {
    (void)user;
    shimmy_log_fn fn = g_fn;
    if (fn) fn((shimmy_log_level)level, msg, g_user);
}

void shimmy_log_set_handler(shimmy_log_fn fn, void *user, shimmy_log_level min_level) {
    g_fn = fn;
    g_user = user;
    core_log_set_sink(fn ? trampoline : NULL, NULL, (core_log_level)min_level);
}

void shimmy_log_stderr(shimmy_log_level level, const char *message, void *user) {
    core_log_stderr_sink((core_log_level)level, message, user);
}

void shimmy_log(shimmy_log_level level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    core_log((core_log_level)level, "%s", msg);
}

uint64_t shimmy_process_rss_bytes(void) {
    return core_rss_bytes();
}
