/* SentencePiece Unigram ("t5", the engine's UGM): T5, XLM-RoBERTa models (bge-m3,
 * multilingual-e5), ALBERT.
 *
 * Normalization, per raw fragment: at each position the longest prefix of the text that the
 * precompiled charsmap (tokenizer.ggml.precompiled_charsmap: a 32-bit blob size, an
 * XOR-compressed compact double array over bytes, then NUL-terminated replacement strings) maps
 * is replaced (NFKC and friends); a prefix that runs along a user-defined piece is kept as is;
 * other characters pass unchanged, an invalid UTF-8 byte becomes U+FFFD. Spaces become U+2581,
 * a run of other characters gets one in front when add_space_prefix (the first run) or
 * remove_extra_whitespaces (every run; spaces are then dropped) says so.
 *
 * Segmentation: Viterbi over the normalized bytes, one step per code point; every piece
 * (normal, user-defined, unused) that starts there competes with its score (user-defined: 0);
 * a code point no single piece covers may be the unknown token at the lowest normal score
 * minus 10. Scores are summed in double, as the engine does. Consecutive unknowns collapse. */
#include "tok_impl.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define SPACE_MARK "\xe2\x96\x81"

typedef struct tok_ugm {
    uint32_t *xcda; /* (n_xcda) the double array's packed nodes */
    size_t n_xcda;
    char *repl; /* (n_repl) replacement strings */
    size_t n_repl;
    uint64_t *bloom; /* (bloom_mask + 1) / 64: hashes of every prefix of every piece */
    uint32_t bloom_mask;
    uint32_t max_len; /* longest piece in bytes */
    int32_t *ud;      /* (n_ud) user-defined pieces */
    size_t n_ud;
    uint64_t ud_first[4]; /* first bytes of the user-defined pieces */
    float unk_score;
    bool remove_extra_ws;
} tok_ugm;

typedef struct tok_ugm_best {
    int32_t id;
    uint32_t start;
    double score;
} tok_ugm_best;

static bool matchable(const tok_vocab *v, int32_t id) {
    return v->type[id] == TOK_TYPE_NORMAL || v->type[id] == TOK_TYPE_USER_DEFINED ||
           v->type[id] == TOK_TYPE_UNUSED;
}

/* FNV-1a, extended one byte at a time while walking a prefix */
static uint64_t step(uint64_t h, unsigned char c) {
    return (h ^ c) * 0x100000001b3ull;
}
#define HASH0 0xcbf29ce484222325ull

static bool bloom_has(const tok_ugm *u, uint64_t h) {
    uint32_t a = (uint32_t)h & u->bloom_mask, b = (uint32_t)(h >> 32) & u->bloom_mask;
    return (u->bloom[a >> 6] >> (a & 63) & 1) && (u->bloom[b >> 6] >> (b & 63) & 1);
}
static void bloom_add(tok_ugm *u, uint64_t h) {
    uint32_t a = (uint32_t)h & u->bloom_mask, b = (uint32_t)(h >> 32) & u->bloom_mask;
    u->bloom[a >> 6] |= 1ull << (a & 63);
    u->bloom[b >> 6] |= 1ull << (b & 63);
}

static shimmy_status load_charsmap(tok_ugm *u, const gguf_file *f, shimmy_error *err) {
    const char *key = "tokenizer.ggml.precompiled_charsmap";
    const gguf_value *cm = gguf_get(f, key);
    if (!cm) return SHIMMY_OK;
    if (cm->type != GGUF_VT_ARRAY ||
        (cm->v.arr.elem_type != GGUF_VT_UINT8 && cm->v.arr.elem_type != GGUF_VT_INT8))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f), "%s must be a byte array", key);
    const unsigned char *p = cm->v.arr.data;
    size_t n = (size_t)cm->v.arr.count;
    uint32_t blob = 0;
    if (n >= 4)
        blob = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (n < 4 || (uint64_t)blob + 4 >= n)
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "%s is truncated (%zu bytes, a %u-byte node array announced)", key, n,
                          blob);
    u->n_xcda = blob / 4;
    u->n_repl = n - 4 - blob;
    u->xcda = core_malloc(u->n_xcda ? u->n_xcda * 4 : 1);
    u->repl = core_malloc(u->n_repl);
    if (!u->xcda || !u->repl)
        return core_error(err, SHIMMY_ERR_NOMEM, gguf_path(f), "out of memory");
    for (size_t i = 0; i < u->n_xcda; i++) {
        const unsigned char *q = p + 4 + 4 * i;
        u->xcda[i] =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    }
    memcpy(u->repl, p + 4 + blob, u->n_repl);
    return SHIMMY_OK;
}

