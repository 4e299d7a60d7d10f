/* Batches: the public face of the engine's batcher (continuous batching). A batch belongs to one
 * model's weights and one thread pool; sessions join it through shimmy_session_options.batch. */
#include "api.h"

#include <stdlib.h>

shimmy_status shimmy_batch_new(shimmy_model *m, const shimmy_batch_options *o, shimmy_batch **out,
                               shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!m) return core_error(err, SHIMMY_ERR_INVALID_ARG, "model", "the model is NULL");
    if (!o || !o->pool)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "pool",
                          "a batch needs a thread pool (shimmy_threadpool_new)");
    api_problems p = {0};
    api_check_range(&p, "ctx_len", o->ctx_len, 1048576);
    api_check_range(&p, "chunk", o->chunk, 4096);
    api_check_range(&p, "cache_slots", o->cache_slots, 256);
    api_check_range(&p, "cache_mib", o->cache_mib, 1048576);
    shimmy_status st = api_problems_report(&p, err);
    if (st) return st;
    if (o->slots < 1 || o->slots > 256)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "slots", "%d is outside [1, 256]",
                          (int)o->slots);
    shimmy_batch *b = core_calloc(1, sizeof *b);
    if (!b) return core_error(err, SHIMMY_ERR_NOMEM, "batch", "out of memory");
    engine_batcher_params bp = {.n_seq = o->slots,
                                .n_ctx = o->ctx_len ? o->ctx_len : m->n_ctx,
                                .n_chunk = o->chunk,
                                .n_cache = o->cache_slots,
                                .cache_bytes = (uint64_t)o->cache_mib << 20,
                                .pool = o->pool->pool,
                                .compute_lock = &o->pool->compute_lock};
    st = engine_batcher_new(m->em, &bp, &b->b, err);
    if (st) {
        free(b);
        return st;
    }
    b->m = shimmy_model_ref(m);
    b->pool = o->pool;
    *out = b;
    return SHIMMY_OK;
}

void shimmy_batch_free(shimmy_batch *b) {
    if (!b) return;
    engine_batcher_free(b->b);
    shimmy_model_unref(b->m);
    free(b);
}

void shimmy_batch_get_stats(shimmy_batch *b, shimmy_batch_stats *out) {
    if (!out) return;
    *out = (shimmy_batch_stats){0};
    if (!b) return;
    engine_batcher_stats s;
    engine_batcher_get_stats(b->b, &s);
    *out = (shimmy_batch_stats){.steps = s.steps,
                                .tokens = s.entries,
                                .sequences = s.sequences,
                                .last_batch = s.last_batch,
                                .max_batch = s.max_batch,
                                .queued = s.queued,
                                .attached = s.attached,
                                .busy_ms = s.busy_ms,
                                .cached_seqs = s.cached_seqs,
                                .cached_tokens = s.cached_tokens,
                                .reused_tokens = s.reused_tokens};
}
