/* One generation request, from body to reply: the path shared by every generating endpoint. */
#include "server.h"

#include <microhttpd.h>

#include <string.h>

/* The native API lets a client omit the model when the server has exactly one. */
static shimmy_status default_model(server *s, server_request *r, shimmy_error *err) {
    if (r->model[0]) return SHIMMY_OK;
    shimmy_model_list *l = server_list(s);
    size_t n = shimmy_model_list_count(l);
    if (n == 1) snprintf(r->model, sizeof r->model, "%s", shimmy_model_list_name(l, 0));
    shimmy_model_list_free(l);
    if (n == 1) return SHIMMY_OK;
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "model",
                            "'model' is required (the server has %zu models; see GET /api/models)",
                            n);
}

int server_run(server_call *c, server_api api, const server_fmt *stream_fmt,
               const server_fmt *json_fmt) {
    server *s = c->srv;
    /* Loading a model or waiting for a slot is not client idleness (see server_call_hold). */
    server_call_hold(s, c->conn, true);
    server_request req;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st =
        server_request_parse(api, c->body, c->body_len, s->cfg.max_tokens_cap, &req, &err);
    if (!st) st = default_model(s, &req, &err);
    if (st) {
        server_request_deinit(&req);
        return server_reply_error(c, &err);
    }
    return server_run_parsed(c, &req, req.stream ? stream_fmt : json_fmt, NULL, NULL, NULL);
}

int server_run_parsed(server_call *c, server_request *req, const server_fmt *fmt, void *ext,
                      void (*ext_free)(void *),
                      int (*reply_error)(server_call *, const shimmy_error *)) {
    server *s = c->srv;
    server_call_hold(s, c->conn, true);
    if (!reply_error) reply_error = server_reply_error;
    shimmy_error err;
    shimmy_error_clear(&err);
    bool stream = req->stream;
    server_job *j = server_job_new(s, req, fmt, c->route);
    if (!j) {
        if (ext_free) ext_free(ext);
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        return reply_error(c, &err);
    }
    j->ext = ext;
    j->ext_free = ext_free;
    shimmy_status st = server_job_prepare(s, j, &err);
    if (!st) st = server_submit(s, j, &err);
    if (st) {
        server_job_release(j);
        return reply_error(c, &err);
    }
    if (stream) {
        int ok = server_reply_stream(c, j);
        server_job_release(j);
        return ok;
    }
    /* This is the connection's own thread: waiting here blocks no one else. */
    while (!server_job_wait(j, 100)) {
        if (server_call_gone(c->conn)) {
            server_job_cancel(j);
            server_job_wait(j, 60000);
            server_job_release(j);
            return MHD_NO;
        }
    }
    int status = j->http_status;
    int ok = status == 499 ? MHD_NO
                           : server_reply(c, status, "application/json", j->out + j->out_off,
                                          j->out_len - j->out_off);
    server_job_release(j);
    return ok;
}
