/* grammar internals shared by the module's files (not part of the module's interface). */
#ifndef SHIMMY_GRAM_IMPL_H
#define SHIMMY_GRAM_IMPL_H

#include "grammar.h"

#include <pthread.h>
#include <stdint.h>

/* An element of an alternative: a terminal (one code point out of a class), a reference to a
 * rule, or the end of the alternative. Packed as kind | arg << 2. */
enum { GE_END = 0, GE_TERM = 1, GE_REF = 2 };
#define GE_KIND(e)         ((e)&3u)
#define GE_ARG(e)          ((e) >> 2)
#define GE_MAKE(kind, arg) ((uint32_t)(kind) | ((uint32_t)(arg) << 2))

typedef struct gram_range {
    uint32_t lo, hi; /* inclusive code points, sorted, disjoint, never surrogates */
} gram_range;

typedef struct gram_term {
    uint64_t ascii[2]; /* code points < 128, for the common case */
    uint32_t first;    /* ranges[first .. first + n) */
    uint32_t n;
    uint8_t high; /* non-ASCII code points: GT_HIGH_NONE, _ALL or _SOME of them */
} gram_term;
enum { GT_HIGH_NONE = 0, GT_HIGH_ALL = 1, GT_HIGH_SOME = 2 };

typedef struct gram_rule {
    uint32_t first_alt; /* alts[first_alt .. first_alt + n_alts) */
    uint32_t n_alts;
    uint32_t name; /* offset into names */
} gram_rule;

struct grammar {
    int refs;        /* atomic */
    uint32_t *elems; /* every alternative's elements, each ended by GE_END */
    uint32_t n_elems;
    uint32_t *alts; /* start of each alternative in elems */
    uint32_t n_alts;
    gram_rule *rules;
    uint32_t n_rules;
    gram_term *terms;
    uint32_t n_terms;
    gram_range *ranges;
    uint32_t n_ranges;
    char *names; /* NUL-separated rule names */
    uint32_t root;
    /* one warmed-up matcher kept between generations (grammar_matcher_release); it holds no
     * reference, so the grammar frees it */
    pthread_mutex_t pool_lock;
    grammar_matcher *pool;
};

void gram_free(grammar *g);
/* Frees a pooled matcher (it holds no reference to its grammar). */
void gm_destroy_pooled(grammar_matcher *m);

static inline bool gram_term_has(const grammar *g, const gram_term *t, uint32_t cp) {
    if (cp < 128) return (t->ascii[cp >> 6] >> (cp & 63)) & 1;
    const gram_range *r = g->ranges + t->first;
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* True when some code point in [lo, hi] is in t. */
static inline bool gram_term_meets(const grammar *g, const gram_term *t, uint32_t lo, uint32_t hi) {
    const gram_range *r = g->ranges + t->first;
    for (uint32_t i = 0; i < t->n; i++)
        if (r[i].lo <= hi && r[i].hi >= lo) return true;
    return false;
}

/* ---- vocabulary trie (preorder) ---- */

typedef struct gv_slice_cache gv_slice_cache;
gv_slice_cache *gv_slice_cache_new(void); /* NULL when memory is short (then no slices) */
void gv_slice_cache_free(gv_slice_cache *c);

/* A trie node, all a mask walk reads of it in one 32-byte record (the walk is bound by memory:
 * one cache line per node visited, not one per field). */
typedef struct gv_node {
    uint64_t sub[2];    /* the ASCII bytes in the node's subtree, bit 0 set when a byte >= 0x80 or
                           a NUL is there too (u8 bit 2 tells a NUL) */
    uint32_t end;       /* first node after the subtree */
    uint32_t tok_first; /* toks[tok_first .. tok_first + tok_n) end here; the tokens of the
                           subtree [i, end) are toks[nd[i].tok_first .. nd[end].tok_first)
                           (preorder) */
    uint16_t depth;     /* 1 for children of the root */
    uint16_t height;    /* levels of the subtree, 1 for a leaf */
    uint16_t tok_n;
    uint8_t byte; /* the byte on the edge into the node */
    uint8_t u8;   /* UTF-8 along the paths (vocab.c, utf8_flags) */
} gv_node;
_Static_assert(sizeof(gv_node) == 32, "a trie node is half a cache line");

struct grammar_vocab {
    uint64_t serial; /* unique per vocab in this process: mask caches key on it */
    int32_t n_vocab;
    uint32_t n_nodes;
    gv_node *nd; /* (n_nodes + 1) the last one only ends the tok_first ranges */
    int32_t *toks;
    uint32_t max_depth;
    /* tokens by length in characters (bytes that do not continue a UTF-8 character): le holds
     * n_le bitsets of n_vocab bits, the c-th (from 0) the text tokens of at most c characters;
     * max_chars is the longest text token's. A counted repetition with c characters left
     * allows, of the tokens its class takes whole, exactly those of le[c] (slice.c) */
    uint32_t max_chars, n_le;
    uint64_t *le;
    /* (n_vocab bits) the text tokens that are well-formed UTF-8 (an unfinished last character
     * allowed): the others are refused wherever a character boundary is */
    uint64_t *wf;
    gv_slice_cache *slices; /* slice.c: the slices of this vocabulary, shared by all matchers */
    uint32_t *piece_off;    /* (n_vocab + 1) token bytes in pieces */
    char *pieces;
    uint8_t *kind; /* (n_vocab) GV_TEXT, GV_EOG or GV_SPECIAL */
    int32_t *eog;  /* end-of-generation ids */
    int32_t n_eog;
};
enum { GV_TEXT = 0, GV_EOG = 1, GV_SPECIAL = 2 };

#endif
