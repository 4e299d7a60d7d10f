/*
 * manager: single-flight loads, refcounted handles, unload/eviction never freeing a model in
 * use, LRU budget, keep_alive, failure reporting and retry, registry swaps, and a concurrent
 * stress run (also compiled with ThreadSanitizer by tests/manager/tsan.sh).
 *
 * The loader here is a test loader (the manager's loader vtable is its seam): its "models" are
 * heap objects that record how many threads are using them, so a model freed while in use is
 * caught by the close callback itself (and by ASan/TSan as a use after free).
 */
#include "gguf/gguf.h"
#include "manager/manager.h"
#include "registry/registry.h"
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MODEL_MAGIC 0x6d6f646cu

typedef struct test_model {
    unsigned magic;
    atomic_int in_use; /* threads between acquire and release */
    char name[64];
} test_model;

typedef struct test_loader {
    atomic_int opens, closes, live, max_live, freed_in_use;
    atomic_int fail;     /* open fails while set */
    atomic_int delay_us; /* simulated load time */
    uint64_t bytes;
} test_loader;

static shimmy_status tl_open(void *ctx, const char *name, const char *path, void **out,
                             shimmy_error *err) {
    test_loader *l = ctx;
    (void)path;
    if (atomic_load(&l->delay_us)) usleep((useconds_t)atomic_load(&l->delay_us));
    if (atomic_load(&l->fail))
        return core_error(err, SHIMMY_ERR_FORMAT, name, "test loader refuses %s", name);
    test_model *m = calloc(1, sizeof *m);
    if (!m) return core_error(err, SHIMMY_ERR_NOMEM, name, "no memory");
    m->magic = MODEL_MAGIC;
    snprintf(m->name, sizeof m->name, "%s", name);
    atomic_fetch_add(&l->opens, 1);
    int live = atomic_fetch_add(&l->live, 1) + 1;
    int prev = atomic_load(&l->max_live);
    while (live > prev && !atomic_compare_exchange_weak(&l->max_live, &prev, live)) {
    }
    *out = m;
    return SHIMMY_OK;
}

static void tl_close(void *ctx, void *obj) {
    test_loader *l = ctx;
    test_model *m = obj;
    if (m->magic != MODEL_MAGIC || atomic_load(&m->in_use) != 0)
        atomic_fetch_add(&l->freed_in_use, 1);
    m->magic = 0;
    atomic_fetch_add(&l->closes, 1);
    atomic_fetch_sub(&l->live, 1);
    free(m);
}

static uint64_t tl_bytes(void *ctx, const void *obj) {
    (void)obj;
    return ((test_loader *)ctx)->bytes;
}

static manager_options opts_for(test_loader *l, uint64_t budget, double keep_alive, bool reaper) {
    manager_options o = {0};
    o.loader = (manager_loader){.open = tl_open, .close = tl_close, .bytes = tl_bytes, .ctx = l};
    o.max_loaded_bytes = budget;
    o.keep_alive_s = keep_alive;
    o.no_reaper = !reaper;
    return o;
}

/* A small but valid GGUF model file (one tensor) with a given architecture. */
static void write_model(const char *dir, const char *file, const char *arch) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    gguf_writer *w = NULL;
    shimmy_error err;
    if (gguf_writer_new(&w, &err)) {
        CHECK_MSG(0, "writer: %s", err.message);
        return;
    }
    gguf_writer_set_str(w, "general.architecture", arch);
    float data[16] = {0};
    int64_t ne[2] = {4, 4};
    gguf_writer_add_tensor(w, "token_embd.weight", GGUF_T_F32, 2, ne, data);
    CHECK_MSG(gguf_writer_write(w, path, &err) == SHIMMY_OK, "%s", err.message);
    gguf_writer_free(w);
}

static registry *scan_dir(const char *dir) {
    registry_options ro = {0};
    ro.dirs = dir;
    ro.ignore_env = true;
    ro.disable = REGISTRY_NO_DEFAULTS;
    registry *r = NULL;
    shimmy_error err;
    CHECK_MSG(registry_scan(&ro, &r, &err) == SHIMMY_OK, "%s", err.message);
    return r;
}

static test_model *use(manager_handle *h) {
    test_model *m = manager_handle_model(h);
    CHECK(m && m->magic == MODEL_MAGIC);
    if (m) atomic_fetch_add(&m->in_use, 1);
    return m;
}

