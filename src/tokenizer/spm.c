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
 * merges inside a segment is the same as in the single queue, so the result is identical. */
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

shimmy_status tok_spm_load(tok_vocab *v, shimmy_error *err) {
    v->spm_pairs = calloc(65536 / 64, sizeof *v->spm_pairs);
    if (!v->spm_pairs) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    for (int32_t id = 0; id < v->n_vocab; id++) {
        size_t n;
        const unsigned char *t = (const unsigned char *)tok_str(v, id, &n);
        for (size_t i = 1; i < n; i++) {
            unsigned k = (unsigned)t[i - 1] << 8 | t[i];
            v->spm_pairs[k >> 6] |= 1ull << (k & 63);
        }
    }
    return SHIMMY_OK;
}

static bool can_join(const tok_vocab *v, unsigned char a, unsigned char b) {
    unsigned k = (unsigned)a << 8 | b;
    return (v->spm_pairs[k >> 6] >> (k & 63)) & 1;
}

static bool try_pair(const tok_vocab *v, tok_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const tok_sym *a = &s->sym[l], *b = &s->sym[r];
    uint32_t n = a->n + b->n;
    int32_t id = tok_intern_find(v, s->text + a->start, n);
    if (id < 0 || id >= v->n_vocab) return true;
    return tok_heap_push(s, (tok_bigram){score_prio(v->score[id]), l, r, n, 0});
}

static shimmy_status emit(const tok_vocab *v, const tok_scratch *s, const tok_sym *y, tok_buf *out,
                          shimmy_error *err) {
    int32_t id = tok_intern_find(v, s->text + y->start, y->n);
    if (id >= 0 && id < v->n_vocab) return tok_buf_push(out, id, err);
    for (uint32_t k = 0; k < y->n; k++) {
        /* without a byte token the engine would throw; the unknown token is the kind answer */
        int32_t b = v->spm_byte[(unsigned char)s->text[y->start + k]];
        if (b < 0) b = v->unk;
        if (b >= 0 && tok_buf_push(out, b, err)) return SHIMMY_ERR_NOMEM;
    }
    return SHIMMY_OK;
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
        /* merges in [lo, hi); pairs across its ends are never pieces, so never queued */
        s->n_heap = 0;
        for (size_t i = lo + 1; i < hi; i++)
            if (!try_pair(v, s, (int32_t)i - 1, (int32_t)i))
                return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing");
        tok_bigram g;
        while (tok_heap_pop(s, &g)) {
            tok_sym *l = &s->sym[g.left], *r = &s->sym[g.right];
            if (l->n == 0 || r->n == 0 || l->n + r->n != g.a) continue;
            l->n += r->n;
            r->n = 0;
            l->next = r->next;
            if (r->next >= 0) s->sym[r->next].prev = g.left;
            if (!try_pair(v, s, l->prev, g.left) || !try_pair(v, s, g.left, l->next))
                return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing");
        }
        lo = hi;
    }
    for (int32_t i = 0; i >= 0; i = s->sym[i].next) {
        shimmy_status st = emit(v, s, &s->sym[i], out, err);
        if (st) return st;
    }
    return SHIMMY_OK;
}
