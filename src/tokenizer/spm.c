/* SentencePiece-style BPE (tokenizer.ggml.model = "llama"), the engine's variant.
 *
 * Spaces are spelled U+2581 and a dummy-prefix space starts every fragment that follows the
 * beginning or a special token. The text starts as one symbol per UTF-8 character (by lead byte
 * only, no validation: a truncated sequence is a short symbol); the adjacent pair whose
 * concatenation is the highest-scoring vocabulary piece is merged first, ties to the left.
 * Symbols left that are not pieces are emitted as <0xXX> byte tokens.
 *
 * Speed: one queue over a long text is slow (a million symbols), so the text is cut into
 * segments wherever no vocabulary piece contains the two bytes on either side of the cut (e.g.
 * a letter followed by the space marker). No merge can cross such a cut, and the order of
 * merges inside a segment is the same as in the single queue, so the result is identical.
 * Candidate pairs of two pieces are found in a (left id, right id) -> piece table built at load
 * (every split of every piece into two pieces), so only a character that is not itself a piece
 * needs a string lookup. */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

#define SPACE_MARK "\xe2\x96\x81" /* U+2581 */

/* Maps a score to a key whose ascending order is the score's descending order (so the min-heap
 * pops the best score), with -0 == +0 as float comparison has it. */
static uint32_t score_prio(float score) {
    if (score == 0.0f) score = 0.0f;
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

static int utf8_len(unsigned char lead) {
    static const int8_t by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return by_high_nibble[lead >> 4];
}

/* Every way to write a piece as two pieces, for the pair table. */
typedef struct join {
    int32_t l, r, res;
} join;

shimmy_status tok_spm_load(tok_vocab *v, shimmy_error *err) {
    v->spm_pairs = core_calloc(65536 / 64, sizeof *v->spm_pairs);
    join *j = NULL;
    size_t n_j = 0, cap_j = 0;
    if (!v->spm_pairs) goto nomem;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        size_t n;
        const char *t = tok_str(v, id, &n);
        const unsigned char *u = (const unsigned char *)t;
        for (size_t i = 1; i < n; i++) {
            unsigned k = (unsigned)u[i - 1] << 8 | u[i];
            v->spm_pairs[k >> 6] |= 1ull << (k & 63);
        }
        /* the pair table maps text(l) + text(r) to the id a lookup of the text gives */
        if (tok_intern_find(v, t, n) != id) continue;
        for (size_t i = 1; i < n; i++) {
            int32_t l = tok_intern_find(v, t, i);
            if (l < 0 || l >= v->n_vocab) continue;
            int32_t r = tok_intern_find(v, t + i, n - i);
            if (r < 0 || r >= v->n_vocab) continue;
            if (!tok_grow((void **)&j, &cap_j, n_j + 1, sizeof *j)) goto nomem;
            j[n_j++] = (join){l, r, id};
        }
    }
    if (!tok_pairs_init(v, n_j)) goto nomem;
    /* the rank field holds the queue priority of the joined piece: one cache miss less */
    for (size_t i = 0; i < n_j; i++)
        tok_pair_insert(v, j[i].l, j[i].r, (int32_t)score_prio(v->score[j[i].res]), j[i].res);
    free(j);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        v->spm_char[b] = tok_find(v, &c, 1);
    }
    v->spm_space = tok_find(v, SPACE_MARK, 3);
    return SHIMMY_OK;
nomem:
    free(j);
    return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory building the piece table");
}

/* The piece id of an initial one-character symbol, or -1. */
static int32_t char_id(const tok_vocab *v, const char *c, size_t k) {
    if (k == 1) return v->spm_char[(unsigned char)*c];
    if (k == 3 && memcmp(c, SPACE_MARK, 3) == 0) return v->spm_space;
    int32_t id = tok_intern_find(v, c, k);
    return id < v->n_vocab ? id : -1;
}

static bool can_join(const tok_vocab *v, unsigned char a, unsigned char b) {
    unsigned k = (unsigned)a << 8 | b;
    return (v->spm_pairs[k >> 6] >> (k & 63)) & 1;
}

