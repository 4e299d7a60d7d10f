/* Lookups in the generated Unicode tables (ucd_class.c, ucd_nfd.c): binary searches over sorted
 * ranges and runs, so the tables stay a few kilobytes instead of one entry per code point. */
#include "tok_impl.h"

unsigned tok_ucd_class(uint32_t cp) {
    /* the last range starting at or below cp */
    size_t lo = 0, hi = tok_ucd_n_class;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((tok_ucd_class_tab[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return cp < 0x110000 ? tok_ucd_class_tab[lo] & 0xFF : 0;
}

bool tok_ucd_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

uint32_t tok_ucd_lower(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    size_t lo = 0, hi = tok_ucd_n_lower; /* runs: first, count, stride, delta */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok_ucd_lower_tab[4 * mid] <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return cp;
    const uint32_t *r = &tok_ucd_lower_tab[4 * (lo - 1)];
    uint32_t off = cp - r[0];
    if (off % r[2] != 0 || off / r[2] >= r[1]) return cp;
    return cp + r[3]; /* delta is stored modulo 2^32 */
}

uint32_t tok_ucd_nfd_base(uint32_t cp) {
    if (cp < 0xC0) return cp;
    size_t lo = 0, hi = tok_ucd_n_nfd; /* runs: first, last, base */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok_ucd_nfd_tab[3 * mid] <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return cp;
    const uint32_t *r = &tok_ucd_nfd_tab[3 * (lo - 1)];
    return cp <= r[1] ? r[2] : cp;
}
