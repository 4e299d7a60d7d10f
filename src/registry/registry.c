/*
 * registry_scan: walk the roots and inspect candidates on a core_pool (work is handed out by an
 * atomic counter, so one huge root does not hold the other threads back in the inspect phase),
 * then build the tables serially. Also the read-only accessors of a finished registry.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define REG_MAX_THREADS 4

const char *registry_source_name(registry_source s) {
    static const char *const names[REGISTRY_SOURCE_COUNT] = {"env", "dir", "hf", "ollama",
                                                             "lmstudio"};
    return (unsigned)s < REGISTRY_SOURCE_COUNT ? names[s] : "unknown";
}

/* ---- the parallel phases ---- */

typedef struct scan_job {
    reg_progress *prog;
    reg_roots *roots;
    reg_cand **cands;
    size_t n_cands;
    size_t next; /* atomic work counter */
} scan_job;

static int cmp_cand_path(const void *a, const void *b) {
    const reg_cand *x = *(reg_cand *const *)a, *y = *(reg_cand *const *)b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    int c = strcmp(x->path, y->path);
    if (c || !x->hint || !y->hint) return c ? c : (x->hint != NULL) - (y->hint != NULL);
    return strcmp(x->hint, y->hint);
}

#define PROGRESS_EVERY_MS 100.0

static void report(reg_progress *p, bool done) {
    registry_progress r = {.folders = __atomic_load_n(&p->folders, __ATOMIC_RELAXED),
                           .found = __atomic_load_n(&p->found, __ATOMIC_RELAXED),
                           .read = __atomic_load_n(&p->read, __ATOMIC_RELAXED),
                           .done = done};
    p->fn(p->user, &r);
}

void reg_progress_tick(reg_progress *p, int what) {
    if (!p || !p->fn) return;
    uint64_t *c = what == REG_TICK_FOLDER  ? &p->folders
                  : what == REG_TICK_FOUND ? &p->found
                                           : &p->read;
    __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
    /* one thread reports at a time; the others just count */
    if (__atomic_exchange_n(&p->reporting, 1, __ATOMIC_ACQUIRE)) return;
    const double now = core_time_ms();
    if (p->next_ms == 0) p->next_ms = now + PROGRESS_EVERY_MS;
    if (now >= p->next_ms) {
        report(p, false);
        p->next_ms = now + PROGRESS_EVERY_MS;
    }
    __atomic_store_n(&p->reporting, 0, __ATOMIC_RELEASE);
}

void reg_progress_done(reg_progress *p) {
    if (p && p->fn) report(p, true); /* the scan's threads are done: no other report runs */
}

static void task_walk(void *ctx, int ith, int nth) {
    (void)ith;
    (void)nth;
    scan_job *j = ctx;
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= j->roots->n) break;
        reg_root *root = &j->roots->v[i];
        root->walk(root);
        /* readdir order differs between file systems: sort so names and duplicate choices are
         * the same on every machine */
        if (root->n > 1) qsort(root->cands, root->n, sizeof *root->cands, cmp_cand_path);
    }
}

static void task_inspect(void *ctx, int ith, int nth) {
    (void)ith;
    (void)nth;
    scan_job *j = ctx;
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= j->n_cands) break;
        reg_inspect(j->cands[i]);
        reg_progress_tick(j->prog, REG_TICK_READ);
    }
}

static void run(core_pool *pool, core_task_fn fn, scan_job *j) {
    j->next = 0;
    if (pool)
        core_pool_run(pool, fn, j);
    else
        fn(j, 0, 1);
}

shimmy_status registry_scan(const registry_options *opts, registry **out, shimmy_error *err) {
    *out = NULL;
    registry_options defaults = {0};
    if (!opts) opts = &defaults;
    double t0 = core_time_ms();
    registry *r = calloc(1, sizeof *r);
    if (!r) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "no memory for the model registry");
    r->refs = 1;
    reg_roots roots;
    shimmy_status st = reg_roots_build(opts, &roots, err);
    if (st) {
        free(r);
        return st;
    }
    int nth = opts->n_threads > 0 ? opts->n_threads : core_physical_cores();
    if (nth > REG_MAX_THREADS) nth = REG_MAX_THREADS;
    core_pool *pool = NULL;
    /* without a pool the scan still works, on this thread */
    if (nth > 1 && core_pool_new(nth, &pool, NULL) != SHIMMY_OK) pool = NULL;

    reg_progress prog = {.fn = opts->progress, .user = opts->progress_user};
    for (size_t i = 0; i < roots.n; i++) roots.v[i].prog = &prog;
    scan_job job = {.roots = &roots, .prog = &prog};
    run(pool, task_walk, &job);

    bool nomem = false;
    size_t total = 0;
    for (size_t i = 0; i < roots.n; i++) {
        total += roots.v[i].n;
        nomem |= roots.v[i].nomem;
    }
    r->cands = malloc((total ? total : 1) * sizeof *r->cands);
    r->roots = calloc(roots.n ? roots.n : 1, sizeof *r->roots);
    nomem |= !r->cands || !r->roots;
    for (size_t i = 0; i < roots.n; i++) {
        for (size_t k = 0; k < roots.v[i].n; k++) {
            if (r->cands)
                r->cands[r->n_cands++] = roots.v[i].cands[k];
            else
                reg_cand_free(roots.v[i].cands[k]);
        }
        if (r->roots) {
            r->roots[r->n_roots++] = roots.v[i].label;
            roots.v[i].label = NULL;
        }
    }
    reg_roots_free(&roots);
    if (!nomem) {
        job.cands = r->cands;
        job.n_cands = r->n_cands;
        run(pool, task_inspect, &job);
        r->files_read = r->n_cands;
    }
    core_pool_free(pool);
    reg_progress_done(&prog);
    st = nomem ? core_error(err, SHIMMY_ERR_NOMEM, NULL, "no memory while scanning for models")
               : reg_build(r, err);
    if (st) {
        registry_free(r);
        return st;
    }
    r->scan_ms = core_time_ms() - t0;
    core_log(CORE_LOG_DEBUG, "registry: %zu models, %zu adapters, %zu skipped in %.1f ms",
             r->n_entries, r->n_adapters, r->n_skipped, r->scan_ms);
    *out = r;
    return SHIMMY_OK;
}

