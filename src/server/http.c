/* libmicrohttpd glue: the route table, auth, CORS, body limits, replies and SSE streaming. */
#include "compat.h"
#include "ollama.h"
#include "server.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ROUTE_PUBLIC = 1 }; /* answered without an API key */

typedef struct server_route {
    const char *method;
    const char *pattern; /* "{}" matches one or more characters (a model name may hold '/') */
    server_handler handler;
    unsigned flags;
} server_route;

static const server_route routes[] = {
    {"GET", "/health", server_handle_health, ROUTE_PUBLIC},
    {"GET", "/metrics", server_handle_metrics, 0},
    {"GET", "/v1/models", server_handle_models, 0},
    {"GET", "/v1/models/{}", server_handle_model, 0},
    {"POST", "/v1/chat/completions", server_handle_chat, 0},
    {"POST", "/v1/completions", server_handle_completions, 0},
    {"GET", "/ws/generate", server_handle_ws, 0},
    {"GET", "/api/models", server_handle_api_models, 0},
    {"GET", "/api/adapters", server_handle_adapters, 0},
    {"POST", "/api/models/discover", server_handle_discover, 0},
    {"POST", "/api/models/{}/load", server_handle_load, 0},
    {"POST", "/api/models/{}/unload", server_handle_unload, 0},
    {"GET", "/api/models/{}/status", server_handle_status, 0},
    /* Ollama's API (ollama.c); clients probe "/" without a key, as Ollama answers it. */
    {"GET", "/", server_handle_ollama_root, ROUTE_PUBLIC},
    {"HEAD", "/", server_handle_ollama_root, ROUTE_PUBLIC},
    {"POST", "/api/generate", server_handle_ollama_generate, 0},
    {"POST", "/api/chat", server_handle_ollama_chat, 0},
    {"GET", "/api/tags", server_handle_ollama_tags, 0},
    {"POST", "/api/show", server_handle_ollama_show, 0},
    {"GET", "/api/ps", server_handle_ollama_ps, 0},
    {"GET", "/api/version", server_handle_ollama_version, 0},
    {"POST", "/api/pull", server_handle_ollama_store, 0},
    {"POST", "/api/push", server_handle_ollama_store, 0},
    {"POST", "/api/create", server_handle_ollama_store, 0},
    {"POST", "/api/copy", server_handle_ollama_store, 0},
    {"DELETE", "/api/delete", server_handle_ollama_store, 0},
    {"POST", "/api/embed", server_handle_ollama_embed, 0},
    {"POST", "/api/embeddings", server_handle_ollama_embed, 0},
    /* Embeddings and reranking (embed.c). */
    {"POST", "/v1/embeddings", server_handle_embeddings, 0},
    {"POST", "/v1/rerank", server_handle_rerank, 0},
    {"POST", "/rerank", server_handle_rerank, 0},
    /* llama-server's small endpoints (extras.c). */
    {"POST", "/tokenize", server_handle_tokenize, 0},
    {"POST", "/detokenize", server_handle_detokenize, 0},
    {"POST", "/apply-template", server_handle_apply_template, 0},
    {"GET", "/props", server_handle_props, 0},
    {"POST", "/v1/messages", server_handle_messages, 0},
    {"POST", "/v1/messages/count_tokens", server_handle_count_tokens, 0},
    {"POST", "/v1/responses", server_handle_responses, 0},
    {"GET", "/v1/responses/{}", server_handle_response_get, 0},
};

static bool route_match(const char *pattern, const char *url, char *param, size_t cap) {
    const char *hole = strstr(pattern, "{}");
    if (!hole) return strcmp(pattern, url) == 0;
    size_t pre = (size_t)(hole - pattern), suf = strlen(hole + 2), n = strlen(url);
    if (n <= pre + suf || strncmp(url, pattern, pre) != 0 || strcmp(url + n - suf, hole + 2) != 0)
        return false;
    size_t len = n - pre - suf;
    if (len >= cap) return false;
    memcpy(param, url + pre, len);
    param[len] = '\0';
    return true;
}

