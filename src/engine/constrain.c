/* A generation's grammar constraint: sample first, check that one token, mask only on refusal
 * (see constrain.h). */
#include "constrain.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* Tokens a token completing grammar_after may be refused for before the generation gives up. */
#define MAX_AFTER_RETRIES 64

shimmy_status engine_constraint_init(engine_constraint *c, const engine_model *m,
                                     const engine_gen_params *gp, shimmy_error *err) {
    memset(c, 0, sizeof *c);
    if (!gp->grammar) return SHIMMY_OK;
    const grammar_vocab *gv;
    shimmy_status st = engine_model_grammar_vocab(m, &gv, err);
    if (st) return st;
    c->v = engine_model_vocab(m);
    c->n_vocab = tok_n_vocab(c->v);
    if ((st = grammar_matcher_acquire((grammar *)gp->grammar, gv, &c->m, err))) return st;
    c->mask = core_malloc(((size_t)c->n_vocab + 63) / 64 * sizeof *c->mask);
    c->max_piece = tok_max_piece(c->v) + 1;
    if (gp->grammar_after && *gp->grammar_after) {
        c->after = gp->grammar_after;
        c->after_len = strlen(c->after);
        c->tail = core_malloc(c->after_len + c->max_piece);
    }
    c->piece = core_malloc(c->max_piece);
    if (!c->mask || !c->piece || (c->after && !c->tail)) {
        engine_constraint_deinit(c);
        return core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory for the grammar");
    }
    return SHIMMY_OK;
}

void engine_constraint_deinit(engine_constraint *c) {
    grammar_matcher_release(c->m); /* warm for the next generation with this grammar */
    free(c->mask);
    free(c->tail);
    free(c->piece);
    memset(c, 0, sizeof *c);
}

bool engine_constraint_done(const engine_constraint *c) {
    return c->m && !c->after && grammar_matcher_is_done(c->m);
}

/* While grammar_after is awaited: tok's bytes appended to the recent text. Returns true when
 * tok may be taken (it does not complete the literal, or what follows the literal in it fits the
 * grammar, which then applies). */
static bool after_check(engine_constraint *c, int32_t tok, shimmy_error *err, shimmy_status *st) {
    if (tok_is_eog(c->v, tok)) return true;
    size_t n = tok_piece(c->v, tok, false, c->piece, c->max_piece);
    if (n > c->max_piece) n = 0;
    memcpy(c->tail + c->n_tail, c->piece, n);
    const size_t total = c->n_tail + n;
    const char *hit = memmem(c->tail, total, c->after, c->after_len);
    if (!hit) {
        /* keep only what could still begin the literal */
        const size_t keep = total < c->after_len - 1 ? total : c->after_len - 1;
        memmove(c->tail, c->tail + total - keep, keep);
        c->n_tail = keep;
        return true;
    }
    const size_t end = (size_t)(hit - c->tail) + c->after_len;
    if (!grammar_matcher_allows_bytes(c->m, c->tail + end, total - end)) return false;
    *st = grammar_matcher_accept_bytes(c->m, c->tail + end, total - end, err);
    c->after = NULL; /* from here on the grammar applies */
    return true;
}

static shimmy_status sample_after(engine_constraint *c, sampler *smp, const float *logits,
                                  int32_t *tok, shimmy_error *err) {
    shimmy_status st = SHIMMY_OK;
    int32_t t = sampler_sample(smp, logits);
    const size_t words = ((size_t)c->n_vocab + 63) / 64;
    for (int tries = 0; !after_check(c, t, err, &st); tries++) {
        /* t completes the literal but what follows it in t does not fit: ban t, sample again */
        if (tries == 0) {
            memset(c->mask, 0xFF, words * sizeof *c->mask);
            if (c->n_vocab % 64) c->mask[words - 1] = (1ull << (c->n_vocab % 64)) - 1;
        }
        c->mask[t >> 6] &= ~(1ull << (t & 63));
        if (tries == MAX_AFTER_RETRIES || (t = sampler_sample_masked(smp, logits, c->mask)) < 0)
            return core_error(err, SHIMMY_ERR_GENERATION, "grammar",
                              "the model keeps writing text after grammar_after that the grammar "
                              "does not allow");
    }
    *tok = t;
    return st;
}

shimmy_status engine_constraint_sample(engine_constraint *c, sampler *smp, const float *logits,
                                       int32_t *tok, shimmy_error *err) {
    if (!c->m) {
        *tok = sampler_sample(smp, logits);
        return SHIMMY_OK;
    }
    const double t0 = core_time_ms();
    shimmy_status st;
    if (c->after) {
        st = sample_after(c, smp, logits, tok, err);
        c->mask_ms += core_time_ms() - t0;
        return st;
    }
    int32_t t = sampler_sample(smp, logits);
    if (!grammar_matcher_allows_token(c->m, t)) {
        shimmy_error local = {0}, *e = err ? err : &local;
        const int64_t n = grammar_matcher_mask(c->m, c->mask, e);
        c->n_masks++;
        if (n < 0) return e->status ? e->status : SHIMMY_ERR_UNSUPPORTED;
        if (n == 0 || (t = sampler_sample_masked(smp, logits, c->mask)) < 0)
            return core_error(err, SHIMMY_ERR_GENERATION, "grammar",
                              "no token of this model's vocabulary can continue the grammar here");
    }
    st = grammar_matcher_accept_token(c->m, t, err);
    c->mask_ms += core_time_ms() - t0;
    *tok = t;
    return st;
}
