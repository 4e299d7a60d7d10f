/* The type table: every row agrees with the GGUF layout table, activation types exist and can be
 * made, unknown ids are refused, and the half-precision helpers round exactly. */
#include "quant/quant.h"
#include "test.h"

static const uint32_t all_types[] = {
    GGUF_T_F32,    GGUF_T_F16,   GGUF_T_BF16,    GGUF_T_Q4_0,   GGUF_T_Q4_1,   GGUF_T_Q5_0,
    GGUF_T_Q5_1,   GGUF_T_Q8_0,  GGUF_T_Q8_1,    GGUF_T_Q2_K,   GGUF_T_Q3_K,   GGUF_T_Q4_K,
    GGUF_T_Q5_K,   GGUF_T_Q6_K,  GGUF_T_Q8_K,    GGUF_T_IQ4_NL, GGUF_T_IQ4_XS, GGUF_T_IQ2_XXS,
    GGUF_T_IQ2_XS, GGUF_T_IQ2_S, GGUF_T_IQ3_XXS, GGUF_T_IQ3_S,  GGUF_T_IQ1_S,  GGUF_T_IQ1_M,
    GGUF_T_TQ1_0,  GGUF_T_TQ2_0, GGUF_T_MXFP4,
};

/* The codebook types: llama-quantize makes them only with an importance matrix, so the table
 * offers no quantizer for them (and says so with NULL). */
static bool grid_type(uint32_t t) {
    return t == GGUF_T_IQ2_XXS || t == GGUF_T_IQ2_XS || t == GGUF_T_IQ2_S || t == GGUF_T_IQ3_XXS ||
           t == GGUF_T_IQ3_S || t == GGUF_T_IQ1_S || t == GGUF_T_IQ1_M;
}
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static void test_rows(void) {
    for (size_t i = 0; i < N_TYPES; i++) {
        uint32_t t = all_types[i];
        const quant_traits *q = quant_get(t), *r = quant_get_ref(t);
        CHECK_MSG(q && r, "type %u missing", t);
        if (!q || !r) continue;
        gguf_type_layout lay = gguf_type_layout_of(t);
        CHECK_EQ_INT(q->type, t);
        CHECK_STR(q->name, lay.name);
        CHECK_EQ_INT(q->block_size, lay.block_size);
        CHECK_EQ_INT(q->type_size, lay.type_size);
        if (grid_type(t))
            CHECK(q->to_float && !q->from_float && !q->quantize && q->vec_dot);
        else
            CHECK(q->to_float && q->from_float && q->quantize);
        CHECK((q->vec_dot == NULL) == (q->vec_dot_batch == NULL));
        const quant_traits *act = quant_get(q->vec_dot_type);
        CHECK_MSG(act && act->from_float, "%s: activation type %u unusable", q->name,
                  q->vec_dot_type);
        /* a weight block and its activation block cover the same elements */
        if (act) CHECK_EQ_INT(act->block_size, q->block_size);
        CHECK_EQ_INT(quant_row_bytes(q, 4096), (4096 / lay.block_size) * lay.type_size);
    }
    /* weight types have a dot; pure activation formats do not */
    CHECK(quant_get(GGUF_T_Q8_1)->vec_dot == NULL);
    CHECK(quant_get(GGUF_T_Q8_K)->vec_dot == NULL);
    CHECK(quant_get(GGUF_T_Q4_K)->vec_dot != NULL);
    CHECK_EQ_INT(quant_get(GGUF_T_Q4_0)->vec_dot_type, GGUF_T_Q8_0);
    CHECK_EQ_INT(quant_get(GGUF_T_Q5_1)->vec_dot_type, GGUF_T_Q8_1);
    CHECK_EQ_INT(quant_get(GGUF_T_Q6_K)->vec_dot_type, GGUF_T_Q8_K);
    CHECK_EQ_INT(quant_get(GGUF_T_BF16)->vec_dot_type, GGUF_T_BF16);
    /* the pairings of the newer types with their activations, as llama.cpp's CPU traits */
    CHECK_EQ_INT(quant_get(GGUF_T_IQ4_NL)->vec_dot_type, GGUF_T_Q8_0);
    CHECK_EQ_INT(quant_get(GGUF_T_MXFP4)->vec_dot_type, GGUF_T_Q8_0);
    static const uint32_t q8k_types[] = {
        GGUF_T_IQ4_XS, GGUF_T_IQ2_XXS, GGUF_T_IQ2_XS, GGUF_T_IQ2_S, GGUF_T_IQ3_XXS,
        GGUF_T_IQ3_S,  GGUF_T_IQ1_S,   GGUF_T_IQ1_M,  GGUF_T_TQ1_0, GGUF_T_TQ2_0};
    for (size_t i = 0; i < sizeof q8k_types / sizeof q8k_types[0]; i++)
        CHECK_EQ_INT(quant_get(q8k_types[i])->vec_dot_type, GGUF_T_Q8_K);
    /* ids this build does not handle */
    CHECK(quant_get(GGUF_T_I8) == NULL);
    CHECK(quant_get(GGUF_T_F64) == NULL);
    CHECK(quant_get(4) == NULL);
    CHECK(quant_get(GGUF_T_COUNT) == NULL);
    CHECK(quant_get(0xFFFFFFFFu) == NULL);
    CHECK(quant_get_ref(1000) == NULL);
}

