/* Derives the i-quant lookup grids from a ggml build's own dequantizer, as data.
 *
 * The IQ2/IQ3/IQ1 formats store, per group of 8 (IQ2, IQ1) or 4 (IQ3) weights, an index into a
 * fixed codebook; IQ4_NL/IQ4_XS map 4-bit codes through a fixed list of 16 levels. This program
 * learns each codebook the way any reader of a file could: it builds blocks whose scale is 1 and
 * whose signs are all positive, sets one index at a time, asks ggml's to_float for the 8 (or 4)
 * values and divides out the known block scale. It uses only ggml's public API
 * (ggml_get_type_traits), no ggml source text.
 *
 * Output (stdout): src/quant/ref/iq_grids.c — per codebook its sorted levels and, per entry, the
 * level index of each element packed into a uint16 (2 bits per element for 8-wide grids with at
 * most 4 levels, 3 bits for 4-wide grids with at most 8). It also checks the sign-pattern rule the
 * kernels compute (7 stored sign bits, the 8th the parity of the 7) and fails loudly on anything
 * unexpected. Build and run: tools/iq_grids/run.sh (needs a ggml checkout; see there). */
#include "ggml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONE_F16 0x3C00 /* 1.0 */

static void die(const char *what);

/* Every value of these blocks is nonzero (grid levels are nonzero; IQ1's carry a 1/8 offset),
 * so a zero means the block scale did not take. */
static void to_float(enum ggml_type t, const void *blk, float *y, int64_t n) {
    ggml_get_type_traits(t)->to_float(blk, y, n);
    for (int64_t i = 0; i < 8; i++)
        if (y[i] == 0.0f) die("a zero value: the block scale did not take (is ggml initialised?)");
}

static void die(const char *what) {
    fprintf(stderr, "derive: %s\n", what);
    exit(1);
}

typedef struct grid {
    const char *name;
    int n_entries, width; /* entries, elements per entry */
    int vals[2048][8];
    int levels[8], n_levels;
} grid;

static grid g_iq2xxs = {.name = "iq2xxs", .n_entries = 256, .width = 8},
            g_iq2xs = {.name = "iq2xs", .n_entries = 512, .width = 8},
            g_iq2s = {.name = "iq2s", .n_entries = 1024, .width = 8},
            g_iq3xxs = {.name = "iq3xxs", .n_entries = 256, .width = 4},
            g_iq3s = {.name = "iq3s", .n_entries = 512, .width = 4},
            g_iq1s = {.name = "iq1s", .n_entries = 2048, .width = 8};

/* value/scale must be an exact integer */
static int exact(float v, float scale) {
    float q = v / scale;
    int i = (int)q;
    if ((float)i != q) die("a grid value is not an integer multiple of the block scale");
    return i;
}

static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}

static void derive_iq2xxs(void) {
    uint8_t b[66];
    float y[256];
    for (int g = 0; g < 256; g++) {
        memset(b, 0, sizeof b);
        put16(b, ONE_F16);
        b[2] = (uint8_t)g; /* first index byte of the first 32-group; scale nibble 0, signs 0 */
        to_float(GGML_TYPE_IQ2_XXS, b, y, 256);
        for (int j = 0; j < 8; j++) g_iq2xxs.vals[g][j] = exact(y[j], 0.125f);
    }
}

static void derive_iq2xs(void) {
    uint8_t b[74];
    float y[256];
    for (int g = 0; g < 512; g++) {
        memset(b, 0, sizeof b);
        put16(b, ONE_F16);
        put16(b + 2, (uint16_t)g); /* 9-bit index, sign bits 0 */
        to_float(GGML_TYPE_IQ2_XS, b, y, 256);
        for (int j = 0; j < 8; j++) g_iq2xs.vals[g][j] = exact(y[j], 0.125f);
    }
}

static void derive_iq2s(void) {
    uint8_t b[82];
    float y[256];
    for (int g = 0; g < 1024; g++) {
        memset(b, 0, sizeof b);
        put16(b, ONE_F16);
        b[2] = (uint8_t)(g & 255);     /* qs[0]: low 8 bits of the first index */
        b[2 + 64] = (uint8_t)(g >> 8); /* qh[0] bits 0-1: its bits 8-9 */
        to_float(GGML_TYPE_IQ2_S, b, y, 256);
        for (int j = 0; j < 8; j++) g_iq2s.vals[g][j] = exact(y[j], 0.125f);
    }
}

static void derive_iq3xxs(void) {
    uint8_t b[98];
    float y[256];
    for (int g = 0; g < 256; g++) {
        memset(b, 0, sizeof b);
        put16(b, ONE_F16);
        b[2] = (uint8_t)g;
        to_float(GGML_TYPE_IQ3_XXS, b, y, 256);
        for (int j = 0; j < 4; j++) g_iq3xxs.vals[g][j] = exact(y[j], 0.25f);
    }
}

static void derive_iq3s(void) {
    uint8_t b[110];
    float y[256];
    for (int g = 0; g < 512; g++) {
        memset(b, 0, sizeof b);
        put16(b, ONE_F16);
        b[2] = (uint8_t)(g & 255);     /* qs[0] */
        b[2 + 64] = (uint8_t)(g >> 8); /* qh[0] bit 0: the index's bit 8 */
        to_float(GGML_TYPE_IQ3_S, b, y, 256);
        for (int j = 0; j < 4; j++) g_iq3s.vals[g][j] = exact(y[j], 1.0f);
    }
}

