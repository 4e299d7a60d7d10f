/* Internal to the engine: a generation's grammar constraint (engine_generate's helper; the
 * public knobs are engine_gen_params.grammar and .grammar_after).
 *
 * Sampling follows llama.cpp's order of work and goes beyond it with cached masks: the chain
 * samples from the raw logits first and only that token is checked against the grammar; only
 * when it is refused is the full mask computed (the grammar module caches masks by state) and
 * the chain samples again over the allowed tokens, so temperature, top-k/p, min-p, penalties,
 * logit bias and the seed apply to allowed tokens only. With grammar_after the text up to and
 * including the first occurrence of that literal is free; a token that completes it must also
 * fit the grammar with the bytes that follow the literal.
 *
 * Ownership: engine_constraint_init / engine_constraint_deinit (deinit is safe on a zeroed
 * struct). The grammar and the after text are borrowed for the generation. */
#ifndef SHIMMY_ENGINE_CONSTRAIN_H
#define SHIMMY_ENGINE_CONSTRAIN_H

#include "engine.h"
#include "grammar/grammar.h"

typedef struct engine_constraint {
    grammar_matcher *m; /* NULL: no grammar */
    const tok_vocab *v;
    int32_t n_vocab;
    uint64_t *mask;    /* (n_vocab bits) */
    const char *after; /* the literal still awaited, NULL once the grammar applies */
    size_t after_len;
    char *tail; /* the generated text's last bytes while the literal is awaited */
    size_t n_tail;
    char *piece; /* (max_piece) one token's bytes */
    size_t max_piece;
    uint64_t n_masks; /* full masks computed (the sampled token was refused) */
    double mask_ms;   /* time spent in the grammar */
} engine_constraint;

/* The trie of m's vocabulary, built on first use (thread-safe) and kept until the model closes. */
shimmy_status engine_model_grammar_vocab(const engine_model *m, const grammar_vocab **out,
                                         shimmy_error *err);

shimmy_status engine_constraint_init(engine_constraint *c, const engine_model *m,
                                     const engine_gen_params *gp, shimmy_error *err);
void engine_constraint_deinit(engine_constraint *c);
/* Samples the next token (through the grammar when there is one) and advances the grammar. */
shimmy_status engine_constraint_sample(engine_constraint *c, sampler *smp, const float *logits,
                                       int32_t *tok, shimmy_error *err);
/* The grammar has matched completely and nothing may follow: the generation is over. */
bool engine_constraint_done(const engine_constraint *c);

#endif
