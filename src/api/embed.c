/* shimmy_embed and shimmy_rerank: inputs tokenized and checked here (errors name the input),
 * then embedded by the model's engine_embedder, made on first use. Concurrent callers of one
 * model combine: each queues its tokenized inputs, and whoever finds the embedder idle runs
 * every queued request in one call (their inputs share forward steps), then wakes them. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The model's embedder on pool (NULL: its own threads), made on first use and again when the
 * pool changes; called with embed_lock held. */
static shimmy_status embedder(shimmy_model *m, shimmy_threadpool *pool, engine_embedder **out,
                              shimmy_error *err) {
    while (m->embed_busy && m->embedder && m->embed_pool != pool)
        pthread_cond_wait(&m->embed_cv, &m->embed_lock);
    if (m->embedder && m->embed_pool != pool) {
        engine_embed_free(m->embedder);
        m->embedder = NULL;
    }
    if (!m->embedder) {
        const engine_embed_params p = {.n_ctx = m->spec.f.ctx_len > 0 ? m->spec.f.ctx_len : 0,
                                       .n_threads = m->spec.f.threads,
                                       .pool = pool ? pool->pool : NULL,
                                       .compute_lock = pool ? &pool->compute_lock : NULL};
        shimmy_status st = engine_embed_new(m->em, &p, &m->embedder, err);
        if (st) return st;
        m->embed_pool = pool;
    }
    *out = m->embedder;
    return SHIMMY_OK;
}

/* Error of input i: the message kept, where "<label>[i]". */
static shimmy_status input_error(shimmy_error *err, shimmy_status st, const char *label, size_t i) {
    if (!err) return st;
    snprintf(err->where, sizeof err->where, "%s[%zu]", label, i);
    if (strncmp(err->message, "input ", 6) != 0) { /* the message names the input too */
        char msg[sizeof err->message + 64];
        snprintf(msg, sizeof msg, "%s %zu: %s", label, i, err->message);
        snprintf(err->message, sizeof err->message, "%.*s", (int)sizeof err->message - 1, msg);
    }
    return st;
}

/* Tokens of every input (texts tokenized, ids checked) into one buffer; start[i] is where
 * input i's begin, start[n] the end. */
static shimmy_status gather(engine_embedder *e, const shimmy_model *m, const shimmy_embed_input *in,
                            size_t n, const char *query, bool truncate, tok_buf *ids, size_t *start,
                            shimmy_error *err) {
    const char *label = query ? "documents" : "input";
    const int32_t n_vocab = m->em ? engine_model_weights(m->em)->hp.n_vocab : 0;
    const int32_t n_ctx = engine_embed_n_ctx(e);
    for (size_t i = 0; i < n; i++) {
        start[i] = ids->n;
        shimmy_status st;
        if (in[i].text) {
            const char *a = query ? query : in[i].text;
            const char *b = query ? in[i].text : NULL;
            st = engine_embed_tokenize(e, a, strlen(a), b, b ? strlen(b) : 0, truncate, ids, err);
            if (st) return input_error(err, st, label, i);
            continue;
        }
        if (!in[i].tokens || in[i].n_tokens == 0) {
            core_error(err, SHIMMY_ERR_INVALID_ARG, NULL, "input %zu is empty", i);
            return input_error(err, SHIMMY_ERR_INVALID_ARG, label, i);
        }
        size_t nt = in[i].n_tokens;
        if (nt > (size_t)n_ctx) {
            if (!truncate) {
                core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, NULL,
                           "input %zu has %zu tokens, more than the model's context of %d", i, nt,
                           n_ctx);
                return input_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, label, i);
            }
            nt = (size_t)n_ctx;
        }
        for (size_t t = 0; t < nt; t++) {
            if (in[i].tokens[t] < 0 || in[i].tokens[t] >= n_vocab) {
                core_error(err, SHIMMY_ERR_INVALID_ARG, NULL,
                           "input %zu: token id %d is outside the vocabulary (0 .. %d)", i,
                           (int)in[i].tokens[t], n_vocab - 1);
                return input_error(err, SHIMMY_ERR_INVALID_ARG, label, i);
            }
            if ((st = tok_buf_push(ids, in[i].tokens[t], err))) return st;
        }
    }
    start[n] = ids->n;
    return SHIMMY_OK;
}

/* One caller's inputs in the queue: tokens (start[i] .. start[i+1] of ids) and where their raw
 * vectors go (n rows of engine_embed_dim); the runner fills st/err and sets done. */
typedef struct api_embed_wait {
    const tok_buf *ids;
    const size_t *start;
    size_t n;
    float *out;
    shimmy_status st;
    shimmy_error err;
    bool done;
    struct api_embed_wait *next;
} api_embed_wait;