/* ---- replies ---- */

/* MHD's idle timeout measures time since the last byte moved; time spent waiting for a slot or a
 * token is not the client's idleness. So the timeout is off while this thread waits and is set
 * again (which restarts its timer) the moment there is something to send. */
void server_call_hold(server *s, struct MHD_Connection *conn, bool hold) {
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              hold ? 0u : (unsigned)s->cfg.timeout_s);
}

static void add_common_headers(server_call *c, struct MHD_Response *r) {
    const char *origin = c->srv->cfg.cors_origin;
    if (origin && *origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

int server_reply(server_call *c, int status, const char *ctype, const char *body, size_t len) {
    server_call_hold(c->srv, c->conn, false);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    add_common_headers(c, r);
    enum MHD_Result ok = MHD_queue_response(c->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    c->status = status;
    c->responded = true;
    return ok;
}

int server_reply_json(server_call *c, int status, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s) {
        shimmy_error err;
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory while building the response");
        return server_reply_error(c, &err);
    }
    int ok = server_reply(c, status, "application/json", s, strlen(s));
    free(s);
    return ok;
}

int server_reply_error(server_call *c, const shimmy_error *err) {
    /* Anthropic's clients read their own error shape, also for auth and routing errors. */
    if (strncmp(c->route, "/v1/messages", 12) == 0) return server_anthropic_reply_error(c, err);
    if (server_route_is_ollama(c->route)) return ollama_reply_error(c, err);
    int http;
    char *s = server_error_json(err, &http);
    /* Only when even the error cannot be built: the status alone still tells the client. */
    int ok = server_reply(c, http, "application/json", s ? s : "", s ? strlen(s) : 0);
    free(s);
    return ok;
}

bool server_call_gone(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    /* Read-side EOF is ambiguous: MHD itself shuts down reading once a "Connection: close"
     * request is in. The TCP state is not: a peer that closed or reset leaves ESTABLISHED. */
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(ci->connect_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
        return ti.tcpi_state != TCP_ESTABLISHED;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLOUT};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

typedef struct stream_ctx {
    server_job *job;
    struct MHD_Connection *conn;
} stream_ctx;

/* Blocks (on this connection's own thread) until the worker has bytes; gives up when the client
 * hangs up, so that its slot is freed within a token. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *sc = cls;
    server_call_hold(sc->job->srv, sc->conn, true);
    for (;;) {
        long n = server_job_read(sc->job, buf, max, 100);
        if (n < 0) {
            server_call_hold(sc->job->srv, sc->conn, false);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        /* Checked before every chunk too: a write into a socket the peer closed still succeeds
         * once, and waiting for the failing one would cost a second token. */
        /* At shutdown a cancelled job still ends with an error event: keep draining for it. */
        bool cancelled = atomic_load(&sc->job->cancelled) && !atomic_load(&sc->job->srv->stopping);
        if (cancelled || server_call_gone(sc->conn)) {
            shimmy_log(SHIMMY_LOG_DEBUG, "server: %s: %s", sc->job->id,
                       cancelled ? "generation cancelled" : "client went away");
            server_job_cancel(sc->job);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (n > 0) {
            server_call_hold(sc->job->srv, sc->conn, false);
            return n;
        }
    }
}

static void stream_free(void *cls) {
    stream_ctx *sc = cls;
    /* The connection is done with the stream, whether or not the generation finished. */
    server_job_cancel(sc->job);
    server_job_release(sc->job);
    free(sc);
}

int server_reply_stream(server_call *c, server_job *j) {
    stream_ctx *sc = calloc(1, sizeof *sc);
    if (!sc) return MHD_NO;
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    sc->job = j;
    sc->conn = c->conn;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, sc, stream_free);
    if (!r) {
        stream_free(sc);
        return MHD_NO;
    }
    /* Ollama streams newline-delimited JSON; everything else is Server-Sent Events. */
    MHD_add_response_header(r, "Content-Type",
                            server_route_is_ollama(c->route) ? "application/x-ndjson"
                                                             : "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    add_common_headers(c, r);
    enum MHD_Result ok = MHD_queue_response(c->conn, 200, r);
    MHD_destroy_response(r);
    c->status = 200;
    c->responded = true;
    return ok;
}

/* ---- the access handler ---- */

static bool authorized(server_call *c) {
    const char *key = c->srv->cfg.api_key;
    if (!key || !*key) return true;
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ') h++;
    } else {
        /* Anthropic's clients send the key as x-api-key. */
        h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "x-api-key");
        if (!h) return false;
    }
    /* Compare in time independent of where the first difference is. */
    size_t n = strlen(key), m = strlen(h);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(key[i] ^ (i < m ? h[i] : 0));
    return diff == 0;
}

