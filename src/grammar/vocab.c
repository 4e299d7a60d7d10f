/* A vocabulary as the mask engine sees it: each token's decoded bytes and whether it may appear
 * in text, and the text tokens as a trie laid out in preorder. In preorder a subtree is a
 * contiguous range, so the walk that computes a mask skips a refused prefix's subtree with one
 * jump (`end`), and the walk touches memory in order. */
#include "gram_impl.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PIECE 4096 /* longer pieces are left out of the trie (never allowed in text) */

static uint64_t next_serial = 1;

void grammar_vocab_free(grammar_vocab *gv) {
    if (!gv) return;
    free(gv->nd);
    free(gv->toks);
    free(gv->piece_off);
    free(gv->pieces);
    free(gv->kind);
    free(gv->eog);
    free(gv->le);
    free(gv->wf);
    gv_slice_cache_free(gv->slices);
    free(gv);
}

int32_t grammar_vocab_size(const grammar_vocab *gv) {
    return gv->n_vocab;
}

size_t grammar_vocab_trie_nodes(const grammar_vocab *gv) {
    return gv->n_nodes;
}

static int cmp_piece(const void *a, const void *b, void *ctx) {
    const grammar_vocab *gv = ctx;
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const uint32_t lx = gv->piece_off[x + 1] - gv->piece_off[x];
    const uint32_t ly = gv->piece_off[y + 1] - gv->piece_off[y];
    int c = memcmp(gv->pieces + gv->piece_off[x], gv->pieces + gv->piece_off[y], lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* UTF-8 decoding along the trie: u8[i] bit 0 when the path to i's parent ends on a character
 * boundary, bit 1 when every path through i's subtree is well-formed UTF-8 (an unfinished last
 * character allowed); bit 2 (set in build_trie) when a NUL byte is in the subtree. The mask walk
 * may then take a subtree as a whole (mask.c). Parents come before children in preorder, so one
 * forward and one backward pass do it. */
static bool utf8_flags(grammar_vocab *gv, const uint32_t *parent) {
    const uint32_t n = gv->n_nodes;
    uint8_t *st = malloc(n ? n : 1); /* bits 0-1 need, 2 invalid, 4-7: constraint of the next */
    gv->wf = calloc(((size_t)gv->n_vocab + 63) / 64, sizeof *gv->wf);
    if (!st || !gv->wf) {
        free(st);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t ps = parent[i] == UINT32_MAX ? 0 : st[parent[i]];
        const unsigned need = ps & 3, cons = ps >> 4, b = gv->nd[i].byte;
        uint8_t out = 4; /* invalid */
        if (!(ps & 4)) {
            if (need == 0) {
                if (b < 0x80)
                    out = 0;
                else if (b >= 0xC2 && b <= 0xDF)
                    out = 1;
                else if (b >= 0xE0 && b <= 0xEF)
                    out = (uint8_t)(2 | (b == 0xE0 ? 1 : b == 0xED ? 2 : 0) << 4);
                else if (b >= 0xF0 && b <= 0xF4)
                    out = (uint8_t)(3 | (b == 0xF0 ? 3 : b == 0xF4 ? 4 : 0) << 4);
            } else {
                /* the second byte of E0, ED, F0, F4 has a narrower range (no overlongs,
                 * surrogates or code points past U+10FFFF) */
                static const uint8_t lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80},
                                     hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
                if (b >= lo[cons] && b <= hi[cons]) out = (uint8_t)(need - 1);
            }
        }
        st[i] = out;
        gv->nd[i].u8 = (uint8_t)((ps & 7) == 0 ? 1 : 0) | (out & 4 ? 0 : 2);
        for (uint32_t k = 0; !(out & 4) && k < gv->nd[i].tok_n; k++) {
            const int32_t t = gv->toks[gv->nd[i].tok_first + k];
            gv->wf[t >> 6] |= 1ull << (t & 63);
        }
    }
    for (uint32_t i = n; i-- > 0;) /* a subtree is valid when all of it is */
        if (parent[i] != UINT32_MAX && !(gv->nd[i].u8 & 2)) gv->nd[parent[i]].u8 &= (uint8_t)~2;
    free(st);
    return true;
}

/* gv->le (gram_impl.h): each token's bit goes into every set from its length on. Sets stop at
 * LE_MAX characters (longer tokens are in none: a longer repetition left uses the last set). */
