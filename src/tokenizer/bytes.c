/* GPT-2's byte-level alphabet and the engine's lenient UTF-8 reading.
 *
 * Byte-level BPE vocabularies spell every byte as a printable code point: printable Latin-1
 * bytes stand for themselves, the 68 others (controls, space, DEL, NBSP, soft hyphen) are moved
 * to U+0100.. in byte order. */
#include "tok_impl.h"

static bool self_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

static uint32_t byte_cp(unsigned b) {
    if (self_printable(b)) return b;
    if (b <= 0x20) return 256 + b;                     /* 33 code points */
    if (b >= 0x7F && b <= 0xA0) return 289 + b - 0x7F; /* 34 more */
    return 323;                                        /* 0xAD */
}

int tok_byte_to_utf8(unsigned char b, char out[2]) {
    uint32_t cp = byte_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int tok_utf8_cp_to_byte(uint32_t cp) {
    if (cp < 256) return self_printable(cp) ? (int)cp : -1;
    if (cp <= 288) return (int)(cp - 256);
    if (cp <= 322) return (int)(0x7F + cp - 289);
    if (cp == 323) return 0xAD;
    return -1;
}

static size_t put_cp(uint32_t cp, char *out) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    return (size_t)core_utf8_encode(cp, out);
}

/* Mirrors the engine's decoder: the lead byte's high bits give the length, continuation bytes
 * are checked, but overlong forms are accepted (and so re-encoded in shortest form here). */
size_t tok_utf8_sanitize(const char *in, size_t len, char *out) {
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        size_t need = (c & 0x40) == 0   ? 0
                      : (c & 0x20) == 0 ? 1
                      : (c & 0x10) == 0 ? 2
                      : (c & 0x08) == 0 ? 3
                                        : 0;
        bool ok = need > 0 && i + need < len;
        if (ok)
            for (size_t k = 1; k <= need; k++)
                if ((s[i + k] & 0xC0) != 0x80) ok = false;
        if (!ok) {
            o += put_cp(0xFFFD, out + o);
            i++;
            continue;
        }
        uint32_t cp = need == 1 ? (c & 0x1Fu) : need == 2 ? (c & 0x0Fu) : (c & 0x07u);
        for (size_t k = 1; k <= need; k++) cp = (cp << 6) | (s[i + k] & 0x3Fu);
        o += put_cp(cp, out + o);
        i += need + 1;
    }
    return o;
}
