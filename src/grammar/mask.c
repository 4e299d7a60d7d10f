/* The allowed-token mask: the vocabulary's trie walked against the stack set (a prefix that no
 * stack accepts drops its whole subtree), and a small cache of masks by state, because
 * generation keeps returning to the same few states (inside a string, between values). */
#include "gm_impl.h"

#include <stdlib.h>
#include <string.h>

/* The automaton is forgotten between walks once it is this large (memory stays bounded; the
 * states that matter come back within a walk or two). */
#define DFA_FLUSH_STATES 65536u
#define DFA_FLUSH_TRANS  (1u << 19)

void gm_mask_cache_free(grammar_matcher *m) {
    for (size_t i = 0; i < GM_MASK_CACHE; i++) {
        free(m->cache[i].set);
        free(m->cache[i].bits);
    }
    memset(m->cache, 0, sizeof m->cache);
}

void grammar_matcher_clear_cache(grammar_matcher *m) {
    gm_mask_cache_free(m);
}

static uint64_t state_key(const gm_state *s) {
    uint64_t h =
        1469598103934665603ull ^ ((uint64_t)s->acc << 16 | (uint64_t)s->need << 8 | s->total);
    for (uint32_t i = 0; i < s->n; i++) h = (h ^ (uint32_t)s->v[i]) * 1099511628211ull;
    return h;
}

static gm_mask *cache_find(grammar_matcher *m, uint64_t key, const gm_state *s) {
    for (size_t i = 0; i < GM_MASK_CACHE; i++) {
        gm_mask *c = &m->cache[i];
        if (c->bits && c->key == key && c->n_set == s->n && c->acc == s->acc &&
            c->need == s->need && c->total == s->total &&
            memcmp(c->set, s->v, s->n * sizeof *s->v) == 0)
            return c;
    }
    return NULL;
}

static void cache_store(grammar_matcher *m, uint64_t key, const gm_state *s, const uint64_t *mask,
                        size_t words, int64_t count) {
    gm_mask *victim = &m->cache[0];
    for (size_t i = 0; i < GM_MASK_CACHE; i++) {
        if (!m->cache[i].bits) {
            victim = &m->cache[i];
            break;
        }
        if (m->cache[i].used < victim->used) victim = &m->cache[i];
    }
    if (!victim->bits && !(victim->bits = malloc(words * sizeof *mask))) return;
    int32_t *set = realloc(victim->set, (s->n ? s->n : 1) * sizeof *set);
    if (!set) return; /* a cache is optional: keep going without this entry */
    victim->set = set;
    memcpy(set, s->v, s->n * sizeof *set);
    memcpy(victim->bits, mask, words * sizeof *mask);
    victim->key = key;
    victim->n_set = s->n;
    victim->acc = s->acc;
    victim->need = s->need;
    victim->total = s->total;
    victim->count = count;
    victim->used = ++m->clock;
}

/* Sets the bits of every token in node i's subtree. */
static void take_subtree(const grammar_vocab *gv, uint32_t i, uint64_t *mask) {
    const uint32_t a = gv->nd[i].tok_first, z = gv->nd[gv->nd[i].end].tok_first;
    for (uint32_t k = a; k < z; k++) {
        const int32_t t = gv->toks[k];
        mask[t >> 6] |= 1ull << (t & 63);
    }
}

/* Subtrees at least this large are first tried as a whole. */
#define CHAIN_MIN_NODES 2

/* True when the whole subtree of node i (entered from state d) is allowed because, level by
 * level, every byte found in the subtree leads to one same live state: a bounded repetition
 * (`[a-z]{1,600}`, a string with maxLength) counts up through states that all take those bytes,
 * so no state loops but each level is uniform. Each state's uniform step (uni, uset, uni_high)
 * comes with its direct table (hot states have them). */
static bool chain_accepts(const grammar_matcher *m, const grammar_vocab *gv, uint32_t i,
                          int32_t d) {
    const uint64_t *sub = gv->nd[i].sub;
    /* non-ASCII characters: each is one step whatever its length, so a path has at most
     * height steps; the paths must be well-formed UTF-8 from a character boundary */
    const bool high = sub[0] & 1;
    if (high && (gv->nd[i].u8 & 7) != 3) return false;
    for (uint32_t level = 0, h = gv->nd[i].height; level < h; level++) {
        const gm_dstate *ds = &m->dst[d];
        if (!ds->direct || ds->uni < 0 || ((sub[0] & ~1ull) & ~ds->uset[0]) ||
            (sub[1] & ~ds->uset[1]) || (high && !ds->uni_high))
            return false;
        d = ds->uni;
    }
    return true;
}

