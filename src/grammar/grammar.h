/*
 * grammar — structured outputs: GBNF grammars compiled once, a pushdown matcher over the bytes a
 * model writes, and the per-token mask over a vocabulary that keeps sampling inside the grammar.
 * (JSON Schema -> GBNF lives beside it in schema.h.)
 *
 * Three objects:
 *  - grammar: GBNF text (llama.cpp's dialect: `name ::= ...` rules, |, groups, "literals",
 *    [classes], ., *, +, ?, {m}, {m,}, {m,n}, # comments, start rule `root`) compiled to a rule
 *    table (rules -> alternatives -> elements; repetitions become generated rules). Immutable and
 *    reference-counted; grammar_cache_get compiles each distinct text once (bounded LRU).
 *  - grammar_vocab: a vocabulary's decoded token bytes as a trie in preorder (one per loaded
 *    vocabulary, shared by every grammar and generation), its tokens by length, and a cache of
 *    the token sets that byte classes take whole (a string body's, built on first use and
 *    shared by every matcher). Control/unknown/unused tokens and tokens that decode to nothing
 *    are not in it: they are never allowed inside the text.
 *  - grammar_matcher: one generation's position in the grammar: a deduplicated set of stacks
 *    (interned, so a stack is an id), plus a partial UTF-8 character held across tokens. Literals
 *    and classes are over code points; the matcher advances byte by byte.
 *
 * Limits (a hostile grammar fails cleanly, never hangs or grows without bound): text at most
 * GRAMMAR_MAX_TEXT bytes, nesting GRAMMAR_MAX_DEPTH, repetition counts GRAMMAR_MAX_REPEAT, at most
 * GRAMMAR_MAX_ELEMS compiled elements; left recursion is refused at compile time; a matcher holds
 * at most GRAMMAR_MAX_STACKS stacks at once and GRAMMAR_MAX_NODES interned stack nodes — past
 * either, the call fails with SHIMMY_ERR_UNSUPPORTED ("grammar too ambiguous").
 *
 * Ownership: grammar_compile / grammar_cache_get return a reference the caller drops with
 * grammar_unref. grammar_vocab_new/grammar_vocab_free, grammar_matcher_new/grammar_matcher_free
 * pair up; frees accept NULL. A matcher borrows its grammar (it takes a reference) and its
 * vocab (which must outlive it).
 * Thread-safety: grammar and grammar_vocab are immutable after creation (but for the vocab's
 * token-set cache, locked internally) and shared freely; the compile cache is locked
 * internally. A matcher belongs to one thread at a time.
 */
#ifndef SHIMMY_GRAMMAR_H
#define SHIMMY_GRAMMAR_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tok_vocab tok_vocab;

#define GRAMMAR_MAX_TEXT   ((size_t)1 << 20) /* = SHIMMY_MAX_GRAMMAR_LEN */
#define GRAMMAR_MAX_DEPTH  100               /* nested groups */
#define GRAMMAR_MAX_REPEAT 10000             /* m and n of {m,n} */
#define GRAMMAR_MAX_ELEMS  (1u << 21)        /* compiled elements, repetitions expanded */
#define GRAMMAR_MAX_STACKS 4096              /* stacks alive at one position */
#define GRAMMAR_MAX_NODES  (1u << 20)        /* interned stack nodes of one matcher */

/* ---- compiled grammars ---- */

typedef struct grammar grammar;

/* Compiles GBNF text[0..len). Errors: SHIMMY_ERR_INVALID_ARG, where = "grammar", message
 * "line L, column C: what is wrong" (undefined rules, left recursion, bad escapes, ...);
 * SHIMMY_ERR_TOO_LARGE past the limits above. */
shimmy_status grammar_compile(const char *text, size_t len, grammar **out, shimmy_error *err);
/* The same through the process-wide cache (keyed by the exact text; the least recently used
 * of GRAMMAR_CACHE_SIZE entries is dropped). Errors are not cached. */
#define GRAMMAR_CACHE_SIZE 64
shimmy_status grammar_cache_get(const char *text, size_t len, grammar **out, shimmy_error *err);
grammar *grammar_ref(grammar *g); /* returns g */
void grammar_unref(grammar *g);   /* NULL is a no-op */
size_t grammar_n_rules(const grammar *g);
/* Rule ids with their names, for tests and error messages: NULL past the end. Borrowed. */
const char *grammar_rule_name(const grammar *g, size_t rule);

/* ---- vocabularies ---- */

