/* The token mask on real vocabularies: at every position of a random walk through a grammar,
 * the mask from the trie walk equals the mask found token by token (each token's bytes fed to
 * the matcher), end-of-generation tokens are allowed exactly where the grammar can end, special
 * tokens never, and a cached mask equals a computed one. The walk picks random allowed tokens,
 * so byte tokens (SentencePiece) leave characters half-written across tokens. Matchers on
 * several threads share a vocabulary's slices. */
#include "grammar/grammar.h"

#include <pthread.h>
#include "test.h"
#include "tokenizer/tokenizer.h"

static const char *const grammars[] = {
    "root ::= obj\n"
    "obj ::= \"{\" ws (kv (\",\" ws kv)*)? \"}\"\n"
    "kv ::= str ws \":\" ws val ws\n"
    "val ::= str | num | obj | \"[\" ws (val ws (\",\" ws val ws)*)? \"]\" | \"true\" | \"null\"\n"
    "str ::= \"\\\"\" ([^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\nt])* \"\\\"\"\n"
    "num ::= \"-\"? [0-9]{1,6} (\".\" [0-9]{1,4})?\n"
    "ws ::= \" \"?\n",
    "root ::= ([\\u00e0-\\u00ff] | \"\xE2\x82\xAC\" | [a-z ] | \"\\U0001F600\")+ \".\"",
    "root ::= \"yes\" | \"no\" | \"maybe\" [!?]{0,3}",
    /* a string body whose first character leads to another state than the loop (the mask
     * takes subtrees whole from either), and an escape inside it */
    ("root ::= (\"\\\"\" [^\"\\\\\\x00-\\x1f] ([^\"\\\\\\x00-\\x1f] | \"\\\\n\")* \"\\\"\" \" "
     "\"?){1,3}"),
    /* counted repetitions: the mask takes subtrees whole along the counting states */
    "root ::= ([A-Za-z ]{1,30} \",\" [0-9]{1,4} \"\\n\"){1,4}",
    /* ... and with non-ASCII characters (one step each, whatever their length) */
    "root ::= [^{}<>]{1,300} \".\"",
    /* (a class that takes some of them only: characters are walked) */
    "root ::= [^{}<>\\u00e9]{1,300} \".\"",
    /* counts shorter than the longest token: the slice's tokens of at most the characters left
     * (a string with maxLength, escapes included; a class that goes on after the count; a
     * count over non-ASCII characters) */
    ("root ::= \"{\\\"n\\\":\\\"\" ([^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\nt]){0,24} "
     "\"\\\",\\\"t\\\":\\\"\" ([^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\nt]){2,9} \"\\\"}\""),
    "root ::= ([a-z]{1,6} [a-z0-9 ]* \".\"){1,3}",
    "root ::= [^{}<>]{0,20} \"}\" [^{}<>]{3,7} \"<\"",
    /* a count longer than any token of its class, followed by more of the class: as if there
     * were no count (Qwen2 and Llama 3 write at most three digits in one token) */
    "root ::= \"#\" ([0-9]{2,40} [0-9a-f]* \".\"){1,3}",
};

static bool bit(const uint64_t *m, int32_t t) {
    return (m[t >> 6] >> (t & 63)) & 1;
}

