/* shimmy ps / shimmy stop: the models a running server holds in memory, and unloading one.
 * ps reads Ollama's GET /api/ps when the server has it (name, size, expiry) and shimmy's own
 * GET /api/models otherwise (the entries whose state is "loaded"). */
#include "term.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const PS_USAGE = "shimmy ps [--host URL] [--json]";
static const char *const STOP_USAGE = "shimmy stop MODEL [--host URL]";

static void human(double bytes, char *buf, size_t cap) {
    if (bytes >= 1e9)
        snprintf(buf, cap, "%.1f GB", bytes / 1e9);
    else
        snprintf(buf, cap, "%.0f MB", bytes / 1e6);
}

/* "in 4 minutes" from an RFC 3339 expiry; "" when there is none. */
static void until_text(const char *expires, char *buf, size_t cap) {
    struct tm tm = {0};
    int off_h = 0, off_m = 0;
    char sign = 'Z';
    buf[0] = '\0';
    if (!expires || sscanf(expires, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                           &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return;
    /* the zone after the seconds (and their fraction): Z, +hh:mm or -hh:mm */
    const char *tz = strlen(expires) > 19 ? strpbrk(expires + 19, "Z+-") : NULL;
    if (tz && *tz != 'Z' && sscanf(tz + 1, "%d:%d", &off_h, &off_m) == 2) sign = *tz;
    if (tm.tm_year < 1970 || tm.tm_year > 9000) { /* Ollama's "forever" is year 2318 and up */
        snprintf(buf, cap, "forever");
        return;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    const long off = (off_h * 3600L + off_m * 60L) * (sign == '-' ? -1 : sign == '+' ? 1 : 0);
    const double s = difftime(t - off, time(NULL));
    if (s > 100L * 365 * 86400)
        snprintf(buf, cap, "forever");
    else if (s < 1)
        snprintf(buf, cap, "now");
    else if (s < 120)
        snprintf(buf, cap, "in %.0f seconds", s);
    else if (s < 7200)
        snprintf(buf, cap, "in %.0f minutes", s / 60);
    else
        snprintf(buf, cap, "in %.0f hours", s / 3600);
}

static int get_json(const char *url, long *status, json_t **out, shimmy_error *err) {
    cli_buf body = {0};
    cli_http_request rq = {
        .method = "GET", .url = url, .timeout_s = 30, .bearer = getenv("SHIMMY_API_KEY")};
    *out = NULL;
    shimmy_status st = cli_http(&rq, status, &body, err);
    if (!st && *status == 200 && !(*out = json_loads(body.data ? body.data : "", 0, NULL)))
        st = shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, url, "%s did not answer JSON", url);
    else if (!st && *status != 200 && *status != 404) {
        char msg[320];
        cli_http_error_text(body.data, msg, sizeof msg);
        st = shimmy_error_set(err, SHIMMY_ERR_IO, url, "%s: HTTP %ld: %s", url, *status, msg);
    }
    cli_buf_free(&body);
    return st;
}

int cli_cmd_ps(int argc, char **argv) {
    const char *host = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n", PS_USAGE);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else {
            return cli_usage_error("ps", PS_USAGE, "unexpected argument '%s'", argv[i]);
        }
    }
    char *base = cli_server_url(host), url[4200];
    shimmy_error err;
    shimmy_error_clear(&err);
    long status = 0;
    json_t *v = NULL;
    snprintf(url, sizeof url, "%s/api/ps", base);
    shimmy_status st = get_json(url, &status, &v, &err);
    bool native = false;
    if (!st && status == 404) { /* a server without Ollama's API: its own listing */
        native = true;
        snprintf(url, sizeof url, "%s/api/models", base);
        st = get_json(url, &status, &v, &err);
        if (!st && status != 200)
            st = shimmy_error_set(&err, SHIMMY_ERR_NOT_FOUND, url,
                                  "%s has neither /api/ps nor /api/models: is it a shimmy "
                                  "server?",
                                  base);
    }
    free(base);
    if (st) return cli_fail(&err);
    json_t *models = json_object_get(v, "models"), *rows = json_array();
    for (size_t i = 0; i < json_array_size(models); i++) {
        json_t *m = json_array_get(models, i);
        const char *state = json_string_value(json_object_get(m, "state"));
        if (native && (!state || strcmp(state, "loaded") != 0)) continue;
        json_t *size = json_object_get(m, native ? "bytes" : "size");
        json_t *row = json_pack("{s:O,s:I}", "name", json_object_get(m, "name"), "size",
                                (json_int_t)(json_is_integer(size) ? json_integer_value(size) : 0));
        json_t *exp = json_object_get(m, "expires_at");
        if (row && json_is_string(exp)) json_object_set(row, "expires_at", exp);
        if (row) json_array_append_new(rows, row);
    }
    if (json) {
        json_t *doc = json_pack("{s:O}", "models", rows);
        char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        printf("%s\n", s ? s : "{\"models\":[]}");
        free(s);
    } else {
        printf("%-40s %10s  %s\n", "NAME", "SIZE", "UNTIL");
        for (size_t i = 0; i < json_array_size(rows); i++) {
            json_t *r = json_array_get(rows, i);
            char sz[32], until[64];
            human((double)json_integer_value(json_object_get(r, "size")), sz, sizeof sz);
            until_text(json_string_value(json_object_get(r, "expires_at")), until, sizeof until);
            printf("%-40s %10s  %s\n", json_string_value(json_object_get(r, "name")), sz, until);
        }
    }
    json_decref(rows);
    json_decref(v);
    return 0;
}

int cli_cmd_stop(int argc, char **argv) {
    const char *host = NULL, *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n", STOP_USAGE);
            return 0;
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else {
            const int rc = cli_model_arg("stop", STOP_USAGE, argv[i], &model);
            if (rc) return rc;
        }
    }
    if (!model) return cli_usage_error("stop", STOP_USAGE, "MODEL is missing");
    char *base = cli_server_url(host), *name = curl_easy_escape(NULL, model, 0), url[8192];
    snprintf(url, sizeof url, "%s/api/models/%s/unload", base, name ? name : "");
    curl_free(name);
    free(base);
    shimmy_error err;
    shimmy_error_clear(&err);
    cli_buf body = {0};
    long status = 0;
    cli_http_request rq = {
        .method = "POST", .url = url, .timeout_s = 60, .bearer = getenv("SHIMMY_API_KEY")};
    shimmy_status st = cli_http(&rq, &status, &body, &err);
    if (!st && status != 200) {
        char msg[320];
        cli_http_error_text(body.data, msg, sizeof msg);
        st = shimmy_error_set(&err, status == 404 ? SHIMMY_ERR_NOT_FOUND : SHIMMY_ERR_IO, model,
                              "cannot stop %s: %s", model, msg);
    }
    cli_buf_free(&body);
    if (st) return cli_fail(&err);
    printf("stopped %s\n", model);
    return 0;
}
