/*
 * tokenizer — text <-> token ids, exactly as the established engine (llama.cpp c392e509) does it.
 *
 * A tok_vocab is built from a GGUF's tokenizer.* metadata alone. Four algorithms:
 *  - "llama" (SentencePiece-style, SPM): spaces become U+2581, a dummy-prefix space is added,
 *    adjacent pieces are merged best-score-first, unknown characters fall back to <0xXX> bytes.
 *  - "gpt2" (byte-level BPE): the text is split by the pre-tokenizer named in tokenizer.ggml.pre
 *    (a fixed list of regexes per name), each byte maps to a printable code point, and adjacent
 *    symbols are merged lowest-merge-rank-first.
 *  - "bert" (WordPiece, wordpiece.c): BERT's basic tokenizer (lowercasing and accent stripping as
 *    tokenizer.ggml.normalizer.* say, punctuation and CJK characters as words of their own), then
 *    greedy longest-match-first pieces per word; a word that cannot be spelled is [UNK].
 *    add_special gives [CLS] ... [SEP] (BOS = [CLS]; SEP per add_sep, default on).
 *  - "t5" (SentencePiece Unigram, unigram.c): the precompiled charsmap normalization (NFKC),
 *    U+2581 for spaces, then the best-scoring segmentation (Viterbi); T5, XLM-RoBERTa (bge-m3,
 *    multilingual-e5), ALBERT. add_special appends EOS by default.
 * Other tokenizer.ggml.model values ("rwkv", ...) are refused with SHIMMY_ERR_UNSUPPORTED.
 *
 * Special tokens: control, user-defined and unknown tokens are matched in the input text before
 * the algorithm runs, longest first. Control/unknown ones only with parse_special; user-defined
 * ones always (as the engine does). Byte ranges listed in tok_encode_opts.literal are never
 * matched (chat message content). BOS/EOS are added per tokenizer.ggml.add_bos_token /
 * add_eos_token when add_special (WordPiece also SEP, per add_sep_token).
 *
 * Invariants: ids are in [0, tok_n_vocab). Invalid UTF-8 never fails encoding: SPM keeps the bytes
 * (byte tokens), BPE sees each invalid byte as U+FFFD (as the engine does). Decoding never fails
 * on ids in range; out-of-range ids are an error for tok_decode and produce nothing elsewhere.
 *
 * Ownership: tok_vocab_load/tok_vocab_free pair up; the vocab copies everything it needs, so it
 * may outlive the gguf_file. tok_buf is caller-owned (zero-initialise it, tok_buf_free it).
 * tok_decode returns a malloc'd string the caller frees. Strings returned by tok_text and
 * tok_vocab_pre are borrowed from the vocab (valid until tok_vocab_free). tok_decoder is a plain
 * struct the caller embeds: no allocation, nothing to free.
 * Thread-safety: a tok_vocab is immutable after load; any number of threads may encode and decode
 * with it concurrently (per-call scratch memory is the caller's or allocated per call).
 */
#ifndef SHIMMY_TOKENIZER_H
#define SHIMMY_TOKENIZER_H

#include "core/core.h"
#include "gguf/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tok_vocab tok_vocab;

/* Token types as stored in tokenizer.ggml.token_type. */
typedef enum tok_type {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6,
} tok_type;

typedef enum tok_algo {
    TOK_ALGO_SPM, /* tokenizer.ggml.model = "llama" */
    TOK_ALGO_BPE, /* tokenizer.ggml.model = "gpt2" */
    TOK_ALGO_WPM, /* tokenizer.ggml.model = "bert" */
    TOK_ALGO_UGM, /* tokenizer.ggml.model = "t5" */
} tok_algo;

/* ---- loading ---- */

/* Builds a vocabulary from f's tokenizer.* keys. On failure *out is NULL and err names the key.
 * Logs (core_log) what the engine would warn about (e.g. a missing pre-tokenizer name). */
shimmy_status tok_vocab_load(const gguf_file *f, tok_vocab **out, shimmy_error *err);
/* The same from a .gguf path: reads only the file's metadata (tensor data is not mapped). */
shimmy_status tok_vocab_load_path(const char *path, tok_vocab **out, shimmy_error *err);
void tok_vocab_free(tok_vocab *v); /* NULL is a no-op */

/* ---- properties ---- */