shimmy_status tok_ugm_load(tok_vocab *v, const gguf_file *f, shimmy_error *err) {
    tok_ugm *u = v->ugm = core_calloc(1, sizeof *u);
    if (!u) return core_error(err, SHIMMY_ERR_NOMEM, gguf_path(f), "out of memory");
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.remove_extra_whitespaces", &b)) u->remove_extra_ws = b;
    shimmy_status st = load_charsmap(u, f, err);
    if (st) return st;

    float lo = FLT_MAX;
    size_t prefixes = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        if (v->type[id] == TOK_TYPE_NORMAL && v->score[id] < lo) lo = v->score[id];
        if (matchable(v, id)) prefixes += v->str_len[id];
        if (v->type[id] == TOK_TYPE_USER_DEFINED) u->n_ud++;
    }
    u->unk_score = lo - 10.0f; /* the engine's penalty for an unknown code point */
    uint32_t bits = 1u << 16;
    while (bits < 8 * prefixes && bits < (1u << 31)) bits <<= 1;
    u->bloom_mask = bits - 1;
    u->bloom = core_calloc(bits / 64, sizeof *u->bloom);
    u->ud = core_malloc((u->n_ud ? u->n_ud : 1) * sizeof *u->ud);
    if (!u->bloom || !u->ud)
        return core_error(err, SHIMMY_ERR_NOMEM, gguf_path(f), "out of memory");
    u->n_ud = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        if (!matchable(v, id)) continue;
        size_t n;
        const unsigned char *t = (const unsigned char *)tok_str(v, id, &n);
        uint64_t h = HASH0;
        for (size_t k = 0; k < n; k++) bloom_add(u, h = step(h, t[k]));
        if (n > u->max_len) u->max_len = (uint32_t)n;
        if (v->type[id] == TOK_TYPE_USER_DEFINED) {
            u->ud[u->n_ud++] = id;
            u->ud_first[t[0] >> 6] |= 1ull << (t[0] & 63);
        }
    }
    return SHIMMY_OK;
}

void tok_ugm_free(tok_vocab *v) {
    if (!v->ugm) return;
    free(v->ugm->xcda);
    free(v->ugm->repl);
    free(v->ugm->bloom);
    free(v->ugm->ud);
    free(v->ugm);
    v->ugm = NULL;
}

size_t tok_ugm_bytes(const tok_vocab *v) {
    const tok_ugm *u = v->ugm;
    if (!u) return 0;
    return sizeof *u + u->n_xcda * 4 + u->n_repl + ((size_t)u->bloom_mask + 1) / 8 +
           u->n_ud * sizeof *u->ud;
}

/* ---- normalization ---- */

/* The length of the UTF-8 sequence at s as the engine reads it: lead and continuation bits
 * only (overlong forms pass), 0 when they do not fit. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    size_t k = !(s[0] & 0x80)   ? 1
               : !(s[0] & 0x40) ? 0
               : !(s[0] & 0x20) ? 2
               : !(s[0] & 0x10) ? 3
               : !(s[0] & 0x08) ? 4
                                : 0;
    if (k == 0 || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

/* A user-defined piece at s is kept as written: the length of the longest one, or 0.
 * (The engine keeps the longest common prefix with any of them, whole or not, so a character
 * that merely starts like a multi-byte user-defined piece escapes normalization; SentencePiece
 * matches whole pieces, and so does this.) */
static size_t ud_prefix(const tok_vocab *v, const unsigned char *s, size_t n) {
    const tok_ugm *u = v->ugm;
    if (!(u->ud_first[s[0] >> 6] >> (s[0] & 63) & 1)) return 0;
    size_t best = 0;
    for (size_t i = 0; i < u->n_ud; i++) {
        size_t tn;
        const char *t = tok_str(v, u->ud[i], &tn);
        if (tn > best && tn <= n && memcmp(t, s, tn) == 0) best = tn;
    }
    return best;
}

/* Longest charsmap match at s: sets *repl / *rlen and returns the bytes consumed, or 0. Nodes
 * or strings outside the map (a damaged file) end the walk instead of being read. */
static size_t charsmap(const tok_ugm *u, const unsigned char *s, size_t n, const char **repl,
                       size_t *rlen) {
    if (u->n_xcda == 0) return 0;
    size_t best = 0, at = 0;
    uint32_t node = (u->xcda[0] >> 10) << ((u->xcda[0] & (1u << 9)) >> 6);
    for (size_t i = 0; i < n && s[i]; i++) {
        node ^= s[i];
        if (node >= u->n_xcda) break;
        uint32_t e = u->xcda[node];
        if ((e & ((1u << 31) | 0xFF)) != s[i]) break; /* LCHECK: not a child */
        bool leaf = (e >> 8) & 1;
        node ^= (e >> 10) << ((e & (1u << 9)) >> 6); /* BASE */
        if (leaf) {
            if (node >= u->n_xcda) break;
            best = i + 1;
            at = u->xcda[node] & ((1u << 31) - 1);
        }
    }
    if (best == 0 || at >= u->n_repl) return 0;
    const char *r = u->repl + at;
    const char *end = memchr(r, '\0', u->n_repl - at);
    if (!end) return 0;
    *repl = r;
    *rlen = (size_t)(end - r);
    return best;
}

