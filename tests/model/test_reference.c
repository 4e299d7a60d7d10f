/*
 * The forward pass against llama.cpp's (and, for qwen3, transformers') logits on the shared test
 * models: teacher-forced over the reference greedy tokens, with an F32 and an F16 KV cache.
 * Prints a table model x case x cache with the largest |Δlogit| over the reference's top-5 ids
 * and how many steps agree on the argmax.
 */
#include "gguf/gguf.h"
#include "gpu/gpu.h"
#include "model/model.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct ref_model {
    const char *name;
    double tol;     /* the target: every top-5 logit within tol, argmax equal beyond 2*tol */
    double limit;   /* what the test enforces on |Δlogit| (== tol unless noted) */
    bool f16_cache; /* the JSON's top-level fields are llama.cpp's F16-cache run */
} ref_model;

/* Quantized files, K-quants and the trained model included, are held to the 0.1 target itself:
 * the engine reproduces the reference's activation quantization and float order (every
 * quantized row measured within 1e-4). That takes bit-exact inputs to each quantization: on the
 * trained model a 1e-7 relative change upstream flips an 8-bit rounding and moves logits by 0.1,
 * so RoPE's FMAs, the F32 dot's tail and the tiled-vs-plain choice in attention all matter. */

static const ref_model models[] = {
    {"tiny-llama-spm-F32", 0.01, 0.01, true},
    {"tiny-llama-spm-F16", 0.01, 0.01, true},
    {"tiny-llama-spm-BF16", 0.01, 0.01, true},
    {"tiny-llama-spm-Q8_0", 0.1, 0.1, true},
    {"tiny-llama-spm-Q4_0", 0.1, 0.1, true},
    {"tiny-llama-spm-Q4_1", 0.1, 0.1, true},
    {"tiny-llama-spm-Q5_0", 0.1, 0.1, true},
    {"tiny-llama-spm-Q5_1", 0.1, 0.1, true},
    {"tiny-llama-spm-e256-Q2_K", 0.1, 0.1, true},
    {"tiny-llama-spm-e256-Q3_K_M", 0.1, 0.1, true},
    {"tiny-llama-spm-e256-Q4_K_M", 0.1, 0.1, true},
    {"tiny-llama-spm-e256-Q5_K_M", 0.1, 0.1, true},
    {"tiny-llama-spm-e256-Q6_K", 0.1, 0.1, true},
    {"tiny-llama-bpe-Q4_0", 0.1, 0.1, true},
    {"tiny-qwen2-Q4_0", 0.1, 0.1, true},
    {"tiny-qwen3-F32", 0.01, 0.01, false},
    {"docs-llama-30m-Q8_0", 0.1, 0.1, true},
    {"docs-llama-30m-Q4_K_M", 0.1, 0.1, true},
};

static int32_t *json_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

typedef struct step_stats {
    double max_diff;
    int argmax_ok, argmax_n;
    int n_over, n_values; /* logits beyond the target tolerance, logits compared */
    /* the rule of the newer references (judged cases): steps, those with every top-5 logit
     * within JUDGE_CLOSE, those whose reference margin exceeds JUDGE_MARGIN, and of these the
     * ones with the reference's argmax */
    int steps, close, decided, same;
} step_stats;

/* On a device (a fast path in DESIGN.md's "Numerics") F32 files are held to 0.01 as everywhere;
 * F16, BF16 and quantized files are not held to these references: the device multiplies F32
 * activations where the reference rounds them to 16 or 8 bits first, and on random weights the
 * difference grows chaotically from layer to layer. Those rows are shown with the figures of
 * testdata/reference/README.md's rule for the newer families (every top-5 logit within 0.25;
 * the argmax where the margin exceeds 0.2) and checked only for finite logits; what holds the
 * device's quantized products are unit/gpu/test_gpu_matmul (each type against the CPU's
 * dequantization) and unit/gpu/test_gpu_kl (the trained model's KL divergence and
 * perplexity against the CPU's reference-order path). */