registry *registry_ref(registry *r) {
    if (r) __atomic_fetch_add(&r->refs, 1, __ATOMIC_RELAXED);
    return r;
}

void registry_free(registry *r) {
    if (!r || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    for (size_t i = 0; i < r->n_cands; i++) reg_cand_free(r->cands[i]);
    for (size_t i = 0; i < r->n_roots; i++) free(r->roots[i]);
    free(r->cands);
    free(r->roots);
    free(r->entries);
    free(r->entry_cands);
    free(r->adapters);
    free(r->adapter_cands);
    free(r->adapter_refs);
    free(r->skipped);
    free(r->alias_names);
    free(r->alias_entry);
    free(r);
}

/* ---- accessors ---- */

size_t registry_count(const registry *r) {
    return r ? r->n_entries : 0;
}
const registry_entry *registry_entry_at(const registry *r, size_t i) {
    return r && i < r->n_entries ? &r->entries[i] : NULL;
}
size_t registry_adapter_count(const registry *r) {
    return r ? r->n_adapters : 0;
}
const registry_adapter *registry_adapter_at(const registry *r, size_t i) {
    return r && i < r->n_adapters ? &r->adapters[i] : NULL;
}
size_t registry_skipped_count(const registry *r) {
    return r ? r->n_skipped : 0;
}
const registry_skip *registry_skipped_at(const registry *r, size_t i) {
    return r && i < r->n_skipped ? &r->skipped[i] : NULL;
}
size_t registry_root_count(const registry *r) {
    return r ? r->n_roots : 0;
}
const char *registry_root_at(const registry *r, size_t i) {
    return r && i < r->n_roots ? r->roots[i] : NULL;
}
double registry_scan_ms(const registry *r) {
    return r ? r->scan_ms : 0;
}
size_t registry_files_read(const registry *r) {
    return r ? r->files_read : 0;
}

/* Index of the entry named exactly `name` (already lowercase), or -1. */
static long find_name(const registry *r, const char *name) {
    size_t lo = 0, hi = r->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->entries[mid].name, name);
        if (c == 0) return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < r->n_aliases; i++)
        if (strcmp(r->alias_names[i], name) == 0) return (long)r->alias_entry[i];
    return -1;
}

/* A path naming the same file as one of cands (by string, then by st_dev/st_ino). */
static long find_path(reg_cand *const *cands, size_t n, const char *path) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(cands[i]->path, path) == 0) return (long)i;
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (cands[i]->dev == st.st_dev && cands[i]->ino == st.st_ino) return (long)i;
    return -1;
}

static long find_any(const registry *r, const char *q) {
    size_t len = strlen(q);
    char *low = malloc(len + sizeof ":latest");
    if (!low) return -1;
    for (size_t i = 0; i <= len; i++)
        low[i] = (char)(q[i] >= 'A' && q[i] <= 'Z' ? q[i] - 'A' + 'a' : q[i]);
    long e = find_name(r, low);
    /* Ollama's convention: a name without a tag means :latest */
    if (e < 0 && !strchr(low, ':')) {
        memcpy(low + len, ":latest", sizeof ":latest");
        e = find_name(r, low);
    }
    free(low);
    return e;
}

const registry_entry *registry_find(const registry *r, const char *name_or_path) {
    if (!r || !name_or_path || !*name_or_path) return NULL;
    long e = find_any(r, name_or_path);
    if (e < 0) e = find_path(r->entry_cands, r->n_entries, name_or_path);
    return e >= 0 ? &r->entries[e] : NULL;
}

const registry_adapter *registry_find_adapter(const registry *r, const char *name_or_path) {
    if (!r || !name_or_path || !*name_or_path) return NULL;
    for (size_t i = 0; i < r->n_adapters; i++)
        if (strcasecmp(r->adapters[i].name, name_or_path) == 0) return &r->adapters[i];
    long a = find_path(r->adapter_cands, r->n_adapters, name_or_path);
    return a >= 0 ? &r->adapters[a] : NULL;
}

/* ---- "did you mean" ---- */

static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 128 || m > 128) return (size_t)-1;
    size_t row[129];
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t cost = (a[i - 1] | 32) == (b[j - 1] | 32) ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

size_t registry_suggest(const registry *r, const char *name, const char **out, size_t max) {
    if (!r || !name || max == 0) return 0;
    size_t n = 0, limit = strlen(name) / 3 + 2;
    size_t dist[16];
    if (max > 16) max = 16;
    for (size_t i = 0; i < r->n_entries; i++) {
        const char *cand = r->entries[i].name;
        /* names starting with what was typed rank first, then names containing it, then
         * close spellings */
        size_t d;
        if (strncasecmp(cand, name, strlen(name)) == 0)
            d = 0;
        else if (strcasestr(cand, name))
            d = 1;
        else if ((d = edit_distance(name, cand)) <= limit)
            d += 2;
        else
            continue;
        size_t k = n < max ? n++ : max;
        if (k == max) {
            if (d >= dist[max - 1]) continue;
            k = max - 1;
        }
        while (k > 0 && dist[k - 1] > d) {
            dist[k] = dist[k - 1];
            out[k] = out[k - 1];
            k--;
        }
        dist[k] = d;
        out[k] = cand;
    }
    return n;
}
