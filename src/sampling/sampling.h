/*
 * sampling — turning a logit vector into the next token.
 *
 * A sampler is a vtable (apply to a candidate list, accept the chosen token, reset, free); a
 * chain is itself a sampler that applies its members in order and then picks a token. The
 * standard chain built from sampling_params follows llama.cpp's default order:
 *   logit bias -> penalties (repeat/frequency/presence over the last N tokens) -> top-k ->
 *   top-p -> min-p -> temperature -> pick (seeded random draw, or argmax when temperature <= 0).
 * Greedy (argmax) breaks ties towards the lowest token id.
 *
 * Invariants: all memory (candidate list, penalty window) is allocated when the sampler is
 * created; sampling a token allocates nothing. The same seed and the same logits give the same
 * tokens on every machine (xoshiro256** seeded by splitmix64, no libc rand).
 *
 * Ownership: sampler_chain_new/sampler_new_* return owned samplers that sampler_free frees;
 * sampler_chain_add takes ownership of the member. sampler_free(NULL) is a no-op.
 * Thread-safety: a sampler has mutable state (RNG, window); use it from one thread at a time.
 */
#ifndef SHIMMY_SAMPLING_H
#define SHIMMY_SAMPLING_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAMPLING_SEED_RANDOM 0xFFFFFFFFu /* llama.cpp's convention: seed from the clock */

typedef struct sampling_logit_bias {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
} sampling_logit_bias;

typedef struct sampling_params {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    float frequency_penalty; /* 0: off */
    float presence_penalty;  /* 0: off */
    int32_t penalty_last_n;  /* window of past tokens the penalties see (0: off; the engine
                                turns -1 into its context size) */
    uint32_t seed;           /* SAMPLING_SEED_RANDOM: from the clock */
    const sampling_logit_bias *logit_bias; /* borrowed during sampler_chain_new (copied) */
    size_t n_logit_bias;
} sampling_params;

/* llama.cpp's defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat 1.0, last_n 64. */
void sampling_params_default(sampling_params *p);
/* Checks ranges (temperature >= 0, top_p in [0,1], ...); errors name the field. */
shimmy_status sampling_params_check(const sampling_params *p, int32_t n_vocab, shimmy_error *err);

/* A candidate token. */
typedef struct sampling_cand {
    int32_t id;
    float logit;
    float p; /* filled by samplers that need probabilities */
} sampling_cand;

/* The working set a chain transforms. `sorted`: descending by logit. */
typedef struct sampling_cands {
    sampling_cand *data; /* owned by the chain, capacity n_vocab */
    size_t size;
    bool sorted;
    int32_t selected; /* index into data chosen by a picking sampler, -1 before */
} sampling_cands;

typedef struct sampler sampler;

typedef struct sampler_vtable {
    const char *name;
    void (*apply)(sampler *s, sampling_cands *c);
    void (*accept)(sampler *s, int32_t token); /* may be NULL */
    void (*reset)(sampler *s);                 /* may be NULL */
    void (*free_state)(sampler *s);            /* may be NULL */
} sampler_vtable;

struct sampler {
    const sampler_vtable *vt;
    void *state;
};

/* The standard chain for p over a vocabulary of n_vocab tokens. */
shimmy_status sampler_chain_new(const sampling_params *p, int32_t n_vocab, sampler **out,
                                shimmy_error *err);
/* An empty chain; members are added with sampler_chain_add. Without a picking member (greedy,
 * dist) the chain picks the remaining candidate with the highest logit. */
shimmy_status sampler_chain_new_empty(int32_t n_vocab, sampler **out, shimmy_error *err);
/* Appends s (ownership moves to the chain, also on failure). */
shimmy_status sampler_chain_add(sampler *chain, sampler *s, shimmy_error *err);

/* Individual samplers (each returns NULL when out of memory). */
sampler *sampler_new_greedy(void);
sampler *sampler_new_dist(uint32_t seed);
sampler *sampler_new_temp(float t);
sampler *sampler_new_top_k(int32_t k);
sampler *sampler_new_top_p(float p);
sampler *sampler_new_min_p(float p);
sampler *sampler_new_penalties(int32_t last_n, float repeat, float freq, float presence,
                               int32_t n_vocab);
sampler *sampler_new_logit_bias(const sampling_logit_bias *b, size_t n, int32_t n_vocab);

/* Chooses the next token from logits (n_vocab floats, not modified) with a chain made by
 * sampler_chain_new or sampler_chain_new_empty. Does not accept it. */
int32_t sampler_sample(sampler *chain, const float *logits);
/* The same over the tokens whose bit is set in allowed (bit t of allowed[t / 64]): the chain's
 * samplers see only those candidates (a grammar's mask). -1 when no token is allowed. */
int32_t sampler_sample_masked(sampler *chain, const float *logits, const uint64_t *allowed);
/* Tells the samplers a token was appended (prompt tokens too, for penalties). */
void sampler_accept(sampler *s, int32_t token);
/* Forgets history and reseeds with the original seed. */
void sampler_reset(sampler *s);
void sampler_free(sampler *s);

/* Applies a single sampler to c (for tests and custom chains). */
void sampler_apply(sampler *s, sampling_cands *c);

/* argmax of logits[0..n), ties to the lowest index. */
int32_t sampling_argmax(const float *logits, int32_t n);

#endif
