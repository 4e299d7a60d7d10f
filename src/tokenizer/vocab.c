/* Vocabulary loading from GGUF metadata: the interned string table, token types and scores, the
 * per-algorithm defaults, and the accessors of tokenizer.h. Special-token rules live in
 * special.c, the algorithms in spm.c / bpe.c. */
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MODEL  "tokenizer.ggml.model"
#define KEY_PRE    "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES  "tokenizer.ggml.token_type"

shimmy_status tok_special_setup(tok_vocab *v, const gguf_file *f, shimmy_error *err);

bool tok_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    if (n > SIZE_MAX / elem) return false;
    void *q = core_realloc(*p, n * elem);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

/* ---- string interning: open addressing over ids, compared by bytes ---- */

uint64_t tok_hash(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static bool str_is(const tok_vocab *v, int32_t id, const char *s, size_t n) {
    return v->str_len[id] == n && memcmp(v->blob + v->str_off[id], s, n) == 0;
}

/* Slots carry the hash's high half as a tag, so a probe only touches the string table when the
 * tags agree: loading 280k merges is dominated by these lookups. */
static uint32_t tag_of(uint64_t h) {
    return (uint32_t)(h >> 32);
}

int32_t tok_intern_find(const tok_vocab *v, const char *s, size_t n) {
    uint64_t h = tok_hash(s, n);
    uint32_t tag = tag_of(h);
    for (uint32_t i = (uint32_t)h & v->hmask;; i = (i + 1) & v->hmask) {
        tok_hslot e = v->hslot[i];
        if (e.id < 0) return -1;
        if (e.tag == tag && str_is(v, e.id, s, n)) return e.id;
    }
}

void tok_intern_prefetch(const tok_vocab *v, const char *s, size_t n) {
    __builtin_prefetch(&v->hslot[(uint32_t)tok_hash(s, n) & v->hmask]);
}

/* Inserts id (whose text hashes to h) into slots h[0..mask]; a previous id with the same text
 * is replaced, as the engine's token_to_id[text] = i keeps the last. */
static void slot_put(tok_vocab *v, tok_hslot *slots, uint32_t mask, int32_t id, uint64_t h) {
    const char *s = v->blob + v->str_off[id];
    size_t n = v->str_len[id];
    uint32_t tag = tag_of(h), i = (uint32_t)h & mask;
    while (slots[i].id >= 0 && !(slots[i].tag == tag && str_is(v, slots[i].id, s, n)))
        i = (i + 1) & mask;
    slots[i] = (tok_hslot){id, tag};
}

static bool hash_resize(tok_vocab *v, uint32_t n_slots) {
    tok_hslot *h = core_malloc((size_t)n_slots * sizeof *h);
    if (!h) return false;
    for (uint32_t i = 0; i < n_slots; i++) h[i] = (tok_hslot){-1, 0};
    for (int32_t id = 0; id < v->n_str; id++)
        slot_put(v, h, n_slots - 1, id, tok_hash(v->blob + v->str_off[id], v->str_len[id]));
    free(v->hslot);
    v->hslot = h;
    v->hmask = n_slots - 1;
    return true;
}

/* Appends a string and maps its text to the new id (shadowing an earlier equal text). */
static int32_t intern_push(tok_vocab *v, const char *s, size_t n) {
    if (n > UINT32_MAX - 1 || v->n_str == INT32_MAX) return -1;
    size_t cap = (size_t)v->cap_str;
    if ((size_t)v->n_str + 1 > cap) {
        size_t c1 = cap, c2 = cap;
        if (!tok_grow((void **)&v->str_off, &c1, (size_t)v->n_str + 1, sizeof *v->str_off) ||
            !tok_grow((void **)&v->str_len, &c2, (size_t)v->n_str + 1, sizeof *v->str_len))
            return -1;
        v->cap_str = (int32_t)(c1 < c2 ? c1 : c2);
    }
    if (v->blob_len + n > UINT32_MAX) return -1;
    if (!tok_grow((void **)&v->blob, &v->blob_cap, v->blob_len + n + 1, 1)) return -1;
    if ((uint64_t)(v->n_str + 1) * 4 > ((uint64_t)v->hmask + 1) * 3) { /* load <= 3/4 */
        if (v->hmask >= (1u << 30) || !hash_resize(v, (v->hmask + 1) * 2)) return -1;
    }
    memcpy(v->blob + v->blob_len, s, n);
    int32_t id = v->n_str++;
    v->str_off[id] = (uint32_t)v->blob_len;
    v->str_len[id] = (uint32_t)n;
    v->blob_len += n;
    slot_put(v, v->hslot, v->hmask, id, tok_hash(s, n));
    return id;
}

int32_t tok_intern_add(tok_vocab *v, const char *s, size_t n) {
    int32_t id = tok_intern_find(v, s, n);
    return id >= 0 ? id : intern_push(v, s, n);
}

/* ---- the pair table ---- */

bool tok_pairs_init(tok_vocab *v, size_t n) {
    uint32_t slots = 1024;
    while (slots < n + n / 2 + 2) slots *= 2;
    v->pmask = slots - 1;
    v->pair = core_malloc((size_t)slots * sizeof *v->pair);
    if (!v->pair) return false;
    for (uint32_t i = 0; i < slots; i++) v->pair[i].left = TOK_PAIR_EMPTY;
    return true;
}

void tok_pair_insert(tok_vocab *v, int32_t l, int32_t r, int32_t rank, int32_t res) {
    uint32_t i = tok_pair_slot((uint32_t)l, (uint32_t)r, v->pmask);
    for (; v->pair[i].left != TOK_PAIR_EMPTY; i = (i + 1) & v->pmask)
        if (v->pair[i].left == (uint32_t)l && v->pair[i].right == (uint32_t)r) return;
    v->pair[i] = (tok_pair){(uint32_t)l, (uint32_t)r, rank, res};
}

/* ---- loading ---- */

static shimmy_status load_tokens(tok_vocab *v, const gguf_file *f, shimmy_error *err) {
    const char *path = gguf_path(f);
    const gguf_value *toks = gguf_get_arr(f, KEY_TOKENS, GGUF_VT_STRING);
    if (!toks)
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          "the model has no token list (" KEY_TOKENS " missing or not strings)");
    uint64_t n = toks->v.arr.count;
    if (n == 0 || n > (1u << 24))
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          KEY_TOKENS " has %llu entries; expected 1 to 16777216",
                          (unsigned long long)n);
    const gguf_value *scores = gguf_get(f, KEY_SCORES);
    if (scores &&
        (scores->type != GGUF_VT_ARRAY || scores->v.arr.count != n ||
         scores->v.arr.elem_type == GGUF_VT_STRING || scores->v.arr.elem_type == GGUF_VT_ARRAY))
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          KEY_SCORES " must be a numeric array with one score per token (%llu)",
                          (unsigned long long)n);
    const gguf_value *types = gguf_get(f, KEY_TYPES);
    if (types &&
        (types->type != GGUF_VT_ARRAY || types->v.arr.count != n ||
         types->v.arr.elem_type == GGUF_VT_STRING || types->v.arr.elem_type == GGUF_VT_ARRAY ||
         types->v.arr.elem_type == GGUF_VT_FLOAT32 || types->v.arr.elem_type == GGUF_VT_FLOAT64))
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          KEY_TYPES " must be an integer array with one type per token (%llu)",
                          (unsigned long long)n);

    v->n_vocab = (int32_t)n;
    uint32_t slots = 1024;
    while (slots < n + n / 4 + 2) slots *= 2;
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += toks->v.arr.strs[i].len;
    v->blob = core_malloc(total + 1);
    v->blob_cap = total + 1;
    size_t cap = (size_t)n + 64;
    v->str_off = core_malloc(cap * sizeof *v->str_off);
    v->str_len = core_malloc(cap * sizeof *v->str_len);
    v->cap_str = (int32_t)cap;
    v->score = core_calloc((size_t)n, sizeof *v->score);
    v->type = core_calloc((size_t)n, 1);
    v->attr = core_calloc((size_t)n, 1);
    v->eog = core_calloc((size_t)n, 1);
    if (!v->blob || !v->str_off || !v->str_len || !v->score || !v->type || !v->attr || !v->eog ||
        !hash_resize(v, slots))
        return core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory loading %llu tokens",
                          (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        if (i + 8 < n) /* inserting is bound by cache misses on the slots */
            tok_intern_prefetch(v, toks->v.arr.strs[i + 8].data,
                                (size_t)toks->v.arr.strs[i + 8].len);
        gguf_str s = toks->v.arr.strs[i];
        char tmp[40];
        if (s.len == 0) { /* the engine renames empty tokens so they stay unique */
            int k = snprintf(tmp, sizeof tmp, "[EMPTY_%llu]", (unsigned long long)i);
            s.data = tmp;
            s.len = (uint64_t)k;
        }
        if (intern_push(v, s.data, (size_t)s.len) < 0)
            return core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory loading tokens");
        v->score[i] = scores ? (float)gguf_arr_f64(scores, i) : 0.0f;
        int64_t t = types ? gguf_arr_i64(types, i) : TOK_TYPE_NORMAL;
        static const uint8_t attr_of[7] = {0,
                                           TOK_ATTR_NORMAL,
                                           TOK_ATTR_UNKNOWN,
                                           TOK_ATTR_CONTROL,
                                           TOK_ATTR_USER_DEFINED,
                                           TOK_ATTR_UNUSED,
                                           TOK_ATTR_BYTE};
        v->type[i] = (uint8_t)(t >= 0 && t <= 6 ? t : TOK_TYPE_UNDEFINED);
        v->attr[i] = attr_of[v->type[i]];
    }
    return SHIMMY_OK;
}

