/* The pushdown matcher: interned stacks, their memoized successors, and advancing a set of
 * stacks by a byte (code points assembled across bytes and tokens). See gm_impl.h. */
#include "gm_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(grammar_matcher *m, const char *msg) {
    if (m->failed) return;
    m->failed = true;
    snprintf(m->fail_msg, sizeof m->fail_msg, "%s", msg);
}

shimmy_status gm_fail_error(const grammar_matcher *m, shimmy_error *err) {
    return core_error(err,
                      strstr(m->fail_msg, "memory") ? SHIMMY_ERR_NOMEM : SHIMMY_ERR_UNSUPPORTED,
                      "grammar", "%s", m->fail_msg);
}

static bool grow(void **v, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *n = realloc(*v, c * elem);
    if (!n) return false;
    *v = n;
    *cap = c;
    return true;
}

static bool state_push(gm_state *s, int32_t id) {
    if (s->n == s->cap) {
        size_t cap = s->cap;
        if (!grow((void **)&s->v, &cap, (size_t)s->n + 1, sizeof *s->v)) return false;
        s->cap = (uint32_t)cap;
    }
    s->v[s->n++] = id;
    return true;
}

bool gm_state_copy(gm_state *dst, const gm_state *src) {
    size_t cap = dst->cap;
    if (!grow((void **)&dst->v, &cap, src->n ? src->n : 1, sizeof *dst->v)) return false;
    dst->cap = (uint32_t)cap;
    if (src->n) memcpy(dst->v, src->v, src->n * sizeof *dst->v);
    dst->n = src->n;
    dst->acc = src->acc;
    dst->need = src->need;
    dst->total = src->total;
    return true;
}

/* ---- interned nodes ---- */