static bool try_pair(const tok_vocab *v, tok_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const tok_sym *a = &s->sym[l], *b = &s->sym[r];
    uint32_t n = a->n + b->n;
    int32_t id = -1;
    uint32_t prio = 0;
    if (a->id >= 0 && b->id >= 0) {
        const tok_pair *p = tok_pair_find(v, a->id, b->id);
        if (p) id = p->res, prio = (uint32_t)p->rank;
    } else { /* a character that is not a piece may still start or end one */
        id = tok_intern_find(v, s->text + a->start, n);
        if (id >= v->n_vocab) id = -1;
        if (id >= 0) prio = score_prio(v->score[id]);
    }
    if (id < 0) return true;
    return tok_heap_push(s, (tok_bigram){prio, l, r, n, (uint32_t)id});
}

static shimmy_status emit(const tok_vocab *v, const tok_scratch *s, const tok_sym *y, tok_buf *out,
                          shimmy_error *err) {
    if (y->id >= 0) return tok_buf_push(out, y->id, err);
    for (uint32_t k = 0; k < y->n; k++) {
        /* without a byte token the engine would throw; the unknown token is the kind answer */
        int32_t b = v->spm_byte[(unsigned char)s->text[y->start + k]];
        if (b < 0) b = v->unk;
        if (b >= 0 && tok_buf_push(out, b, err)) return SHIMMY_ERR_NOMEM;
    }
    return SHIMMY_OK;
}

/* Merges symbols [lo, hi) (pairs across its ends are never pieces, so never queued) and
 * appends their ids. */
static shimmy_status merge_segment(const tok_vocab *v, tok_scratch *s, size_t lo, size_t hi,
                                   tok_buf *out, shimmy_error *err) {
    for (size_t i = lo; i < hi; i++)
        s->sym[i].id = char_id(v, s->text + s->sym[i].start, s->sym[i].n);
    s->n_heap = 0;
    for (size_t i = lo + 1; i < hi; i++)
        if (!try_pair(v, s, (int32_t)i - 1, (int32_t)i)) goto nomem;
    tok_bigram g;
    while (tok_heap_pop(s, &g)) {
        tok_sym *l = &s->sym[g.left], *r = &s->sym[g.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != g.a) continue;
        l->n += r->n;
        l->id = (int32_t)g.b;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = g.left;
        if (!try_pair(v, s, l->prev, g.left) || !try_pair(v, s, g.left, l->next)) goto nomem;
    }
    for (int32_t i = (int32_t)lo; i >= 0 && (size_t)i < hi; i = s->sym[i].next) {
        shimmy_status st = emit(v, s, &s->sym[i], out, err);
        if (st) return st;
    }
    return SHIMMY_OK;
nomem:
    return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing");
}

shimmy_status tok_spm_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err) {
    if (len > SIZE_MAX / 4 || len >= UINT32_MAX / 3 ||
        !tok_grow((void **)&s->text, &s->cap_text, 3 * len + 4, 1))
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing %zu bytes", len);
    size_t n = 0;
    if (prefix_space) {
        memcpy(s->text, SPACE_MARK, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s->text + n, SPACE_MARK, 3);
            n += 3;
        } else {
            s->text[n++] = text[i];
        }
    }
    if (n == 0) return SHIMMY_OK;

    size_t ns = 0;
    for (size_t off = 0; off < n; ns++) {
        if (!tok_grow((void **)&s->sym, &s->cap_sym, ns + 1, sizeof *s->sym))
            return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing");
        size_t k = (size_t)utf8_len((unsigned char)s->text[off]);
        if (k > n - off) k = n - off;
        s->sym[ns] = (tok_sym){(int32_t)ns - 1, off + k < n ? (int32_t)ns + 1 : -1, (uint32_t)off,
                               (uint32_t)k, -1};
        off += k;
    }
    for (size_t lo = 0; lo < ns;) {
        size_t hi = lo + 1;
        while (hi < ns && can_join(v, (unsigned char)s->text[s->sym[hi].start - 1],
                                   (unsigned char)s->text[s->sym[hi].start]))
            hi++;
        const char *seg = s->text + s->sym[lo].start;
        size_t seg_n = s->sym[hi - 1].start + s->sym[hi - 1].n - s->sym[lo].start;
        uint64_t h = tok_cache_hash(seg, seg_n);
        if (!tok_cache_get(s, seg, seg_n, h, out)) {
            size_t n0 = out->n;
            shimmy_status st = merge_segment(v, s, lo, hi, out, err);
            if (st) return st;
            tok_cache_put(s, seg, seg_n, h, out->n > n0 ? out->ids + n0 : NULL, out->n - n0);
        }
        lo = hi;
    }
    return SHIMMY_OK;
}
