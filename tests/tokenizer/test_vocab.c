/* The engine's tokenizer regression vectors (testdata/vocab: X.gguf.inp, X.gguf.out): every SPM,
 * byte-level BPE and WordPiece vocabulary must reproduce every line exactly (no BOS/EOS, no
 * special-token parsing), and decoding the ids must give the input back. WordPiece normalizes
 * (lowercase, accents, spacing), so there the decoded text must encode to the same ids instead,
 * when no word became [UNK]. */
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <dirent.h>

#define SEP "\n__ggml_vocab_test__\n"

/* Parses one .out line of " id id id" into b; returns false on a malformed number. */
static bool parse_ids(const char *s, const char *end, tok_buf *b) {
    b->n = 0;
    while (s < end) {
        if (*s == ' ') {
            s++;
            continue;
        }
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || e > end) return false;
        if (tok_buf_push(b, (int32_t)v, NULL)) return false;
        s = e;
    }
    return true;
}

static void print_ids(const char *what, const tok_buf *b) {
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < b->n && i < 64; i++) fprintf(stderr, " %d", b->ids[i]);
    fprintf(stderr, "%s\n", b->n > 64 ? " ..." : "");
}

static int test_file(const char *dir, const char *name, int *n_files) {
    char path[1400], inp_path[1500], out_path[1500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    size_t inp_len, out_len;
    char *inp = test_read_file(inp_path, &inp_len);
    char *out = test_read_file(out_path, &out_len);
    if (!inp || !out) { /* vocab without vectors (baichuan, gpt-neox) */
        free(inp);
        free(out);
        return 0;
    }
    gguf_file *f = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s: %s", name, err.message);
    if (!f) return 1;
    gguf_str model;
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &model));
    if (!gguf_str_eq(model, "llama") && !gguf_str_eq(model, "gpt2") &&
        !gguf_str_eq(model, "bert")) {
        /* Unigram and others are refused with a clear error, not tested for ids */
        tok_vocab *v = NULL;
        CHECK(tok_vocab_load(f, &v, &err) == SHIMMY_ERR_UNSUPPORTED);
        CHECK(v == NULL && strstr(err.message, "not supported") != NULL);
        gguf_close(f);
        free(inp);
        free(out);
        return 0;
    }
    tok_vocab *v = NULL;
    double t0 = core_time_ms();
    CHECK_MSG(tok_vocab_load(f, &v, &err) == SHIMMY_OK, "%s: %s", name, err.message);
    double t_load = core_time_ms() - t0;
    gguf_close(f); /* the vocab must not borrow from the file */
    if (!v) return 1;
    (*n_files)++;

    int cases = 0, pass = 0, roundtrip = 0;
    tok_buf got = {0}, want = {0}, again = {0};
    static const char *const algo_names[] = {"spm", "bpe", "wpm"};
    bool wpm = tok_vocab_algo(v) == TOK_ALGO_WPM;
    const char *p = inp, *o = out;
    for (;;) {
        const char *sep = strstr(p, SEP);
        if (!sep) break;
        const char *nl = memchr(o, '\n', (size_t)(out + out_len - o));
        if (!nl) nl = out + out_len;
        cases++;
        CHECK(parse_ids(o, nl, &want));
        got.n = 0;
        tok_encode_opts opts = {.add_special = false, .parse_special = false};
        CHECK(tok_encode(v, p, (size_t)(sep - p), &opts, &got, &err) == SHIMMY_OK);
        bool same = got.n == want.n && memcmp(got.ids, want.ids, got.n * sizeof *got.ids) == 0;
        if (same)
            pass++;
        else {
            fprintf(stderr, "  %s case %d: \"%.*s\"\n", name, cases, (int)(sep - p), p);
            print_ids("want", &want);
            print_ids("got ", &got);
        }
        char *text = NULL;
        size_t len = 0;
        CHECK(tok_decode(v, got.ids, got.n, false, &text, &len, &err) == SHIMMY_OK);
        bool back = text && len == (size_t)(sep - p) && memcmp(text, p, len) == 0;
        if (wpm && text) {
            bool unk = false;
            for (size_t k = 0; k < got.n; k++) unk |= got.ids[k] == tok_unk(v);
            again.n = 0;
            CHECK(tok_encode(v, text, len, &opts, &again, &err) == SHIMMY_OK);
            back = unk ||
                   (again.n == got.n && memcmp(again.ids, got.ids, got.n * sizeof *got.ids) == 0);
        }
        if (back)
            roundtrip++;
        else
            fprintf(stderr, "  %s case %d: decode differs: \"%s\"\n", name, cases, text);
        free(text);
        p = sep + strlen(SEP);
        o = nl < out + out_len ? nl + 1 : nl;
    }
    printf("%-34s %-5s pre=%-15s %2d/%2d ids, %2d/%2d round-trip, load %.1f ms\n", name,
           algo_names[tok_vocab_algo(v)], tok_vocab_pre(v), pass, cases, roundtrip, cases, t_load);
    CHECK_MSG(cases == 46, "%s: %d cases", name, cases);
    CHECK_EQ_INT(pass, cases);
    CHECK_EQ_INT(roundtrip, cases);
    tok_buf_free(&got);
    tok_buf_free(&want);
    tok_buf_free(&again);
    tok_vocab_free(v);
    free(inp);
    free(out);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    char dir[1024];
    test_require_data("vocab/README.md", dir, sizeof dir);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return test_finish("tokenizer/vocab");
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int n_files = 0;
    for (size_t i = 0; i < n; i++) {
        test_file(dir, names[i], &n_files);
        free(names[i]);
    }
    /* 12 SPM/BPE/WordPiece vocabularies carry vectors (README table) */
    CHECK_EQ_INT(n_files, 12);
    return test_finish("tokenizer/vocab");
}