/* Runs every request of the list in one engine call (raw vectors, full size). */
static void run_batch(engine_embedder *e, api_embed_wait *list) {
    size_t total = 0;
    for (api_embed_wait *w = list; w; w = w->next) total += w->n;
    const int32_t **tp = core_malloc(sizeof *tp * total);
    int32_t *np = core_malloc(sizeof *np * total);
    const size_t dim = (size_t)engine_embed_dim(e);
    float *out = list->next ? core_malloc(sizeof *out * total * dim) : list->out;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st = SHIMMY_OK;
    if (!tp || !np || !out) st = core_error(&err, SHIMMY_ERR_NOMEM, "input", "out of memory");
    size_t k = 0;
    for (api_embed_wait *w = list; !st && w; w = w->next)
        for (size_t i = 0; i < w->n; i++, k++) {
            tp[k] = w->ids->ids + w->start[i];
            np[k] = (int32_t)(w->start[i + 1] - w->start[i]);
        }
    const engine_embed_opts raw = {.normalize = false};
    if (!st) st = engine_embed_run(e, tp, np, (int32_t)total, &raw, out, &err);
    k = 0;
    for (api_embed_wait *w = list; w; w = w->next) {
        w->st = st;
        w->err = err;
        if (!st && out != w->out) memcpy(w->out, out + k * dim, sizeof *out * w->n * dim);
        k += w->n;
    }
    if (out != list->out) free(out);
    free(tp);
    free(np);
}

/* Queues w and waits until a run (this caller's or another's) has done it. Called and returns
 * with embed_lock held. */
static shimmy_status submit(shimmy_model *m, api_embed_wait *w, shimmy_error *err) {
    api_embed_wait **tail = &m->embed_queue;
    while (*tail) tail = &(*tail)->next;
    w->next = NULL;
    *tail = w;
    while (!w->done) {
        if (m->embed_busy) {
            pthread_cond_wait(&m->embed_cv, &m->embed_lock);
            continue;
        }
        m->embed_busy = true;
        api_embed_wait *list = m->embed_queue;
        m->embed_queue = NULL;
        engine_embedder *e = m->embedder;
        pthread_mutex_unlock(&m->embed_lock);
        run_batch(e, list);
        pthread_mutex_lock(&m->embed_lock);
        for (api_embed_wait *x = list, *next; x; x = next) {
            next = x->next; /* x belongs to its caller again once done */
            x->done = true;
        }
        m->embed_busy = false;
        pthread_cond_broadcast(&m->embed_cv);
    }
    if (w->st && err) *err = w->err;
    return w->st;
}

/* A raw vector as the caller asked: its first `dims` components (0: all), L2-normalised unless
 * raw. */
static void finish(const float *v, int32_t dim, int32_t dims, bool raw, float *dst) {
    const int32_t d = dims > 0 && dims < dim ? dims : dim;
    double ss = 0.0;
    for (int32_t i = 0; i < d; i++) ss += (double)v[i] * v[i];
    const float scale = !raw && ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 1.0f;
    for (int32_t i = 0; i < d; i++) dst[i] = v[i] * scale;
}

shimmy_status shimmy_embed(shimmy_model *m, const shimmy_embed_input *in, size_t n,
                           const shimmy_embed_options *o, shimmy_embeddings *out,
                           shimmy_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!m || !out || (!in && n))
        return core_error(err, SHIMMY_ERR_INVALID_ARG,
                          !m     ? "model"
                          : !out ? "out"
                                 : "input",
                          "a required pointer is NULL");
    if (n == 0 || n > (1u << 20))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "input", "%zu inputs; give 1 .. 1048576", n);
    const shimmy_embed_options dflt = {0};
    if (!o) o = &dflt;
    if (o->dimensions < 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "dimensions", "must be >= 0, not %d",
                          (int)o->dimensions);
    pthread_mutex_lock(&m->embed_lock);
    engine_embedder *e = NULL;
    tok_buf ids = {0};
    size_t *start = core_malloc(sizeof *start * (n + 1));
    shimmy_status st = start ? embedder(m, o->pool, &e, err)
                             : core_error(err, SHIMMY_ERR_NOMEM, "input", "out of memory");
    if (!st && engine_embed_pooling(e) != MODEL_POOL_RANK && o->dimensions > engine_embed_dim(e))
        st = core_error(err, SHIMMY_ERR_INVALID_ARG, "dimensions",
                        "%d dimensions asked; the model's vectors have %d", (int)o->dimensions,
                        (int)engine_embed_dim(e));
    if (!st) st = gather(e, m, in, n, NULL, o->truncate, &ids, start, err);
    float *raw = NULL;
    if (!st) {
        const int32_t full = engine_embed_dim(e);
        const bool rank = engine_embed_pooling(e) == MODEL_POOL_RANK;
        const int32_t dim = !rank && o->dimensions > 0 ? o->dimensions : full;
        raw = core_malloc(sizeof *raw * n * (size_t)full);
        out->data = core_malloc(sizeof *out->data * n * (size_t)dim);
        out->n_tokens = core_malloc(sizeof *out->n_tokens * n);
        if (!raw || !out->data || !out->n_tokens)
            st = core_error(err, SHIMMY_ERR_NOMEM, "input", "out of memory");
        api_embed_wait w = {.ids = &ids, .start = start, .n = n, .out = raw};
        if (!st) st = submit(m, &w, err);
        for (size_t i = 0; !st && i < n; i++) {
            finish(raw + i * (size_t)full, full, dim, rank || o->raw, out->data + i * (size_t)dim);
            out->n_tokens[i] = (int32_t)(start[i + 1] - start[i]);
            out->prompt_tokens += (uint64_t)out->n_tokens[i];
        }
        if (!st) {
            out->n = n;
            out->dim = dim;
        }
    }
    pthread_mutex_unlock(&m->embed_lock);
    free(raw);
    free(start);
    tok_buf_free(&ids);
    if (st) shimmy_embeddings_free(out);
    return st;
}

