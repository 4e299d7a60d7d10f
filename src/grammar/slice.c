/* Slices (see gm_impl.h): the tokens that a string-body-like state allows by a byte-class test
 * alone, precomputed as a bitset over token ids. A slice depends only on the vocabulary and two
 * byte sets, not on the grammar's stacks, so the few a grammar needs (one per kind of string
 * body) are computed once per matcher and reused by every mask walk that starts in such a
 * state; the walk then skips those subtrees without setting their bits one by one. */
#include "gm_impl.h"

#include <stdlib.h>
#include <string.h>

/* Fewer first bytes than this into the looping state: the slice would save little. */
#define SLICE_MIN_BYTES 16
/* Vocabularies with longer tokens get no chain slices (each chain state costs a direct table). */
#define MAX_CHAIN 512

void gm_slice_free(grammar_matcher *m) {
    for (size_t i = 0; i < GM_SLICES; i++) free(m->slices[i].bits);
    memset(m->slices, 0, sizeof m->slices);
    free(m->slpath);
    m->slpath = NULL;
}

/* The tokens of the slice: the same walk the mask does, with the class test only. Every node
 * visited has its path inside the slice (the others are skipped with their subtrees). */
static void compute(const grammar_vocab *gv, gm_slice *s) {
    const size_t words = ((size_t)gv->n_vocab + 63) / 64;
    memset(s->bits, 0, words * sizeof *s->bits);
    for (uint32_t i = 0; i < gv->n_nodes;) {
        const bool first = gv->depth[i] == 1;
        const bool in = gm_in_set(first ? s->f : s->l, gv->byte[i]);
        if ((!first || gm_slice_first(s, gv->byte[i])) && gm_class_covers(gv, i, s->l, s->high)) {
            for (uint32_t k = gv->tok_first[i], z = gv->tok_first[gv->end[i]]; k < z; k++) {
                const int32_t t = gv->toks[k];
                s->bits[t >> 6] |= 1ull << (t & 63);
            }
            i = gv->end[i];
        } else if (in) {
            const uint32_t k0 = gv->tok_first[i];
            for (uint32_t k = 0; k < gv->tok_n[i]; k++) {
                const int32_t t = gv->toks[k0 + k];
                s->bits[t >> 6] |= 1ull << (t & 63);
            }
            i++;
        } else {
            i = gv->end[i];
        }
    }
}

static int popcount2(const uint64_t s[2]) {
    return __builtin_popcountll(s[0]) + __builtin_popcountll(s[1]);
}

/* A counted repetition (`[^{}<>]{1,600}`) has no looping state, but while the count left is
 * at least the longest token, every count takes the same tokens: those whose characters all
 * lead each state of the chain to the next (uni, uset, uni_high). Then the slice of that common
 * class holds for the walk from d, and for the next counts' walks too (the count is not in
 * the key). Gives the class in key when the chain from d is that long. */
static bool chain_key(grammar_matcher *m, int32_t d, gm_slice *key) {
    const uint32_t need = m->gv->max_depth;
    if (need > MAX_CHAIN) return false;
    uint64_t c[2] = {~1ull, ~0ull};
    bool high = true;
    for (uint32_t j = 0; j < need; j++) {
        if (!gm_dfa_direct(m, d)) return false;
        const gm_dstate *ds = &m->dst[d];
        c[0] &= ds->uset[0];
        c[1] &= ds->uset[1];
        high = high && ds->uni_high;
        if (ds->uni < 0 || popcount2(c) < SLICE_MIN_BYTES) return false;
        d = ds->uni;
    }
    *key = (gm_slice){.f = {c[0], c[1]}, .l = {c[0], c[1]}, .high = high, .fhigh = high};
    return true;
}

const gm_slice *gm_slice_for(grammar_matcher *m, int32_t d) {
    const grammar_vocab *gv = m->gv;
    if (!m->slpath && !(m->slpath = calloc(m->n_lvl ? m->n_lvl : 1, 1))) return NULL;
    /* a state first met now has no direct table; building one (256 transitions) for a state
     * that may never come back costs more than the slice saves, and the walk itself makes it
     * direct if the state is hot */
    if (!m->dst[d].direct) return NULL;
    /* the state most ASCII bytes lead to (make_direct's majority vote), itself when it loops */
    const int32_t target = m->dst[d].uni;
    if (target < 0 || !gm_dfa_direct(m, target)) return NULL;
    const int32_t *t = m->dst[d].direct; /* make_direct may have moved m->dst */
    const gm_dstate *ts = &m->dst[target];
    gm_slice key = {.l = {ts->loop[0], ts->loop[1]}, .high = ts->loop_high};
    /* a first non-ASCII character leads there too when d's uniform step takes them all */
    key.fhigh = key.high && m->dst[d].uni_high;
    for (int b = 0; b < 128; b++)
        if (t[b] == target && gm_in_set(key.l, (uint8_t)b)) key.f[b >> 6] |= 1ull << (b & 63);
    if (popcount2(key.f) < SLICE_MIN_BYTES && !chain_key(m, d, &key)) return NULL;
    gm_slice *victim = &m->slices[0];
    for (size_t i = 0; i < GM_SLICES; i++) {
        gm_slice *s = &m->slices[i];
        if (s->bits && memcmp(s->f, key.f, sizeof key.f) == 0 &&
            memcmp(s->l, key.l, sizeof key.l) == 0 && s->high == key.high &&
            s->fhigh == key.fhigh) {
            s->used = ++m->clock;
            return s;
        }
        if (!s->bits || (victim->bits && s->used < victim->used)) victim = s;
    }
    const size_t words = ((size_t)gv->n_vocab + 63) / 64;
    uint64_t *bits = victim->bits ? victim->bits : malloc(words * sizeof *bits);
    if (!bits) return NULL;
    *victim = key;
    victim->bits = bits;
    victim->used = ++m->clock;
    compute(gv, victim);
    return victim;
}
