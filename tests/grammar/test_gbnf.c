/* GBNF parsing (valid grammars, errors with their positions, limits) and the matcher checked
 * against an independent oracle: for grammars that are regular, PCRE2 decides full matches and
 * (with partial matching) which prefixes can still become a match; balanced parentheses are
 * checked by counting. */
#include "grammar/grammar.h"
#include "test.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static bool compiles(const char *text) {
    grammar *g = NULL;
    shimmy_error err = {0};
    shimmy_status st = grammar_compile(text, strlen(text), &g, &err);
    if (st) fprintf(stderr, "unexpected error: %s\n", err.message);
    grammar_unref(g);
    return st == SHIMMY_OK;
}

/* The grammar fails with status st and a message starting with prefix ("line L, column C"). */
static void fails_at(const char *text, shimmy_status st, const char *prefix, const char *word) {
    grammar *g = NULL;
    shimmy_error err = {0};
    shimmy_status got = grammar_compile(text, strlen(text), &g, &err);
    CHECK_MSG(got == st, "%s: status %d, expected %d (%s)", text, got, st, err.message);
    CHECK_MSG(strncmp(err.message, prefix, strlen(prefix)) == 0, "%s: message '%s', expected '%s'",
              text, err.message, prefix);
    CHECK_MSG(strstr(err.message, word) != NULL, "%s: message '%s' lacks '%s'", text, err.message,
              word);
    CHECK_STR(err.where, "grammar");
    CHECK(g == NULL);
}

static const char *json_gbnf =
    "# JSON, compact with bounded optional space\n"
    "root   ::= value\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\")\n"
    "object ::= \"{\" ws ( string ws \":\" ws value ws (\",\" ws string ws \":\" ws value ws)* )? "
    "\"}\"\n"
    "array  ::= \"[\" ws ( value ws (\",\" ws value ws)* )? \"]\"\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1f] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" "
    "[0-9a-fA-F]{4}) )* \"\\\"\"\n"
    "number ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)?\n"
    "ws     ::= [ \\t\\n]{0,2}\n";

static void test_valid(void) {
    CHECK(compiles("root ::= \"a\""));
    CHECK(compiles("root ::= \"a\" | \"b\" | \n"));
    CHECK(compiles("root ::= x*\nx ::= [a-z] # comment\n\n# another\n"));
    CHECK(compiles("root ::= (\n  \"a\"\n  | \"b\"\n)+ [^\\n]? . \"\\x41\\u00e9\\U0001F600\""));
    CHECK(compiles("root ::= \"a\"{3} \"b\"{2,} \"c\"{0,5} [0-9]{ 1 , 2 }"));
    CHECK(compiles("root ::= \"\"\n"));
    CHECK(compiles("root::=a-b_c\na-b_c::=\"x\"\r\n"));
    CHECK(compiles(json_gbnf));
    /* rules named like the compiler's generated ones, defined after the groups that made them */
    CHECK(compiles("root ::= (\"a\" | \"b\")+ root-1 root-2\nroot-1 ::= \"c\"\nroot-2 ::= [0-9]?"));
    /* right recursion is fine; only left recursion is refused */
    CHECK(compiles("root ::= \"(\" root \")\" root | \"\""));
    grammar *g;
    const char *two = "root ::= a\na ::= \"x\"";
    CHECK(grammar_compile(two, strlen(two), &g, NULL) == SHIMMY_OK);
    if (!g) return;
    CHECK_EQ_INT(grammar_n_rules(g), 2);
    CHECK_STR(grammar_rule_name(g, 0), "root");
    CHECK(grammar_rule_name(g, 2) == NULL);
    grammar_unref(g);
}

