/* Embeddings and reranking: inputs packed into forward steps of a context with one sequence per
 * input, their final hidden states pooled, normalised or put through the classifier. */
#include "engine.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Tokens per step by default: enough rows for the matrix kernels' full speed, short enough
 * that a generation sharing the pool waits little between its steps. */
#define EMBED_STEP_TOKENS 2048
/* Virtual size the default n_seq lets the F32 K/V cache reach (pages are touched only as far as
 * the inputs reach: short inputs keep it small). */
#define EMBED_KV_BUDGET ((uint64_t)4 << 30)

struct engine_embedder {
    const engine_model *em;
    const model *m;
    model_ctx *ctx;
    core_pool *pool;
    bool own_pool;
    pthread_mutex_t *lock;
    int32_t n_ctx, n_seq, n_batch, dim;
    model_pooling pooling;
    /* step scratch (n_batch entries) and the pooled rows of a step (n_seq x n_embd) */
    int32_t *tok, *seq;
    uint8_t *want;
    float *pooled;
    float *scores; /* (n_seq x n_cls_out) rank pooling's head outputs */
};

shimmy_status engine_embed_new(const engine_model *em, const engine_embed_params *p,
                               engine_embedder **out, shimmy_error *err) {
    *out = NULL;
    const engine_embed_params dflt = {0};
    if (!p) p = &dflt;
    const model *m = engine_model_weights(em);
    const model_hparams *hp = &m->hp;
    model_pooling pool = (model_pooling)hp->pooling;
    if (pool == MODEL_POOL_UNSPEC) /* a generative model: the mean of its normed states */
        pool = m->arch->encoder ? MODEL_POOL_NONE : MODEL_POOL_MEAN;
    if (pool == MODEL_POOL_NONE)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, m->arch->name,
                          "this model's pooling type is 'none' (a vector per token); shimmy "
                          "returns one pooled vector per input");
    if (pool == MODEL_POOL_RANK && m->n_cls_out < 1)
        return core_error(err, SHIMMY_ERR_FORMAT, m->arch->name,
                          "the model asks for rank pooling but has no classification head "
                          "(cls.weight / cls.output.weight)");
    if (p->n_ctx < 0 || p->n_seq < 0 || p->n_seq > 256 || p->n_batch < 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_seq",
                          "inputs per step must be in 0 .. 256, context and batch >= 0");
    engine_embedder *e = core_calloc(1, sizeof *e);
    if (!e) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate an embedder");
    e->em = em;
    e->m = m;
    e->lock = p->compute_lock;
    e->pooling = pool;
    e->dim = pool == MODEL_POOL_RANK ? m->n_cls_out : hp->n_embd;
    const int32_t dflt_ctx = m->arch->encoder ? 8192 : 2048;
    e->n_ctx = p->n_ctx ? p->n_ctx : hp->n_ctx_train < dflt_ctx ? hp->n_ctx_train : dflt_ctx;
    if (m->pos_embd.data && e->n_ctx > m->pos_embd.n_out) e->n_ctx = (int32_t)m->pos_embd.n_out;
    if (p->n_seq) {
        e->n_seq = p->n_seq;
    } else {
        const uint64_t per_seq = (uint64_t)e->n_ctx * (uint64_t)hp->n_layer * 4u *
                                 (uint64_t)hp->n_head_kv *
                                 (uint64_t)(hp->head_dim + hp->head_dim_v);
        const uint64_t fit = per_seq ? EMBED_KV_BUDGET / per_seq : 1;
        e->n_seq = fit < 1 ? 1 : fit > 64 ? 64 : (int32_t)fit;
    }
    e->n_batch = p->n_batch > 0 ? p->n_batch : EMBED_STEP_TOKENS;
    if (e->n_batch < e->n_ctx) e->n_batch = e->n_ctx;
    if ((int64_t)e->n_batch > (int64_t)e->n_ctx * e->n_seq) e->n_batch = e->n_ctx * e->n_seq;
    shimmy_status st = SHIMMY_OK;
    if (p->pool) {
        e->pool = p->pool;
    } else {
        st = core_pool_new(p->n_threads, &e->pool, err);
        e->own_pool = st == SHIMMY_OK;
    }
    /* F32 attention: the references' cleaner target, and the cache lives one step only */
    const model_ctx_params cp = {.n_ctx = e->n_ctx,
                                 .n_seq = e->n_seq,
                                 .n_batch = e->n_batch,
                                 .n_logits = e->n_batch,
                                 .kv_type = MODEL_KV_F32,
                                 .pool = e->pool,
                                 .embeddings = true,
                                 .device = engine_model_device(em)};
    if (!st) st = model_ctx_new(m, &cp, &e->ctx, err);
    if (!st) {
        e->tok = core_malloc(sizeof *e->tok * (size_t)e->n_batch * 2);
        e->want = core_malloc((size_t)e->n_batch);
        e->pooled = core_malloc(sizeof *e->pooled * (size_t)e->n_seq * (size_t)hp->n_embd);
        e->scores = core_malloc(sizeof *e->scores * (size_t)e->n_seq * (size_t)e->dim);
        if (!e->tok || !e->want || !e->pooled || !e->scores)
            st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate embedding scratch");
        else
            e->seq = e->tok + e->n_batch;
    }
    if (st) {
        engine_embed_free(e);
        return st;
    }
    *out = e;
    return SHIMMY_OK;
}