/* Per-algorithm defaults, as the engine sets them before reading the optional keys. */
typedef struct algo_row {
    const char *model;
    tok_algo algo;
    tok_encode_fn encode;
    int32_t bos, eos, unk, sep, pad, mask;
    bool add_bos, add_eos, add_sep, add_space_prefix, clean_spaces;
} algo_row;

#define NO_ID -1
static const algo_row algos[] = {
    {.model = "llama",
     .algo = TOK_ALGO_SPM,
     .encode = tok_spm_encode,
     .bos = 1,
     .eos = 2,
     .unk = 0,
     .sep = NO_ID,
     .pad = NO_ID,
     .mask = NO_ID,
     .add_bos = true,
     .add_space_prefix = true},
    {.model = "gpt2",
     .algo = TOK_ALGO_BPE,
     .encode = tok_bpe_encode,
     .bos = 11,
     .eos = 11,
     .unk = NO_ID,
     .sep = NO_ID,
     .pad = NO_ID,
     .mask = NO_ID,
     .clean_spaces = true},
    /* [CLS] is BERT's BOS, [SEP] closes a sequence */
    {.model = "bert",
     .algo = TOK_ALGO_WPM,
     .encode = tok_wpm_encode,
     .bos = 101,
     .eos = NO_ID,
     .unk = 100,
     .sep = 102,
     .pad = 0,
     .mask = 103,
     .add_bos = true,
     .add_sep = true,
     .clean_spaces = true},
    /* T5 ends every sequence with </s> and has no BOS */
    {.model = "t5",
     .algo = TOK_ALGO_UGM,
     .encode = tok_ugm_encode,
     .bos = NO_ID,
     .eos = 1,
     .unk = 2,
     .sep = NO_ID,
     .pad = 0,
     .mask = NO_ID,
     .add_eos = true},
};

