/*
 * The forward pass with LoRA adapters attached (model_ctx_set_lora) against llama.cpp's
 * teacher-forced logits in lora/reference.json, for every entry (single and stacked adapters,
 * user scales), loading each adapter both as GGUF and as the equivalent PEFT folder.
 *
 * SHIMMY_TEST_DEVICE (CTest's unit/gpu/lora): every case runs on that device too, beside a CPU
 * context fed the same tokens. With adapters attached the device's products fall back to the
 * CPU's (the other ops stay on the device), so the device is held to the same reference
 * tolerance and its logits to the CPU's within DEVICE_TOL; an entry without adapters on a
 * quantized file is the plain device path, judged by unit/gpu/reference (its figures shown).
 */
#include "gguf/gguf.h"
#include "gpu/gpu.h"
#include "lora/lora.h"
#include "model/model.h"
#include "test.h"

#include <jansson.h>

/* device logits against the CPU's with adapters attached (F32 files: the F32 rule's 0.01) */
#define DEVICE_TOL 0.01

static const char *test_device;
static double dev_vs_cpu; /* the largest |device - CPU| logit of the entry */

/* "lora-tiny-llama-spm-r4.gguf" -> "peft-tiny-llama-spm-r4" */
static void peft_name(const char *gguf_name, char *out, size_t cap) {
    const char *base = strncmp(gguf_name, "lora-", 5) == 0 ? gguf_name + 5 : gguf_name;
    snprintf(out, cap, "peft-%.*s", (int)(strlen(base) - 5), base);
}

static double run_entry(json_t *entry, bool peft, int max_cases, int *argmax_bad) {
    char path[1024], rel[512];
    shimmy_error err;
    snprintf(rel, sizeof rel, "models/%s", json_string_value(json_object_get(entry, "base_model")));
    if (!test_data_path(rel, path, sizeof path)) return -1;
    gguf_file *f = NULL;
    model *m = NULL;
    lora_set *set = NULL;
    double max_diff = 0.0;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK(model_load(f, &m, &err) == SHIMMY_OK);
    CHECK(lora_set_new(&set, &err) == SHIMMY_OK);
    json_t *adapters = json_object_get(entry, "adapters");
    for (size_t i = 0; m && set && i < json_array_size(adapters); i++) {
        json_t *a = json_array_get(adapters, i);
        const char *file = json_string_value(json_object_get(a, "file"));
        char name[256];
        if (peft)
            peft_name(file, name, sizeof name);
        else
            snprintf(name, sizeof name, "%s", file);
        snprintf(rel, sizeof rel, "lora/%s", name);
        lora_adapter *ad = NULL;
        if (!test_data_path(rel, path, sizeof path)) continue;
        CHECK_MSG(lora_adapter_open(path, f, &ad, &err) == SHIMMY_OK, "%s: %s", path, err.message);
        if (ad) {
            CHECK(lora_set_add(set, ad, (float)json_number_value(json_object_get(a, "scale")),
                               &err) == SHIMMY_OK);
            lora_adapter_unref(ad);
        }
    }
    const double tol = m && m->file_type == GGUF_T_F32 ? 0.01 : 0.1;
    gpu_model *gm = NULL;
    const bool adapters_on = json_array_size(adapters) > 0;
    /* on a device without adapters a quantized file is the plain device path: shown only */
    const bool held = !test_device || adapters_on || (m && m->file_type == GGUF_T_F32);
    dev_vs_cpu = 0.0;
    if (m && test_device) {
        const gpu_model_params gp = {.device = test_device, .n_gpu_layers = test_device_layers()};
        CHECK_MSG(gpu_model_open(m, &gp, &gm, &err) == SHIMMY_OK && gm, "on %s: %s", test_device,
                  gm ? "" : err.message);
        if (!gm) max_cases = 0;
    }
    json_t *cases = json_object_get(entry, "cases");
    for (int ci = 0; m && ci < (int)json_array_size(cases) && ci < max_cases; ci++) {
        json_t *cs = json_array_get(cases, (size_t)ci);
        json_t *jp = json_object_get(cs, "prompt_tokens"),
               *greedy = json_object_get(cs, "greedy_tokens");
        json_t *top5s = json_object_get(cs, "top5_per_step");
        size_t n_prompt = json_array_size(jp), n_steps = json_array_size(top5s);
        int32_t prompt[256];
        for (size_t i = 0; i < n_prompt && i < 256; i++)
            prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
        model_ctx_params cp = {.n_ctx = (int32_t)(n_prompt + n_steps + 1),
                               .n_batch = (int32_t)n_prompt,
                               .kv_type = MODEL_KV_F32,
                               .device = gpu_model_device(gm)};
        model_ctx *c = NULL, *c_cpu = NULL;
        CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
        if (!c) break;
        CHECK(model_ctx_set_lora(c, set, &err) == SHIMMY_OK);
        CHECK(model_ctx_eval(c, prompt, (int32_t)n_prompt, 1, &err) == SHIMMY_OK);
        if (gm) { /* the CPU beside it, fed the same tokens */
            cp.device = NULL;
            CHECK(model_ctx_new(m, &cp, &c_cpu, &err) == SHIMMY_OK);
            if (c_cpu) CHECK(model_ctx_set_lora(c_cpu, set, &err) == SHIMMY_OK);
            if (c_cpu)
                CHECK(model_ctx_eval(c_cpu, prompt, (int32_t)n_prompt, 1, &err) == SHIMMY_OK);
        }
        for (size_t s = 0; s < n_steps; s++) {
            const float *lg = model_ctx_logits(c, 0);
            if (c_cpu) {
                const float *l0 = model_ctx_logits(c_cpu, 0);
                for (int32_t i = 0; i < m->hp.n_vocab; i++) {
                    const double d = fabs((double)lg[i] - l0[i]);
                    if (d > dev_vs_cpu || d != d) dev_vs_cpu = d != d ? INFINITY : d;
                }
            }
            json_t *t5 = json_array_get(top5s, s);
            for (size_t j = 0; j < json_array_size(t5); j++) {
                int32_t id = (int32_t)json_integer_value(json_array_get(json_array_get(t5, j), 0));
                double want = json_number_value(json_array_get(json_array_get(t5, j), 1));
                double d = fabs(lg[id] - want);
                if (d > max_diff) max_diff = d;
                if (held)
                    CHECK_MSG(d <= tol, "case %d step %zu id %d: %f vs %f", ci, s, id, lg[id],
                              want);
            }
            double l1 = json_number_value(json_array_get(json_array_get(t5, 0), 1));
            double l2 = json_number_value(json_array_get(json_array_get(t5, 1), 1));
            int32_t want_top =
                (int32_t)json_integer_value(json_array_get(json_array_get(t5, 0), 0));
            int32_t best = 0;
            for (int32_t i = 1; i < m->hp.n_vocab; i++)
                if (lg[i] > lg[best]) best = i;
            if (held && l1 - l2 > 2 * tol && best != want_top) (*argmax_bad)++;
            if (s + 1 == n_steps) break;
            int32_t tok = (int32_t)json_integer_value(json_array_get(greedy, s));
            CHECK(model_ctx_eval(c, &tok, 1, 1, &err) == SHIMMY_OK);
            if (c_cpu) CHECK(model_ctx_eval(c_cpu, &tok, 1, 1, &err) == SHIMMY_OK);
        }
        model_ctx_free(c);
        model_ctx_free(c_cpu);
    }
    if (gm && adapters_on)
        CHECK_MSG(dev_vs_cpu <= DEVICE_TOL, "device logits differ from the CPU's by %g",
                  dev_vs_cpu);
    gpu_model_close(gm);
    lora_set_free(set);
    model_free(m);
    gguf_close(f);
    return max_diff;
}

