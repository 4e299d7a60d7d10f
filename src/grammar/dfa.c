/* The lazily built automaton under the mask walk (see gm_impl.h). Walking a 150k-token trie
 * steps a state by a byte hundreds of thousands of times, mostly through the same few states
 * (inside a string every ordinary byte leads back to the same set of stacks); interning the
 * sets and memoizing transitions turns each step into a hash lookup. */
#include "gm_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t set_hash(const int32_t *v, uint32_t n, uint32_t acc, uint8_t need, uint8_t total) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)acc << 16 | (uint64_t)need << 8 | total);
    for (uint32_t i = 0; i < n; i++) h = (h ^ (uint32_t)v[i]) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

/* States with a direct table at most (1 KiB each). */
#define MAX_DIRECT 2048
#define HOT_HITS   32

static void free_direct(grammar_matcher *m) {
    for (uint32_t i = 0; i < m->n_dst; i++) free(m->dst[i].direct);
    m->n_direct = 0;
}

void gm_dfa_free(grammar_matcher *m) {
    free_direct(m);
    free(m->dst);
    free(m->dpool);
    free(m->dtab);
    free(m->tkey);
    free(m->tval);
    m->dst = NULL;
    m->dpool = NULL;
    m->dtab = NULL;
    m->tkey = NULL;
    m->tval = NULL;
    m->n_dst = m->cap_dst = 0;
    m->n_dpool = m->cap_dpool = 0;
    m->dtab_cap = m->tcap = m->tn = 0;
}

void gm_dfa_reset(grammar_matcher *m) {
    free_direct(m);
    m->n_dst = 0;
    m->n_dpool = 0;
    m->tn = 0;
    if (m->dtab) memset(m->dtab, 0xFF, (size_t)m->dtab_cap * sizeof *m->dtab);
    if (m->tkey) memset(m->tkey, 0, (size_t)m->tcap * sizeof *m->tkey);
}

static bool dtab_grow(grammar_matcher *m) {
    const uint32_t cap = m->dtab_cap ? m->dtab_cap * 2 : 1024;
    uint32_t *t = malloc((size_t)cap * sizeof *t);
    if (!t) return false;
    memset(t, 0xFF, (size_t)cap * sizeof *t);
    for (uint32_t id = 0; id < m->n_dst; id++) {
        uint32_t h = (uint32_t)m->dst[id].hash & (cap - 1);
        while (t[h] != UINT32_MAX) h = (h + 1) & (cap - 1);
        t[h] = id;
    }
    free(m->dtab);
    m->dtab = t;
    m->dtab_cap = cap;
    return true;
}

