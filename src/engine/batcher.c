/* The batcher: many sessions of one model decoding in shared forward steps (continuous
 * batching). One model_ctx holds a sequence per attached session; each session's thread runs its
 * own generation loop (sampling, grammar, detokenizing, stop strings) and hands its forward steps
 * to the batcher's thread, which runs whatever sessions have handed in as one
 * model_ctx_decode, so that each weight row is read once per step for all of them.
 *
 * Gathering: a step starts when every session that took part in the previous step has handed in
 * its next one (they come back after sampling, well under a millisecond), or GATHER_US after
 * the first hand-in; a session that is slow (a grammar mask, a client) misses one step, not the
 * others' tokens. Sessions with different adapters share steps too (each entry adds its own
 * set's low-rank terms). Prompts come in chunks (the session's n_batch,
 * engine_batcher_params.n_chunk), and a step takes whole chunks while its token budget lasts, so a
 * long prompt shares steps with the running streams instead of stalling them.
 *
 * Determinism: a session's logits depend only on its own tokens: model_ctx_decode computes a
 * sequence's rows the same way whatever shares the step (tests/model/test_batch.c), and chunk
 * boundaries are the session's own. */
#include "engine.h"
#include "lora/lora.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GATHER_US 1000

typedef struct batch_seq batch_seq;

struct engine_batcher {
    const model *w;
    model_ctx *ctx;
    int32_t n_seq, n_ctx, n_chunk, n_batch, n_vocab;
    int32_t n_all;                 /* sequences: n_seq for sessions + the cache's spares */
    uint64_t cache_bytes;          /* budget of the caches detached sequences keep */
    uint64_t pos_bytes;            /* cache bytes of one position */
    pthread_mutex_t *compute_lock; /* borrowed or NULL */
    core_pool *pool;               /* borrowed: the context's */
    pthread_mutex_t step_mu; /* held around each step: adapters' scratch changes between steps */
    pthread_mutex_t mu;
    pthread_cond_t work; /* a hand-in arrived, or stop */
    pthread_cond_t done; /* a step finished */
    pthread_t thread;
    bool thread_started, stop;
    batch_seq *seqs;   /* (n_seq) */
    batch_seq **queue; /* (n_seq) hand-ins in arrival order */
    int32_t n_queued;
    int32_t *tok, *seqv;          /* (n_batch) the step's entries */
    uint8_t *want;                /* (n_batch) */
    const struct lora_set **lora; /* (n_batch) the entries' adapters */
    batch_seq **took;             /* (n_seq) the step's sessions, in entry order */
    engine_batcher_stats stats;
};

struct batch_seq {
    engine_batcher *b;
    int32_t id;
    bool attached;
    bool in_last;  /* took part in the last step: the next gather waits for it */
    int32_t *hist; /* (n_ctx) the tokens whose cache the sequence holds, n_hist of them */
    int32_t n_hist;
    double used;   /* when it was last detached (LRU order of the caches) */
    float *logits; /* (n_vocab) of its last step, when it asked */
    int32_t n_logits_last;
    const struct lora_set *lora; /* its adapters (borrowed), or NULL */
    bool lora_used;              /* its cache was made with adapters since it was attached */
    /* the hand-in */
    const int32_t *tok;
    int32_t n, n_logits;
    bool queued, finished;
    shimmy_status st;
    shimmy_error err;
};

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static struct timespec deadline_in(double us) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const long long ns = (long long)ts.tv_nsec + (long long)(us * 1e3);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

/* Under mu: every session that was in the last step has handed in again. */
static bool cohort_back(const engine_batcher *b) {
    for (int32_t i = 0; i < b->n_all; i++) {
        const batch_seq *q = &b->seqs[i];
        if (q->attached && q->in_last && !q->queued) return false;
    }
    return true;
}

/* Under mu: moves the hand-ins that fit the token budget into the step's entries, in arrival
 * order (a chunk that does not fit waits for the next step; the first always fits). */
static int32_t take(engine_batcher *b, int32_t *n_took, bool *any_lora) {
    int32_t n = 0, k = 0, kept = 0;
    *any_lora = false;
    for (int32_t i = 0; i < b->n_all; i++) b->seqs[i].in_last = false;
    for (int32_t i = 0; i < b->n_queued; i++) {
        batch_seq *q = b->queue[i];
        if (n + q->n > b->n_batch) {
            b->queue[kept++] = q;
            continue;
        }
        for (int32_t t = 0; t < q->n; t++) {
            b->tok[n + t] = q->tok[t];
            b->seqv[n + t] = q->id;
            b->want[n + t] = t >= q->n - q->n_logits;
            b->lora[n + t] = q->lora;
        }
        *any_lora |= q->lora != NULL;
        n += q->n;
        q->in_last = true;
        b->took[k++] = q;
    }
    b->n_queued = kept;
    *n_took = k;
    return n;
}