tok_algo tok_vocab_algo(const tok_vocab *v);
/* The pre-tokenizer name in effect ("default" when the key is absent). Borrowed. */
const char *tok_vocab_pre(const tok_vocab *v);
int32_t tok_n_vocab(const tok_vocab *v);
/* Heap bytes the vocabulary holds (its tables and strings; PCRE2's compiled regexes are not
 * counted), for memory budgets. */
size_t tok_vocab_bytes(const tok_vocab *v);
/* Special ids, -1 when the vocabulary has none. */
int32_t tok_bos(const tok_vocab *v);
int32_t tok_eos(const tok_vocab *v);
int32_t tok_eot(const tok_vocab *v); /* end of turn: metadata or found by text (<|eot_id|>...) */
int32_t tok_unk(const tok_vocab *v);
int32_t tok_pad(const tok_vocab *v);
int32_t tok_nl(const tok_vocab *v);  /* the newline token */
int32_t tok_sep(const tok_vocab *v); /* BERT's [SEP] (tokenizer.ggml.seperator_token_id) */
bool tok_add_bos(const tok_vocab *v);
bool tok_add_eos(const tok_vocab *v);
/* WordPiece's add_special ends with SEP; every vocab: llama-server puts SEP between a rerank
 * pair's texts (tokenizer.ggml.add_sep_token; default true for "bert" only). */
bool tok_add_sep(const tok_vocab *v);
bool tok_add_space_prefix(const tok_vocab *v);

/* End-of-generation: EOS, EOT, EOM, the FIM pad/repo/sep tokens and every token whose text is
 * <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|> or <EOT>. False for
 * ids out of range. */
bool tok_is_eog(const tok_vocab *v, int32_t id);
/* Control token (after the engine's text-based corrections: EOG-looking tokens become control). */
bool tok_is_control(const tok_vocab *v, int32_t id);
tok_type tok_get_type(const tok_vocab *v, int32_t id); /* TOK_TYPE_UNDEFINED out of range */
float tok_score(const tok_vocab *v, int32_t id);       /* 0 out of range or without scores */

/* Exact vocabulary text -> id, or -1. (For BPE the text is in byte-level form: "Ġhello".) */
int32_t tok_find(const tok_vocab *v, const char *text, size_t len);
/* The raw vocabulary string of id (not NUL-terminated; *len set), or NULL (and *len 0) when out
 * of range. Borrowed until tok_vocab_free. */
const char *tok_text(const tok_vocab *v, int32_t id, size_t *len);

/* ---- encoding ---- */

/* A growable array of ids. Zero-initialise; tok_encode appends; tok_buf_free releases. */
typedef struct tok_buf {
    int32_t *ids; /* owned, n valid entries */
    size_t n, cap;
} tok_buf;
void tok_buf_free(tok_buf *b);
/* Appends one id (grows the buffer); SHIMMY_ERR_NOMEM on allocation failure. */
shimmy_status tok_buf_push(tok_buf *b, int32_t id, shimmy_error *err);

/* A byte range [begin, end) of the input (same layout as chat_span). */
typedef struct tok_span {
    size_t begin, end;
} tok_span;

typedef struct tok_encode_opts {
    bool add_special;   /* prepend BOS / append EOS as the metadata says */
    bool parse_special; /* control-token text in the input becomes that token */
    /* Ranges (sorted or not, may be NULL) where no special-token text is matched, not even
     * user-defined tokens: a match that overlaps a range is ignored. The text is still one
     * piece, so tokenization across a range boundary is unchanged. */
    const tok_span *literal;
    size_t n_literal;
} tok_encode_opts;

/* The longest text tok_encode accepts (bytes); longer is SHIMMY_ERR_TOO_LARGE. */
#define TOK_MAX_TEXT ((size_t)1 << 30)

/* Tokenizes text[0..len) and appends the ids to out (opts NULL = add_special and parse_special
 * false). On failure (NOMEM, TOO_LARGE, a literal span out of range) out->n is restored. */
shimmy_status tok_encode(const tok_vocab *v, const char *text, size_t len,
                         const tok_encode_opts *opts, tok_buf *out, shimmy_error *err);

