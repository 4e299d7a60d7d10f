/* Dequantizing every tensor of every test model reproduces the independent reference in
 * testdata/reference/dequant/<model>.json: the first 64 values bit for bit, and the sum and sum of
 * squares (accumulated in double) to 1e-9 relative. */
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "test.h"

#include <dirent.h>
#include <jansson.h>

static int n_tensors_checked;

static double rel_diff(double a, double b) {
    double scale = fmax(fabs(a), fabs(b));
    return scale == 0.0 ? 0.0 : fabs(a - b) / scale;
}

static void check_tensor(const gguf_file *f, json_t *jt, const char *model) {
    const char *name = json_string_value(json_object_get(jt, "name"));
    CHECK_MSG(name != NULL, "%s: tensor entry without a name", model);
    if (!name) return;
    const gguf_tensor *t = gguf_find_tensor(f, name);
    CHECK_MSG(t != NULL, "%s: tensor %s not in the file", model, name);
    if (!t) return;
    CHECK_EQ_INT(t->type, json_integer_value(json_object_get(jt, "type_id")));
    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    CHECK_EQ_INT(n, json_integer_value(json_object_get(jt, "n_elements")));
    const quant_traits *q = quant_get(t->type);
    CHECK_MSG(q != NULL, "%s/%s: type %u unsupported", model, name, t->type);
    if (!q || n <= 0 || n % q->block_size) return;

    float *v = malloc((size_t)n * sizeof *v);
    if (!v) {
        CHECK_MSG(0, "out of memory for %s", name);
        return;
    }
    q->to_float(t->data, v, n);
    json_t *first = json_object_get(jt, "first64");
    size_t n_first = json_array_size(first);
    CHECK_EQ_INT(n_first, n < 64 ? n : 64);
    int mismatches = 0;
    for (size_t i = 0; i < n_first && (int64_t)i < n; i++) {
        double want = json_number_value(json_array_get(first, i));
        if ((double)v[i] != want) {
            if (mismatches++ < 3)
                fprintf(stderr, "%s/%s[%zu]: got %.9g want %.9g\n", model, name, i, v[i], want);
        }
    }
    CHECK_MSG(mismatches == 0, "%s/%s (%s): %d of the first 64 values differ", model, name, q->name,
              mismatches);
    double sum = 0.0, sum_sq = 0.0, max_abs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += v[i];
        sum_sq += (double)v[i] * v[i];
        max_abs = fmax(max_abs, fabs(v[i]));
    }
    double want_sum = json_number_value(json_object_get(jt, "sum"));
    double want_sq = json_number_value(json_object_get(jt, "sum_sq"));
    double want_max = json_number_value(json_object_get(jt, "max_abs"));
    /* a sum near zero is dominated by cancellation: scale its tolerance by the magnitudes */
    double sum_tol = 1e-9 * fmax(fabs(want_sum), sqrt(want_sq * (double)n));
    CHECK_MSG(fabs(sum - want_sum) <= sum_tol, "%s/%s: sum %.17g want %.17g", model, name, sum,
              want_sum);
    CHECK_MSG(rel_diff(sum_sq, want_sq) <= 1e-9, "%s/%s: sum_sq %.17g want %.17g", model, name,
              sum_sq, want_sq);
    CHECK_MSG(max_abs == want_max, "%s/%s: max_abs %.9g want %.9g", model, name, max_abs, want_max);
    free(v);
    n_tensors_checked++;
}

static void check_model(const char *dir, const char *json_name) {
    char path[2048], model_path[1024], rel[512];
    snprintf(path, sizeof path, "%s/%s", dir, json_name);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", path, jerr.text);
    if (!root) return;
    const char *model = json_string_value(json_object_get(root, "model_file"));
    CHECK_MSG(model != NULL, "%s: no model_file", path);
    snprintf(rel, sizeof rel, "models/%s", model ? model : "");
    if (!model || !test_data_path(rel, model_path, sizeof model_path)) {
        fprintf(stderr, "note: %s: model file absent, skipped\n", json_name);
        json_decref(root);
        return;
    }
    gguf_file *f = NULL;
    shimmy_error err;
    shimmy_status st = gguf_open(model_path, &f, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s", model_path, err.message);
    if (st == SHIMMY_OK) {
        json_t *tensors = json_object_get(root, "tensors");
        CHECK_EQ_INT(json_array_size(tensors), gguf_n_tensors(f));
        for (size_t i = 0; i < json_array_size(tensors); i++)
            check_tensor(f, json_array_get(tensors, i), model);
        gguf_close(f);
    }
    json_decref(root);
}

int main(void) {
    char dir[1024];
    test_require_data("reference/dequant/README.md", dir, sizeof dir);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n_models = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
        check_model(dir, e->d_name);
        n_models++;
    }
    if (d) closedir(d);
    CHECK(n_models >= 15);
    fprintf(stderr, "%d models, %d tensors checked\n", n_models, n_tensors_checked);
    return test_finish("quant/dequant_ref");
}