#define LE_MAX 255
static bool length_sets(grammar_vocab *gv) {
    const size_t words = ((size_t)gv->n_vocab + 63) / 64;
    uint32_t *chars = malloc((size_t)gv->n_vocab * sizeof *chars);
    if (!chars) return false;
    gv->max_chars = 0;
    for (int32_t t = 0; t < gv->n_vocab; t++) {
        uint32_t c = 0;
        for (uint32_t k = gv->piece_off[t]; k < gv->piece_off[t + 1]; k++)
            c += ((uint8_t)gv->pieces[k] & 0xC0) != 0x80;
        chars[t] = c;
        if (gv->kind[t] == GV_TEXT && c > gv->max_chars) gv->max_chars = c;
    }
    gv->n_le = (gv->max_chars < LE_MAX ? gv->max_chars : LE_MAX) + 1;
    if (!(gv->le = calloc(words * gv->n_le, sizeof *gv->le))) {
        free(chars);
        return false;
    }
    for (int32_t t = 0; t < gv->n_vocab; t++)
        if (gv->kind[t] == GV_TEXT && chars[t] < gv->n_le)
            gv->le[words * chars[t] + ((size_t)t >> 6)] |= 1ull << (t & 63);
    for (uint32_t c = 1; c < gv->n_le; c++)
        for (size_t w = 0; w < words; w++) gv->le[words * c + w] |= gv->le[words * (c - 1) + w];
    free(chars);
    return true;
}

/* The trie over the sorted text tokens (see the file comment). */
static bool build_trie(grammar_vocab *gv) {
    size_t n_text = 0, bytes = 0;
    for (int32_t i = 0; i < gv->n_vocab; i++)
        if (gv->kind[i] == GV_TEXT) {
            n_text++;
            bytes += gv->piece_off[i + 1] - gv->piece_off[i];
        }
    int32_t *order = malloc((n_text ? n_text : 1) * sizeof *order);
    gv->toks = malloc((n_text ? n_text : 1) * sizeof *gv->toks);
    const size_t cap = bytes ? bytes : 1;
    gv->nd = calloc(cap + 1, sizeof *gv->nd);
    uint32_t *parent = malloc(cap * sizeof *parent);
    if (!order || !gv->toks || !gv->nd || !parent) {
        free(order);
        free(parent);
        return false;
    }
    size_t k = 0;
    for (int32_t i = 0; i < gv->n_vocab; i++)
        if (gv->kind[i] == GV_TEXT) order[k++] = i;
    qsort_r(order, n_text, sizeof *order, cmp_piece, gv);
    uint32_t path[MAX_PIECE + 1];
    uint32_t depth = 0, n = 0, n_toks = 0;
    const char *prev = NULL;
    uint32_t prev_len = 0;
    for (size_t t = 0; t < n_text; t++) {
        const int32_t id = order[t];
        const char *s = gv->pieces + gv->piece_off[id];
        const uint32_t len = gv->piece_off[id + 1] - gv->piece_off[id];
        uint32_t lcp = 0;
        while (prev && lcp < len && lcp < prev_len && s[lcp] == prev[lcp]) lcp++;
        for (; depth > lcp; depth--) gv->nd[path[depth]].end = n;
        for (; depth < len; depth++) {
            gv->nd[n].byte = (uint8_t)s[depth];
            gv->nd[n].depth = (uint16_t)(depth + 1);
            gv->nd[n].tok_first = n_toks;
            parent[n] = depth ? path[depth] : UINT32_MAX;
            gv->nd[n].tok_n = 0;
            path[depth + 1] = n++;
        }
        const uint32_t node = path[len];
        if (gv->nd[node].tok_n < UINT16_MAX) {
            gv->toks[n_toks++] = id;
            gv->nd[node].tok_n++;
        }
        if (len > gv->max_depth) gv->max_depth = len;
        prev = s;
        prev_len = len;
    }
    for (; depth > 0; depth--) gv->nd[path[depth]].end = n;
    gv->n_nodes = n;
    gv->nd[n].tok_first = n_toks;
    if (!utf8_flags(gv, parent)) {
        free(parent);
        free(order);
        return false;
    }
    /* subtree byte sets, children before parents (reverse preorder) */
    for (uint32_t i = n; i-- > 0;) {
        const uint8_t b = gv->nd[i].byte;
        if (b < 0x80)
            gv->nd[i].sub[b >> 6] |= 1ull << (b & 63);
        else
            gv->nd[i].sub[0] |= 1;
        if (b == 0) gv->nd[i].u8 |= 4; /* bit 0 of sub cannot tell a NUL from a high byte */
        if (!gv->nd[i].height) gv->nd[i].height = 1;
        if (parent[i] != UINT32_MAX) {
            if (gv->nd[parent[i]].height < gv->nd[i].height + 1)
                gv->nd[parent[i]].height = (uint16_t)(gv->nd[i].height + 1);
            gv->nd[parent[i]].sub[0] |= gv->nd[i].sub[0];
            gv->nd[parent[i]].sub[1] |= gv->nd[i].sub[1];
            gv->nd[parent[i]].u8 |= gv->nd[i].u8 & 4;
        }
    }
    free(parent);
    free(order);
    gv_node *fit = realloc(gv->nd, ((size_t)n + 1) * sizeof *fit); /* room was for every byte */
    if (fit) gv->nd = fit;
    return length_sets(gv);
}

