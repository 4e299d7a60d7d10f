/* Pre-tokenizer splits, checked word by word against what the published regexes mean (worked
 * out by hand from the pattern, see each case), including where PCRE2's defaults differ from
 * the engine: U+180E is not whitespace for the engine. */
#include "test.h"
#include "tokenizer/tok_impl.h"

typedef struct split_case {
    const char *text;
    const char *words[8]; /* NULL-terminated */
} split_case;

static void check_splits(const char *rel, const split_case *cases, size_t n) {
    char path[1024];
    test_require_data(rel, path, sizeof path);
    tok_vocab *v = NULL;
    shimmy_error err;
    CHECK_MSG(tok_vocab_load_path(path, &v, &err) == SHIMMY_OK, "%s", err.message);
    if (!v) return;
    tok_scratch s = {0};
    for (size_t c = 0; c < n; c++) {
        const char *t = cases[c].text;
        CHECK(tok_pretok_split(v, t, strlen(t), &s, &err) == SHIMMY_OK);
        size_t want = 0;
        while (cases[c].words[want]) want++;
        bool ok = s.n_cuts == want;
        size_t start = 0;
        for (size_t i = 0; ok && i < want; i++) {
            size_t len = s.cuts[i] - start;
            ok = len == strlen(cases[c].words[i]) && memcmp(t + start, cases[c].words[i], len) == 0;
            start = s.cuts[i];
        }
        if (!ok) {
            fprintf(stderr, "  %s: \"%s\" split as", rel, t);
            start = 0;
            for (size_t i = 0; i < s.n_cuts; i++) {
                fprintf(stderr, " [%.*s]", (int)(s.cuts[i] - start), t + start);
                start = s.cuts[i];
            }
            fprintf(stderr, "\n");
        }
        CHECK_MSG(ok, "%s case %zu", rel, c);
    }
    tok_scratch_deinit(&s);
    tok_vocab_free(v);
}

#define MVS                                                                                        \
    "\xe1\xa0\x8e" /* U+180E MONGOLIAN VOWEL SEPARATOR, format character since Unicode 6.3 */

/* Llama 3: contractions any case, letters with one leading non-letter, digits by three,
 * punctuation runs with trailing newlines, newline runs, spaces kept before a word. */
static const split_case llama3[] = {
    {"Hello world", {"Hello", " world", NULL}},
    {"I'M done", {"I", "'M", " done", NULL}},
    {"12345", {"123", "45", NULL}},
    {"a  b", {"a", " ", " b", NULL}},
    {"x\n\n  y", {"x", "\n\n", " ", " y", NULL}},
    {"(ok)!\n", {"(ok", ")!\n", NULL}},
    {MVS MVS "!", {MVS MVS "!", NULL}},
    {"\xe3\x80\x80x", {"\xe3\x80\x80x", NULL}}, /* U+3000 is a space but not a letter */
};

/* Qwen2: the same, but one digit at a time. */
static const split_case qwen2[] = {
    {"12345", {"1", "2", "3", "4", "5", NULL}},
    {"it's 2", {"it", "'s", " ", "2", NULL}},
};

/* GPT-2: lower-case contractions only, an optional space before each class, and \s+(?!\S). */
static const split_case gpt2[] = {
    {"don't", {"don", "'t", NULL}},
    {"DON'T", {"DON", "'", "T", NULL}},
    {"hello   world", {"hello", "  ", " world", NULL}},
    {"a1b2", {"a", "1", "b", "2", NULL}},
    {"x " MVS "y", {"x", " " MVS, "y", NULL}},
    {"end  ", {"end", "  ", NULL}},
};

int main(void) {
    check_splits("vocab/ggml-vocab-llama-bpe.gguf", llama3, sizeof llama3 / sizeof llama3[0]);
    check_splits("vocab/ggml-vocab-qwen2.gguf", qwen2, sizeof qwen2 / sizeof qwen2[0]);
    check_splits("vocab/ggml-vocab-gpt-2.gguf", gpt2, sizeof gpt2 / sizeof gpt2[0]);
    return test_finish("tokenizer/pretok");
}