#define JUDGE_CLOSE  0.25
#define JUDGE_MARGIN 0.2
static bool judged; /* the case being compared is shown, not held */
/* The CPU's repacked layouts and its attention by KV head (decode steps with an F16 cache), a
 * fast path by DESIGN.md's "Numerics": what holds them is the kernels against the scalar ones
 * op by op (unit/quant/pack, unit/quant/dot_rows) and the trained model's KL divergence and
 * perplexity against the reference-order path, in prompt chunks and in decode steps
 * (unit/model/repack_kl); here their
 * cases are shown and held to the argmax part of the newer references' rule (at least 90% of
 * the steps whose reference margin exceeds JUDGE_MARGIN). On the random-weight files their
 * logits drift like llama.cpp's own AMX path does (up to 0.42 on tiny-llama-spm-e256-Q4_K_M's
 * 53-token prompt with an F16 cache, every argmax equal). */
static bool ruled;

/* Compares logits with one step's reference top-5 [[id, logit], ...]. */
static void compare_step(const float *logits, int32_t n_vocab, json_t *top5, double tol,
                         double limit, step_stats *st, const char *label, size_t step) {
    size_t n = json_array_size(top5);
    bool close = true;
    st->steps++;
    for (size_t j = 0; j < n; j++) {
        json_t *pair = json_array_get(top5, j);
        int32_t id = (int32_t)json_integer_value(json_array_get(pair, 0));
        double want = json_number_value(json_array_get(pair, 1));
        CHECK_MSG(id >= 0 && id < n_vocab, "%s step %zu: id %d", label, step, id);
        if (id < 0 || id >= n_vocab) continue;
        double d = fabs((double)logits[id] - want);
        CHECK_MSG(isfinite(logits[id]), "%s step %zu id %d: logit %f", label, step, id, logits[id]);
        st->n_values++;
        if (d > st->max_diff) st->max_diff = d;
        if (d > tol) st->n_over++;
        close &= d <= JUDGE_CLOSE;
        if (judged) continue;
        CHECK_MSG(d <= limit, "%s step %zu id %d: %.6f vs reference %.6f (limit %g)", label, step,
                  id, logits[id], want, limit);
    }
    st->close += close;
    if (judged && n >= 2) {
        double l1 = json_number_value(json_array_get(json_array_get(top5, 0), 1));
        double l2 = json_number_value(json_array_get(json_array_get(top5, 1), 1));
        if (l1 - l2 > JUDGE_MARGIN) {
            int32_t want = (int32_t)json_integer_value(json_array_get(json_array_get(top5, 0), 0));
            int32_t best = 0;
            for (int32_t i = 1; i < n_vocab; i++)
                if (logits[i] > logits[best]) best = i;
            st->decided++;
            st->same += best == want;
        }
    } else if (n >= 2) {
        double l1 = json_number_value(json_array_get(json_array_get(top5, 0), 1));
        double l2 = json_number_value(json_array_get(json_array_get(top5, 1), 1));
        if (l1 - l2 > 2 * tol) {
            int32_t want = (int32_t)json_integer_value(json_array_get(json_array_get(top5, 0), 0));
            int32_t best = 0;
            for (int32_t i = 1; i < n_vocab; i++)
                if (logits[i] > logits[best]) best = i;
            st->argmax_n++;
            st->argmax_ok += best == want;
            CHECK_MSG(best == want, "%s step %zu: argmax %d, reference %d (margin %.4f)", label,
                      step, best, want, l1 - l2);
        }
    }
}

/* SHIMMY_TEST_DEVICE (CTest's unit/gpu/reference): the same cases on that device (gpu.h's
 * device strings), every layer on it, or the first SHIMMY_TEST_GPU_LAYERS (partial offload) */
static const char *test_device;
static const model_device *cur_device;