static void test_errors(void) {
    const shimmy_status B = SHIMMY_ERR_INVALID_ARG, L = SHIMMY_ERR_TOO_LARGE;
    fails_at("root ::= \"abc", B, "line 1, column 10", "unterminated");
    fails_at("root ::= foo", B, "line 1, column 10", "'foo'");
    fails_at("rot ::= \"a\"", B, "line 1, column 12", "root");
    fails_at("root ::= root \"a\"", B, "line 1, column 1", "left-recursive");
    fails_at("root ::= a\na ::= b \"x\" | \"y\"\nb ::= \"\" a", B, "line 2", "left-recursive");
    fails_at("root ::= (\"\")* \"a\"", B, "line 1", "left-recursive");
    fails_at("root ::= \"a\")", B, "line 1, column 13", "')'");
    fails_at("root ::= (\"a\"", B, "line 1, column 10", "'('");
    fails_at("root ::= [b-a]", B, "line 1, column 13", "range");
    fails_at("root ::= [abc", B, "line 1, column 10", "unterminated");
    fails_at("root ::= \"\\q\"", B, "line 1, column 11", "escape");
    fails_at("root ::= \"\\xZ1\"", B, "line 1, column 11", "hex");
    fails_at("root ::= \"\\uD800\"", B, "line 1, column 11", "not a character");
    fails_at("root ::= \"a\"{3,2}", B, "line 1, column 13", "below");
    fails_at("root ::= \"a\"{20000}", L, "line 1, column 14", "limited");
    fails_at("root ::= *", B, "line 1, column 10", "nothing before");
    fails_at("root ::= \"a\"\nroot ::= \"b\"", B, "line 2, column 1", "twice");
    fails_at("root ::= \"a\"\n\n  x ::= \"b\" \"c\" ]", B, "line 3, column 17", "']'");
    fails_at("root := \"a\"", B, "line 1, column 6", "::=");
    fails_at("root ::= [^\\x00-\\U0010FFFF]", B, "line 1, column 10", "no character");
    fails_at("root ::= \"\xC3\"", B, "line 1, column 11", "UTF-8");
    fails_at("\xC3\xA9 ::= \"a\"", B, "line 1, column 1", "rule name");
    /* columns count characters, not bytes */
    fails_at("root ::= \"\xC3\xA9\" bad", B, "line 1, column 14", "'bad'");
    /* nesting and size limits */
    char deep[512];
    size_t n = (size_t)snprintf(deep, sizeof deep, "root ::= ");
    for (int i = 0; i < 150; i++) deep[n++] = '(';
    deep[n] = '\0';
    fails_at(deep, L, "line 1, column 110", "nested");
    static char big[400];
    n = (size_t)snprintf(big, sizeof big, "root ::= \"");
    for (int i = 0; i < 300; i++) big[n++] = 'a';
    snprintf(big + n, sizeof big - n, "\"{10000}");
    fails_at(big, L, "line 1", "elements");
    grammar *g = (grammar *)1;
    CHECK(grammar_compile("root ::= \"a\"\0", 13, &g, NULL) == SHIMMY_ERR_INVALID_ARG);
}

/* ---- the matcher against the oracles ---- */

static grammar_matcher *matcher_for(const char *text) {
    grammar *g = NULL;
    grammar_matcher *m = NULL;
    shimmy_error err = {0};
    if (grammar_compile(text, strlen(text), &g, &err) || grammar_matcher_new(g, NULL, &m, &err)) {
        fprintf(stderr, "cannot build a matcher for %s: %s\n", text, err.message);
        grammar_unref(g);
        return NULL;
    }
    grammar_unref(g); /* the matcher keeps its own reference */
    return m;
}

/* 1 full match, 0 a prefix of a match, -1 neither */
static int gbnf_verdict(grammar_matcher *m, const char *s, size_t n, bool bytewise) {
    grammar_matcher_reset(m);
    if (bytewise) {
        for (size_t i = 0; i < n; i++)
            if (grammar_matcher_accept_bytes(m, s + i, 1, NULL)) return -1;
    } else if (grammar_matcher_accept_bytes(m, s, n, NULL)) {
        return -1;
    }
    return grammar_matcher_can_end(m) ? 1 : 0;
}

