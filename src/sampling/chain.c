/* The sampler chain (itself a sampler), the standard chain built from sampling_params, and the
 * parameter checks. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct chain_state {
    sampler **members; /* owned */
    size_t n, cap;
    sampling_cands cands; /* data owned, capacity n_vocab */
    int32_t n_vocab;
} chain_state;

static void chain_apply(sampler *s, sampling_cands *c) {
    chain_state *ch = s->state;
    for (size_t i = 0; i < ch->n; i++) {
        c->selected = -1;
        ch->members[i]->vt->apply(ch->members[i], c);
    }
}

static void chain_accept(sampler *s, int32_t token) {
    chain_state *ch = s->state;
    for (size_t i = 0; i < ch->n; i++) sampler_accept(ch->members[i], token);
}

static void chain_reset(sampler *s) {
    chain_state *ch = s->state;
    for (size_t i = 0; i < ch->n; i++) sampler_reset(ch->members[i]);
}

static void chain_free(sampler *s) {
    chain_state *ch = s->state;
    if (!ch) return;
    for (size_t i = 0; i < ch->n; i++) sampler_free(ch->members[i]);
    free(ch->members);
    free(ch->cands.data);
    free(ch);
}

static const sampler_vtable chain_vt = {"chain", chain_apply, chain_accept, chain_reset,
                                        chain_free};

shimmy_status sampler_chain_new_empty(int32_t n_vocab, sampler **out, shimmy_error *err) {
    *out = NULL;
    if (n_vocab <= 0)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_vocab", "vocabulary size %d", n_vocab);
    chain_state *ch = core_calloc(1, sizeof *ch);
    sampler *s = core_malloc(sizeof *s);
    if (ch) ch->cands.data = core_malloc(sizeof *ch->cands.data * (size_t)n_vocab);
    if (!ch || !s || !ch->cands.data) {
        if (ch) free(ch->cands.data);
        free(ch);
        free(s);
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a sampler");
    }
    ch->n_vocab = n_vocab;
    s->vt = &chain_vt;
    s->state = ch;
    *out = s;
    return SHIMMY_OK;
}

shimmy_status sampler_chain_add(sampler *chain, sampler *s, shimmy_error *err) {
    if (!s) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a sampler");
    chain_state *ch = chain->state;
    if (ch->n == ch->cap) {
        size_t cap = ch->cap ? ch->cap * 2 : 8;
        sampler **m = core_realloc(ch->members, cap * sizeof *m);
        if (!m) {
            sampler_free(s);
            return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a sampler");
        }
        ch->members = m;
        ch->cap = cap;
    }
    ch->members[ch->n++] = s;
    return SHIMMY_OK;
}

void sampling_params_default(sampling_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->penalty_last_n = 64;
    p->seed = SAMPLING_SEED_RANDOM;
}

shimmy_status sampling_params_check(const sampling_params *p, int32_t n_vocab, shimmy_error *err) {
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "temperature",
                          "temperature must be a finite number >= 0");
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "top_p", "top_p must be in [0, 1]");
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "min_p", "min_p must be in [0, 1]");
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "repeat_penalty",
                          "repeat_penalty must be a finite number > 0");
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "frequency_penalty",
                          "frequency and presence penalties must be finite");
    if (p->penalty_last_n < -1)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "penalty_last_n",
                          "penalty_last_n must be -1 (whole context), 0 (off) or a window size");
    if (p->n_logit_bias && !p->logit_bias)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias", "logit_bias list is NULL");
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                              "logit_bias token %d is outside the vocabulary (0 .. %d)",
                              p->logit_bias[i].token, n_vocab - 1);
        if (isnan(p->logit_bias[i].bias) || p->logit_bias[i].bias == INFINITY)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "logit_bias",
                              "logit_bias of token %d must be a number or -inf",
                              p->logit_bias[i].token);
    }
    return SHIMMY_OK;
}

/* A window of -1 reaching sampler_chain_new (outside the engine) covers the largest context a
 * model is likely to use. */
#define PENALTY_WINDOW_ALL 32768

