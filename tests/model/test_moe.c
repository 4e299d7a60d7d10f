/*
 * Mixture-of-experts models (qwen3moe, gpt-oss; F16, K-quant and MXFP4 experts):
 *  - a prompt evaluated in one batch, in chunks of 7 and token by token gives the same logits
 *    at every position (F32 cache, within 1e-4): the per-expert grouping of a batch computes
 *    each token as a single step does, and gpt-oss's sliding-window ring (window 16, a 40-token
 *    prompt) and sinks behave the same whatever the step size. The files are widened to F32
 *    weights first: a batch's dense products sum in the reference's tiled order and a single
 *    token's in the plain one, and with F16 or 8-bit activations a 1e-7 difference flips a
 *    rounding now and then, which these random models amplify to 1e-2..1e-1 in the logits;
 *  - two sequences sharing steps get bit for bit the logits they get alone (the files as
 *    they are, F16 cache);
 *  - experts whose gate and up need different activation types work;
 *  - MXFP4 and K-quant experts packed per expert on first use (where the CPU has their layout):
 *    only routed experts, all three matrices, the same logits alone and sharing steps, within
 *    float rounding of the row kernels;
 *  - qwen2moe's shared expert: a qwen2 file whose FFN becomes the shared expert of a qwen2moe
 *    file (the routed experts contributing 0) gives the qwen2 file's logits bit for bit;
 *  - files with a broken expert tensor, a missing expert bias or an impossible expert count
 *    are refused with an error naming the tensor or key.
 */
#include "gguf/gguf.h"
#include "model/model.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N_PROMPT = 40 };

/* Logits of every prompt position, the prompt fed `chunk` tokens per step (F32 cache). */
static void run_chunked(const model *m, const int32_t *prompt, int32_t chunk, float *out) {
    model_ctx_params cp = {
        .n_ctx = 64, .n_batch = chunk, .n_logits = chunk, .kv_type = MODEL_KV_F32};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK_MSG(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK, "%s", err.message);
    if (!c) return;
    const int32_t V = m->hp.n_vocab;
    for (int32_t p = 0; p < N_PROMPT; p += chunk) {
        const int32_t n = N_PROMPT - p < chunk ? N_PROMPT - p : chunk;
        CHECK_MSG(model_ctx_eval(c, prompt + p, n, n, &err) == SHIMMY_OK, "%s", err.message);
        for (int32_t i = 0; i < n; i++)
            memcpy(out + (size_t)(p + i) * V, model_ctx_logits(c, i), sizeof(float) * (size_t)V);
    }
    model_ctx_free(c);
}

static void check_steps(const char *name, const model *m, const int32_t *prompt) {
    const int32_t V = m->hp.n_vocab;
    const size_t n = (size_t)N_PROMPT * (size_t)V;
    float *whole = calloc(n, sizeof(float)), *one = calloc(n, sizeof(float)),
          *chunks = calloc(n, sizeof(float));
    run_chunked(m, prompt, N_PROMPT, whole);
    run_chunked(m, prompt, 1, one);
    run_chunked(m, prompt, 7, chunks);
    double worst_one = 0, worst_chunk = 0;
    for (size_t i = 0; i < n; i++) {
        worst_one = fmax(worst_one, fabs((double)whole[i] - one[i]));
        worst_chunk = fmax(worst_chunk, fabs((double)whole[i] - chunks[i]));
    }
    printf("%-30s batch vs one-by-one %.2e, vs chunks of 7 %.2e\n", name, worst_one, worst_chunk);
    CHECK_MSG(worst_one <= 1e-4, "%s: one batch and token by token differ by %g", name, worst_one);
    CHECK_MSG(worst_chunk <= 1e-4, "%s: one batch and chunks differ by %g", name, worst_chunk);
    free(whole);
    free(one);
    free(chunks);
}

