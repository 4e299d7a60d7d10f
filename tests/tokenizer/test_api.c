/* The tokenizer API beyond plain encoding: special tokens and literal spans, BOS/EOS, the
 * end-of-generation set, pieces, clean-up of spaces, the streaming decoder on split characters,
 * and clear errors for malformed or unsupported tokenizer metadata. */
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <pthread.h>

/* Each test vocabulary is loaded once and shared by the cases (freed at the end). */
static struct {
    const char *rel;
    tok_vocab *v;
} loaded[4];

static tok_vocab *load(const char *rel) {
    size_t i = 0;
    for (; i < 4 && loaded[i].rel; i++)
        if (strcmp(loaded[i].rel, rel) == 0) return loaded[i].v;
    char path[1024];
    test_require_data(rel, path, sizeof path);
    tok_vocab *v = NULL;
    shimmy_error err;
    CHECK_MSG(tok_vocab_load_path(path, &v, &err) == SHIMMY_OK, "%s", err.message);
    if (!v || i == 4) exit(test_finish("tokenizer/api"));
    loaded[i].rel = rel;
    loaded[i].v = v;
    return v;
}

static int32_t id_of(const tok_vocab *v, const char *text) {
    int32_t id = tok_find(v, text, strlen(text));
    CHECK_MSG(id >= 0, "no token '%s'", text);
    return id;
}

static void encode(const tok_vocab *v, const char *s, const tok_encode_opts *o, tok_buf *b) {
    shimmy_error err;
    b->n = 0;
    CHECK_MSG(tok_encode(v, s, strlen(s), o, b, &err) == SHIMMY_OK, "%s", err.message);
}