/* Teacher-forces prompt + greedy[:-1] and compares every step with top5 (a JSON array). */
static void run_case(const model *m, model_kv_type kv, const int32_t *prompt, size_t n_prompt,
                     json_t *greedy, json_t *top5s, const ref_model *rm, int max_steps,
                     const char *label, step_stats *st) {
    size_t n_steps = json_array_size(top5s);
    if (max_steps > 0 && n_steps > (size_t)max_steps) n_steps = (size_t)max_steps;
    model_ctx_params cp = {.n_ctx = (int32_t)(n_prompt + n_steps + 1),
                           .n_batch = (int32_t)n_prompt,
                           .n_logits = 1,
                           .kv_type = kv,
                           .device = cur_device};
    model_ctx *c = NULL;
    shimmy_error err;
    CHECK_MSG(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK, "%s: %s", label, err.message);
    if (!c) return;
    CHECK(model_ctx_eval(c, prompt, (int32_t)n_prompt, 1, &err) == SHIMMY_OK);
    for (size_t s = 0; s < n_steps; s++) {
        compare_step(model_ctx_logits(c, 0), m->hp.n_vocab, json_array_get(top5s, s), rm->tol,
                     rm->limit, st, label, s);
        if (s + 1 == n_steps) break;
        int32_t tok = (int32_t)json_integer_value(json_array_get(greedy, s));
        if (model_ctx_eval(c, &tok, 1, 1, &err) != SHIMMY_OK) {
            CHECK_MSG(0, "%s: eval failed: %s", label, err.message);
            break;
        }
    }
    model_ctx_free(c);
}

