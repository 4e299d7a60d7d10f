/* Stop strings: generated text is held back only while its tail could still grow into a stop
 * string, so a stop string split over several tokens is never emitted, and everything else is
 * emitted as early as possible. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

shimmy_status engine_stop_init(engine_stop *st, const char *const *stop, size_t n_stop,
                               shimmy_error *err) {
    memset(st, 0, sizeof *st);
    if (n_stop && !stop)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "stop", "%zu stop strings but no list",
                          n_stop);
    st->stop = stop;
    st->n_stop = n_stop;
    for (size_t i = 0; i < n_stop; i++) {
        if (!stop[i] || !stop[i][0])
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "stop", "stop string %zu is empty", i);
        size_t n = strlen(stop[i]);
        if (n > 4096)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "stop",
                              "stop string %zu is %zu bytes long (at most 4096)", i, n);
        if (n > st->max_len) st->max_len = n;
    }
    if (n_stop) { /* held text stays below max_len, so this rarely grows while generating */
        st->cap = st->max_len + 1024;
        st->buf = core_malloc(st->cap);
        if (!st->buf) return core_error(err, SHIMMY_ERR_NOMEM, "stop", "cannot allocate");
    }
    return SHIMMY_OK;
}

void engine_stop_deinit(engine_stop *st) {
    free(st->buf);
    memset(st, 0, sizeof *st);
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of some stop string. */
static size_t partial_tail(const engine_stop *st, const char *s, size_t n) {
    size_t best = 0;
    for (size_t i = 0; i < st->n_stop; i++) {
        size_t len = strlen(st->stop[i]);
        size_t max = len - 1 < n ? len - 1 : n;
        for (size_t k = max; k > best; k--)
            if (memcmp(s + n - k, st->stop[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

bool engine_stop_push(engine_stop *st, const char *text, size_t len, const char **emit,
                      size_t *n_emit) {
    *emit = "";
    *n_emit = 0;
    if (st->n_stop == 0) { /* nothing to hold back: pass the text through */
        *emit = text;
        *n_emit = len;
        return false;
    }
    /* drop what the previous call emitted, keep the held-back tail */
    memmove(st->buf, st->buf + st->off, st->len - st->off);
    st->len -= st->off;
    st->off = 0;
    if (st->len + len + 1 > st->cap) {
        size_t cap = (st->len + len + 1) * 2;
        char *b = core_realloc(st->buf, cap);
        if (!b) { /* cannot hold back: emit as is (stop matching degrades, never crashes) */
            *emit = text;
            *n_emit = len;
            return false;
        }
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, text, len);
    st->len += len;
    /* earliest complete match wins; search only where a match could newly end */
    size_t first = st->len;
    for (size_t i = 0; i < st->n_stop; i++) {
        size_t sl = strlen(st->stop[i]);
        if (sl > st->len) continue;
        for (size_t pos = 0; pos + sl <= st->len && pos < first; pos++)
            if (memcmp(st->buf + pos, st->stop[i], sl) == 0) {
                first = pos;
                break;
            }
    }
    if (first < st->len) {
        *emit = st->buf;
        *n_emit = first;
        st->off = st->len = 0;
        return true;
    }
    size_t keep = partial_tail(st, st->buf, st->len);
    *emit = st->buf;
    *n_emit = st->len - keep;
    st->off = st->len - keep;
    return false;
}

void engine_stop_flush(engine_stop *st, const char **emit, size_t *n_emit) {
    *emit = st->buf ? st->buf + st->off : "";
    *n_emit = st->len - st->off;
    st->off = st->len = 0;
}
