/* Shared unit-test support: counters, skips, test-data paths, temp dirs and a seeded PRNG. */
#include "test.h"

#include "gpu/gpu.h"
#include "model/model.h"

#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int test_failures;
int test_checks;

int test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}

const char *test_device_get(void) {
    const char *dev = getenv("SHIMMY_TEST_DEVICE");
    if (!dev) return NULL;
    shimmy_error err = {0};
    gpu_device_info info[8];
    if (gpu_list(info, 8, &err) <= 0) {
        char why[600];
        snprintf(why, sizeof why, "no Vulkan device (%s)", err.message);
        test_skip(why);
    }
    const char *nl = getenv("SHIMMY_TEST_GPU_LAYERS");
    printf("device %s: %s (%s), %s layers\n", dev, info[0].name, info[0].driver, nl ? nl : "all");
    return dev;
}

int test_device_layers(void) {
    const char *nl = getenv("SHIMMY_TEST_GPU_LAYERS");
    return nl ? atoi(nl) : -1;
}

static bool held_by(void *ud, const void *data) {
    const model_device *d = gpu_model_device(ud);
    return d && d->ops->holds(d->impl, data);
}

int test_model_repack(model *m, gpu_model *gm) {
    if (!m) return 0;
    shimmy_error err = {0};
    CHECK_MSG(model_repack(m, gm ? held_by : NULL, gm, 0, &err) == SHIMMY_OK, "repack: %s",
              err.message);
    return m->n_packed;
}

/* log-softmax in double, as llama-perplexity sums */
static void log_softmax(const float *l, int32_t n, double *out) {
    float mx = l[0];
    for (int32_t j = 1; j < n; j++) mx = l[j] > mx ? l[j] : mx;
    double s = 0;
    for (int32_t j = 0; j < n; j++) s += exp((double)(l[j] - mx));
    const double lse = log(s);
    for (int32_t j = 0; j < n; j++) out[j] = (double)(l[j] - mx) - lse;
}

static int32_t argmax_d(const double *x, int32_t n) {
    int32_t b = 0;
    for (int32_t j = 1; j < n; j++)
        if (x[j] > x[b]) b = j;
    return b;
}

static void kl_add(const float *la, const float *lb, int32_t V, int32_t next, double *pa,
                   double *pb, test_kl *st) {
    log_softmax(la, V, pa);
    log_softmax(lb, V, pb);
    double kl = 0;
    for (int32_t j = 0; j < V; j++) kl += exp(pa[j]) * (pa[j] - pb[j]);
    st->kl += kl;
    st->nll_a -= pa[next];
    st->nll_b -= pb[next];
    st->top_same += argmax_d(pa, V) == argmax_d(pb, V);
    st->n++;
}

/* Each chunk into both contexts, in one step (decode = false: logits of every position) or as
 * its first half and then one token per step; the positions n_ctx/2 .. n_ctx-2 scored. */
static void kl_run(model_ctx *a, model_ctx *b, int32_t n_ctx, const int32_t *toks, long n_tok,
                   int32_t bos, long chunks, bool decode, test_kl *st) {
    const int32_t V = a->m->hp.n_vocab, half = n_ctx / 2;
    double *pa = malloc(sizeof(double) * (size_t)V), *pb = malloc(sizeof(double) * (size_t)V);
    int32_t *chunk = malloc(sizeof *chunk * (size_t)n_ctx);
    model_ctx *c[2] = {a, b};
    shimmy_error err = {0};
    for (long ci = 0; pa && pb && chunk && ci < chunks && (ci + 1) * n_ctx <= n_tok; ci++) {
        memcpy(chunk, toks + ci * n_ctx, sizeof *chunk * (size_t)n_ctx);
        chunk[0] = bos;
        bool ok = true;
        for (int k = 0; k < 2; k++) {
            model_ctx_truncate(c[k], 0);
            ok &= model_ctx_eval(c[k], chunk, decode ? half : n_ctx, decode ? 1 : n_ctx, &err) ==
                  SHIMMY_OK;
        }
        CHECK_MSG(ok, "%s", err.message);
        for (int32_t i = half; ok && i < n_ctx - 1; i++) {
            if (decode) {
                for (int k = 0; k < 2; k++)
                    ok &= model_ctx_eval(c[k], &chunk[i], 1, 1, &err) == SHIMMY_OK;
                CHECK_MSG(ok, "%s", err.message);
                if (!ok) break;
            }
            const int32_t row = decode ? 0 : i;
            kl_add(model_ctx_logits(a, row), model_ctx_logits(b, row), V, chunk[i + 1], pa, pb, st);
        }
    }
    free(pa);
    free(pb);
    free(chunk);
}

void test_kl_decode(model_ctx *a, model_ctx *b, int32_t n_ctx, const int32_t *toks, long n_tok,
                    int32_t bos, long chunks, test_kl *st) {
    kl_run(a, b, n_ctx, toks, n_tok, bos, chunks, true, st);
}

void test_kl_chunks(model_ctx *a, model_ctx *b, int32_t n_ctx, const int32_t *toks, long n_tok,
                    int32_t bos, long chunks, test_kl *st) {
    kl_run(a, b, n_ctx, toks, n_tok, bos, chunks, false, st);
}

void test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

const char *test_data_path(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("SHIMMY_TESTDATA");
    if (!root || !*root) return NULL;
    snprintf(buf, cap, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

const char *test_require_data(const char *rel, char *buf, size_t cap) {
    if (!test_data_path(rel, buf, cap)) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "test data %s not found (set SHIMMY_TESTDATA to ../shared/testdata)", rel);
        test_skip(msg);
    }
    return buf;
}

char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    }
    return buf;
}

const char *test_tmpdir(char *buf, size_t cap) {
    const char *t = getenv("TMPDIR");
    snprintf(buf, cap, "%s/shimmy-test-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(buf);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void test_rm_rf(const char *path) {
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void test_rng_seed(test_rng *r, unsigned long long seed) {
    r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

unsigned long long test_rng_u64(test_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

double test_rng_uniform(test_rng *r) {
    return (double)(test_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double test_rng_normal(test_rng *r) {
    double u1 = test_rng_uniform(r), u2 = test_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double test_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#ifdef SHIMMY_TEST_SANITIZED
/* LeakSanitizer's hook: Vulkan drivers keep allocations where LSan cannot see them (lavapipe
 * reports one 48-byte block per pipeline, which lives as long as the device, until exit), in
 * every test that opens a device (tests/gpu, and the others under SHIMMY_TEST_DEVICE). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libvulkan\nleak:libnvidia-\nleak:libLLVM\n";
}
#endif
