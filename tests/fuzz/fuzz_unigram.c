/*
 * libFuzzer target: arbitrary bytes through the SentencePiece Unigram tokenizer
 * (tests/tokenizer/data/albert-unigram.gguf: a precompiled charsmap and user-defined pieces).
 *
 * Input: byte 0 the options (bit 0 parse_special, bit 1 add_special), the rest is the text.
 *
 * Checked: ids are in range; unknown runs collapse (two unknowns in a row only when the text
 * spells the unknown token and special tokens are parsed); the decoded text is valid UTF-8 and,
 * when no unknown token was produced, encodes to the same ids (normalization is idempotent and
 * the pieces say where words start); the streaming decoder gives the same text as tok_decode.
 */
#include "tokenizer/tokenizer.h"

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tok_vocab *vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char path[4096];
    const char *src = getenv("SHIMMY_SRC");
    if (src)
        snprintf(path, sizeof path, "%s/tests/tokenizer/data/albert-unigram.gguf", src);
    else { /* tests/fuzz/../tokenizer/data */
        snprintf(path, sizeof path, "%s", __FILE__);
        char *slash = strrchr(path, '/');
        size_t at = slash ? (size_t)(slash - path) : 0;
        snprintf(path + at, sizeof path - at, "/../tokenizer/data/albert-unigram.gguf");
    }
    shimmy_error err;
    if (tok_vocab_load_path(path, &vocab, &err) != SHIMMY_OK) {
        fprintf(stderr, "fuzz_unigram: %s\n", err.message);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool parse = data[0] & 1, add = data[0] & 2;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    shimmy_error err;
    tok_buf ids = {0}, again = {0};
    tok_encode_opts o = {.add_special = add, .parse_special = parse};
    encode(text, n, &o, &ids);
    bool unk = false;
    for (size_t i = 0; i < ids.n; i++) {
        int32_t id = ids.ids[i];
        FUZZ_REQUIRE(id >= 0 && id < tok_n_vocab(vocab));
        unk |= id == tok_unk(vocab);
        if (i > 0 && id == tok_unk(vocab) && ids.ids[i - 1] == id) FUZZ_REQUIRE(parse);
    }

    char *dec = NULL;
    size_t dlen = 0;
    FUZZ_REQUIRE(tok_decode(vocab, ids.ids, ids.n, false, &dec, &dlen, &err) == SHIMMY_OK);
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
    /* pieces are whole characters of the vocabulary: the stream is the decode itself */
    FUZZ_REQUIRE(core_utf8_valid(dec, dlen));
    FUZZ_REQUIRE(slen == dlen && (dlen == 0 || memcmp(stream, dec, dlen) == 0));

    free(piece);
    free(stream);
    free(dec);
    tok_buf_free(&ids);
    tok_buf_free(&again);
    return 0;
}
