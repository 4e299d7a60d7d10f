/*
 * Sliding-window layers and their KV rings, held to agreement between evaluation orders. With
 * F32 weights and an F32 cache every order computes the same function up to float rounding, so a
 * prompt longer than every window (and than the ring of cells a windowed layer keeps) must give
 * the same logits at every position, within 1e-4 (2e-4 for gemma2, below), whether it is evaluated
 * as one batch (the ring never wraps inside it), in chunks of 7 that straddle the ring's wrap,
 * token by token (a ring of 32 cells that wraps twice), or as two sequences interleaved in one
 * batch; and truncating the cache (model_ctx_truncate) then evaluating again must equal the fresh
 * run.
 *
 * The files are rewritten first: F16 weights widened to F32 and every ffn_up zeroed. The FFN's
 * GELU is ggml's F16 table (model_gelu), a step function at F16 resolution: a 1e-7 difference of
 * summation order (a batch's tiled products, a ring's cell order) moves a gate value across a
 * step now and then, and these random models amplify the step to 2e-3..2e-2 in the logits (with
 * an F32 GELU all orders agree to 2e-5). Without the FFN nothing is discontinuous, and
 * everything under test (windows, rings, per-layer rope bases, soft-caps, post-norms) remains.
 * Files: tiny-gemma3-F32 (window 8 on 7 of 8 layers, two rope bases) and tiny-gemma2-F16
 * (window 8 on even layers, soft-capped scores and logits).
 */
#include "gguf/gguf.h"
#include "model/model.h"
#include "test.h"

#include <stdbool.h>

#define N_TOK 72 /* > 2 rings of 32 cells, > 9 windows of 8 */

typedef struct run {
    model_ctx *c;
    float *logits; /* (N_TOK, n_vocab): the logits of every position evaluated so far */
} run;

static model_ctx *ctx_new(const model *m, int32_t n_batch, int32_t n_seq) {
    const model_ctx_params p = {.n_ctx = 128,
                                .n_seq = n_seq,
                                .n_batch = n_batch,
                                .n_logits = n_batch,
                                .kv_type = MODEL_KV_F32};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK_MSG(model_ctx_new(m, &p, &c, &err) == SHIMMY_OK, "%s", err.message);
    return c;
}

/* Evaluates tok[from..to) of sequence 0 in chunks of `chunk`, keeping every position's logits. */
static void eval_range(model_ctx *c, const int32_t *tok, int32_t from, int32_t to, int32_t chunk,
                       float *logits, int32_t n_vocab) {
    shimmy_error err;
    for (int32_t i = from; i < to; i += chunk) {
        const int32_t n = to - i < chunk ? to - i : chunk;
        if (model_ctx_eval(c, tok + i, n, n, &err) != SHIMMY_OK) {
            CHECK_MSG(0, "eval at %d: %s", i, err.message);
            return;
        }
        for (int32_t j = 0; j < n; j++)
            memcpy(logits + (int64_t)(i + j) * n_vocab, model_ctx_logits(c, j),
                   sizeof(float) * (size_t)n_vocab);
    }
}

static double max_diff(const float *a, const float *b, int32_t from, int32_t to, int32_t n_vocab) {
    double d = 0.0;
    for (int64_t i = (int64_t)from * n_vocab; i < (int64_t)to * n_vocab; i++) {
        const double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e; /* NaN sticks */
    }
    return d;
}

