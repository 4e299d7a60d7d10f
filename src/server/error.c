/* The single place a shimmy_error becomes the OpenAI error object. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* OpenAI reports "type" by class of failure and a machine-readable "code" for the cases clients
 * branch on; the rest of the statuses fall back to a type derived from the HTTP status. */
typedef struct error_kind {
    shimmy_status status;
    const char *type;
    const char *code; /* NULL -> JSON null */
} error_kind;

static const error_kind error_kinds[] = {
    {SHIMMY_ERR_INVALID_JSON, "invalid_request_error", "invalid_json"},
    {SHIMMY_ERR_MODEL_NOT_FOUND, "invalid_request_error", "model_not_found"},
    {SHIMMY_ERR_CONTEXT_EXCEEDED, "invalid_request_error", "context_length_exceeded"},
    {SHIMMY_ERR_UNAUTHORIZED, "invalid_request_error", "invalid_api_key"},
    {SHIMMY_ERR_NOT_FOUND, "invalid_request_error", "not_found"},
    {SHIMMY_ERR_METHOD, "invalid_request_error", "method_not_allowed"},
    {SHIMMY_ERR_TOO_LARGE, "invalid_request_error", "request_too_large"},
    {SHIMMY_ERR_BUSY, "server_error", "server_overloaded"},
    {SHIMMY_ERR_CANCELLED, "server_error", "cancelled"},
};

static const error_kind *kind_of(shimmy_status s) {
    for (size_t i = 0; i < sizeof error_kinds / sizeof error_kinds[0]; i++)
        if (error_kinds[i].status == s) return &error_kinds[i];
    return NULL;
}

json_t *server_error_object(const shimmy_error *err) {
    int http = shimmy_status_http(err->status);
    const error_kind *k = kind_of(err->status);
    const char *type = k ? k->type : (http >= 500 ? "server_error" : "invalid_request_error");
    const char *msg = err->message[0] ? err->message : shimmy_status_message(err->status);
    json_t *e = json_object();
    if (!e) return NULL;
    /* Messages may quote user bytes that are not UTF-8; jansson refuses those, so fall back to
     * the status's own message rather than losing the whole error. */
    json_t *m = json_string(msg);
    if (!m) m = json_string(shimmy_status_message(err->status));
    json_object_set_new(e, "message", m);
    json_object_set_new(e, "type", json_string(type));
    json_t *param = err->where[0] ? json_string(err->where) : NULL;
    json_object_set_new(e, "param", param ? param : json_null());
    json_object_set_new(e, "code", k && k->code ? json_string(k->code) : json_null());
    json_t *root = json_object();
    if (!root) {
        json_decref(e);
        return NULL;
    }
    json_object_set_new(root, "error", e);
    return root;
}

char *server_error_json(const shimmy_error *err, int *http) {
    if (http) *http = shimmy_status_http(err->status);
    json_t *root = server_error_object(err);
    if (!root) return NULL;
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}