static void unuse(manager_handle *h, test_model *m) {
    if (m) {
        CHECK(m->magic == MODEL_MAGIC);
        atomic_fetch_sub(&m->in_use, 1);
    }
    manager_release(h);
}

/* ---- concurrent first requests load once ---- */

typedef struct race_ctx {
    manager *m;
    pthread_barrier_t *bar;
    void *model;
    shimmy_status st;
} race_ctx;

static void *race_main(void *arg) {
    race_ctx *c = arg;
    pthread_barrier_wait(c->bar);
    manager_handle *h = NULL;
    shimmy_error err;
    c->st = manager_acquire(c->m, "alpha", &h, &err);
    c->model = manager_handle_model(h);
    usleep(2000);
    manager_release(h);
    return NULL;
}

static void test_single_flight(registry *reg) {
    test_loader l = {0};
    l.bytes = 100;
    atomic_store(&l.delay_us, 20000);
    manager *m = NULL;
    manager_options o = opts_for(&l, 1 << 20, -1, false);
    CHECK(manager_new(&o, reg, &m, NULL) == SHIMMY_OK);
    enum { N = 8 };
    pthread_t th[N];
    race_ctx c[N];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, N);
    for (int i = 0; i < N; i++) {
        c[i] = (race_ctx){.m = m, .bar = &bar};
        pthread_create(&th[i], NULL, race_main, &c[i]);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    CHECK_EQ_INT(atomic_load(&l.opens), 1);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(c[i].st, SHIMMY_OK);
        CHECK(c[i].model == c[0].model && c[i].model != NULL);
    }
    manager_info info;
    manager_info_of(m, "alpha", &info);
    CHECK_EQ_INT(info.state, MANAGER_LOADED);
    CHECK_EQ_INT(info.users, 0);
    manager_free(m);
    CHECK_EQ_INT(atomic_load(&l.closes), 1);
    CHECK_EQ_INT(atomic_load(&l.freed_in_use), 0);
}

/* ---- unload keeps a model in use alive; release frees it ---- */

static void test_unload_in_use(registry *reg) {
    test_loader l = {0};
    l.bytes = 100;
    manager *m = NULL;
    manager_options o = opts_for(&l, 1 << 20, -1, false);
    CHECK(manager_new(&o, reg, &m, NULL) == SHIMMY_OK);
    manager_handle *h = NULL, *h2 = NULL;
    CHECK(manager_acquire(m, "alpha", &h, NULL) == SHIMMY_OK);
    test_model *tm = use(h);
    CHECK_STR(manager_handle_name(h), "alpha");
    CHECK(manager_unload(m, "alpha", NULL) == SHIMMY_OK);
    CHECK_EQ_INT(atomic_load(&l.closes), 0); /* still in use */
    manager_info info;
    manager_info_of(m, "alpha", &info);
    CHECK_EQ_INT(info.state, MANAGER_NOT_LOADED);
    shimmy_error err;
    CHECK_EQ_INT(manager_unload(m, "alpha", &err), SHIMMY_ERR_NOT_FOUND);
    /* a new request loads a fresh copy while the old one is still serving */
    CHECK(manager_acquire(m, "alpha", &h2, NULL) == SHIMMY_OK);
    CHECK(manager_handle_model(h2) != manager_handle_model(h));
    CHECK_EQ_INT(atomic_load(&l.opens), 2);
    manager_stats s;
    manager_get_stats(m, &s);
    CHECK_EQ_INT(s.loaded_bytes, 200); /* both copies are in memory */
    unuse(h, tm);
    CHECK_EQ_INT(atomic_load(&l.closes), 1);
    manager_get_stats(m, &s);
    CHECK_EQ_INT(s.loaded_bytes, 100);
    /* a handle outlives manager_free */
    manager_free(m);
    CHECK_EQ_INT(atomic_load(&l.closes), 1);
    CHECK(((test_model *)manager_handle_model(h2))->magic == MODEL_MAGIC);
    manager_release(h2);
    CHECK_EQ_INT(atomic_load(&l.closes), 2);
    CHECK_EQ_INT(atomic_load(&l.freed_in_use), 0);
}

/* ---- failures are per model, reported, retried ---- */

