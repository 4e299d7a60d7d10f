/* The i-quant codebooks in the forms the kernels read: each packed entry of iq_grids.c (level
 * indices) becomes its bytes, so that a kernel loads a whole grid entry with one 8- or 4-byte
 * read. Built once by quant_init, before any kernel can run; read-only afterwards. */
#include "quant/quant_impl.h"

uint64_t quant_iq2xxs_grid[256], quant_iq2xs_grid[512], quant_iq2s_grid[1024];
uint64_t quant_iq1s_grid[2048];
uint32_t quant_iq3xxs_grid[256], quant_iq3s_grid[512];
uint8_t quant_iq_signs[128];
uint64_t quant_iq_signs64[128];
uint64_t quant_iq_bits64[256];

/* 8-wide entries: 2 bits of level index per element. */
static void expand8(const uint16_t *packed, const int8_t *levels, int n, uint64_t *out) {
    for (int e = 0; e < n; e++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++)
            v |= (uint64_t)(uint8_t)levels[(packed[e] >> (2 * j)) & 3] << (8 * j);
        out[e] = v;
    }
}

/* 4-wide entries: 3 bits per element. */
static void expand4(const uint16_t *packed, const int8_t *levels, int n, uint32_t *out) {
    for (int e = 0; e < n; e++) {
        uint32_t v = 0;
        for (int j = 0; j < 4; j++)
            v |= (uint32_t)(uint8_t)levels[(packed[e] >> (3 * j)) & 7] << (8 * j);
        out[e] = v;
    }
}

static uint64_t bits_to_bytes(unsigned bits) {
    uint64_t v = 0;
    for (int j = 0; j < 8; j++) v |= (uint64_t)((bits >> j) & 1 ? 0xFF : 0x01) << (8 * j);
    return v;
}

void quant_iq_tables_init(void) {
    expand8(quant_iq2xxs_packed, quant_iq2xxs_levels, 256, quant_iq2xxs_grid);
    expand8(quant_iq2xs_packed, quant_iq2xs_levels, 512, quant_iq2xs_grid);
    expand8(quant_iq2s_packed, quant_iq2s_levels, 1024, quant_iq2s_grid);
    expand8(quant_iq1s_packed, quant_iq1s_levels, 2048, quant_iq1s_grid);
    expand4(quant_iq3xxs_packed, quant_iq3xxs_levels, 256, quant_iq3xxs_grid);
    expand4(quant_iq3s_packed, quant_iq3s_levels, 512, quant_iq3s_grid);
    /* an even number of negative signs per 8: the 8th sign is the parity of the stored 7 */
    for (unsigned s = 0; s < 128; s++) {
        quant_iq_signs[s] = (uint8_t)(s | (unsigned)(__builtin_popcount(s) & 1) << 7);
        quant_iq_signs64[s] = bits_to_bytes(quant_iq_signs[s]);
    }
    for (unsigned b = 0; b < 256; b++) quant_iq_bits64[b] = bits_to_bytes(b);
}