static void check_vocab(const char *file, int steps, bool check_fast_paths) {
    char path[512];
    const char *p = test_data_path(file, path, sizeof path);
    if (!p) {
        fprintf(stderr, "skipping %s: not in SHIMMY_TESTDATA\n", file);
        return;
    }
    tok_vocab *v = NULL;
    grammar_vocab *gv = NULL;
    shimmy_error err = {0};
    CHECK(tok_vocab_load_path(p, &v, &err) == SHIMMY_OK);
    CHECK(v && grammar_vocab_new(v, &gv, &err) == SHIMMY_OK);
    if (!gv) {
        tok_vocab_free(v);
        return;
    }
    const int32_t n = grammar_vocab_size(gv);
    CHECK_EQ_INT(n, tok_n_vocab(v));
    const size_t words = ((size_t)n + 63) / 64;
    uint64_t *mask = malloc(words * 8), *again = malloc(words * 8);
    test_rng r;
    test_rng_seed(&r, 2026);
    uint64_t slices = 0, chains = 0, shorts = 0;
    for (size_t gi = 0; gi < sizeof grammars / sizeof grammars[0]; gi++) {
        grammar *g = NULL;
        grammar_matcher *m = NULL;
        CHECK(grammar_compile(grammars[gi], strlen(grammars[gi]), &g, &err) == SHIMMY_OK);
        CHECK(g && grammar_matcher_new(g, gv, &m, &err) == SHIMMY_OK);
        grammar_unref(g);
        if (!m) continue;
        int ended = 0;
        for (int step = 0; step < steps; step++) {
            const int64_t count = grammar_matcher_mask(m, mask, &err);
            CHECK_MSG(count > 0, "%s grammar %zu step %d: %lld allowed (%s)", file, gi, step,
                      (long long)count, err.message);
            if (count <= 0) break;
            int64_t brute = 0, mismatches = 0;
            for (int32_t t = 0; t < n; t++) {
                const bool want = grammar_matcher_allows_token(m, t);
                brute += want;
                if (want != bit(mask, t) && mismatches++ < 3)
                    fprintf(stderr, "%s grammar %zu step %d: token %d mask %d, by bytes %d\n", file,
                            gi, step, t, bit(mask, t), want);
                if (tok_is_eog(v, t)) {
                    CHECK(want == grammar_matcher_can_end(m));
                } else if (tok_is_control(v, t)) {
                    CHECK(!want);
                }
            }
            CHECK_MSG(mismatches == 0, "%s grammar %zu step %d: %lld mismatches", file, gi, step,
                      (long long)mismatches);
            CHECK_EQ_INT(brute, count);
            grammar_stats before, after;
            grammar_matcher_stats(m, &before);
            CHECK(grammar_matcher_mask(m, again, NULL) == count);
            grammar_matcher_stats(m, &after);
            CHECK(after.mask_hits == before.mask_hits + 1);
            CHECK(memcmp(mask, again, words * 8) == 0);
            /* advance by a random allowed text token (prefer not ending, to go deeper) */
            int64_t pick = (int64_t)(test_rng_u64(&r) % (uint64_t)count);
            int32_t tok = -1;
            for (int32_t t = 0; t < n && tok < 0; t++)
                if (bit(mask, t) && pick-- == 0) tok = t;
            if (tok >= 0 && tok_is_eog(v, tok)) {
                ended++;
                for (int32_t t = 0; t < n; t++)
                    if (bit(mask, t) && !tok_is_eog(v, t)) tok = t;
            }
            if (tok < 0 || tok_is_eog(v, tok)) break;
            CHECK(grammar_matcher_accept_token(m, tok, &err) == SHIMMY_OK);
        }
        (void)ended;
        grammar_stats gs;
        grammar_matcher_stats(m, &gs);
        slices += gs.slice_masks;
        chains += gs.chain_takes;
        shorts += gs.short_slices;
        grammar_matcher_free(m);
    }
    /* the fast paths were exercised (and so compared with the token-by-token answer above) */
    fprintf(stderr,
            "%s: %llu masks from slices (%llu cut to the characters a count has left), %llu "
            "subtrees along counted steps\n",
            file, (unsigned long long)slices, (unsigned long long)shorts,
            (unsigned long long)chains);
    if (check_fast_paths) CHECK(slices > 0 && chains > 0 && shorts > 0);
    free(mask);
    free(again);
    grammar_vocab_free(gv);
    tok_vocab_free(v);
}

/* Subtrees taken whole by their byte sets: a NUL byte deep in a token (bit 0 of the byte set
 * cannot tell it from a high byte) must not be taken by a class that refuses NUL, nor a broken
 * UTF-8 sequence. Token-by-token checking is the reference. */
static void check_synthetic(void) {
    static const char *const src[] = {"a",        "ab",       "a\0",   "ab\0c",         "\"",
                                      "abc",      "\xC3\xA9", "a\xC3", "a\xC3\xA9\x62", "a\x80",
                                      "\xE2\x82", "b\"",      "\0"};
    static const size_t len[] = {1, 2, 2, 4, 1, 3, 2, 2, 4, 2, 2, 2, 1};
    enum { N = sizeof len / sizeof len[0] };
    static const char *const gs[] = {
        "root ::= \"\\\"\" [^\"\\\\\\x00-\\x1f]* \"\\\"\"",
        "root ::= [^\"]* \"\\\"\"",
        "root ::= [^\\x00]+",
        /* the first character's class is narrower than the body's (a slice's first-byte set) */
        "root ::= \"\\\"\" [b-z] [^\"]* \"\\\"\"",
    };
    grammar_vocab *gv = NULL;
    CHECK(grammar_vocab_from_pieces(src, len, NULL, NULL, N, &gv, NULL) == SHIMMY_OK);
    if (!gv) return;
    for (size_t gi = 0; gi < sizeof gs / sizeof gs[0]; gi++) {
        grammar *g = NULL;
        grammar_matcher *m = NULL;
        CHECK(grammar_compile(gs[gi], strlen(gs[gi]), &g, NULL) == SHIMMY_OK);
        CHECK(g && grammar_matcher_new(g, gv, &m, NULL) == SHIMMY_OK);
        grammar_unref(g);
        if (!m) continue;
        /* warm the automaton (direct tables come after repeated visits), then compare */
        for (int step = 0; step < 40; step++) {
            uint64_t mask[1] = {0};
            grammar_matcher_clear_cache(m);
            CHECK(grammar_matcher_mask(m, mask, NULL) >= 0);
            for (int32_t t = 0; t < N; t++)
                CHECK_MSG(grammar_matcher_allows_token(m, t) == bit(mask, t),
                          "synthetic grammar %zu step %d token %d: mask %d", gi, step, t,
                          bit(mask, t));
            if ((step == 20 && gi == 0) || (step == 0 && gi == 3)) /* into the string */
                CHECK(grammar_matcher_accept_token(m, 4, NULL) == SHIMMY_OK);
        }
        grammar_stats st;
        grammar_matcher_stats(m, &st);
        if (gi == 3) CHECK(st.slice_masks > 0);
        grammar_matcher_free(m);
    }
    grammar_vocab_free(gv);
}