/* ChatML special tokens with qwen2: parsed only when asked, never inside literal spans. */
static void test_special_qwen(void) {
    tok_vocab *v = load("vocab/ggml-vocab-qwen2.gguf");
    int32_t im_start = id_of(v, "<|im_start|>"), im_end = id_of(v, "<|im_end|>");
    CHECK(tok_is_control(v, im_start) && tok_is_control(v, im_end));
    CHECK(tok_is_eog(v, im_end));
    CHECK(tok_is_eog(v, id_of(v, "<|endoftext|>")));
    CHECK(!tok_is_eog(v, im_start));
    CHECK(!tok_is_eog(v, -1) && !tok_is_eog(v, tok_n_vocab(v)));
    CHECK(!tok_add_bos(v)); /* qwen2 adds no BOS */

    const char *text = "<|im_start|>user\nHi<|im_end|>";
    tok_buf a = {0}, b = {0}, c = {0};
    tok_encode_opts parse = {.add_special = true, .parse_special = true};
    encode(v, text, &parse, &a);
    encode(v, "user\nHi", NULL, &b);
    CHECK(a.n == b.n + 2 && a.ids[0] == im_start && a.ids[a.n - 1] == im_end);
    CHECK(a.n >= 2 && memcmp(a.ids + 1, b.ids, b.n * sizeof *b.ids) == 0);

    /* without parse_special the control text is ordinary text */
    encode(v, text, NULL, &c);
    for (size_t i = 0; i < c.n; i++) CHECK(c.ids[i] != im_start && c.ids[i] != im_end);

    /* a literal span over the content keeps "<|im_end|>" typed by a user as text */
    const char *chat = "<|im_start|>user\nsay <|im_end|> please<|im_end|>";
    size_t cb = strlen("<|im_start|>user\n"), ce = strlen(chat) - strlen("<|im_end|>");
    tok_span lit = {cb, ce};
    tok_encode_opts spans = {
        .add_special = true, .parse_special = true, .literal = &lit, .n_literal = 1};
    encode(v, chat, &spans, &a);
    char content[64];
    snprintf(content, sizeof content, "%.*s", (int)(ce - cb), chat + cb);
    encode(v, content, NULL, &b);
    /* the template's newline after <|im_start|>user is outside the span but the same fragment */
    encode(v, "user\nsay <|im_end|> please", NULL, &c);
    CHECK(a.n == c.n + 2 && a.ids[0] == im_start && a.ids[a.n - 1] == im_end);
    CHECK(a.n >= 2 && memcmp(a.ids + 1, c.ids, c.n * sizeof *c.ids) == 0);
    size_t n_end = 0;
    for (size_t i = 0; i < a.n; i++) n_end += a.ids[i] == im_end;
    CHECK_EQ_INT(n_end, 1);

    /* spans out of range are refused */
    tok_span bad = {3, 1000};
    tok_encode_opts o_bad = {.literal = &bad, .n_literal = 1};
    shimmy_error err;
    size_t n0 = a.n;
    CHECK(tok_encode(v, "abc", 3, &o_bad, &a, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(a.n == n0);
    CHECK(strstr(err.message, "literal") != NULL);

    /* clean_spaces is off for qwen2: text is returned unchanged */
    char s[] = "a , b 's";
    CHECK_EQ_INT(tok_clean_spaces(v, s, strlen(s)), strlen("a , b 's"));
    tok_buf_free(&a);
    tok_buf_free(&b);
    tok_buf_free(&c);
}

/* Llama 3: BOS added, <|eot_id|> ends generation, longest special text wins, clean-up. */
static void test_special_llama3(void) {
    tok_vocab *v = load("vocab/ggml-vocab-llama-bpe.gguf");
    int32_t bos = id_of(v, "<|begin_of_text|>"), eot = id_of(v, "<|eot_id|>");
    CHECK_EQ_INT(tok_bos(v), bos);
    CHECK(tok_add_bos(v) && !tok_add_eos(v));
    CHECK(tok_is_eog(v, eot) && tok_is_eog(v, tok_eos(v)));
    CHECK_EQ_INT(tok_eot(v), eot);
    CHECK(!tok_is_eog(v, bos));
    CHECK_STR(tok_vocab_pre(v), "llama-bpe");
    /* the memory report covers at least the strings and the merge table, and stays in budget */
    CHECK(tok_vocab_bytes(v) > (size_t)tok_n_vocab(v) * 16 && tok_vocab_bytes(v) < (30u << 20));
    CHECK(tok_vocab_algo(v) == TOK_ALGO_BPE);

    tok_buf a = {0}, b = {0};
    tok_encode_opts add = {.add_special = true};
    encode(v, "Hello", &add, &a);
    encode(v, "Hello", NULL, &b);
    CHECK(a.n == b.n + 1 && a.ids[0] == bos);

    /* an explicit BOS in the text is kept: the engine warns but does not deduplicate */
    tok_encode_opts parse = {.add_special = true, .parse_special = true};
    encode(v, "<|begin_of_text|>Hi<|eot_id|>", &parse, &a);
    CHECK(a.n >= 4 && a.ids[0] == bos && a.ids[1] == bos && a.ids[a.n - 1] == eot);

    /* the newline token */
    encode(v, "\n", NULL, &b);
    CHECK(b.n == 1 && tok_nl(v) == b.ids[0]);

    /* pieces: control tokens are hidden unless asked for */
    char buf[64];
    CHECK_EQ_INT(tok_piece(v, eot, false, buf, sizeof buf), 0);
    size_t n = tok_piece(v, eot, true, buf, sizeof buf);
    CHECK(n == strlen("<|eot_id|>") && memcmp(buf, "<|eot_id|>", n) == 0);
    CHECK_EQ_INT(tok_piece(v, -5, true, buf, sizeof buf), 0);
    /* a too-small buffer gets a prefix and the full length is reported */
    int32_t hello = b.n ? b.ids[0] : 0;
    encode(v, " world", NULL, &b);
    n = tok_piece(v, b.ids[0], false, buf, 2);
    CHECK(n == 6 && memcmp(buf, " w", 2) == 0);
    (void)hello;
    CHECK(tok_max_piece(v) >= 10);

    /* the engine's clean_up_tokenization_spaces, on for llama-bpe */
    char s[] = "Hi , there . It 's ok ' yes ' I 've";
    size_t m = tok_clean_spaces(v, s, strlen(s));
    /* by the rules: " ," and " ." lose the space; " ' " loses both (twice here, the second
     * quote again has a space on each side); " 's" and " 've" lose theirs */
    const char *want = "Hi, there. It's ok'yes'I've";
    CHECK_MSG(m == strlen(want) && memcmp(s, want, m) == 0, "got '%.*s'", (int)m, s);

    /* decode: ids out of range are an error naming the position */
    int32_t ids[] = {bos, 999999};
    char *out = NULL;
    size_t len;
    shimmy_error err;
    CHECK(tok_decode(v, ids, 2, true, &out, &len, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(out == NULL && strstr(err.message, "position 1") != NULL);
    CHECK(tok_decode(v, ids, 1, true, &out, &len, &err) == SHIMMY_OK);
    CHECK(out && len == strlen("<|begin_of_text|>") && strcmp(out, "<|begin_of_text|>") == 0);
    free(out);
    CHECK(tok_decode(v, NULL, 0, false, &out, &len, &err) == SHIMMY_OK);
    CHECK(out && len == 0 && out[0] == '\0');
    free(out);
    tok_buf_free(&a);
    tok_buf_free(&b);
}

/* SPM: dummy prefix after specials, BOS, leading-space rule, streaming of split characters. */
static void test_spm(void) {
    tok_vocab *v = load("vocab/ggml-vocab-llama-spm.gguf");
    CHECK(tok_vocab_algo(v) == TOK_ALGO_SPM && tok_add_space_prefix(v));
    CHECK(tok_add_bos(v) && tok_bos(v) == id_of(v, "<s>") && tok_eos(v) == id_of(v, "</s>"));
    CHECK(tok_is_eog(v, tok_eos(v)));
    CHECK_EQ_INT(tok_unk(v), id_of(v, "<unk>"));
    CHECK_EQ_INT(tok_nl(v), id_of(v, "<0x0A>"));

    tok_buf a = {0}, b = {0}, c = {0};
    tok_encode_opts parse = {.add_special = true, .parse_special = true};
    /* "</s>" splits the text and the next fragment gets its own dummy-prefix space */
    encode(v, "Hi</s>there", &parse, &a);
    encode(v, "Hi", NULL, &b);
    encode(v, "there", NULL, &c);
    CHECK(a.n == 1 + b.n + 1 + c.n && a.ids[0] == tok_bos(v) && a.ids[1 + b.n] == tok_eos(v));
    CHECK(a.n >= 3 && memcmp(a.ids + 2 + b.n, c.ids, c.n * sizeof *c.ids) == 0);

    /* empty text: only BOS */
    encode(v, "", &parse, &a);
    CHECK(a.n == 1 && a.ids[0] == tok_bos(v));

    /* decode drops the dummy prefix of the first token only */
    encode(v, "Hello world", NULL, &a);
    char *out = NULL;
    size_t len;
    shimmy_error err;
    CHECK(tok_decode(v, a.ids, a.n, false, &out, &len, &err) == SHIMMY_OK);
    CHECK_STR(out, "Hello world");
    free(out);
    /* after a BOS the first token is BOS: its empty piece takes the rule, the space stays */
    encode(v, "Hello", &parse, &a);
    CHECK(tok_decode(v, a.ids, a.n, false, &out, &len, &err) == SHIMMY_OK);
    CHECK_STR(out, " Hello");
    free(out);

    /* a 4-byte character as byte tokens: nothing until it completes */
    const char *emoji = "\xf0\x9f\xa6\x99"; /* U+1F999, not a piece: byte fallback */
    encode(v, emoji, NULL, &a);
    CHECK(a.n == 5); /* "▁" then four bytes */
    tok_decoder d;
    tok_decoder_init(&d, v, false, true);
    char chunk[256];
    CHECK(tok_decoder_max_out(v) <= sizeof chunk);
    size_t got[5];
    for (size_t i = 0; i < a.n && i < 5; i++)
        got[i] = tok_decoder_push(&d, a.ids[i], chunk, sizeof chunk);
    CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0 && got[3] == 0 && got[4] == 4);
    CHECK(memcmp(chunk, emoji, 4) == 0);
    CHECK_EQ_INT(tok_decoder_flush(&d, chunk, sizeof chunk), 0);
    /* a truncated character is flushed as one U+FFFD */
    tok_decoder_init(&d, v, false, false);
    CHECK_EQ_INT(tok_decoder_push(&d, a.ids[1], chunk, sizeof chunk), 0);
    CHECK_EQ_INT(tok_decoder_push(&d, a.ids[2], chunk, sizeof chunk), 0);
    CHECK_EQ_INT(tok_decoder_flush(&d, chunk, sizeof chunk), 3);
    CHECK(memcmp(chunk, "\xef\xbf\xbd", 3) == 0);
    /* a lead byte followed by ASCII: U+FFFD then the ASCII at once */
    tok_decoder_init(&d, v, false, false);
    CHECK_EQ_INT(tok_decoder_push(&d, a.ids[1], chunk, sizeof chunk), 0);
    int32_t x = id_of(v, "x");
    CHECK_EQ_INT(tok_decoder_push(&d, x, chunk, sizeof chunk), 4);
    CHECK(memcmp(chunk, "\xef\xbf\xbdx", 4) == 0);
    tok_buf_free(&a);
    tok_buf_free(&b);
    tok_buf_free(&c);
}

/* Metadata problems are errors that name the key; nothing crashes. */
static void write_vocab(const char *path, const char *model, const char *pre, int n_tokens,
                        bool merges, int n_scores) {
    gguf_writer *w = NULL;
    shimmy_error err;
    CHECK(gguf_writer_new(&w, &err) == SHIMMY_OK);
    if (!w) return;
    if (model) gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    const char *toks[] = {"<unk>", "<s>", "</s>",     "a",
                          "b",     "ab",  "\xc4\xa0", "\xc4\xa0\x61"}; /* "Ġa" */
    if (n_tokens) gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (size_t)n_tokens);
    float scores[8] = {0, 0, 0, -1, -2, -0.5f, -3, -0.25f};
    if (n_scores)
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, (size_t)n_scores);
    if (merges) {
        const char *m[] = {"a b", "\xc4\xa0 a"};
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, 2);
    }
    CHECK_MSG(gguf_writer_write(w, path, &err) == SHIMMY_OK, "%s", err.message);
    gguf_writer_free(w);
}

