/*
 * tok_impl.h — private to src/tokenizer/: the layout of tok_vocab and the functions its files
 * share. Nothing outside this folder includes it.
 *
 * Strings: every vocabulary text (and, for BPE, every merge operand that is not itself a token)
 * is interned once in `blob`; its id is its index. Ids < n_vocab are real tokens; ids in
 * [n_vocab, n_str) are BPE merge-only strings that can never be emitted. The string hash maps
 * text -> id with the engine's rule that a later duplicate text wins.
 */
#ifndef SHIMMY_TOK_IMPL_H
#define SHIMMY_TOK_IMPL_H

#include "tokenizer/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Per-token attribute bits (the engine's llama_token_attr subset this module needs). */
enum {
    TOK_ATTR_NORMAL = 1u << 0,
    TOK_ATTR_UNKNOWN = 1u << 1,
    TOK_ATTR_CONTROL = 1u << 2,
    TOK_ATTR_USER_DEFINED = 1u << 3,
    TOK_ATTR_UNUSED = 1u << 4,
    TOK_ATTR_BYTE = 1u << 5,
    TOK_ATTR_LSTRIP = 1u << 6,
    TOK_ATTR_RSTRIP = 1u << 7,
};

#define TOK_MAX_REGEX 8

/* One pre-tokenizer: the regexes applied in order (each splits the pieces the previous left). */
typedef struct tok_pretok {
    const char *const *names; /* tokenizer.ggml.pre values, NULL-terminated */
    const char *const *regex; /* NULL-terminated */
    bool clean_spaces;
    bool ignore_merges;
    bool add_bos; /* forces add_bos before the metadata is read (tekken, chameleon) */
    bool no_bos;  /* the engine drops the BOS id (chatglm-bpe) */
} tok_pretok;

/* The algorithm-specific part of encoding: one raw-text fragment -> ids. */
typedef struct tok_scratch tok_scratch;
typedef shimmy_status (*tok_encode_fn)(const tok_vocab *v, const char *text, size_t len,
                                       bool prefix_space, tok_scratch *s, tok_buf *out,
                                       shimmy_error *err);

typedef struct tok_hslot {
    int32_t id;   /* string id, -1 = empty */
    uint32_t tag; /* high half of the text's hash */
} tok_hslot;

typedef struct tok_pair {
    uint32_t left, right; /* string ids; left == UINT32_MAX marks an empty slot */
    int32_t rank; /* queue priority: BPE the line in tokenizer.ggml.merges, SPM the piece's score */
    int32_t res;  /* string id of left+right */
} tok_pair;

struct tok_vocab {
    tok_algo algo;
    tok_encode_fn encode_fragment;
    int32_t n_vocab; /* real tokens */
    int32_t n_str;   /* interned strings: tokens + merge-only strings */
    int32_t cap_str;
    uint32_t *str_off; /* (cap_str) offset into blob */
    uint32_t *str_len; /* (cap_str) */
    char *blob;
    size_t blob_len, blob_cap;
    tok_hslot *hslot; /* (hmask + 1) */
    uint32_t hmask;

    float *score;  /* (n_vocab) */
    uint8_t *type; /* (n_vocab) tok_type */
    uint8_t *attr; /* (n_vocab) TOK_ATTR_* */
    uint8_t *eog;  /* (n_vocab) 1 = end of generation */

    /* decoded pieces with special = true, as the engine caches them */
    uint32_t *piece_off; /* (n_vocab) */
    uint32_t *piece_len; /* (n_vocab) */
    char *piece_blob;
    size_t max_piece;

    /* special tokens matched in text: control, user-defined, unknown; longest text first */
    int32_t *special;
    size_t n_special;

    int32_t bos, eos, eot, eom, unk, sep, pad, mask, nl;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix, clean_spaces, ignore_merges;
    bool add_sep; /* WPM: add_special ends with SEP; every vocab: the llama-server pair form */
    char pre_name[64];

    /* WPM */
    bool wpm_lower, wpm_strip; /* BertNormalizer: lowercase, strip accents (NFD base) */
    uint32_t max_tok_len;      /* longest token text in bytes: the longest match to try */

    /* UGM (unigram.c) */
    struct tok_ugm *ugm;

    /* SPM */
    int32_t spm_byte[256]; /* token of byte b: <0xXX>, else the 1-char text, else -1 */
    int32_t spm_char[256]; /* token whose text is the single byte b, or -1 */
    int32_t spm_space;     /* token "\u2581", or -1 */
    uint64_t *spm_pairs;   /* (65536 bits) byte pairs (a, b) that occur in some token text */

