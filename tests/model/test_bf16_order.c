/*
 * The reference-order path (SHIMMY_ISA=avx2) on the BF16 model against llama.cpp's logits for
 * whitespace-heavy prompts (tests/model/bf16_whitespace.json, how it was made is in the file):
 * teacher-forced, F32 and F16 caches, every reference top-5 logit within 0.01. These prompts
 * are ones where a BF16 dot that summed in another order than the reference machine's
 * vdpbf16ps flipped an activation rounding and missed by up to 0.03.
 */
#include "core/core.h"
#include "quant/quant.h"
#include "shimmy.h"
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 0.01

static void load_ids(json_t *arr, int32_t *ids, size_t cap, size_t *n) {
    *n = json_array_size(arr) < cap ? json_array_size(arr) : cap;
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
}

/* Largest |logit - reference| over one step's top-5; checks the argmax past a clear margin. */
static double compare_step(const float *logits, int32_t n_vocab, json_t *top5, const char *label,
                           size_t step) {
    double worst = 0;
    for (size_t j = 0; j < json_array_size(top5); j++) {
        json_t *pair = json_array_get(top5, j);
        const int32_t id = (int32_t)json_integer_value(json_array_get(pair, 0));
        const double want = json_number_value(json_array_get(pair, 1));
        CHECK_MSG(id >= 0 && id < n_vocab, "%s step %zu: id %d", label, step, id);
        if (id < 0 || id >= n_vocab) continue;
        const double d = fabs((double)logits[id] - want);
        if (d > worst) worst = d;
        CHECK_MSG(d <= TOL, "%s step %zu id %d: %.6f, reference %.6f", label, step, id, logits[id],
                  want);
    }
    const double l1 = json_number_value(json_array_get(json_array_get(top5, 0), 1));
    const double l2 = json_number_value(json_array_get(json_array_get(top5, 1), 1));
    if (l1 - l2 > 2 * TOL) {
        int32_t best = 0;
        for (int32_t i = 1; i < n_vocab; i++)
            if (logits[i] > logits[best]) best = i;
        const int32_t want =
            (int32_t)json_integer_value(json_array_get(json_array_get(top5, 0), 0));
        CHECK_MSG(best == want, "%s step %zu: argmax %d, reference %d", label, step, best, want);
    }
    return worst;
}

static void run_case(shimmy_model *m, shimmy_kv_type kv, const int32_t *prompt, size_t n_prompt,
                     json_t *block, const char *label) {
    json_t *greedy = json_object_get(block, "greedy_tokens"),
           *top5s = json_object_get(block, "top5_per_step");
    const size_t n_steps = json_array_size(top5s);
    CHECK_MSG(n_steps > 0 && json_array_size(greedy) == n_steps, "%s: malformed block", label);
    shimmy_evaluator_params p = {
        .ctx_len = (int32_t)(n_prompt + n_steps + 1), .batch = 256, .n_logits = 1, .kv = kv};
    shimmy_evaluator *e = NULL;
    shimmy_error err;
    CHECK_EQ_INT(shimmy_evaluator_new(m, &p, &e, &err), SHIMMY_OK);
    if (!e) return;
    const int32_t n_vocab = shimmy_evaluator_vocab_size(e);
    CHECK_EQ_INT(shimmy_evaluator_eval(e, prompt, n_prompt, 0, false, &err), SHIMMY_OK);
    double worst = 0;
    for (size_t s = 0; s < n_steps; s++) {
        const float *l = shimmy_evaluator_logits(e, 0);
        CHECK(l != NULL);
        if (!l) break;
        const double d = compare_step(l, n_vocab, json_array_get(top5s, s), label, s);
        if (d > worst) worst = d;
        if (s + 1 == n_steps) break;
        const int32_t tok = (int32_t)json_integer_value(json_array_get(greedy, s));
        if (shimmy_evaluator_eval(e, &tok, 1, (int32_t)(n_prompt + s), false, &err) != SHIMMY_OK) {
            CHECK_MSG(0, "%s: eval failed: %s", label, err.message);
            break;
        }
    }
    printf("%-24s %4zu prompt tokens, %zu steps: max |dlogit| %.6f\n", label, n_prompt, n_steps,
           worst);
    shimmy_evaluator_free(e);
}

int main(void) {
    const uint32_t need = CORE_CPU_AVX2 | CORE_CPU_FMA | CORE_CPU_F16C;
    if ((core_cpu_features() & need) != need)
        test_skip("the reference-order path (AVX2, FMA, F16C) does not run on this CPU");
    setenv("SHIMMY_ISA", "avx2", 1); /* before anything chooses kernels */
    char mpath[1024];
    test_require_data("models/tiny-llama-spm-BF16.gguf", mpath, sizeof mpath);
    printf("kernels: %s\n", quant_isa());
    CHECK(strncmp(quant_isa(), "avx2", 4) == 0);

    const char *src = getenv("SHIMMY_SRC");
    char jpath[1024];
    snprintf(jpath, sizeof jpath, "%s/tests/model/bf16_whitespace.json", src ? src : ".");
    json_error_t jerr;
    json_t *root = json_load_file(jpath, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", jpath, jerr.text);
    if (!root) return test_finish("model/bf16_order");

    shimmy_spec_builder *b = shimmy_spec_new();
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_error err;
    shimmy_spec_set_name(b, "tiny-llama-spm-BF16");
    shimmy_spec_set_base_path(b, mpath);
    shimmy_spec_set_ctx_len(b, 256);
    CHECK_MSG(shimmy_spec_build(b, &spec, &err) == SHIMMY_OK, "%s", err.message);
    if (spec) CHECK_MSG(shimmy_model_load(spec, &m, &err) == SHIMMY_OK, "%s", err.message);
    json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) > 0);
    for (size_t ci = 0; m && ci < json_array_size(cases); ci++) {
        json_t *cs = json_array_get(cases, ci);
        int32_t prompt[256];
        size_t n_prompt;
        load_ids(json_object_get(cs, "prompt_tokens"), prompt, 256, &n_prompt);
        /* the prompt tokenizes to the reference's ids (whitespace runs are where SPM merges) */
        const char *text = json_string_value(json_object_get(cs, "prompt"));
        int32_t *ids = NULL;
        size_t n_ids = 0;
        CHECK_EQ_INT(shimmy_tokenize(shimmy_model_vocab(m), text, strlen(text),
                                     SHIMMY_TOKENIZE_ADD_SPECIAL | SHIMMY_TOKENIZE_PARSE_SPECIAL,
                                     &ids, &n_ids, &err),
                     SHIMMY_OK);
        CHECK_MSG(n_ids == n_prompt && memcmp(ids, prompt, n_prompt * sizeof *ids) == 0,
                  "case %zu: prompt tokens differ from the reference", ci);
        shimmy_free(ids);
        char label[64];
        snprintf(label, sizeof label, "case %zu kv f32", ci);
        run_case(m, SHIMMY_KV_F32, prompt, n_prompt, json_object_get(cs, "kv_f32"), label);
        snprintf(label, sizeof label, "case %zu kv f16", ci);
        run_case(m, SHIMMY_KV_F16, prompt, n_prompt, json_object_get(cs, "kv_f16"), label);
    }
    shimmy_model_unref(m);
    shimmy_spec_free(spec);
    shimmy_spec_builder_free(b);
    json_decref(root);
    return test_finish("model/bf16_order");
}