static void test_failure_and_retry(registry *reg) {
    test_loader l = {0};
    l.bytes = 100;
    atomic_store(&l.fail, 1);
    manager *m = NULL;
    manager_options o = opts_for(&l, 1 << 20, -1, false);
    CHECK(manager_new(&o, reg, &m, NULL) == SHIMMY_OK);
    manager_handle *h = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    CHECK_EQ_INT(manager_acquire(m, "beta", &h, &err), SHIMMY_ERR_FORMAT);
    CHECK(h == NULL);
    CHECK(strstr(err.message, "refuses beta") != NULL);
    manager_info info;
    manager_info_of(m, "beta", &info);
    CHECK_EQ_INT(info.state, MANAGER_FAILED);
    CHECK(strstr(info.error.message, "refuses beta") != NULL);
    /* other models are unaffected by beta's failure... */
    atomic_store(&l.fail, 0);
    CHECK(manager_acquire(m, "alpha", &h, NULL) == SHIMMY_OK);
    manager_release(h);
    /* ...and beta is retried on the next request */
    CHECK(manager_acquire(m, "beta", &h, &err) == SHIMMY_OK);
    manager_info_of(m, "beta", &info);
    CHECK_EQ_INT(info.state, MANAGER_LOADED);
    CHECK_EQ_INT(info.users, 1);
    manager_release(h);
    /* unknown names get a pointer to `shimmy list` and close matches */
    CHECK_EQ_INT(manager_acquire(m, "alpah", &h, &err), SHIMMY_ERR_MODEL_NOT_FOUND);
    CHECK(strstr(err.message, "shimmy list") != NULL);
    CHECK(strstr(err.message, "'alpha'") != NULL);
    manager_stats s;
    manager_get_stats(m, &s);
    CHECK_EQ_INT(s.failures, 1);
    CHECK_EQ_INT(s.loads, 2);
    manager_free(m);
    CHECK_EQ_INT(atomic_load(&l.opens), atomic_load(&l.closes));
}

/* ---- LRU eviction within the budget, never of a model in use ---- */

static void test_budget_lru(registry *reg) {
    test_loader l = {0};
    l.bytes = 10000; /* well above the file sizes the registry gives as load estimates */
    manager *m = NULL;
    manager_options o = opts_for(&l, 25000, -1, false); /* room for two models */
    CHECK(manager_new(&o, reg, &m, NULL) == SHIMMY_OK);
    manager_handle *h = NULL, *hold = NULL;
    manager_info info;
    /* a third model fits the estimate (its file size) but not its real size: after loading it
     * the least recently used idle model goes */
    CHECK(manager_acquire(m, "alpha", &hold, NULL) == SHIMMY_OK); /* kept in use */
    test_model *tm = use(hold);
    CHECK(manager_acquire(m, "beta", &h, NULL) == SHIMMY_OK);
    manager_release(h);
    CHECK(manager_acquire(m, "gamma", &h, NULL) == SHIMMY_OK);
    manager_release(h);
    manager_info_of(m, "alpha", &info);
    CHECK_EQ_INT(info.state, MANAGER_LOADED); /* in use: never evicted */
    manager_info_of(m, "beta", &info);
    CHECK_EQ_INT(info.state, MANAGER_NOT_LOADED);
    manager_info_of(m, "gamma", &info);
    CHECK_EQ_INT(info.state, MANAGER_LOADED);
    manager_stats s;
    manager_get_stats(m, &s);
    CHECK(s.loaded_bytes <= 30000);
    CHECK(s.evictions >= 1);
    CHECK_EQ_INT(atomic_load(&l.freed_in_use), 0);
    unuse(hold, tm);
    /* least recently used goes first: use alpha again, then load delta: gamma goes */
    CHECK(manager_acquire(m, "alpha", &h, NULL) == SHIMMY_OK);
    manager_release(h);
    CHECK(manager_acquire(m, "delta", &h, NULL) == SHIMMY_OK);
    manager_release(h);
    manager_info_of(m, "gamma", &info);
    CHECK_EQ_INT(info.state, MANAGER_NOT_LOADED);
    manager_free(m);
    CHECK_EQ_INT(atomic_load(&l.opens), atomic_load(&l.closes));
    CHECK_EQ_INT(atomic_load(&l.freed_in_use), 0);
}

/* ---- keep_alive: the reaper unloads idle models ---- */

