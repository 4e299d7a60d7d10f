/* SentencePiece Unigram ("t5"): tests/tokenizer/data/albert-unigram.gguf is ALBERT's 30k-clean
 * model (Unigram, nmt_nfkc precompiled charsmap, 8 user-defined pieces) converted by
 * tools/spm_to_gguf.py; its .inp/.out hold the vocab test strings of testdata/vocab plus 10 on
 * normalization (NFKC forms, zero-width and format characters, spacing, user-defined pieces,
 * unknown characters), with the ids of the real SentencePiece library (the npm package
 * @sctg/sentencepiece-js, WebAssembly) run on each raw fragment that the user-defined pieces
 * leave, as the engine splits them. Every line must come out exactly; decoding must give text
 * that encodes to the same ids; special tokens and damaged metadata behave. */
#include "test.h"
#include "tokenizer/tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

static void data_path(const char *name, char *out, size_t cap) {
    const char *src = getenv("SHIMMY_SRC");
    if (src)
        snprintf(out, cap, "%s/tests/tokenizer/data/%s", src, name);
    else { /* this file's folder */
        snprintf(out, cap, "%s", __FILE__);
        char *slash = strrchr(out, '/');
        snprintf(slash ? slash + 1 : out, cap - (size_t)(slash ? slash + 1 - out : 0), "data/%s",
                 name);
    }
}

static bool parse_ids(const char *s, const char *end, tok_buf *b) {
    b->n = 0;
    while (s < end) {
        if (*s == ' ') {
            s++;
            continue;
        }
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || e > end || tok_buf_push(b, (int32_t)v, NULL)) return false;
        s = e;
    }
    return true;
}

static void vectors(const tok_vocab *v) {
    char ip[1024], op[1024];
    data_path("albert-unigram.gguf.inp", ip, sizeof ip);
    data_path("albert-unigram.gguf.out", op, sizeof op);
    size_t il, ol;
    char *inp = test_read_file(ip, &il), *out = test_read_file(op, &ol);
    CHECK_MSG(inp && out, "%s or its .out is missing", ip);
    if (!inp || !out) return;
    int cases = 0, pass = 0, again_ok = 0;
    tok_buf got = {0}, want = {0}, again = {0};
    shimmy_error err;
    tok_encode_opts plain = {0};
    for (const char *p = inp, *o = out;;) {
        const char *sep = strstr(p, SEP);
        if (!sep) break;
        const char *nl = memchr(o, '\n', (size_t)(out + ol - o));
        if (!nl) nl = out + ol;
        cases++;
        CHECK(parse_ids(o, nl, &want));
        got.n = 0;
        CHECK(tok_encode(v, p, (size_t)(sep - p), &plain, &got, &err) == SHIMMY_OK);
        bool same = got.n == want.n && memcmp(got.ids, want.ids, got.n * sizeof *got.ids) == 0;
        pass += same;
        if (!same) fprintf(stderr, "  case %d differs: \"%.*s\"\n", cases, (int)(sep - p), p);

        /* the decoded text is normalized already: it gives the same ids (without unknowns) */
        bool unk = false;
        for (size_t i = 0; i < got.n; i++) unk |= got.ids[i] == tok_unk(v);
        char *text = NULL;
        size_t len = 0;
        CHECK(tok_decode(v, got.ids, got.n, false, &text, &len, &err) == SHIMMY_OK);
        again.n = 0;
        CHECK(tok_encode(v, text, len, &plain, &again, &err) == SHIMMY_OK);
        bool ok =
            unk || (again.n == got.n && memcmp(again.ids, got.ids, got.n * sizeof *got.ids) == 0);
        again_ok += ok;
        if (!ok) fprintf(stderr, "  case %d: decoded \"%s\" encodes differently\n", cases, text);
        free(text);
        p = sep + strlen(SEP);
        o = nl < out + ol ? nl + 1 : nl;
    }
    printf("albert-unigram: %d/%d ids as SentencePiece, %d/%d decode-encode stable\n", pass, cases,
           again_ok, cases);
    CHECK_EQ_INT(cases, 56);
    CHECK_EQ_INT(pass, cases);
    CHECK_EQ_INT(again_ok, cases);
    tok_buf_free(&got);
    tok_buf_free(&want);
    tok_buf_free(&again);
    free(inp);
    free(out);
}

