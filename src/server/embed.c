/* Embeddings and reranking endpoints: POST /v1/embeddings (OpenAI), /api/embed and the legacy
 * /api/embeddings (Ollama), /v1/rerank and /rerank (Jina / Cohere / llama-server shape).
 *
 * A request runs on its connection's thread through shimmy_embed / shimmy_rerank on the
 * server's thread pool: each forward step holds the pool's compute lock, so embeddings take
 * turns step by step with the slots' generations instead of stalling a stream for a whole
 * request, and steps are bounded (2048 tokens by default). Requests in flight are bounded too:
 * beyond --parallel + --queue of them the answer is 503, as for generations.
 *
 * Inputs longer than the model's context: 400 naming the input ("input[2]", "documents[1]")
 * for /v1/embeddings and /v1/rerank unless the request says "truncate": true; Ollama's
 * endpoints truncate by default (its own default, "truncate": false to refuse). Truncation
 * keeps the input's final [SEP] / EOS. */
#include "server.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int inflight;

static shimmy_status bad(shimmy_error *err, const char *where, const char *what) {
    return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where, "'%s' %s", where, what);
}

/* ---- a growable text for the bodies (vectors are long: printed with %.9g, not jansson's 17
 * digits) ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t len) {
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_json(sbuf *b, json_t *v) { /* steals v */
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!s) {
        b->oom = true;
        return;
    }
    sb_put(b, s, strlen(s));
    free(s);
}

static void sb_vector(sbuf *b, const float *v, int32_t dim) {
    sb_put(b, "[", 1);
    for (int32_t i = 0; i < dim; i++) sb_printf(b, i ? ",%.9g" : "%.9g", (double)v[i]);
    sb_put(b, "]", 1);
}

/* The float32 bytes (little-endian, as OpenAI's base64 encoding_format) in base64. */
static void sb_base64(sbuf *b, const float *v, int32_t dim) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)v;
    const size_t n = (size_t)dim * sizeof(float);
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                           (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tbl[w >> 18 & 63], tbl[w >> 12 & 63], i + 1 < n ? tbl[w >> 6 & 63] : '=',
                     i + 2 < n ? tbl[w & 63] : '='};
        sb_put(b, q, 4);
    }
    sb_put(b, "\"", 1);
}

static int reply_sbuf(server_call *c, sbuf *b) {
    int ok;
    if (b->oom) {
        shimmy_error err;
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory while building the response");
        ok = server_reply_error(c, &err);
    } else {
        ok = server_reply(c, 200, "application/json", b->p, b->n);
    }
    free(b->p);
    return ok;
}

/* ---- request pieces ---- */

/* Parsed inputs: texts borrowed from the body, token arrays owned. */
typedef struct embed_inputs {
    shimmy_embed_input *in;
    size_t n;
    int32_t **ids; /* (n) owned token arrays, or NULL entries */
} embed_inputs;

static void inputs_free(embed_inputs *x) {
    for (size_t i = 0; x->ids && i < x->n; i++) free(x->ids[i]);
    free(x->ids);
    free(x->in);
}