/* Two texts as one sequence, for cross-encoders (rerankers) and sentence-pair models. Both are
 * tokenized without BOS/EOS (of opts only parse_special is used, for both texts) and joined:
 *  - TOK_PAIR_HF, Hugging Face's BERT pair template: [BOS] a END b END, with BOS when the vocab
 *    adds it and END = SEP, else EOS, else nothing. BERT: [CLS] a [SEP] b [SEP].
 *  - TOK_PAIR_LLAMA_SERVER, llama-server's /v1/rerank form: [BOS if add_bos] a [EOS-or-SEP if
 *    add_eos] [SEP if add_sep] b [EOS-or-SEP if add_eos], EOS-or-SEP being EOS when the vocab
 *    has one, else SEP. BERT: [CLS] a [SEP] b (no final [SEP]).
 * On failure out->n is restored. */
typedef enum tok_pair_form {
    TOK_PAIR_HF,
    TOK_PAIR_LLAMA_SERVER,
} tok_pair_form;
shimmy_status tok_encode_pair(const tok_vocab *v, const char *a, size_t a_len, const char *b,
                              size_t b_len, tok_pair_form form, const tok_encode_opts *opts,
                              tok_buf *out, shimmy_error *err);

/* ---- decoding ---- */

/* The bytes one token stands for in text: SPM pieces with U+2581 turned into spaces and <0xXX>
 * into the byte; BPE pieces mapped back from byte-level code points; user-defined tokens as
 * written. Control and unknown tokens give "" unless `special`. Writes at most cap bytes (no
 * NUL) and returns the full length, so a return > cap means "buffer too small". 0 for ids out of
 * range. A piece is at most tok_max_piece(v) bytes. */
size_t tok_piece(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap);
/* The longest piece of this vocabulary (with special = true). */
size_t tok_max_piece(const tok_vocab *v);

/* Decodes a whole sequence: the pieces concatenated, with the engine's leading-space rule (when
 * the vocab adds a space prefix, one leading space of the first token's piece is dropped).
 * *out is malloc'd, NUL-terminated, *len bytes before the NUL; caller frees. Ids out of range
 * are SHIMMY_ERR_INVALID_ARG naming the position. */
shimmy_status tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, bool special, char **out,
                         size_t *len, shimmy_error *err);

/* The engine's clean_up_tokenization_spaces post-processing, in place (" ." -> ".", " 's" ->
 * "'s", ...), for vocabularies that ask for it (most BPE pre-tokenizers); a no-op otherwise.
 * Returns the new length. tok_decode does not apply it, so decode(encode(s)) == s. */
size_t tok_clean_spaces(const tok_vocab *v, char *text, size_t len);

/* Incremental, UTF-8-safe decoding for streaming. Push tokens one at a time; each call writes the
 * bytes that are now complete UTF-8. A character split across tokens is held back until it is
 * complete; bytes that can no longer form a valid character are written as U+FFFD (EF BF BD),
 * one per maximal invalid prefix (WHATWG/Unicode "substitution of maximal subparts"). Nothing is
 * allocated. The leading-space rule of tok_decode applies to the first pushed token when
 * strip_leading_space is true (use false when continuing after a prompt).
 * For a sequence whose tok_decode output is valid UTF-8, the concatenated pushes and flush equal
 * it byte for byte; otherwise they equal it with each invalid part replaced by U+FFFD.
 * cap must be at least tok_decoder_max_out(v) (size the buffer once); bytes beyond a smaller cap
 * are lost.
 */
typedef struct tok_decoder {
    const tok_vocab *v;
    bool special;
    bool strip;            /* the next token is the first one and the leading-space rule applies */
    unsigned char pend[4]; /* an incomplete UTF-8 sequence held back */
    int n_pend;
} tok_decoder;

void tok_decoder_init(tok_decoder *d, const tok_vocab *v, bool special, bool strip_leading_space);
/* Bytes a single push or flush may write at most. */
size_t tok_decoder_max_out(const tok_vocab *v);
/* Decodes one more token; returns bytes written to out (0 when everything is held back). Ids out
 * of range produce nothing. */
size_t tok_decoder_push(tok_decoder *d, int32_t id, char *out, size_t cap);
/* Ends the stream: a held-back incomplete sequence is written as U+FFFD. Returns bytes written.
 * The decoder may be reused afterwards (as after init, without the leading-space rule). */
size_t tok_decoder_flush(tok_decoder *d, char *out, size_t cap);

#endif
