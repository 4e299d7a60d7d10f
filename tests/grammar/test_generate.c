/* Constrained generation through the public library on random-weight models (the best
 * adversary: the mask does all the work). Every finished output is checked by an oracle that
 * shares no code with the matcher: jansson for JSON, PCRE2 for regular grammars; outputs cut by
 * max_tokens must be a prefix of a match (PCRE2 partial matching). Also: seeds reproduce,
 * invalid grammars fail before generating, grammar_after leaves the text before the literal
 * free. */
#include "engine/constrain.h"
#include "shimmy.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef struct text {
    char buf[4096];
    size_t len;
} text;

static shimmy_next collect(const char *piece, size_t len, void *user) {
    text *t = user;
    if (t->len + len < sizeof t->buf) memcpy(t->buf + t->len, piece, len), t->len += len;
    t->buf[t->len] = '\0';
    return SHIMMY_CONTINUE;
}

static shimmy_model *load(const char *file) {
    char path[512];
    const char *p = test_data_path(file, path, sizeof path);
    if (!p) return NULL;
    shimmy_model_config c = {.name = "g", .base_path = p, .ctx_len = 256, .threads = 1};
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_error err = {0};
    if (shimmy_spec_from_config(&c, &spec, &err) || shimmy_model_load(spec, &m, &err))
        fprintf(stderr, "cannot load %s: %s\n", file, err.message);
    shimmy_spec_free(spec);
    return m;
}

static const char *const record_gbnf =
    "root ::= \"{\" ws \"\\\"name\\\":\" ws str \",\" ws \"\\\"age\\\":\" ws num \",\" ws "
    "\"\\\"tags\\\":\" ws \"[\" (str (\",\" ws str){0,3})? \"]\" ws \"}\"\n"
    "str ::= \"\\\"\" [a-zA-Z0-9 \\u00e9\\u4e00-\\u4e0f]{0,12} \"\\\"\"\n"
    "num ::= \"-\"? [1-9] [0-9]{0,3}\n"
    "ws ::= \" \"?\n";

/* the record grammar's output, checked with jansson: the keys, their types, the bounds */
static bool record_ok(const char *s) {
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    bool ok = j && json_is_object(j) && json_object_size(j) == 3 &&
              json_is_string(json_object_get(j, "name")) &&
              json_is_integer(json_object_get(j, "age")) &&
              json_is_array(json_object_get(j, "tags")) &&
              json_array_size(json_object_get(j, "tags")) <= 4 &&
              json_integer_value(json_object_get(j, "age")) != 0;
    json_decref(j);
    return ok;
}

static const struct {
    const char *gbnf, *regex;
} regular[] = {
    {"root ::= [A-Z] [a-z]{2,8} (\" \" [0-9]{1,3}){1,3} \".\"",
     "[A-Z][a-z]{2,8}( [0-9]{1,3}){1,3}\\."},
    {"root ::= \"yes\" | \"no\" | \"maybe\"", "yes|no|maybe"},
    {"root ::= ([\\u00e0-\\u00ff] | \"\\u20ac\" | \"\\U0001F600\" | [xyz]){3,6} \"!\"",
     "([\\x{e0}-\\x{ff}]|\\x{20ac}|\\x{1F600}|[xyz]){3,6}!"},
};

static int pcre_verdict(const char *regex, const char *s, size_t n) {
    char pat[512];
    snprintf(pat, sizeof pat, "^(?:%s)\\z", regex);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (!re) return -2;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int v = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL) >= 0 ? 1 : -1;
    if (v < 0 && (n == 0 || pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_PARTIAL_HARD, md, NULL) ==
                                PCRE2_ERROR_PARTIAL))
        v = 0;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return v;
}

