/*
 * Batches of several sequences: every sequence's logits are bit for bit those it gets alone
 * (its prompt in one step, then one token per step), whatever else shares its steps: other
 * sequences' prompts, their decode steps, or nothing. Also: a bad batch changes nothing, and
 * truncating one sequence leaves the others alone.
 *
 * SHIMMY_TEST_DEVICE (CTest's unit/gpu/batch): the same on that device (every layer, or the first
 * SHIMMY_TEST_GPU_LAYERS), where no bit-identity across batch shapes is promised: each row of a
 * product and each query of the attention is computed by the same shader code whatever else is in
 * the step, but the float order of a row can follow the dispatch's shape (threads per row picked
 * from the row length, partial tiles), so a sequence's logits are held within DEVICE_BOUND of its
 * logits alone (the worst difference is printed; on lavapipe it is 0 for every file here). A
 * software device being slow, it runs the F32 cache and one file per family.
 */
#include "gguf/gguf.h"
#include "gpu/gpu.h"
#include "model/model.h"
#include "test.h"

#include <string.h>

enum { N_SEQ = 3, N_GEN = 6, MAXP = 24 };

/* |logit| differences allowed on a device between a sequence alone and batched */
#define DEVICE_BOUND 1e-5

static const char *test_device;
static const model_device *cur_device;

typedef struct seq_case {
    int32_t prompt[MAXP];
    int32_t n_prompt;
    int32_t gen[N_GEN]; /* the tokens fed after the prompt (teacher-forced) */
} seq_case;

/* Logits after the prompt and after each fed token: (N_GEN + 1, n_vocab). */
static void run_alone(const model *m, model_kv_type kv, const seq_case *sc, float *out) {
    model_ctx_params cp = {.n_ctx = 64, .n_batch = MAXP, .kv_type = kv, .device = cur_device};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
    if (!c) return;
    const int32_t V = m->hp.n_vocab;
    CHECK(model_ctx_eval(c, sc->prompt, sc->n_prompt, 1, &err) == SHIMMY_OK);
    memcpy(out, model_ctx_logits(c, 0), sizeof(float) * (size_t)V);
    for (int g = 0; g < N_GEN; g++) {
        CHECK(model_ctx_eval(c, &sc->gen[g], 1, 1, &err) == SHIMMY_OK);
        memcpy(out + (size_t)(g + 1) * V, model_ctx_logits(c, 0), sizeof(float) * (size_t)V);
    }
    model_ctx_free(c);
}

/* The same sequences in one context: sequence 0's prompt alone, then sequence 1's prompt in
 * the same steps as sequence 0's decode, then sequence 2 joining later; interleaved entries. */