static shimmy_status load(tok_vocab *v, const gguf_file *f, shimmy_error *err) {
    const char *path = gguf_path(f);
    gguf_str model;
    if (!gguf_get_str(f, KEY_MODEL, &model))
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          "the model has no tokenizer (" KEY_MODEL " missing)");
    const algo_row *row = NULL;
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++)
        if (gguf_str_eq(model, algos[i].model)) row = &algos[i];
    if (!row) {
        char name[64];
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, path,
                          "tokenizer '%s' (" KEY_MODEL ") is not supported; shimmy supports "
                          "'llama' (SentencePiece), 'gpt2' (byte-level BPE), 'bert' "
                          "(WordPiece) and 't5' (Unigram)",
                          gguf_str_copy(model, name, sizeof name));
    }
    v->algo = row->algo;
    v->encode_fragment = row->encode;
    v->add_bos = row->add_bos;
    v->add_eos = row->add_eos;
    v->add_sep = row->add_sep;
    v->add_space_prefix = row->add_space_prefix;
    v->clean_spaces = row->clean_spaces;

    shimmy_status st = load_tokens(v, f, err);
    if (st) return st;
    v->bos = row->bos < v->n_vocab ? row->bos : -1;
    v->eos = row->eos < v->n_vocab ? row->eos : -1;
    v->unk = row->unk < v->n_vocab ? row->unk : -1;
    v->sep = row->sep < v->n_vocab ? row->sep : -1;
    v->pad = row->pad < v->n_vocab ? row->pad : -1;
    v->mask = row->mask < v->n_vocab ? row->mask : -1;
    v->eot = v->eom = v->nl = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;

    gguf_str pre = {0, NULL};
    bool has_pre = gguf_get_str(f, KEY_PRE, &pre);
    if (has_pre)
        gguf_str_copy(pre, v->pre_name, sizeof v->pre_name);
    else
        snprintf(v->pre_name, sizeof v->pre_name, "default");

    if (v->algo == TOK_ALGO_BPE) {
        v->pre = tok_pretok_find(v->pre_name);
        if (!v->pre || pre.len >= sizeof v->pre_name)
            return core_error(err, SHIMMY_ERR_UNSUPPORTED, path,
                              "unknown pre-tokenizer '%s' (" KEY_PRE "); this build knows the "
                              "names of llama.cpp c392e509",
                              v->pre_name);
        if (!has_pre)
            core_log(CORE_LOG_WARN,
                     "%s: no " KEY_PRE " in the model, using the 'default' pre-tokenizer; "
                     "tokenization may differ from the model's training",
                     path);
        v->clean_spaces = v->pre->clean_spaces;
        v->ignore_merges = v->pre->ignore_merges;
        if (v->pre->add_bos) v->add_bos = true;
        if (v->pre->no_bos) v->bos = -1;
        st = tok_bpe_load(v, f, err);
        if (st) return st;
        st = tok_pretok_compile(v, err);
        if (st) return st;
    } else if (v->algo == TOK_ALGO_WPM) {
        snprintf(v->pre_name, sizeof v->pre_name, "default");
        st = tok_wpm_load(v, f, err);
        if (st) return st;
    } else if (v->algo == TOK_ALGO_UGM) {
        snprintf(v->pre_name, sizeof v->pre_name, "default");
        st = tok_ugm_load(v, f, err);
        if (st) return st;
    } else {
        snprintf(v->pre_name, sizeof v->pre_name, "default");
        static const char hex[] = "0123456789ABCDEF";
        for (int b = 0; b < 256; b++) {
            char t[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
            int32_t id = tok_intern_find(v, t, 6);
            if (id < 0) {
                char c = (char)b;
                id = tok_intern_find(v, &c, 1);
            }
            v->spm_byte[b] = id;
        }
        st = tok_spm_load(v, err);
        if (st) return st;
    }
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) v->add_space_prefix = b;
    return tok_special_setup(v, f, err);
}