static void specials(const tok_vocab *v) {
    CHECK(tok_vocab_algo(v) == TOK_ALGO_UGM);
    CHECK_EQ_INT(tok_unk(v), 1);
    tok_buf b = {0};
    shimmy_error err;
    tok_encode_opts o = {.add_special = true, .parse_special = true};
    const char *s = "hello[MASK] world"; /* the model does not lowercase (ALBERT's HF code does) */
    CHECK(tok_encode(v, s, strlen(s), &o, &b, &err) == SHIMMY_OK);
    /* add_bos/add_eos are set in this file: [CLS] ... [SEP]; [MASK] parsed */
    CHECK(b.n >= 5 && b.ids[0] == 2 && b.ids[b.n - 1] == 3);
    bool mask = false;
    for (size_t i = 0; i < b.n; i++) mask |= b.ids[i] == 4;
    CHECK(mask);
    char *text = NULL;
    size_t len = 0;
    CHECK(tok_decode(v, b.ids, b.n, false, &text, &len, &err) == SHIMMY_OK);
    CHECK_STR(text, " hello world"); /* [CLS] first: the next piece keeps its space */
    free(text);
    tok_buf_free(&b);
}

/* A tiny "t5" vocabulary with the given charsmap bytes (NULL: none). */
static shimmy_status tiny(const char *dir, const uint8_t *cm, size_t n_cm, tok_vocab **v,
                          shimmy_error *err) {
    static const char *const toks[] = {"<pad>", "</s>", "<unk>", "\xe2\x96\x81\x61", "b"}; /* ▁a */
    float scores[5] = {0, 0, 0, -1, -2};
    int32_t types[5] = {3, 3, 2, 1, 1};
    char path[600];
    snprintf(path, sizeof path, "%s/t5.gguf", dir);
    gguf_writer *w = NULL;
    CHECK(gguf_writer_new(&w, err) == SHIMMY_OK);
    if (!w) return SHIMMY_ERR_NOMEM;
    gguf_writer_set_str(w, "tokenizer.ggml.model", "t5");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 5);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, 5);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, 5);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", true);
    if (cm) gguf_writer_set_arr(w, "tokenizer.ggml.precompiled_charsmap", GGUF_VT_UINT8, cm, n_cm);
    CHECK(gguf_writer_write(w, path, err) == SHIMMY_OK);
    gguf_writer_free(w);
    *v = NULL;
    return tok_vocab_load_path(path, v, err);
}

static void small_vocabs(void) {
    char dir[512];
    CHECK(test_tmpdir(dir, sizeof dir) != NULL);
    shimmy_error err;
    tok_vocab *v = NULL;
    /* no charsmap; T5's defaults: </s> = 1 appended, no BOS; unknown runs collapse */
    CHECK(tiny(dir, NULL, 0, &v, &err) == SHIMMY_OK);
    if (v) {
        tok_buf b = {0};
        tok_encode_opts o = {.add_special = true};
        CHECK(tok_encode(v, "ab xyz", 6, &o, &b, &err) == SHIMMY_OK);
        /* "▁ab▁xyz": ▁a b, then ▁xyz has no piece: one <unk> */
        CHECK(b.n == 4 && b.ids[0] == 3 && b.ids[1] == 4 && b.ids[2] == 2 && b.ids[3] == 1);
        tok_buf_free(&b);
        tok_vocab_free(v);
    }
    /* a charsmap shorter than its announced node array is refused, naming the key */
    const uint8_t short_cm[] = {8, 0, 0, 0, 1, 2};
    CHECK(tiny(dir, short_cm, sizeof short_cm, &v, &err) == SHIMMY_ERR_FORMAT);
    CHECK(v == NULL && strstr(err.message, "precompiled_charsmap") != NULL);
    /* nodes pointing outside the array end the walk: encoding works, nothing is read out of
     * bounds (ASan builds check) */
    const uint8_t bad_cm[] = {8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 'x', 0};
    CHECK(tiny(dir, bad_cm, sizeof bad_cm, &v, &err) == SHIMMY_OK);
    if (v) {
        tok_buf b = {0};
        CHECK(tok_encode(v, "ab\xff", 3, NULL, &b, &err) == SHIMMY_OK);
        CHECK(b.n == 3 && b.ids[0] == 3 && b.ids[1] == 4 && b.ids[2] == 2);
        tok_buf_free(&b);
        tok_vocab_free(v);
    }
    test_rm_rf(dir);
}

int main(void) {
    char path[1024];
    data_path("albert-unigram.gguf", path, sizeof path);
    tok_vocab *v = NULL;
    shimmy_error err;
    CHECK_MSG(tok_vocab_load_path(path, &v, &err) == SHIMMY_OK, "%s", err.message);
    if (v) {
        vectors(v);
        specials(v);
        tok_vocab_free(v);
    }
    small_vocabs();
    return test_finish("tokenizer/unigram");
}
