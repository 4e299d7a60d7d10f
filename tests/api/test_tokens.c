/* Vocabularies and tokens through the public API on a fixture model: a vocabulary opened from
 * the file and the loaded model's agree, tokenize/detokenize round-trip, the flags do what they
 * say (BOS, special-token parsing, control tokens shown, U+FFFD for a cut character), pieces
 * report their full length, and bad input is an error value. */
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <string.h>

static char dir[256], path[512];

static void test_vocab_facts(const shimmy_vocab *v, const shimmy_vocab *mv) {
    CHECK_EQ_INT(shimmy_vocab_size(v), 512);
    CHECK_EQ_INT(shimmy_vocab_size(mv), 512);
    CHECK_EQ_INT(shimmy_vocab_bos(v), FIXTURE_BOS_ID);
    CHECK_EQ_INT(shimmy_vocab_eos(v), FIXTURE_EOS_ID);
    CHECK(shimmy_vocab_adds_bos(v));
    size_t len = 99;
    const char *t = shimmy_vocab_token_text(v, FIXTURE_BOS_ID, &len);
    CHECK(t && len == 3 && memcmp(t, "<s>", 3) == 0);
    CHECK(shimmy_vocab_token_text(v, 512, &len) == NULL && len == 0);
    CHECK(shimmy_vocab_token_text(v, -1, NULL) == NULL);
    for (int32_t id = 0; id < 512; id++) {
        size_t a, b;
        const char *ta = shimmy_vocab_token_text(v, id, &a),
                   *tb = shimmy_vocab_token_text(mv, id, &b);
        if (a != b || memcmp(ta, tb, a) != 0) {
            CHECK_MSG(0, "token %d differs between the file's and the model's vocabulary", id);
            break;
        }
    }
    CHECK_EQ_INT(shimmy_vocab_size(NULL), 0);
    CHECK_EQ_INT(shimmy_vocab_bos(NULL), -1);
}

static void test_round_trip(const shimmy_vocab *v) {
    const char *text = "the cat sat on the mat";
    int32_t *ids = NULL;
    size_t n = 0;
    shimmy_error err;
    CHECK_EQ_INT(
        shimmy_tokenize(v, text, strlen(text), SHIMMY_TOKENIZE_ADD_SPECIAL, &ids, &n, &err),
        SHIMMY_OK);
    CHECK(n >= 3 && ids && ids[0] == FIXTURE_BOS_ID);
    char *out = NULL;
    size_t len = 0;
    /* the text's own tokens give it back exactly (the leading-space rule drops the space the
     * tokenizer put before the first word) */
    CHECK_EQ_INT(shimmy_detokenize(v, ids + 1, n - 1, 0, &out, &len, &err), SHIMMY_OK);
    CHECK_MSG(out && len == strlen(text) && strcmp(out, text) == 0, "[%s]", out ? out : "");
    shimmy_free(out);
    CHECK_EQ_INT(shimmy_detokenize(v, ids, n, SHIMMY_DETOKENIZE_SPECIAL, &out, &len, &err),
                 SHIMMY_OK);
    CHECK_MSG(out && strncmp(out, "<s>", 3) == 0, "'%s'", out ? out : "(null)");
    shimmy_free(out);
    /* pieces joined are the text (after the leading-space rule) */
    char buf[64], joined[256] = "";
    for (size_t i = 1; i < n; i++) {
        size_t k = shimmy_token_piece(v, ids[i], false, buf, sizeof buf - 1);
        CHECK(k < sizeof buf);
        buf[k] = '\0';
        strncat(joined, buf, sizeof joined - strlen(joined) - 1);
    }
    CHECK_MSG(strstr(joined, "the cat sat") != NULL, "'%s'", joined);
    shimmy_free(ids);

    /* no ADD_SPECIAL: no BOS */
    CHECK_EQ_INT(shimmy_tokenize(v, text, strlen(text), 0, &ids, &n, &err), SHIMMY_OK);
    CHECK(n >= 2 && ids[0] != FIXTURE_BOS_ID);
    shimmy_free(ids);
    /* empty text: no ids, nothing to free */
    CHECK_EQ_INT(shimmy_tokenize(v, "", 0, 0, &ids, &n, &err), SHIMMY_OK);
    CHECK(n == 0 && ids == NULL);
}

static void test_special_and_utf8(const shimmy_vocab *v) {
    int32_t *ids = NULL;
    size_t n = 0;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_tokenize(v, "</s>", 4, SHIMMY_TOKENIZE_PARSE_SPECIAL, &ids, &n, &err),
                 SHIMMY_OK);
    CHECK(n == 1 && ids[0] == FIXTURE_EOS_ID);
    shimmy_free(ids);
    CHECK_EQ_INT(shimmy_tokenize(v, "</s>", 4, 0, &ids, &n, &err), SHIMMY_OK);
    CHECK(n > 1); /* plain text: the characters, not the control token */
    shimmy_free(ids);

    /* the byte token 0xC3 alone is half a character */
    const int32_t half[] = {3 + 0xC3};
    char *out = NULL, piece[4];
    size_t len = 0;
    CHECK_EQ_INT(shimmy_token_piece(v, half[0], false, piece, sizeof piece), 1);
    CHECK((unsigned char)piece[0] == 0xC3);
    CHECK_EQ_INT(shimmy_detokenize(v, half, 1, 0, &out, &len, &err), SHIMMY_OK);
    CHECK(len == 1 && (unsigned char)out[0] == 0xC3);
    shimmy_free(out);
    CHECK_EQ_INT(shimmy_detokenize(v, half, 1, SHIMMY_DETOKENIZE_VALID_UTF8, &out, &len, &err),
                 SHIMMY_OK);
    CHECK(len == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0);
    shimmy_free(out);

    /* a piece longer than the buffer reports its full length, writes only cap bytes */
    const int32_t bos = FIXTURE_BOS_ID;
    char small[2] = {'x', 'x'};
    CHECK_EQ_INT(shimmy_token_piece(v, bos, true, small, 1), 3);
    CHECK(small[0] == '<' && small[1] == 'x');
    CHECK_EQ_INT(shimmy_token_piece(v, bos, true, NULL, 0), 3);
    CHECK_EQ_INT(shimmy_token_piece(v, bos, false, small, 2), 0); /* control: nothing */
    CHECK_EQ_INT(shimmy_token_piece(v, 9999, true, small, 2), 0);
}

