/* Per-model keep-alive asked by requests (Ollama's keep_alive): a model is held loaded (a
 * reference pins it against the catalog's own idle unload) until its deadline, then unloaded
 * and the slots let go of their sessions; a negative keep_alive holds it until the server
 * stops or another request sets a deadline. One reaper thread, started on first use. */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct keep_entry {
    char name[256];
    shimmy_model *pin; /* owned reference */
    double expires_ms; /* server_clock_ms; < 0 = never */
} keep_entry;

struct server_keepalive {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stopping;
    keep_entry *v;
    size_t n, cap;
};

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

/* True while a slot is generating for `name` (its job holds the model anyway; the deadline
 * is looked at again a second later). */
static bool model_busy(server *s, const char *name) {
    bool busy = false;
    pthread_mutex_lock(&s->qmu);
    for (int i = 0; s->slots && i < s->n_slots; i++)
        busy = busy || (s->slots[i].job && strcmp(s->slots[i].job->base, name) == 0);
    pthread_mutex_unlock(&s->qmu);
    return busy;
}

static void unload(server *s, const char *name) {
    if (shimmy_catalog_unload(s->cat, name, NULL) == SHIMMY_OK) {
        shimmy_log(SHIMMY_LOG_INFO, "server: %s unloaded (keep_alive expired)", name);
        server_slots_drop_unloaded(s);
    }
}

static void *reaper_main(void *arg) {
    server *s = arg;
    struct server_keepalive *k = s->keep;
    pthread_mutex_lock(&k->mu);
    while (!k->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
        if (k->stopping) break;
        double now = server_clock_ms();
        for (size_t i = 0; i < k->n;) {
            keep_entry e = k->v[i];
            if (e.expires_ms < 0 || e.expires_ms > now) {
                i++;
                continue;
            }
            pthread_mutex_unlock(&k->mu);
            bool busy = model_busy(s, e.name);
            pthread_mutex_lock(&k->mu);
            /* The table may have changed while unlocked: find the entry again. */
            size_t at = 0;
            while (at < k->n && strcmp(k->v[at].name, e.name) != 0) at++;
            if (at == k->n || k->v[at].expires_ms != e.expires_ms) continue;
            if (busy) {
                k->v[at].expires_ms = now + 1000;
                i = at + 1;
                continue;
            }
            shimmy_model *pin = k->v[at].pin;
            k->v[at] = k->v[--k->n];
            pthread_mutex_unlock(&k->mu);
            shimmy_model_unref(pin);
            unload(s, e.name);
            pthread_mutex_lock(&k->mu);
            i = 0; /* rescan: the table changed */
        }
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static struct server_keepalive *keepalive_of(server *s) {
    pthread_mutex_lock(&create_mu);
    if (!s->keep && !atomic_load(&s->stopping)) {
        struct server_keepalive *k = calloc(1, sizeof *k);
        if (k) {
            pthread_mutex_init(&k->mu, NULL);
            pthread_cond_init(&k->cv, NULL);
            s->keep = k;
            k->started = pthread_create(&k->thread, NULL, reaper_main, s) == 0;
        }
    }
    struct server_keepalive *k = s->keep;
    pthread_mutex_unlock(&create_mu);
    return k;
}

void server_keepalive_set(server *s, const char *name, shimmy_model *m, double seconds) {
    if (seconds == 0) { /* "unload now": the slot drops its session once its job ends */
        pthread_mutex_lock(&create_mu);
        struct server_keepalive *k = s->keep;
        pthread_mutex_unlock(&create_mu);
        shimmy_model *pin = NULL;
        if (k) {
            pthread_mutex_lock(&k->mu);
            for (size_t i = 0; i < k->n; i++) {
                if (strcmp(k->v[i].name, name) != 0) continue;
                pin = k->v[i].pin;
                k->v[i] = k->v[--k->n];
                break;
            }
            pthread_mutex_unlock(&k->mu);
        }
        shimmy_model_unref(pin);
        if (shimmy_catalog_unload(s->cat, name, NULL) == SHIMMY_OK) server_slots_drop_unloaded(s);
        return;
    }
    struct server_keepalive *k = keepalive_of(s);
    if (!k || !m) return;
    double expires = seconds < 0 ? -1 : server_clock_ms() + seconds * 1000.0;
    shimmy_model *old = NULL, *pin = shimmy_model_ref(m);
    pthread_mutex_lock(&k->mu);
    size_t i = 0;
    while (i < k->n && strcmp(k->v[i].name, name) != 0) i++;
    if (i == k->n && k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 8;
        keep_entry *v = realloc(k->v, cap * sizeof *v);
        if (v) {
            k->v = v;
            k->cap = cap;
        }
    }
    if (i < k->cap) {
        if (i == k->n) {
            snprintf(k->v[i].name, sizeof k->v[i].name, "%s", name);
            k->v[i].pin = NULL;
            k->n++;
        }
        old = k->v[i].pin;
        k->v[i].pin = pin;
        k->v[i].expires_ms = expires;
        pin = NULL;
    }
    pthread_mutex_unlock(&k->mu);
    shimmy_model_unref(old);
    shimmy_model_unref(pin); /* only when the table could not grow */
}

bool server_keepalive_expiry(server *s, const char *name, double *seconds_left) {
    pthread_mutex_lock(&create_mu);
    struct server_keepalive *k = s->keep;
    pthread_mutex_unlock(&create_mu);
    bool found = false;
    if (!k) return false;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n && !found; i++) {
        if (strcmp(k->v[i].name, name) != 0) continue;
        found = true;
        *seconds_left =
            k->v[i].expires_ms < 0 ? -1 : (k->v[i].expires_ms - server_clock_ms()) / 1000.0;
        if (*seconds_left != -1 && *seconds_left < 0) *seconds_left = 0;
    }
    pthread_mutex_unlock(&k->mu);
    return found;
}

void server_keepalive_stop(server *s) {
    pthread_mutex_lock(&create_mu);
    struct server_keepalive *k = s->keep;
    pthread_mutex_unlock(&create_mu);
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    k->stopping = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    if (k->started) pthread_join(k->thread, NULL);
    k->started = false;
}

void server_keepalive_free(server *s) {
    server_keepalive_stop(s);
    struct server_keepalive *k = s->keep;
    s->keep = NULL;
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) shimmy_model_unref(k->v[i].pin);
    free(k->v);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
}