static void check_model(const ref_model *rm, int *n_run) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", rm->name);
    if (!test_data_path(rel, path, sizeof path)) return;
    char jpath[1024];
    snprintf(rel, sizeof rel, "reference/%s.json", rm->name);
    if (!test_data_path(rel, jpath, sizeof jpath)) return;
    json_error_t jerr;
    json_t *root = json_load_file(jpath, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", jpath, jerr.text);
    if (!root) return;
    gguf_file *f = NULL;
    model *m = NULL;
    tok_vocab *v = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    if (f) CHECK_MSG(model_load(f, &m, &err) == SHIMMY_OK, "%s: %s", rm->name, err.message);
    if (f) CHECK_MSG(tok_vocab_load(f, &v, &err) == SHIMMY_OK, "%s: %s", rm->name, err.message);
    judged = test_device && !strstr(rm->name, "-F32");
    gpu_model *gm = NULL;
    if (m && test_device) {
        const gpu_model_params gp = {.device = test_device, .n_gpu_layers = test_device_layers()};
        CHECK_MSG(gpu_model_open(m, &gp, &gm, &err) == SHIMMY_OK && gm, "%s on %s: %s", rm->name,
                  test_device, gm ? "" : err.message);
        cur_device = gpu_model_device(gm);
        if (!gm) m = NULL;
    }
    /* the CPU's repacked layouts (what the engine runs by default) are a fast path (see ruled);
     * SHIMMY_REPACK=0 (CTest's unit/model/reference_order) keeps the reference-order kernels
     * and the strict 0.1 */
    const bool model_ruled = !test_device && test_model_repack(m, gm) > 0;
    const bool model_judged = judged || model_ruled;
    json_t *cases = json_object_get(root, "cases");
    int max_cases = (int)json_array_size(cases), max_steps = 0;
    /* the sanitizer build checks the same code on a slice that runs in seconds; so does a
     * software device (SHIMMY_REF_SLICE=1) */
#ifndef SHIMMY_TEST_SANITIZED
    if (getenv("SHIMMY_REF_SLICE"))
#endif
    {
        max_cases = rm->name[0] == 'd' ? 1 : 2;
        max_steps = 8;
    }
    for (int ci = 0; m && ci < max_cases; ci++) {
        json_t *cs = json_array_get(cases, (size_t)ci);
        size_t n_prompt;
        int32_t *prompt = json_ids(json_object_get(cs, "prompt_tokens"), &n_prompt);
        if (v) {
            const char *text = json_string_value(json_object_get(cs, "prompt"));
            tok_buf tb = {0};
            tok_encode_opts o = {.add_special = true, .parse_special = true};
            CHECK(tok_encode(v, text, strlen(text), &o, &tb, &err) == SHIMMY_OK);
            bool same = tb.n == n_prompt && memcmp(tb.ids, prompt, n_prompt * sizeof *prompt) == 0;
            CHECK_MSG(same, "%s case %d: prompt tokens differ from the reference", rm->name, ci);
            tok_buf_free(&tb);
        }
        const char *cname = json_string_value(json_object_get(cs, "name"));
        char cbuf[16];
        if (!cname) snprintf(cbuf, sizeof cbuf, "%d", ci), cname = cbuf;
        for (int kv = 0; kv < 2; kv++) {
            json_t *src = kv == 0 ? json_object_get(cs, "kv_f32") : cs;
            if (kv == 1 && !rm->f16_cache) continue;
            /* with an F16 cache the fast path's decode steps attend by KV head (dot_rows_n, F32
             * sums in the variant's order): a fast path too, except for F32 files, which are
             * held to 0.01 on every path */
            ruled = model_ruled ||
                    (kv == 1 && model_attn_by_kv(m) && !test_device && !strstr(rm->name, "-F32"));
            judged = model_judged || ruled;
            char label[256];
            snprintf(label, sizeof label, "%s/%s/%s", rm->name, cname, kv == 0 ? "f32" : "f16");
            step_stats st = {0};
            run_case(m, kv == 0 ? MODEL_KV_F32 : MODEL_KV_F16, prompt, n_prompt,
                     json_object_get(src, "greedy_tokens"), json_object_get(src, "top5_per_step"),
                     rm, max_steps, label, &st);
            if (judged)
                printf("%-30s %-9s %-4s %7zu %10.6f %4d/%-4d %5d/%-5d shown: %d/%d close, "
                       "argmax %d/%d\n",
                       rm->name, cname, kv == 0 ? "f32" : "f16", n_prompt, st.max_diff,
                       st.argmax_ok, st.argmax_n, st.n_over, st.n_values, st.close, st.steps,
                       st.same, st.decided);
            if (ruled)
                CHECK_MSG(st.same * 10 >= st.decided * 9, "%s: argmax %d of %d decided steps",
                          label, st.same, st.decided);
            else if (!judged)
                printf("%-30s %-9s %-4s %7zu %10.6f %4d/%-4d %5d/%-5d %s\n", rm->name, cname,
                       kv == 0 ? "f32" : "f16", n_prompt, st.max_diff, st.argmax_ok, st.argmax_n,
                       st.n_over, st.n_values, st.max_diff <= rm->tol ? "ok" : "over target");
            fflush(stdout);
        }
        free(prompt);
    }
    (*n_run)++;
    gpu_model_close(gm);
    cur_device = NULL;
    tok_vocab_free(v);
    model_free(m);
    gguf_close(f);
    json_decref(root);
}

/* Whether name is one of the comma-separated names in list. */
static bool listed(const char *list, const char *name) {
    const size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return true;
        p += len + (end != NULL);
    }
    return false;
}

int main(void) {
    char buf[1024];
    test_require_data("reference/tiny-llama-spm-F32.json", buf, sizeof buf);
    printf("%-30s %-9s %-4s %7s %10s %9s %11s\n", "model", "case", "kv", "prompt", "max|dlogit|",
           "argmax", ">target");
    /* SHIMMY_REF_MODELS: only these models (the ARM64 run under qemu, where a path without the
     * reference's order for some types is held to the references of the types it has it for) */
    const char *only = getenv("SHIMMY_REF_MODELS");
    test_device = test_device_get();
    int n_run = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (!only || listed(only, models[i].name)) check_model(&models[i], &n_run);
    CHECK(n_run > 0);
    return test_finish("model/reference");
}