shimmy_status grammar_vocab_from_pieces(const char *const *pieces, const size_t *len,
                                        const bool *special, const bool *eog, int32_t n,
                                        grammar_vocab **out, shimmy_error *err) {
    *out = NULL;
    if (n <= 0) return core_error(err, SHIMMY_ERR_INVALID_ARG, "vocab", "the vocabulary is empty");
    grammar_vocab *gv = calloc(1, sizeof *gv);
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) total += len[i] <= MAX_PIECE ? len[i] : 0;
    if (gv) {
        gv->n_vocab = n;
        gv->piece_off = malloc(((size_t)n + 1) * sizeof *gv->piece_off);
        gv->pieces = malloc(total ? total : 1);
        gv->kind = malloc((size_t)n);
        gv->eog = malloc((size_t)n * sizeof *gv->eog);
    }
    if (!gv || !gv->piece_off || !gv->pieces || !gv->kind || !gv->eog || total > UINT32_MAX) {
        grammar_vocab_free(gv);
        return core_error(err, SHIMMY_ERR_NOMEM, "vocab", "cannot allocate the token trie");
    }
    uint32_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        gv->piece_off[i] = off;
        const bool fits = len[i] <= MAX_PIECE;
        if (eog && eog[i]) {
            gv->kind[i] = GV_EOG;
            gv->eog[gv->n_eog++] = i;
        } else {
            gv->kind[i] = (special && special[i]) || len[i] == 0 || !fits ? GV_SPECIAL : GV_TEXT;
        }
        if (fits && len[i]) {
            memcpy(gv->pieces + off, pieces[i], len[i]);
            off += (uint32_t)len[i];
        }
    }
    gv->piece_off[n] = off;
    if (!build_trie(gv)) {
        grammar_vocab_free(gv);
        return core_error(err, SHIMMY_ERR_NOMEM, "vocab", "cannot allocate the token trie");
    }
    gv->slices = gv_slice_cache_new();
    gv->serial = __atomic_fetch_add(&next_serial, 1, __ATOMIC_RELAXED);
    *out = gv;
    return SHIMMY_OK;
}

shimmy_status grammar_vocab_new(const tok_vocab *v, grammar_vocab **out, shimmy_error *err) {
    *out = NULL;
    const int32_t n = tok_n_vocab(v);
    const size_t max = tok_max_piece(v) + 1;
    char **pieces = calloc((size_t)n, sizeof *pieces);
    size_t *len = calloc((size_t)n, sizeof *len);
    bool *special = calloc((size_t)n, sizeof *special), *eog = calloc((size_t)n, sizeof *eog);
    char *buf = malloc(max);
    shimmy_status st = SHIMMY_OK;
    if (!pieces || !len || !special || !eog || !buf) {
        st = core_error(err, SHIMMY_ERR_NOMEM, "vocab", "cannot allocate the token trie");
        goto out;
    }
    for (int32_t i = 0; i < n; i++) {
        const tok_type t = tok_get_type(v, i);
        eog[i] = tok_is_eog(v, i);
        /* control, unknown and unused tokens are never text, whatever they decode to */
        special[i] = tok_is_control(v, i) || t == TOK_TYPE_CONTROL || t == TOK_TYPE_UNKNOWN ||
                     t == TOK_TYPE_UNUSED;
        if (special[i] || eog[i]) continue;
        size_t l = tok_piece(v, i, false, buf, max);
        if (l > max) l = 0; /* cannot happen: max is the longest piece */
        if (l && !(pieces[i] = malloc(l))) {
            st = core_error(err, SHIMMY_ERR_NOMEM, "vocab", "cannot allocate the token trie");
            goto out;
        }
        if (l) memcpy(pieces[i], buf, l);
        len[i] = l;
    }
    st = grammar_vocab_from_pieces((const char *const *)pieces, len, special, eog, n, out, err);
out:
    if (pieces)
        for (int32_t i = 0; i < n; i++) free(pieces[i]);
    free(pieces);
    free(len);
    free(special);
    free(eog);
    free(buf);
    return st;
}
