/*
 * libFuzzer target: the thinking/answer splitter (src/server/reasoning.c) over arbitrary model
 * output, as it streams in.
 *
 * Input: byte 0: bit 0 "the prompt opened <think>", the other bits seed how the stream is cut;
 * the rest is the model's output.
 *
 * Checked (reasoning.h): the result does not depend on where the stream is cut (one push, one
 * byte per push and random chunks give the same runs once adjacent runs of one kind are
 * merged); every callback has len > 0; thinking never starts with whitespace; the output
 * invents nothing (thinking and answer bytes are each a subsequence of the input); a flushed
 * splitter releases everything it held; server_reasoning_prompt_opens reads any text.
 */
#include "reasoning.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct result {
    char *text[2]; /* [0] answer, [1] thinking, concatenated */
    size_t len[2];
    bool *kinds; /* kind of each merged run, in order */
    size_t n_runs;
    bool last_kind;
} result;

static void on_run(void *user, bool thinking, const char *text, size_t len) {
    result *r = user;
    FUZZ_REQUIRE(len > 0);
    memcpy(r->text[thinking] + r->len[thinking], text, len);
    r->len[thinking] += len;
    if (r->n_runs == 0 || r->last_kind != thinking) r->kinds[r->n_runs++] = thinking;
    r->last_kind = thinking;
}

static void split(const char *text, size_t n, bool inside, uint64_t cuts, result *r) {
    r->text[0] = malloc(n + 1);
    r->text[1] = malloc(n + 1);
    r->kinds = malloc(n + 1);
    r->len[0] = r->len[1] = r->n_runs = 0;
    server_reasoning s;
    server_reasoning_init(&s, inside);
    for (size_t i = 0; i < n;) {
        /* cuts == 0: one push; 1: a byte per push; else chunks of 1..16 bytes from the seed */
        size_t k =
            cuts == 0 ? n
            : cuts == 1
                ? 1
                : 1 + (size_t)((cuts = cuts * 6364136223846793005ull + 1442695040888963407ull) >>
                               60);
        if (k > n - i) k = n - i;
        server_reasoning_push(&s, text + i, k, on_run, r);
        i += k;
    }
    server_reasoning_flush(&s, on_run, r);
    FUZZ_REQUIRE(s.held == 0);
}

static bool same(const result *a, const result *b) {
    return a->len[0] == b->len[0] && a->len[1] == b->len[1] && a->n_runs == b->n_runs &&
           memcmp(a->text[0], b->text[0], a->len[0]) == 0 &&
           memcmp(a->text[1], b->text[1], a->len[1]) == 0 &&
           memcmp(a->kinds, b->kinds, a->n_runs) == 0;
}

static bool subsequence(const char *sub, size_t m, const char *s, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < n && j < m; i++)
        if (s[i] == sub[j]) j++;
    return j == m;
}

static void release(result *r) {
    free(r->text[0]);
    free(r->text[1]);
    free(r->kinds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool inside = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    result whole, bytes, chunks;
    split(text, n, inside, 0, &whole);
    split(text, n, inside, 1, &bytes);
    split(text, n, inside, (uint64_t)data[0] << 8 | 0x55, &chunks);
    FUZZ_REQUIRE(same(&whole, &bytes));
    FUZZ_REQUIRE(same(&whole, &chunks));
    FUZZ_REQUIRE(whole.len[0] + whole.len[1] <= n);
    FUZZ_REQUIRE(subsequence(whole.text[0], whole.len[0], text, n));
    FUZZ_REQUIRE(subsequence(whole.text[1], whole.len[1], text, n));
    if (whole.len[1]) {
        char c = whole.text[1][0];
        FUZZ_REQUIRE(!(c == ' ' || c == '\t' || c == '\n' || c == '\r'));
    }
    release(&whole);
    release(&bytes);
    release(&chunks);
    (void)server_reasoning_prompt_opens(text, n);
    return 0;
}
