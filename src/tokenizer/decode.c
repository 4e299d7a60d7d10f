/* Token ids -> text: the piece cache (built at load), whole-sequence decoding, the engine's
 * clean-up of tokenization spaces, and the UTF-8-safe streaming decoder. */
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPACE_MARK "\xe2\x96\x81"

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n) {
    if (b->oom || n == 0) return;
    if (!tok_grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) {
        b->oom = true;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* SPM byte tokens are spelled <0xXX>; like strtol, parsing stops at the first non-hex digit. */
static void spm_byte_piece(const char *t, size_t n, sbuf *b) {
    if (n < 3) return;
    int v = 0;
    for (size_t i = 3; i < 5 && i < n && hex_val(t[i]) >= 0; i++) v = v * 16 + hex_val(t[i]);
    unsigned char c = (unsigned char)v;
    sb_put(b, &c, 1);
}

static void spm_normal_piece(const char *t, size_t n, sbuf *b) {
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(t + i, SPACE_MARK, 3) == 0) {
            sb_put(b, " ", 1);
            i += 3;
        } else {
            sb_put(b, t + i, 1);
            i++;
        }
    }
}

/* Byte-level code points back to bytes; a code point outside the alphabet is written the way the
 * engine writes it, "[UNK_BYTE_0x<hex>" + the token text + "]". That repeats the whole text per
 * such character, quadratic in a (malformed) token's length, so a piece stops growing at
 * UNK_BUDGET bytes. */
#define UNK_BUDGET 4096
/* The common case: every character is a 1- or 2-byte code point of the byte alphabet. Returns
 * false (writing nothing) otherwise. */
static bool bpe_plain_piece(const char *t, size_t n, sbuf *b) {
    if (b->oom || !tok_grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) return false;
    const unsigned char *u = (const unsigned char *)t;
    size_t o = b->n;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        if (u[i] < 0x80)
            cp = u[i++];
        else if ((u[i] & 0xE0) == 0xC0 && i + 1 < n && (u[i + 1] & 0xC0) == 0x80) {
            cp = (uint32_t)(u[i] & 0x1F) << 6 | (u[i + 1] & 0x3F);
            i += 2;
        } else
            return false;
        int byte = tok_utf8_cp_to_byte(cp);
        if (byte < 0) return false;
        b->p[o++] = (char)byte;
    }
    b->n = o;
    return true;
}

static void bpe_normal_piece(const char *t, size_t n, sbuf *b) {
    if (bpe_plain_piece(t, n, b)) return;
    char *clean = core_malloc(3 * n + 1);
    if (!clean) {
        b->oom = true;
        return;
    }
    size_t m = tok_utf8_sanitize(t, n, clean), start = b->n;
    for (size_t i = 0; i < m;) {
        uint32_t cp;
        int k = core_utf8_decode(clean + i, m - i, &cp);
        int byte = tok_utf8_cp_to_byte(cp);
        if (byte >= 0) {
            unsigned char c = (unsigned char)byte;
            sb_put(b, &c, 1);
        } else if (b->n - start < UNK_BUDGET) {
            char hex[16];
            sb_put(b, "[UNK_BYTE_0x", 12);
            for (int j = 0; j < k; j++) {
                snprintf(hex, sizeof hex, "%02x", (unsigned char)clean[i + j]);
                sb_put(b, hex, 2);
            }
            sb_put(b, t, n);
            sb_put(b, "]", 1);
        }
        i += (size_t)k;
    }
    free(clean);
}

static void piece_of(const tok_vocab *v, int32_t id, sbuf *b) {
    size_t n;
    const char *t = tok_str(v, id, &n);
    uint8_t a = v->attr[id];
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED))
        sb_put(b, t, n);
    else if (a & TOK_ATTR_NORMAL) {
        if (v->algo != TOK_ALGO_BPE) /* SPM and WPM both spell a space as U+2581 */
            spm_normal_piece(t, n, b);
        else
            bpe_normal_piece(t, n, b);
    } else if ((a & TOK_ATTR_BYTE) && (v->algo == TOK_ALGO_SPM || v->algo == TOK_ALGO_UGM))
        spm_byte_piece(t, n, b);
    /* unused and undefined tokens have no text, as in the engine */
}

shimmy_status tok_pieces_build(tok_vocab *v, shimmy_error *err) {
    sbuf b = {0};
    v->piece_off = core_malloc((size_t)v->n_vocab * sizeof *v->piece_off);
    v->piece_len = core_malloc((size_t)v->n_vocab * sizeof *v->piece_len);
    if (!v->piece_off || !v->piece_len) b.oom = true;
    for (int32_t id = 0; id < v->n_vocab && !b.oom; id++) {
        size_t before = b.n;
        piece_of(v, id, &b);
        if (b.n > UINT32_MAX) b.oom = true;
        if (b.oom) break;
        v->piece_off[id] = (uint32_t)before;
        v->piece_len[id] = (uint32_t)(b.n - before);
        if (b.n - before > v->max_piece) v->max_piece = b.n - before;
    }
    if (b.oom) {
        free(b.p);
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory building token pieces");
    }
    v->piece_blob = b.p ? b.p : core_malloc(1);
    if (!v->piece_blob) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    return SHIMMY_OK;
}