static int pcre_verdict(pcre2_code *re, pcre2_match_data *md, const char *s, size_t n) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    if (rc >= 0) return 1;
    if (n == 0) return 0; /* PCRE2 reports no partial match on an empty subject */
    rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_PARTIAL_HARD, md, NULL);
    return rc == PCRE2_ERROR_PARTIAL ? 0 : -1;
}

static const char *const alphabet[] = {
    "a",        "b",        "c", "d", "x",  "0", "7",
    "\xC3\xA9", "\xC3\xA0", "(", ")", "\n", " ", "\xF0\x9F\x98\x80"};

static void random_string(test_rng *r, char *buf, size_t *n, size_t max_pieces) {
    size_t k = test_rng_u64(r) % (max_pieces + 1);
    *n = 0;
    for (size_t i = 0; i < k; i++) {
        const char *p = alphabet[test_rng_u64(r) % (sizeof alphabet / sizeof alphabet[0])];
        memcpy(buf + *n, p, strlen(p));
        *n += strlen(p);
    }
}

static void test_against_pcre(void) {
    static const struct {
        const char *gbnf, *regex;
    } cases[] = {
        {"root ::= [a-c]* \"d\"", "[a-c]*d"},
        {"root ::= (\"ab\" | \"a\")+ \"c\"?", "(ab|a)+c?"},
        {"root ::= [^a]{2,4} \"b\"", "[^a]{2,4}b"},
        {"root ::= (\"x\" [0-9]{1,3})* \"\xC3\xA9\"", "(x[0-9]{1,3})*\xC3\xA9"},
        {"root ::= . \"a\"+ [\\u00e0-\\u00ff]?", "(?s:.)a+[\\x{e0}-\\x{ff}]?"},
        {"root ::= w (\" \" w){0,2}\nw ::= [a-d]{1,2} | \"\\U0001F600\"",
         "([a-d]{1,2}|\\x{1F600})( ([a-d]{1,2}|\\x{1F600})){0,2}"},
        {"root ::= (a | b)* \"\\n\"\na ::= \"a\" [b-d]?\nb ::= \"0\"{2,} | \"7\"",
         "(a[b-d]?|0{2,}|7)*\\n"},
    };
    test_rng r;
    test_rng_seed(&r, 21);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        grammar_matcher *m = matcher_for(cases[c].gbnf);
        CHECK(m != NULL);
        if (!m) continue;
        char pat[256];
        snprintf(pat, sizeof pat, "^(?:%s)\\z", cases[c].regex);
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
        CHECK(re != NULL);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        int agree = 0, full = 0, partial = 0;
        for (int i = 0; i < 3000; i++) {
            char s[128];
            size_t n;
            random_string(&r, s, &n, 6);
            const int want = pcre_verdict(re, md, s, n);
            const int got = gbnf_verdict(m, s, n, false);
            const int got_b = gbnf_verdict(m, s, n, true); /* one byte at a time */
            CHECK_MSG(got == want && got_b == want, "%s on '%.*s': grammar %d/%d, pcre2 %d",
                      cases[c].gbnf, (int)n, s, got, got_b, want);
            agree += got == want;
            full += want == 1;
            partial += want == 0;
        }
        /* the random strings must exercise every verdict for the comparison to mean something */
        CHECK_MSG(full > 10 && partial > 10, "case %zu: %d full, %d partial", c, full, partial);
        (void)agree;
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        grammar_matcher_free(m);
    }
}

static int balanced_verdict(const char *s, size_t n) {
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '(')
            depth++;
        else if (s[i] == ')' && depth > 0)
            depth--;
        else
            return -1;
    }
    return depth == 0 ? 1 : 0;
}

