/* tok_encode: special-token partitioning, BOS/EOS, and the dispatch of each raw-text fragment to
 * the vocabulary's algorithm. Also the per-call scratch memory and the merge queue.
 *
 * Partitioning follows the engine: special tokens are taken longest first, and each one splits
 * every raw fragment left by the previous ones at all its occurrences. So a longer token wins
 * over a shorter one wherever they overlap, whichever comes first in the text. */
#include "tok_impl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void tok_buf_free(tok_buf *b) {
    if (!b) return;
    free(b->ids);
    b->ids = NULL;
    b->n = b->cap = 0;
}

shimmy_status tok_buf_push(tok_buf *b, int32_t id, shimmy_error *err) {
    if (b->n == b->cap && !tok_grow((void **)&b->ids, &b->cap, b->n + 1, sizeof *b->ids))
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory storing tokens");
    b->ids[b->n++] = id;
    return SHIMMY_OK;
}

void tok_scratch_deinit(tok_scratch *s) {
    free(s->sym);
    free(s->heap);
    free(s->text);
    free(s->enc);
    free(s->cuts);
    free(s->cuts2);
    if (s->md) pcre2_match_data_free(s->md);
    free(s->cache);
    free(s->ckeys);
    free(s->cids);
    free(s->best);
    memset(s, 0, sizeof *s);
}