shimmy_status sampler_chain_new(const sampling_params *p, int32_t n_vocab, sampler **out,
                                shimmy_error *err) {
    *out = NULL;
    shimmy_status st = sampling_params_check(p, n_vocab, err);
    if (st) return st;
    sampler *c;
    if ((st = sampler_chain_new_empty(n_vocab, &c, err))) return st;
    const bool penalize =
        p->penalty_last_n != 0 &&
        (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
    const int32_t window = p->penalty_last_n < 0 ? PENALTY_WINDOW_ALL : p->penalty_last_n;
    if (p->n_logit_bias)
        st = sampler_chain_add(c, sampler_new_logit_bias(p->logit_bias, p->n_logit_bias, n_vocab),
                               err);
    if (!st && penalize)
        st =
            sampler_chain_add(c,
                              sampler_new_penalties(window, p->repeat_penalty, p->frequency_penalty,
                                                    p->presence_penalty, n_vocab),
                              err);
    if (!st && p->temperature <= 0.0f) {
        st = sampler_chain_add(c, sampler_new_greedy(), err);
    } else if (!st) {
        if (!st && p->top_k > 0) st = sampler_chain_add(c, sampler_new_top_k(p->top_k), err);
        if (!st && p->top_p < 1.0f) st = sampler_chain_add(c, sampler_new_top_p(p->top_p), err);
        if (!st && p->min_p > 0.0f) st = sampler_chain_add(c, sampler_new_min_p(p->min_p), err);
        if (!st) st = sampler_chain_add(c, sampler_new_temp(p->temperature), err);
        if (!st) st = sampler_chain_add(c, sampler_new_dist(p->seed), err);
    }
    if (st) {
        sampler_free(c);
        return st;
    }
    *out = c;
    return SHIMMY_OK;
}

int32_t sampler_sample(sampler *s, const float *logits) {
    chain_state *ch = s->state;
    sampling_cands *c = &ch->cands;
    for (int32_t i = 0; i < ch->n_vocab; i++) {
        c->data[i].id = i;
        c->data[i].logit = logits[i];
        c->data[i].p = 0.0f;
    }
    c->size = (size_t)ch->n_vocab;
    c->sorted = false;
    c->selected = -1;
    chain_apply(s, c);
    if (c->size == 0) return sampling_argmax(logits, ch->n_vocab);
    if (c->selected >= 0 && (size_t)c->selected < c->size) return c->data[c->selected].id;
    size_t best = 0;
    for (size_t i = 1; i < c->size; i++)
        if (c->data[i].logit > c->data[best].logit ||
            (c->data[i].logit == c->data[best].logit && c->data[i].id < c->data[best].id))
            best = i;
    return c->data[best].id;
}

int32_t sampler_sample_masked(sampler *s, const float *logits, const uint64_t *allowed) {
    chain_state *ch = s->state;
    sampling_cands *c = &ch->cands;
    size_t n = 0;
    for (int32_t i = 0; i < ch->n_vocab; i++)
        if ((allowed[i >> 6] >> (i & 63)) & 1) c->data[n++] = (sampling_cand){i, logits[i], 0.0f};
    if (n == 0) return -1;
    c->size = n;
    c->sorted = false;
    c->selected = -1;
    chain_apply(s, c);
    if (c->selected >= 0 && (size_t)c->selected < c->size) return c->data[c->selected].id;
    /* no picking member, or every candidate filtered: the best allowed logit (lowest id on ties) */
    const size_t m = c->size ? c->size : n;
    if (!c->size) /* the filters emptied the list: start again from the allowed set */
        for (int32_t i = 0, k = 0; i < ch->n_vocab; i++)
            if ((allowed[i >> 6] >> (i & 63)) & 1) c->data[k++] = (sampling_cand){i, logits[i], 0};
    size_t best = 0;
    for (size_t i = 1; i < m; i++)
        if (c->data[i].logit > c->data[best].logit ||
            (c->data[i].logit == c->data[best].logit && c->data[i].id < c->data[best].id))
            best = i;
    return c->data[best].id;
}

void sampler_accept(sampler *s, int32_t token) {
    if (s->vt->accept) s->vt->accept(s, token);
}

void sampler_reset(sampler *s) {
    if (s->vt->reset) s->vt->reset(s);
}

void sampler_free(sampler *s) {
    if (!s) return;
    if (s->vt->free_state) s->vt->free_state(s);
    free(s);
}

void sampler_apply(sampler *s, sampling_cands *c) {
    s->vt->apply(s, c);
}

int32_t sampling_argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}