static void *batcher_main(void *arg) {
    engine_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stop && b->n_queued == 0) pthread_cond_wait(&b->work, &b->mu);
        if (b->stop) break;
        const struct timespec dl = deadline_in(GATHER_US);
        while (!b->stop && !cohort_back(b))
            if (pthread_cond_timedwait(&b->work, &b->mu, &dl) == ETIMEDOUT) break;
        if (b->stop) break;
        int32_t n_took = 0;
        bool any_lora;
        const int32_t n = take(b, &n_took, &any_lora);
        pthread_mutex_unlock(&b->mu);

        const double t0 = now_us();
        shimmy_error err;
        /* sessions with different adapters share the step: each entry adds its own set's
         * low-rank terms to the one base product of every row */
        const model_batch mb = {.n = n,
                                .token = b->tok,
                                .seq = b->seqv,
                                .logits = b->want,
                                .lora = any_lora ? b->lora : NULL};
        pthread_mutex_lock(&b->step_mu);
        if (b->compute_lock) pthread_mutex_lock(b->compute_lock);
        shimmy_status st = model_ctx_decode(b->ctx, &mb, &err);
        /* the sessions now sample on their own threads: with more of them than one, the pool's
         * workers would spin through that gap on the cores those threads need */
        if (n_took > 1) core_pool_rest(b->pool);
        if (b->compute_lock) pthread_mutex_unlock(b->compute_lock);
        pthread_mutex_unlock(&b->step_mu);
        /* logits come back in entry order, one per session that asked */
        int32_t row = 0;
        for (int32_t k = 0; k < n_took; k++) {
            batch_seq *q = b->took[k];
            q->n_logits_last = 0;
            if (!st && q->n_logits) {
                memcpy(q->logits, model_ctx_logits(b->ctx, row++),
                       sizeof(float) * (size_t)b->n_vocab);
                q->n_logits_last = 1;
            }
        }
        const double dt = now_us() - t0;

        pthread_mutex_lock(&b->mu);
        for (int32_t k = 0; k < n_took; k++) {
            batch_seq *q = b->took[k];
            if (!st) { /* the history follows the cache */
                memcpy(q->hist + q->n_hist, q->tok, sizeof *q->tok * (size_t)q->n);
                q->n_hist += q->n;
            }
            q->st = st;
            if (st) q->err = err;
            q->queued = false;
            q->finished = true;
        }
        b->stats.steps++;
        b->stats.entries += (uint64_t)n;
        b->stats.sequences += (uint64_t)n_took;
        b->stats.last_batch = n_took;
        if (n_took > b->stats.max_batch) b->stats.max_batch = n_took;
        b->stats.busy_ms += dt / 1e3;
        pthread_cond_broadcast(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

shimmy_status engine_batcher_new(const engine_model *m, const engine_batcher_params *p,
                                 engine_batcher **out, shimmy_error *err) {
    *out = NULL;
    if (p->n_seq < 1 || p->n_seq > 256 || p->n_ctx < 1 || p->n_chunk < 0 || p->n_cache < 0 ||
        p->n_cache > 256)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "parallel",
                          "a batcher needs 1 .. 256 sequences and a context of at least 1");
    engine_batcher *b = core_calloc(1, sizeof *b);
    if (!b) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a batcher");
    b->w = engine_model_weights(m);
    b->n_seq = p->n_seq;
    b->n_ctx = p->n_ctx;
    b->n_chunk = p->n_chunk ? p->n_chunk : 256;
    if (b->n_chunk > b->n_ctx) b->n_chunk = b->n_ctx;
    /* room for one chunk besides every other session's decode token */
    b->n_batch = b->n_chunk + b->n_seq - 1;
    b->n_all = b->n_seq + p->n_cache;
    b->cache_bytes = p->cache_bytes;
    const model_hparams *hp = &b->w->hp;
    b->pos_bytes = (uint64_t)hp->n_layer * (uint64_t)hp->n_head_kv *
                   (uint64_t)(hp->head_dim + hp->head_dim_v) *
                   (p->kv_type == MODEL_KV_F32 ? 4u : 2u);
    b->n_vocab = b->w->hp.n_vocab;
    b->compute_lock = p->compute_lock;
    b->pool = p->pool;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->step_mu, NULL);
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->done, NULL);
    model_ctx_params cp = {.n_ctx = b->n_ctx,
                           .n_seq = b->n_all,
                           .n_batch = b->n_batch,
                           .n_logits = b->n_seq,
                           .kv_type = p->kv_type,
                           .pool = p->pool,
                           .device = engine_model_device(m)};
    shimmy_status st = model_ctx_new(b->w, &cp, &b->ctx, err);
    if (!st) {
        b->seqs = core_calloc((size_t)b->n_all, sizeof *b->seqs);
        b->queue = core_calloc((size_t)b->n_all, sizeof *b->queue);
        b->took = core_calloc((size_t)b->n_all, sizeof *b->took);
        b->tok = core_calloc((size_t)b->n_batch * 2, sizeof *b->tok);
        b->want = core_calloc((size_t)b->n_batch, 1);
        b->lora = core_calloc((size_t)b->n_batch, sizeof *b->lora);
        if (!b->seqs || !b->queue || !b->took || !b->tok || !b->want || !b->lora)
            st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a batcher");
        else
            b->seqv = b->tok + b->n_batch;
    }
    for (int32_t i = 0; !st && i < b->n_all; i++) {
        b->seqs[i].b = b;
        b->seqs[i].id = i;
        b->seqs[i].logits = core_malloc(sizeof(float) * (size_t)b->n_vocab);
        b->seqs[i].hist = core_malloc(sizeof(int32_t) * (size_t)b->n_ctx);
        if (!b->seqs[i].logits || !b->seqs[i].hist)
            st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a batcher");
    }
    if (!st) {
        if (pthread_create(&b->thread, NULL, batcher_main, b))
            st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot start the batcher thread");
        else
            b->thread_started = true;
    }
    if (st) {
        engine_batcher_free(b);
        return st;
    }
    *out = b;
    return SHIMMY_OK;
}

