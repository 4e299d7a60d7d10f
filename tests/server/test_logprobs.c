/* server/logprobs: token records as OpenAI's JSON: the token string of whole and split UTF-8
 * (bytes that are no character on their own as \xNN), the bytes array, a missing value as
 * null, and the completions object's parallel arrays. */
#include "server.h"
#include "test.h"

#include <string.h>

static void expect_string(const char *bytes, size_t n, const char *want) {
    json_t *v = server_lp_token_string(bytes, n);
    CHECK_MSG(v && strcmp(json_string_value(v), want) == 0, "[%.*s] -> [%s], expected [%s]", (int)n,
              bytes, v ? json_string_value(v) : "(null)", want);
    json_decref(v);
}

static void test_token_strings(void) {
    expect_string("hello", 5, "hello");
    expect_string(" \xc3\xa9t\xc3\xa9", 6, " \xc3\xa9t\xc3\xa9"); /* " été" */
    expect_string("\xe6\x80\x9d", 3, "\xe6\x80\x9d");             /* 思 */
    expect_string("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");     /* an emoji: 4 bytes */
    /* a character split across tokens: each part on its own */
    expect_string("a\xe2\x80", 3, "a\\xe2\\x80");
    expect_string("\x94", 1, "\\x94");
    /* never valid: overlong forms, surrogates, beyond U+10FFFF */
    expect_string("\xc0\xaf", 2, "\\xc0\\xaf");
    expect_string("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
    expect_string("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80");
    expect_string("", 0, "");
    json_t *nul = server_lp_token_string("a\0b", 3); /* a NUL is a character: "\u0000" */
    CHECK(nul && json_string_length(nul) == 3);
    json_decref(nul);
}

static void test_shapes(void) {
    shimmy_token_info t[2] = {
        {.token = 7, .bytes = "\xe2\x80", .n_bytes = 2, .prompt = true},
        {.token = 9, .bytes = "\x94 x", .n_bytes = 3, .has_logprob = true, .logprob = -0.5f},
    };
    json_t *e = server_lp_chat_entry(NULL, &t[0]);
    CHECK(json_is_null(json_object_get(e, "logprob")));
    CHECK_STR(json_string_value(json_object_get(e, "token")), "\\xe2\\x80");
    json_t *b = json_object_get(e, "bytes");
    CHECK(json_array_size(b) == 2 && json_integer_value(json_array_get(b, 0)) == 0xe2 &&
          json_integer_value(json_array_get(b, 1)) == 0x80);
    CHECK_EQ_INT((int)json_array_size(json_object_get(e, "top_logprobs")), 0);
    json_decref(e);
    e = server_lp_chat_entry(NULL, &t[1]);
    CHECK(json_real_value(json_object_get(e, "logprob")) == -0.5);
    json_decref(e);

    json_t *c = server_lp_compl_new();
    server_lp_compl_append(c, NULL, &t[0], 0);
    server_lp_compl_append(c, NULL, &t[1], 2);
    CHECK_EQ_INT((int)json_array_size(json_object_get(c, "tokens")), 2);
    CHECK(json_is_null(json_array_get(json_object_get(c, "token_logprobs"), 0)));
    CHECK(json_is_null(json_array_get(json_object_get(c, "top_logprobs"), 0)));
    CHECK(json_is_object(json_array_get(json_object_get(c, "top_logprobs"), 1)));
    CHECK(json_integer_value(json_array_get(json_object_get(c, "text_offset"), 1)) == 2);
    json_decref(c);
}

int main(void) {
    test_token_strings();
    test_shapes();
    return test_finish("server/logprobs");
}