int main(void) {
    char ref[1024];
    test_require_data("lora/reference.json", ref, sizeof ref);
    json_error_t jerr;
    json_t *root = json_load_file(ref, 0, &jerr);
    CHECK(root != NULL);
    if (!root) return test_finish("model/lora");
    json_t *entries = json_object_get(root, "entries");
    int max_cases = 3;
    test_device = test_device_get();
    if (test_device) max_cases = 1; /* a software device is slow: one case per entry */
#ifdef SHIMMY_TEST_SANITIZED
    max_cases = 1;
#endif
    printf("%-26s %-60s %10s\n", "base", "adapters (scale)", "max|dlogit|");
    for (size_t e = 0; e < json_array_size(entries); e++) {
        json_t *entry = json_array_get(entries, e);
        json_t *ads = json_object_get(entry, "adapters");
        for (int peft = 0; peft < 2; peft++) {
            if (peft && json_array_size(ads) == 0) continue;
            char label[256] = "";
            for (size_t i = 0; i < json_array_size(ads); i++) {
                json_t *a = json_array_get(ads, i);
                size_t n = strlen(label);
                snprintf(label + n, sizeof label - n, "%s%s(%.2g)", i ? " + " : "",
                         json_string_value(json_object_get(a, "file")),
                         json_number_value(json_object_get(a, "scale")));
            }
            if (peft) strncat(label, " [peft]", sizeof label - strlen(label) - 1);
            int bad = 0;
            double d = run_entry(entry, peft, max_cases, &bad);
            CHECK_EQ_INT(bad, 0);
            printf("%-26s %-60s %10.6f", json_string_value(json_object_get(entry, "base_model")),
                   label[0] ? label : "(none)", d);
            if (test_device) printf("  device vs cpu %.2e", dev_vs_cpu);
            printf("\n");
        }
    }
    json_decref(root);
    return test_finish("model/lora");
}