static bool trans_grow(grammar_matcher *m) {
    const uint32_t cap = m->tcap ? m->tcap * 2 : 4096;
    uint64_t *k = calloc(cap, sizeof *k);
    int32_t *v = malloc((size_t)cap * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return false;
    }
    for (uint32_t i = 0; i < m->tcap; i++) {
        if (!m->tkey[i]) continue;
        uint32_t h = (uint32_t)((m->tkey[i] * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
        while (k[h]) h = (h + 1) & (cap - 1);
        k[h] = m->tkey[i];
        v[h] = m->tval[i];
    }
    free(m->tkey);
    free(m->tval);
    m->tkey = k;
    m->tval = v;
    m->tcap = cap;
    return true;
}

int32_t gm_dfa_intern(grammar_matcher *m, gm_state *s) {
    gm_canonical(s);
    const uint64_t h = set_hash(s->v, s->n, s->acc, s->need, s->total);
    if ((m->n_dst + 1) * 2 > m->dtab_cap && !dtab_grow(m)) return -2;
    uint32_t i = (uint32_t)h & (m->dtab_cap - 1);
    for (uint32_t id; (id = m->dtab[i]) != UINT32_MAX; i = (i + 1) & (m->dtab_cap - 1)) {
        const gm_dstate *d = &m->dst[id];
        if (d->hash == h && d->n == s->n && d->acc == s->acc && d->need == s->need &&
            d->total == s->total && memcmp(m->dpool + d->off, s->v, s->n * sizeof *s->v) == 0)
            return (int32_t)id;
    }
    if (m->n_dst == m->cap_dst) {
        const uint32_t cap = m->cap_dst ? m->cap_dst * 2 : 256;
        gm_dstate *n = realloc(m->dst, (size_t)cap * sizeof *n);
        if (!n) return -2;
        m->dst = n;
        m->cap_dst = cap;
    }
    if (m->n_dpool + s->n > m->cap_dpool) {
        size_t cap = m->cap_dpool ? m->cap_dpool : 1024;
        while (cap < m->n_dpool + s->n) cap *= 2;
        int32_t *p = realloc(m->dpool, cap * sizeof *p);
        if (!p) return -2;
        m->dpool = p;
        m->cap_dpool = cap;
    }
    const uint32_t id = m->n_dst++;
    m->dst[id] = (gm_dstate){.off = (uint32_t)m->n_dpool,
                             .n = s->n,
                             .acc = s->acc,
                             .need = s->need,
                             .total = s->total,
                             .hash = h,
                             .uni = -1};
    if (s->n) memcpy(m->dpool + m->n_dpool, s->v, s->n * sizeof *s->v);
    m->n_dpool += s->n;
    m->dtab[i] = id;
    return (int32_t)id;
}

/* Byte classes. An ASCII byte's step depends only on which terminals take it, so bytes that
 * every terminal takes alike are one class (refined terminal by terminal). A byte >= 0x80 is
 * one class of its own, unless no terminal takes some non-ASCII characters but not all: then
 * every partial character is collapsed (matcher.c) and a byte's step depends only on its UTF-8
 * role (the lead classes and the three continuation ranges that step_collapsed tells apart). */
void gm_dfa_classes(grammar_matcher *m) {
    const grammar *g = m->g;
    uint8_t *cls = m->bclass;
    memset(cls, 0, 128);
    uint32_t n = 1;
    bool some = false;
    for (uint32_t t = 0; t < g->n_terms; t++) {
        const gram_term *term = &g->terms[t];
        some = some || term->high == GT_HIGH_SOME;
        if (n == 128 || (t && memcmp(term->ascii, g->terms[t - 1].ascii, 16) == 0)) continue;
        int16_t in[128], out[128]; /* old class -> new class, for bytes in / out of term */
        for (uint32_t c = 0; c < n; c++) in[c] = out[c] = -1;
        uint32_t k = 0;
        for (int b = 0; b < 128; b++) {
            const bool has = (term->ascii[b >> 6] >> (b & 63)) & 1;
            int16_t *map = has ? &in[cls[b]] : &out[cls[b]];
            if (*map < 0) *map = (int16_t)k++;
            cls[b] = (uint8_t)*map;
        }
        n = k;
    }
    if (some) {
        for (int b = 128; b < 256; b++) cls[b] = (uint8_t)(n + (uint32_t)(b - 128));
        n += 128;
    } else {
        /* 80-8F, 90-9F, A0-BF (continuation ranges), C0-C1 (never), C2-DF, E0, E1-EC and EE-EF,
         * ED, F0, F1-F3, F4, F5-FF (never) */
        static const uint8_t ends[] = {0x8F, 0x9F, 0xBF, 0xC1, 0xDF, 0xE0, 0xEC,
                                       0xED, 0xEF, 0xF0, 0xF3, 0xF4, 0xFF};
        static const uint8_t role[] = {0, 1, 2, 3, 4, 5, 6, 7, 6, 8, 9, 10, 3};
        for (int b = 128, r = 0; b < 256; b++) {
            while (b > ends[r]) r++;
            cls[b] = (uint8_t)(n + role[r]);
        }
        n += 11;
    }
    for (int b = 255; b >= 0; b--) m->brep[cls[b]] = (uint8_t)b;
    m->n_bclass = n;
}

static int32_t step_hashed(grammar_matcher *m, int32_t d, uint8_t b);

/* Gives a hot state all 256 transitions in a plain array, and its self-loop bytes: one step
 * per byte class. */
/* An ASCII character's step from a state with no partial character is the union of the
 * successors of the stacks whose terminal takes it, so it depends only on which of them do:
 * classes that the same stacks take share one step (a grammar with many literals has many
 * classes, and few stacks at a time). Bit k of the result: stack k of d takes byte b; 0 also
 * when d has too many stacks to tell (then every class is stepped). */
static uint64_t takers(const grammar_matcher *m, const gm_dstate *ds, uint8_t b) {
    const grammar *g = m->g;
    uint64_t bits = 0;
    for (uint32_t k = 0; k < ds->n; k++) {
        const int32_t id = m->dpool[ds->off + k];
        if (id && gram_term_has(g, &g->terms[GE_ARG(g->elems[m->npos[id]])], b)) bits |= 1ull << k;
    }
    return bits;
}

static void make_direct(grammar_matcher *m, int32_t d) {
    int32_t *t = malloc(256 * sizeof *t), byclass[256];
    if (!t) return; /* the hash keeps working */
    const bool by_takers = m->dst[d].need == 0 && m->dst[d].n <= 64;
    uint64_t seen[128];
    int32_t seen_to[128];
    uint32_t n_seen = 0;
    for (uint32_t c = 0; c < m->n_bclass; c++) {
        const uint8_t b = m->brep[c];
        uint32_t k = 0;
        uint64_t who = 0;
        if (b >= 0x80) {
            byclass[c] = GM_LAZY;
            continue;
        }
        if (by_takers) {
            if (!(who = takers(m, &m->dst[d], b))) {
                byclass[c] = -1; /* no stack takes it */
                continue;
            }
            while (k < n_seen && seen[k] != who) k++;
            if (k < n_seen) {
                byclass[c] = seen_to[k];
                continue;
            }
        }
        if ((byclass[c] = step_hashed(m, d, b)) == -2) {
            free(t);
            return;
        }
        if (by_takers && n_seen < 128) {
            seen[n_seen] = who;
            seen_to[n_seen++] = byclass[c];
        }
    }
    for (int b = 0; b < 256; b++) t[b] = byclass[m->bclass[b]];
    gm_dstate *ds = &m->dst[d]; /* after the steps: m->dst may have moved */
    ds->direct = t;
    for (int b = 0; b < 128; b++)
        if (t[b] == d) ds->loop[b >> 6] |= 1ull << (b & 63);
    for (int b = 0; b < 256; b++)
        if (t[b] >= 0 || t[b] == GM_LAZY) ds->live[b >> 6] |= 1ull << (b & 63);
    /* the uniform step (majority vote over the live ASCII targets) */
    int32_t votes = 0;
    for (int b = 1; b < 128; b++) {
        if (t[b] < 0) continue;
        if (votes == 0) ds->uni = t[b];
        votes += t[b] == ds->uni ? 1 : -1;
    }
    for (int b = 1; b < 128; b++)
        if (t[b] >= 0 && t[b] == ds->uni) ds->uset[b >> 6] |= 1ull << (b & 63);
    m->n_direct++;
    /* every non-ASCII character leads back here when each stack's class takes all of them or
     * none: then one of them (U+0080) speaks for all */
    if (ds->need) return;
    const grammar *g = m->g;
    bool all = true, some = false;
    for (uint32_t k = 0; k < ds->n && all; k++) {
        const int32_t id = m->dpool[ds->off + k];
        if (id == 0) continue;
        const gram_term *term = &g->terms[GE_ARG(g->elems[m->npos[id]])];
        const gram_range *r = g->ranges + term->first;
        bool covers = false, touches = false;
        for (uint32_t j = 0; j < term->n; j++) {
            if (r[j].hi >= 0x80) touches = true;
            if (r[j].lo <= 0x80 && r[j].hi >= 0xD7FF)
                covers = j + 1 < term->n && r[j + 1].lo <= 0xE000 && r[j + 1].hi == 0x10FFFF;
            if (r[j].lo <= 0x80 && r[j].hi == 0x10FFFF) covers = true;
        }
        if (covers)
            some = true;
        else if (touches)
            all = false;
    }
    if (!all || !some) return;
    const int32_t mid = gm_dfa_next(m, d, 0xC2);
    const int32_t back = mid >= 0 ? gm_dfa_next(m, mid, 0x80) : -1;
    m->dst[d].loop_high = back == d;
    m->dst[d].uni_high = back >= 0 && back == m->dst[d].uni;
}

bool gm_dfa_direct(grammar_matcher *m, int32_t d) {
    if (m->dst[d].direct) return true;
    if (m->n_direct >= MAX_DIRECT) return false;
    make_direct(m, d);
    return m->dst[d].direct != NULL;
}

int32_t gm_dfa_step(grammar_matcher *m, int32_t d, uint8_t b) {
    if (++m->dst[d].hits == HOT_HITS && m->n_direct < MAX_DIRECT) {
        make_direct(m, d);
        if (m->dst[d].direct) return gm_dfa_next(m, d, b);
        if (m->failed) return -2;
    }
    return step_hashed(m, d, b);
}

int32_t gm_dfa_fill(grammar_matcher *m, int32_t d, uint8_t b) {
    const int32_t x = step_hashed(m, d, b);
    if (x == -2) return -2;
    gm_dstate *ds = &m->dst[d]; /* after the step: m->dst may have moved */
    for (int k = 128; k < 256; k++) {
        if (m->bclass[k] != m->bclass[b]) continue;
        ds->direct[k] = x;
        if (x < 0) ds->live[k >> 6] &= ~(1ull << (k & 63));
    }
    return x;
}

/* Memoized per byte class (b stands for its class). */
static int32_t step_hashed(grammar_matcher *m, int32_t d, uint8_t b) {
    b = m->brep[m->bclass[b]];
    const uint64_t key = ((uint64_t)(uint32_t)d << 8 | b) + 1;
    if (m->tcap) {
        uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (m->tcap - 1);
        for (; m->tkey[h]; h = (h + 1) & (m->tcap - 1))
            if (m->tkey[h] == key) return m->tval[h];
    }
    const gm_dstate *ds = &m->dst[d];
    const gm_state in = {m->dpool + ds->off, ds->n, ds->n, ds->acc, ds->need, ds->total};
    int32_t next = -1;
    if (gm_step_byte(m, &in, b, &m->tmp[1])) next = gm_dfa_intern(m, &m->tmp[1]);
    if (m->failed) return -2;
    if (next == -2 || ((m->tn + 1) * 2 > m->tcap && !trans_grow(m))) {
        m->failed = true;
        snprintf(m->fail_msg, sizeof m->fail_msg, "out of memory for the grammar's automaton");
        return -2;
    }
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (m->tcap - 1);
    while (m->tkey[h]) h = (h + 1) & (m->tcap - 1);
    m->tkey[h] = key;
    m->tval[h] = next;
    m->tn++;
    return next;
}
