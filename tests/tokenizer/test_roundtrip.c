/* Fuzzed round trips: random UTF-8 (and random bytes) through tok_encode, tok_decode and the
 * streaming decoder, on SPM and byte-level BPE vocabularies.
 *  - valid UTF-8 comes back byte for byte from tok_decode, except that SPM turns U+2581 (its
 *    space marker) into a space: the engine's SPM does no other normalisation, and byte
 *    fallback keeps every byte;
 *  - invalid bytes never crash; SPM still round-trips them exactly, BPE gives valid UTF-8;
 *  - the streaming decoder, pushed one token at a time, emits only whole UTF-8 characters per
 *    push and in total the whole-sequence decode with invalid parts replaced by U+FFFD. */
#include "test.h"
#include "tokenizer/tokenizer.h"

static const uint32_t ranges[][2] = {
    {0x20, 0x7E},       {0x20, 0x20},     {0x09, 0x0D},     {0x30, 0x39},       {0xA0, 0xFF},
    {0x100, 0x17F},     {0x300, 0x36F},   {0x391, 0x3C9},   {0x400, 0x44F},     {0x5D0, 0x5EA},
    {0x627, 0x64A},     {0x900, 0x97F},   {0x2000, 0x206F}, {0x3000, 0x303F},   {0x3040, 0x30FF},
    {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3}, {0xFF01, 0xFF5E}, {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF},
    {0x10000, 0x1000F}, {0xE000, 0xE00F}, {0x85, 0x85},     {0x2581, 0x2581},
};
static const char *const words[] = {
    "the",  " the", "Hello", " world",     "'s",  "'ll",  "don't",  "\n",  "\n\n", "\t", "   ",
    "1234", "3.14", "==",    "<|im_end|>", "<s>", "</s>", "[INST]", "```", "->",   "é"};

static size_t random_utf8(test_rng *r, char *out, size_t cap) {
    size_t n = 0, parts = 1 + test_rng_u64(r) % 24;
    for (size_t p = 0; p < parts && n + 16 < cap; p++) {
        if (test_rng_u64(r) % 3 == 0) {
            const char *w = words[test_rng_u64(r) % (sizeof words / sizeof words[0])];
            size_t l = strlen(w);
            if (n + l >= cap) break;
            memcpy(out + n, w, l);
            n += l;
            continue;
        }
        const uint32_t *g = ranges[test_rng_u64(r) % (sizeof ranges / sizeof ranges[0])];
        size_t run = 1 + test_rng_u64(r) % 6;
        for (size_t k = 0; k < run && n + 4 < cap; k++) {
            uint32_t cp = g[0] + (uint32_t)(test_rng_u64(r) % (g[1] - g[0] + 1));
            n += (size_t)core_utf8_encode(cp, out + n);
        }
    }
    return n;
}

/* Reference replacement of invalid UTF-8 by U+FFFD, one per maximal subpart (written from
 * Unicode table 3-7, independently of the streaming state machine under test). */
static size_t replace_invalid(const unsigned char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t want = c < 0x80                 ? 1
                      : c >= 0xC2 && c <= 0xDF ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 0;
        size_t ok = want ? 1 : 0;
        while (ok < want && i + ok < n) {
            unsigned lo = 0x80, hi = 0xBF, b = s[i + ok];
            if (ok == 1 && c == 0xE0) lo = 0xA0;
            if (ok == 1 && c == 0xED) hi = 0x9F;
            if (ok == 1 && c == 0xF0) lo = 0x90;
            if (ok == 1 && c == 0xF4) hi = 0x8F;
            if (b < lo || b > hi) break;
            ok++;
        }
        if (want && ok == want) {
            memcpy(out + o, s + i, want);
            o += want;
            i += want;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += ok ? ok : 1;
        }
    }
    return o;
}

/* SentencePiece writes spaces as U+2581, so a U+2581 in the input comes back as a space. */
static size_t spm_normalise(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
            out[o++] = ' ';
            i += 3;
        } else
            out[o++] = s[i++];
    }
    return o;
}

static int32_t user_ids[4096];
static size_t n_user;

static void collect_user_defined(const tok_vocab *v) {
    n_user = 0;
    for (int32_t id = 0; id < tok_n_vocab(v) && n_user < 4096; id++)
        if (tok_get_type(v, id) == TOK_TYPE_USER_DEFINED) user_ids[n_user++] = id;
}

static bool has_user_defined(const tok_vocab *v, const char *s, size_t n) {
    for (size_t i = 0; i < n_user; i++) {
        size_t l;
        const char *t = tok_text(v, user_ids[i], &l);
        if (memmem(s, n, t, l)) return true;
    }
    return false;
}

