/* The type table and the choice of kernel variant.
 *
 * The reference table below lists every supported type with its scalar kernels. Each ISA variant
 * is that table with some rows' function pointers replaced by its install function (a variant may
 * extend another: AVX-512 keeps the AVX2 kernels it does not replace). All variants are built once
 * by quant_init; the active one is the most capable variant the usable CPU features allow. */
#include "quant/quant_impl.h"

#include <pthread.h>

#define ROW(T, tname, bs, ts, vdt, sfx)                                                            \
    [GGUF_T_##T] = {.name = tname,                                                                 \
                    .type = GGUF_T_##T,                                                            \
                    .block_size = bs,                                                              \
                    .type_size = ts,                                                               \
                    .vec_dot_type = GGUF_T_##vdt,                                                  \
                    .to_float = quant_ref_to_float_##sfx,                                          \
                    .from_float = quant_ref_from_float_##sfx,                                      \
                    .vec_dot = quant_ref_vec_dot_##sfx,                                            \
                    .quantize = quant_ref_from_float_##sfx,                                        \
                    .vec_dot_batch = quant_ref_vec_dot_##sfx}

/* Codebook types: no quantizer (llama-quantize makes them only with an importance matrix). */
#define GRID_ROW(T, tname, sfx)                                                                    \
    [GGUF_T_##T] = {.name = tname,                                                                 \
                    .type = GGUF_T_##T,                                                            \
                    .block_size = 256,                                                             \
                    .type_size = sizeof(quant_block_##sfx),                                        \
                    .vec_dot_type = GGUF_T_Q8_K,                                                   \
                    .to_float = quant_ref_to_float_##sfx,                                          \
                    .vec_dot = quant_ref_vec_dot_##sfx,                                            \
                    .vec_dot_batch = quant_ref_vec_dot_##sfx}

/* Activation-only types: no dot product of their own. */
#define ACT_ROW(T, tname, bs, ts, sfx)                                                             \
    [GGUF_T_##T] = {.name = tname,                                                                 \
                    .type = GGUF_T_##T,                                                            \
                    .block_size = bs,                                                              \
                    .type_size = ts,                                                               \
                    .vec_dot_type = GGUF_T_##T,                                                    \
                    .to_float = quant_ref_to_float_##sfx,                                          \
                    .from_float = quant_ref_from_float_##sfx,                                      \
                    .vec_dot = NULL,                                                               \
                    .quantize = quant_ref_from_float_##sfx}

static const quant_traits ref_table[GGUF_T_COUNT] = {
    ROW(F32, "F32", 1, 4, F32, f32),
    ROW(F16, "F16", 1, 2, F16, f16),
    ROW(BF16, "BF16", 1, 2, BF16, bf16),
    ROW(Q4_0, "Q4_0", 32, 18, Q8_0, q4_0),
    ROW(Q4_1, "Q4_1", 32, 20, Q8_1, q4_1),
    ROW(Q5_0, "Q5_0", 32, 22, Q8_0, q5_0),
    ROW(Q5_1, "Q5_1", 32, 24, Q8_1, q5_1),
    ROW(Q8_0, "Q8_0", 32, 34, Q8_0, q8_0),
    ACT_ROW(Q8_1, "Q8_1", 32, 36, q8_1),
    ROW(Q2_K, "Q2_K", 256, 84, Q8_K, q2_k),
    ROW(Q3_K, "Q3_K", 256, 110, Q8_K, q3_k),
    ROW(Q4_K, "Q4_K", 256, 144, Q8_K, q4_k),
    ROW(Q5_K, "Q5_K", 256, 176, Q8_K, q5_k),
    ROW(Q6_K, "Q6_K", 256, 210, Q8_K, q6_k),
    ACT_ROW(Q8_K, "Q8_K", 256, 292, q8_k),
    /* i-quants, ternary and MXFP4: the activation types are llama.cpp's pairings */
    ROW(IQ4_NL, "IQ4_NL", 32, 18, Q8_0, iq4_nl),
    ROW(IQ4_XS, "IQ4_XS", 256, 136, Q8_K, iq4_xs),
    GRID_ROW(IQ2_XXS, "IQ2_XXS", iq2_xxs),
    GRID_ROW(IQ2_XS, "IQ2_XS", iq2_xs),
    GRID_ROW(IQ2_S, "IQ2_S", iq2_s),
    GRID_ROW(IQ3_XXS, "IQ3_XXS", iq3_xxs),
    GRID_ROW(IQ3_S, "IQ3_S", iq3_s),
    GRID_ROW(IQ1_S, "IQ1_S", iq1_s),
    GRID_ROW(IQ1_M, "IQ1_M", iq1_m),
    ROW(TQ1_0, "TQ1_0", 256, 54, Q8_K, tq1_0),
    ROW(TQ2_0, "TQ2_0", 256, 66, Q8_K, tq2_0),
    ROW(MXFP4, "MXFP4", 32, 17, Q8_0, mxfp4),
};

typedef struct quant_variant {
    const char *name;
    uint32_t needs; /* CORE_CPU_* bits that must all be usable */
    int base;       /* index of the variant this one extends (-1: the reference table) */
    quant_install_fn install;
} quant_variant;

#define X86_AVX2 (CORE_CPU_AVX2 | CORE_CPU_FMA | CORE_CPU_F16C)
#define X86_AVX512                                                                                 \
    (X86_AVX2 | CORE_CPU_AVX512F | CORE_CPU_AVX512BW | CORE_CPU_AVX512VL | CORE_CPU_AVX512VNNI)

static const quant_variant variants[] = {
    {"scalar", 0, -1, NULL},
#if defined(__x86_64__)
    {"avx2", X86_AVX2, 0, quant_x86_avx2_install},
    {"avx2-vnni", X86_AVX2 | CORE_CPU_AVXVNNI, 1, quant_x86_avxvnni_install},
    {"avx512-vnni", X86_AVX512, 1, quant_x86_avx512_install},
#elif defined(__aarch64__)
    {"neon-dotprod", CORE_CPU_NEON | CORE_CPU_DOTPROD, 0, quant_arm_neon_install},
#endif
};
#define N_VARIANTS ((int)(sizeof variants / sizeof variants[0]))

static quant_traits tables[N_VARIANTS][GGUF_T_COUNT];
static bool runnable[N_VARIANTS];
static int active;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    quant_iq_tables_init();
    /* Q8_0/Q8_1 are the only types whose model-file quantizer is not the run-time one. */
    quant_traits ref[GGUF_T_COUNT];
    memcpy(ref, ref_table, sizeof ref);
    ref[GGUF_T_Q8_0].quantize = quant_ref_quantize_q8_0;
    ref[GGUF_T_Q8_1].quantize = quant_ref_quantize_q8_1;
    ref[GGUF_T_F16].dot_rows_n = quant_ref_dot_rows_n_f16;

    const uint32_t usable = core_cpu_usable();
    for (int v = 0; v < N_VARIANTS; v++) {
        const quant_variant *var = &variants[v];
        const quant_traits *base = var->base < 0 ? ref : tables[var->base];
        memcpy(tables[v], base, sizeof ref);
        runnable[v] = (usable & var->needs) == var->needs;
        /* Install functions are compiled for their ISA, so the compiler may use its instructions
         * even in the table stores (gcc fills the table with zmm moves): a variant the CPU cannot
         * run is never installed and stays a copy of its base. */
        if (!runnable[v]) continue;
        if (var->install) var->install(tables[v]);
        /* a variant that brings a row dot but no batched one batches with its row dot (where the
         * batched dot it inherits is the reference's or its base's row dot, not an order of its
         * own) */
        for (int t = 0; t < GGUF_T_COUNT; t++) {
            quant_traits *row = &tables[v][t];
            const bool plain_batch =
                row->vec_dot_batch == ref[t].vec_dot_batch || row->vec_dot_batch == base[t].vec_dot;
            if (row->vec_dot != base[t].vec_dot && plain_batch) row->vec_dot_batch = row->vec_dot;
        }
        active = v;
    }
}

void quant_init(void) {
    pthread_once(&once, build);
}

static bool known(uint32_t type) {
    return type < GGUF_T_COUNT && ref_table[type].name != NULL;
}

const quant_traits *quant_get(uint32_t type) {
    quant_init();
    return known(type) ? &tables[active][type] : NULL;
}

const quant_traits *quant_get_ref(uint32_t type) {
    quant_init();
    return known(type) ? &tables[0][type] : NULL;
}

const char *quant_isa(void) {
    quant_init();
    return variants[active].name;
}

int quant_n_variants(void) {
    return N_VARIANTS;
}

const char *quant_variant_name(int i) {
    return i >= 0 && i < N_VARIANTS ? variants[i].name : NULL;
}

const quant_traits *quant_variant_get(int i, uint32_t type) {
    quant_init();
    if (i < 0 || i >= N_VARIANTS || !runnable[i] || !known(type)) return NULL;
    if (i == 0) return &tables[0][type];
    const quant_traits *t = &tables[i][type], *r = &tables[0][type];
    if (t->to_float == r->to_float && t->from_float == r->from_float && t->vec_dot == r->vec_dot &&
        t->vec_dot_batch == r->vec_dot_batch && t->gemm == r->gemm && t->pack == r->pack &&
        t->dot_rows == r->dot_rows && t->dot_rows_n == r->dot_rows_n)
        return NULL; /* nothing of this variant's own for the type */
    return t;
}
