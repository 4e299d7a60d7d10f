/* Helpers of the library's tests: a generation callback that appends every piece to a fixed
 * buffer, kept NUL-terminated (pieces past the buffer are dropped), and the fixture model loaded
 * through a spec. Header-only: each test is its own program. */
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

/* The model at path loaded as a library user does: a spec named "fixture", one thread,
 * ctx_len (0: the model's default). NULL, with err set, on failure. */
static inline shimmy_model *test_load_fixture(const char *path, int32_t ctx_len,
                                              shimmy_error *err) {
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_model_config cfg =
        SHIMMY_MODEL_CONFIG(.name = "fixture", .base_path = path, .ctx_len = ctx_len, .threads = 1);
    if (shimmy_spec_from_config(&cfg, &spec, err) == SHIMMY_OK &&
        shimmy_model_load(spec, &m, err) != SHIMMY_OK)
        m = NULL;
    shimmy_spec_free(spec);
    return m;
}

#endif
