/*
 * shimmy.h — the public C API of libshimmy.
 *
 * Errors are values: every function that can fail returns a shimmy_status (SHIMMY_OK == 0)
 * and, when the caller passes a shimmy_error, fills it with a message a user can act on and
 * the field, file or model concerned. The status list below is the single source of truth
 * for status names, messages and HTTP codes across the library, the CLI and the server.
 *
 * Thread-safety: the status functions are pure and may be called from any thread.
 */
#ifndef SHIMMY_H
#define SHIMMY_H

#ifdef __cplusplus
extern "C" {
#endif

#define SHIMMY_VERSION "0.1.0"

/* X(enum name, default message, HTTP status) */
#define SHIMMY_STATUS_LIST(X)                                                                      \
    X(SHIMMY_OK, "ok", 200)                                                                        \
    X(SHIMMY_ERR_INVALID_ARG, "invalid argument", 400)                                             \
    X(SHIMMY_ERR_INVALID_JSON, "malformed JSON", 400)                                              \
    X(SHIMMY_ERR_FORMAT, "malformed model file", 400)                                              \
    X(SHIMMY_ERR_UNSUPPORTED, "unsupported model or feature", 400)                                 \
    X(SHIMMY_ERR_IO, "file could not be read or written", 500)                                     \
    X(SHIMMY_ERR_NOMEM, "out of memory", 500)                                                      \
    X(SHIMMY_ERR_NOT_FOUND, "not found", 404)                                                      \
    X(SHIMMY_ERR_MODEL_NOT_FOUND, "model not found", 404)                                          \
    X(SHIMMY_ERR_CONTEXT_EXCEEDED, "context length exceeded", 400)                                 \
    X(SHIMMY_ERR_TOKENIZER, "text could not be tokenized", 400)                                    \
    X(SHIMMY_ERR_TEMPLATE, "chat template error", 400)                                             \
    X(SHIMMY_ERR_ADAPTER, "LoRA adapter cannot be applied", 400)                                   \
    X(SHIMMY_ERR_UNAUTHORIZED, "missing or invalid API key", 401)                                  \
    X(SHIMMY_ERR_METHOD, "method not allowed", 405)                                                \
    X(SHIMMY_ERR_TOO_LARGE, "request too large", 413)                                              \
    X(SHIMMY_ERR_BUSY, "server is busy", 503)                                                      \
    X(SHIMMY_ERR_CANCELLED, "cancelled", 499)                                                      \
    X(SHIMMY_ERR_GENERATION, "generation failed", 500)                                             \
    X(SHIMMY_ERR_INTERNAL, "internal error", 500)

typedef enum shimmy_status {
#define SHIMMY_X_ENUM(name, msg, http) name,
    SHIMMY_STATUS_LIST(SHIMMY_X_ENUM)
#undef SHIMMY_X_ENUM
        SHIMMY_STATUS_COUNT
} shimmy_status;

/* Details of a failure. Fixed-size buffers: nothing to free, safe to copy. */
typedef struct shimmy_error {
    shimmy_status status;
    char message[512]; /* what went wrong and, where possible, what to do about it */
    char where[256];   /* the field, file, tensor or model concerned ("" if none) */
} shimmy_error;

/* "SHIMMY_ERR_FORMAT"; "SHIMMY_STATUS_UNKNOWN" for values outside the list. */
const char *shimmy_status_name(shimmy_status s);
/* The default human message of a status. */
const char *shimmy_status_message(shimmy_status s);
/* The HTTP status code a server answers with for this status. */
int shimmy_status_http(shimmy_status s);
/* Resets *err to SHIMMY_OK with empty strings. */
void shimmy_error_clear(shimmy_error *err);

#ifdef __cplusplus
}
#endif
#endif
