/* Simple Unicode case mapping for upper/lower/title/capitalize: ASCII, Latin-1, Latin Extended-A,
 * Latin Extended Additional (Vietnamese), Greek, Cyrillic, Armenian and fullwidth Latin, which
 * is what chat templates meet in role names and markers. One-to-one mappings only, except
 * U+00DF (ß), which uppercases to "SS" as in Python; outside these blocks text is unchanged. */
#include "jinja.h"

typedef struct case_range {
    uint32_t lo, hi;     /* lowercase code points lo..hi */
    int32_t delta;       /* upper = lower + delta */
    uint8_t alternating; /* upper/lower alternate in pairs: even = upper, odd = lower */
} case_range;

static const case_range ranges[] = {
    {0x61, 0x7A, -32, 0},   {0xE0, 0xF6, -32, 0},     {0xF8, 0xFE, -32, 0},
    {0x100, 0x12F, 0, 1},   {0x132, 0x137, 0, 1},     {0x139, 0x148, 0, 2},
    {0x14A, 0x177, 0, 1},   {0x179, 0x17E, 0, 2},     {0x3B1, 0x3C1, -32, 0},
    {0x3C3, 0x3CB, -32, 0}, {0x3AD, 0x3AF, -37, 0},   {0x3CD, 0x3CE, -63, 0},
    {0x430, 0x44F, -32, 0}, {0x450, 0x45F, -80, 0},   {0x460, 0x481, 0, 1},
    {0x48A, 0x4BF, 0, 1},   {0x561, 0x586, -48, 0},   {0x1E00, 0x1E95, 0, 1},
    {0x1EA0, 0x1EFF, 0, 1}, {0xFF41, 0xFF5A, -32, 0},
};

static const uint32_t singles[][2] = {
    /* lower, upper */
    {0xFF, 0x178},  {0xB5, 0x39C},  {0x131, 0x49},  {0x17F, 0x53},
    {0x3C2, 0x3A3}, {0x3AC, 0x386}, {0x3CC, 0x38C},
};

uint32_t chat_cp_upper(uint32_t cp) {
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const case_range *r = &ranges[i];
        if (cp < r->lo || cp > r->hi) continue;
        if (r->alternating == 1) return cp & 1 ? cp - 1 : cp; /* odd are lower */
        if (r->alternating == 2) return cp & 1 ? cp : cp - 1; /* even are lower */
        return (uint32_t)((int32_t)cp + r->delta);
    }
    for (size_t i = 0; i < sizeof singles / sizeof singles[0]; i++)
        if (singles[i][0] == cp) return singles[i][1];
    return cp;
}

uint32_t chat_cp_lower(uint32_t cp) {
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const case_range *r = &ranges[i];
        if (r->alternating) {
            if (cp < r->lo || cp > r->hi) continue;
            if (r->alternating == 1) return cp & 1 ? cp : cp + 1;
            return cp & 1 ? cp + 1 : cp;
        }
        uint32_t ulo = (uint32_t)((int32_t)r->lo + r->delta),
                 uhi = (uint32_t)((int32_t)r->hi + r->delta);
        if (cp >= ulo && cp <= uhi) return (uint32_t)((int32_t)cp - r->delta);
    }
    if (cp == 0x178) return 0xFF;
    if (cp == 0x130) return 0x69;
    if (cp == 0x386) return 0x3AC;
    if (cp == 0x38C) return 0x3CC;
    return cp;
}

bool chat_cp_cased(uint32_t cp) {
    return chat_cp_upper(cp) != cp || chat_cp_lower(cp) != cp || cp == 0xDF;
}
