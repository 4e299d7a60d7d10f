/* Token records for engine_generate's piece callback: log-probabilities of the raw logits, and
 * the bookkeeping that hands each token over with the text that completes it. Text reaches the
 * caller later than tokens are sampled (the decoder holds a split UTF-8 character, the stop
 * matcher holds what may begin a stop string), so sampled tokens wait in a queue with their
 * byte range in the decoder's output until that much text has been handed over. */
#include "engine.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_START 512 /* pending tokens before the queue grows (a long held-back stop prefix) */

float engine_logprob(const float *logits, int32_t n_vocab, float *scratch, int32_t token,
                     int32_t n_top, shimmy_logprob *top) {
    /* log-sum-exp through the model's vectorised softmax (libm's exp per term cost 1-2 ms a
     * token on a 32k vocabulary): the most likely token's probability is 1 / sum(exp(l - max)),
     * and at least 1 / n_vocab, so its log loses nothing to underflow */
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = i;
    memcpy(scratch, logits, sizeof *scratch * (size_t)n_vocab);
    model_softmax(scratch, n_vocab);
    const double lse = (double)logits[best] - log((double)scratch[best]);
    /* Top n by insertion: ids in increasing order and strict comparisons keep the lower id
     * first among equals. */
    int32_t k = 0;
    for (int32_t i = 0; i < n_vocab && n_top > 0; i++) {
        const float l = logits[i];
        if (k == n_top && !(l > top[k - 1].logprob)) continue;
        int32_t at = k < n_top ? k++ : n_top - 1;
        while (at > 0 && l > top[at - 1].logprob) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = (shimmy_logprob){i, l};
    }
    for (int32_t i = 0; i < k; i++) top[i].logprob = (float)((double)top[i].logprob - lse);
    return (float)((double)logits[token] - lse);
}

shimmy_status engine_pieces_init(engine_pieces *p, const tok_vocab *v, int32_t n_vocab,
                                 const engine_gen_params *gp, void *user, size_t n_prompt,
                                 shimmy_error *err) {
    memset(p, 0, sizeof *p);
    p->v = v;
    p->n_vocab = n_vocab;
    p->n_probs = gp->n_probs < 0 ? -1 : gp->n_probs;
    if (p->n_probs > SHIMMY_MAX_TOP_LOGPROBS) p->n_probs = SHIMMY_MAX_TOP_LOGPROBS;
    if (p->n_probs > n_vocab) p->n_probs = n_vocab;
    p->fn = gp->piece;
    p->user = user;
    p->cap = QUEUE_START;
    p->max_piece = tok_max_piece(v);
    if (p->max_piece < 64) p->max_piece = 64;
    p->q = core_malloc(sizeof *p->q * p->cap);
    p->info = core_malloc(sizeof *p->info * p->cap);
    p->bytes = core_malloc(p->max_piece * p->cap);
    p->scratch = core_malloc(sizeof *p->scratch * (size_t)n_vocab);
    bool ok = p->q && p->info && p->bytes && p->scratch;
    if (ok && gp->prompt_probs && p->n_probs >= 0 && n_prompt > 0) {
        p->prompt_lp = core_calloc(n_prompt, sizeof *p->prompt_lp);
        p->prompt_top =
            core_calloc(n_prompt * (size_t)(p->n_probs ? p->n_probs : 1), sizeof *p->prompt_top);
        ok = p->prompt_lp && p->prompt_top;
    }
    if (!ok) {
        engine_pieces_deinit(p);
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory for token records");
    }
    return SHIMMY_OK;
}

void engine_pieces_deinit(engine_pieces *p) {
    free(p->q);
    free(p->info);
    free(p->bytes);
    free(p->prompt_lp);
    free(p->prompt_top);
    free(p->scratch);
    memset(p, 0, sizeof *p);
}

/* Room for n records in the hand-over scratch (prompts hand many over at once). */
static bool reserve(engine_pieces *p, size_t n) {
    if (n <= p->cap) return true;
    engine_pending *q = core_realloc(p->q, sizeof *q * n);
    if (q) p->q = q;
    shimmy_token_info *info = q ? core_realloc(p->info, sizeof *info * n) : NULL;
    if (info) p->info = info;
    char *bytes = info ? core_realloc(p->bytes, p->max_piece * n) : NULL;
    if (!bytes) return false;
    p->bytes = bytes;
    p->cap = n;
    return true;
}

