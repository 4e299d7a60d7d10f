/* The process-wide cache of compiled grammars, keyed by their exact text: a schema or grammar
 * sent with every request of an application is compiled once. Least recently used out. */
#include "gram_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint64_t hash;
    char *text; /* owned copy */
    size_t len;
    grammar *g; /* the cache's reference */
    uint64_t used;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry cache[GRAMMAR_CACHE_SIZE];
static uint64_t clock_;

static uint64_t text_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull ^ n;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

shimmy_status grammar_cache_get(const char *text, size_t len, grammar **out, shimmy_error *err) {
    *out = NULL;
    if (!text) return core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar", "the grammar is NULL");
    const uint64_t h = text_hash(text, len);
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < GRAMMAR_CACHE_SIZE; i++) {
        entry *e = &cache[i];
        if (e->g && e->hash == h && e->len == len && memcmp(e->text, text, len) == 0) {
            e->used = ++clock_;
            *out = grammar_ref(e->g);
            pthread_mutex_unlock(&lock);
            return SHIMMY_OK;
        }
    }
    pthread_mutex_unlock(&lock);
    /* compile outside the lock: a large grammar must not stall other requests */
    grammar *g;
    shimmy_status st = grammar_compile(text, len, &g, err);
    if (st) return st;
    char *copy = malloc(len ? len : 1);
    if (copy) {
        memcpy(copy, text, len);
        pthread_mutex_lock(&lock);
        entry *victim = &cache[0];
        for (size_t i = 0; i < GRAMMAR_CACHE_SIZE; i++) {
            if (!cache[i].g) {
                victim = &cache[i];
                break;
            }
            if (cache[i].used < victim->used) victim = &cache[i];
        }
        grammar *old = victim->g;
        free(victim->text);
        *victim = (entry){h, copy, len, grammar_ref(g), ++clock_};
        pthread_mutex_unlock(&lock);
        grammar_unref(old);
    }
    *out = g;
    return SHIMMY_OK;
}