/* Sequence 1's prompt shares its steps with sequence 0's decode; both match their solo runs. */
static void check_shared_steps(const char *name, const model *m, const int32_t *prompt) {
    enum { P0 = 9, P1 = 13, GEN = 4 };
    const int32_t V = m->hp.n_vocab;
    const int32_t *pr[2] = {prompt, prompt + P0};
    const int32_t np[2] = {P0, P1};
    const int32_t *gen = prompt + P0 + P1; /* teacher-forced tokens */
    float *alone = calloc((size_t)2 * (GEN + 1) * V, sizeof(float));
    float *both = calloc((size_t)2 * (GEN + 1) * V, sizeof(float));
    shimmy_error err;
    for (int s = 0; s < 2; s++) {
        model_ctx_params cp = {.n_ctx = 64, .n_batch = 32, .kv_type = MODEL_KV_F16};
        model_ctx *c = NULL;
        CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
        if (!c) continue;
        CHECK(model_ctx_eval(c, pr[s], np[s], 1, &err) == SHIMMY_OK);
        memcpy(alone + (size_t)s * (GEN + 1) * V, model_ctx_logits(c, 0), sizeof(float) * V);
        for (int g = 0; g < GEN; g++) {
            CHECK(model_ctx_eval(c, &gen[g], 1, 1, &err) == SHIMMY_OK);
            memcpy(alone + ((size_t)s * (GEN + 1) + g + 1) * V, model_ctx_logits(c, 0),
                   sizeof(float) * V);
        }
        model_ctx_free(c);
    }
    model_ctx_params cp = {
        .n_ctx = 64, .n_seq = 2, .n_batch = 32, .n_logits = 2, .kv_type = MODEL_KV_F16};
    model_ctx *c = NULL;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
    if (c) {
        /* step 0: sequence 0's prompt; step 1: sequence 0's first token + sequence 1's prompt;
         * then one token of each per step */
        int32_t tok[32], seq[32];
        uint8_t want[32];
        int fed[2] = {-1, -1};
        for (int step = 0; step <= GEN + 1; step++) {
            int n = 0, owner[2], n_owner = 0;
            for (int s = 0; s < 2; s++) {
                if (fed[s] < 0 && step >= s) {
                    for (int i = 0; i < np[s]; i++, n++) {
                        tok[n] = pr[s][i];
                        seq[n] = s;
                        want[n] = i == np[s] - 1;
                    }
                } else if (fed[s] >= 0 && fed[s] < GEN) {
                    tok[n] = gen[fed[s]];
                    seq[n] = s;
                    want[n++] = 1;
                } else
                    continue;
                owner[n_owner++] = s;
            }
            if (!n) continue;
            const model_batch b = {.n = n, .token = tok, .seq = seq, .logits = want};
            CHECK(model_ctx_decode(c, &b, &err) == SHIMMY_OK);
            for (int k = 0; k < n_owner; k++) {
                const int s = owner[k], slot = fed[s] + 1;
                memcpy(both + ((size_t)s * (GEN + 1) + slot) * V, model_ctx_logits(c, k),
                       sizeof(float) * V);
                fed[s]++;
            }
        }
        model_ctx_free(c);
    }
    CHECK_MSG(memcmp(alone, both, sizeof(float) * 2 * (GEN + 1) * V) == 0,
              "%s: two sequences sharing steps differ from their solo runs", name);
    free(alone);
    free(both);
}

/* Writes src's keys and tensors to path, with tensor `drop` left out, tensor `reshape` given
 * a last dimension one smaller (its data cut to match), the u32 key `key` set to val, and the
 * tensors whose names end with `widen` ("": all; NULL: none) widened to F32. */