bool tok_heap_push(tok_scratch *s, tok_bigram e) {
    if (!tok_grow((void **)&s->heap, &s->cap_heap, s->n_heap + 1, sizeof *s->heap)) return false;
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tok_bigram_less(&e, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
    return true;
}

bool tok_heap_pop(tok_scratch *s, tok_bigram *out) {
    if (s->n_heap == 0) return false;
    *out = s->heap[0];
    tok_bigram last = s->heap[--s->n_heap];
    size_t n = s->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && tok_bigram_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!tok_bigram_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return true;
}

/* ---- partitioning ---- */

typedef struct frag {
    int32_t id; /* special token, or -1 for raw text [off, off + len) */
    size_t off, len;
} frag;

typedef struct frags {
    frag *a;
    size_t n, cap;
} frags;

static bool frag_add(frags *f, int32_t id, size_t off, size_t len) {
    if (!tok_grow((void **)&f->a, &f->cap, f->n + 1, sizeof *f->a)) return false;
    f->a[f->n++] = (frag){id, off, len};
    return true;
}

static bool in_literal(const tok_encode_opts *o, size_t b, size_t e) {
    for (size_t i = 0; i < o->n_literal; i++)
        if (b < o->literal[i].end && e > o->literal[i].begin) return true;
    return false;
}

/* Splits raw fragment [off, off+len) of text at every occurrence of special token id. */
static bool split_one(const tok_vocab *v, const char *text, const tok_encode_opts *o, frag raw,
                      int32_t id, frags *out) {
    size_t tl;
    const char *t = tok_str(v, id, &tl);
    uint8_t attr = v->attr[id];
    size_t base = raw.off, len = raw.len, from = raw.off;
    for (;;) {
        const char *hit = NULL;
        while (from + tl <= base + len) {
            hit = memmem(text + from, base + len - from, t, tl);
            if (!hit) break;
            size_t m = (size_t)(hit - text);
            if (!o || !in_literal(o, m, m + tl)) break;
            from = m + 1;
            hit = NULL;
        }
        if (!hit) break;
        size_t m = (size_t)(hit - text);
        size_t left = m - base;
        if (attr & TOK_ATTR_LSTRIP)
            while (left > 0 && isspace((unsigned char)text[base + left - 1])) left--;
        if (left > 0 && !frag_add(out, -1, base, left)) return false;
        if (!frag_add(out, id, 0, 0)) return false;
        size_t roff = m + tl, rlen = base + len - roff;
        if (rlen == 0) return true;
        if (attr & TOK_ATTR_RSTRIP)
            while (rlen > 0 && isspace((unsigned char)text[roff])) roff++, rlen--;
        if (rlen == 0) return true; /* the engine drops a fragment stripped to nothing */
        base = from = roff;
        len = rlen;
    }
    return frag_add(out, -1, base, len);
}

static bool partition(const tok_vocab *v, const char *text, size_t len, const tok_encode_opts *o,
                      frags *cur, frags *next) {
    if (!frag_add(cur, -1, 0, len)) return false;
    if (v->n_special == 0) return true;
    /* byte pairs present in the text: a token whose first two bytes never occur is skipped
     * without a search (vocabularies carry hundreds of special tokens) */
    uint64_t pairs[65536 / 64] = {0};
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned p = (unsigned)(unsigned char)text[i] << 8 | (unsigned char)text[i + 1];
        pairs[p >> 6] |= 1ull << (p & 63);
    }
    bool parse = o && o->parse_special;
    for (size_t k = 0; k < v->n_special; k++) {
        int32_t id = v->special[k];
        if (!parse && (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
        size_t tl = v->str_len[id];
        if (tl > len) continue;
        if (tl >= 2) {
            const unsigned char *t = (const unsigned char *)v->blob + v->str_off[id];
            unsigned p = (unsigned)t[0] << 8 | t[1];
            if (!((pairs[p >> 6] >> (p & 63)) & 1)) continue;
        }
        bool any = false;
        for (size_t i = 0; i < cur->n && !any; i++) any = cur->a[i].id < 0 && cur->a[i].len >= tl;
        if (!any) continue;
        next->n = 0;
        for (size_t i = 0; i < cur->n; i++) {
            frag f = cur->a[i];
            bool ok = (f.id >= 0 || f.len < tl) ? frag_add(next, f.id, f.off, f.len)
                                                : split_one(v, text, o, f, id, next);
            if (!ok) return false;
        }
        frags t = *cur;
        *cur = *next;
        *next = t;
    }
    return true;
}

shimmy_status tok_encode(const tok_vocab *v, const char *text, size_t len,
                         const tok_encode_opts *opts, tok_buf *out, shimmy_error *err) {
    size_t n0 = out->n;
    if (len > TOK_MAX_TEXT)
        return core_error(err, SHIMMY_ERR_TOO_LARGE, "text",
                          "a text of %zu bytes is too long to tokenize (the limit is %zu MiB)", len,
                          (size_t)TOK_MAX_TEXT >> 20);
    if (opts)
        for (size_t i = 0; i < opts->n_literal; i++)
            if (opts->literal[i].begin > opts->literal[i].end || opts->literal[i].end > len)
                return core_error(err, SHIMMY_ERR_INVALID_ARG, "literal",
                                  "literal span %zu [%zu, %zu) is outside the %zu-byte text", i,
                                  opts->literal[i].begin, opts->literal[i].end, len);
    bool add = opts && opts->add_special;
    shimmy_status st = SHIMMY_OK;
    frags cur = {0}, next = {0};
    tok_scratch s = {0};
    if (add && v->add_bos && (st = tok_buf_push(out, v->bos, err))) goto done;
    if (len > 0 && !partition(v, text, len, opts, &cur, &next)) {
        st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing %zu bytes", len);
        goto done;
    }
    bool prev_special = true; /* the start counts as a special token for the dummy prefix */
    for (size_t i = 0; i < cur.n && st == SHIMMY_OK; i++) {
        if (cur.a[i].id >= 0) {
            st = tok_buf_push(out, cur.a[i].id, err);
            prev_special = true;
        } else {
            bool prefix = v->add_space_prefix && prev_special;
            st = v->encode_fragment(v, text + cur.a[i].off, cur.a[i].len, prefix, &s, out, err);
            prev_special = false;
        }
    }
    if (st == SHIMMY_OK && add && v->add_eos) st = tok_buf_push(out, v->eos, err);
    if (st == SHIMMY_OK && add && v->algo == TOK_ALGO_WPM && v->add_sep)
        st = tok_buf_push(out, v->sep, err);
done:
    free(cur.a);
    free(next.a);
    tok_scratch_deinit(&s);
    if (st) out->n = n0;
    return st;
}

/* One text of a pair, without BOS/EOS. */
static shimmy_status encode_plain(const tok_vocab *v, const char *t, size_t n,
                                  const tok_encode_opts *opts, tok_buf *out, shimmy_error *err) {
    tok_encode_opts o = {.parse_special = opts && opts->parse_special};
    return tok_encode(v, t, n, &o, out, err);
}

static shimmy_status push_if(tok_buf *out, bool on, int32_t id, shimmy_error *err) {
    return on && id >= 0 ? tok_buf_push(out, id, err) : SHIMMY_OK;
}

shimmy_status tok_encode_pair(const tok_vocab *v, const char *a, size_t a_len, const char *b,
                              size_t b_len, tok_pair_form form, const tok_encode_opts *opts,
                              tok_buf *out, shimmy_error *err) {
    size_t n0 = out->n;
    bool hf = form == TOK_PAIR_HF;
    /* HF closes each text with SEP (EOS without one); the server with EOS (SEP without one) */
    int32_t end = hf ? (v->sep >= 0 ? v->sep : v->eos) : (v->eos >= 0 ? v->eos : v->sep);
    bool close = hf || v->add_eos;
    shimmy_status st = push_if(out, v->add_bos, v->bos, err);
    if (!st) st = encode_plain(v, a, a_len, opts, out, err);
    if (!st) st = push_if(out, close, end, err);
    if (!st && !hf) st = push_if(out, v->add_sep, v->sep, err);
    if (!st) st = encode_plain(v, b, b_len, opts, out, err);
    if (!st) st = push_if(out, close, end, err);
    if (st) out->n = n0;
    return st;
}