/* An array of token ids (integers in int32 range; the model checks the vocabulary). */
static bool token_array(const json_t *a, int32_t **out, size_t *n) {
    *n = json_array_size(a);
    *out = malloc((*n ? *n : 1) * sizeof **out);
    if (!*out) return false;
    for (size_t i = 0; i < *n; i++) {
        const json_t *t = json_array_get(a, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return false;
        (*out)[i] = (int32_t)json_integer_value(t);
    }
    return true;
}

/* input: a string, an array of strings, an array of token ids or an array of such arrays
 * (tokens only when `tokens_ok`). */
static shimmy_status parse_inputs(const json_t *v, const char *name, bool tokens_ok,
                                  embed_inputs *x, shimmy_error *err) {
    memset(x, 0, sizeof *x);
    if (!v || json_is_null(v)) return bad(err, name, "is required");
    const bool single =
        json_is_string(v) || (tokens_ok && json_is_array(v) && json_array_size(v) > 0 &&
                              json_is_integer(json_array_get(v, 0)));
    if (!single && !json_is_array(v))
        return bad(err, name,
                   tokens_ok ? "must be a string, an array of strings, an array of token ids or "
                               "an array of token-id arrays"
                             : "must be a string or an array of strings");
    x->n = single ? 1 : json_array_size(v);
    if (x->n == 0) return bad(err, name, "must not be empty");
    if (x->n > 65536) return bad(err, name, "has more than 65536 inputs");
    x->in = calloc(x->n, sizeof *x->in);
    x->ids = calloc(x->n, sizeof *x->ids);
    if (!x->in || !x->ids) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, name, "out of memory");
    for (size_t i = 0; i < x->n; i++) {
        const json_t *e = single ? v : json_array_get(v, i);
        char where[64];
        snprintf(where, sizeof where, single ? "%s" : "%s[%zu]", name, i);
        if (json_is_string(e)) {
            x->in[i].text = json_string_value(e);
            if (strlen(x->in[i].text) != json_string_length(e))
                return bad(err, where, "contains a NUL character");
        } else if (tokens_ok && json_is_array(e)) {
            if (!token_array(e, &x->ids[i], &x->in[i].n_tokens) || x->in[i].n_tokens == 0)
                return bad(err, where, "must be a non-empty array of token ids (integers >= 0)");
            x->in[i].tokens = x->ids[i];
        } else {
            return bad(err, where,
                       tokens_ok ? "must be a string or an array of token ids"
                                 : "must be a string");
        }
    }
    return SHIMMY_OK;
}

/* The model a request names (Ollama's ":latest" tag dropped when that is what matches), or the
 * only one the server has; a reference in *m. */
static shimmy_status get_model(server *s, const json_t *root, shimmy_model **m, shimmy_error *err) {
    const json_t *v = json_object_get(root, "model");
    shimmy_model_list *l = server_list(s);
    size_t idx = 0;
    char name[512] = "";
    shimmy_status st = SHIMMY_OK;
    if (!v || json_is_null(v)) {
        if (shimmy_model_list_count(l) == 1)
            snprintf(name, sizeof name, "%s", shimmy_model_list_name(l, 0));
        else
            st = shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "model",
                                  "'model' is required (the server has %zu models; see GET "
                                  "/v1/models)",
                                  shimmy_model_list_count(l));
    } else if (!json_is_string(v)) {
        st = bad(err, "model", "must be a string");
    } else {
        const char *want = json_string_value(v);
        const size_t n = strlen(want);
        snprintf(name, sizeof name, "%s", want);
        if (!shimmy_model_list_find(l, want, &idx) && n > 7 && strcmp(want + n - 7, ":latest") == 0)
            snprintf(name, sizeof name, "%.*s", (int)(n - 7), want);
    }
    shimmy_model_list_free(l);
    if (st) return st;
    st = shimmy_catalog_get(s->cat, name, m, err);
    if (st == SHIMMY_ERR_MODEL_NOT_FOUND || st == SHIMMY_ERR_UNSUPPORTED)
        snprintf(err->where, sizeof err->where, "model");
    return st;
}

static shimmy_status opt_bool(const json_t *root, const char *key, bool *out, shimmy_error *err) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return SHIMMY_OK;
    if (!json_is_boolean(v)) return bad(err, key, "must be true or false");
    *out = json_is_true(v);
    return SHIMMY_OK;
}