static shimmy_status try_load(const char *path, shimmy_error *err) {
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    shimmy_status st = gguf_open(path, &f, err);
    if (st == SHIMMY_OK) st = tok_vocab_load(f, &v, err);
    CHECK((st == SHIMMY_OK) == (v != NULL));
    tok_vocab_free(v);
    gguf_close(f);
    return st;
}

static void test_bad_metadata(void) {
    char dir[512], path[600];
    CHECK(test_tmpdir(dir, sizeof dir) != NULL);
    snprintf(path, sizeof path, "%s/v.gguf", dir);
    shimmy_error err;

    write_vocab(path, NULL, NULL, 8, false, 0);
    CHECK(try_load(path, &err) == SHIMMY_ERR_FORMAT);
    CHECK(strstr(err.message, "tokenizer.ggml.model") != NULL);

    write_vocab(path, "rwkv", NULL, 8, false, 0); /* not implemented */
    CHECK(try_load(path, &err) == SHIMMY_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "'rwkv'") != NULL);

    write_vocab(path, "llama", NULL, 0, false, 0);
    CHECK(try_load(path, &err) == SHIMMY_ERR_FORMAT);
    CHECK(strstr(err.message, "tokenizer.ggml.tokens") != NULL);

    write_vocab(path, "llama", NULL, 8, false, 5); /* scores of the wrong length */
    CHECK(try_load(path, &err) == SHIMMY_ERR_FORMAT);
    CHECK(strstr(err.message, "tokenizer.ggml.scores") != NULL);

    write_vocab(path, "gpt2", "gpt-2", 8, false, 0);
    CHECK(try_load(path, &err) == SHIMMY_ERR_FORMAT);
    CHECK(strstr(err.message, "tokenizer.ggml.merges") != NULL);

    write_vocab(path, "gpt2", "no-such-pre", 8, true, 0);
    CHECK(try_load(path, &err) == SHIMMY_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "no-such-pre") != NULL);

    /* a minimal SPM vocabulary without byte tokens: unknown characters become <unk> */
    write_vocab(path, "llama", NULL, 8, false, 8);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK(tok_vocab_load(f, &v, &err) == SHIMMY_OK);
    if (v) {
        tok_buf b = {0};
        CHECK(tok_encode(v, "abz", 3, NULL, &b, &err) == SHIMMY_OK);
        /* "▁abz": "ab" merges; "▁" (3 bytes) and "z" have neither piece nor byte token, so
         * each of their bytes becomes <unk> (id 0) */
        int32_t want[] = {0, 0, 0, 5, 0};
        CHECK(b.n == 5 && memcmp(b.ids, want, sizeof want) == 0);
        CHECK_EQ_INT(tok_unk(v), 0);
        tok_buf_free(&b);
    }
    tok_vocab_free(v);
    gguf_close(f);

    /* a minimal BPE vocabulary: merges apply by rank, the default pre-tokenizer is used */
    write_vocab(path, "gpt2", NULL, 8, true, 0);
    f = NULL;
    v = NULL;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK(tok_vocab_load(f, &v, &err) == SHIMMY_OK);
    if (v) {
        CHECK_STR(tok_vocab_pre(v), "default");
        tok_buf b = {0};
        CHECK(tok_encode(v, "ab a", 4, NULL, &b, &err) == SHIMMY_OK);
        CHECK(b.n == 2 && b.ids[0] == 5 && b.ids[1] == 7); /* "ab", "Ġa" */
        tok_buf_free(&b);
    }
    tok_vocab_free(v);
    gguf_close(f);

    /* a byte-level token outside the byte alphabet decodes the engine's way, "[UNK_BYTE_0x..."
     * plus the token text per such character, but a long one stays bounded */
    {
        gguf_writer *w = NULL;
        CHECK(gguf_writer_new(&w, &err) == SHIMMY_OK);
        size_t n_euro = 3000;
        char *big = malloc(3 * n_euro + 1);
        for (size_t i = 0; i < n_euro; i++) memcpy(big + 3 * i, "\xe2\x82\xac", 3);
        big[3 * n_euro] = '\0';
        const char *toks[] = {"a", "\xe2\x82\xac", big};
        const char *merges[] = {"a a"};
        gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
        CHECK(gguf_writer_write(w, path, &err) == SHIMMY_OK);
        gguf_writer_free(w);
        free(big);
        tok_vocab *u = NULL;
        CHECK(tok_vocab_load_path(path, &u, &err) == SHIMMY_OK);
        if (u) {
            char buf[64];
            size_t n = tok_piece(u, 1, false, buf, sizeof buf);
            const char *want = "[UNK_BYTE_0xe282ac\xe2\x82\xac]";
            CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
            CHECK(tok_piece(u, 2, false, NULL, 0) < 4096 + 12 + 6 + 3 * n_euro + 1);
            CHECK(tok_max_piece(u) < 20000);
        }
        tok_vocab_free(u);
    }
    test_rm_rf(dir);
}

