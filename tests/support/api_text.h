/* A generation callback for the library's tests: appends every piece to a fixed buffer, kept
 * NUL-terminated (pieces past the buffer are dropped). Header-only: the tests that stream text
 * share it. */
#ifndef SHIMMY_TEST_API_TEXT_H
#define SHIMMY_TEST_API_TEXT_H

#include <shimmy.h>
#include <string.h>

typedef struct test_text {
    char buf[4096];
    size_t len;
} test_text;

static inline shimmy_next test_collect(const char *piece, size_t len, void *user) {
    test_text *t = user;
    if (t->len + len < sizeof t->buf) memcpy(t->buf + t->len, piece, len), t->len += len;
    t->buf[t->len] = '\0';
    return SHIMMY_CONTINUE;
}

#endif