static void check_orders(const char *name, const model *m, double tol) {
    const int32_t V = m->hp.n_vocab;
    CHECK_MSG(m->hp.n_swa > 0 && m->hp.n_swa < 32, "%s: expected a small sliding window", name);
    int32_t tok[2][N_TOK];
    test_rng rng;
    test_rng_seed(&rng, 17);
    for (int s = 0; s < 2; s++)
        for (int32_t i = 0; i < N_TOK; i++) tok[s][i] = 1 + (int32_t)(test_rng_u64(&rng) % 31000);
    float *ref = malloc(sizeof(float) * (size_t)N_TOK * V * 2);
    float *got = malloc(sizeof(float) * (size_t)N_TOK * V);
    float *ref1 = ref + (size_t)N_TOK * V; /* the second stream, one batch */

    /* the whole prompt in one batch, each stream alone */
    for (int s = 0; s < 2; s++) {
        model_ctx *c = ctx_new(m, N_TOK, 1);
        if (!c) goto out;
        eval_range(c, tok[s], 0, N_TOK, N_TOK, s ? ref1 : ref, V);
        model_ctx_free(c);
    }
    static const int32_t chunks[] = {1, 7};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        model_ctx *c = ctx_new(m, chunks[k], 1);
        if (!c) goto out;
        eval_range(c, tok[0], 0, N_TOK, chunks[k], got, V);
        double d = max_diff(ref, got, 0, N_TOK, V);
        printf("%-18s chunks of %d vs one batch: max |dlogit| %.2e\n", name, chunks[k], d);
        CHECK_MSG(d <= tol, "%s: chunks of %d differ from one batch by %g", name, chunks[k], d);
        if (chunks[k] == 7) {
            /* just behind the end: the ring still holds every window the next entries need */
            int32_t keep = model_ctx_truncate(c, N_TOK - 2);
            CHECK_EQ_INT(keep, N_TOK - 2);
            eval_range(c, tok[0], keep, N_TOK, 7, got, V);
            d = max_diff(ref, got, keep, N_TOK, V);
            CHECK_MSG(d <= tol, "%s: truncated to %d and evaluated again: %g", name, keep, d);
            /* far behind: the ring has overwritten what position 30 looks back on; the context
             * says from where it must be evaluated again, and that run equals the fresh one */
            keep = model_ctx_truncate(c, 30);
            CHECK(keep >= 0 && keep <= 30);
            CHECK_EQ_INT(model_ctx_n_past(c), keep);
            eval_range(c, tok[0], keep, N_TOK, 7, got, V);
            d = max_diff(ref, got, keep, N_TOK, V);
            printf("%-18s truncated to 30 (kept %d), evaluated again: max |dlogit| %.2e\n", name,
                   keep, d);
            CHECK_MSG(d <= tol, "%s: truncated to %d and evaluated again: %g", name, keep, d);
        }
        model_ctx_free(c);
    }

    /* two sequences interleaved: 4 entries of each per step, each in its own rings */
    {
        model_ctx *c = ctx_new(m, 8, 2);
        if (!c) goto out;
        float *got1 = malloc(sizeof(float) * (size_t)N_TOK * V);
        int32_t bt[8], bs[8];
        uint8_t want[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        shimmy_error err;
        for (int32_t i = 0; i < N_TOK; i += 4) {
            for (int j = 0; j < 8; j++) {
                bs[j] = j % 2;
                bt[j] = tok[j % 2][i + j / 2];
            }
            const model_batch b = {.n = 8, .token = bt, .seq = bs, .logits = want};
            if (model_ctx_decode(c, &b, &err) != SHIMMY_OK) {
                CHECK_MSG(0, "decode at %d: %s", i, err.message);
                break;
            }
            for (int j = 0; j < 8; j++)
                memcpy((j % 2 ? got1 : got) + (int64_t)(i + j / 2) * V, model_ctx_logits(c, j),
                       sizeof(float) * (size_t)V);
        }
        const double d0 = max_diff(ref, got, 0, N_TOK, V);
        const double d1 = max_diff(ref1, got1, 0, N_TOK, V);
        printf("%-18s two interleaved sequences vs one batch each: max |dlogit| %.2e, %.2e\n", name,
               d0, d1);
        CHECK_MSG(d0 <= tol && d1 <= tol, "%s: interleaved sequences differ by %g / %g", name, d0,
                  d1);
        free(got1);
        model_ctx_free(c);
    }
out:
    free(ref);
    free(got);
}

/* f's tensors in F32 (F16 ones widened) with every blk.*.ffn_up.weight zeroed, written to path. */
static bool rewrite(const gguf_file *f, const char *path) {
    gguf_writer *w = NULL;
    shimmy_error err;
    if (gguf_writer_new(&w, &err) != SHIMMY_OK) return false;
    gguf_writer_copy_kv(w, f, "");
    bool ok = true;
    for (size_t i = 0; i < gguf_n_tensors(f) && ok; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        const int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        const bool zero = strstr(name, ".ffn_up.weight") != NULL;
        if (t->type != GGUF_T_F16 && t->type != GGUF_T_F32) {
            CHECK_MSG(0, "tensor %s: expected F16 or F32", name);
            ok = false;
            break;
        }
        float *x = calloc((size_t)n, sizeof(float));
        ok = x != NULL;
        if (ok) {
            if (!zero) quant_get(t->type)->to_float(t->data, x, n);
            gguf_writer_add_tensor(w, name, GGUF_T_F32, t->n_dims, t->ne, x);
        }
        free(x);
    }
    ok = ok && gguf_writer_write(w, path, &err) == SHIMMY_OK;
    gguf_writer_free(w);
    return ok;
}

