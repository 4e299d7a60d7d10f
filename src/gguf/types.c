/* The storage layout of every GGML tensor type: what the reader needs to bound-check tensor data
 * and the writer to size it. Meaning (how to dequantize) lives in `quant`. */
#include "gguf.h"

/* Indexed by type id. Ids that ggml retired (4, 5, 31-33, 36-38) stay zero, so files using them
 * are refused as unknown rather than misread. */
static const gguf_type_layout type_layouts[GGUF_T_COUNT] = {
    [GGUF_T_F32] = {"F32", 1, 4},
    [GGUF_T_F16] = {"F16", 1, 2},
    [GGUF_T_Q4_0] = {"Q4_0", 32, 18},
    [GGUF_T_Q4_1] = {"Q4_1", 32, 20},
    [GGUF_T_Q5_0] = {"Q5_0", 32, 22},
    [GGUF_T_Q5_1] = {"Q5_1", 32, 24},
    [GGUF_T_Q8_0] = {"Q8_0", 32, 34},
    [GGUF_T_Q8_1] = {"Q8_1", 32, 36},
    [GGUF_T_Q2_K] = {"Q2_K", 256, 84},
    [GGUF_T_Q3_K] = {"Q3_K", 256, 110},
    [GGUF_T_Q4_K] = {"Q4_K", 256, 144},
    [GGUF_T_Q5_K] = {"Q5_K", 256, 176},
    [GGUF_T_Q6_K] = {"Q6_K", 256, 210},
    [GGUF_T_Q8_K] = {"Q8_K", 256, 292},
    [GGUF_T_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [GGUF_T_IQ2_XS] = {"IQ2_XS", 256, 74},
    [GGUF_T_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [GGUF_T_IQ1_S] = {"IQ1_S", 256, 50},
    [GGUF_T_IQ4_NL] = {"IQ4_NL", 32, 18},
    [GGUF_T_IQ3_S] = {"IQ3_S", 256, 110},
    [GGUF_T_IQ2_S] = {"IQ2_S", 256, 82},
    [GGUF_T_IQ4_XS] = {"IQ4_XS", 256, 136},
    [GGUF_T_I8] = {"I8", 1, 1},
    [GGUF_T_I16] = {"I16", 1, 2},
    [GGUF_T_I32] = {"I32", 1, 4},
    [GGUF_T_I64] = {"I64", 1, 8},
    [GGUF_T_F64] = {"F64", 1, 8},
    [GGUF_T_IQ1_M] = {"IQ1_M", 256, 56},
    [GGUF_T_BF16] = {"BF16", 1, 2},
    [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},
    [39] = {"MXFP4", 32, 17},
};

gguf_type_layout gguf_type_layout_of(uint32_t type) {
    gguf_type_layout none = {0};
    if (type >= GGUF_T_COUNT || !type_layouts[type].name) return none;
    return type_layouts[type];
}

const char *gguf_type_name(uint32_t type) {
    gguf_type_layout l = gguf_type_layout_of(type);
    return l.name ? l.name : "unknown";
}

bool gguf_row_bytes(uint32_t type, int64_t n, uint64_t *bytes) {
    gguf_type_layout l = gguf_type_layout_of(type);
    if (!l.name || n < 0 || (uint64_t)n % l.block_size) return false;
    return core_mul_u64((uint64_t)n / l.block_size, l.type_size, bytes);
}