static bool rewrite(const gguf_file *src, const char *path, const char *drop, const char *reshape,
                    const char *key, uint32_t val, const char *widen) {
    gguf_writer *w = NULL;
    shimmy_error err;
    if (gguf_writer_new(&w, &err) != SHIMMY_OK) return false;
    gguf_writer_copy_kv(w, src, "");
    if (key) gguf_writer_set_u32(w, key, val);
    bool ok = true;
    for (size_t i = 0; i < gguf_n_tensors(src) && ok; i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        char name[128];
        gguf_str_copy(t->name, name, sizeof name);
        if (drop && !strcmp(name, drop)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (reshape && !strcmp(name, reshape)) ne[t->n_dims - 1]--;
        const quant_traits *qt = quant_get(t->type);
        const size_t nl = strlen(name), wl = widen ? strlen(widen) : 0;
        if (!widen || (wl && (nl < wl || strcmp(name + nl - wl, widen))) || t->type == GGUF_T_F32 ||
            !qt || !qt->to_float) {
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, t->data);
            continue;
        }
        const int64_t rows = ne[1] * ne[2] * ne[3];
        float *f32 = malloc(sizeof(float) * (size_t)(rows * ne[0]));
        ok = f32 != NULL;
        for (int64_t r = 0; ok && r < rows; r++)
            qt->to_float((const unsigned char *)t->data + (size_t)r * quant_row_bytes(qt, ne[0]),
                         f32 + r * ne[0], ne[0]);
        if (ok) gguf_writer_add_tensor(w, name, GGUF_T_F32, t->n_dims, ne, f32);
        free(f32);
    }
    ok = ok && gguf_writer_write(w, path, &err) == SHIMMY_OK;
    gguf_writer_free(w);
    return ok;
}

static void expect_refused(const gguf_file *src, const char *dir, const char *drop,
                           const char *reshape, const char *key, uint32_t val, const char *needle) {
    char path[1200];
    snprintf(path, sizeof path, "%s/broken.gguf", dir);
    CHECK(rewrite(src, path, drop, reshape, key, val, NULL));
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (!f) return;
    CHECK(model_load(f, &m, &err) != SHIMMY_OK);
    CHECK_MSG(m == NULL && strstr(err.message, needle), "expected an error naming '%s', got: %s",
              needle, m ? "(loaded)" : err.message);
    if (!m) printf("refused: %s\n", err.message);
    model_free(m);
    gguf_close(f);
}

/* The file with F32 weights: with 16- and 8-bit activation roundings gone, every step size
 * computes the same function up to float summation order. */
static void check_widened(const char *name, const gguf_file *src, const char *dir,
                          const int32_t *prompt) {
    char path[1200];
    snprintf(path, sizeof path, "%s/wide.gguf", dir);
    CHECK(rewrite(src, path, NULL, NULL, NULL, 0, ""));
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK_MSG(model_load(f, &m, &err) == SHIMMY_OK, "%s (F32): %s", name, err.message);
    if (m) check_steps(name, m, prompt);
    model_free(m);
    gguf_close(f);
}

/* Experts whose gate and up take activations of different types (Q4_K gate: Q8_K; up widened
 * to F32: unrounded): each gets its own rounding of the input. The weights keep their values,
 * but up's input is no longer rounded to 8 bits, which moves these logits (std ~8) by up to ~1;
 * so what is held is the README's argmax rule: the file's argmax at >= 90% of the positions
 * whose top-1 margin exceeds 0.2 (an input read in the wrong type would be garbage). */
static void check_mixed_types(const char *name, const model *m0, const gguf_file *src,
                              const char *dir, const int32_t *prompt) {
    char path[1200];
    snprintf(path, sizeof path, "%s/mixed.gguf", dir);
    CHECK(rewrite(src, path, NULL, NULL, NULL, 0, "ffn_up_exps.weight"));
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK_MSG(model_load(f, &m, &err) == SHIMMY_OK, "%s (mixed): %s", name, err.message);
    if (m) {
        CHECK(m->layers[0].ffn_up_exps.qt->vec_dot_type !=
              m->layers[0].ffn_gate_exps.qt->vec_dot_type);
        const int32_t V = m->hp.n_vocab;
        float *a = calloc((size_t)N_PROMPT * V, sizeof(float)),
              *b = calloc((size_t)N_PROMPT * V, sizeof(float));
        run_chunked(m0, prompt, N_PROMPT, a);
        run_chunked(m, prompt, N_PROMPT, b);
        int decided = 0, same = 0, finite = 0;
        for (int p = 0; p < N_PROMPT; p++) {
            const float *x = a + (size_t)p * V, *y = b + (size_t)p * V;
            int32_t top[2];
            for (int k = 0; k < 2; k++) {
                top[k] = -1;
                for (int32_t i = 0; i < V; i++) {
                    bool taken = false;
                    for (int j = 0; j < k; j++) taken |= top[j] == i;
                    if (!taken && (top[k] < 0 || x[i] > x[top[k]])) top[k] = i;
                }
            }
            bool fin = true;
            for (int32_t i = 0; i < V; i++) fin &= isfinite(y[i]) != 0;
            finite += fin;
            if (x[top[0]] - x[top[1]] > 0.2f) {
                int32_t best = 0;
                for (int32_t i = 1; i < V; i++)
                    if (y[i] > y[best]) best = i;
                decided++;
                same += best == top[0];
            }
        }
        printf("%-30s gate Q8_K / up F32 activations: argmax %d/%d\n", name, same, decided);
        CHECK_MSG(finite == N_PROMPT && decided > 0 && same >= 0.9 * decided,
                  "%s: mixed activation types: argmax %d/%d, %d/%d positions finite", name, same,
                  decided, finite, N_PROMPT);
        free(a);
        free(b);
    }
    model_free(m);
    gguf_close(f);
}