/* True when every byte of node i's subtree (its own byte included) leads from state d back to
 * d: ASCII bytes by d's self-loop set, non-ASCII ones when every non-ASCII character loops and
 * every path through the subtree, starting on a character boundary, is well-formed UTF-8 (an
 * unfinished last character is then a live prefix of a character that loops). */
static bool subtree_loops(const grammar_matcher *m, const grammar_vocab *gv, uint32_t i,
                          int32_t d) {
    const gm_dstate *ds = &m->dst[d];
    return ds->direct && gm_class_covers(gv, i, ds->loop, ds->loop_high);
}

/* The preorder walk of the trie nodes [from, to) (whole subtrees; dlvl[depth - 1] holds the
 * state before the first of them): dlvl[d] is the automaton state after the first d bytes of
 * the current node's path; a refused byte skips the node's whole subtree. With a slice, the
 * subtrees it holds (limit: see gm_limit) are skipped. False on failure (m->failed). */
static bool walk(grammar_matcher *m, uint32_t from, uint32_t to, const gm_slice *sl, uint32_t limit,
                 uint64_t *mask, uint64_t *visits) {
    const grammar_vocab *gv = m->gv;
    uint8_t *path = m->slpath; /* path[d]: the first d bytes are inside the slice's prefixes */
    for (uint32_t i = from; i < to;) {
        const uint32_t d = gv->nd[i].depth;
        ++*visits;
        /* a subtree the slice holds is already in the mask (its paths, in bytes, are at least
         * as long as in characters) */
        const bool in_path = sl && (d == 1 || path[d - 1]);
        if (in_path && (d > 1 || gm_slice_first(sl, gv->nd[i].byte)) &&
            (limit == UINT32_MAX || d - 1 + gv->nd[i].height <= limit) &&
            gm_slice_covers(gv, i, sl)) {
            i = gv->nd[i].end;
            continue;
        }
        const int32_t prev = m->dlvl[d - 1];
        const int32_t next = gm_dfa_next(m, prev, gv->nd[i].byte);
        if (next < 0) {
            if (next == -2) return false;
            i = gv->nd[i].end;
            continue;
        }
        /* every byte below leads back to one state (inside a string, say): the whole subtree
         * is allowed without walking it. That state is either the one before this node (its
         * byte loops there too) or the one this node's byte leads to (the first character of a
         * string body) */
        if (subtree_loops(m, gv, i, prev) || (next != prev && subtree_loops(m, gv, i, next))) {
            take_subtree(gv, i, mask);
            i = gv->nd[i].end;
            continue;
        }
        if (gv->nd[i].end - i >= CHAIN_MIN_NODES && chain_accepts(m, gv, i, prev)) {
            m->stats.chain_takes++;
            take_subtree(gv, i, mask);
            i = gv->nd[i].end;
            continue;
        }
        m->dlvl[d] = next;
        if (sl) path[d] = in_path && gm_in_set(d == 1 ? sl->f : sl->l, gv->nd[i].byte);
        const uint32_t k0 = gv->nd[i].tok_first, nk = gv->nd[i].tok_n;
        for (uint32_t k = 0; k < nk; k++) {
            const int32_t t = gv->toks[k0 + k];
            mask[t >> 6] |= 1ull << (t & 63);
        }
        i++;
    }
    return true;
}

/* The walk from a slice's state through its frontier only (gm_slice): the slice's tokens are in
 * the mask already; every other token leaves the class at a frontier node, whose parent's state
 * is known from its depth (lim). A byte group is passed over when no state a prefix can be in
 * takes its byte; a node's own subtree is walked as usual. */
