/* The matcher's state, shared by matcher.c (stacks, bytes, tokens) and mask.c (the trie walk and
 * the mask cache). Internal to the grammar module.
 *
 * A stack is a node id: node = (pos, parent), interned, so equal stacks are equal ids and a set
 * of stacks is a small array of ints. pos is an element index: for the top node of a live stack
 * it is always a terminal; parents are return positions. Node 0 is the empty stack (the grammar
 * has matched completely). succ(n) — the stacks after n's terminal matched one character — does
 * not depend on the character, so it is computed once per node and memoized: after warm-up,
 * advancing a set by a byte is a bitmap test and a union of small arrays per stack. */
#ifndef SHIMMY_GM_IMPL_H
#define SHIMMY_GM_IMPL_H

#include "gram_impl.h"

typedef struct gm_state {
    int32_t *v; /* node ids (sorted in the committed state) */
    uint32_t n, cap;
    uint32_t acc;  /* a partial UTF-8 character: bits so far */
    uint8_t need;  /* continuation bytes still to come (0: none pending) */
    uint8_t total; /* the character's length in bytes */
} gm_state;

typedef struct gm_mask {
    uint64_t key;
    int32_t *set; /* owned copy of the state it was computed for, to rule out hash collisions */
    uint32_t n_set;
    uint32_t acc;
    uint8_t need, total;
    uint64_t *bits; /* owned */
    int64_t count;
    uint64_t used;
} gm_mask;

#define GM_MASK_CACHE 32

/* A slice (slice.c): the tokens a class of states takes whole, as a bitset over token ids.
 * Inside a string body most of the vocabulary is allowed by a byte-class test alone; setting
 * those bits token by token is what a mask walk would spend its time on, so the set is computed
 * once per (first-byte set, loop class) and copied in 64-bit words. A token is in the slice when
 * its first byte is in f, all its ASCII bytes are in l, and its non-ASCII bytes (if high) are
 * well-formed UTF-8 starting on a character boundary. A slice depends on the vocabulary and its
 * key only: the vocabulary's cache shares it among every matcher and grammar (immutable once
 * built, reference-counted: a matcher holds references to the few it uses). */
typedef struct gm_slice {
    uint64_t f[2], l[2];
    bool high;
    bool fhigh;     /* the first character may be non-ASCII too (then its subtree must be in l) */
    int refs;       /* atomic */
    uint64_t *bits; /* owned */
    /* The frontier: the nodes where a path leaves the slice's prefixes (their parent's path is
     * a prefix inside the class, their own byte is not, and their subtree is not taken whole),
     * grouped by that byte: front[fstart[b] .. fstart[b + 1]), in preorder within a group.
     * A walk from a slice's state knows the state at every prefix inside the class (the loop's,
     * or the chain's after as many steps), so it visits only these nodes, and only the groups
     * whose byte some of those states take. */
    uint32_t *front; /* owned */
    uint32_t fstart[257];
    uint32_t deepest; /* bytes of the longest path inside the class (and so of its tokens) */
} gm_slice;

#define GM_SLICES 8

/* A state of the lazily built automaton the mask walk runs on: a canonical (sorted) set of
 * stacks plus the partial character, interned so that a transition (state, byte) -> state is
 * computed once and then costs one hash lookup. */
typedef struct gm_dstate {
    uint32_t off, n; /* node ids in dpool[off .. off + n) */
    uint32_t acc;
    uint8_t need, total;
    uint64_t hash;
    uint32_t hits;    /* lookups through the hash, until the state gets a direct table */
    int32_t *direct;  /* (256) all transitions, for states the walks keep coming back to */
    uint64_t loop[2]; /* with direct: the ASCII bytes that lead back to this very state */
    uint64_t live[4]; /* with direct: the bytes that lead to a live state (or are GM_LAZY) */
    bool loop_high;   /* ... and so does every non-ASCII character */
    int32_t uni;      /* with direct: the live state most ASCII bytes lead to (-1: none) */
    uint64_t uset[2]; /* ... and the ASCII bytes that lead there (a counted repetition's step) */
    bool uni_high;    /* ... and every non-ASCII character leads there too */
} gm_dstate;

struct grammar_matcher {
    grammar *g; /* a reference (none while pooled) */
    const grammar_vocab *gv;
    uint64_t gv_serial; /* gv's, to tell a pooled matcher of another vocabulary */
    /* interned nodes */
    int32_t *npos, *npar;
    int32_t *succ_off, *succ_len; /* memoized successors in succ[], -1 = not yet */
    uint32_t *vstamp, *ustamp;    /* closure visits / union dedup */
    uint32_t vcur, ucur;
    uint32_t n_nodes, cap_nodes;
    uint32_t *table; /* open addressing (pos, parent) -> node, UINT32_MAX empty */
    uint32_t table_cap;
    int32_t *succ;
    size_t n_succ, cap_succ;
    int32_t *work;
    size_t cap_work;
    /* positions */
    gm_state init, cur, tmp[2];
    uint32_t n_lvl; /* max_depth + 1 */
    /* the automaton (dfa.c) */
    gm_dstate *dst;
    uint32_t n_dst, cap_dst;
    int32_t *dpool;
    size_t n_dpool, cap_dpool;
    uint32_t *dtab; /* content hash -> state, UINT32_MAX empty */
    uint32_t dtab_cap;
    uint64_t *tkey; /* (state << 8 | byte) + 1, 0 empty */
    int32_t *tval;  /* next state, -1 dead */
    uint32_t tcap, tn;
    uint32_t n_direct; /* states with a direct table */
    /* bytes no terminal of the grammar tells apart step every state alike: a transition is
     * computed once per class (for its representative byte) and shared by the class */
    uint8_t bclass[256]; /* byte -> class */
    uint8_t brep[256];   /* class -> its first byte */
    uint32_t n_bclass;
    int32_t *dlvl;  /* (max_depth + 1) states of the walk */
    int32_t *chain; /* (max_depth + 1) states along a counted repetition (slice.c) */
    gm_mask cache[GM_MASK_CACHE];
    gm_slice *slices[GM_SLICES]; /* references, NULL = empty */
    uint64_t slice_used[GM_SLICES];
    uint8_t *slpath; /* (max_depth + 1) the walk's path is inside the slice, per depth */
    uint64_t clock;
    grammar_stats stats;
    bool failed;
    char fail_msg[160];
};