static tok_vocab *load(const char *rel) {
    char path[1024];
    if (!test_data_path(rel, path, sizeof path)) return NULL;
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open_header(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    if (f) CHECK_MSG(tok_vocab_load(f, &v, &err) == SHIMMY_OK, "%s", err.message);
    gguf_close(f);
    return v;
}

static void stream_check(tok_vocab *v, const tok_buf *t, const char *whole, size_t whole_len,
                         bool special) {
    size_t cap = tok_decoder_max_out(v);
    char *chunk = malloc(cap), *all = malloc(whole_len * 3 + 16),
         *want = malloc(whole_len * 3 + 16);
    tok_decoder d;
    tok_decoder_init(&d, v, special, true);
    size_t n = 0;
    bool whole_chars = true;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = tok_decoder_push(&d, t->ids[i], chunk, cap);
        CHECK(k <= cap);
        if (!core_utf8_valid(chunk, k)) whole_chars = false;
        memcpy(all + n, chunk, k);
        n += k;
    }
    size_t k = tok_decoder_flush(&d, chunk, cap);
    CHECK(core_utf8_valid(chunk, k));
    memcpy(all + n, chunk, k);
    n += k;
    CHECK_MSG(whole_chars, "a push emitted a broken UTF-8 sequence");
    size_t wn = replace_invalid((const unsigned char *)whole, whole_len, want);
    CHECK_MSG(n == wn && memcmp(all, want, n) == 0, "stream (%zu bytes) != decode (%zu bytes)", n,
              wn);
    free(chunk);
    free(all);
    free(want);
}

static void fuzz(const char *rel, int iters, unsigned long long seed) {
    tok_vocab *v = load(rel);
    if (!v) {
        fprintf(stderr, "  %s absent, skipped\n", rel);
        return;
    }
    bool spm = tok_vocab_algo(v) == TOK_ALGO_SPM;
    collect_user_defined(v);
    test_rng r;
    test_rng_seed(&r, seed);
    char s[512];
    tok_buf t = {0};
    shimmy_error err;
    int exact = 0, invalid_ok = 0, skipped = 0;
    for (int it = 0; it < iters; it++) {
        bool bytes = it % 4 == 3; /* every fourth input is random bytes */
        size_t n;
        if (bytes) {
            n = test_rng_u64(&r) % 64;
            /* no spaces: SPM spells them U+2581 before splitting, so a space inside an invalid
             * sequence comes back as the marker's bytes (as in the engine) */
            for (size_t i = 0; i < n; i++) s[i] = (char)(test_rng_u64(&r) % 255 + 1);
            for (size_t i = 0; i < n; i++)
                if (s[i] == ' ') s[i] = 'x';
        } else
            n = random_utf8(&r, s, sizeof s);
        t.n = 0;
        tok_encode_opts o = {0};
        CHECK(tok_encode(v, s, n, &o, &t, &err) == SHIMMY_OK);
        for (size_t i = 0; i < t.n; i++) CHECK(t.ids[i] >= 0 && t.ids[i] < tok_n_vocab(v));
        char *out = NULL;
        size_t len = 0;
        CHECK(tok_decode(v, t.ids, t.n, false, &out, &len, &err) == SHIMMY_OK);
        if (!out) continue;
        if (has_user_defined(v, s, n)) {
            /* user-defined token text is always matched, and the engine strips around some
             * (phi-3's </s>), so such inputs need not come back unchanged */
            skipped++;
        } else if (!bytes || spm) {
            char want[512];
            size_t wn = spm ? spm_normalise(s, n, want) : (memcpy(want, s, n), n);
            bool same = len == wn && memcmp(out, want, wn) == 0;
            CHECK_MSG(same, "%s: round trip of %zu bytes gave %zu bytes", rel, n, len);
            exact += same;
        } else {
            bool valid = core_utf8_valid(out, len);
            CHECK_MSG(valid, "%s: BPE decode of random bytes is not valid UTF-8", rel);
            invalid_ok += valid;
        }
        stream_check(v, &t, out, len, false);
        free(out);
        /* with special pieces shown, e.g. for a server echoing control tokens */
        if (it % 8 == 0) {
            t.n = 0;
            tok_encode_opts ps = {.add_special = true, .parse_special = true};
            CHECK(tok_encode(v, s, n, &ps, &t, &err) == SHIMMY_OK);
            CHECK(tok_decode(v, t.ids, t.n, true, &out, &len, &err) == SHIMMY_OK);
            if (out) stream_check(v, &t, out, len, true);
            free(out);
        }
    }
    printf("%-36s %d exact round trips, %d random-byte decodes valid UTF-8, %d with user-defined "
           "tokens (of %d inputs)\n",
           rel, exact, invalid_ok, skipped, iters);
    CHECK(exact + invalid_ok + skipped == iters);
    CHECK(skipped < iters / 4);
    tok_buf_free(&t);
    tok_vocab_free(v);
}

int main(void) {
    char buf[1024];
    test_require_data("vocab/ggml-vocab-llama-spm.gguf", buf, sizeof buf);
#ifdef SHIMMY_TEST_SANITIZED
    int iters = 300;
#else
    int iters = 2000;
#endif
    /* SHIMMY_FUZZ_ITERS=N runs a longer campaign by hand */
    const char *env = getenv("SHIMMY_FUZZ_ITERS");
    if (env && atoi(env) > 0) iters = atoi(env);
    fuzz("vocab/ggml-vocab-llama-spm.gguf", iters, 1);
    fuzz("vocab/ggml-vocab-phi-3.gguf", iters / 2, 2);
    fuzz("vocab/ggml-vocab-llama-bpe.gguf", iters, 3);
    fuzz("vocab/ggml-vocab-qwen2.gguf", iters, 4);
    fuzz("vocab/ggml-vocab-gpt-2.gguf", iters / 2, 5);
    fuzz("vocab/ggml-vocab-deepseek-llm.gguf", iters / 2, 6);
    return test_finish("tokenizer/roundtrip");
}
