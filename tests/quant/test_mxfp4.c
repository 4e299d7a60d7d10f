/* MXFP4 (OCP Microscaling FP4: 32 E2M1 values sharing one E8M0 exponent) against the format
 * description, worked by hand: the 16 codes at scale 1 (sign bit 3, then 0, 0.5, 1, 1.5, 2, 3,
 * 4, 6), larger and subnormal scales, the exponent's extremes, nibble order (element j in the low
 * nibble of byte j, element j + 16 in the high one), a dot against Q8_0, the quantizer's choice of
 * exponent; and the expert tensors of tiny-gpt-oss-e256-MXFP4_MOE.gguf dequantized to the bits
 * ggml's own to_float gives (SHA-256 below, from llama.cpp unslothai d32676d7, the build of the
 * testdata references, linked outside this repository). */
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "sha256_lite.h"
#include "test.h"

/* E2M1 by hand: code c = sign (bit 3), exponent (bits 1-2), mantissa (bit 0) */
static const float e2m1[16] = {0.0f, 0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                               0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

typedef struct mx_block {
    uint8_t e;
    uint8_t qs[16];
} mx_block;

static mx_block block(uint8_t e, const uint8_t codes[32]) {
    mx_block b = {.e = e};
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(codes[j] | codes[j + 16] << 4);
    return b;
}

static void test_hand_blocks(const quant_traits *q) {
    uint8_t codes[32];
    float y[32];
    for (int j = 0; j < 16; j++) codes[j] = (uint8_t)j, codes[j + 16] = (uint8_t)(15 - j);
    /* e = 127: scale 2^0 */
    mx_block b = block(127, codes);
    q->to_float(&b, y, 32);
    for (int j = 0; j < 32; j++)
        CHECK_MSG(y[j] == e2m1[codes[j]], "scale 1, element %d: %g, expected %g", j, y[j],
                  e2m1[codes[j]]);
    /* e = 130: scale 8 */
    b = block(130, codes);
    q->to_float(&b, y, 32);
    CHECK(y[7] == 48.0f && y[11] == -12.0f && y[16 + 5] == -8.0f && y[1] == 4.0f);
    /* e = 0: scale 2^-127, results subnormal */
    b = block(0, codes);
    q->to_float(&b, y, 32);
    CHECK(y[1] == ldexpf(1.0f, -128) && y[7] == ldexpf(1.5f, -125) && y[9] == -ldexpf(1.0f, -128));
    /* e = 254: scale 2^127; 6 * 2^127 is beyond float */
    b = block(254, codes);
    q->to_float(&b, y, 32);
    CHECK(y[2] == ldexpf(1.0f, 127) && isinf(y[7]) && y[7] > 0);

    /* the dot against a Q8_0 block: d = 0.5, q_j = j - 16 */
    unsigned char yb[34];
    const uint16_t half = quant_f32_to_f16(0.5f);
    memcpy(yb, &half, 2);
    double want = 0.0;
    for (int j = 0; j < 32; j++) {
        yb[2 + j] = (unsigned char)(int8_t)(j - 16);
        want += (double)e2m1[codes[j]] * 2.0 * (j - 16) * 0.5; /* e = 128: scale 2 */
    }
    b = block(128, codes);
    for (int v = 0; v < quant_n_variants(); v++) {
        const quant_traits *qv = quant_variant_get(v, GGUF_T_MXFP4);
        if (!qv) continue;
        float got;
        qv->vec_dot(32, &got, &b, yb);
        CHECK_MSG((double)got == want, "%s dot: %g, expected %g", quant_variant_name(v), got, want);
    }

    /* the quantizer: amax 6 -> exponent floor(log2 6) - 2 + 127 = 127 (scale 1); 5 is as near
     * 4 as 6 and 0.25 as near 0 as 0.5: the first code wins (4, 0) */
    float x[32] = {0};
    x[0] = 5.0f, x[1] = -0.7f, x[2] = 0.25f, x[3] = 2.6f, x[20] = -6.0f;
    q->quantize(x, &b, 32);
    CHECK_EQ_INT(b.e, 127);
    q->to_float(&b, y, 32);
    CHECK(y[0] == 4.0f && y[1] == -0.5f && y[2] == 0.0f && y[3] == 3.0f && y[20] == -6.0f);
    memset(x, 0, sizeof x);
    q->quantize(x, &b, 32);
    q->to_float(&b, y, 32);
    for (int j = 0; j < 32; j++) CHECK(y[j] == 0.0f);
}

static const struct {
    const char *name, *sha;
} gpt_oss[] = {
    {"blk.0.ffn_down_exps.weight",
     "5c6ee939cdd6f97e258bb79d79642220d4c2eb99b5876d190a048c4383049b7f"},
    {"blk.0.ffn_gate_exps.weight",
     "0e891d60a24bbaf069f1a098563af99220c3d09b14c634b5dc3d2edc7d581f07"},
    {"blk.0.ffn_up_exps.weight",
     "386b330541dcf6d4f4736b03e85b122f7ac60e5c4ba4dd6dbdcfbf300ec973f0"},
    {"blk.1.ffn_down_exps.weight",
     "0a5599d31b8d3f6be731ae5907d81bb5a1e4416a097219a0de00d84529ea9a00"},
    {"blk.1.ffn_gate_exps.weight",
     "f7ca10880e6264a85d80ff152668f72723cc58f540c3f004e43b56ee896d286b"},
    {"blk.1.ffn_up_exps.weight",
     "54988624beabcc6d66c754c51f5d2e4fcb5368d9c3565fb1ad079b496ac4307e"},
};

static void test_file(const quant_traits *q) {
    char path[1024];
    if (!test_data_path("models/tiny-gpt-oss-e256-MXFP4_MOE.gguf", path, sizeof path)) return;
    gguf_file *f = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    if (!f) return;
    for (size_t i = 0; i < sizeof gpt_oss / sizeof gpt_oss[0]; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, gpt_oss[i].name);
        CHECK_MSG(t && t->type == GGUF_T_MXFP4, "%s: missing or not MXFP4", gpt_oss[i].name);
        if (!t || t->type != GGUF_T_MXFP4) continue;
        const int64_t n = (int64_t)(t->nbytes / q->type_size) * q->block_size;
        float *y = malloc((size_t)n * sizeof *y);
        q->to_float(t->data, y, n);
        sha256_lite c;
        char hex[65];
        sha256_lite_init(&c);
        sha256_lite_update(&c, y, (size_t)n * sizeof *y);
        sha256_lite_final_hex(&c, hex);
        CHECK_MSG(strcmp(hex, gpt_oss[i].sha) == 0, "%s: sha256 %s, ggml's %s", gpt_oss[i].name,
                  hex, gpt_oss[i].sha);
        free(y);
    }
    gguf_close(f);
}

int main(void) {
    const quant_traits *q = quant_get_ref(GGUF_T_MXFP4);
    CHECK(q != NULL);
    if (!q) return test_finish("quant/mxfp4");
    CHECK_EQ_INT(q->block_size, 32);
    CHECK_EQ_INT(q->type_size, 17);
    test_hand_blocks(q);
    test_file(q);
    return test_finish("quant/mxfp4");
}
