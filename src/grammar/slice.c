/* Slices (see gm_impl.h): the tokens that a string-body-like state allows by a byte-class test
 * alone, precomputed as a bitset over token ids, with the frontier where paths leave the class.
 * A slice depends only on the vocabulary and two byte sets, not on the grammar's stacks, so the
 * few a grammar needs (one per kind of string body or counted class) are built once per
 * vocabulary and shared by every matcher and grammar; a mask walk that starts in such a state
 * copies the bitset (cut to the characters a count has left) and walks only the frontier. */
#include "gm_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Fewer first bytes than this into the looping state: the slice would save little. */
#define SLICE_MIN_BYTES 16
/* Vocabularies with longer tokens get no chain slices (each chain state costs a direct table). */
#define MAX_CHAIN 512

/* ---- the vocabulary's cache ---- */

#define GV_SLICES 32 /* slices a vocabulary keeps (least recently used out) */

struct gv_slice_cache {
    pthread_mutex_t lock;
    gm_slice *s[GV_SLICES]; /* the cache's references */
    uint64_t used[GV_SLICES];
    uint64_t clock;
};

static void slice_unref(gm_slice *s) {
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(s->bits);
        free(s->front);
        free(s);
    }
}

gv_slice_cache *gv_slice_cache_new(void) {
    gv_slice_cache *c = calloc(1, sizeof *c);
    if (c && pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void gv_slice_cache_free(gv_slice_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < GV_SLICES; i++) slice_unref(c->s[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static bool same_key(const gm_slice *a, const gm_slice *b) {
    return memcmp(a->f, b->f, sizeof a->f) == 0 && memcmp(a->l, b->l, sizeof a->l) == 0 &&
           a->high == b->high && a->fhigh == b->fhigh;
}

/* A referenced slice of key from the cache, or NULL. Locked by the caller. */
static gm_slice *cache_find(gv_slice_cache *c, const gm_slice *key) {
    for (size_t i = 0; i < GV_SLICES; i++)
        if (c->s[i] && same_key(c->s[i], key)) {
            c->used[i] = ++c->clock;
            __atomic_add_fetch(&c->s[i]->refs, 1, __ATOMIC_RELAXED);
            return c->s[i];
        }
    return NULL;
}

void gm_slice_free(grammar_matcher *m) {
    for (size_t i = 0; i < GM_SLICES; i++) slice_unref(m->slices[i]);
    memset(m->slices, 0, sizeof m->slices);
    free(m->slpath);
    m->slpath = NULL;
    free(m->chain);
    m->chain = NULL;
}

static int cmp_u32(const void *a, const void *b) {
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The nodes where the slice's prefixes end: the walk the mask does, with the class test only.
 * Every node examined has its path inside the slice (the others are passed over with their
 * subtrees). Fills front (room for every node) with the nodes passed over because their byte
 * leaves the class, in preorder, and returns their number (-1 when memory is short); sets
 * s->deepest from the paths inside the class.
 * The trie is cold in cache when a new class comes (it is larger than the caches and the pass
 * jumps across it), and a depth-first walk would wait for each jump in turn. So the nodes to
 * examine go through a queue (a node and where its run of siblings stops), each prefetched as it
 * is queued: by the time it comes out, its memory has arrived, and many jumps are in flight. */
static int64_t frontier(const grammar_vocab *gv, gm_slice *s, uint32_t *front) {
    const uint32_t n = gv->n_nodes;
    uint32_t *qn = malloc(((size_t)n + 1) * sizeof *qn), *qs = malloc(((size_t)n + 1) * sizeof *qs);
    if (!qn || !qs) {
        free(qn);
        free(qs);
        return -1;
    }
    uint32_t head = 0, tail = 0, n_front = 0;
    if (n) qn[tail] = 0, qs[tail++] = n; /* every node is queued at most once */
    while (head < tail) {
        const uint32_t i = qn[head], stop = qs[head++];
        const gv_node *nd = &gv->nd[i];
        if (nd->end < stop) { /* the next sibling */
            __builtin_prefetch(&gv->nd[nd->end]);
            qn[tail] = nd->end, qs[tail++] = stop;
        }
        const bool first = nd->depth == 1;
        if ((!first || gm_slice_first(s, nd->byte)) && gm_slice_covers(gv, i, s)) {
            if (nd->depth - 1u + nd->height > s->deepest) s->deepest = nd->depth - 1u + nd->height;
            continue;
        }
        if (gm_in_set(first ? s->f : s->l, nd->byte)) {
            if (nd->depth > s->deepest) s->deepest = nd->depth;
            if (i + 1 < nd->end) qn[tail] = i + 1, qs[tail++] = nd->end; /* the first child */
            continue;
        }
        front[n_front++] = i;
    }
    free(qn);
    free(qs);
    qsort(front, n_front, sizeof *front, cmp_u32);
    return n_front;
}

/* Computes s's tokens and its frontier grouped by byte. The tokens are the well-formed text
 * tokens less those under the frontier (the others are in subtrees the class covers or end on
 * a prefix inside it). False when memory is short. */
static bool build(const grammar_vocab *gv, gm_slice *s) {
    free(s->front);
    s->front = NULL;
    s->deepest = 0;
    uint32_t *tmp = malloc(((size_t)gv->n_nodes + 1) * sizeof *tmp);
    if (!tmp) return false;
    const int64_t nf = frontier(gv, s, tmp);
    if (nf < 0) {
        free(tmp);
        return false;
    }
    const uint32_t n = (uint32_t)nf;
    uint32_t *front = malloc((n ? n : 1) * sizeof *front);
    if (!front) {
        free(tmp);
        return false;
    }
    const size_t words = ((size_t)gv->n_vocab + 63) / 64;
    memcpy(s->bits, gv->wf, words * sizeof *s->bits);
    memset(s->fstart, 0, sizeof s->fstart);
    for (uint32_t k = 0; k < n; k++) {
        if (k + 8 < n) __builtin_prefetch(&gv->nd[tmp[k + 8]]);
        const gv_node *nd = &gv->nd[tmp[k]];
        s->fstart[nd->byte + 1]++;
        for (uint32_t j = nd->tok_first, z = gv->nd[nd->end].tok_first; j < z; j++) {
            const int32_t t = gv->toks[j];
            s->bits[t >> 6] &= ~(1ull << (t & 63));
        }
    }
    for (int b = 0; b < 256; b++) s->fstart[b + 1] += s->fstart[b];
    uint32_t at[256];
    memcpy(at, s->fstart, sizeof at);
    for (uint32_t k = 0; k < n; k++) front[at[gv->nd[tmp[k]].byte]++] = tmp[k];
    free(tmp);
    s->front = front;
    return true;
}

/* The vocabulary's slice of key (a reference), built outside the lock when it is new (two
 * threads may both build one; the first in the cache wins). NULL when memory is short. */
static gm_slice *shared(const grammar_vocab *gv, const gm_slice *key) {
    gv_slice_cache *c = gv->slices;
    if (!c) return NULL;
    pthread_mutex_lock(&c->lock);
    gm_slice *s = cache_find(c, key);
    pthread_mutex_unlock(&c->lock);
    if (s) return s;
    const size_t words = ((size_t)gv->n_vocab + 63) / 64;
    if (!(s = malloc(sizeof *s))) return NULL;
    *s = *key;
    s->refs = 1; /* the caller's */
    s->front = NULL;
    if (!(s->bits = malloc(words * sizeof *s->bits)) || !build(gv, s)) {
        free(s->bits);
        free(s);
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    gm_slice *won = cache_find(c, key);
    if (!won) {
        size_t v = 0;
        for (size_t i = 0; i < GV_SLICES; i++) {
            if (!c->s[i]) {
                v = i;
                break;
            }
            if (c->used[i] < c->used[v]) v = i;
        }
        slice_unref(c->s[v]);
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED); /* the cache's */
        c->s[v] = s;
        c->used[v] = ++c->clock;
    }
    pthread_mutex_unlock(&c->lock);
    if (won) {
        slice_unref(s);
        return won;
    }
    return s;
}

static int popcount2(const uint64_t s[2]) {
    return __builtin_popcountll(s[0]) + __builtin_popcountll(s[1]);
}

/* A counted repetition (`[^{}<>]{1,600}`) has no looping state, but each state of it takes the
 * class's characters into the next (uni, uset, uni_high): along such a chain of c steps the
 * tokens whose characters all take every step, and that have at most c characters, are allowed.
 * Their class does not depend on the count, so one slice serves every count: the walk takes
 * the slice's tokens of at most c characters (gv->le) and walks only what is longer or leaves
 * the class. Gives the class in key and returns c (0: no chain of a class worth a slice; the
 * longest token's length: any count at least that long); *end is the state after c steps. */
static uint32_t chain_key(grammar_matcher *m, int32_t d, gm_slice *key, int32_t *end) {
    const uint32_t need = m->gv->max_depth;
    uint64_t c[2] = {~1ull, ~0ull};
    bool high = true;
    uint32_t j = 0;
    for (; j < need && j < MAX_CHAIN; j++) {
        m->chain[j] = d;
        if (!gm_dfa_direct(m, d)) break;
        const gm_dstate *ds = &m->dst[d];
        const uint64_t n[2] = {c[0] & ds->uset[0], c[1] & ds->uset[1]};
        if (ds->uni < 0 || popcount2(n) < SLICE_MIN_BYTES) break;
        c[0] = n[0], c[1] = n[1];
        high = high && ds->uni_high;
        d = ds->uni;
    }
    *key = (gm_slice){.f = {c[0], c[1]}, .l = {c[0], c[1]}, .high = high, .fhigh = high};
    *end = m->chain[j] = d;
    return j;
}

/* True when state d refuses every character of the slice's class: once a count is used up, a
 * token that stays in the class is dead, so the walk need not go deeper than the count. */
static bool refuses_class(grammar_matcher *m, int32_t d, const gm_slice *key) {
    if (!gm_dfa_direct(m, d)) return false;
    const int32_t *t = m->dst[d].direct;
    for (int b = 0; b < 128; b++)
        if (gm_in_set(key->l, (uint8_t)b) && t[b] >= 0) return false;
    for (int b = 0xC2; key->high && b <= 0xF4; b++) /* the lead bytes of non-ASCII characters */
        if (gm_dfa_next(m, d, (uint8_t)b) != -1) return false;
    return true;
}

const gm_slice *gm_slice_for(grammar_matcher *m, int32_t d, gm_limit *limit) {
    const grammar_vocab *gv = m->gv;
    *limit = (gm_limit){UINT32_MAX, false, -1, 0};
    if (!m->slpath && !(m->slpath = calloc(m->n_lvl ? m->n_lvl : 1, 1))) return NULL;
    if (!m->chain && !(m->chain = malloc((m->n_lvl ? m->n_lvl : 1) * sizeof *m->chain)))
        return NULL;
    /* a direct table costs a step per byte class, a small part of a walk */
    if (!gm_dfa_direct(m, d)) return NULL;
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
    limit->target = target;
    if (popcount2(key.f) < SLICE_MIN_BYTES) {
        limit->target = -1;
        int32_t end;
        const uint32_t c = chain_key(m, d, &key, &end);
        if (c == 0) return NULL;
        limit->steps = c;
        /* the sets of gv->le stop at n_le - 1 characters: a longer count is taken as that long
         * (fewer tokens from the slice, the walk finds the others) */
        if (c < gv->max_depth && c <= gv->max_chars) {
            limit->chars = c < gv->n_le ? c : gv->n_le - 1;
            limit->dead_after = limit->chars == c && refuses_class(m, end, &key);
        }
    }
    size_t victim = 0;
    gm_slice *sl = NULL;
    for (size_t i = 0; i < GM_SLICES && !sl; i++) {
        if (m->slices[i] && same_key(m->slices[i], &key)) {
            m->slice_used[i] = ++m->clock;
            sl = m->slices[i];
        } else if (!m->slices[i] ||
                   (m->slices[victim] && m->slice_used[i] < m->slice_used[victim])) {
            victim = i;
        }
    }
    if (!sl) {
        if (!(sl = shared(gv, &key))) return NULL;
        slice_unref(m->slices[victim]);
        m->slices[victim] = sl;
        m->slice_used[victim] = ++m->clock;
    }
    /* a count with at least as many characters left as the class's longest path is as good as
     * no count: every token of the slice fits, and no path inside the class outlasts the chain */
    if (limit->chars != UINT32_MAX && sl->deepest <= limit->steps) {
        limit->chars = UINT32_MAX;
        limit->dead_after = false;
    }
    return sl;
}
