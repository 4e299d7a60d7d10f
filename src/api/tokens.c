/* Vocabularies and token ids for library users: a shimmy_vocab is the tokenizer module's
 * tok_vocab under its public name (the pointer is the same object, never a copy), opened from a
 * file's tokenizer metadata or borrowed from a loaded model. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

static const tok_vocab *tv(const shimmy_vocab *v) {
    return (const tok_vocab *)v;
}

int32_t shimmy_default_threads(void) {
    return core_physical_cores();
}

const char *shimmy_cpu_isa(void) {
    return core_cpu_isa_name();
}

void shimmy_free(void *p) {
    free(p);
}

shimmy_status shimmy_vocab_open(const char *path, shimmy_vocab **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!path || !*path)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "path", "no model file given");
    tok_vocab *v = NULL;
    shimmy_status st = tok_vocab_load_path(path, &v, err);
    if (st) return st;
    *out = (shimmy_vocab *)v;
    return SHIMMY_OK;
}

void shimmy_vocab_free(shimmy_vocab *v) {
    tok_vocab_free((tok_vocab *)v);
}

const shimmy_vocab *shimmy_model_vocab(const shimmy_model *m) {
    return m ? (const shimmy_vocab *)engine_model_vocab(m->em) : NULL;
}

int32_t shimmy_vocab_size(const shimmy_vocab *v) {
    return v ? tok_n_vocab(tv(v)) : 0;
}
int32_t shimmy_vocab_bos(const shimmy_vocab *v) {
    return v ? tok_bos(tv(v)) : -1;
}
int32_t shimmy_vocab_eos(const shimmy_vocab *v) {
    return v ? tok_eos(tv(v)) : -1;
}
int32_t shimmy_vocab_eot(const shimmy_vocab *v) {
    return v ? tok_eot(tv(v)) : -1;
}
bool shimmy_vocab_adds_bos(const shimmy_vocab *v) {
    return v && tok_add_bos(tv(v));
}
int32_t shimmy_vocab_sep(const shimmy_vocab *v) {
    return v ? tok_sep(tv(v)) : -1;
}
bool shimmy_vocab_adds_eos(const shimmy_vocab *v) {
    return v && tok_add_eos(tv(v));
}

const char *shimmy_vocab_token_text(const shimmy_vocab *v, int32_t id, size_t *len) {
    size_t n = 0;
    const char *t = v && id >= 0 && id < tok_n_vocab(tv(v)) ? tok_text(tv(v), id, &n) : NULL;
    if (len) *len = t ? n : 0;
    return t;
}

size_t shimmy_token_piece(const shimmy_vocab *v, int32_t id, bool special, char *buf, size_t cap) {
    if (!v || id < 0 || id >= tok_n_vocab(tv(v))) return 0;
    if (cap == 0 || !buf) {
        /* tok_piece reports the full length even when nothing fits */
        char one;
        return tok_piece(tv(v), id, special, &one, 0);
    }
    return tok_piece(tv(v), id, special, buf, cap);
}

shimmy_status shimmy_tokenize(const shimmy_vocab *v, const char *text, size_t len, unsigned flags,
                              int32_t **ids, size_t *n, shimmy_error *err) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!v || !ids || !n || (!text && len))
        return core_error(err, SHIMMY_ERR_INVALID_ARG,
                          !v      ? "vocab"
                          : !text ? "text"
                                  : "ids",
                          "a required pointer is NULL");
    tok_buf b = {0};
    tok_encode_opts o = {.add_special = (flags & SHIMMY_TOKENIZE_ADD_SPECIAL) != 0,
                         .parse_special = (flags & SHIMMY_TOKENIZE_PARSE_SPECIAL) != 0};
    shimmy_status st = tok_encode(tv(v), text ? text : "", len, &o, &b, err);
    if (st) {
        tok_buf_free(&b);
        return st;
    }
    if (b.n == 0) tok_buf_free(&b);
    *ids = b.ids;
    *n = b.n;
    return SHIMMY_OK;
}

shimmy_status shimmy_tokenize_pair(const shimmy_vocab *v, const char *a, size_t a_len,
                                   const char *b, size_t b_len, unsigned flags, int32_t **ids,
                                   size_t *n, shimmy_error *err) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!v || !ids || !n || (!a && a_len) || (!b && b_len))
        return core_error(err, SHIMMY_ERR_INVALID_ARG,
                          !v              ? "vocab"
                          : (!a && a_len) ? "a"
                          : (!b && b_len) ? "b"
                                          : "ids",
                          "a required pointer is NULL");
    tok_buf out = {0};
    tok_encode_opts o = {.parse_special = (flags & SHIMMY_TOKENIZE_PARSE_SPECIAL) != 0};
    tok_pair_form form =
        (flags & SHIMMY_TOKENIZE_PAIR_LLAMA_SERVER) ? TOK_PAIR_LLAMA_SERVER : TOK_PAIR_HF;
    shimmy_status st =
        tok_encode_pair(tv(v), a ? a : "", a_len, b ? b : "", b_len, form, &o, &out, err);
    if (st || out.n == 0) tok_buf_free(&out);
    if (st) return st;
    *ids = out.ids;
    *n = out.n;
    return SHIMMY_OK;
}

/* The streaming decoder's rendering: a character cut off by the ids becomes U+FFFD. */
static shimmy_status decode_valid(const tok_vocab *v, const int32_t *ids, size_t n, bool special,
                                  size_t plain_len, char **text, size_t *len, shimmy_error *err) {
    /* each byte of the plain text becomes at most one U+FFFD (3 bytes) */
    size_t cap = 3 * plain_len + tok_decoder_max_out(v) + 16, k = 0;
    char *out = core_malloc(cap);
    if (!out) return core_error(err, SHIMMY_ERR_NOMEM, "ids", "out of memory decoding");
    tok_decoder d;
    tok_decoder_init(&d, v, special, true);
    for (size_t i = 0; i < n; i++) k += tok_decoder_push(&d, ids[i], out + k, cap - k - 1);
    k += tok_decoder_flush(&d, out + k, cap - k - 1);
    out[k] = '\0';
    *text = out;
    *len = k;
    return SHIMMY_OK;
}

shimmy_status shimmy_detokenize(const shimmy_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                                char **text, size_t *len, shimmy_error *err) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!v || !text || !len || (!ids && n))
        return core_error(err, SHIMMY_ERR_INVALID_ARG,
                          !v     ? "vocab"
                          : !ids ? "ids"
                                 : "text",
                          "a required pointer is NULL");
    const bool special = (flags & SHIMMY_DETOKENIZE_SPECIAL) != 0;
    char *plain = NULL;
    size_t plain_len = 0;
    /* tok_decode checks every id against the vocabulary, for both renderings */
    shimmy_status st = tok_decode(tv(v), ids, n, special, &plain, &plain_len, err);
    if (st) return st;
    if (!(flags & SHIMMY_DETOKENIZE_VALID_UTF8)) {
        *text = plain;
        *len = plain_len;
        return SHIMMY_OK;
    }
    st = decode_valid(tv(v), ids, n, special, plain_len, text, len, err);
    free(plain);
    return st;
}