/* Long runs of one character class: one huge word or segment, long regex matches. */
static void test_long_runs(void) {
    static const char *const vocabs[] = {"vocab/ggml-vocab-llama-bpe.gguf",
                                         "vocab/ggml-vocab-qwen2.gguf",
                                         "vocab/ggml-vocab-llama-spm.gguf"};
    static const char fill[] = {'a', ' ', '7', '\n', '.'};
    size_t n = 100000;
    char *text = malloc(n);
    for (size_t vi = 0; vi < 3; vi++) {
        tok_vocab *v = load(vocabs[vi]);
        for (size_t k = 0; k < sizeof fill; k++) {
            memset(text, fill[k], n);
            tok_buf b = {0};
            shimmy_error err;
            CHECK(tok_encode(v, text, n, NULL, &b, &err) == SHIMMY_OK);
            CHECK(b.n > 0 && b.n <= n + 1);
            char *out = NULL;
            size_t len = 0;
            CHECK(tok_decode(v, b.ids, b.n, false, &out, &len, &err) == SHIMMY_OK);
            CHECK_MSG(out && len == n && memcmp(out, text, n) == 0, "%s: run of '%c'", vocabs[vi],
                      fill[k]);
            free(out);
            tok_buf_free(&b);
        }
    }
    free(text);
}