/* The vocabulary's slices are shared by every matcher (built by whichever thread needs one
 * first): matchers on four threads at once, starting from an empty cache, give the same masks
 * as one thread alone on a vocabulary of its own. */
typedef struct walker {
    const grammar_vocab *gv;
    const char *const *gs;
    size_t n_gs;
    uint64_t hash; /* of every mask along the walks */
    bool ok;
} walker;

static void *walk_grammars(void *arg) {
    walker *w = arg;
    const int32_t n = grammar_vocab_size(w->gv);
    const size_t words = ((size_t)n + 63) / 64;
    uint64_t *mask = malloc(words * 8);
    w->hash = 1469598103934665603ull;
    w->ok = mask != NULL;
    for (size_t gi = 0; w->ok && gi < w->n_gs; gi++) {
        grammar *g = NULL;
        grammar_matcher *m = NULL;
        w->ok = grammar_compile(w->gs[gi], strlen(w->gs[gi]), &g, NULL) == SHIMMY_OK &&
                grammar_matcher_new(g, w->gv, &m, NULL) == SHIMMY_OK;
        grammar_unref(g);
        for (int step = 0; w->ok && step < 10; step++) {
            const int64_t count = grammar_matcher_mask(m, mask, NULL);
            w->ok = count > 0;
            for (size_t i = 0; w->ok && i < words; i++)
                w->hash = (w->hash ^ mask[i]) * 1099511628211ull;
            int64_t pick = (step * 7919 + 13) % (count > 0 ? count : 1);
            int32_t tok = -1;
            for (int32_t t = 0; t < n && tok < 0; t++)
                if (bit(mask, t) && pick-- == 0) tok = t;
            if (tok < 0 || grammar_matcher_accept_token(m, tok, NULL) != SHIMMY_OK) break;
        }
        grammar_matcher_free(m);
    }
    free(mask);
    return NULL;
}

static void check_shared_slices(void) {
    char path[512];
    const char *p = test_data_path("vocab/ggml-vocab-qwen2.gguf", path, sizeof path);
    if (!p) return;
    tok_vocab *v = NULL;
    grammar_vocab *shared = NULL, *alone = NULL;
    CHECK(tok_vocab_load_path(p, &v, NULL) == SHIMMY_OK);
    CHECK(v && grammar_vocab_new(v, &shared, NULL) == SHIMMY_OK);
    CHECK(v && grammar_vocab_new(v, &alone, NULL) == SHIMMY_OK);
    if (shared && alone) {
        /* string bodies, a long and short counts: grammars 3 to the end share classes */
        const char *const *gs = grammars + 3;
        const size_t n_gs = sizeof grammars / sizeof grammars[0] - 3;
        walker ws[4], ref = {alone, gs, n_gs, 0, false};
        pthread_t th[4];
        bool started[4];
        for (int i = 0; i < 4; i++) {
            ws[i] = (walker){shared, gs, n_gs, 0, false};
            started[i] = pthread_create(&th[i], NULL, walk_grammars, &ws[i]) == 0;
        }
        walk_grammars(&ref);
        CHECK(ref.ok);
        for (int i = 0; i < 4; i++) {
            if (started[i]) pthread_join(th[i], NULL);
            CHECK(started[i] && ws[i].ok);
            CHECK_MSG(ws[i].hash == ref.hash, "thread %d: masks differ from one thread's", i);
        }
    }
    grammar_vocab_free(shared);
    grammar_vocab_free(alone);
    tok_vocab_free(v);
}

int main(void) {
    check_synthetic();
    check_shared_slices();
#ifdef SHIMMY_TEST_SANITIZED
    const int steps = 4;
#else
    const int steps = 12;
#endif
    check_vocab("vocab/ggml-vocab-llama-spm.gguf", steps, false);
    check_vocab("vocab/ggml-vocab-qwen2.gguf", steps, true);
    check_vocab("vocab/ggml-vocab-llama-bpe.gguf", steps / 2, true);
    return test_finish("grammar mask");
}