    /* BPE */
    const tok_pretok *pre;
    pcre2_code *re[TOK_MAX_REGEX];
    int n_re;
    tok_pair *pair; /* (pmask + 1) open-addressed merge table */
    uint32_t pmask;
    int32_t bpe_byte_sym[256]; /* string id of the byte-level character of b, or -1 */
    int32_t bpe_byte_tok[256]; /* token whose text is the single byte b (fallback), or -1 */
};

/* ---- vocab.c ---- */
uint64_t tok_hash(const char *s, size_t n);
int32_t tok_intern_find(const tok_vocab *v, const char *s, size_t n);
/* Starts loading the hash slot of s into the cache (lookups are memory-bound at load). */
void tok_intern_prefetch(const tok_vocab *v, const char *s, size_t n);
/* Adds a string that is not a token (BPE merge operand); returns its id or -1 on NOMEM. */
int32_t tok_intern_add(tok_vocab *v, const char *s, size_t n);
static inline const char *tok_str(const tok_vocab *v, int32_t id, size_t *n) {
    *n = v->str_len[id];
    return v->blob + v->str_off[id];
}

/* ---- the pair table: (left, right) string ids -> result; BPE merges and SPM joins ---- */
#define TOK_PAIR_EMPTY UINT32_MAX
static inline uint32_t tok_pair_slot(uint32_t l, uint32_t r, uint32_t mask) {
    uint64_t key = (uint64_t)l << 32 | r;
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}
static inline const tok_pair *tok_pair_find(const tok_vocab *v, int32_t l, int32_t r) {
    for (uint32_t i = tok_pair_slot((uint32_t)l, (uint32_t)r, v->pmask);; i = (i + 1) & v->pmask) {
        const tok_pair *p = &v->pair[i];
        if (p->left == TOK_PAIR_EMPTY) return NULL;
        if (p->left == (uint32_t)l && p->right == (uint32_t)r) return p;
    }
}
/* Allocates an empty table for n pairs (at most 2/3 full); false on NOMEM. */
bool tok_pairs_init(tok_vocab *v, size_t n);
/* The first insertion of a pair wins. */
void tok_pair_insert(tok_vocab *v, int32_t l, int32_t r, int32_t rank, int32_t res);

/* ---- scratch shared by one tok_encode call (grown on demand, freed at the end) ---- */
typedef struct tok_sym {
    int32_t prev, next;
    uint32_t start, n; /* byte range in the fragment being merged */
    int32_t id;        /* BPE: interned string id or -1 */
} tok_sym;

/* A candidate merge of symbols left and right. Both algorithms pop the smallest (prio, left):
 * BPE's prio is the merge rank, SPM's an order-reversing encoding of the piece score. */
typedef struct tok_bigram {
    uint32_t prio;
    int32_t left, right;
    uint32_t a, b; /* BPE: the two string ids at push time; SPM: merged length, piece id */
} tok_bigram;

struct tok_scratch {
    tok_sym *sym;
    size_t n_sym, cap_sym;
    tok_bigram *heap; /* binary min-heap */
    size_t n_heap, cap_heap;
    char *text; /* SPM: escaped text; BPE: sanitized UTF-8 */
    size_t cap_text;
    char *enc; /* BPE: a word in byte-level spelling */
    size_t cap_enc;
    size_t *cuts; /* BPE: word end offsets */
    size_t n_cuts, cap_cuts;
    size_t *cuts2; /* the next regex's result while splitting */
    size_t n_cuts2, cap_cuts2;
    pcre2_match_data *md;
    struct tok_cache_ent *cache; /* cache.c: memo of pieces already encoded in this call */
    uint32_t cache_used, cache_mask;
    char *ckeys;
    size_t n_ckeys, cap_ckeys;
    int32_t *cids;
    size_t n_cids, cap_cids;
    struct tok_ugm_best *best; /* UGM: the Viterbi lattice, one entry per normalized byte */
    size_t cap_best;
};
void tok_scratch_deinit(tok_scratch *s);

static inline bool tok_bigram_less(const tok_bigram *x, const tok_bigram *y) {
    return x->prio < y->prio || (x->prio == y->prio && x->left < y->left);
}
/* false on NOMEM */
bool tok_heap_push(tok_scratch *s, tok_bigram e);
/* false when empty */
bool tok_heap_pop(tok_scratch *s, tok_bigram *out);
bool tok_grow(void **p, size_t *cap, size_t need, size_t elem);

