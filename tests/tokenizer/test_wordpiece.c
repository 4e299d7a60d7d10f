/* WordPiece (tokenizer.ggml.model "bert") and the sequence forms embedding models use:
 *  - the token ids of every input of the embedding references
 * (testdata/reference/<stem>.embed.json: three BERT models, nomic-bert and a Qwen3-Embedding
 * decoder whose vocab appends EOS), as llama-embedding fed them (add_special and parse_special);
 *  - the reranker's pairs: [CLS] q [SEP] d [SEP] as llama-embedding encodes them (HF form) and
 *    [CLS] q [SEP] d as llama-server's /v1/rerank does;
 *  - BERT normalization rule by rule on the bge vocabulary (accents, case, punctuation, CJK,
 *    control characters, invalid UTF-8, [UNK]) and the normalizer / special-token metadata keys
 *    on small written vocabularies. */
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>

static void encode(const tok_vocab *v, const char *s, bool special, tok_buf *b) {
    shimmy_error err;
    b->n = 0;
    tok_encode_opts o = {.add_special = special, .parse_special = special};
    CHECK_MSG(tok_encode(v, s, strlen(s), &o, b, &err) == SHIMMY_OK, "%s", err.message);
}

static bool same_ids(const tok_buf *b, json_t *want) {
    bool same = json_is_array(want) && b->n == json_array_size(want);
    for (size_t i = 0; same && i < b->n; i++)
        same = b->ids[i] == json_integer_value(json_array_get(want, i));
    return same;
}

static void print_ids(const char *what, const tok_buf *b) {
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < b->n && i < 40; i++) fprintf(stderr, " %d", b->ids[i]);
    fprintf(stderr, "\n");
}

static int n_seq, n_seq_pass;

static void expect_ids(const char *what, const tok_buf *got, json_t *want) {
    bool same = same_ids(got, want);
    n_seq++;
    n_seq_pass += same;
    if (!same) print_ids("got", got);
    CHECK_MSG(same, "%s: token ids differ", what);
}

static void rerank_pairs(const char *file, const tok_vocab *v, json_t *rr) {
    const char *q = json_string_value(json_object_get(rr, "query"));
    json_t *pairs = json_object_get(rr, "pairs");
    json_t *server = json_object_get(json_object_get(rr, "llama_server"), "tokens");
    CHECK(q && json_is_array(pairs) && json_is_array(server));
    if (!q || !json_is_array(pairs)) return;
    tok_buf got = {0};
    shimmy_error err;
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        json_t *p = json_array_get(pairs, i);
        const char *d = json_string_value(json_object_get(p, "document"));
        CHECK(d != NULL);
        if (!d) continue;
        char what[300];
        snprintf(what, sizeof what, "%s pair %zu (HF form)", file, i);
        got.n = 0;
        tok_encode_opts o = {.parse_special = true};
        CHECK(tok_encode_pair(v, q, strlen(q), d, strlen(d), TOK_PAIR_HF, &o, &got, &err) ==
              SHIMMY_OK);
        expect_ids(what, &got, json_object_get(p, "tokens"));

        /* what llama-embedding actually tokenized: the texts joined by the [SEP] text */
        char joined[4096];
        snprintf(joined, sizeof joined, "%s[SEP]%s", q, d);
        encode(v, joined, true, &got);
        snprintf(what, sizeof what, "%s pair %zu (joined text)", file, i);
        expect_ids(what, &got, json_object_get(p, "tokens"));

        snprintf(what, sizeof what, "%s pair %zu (llama-server form)", file, i);
        got.n = 0;
        CHECK(tok_encode_pair(v, q, strlen(q), d, strlen(d), TOK_PAIR_LLAMA_SERVER, NULL, &got,
                              &err) == SHIMMY_OK);
        expect_ids(what, &got, json_array_get(server, i));
    }
    tok_buf_free(&got);
}

static void embed_reference(const char *stem) {
    char rel[300], path[1024], mpath[1024];
    snprintf(rel, sizeof rel, "reference/%s.embed.json", stem);
    if (!test_data_path(rel, path, sizeof path)) {
        fprintf(stderr, "  %s absent, skipped\n", rel);
        return;
    }
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    CHECK_MSG(root != NULL, "%s: %s", path, je.text);
    if (!root) return;
    const char *model = json_string_value(json_object_get(root, "model_file"));
    snprintf(rel, sizeof rel, "models/%s", model ? model : "?");
    tok_vocab *v = NULL;
    shimmy_error err;
    if (model && test_data_path(rel, mpath, sizeof mpath))
        CHECK_MSG(tok_vocab_load_path(mpath, &v, &err) == SHIMMY_OK, "%s: %s", mpath, err.message);
    else
        fprintf(stderr, "  %s absent, its cases are skipped\n", rel);
    json_t *cases = json_object_get(root, "cases");
    tok_buf got = {0};
    for (size_t i = 0; v && i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *text = json_string_value(json_object_get(c, "text"));
        CHECK(text != NULL);
        if (!text) continue;
        encode(v, text, true, &got);
        char what[300];
        snprintf(what, sizeof what, "%s case %s", stem,
                 json_string_value(json_object_get(c, "name")));
        expect_ids(what, &got, json_object_get(c, "tokens"));
    }
    json_t *rr = json_object_get(root, "rerank");
    if (v && rr) rerank_pairs(stem, v, rr);
    tok_buf_free(&got);
    tok_vocab_free(v);
    json_decref(root);
}