void engine_batcher_free(engine_batcher *b) {
    if (!b) return;
    if (b->thread_started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_broadcast(&b->work);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    for (int32_t i = 0; b->seqs && i < b->n_all; i++) {
        free(b->seqs[i].logits);
        free(b->seqs[i].hist);
    }
    free(b->seqs);
    free(b->queue);
    free(b->took);
    free(b->tok);
    free(b->want);
    free(b->lora);
    model_ctx_free(b->ctx);
    pthread_mutex_destroy(&b->step_mu);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->done);
    free(b);
}

void engine_batcher_get_stats(engine_batcher *b, engine_batcher_stats *out) {
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    out->queued = b->n_queued;
    out->attached = 0;
    out->cached_seqs = 0;
    out->cached_tokens = 0;
    for (int32_t i = 0; i < b->n_all; i++) {
        const batch_seq *q = &b->seqs[i];
        out->attached += q->attached;
        if (!q->attached && q->n_hist)
            out->cached_seqs++, out->cached_tokens += (uint64_t)q->n_hist;
    }
    pthread_mutex_unlock(&b->mu);
}

int32_t engine_batcher_n_chunk(const engine_batcher *b) {
    return b->n_chunk;
}
int32_t engine_batcher_n_ctx(const engine_batcher *b) {
    return b->n_ctx;
}

/* ---- the backend a session of the batcher uses (engine_backend's contract) ---- */

/* A session gets an empty sequence, or else the one whose cache was used longest ago (its prompt
 * can still reuse any other sequence's cache: bs_reuse). */
shimmy_status engine_batcher_attach(engine_batcher *b, void **ctx, shimmy_error *err) {
    *ctx = NULL;
    pthread_mutex_lock(&b->step_mu);
    pthread_mutex_lock(&b->mu);
    batch_seq *pick = NULL;
    int32_t n_attached = 0;
    for (int32_t i = 0; i < b->n_all; i++) {
        batch_seq *q = &b->seqs[i];
        n_attached += q->attached;
        if (q->attached) continue;
        if (!pick || (pick->n_hist && (!q->n_hist || q->used < pick->used))) pick = q;
    }
    if (pick && n_attached < b->n_seq) {
        pick->attached = true;
        pick->in_last = false;
        pick->n_logits_last = 0;
        pick->lora = NULL;
        pick->lora_used = false;
        pick->n_hist = 0;
        model_ctx_seq_truncate(b->ctx, pick->id, 0);
        *ctx = pick;
    }
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&b->step_mu);
    if (!*ctx)
        return core_error(err, SHIMMY_ERR_BUSY, "parallel",
                          "all %d sequences of the batch are in use", b->n_seq);
    return SHIMMY_OK;
}

/* Under step_mu and mu: detached caches beyond the budget go, least recently used first. */
static void enforce_budget(engine_batcher *b) {
    for (;;) {
        uint64_t total = 0;
        batch_seq *lru = NULL;
        for (int32_t i = 0; i < b->n_all; i++) {
            batch_seq *q = &b->seqs[i];
            if (q->attached || !q->n_hist) continue;
            total += (uint64_t)q->n_hist * b->pos_bytes;
            if (!lru || q->used < lru->used) lru = q;
        }
        if (!lru || total <= b->cache_bytes) return;
        model_ctx_seq_release(b->ctx, lru->id);
        lru->n_hist = 0;
    }
}