static void generate_checked(shimmy_model *m, const char *name, int seeds) {
    static const char *const prompts[] = {"Hello", "The answer is", "{"};
    for (int seed = 0; seed < seeds; seed++) {
        shimmy_gen_options o = {.max_tokens = 120,
                                .temperature = seed == 0 ? 0.0f : 1.0f + 0.2f * (float)(seed % 3),
                                .top_k = seed % 2 ? 0 : 50,
                                .top_p = seed % 3 == 1 ? 0.9f : 0.0f,
                                .repeat_penalty = seed % 4 == 3 ? 1.3f : 0.0f,
                                .seed = (uint32_t)seed * 77u + 1u};
        const char *prompt = prompts[seed % 3];
        text t = {0};
        shimmy_result r = {0};
        shimmy_error err = {0};
        o.grammar = record_gbnf;
        shimmy_status st = shimmy_generate(m, prompt, &o, collect, &t, &r, &err);
        CHECK_MSG(st == SHIMMY_OK, "%s seed %d: %s", name, seed, err.message);
        CHECK_MSG(r.finish == SHIMMY_FINISH_STOP, "%s seed %d: finish %d after %d tokens: %s", name,
                  seed, r.finish, r.completion_tokens, t.buf);
        if (r.finish == SHIMMY_FINISH_STOP)
            CHECK_MSG(record_ok(t.buf), "%s seed %d: not a valid record: %s", name, seed, t.buf);
        for (size_t i = 0; i < sizeof regular / sizeof regular[0]; i++) {
            text u = {0};
            o.grammar = regular[i].gbnf;
            o.max_tokens = seed == 2 ? 3 : 60; /* seed 2: cut short, a prefix must remain */
            st = shimmy_generate(m, prompt, &o, collect, &u, &r, &err);
            CHECK_MSG(st == SHIMMY_OK, "%s: %s", name, err.message);
            const int v = pcre_verdict(regular[i].regex, u.buf, u.len);
            if (r.finish == SHIMMY_FINISH_STOP)
                CHECK_MSG(v == 1, "%s seed %d grammar %zu: '%s' does not match", name, seed, i,
                          u.buf);
            else
                CHECK_MSG(r.finish == SHIMMY_FINISH_LENGTH && v >= 0 && r.completion_tokens == 3,
                          "%s seed %d grammar %zu: finish %d, '%s' (verdict %d)", name, seed, i,
                          r.finish, u.buf, v);
        }
    }
}

static void test_models(void) {
    static const char *const files[] = {"models/tiny-llama-spm-F32.gguf",
                                        "models/tiny-qwen2-Q4_0.gguf",
                                        "models/tiny-llama-bpe-Q4_0.gguf"};
#ifdef SHIMMY_TEST_SANITIZED
    const int seeds = 2;
#else
    const int seeds = 3; /* seed 0 greedy, 1 and 2 sampled (2 also cut short by max_tokens) */
#endif
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        shimmy_model *m = load(files[f]);
        if (!m) {
            fprintf(stderr, "skipping %s: not in SHIMMY_TESTDATA\n", files[f]);
            continue;
        }
        generate_checked(m, files[f], f == 0 ? seeds : seeds - 1);
        /* the same seed gives the same constrained text */
        shimmy_gen_options o = {
            .max_tokens = 50, .temperature = 1.0f, .seed = 5, .grammar = record_gbnf};
        text a = {0}, b = {0};
        CHECK(shimmy_generate(m, "Hi", &o, collect, &a, NULL, NULL) == SHIMMY_OK);
        CHECK(shimmy_generate(m, "Hi", &o, collect, &b, NULL, NULL) == SHIMMY_OK);
        CHECK_STR(a.buf, b.buf);
        /* errors come before any text, with the position */
        shimmy_error err = {0};
        text c = {0};
        o.grammar = "root ::= \"a\" | [z-a]";
        CHECK(shimmy_generate(m, "Hi", &o, collect, &c, NULL, &err) == SHIMMY_ERR_INVALID_ARG);
        CHECK_STR(err.where, "grammar");
        CHECK(strstr(err.message, "line 1, column 19") != NULL);
        CHECK_EQ_INT(c.len, 0);
        o.json_schema = "{\"type\":\"object\"}";
        o.grammar = "root ::= \"a\"";
        CHECK(shimmy_generate(m, "Hi", &o, collect, &c, NULL, &err) == SHIMMY_ERR_INVALID_ARG);
        shimmy_model_unref(m);
    }
}