static void check_file(const char *name, const char *rel, double tol) {
    char path[1024], tmp[1024], copy[1200];
    test_require_data(rel, path, sizeof path);
    gguf_file *f = NULL, *g = NULL;
    model *m = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    if (!f || !test_tmpdir(tmp, sizeof tmp)) {
        gguf_close(f);
        return;
    }
    snprintf(copy, sizeof copy, "%s/copy.gguf", tmp);
    const bool ok = rewrite(f, copy);
    CHECK_MSG(ok, "cannot write %s", copy);
    if (ok) CHECK_MSG(gguf_open(copy, &g, &err) == SHIMMY_OK, "%s", err.message);
    if (g) CHECK_MSG(model_load(g, &m, &err) == SHIMMY_OK, "%s: %s", name, err.message);
    if (m) check_orders(name, m, tol);
    model_free(m);
    gguf_close(g);
    gguf_close(f);
    test_rm_rf(tmp);
}

/* Which layers are windowed: Gemma 3's default period 6, or the file's
 * attention.sliding_window_pattern as a period or as one flag per layer; an array of the wrong
 * length is refused. */
static void check_pattern(const char *dir) {
    char path[1024], copy[1200];
    test_require_data("models/tiny-gemma3-F32.gguf", path, sizeof path);
    snprintf(copy, sizeof copy, "%s/pattern.gguf", dir);
    static const bool flags[8] = {true, false, false, true, true, false, true, false};
    static const struct {
        int kind;         /* 0 none, 1 period 2, 2 flags, 3 flags of the wrong length */
        const char *want; /* 'w' windowed, '.' global; NULL: refused */
    } cases[] = {{0, "wwwww.ww"}, {1, "w.w.w.w."}, {2, "w..ww.w."}, {3, NULL}};
    gguf_file *f = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    for (size_t k = 0; f && k < sizeof cases / sizeof cases[0]; k++) {
        gguf_writer *w = NULL;
        CHECK(gguf_writer_new(&w, &err) == SHIMMY_OK);
        if (!w) break;
        gguf_writer_copy_kv(w, f, "");
        const char *key = "gemma3.attention.sliding_window_pattern";
        if (cases[k].kind == 1) gguf_writer_set_u32(w, key, 2);
        if (cases[k].kind >= 2)
            gguf_writer_set_arr(w, key, GGUF_VT_BOOL, flags, cases[k].kind == 2 ? 8 : 7);
        for (size_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
        }
        CHECK_MSG(gguf_writer_write(w, copy, &err) == SHIMMY_OK, "%s", err.message);
        gguf_writer_free(w);
        gguf_file *g = NULL;
        model *m = NULL;
        CHECK_MSG(gguf_open(copy, &g, &err) == SHIMMY_OK, "%s", err.message);
        const shimmy_status st = g ? model_load(g, &m, &err) : SHIMMY_ERR_IO;
        if (!cases[k].want) {
            CHECK_EQ_INT(st, SHIMMY_ERR_FORMAT);
        } else if (m) {
            char got[9] = {0};
            for (int il = 0; il < 8 && il < m->hp.n_layer; il++)
                got[il] = m->layers[il].window == 8 ? 'w' : m->layers[il].window ? '?' : '.';
            CHECK_STR(got, cases[k].want);
        } else {
            CHECK_MSG(0, "case %zu: %s", k, err.message);
        }
        model_free(m);
        gguf_close(g);
    }
    gguf_close(f);
}

int main(void) {
    check_file("tiny-gemma3", "models/tiny-gemma3-F32.gguf", 1e-4);
    /* its q and k weights are tripled so that the soft-cap bites: scores 9x larger, a sharper
     * softmax, and float noise up to 1e-4 at any position (uniform along the prompt, where a
     * ring error would start where the ring wraps, at 32) */
    check_file("tiny-gemma2", "models/tiny-gemma2-F16.gguf", 2e-4);
    char dir[1024];
    if (test_tmpdir(dir, sizeof dir)) {
        check_pattern(dir);
        test_rm_rf(dir);
    }
    return test_finish("model/swa");
}
