/* Logging through a program-installed sink, so library code never writes to a stream itself. */
#include "core.h"

#include <stdio.h>

static core_log_sink log_sink;
static void *log_user;
static core_log_level log_min = CORE_LOG_INFO;

void core_log_set_sink(core_log_sink sink, void *user, core_log_level min_level) {
    log_sink = sink;
    log_user = user;
    log_min = min_level;
}

void core_log(core_log_level level, const char *fmt, ...) {
    if (!log_sink || level < log_min) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_sink(level, buf, log_user);
}

void core_log_stderr_sink(core_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "shimmy: %s: %s\n", names[level], msg);
}