void engine_embed_free(engine_embedder *e) {
    if (!e) return;
    model_ctx_free(e->ctx);
    if (e->own_pool) core_pool_free(e->pool);
    free(e->tok);
    free(e->want);
    free(e->pooled);
    free(e->scores);
    free(e);
}

int32_t engine_embed_n_ctx(const engine_embedder *e) {
    return e->n_ctx;
}
int32_t engine_embed_dim(const engine_embedder *e) {
    return e->dim;
}
model_pooling engine_embed_pooling(const engine_embedder *e) {
    return e->pooling;
}

shimmy_status engine_embed_tokenize(const engine_embedder *e, const char *a, size_t a_len,
                                    const char *b, size_t b_len, bool truncate, tok_buf *out,
                                    shimmy_error *err) {
    const tok_vocab *v = engine_model_vocab(e->em);
    if (!v)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "tokenizer",
                          "the model was opened without a tokenizer");
    const size_t n0 = out->n;
    /* special-token text counts, as llama-embedding and llama-server tokenize inputs */
    const tok_encode_opts o = {.add_special = true, .parse_special = true};
    shimmy_status st = b ? tok_encode_pair(v, a, a_len, b, b_len, TOK_PAIR_HF, &o, out, err)
                         : tok_encode(v, a, a_len, &o, out, err);
    if (st) return st;
    const size_t n = out->n - n0;
    if (n == 0) /* a vocab that adds nothing and an empty text: the model needs a token */
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "input",
                          "the input is empty and the model adds no special token to it");
    if (n <= (size_t)e->n_ctx) return SHIMMY_OK;
    if (!truncate) {
        out->n = n0;
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "input",
                          "the input has %zu tokens, more than the model's context of %d", n,
                          e->n_ctx);
    }
    /* keep the final [SEP] / EOS the tokenizer added: pooling (LAST, and what the model was
     * trained on) expects the input to end with it */
    const int32_t last = out->ids[out->n - 1];
    const bool special = tok_is_control(v, last) && (last == tok_sep(v) || last == tok_eos(v));
    out->n = n0 + (size_t)e->n_ctx;
    if (special) out->ids[out->n - 1] = last;
    return SHIMMY_OK;
}

/* The pooled vector of input j of the step (its rows r0 .. r0+n of the step's outputs). */
static void pool_rows(engine_embedder *e, const float *rows, int32_t n, float *dst) {
    const int64_t E = e->m->hp.n_embd;
    switch (e->pooling) {
    case MODEL_POOL_MEAN: {
        for (int64_t i = 0; i < E; i++) dst[i] = 0.0f;
        const float inv = 1.0f / (float)n; /* llama.cpp weighs each row by 1/n, then sums */
        for (int32_t r = 0; r < n; r++)
            for (int64_t i = 0; i < E; i++) dst[i] += rows[r * E + i] * inv;
        break;
    }
    case MODEL_POOL_LAST:
        memcpy(dst, rows + (int64_t)(n - 1) * E, sizeof(float) * (size_t)E);
        break;
    default: /* CLS, RANK: the first token */ memcpy(dst, rows, sizeof(float) * (size_t)E); break;
    }
}