static void test_errors(const shimmy_vocab *v) {
    shimmy_error err;
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    CHECK_EQ_INT(shimmy_tokenize(NULL, "a", 1, 0, &ids, &n, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(ids == NULL && n == 0);
    CHECK_EQ_INT(shimmy_tokenize(v, NULL, 3, 0, &ids, &n, &err), SHIMMY_ERR_INVALID_ARG);
    const int32_t bad[] = {5, 512};
    char *out = (char *)1;
    size_t len = 9;
    CHECK_EQ_INT(shimmy_detokenize(v, bad, 2, 0, &out, &len, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(out == NULL && len == 0);
    CHECK_MSG(strstr(err.message, "vocabulary") != NULL, "%s", err.message);
    shimmy_vocab *w = (shimmy_vocab *)1;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.gguf", dir);
    CHECK(shimmy_vocab_open(missing, &w, &err) != SHIMMY_OK && w == NULL);
    CHECK_MSG(strstr(err.message, "missing.gguf") || strstr(err.where, "missing.gguf"), "%s",
              err.message);
    CHECK_EQ_INT(shimmy_vocab_open(NULL, &w, &err), SHIMMY_ERR_INVALID_ARG);
    shimmy_vocab_free(NULL);
    shimmy_free(NULL);
}

/* A reranker's (query, document) pair in both forms, and Qwen3-Embedding's appended EOS, on the
 * test-data models when present (testdata/reference/<stem>.embed.json hold the engine's ids). */
static void test_embedding_forms(void) {
    char p[1024];
    shimmy_error err;
    shimmy_vocab *v = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (test_data_path("models/tiny-bert-rerank-Q8_0.gguf", p, sizeof p) &&
        shimmy_vocab_open(p, &v, &err) == SHIMMY_OK) {
        CHECK_EQ_INT(shimmy_vocab_sep(v), 102);
        CHECK(shimmy_vocab_adds_bos(v) && !shimmy_vocab_adds_eos(v));
        static const int32_t hf[] = {101, 7592, 102, 2088, 102};
        CHECK_EQ_INT(shimmy_tokenize_pair(v, "Hello", 5, "world", 5, 0, &ids, &n, &err), SHIMMY_OK);
        CHECK(n == 5 && memcmp(ids, hf, sizeof hf) == 0);
        shimmy_free(ids);
        CHECK_EQ_INT(shimmy_tokenize_pair(v, "Hello", 5, "world", 5,
                                          SHIMMY_TOKENIZE_PAIR_LLAMA_SERVER, &ids, &n, &err),
                     SHIMMY_OK);
        CHECK(n == 4 && memcmp(ids, hf, 4 * sizeof *ids) == 0);
        shimmy_free(ids);
        CHECK_EQ_INT(shimmy_tokenize_pair(v, NULL, 3, "x", 1, 0, &ids, &n, &err),
                     SHIMMY_ERR_INVALID_ARG);
        CHECK(ids == NULL && n == 0);
        shimmy_vocab_free(v);
    }
    v = NULL;
    if (test_data_path("models/tiny-qwen3-embed-F32-tokQ8.gguf", p, sizeof p) &&
        shimmy_vocab_open(p, &v, &err) == SHIMMY_OK) {
        CHECK(!shimmy_vocab_adds_bos(v) && shimmy_vocab_adds_eos(v));
        CHECK_EQ_INT(shimmy_tokenize(v, "Hello", 5, SHIMMY_TOKENIZE_ADD_SPECIAL, &ids, &n, &err),
                     SHIMMY_OK);
        CHECK(n == 2 && ids[0] == 9707 && ids[1] == 151643 && ids[1] == shimmy_vocab_eos(v));
        shimmy_free(ids);
        shimmy_vocab_free(v);
    }
}

static void test_machine(void) {
    CHECK(shimmy_default_threads() >= 1);
    const char *isa = shimmy_cpu_isa();
    CHECK(isa && *isa);
}

int main(void) {
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    shimmy_error err;
    shimmy_vocab *v = NULL;
    CHECK_EQ_INT(shimmy_vocab_open(path, &v, &err), SHIMMY_OK);
    shimmy_spec *spec = NULL;
    shimmy_model *model = NULL;
    shimmy_model_config cfg = SHIMMY_MODEL_CONFIG(.name = "fixture", .base_path = path);
    CHECK_EQ_INT(shimmy_spec_from_config(&cfg, &spec, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_model_load(spec, &model, &err), SHIMMY_OK);
    shimmy_spec_free(spec);
    if (!v || !model) return test_finish("api/tokens");
    CHECK(shimmy_model_vocab(NULL) == NULL);

    test_vocab_facts(v, shimmy_model_vocab(model));
    test_round_trip(v);
    test_round_trip(shimmy_model_vocab(model));
    test_special_and_utf8(v);
    test_errors(v);
    test_embedding_forms();
    test_machine();

    shimmy_model_unref(model);
    shimmy_vocab_free(v);
    test_rm_rf(dir);
    return test_finish("api/tokens");
}