shimmy_status tok_vocab_load(const gguf_file *f, tok_vocab **out, shimmy_error *err) {
    *out = NULL;
    tok_vocab *v = core_calloc(1, sizeof *v);
    if (!v) return core_error(err, SHIMMY_ERR_NOMEM, gguf_path(f), "out of memory");
    shimmy_status st = load(v, f, err);
    if (st == SHIMMY_OK) st = tok_pieces_build(v, err);
    if (st) {
        tok_vocab_free(v);
        return st;
    }
    *out = v;
    return SHIMMY_OK;
}

shimmy_status tok_vocab_load_path(const char *path, tok_vocab **out, shimmy_error *err) {
    *out = NULL;
    gguf_file *f = NULL;
    shimmy_status st = gguf_open_header(path, &f, err);
    if (st == SHIMMY_OK) st = tok_vocab_load(f, out, err);
    gguf_close(f);
    return st;
}

void tok_vocab_free(tok_vocab *v) {
    if (!v) return;
    tok_pretok_free(v);
    free(v->str_off);
    free(v->str_len);
    free(v->blob);
    free(v->hslot);
    free(v->score);
    free(v->type);
    free(v->attr);
    free(v->eog);
    free(v->piece_off);
    free(v->piece_len);
    free(v->piece_blob);
    free(v->special);
    free(v->pair);
    free(v->spm_pairs);
    tok_ugm_free(v);
    free(v);
}