/* Admission: bounded like the generation queue. */
static shimmy_status admit(server *s, shimmy_error *err) {
    const int cap = s->n_slots + s->cfg.queue_cap;
    if (atomic_fetch_add(&inflight, 1) >= cap) {
        atomic_fetch_sub(&inflight, 1);
        return shimmy_error_set(err, SHIMMY_ERR_BUSY, NULL,
                                "%d embedding requests are running or waiting; retry later", cap);
    }
    return SHIMMY_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the three embedding dialects ---- */

typedef enum embed_dialect { EMBED_OPENAI, EMBED_OLLAMA, EMBED_OLLAMA_LEGACY } embed_dialect;

static int handle_embed(server_call *c, embed_dialect d) {
    server *s = c->srv;
    shimmy_error err;
    shimmy_error_clear(&err);
    json_t *root = NULL;
    shimmy_model *m = NULL;
    embed_inputs x = {0};
    shimmy_embeddings e = {0};
    bool admitted = false, base64 = false;
    const double t0 = now_s();
    shimmy_embed_options o = {.truncate = d != EMBED_OPENAI, .pool = s->pool};
    shimmy_status st = server_json_body(c->body, c->body_len, &root, &err);
    if (!st)
        st = parse_inputs(json_object_get(root, d == EMBED_OLLAMA_LEGACY ? "prompt" : "input"),
                          d == EMBED_OLLAMA_LEGACY ? "prompt" : "input", d == EMBED_OPENAI, &x,
                          &err);
    if (!st) st = opt_bool(root, "truncate", &o.truncate, &err);
    const json_t *dims = root ? json_object_get(root, "dimensions") : NULL;
    if (!st && dims && !json_is_null(dims)) {
        json_int_t v;
        st = server_json_integer_in(dims, "dimensions", 1, 1 << 20, &v, &err);
        o.dimensions = (int32_t)v;
    }
    const json_t *fmt = root ? json_object_get(root, "encoding_format") : NULL;
    if (!st && d == EMBED_OPENAI && fmt && !json_is_null(fmt)) {
        if (json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0)
            base64 = true;
        else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "float") != 0)
            st = bad(&err, "encoding_format", "must be \"float\" or \"base64\"");
    }
    o.raw = d == EMBED_OLLAMA_LEGACY; /* Ollama's legacy endpoint answers unnormalised vectors */
    if (!st) st = get_model(s, root, &m, &err);
    const double t_loaded = now_s();
    if (!st && !(st = admit(s, &err))) admitted = true;
    if (!st) {
        server_call_hold(s, c->conn, true);
        st = shimmy_embed(m, x.in, x.n, &o, &e, &err);
        server_call_hold(s, c->conn, false);
    }
    if (admitted) atomic_fetch_sub(&inflight, 1);
    int ok;
    if (st) {
        ok = server_reply_error(c, &err);
    } else {
        sbuf b = {0};
        const char *name = shimmy_model_name(m);
        if (d == EMBED_OPENAI) {
            sb_printf(&b, "{\"object\":\"list\",\"data\":[");
            for (size_t i = 0; i < e.n; i++) {
                sb_printf(&b,
                          "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "",
                          i);
                (base64 ? sb_base64 : sb_vector)(&b, e.data + i * (size_t)e.dim, e.dim);
                sb_put(&b, "}", 1);
            }
            sb_printf(&b, "],\"model\":");
            sb_json(&b, json_string(name));
            sb_printf(&b, ",\"usage\":{\"prompt_tokens\":%llu,\"total_tokens\":%llu}}",
                      (unsigned long long)e.prompt_tokens, (unsigned long long)e.prompt_tokens);
        } else if (d == EMBED_OLLAMA) {
            sb_printf(&b, "{\"model\":");
            sb_json(&b, json_string(json_string_value(json_object_get(root, "model"))
                                        ? json_string_value(json_object_get(root, "model"))
                                        : name));
            sb_printf(&b, ",\"embeddings\":[");
            for (size_t i = 0; i < e.n; i++) {
                if (i) sb_put(&b, ",", 1);
                sb_vector(&b, e.data + i * (size_t)e.dim, e.dim);
            }
            const double t1 = now_s();
            sb_printf(&b,
                      "],\"total_duration\":%.0f,\"load_duration\":%.0f,"
                      "\"prompt_eval_count\":%llu}",
                      (t1 - t0) * 1e9, (t_loaded - t0) * 1e9, (unsigned long long)e.prompt_tokens);
        } else {
            sb_printf(&b, "{\"embedding\":");
            sb_vector(&b, e.data, e.dim);
            sb_put(&b, "}", 1);
        }
        ok = reply_sbuf(c, &b);
    }
    shimmy_embeddings_free(&e);
    shimmy_model_unref(m);
    inputs_free(&x);
    json_decref(root);
    return ok;
}

int server_handle_embeddings(server_call *c) {
    return handle_embed(c, EMBED_OPENAI);
}

int server_handle_ollama_embed(server_call *c) {
    return handle_embed(c, strcmp(c->route, "/api/embeddings") == 0 ? EMBED_OLLAMA_LEGACY
                                                                    : EMBED_OLLAMA);
}

/* ---- rerank ---- */