static int reply_status(server_call *c, shimmy_status st, const char *where, const char *fmt,
                        const char *arg) {
    shimmy_error err;
    shimmy_error_set(&err, st, where, fmt, arg);
    return server_reply_error(c, &err);
}

static int preflight(server_call *c) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    add_common_headers(c, r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, "
                            "x-api-key, anthropic-version, anthropic-beta");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    enum MHD_Result ok = MHD_queue_response(c->conn, 204, r);
    MHD_destroy_response(r);
    c->status = 204;
    c->responded = true;
    return ok;
}

/* Finds the route; a path known under another method is a 405, an unknown path a 404. */
static const server_route *find_route(server_call *c, const char *url, const char *method,
                                      bool *wrong_method) {
    *wrong_method = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char param[sizeof c->param];
        if (!route_match(routes[i].pattern, url, param, sizeof param)) continue;
        if (strcmp(routes[i].method, method) != 0) {
            *wrong_method = true;
            c->route = routes[i].pattern;
            continue;
        }
        memcpy(c->param, param, sizeof param);
        c->route = routes[i].pattern;
        return &routes[i];
    }
    return NULL;
}

static bool body_append(server_call *c, const char *data, size_t n) {
    if (c->body_len + n > c->srv->cfg.max_body) return false;
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        while (cap < c->body_len + n + 1) cap *= 2;
        char *p = realloc(c->body, cap);
        if (!p) return false;
        c->body = p;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return true;
}

