/* Byte-level BPE (tokenizer.ggml.model = "gpt2").
 *
 * Merges are looked up by the pair of interned string ids: (left, right) -> (rank, id of
 * left+right), one hash probe per candidate. A word starts as one symbol per byte (the byte's
 * printable code point), and the lowest-ranked adjacent pair is merged until none is left, ties
 * to the leftmost pair: the engine's order exactly. */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

#define KEY_MERGES "tokenizer.ggml.merges"
/* "left right": the separator is the first space after the first byte. */
static bool split_merge(gguf_str s, size_t *nl, size_t *nr) {
    const char *sp = s.len > 1 ? memchr(s.data + 1, ' ', (size_t)s.len - 1) : NULL;
    if (!sp) return false; /* the engine files such a line under ("", ""), which never matches */
    *nl = (size_t)(sp - s.data);
    *nr = (size_t)s.len - *nl - 1;
    return true;
}

/* Loading is bound by hash-table cache misses; touching the slots of merges a few lines ahead
 * overlaps them. */
#define PREFETCH 12
static void prefetch_merge(const tok_vocab *v, gguf_str s) {
    size_t nl, nr;
    if (!split_merge(s, &nl, &nr)) return;
    tok_intern_prefetch(v, s.data, nl);
    tok_intern_prefetch(v, s.data + nl + 1, nr);
    char cat[128];
    if (nl + nr > sizeof cat) return;
    memcpy(cat, s.data, nl);
    memcpy(cat + nl, s.data + nl + 1, nr);
    tok_intern_prefetch(v, cat, nl + nr);
}

shimmy_status tok_bpe_load(tok_vocab *v, const gguf_file *f, shimmy_error *err) {
    const char *path = gguf_path(f);
    const gguf_value *m = gguf_get_arr(f, KEY_MERGES, GGUF_VT_STRING);
    if (!m)
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          "byte-level BPE tokenizer without merges (" KEY_MERGES
                          " missing or not a string array)");
    uint64_t n = m->v.arr.count;
    if (n >= (1u << 28))
        return core_error(err, SHIMMY_ERR_FORMAT, path, KEY_MERGES " has too many entries (%llu)",
                          (unsigned long long)n);
    char stack[512];
    char *cat = stack;
    size_t cat_cap = sizeof stack;
    if (!tok_pairs_init(v, (size_t)n)) goto nomem;
    /* two passes so that each can prefetch what its later iterations will touch: first the
     * string ids of every merge, then the pair table */
    int32_t(*ids)[3] = core_malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) goto nomem;
    for (uint64_t i = 0; i < n; i++) {
        if (i + PREFETCH < n) prefetch_merge(v, m->v.arr.strs[i + PREFETCH]);
        gguf_str s = m->v.arr.strs[i];
        size_t nl, nr;
        ids[i][0] = -1;
        if (!split_merge(s, &nl, &nr)) continue;
        if (nl + nr > cat_cap) {
            char *q = core_malloc(nl + nr);
            if (!q) goto nomem_ids;
            if (cat != stack) free(cat);
            cat = q;
            cat_cap = nl + nr;
        }
        memcpy(cat, s.data, nl);
        memcpy(cat + nl, s.data + nl + 1, nr);
        ids[i][0] = tok_intern_add(v, s.data, nl);
        ids[i][1] = tok_intern_add(v, s.data + nl + 1, nr);
        ids[i][2] = tok_intern_add(v, cat, nl + nr);
        if (ids[i][0] < 0 || ids[i][1] < 0 || ids[i][2] < 0) goto nomem_ids;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (i + PREFETCH < n && ids[i + PREFETCH][0] >= 0)
            __builtin_prefetch(&v->pair[tok_pair_slot((uint32_t)ids[i + PREFETCH][0],
                                                      (uint32_t)ids[i + PREFETCH][1], v->pmask)]);
        if (ids[i][0] >= 0) tok_pair_insert(v, ids[i][0], ids[i][1], (int32_t)i, ids[i][2]);
    }
    free(ids);
    if (cat != stack) free(cat);
    for (int b = 0; b < 256; b++) {
        char u[2];
        int k = tok_byte_to_utf8((unsigned char)b, u);
        v->bpe_byte_sym[b] = tok_intern_find(v, u, (size_t)k);
        char c = (char)b;
        v->bpe_byte_tok[b] = tok_find(v, &c, 1);
    }
    return SHIMMY_OK;
nomem_ids:
    free(ids);
