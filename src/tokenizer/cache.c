/* A per-call memo of piece -> ids. Both algorithms encode small independent pieces (BPE words
 * after pre-tokenization, SPM segments between cuts) whose ids depend on nothing but their
 * bytes, and natural text repeats them a lot ("the", " of", "\n"), so a repeated piece costs one
 * hash probe instead of a merge loop. It lives in the call's scratch (the vocab stays
 * immutable and shareable); when full it starts over. */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_MIN 256 /* slots; powers of two. Small prompts pay for a small table only. */
#define CACHE_MAX 8192

typedef struct tok_cache_ent {
    uint64_t h; /* 0 = empty */
    uint32_t key_off, key_len, ids_off, ids_n;
} tok_cache_ent;

static void cache_reset(tok_scratch *s) {
    memset(s->cache, 0, (s->cache_mask + 1) * sizeof *s->cache);
    s->cache_used = 0;
    s->n_ckeys = 0;
    s->n_cids = 0;
}

/* Doubles the table (entries keep their key and id storage); false when it may not grow. */
static bool cache_grow(tok_scratch *s) {
    uint32_t slots = s->cache ? (s->cache_mask + 1) * 2 : CACHE_MIN;
    if (slots > CACHE_MAX) return false;
    tok_cache_ent *t = core_calloc(slots, sizeof *t);
    if (!t) return false;
    for (uint32_t i = 0; s->cache && i <= s->cache_mask; i++) {
        if (s->cache[i].h == 0) continue;
        uint32_t j = (uint32_t)s->cache[i].h & (slots - 1);
        while (t[j].h != 0) j = (j + 1) & (slots - 1);
        t[j] = s->cache[i];
    }
    free(s->cache);
    s->cache = t;
    s->cache_mask = slots - 1;
    return true;
}

uint64_t tok_cache_hash(const char *w, size_t n) {
    return tok_hash(w, n) | 1;
}

bool tok_cache_get(tok_scratch *s, const char *w, size_t n, uint64_t h, tok_buf *out) {
    if (!s->cache || n > TOK_CACHE_MAX_KEY) return false;
    for (uint32_t i = (uint32_t)h & s->cache_mask;; i = (i + 1) & s->cache_mask) {
        const tok_cache_ent *e = &s->cache[i];
        if (e->h == 0) return false;
        if (e->h != h || e->key_len != n || memcmp(s->ckeys + e->key_off, w, n) != 0) continue;
        if (out->n + e->ids_n > out->cap &&
            !tok_grow((void **)&out->ids, &out->cap, out->n + e->ids_n, sizeof *out->ids))
            return false; /* the caller encodes the piece and reports NOMEM itself */
        if (e->ids_n) memcpy(out->ids + out->n, s->cids + e->ids_off, e->ids_n * sizeof *out->ids);
        out->n += e->ids_n;
        return true;
    }
}

void tok_cache_put(tok_scratch *s, const char *w, size_t n, uint64_t h, const int32_t *ids,
                   size_t k) {
    if (n > TOK_CACHE_MAX_KEY || k > TOK_CACHE_MAX_KEY) return;
    if (!s->cache && !cache_grow(s)) return; /* a memo is optional */
    if (s->cache_used >= (s->cache_mask + 1) / 4 * 3 && !cache_grow(s)) cache_reset(s);
    if (!tok_grow((void **)&s->ckeys, &s->cap_ckeys, s->n_ckeys + n, 1) ||
        !tok_grow((void **)&s->cids, &s->cap_cids, s->n_cids + k, sizeof *s->cids))
        return;
    uint32_t i = (uint32_t)h & s->cache_mask;
    while (s->cache[i].h != 0) i = (i + 1) & s->cache_mask;
    memcpy(s->ckeys + s->n_ckeys, w, n);
    if (k) memcpy(s->cids + s->n_cids, ids, k * sizeof *ids);
    s->cache[i] =
        (tok_cache_ent){h, (uint32_t)s->n_ckeys, (uint32_t)n, (uint32_t)s->n_cids, (uint32_t)k};
    s->n_ckeys += n;
    s->n_cids += k;
    s->cache_used++;
}