/* The ids of a and b agree (both encoded without special tokens). */
static void same_as(const tok_vocab *v, const char *a, const char *b) {
    tok_buf x = {0}, y = {0};
    encode(v, a, false, &x);
    encode(v, b, false, &y);
    bool same = x.n == y.n && memcmp(x.ids, y.ids, x.n * sizeof *x.ids) == 0;
    if (!same) print_ids(a, &x), print_ids(b, &y);
    CHECK_MSG(same, "'%s' and '%s' should tokenize alike", a, b);
    tok_buf_free(&x);
    tok_buf_free(&y);
}

static int32_t id_of(const tok_vocab *v, const char *text) {
    int32_t id = tok_find(v, text, strlen(text));
    CHECK_MSG(id >= 0, "no token '%s'", text);
    return id;
}

static void bge_rules(void) {
    char path[1024];
    if (!test_data_path("vocab/ggml-vocab-bert-bge.gguf", path, sizeof path)) return;
    tok_vocab *v = NULL;
    shimmy_error err;
    CHECK_MSG(tok_vocab_load_path(path, &v, &err) == SHIMMY_OK, "%s", err.message);
    if (!v) return;
    CHECK(tok_vocab_algo(v) == TOK_ALGO_WPM);
    CHECK_EQ_INT(tok_bos(v), 101);
    CHECK_EQ_INT(tok_sep(v), 102);
    CHECK_EQ_INT(tok_unk(v), 100);
    CHECK_EQ_INT(tok_eos(v), -1);
    CHECK(tok_add_bos(v) && tok_add_sep(v) && !tok_add_eos(v));

    same_as(v, "H\xc3\xa9llo W\xc3\x96RLD", "hello world"); /* NFD base, lowercase */
    same_as(v, "cafe\xcc\x81", "cafe");                     /* a combining mark vanishes */
    same_as(v, "\xe6\x9d\xb1\xe4\xba\xac", "\xe6\x9d\xb1 \xe4\xba\xac"); /* CJK per character */
    same_as(v, "hi,there!", "hi , there !");                             /* punctuation */
    same_as(v, "a+b=c", "a + b = c");                                    /* ASCII symbols */
    same_as(v, "hel\x01lo wor\xe2\x80\x8bld", "hello world");            /* Cc and Cf characters */
    same_as(v, "hel\xfflo", "hello");                                /* invalid UTF-8 is dropped */
    same_as(v, " \t\n hello \xe3\x80\x80 world\r\n", "hello world"); /* Unicode whitespace */

    tok_buf b = {0};
    encode(v, "hello \xe2\x98\x83snowman", false, &b); /* U+2603 is in no piece */
    CHECK(b.n == 2 && b.ids[0] == id_of(v, "\xe2\x96\x81hello") && b.ids[1] == tok_unk(v));
    encode(v, "embeddings", false, &b); /* continuation pieces have no mark */
    CHECK(b.n >= 2 && b.ids[0] == id_of(v, "\xe2\x96\x81"
                                           "em"));
    encode(v, "", true, &b);
    CHECK(b.n == 2 && b.ids[0] == 101 && b.ids[1] == 102);
    encode(v, "a [MASK] b", true, &b); /* control-token text with parse_special */
    CHECK(b.n == 5 && b.ids[2] == 103);

    /* decoding joins continuations; the word marks become spaces, as in the engine */
    encode(v, "Embeddings are great, aren't they?", true, &b);
    char *text = NULL;
    size_t len = 0;
    CHECK(tok_decode(v, b.ids, b.n, false, &text, &len, &err) == SHIMMY_OK);
    CHECK_STR(text, " embeddings are great , aren ' t they ?");
    len = tok_clean_spaces(v, text, len);
    text[len] = '\0';
    CHECK_STR(text, " embeddings are great, aren't they?");
    free(text);
    CHECK(tok_decode(v, b.ids, b.n, true, &text, &len, &err) == SHIMMY_OK);
    CHECK(strncmp(text, "[CLS] embeddings", 16) == 0 && strstr(text, "?[SEP]") != NULL);
    free(text);
    tok_buf_free(&b);
    tok_vocab_free(v);
}