static uint32_t node_hash(int32_t pos, int32_t parent) {
    uint64_t h = ((uint64_t)(uint32_t)pos << 32 | (uint32_t)parent) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static bool rehash(grammar_matcher *m, uint32_t cap) {
    uint32_t *t = malloc((size_t)cap * sizeof *t);
    if (!t) return false;
    memset(t, 0xFF, (size_t)cap * sizeof *t);
    for (uint32_t id = 0; id < m->n_nodes; id++) {
        uint32_t h = node_hash(m->npos[id], m->npar[id]) & (cap - 1);
        while (t[h] != UINT32_MAX) h = (h + 1) & (cap - 1);
        t[h] = id;
    }
    free(m->table);
    m->table = t;
    m->table_cap = cap;
    return true;
}

/* The node (pos, parent), created when new; -1 on failure (m->failed). */
static int32_t intern(grammar_matcher *m, int32_t pos, int32_t parent) {
    uint32_t h = node_hash(pos, parent) & (m->table_cap - 1);
    for (uint32_t id; (id = m->table[h]) != UINT32_MAX; h = (h + 1) & (m->table_cap - 1))
        if (m->npos[id] == pos && m->npar[id] == parent) return (int32_t)id;
    if (m->n_nodes >= GRAMMAR_MAX_NODES) {
        fail(m, "the grammar is too ambiguous: more stack states than the matcher's limit");
        return -1;
    }
    if (m->n_nodes == m->cap_nodes) {
        size_t c = m->cap_nodes, c2 = c, c3 = c, c4 = c, c5 = c, c6 = c;
        const size_t need = (size_t)m->n_nodes + 1;
        if (!grow((void **)&m->npos, &c, need, sizeof *m->npos) ||
            !grow((void **)&m->npar, &c2, need, sizeof *m->npar) ||
            !grow((void **)&m->succ_off, &c3, need, sizeof *m->succ_off) ||
            !grow((void **)&m->succ_len, &c4, need, sizeof *m->succ_len) ||
            !grow((void **)&m->vstamp, &c5, need, sizeof *m->vstamp) ||
            !grow((void **)&m->ustamp, &c6, need, sizeof *m->ustamp)) {
            fail(m, "out of memory for the grammar's stacks");
            return -1;
        }
        m->cap_nodes = (uint32_t)c;
    }
    const uint32_t id = m->n_nodes++;
    m->npos[id] = pos;
    m->npar[id] = parent;
    m->succ_off[id] = -1;
    m->succ_len[id] = 0;
    m->vstamp[id] = 0;
    m->ustamp[id] = 0;
    m->stats.nodes = m->n_nodes;
    if ((size_t)m->n_nodes * 2 > m->table_cap) {
        if (!rehash(m, m->table_cap * 2)) {
            fail(m, "out of memory for the grammar's stacks");
            return -1;
        }
    } else {
        m->table[h] = id;
    }
    return (int32_t)id;
}

static uint32_t next_stamp(grammar_matcher *m, uint32_t *cur, uint32_t *stamps) {
    if (++*cur == 0) { /* wrapped: forget every old mark */
        memset(stamps, 0, (size_t)m->n_nodes * sizeof *stamps);
        *cur = 1;
    }
    return *cur;
}

/* Continues execution from the work items in m->work[0..n): appends to m->succ every stack that
 * has a terminal on top, or node 0 when the grammar can end. Returns false on failure. */
static bool closure(grammar_matcher *m, size_t n) {
    const grammar *g = m->g;
    const uint32_t stamp = next_stamp(m, &m->vcur, m->vstamp);
    size_t visits = 0;
    while (n) {
        const int32_t id = m->work[--n];
        if (m->vstamp[id] == stamp) continue;
        m->vstamp[id] = stamp;
        if (++visits > (size_t)GRAMMAR_MAX_STACKS * 16) {
            fail(m, "the grammar is too ambiguous: one step expands to too many stacks");
            return false;
        }
        const int32_t pos = m->npos[id];
        const uint32_t e = id == 0 ? GE_MAKE(GE_END, 0) : g->elems[pos];
        if (id == 0 || GE_KIND(e) == GE_TERM) {
            if (!grow((void **)&m->succ, &m->cap_succ, m->n_succ + 1, sizeof *m->succ)) {
                fail(m, "out of memory for the grammar's stacks");
                return false;
            }
            m->succ[m->n_succ++] = id;
            continue;
        }
        const int32_t parent = m->npar[id];
        if (GE_KIND(e) == GE_END) { /* this alternative is done: return to the caller */
            if (!grow((void **)&m->work, &m->cap_work, n + 1, sizeof *m->work)) break;
            m->work[n++] = parent;
            continue;
        }
        /* a rule reference: push the return position (none in tail position) and enter each
         * alternative */
        const gram_rule *r = &g->rules[GE_ARG(e)];
        int32_t ret = parent;
        if (GE_KIND(g->elems[pos + 1]) != GE_END && (ret = intern(m, pos + 1, parent)) < 0)
            return false;
        if (!grow((void **)&m->work, &m->cap_work, n + r->n_alts, sizeof *m->work)) break;
        for (uint32_t a = 0; a < r->n_alts; a++) {
            const int32_t item = intern(m, (int32_t)g->alts[r->first_alt + a], ret);
            if (item < 0) return false;
            m->work[n++] = item;
        }
    }
    if (n) fail(m, "out of memory for the grammar's stacks");
    return !m->failed;
}

/* The stacks after node id's terminal matched (memoized). NULL on failure. */
static const int32_t *successors(grammar_matcher *m, int32_t id, uint32_t *n) {
    if (m->succ_off[id] < 0) {
        const int32_t pos = m->npos[id] + 1, parent = m->npar[id];
        int32_t item = GE_KIND(m->g->elems[pos]) == GE_END ? parent : intern(m, pos, parent);
        if (item < 0 || !grow((void **)&m->work, &m->cap_work, 1, sizeof *m->work)) {
            fail(m, "out of memory for the grammar's stacks");
            return NULL;
        }
        const size_t start = m->n_succ;
        m->work[0] = item;
        if (!closure(m, 1)) return NULL;
        if (m->n_succ > INT32_MAX) {
            fail(m, "the grammar is too ambiguous: too many stack states");
            return NULL;
        }
        m->succ_off[id] = (int32_t)start;
        m->succ_len[id] = (int32_t)(m->n_succ - start);
    }
    *n = (uint32_t)m->succ_len[id];
    return m->succ + m->succ_off[id];
}

/* out = union of successors of the stacks of in whose terminal has cp. */
static bool advance_cp(grammar_matcher *m, const gm_state *in, uint32_t cp, gm_state *out) {
    const grammar *g = m->g;
    out->n = 0;
    out->acc = 0;
    out->need = out->total = 0;
    const uint32_t stamp = next_stamp(m, &m->ucur, m->ustamp);
    for (uint32_t i = 0; i < in->n; i++) {
        const int32_t id = in->v[i];
        if (id == 0) continue;
        const gram_term *t = &g->terms[GE_ARG(g->elems[m->npos[id]])];
        if (!gram_term_has(g, t, cp)) continue;
        uint32_t ns;
        const int32_t *s = successors(m, id, &ns);
        if (!s) return false;
        for (uint32_t k = 0; k < ns; k++) {
            const int32_t x = s[k];
            if (m->ustamp[x] == stamp) continue;
            m->ustamp[x] = stamp;
            if (out->n >= GRAMMAR_MAX_STACKS) {
                fail(m, "the grammar is too ambiguous: more than 4096 stacks at one position");
                return false;
            }
            if (!state_push(out, x)) {
                fail(m, "out of memory for the grammar's stacks");
                return false;
            }
        }
    }
    return out->n > 0;
}

/* out = the stacks of in that could take some code point in [lo, hi] (a character begun). */
static bool filter_range(grammar_matcher *m, const gm_state *in, uint32_t lo, uint32_t hi,
                         gm_state *out) {
    const grammar *g = m->g;
    out->n = 0;
    for (uint32_t i = 0; i < in->n; i++) {
        const int32_t id = in->v[i];
        if (id == 0) continue;
        if (!gram_term_meets(g, &g->terms[GE_ARG(g->elems[m->npos[id]])], lo, hi)) continue;
        if (!state_push(out, id)) {
            fail(m, "out of memory for the grammar's stacks");
            return false;
        }
    }
    return out->n > 0;
}

/* A character begun in a state whose every stack takes all non-ASCII characters or none: which
 * character it becomes cannot matter, so the state does not record its bits (acc holds
 * GM_COLLAPSED | the next byte's range class) and far fewer distinct states arise. */
#define GM_COLLAPSED 0x80000000u

static bool uniform_high(const grammar_matcher *m, const gm_state *in) {
    const grammar *g = m->g;
    for (uint32_t i = 0; i < in->n; i++) {
        const int32_t id = in->v[i];
        if (id && g->terms[GE_ARG(g->elems[m->npos[id]])].high == GT_HIGH_SOME) return false;
    }
    return true;
}

/* the range of the byte after a lead (class 1-4 narrow the second byte of E0, ED, F0, F4) */
static const uint8_t cont_lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80};
static const uint8_t cont_hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};

