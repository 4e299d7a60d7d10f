/* MODEL arguments: a path to a model file, or a registry name (`shimmy list`). A path that
 * exists wins, so a file called like a registry name in the current folder is used as a file;
 * names are looked up with a default scan (environment and the usual folders). */
#include "cli.h"
#include "registry/registry.h"

#include <jansson.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define RESOLVE_SUGGESTIONS 3

static shimmy_status copy_path(const char *path, char *buf, size_t cap, shimmy_error *err) {
    if ((size_t)snprintf(buf, cap, "%s", path) >= cap)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, path, "model path is too long");
    return SHIMMY_OK;
}

shimmy_status cli_resolve_model(const char *arg, char *buf, size_t cap, shimmy_error *err) {
    if (!arg || !*arg) return core_error(err, SHIMMY_ERR_INVALID_ARG, "MODEL", "no model given");
    struct stat st;
    if (stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return core_error(err, SHIMMY_ERR_INVALID_ARG, arg,
                              "'%s' is a folder; give a .gguf file or a name from `shimmy list`",
                              arg);
        return copy_path(arg, buf, cap, err);
    }
    registry *r = NULL;
    shimmy_status s = registry_scan(NULL, &r, err);
    if (s != SHIMMY_OK) return s;
    const registry_entry *e = registry_find(r, arg);
    if (e) {
        s = copy_path(e->path, buf, cap, err);
        registry_free(r);
        return s;
    }
    const char *close[RESOLVE_SUGGESTIONS];
    size_t n = registry_suggest(r, arg, close, RESOLVE_SUGGESTIONS);
    char hint[320] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof hint; i++)
        off += (size_t)snprintf(hint + off, sizeof hint - off, "%s'%s'",
                                i ? ", " : "; did you mean ", close[i]);
    s = core_error(err, SHIMMY_ERR_MODEL_NOT_FOUND, arg,
                   "no model file or registry name '%s' (run `shimmy list` to see the %zu known "
                   "model%s)%s",
                   arg, registry_count(r), registry_count(r) == 1 ? "" : "s", hint);
    registry_free(r);
    return s;
}

bool cli_scan(const char *cmd, const char *usage, int argc, char **argv, bool *json, registry **out,
              int *rc) {
    registry_options o = {0};
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
    if (registry_scan(&o, out, &err) != SHIMMY_OK) {
        *rc = cli_fail(&err);
        return false;
    }
    return true;
}

json_t *cli_json_textn(const char *s, size_t len) {
    if (core_utf8_valid(s, len)) return json_stringn(s, len);
    char *buf = malloc(len * 3 + 1);
    if (!buf) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += (size_t)core_utf8_decode(s + i, len - i, &cp);
        n += (size_t)core_utf8_encode(cp, buf + n);
    }
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j;
}

json_t *cli_json_text(const char *s) {
    return cli_json_textn(s, strlen(s));
}