static void fill(engine_pieces *p, size_t k, int32_t token, bool special) {
    char *b = p->bytes + k * p->max_piece;
    size_t n = tok_piece(p->v, token, special, b, p->max_piece);
    p->info[k] = (shimmy_token_info){
        .token = token, .bytes = b, .n_bytes = n < p->max_piece ? n : p->max_piece};
}

void engine_pieces_prompt_logits(engine_pieces *p, size_t i, const float *logits, int32_t token) {
    if (!p->prompt_lp) return;
    shimmy_logprob *top = p->prompt_top + i * (size_t)(p->n_probs ? p->n_probs : 1);
    p->prompt_lp[i] = engine_logprob(logits, p->n_vocab, p->scratch, token, p->n_probs, top);
}

bool engine_pieces_prompt_send(engine_pieces *p, const int32_t *prompt, size_t n) {
    if (!p->prompt_lp) return true;
    if (!reserve(p, n)) return true; /* no records rather than a failed generation */
    /* The space an SPM tokenizer puts before the text is not the caller's: dropped from the
     * first text token, as detokenizing does. */
    const size_t first = n > 1 && prompt[0] == tok_bos(p->v) ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        /* A prompt's control tokens are text the caller wrote (or BOS): show it. */
        fill(p, i, prompt[i], true);
        shimmy_token_info *t = &p->info[i];
        if (i == first && tok_add_space_prefix(p->v) && t->n_bytes && t->bytes[0] == ' ') {
            t->bytes++;
            t->n_bytes--;
        }
        t->prompt = true;
        t->has_logprob = i > 0;
        if (i > 0) {
            t->logprob = p->prompt_lp[i];
            t->top = p->prompt_top + i * (size_t)(p->n_probs ? p->n_probs : 1);
            t->n_top = (size_t)p->n_probs;
        }
    }
    return p->fn(p->user, "", 0, p->info, n);
}

bool engine_pieces_token(engine_pieces *p, int32_t token, const float *logits, size_t wrote,
                         bool complete) {
    if (p->head == p->n) p->head = p->n = 0;
    if (p->n == p->cap && !reserve(p, p->cap * 2)) return false;
    engine_pending *e = &p->q[p->n++];
    e->token = token;
    e->start = p->out;
    e->done = false;
    e->n_top = 0;
    e->logprob = 0.0f;
    if (p->n_probs >= 0) {
        e->logprob = engine_logprob(logits, p->n_vocab, p->scratch, token, p->n_probs, e->top);
        e->n_top = p->n_probs;
    }
    p->out += wrote;
    /* Bytes the decoder holds belong to this token and maybe earlier ones: they are complete
     * when nothing is held any more. */
    if (complete)
        for (size_t i = p->head; i < p->n; i++)
            if (!p->q[i].done) {
                p->q[i].done = true;
                p->q[i].end = p->out;
            }
    return true;
}

void engine_pieces_flush(engine_pieces *p, size_t wrote) {
    p->out += wrote;
    for (size_t i = p->head; i < p->n; i++)
        if (!p->q[i].done) {
            p->q[i].done = true;
            p->q[i].end = p->out;
        }
}

/* Fills the scratch with pending records [head, head + k) and drops them from the queue. */
static size_t take(engine_pieces *p, size_t k) {
    for (size_t i = 0; i < k; i++) {
        const engine_pending *e = &p->q[p->head + i];
        fill(p, i, e->token, false);
        shimmy_token_info *t = &p->info[i];
        t->has_logprob = p->n_probs >= 0;
        t->logprob = e->logprob;
        t->top = e->top;
        t->n_top = (size_t)e->n_top;
    }
    p->head += k;
    return k;
}

bool engine_pieces_emit(engine_pieces *p, const char *text, size_t len) {
    p->emitted += len;
    size_t k = 0;
    while (p->head + k < p->n && p->q[p->head + k].done && p->q[p->head + k].end <= p->emitted) k++;
    if (k == 0 && len == 0) return true;
    /* The records point into q until the call returns: take them, then hand over. */
    take(p, k);
    return p->fn(p->user, text, len, p->info, k);
}

void engine_pieces_end(engine_pieces *p) {
    size_t k = 0;
    while (p->head + k < p->n && p->q[p->head + k].start < p->emitted) k++;
    if (k) {
        take(p, k);
        p->fn(p->user, "", 0, p->info, k);
    }
    p->head = p->n = 0;
}