/* tiny-qwen2 (widened to F32) as qwen2moe: its FFN becomes the shared expert (down x2, gate
 * input 0: sigmoid 0.5), next to 4 random routed experts whose down matrices are 0. Every
 * product is then the dense model's (exactly: x2 and x0.5 are exact), so the logits must be
 * the dense file's bit for bit: the shared expert's path, gate and sum with the routed ones. */
static bool write_qwen2moe(const gguf_file *src, const char *path) {
    gguf_writer *w = NULL;
    shimmy_error err;
    if (gguf_writer_new(&w, &err) != SHIMMY_OK) return false;
    for (size_t i = 0; i < gguf_n_kv(src); i++) {
        const gguf_kv *kv = gguf_kv_at(src, i);
        char key[256];
        if (kv->key.len > 6 && !memcmp(kv->key.data, "qwen2.", 6))
            snprintf(key, sizeof key, "qwen2moe.%.*s", (int)kv->key.len - 6, kv->key.data + 6);
        else
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.data);
        gguf_writer_set_value(w, key, &kv->value);
    }
    uint32_t E = 0, n_layer = 0;
    gguf_get_u32(src, "qwen2.embedding_length", &E);
    gguf_get_u32(src, "qwen2.block_count", &n_layer);
    enum { X = 4, F = 32 };
    gguf_writer_set_str(w, "general.architecture", "qwen2moe");
    gguf_writer_set_u32(w, "qwen2moe.expert_count", X);
    gguf_writer_set_u32(w, "qwen2moe.expert_used_count", 2);
    gguf_writer_set_u32(w, "qwen2moe.expert_feed_forward_length", F);
    /* the router and up tensors read buf at small offsets (+il, +7): room for them */
    const size_t n_buf = (size_t)E * F * X + n_layer + 8;
    float *buf = calloc(n_buf, sizeof(float)), *zero = calloc((size_t)E * F * X, 4);
    bool ok = buf && zero;
    for (size_t i = 0; ok && i < gguf_n_tensors(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        char name[128], shname[160];
        gguf_str_copy(t->name, name, sizeof name);
        const quant_traits *qt = quant_get(t->type);
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        float *f32 = malloc(sizeof(float) * (size_t)(rows * t->ne[0]));
        ok = f32 && qt && qt->to_float;
        for (int64_t r = 0; ok && r < rows; r++)
            qt->to_float((const unsigned char *)t->data + (size_t)r * quant_row_bytes(qt, t->ne[0]),
                         f32 + r * t->ne[0], t->ne[0]);
        const char *ffn = strstr(name, ".ffn_");
        if (ok && ffn && strcmp(ffn, ".ffn_norm.weight")) {
            const bool down = strstr(name, "ffn_down") != NULL;
            if (down)
                for (int64_t k = 0; k < rows * t->ne[0]; k++) f32[k] *= 2.0f;
            snprintf(shname, sizeof shname, "%.*s_shexp.weight",
                     (int)(strstr(name, ".weight") - name), name);
            gguf_writer_add_tensor(w, shname, GGUF_T_F32, t->n_dims, t->ne, f32);
        } else if (ok)
            gguf_writer_add_tensor(w, name, GGUF_T_F32, t->n_dims, t->ne, f32);
        free(f32);
    }
    uint32_t r = 99;
    for (size_t k = 0; ok && k < n_buf; k++)
        buf[k] = (float)((int32_t)((r = r * 1103515245u + 12345u) >> 8) % 2001 - 1000) / 4000.0f;
    for (uint32_t il = 0; ok && il < n_layer; il++) {
        char name[128];
        const int64_t ne_inp[2] = {E, X}, ne_gu[3] = {E, F, X}, ne_d[3] = {F, E, X}, ne_g[1] = {E};
        snprintf(name, sizeof name, "blk.%u.ffn_gate_inp.weight", il);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 2, ne_inp, buf + il);
        snprintf(name, sizeof name, "blk.%u.ffn_gate_exps.weight", il);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 3, ne_gu, buf);
        snprintf(name, sizeof name, "blk.%u.ffn_up_exps.weight", il);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 3, ne_gu, buf + 7);
        snprintf(name, sizeof name, "blk.%u.ffn_down_exps.weight", il);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 3, ne_d, zero);
        snprintf(name, sizeof name, "blk.%u.ffn_gate_inp_shexp.weight", il);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 1, ne_g, zero);
    }
    ok = ok && gguf_writer_write(w, path, &err) == SHIMMY_OK;
    free(buf);
    free(zero);
    gguf_writer_free(w);
    return ok;
}