static int too_large(server_call *c) {
    char msg[160];
    snprintf(msg, sizeof msg, "the request body is larger than the server's limit of %zu bytes",
             c->srv->cfg.max_body);
    return reply_status(c, SHIMMY_ERR_TOO_LARGE, NULL, "%s", msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    server *s = cls;
    server_call *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        c->srv = s;
        c->conn = conn;
        /* Set before routing, so that an early 413 reaches Anthropic clients in their shape. */
        c->route = strncmp(url, "/v1/messages", 12) == 0 ? "/v1/messages" : "other";
        *con_cls = c;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        /* A client waiting for "100 Continue", or announcing far more than the limit, is
         * answered at once; otherwise the body is read and dropped first, because closing a
         * socket with unread data resets it and the client would never see the 413. */
        if (declared > s->cfg.max_body &&
            (expect || declared > SERVER_DRAIN_LIMIT + (unsigned long long)s->cfg.max_body))
            return (enum MHD_Result)too_large(c);
        c->oversized = declared > s->cfg.max_body;
        return MHD_YES;
    }
    if (c->responded) {
        *upload_size = 0; /* the reply is already queued; drop the rest of the body */
        return MHD_YES;
    }
    if (*upload_size) {
        if (!c->oversized && !body_append(c, upload, *upload_size)) c->oversized = true;
        if (c->oversized) {
            c->dropped += *upload_size;
            if (c->dropped > SERVER_DRAIN_LIMIT) return (enum MHD_Result)too_large(c);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->oversized) return (enum MHD_Result)too_large(c);
    if (!c->body && !body_append(c, "", 0)) return MHD_NO;
    if (strcmp(method, "OPTIONS") == 0 && s->cfg.cors_origin) return (enum MHD_Result)preflight(c);
    bool wrong_method;
    const server_route *rt = find_route(c, url, method, &wrong_method);
    if (!rt && wrong_method)
        return (enum MHD_Result)reply_status(c, SHIMMY_ERR_METHOD, NULL,
                                             "method %s is not allowed on this path", method);
    if (!rt)
        return (enum MHD_Result)reply_status(c, SHIMMY_ERR_NOT_FOUND, NULL,
                                             "no route %s; see docs/server.md for the endpoints",
                                             url);
    if (!(rt->flags & ROUTE_PUBLIC) && !authorized(c))
        return (enum MHD_Result)reply_status(
            c, SHIMMY_ERR_UNAUTHORIZED, NULL, "%s",
            "missing or invalid API key: send the header 'Authorization: Bearer <key>' (or "
            "'x-api-key: <key>')");
    if (atomic_load(&s->stopping))
        return (enum MHD_Result)reply_status(c, SHIMMY_ERR_BUSY, NULL, "%s",
                                             "the server is shutting down");
    return (enum MHD_Result)rt->handler(c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    server *s = cls;
    server_call *c = *con_cls;
    if (!c) return;
    if (c->responded) server_metrics_request(&s->metrics, c->route, c->status);
    free(c->body);
    free(c);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    shimmy_log(SHIMMY_LOG_DEBUG, "server: mhd: %s", msg);
}

/* One listener on host:port (0 = any free port); *url receives its address. */
static shimmy_status listen_on(server *s, const char *host_arg, int port_arg, const char *opt,
                               struct MHD_Daemon **out, char *url, size_t url_cap,
                               shimmy_error *err) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_arg)};
    const char *host = strcmp(host_arg, "localhost") == 0 ? "127.0.0.1" : host_arg;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, opt,
                                "'%s' is not an IPv4 address (use e.g. 127.0.0.1:11435)", host_arg);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE | MHD_USE_ITC;
    *out = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_END);
    if (!*out)
        return shimmy_error_set(err, SHIMMY_ERR_IO, opt,
                                "cannot listen on %s:%d (address in use or not permitted); choose "
                                "another with --bind HOST:PORT or --bind auto",
                                host_arg, port_arg);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(*out, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(url, url_cap, "http://%s:%d", host, di ? di->port : port_arg);
    return SHIMMY_OK;
}

shimmy_status server_http_start(server *s, shimmy_error *err) {
    shimmy_status st =
        listen_on(s, s->cfg.host, s->cfg.port, "--bind", &s->daemon, s->url, sizeof s->url, err);
    /* The same routes on a second address (serve --ollama): one server, two doors. */
    if (!st && s->cfg.extra_host)
        st = listen_on(s, s->cfg.extra_host, s->cfg.extra_port, "--ollama", &s->daemon2, s->url2,
                       sizeof s->url2, err);
    return st;
}

const char *server_extra_url(const server *s) {
    return s->daemon2 ? s->url2 : NULL;
}

void server_http_quiesce(server *s) {
    if (s->daemon) s->listen_fd = MHD_quiesce_daemon(s->daemon);
    if (s->daemon2) {
        s->listen_fd2 = MHD_quiesce_daemon(s->daemon2);
        s->has_fd2 = s->listen_fd2 >= 0;
    }
}

void server_http_stop(server *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    if (s->daemon2) MHD_stop_daemon(s->daemon2);
    s->daemon2 = NULL;
    /* After a quiesce the listening sockets are ours to close. */
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
    if (s->has_fd2) close(s->listen_fd2);
    s->has_fd2 = false;
}