/* Advances in by one byte into out (out != in). False when no stack survives (or on failure:
 * m->failed). */
bool gm_step_byte(grammar_matcher *m, const gm_state *in, uint8_t b, gm_state *out);
bool gm_state_copy(gm_state *dst, const gm_state *src);
shimmy_status gm_fail_error(const grammar_matcher *m, shimmy_error *err);
void gm_mask_cache_free(grammar_matcher *m);
bool gm_can_end(const gm_state *s);
void gm_canonical(gm_state *s);

/* The automaton: intern a state (sorted in place), step it by a byte (-1: no stack survives,
 * -2: failure, m->failed), forget everything (between walks, when it has grown large). */
int32_t gm_dfa_intern(grammar_matcher *m, gm_state *s);
int32_t gm_dfa_step(grammar_matcher *m, int32_t d, uint8_t b);
/* A direct table's entry for a non-ASCII byte not stepped yet (most states never see one, and
 * each would intern a partial-character state): gm_dfa_fill steps it and fills its class. */
#define GM_LAZY (-3)
int32_t gm_dfa_fill(grammar_matcher *m, int32_t d, uint8_t b);
static inline int32_t gm_dfa_next(grammar_matcher *m, int32_t d, uint8_t b) {
    const int32_t *t = m->dst[d].direct;
    if (!t) return gm_dfa_step(m, d, b);
    const int32_t x = t[b];
    return x != GM_LAZY ? x : gm_dfa_fill(m, d, b);
}
void gm_dfa_reset(grammar_matcher *m);
/* Computes m's byte classes from its grammar's terminals (at creation). */
void gm_dfa_classes(grammar_matcher *m);
/* Gives state d its direct table now (slices need its loop set); false when it cannot. */
bool gm_dfa_direct(grammar_matcher *m, int32_t d);

/* How much of a slice a walk may take: chars UINT32_MAX (all of it), or only its tokens of at
 * most chars characters (a counted repetition with that many left) and a subtree only when its
 * paths are no longer, or, with dead_after, when the state after the count refuses the whole
 * class (the subtree's longer tokens are then refused). */
typedef struct gm_limit {
    uint32_t chars;
    bool dead_after;
    /* the state after a prefix of k characters inside the class: k = 0 the walk's first state,
     * otherwise target (a loop), or m->chain[k] when target is -1 (k <= steps) */
    int32_t target;
    uint32_t steps;
} gm_limit;

/* The slice for a walk that starts in state d (computed on first use), or NULL when none fits
 * (too few bytes lead into one looping state or along a chain) or memory is short. */
const gm_slice *gm_slice_for(grammar_matcher *m, int32_t d, gm_limit *limit);
void gm_slice_free(grammar_matcher *m);

/* True when node i's whole subtree stays in the byte class (l, high): the test the walk and
 * the slices share, so that a subtree the walk leaves to the slice is in it. */
static inline bool gm_class_covers(const grammar_vocab *gv, uint32_t i, const uint64_t l[2],
                                   bool high) {
    const uint64_t *sub = gv->nd[i].sub;
    if ((sub[0] & 1) && !(high && (gv->nd[i].u8 & 7) == 3)) return false;
    return ((sub[0] & ~1ull) & ~l[0]) == 0 && (sub[1] & ~l[1]) == 0;
}
static inline bool gm_in_set(const uint64_t s[2], uint8_t b) {
    return b < 128 && ((s[b >> 6] >> (b & 63)) & 1);
}
/* The slice's subtree test (shared by the walk and slice.c): node i's subtree, whose path so
 * far is inside the class (so it starts on a character boundary), stays in the byte class.
 * Malformed UTF-8 does not matter: the slice holds only the subtree's well-formed tokens
 * (gv->wf), and the matcher refuses the others. */
static inline bool gm_slice_covers(const grammar_vocab *gv, uint32_t i, const gm_slice *s) {
    const uint64_t *sub = gv->nd[i].sub;
    if ((sub[0] & 1) && !(s->high && !(gv->nd[i].u8 & 4))) return false;
    return ((sub[0] & ~1ull) & ~s->l[0]) == 0 && (sub[1] & ~s->l[1]) == 0;
}
/* May a token of the slice start with byte b (the class test then decides its subtree)? */
static inline bool gm_slice_first(const gm_slice *s, uint8_t b) {
    return b >= 0x80 ? s->fhigh : gm_in_set(s->f, b);
}
void gm_dfa_free(grammar_matcher *m);

#endif