typedef struct nbuf {
    char *p;
    size_t n, cap;
} nbuf;

static bool put(nbuf *b, const char *s, size_t n) {
    if (!tok_grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) return false;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

static bool normalize(const tok_vocab *v, const unsigned char *in, size_t len, nbuf *out) {
    const tok_ugm *u = v->ugm;
    bool merge = u->remove_extra_ws, prepend = v->add_space_prefix;
    bool prepended = false, in_word = false;
    for (size_t off = 0; off < len;) {
        const char *r = (const char *)in + off;
        size_t rn = 0, used = ud_prefix(v, in + off, len - off);
        if (used)
            rn = used;
        else if ((used = charsmap(u, in + off, len - off, &r, &rn)) == 0) {
            rn = used = utf8_seq(in + off, len - off);
            if (!used) {
                r = "\xef\xbf\xbd";
                rn = 3;
                used = 1;
            }
        }
        for (size_t i = 0; i < rn; i++) {
            if (r[i] != ' ') {
                if (!in_word) {
                    in_word = true;
                    if (((prepend && !prepended) || merge) && !put(out, SPACE_MARK, 3))
                        return false;
                    prepended = true;
                }
                if (!put(out, r + i, 1)) return false;
            } else {
                in_word = false;
                if (!merge && !put(out, SPACE_MARK, 3)) return false;
            }
        }
        off += used;
    }
    return true;
}

/* ---- segmentation ---- */

static size_t cp_len(unsigned char c) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

shimmy_status tok_ugm_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err) {
    (void)prefix_space; /* the engine prepends per fragment, as add_space_prefix says */
    const tok_ugm *u = v->ugm;
    nbuf nb = {s->text, 0, s->cap_text};
    bool ok = normalize(v, (const unsigned char *)text, len, &nb);
    s->text = nb.p;
    s->cap_text = nb.cap;
    if (!ok || nb.n > UINT32_MAX - 1 ||
        !tok_grow((void **)&s->best, &s->cap_best, nb.n + 1, sizeof *s->best))
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing %zu bytes", len);
    size_t n = nb.n;
    if (n == 0) return SHIMMY_OK;
    const unsigned char *t = (const unsigned char *)nb.p;
    tok_ugm_best *best = s->best;
    best[0] = (tok_ugm_best){v->unk, 0, 0.0};
    for (size_t i = 1; i <= n; i++) best[i] = (tok_ugm_best){v->unk, 0, -DBL_MAX};

    for (size_t off = 0; off < n;) {
        size_t cl = cp_len(t[off]);
        if (cl > n - off) cl = n - off;
        bool single = false;
        double base = best[off].score;
        uint64_t h = HASH0;
        for (size_t k = 1; k <= u->max_len && off + k <= n; k++) {
            if (!bloom_has(u, h = step(h, t[off + k - 1]))) break;
            int32_t id = tok_intern_find(v, (const char *)t + off, k);
            if (id < 0 || id >= v->n_vocab || !matchable(v, id)) continue;
            if (k == cl) single = true;
            double sc = base + (v->type[id] == TOK_TYPE_USER_DEFINED ? 0.0 : v->score[id]);
            if (sc > best[off + k].score) best[off + k] = (tok_ugm_best){id, (uint32_t)off, sc};
        }
        if (!single && base + u->unk_score > best[off + cl].score)
            best[off + cl] = (tok_ugm_best){v->unk, (uint32_t)off, base + u->unk_score};
        off += cl;
    }

    /* back from the end; a run of unknowns is one unknown */
    size_t n0 = out->n;
    bool prev_unk = false;
    for (size_t at = n;;) {
        const tok_ugm_best *b = &best[at];
        bool unk = b->id == v->unk;
        if (!(prev_unk && unk) && b->id >= 0) {
            shimmy_status st = tok_buf_push(out, b->id, err);
            if (st) return st;
        }
        if (b->start == 0) break;
        prev_unk = unk;
        at = b->start;
    }
    for (size_t i = n0, j = out->n; i + 1 < j; i++, j--) {
        int32_t x = out->ids[i];
        out->ids[i] = out->ids[j - 1];
        out->ids[j - 1] = x;
    }
    return SHIMMY_OK;
}