static void run_batched(const model *m, model_kv_type kv, const seq_case *sc, float *out[N_SEQ]) {
    model_ctx_params cp = {.n_ctx = 64,
                           .n_seq = N_SEQ,
                           .n_batch = 64,
                           .n_logits = N_SEQ,
                           .kv_type = kv,
                           .device = cur_device};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
    if (!c) return;
    const int32_t V = m->hp.n_vocab;
    int next[N_SEQ] = {-1, -1, -1}; /* -1: prompt not yet run; else tokens fed so far */
    int32_t tok[64], seq[64];
    uint8_t want[64];
    for (int step = 0; step < 12; step++) {
        int n = 0;
        int owner[N_SEQ], n_owner = 0; /* sequences whose logits this step returns, in order */
        for (int s = N_SEQ - 1; s >= 0; s--) { /* reverse order: entries interleave oddly */
            const bool start = next[s] < 0 && step >= 2 * s;
            if (start) {
                for (int i = 0; i < sc[s].n_prompt; i++, n++) {
                    tok[n] = sc[s].prompt[i];
                    seq[n] = s;
                    want[n] = i == sc[s].n_prompt - 1;
                }
            } else if (next[s] >= 0 && next[s] < N_GEN) {
                tok[n] = sc[s].gen[next[s]];
                seq[n] = s;
                want[n++] = 1;
            } else
                continue;
            owner[n_owner++] = s;
        }
        if (!n) continue;
        model_batch b = {.n = n, .token = tok, .seq = seq, .logits = want};
        CHECK(model_ctx_decode(c, &b, &err) == SHIMMY_OK);
        /* logits come back in entry order: owners were added in that order */
        for (int k = 0; k < n_owner; k++) {
            const int s = owner[k];
            const int slot = next[s] < 0 ? 0 : next[s] + 1;
            memcpy(out[s] + (size_t)slot * V, model_ctx_logits(c, k), sizeof(float) * (size_t)V);
            next[s] = next[s] < 0 ? 0 : next[s] + 1;
        }
    }
    for (int s = 0; s < N_SEQ; s++) CHECK_MSG(next[s] == N_GEN, "sequence %d ran %d", s, next[s]);
    /* a bad batch (a token past the vocabulary) changes nothing */
    const int32_t n_past1 = model_ctx_seq_n_past(c, 1);
    int32_t bad[2] = {1, V}, bseq[2] = {1, 1};
    model_batch bb = {.n = 2, .token = bad, .seq = bseq};
    CHECK(model_ctx_decode(c, &bb, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(model_ctx_seq_n_past(c, 1) == n_past1);
    /* truncating one sequence keeps the others (a recurrent state cannot go back: it empties) */
    const int32_t keep = m->hp.state_floats ? 0 : 3;
    CHECK(model_ctx_seq_truncate(c, 1, 3) == keep);
    CHECK(model_ctx_seq_n_past(c, 1) == keep &&
          model_ctx_seq_n_past(c, 0) == n_past1 - sc[1].n_prompt + sc[0].n_prompt);
    model_ctx_free(c);
}

static void check_model(const char *name, model_kv_type kv) {
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
    gpu_model *gm = NULL;
    if (test_device) {
        const gpu_model_params gp = {.device = test_device, .n_gpu_layers = test_device_layers()};
        CHECK_MSG(gpu_model_open(m, &gp, &gm, &err) == SHIMMY_OK && gm, "%s on %s: %s", name,
                  test_device, gm ? "" : err.message);
        cur_device = gpu_model_device(gm);
        if (!gm) {
            model_free(m);
            gguf_close(f);
            return;
        }
    }
    /* the engine's default layouts: a row's arithmetic must not depend on the batch there too */
    test_model_repack(m, gm);
    const int32_t V = m->hp.n_vocab;
    seq_case sc[N_SEQ];
    uint32_t r = 12345;
    for (int s = 0; s < N_SEQ; s++) {
        sc[s].n_prompt = s == 1 ? 1 : 5 + 7 * s; /* a one-token prompt is a single entry too */
        for (int i = 0; i < sc[s].n_prompt; i++)
            sc[s].prompt[i] = (int32_t)((r = r * 1103515245u + 12345u) >> 8) % V;
        for (int g = 0; g < N_GEN; g++)
            sc[s].gen[g] = (int32_t)((r = r * 1103515245u + 12345u) >> 8) % V;
    }
    const size_t per = (size_t)(N_GEN + 1) * (size_t)V;
    float *alone = calloc(N_SEQ * per, sizeof(float)), *both = calloc(N_SEQ * per, sizeof(float));
    float *outs[N_SEQ];
    for (int s = 0; s < N_SEQ; s++) {
        run_alone(m, kv, &sc[s], alone + s * per);
        outs[s] = both + s * per;
    }
    run_batched(m, kv, sc, outs);
    float worst_all = 0;
    int n_differ = 0;
    for (int s = 0; s < N_SEQ; s++)
        for (int g = 0; g <= N_GEN; g++) {
            const float *a = alone + s * per + (size_t)g * V, *b = both + s * per + (size_t)g * V;
            float worst = 0;
            for (int32_t i = 0; i < V; i++)
                if (fabsf(a[i] - b[i]) > worst || a[i] != a[i] || b[i] != b[i])
                    worst = a[i] == a[i] && b[i] == b[i] ? fabsf(a[i] - b[i]) : INFINITY;
            if (worst > worst_all) worst_all = worst;
            n_differ += memcmp(a, b, sizeof(float) * (size_t)V) != 0;
            if (cur_device)
                CHECK_MSG(worst <= DEVICE_BOUND,
                          "%s %s seq %d step %d on the device: batched logits differ from alone "
                          "by up to %g",
                          name, kv == MODEL_KV_F16 ? "f16" : "f32", s, g, (double)worst);
            else
                CHECK_MSG(memcmp(a, b, sizeof(float) * (size_t)V) == 0,
                          "%s %s seq %d step %d: batched logits differ from alone by up to %g",
                          name, kv == MODEL_KV_F16 ? "f16" : "f32", s, g, (double)worst);
        }
    printf("%-28s %s %s: batched vs alone max |d| %g, %d of %d steps not bit-identical\n", name,
           kv == MODEL_KV_F16 ? "f16" : "f32", cur_device ? "device" : "cpu", (double)worst_all,
           n_differ, N_SEQ * (N_GEN + 1));
    gpu_model_close(gm);
    cur_device = NULL;
    free(alone);
    free(both);
    model_free(m);
    gguf_close(f);
}

int main(void) {
    char buf[1024];
    test_require_data("models/tiny-llama-spm-F32.gguf", buf, sizeof buf);
    test_device = test_device_get();
    const char *names[] = {
        "tiny-llama-spm-F32",  "tiny-llama-spm-F16",         "tiny-llama-spm-BF16",
        "tiny-llama-spm-Q8_0", "tiny-llama-spm-e256-Q4_K_M", "tiny-qwen2-Q4_0",
        "tiny-qwen3-F32",      "tiny-qwen35-spm-F16",        "tiny-gemma3-F32",
        "tiny-phi3-F16",       "tiny-gpt-oss-F16",           "tiny-qwen3moe-spm-F16"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *n = names[i];
        if (test_device && (!strcmp(n, "tiny-llama-spm-F16") || !strcmp(n, "tiny-llama-spm-BF16") ||
                            !strcmp(n, "tiny-llama-spm-Q8_0") || !strcmp(n, "tiny-qwen2-Q4_0")))
            continue; /* the same family's F32 and Q4_K_M files cover it */
        if (!test_device) check_model(n, MODEL_KV_F16);
        check_model(n, MODEL_KV_F32);
    }
    return test_finish("model/batch");
}
