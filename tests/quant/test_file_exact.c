/* The model-file quantizers reproduce llama-quantize byte for byte: quantizing each tensor of
 * tiny-llama-spm-F32.gguf gives exactly the bytes that tiny-llama-spm-<T>.gguf stores for the
 * same tensor name, wherever that file stores it as T. The activation quantizer (from_float) of
 * Q8_0 rounds differently on purpose, so it must not be what reproduces the files. */
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "test.h"

static gguf_file *open_model(const char *rel) {
    char path[1024];
    test_require_data(rel, path, sizeof path);
    gguf_file *f = NULL;
    shimmy_error err;
    if (gguf_open(path, &f, &err) != SHIMMY_OK) {
        CHECK_MSG(0, "%s: %s", path, err.message);
        return NULL;
    }
    return f;
}

/* Returns the number of tensors compared. */
static int check_file(const gguf_file *src, const char *rel, uint32_t type) {
    gguf_file *f = open_model(rel);
    if (!f) return 0;
    const quant_traits *q = quant_get(type);
    int compared = 0;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->type != type) continue;
        char name[256];
        gguf_str_copy(t->name, name, sizeof name);
        const gguf_tensor *s = gguf_find_tensor(src, name);
        CHECK_MSG(s && s->type == GGUF_T_F32, "%s: no F32 source for %s", rel, name);
        if (!s || s->type != GGUF_T_F32) continue;
        int64_t n = s->ne[0] * s->ne[1] * s->ne[2] * s->ne[3];
        CHECK_EQ_INT(quant_row_bytes(q, n), t->nbytes);
        unsigned char *buf = malloc(t->nbytes);
        float *x = malloc((size_t)n * sizeof *x);
        if (!buf || !x) {
            free(buf);
            free(x);
            continue;
        }
        memcpy(x, s->data, (size_t)n * sizeof *x);
        q->quantize(x, buf, n);
        size_t first_diff = t->nbytes;
        for (size_t b = 0; b < t->nbytes; b++) {
            if (buf[b] != ((const unsigned char *)t->data)[b]) {
                first_diff = b;
                break;
            }
        }
        CHECK_MSG(first_diff == t->nbytes, "%s: %s (%s) differs from byte %zu (block %zu)", rel,
                  name, q->name, first_diff, first_diff / q->type_size);
        free(buf);
        free(x);
        compared++;
    }
    gguf_close(f);
    return compared;
}

int main(void) {
    gguf_file *src = open_model("models/tiny-llama-spm-F32.gguf");
    if (!src) return test_finish("quant/file_exact");
    /* every one of these files stores its 14 matrices and the embedding in its own type */
    CHECK_EQ_INT(check_file(src, "models/tiny-llama-spm-Q8_0.gguf", GGUF_T_Q8_0), 15);
    CHECK_EQ_INT(check_file(src, "models/tiny-llama-spm-Q4_0.gguf", GGUF_T_Q4_0), 15);
    CHECK_EQ_INT(check_file(src, "models/tiny-llama-spm-Q4_1.gguf", GGUF_T_Q4_1), 15);
    CHECK_EQ_INT(check_file(src, "models/tiny-llama-spm-Q5_0.gguf", GGUF_T_Q5_0), 15);
    CHECK_EQ_INT(check_file(src, "models/tiny-llama-spm-Q5_1.gguf", GGUF_T_Q5_1), 15);

    /* the file quantizer and the activation quantizer of Q8_0 are different functions */
    const quant_traits *q8 = quant_get_ref(GGUF_T_Q8_0);
    CHECK(q8->quantize != q8->from_float);
    /* and they disagree where llama.cpp's two roundings do: x*id exactly halfway, e.g. 0.5 in a
     * block whose amax is 127 (id = 1): roundf gives 1, round-half-even gives 0 */
    float x[32] = {127.0f, 0.5f, 1.5f, -0.5f, -2.5f};
    unsigned char a[34], b[34];
    q8->quantize(x, a, 32);
    q8->from_float(x, b, 32);
    const signed char *qa = (const signed char *)a + 2, *qb = (const signed char *)b + 2;
    CHECK_EQ_INT(qa[0], 127);
    CHECK_EQ_INT(qa[1], 1);
    CHECK_EQ_INT(qa[2], 2);
    CHECK_EQ_INT(qa[3], -1);
    CHECK_EQ_INT(qa[4], -3);
    CHECK_EQ_INT(qb[0], 127);
    CHECK_EQ_INT(qb[1], 0);
    CHECK_EQ_INT(qb[2], 2);
    CHECK_EQ_INT(qb[3], 0);
    CHECK_EQ_INT(qb[4], -2);
    gguf_close(src);
    return test_finish("quant/file_exact");
}