static void test_variants(void) {
    CHECK(quant_n_variants() >= 1);
    CHECK_STR(quant_variant_name(0), "scalar");
    CHECK(quant_variant_name(-1) == NULL);
    CHECK(quant_variant_name(quant_n_variants()) == NULL);
    CHECK(quant_variant_get(quant_n_variants(), GGUF_T_Q4_0) == NULL);
    CHECK(quant_variant_get(0, GGUF_T_Q4_0) == quant_get_ref(GGUF_T_Q4_0));
    const char *isa = quant_isa();
    int found = 0;
    for (int i = 0; i < quant_n_variants(); i++) found |= strcmp(isa, quant_variant_name(i)) == 0;
    CHECK_MSG(found, "active ISA %s is not a variant", isa);
    const char *env = getenv("SHIMMY_ISA");
    if (env && strcmp(env, "scalar") == 0) CHECK_STR(isa, "scalar");
}

static float bits_f(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void test_half(void) {
    /* exact values, ties to even, overflow, subnormals */
    CHECK_EQ_INT(quant_f32_to_f16(1.0f), 0x3C00);
    CHECK_EQ_INT(quant_f32_to_f16(-2.0f), 0xC000);
    CHECK_EQ_INT(quant_f32_to_f16(65504.0f), 0x7BFF);
    CHECK_EQ_INT(quant_f32_to_f16(65520.0f), 0x7C00); /* halfway to the next: rounds to inf */
    CHECK_EQ_INT(quant_f32_to_f16(1.0f + 1.0f / 2048), 0x3C00);  /* tie, even stays */
    CHECK_EQ_INT(quant_f32_to_f16(1.0f + 3.0f / 2048), 0x3C02);  /* tie, odd rounds up */
    CHECK_EQ_INT(quant_f32_to_f16(bits_f(0x33800000u)), 0x0001); /* 2^-24 */
    CHECK_EQ_INT(quant_f32_to_f16(bits_f(0x33000000u)), 0x0000); /* 2^-25: tie to even 0 */
    CHECK(quant_f16_to_f32(0x0001) == bits_f(0x33800000u));
    CHECK(quant_f16_to_f32(0x03FF) == 1023.0f / 16777216.0f);
    CHECK(quant_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(isinf(quant_f16_to_f32(0xFC00)) && quant_f16_to_f32(0xFC00) < 0);
    CHECK(isnan(quant_f16_to_f32(quant_f32_to_f16(NAN))));
    /* every half survives a round trip through float */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue; /* nan payloads may change */
        if (quant_f32_to_f16(quant_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(quant_f32_to_bf16(1.0f), 0x3F80);
    CHECK_EQ_INT(quant_f32_to_bf16(bits_f(0x3F808000u)), 0x3F80); /* tie to even */
    CHECK_EQ_INT(quant_f32_to_bf16(bits_f(0x3F818000u)), 0x3F82);
    CHECK(quant_bf16_to_f32(0x4049) == bits_f(0x40490000u));
}

int main(void) {
    test_rows();
    test_variants();
    test_half();
    return test_finish("quant/table");
}