typedef struct ranked {
    size_t index;
    float score;
} ranked;

static int by_score(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* A document: a string, or an object with a "text" string (Cohere / Jina). */
static const char *doc_text(const json_t *d) {
    if (json_is_string(d)) return json_string_value(d);
    return json_is_object(d) ? json_string_value(json_object_get(d, "text")) : NULL;
}

int server_handle_rerank(server_call *c) {
    server *s = c->srv;
    shimmy_error err;
    shimmy_error_clear(&err);
    json_t *root = NULL;
    shimmy_model *m = NULL;
    const char **docs = NULL;
    float *scores = NULL;
    ranked *order = NULL;
    bool admitted = false, ret_docs = false;
    size_t n = 0, top_n = 0;
    uint64_t n_tokens = 0;
    shimmy_embed_options o = {.pool = s->pool};
    shimmy_status st = server_json_body(c->body, c->body_len, &root, &err);
    const json_t *q = root ? json_object_get(root, "query") : NULL;
    const json_t *dv = root ? json_object_get(root, "documents") : NULL;
    if (!st && !json_is_string(q)) st = bad(&err, "query", "must be a string");
    if (!st && (!json_is_array(dv) || json_array_size(dv) == 0 || json_array_size(dv) > 65536))
        st = bad(&err, "documents", "must be an array of 1 .. 65536 strings");
    if (!st) {
        n = json_array_size(dv);
        docs = calloc(n, sizeof *docs);
        scores = calloc(n, sizeof *scores);
        order = calloc(n, sizeof *order);
        if (!docs || !scores || !order)
            st = shimmy_error_set(&err, SHIMMY_ERR_NOMEM, "documents", "out of memory");
    }
    for (size_t i = 0; !st && i < n; i++) {
        docs[i] = doc_text(json_array_get(dv, i));
        if (!docs[i]) {
            char where[64];
            snprintf(where, sizeof where, "documents[%zu]", i);
            st = bad(&err, where, "must be a string or an object with a \"text\" string");
        }
    }
    top_n = n;
    const json_t *tn = root ? json_object_get(root, "top_n") : NULL;
    if (!st && tn && !json_is_null(tn)) {
        json_int_t v;
        st = server_json_integer_in(tn, "top_n", 1, 1 << 20, &v, &err);
        if (!st && (size_t)v < n) top_n = (size_t)v;
    }
    if (!st) st = opt_bool(root, "return_documents", &ret_docs, &err);
    if (!st) st = opt_bool(root, "truncate", &o.truncate, &err);
    if (!st) st = get_model(s, root, &m, &err);
    if (!st && !(st = admit(s, &err))) admitted = true;
    if (!st) {
        server_call_hold(s, c->conn, true);
        st = shimmy_rerank(m, json_string_value(q), docs, n, &o, scores, &n_tokens, &err);
        server_call_hold(s, c->conn, false);
    }
    if (admitted) atomic_fetch_sub(&inflight, 1);
    int ok;
    if (st) {
        ok = server_reply_error(c, &err);
    } else {
        for (size_t i = 0; i < n; i++) order[i] = (ranked){i, scores[i]};
        qsort(order, n, sizeof *order, by_score);
        sbuf b = {0};
        sb_printf(&b, "{\"object\":\"list\",\"model\":");
        sb_json(&b, json_string(shimmy_model_name(m)));
        sb_printf(&b, ",\"results\":[");
        for (size_t k = 0; k < top_n; k++) {
            sb_printf(&b, "%s{\"index\":%zu,\"relevance_score\":%.9g", k ? "," : "", order[k].index,
                      (double)order[k].score);
            if (ret_docs) {
                sb_printf(&b, ",\"document\":{\"text\":");
                sb_json(&b, json_string(docs[order[k].index]));
                sb_put(&b, "}", 1);
            }
            sb_put(&b, "}", 1);
        }
        sb_printf(&b, "],\"usage\":{\"prompt_tokens\":%llu,\"total_tokens\":%llu}}",
                  (unsigned long long)n_tokens, (unsigned long long)n_tokens);
        ok = reply_sbuf(c, &b);
    }
    shimmy_model_unref(m);
    free(docs);
    free(scores);
    free(order);
    json_decref(root);
    return ok;
}