static void test_keep_alive(registry *reg) {
    test_loader l = {0};
    l.bytes = 100;
    manager *m = NULL;
    manager_options o = opts_for(&l, 1 << 20, 0.05, true);
    CHECK(manager_new(&o, reg, &m, NULL) == SHIMMY_OK);
    manager_handle *h = NULL, *busy = NULL;
    CHECK(manager_acquire(m, "alpha", &h, NULL) == SHIMMY_OK);
    manager_release(h);
    CHECK(manager_acquire(m, "beta", &busy, NULL) == SHIMMY_OK); /* held: must stay */
    manager_info info;
    for (int i = 0; i < 200; i++) { /* up to 2 s; normally ~0.1 s */
        manager_info_of(m, "alpha", &info);
        if (info.state == MANAGER_NOT_LOADED) break;
        usleep(10000);
    }
    CHECK_EQ_INT(info.state, MANAGER_NOT_LOADED);
    manager_info_of(m, "beta", &info);
    CHECK_EQ_INT(info.state, MANAGER_LOADED);
    manager_stats s;
    manager_get_stats(m, &s);
    CHECK(s.expired >= 1);
    manager_release(busy);
    CHECK_EQ_INT(manager_unload_idle(m, 0), 1);
    manager_free(m);
    CHECK_EQ_INT(atomic_load(&l.opens), atomic_load(&l.closes));
}

/* ---- a rescan may point a name at another file while it is loaded ---- */

static void test_registry_swap(const char *dir, registry *reg) {
    test_loader l = {0};
    l.bytes = 100;
    manager *m = NULL;
    manager_options o = opts_for(&l, 1 << 20, -1, false);
    CHECK(manager_new(&o, reg, &m, NULL) == SHIMMY_OK);
    manager_handle *old = NULL, *h = NULL;
    CHECK(manager_acquire(m, "alpha", &old, NULL) == SHIMMY_OK);
    test_model *tm = use(old);
    /* beta was used and unloaded: it holds nothing */
    CHECK(manager_acquire(m, "beta", &h, NULL) == SHIMMY_OK);
    manager_release(h);
    CHECK(manager_unload(m, "beta", NULL) == SHIMMY_OK);
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/v2", dir);
    CHECK(mkdir(sub, 0755) == 0);
    write_model(sub, "alpha.gguf", "llama");
    registry *r2 = scan_dir(sub);
    manager_set_registry(m, r2);
    registry_free(r2); /* the manager holds its own reference */
    CHECK(manager_acquire(m, "alpha", &h, NULL) == SHIMMY_OK);
    CHECK(strstr(manager_handle_path(h), "/v2/alpha.gguf") != NULL);
    CHECK(manager_handle_model(h) != manager_handle_model(old));
    manager_handle *gone = NULL;
    CHECK_EQ_INT(manager_acquire(m, "beta", &gone, NULL), SHIMMY_ERR_MODEL_NOT_FOUND);
    CHECK(gone == NULL);
    registry *cur = manager_get_registry(m);
    CHECK(cur && registry_count(cur) == 1);
    registry_free(cur);
    /* names the new registry lacks and that hold nothing are forgotten */
    manager_info infos[8];
    CHECK_EQ_INT(manager_list(m, infos, 8), 1);
    CHECK_STR(infos[0].name, "alpha");
    unuse(old, tm);
    manager_free(m);
    CHECK_EQ_INT(atomic_load(&l.opens), 3);
    CHECK_EQ_INT(atomic_load(&l.closes), 2); /* h is still held */
    manager_release(h);
    CHECK_EQ_INT(atomic_load(&l.closes), 3);
}

/* ---- stress: acquire/release on many threads while the budget, an unloader and registry
 * swaps churn ---- */

typedef struct stress_ctx {
    manager *m;
    int iters;
    unsigned seed;
    atomic_int *stop;
    int errors;
    int not_found;     /* names absent from the registry swapped in at that moment */
    registry *regs[2]; /* the swapper alternates between these */
} stress_ctx;

static const char *const stress_names[] = {"alpha", "beta", "gamma", "delta"};

static void *stress_user(void *arg) {
    stress_ctx *c = arg;
    for (int i = 0; i < c->iters; i++) {
        c->seed = c->seed * 1103515245u + 12345u;
        manager_handle *h = NULL;
        shimmy_status st = manager_acquire(c->m, stress_names[(c->seed >> 16) & 3], &h, NULL);
        if (st == SHIMMY_ERR_MODEL_NOT_FOUND) {
            c->not_found++;
            continue;
        }
        if (st != SHIMMY_OK) {
            c->errors++;
            continue;
        }
        test_model *tm = manager_handle_model(h);
        if (!tm || tm->magic != MODEL_MAGIC) c->errors++;
        atomic_fetch_add(&tm->in_use, 1);
        if ((c->seed >> 8) % 4 == 0) sched_yield();
        if (tm->magic != MODEL_MAGIC) c->errors++;
        atomic_fetch_sub(&tm->in_use, 1);
        manager_release(h);
    }
    return NULL;
}