/* ---- accessors ---- */

static bool in_range(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n_vocab;
}

tok_algo tok_vocab_algo(const tok_vocab *v) {
    return v->algo;
}
const char *tok_vocab_pre(const tok_vocab *v) {
    return v->pre_name;
}
int32_t tok_n_vocab(const tok_vocab *v) {
    return v->n_vocab;
}

size_t tok_vocab_bytes(const tok_vocab *v) {
    size_t n = sizeof *v + (size_t)v->cap_str * 2 * sizeof(uint32_t) + v->blob_cap +
               ((size_t)v->hmask + 1) * sizeof *v->hslot;
    n += (size_t)v->n_vocab * (sizeof *v->score + 3 + 2 * sizeof(uint32_t));
    size_t pieces = v->n_vocab ? v->piece_off[v->n_vocab - 1] + v->piece_len[v->n_vocab - 1] : 0;
    n += pieces + v->n_special * sizeof *v->special;
    if (v->pair) n += ((size_t)v->pmask + 1) * sizeof *v->pair;
    if (v->spm_pairs) n += 65536 / 8;
    n += tok_ugm_bytes(v);
    return n;
}
int32_t tok_bos(const tok_vocab *v) {
    return v->bos;
}
int32_t tok_eos(const tok_vocab *v) {
    return v->eos;
}
int32_t tok_eot(const tok_vocab *v) {
    return v->eot;
}
int32_t tok_unk(const tok_vocab *v) {
    return v->unk;
}
int32_t tok_pad(const tok_vocab *v) {
    return v->pad;
}
int32_t tok_nl(const tok_vocab *v) {
    return v->nl;
}
bool tok_add_bos(const tok_vocab *v) {
    return v->add_bos;
}
bool tok_add_eos(const tok_vocab *v) {
    return v->add_eos;
}
bool tok_add_sep(const tok_vocab *v) {
    return v->add_sep;
}
int32_t tok_sep(const tok_vocab *v) {
    return v->sep;
}
bool tok_add_space_prefix(const tok_vocab *v) {
    return v->add_space_prefix;
}

bool tok_is_eog(const tok_vocab *v, int32_t id) {
    return in_range(v, id) && v->eog[id];
}
bool tok_is_control(const tok_vocab *v, int32_t id) {
    return in_range(v, id) && (v->attr[id] & TOK_ATTR_CONTROL);
}
tok_type tok_get_type(const tok_vocab *v, int32_t id) {
    return in_range(v, id) ? (tok_type)v->type[id] : TOK_TYPE_UNDEFINED;
}
float tok_score(const tok_vocab *v, int32_t id) {
    return in_range(v, id) ? v->score[id] : 0.0f;
}

int32_t tok_find(const tok_vocab *v, const char *text, size_t len) {
    int32_t id = tok_intern_find(v, text, len);
    return id < v->n_vocab ? id : -1;
}

const char *tok_text(const tok_vocab *v, int32_t id, size_t *len) {
    if (!in_range(v, id)) {
        if (len) *len = 0;
        return NULL;
    }
    size_t n;
    const char *s = tok_str(v, id, &n);
    if (len) *len = n;
    return s;
}
