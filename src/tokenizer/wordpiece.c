/* WordPiece ("bert", the engine's WPM): BERT's basic tokenizer, then greedy longest-match-first
 * pieces per word.
 *
 * Basic tokenization, per code point of the raw text (invalid UTF-8 bytes are dropped):
 *  - with strip_accents, the code point becomes the first code point of its NFD (its base) and
 *    combining marks (M*) are dropped;
 *  - whitespace ends the current word; NUL, U+FFFD and control/format characters (C*) vanish;
 *  - with lowercase, the simple lowercase mapping applies;
 *  - punctuation (P*), ASCII symbols (S* below U+007F) and CJK ideographs are words of their own.
 * The converter stores word-initial pieces with a U+2581 prefix and "##" continuations without
 * it, so each word is matched as U+2581 + word: at every position the longest vocabulary text
 * wins; a word with a position where nothing matches becomes the unknown token as a whole.
 * Flags: tokenizer.ggml.normalizer.lowercase (default true) and .strip_accents (default: the
 * lowercase flag), as the engine reads them. */
#include "tok_impl.h"

#include <string.h>

#define SPACE_MARK "\xe2\x96\x81"

shimmy_status tok_wpm_load(tok_vocab *v, const gguf_file *f, shimmy_error *err) {
    (void)err;
    bool b;
    v->wpm_lower = true;
    if (gguf_get_bool(f, "tokenizer.ggml.normalizer.lowercase", &b)) v->wpm_lower = b;
    v->wpm_strip = v->wpm_lower;
    if (gguf_get_bool(f, "tokenizer.ggml.normalizer.strip_accents", &b)) v->wpm_strip = b;
    for (int32_t id = 0; id < v->n_vocab; id++)
        if (v->str_len[id] > v->max_tok_len) v->max_tok_len = v->str_len[id];
    return SHIMMY_OK;
}

/* The CJK ideograph blocks BERT splits per character (the 0x2B920 start follows the Hugging
 * Face implementation, which the engine copies). */
static bool is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Pieces of one word w[0..n) (starting with the space mark). */
static shimmy_status match_word(const tok_vocab *v, const char *w, size_t n, tok_buf *out,
                                shimmy_error *err) {
    size_t n0 = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = n - i < v->max_tok_len ? n : i + v->max_tok_len;
        int32_t id = -1;
        for (; j > i; j--)
            if ((id = tok_intern_find(v, w + i, j - i)) >= 0) break;
        if (id < 0) { /* this word cannot be spelled: all of it is unknown */
            out->n = n0;
            return v->unk >= 0 ? tok_buf_push(out, v->unk, err) : SHIMMY_OK;
        }
        shimmy_status st = tok_buf_push(out, id, err);
        if (st) return st;
        i = j;
    }
    return SHIMMY_OK;
}

typedef struct word {
    char *p; /* the scratch's text buffer */
    size_t n, cap;
} word;

static bool word_put(word *w, const char *s, size_t n) {
    if (!tok_grow((void **)&w->p, &w->cap, w->n + n, 1)) return false;
    memcpy(w->p + w->n, s, n);
    w->n += n;
    return true;
}

/* Matches the pending word (if it has more than the mark) and starts a new one. */
static shimmy_status flush(const tok_vocab *v, word *w, tok_buf *out, shimmy_error *err) {
    shimmy_status st = SHIMMY_OK;
    if (w->n > 3) st = match_word(v, w->p, w->n, out, err);
    w->n = 3;
    return st;
}

shimmy_status tok_wpm_encode(const tok_vocab *v, const char *text, size_t len, bool prefix_space,
                             tok_scratch *s, tok_buf *out, shimmy_error *err) {
    (void)prefix_space; /* every word gets the mark */
    word w = {s->text, 0, s->cap_text};
    shimmy_status st = SHIMMY_OK;
    if (!word_put(&w, SPACE_MARK, 3)) goto nomem;
    for (size_t i = 0; i < len && st == SHIMMY_OK;) {
        uint32_t cp;
        int k = core_utf8_decode(text + i, len - i, &cp);
        i += (size_t)k;
        if (v->wpm_strip) cp = tok_ucd_nfd_base(cp);
        if (tok_ucd_is_space(cp)) {
            st = flush(v, &w, out, err);
            continue;
        }
        unsigned cls = tok_ucd_class(cp);
        if (cp == 0 || cp == 0xFFFD || (cls & TOK_UCD_CONTROL)) continue;
        if (v->wpm_strip && (cls & TOK_UCD_MARK)) continue;
        char u[4];
        int ul = core_utf8_encode(v->wpm_lower ? tok_ucd_lower(cp) : cp, u);
        if ((cls & TOK_UCD_PUNCT) || (cp < 0x7F && (cls & TOK_UCD_SYMBOL)) || is_cjk(cp)) {
            if ((st = flush(v, &w, out, err))) break;
            if (!word_put(&w, u, (size_t)ul)) goto nomem;
            st = flush(v, &w, out, err);
        } else if (!word_put(&w, u, (size_t)ul))
            goto nomem;
    }
    if (st == SHIMMY_OK) st = flush(v, &w, out, err);
    s->text = w.p;
    s->cap_text = w.cap;
    return st;
nomem:
    s->text = w.p;
    s->cap_text = w.cap;
    return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory tokenizing %zu bytes", len);
}