static void test_recursive(void) {
    grammar_matcher *m = matcher_for("root ::= \"(\" root \")\" root | \"\"");
    CHECK(m != NULL);
    if (!m) return;
    test_rng r;
    test_rng_seed(&r, 7);
    for (int i = 0; i < 3000; i++) {
        char s[64];
        size_t n = test_rng_u64(&r) % 24;
        for (size_t k = 0; k < n; k++)
            s[k] = test_rng_u64(&r) % 5 ? "()"[test_rng_u64(&r) % 2] : 'a';
        int want = balanced_verdict(s, n), got = gbnf_verdict(m, s, n, false);
        CHECK_MSG(got == want, "'%.*s': grammar %d, count %d", (int)n, s, got, want);
    }
    /* deep nesting stays linear: 5000 open parentheses */
    grammar_matcher_reset(m);
    for (int i = 0; i < 5000; i++) CHECK(grammar_matcher_accept_bytes(m, "(", 1, NULL) == 0);
    CHECK(!grammar_matcher_can_end(m));
    for (int i = 0; i < 5000; i++) CHECK(grammar_matcher_accept_bytes(m, ")", 1, NULL) == 0);
    CHECK(grammar_matcher_can_end(m));
    grammar_matcher_free(m);
}

static void test_json(void) {
    grammar_matcher *m = matcher_for(json_gbnf);
    CHECK(m != NULL);
    if (!m) return;
    static const char *const good[] = {
        "{}", "[]",   "{\"a\": [1, -2.5e3, true, null], \"b\\n\\u00e9\": {\"c\":\"\xE2\x82\xAC\"}}",
        "0",  "\"\"", "[ [ [] ] ]"};
    static const char *const bad[] = {"{",         "[1,]", "01",  "\"\\x\"",
                                      "{\"a\" 1}", "[1]]", "tru", "\"a\nb\""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(gbnf_verdict(m, good[i], strlen(good[i]), false) == 1, "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(gbnf_verdict(m, bad[i], strlen(bad[i]), false) != 1, "%s", bad[i]);
    /* a rejected byte leaves the state as it was */
    grammar_matcher_reset(m);
    CHECK(grammar_matcher_accept_bytes(m, "[1", 2, NULL) == 0);
    shimmy_error err = {0};
    CHECK(grammar_matcher_accept_bytes(m, "x", 1, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(grammar_matcher_accept_bytes(m, "]", 1, NULL) == 0);
    CHECK(grammar_matcher_can_end(m) && grammar_matcher_is_done(m));
    grammar_matcher_free(m);
}

static void test_ambiguity_limit(void) {
    /* every 'a' can open a new nesting level or close one: the stack set grows without bound;
     * the matcher must refuse cleanly instead of exhausting memory */
    grammar_matcher *m = matcher_for("root ::= x\nx ::= \"a\" x \"b\" | \"a\" x \"c\" | \"a\" "
                                     "x \"d\" | \"a\"");
    CHECK(m != NULL);
    if (!m) return;
    shimmy_status st = SHIMMY_OK;
    shimmy_error err = {0};
    for (int i = 0; i < 200000 && !st; i++) st = grammar_matcher_accept_bytes(m, "a", 1, &err);
    /* either it keeps up (shared suffixes) or it says so: never a crash */
    CHECK(st == SHIMMY_OK || st == SHIMMY_ERR_UNSUPPORTED);
    grammar_matcher_free(m);
    /* a truly exponential set: (a|a)(a|a)... with distinct return positions */
    m = matcher_for("root ::= y*\ny ::= \"a\" z | \"a\" \"a\" z\nz ::= \"b\"? ");
    CHECK(m != NULL);
    for (int i = 0; m && i < 1000; i++) CHECK(grammar_matcher_accept_bytes(m, "a", 1, NULL) == 0);
    grammar_matcher_free(m);
}

static void test_cache(void) {
    const char *t = "root ::= [0-9]+";
    grammar *a, *b, *c;
    CHECK(grammar_cache_get(t, strlen(t), &a, NULL) == SHIMMY_OK);
    CHECK(grammar_cache_get(t, strlen(t), &b, NULL) == SHIMMY_OK);
    CHECK(a == b); /* compiled once */
    CHECK(grammar_cache_get("root ::= [0-9]*", 15, &c, NULL) == SHIMMY_OK);
    CHECK(c != a);
    /* evicting a cached grammar does not free one still in use */
    for (int i = 0; i < GRAMMAR_CACHE_SIZE + 4; i++) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "root ::= \"%d\"", i);
        grammar *x;
        CHECK(grammar_cache_get(buf, (size_t)n, &x, NULL) == SHIMMY_OK);
        grammar_unref(x);
    }
    grammar_matcher *m;
    CHECK(grammar_matcher_new(a, NULL, &m, NULL) == SHIMMY_OK);
    CHECK(grammar_matcher_accept_bytes(m, "42", 2, NULL) == SHIMMY_OK);
    grammar_matcher_free(m);
    shimmy_error err = {0};
    grammar *bad = NULL;
    CHECK(grammar_cache_get("root ::= ", 9, &bad, &err) == SHIMMY_OK); /* empty is valid */
    grammar_unref(bad);
    CHECK(grammar_cache_get("root ::= (", 10, &bad, &err) == SHIMMY_ERR_INVALID_ARG);
    grammar_unref(a);
    grammar_unref(b);
    grammar_unref(c);
}

/* a released matcher comes back warm and reset, for the same grammar and vocabulary only */
static void test_pool(void) {
    const char *const pieces[] = {"1", "2", "12", "+"};
    const size_t len[] = {1, 1, 2, 1};
    grammar_vocab *gv = NULL, *gv2 = NULL;
    CHECK(grammar_vocab_from_pieces(pieces, len, NULL, NULL, 4, &gv, NULL) == SHIMMY_OK);
    CHECK(grammar_vocab_from_pieces(pieces, len, NULL, NULL, 4, &gv2, NULL) == SHIMMY_OK);
    grammar *g = NULL;
    CHECK(grammar_compile("root ::= [12]+ (\"+\" [12]+)*", 27, &g, NULL) == SHIMMY_OK);
    if (!g || !gv || !gv2) return;
    grammar_matcher *a = NULL, *b = NULL, *c = NULL;
    CHECK(grammar_matcher_acquire(g, gv, &a, NULL) == SHIMMY_OK);
    uint64_t mask[1];
    CHECK(grammar_matcher_mask(a, mask, NULL) == 3); /* "1", "2", "12" */
    CHECK(grammar_matcher_accept_token(a, 2, NULL) == SHIMMY_OK);
    CHECK(grammar_matcher_mask(a, mask, NULL) == 4);
    grammar_matcher_release(a);
    CHECK(grammar_matcher_acquire(g, gv, &b, NULL) == SHIMMY_OK);
    CHECK(b == a);                                      /* the warm one */
    CHECK(grammar_matcher_allows_token(b, 3) == false); /* back at the start */
    CHECK(grammar_matcher_mask(b, mask, NULL) == 3);
    CHECK(grammar_matcher_acquire(g, gv, &c, NULL) == SHIMMY_OK);
    CHECK(c != b); /* the pool holds one; a second user gets a new matcher */
    grammar_matcher_release(c);
    grammar_stats st0;
    grammar_matcher_stats(b, &st0);
    grammar_matcher_release(b); /* replaces c in the pool */
    CHECK(st0.masks == 3);      /* the warm one's history */
    grammar_stats st;
    CHECK(grammar_matcher_acquire(g, gv2, &a, NULL) == SHIMMY_OK);
    grammar_matcher_stats(a, &st);
    CHECK(st.masks == 0); /* another vocabulary: a fresh matcher (maybe at the same address) */
    grammar_matcher_release(a);
    grammar_unref(g); /* the pooled matcher goes with the grammar (ASan checks the leak) */
    grammar_vocab_free(gv);
    grammar_vocab_free(gv2);
}

int main(void) {
    test_pool();
    test_valid();
    test_errors();
    test_against_pcre();
    test_recursive();
    test_json();
    test_ambiguity_limit();
    test_cache();
    return test_finish("gbnf");
}