static void *stress_unloader(void *arg) {
    stress_ctx *c = arg;
    while (!atomic_load(c->stop)) {
        c->seed = c->seed * 1103515245u + 12345u;
        if (c->seed & 0x100)
            manager_unload_idle(c->m, 0);
        else
            manager_unload(c->m, stress_names[(c->seed >> 16) & 3], NULL);
        manager_info infos[8];
        manager_list(c->m, infos, 8);
        usleep(200);
    }
    return NULL;
}

static void *stress_swapper(void *arg) {
    stress_ctx *c = arg;
    for (int k = 0; !atomic_load(c->stop); k ^= 1) {
        manager_set_registry(c->m, c->regs[k]);
        usleep(300);
    }
    manager_set_registry(c->m, c->regs[0]);
    return NULL;
}

/* reg2 lists alpha and beta only, as other files: every swap repoints two names and hides two */
static void test_stress(registry *reg, registry *reg2) {
    test_loader l = {0};
    l.bytes = 100;
    manager *m = NULL;
    manager_options o = opts_for(&l, 250, 0.001, true); /* tiny budget and keep_alive: churn */
    CHECK(manager_new(&o, reg, &m, NULL) == SHIMMY_OK);
#ifdef SHIMMY_TEST_TSAN
    int iters = 400;
#else
    int iters = 2000;
#endif
    enum { USERS = 4 };
    atomic_int stop = 0;
    pthread_t th[USERS + 2];
    stress_ctx c[USERS + 2];
    for (int i = 0; i < USERS + 2; i++) {
        c[i] = (stress_ctx){
            .m = m, .iters = iters, .seed = 7u + (unsigned)i, .stop = &stop, .regs = {reg, reg2}};
        pthread_create(&th[i], NULL,
                       i < USERS    ? stress_user
                       : i == USERS ? stress_unloader
                                    : stress_swapper,
                       &c[i]);
    }
    for (int i = 0; i < USERS; i++) pthread_join(th[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(th[USERS], NULL);
    pthread_join(th[USERS + 1], NULL);
    int errors = 0, not_found = 0;
    for (int i = 0; i < USERS; i++) {
        errors += c[i].errors;
        not_found += c[i].not_found;
    }
    CHECK_EQ_INT(errors, 0);
    CHECK(not_found < USERS * iters); /* most requests were served */
    CHECK_EQ_INT(atomic_load(&l.freed_in_use), 0);
    manager_stats s;
    manager_get_stats(m, &s);
    CHECK(s.loads >= 4);
    CHECK(s.evictions > 0); /* the budget really churned models while they were being used */
    CHECK_EQ_INT(s.loads, atomic_load(&l.opens));
    manager_free(m);
    CHECK_EQ_INT(atomic_load(&l.opens), atomic_load(&l.closes));
    CHECK_EQ_INT(atomic_load(&l.live), 0);
}

int main(void) {
    char dir[512];
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    write_model(dir, "alpha.gguf", "llama");
    write_model(dir, "beta.gguf", "llama");
    write_model(dir, "gamma.gguf", "qwen2");
    write_model(dir, "delta.gguf", "llama");
    registry *reg = scan_dir(dir);
    CHECK_EQ_INT(registry_count(reg), 4);
    char other[1024];
    snprintf(other, sizeof other, "%s/other", dir);
    CHECK(mkdir(other, 0755) == 0);
    write_model(other, "alpha.gguf", "llama");
    write_model(other, "beta.gguf", "llama");
    registry *reg2 = scan_dir(other);
    CHECK_EQ_INT(registry_count(reg2), 2);
    test_single_flight(reg);
    test_unload_in_use(reg);
    test_failure_and_retry(reg);
    test_budget_lru(reg);
    test_keep_alive(reg);
    test_stress(reg, reg2);
    registry_free(reg2);
    test_registry_swap(dir, reg);
    registry_free(reg);
    test_rm_rf(dir);
    return test_finish("manager");
}