static bool walk_front(grammar_matcher *m, const gm_slice *sl, const gm_limit *lim, uint64_t *mask,
                       uint64_t *visits) {
    const grammar_vocab *gv = m->gv;
    const int32_t d0 = m->dlvl[0];
    /* the bytes some state along the prefixes takes */
    /* (a frontier node's parent is at most max_depth - 1 bytes deep) */
    uint32_t deepest = lim->steps < gv->max_depth ? lim->steps : gv->max_depth - 1;
    if (lim->target >= 0) deepest = 1;
    uint64_t live[4] = {0, 0, 0, 0};
    for (uint32_t k = 0; k <= deepest; k++) {
        const int32_t s = k == 0 ? d0 : lim->target >= 0 ? lim->target : m->chain[k];
        if (!gm_dfa_direct(m, s)) return walk(m, 0, gv->n_nodes, sl, UINT32_MAX, mask, visits);
        for (int w = 0; w < 4; w++) live[w] |= m->dst[s].live[w];
    }
    for (int b = 0; b < 256; b++) {
        if (!((live[b >> 6] >> (b & 63)) & 1)) continue;
        for (uint32_t f = sl->fstart[b], z = sl->fstart[b + 1]; f < z; f++) {
            if (f + 8 < z) __builtin_prefetch(&gv->nd[sl->front[f + 8]]); /* they are far apart */
            const uint32_t i = sl->front[f], k = gv->nd[i].depth - 1u;
            /* past the chain: a prefix the count leaves dead (a longer one cannot be in a
             * token when the chain is unlimited) */
            if (lim->target < 0 && k > deepest) continue;
            const int32_t s = k == 0 ? d0 : lim->target >= 0 ? lim->target : m->chain[k];
            ++*visits;
            const int32_t next = gm_dfa_next(m, s, (uint8_t)b);
            if (next == -2) return false;
            if (next < 0) continue;
            m->dlvl[k] = s;
            if (!walk(m, i, gv->nd[i].end, NULL, UINT32_MAX, mask, visits)) return false;
        }
    }
    return true;
}

/* Bit counting in plain arithmetic: without -mpopcnt (never assumed) __builtin_popcountll is a
 * library call per word, twice as slow over a 150k-token mask. */
static int64_t popcount(const uint64_t *mask, size_t words) {
    uint64_t c = 0;
    for (size_t i = 0; i < words; i++) {
        uint64_t x = mask[i];
        x -= (x >> 1) & 0x5555555555555555ull;
        x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
        c += (x * 0x0101010101010101ull) >> 56;
    }
    return (int64_t)c;
}

int64_t grammar_matcher_mask(grammar_matcher *m, uint64_t *mask, shimmy_error *err) {
    const grammar_vocab *gv = m->gv;
    if (!gv) {
        core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar", "the matcher has no vocabulary");
        return -1;
    }
    if (m->failed) {
        gm_fail_error(m, err);
        return -1;
    }
    const size_t words = ((size_t)gv->n_vocab + 63) / 64;
    m->stats.masks++;
    const uint64_t key = state_key(&m->cur);
    gm_mask *hit = cache_find(m, key, &m->cur);
    if (hit) {
        hit->used = ++m->clock;
        m->stats.mask_hits++;
        memcpy(mask, hit->bits, words * sizeof *mask);
        return hit->count;
    }
    /* the automaton first: the slice for the walk's first state needs its tables */
    if (m->n_dst > DFA_FLUSH_STATES || m->tn > DFA_FLUSH_TRANS) gm_dfa_reset(m);
    if (!gm_state_copy(&m->tmp[0], &m->cur) || (m->dlvl[0] = gm_dfa_intern(m, &m->tmp[0])) < 0) {
        core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory for the grammar's automaton");
        return -1;
    }
    gm_limit lim;
    const gm_slice *sl = gm_slice_for(m, m->dlvl[0], &lim);
    const uint32_t limit = lim.dead_after ? UINT32_MAX : lim.chars; /* for the subtree test */
    if (m->failed) {
        gm_fail_error(m, err);
        return -1;
    }
    if (sl && lim.chars != UINT32_MAX) {
        const uint64_t *le = gv->le + words * lim.chars;
        for (size_t w = 0; w < words; w++) mask[w] = sl->bits[w] & le[w];
        m->stats.slice_masks++;
        m->stats.short_slices++;
    } else if (sl) {
        memcpy(mask, sl->bits, words * sizeof *mask);
        m->stats.slice_masks++;
    } else {
        memset(mask, 0, words * sizeof *mask);
    }
    if (gm_can_end(&m->cur))
        for (int32_t i = 0; i < gv->n_eog; i++) {
            const int32_t t = gv->eog[i];
            mask[t >> 6] |= 1ull << (t & 63);
        }
    uint64_t visits = 0;
    const bool ok = sl && sl->front && (lim.chars == UINT32_MAX || lim.dead_after)
                        ? walk_front(m, sl, &lim, mask, &visits)
                        : walk(m, 0, gv->n_nodes, sl, limit, mask, &visits);
    if (!ok) {
        gm_fail_error(m, err);
        return -1;
    }
    m->stats.trie_visits += visits;
    const int64_t count = popcount(mask, words); /* slices and subtrees may overlap */
    cache_store(m, key, &m->cur, mask, words, count);
    return count;
}