static bool step_collapsed(grammar_matcher *m, const gm_state *in, uint8_t b, gm_state *out) {
    const grammar *g = m->g;
    if (in->need == 0) { /* a lead byte: keep the stacks that take every non-ASCII character */
        uint8_t total, cls = 0;
        if (b >= 0xC2 && b <= 0xDF) {
            total = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            total = 3, cls = b == 0xE0 ? 1 : b == 0xED ? 2 : 0;
        } else if (b >= 0xF0 && b <= 0xF4) {
            total = 4, cls = b == 0xF0 ? 3 : b == 0xF4 ? 4 : 0;
        } else {
            return false;
        }
        out->n = 0;
        for (uint32_t i = 0; i < in->n; i++) {
            const int32_t id = in->v[i];
            if (!id || g->terms[GE_ARG(g->elems[m->npos[id]])].high != GT_HIGH_ALL) continue;
            if (!state_push(out, id)) {
                fail(m, "out of memory for the grammar's stacks");
                return false;
            }
        }
        out->acc = GM_COLLAPSED | cls;
        out->need = (uint8_t)(total - 1);
        out->total = total;
        return out->n > 0;
    }
    const unsigned cls = in->acc & 7;
    if (b < cont_lo[cls] || b > cont_hi[cls]) return false;
    if (in->need == 1) return advance_cp(m, in, 0x80, out); /* any character: all take it */
    if (!gm_state_copy(out, in)) {
        fail(m, "out of memory for the grammar's stacks");
        return false;
    }
    out->acc = GM_COLLAPSED;
    out->need = (uint8_t)(in->need - 1);
    return true;
}

bool gm_step_byte(grammar_matcher *m, const gm_state *in, uint8_t b, gm_state *out) {
    if (m->failed) return false;
    if (b >= 0x80 && (in->acc & GM_COLLAPSED || (in->need == 0 && uniform_high(m, in))))
        return step_collapsed(m, in, b, out);
    if (in->need == 0) {
        if (b < 0x80) return advance_cp(m, in, b, out);
        uint8_t total;
        uint32_t acc;
        if (b >= 0xC2 && b <= 0xDF) {
            total = 2, acc = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            total = 3, acc = b & 0x0F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            total = 4, acc = b & 0x07;
        } else {
            return false; /* a continuation byte or a byte UTF-8 never uses */
        }
        out->acc = acc;
        out->need = (uint8_t)(total - 1);
        out->total = total;
    } else {
        if ((b & 0xC0) != 0x80) return false;
        const uint32_t acc = in->acc << 6 | (b & 0x3F);
        if (in->need == 1) {
            static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
            if (acc < min_cp[in->total] || acc > 0x10FFFF || (acc >= 0xD800 && acc <= 0xDFFF))
                return false; /* overlong, out of range or a surrogate */
            return advance_cp(m, in, acc, out);
        }
        out->acc = acc;
        out->need = (uint8_t)(in->need - 1);
        out->total = in->total;
    }
    /* the code points this prefix can still become, clipped to valid ones */
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    const unsigned shift = 6u * out->need;
    uint32_t lo = out->acc << shift, hi = lo | ((1u << shift) - 1);
    if (lo < min_cp[out->total]) lo = min_cp[out->total];
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (lo > hi) return false;
    return filter_range(m, in, lo, hi, out);
}