static void finish(const engine_embedder *e, const float *v, const engine_embed_opts *o,
                   float *dst) {
    int32_t d = e->dim;
    if (e->pooling != MODEL_POOL_RANK && o->dimensions > 0 && o->dimensions < d) d = o->dimensions;
    double ss = 0.0;
    for (int32_t i = 0; i < d; i++) ss += (double)v[i] * v[i];
    const bool norm = o->normalize && e->pooling != MODEL_POOL_RANK && ss > 0.0;
    const float scale = norm ? (float)(1.0 / sqrt(ss)) : 1.0f;
    for (int32_t i = 0; i < d; i++) dst[i] = v[i] * scale;
}

/* One step: inputs [i0, i1), each its own sequence from position 0. */
static shimmy_status run_step(engine_embedder *e, const int32_t *const *tokens,
                              const int32_t *n_tokens, int32_t i0, int32_t i1,
                              const engine_embed_opts *o, float *out, int32_t out_dim,
                              shimmy_error *err) {
    const int64_t E = e->m->hp.n_embd;
    const bool all_rows = e->pooling == MODEL_POOL_MEAN;
    int32_t n = 0;
    for (int32_t i = i0; i < i1; i++) {
        const int32_t s = i - i0;
        model_ctx_seq_truncate(e->ctx, s, 0);
        for (int32_t t = 0; t < n_tokens[i]; t++, n++) {
            e->tok[n] = tokens[i][t];
            e->seq[n] = s;
            const bool cls = t == 0, last = t == n_tokens[i] - 1;
            e->want[n] = all_rows || (e->pooling == MODEL_POOL_LAST ? last : cls);
        }
    }
    const model_batch b = {.n = n, .token = e->tok, .seq = e->seq, .logits = e->want};
    if (e->lock) pthread_mutex_lock(e->lock);
    shimmy_status st = model_ctx_decode(e->ctx, &b, err);
    if (!st) {
        int32_t row = 0;
        for (int32_t i = i0; i < i1; i++) {
            const int32_t rows = all_rows ? n_tokens[i] : 1;
            pool_rows(e, model_ctx_embedding(e->ctx, row), rows, e->pooled + (int64_t)(i - i0) * E);
            row += rows;
        }
    }
    const float *res = e->pooled;
    int64_t stride = E;
    if (!st && e->pooling == MODEL_POOL_RANK) {
        st = model_ctx_classify(e->ctx, e->pooled, i1 - i0, e->scores, err);
        res = e->scores;
        stride = e->dim;
    }
    if (!st)
        for (int32_t i = i0; i < i1; i++)
            finish(e, res + (int64_t)(i - i0) * stride, o, out + (int64_t)i * out_dim);
    if (e->lock) pthread_mutex_unlock(e->lock);
    return st;
}

shimmy_status engine_embed_run(engine_embedder *e, const int32_t *const *tokens,
                               const int32_t *n_tokens, int32_t n, const engine_embed_opts *o,
                               float *out, shimmy_error *err) {
    const engine_embed_opts dflt = {.normalize = true};
    if (!o) o = &dflt;
    const int32_t n_vocab = e->m->hp.n_vocab;
    for (int32_t i = 0; i < n; i++) {
        if (n_tokens[i] < 1 || n_tokens[i] > e->n_ctx)
            return core_error(
                err, n_tokens[i] < 1 ? SHIMMY_ERR_INVALID_ARG : SHIMMY_ERR_CONTEXT_EXCEEDED,
                "input", "input %d has %d tokens; the model takes 1 .. %d", i, n_tokens[i],
                e->n_ctx);
        for (int32_t t = 0; t < n_tokens[i]; t++)
            if (tokens[i][t] < 0 || tokens[i][t] >= n_vocab)
                return core_error(err, SHIMMY_ERR_INVALID_ARG, "input",
                                  "input %d: token id %d is outside the vocabulary (0 .. %d)", i,
                                  tokens[i][t], n_vocab - 1);
    }
    int32_t out_dim = e->dim;
    if (e->pooling != MODEL_POOL_RANK && o->dimensions > 0 && o->dimensions < out_dim)
        out_dim = o->dimensions;
    /* whole inputs, in order, as many as the step's sequences and tokens hold */
    for (int32_t i0 = 0; i0 < n;) {
        int32_t i1 = i0, used = 0;
        while (i1 < n && i1 - i0 < e->n_seq && used + n_tokens[i1] <= e->n_batch)
            used += n_tokens[i1++];
        shimmy_status st = run_step(e, tokens, n_tokens, i0, i1, o, out, out_dim, err);
        if (st) return st;
        i0 = i1;
    }
    return SHIMMY_OK;
}