/* A small "bert" vocabulary with the given extra keys. */
static tok_vocab *small_vocab(const char *dir, bool lower_key, bool lower, bool strip_key,
                              bool strip, bool ids, bool add_sep_key) {
    static const char *const toks[] = {"[PAD]",
                                       "[UNK]",
                                       "[CLS]",
                                       "[SEP]",
                                       "\xe2\x96\x81Hello",
                                       "\xe2\x96\x81hello",
                                       "\xe2\x96\x81\xc3\xa9",
                                       "\xe2\x96\x81\x65", /* "e" */
                                       "x",
                                       "[MASK]"};
    int32_t types[10] = {3, 3, 3, 3, 1, 1, 1, 1, 1, 3};
    gguf_writer *w = NULL;
    shimmy_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/bert.gguf", dir);
    CHECK(gguf_writer_new(&w, &err) == SHIMMY_OK);
    if (!w) return NULL;
    gguf_writer_set_str(w, "tokenizer.ggml.model", "bert");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 10);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, 10);
    if (lower_key) gguf_writer_set_bool(w, "tokenizer.ggml.normalizer.lowercase", lower);
    if (strip_key) gguf_writer_set_bool(w, "tokenizer.ggml.normalizer.strip_accents", strip);
    if (ids) { /* the defaults (101, 102, 100) are out of range here */
        gguf_writer_set_u32(w, "tokenizer.ggml.cls_token_id", 2);
        gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3);
        gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1);
    }
    if (add_sep_key) gguf_writer_set_bool(w, "tokenizer.ggml.add_sep_token", false);
    CHECK_MSG(gguf_writer_write(w, path, &err) == SHIMMY_OK, "%s", err.message);
    gguf_writer_free(w);
    tok_vocab *v = NULL;
    CHECK_MSG(tok_vocab_load_path(path, &v, &err) == SHIMMY_OK, "%s", err.message);
    return v;
}

static void check_seq(const tok_vocab *v, const char *text, bool special, const int32_t *want,
                      size_t n) {
    tok_buf b = {0};
    if (!v) return;
    encode(v, text, special, &b);
    bool same = b.n == n && memcmp(b.ids, want, n * sizeof *want) == 0;
    if (!same) print_ids(text, &b);
    CHECK_MSG(same, "'%s' tokenized differently", text);
    tok_buf_free(&b);
}

static void metadata_keys(void) {
    char dir[512];
    CHECK(test_tmpdir(dir, sizeof dir) != NULL);
    /* defaults: lowercase and strip accents; no ids in range: no [CLS]/[SEP], no [UNK] */
    tok_vocab *v = small_vocab(dir, false, false, false, false, false, false);
    check_seq(v, "Hello \xc3\xa9", false, (const int32_t[]){5, 7}, 2);
    check_seq(v, "Hello zz", true, (const int32_t[]){5}, 1);
    tok_vocab_free(v);
    /* case kept, and so (by default) are accents */
    v = small_vocab(dir, true, false, false, false, true, false);
    check_seq(v, "Hello hello \xc3\xa9", true, (const int32_t[]){2, 4, 5, 6, 3}, 5);
    check_seq(v, "ex zz", false, (const int32_t[]){7, 8, 1}, 3);
    tok_vocab_free(v);
    /* lowercase, accents kept; add_sep_token false drops the final [SEP] */
    v = small_vocab(dir, true, true, true, false, true, true);
    check_seq(v, "HELLO \xc3\xa9", true, (const int32_t[]){2, 5, 6}, 3);
    if (v) {
        tok_buf b = {0};
        shimmy_error err;
        CHECK(tok_encode_pair(v, "hello", 5, "e", 1, TOK_PAIR_HF, NULL, &b, &err) == SHIMMY_OK);
        CHECK(b.n == 5 && b.ids[0] == 2 && b.ids[1] == 5 && b.ids[2] == 3 && b.ids[3] == 7 &&
              b.ids[4] == 3);
        b.n = 0; /* the server form: add_sep off, no EOS: nothing between the texts */
        CHECK(tok_encode_pair(v, "hello", 5, "e", 1, TOK_PAIR_LLAMA_SERVER, NULL, &b, &err) ==
              SHIMMY_OK);
        CHECK(b.n == 3 && b.ids[0] == 2 && b.ids[1] == 5 && b.ids[2] == 7);
        tok_buf_free(&b);
    }
    tok_vocab_free(v);
}

int main(void) {
    char dir[1024];
    test_require_data("reference/README.md", dir, sizeof dir);
    static const char *const stems[] = {"tiny-bert-cls-Q8_0", "tiny-bert-mean-F32",
                                        "tiny-bert-rerank-Q8_0", "tiny-nomic-bert-Q8_0",
                                        "tiny-qwen3-embed-F32-tokQ8"};
    for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++) embed_reference(stems[i]);
    printf("embedding references: %d/%d token sequences exact\n", n_seq_pass, n_seq);
    CHECK(n_seq >= 30);
    bge_rules();
    metadata_keys();
    return test_finish("tokenizer/wordpiece");
}