static model *load(const char *path, gguf_file **f) {
    model *m = NULL;
    shimmy_error err;
    *f = NULL;
    CHECK_MSG(gguf_open(path, f, &err) == SHIMMY_OK, "%s", err.message);
    if (*f) CHECK_MSG(model_load(*f, &m, &err) == SHIMMY_OK, "%s: %s", path, err.message);
    return m;
}

static void check_qwen2moe(const char *dir) {
    char path[1024], dense[1200], moe[1200];
    if (!test_data_path("models/tiny-qwen2-Q4_0.gguf", path, sizeof path)) return;
    gguf_file *f0 = NULL, *fd = NULL, *fm = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f0, &err) == SHIMMY_OK);
    if (!f0) return;
    snprintf(dense, sizeof dense, "%s/qwen2-f32.gguf", dir);
    snprintf(moe, sizeof moe, "%s/qwen2moe.gguf", dir);
    CHECK(rewrite(f0, dense, NULL, NULL, NULL, 0, ""));
    CHECK(write_qwen2moe(f0, moe));
    gguf_close(f0);
    model *md = load(dense, &fd), *mm = load(moe, &fm);
    if (md && mm) {
        CHECK(mm->hp.n_expert == 4 && mm->hp.n_ff_shexp == md->hp.n_ff &&
              mm->layers[1].ffn_up_shexp.n_out == md->hp.n_ff);
        const int32_t V = md->hp.n_vocab;
        int32_t prompt[N_PROMPT];
        uint32_t r = 4242;
        for (int i = 0; i < N_PROMPT; i++)
            prompt[i] = (int32_t)((r = r * 1103515245u + 12345u) >> 8) % V;
        float *a = calloc((size_t)N_PROMPT * V, sizeof(float));
        float *b = calloc((size_t)N_PROMPT * V, sizeof(float));
        run_chunked(md, prompt, N_PROMPT, a);
        run_chunked(mm, prompt, N_PROMPT, b);
        CHECK_MSG(!memcmp(a, b, sizeof(float) * (size_t)N_PROMPT * V),
                  "qwen2moe with the dense FFN as its shared expert differs from qwen2");
        printf("qwen2moe (shared expert = qwen2's FFN) equals qwen2: %s\n",
               memcmp(a, b, sizeof(float) * (size_t)N_PROMPT * V) ? "no" : "yes");
        free(a);
        free(b);
    }
    model_free(md);
    model_free(mm);
    gguf_close(fd);
    gguf_close(fm);
}

