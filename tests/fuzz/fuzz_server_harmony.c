/*
 * libFuzzer target: the harmony splitter (src/server/harmony.c, gpt-oss's channels) over
 * arbitrary model output as it streams in, and the harmony call parser over what it makes.
 *
 * Input: byte 0: bit 0 "the request has tools" (calls are kept), the other bits seed how the
 * stream is cut; the rest is the model's output.
 *
 * Checked (reasoning.h, toolcall.h): the result does not depend on where the stream is cut (one
 * push, one byte per push and random chunks give the same runs once adjacent runs of one kind are
 * merged); every callback has len > 0; a flushed splitter holds nothing; without tools the output
 * invents nothing (thinking and answer are each a subsequence of the input); with tools, the
 * answer goes through server_toolcall_parse (every call's arguments a JSON object, content no
 * longer than the answer) and server_toolcall_hold (never past the text).
 */
#include "reasoning.h"
#include "toolcall.h"

#include "fuzz.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct result {
    char *text[2]; /* [0] answer, [1] thinking, concatenated */
    size_t len[2], cap;
    bool *kinds; /* kind of each merged run, in order */
    size_t n_runs;
    bool last_kind;
} result;

static void on_run(void *user, bool thinking, const char *text, size_t len) {
    result *r = user;
    FUZZ_REQUIRE(len > 0);
    FUZZ_REQUIRE(r->len[thinking] + len <= r->cap);
    memcpy(r->text[thinking] + r->len[thinking], text, len);
    r->len[thinking] += len;
    if (r->n_runs == 0 || r->last_kind != thinking) r->kinds[r->n_runs++] = thinking;
    r->last_kind = thinking;
}

static void split(const char *text, size_t n, bool calls, uint64_t cuts, result *r) {
    /* a call adds its markup (~80 bytes + name) per header of at least 14 input bytes */
    r->cap = 8 * n + 128;
    r->text[0] = malloc(r->cap);
    r->text[1] = malloc(r->cap);
    r->kinds = malloc(r->cap);
    r->len[0] = r->len[1] = r->n_runs = 0;
    server_reasoning s;
    server_reasoning_init_harmony(&s, calls);
    for (size_t i = 0; i < n;) {
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
    bool calls = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    result whole, bytes, chunks;
    split(text, n, calls, 0, &whole);
    split(text, n, calls, 1, &bytes);
    split(text, n, calls, (uint64_t)data[0] << 8 | 0x55, &chunks);
    FUZZ_REQUIRE(same(&whole, &bytes));
    FUZZ_REQUIRE(same(&whole, &chunks));
    FUZZ_REQUIRE(subsequence(whole.text[1], whole.len[1], text, n));
    if (!calls) {
        FUZZ_REQUIRE(whole.len[0] + whole.len[1] <= n);
        FUZZ_REQUIRE(subsequence(whole.text[0], whole.len[0], text, n));
    } else {
        server_toolcalls c;
        shimmy_error err;
        if (server_toolcall_parse(SERVER_TOOLS_HARMONY, whole.text[0], whole.len[0], &c, &err) ==
            SHIMMY_OK) {
            for (size_t i = 0; i < c.n; i++) {
                json_t *a = json_loads(c.calls[i].arguments, 0, NULL);
                FUZZ_REQUIRE(json_is_object(a));
                json_decref(a);
            }
            FUZZ_REQUIRE(c.content_len <= whole.len[0]);
            server_toolcalls_free(&c);
        }
        bool started;
        size_t send =
            server_toolcall_hold(SERVER_TOOLS_HARMONY, whole.text[0], whole.len[0], true, &started);
        FUZZ_REQUIRE(send <= whole.len[0]);
    }
    release(&whole);
    release(&bytes);
    release(&chunks);
    (void)server_reasoning_prompt_harmony(text, n);
    return 0;
}
