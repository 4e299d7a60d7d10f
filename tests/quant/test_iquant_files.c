/* Dequantizing every quantized tensor of the three i-quant test models (IQ4_NL, IQ4_XS, IQ3_XXS,
 * IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0) gives what ggml gives
 * (testdata/reference/dequant-iquants.json): the SHA-256 of the whole dequantized tensor (the
 * bit-exact check) and rows 0, 1 and the last, printed there with 8 significant digits (each of
 * ours within 1 ulp of the printed value, and most of them equal). Every ISA variant with a
 * to_float of its own is held to the same digest. */
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "sha256_lite.h"
#include "test.h"

#include <jansson.h>

static int n_tensors, n_values, n_exact;

static float next_up(float v) {
    return nextafterf(v, INFINITY);
}

static void check_rows(const char *name, json_t *rows, const float *v, int64_t ne0) {
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *jr = json_array_get(rows, r);
        const int64_t row = json_integer_value(json_object_get(jr, "row"));
        json_t *vals = json_object_get(jr, "values");
        CHECK_EQ_INT(json_array_size(vals), ne0);
        int bad = 0;
        for (int64_t i = 0; i < ne0 && i < (int64_t)json_array_size(vals); i++) {
            const float want = (float)json_number_value(json_array_get(vals, (size_t)i));
            const float got = v[row * ne0 + i];
            n_values++;
            if (got == want) {
                n_exact++;
                continue;
            }
            /* 8 digits do not always pin a float: the nearest float to the printed value may be
             * a neighbour of the exact one */
            if (next_up(got) == want || next_up(want) == got) continue;
            if (bad++ < 3)
                CHECK_MSG(0, "%s row %lld [%lld]: %.9g, reference %.9g", name, (long long)row,
                          (long long)i, got, want);
        }
    }
}

static void check_tensor(const gguf_file *f, json_t *jt, const char *model) {
    const char *name = json_string_value(json_object_get(jt, "name"));
    const gguf_tensor *t = name ? gguf_find_tensor(f, name) : NULL;
    CHECK_MSG(t != NULL, "%s: tensor %s not found", model, name ? name : "?");
    if (!t) return;
    CHECK_EQ_INT(t->type, json_integer_value(json_object_get(jt, "type_id")));
    const int64_t ne0 = t->ne[0], rows = t->ne[1];
    CHECK_EQ_INT(rows, json_integer_value(json_object_get(jt, "n_rows")));
    CHECK_EQ_INT(t->nbytes, json_integer_value(json_object_get(jt, "bytes")));
    const char *want_sha = json_string_value(json_object_get(jt, "sha256_f32le"));
    float *v = malloc((size_t)(ne0 * rows) * sizeof *v);
    if (!v || !want_sha) {
        free(v);
        CHECK(0);
        return;
    }
    for (int var = 0; var < quant_n_variants(); var++) {
        const quant_traits *q = quant_variant_get(var, t->type);
        if (!q || (var > 0 && q->to_float == quant_get_ref(t->type)->to_float)) continue;
        CHECK_EQ_INT(quant_row_bytes(q, ne0) * (size_t)rows, t->nbytes);
        /* row by row, as a model reads an embedding */
        const size_t rb = quant_row_bytes(q, ne0);
        for (int64_t r = 0; r < rows; r++)
            q->to_float((const unsigned char *)t->data + (size_t)r * rb, v + r * ne0, ne0);
        sha256_lite c;
        char hex[65];
        sha256_lite_init(&c);
        sha256_lite_update(&c, v, (size_t)(ne0 * rows) * sizeof *v);
        sha256_lite_final_hex(&c, hex);
        CHECK_MSG(strcmp(hex, want_sha) == 0, "%s/%s (%s, %s): sha256 %s, reference %s", model,
                  name, q->name, quant_variant_name(var), hex, want_sha);
        if (var == 0) check_rows(name, json_object_get(jt, "rows"), v, ne0);
    }
    free(v);
    n_tensors++;
}

int main(void) {
    char path[1024];
    test_require_data("reference/dequant-iquants.json", path, sizeof path);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", path, jerr.text);
    json_t *models = json_object_get(root, "models");
    for (size_t m = 0; m < json_array_size(models); m++) {
        json_t *jm = json_array_get(models, m);
        const char *file = json_string_value(json_object_get(jm, "model_file"));
        char rel[256], mpath[1024];
        snprintf(rel, sizeof rel, "models/%s", file ? file : "?");
        test_require_data(rel, mpath, sizeof mpath);
        gguf_file *f = NULL;
        shimmy_error err;
        if (gguf_open(mpath, &f, &err) != SHIMMY_OK) {
            CHECK_MSG(0, "%s: %s", mpath, err.message);
            continue;
        }
        json_t *tensors = json_object_get(jm, "tensors");
        for (size_t i = 0; i < json_array_size(tensors); i++)
            check_tensor(f, json_array_get(tensors, i), file);
        gguf_close(f);
    }
    json_decref(root);
    printf("iquant files: %d tensors, %d row values (%d exact)\n", n_tensors, n_values, n_exact);
    CHECK_EQ_INT(n_tensors, 87);
    /* the printed values are mostly exact floats; far fewer would mean a systematic offset */
    CHECK(n_exact * 10 >= n_values * 9);
    return test_finish("quant/iquant_files");
}