static int count_packed(const model *m, int32_t il) {
    const model_layer *L = &m->layers[il];
    int n = 0;
    for (int32_t e = 0; e < m->hp.n_expert; e++) {
        const bool g = atomic_load(&L->ffn_gate_exps.xpack[e]) != NULL;
        CHECK_MSG(g == (atomic_load(&L->ffn_up_exps.xpack[e]) != NULL) &&
                      g == (atomic_load(&L->ffn_down_exps.xpack[e]) != NULL),
                  "layer %d expert %d: gate, up and down packed apart", il, e);
        n += g;
    }
    return n;
}

/* Each token alone at position 0 (the context truncated between them): out[t] = its logits. */
static void run_alone(const model *m, const int32_t *prompt, float *out) {
    model_ctx_params cp = {.n_ctx = 8, .n_batch = 1, .n_logits = 1, .kv_type = MODEL_KV_F32};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK_MSG(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK, "%s", err.message);
    if (!c) return;
    const int32_t V = m->hp.n_vocab;
    for (int32_t t = 0; t < N_PROMPT; t++) {
        model_ctx_truncate(c, 0);
        CHECK_MSG(model_ctx_eval(c, prompt + t, 1, 1, &err) == SHIMMY_OK, "%s", err.message);
        memcpy(out + (size_t)t * V, model_ctx_logits(c, 0), sizeof(float) * (size_t)V);
    }
    model_ctx_free(c);
}

/* Expert layouts (model_expert_pack), where this CPU has one: nothing is packed before a step
 * routes to it, a routed expert's three matrices are packed together, a sequence sharing steps
 * with another still gets its solo logits bit for bit, and the logits stay within float
 * rounding of the row kernels'. MXFP4's layout keeps exact integer sums and fuses only each
 * block's multiply-add: the whole prompt is compared. The K-quant layouts sum each row's
 * blocks in another order (test_pack holds them to their scalar kernels), and a 1e-6
 * difference that meets a router at a near-tie or goes through attention becomes 0.1-0.5 in
 * these random models' logits after a few dozen positions: each token is compared alone, at
 * position 0, and at most one in ten may meet a router tie closer than the rounding itself
 * (1 of the 40 does here). A wrong expert or a misplaced row moves every token. */
static void check_expert_packs(const char *name, const model *plain, const gguf_file *f,
                               const int32_t *prompt) {
    model *m = NULL;
    shimmy_error err;
    CHECK_MSG(model_load(f, &m, &err) == SHIMMY_OK, "%s: %s", name, err.message);
    if (!m) return;
    test_model_repack(m, NULL);
    const char *env = getenv("SHIMMY_REPACK");
    const bool want =
        quant_get(m->layers[0].ffn_gate_exps.type)->pack && !(env && strcmp(env, "0") == 0);
    CHECK_MSG((m->layers[0].ffn_gate_exps.xpack != NULL) == want &&
                  m->n_xpacked == (want ? 3 * m->hp.n_layer : 0),
              "%s: expert layouts %s", name, want ? "missing" : "where the CPU has none");
    if (!want || !m->layers[0].ffn_gate_exps.xpack) {
        model_free(m);
        return;
    }
    for (int32_t il = 0; il < m->hp.n_layer; il++)
        CHECK_MSG(count_packed(m, il) == 0, "%s: layer %d packed before any step", name, il);
    float *a = malloc(sizeof(float) * N_PROMPT * (size_t)m->hp.n_vocab);
    float *b = malloc(sizeof(float) * N_PROMPT * (size_t)m->hp.n_vocab);
    run_chunked(m, prompt, 1, a);
    int32_t first = count_packed(m, 0);
    CHECK_MSG(first >= m->hp.n_expert_used && first <= m->hp.n_expert,
              "%s: %d experts of layer 0 packed after %d tokens", name, first, N_PROMPT);
    const bool exact = m->layers[0].ffn_gate_exps.type == GGUF_T_MXFP4;
    if (!exact) {
        run_alone(m, prompt, a);
        run_alone(plain, prompt, b);
    } else {
        run_chunked(plain, prompt, 1, b);
    }
    /* worst over the tokens within rounding; a token beyond it is a router tie flipped */
    const int32_t V = m->hp.n_vocab;
    double worst = 0;
    int32_t close = 0;
    for (int32_t t = 0; t < N_PROMPT; t++) {
        double w = 0;
        for (int32_t v = 0; v < V; v++)
            w = fmax(w, fabs((double)a[(size_t)t * V + v] - (double)b[(size_t)t * V + v]));
        if (w <= 1e-4) close++, worst = fmax(worst, w);
    }
    printf("%s: %d of %d experts of layer 0 packed; %s: %d/%d tokens' logits within %.2g of the "
           "row kernels'\n",
           name, first, m->hp.n_expert, exact ? "a prompt" : "tokens alone", close, N_PROMPT,
           worst);
    /* MXFP4: every position; K-quant: a near-tie now and then, never most tokens */
    CHECK_MSG(exact ? close == N_PROMPT : close >= N_PROMPT * 9 / 10,
              "%s: packed experts' logits differ from the row kernels' at %d of %d tokens", name,
              N_PROMPT - close, N_PROMPT);
    check_shared_steps(name, m, prompt);
    free(a);
    free(b);
    model_free(m);
}