static void bs_free(void *ctx) {
    batch_seq *q = ctx;
    engine_batcher *b = q->b;
    pthread_mutex_lock(&b->step_mu);
    pthread_mutex_lock(&b->mu);
    q->attached = false;
    q->in_last = false;
    q->lora = NULL;
    if (q->lora_used) { /* K/V made with adapters are no use to another session */
        model_ctx_seq_truncate(b->ctx, q->id, 0);
        q->n_hist = 0;
    }
    q->lora_used = false;
    q->used = now_us();
    enforce_budget(b);
    pthread_cond_broadcast(&b->work); /* a gather may be waiting for it */
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&b->step_mu);
}

/* The longest prefix of tokens[0..n) that another sequence's cache holds, copied into this one
 * when it beats the `have` positions the session kept itself. Caches made with adapters are
 * not shared (their K/V belong to those weights). */
static int32_t bs_reuse(void *ctx, const int32_t *tokens, int32_t n, int32_t have) {
    batch_seq *q = ctx;
    engine_batcher *b = q->b;
    if (q->lora) return have;
    pthread_mutex_lock(&b->step_mu);
    pthread_mutex_lock(&b->mu);
    batch_seq *best = NULL;
    int32_t best_n = have;
    for (int32_t i = 0; i < b->n_all; i++) {
        batch_seq *o = &b->seqs[i];
        if (o == q || o->lora_used || o->n_hist <= best_n) continue;
        const int32_t lim = o->n_hist < n ? o->n_hist : n;
        int32_t k = 0;
        while (k < lim && o->hist[k] == tokens[k]) k++;
        if (k > best_n) best = o, best_n = k;
    }
    int32_t got = have;
    if (best && model_ctx_seq_copy(b->ctx, q->id, best->id, best_n) == best_n) {
        memcpy(q->hist, tokens, sizeof *tokens * (size_t)best_n);
        q->n_hist = best_n;
        b->stats.reused_tokens += (uint64_t)(best_n - have);
        got = best_n;
    }
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&b->step_mu);
    return got;
}

static shimmy_status bs_eval(void *ctx, const int32_t *tokens, int32_t n, int32_t n_logits,
                             shimmy_error *err) {
    batch_seq *q = ctx;
    engine_batcher *b = q->b;
    if (n < 1 || n > b->n_chunk)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_tokens",
                          "%d tokens in one step; a batched session takes 1 .. %d", n, b->n_chunk);
    if (n_logits < 0 || n_logits > 1)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_logits",
                          "a batched session returns the logits of one position per step");
    pthread_mutex_lock(&b->mu);
    q->tok = tokens;
    q->n = n;
    q->n_logits = n_logits;
    q->finished = false;
    q->queued = true;
    b->queue[b->n_queued++] = q;
    pthread_cond_signal(&b->work);
    while (!q->finished) pthread_cond_wait(&b->done, &b->mu);
    const shimmy_status st = q->st;
    if (st) *err = q->err;
    pthread_mutex_unlock(&b->mu);
    return st;
}

static const float *bs_logits(const void *ctx, int32_t i) {
    const batch_seq *q = ctx;
    return i == 0 && q->n_logits_last ? q->logits : NULL;
}

/* Between this session's own steps no step touches its sequence, so its cells are its own. */
static int32_t bs_truncate(void *ctx, int32_t n_keep) {
    batch_seq *q = ctx;
    pthread_mutex_lock(&q->b->mu);
    const int32_t kept = model_ctx_seq_truncate(q->b->ctx, q->id, n_keep);
    if (kept < q->n_hist) q->n_hist = kept;
    pthread_mutex_unlock(&q->b->mu);
    return kept;
}

static int32_t bs_n_past(const void *ctx) {
    const batch_seq *q = ctx;
    return model_ctx_seq_n_past(q->b->ctx, q->id);
}

/* The set's scratch is reserved between steps; from the next step on its entries carry it. */
static shimmy_status bs_set_lora(void *ctx, const struct lora_set *set, shimmy_error *err) {
    batch_seq *q = ctx;
    if (set && lora_set_count(set) == 0) set = NULL;
    pthread_mutex_lock(&q->b->step_mu);
    shimmy_status st = model_ctx_lora_reserve(q->b->ctx, set, err);
    pthread_mutex_unlock(&q->b->step_mu);
    q->lora = st ? NULL : set;
    if (q->lora) q->lora_used = true;
    return st;
}

const engine_backend engine_backend_batched = {
    .name = "cpu-batched",
    .ctx_free = bs_free,
    .eval = bs_eval,
    .logits = bs_logits,
    .truncate = bs_truncate,
    .reuse = bs_reuse,
    .n_past = bs_n_past,
    .set_lora = bs_set_lora,
};
