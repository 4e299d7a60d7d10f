/*
 * libFuzzer target: arbitrary bytes through every vocabulary type the tokenizer loads (SPM and
 * the byte-level BPE pre-tokenizers of the vocab files in SHIMMY_TESTDATA/vocab), encoded, then
 * decoded whole and streamed.
 *
 * Input: byte 0 picks the vocabulary (modulo the number loaded), byte 1 the options (bit 0
 * parse_special, bit 1 add_special, bit 2 decode with special), the rest is the text.
 *
 * Checked (tokenizer.h's invariants): ids are in range; plain encoding (no special handling)
 * of valid UTF-8 decodes back byte for byte (SPM: U+2581 comes back as a space); SPM keeps
 * invalid bytes exactly, BPE decodes them to valid UTF-8; the streaming decoder emits whole UTF-8
 * characters per push and in total the whole-sequence decode with invalid parts as U+FFFD.
 */
#include "tokenizer/tokenizer.h"

#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tok_vocab *vocabs[32];
static char names[32][64];
static int n_vocabs;
/* Bytes the vocabulary can spell: a byte token (SPM <0xXX>, BPE's byte-level character). Some
 * BPE vocabularies lack bytes their training text never had; the engine drops such bytes (as
 * llama.cpp does), so the round trip is only checked on texts made of bytes it can spell. */
static bool spellable[32][256];

/* GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other bytes
 * for U+0100 onwards in byte order. */
static void byte_char(int b, char out[3], size_t *len) {
    int cp = b, k = 0;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
        cp = 256;
        for (int x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
                cp++;
    }
    if (cp < 0x80)
        out[k++] = (char)cp;
    else {
        out[k++] = (char)(0xC0 | cp >> 6);
        out[k++] = (char)(0x80 | (cp & 0x3F));
    }
    *len = (size_t)k;
}

static void find_spellable(int vi) {
    const tok_vocab *v = vocabs[vi];
    for (int b = 0; b < 256; b++) {
        char t[8];
        size_t len;
        if (tok_vocab_algo(v) == TOK_ALGO_SPM)
            len = (size_t)snprintf(t, sizeof t, "<0x%02X>", b);
        else
            byte_char(b, t, &len);
        spellable[vi][b] = tok_find(v, t, len) >= 0;
    }
}

static bool can_spell(int vi, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!spellable[vi][(unsigned char)s[i]]) return false;
    /* U+FFFD, which BPE reads invalid bytes as */
    return spellable[vi][0xEF] && spellable[vi][0xBF] && spellable[vi][0xBD];
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *root = getenv("SHIMMY_TESTDATA") ? getenv("SHIMMY_TESTDATA") : SHIMMY_FUZZ_TESTDATA;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vocab", root);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_tokenizer: no vocabularies in %s (set SHIMMY_TESTDATA)\n", dir);
        exit(77);
    }
    char *files[64];
    int nf = 0;
    for (struct dirent *e; (e = readdir(d)) && nf < 64;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0) files[nf++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(files, (size_t)nf, sizeof *files, cmp_str); /* stable indices for the corpus */
    for (int i = 0; i < nf; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        shimmy_error err;
        tok_vocab *v = NULL;
        /* Vocabulary types the tokenizer does not support are refused cleanly; WordPiece
         * normalizes the text, so it has its own target (fuzz_wordpiece.c). */
        if (n_vocabs < 32 && tok_vocab_load_path(path, &v, &err) == SHIMMY_OK &&
            tok_vocab_algo(v) == TOK_ALGO_WPM)
            tok_vocab_free(v);
        else if (v) {
            snprintf(names[n_vocabs], sizeof names[0], "%s", files[i]);
            vocabs[n_vocabs] = v;
            find_spellable(n_vocabs++);
        }
        free(files[i]);
    }
    if (!n_vocabs) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary in %s loads\n", dir);
        exit(77);
    }
    return 0;
}

/* Length of the valid UTF-8 character at s[0..n), 0 when invalid or truncated. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t want = c < 0x80                 ? 1
                  : c >= 0xC2 && c <= 0xDF ? 2
                  : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4
                                           : 0;
    if (!want || want > n) return 0;
    for (size_t k = 1; k < want; k++) {
        unsigned lo = 0x80, hi = 0xBF;
        if (k == 1 && c == 0xE0) lo = 0xA0;
        if (k == 1 && c == 0xED) hi = 0x9F;
        if (k == 1 && c == 0xF0) lo = 0x90;
        if (k == 1 && c == 0xF4) hi = 0x8F;
        if (s[k] < lo || s[k] > hi) return 0;
    }
    return want;
}

static bool utf8_valid(const char *s, size_t n) {
    for (size_t i = 0, l; i < n; i += l)
        if (!(l = utf8_char((const unsigned char *)s + i, n - i))) return false;
    return true;
}

/* Invalid UTF-8 replaced by U+FFFD, one per maximal subpart (Unicode 3-7). out: 3n bytes. */
static size_t replace_invalid(const unsigned char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_char(s + i, n - i);
        if (l) {
            memcpy(out + o, s + i, l);
            o += l, i += l;
            continue;
        }
        /* The maximal subpart: the longest prefix of a valid sequence, at least one byte. */
        size_t sub = 1;
        unsigned c = s[i];
        size_t want = c >= 0xC2 && c <= 0xDF   ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 1;
        for (size_t k = 1; k < want && i + k < n; k++) {
            unsigned lo = 0x80, hi = 0xBF, b = s[i + k];
            if (k == 1 && c == 0xE0) lo = 0xA0;
            if (k == 1 && c == 0xED) hi = 0x9F;
            if (k == 1 && c == 0xF0) lo = 0x90;
            if (k == 1 && c == 0xF4) hi = 0x8F;
            if (b < lo || b > hi) break;
            sub = k + 1;
        }
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3, i += sub;
    }
    return o;
}

