/* MODEL arguments: a path to a model file, or a registry name (`shimmy list`). A path that
 * exists wins, so a file called like a registry name in the current folder is used as a file;
 * names are looked up with a default scan (environment and the usual folders). */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESOLVE_SUGGESTIONS 3

static shimmy_status copy_path(const char *path, char *buf, size_t cap, shimmy_error *err) {
    if ((size_t)snprintf(buf, cap, "%s", path) >= cap)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, path, "model path is too long");
    return SHIMMY_OK;
}

shimmy_status cli_resolve_model(const char *arg, char *buf, size_t cap, shimmy_error *err) {
    if (!arg || !*arg)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "MODEL", "no model given");
    struct stat st;
    if (stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return shimmy_error_set(
                err, SHIMMY_ERR_INVALID_ARG, arg,
                "'%s' is a folder; give a .gguf file or a name from `shimmy list`", arg);
        return copy_path(arg, buf, cap, err);
    }
    shimmy_model_list *r = NULL;
    shimmy_status s = shimmy_scan(NULL, &r, err);
    if (s != SHIMMY_OK) return s;
    size_t idx;
    if (shimmy_model_list_find(r, arg, &idx)) {
        s = copy_path(shimmy_model_list_path(r, idx), buf, cap, err);
        shimmy_model_list_free(r);
        return s;
    }
    const char *close[RESOLVE_SUGGESTIONS];
    size_t n = shimmy_model_list_suggestions(r, arg, close, RESOLVE_SUGGESTIONS);
    char hint[320] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof hint; i++)
        off += (size_t)snprintf(hint + off, sizeof hint - off, "%s'%s'",
                                i ? ", " : "; did you mean ", close[i]);
    const size_t count = shimmy_model_list_count(r);
    s = shimmy_error_set(err, SHIMMY_ERR_MODEL_NOT_FOUND, arg,
                         "no model file or registry name '%s' (run `shimmy list` to see the %zu "
                         "known model%s)%s",
                         arg, count, count == 1 ? "" : "s", hint);
    shimmy_model_list_free(r);
    return s;
}

/* A scan's progress on a terminal (stderr): nothing for the first half second, so a quick scan
 * prints nothing, then one line rewritten in place, erased at the end. */
typedef struct scan_display {
    struct timespec t0;
    bool shown;
} scan_display;

static void scan_progress(void *user, const shimmy_scan_progress *p) {
    scan_display *d = user;
    if (p->done) {
        if (d->shown) fputs("\r\033[K", stderr);
        return;
    }
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const double ms =
        (double)(t.tv_sec - d->t0.tv_sec) * 1e3 + (double)(t.tv_nsec - d->t0.tv_nsec) / 1e6;
    if (ms < 500) return;
    fprintf(stderr, "\rscanning: %llu folders, %llu model files found, %llu read\033[K",
            (unsigned long long)p->folders, (unsigned long long)p->found,
            (unsigned long long)p->read);
    d->shown = true;
}

bool cli_scan(const char *cmd, const char *usage, int argc, char **argv, bool *json,
              shimmy_model_list **out, int *rc) {
    shimmy_scan_options o = {0};
    scan_display display = {0};
    if (isatty(STDERR_FILENO)) {
        clock_gettime(CLOCK_MONOTONIC, &display.t0);
        o.progress = scan_progress;
        o.progress_user = &display;
    }
    *json = false;
    *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (strcmp(argv[i], "--model-dirs") == 0) {
            if (i + 1 >= argc) {
                *rc = cli_usage_error(cmd, usage, "--model-dirs needs a value (D1:D2)");
                return false;
            }
            o.dirs = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n", usage);
            *rc = 0;
            return false;
        } else {
            *rc = cli_usage_error(cmd, usage, "unexpected argument '%s'", argv[i]);
            return false;
        }
    }
    shimmy_error err;
    shimmy_error_clear(&err);
    if (shimmy_scan(&o, out, &err) != SHIMMY_OK) {
        *rc = cli_fail(&err);
        return false;
    }
    return true;
}
