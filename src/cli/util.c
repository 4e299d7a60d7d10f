/* Small system helpers of the CLI: clocks, resident memory, UTF-8 checks, whole-file reads and
 * JSON strings of arbitrary bytes. Kept here because they are the program's business, not the
 * library's API. */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double cli_time_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

uint64_t cli_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            if (sscanf(line + 6, "%llu", &kb) != 1) kb = 0;
            break;
        }
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Bytes in the sequence a lead byte starts (1..4), 0 for a byte no sequence starts with. */
static int seq_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
}

/* One code point at s (n bytes available): bytes consumed, or 0 for an invalid sequence. */
static int decode(const unsigned char *s, size_t n, uint32_t *cp) {
    int len = n ? seq_len(s[0]) : 0;
    if (len == 0 || (size_t)len > n) return 0;
    uint32_t c = len == 1 ? s[0] : s[0] & (0x7Fu >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

bool cli_utf8_valid(const char *s, size_t n) {
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        int k = decode((const unsigned char *)s + i, n - i, &cp);
        if (!k) return false;
        i += (size_t)k;
    }
    return true;
}

json_t *cli_json_textn(const char *s, size_t len) {
    if (cli_utf8_valid(s, len)) return json_stringn(s, len);
    /* each invalid byte becomes one U+FFFD (3 bytes) */
    char *buf = malloc(len * 3 + 1);
    if (!buf) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = decode((const unsigned char *)s + i, len - i, &cp);
        if (k) {
            memcpy(buf + n, s + i, (size_t)k);
            n += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(buf + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        }
    }
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j;
}

json_t *cli_json_text(const char *s) {
    return cli_json_textn(s, strlen(s));
}

char *cli_read_file(const char *path, bool allow_stdin, size_t max, size_t *len,
                    shimmy_error *err) {
    const bool in = allow_stdin && strcmp(path, "-") == 0;
    FILE *f = in ? stdin : fopen(path, "rb");
    if (!f) {
        shimmy_error_set(err, SHIMMY_ERR_IO, path, "cannot open the file: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *q = cap < (SIZE_MAX >> 1) ? realloc(buf, cap * 2) : NULL;
            if (!q) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = q;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0 || n > max) break;
    }
    bool bad = ferror(f);
    if (!in) fclose(f);
    if (!buf) {
        shimmy_error_set(err, SHIMMY_ERR_NOMEM, path, "out of memory reading the file");
        return NULL;
    }
    if (bad) {
        free(buf);
        shimmy_error_set(err, SHIMMY_ERR_IO, path, "error reading the file");
        return NULL;
    }
    if (n > max) {
        free(buf);
        shimmy_error_set(err, SHIMMY_ERR_TOO_LARGE, path, "the file is larger than %zu MiB",
                         max >> 20);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
