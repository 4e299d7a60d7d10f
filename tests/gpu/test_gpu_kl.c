/*
 * The Vulkan backend against the CPU's reference-order path on the trained model (DESIGN.md,
 * "Numerics": a fast path's criteria): docs-llama-30m over text/ppl-eval.txt in
 * llama-perplexity's chunks (512 tokens, BOS first, positions 256..510 scored), on the device
 * and on the CPU: Q4_K_M with every layer on the device (and, SHIMMY_KL_SPLIT=1, Q8_0 split). Over
 * the whole file (SHIMMY_KL_CHUNKS=38, about 9,700 scored tokens) the contract's bounds apply: mean
 * KL divergence of the device's next-token distribution from the CPU's <= 0.001, the same top
 * token at >= 99% of positions, perplexity within 0.3%. By default (1 chunk, 255 scored tokens:
 * a software device is slow, 95 s for it alone on a 2-vCPU Zen 3, where 2 chunks took 5.4 min
 * of a 13-minute suite) the KL bound is the same, but the other two are widened to what so few
 * tokens can resolve: on 510 of them the CPU's own two float orders (the whole chunk as one batch
 * against token by token, both the reference's arithmetic) already differ by 0.31% in perplexity
 * on Q4_K_M and agree on the top token at 99.4% (Q8_0), so there a 0.5% and a 98% bound. Skips
 * where there is no Vulkan device.
 */
#include "gguf/gguf.h"
#include "gpu/gpu.h"
#include "model/model.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CTX 512

static model_ctx *new_ctx(const model *m, const model_device *dev) {
    model_ctx_params cp = {
        .n_ctx = CTX, .n_batch = CTX, .n_logits = CTX, .kv_type = MODEL_KV_F16, .device = dev};
    model_ctx *c = NULL;
    shimmy_error err = {0};
    CHECK_MSG(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK, "%s", err.message);
    return c;
}

static void run_chunks(const model *m, const model_device *dev, const int32_t *toks, long n_tok,
                       int32_t bos, long chunks, test_kl *st) {
    model_ctx *cc = new_ctx(m, NULL), *dc = new_ctx(m, dev);
    if (cc && dc) test_kl_chunks(cc, dc, CTX, toks, n_tok, bos, chunks, st);
    model_ctx_free(cc);
    model_ctx_free(dc);
}

/* half: the first half of the layers on the device (the rest and the output on the CPU) */
static void check_model(const char *name, const char *text, long chunks, bool half) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    if (!test_data_path(rel, path, sizeof path)) return;
    gguf_file *f = NULL;
    model *m = NULL;
    tok_vocab *v = NULL;
    shimmy_error err = {0};
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    if (f) CHECK_MSG(model_load(f, &m, &err) == SHIMMY_OK, "%s", err.message);
    if (f) CHECK_MSG(tok_vocab_load(f, &v, &err) == SHIMMY_OK, "%s", err.message);
    tok_buf tb = {0};
    const tok_encode_opts o = {.add_special = true, .parse_special = false};
    if (v) CHECK(tok_encode(v, text, strlen(text), &o, &tb, &err) == SHIMMY_OK);
    if (m && v) {
        gpu_model *g = NULL;
        const gpu_model_params gp = {.device = "vulkan",
                                     .n_gpu_layers = half ? m->hp.n_layer / 2 : -1};
        CHECK_MSG(gpu_model_open(m, &gp, &g, &err) == SHIMMY_OK && g, "%s: %s", name,
                  g ? "" : err.message);
        if (!g) goto done;
        test_kl st = {0};
        run_chunks(m, gpu_model_device(g), tb.ids, (long)tb.n, tok_bos(v), chunks, &st);
        gpu_model_close(g);
        if (st.n == 0) goto done;
        const double ppl_c = exp(st.nll_a / (double)st.n), ppl_d = exp(st.nll_b / (double)st.n);
        const double kl = st.kl / (double)st.n, same = (double)st.top_same / (double)st.n;
        printf("%-24s layers %-4s tokens %5ld  ppl cpu %.4f device %.4f (%+.3f%%)  KL %.6f  "
               "same top %.2f%%\n",
               name, half ? "half" : "all", st.n, ppl_c, ppl_d, 100.0 * (ppl_d / ppl_c - 1.0), kl,
               100.0 * same);
        const bool whole = st.n >= 9000;
        const double min_same = whole ? 0.99 : 0.98, max_ppl = whole ? 0.003 : 0.005;
        CHECK_MSG(kl <= 0.001, "%s: mean KL %.6f > 0.001", name, kl);
        CHECK_MSG(same >= min_same, "%s: same top token at %.2f%% < %.0f%%", name, 100.0 * same,
                  100.0 * min_same);
        CHECK_MSG(fabs(ppl_d / ppl_c - 1.0) <= max_ppl,
                  "%s: perplexity %.4f vs the CPU's %.4f (bound %.1f%%)", name, ppl_d, ppl_c,
                  100.0 * max_ppl);
    }
done:
    tok_buf_free(&tb);
    tok_vocab_free(v);
    model_free(m);
    gguf_close(f);
}

int main(void) {
#ifdef SHIMMY_TEST_SANITIZED
    /* a statistic over thousands of positions of a 30M model, minutes under ASan; the code it
     * runs is the sanitizer build's in asan/gpu/reference (the device's forward pass) */
    printf("SKIP: the numerics of the unit build; asan/gpu/reference runs this code\n");
    return 77;
#endif
    char path[1024];
    test_require_data("text/ppl-eval.txt", path, sizeof path);
    shimmy_error err = {0};
    gpu_device_info info[4];
    if (gpu_list(info, 4, &err) <= 0) {
        printf("SKIP: no Vulkan device (%s)\n", err.message);
        return 77;
    }
    char *text = test_read_file(path, NULL);
    CHECK(text != NULL);
    const char *env = getenv("SHIMMY_KL_CHUNKS");
    const long chunks = env ? atol(env) : 1;
    if (text) {
        check_model("docs-llama-30m-Q4_K_M", text, chunks, false);
        /* split: SHIMMY_KL_SPLIT=1 (CI's split runs are unit/gpu/reference_split and e2e) */
        if (getenv("SHIMMY_KL_SPLIT")) check_model("docs-llama-30m-Q8_0", text, chunks, true);
    }
    free(text);
    return test_finish("gpu/kl");
}