/* SPM's space marker U+2581 comes back as a space: the expected decode of s. */
static size_t spm_expect(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            out[o++] = ' ';
            i += 2;
        } else
            out[o++] = s[i];
    }
    return o;
}

static void fail(const char *what, int vi, const char *text, size_t n) {
    fprintf(stderr, "fuzz_tokenizer: %s (vocab %s, %zu input bytes)\n", what, names[vi], n);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int vi = data[0] % n_vocabs;
    const tok_vocab *v = vocabs[vi];
    bool parse_special = data[1] & 1, add_special = data[1] & 2, dec_special = data[1] & 4;
    const char *text = (const char *)data + 2;
    size_t n = size - 2;

    shimmy_error err;
    tok_buf ids = {0};
    tok_encode_opts opts = {.add_special = add_special, .parse_special = parse_special};
    if (tok_encode(v, text, n, &opts, &ids, &err) != SHIMMY_OK) fail("encode failed", vi, text, n);
    bool spm = tok_vocab_algo(v) == TOK_ALGO_SPM, valid = utf8_valid(text, n);
    int32_t nv = tok_n_vocab(v);
    for (size_t i = 0; i < ids.n; i++)
        if (ids.ids[i] < 0 || ids.ids[i] >= nv) fail("id out of range", vi, text, n);

    char *dec = NULL;
    size_t dlen = 0;
    if (tok_decode(v, ids.ids, ids.n, dec_special, &dec, &dlen, &err) != SHIMMY_OK)
        fail("decode failed", vi, text, n);
    if (strlen(dec) > dlen) fail("decode length", vi, text, n);

    /* SPM puts the dummy-prefix space after every special token in the text, as the engine
     * does (user-defined tokens are matched even without parse_special): no round trip then. */
    bool spm_special = false;
    for (size_t i = 0; spm && i < ids.n; i++) {
        tok_type ty = tok_get_type(v, ids.ids[i]);
        spm_special |= ty != TOK_TYPE_NORMAL && ty != TOK_TYPE_BYTE;
    }
    if (!parse_special && !add_special && !spm_special && can_spell(vi, text, n)) {
        char *want = malloc(n + 1), *got = malloc(dlen + 1);
        size_t wlen = spm ? spm_expect(text, n, want) : n, glen = dlen;
        if (!spm) memcpy(want, text, n);
        memcpy(got, dec, dlen);
        /* SPM on invalid UTF-8 splits characters as the engine does: a lead byte takes the next
         * byte along, so a space marker after it may come back as byte tokens, i.e. as the
         * marker's own bytes. Everything else is kept exactly. */
        if (spm && !valid) glen = spm_expect(dec, dlen, got);
        if (valid || spm) {
            if (glen != wlen || memcmp(got, want, wlen) != 0)
                fail("round trip differs", vi, text, n);
        } else if (!utf8_valid(dec, dlen)) {
            fail("BPE decoded invalid input to invalid UTF-8", vi, text, n);
        }
        free(want);
        free(got);
    }

    /* Streaming: whole characters per push, the same text in total (invalid parts as U+FFFD). */
    size_t cap = tok_decoder_max_out(v);
    char *piece = malloc(cap + 1), *stream = malloc(3 * dlen + 3 * cap + 16);
    char *want = malloc(3 * dlen + 1);
    size_t slen = 0;
    tok_decoder dd;
    tok_decoder_init(&dd, v, dec_special, true);
    for (size_t i = 0; i <= ids.n; i++) {
        size_t w = i < ids.n ? tok_decoder_push(&dd, ids.ids[i], piece, cap)
                             : tok_decoder_flush(&dd, piece, cap);
        if (w > cap || !utf8_valid(piece, w)) fail("stream piece not whole UTF-8", vi, text, n);
        if (slen + w > 3 * dlen + 3 * cap) fail("stream longer than the text", vi, text, n);
        memcpy(stream + slen, piece, w);
        slen += w;
    }
    size_t wl = replace_invalid((const unsigned char *)dec, dlen, want);
    if (slen != wl || memcmp(stream, want, wl) != 0)
        fail("stream differs from decode", vi, text, n);

    free(piece);
    free(stream);
    free(want);
    free(dec);
    tok_buf_free(&ids);
    return 0;
}