bool gm_can_end(const gm_state *s) {
    return s->need == 0 && s->n && s->v[0] == 0;
}

/* ---- the public matcher ---- */

static int cmp_id(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

void gm_canonical(gm_state *s) {
    if (s->n < 16) {
        for (uint32_t i = 1; i < s->n; i++)
            for (uint32_t j = i; j > 0 && s->v[j - 1] > s->v[j]; j--) {
                int32_t t = s->v[j];
                s->v[j] = s->v[j - 1];
                s->v[j - 1] = t;
            }
    } else {
        qsort(s->v, s->n, sizeof *s->v, cmp_id);
    }
}

shimmy_status grammar_matcher_new(grammar *g, const grammar_vocab *gv, grammar_matcher **out,
                                  shimmy_error *err) {
    *out = NULL;
    grammar_matcher *m = calloc(1, sizeof *m);
    if (!m) return core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory");
    m->g = grammar_ref(g);
    m->gv = gv;
    m->gv_serial = gv ? gv->serial : 0;
    shimmy_status st = SHIMMY_OK;
    if (!rehash(m, 1024) || intern(m, -1, -1) != 0) { /* node 0: the empty stack */
        st = core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory");
        goto fail;
    }
    /* the start: every alternative of root, returning to the empty stack */
    const gram_rule *root = &g->rules[g->root];
    if (!grow((void **)&m->work, &m->cap_work, root->n_alts, sizeof *m->work)) {
        st = core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory");
        goto fail;
    }
    for (uint32_t a = 0; a < root->n_alts; a++) {
        int32_t item = intern(m, (int32_t)g->alts[root->first_alt + a], 0);
        if (item < 0) break;
        m->work[a] = item;
    }
    if (m->failed || !closure(m, root->n_alts)) {
        st = gm_fail_error(m, err);
        goto fail;
    }
    for (size_t i = 0; i < m->n_succ; i++)
        if (!state_push(&m->init, m->succ[i])) {
            st = core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory");
            goto fail;
        }
    gm_canonical(&m->init);
    gm_dfa_classes(m);
    m->n_lvl = gv ? gv->max_depth + 1 : 0;
    if (gv && !(m->dlvl = calloc(m->n_lvl, sizeof *m->dlvl))) {
        st = core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory");
        goto fail;
    }
    if (!gm_state_copy(&m->cur, &m->init)) {
        st = core_error(err, SHIMMY_ERR_NOMEM, "grammar", "out of memory");
        goto fail;
    }
    *out = m;
    return SHIMMY_OK;
fail:
    grammar_matcher_free(m);
    return st;
}

static void destroy(grammar_matcher *m) {
    free(m->npos);
    free(m->npar);
    free(m->succ_off);
    free(m->succ_len);
    free(m->vstamp);
    free(m->ustamp);
    free(m->table);
    free(m->succ);
    free(m->work);
    free(m->init.v);
    free(m->cur.v);
    free(m->tmp[0].v);
    free(m->tmp[1].v);
    free(m->dlvl);
    gm_dfa_free(m);
    gm_mask_cache_free(m);
    gm_slice_free(m);
    free(m);
}

void grammar_matcher_free(grammar_matcher *m) {
    if (!m) return;
    grammar *g = m->g;
    destroy(m);
    grammar_unref(g);
}

void gm_destroy_pooled(grammar_matcher *m) {
    if (m) destroy(m);
}

/* What m holds, roughly (for the pool's bound; its slices belong to the vocabulary). */
static size_t footprint(const grammar_matcher *m) {
    size_t n = (size_t)m->cap_nodes * 24 + (size_t)m->table_cap * 4 + m->cap_succ * 4 +
               (size_t)m->cap_dst * sizeof *m->dst + m->cap_dpool * 4 + (size_t)m->dtab_cap * 4 +
               (size_t)m->tcap * 12 + (size_t)m->n_direct * 1024;
    for (size_t i = 0; m->gv && i < GM_MASK_CACHE; i++)
        if (m->cache[i].bits) n += ((size_t)m->gv->n_vocab + 63) / 64 * 8;
    return n;
}

shimmy_status grammar_matcher_acquire(grammar *g, const grammar_vocab *gv, grammar_matcher **out,
                                      shimmy_error *err) {
    pthread_mutex_lock(&g->pool_lock);
    grammar_matcher *m = g->pool;
    g->pool = NULL;
    pthread_mutex_unlock(&g->pool_lock);
    if (m && (m->failed || m->gv != gv || !gv || m->gv_serial != gv->serial)) {
        destroy(m); /* another vocabulary (or a broken one): not reusable */
        m = NULL;
    }
    if (!m) return grammar_matcher_new(g, gv, out, err);
    m->g = grammar_ref(g);
    grammar_matcher_reset(m);
    *out = m;
    return SHIMMY_OK;
}

void grammar_matcher_release(grammar_matcher *m) {
    if (!m) return;
    grammar *g = m->g;
    if (m->failed || footprint(m) > GRAMMAR_POOL_BYTES) {
        grammar_matcher_free(m);
        return;
    }
    pthread_mutex_lock(&g->pool_lock);
    grammar_matcher *old = g->pool;
    g->pool = m;
    m->g = g; /* kept for the pool's checks, without a reference */
    pthread_mutex_unlock(&g->pool_lock);
    gm_destroy_pooled(old);
    grammar_unref(g); /* may free g, and m with it */
}

void grammar_matcher_reset(grammar_matcher *m) {
    if (!gm_state_copy(&m->cur, &m->init)) m->failed = true;
}

/* Runs bytes from cur; the result is in the returned scratch state (NULL when refused). */
static gm_state *run_bytes(grammar_matcher *m, const char *bytes, size_t len) {
    if (m->failed) return NULL;
    if (len == 0) return gm_state_copy(&m->tmp[0], &m->cur) ? &m->tmp[0] : NULL;
    const gm_state *in = &m->cur;
    for (size_t i = 0; i < len; i++) {
        gm_state *out = &m->tmp[i & 1];
        if (!gm_step_byte(m, in, (uint8_t)bytes[i], out)) return NULL;
        in = out;
    }
    return (gm_state *)in;
}

bool grammar_matcher_allows_bytes(grammar_matcher *m, const char *bytes, size_t len) {
    return run_bytes(m, bytes, len) != NULL;
}

shimmy_status grammar_matcher_accept_bytes(grammar_matcher *m, const char *bytes, size_t len,
                                           shimmy_error *err) {
    gm_state *s = run_bytes(m, bytes, len);
    if (!s) {
        if (m->failed) return gm_fail_error(m, err);
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar",
                          "the text does not match the grammar");
    }
    gm_canonical(s);
    gm_state t = m->cur; /* swap: keeps both buffers */
    m->cur = *s;
    *s = t;
    return SHIMMY_OK;
}