/* One vocabulary, several threads: same ids as a single thread gets. */
typedef struct job {
    const tok_vocab *v;
    const char *text;
    tok_buf out;
    int rc;
} job;

static void *encode_job(void *arg) {
    job *j = arg;
    tok_encode_opts o = {.add_special = true, .parse_special = true};
    for (int r = 0; r < 20 && j->rc == 0; r++) {
        j->out.n = 0;
        j->rc = tok_encode(j->v, j->text, strlen(j->text), &o, &j->out, NULL);
    }
    return NULL;
}

static void test_threads(void) {
    tok_vocab *v = load("vocab/ggml-vocab-qwen2.gguf");
    const char *text =
        "<|im_start|>user\nThe quick brown fox, 12345 times; \xe4\xbd\xa0\xe5\xa5\xbd "
        "\xf0\x9f\xa6\x8a!<|im_end|>\n";
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){v, text, {0}, 0};
        CHECK(pthread_create(&th[i], NULL, encode_job, &jobs[i]) == 0);
    }
    tok_buf ref = {0};
    tok_encode_opts o = {.add_special = true, .parse_special = true};
    encode(v, text, &o, &ref);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].rc == SHIMMY_OK);
        CHECK(jobs[i].out.n == ref.n &&
              memcmp(jobs[i].out.ids, ref.ids, ref.n * sizeof *ref.ids) == 0);
        tok_buf_free(&jobs[i].out);
    }
    tok_buf_free(&ref);
    /* a text over the limit is refused before anything is allocated for it */
    shimmy_error err;
    tok_buf b = {0};
    CHECK(tok_encode(v, text, TOK_MAX_TEXT + 1, NULL, &b, &err) == SHIMMY_ERR_TOO_LARGE);
    CHECK(b.n == 0);
}

int main(void) {
    test_threads();
    test_long_runs();
    test_special_qwen();
    test_special_llama3();
    test_spm();
    test_bad_metadata();
    for (size_t i = 0; i < 4; i++) tok_vocab_free(loaded[i].v);
    return test_finish("tokenizer/api");
}