typedef struct grammar_vocab grammar_vocab;

/* Builds the trie of v's token pieces (tok_piece without special text). */
shimmy_status grammar_vocab_new(const tok_vocab *v, grammar_vocab **out, shimmy_error *err);
/* The same from explicit pieces (tests, benchmarks): pieces[i] of len[i] bytes is token i;
 * special[i] marks a token that never appears in text; eog[i] an end-of-generation token. */
shimmy_status grammar_vocab_from_pieces(const char *const *pieces, const size_t *len,
                                        const bool *special, const bool *eog, int32_t n,
                                        grammar_vocab **out, shimmy_error *err);
void grammar_vocab_free(grammar_vocab *gv);
int32_t grammar_vocab_size(const grammar_vocab *gv);
size_t grammar_vocab_trie_nodes(const grammar_vocab *gv);

/* ---- matching ---- */

typedef struct grammar_matcher grammar_matcher;

/* A matcher at the start of g. gv may be NULL for byte-only use (accept_bytes). */
shimmy_status grammar_matcher_new(grammar *g, const grammar_vocab *gv, grammar_matcher **out,
                                  shimmy_error *err);
void grammar_matcher_free(grammar_matcher *m);
/* The same through the grammar's pool: a matcher of g and gv that an earlier generation warmed
 * up (its automaton, stacks and mask cache kept: a schema sent with every request pays its first
 * walks once), reset to the start; or a new one. */
shimmy_status grammar_matcher_acquire(grammar *g, const grammar_vocab *gv, grammar_matcher **out,
                                      shimmy_error *err);
/* Gives m back to its grammar's pool (one per grammar, at most GRAMMAR_POOL_BYTES of state;
 * otherwise it is freed). NULL is a no-op. */
#define GRAMMAR_POOL_BYTES ((size_t)4 << 20)
void grammar_matcher_release(grammar_matcher *m);
/* Back to the start (the caches are kept). */
void grammar_matcher_reset(grammar_matcher *m);

/* Feeds bytes. SHIMMY_ERR_INVALID_ARG when they leave the grammar (the state is then
 * unchanged), SHIMMY_ERR_UNSUPPORTED past the ambiguity limits. */
shimmy_status grammar_matcher_accept_bytes(grammar_matcher *m, const char *bytes, size_t len,
                                           shimmy_error *err);
/* True when the bytes would be accepted (no state change). */
bool grammar_matcher_allows_bytes(grammar_matcher *m, const char *bytes, size_t len);
/* The grammar could end here (the whole root rule matched, no partial character pending). */
bool grammar_matcher_can_end(const grammar_matcher *m);
/* Nothing can follow: the only way on is to end. */
bool grammar_matcher_is_done(const grammar_matcher *m);

/* Token-level (needs a vocab): a text token is allowed when its bytes are; an end-of-generation
 * token exactly when the grammar can end; any other special token never. */
bool grammar_matcher_allows_token(grammar_matcher *m, int32_t token);
/* Commits a token (an end-of-generation token is accepted when the grammar can end and changes
 * nothing). Errors as grammar_matcher_accept_bytes. */
shimmy_status grammar_matcher_accept_token(grammar_matcher *m, int32_t token, shimmy_error *err);
/* Writes the allowed-token bitset (bit t of mask[t / 64]; grammar_vocab_size bits) for the
 * current position: the trie walked against the stack set, or a cached mask of the same state.
 * Returns the number of allowed tokens (0: the vocabulary cannot continue the grammar here), or
 * -1 with err set past the ambiguity limits. */
int64_t grammar_matcher_mask(grammar_matcher *m, uint64_t *mask, shimmy_error *err);

/* Drops the cached masks (benchmarks measure the uncached walk with it). */
void grammar_matcher_clear_cache(grammar_matcher *m);

typedef struct grammar_stats {
    uint64_t masks;        /* full masks asked for */
    uint64_t mask_hits;    /* ... answered from the mask cache */
    uint64_t trie_visits;  /* trie nodes visited by the walks */
    size_t nodes;          /* interned stack nodes */
    uint64_t slice_masks;  /* walks that started from a slice (a string body's byte class) */
    uint64_t chain_takes;  /* subtrees taken whole along a counted repetition's steps */
    uint64_t short_slices; /* slice masks cut to the characters a counted repetition has left */
} grammar_stats;
void grammar_matcher_stats(const grammar_matcher *m, grammar_stats *out);

#endif