/* grammar_after at the engine level, with logits chosen by the test: greedy picks the largest */
static void test_after(void) {
    char path[512];
    const char *p = test_data_path("models/tiny-llama-spm-F32.gguf", path, sizeof path);
    if (!p) return;
    engine_model *em = NULL;
    CHECK(engine_model_open(p, NULL, &em, NULL) == SHIMMY_OK);
    if (!em) return;
    const tok_vocab *v = engine_model_vocab(em);
    const int32_t n = tok_n_vocab(v);
    float *logits = calloc((size_t)n, sizeof *logits);
    grammar *g = NULL;
    CHECK(grammar_compile("root ::= [0-9]+", 15, &g, NULL) == SHIMMY_OK);
    engine_gen_params gp;
    engine_gen_params_default(&gp);
    gp.sampling.temperature = 0.0f;
    gp.grammar = g;
    gp.grammar_after = "END";
    engine_constraint c;
    sampler *smp = NULL;
    CHECK(sampler_chain_new(&gp.sampling, n, &smp, NULL) == SHIMMY_OK);
    CHECK(engine_constraint_init(&c, em, &gp, NULL) == SHIMMY_OK);
    /* free text first: letters are fine before the literal */
    const char *const want[] = {"▁hello", "▁EN", "D", "4", "2"};
    int32_t ids[5];
    for (int i = 0; i < 5; i++) ids[i] = tok_find(v, want[i], strlen(want[i]));
    const int32_t letter = tok_find(v, "▁world", strlen("▁world"));
    CHECK(ids[0] >= 0 && ids[1] >= 0 && ids[2] >= 0 && ids[3] >= 0 && letter >= 0);
    int32_t tok;
    for (int i = 0; i < 5 && ids[i] >= 0 && letter >= 0; i++) {
        memset(logits, 0, (size_t)n * sizeof *logits);
        logits[ids[i]] = 10.0f;
        logits[letter] = i >= 3 ? 20.0f : 0.0f; /* after END the grammar must refuse the letter */
        CHECK(engine_constraint_sample(&c, smp, logits, &tok, NULL) == SHIMMY_OK);
        CHECK_MSG(tok == ids[i], "step %d: token %d, expected %d", i, tok, ids[i]);
    }
    CHECK(!engine_constraint_done(&c));
    engine_constraint_deinit(&c);
    sampler_free(smp);
    grammar_unref(g);
    free(logits);
    engine_model_close(em);
}

/* a grammar in a spec's generation defaults is the spec's own copy */
static void test_spec_defaults(void) {
    char path[512];
    const char *p = test_data_path("models/tiny-llama-spm-F32.gguf", path, sizeof path);
    if (!p) return;
    char *g = strdup("root ::= \"yes\" | \"no\" | \"maybe\"");
    shimmy_model_config c = {
        .name = "g",
        .base_path = p,
        .ctx_len = 128,
        .threads = 1,
        .generation = {.max_tokens = 20, .temperature = 1.0f, .seed = 3, .grammar = g}};
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    CHECK(shimmy_spec_from_config(&c, &spec, NULL) == SHIMMY_OK);
    memset(g, 'x', strlen(g)); /* the caller's text is gone */
    free(g);
    CHECK(spec && shimmy_model_load(spec, &m, NULL) == SHIMMY_OK);
    for (int i = 0; m && i < 3; i++) {
        text t = {0};
        shimmy_result r = {0};
        CHECK(shimmy_generate(m, "Well", NULL, collect, &t, &r, NULL) == SHIMMY_OK);
        CHECK_MSG(r.finish == SHIMMY_FINISH_STOP && pcre_verdict("yes|no|maybe", t.buf, t.len) == 1,
                  "'%s' finish %d", t.buf, r.finish);
    }
    shimmy_model_unref(m);
    shimmy_spec_free(spec);
}

int main(void) {
    test_spec_defaults();
    test_models();
    test_after();
    return test_finish("grammar generate");
}