static void derive_iq1s(void) {
    uint8_t b[50];
    float y[256];
    for (int g = 0; g < 2048; g++) {
        memset(b, 0, sizeof b);
        put16(b, ONE_F16);
        b[2] = (uint8_t)(g & 255);             /* qs[0] */
        put16(b + 2 + 32, (uint16_t)(g >> 8)); /* qh[0] bits 0-2; scale 0 (x1), delta +1/8 */
        to_float(GGML_TYPE_IQ1_S, b, y, 256);
        for (int j = 0; j < 8; j++) {
            float v = y[j] - 0.125f;
            g_iq1s.vals[g][j] = exact(v, 1.0f);
        }
    }
}

/* IQ2_XXS's 7 stored sign bits per 8 values: the rule the kernels use is that the 8th sign is the
 * parity of the 7. */
static void check_signs(void) {
    uint8_t b[66];
    float y[256];
    for (int s = 0; s < 128; s++) {
        memset(b, 0, sizeof b);
        put16(b, ONE_F16);
        uint32_t aux = (uint32_t)s;
        memcpy(b + 2 + 4, &aux, 4);
        to_float(GGML_TYPE_IQ2_XXS, b, y, 256);
        int expect = s | (__builtin_popcount((unsigned)s) & 1) << 7;
        for (int j = 0; j < 8; j++)
            if ((y[j] < 0) != ((expect >> j) & 1)) die("sign rule does not hold");
    }
}

static void levels_of(grid *g) {
    g->n_levels = 0;
    for (int e = 0; e < g->n_entries; e++)
        for (int j = 0; j < g->width; j++) {
            int v = g->vals[e][j], k = 0;
            while (k < g->n_levels && g->levels[k] != v) k++;
            if (k == g->n_levels) {
                if (g->n_levels == 8) die("more than 8 levels in a grid");
                g->levels[g->n_levels++] = v;
            }
        }
    for (int a = 0; a < g->n_levels; a++) /* sort */
        for (int c = a + 1; c < g->n_levels; c++)
            if (g->levels[c] < g->levels[a]) {
                int t = g->levels[a];
                g->levels[a] = g->levels[c];
                g->levels[c] = t;
            }
}

static void emit(grid *g) {
    levels_of(g);
    const int bits = g->width == 8 ? 2 : 3;
    if (g->n_levels > (1 << bits)) die("too many levels for the packing");
    printf("\nconst int8_t quant_%s_levels[%d] = {", g->name, 1 << bits);
    for (int k = 0; k < (1 << bits); k++)
        printf("%s%d", k ? ", " : "", k < g->n_levels ? g->levels[k] : 0);
    printf("};\nconst uint16_t quant_%s_packed[%d] = {\n", g->name, g->n_entries);
    for (int e = 0; e < g->n_entries; e++) {
        unsigned p = 0;
        for (int j = 0; j < g->width; j++) {
            int k = 0;
            while (g->levels[k] != g->vals[e][j]) k++;
            p |= (unsigned)k << (bits * j);
        }
        printf("%s0x%04x,%s", e % 12 ? " " : "    ", p,
               e % 12 == 11 || e == g->n_entries - 1 ? "\n" : "");
    }
    printf("};\n");
}

static void emit_iq4nl(void) {
    uint8_t b[18];
    float y[32];
    memset(b, 0, sizeof b);
    put16(b, ONE_F16);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)j;
    to_float(GGML_TYPE_IQ4_NL, b, y, 32);
    printf("\nconst int8_t quant_iq4nl_values[16] = {");
    for (int j = 0; j < 16; j++) printf("%s%d", j ? ", " : "", exact(y[j], 1.0f));
    printf("};\n");
}

int main(void) {
    /* ggml_init fills the fp16 conversion table its dequantizers use on some builds */
    struct ggml_init_params ip = {.mem_size = 1024, .mem_buffer = NULL, .no_alloc = true};
    struct ggml_context *ctx = ggml_init(ip);
    if (!ctx) die("ggml_init failed");
    derive_iq2xxs();
    derive_iq2xs();
    derive_iq2s();
    derive_iq3xxs();
    derive_iq3s();
    derive_iq1s();
    check_signs();
    printf(
        "/* GENERATED by tools/iq_grids/run.sh (tools/iq_grids/derive.c); do not edit.\n"
        " *\n"
        " * The i-quant codebooks as data, learned from a ggml build's own dequantizer\n"
        " * (llama.cpp commit c392e50, ggml_get_type_traits(type)->to_float): for each codebook\n"
        " * entry a block with scale 1, positive signs and only that index set was dequantized\n"
        " * and the block scale divided out. Per codebook: its sorted levels, and per entry the\n"
        " * level index of each element packed into a uint16 (element j at bits 2j for the\n"
        " * 8-wide IQ2/IQ1 grids, 3j for the 4-wide IQ3 grids). ref/iq_tables.c expands them. */\n"
        "#include \"quant/quant_impl.h\"\n");
    emit_iq4nl();
    emit(&g_iq2xxs);
    emit(&g_iq2xs);
    emit(&g_iq2s);
    emit(&g_iq3xxs);
    emit(&g_iq3s);
    emit(&g_iq1s);
    ggml_free(ctx);
    return 0;
}
