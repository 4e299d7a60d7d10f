/*
 * libFuzzer target: arbitrary bytes through the WordPiece tokenizer (the bge vocabulary of
 * SHIMMY_TESTDATA/vocab), single texts and (query, document) pairs.
 *
 * Input: byte 0 the options (bit 0 parse_special, bit 1 add_special, bit 2 pair, bit 3 the
 * llama-server pair form), byte 1 where a pair's text is cut (as a fraction of its length), the
 * rest is the text.
 *
 * Checked: ids are in range; add_special gives [CLS] first and [SEP] last; the decoded text is
 * valid UTF-8 (invalid input bytes are dropped) and, when no word became [UNK], encodes to the
 * same ids again (normalization is idempotent); the streaming decoder gives the same text as
 * tok_decode; a pair is exactly BOS, the first text's ids, the separators and the second's.
 */
#include "tokenizer/tokenizer.h"

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tok_vocab *vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *root = getenv("SHIMMY_TESTDATA") ? getenv("SHIMMY_TESTDATA") : SHIMMY_FUZZ_TESTDATA;
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-bert-bge.gguf", root);
    shimmy_error err;
    if (tok_vocab_load_path(path, &vocab, &err) != SHIMMY_OK) {
        fprintf(stderr, "fuzz_wordpiece: %s (set SHIMMY_TESTDATA)\n", err.message);
        exit(77);
    }
    return 0;
}

/* Equal id arrays; empty buffers have no array, which memcmp must not see. */
static bool same_ids(const int32_t *a, const int32_t *b, size_t n) {
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static void encode(const char *t, size_t n, const tok_encode_opts *o, tok_buf *b) {
    shimmy_error err;
    b->n = 0;
    FUZZ_REQUIRE(tok_encode(vocab, t, n, o, b, &err) == SHIMMY_OK);
}

static void check_pair(const char *text, size_t n, size_t cut, bool parse, bool server) {
    shimmy_error err;
    tok_buf got = {0}, a = {0}, b = {0};
    tok_encode_opts o = {.parse_special = parse};
    FUZZ_REQUIRE(tok_encode_pair(vocab, text, cut, text + cut, n - cut,
                                 server ? TOK_PAIR_LLAMA_SERVER : TOK_PAIR_HF, &o, &got,
                                 &err) == SHIMMY_OK);
    encode(text, cut, &o, &a);
    encode(text + cut, n - cut, &o, &b);
    /* BERT: [CLS] a [SEP] b [SEP]; the server form drops the last [SEP] */
    size_t want = 1 + a.n + 1 + b.n + (server ? 0 : 1);
    FUZZ_REQUIRE(got.n == want);
    FUZZ_REQUIRE(got.ids[0] == tok_bos(vocab));
    FUZZ_REQUIRE(same_ids(got.ids + 1, a.ids, a.n));
    FUZZ_REQUIRE(got.ids[1 + a.n] == tok_sep(vocab));
    FUZZ_REQUIRE(same_ids(got.ids + 2 + a.n, b.ids, b.n));
    if (!server) FUZZ_REQUIRE(got.ids[want - 1] == tok_sep(vocab));
    tok_buf_free(&got);
    tok_buf_free(&a);
    tok_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    bool parse = data[0] & 1, add = data[0] & 2, pair = data[0] & 4, server = data[0] & 8;
    const char *text = (const char *)data + 2;
    size_t n = size - 2;
    if (pair) {
        check_pair(text, n, n * data[1] / 255, parse, server);
        return 0;
    }
    shimmy_error err;
    tok_buf ids = {0}, again = {0};
    tok_encode_opts o = {.add_special = add, .parse_special = parse};
    encode(text, n, &o, &ids);
    bool unk = false;
    for (size_t i = 0; i < ids.n; i++) {
        FUZZ_REQUIRE(ids.ids[i] >= 0 && ids.ids[i] < tok_n_vocab(vocab));
        unk |= ids.ids[i] == tok_unk(vocab);
    }
    if (add) {
        FUZZ_REQUIRE(ids.n >= 2 && ids.ids[0] == tok_bos(vocab));
        FUZZ_REQUIRE(ids.ids[ids.n - 1] == tok_sep(vocab));
    }

    char *dec = NULL;
    size_t dlen = 0;
    FUZZ_REQUIRE(tok_decode(vocab, ids.ids, ids.n, false, &dec, &dlen, &err) == SHIMMY_OK);
    FUZZ_REQUIRE(core_utf8_valid(dec, dlen));
    if (!add && !parse && !unk) {
        tok_encode_opts plain = {0};
        encode(dec, dlen, &plain, &again);
        FUZZ_REQUIRE(again.n == ids.n && same_ids(again.ids, ids.ids, ids.n));
    }

    size_t cap = tok_decoder_max_out(vocab), slen = 0;
    char *piece = malloc(cap), *stream = malloc(dlen + cap + 1);
    FUZZ_REQUIRE(piece && stream);
    tok_decoder d;
    tok_decoder_init(&d, vocab, false, true);
    for (size_t i = 0; i <= ids.n; i++) {
        size_t w = i < ids.n ? tok_decoder_push(&d, ids.ids[i], piece, cap)
                             : tok_decoder_flush(&d, piece, cap);
        FUZZ_REQUIRE(w <= cap && slen + w <= dlen);
        memcpy(stream + slen, piece, w);
        slen += w;
    }
    FUZZ_REQUIRE(slen == dlen && (dlen == 0 || memcmp(stream, dec, dlen) == 0));

    free(piece);
    free(stream);
    free(dec);
    tok_buf_free(&ids);
    tok_buf_free(&again);
    return 0;
}