/* ---- cache.c ---- */
#define TOK_CACHE_MAX_KEY 64 /* longer pieces are not memoised */
uint64_t tok_cache_hash(const char *w, size_t n);
/* Appends the memoised ids of piece w (hash h) to out; false when absent. */
bool tok_cache_get(tok_scratch *s, const char *w, size_t n, uint64_t h, tok_buf *out);
/* Remembers ids for w; silently does nothing when w is too long or memory is short. */
void tok_cache_put(tok_scratch *s, const char *w, size_t n, uint64_t h, const int32_t *ids,
                   size_t k);

/* ---- spm.c / bpe.c ---- */
/* Builds the SPM byte-pair table that lets encoding work on independent segments. */
shimmy_status tok_spm_load(tok_vocab *v, shimmy_error *err);
shimmy_status tok_spm_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err);
shimmy_status tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err);
/* Loads tokenizer.ggml.merges into the pair table and the byte tables. */
shimmy_status tok_bpe_load(tok_vocab *v, const gguf_file *f, shimmy_error *err);

/* ---- wordpiece.c ---- */
/* Reads the normalizer flags and the longest token length. */
shimmy_status tok_wpm_load(tok_vocab *v, const gguf_file *f, shimmy_error *err);
shimmy_status tok_wpm_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err);

/* ---- unigram.c ---- */
/* Reads the precompiled charsmap and the whitespace flags and indexes the pieces. */
shimmy_status tok_ugm_load(tok_vocab *v, const gguf_file *f, shimmy_error *err);
void tok_ugm_free(tok_vocab *v);
size_t tok_ugm_bytes(const tok_vocab *v);
shimmy_status tok_ugm_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err);

/* ---- ucd.c: the Unicode character data WordPiece needs (ucd_class.c and ucd_nfd.c are
 * generated by tools/gen_unicode_tab.py from UnicodeData.txt) ---- */
enum {
    TOK_UCD_CONTROL = 1, /* Cc Cf Co Cs */
    TOK_UCD_PUNCT = 2,   /* P* */
    TOK_UCD_SYMBOL = 4,  /* S* */
    TOK_UCD_MARK = 8,    /* M* */
};
extern const uint32_t tok_ucd_class_tab[], tok_ucd_lower_tab[], tok_ucd_nfd_tab[];
extern const size_t tok_ucd_n_class, tok_ucd_n_lower, tok_ucd_n_nfd;
/* TOK_UCD_* bits of cp's general category (0 for letters, numbers, separators, unassigned). */
unsigned tok_ucd_class(uint32_t cp);
/* The engine's whitespace: Unicode White_Space (U+0009-000D, U+0020, U+0085, U+00A0, ...). */
bool tok_ucd_is_space(uint32_t cp);
/* The simple lowercase mapping of cp (cp itself when it has none). */
uint32_t tok_ucd_lower(uint32_t cp);
/* The first code point of cp's canonical decomposition (NFD): the base letter of an accented
 * one, the leading jamo of a Hangul syllable; cp itself when it does not decompose. */
uint32_t tok_ucd_nfd_base(uint32_t cp);

/* ---- pretok.c ---- */
/* The table row for a tokenizer.ggml.pre name (NULL name = "default"), or NULL if unknown. */
const tok_pretok *tok_pretok_find(const char *name);
shimmy_status tok_pretok_compile(tok_vocab *v, shimmy_error *err);
void tok_pretok_free(tok_vocab *v);
/* Splits text[0..len) (valid UTF-8) into words; s->cuts receives the end offset of each word. */
shimmy_status tok_pretok_split(const tok_vocab *v, const char *text, size_t len, tok_scratch *s,
                               shimmy_error *err);

/* ---- bytes.c: GPT-2 byte-level code points ---- */
/* UTF-8 of the code point standing for byte b (2 bytes at most); returns its length. */
int tok_byte_to_utf8(unsigned char b, char out[2]);
/* The byte a code point stands for, or -1. */
int tok_utf8_cp_to_byte(uint32_t cp);
/* The engine's lenient UTF-8 pass: invalid bytes become U+FFFD, overlong forms are re-encoded
 * shortest, surrogates and values above U+10FFFF become U+FFFD. Writes at most 3 * len bytes. */
size_t tok_utf8_sanitize(const char *in, size_t len, char *out);

/* ---- decode.c ---- */
/* Builds the piece cache; called once at the end of loading. */
shimmy_status tok_pieces_build(tok_vocab *v, shimmy_error *err);

#endif
