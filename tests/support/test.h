/*
 * Minimal test harness shared by the unit tests: CHECK macros that count failures and keep
 * going, skipping (exit 77, CTest's SKIP_RETURN_CODE) when shared test data is absent.
 */
#ifndef SHIMMY_TEST_H
#define SHIMMY_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int test_failures;
extern int test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        CHECK_MSG(va_ == vb_, "%lld != %lld", va_, vb_);                                           \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double va_ = (double)(a), vb_ = (double)(b);                                               \
        CHECK_MSG(fabs(va_ - vb_) <= (tol), "%.9g vs %.9g (tol %g)", va_, vb_, (double)(tol));     \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        CHECK_MSG(sa_ &&sb_ &&strcmp(sa_, sb_) == 0, "\"%s\" != \"%s\"", sa_ ? sa_ : "(null)",     \
                  sb_ ? sb_ : "(null)");                                                           \
    } while (0)

/* Prints the summary and returns the process exit code. */
int test_finish(const char *name);

/* SHIMMY_TEST_DEVICE (CTest's unit/gpu runs of the model tests): NULL when unset; else that
 * device string (gpu.h's forms), once a Vulkan device is seen to exist (none: the test is
 * skipped, exit 77, saying why), the device and SHIMMY_TEST_GPU_LAYERS printed. */
const char *test_device_get(void);
/* SHIMMY_TEST_GPU_LAYERS: the layers a model gets on the test device (-1 = every layer). */
int test_device_layers(void);

/* What the engine does after a model's device copies are made (model_repack: the CPU's
 * layouts for the weights the device does not hold; gm may be NULL); returns how many weights
 * were repacked (0 with SHIMMY_REPACK=0 or on a CPU without such layouts). */
struct model;
struct gpu_model;
int test_model_repack(struct model *m, struct gpu_model *gm);

/* Two forward paths compared on a text, llama-perplexity's way (chunks of n_ctx tokens, BOS
 * first, positions n_ctx/2 .. n_ctx-2 scored): a is the reference. Sums the negative
 * log-likelihoods of each, the KL divergence of b's next-token distribution from a's and the
 * positions where their top tokens agree; the contexts must take n_ctx logits per step. */
typedef struct test_kl {
    double nll_a, nll_b, kl;
    long n, top_same;
} test_kl;
struct model_ctx;
void test_kl_chunks(struct model_ctx *a, struct model_ctx *b, int32_t n_ctx, const int32_t *toks,
                    long n_tok, int32_t bos, long chunks, test_kl *st);
/* The same positions reached by decode steps: each chunk's first half as one prompt, then one
 * token per step (the path a generation takes: one entry per sequence). */
void test_kl_decode(struct model_ctx *a, struct model_ctx *b, int32_t n_ctx, const int32_t *toks,
                    long n_tok, int32_t bos, long chunks, test_kl *st);

/* Exits 77 (skip) with a message. */
void test_skip(const char *why) __attribute__((noreturn));

/* $SHIMMY_TESTDATA/<rel> if that path exists, else NULL. */
const char *test_data_path(const char *rel, char *buf, size_t cap);
/* Same, but skips the test with a clear message when the file is absent. */
const char *test_require_data(const char *rel, char *buf, size_t cap);

/* Reads a whole file (NUL-terminated); NULL on failure. Caller frees. */
char *test_read_file(const char *path, size_t *len);

/* A fresh temporary directory (mkdtemp under $TMPDIR); caller removes it with test_rm_rf. */
const char *test_tmpdir(char *buf, size_t cap);
void test_rm_rf(const char *path);

/* Deterministic PRNG for fixtures (xorshift64*; same seed, same stream on every machine). */
typedef struct test_rng {
    unsigned long long s;
} test_rng;
void test_rng_seed(test_rng *r, unsigned long long seed);
unsigned long long test_rng_u64(test_rng *r);
double test_rng_uniform(test_rng *r); /* [0,1) */
double test_rng_normal(test_rng *r);  /* N(0,1), Box-Muller */

/* The median of v[0..n) (n >= 1); sorts v in place. For benchmark programs. */
double test_median(double *v, int n);

#endif
