/* core: status table, error filling, UTF-8, arena, thread pool. */
#include "core/core.h"
#include "test.h"

#include <string.h>

static void test_status(void) {
    CHECK_STR(shimmy_status_name(SHIMMY_ERR_FORMAT), "SHIMMY_ERR_FORMAT");
    CHECK_EQ_INT(shimmy_status_http(SHIMMY_ERR_MODEL_NOT_FOUND), 404);
    CHECK_EQ_INT(shimmy_status_http(SHIMMY_ERR_BUSY), 503);
    CHECK_STR(shimmy_status_name((shimmy_status)9999), "SHIMMY_STATUS_UNKNOWN");
    shimmy_error e;
    shimmy_error_clear(&e);
    CHECK(core_error(&e, SHIMMY_ERR_IO, "a.gguf", "cannot open: %s", "No such file") ==
          SHIMMY_ERR_IO);
    CHECK_STR(e.message, "cannot open: No such file");
    CHECK_STR(e.where, "a.gguf");
    CHECK(core_error(NULL, SHIMMY_ERR_IO, NULL, "x") == SHIMMY_ERR_IO);
}

static void test_utf8(void) {
    CHECK(core_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    CHECK(!core_utf8_valid("\xc3", 1));             /* truncated */
    CHECK(!core_utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!core_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!core_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(core_utf8_valid("\xef\xbf\xbd", 3));      /* U+FFFD itself */
    uint32_t cp;
    CHECK_EQ_INT(core_utf8_decode("\xe2\x82\xac", 3, &cp), 3);
    CHECK_EQ_INT(cp, 0x20AC);
    char buf[4];
    CHECK_EQ_INT(core_utf8_encode(0x1F600, buf), 4);
    CHECK(memcmp(buf, "\xf0\x9f\x98\x80", 4) == 0);
    CHECK_EQ_INT(core_utf8_len(0x80), 0);
}

static void test_arena(void) {
    core_arena a;
    CHECK(core_arena_init(&a, 1000, NULL) == SHIMMY_OK);
    void *p = core_arena_alloc(&a, 100), *q = core_arena_alloc(&a, 100);
    CHECK(p && q && ((uintptr_t)q % 64) == 0);
    CHECK(core_arena_alloc(&a, 2000) == NULL);
    core_arena_reset(&a);
    CHECK(core_arena_alloc(&a, 900) != NULL);
    core_arena_deinit(&a);
}

typedef struct {
    long long *sums;
    int n;
} sum_ctx;

static void sum_task(void *vctx, int ith, int nth) {
    sum_ctx *c = vctx;
    int64_t lo, hi;
    core_split_range(c->n, ith, nth, &lo, &hi);
    long long s = 0;
    for (int64_t i = lo; i < hi; i++) s += i;
    c->sums[ith] = s;
}

static void task_noop(void *ctx, int ith, int nth) {
    (void)ctx;
    (void)ith;
    (void)nth;
}

static void test_pool(void) {
    for (int threads = 1; threads <= 4; threads++) {
        core_pool *p;
        CHECK(core_pool_new(threads, &p, NULL) == SHIMMY_OK);
        long long sums[4];
        sum_ctx c = {sums, 100003};
        for (int rep = 0; rep < 300; rep++) {
            core_pool_run(p, sum_task, &c);
            long long total = 0;
            for (int i = 0; i < threads; i++) total += sums[i];
            if (total != 100003LL * 100002 / 2) {
                CHECK_MSG(0, "threads %d rep %d total %lld", threads, rep, total);
                break;
            }
        }
        core_pool_free(p);
    }
    int64_t lo, hi, covered = 0;
    for (int i = 0; i < 7; i++) {
        core_split_range(20, i, 7, &lo, &hi);
        CHECK_EQ_INT(lo, covered);
        covered = hi;
    }
    CHECK_EQ_INT(covered, 20);
    CHECK(core_physical_cores() >= 1);
}

/* Item runs: every item exactly once, slots in range and never two pieces on one slot at once,
 * across runs of many sizes (workers arrive late for some: more threads than cores here). */
typedef struct items_ctx {
    int *hits;
    int busy[8];
    int bad_slot, overlap;
} items_ctx;

static void items_fn(void *ctx, int64_t lo, int64_t hi, int slot) {
    items_ctx *c = ctx;
    if (slot < 0 || slot >= 8) {
        __atomic_store_n(&c->bad_slot, 1, __ATOMIC_RELAXED);
        return;
    }
    if (__atomic_exchange_n(&c->busy[slot], 1, __ATOMIC_ACQ_REL))
        __atomic_store_n(&c->overlap, 1, __ATOMIC_RELAXED);
    for (int64_t i = lo; i < hi; i++) __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&c->busy[slot], 0, __ATOMIC_RELEASE);
}

static void test_pool_items(void) {
    enum { MAX = 5000 };
    static int hits[MAX];
    for (int threads = 1; threads <= 8; threads *= 2) {
        core_pool *p;
        CHECK(core_pool_new(threads, &p, NULL) == SHIMMY_OK);
        items_ctx c = {.hits = hits};
        int wrong = 0;
        for (int rep = 0; rep < 600 && !wrong; rep++) {
            const int64_t n = rep % 3 == 0 ? rep % 17 : 1 + (rep * 7919) % MAX;
            memset(hits, 0, sizeof hits);
            if (rep % 5 == 4) /* a task run in between: the two kinds alternate in a decode step */
                core_pool_run(p, task_noop, NULL);
            core_pool_run_items(p, items_fn, &c, n);
            for (int64_t i = 0; i < MAX; i++)
                if (hits[i] != (i < n)) {
                    CHECK_MSG(0, "threads %d rep %d n %lld: item %lld ran %d times", threads, rep,
                              (long long)n, (long long)i, hits[i]);
                    wrong = 1;
                    break;
                }
        }
        CHECK(!c.bad_slot);
        CHECK(!c.overlap);
        core_pool_free(p);
    }
    core_pool_run_items(NULL, items_fn, &(items_ctx){.hits = hits}, 3); /* no pool: the caller */
}

int main(void) {
    test_status();
    test_utf8();
    test_arena();
    test_pool();
    test_pool_items();
    return test_finish("core");
}
