/* GET /ws/generate: RFC 6455 WebSocket over libmicrohttpd's upgrade support. One JSON request
 * message (the /api/generate body), then one text message per token, then a final message with
 * done, usage and finish reason, then a close frame. */
#include "server.h"

#include <microhttpd.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- SHA-1 (FIPS 180-4), needed only for Sec-WebSocket-Accept ---- */

static uint32_t rol32(uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else
            f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol32(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void server_sha1(const void *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    size_t n = len;
    for (; n >= 64; n -= 64, p += 64) sha1_block(h, p);
    unsigned char tail[128] = {0};
    memcpy(tail, p, n);
    tail[n] = 0x80;
    size_t tl = n + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128) sha1_block(h, tail + 64);
    for (int i = 0; i < 20; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

void server_ws_accept_key(const char *key, char out[29]) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char d[20];
    server_sha1(buf, strlen(buf), d);
    base64(d, 20, out);
}

/* ---- frames ---- */

enum { WS_CONT = 0, WS_TEXT = 1, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

size_t server_ws_frame_header(int opcode, size_t len, unsigned char hdr[10]) {
    hdr[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        hdr[1] = 126;
        hdr[2] = (unsigned char)(len >> 8);
        hdr[3] = (unsigned char)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++) hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static void ws_write_json(server_job *j, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s) return;
    unsigned char hdr[10];
    size_t n = strlen(s), h = server_ws_frame_header(WS_TEXT, n, hdr);
    /* One write keeps header and payload together in the buffer. */
    char *frame = malloc(h + n);
    if (frame) {
        memcpy(frame, hdr, h);
        memcpy(frame + h, s, n);
        server_job_write(j, frame, h + n);
    }
    free(frame);
    free(s);
}

static void ws_nothing(server_job *j) {
    (void)j;
}

static void ws_text(server_job *j, size_t choice, const char *text, size_t len) {
    json_t *t = json_stringn(text, len);
    ws_write_json(j, json_pack("{s:o}", "token", t ? t : json_string("")));
}

static void ws_end(server_job *j, size_t choice, const char *finish) {
    ws_write_json(j, server_gen_final(j, finish));
}

static void ws_fail(server_job *j, const shimmy_error *err) {
    ws_write_json(j, server_error_object(err));
}

const server_fmt server_fmt_gen_ws = {"generate-ws", ws_nothing, ws_text, ws_end,
                                      ws_nothing,    ws_fail,    NULL};

/* ---- the upgraded connection ---- */

typedef struct ws_conn {
    server *srv;
    MHD_socket sock;
    unsigned char *in; /* bytes received and not parsed yet */
    size_t in_len, in_cap;
    bool closed;
} ws_conn;

static bool ws_send(ws_conn *w, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = send(w->sock, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            struct pollfd pf = {.fd = w->sock, .events = POLLOUT};
            if (poll(&pf, 1, w->srv->cfg.timeout_s * 1000) <= 0) return false;
            continue;
        }
        return false;
    }
    return true;
}

static bool ws_send_frame(ws_conn *w, int opcode, const void *data, size_t len) {
    unsigned char hdr[10];
    size_t h = server_ws_frame_header(opcode, len, hdr);
    return ws_send(w, hdr, h) && ws_send(w, data, len);
}

static void ws_close(ws_conn *w, uint16_t code, const char *reason) {
    if (w->closed) return;
    unsigned char b[125];
    size_t n = strlen(reason);
    if (n > sizeof b - 2) n = sizeof b - 2;
    b[0] = (unsigned char)(code >> 8);
    b[1] = (unsigned char)code;
    memcpy(b + 2, reason, n);
    ws_send_frame(w, WS_CLOSE, b, n + 2);
    w->closed = true;
}

/* Reads more bytes within wait_ms: 1 got some, 0 timeout, -1 EOF/error. */
static int ws_fill(ws_conn *w, int wait_ms) {
    struct pollfd pf = {.fd = w->sock, .events = POLLIN};
    int r = poll(&pf, 1, wait_ms);
    if (r == 0) return 0;
    if (r < 0) return errno == EINTR ? 0 : -1;
    if (w->in_len + 4096 > w->in_cap) {
        size_t cap = w->in_cap ? w->in_cap * 2 : 8192;
        unsigned char *p = realloc(w->in, cap);
        if (!p) return -1;
        w->in = p;
        w->in_cap = cap;
    }
    ssize_t n = recv(w->sock, w->in + w->in_len, w->in_cap - w->in_len, 0);
    if (n > 0) {
        w->in_len += (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return -1;
}

int server_ws_parse_frame(unsigned char *in, size_t n, size_t limit, server_ws_frame *f) {
    const unsigned char *p = in;
    if (n < 2) return 0;
    f->fin = p[0] & 0x80;
    f->opcode = p[0] & 0x0f;
    if (p[0] & 0x70) return -1;    /* no extensions were negotiated */
    if (!(p[1] & 0x80)) return -1; /* clients must mask */
    uint64_t plen = p[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
        if (n < 4) return 0;
        plen = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (plen == 127) {
        if (n < 10) return 0;
        plen = 0;
        for (int i = 0; i < 8; i++) plen = plen << 8 | p[2 + i];
        h = 10;
    }
    if (plen > limit) return -2;
    if (n < h + 4 + plen) return 0;
    const unsigned char *mask = p + h;
    unsigned char *data = in + h + 4;
    for (uint64_t i = 0; i < plen; i++) data[i] ^= mask[i % 4];
    f->payload = data;
    f->len = (size_t)plen;
    f->consumed = h + 4 + (size_t)plen;
    return 1;
}

/* Parses one complete frame from the input: 1 parsed, 0 need more, -1 protocol error. */
static int ws_parse(ws_conn *w, size_t limit, int *opcode, bool *fin, unsigned char **payload,
                    size_t *len, size_t *consumed) {
    server_ws_frame f = {0};
    int r = server_ws_parse_frame(w->in, w->in_len, limit, &f);
    /* All outputs set on every path (zeros unless a frame was parsed): gcc -O2 cannot see that
     * callers only read them after a 1. */
    *opcode = f.opcode;
    *fin = f.fin;
    *payload = f.payload;
    *len = f.len;
    *consumed = f.consumed;
    return r;
}

static void ws_consume(ws_conn *w, size_t n) {
    memmove(w->in, w->in + n, w->in_len - n);
    w->in_len -= n;
}

/* Handles control frames; returns the next data frame's result as ws_parse does, or -3 when
 * the peer closed. */
static int ws_next(ws_conn *w, int wait_ms, int *opcode, bool *fin, char **msg, size_t *len) {
    for (;;) {
        unsigned char *payload;
        size_t plen, used;
        int r = ws_parse(w, w->srv->cfg.max_body, opcode, fin, &payload, &plen, &used);
        if (r < 0) return r;
        if (r == 0) {
            int f = ws_fill(w, wait_ms);
            if (f < 0) return -3;
            if (f == 0) return 0;
            continue;
        }
        if (*opcode == WS_PING) {
            ws_send_frame(w, WS_PONG, payload, plen);
            ws_consume(w, used);
            continue;
        }
        if (*opcode == WS_PONG) {
            ws_consume(w, used);
            continue;
        }
        if (*opcode == WS_CLOSE) {
            ws_consume(w, used);
            ws_close(w, 1000, "");
            return -3;
        }
        char *m = malloc(plen + 1);
        if (!m) return -1;
        memcpy(m, payload, plen);
        m[plen] = '\0';
        ws_consume(w, used);
        *msg = m;
        *len = plen;
        return 1;
    }
}

/* The request message (possibly fragmented), within the connection timeout. */
static int ws_read_request(ws_conn *w, char **body, size_t *len) {
    char *acc = NULL;
    size_t n = 0;
    double deadline = server_clock_ms() + w->srv->cfg.timeout_s * 1000.0;
    for (;;) {
        int opcode;
        bool fin;
        char *m = NULL;
        size_t mlen = 0;
        int r = ws_next(w, 100, &opcode, &fin, &m, &mlen);
        if (r == 0) {
            if (server_clock_ms() > deadline || atomic_load(&w->srv->stopping))
                r = -4;
            else
                continue;
        }
        if (r < 0) {
            free(acc);
            return r;
        }
        if ((opcode == WS_CONT) != (acc != NULL) || n + mlen > w->srv->cfg.max_body) {
            free(m);
            free(acc);
            return n + mlen > w->srv->cfg.max_body ? -2 : -1;
        }
        char *grown = realloc(acc, n + mlen + 1);
        if (!grown) {
            free(m);
            free(acc);
            return -1;
        }
        acc = grown;
        memcpy(acc + n, m, mlen);
        n += mlen;
        acc[n] = '\0';
        free(m);
        if (fin) {
            *body = acc;
            *len = n;
            return 1;
        }
    }
}

static void ws_send_error(ws_conn *w, const shimmy_error *err) {
    char *s = server_error_json(err, NULL);
    if (s) ws_send_frame(w, WS_TEXT, s, strlen(s));
    free(s);
}

/* Forwards the job's frames and watches the socket: a close frame or EOF cancels the job. */
static void ws_pump(ws_conn *w, server_job *j) {
    char buf[16384];
    for (;;) {
        long n = server_job_read(j, buf, sizeof buf, 50);
        if (n < 0) break;
        if (n > 0 && !ws_send(w, buf, (size_t)n)) {
            server_job_cancel(j);
            break;
        }
        int opcode;
        bool fin;
        char *m = NULL;
        size_t len;
        int r = ws_next(w, 0, &opcode, &fin, &m, &len);
        free(m); /* further data messages during a generation are ignored */
        if (r < 0) {
            server_job_cancel(j);
            break;
        }
    }
    server_job_wait(j, 60000);
}

static void ws_session(ws_conn *w) {
    server *s = w->srv;
    char *body = NULL;
    size_t len = 0;
    shimmy_error err;
    shimmy_error_clear(&err);
    int r = ws_read_request(w, &body, &len);
    if (r == -2) {
        ws_close(w, 1009, "message too big");
        return;
    }
    if (r == -4) {
        ws_close(w, 1008, "no request received in time");
        return;
    }
    if (r < 0) {
        ws_close(w, 1002, "protocol error");
        return;
    }
    server_request req;
    shimmy_status st =
        server_request_parse(SERVER_API_GENERATE, body, len, s->cfg.max_tokens_cap, &req, &err);
    free(body);
    if (!st && !req.model[0]) {
        shimmy_model_list *l = server_list(s);
        if (shimmy_model_list_count(l) == 1)
            snprintf(req.model, sizeof req.model, "%s", shimmy_model_list_name(l, 0));
        else
            st = shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "model", "'model' is required");
        shimmy_model_list_free(l);
        if (st) server_request_deinit(&req);
    }
    if (st) {
        ws_send_error(w, &err);
        {
            ws_close(w, 1008, "invalid request");
            return;
        }
    }
    server_job *j = server_job_new(s, &req, &server_fmt_gen_ws, "/ws/generate");
    if (!j) {
        ws_close(w, 1011, "out of memory");
        return;
    }
    st = server_job_prepare(s, j, &err);
    if (!st) st = server_submit(s, j, &err);
    if (st) {
        ws_send_error(w, &err);
        server_job_release(j);
        {
            ws_close(w, st == SHIMMY_ERR_BUSY ? 1013 : 1008, "request refused");
            return;
        }
    }
    ws_pump(w, j);
    server_metrics_request(&s->metrics, "/ws/generate", j->http_status ? j->http_status : 499);
    server_job_release(j);
    ws_close(w, 1000, "done");
}

static void ws_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh) {
    ws_conn w = {.srv = cls, .sock = sock};
    atomic_fetch_add(&w.srv->active, 1);
    if (extra_in_size) {
        w.in = malloc(extra_in_size + 8192);
        if (w.in) {
            memcpy(w.in, extra_in, extra_in_size);
            w.in_len = extra_in_size;
            w.in_cap = extra_in_size + 8192;
        }
    }
    /* Thread-per-connection mode: this is the connection's own thread, so it may block. */
    if (extra_in_size == 0 || w.in) ws_session(&w);
    free(w.in);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    atomic_fetch_sub(&w.srv->active, 1);
}

static bool header_has_token(const char *value, const char *token) {
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
        p = strchr(p, ',');
    }
    return false;
}

int server_handle_ws(server_call *c) {
    struct MHD_Connection *conn = c->conn;
    const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *co = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connection");
    const char *ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    shimmy_error err;
    if (!up || strcasecmp(up, "websocket") != 0 || !co || !header_has_token(co, "upgrade")) {
        shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, NULL,
                         "/ws/generate is a WebSocket endpoint: send 'Upgrade: websocket' and "
                         "'Connection: Upgrade'");
        return server_reply_error(c, &err);
    }
    if (!ver || strcmp(ver, "13") != 0 || !key || strlen(key) != 24) {
        shimmy_error_set(
            &err, SHIMMY_ERR_INVALID_ARG, "Sec-WebSocket-Key",
            "WebSocket version 13 with a 16-byte base64 Sec-WebSocket-Key is required");
        return server_reply_error(c, &err);
    }
    char accept[29];
    server_ws_accept_key(key, accept);
    struct MHD_Response *r = MHD_create_response_for_upgrade(ws_upgraded, c->srv);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    c->status = 101;
    c->responded = true;
    return ok;
}