bool grammar_matcher_can_end(const grammar_matcher *m) {
    return !m->failed && gm_can_end(&m->cur);
}

bool grammar_matcher_is_done(const grammar_matcher *m) {
    return !m->failed && m->cur.need == 0 && m->cur.n == 1 && m->cur.v[0] == 0;
}

bool grammar_matcher_allows_token(grammar_matcher *m, int32_t token) {
    const grammar_vocab *gv = m->gv;
    if (!gv || token < 0 || token >= gv->n_vocab) return false;
    if (gv->kind[token] == GV_EOG) return grammar_matcher_can_end(m);
    if (gv->kind[token] != GV_TEXT) return false;
    const uint32_t off = gv->piece_off[token];
    return run_bytes(m, gv->pieces + off, gv->piece_off[token + 1] - off) != NULL;
}

shimmy_status grammar_matcher_accept_token(grammar_matcher *m, int32_t token, shimmy_error *err) {
    const grammar_vocab *gv = m->gv;
    if (!gv || token < 0 || token >= gv->n_vocab)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar",
                          "token %d is not in the vocabulary", (int)token);
    if (gv->kind[token] == GV_EOG) {
        if (grammar_matcher_can_end(m)) return SHIMMY_OK;
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar",
                          "end of generation before the grammar is complete");
    }
    if (gv->kind[token] != GV_TEXT)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar",
                          "token %d is a special token, never allowed in constrained text",
                          (int)token);
    const uint32_t off = gv->piece_off[token];
    return grammar_matcher_accept_bytes(m, gv->pieces + off, gv->piece_off[token + 1] - off, err);
}

void grammar_matcher_stats(const grammar_matcher *m, grammar_stats *out) {
    *out = m->stats;
}