void shimmy_embeddings_free(shimmy_embeddings *e) {
    if (!e) return;
    free(e->data);
    free(e->n_tokens);
    memset(e, 0, sizeof *e);
}

shimmy_status shimmy_rerank(shimmy_model *m, const char *query, const char *const *docs,
                            size_t n_docs, const shimmy_embed_options *o, float *scores,
                            uint64_t *prompt_tokens, shimmy_error *err) {
    if (prompt_tokens) *prompt_tokens = 0;
    if (!m || !query || !scores || (!docs && n_docs))
        return core_error(err, SHIMMY_ERR_INVALID_ARG,
                          !m       ? "model"
                          : !query ? "query"
                                   : "documents",
                          "a required pointer is NULL");
    if (n_docs == 0 || n_docs > (1u << 20))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "documents",
                          "%zu documents; give 1 .. 1048576", n_docs);
    for (size_t i = 0; i < n_docs; i++)
        if (!docs[i])
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "documents", "document %zu is NULL", i);
    pthread_mutex_lock(&m->embed_lock);
    engine_embedder *e = NULL;
    tok_buf ids = {0};
    size_t *start = core_malloc(sizeof *start * (n_docs + 1));
    shimmy_embed_input *in = core_calloc(n_docs, sizeof *in);
    float *all = NULL;
    shimmy_status st = start && in
                           ? embedder(m, o ? o->pool : NULL, &e, err)
                           : core_error(err, SHIMMY_ERR_NOMEM, "documents", "out of memory");
    if (!st && engine_embed_pooling(e) != MODEL_POOL_RANK)
        st = core_error(err, SHIMMY_ERR_UNSUPPORTED, m->spec.f.name,
                        "model '%s' is not a reranker (its pooling is not 'rank' with a "
                        "classification head)",
                        m->spec.f.name);
    for (size_t i = 0; !st && i < n_docs; i++) in[i].text = docs[i];
    if (!st) st = gather(e, m, in, n_docs, query, o && o->truncate, &ids, start, err);
    if (!st) {
        const int32_t dim = engine_embed_dim(e);
        all = core_malloc(sizeof *all * n_docs * (size_t)dim);
        api_embed_wait w = {.ids = &ids, .start = start, .n = n_docs, .out = all};
        st = all ? submit(m, &w, err)
                 : core_error(err, SHIMMY_ERR_NOMEM, "documents", "out of memory");
        for (size_t i = 0; !st && i < n_docs; i++) scores[i] = all[i * (size_t)dim];
        if (!st && prompt_tokens) *prompt_tokens = ids.n;
    }
    pthread_mutex_unlock(&m->embed_lock);
    free(all);
    free(in);
    free(start);
    tok_buf_free(&ids);
    return st;
}

const char *shimmy_model_pooling(const shimmy_model *m) {
    if (!m) return NULL;
    const model *w = engine_model_weights(m->em);
    switch ((model_pooling)w->hp.pooling) {
    case MODEL_POOL_NONE: return "none";
    case MODEL_POOL_CLS: return "cls";
    case MODEL_POOL_LAST: return "last";
    case MODEL_POOL_RANK: return "rank";
    case MODEL_POOL_MEAN: return "mean";
    default: return w->arch->encoder ? "none" : "mean";
    }
}

int32_t shimmy_model_embedding_size(const shimmy_model *m) {
    if (!m) return 0;
    const model *w = engine_model_weights(m->em);
    return w->hp.pooling == MODEL_POOL_RANK && w->n_cls_out > 0 ? w->n_cls_out : w->hp.n_embd;
}