static void check_file(const char *name, const char *dir, bool refusals) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    if (!test_data_path(rel, path, sizeof path)) return;
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK_MSG(model_load(f, &m, &err) == SHIMMY_OK, "%s: %s", name, err.message);
    if (!m) {
        gguf_close(f);
        return;
    }
    CHECK(m->hp.n_expert > 1 && m->hp.n_expert_used >= 1 &&
          m->layers[0].ffn_up_exps.expert_rows == m->hp.n_ff_exp &&
          m->layers[0].ffn_up_exps.n_out == (int64_t)m->hp.n_expert * m->hp.n_ff_exp);
    int32_t prompt[N_PROMPT];
    uint32_t r = 777;
    for (int i = 0; i < N_PROMPT; i++)
        prompt[i] = (int32_t)((r = r * 1103515245u + 12345u) >> 8) % m->hp.n_vocab;
    check_shared_steps(name, m, prompt);
    check_widened(name, f, dir, prompt);
    if (m->layers[0].ffn_gate_exps.type == GGUF_T_Q4_K) check_mixed_types(name, m, f, dir, prompt);
    if (m->layers[0].ffn_gate_exps.type != GGUF_T_F16) check_expert_packs(name, m, f, prompt);
    if (refusals && !strcmp(m->arch->name, "gpt-oss")) {
        expect_refused(f, dir, NULL, "blk.1.ffn_down_exps.weight", NULL, 0,
                       "blk.1.ffn_down_exps.weight");
        expect_refused(f, dir, "blk.0.ffn_up_exps.bias", NULL, NULL, 0, "blk.0.ffn_up_exps.bias");
        expect_refused(f, dir, "blk.0.attn_sinks.weight", NULL, NULL, 0, "attn_sinks");
        expect_refused(f, dir, NULL, NULL, "gpt-oss.expert_used_count", 99, "expert_used_count");
    } else if (refusals) {
        expect_refused(f, dir, NULL, "blk.0.ffn_gate_exps.weight", NULL, 0,
                       "blk.0.ffn_gate_exps.weight");
        expect_refused(f, dir, "blk.1.ffn_gate_inp.weight", NULL, NULL, 0, "ffn_gate_inp");
        expect_refused(f, dir, NULL, NULL, "qwen3moe.expert_count", 0, "expert_count");
    }
    model_free(m);
    gguf_close(f);
}

int main(void) {
    char buf[1024], dir[1024];
    test_require_data("models/tiny-qwen3moe-spm-F16.gguf", buf, sizeof buf);
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    check_file("tiny-qwen3moe-spm-F16", dir, true);
    check_file("tiny-qwen3moe-e256-Q4_K_M", dir, false);
    check_file("tiny-gpt-oss-F16", dir, true);
    check_file("tiny-gpt-oss-e256-MXFP4_MOE", dir, false);
    check_qwen2moe(dir);
    test_rm_rf(dir);
    return test_finish("model/moe");
}