/* The piece of id as the engine's token_to_piece gives it (borrowed), "" when hidden. */
static const char *piece_ref(const tok_vocab *v, int32_t id, bool special, size_t *n) {
    *n = 0;
    if (id < 0 || id >= v->n_vocab) return "";
    if (!special && (v->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) return "";
    *n = v->piece_len[id];
    return v->piece_blob + v->piece_off[id];
}

size_t tok_piece(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap) {
    size_t n;
    const char *p = piece_ref(v, id, special, &n);
    if (buf && cap) memcpy(buf, p, n < cap ? n : cap);
    return n;
}

size_t tok_max_piece(const tok_vocab *v) {
    return v->max_piece;
}

shimmy_status tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, bool special, char **out,
                         size_t *len, shimmy_error *err) {
    *out = NULL;
    *len = 0;
    sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n_vocab) {
            free(b.p);
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens",
                              "token %d at position %zu is not in the vocabulary (0..%d)", ids[i],
                              i, v->n_vocab - 1);
        }
        size_t pn;
        const char *p = piece_ref(v, ids[i], special, &pn);
        if (i == 0 && v->add_space_prefix && pn > 0 && p[0] == ' ') p++, pn--;
        sb_put(&b, p, pn);
    }
    sb_put(&b, "", 0);
    if (!b.oom && !b.p) b.p = core_malloc(1);
    if (b.oom || !b.p) {
        free(b.p);
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory decoding %zu tokens", n);
    }
    b.p[b.n] = '\0';
    *out = b.p;
    *len = b.n;
    return SHIMMY_OK;
}

size_t tok_clean_spaces(const tok_vocab *v, char *t, size_t len) {
    if (!v->clean_spaces || len == 0) return len;
    /* three in-place passes, exactly the engine's (including its quirks: the second pass blanks
     * the space after " ' " with a NUL that later passes then see) */
    size_t n1 = len, w = 1;
    for (size_t i = 1; i < n1; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) w--;
        t[w++] = x;
    }
    size_t n2 = w;
    w = 1;
    for (size_t i = 1; i < n2; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
            w--;
            t[++i] = '\0';
        }
        t[w++] = x;
    }
    size_t n3 = w;
    w = 1;
    for (size_t i = 1; i < n3; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm')
                w--;
            else if (i + 2 < n3 && x1 != 't' && x1 != 'd') {
                char x2 = t[i + 2];
                if ((x1 == 'r' || x1 == 'v') && x2 == 'e') w--;
            }
        }
        t[w++] = x;
    }
    return w;
}

/* ---- streaming ---- */

void tok_decoder_init(tok_decoder *d, const tok_vocab *v, bool special, bool strip_leading_space) {
    memset(d, 0, sizeof *d);
    d->v = v;
    d->special = special;
    d->strip = strip_leading_space && v->add_space_prefix;
}

size_t tok_decoder_max_out(const tok_vocab *v) {
    return 3 * v->max_piece + 12;
}

typedef struct wr {
    char *p;
    size_t n, cap;
} wr;

static void wr_put(wr *w, const void *s, size_t n) {
    size_t k = w->n < w->cap ? w->cap - w->n : 0;
    if (n > k) n = k;
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void wr_fffd(wr *w) {
    wr_put(w, "\xef\xbf\xbd", 3);
}

/* Length of the sequence a lead byte starts (0 = never valid), and the range the byte at index
 * k may take (Unicode table 3-7: no overlongs, surrogates or code points above U+10FFFF). */
static int seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

static bool cont_ok(unsigned char lead, int k, unsigned char c) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (k == 1) {
        if (lead == 0xE0)
            lo = 0xA0;
        else if (lead == 0xED)
            hi = 0x9F;
        else if (lead == 0xF0)
            lo = 0x90;
        else if (lead == 0xF4)
            hi = 0x8F;
    }
    return c >= lo && c <= hi;
}

static void feed(tok_decoder *d, unsigned char c, wr *w) {
    if (d->n_pend > 0) {
        if (cont_ok(d->pend[0], d->n_pend, c)) {
            d->pend[d->n_pend++] = c;
            if (d->n_pend == seq_len(d->pend[0])) {
                wr_put(w, d->pend, (size_t)d->n_pend);
                d->n_pend = 0;
            }
            return;
        }
        wr_fffd(w); /* the valid prefix so far is one maximal subpart */
        d->n_pend = 0;
    }
    int n = seq_len(c);
    if (n == 1)
        wr_put(w, &c, 1);
    else if (n == 0)
        wr_fffd(w);
    else
        d->pend[d->n_pend++] = c;
}

size_t tok_decoder_push(tok_decoder *d, int32_t id, char *out, size_t cap) {
    size_t n;
    const char *p = piece_ref(d->v, id, d->special, &n);
    if (d->strip && n > 0 && p[0] == ' ') p++, n--;
    d->strip = false;
    wr w = {out, 0, cap};
    for (size_t i = 0; i < n; i++) feed(d, (unsigned char)p[i], &w);
    return w.n;
}

size_t tok_decoder_flush(tok_decoder *d, char *out, size_t cap) {
    wr w = {out, 0, cap};
    if (d->n_pend > 0) wr_fffd(&w);
    d->n_pend = 0;
    d->strip = false;
    return w.n;
}
