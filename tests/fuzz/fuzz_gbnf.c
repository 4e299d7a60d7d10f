/*
 * libFuzzer target: the GBNF compiler and the matcher (src/grammar) on hostile grammar text and
 * hostile output. Any client can send a grammar; a random model writes any bytes.
 *
 * Input: GBNF text, then optionally a NUL byte and a subject (the bytes a model writes).
 *
 * Checked: compile either succeeds or fails with a "line L, column C:" message naming the
 * grammar; a compiled grammar gives a matcher; feeding the subject byte by byte, every byte is
 * accepted or refused without changing the state, or the matcher reports its ambiguity limit;
 * at each step the trie mask over a small vocabulary (with multi-byte and partial UTF-8
 * pieces) equals the token-by-token answer, and end-of-generation is allowed exactly where the
 * grammar can end.
 */
#include "grammar/grammar.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const pieces[] = {
    "a",  "b",    "ab", "{",  "}",        "\"",       " ",   "0",        "12",    ":",
    ",",  "[",    "]",  "\n", "\xC3",     "\xA9",     "é",   "\xE2\x82", "\xAC",  "true",
    "x(", "root", "\\", "-",  "\xF0\x9F", "\x98\x80", "aaa", "",         "<eos>",
};
#define N_PIECES ((int32_t)(sizeof pieces / sizeof pieces[0]))

static grammar_vocab *vocab(void) {
    static grammar_vocab *gv;
    if (gv) return gv;
    size_t len[N_PIECES];
    bool special[N_PIECES] = {0}, eog[N_PIECES] = {0};
    for (int32_t i = 0; i < N_PIECES; i++) len[i] = strlen(pieces[i]);
    eog[N_PIECES - 1] = true;
    FUZZ_REQUIRE(grammar_vocab_from_pieces(pieces, len, special, eog, N_PIECES, &gv, NULL) ==
                 SHIMMY_OK);
    return gv;
}

static void check_mask(grammar_matcher *m) {
    uint64_t mask[1];
    shimmy_error err = {0};
    const int64_t n = grammar_matcher_mask(m, mask, &err);
    if (n < 0) {
        FUZZ_REQUIRE(err.status == SHIMMY_ERR_UNSUPPORTED || err.status == SHIMMY_ERR_NOMEM);
        return;
    }
    int64_t count = 0;
    for (int32_t t = 0; t < N_PIECES; t++) {
        const bool in = (mask[0] >> t) & 1;
        FUZZ_REQUIRE(in == grammar_matcher_allows_token(m, t));
        count += in;
    }
    FUZZ_REQUIRE(count == n);
    FUZZ_REQUIRE(((mask[0] >> (N_PIECES - 1)) & 1) == grammar_matcher_can_end(m));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const char *nul = memchr(data, 0, size);
    const size_t tlen = nul ? (size_t)(nul - text) : size;
    const char *subject = nul ? nul + 1 : "";
    const size_t slen = nul ? size - tlen - 1 : 0;
    grammar *g = NULL;
    shimmy_error err = {0};
    shimmy_status st = grammar_compile(text, tlen, &g, &err);
    if (st) {
        FUZZ_REQUIRE(g == NULL);
        FUZZ_REQUIRE(strcmp(err.where, "grammar") == 0);
        FUZZ_REQUIRE(st == SHIMMY_ERR_NOMEM || strncmp(err.message, "line ", 5) == 0);
        return 0;
    }
    grammar_matcher *m = NULL;
    st = grammar_matcher_new(g, vocab(), &m, &err);
    grammar_unref(g);
    if (st) {
        FUZZ_REQUIRE(st == SHIMMY_ERR_UNSUPPORTED || st == SHIMMY_ERR_NOMEM);
        return 0;
    }
    check_mask(m);
    for (size_t i = 0; i < slen && i < 256; i++) {
        const bool allowed = grammar_matcher_allows_bytes(m, subject + i, 1);
        st = grammar_matcher_accept_bytes(m, subject + i, 1, &err);
        if (st == SHIMMY_ERR_UNSUPPORTED || st == SHIMMY_ERR_NOMEM) break;
        FUZZ_REQUIRE((st == SHIMMY_OK) == allowed);
        if (i % 8 == 0) check_mask(m);
    }
    grammar_matcher_free(m);
    return 0;
}