nomem:
    if (cat != stack) free(cat);
    return core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory loading %llu merges",
                      (unsigned long long)n);
}

static bool push_pair(const tok_vocab *v, tok_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    int32_t a = s->sym[l].id, b = s->sym[r].id;
    const tok_pair *p = (a < 0 || b < 0) ? NULL : tok_pair_find(v, a, b);
    if (!p) return true;
    return tok_heap_push(s, (tok_bigram){(uint32_t)p->rank, l, r, (uint32_t)a, (uint32_t)b});
}

/* The engine's last resort for a symbol that is not a token: each byte of its byte-level
 * spelling that is itself a one-byte token. */
static shimmy_status emit_fallback(const tok_vocab *v, const char *w, const tok_sym *y,
                                   tok_buf *out, shimmy_error *err) {
    for (uint32_t k = 0; k < y->n; k++) {
        char u[2];
        int nu = tok_byte_to_utf8((unsigned char)w[y->start + k], u);
        for (int j = 0; j < nu; j++) {
            int32_t id = v->bpe_byte_tok[(unsigned char)u[j]];
            if (id >= 0 && tok_buf_push(out, id, err)) return SHIMMY_ERR_NOMEM;
        }
    }
    return SHIMMY_OK;
}

static shimmy_status merge_word(const tok_vocab *v, const char *w, size_t n, tok_scratch *s,
                                tok_buf *out, shimmy_error *err) {
    if (v->ignore_merges) { /* a word that is a token is taken whole */
        if (!tok_grow((void **)&s->enc, &s->cap_enc, 2 * n, 1)) goto nomem;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += (size_t)tok_byte_to_utf8((unsigned char)w[i], s->enc + m);
        int32_t id = tok_find(v, s->enc, m);
        if (id >= 0) return tok_buf_push(out, id, err);
    }
    if (!tok_grow((void **)&s->sym, &s->cap_sym, n, sizeof *s->sym)) goto nomem;
    for (size_t i = 0; i < n; i++)
        s->sym[i] = (tok_sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1,
                              v->bpe_byte_sym[(unsigned char)w[i]]};
    s->n_heap = 0;
    for (size_t i = 1; i < n; i++)
        if (!push_pair(v, s, (int32_t)i - 1, (int32_t)i)) goto nomem;
    tok_bigram g;
    while (tok_heap_pop(s, &g)) {
        tok_sym *l = &s->sym[g.left], *r = &s->sym[g.right];
        if (l->n == 0 || r->n == 0 || (uint32_t)l->id != g.a || (uint32_t)r->id != g.b) continue;
        l->id = tok_pair_find(v, l->id, r->id)->res;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = g.left;
        if (!push_pair(v, s, l->prev, g.left) || !push_pair(v, s, g.left, l->next)) goto nomem;
    }
    for (int32_t i = 0; i >= 0; i = s->sym[i].next) {
        const tok_sym *y = &s->sym[i];
        shimmy_status st = (y->id >= 0 && y->id < v->n_vocab) ? tok_buf_push(out, y->id, err)
                                                              : emit_fallback(v, w, y, out, err);
        if (st) return st;
    }
    return SHIMMY_OK;
nomem:
    return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing");
}

static shimmy_status encode_word(const tok_vocab *v, const char *w, size_t n, tok_scratch *s,
                                 tok_buf *out, shimmy_error *err) {
    uint64_t h = tok_cache_hash(w, n);
    if (tok_cache_get(s, w, n, h, out)) return SHIMMY_OK;
    size_t n0 = out->n;
    shimmy_status st = merge_word(v, w, n, s, out, err);
    if (st == SHIMMY_OK) tok_cache_put(s, w, n, h, out->n > n0 ? out->ids + n0 : NULL, out->n - n0);
    return st;
}

shimmy_status tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err) {
    (void)prefix_space; /* byte-level BPE has no dummy prefix */
    if (len == 0) return SHIMMY_OK;
    if (len > SIZE_MAX / 4 || !tok_grow((void **)&s->text, &s->cap_text, 3 * len + 1, 1))
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing %zu bytes", len);
    size_t n = tok_utf8_sanitize(text, len, s->text);
    shimmy_status st = tok_pretok_split(v, s->text, n, s, err);
    size_t start = 0;
    for (size_t i = 0; st == SHIMMY_OK && i < s->n_cuts; i++) {
        size_t end = s->cuts[i];
        st = encode_word(v, s->text + start, end - start, s, out, err);
        start = end;
    }
    return st;
}
