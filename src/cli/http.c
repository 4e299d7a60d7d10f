/* The CLI's HTTP client on libcurl: one request at a time, the body buffered or streamed to a
 * callback, Ctrl-C honoured within a fraction of a second, connection failures explained. */
#include "term.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool cli_buf_add(cli_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

void cli_buf_free(cli_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

char *cli_server_url(const char *arg) {
    const char *u = arg && *arg ? arg : getenv("SHIMMY_HOST");
    if (!u || !*u) u = "http://127.0.0.1:11435";
    const bool scheme = strstr(u, "://") != NULL;
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/') n--; /* paths are appended with their own slash */
    char *out = malloc(n + 8);
    if (out) snprintf(out, n + 8, "%s%.*s", scheme ? "" : "http://", (int)n, u);
    return out;
}

typedef struct http_ctx {
    const cli_http_request *rq;
    cli_buf *out;
    bool aborted, nomem;
} http_ctx;

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    http_ctx *c = user;
    const size_t len = size * n;
    if (c->rq->interrupted && *c->rq->interrupted) return 0;
    if (c->rq->on_data) {
        if (!c->rq->on_data(data, len, c->rq->user)) {
            c->aborted = true;
            return 0;
        }
    } else if (!cli_buf_add(c->out, data, len)) {
        c->nomem = true;
        return 0;
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *user) {
    http_ctx *c = user;
    const size_t len = size * n;
    /* a new status line (after a redirect) starts the headers of the next response */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) c->rq->headers->len = 0;
    if (!cli_buf_add(c->rq->headers, data, len)) {
        c->nomem = true;
        return 0;
    }
    return len;
}

bool cli_http_header(const cli_buf *headers, const char *name, char *buf, size_t cap) {
    const size_t nl = strlen(name);
    const char *p = headers && headers->data ? headers->data : "";
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t vl = len - nl - 1;
            while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
            snprintf(buf, cap, "%.*s", (int)vl, v);
            return true;
        }
        p += len + (eol != NULL);
    }
    return false;
}

/* Called often while waiting (also before the first byte): Ctrl-C is noticed here. */
static int on_progress(void *user, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a, (void)b, (void)c, (void)d;
    const http_ctx *ctx = user;
    return ctx->rq->interrupted && *ctx->rq->interrupted;
}

void cli_http_error_text(const char *body, char *buf, size_t cap) {
    json_t *v = body ? json_loads(body, 0, NULL) : NULL;
    json_t *e = json_object_get(v, "error");
    const char *msg = json_is_string(e) ? json_string_value(e)
                      : json_is_string(json_object_get(e, "message"))
                          ? json_string_value(json_object_get(e, "message"))
                          : NULL;
    if (!msg) msg = body && *body ? body : "no details";
    snprintf(buf, cap, "%.*s", (int)strcspn(msg, "\r\n") > 300 ? 300 : (int)strcspn(msg, "\r\n"),
             msg);
    json_decref(v);
}

shimmy_status cli_http(const cli_http_request *rq, long *status, cli_buf *out, shimmy_error *err) {
    static bool inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = true;
    }
    *status = 0;
    CURL *h = curl_easy_init();
    if (!h) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "cannot start an HTTP client");
    http_ctx ctx = {.rq = rq, .out = out};
    struct curl_slist *hdr = NULL;
    char auth[1024];
    if (rq->bearer && *rq->bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", rq->bearer);
        hdr = curl_slist_append(hdr, auth);
    }
    if (rq->body) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
    }
    if (rq->method && strcmp(rq->method, "POST") == 0 && !rq->body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    hdr = curl_slist_append(hdr, "User-Agent: shimmy/" SHIMMY_VERSION);
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
    if (rq->timeout_s > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT, rq->timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ctx);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (rq->range) curl_easy_setopt(h, CURLOPT_RANGE, rq->range);
    if (rq->headers) {
        rq->headers->len = 0;
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx);
    }
    if (rq->stall_abort) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    if (rc == CURLE_OK) return SHIMMY_OK;
    if (ctx.nomem) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    if (ctx.aborted || (rq->interrupted && *rq->interrupted))
        return shimmy_error_set(err, SHIMMY_ERR_CANCELLED, NULL, "interrupted");
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        return shimmy_error_set(err, SHIMMY_ERR_IO, rq->url,
                                "cannot reach %s: %s (is the server running and the address "
                                "right? is the network up?)",
                                rq->url, ebuf[0] ? ebuf : curl_easy_strerror(rc));
    return shimmy_error_set(err, SHIMMY_ERR_IO, rq->url, "%s: %s", rq->url,
                            ebuf[0] ? ebuf : curl_easy_strerror(rc));
}
