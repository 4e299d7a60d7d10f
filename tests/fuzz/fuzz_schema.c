/*
 * libFuzzer target: the JSON Schema -> GBNF converter and its regex subset (src/grammar/schema*.c,
 * regex.c) on hostile schemas. Any client can send a schema (response_format, json_schema, Ollama
 * format, Responses text.format).
 *
 * Input: byte 0 selects the mode, the rest is the text: even = a JSON Schema; odd = an ECMA-262
 * pattern (any bytes) put into {"type":"string","pattern": ...} (byte 0 & 2: anchored with ^...$).
 *
 * Checked: a refusal is SHIMMY_ERR_INVALID_JSON or _INVALID_ARG with a message (and, for
 * _INVALID_ARG, a `where` that is "" or a JSON pointer); a conversion gives GBNF text that the
 * grammar compiler accepts (or refuses only for its size limits), never a grammar it calls
 * malformed.
 */
#include "grammar/grammar.h"
#include "grammar/schema.h"

#include "fuzz.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const char *schema, size_t len) {
    char *gbnf = NULL;
    shimmy_error err = {0};
    shimmy_status st = grammar_schema_to_gbnf(schema, len, &gbnf, &err);
    if (st) {
        FUZZ_REQUIRE(gbnf == NULL);
        FUZZ_REQUIRE(st == SHIMMY_ERR_INVALID_JSON || st == SHIMMY_ERR_INVALID_ARG);
        FUZZ_REQUIRE(err.status == st && err.message[0]);
        FUZZ_REQUIRE(st != SHIMMY_ERR_INVALID_ARG || err.where[0] == 0 || err.where[0] == '/');
        return;
    }
    FUZZ_REQUIRE(gbnf != NULL);
    grammar *g = NULL;
    st = grammar_compile(gbnf, strlen(gbnf), &g, &err);
    if (st && st != SHIMMY_ERR_TOO_LARGE)
        fprintf(stderr, "converter output refused: %s\n%s\n", err.message, gbnf);
    FUZZ_REQUIRE(st == SHIMMY_OK || st == SHIMMY_ERR_TOO_LARGE);
    grammar_unref(g);
    free(gbnf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    if (!(mode & 1)) {
        check(text, len);
        return 0;
    }
    char *pat = malloc(len + 3);
    if (!pat) return 0;
    size_t n = 0;
    if (mode & 2) pat[n++] = '^';
    memcpy(pat + n, text, len);
    n += len;
    if (mode & 2) pat[n++] = '$';
    json_t *s = json_pack("{s:s,s:o}", "type", "string", "pattern", json_stringn_nocheck(pat, n));
    free(pat);
    char *body = s ? json_dumps(s, JSON_COMPACT) : NULL;
    json_decref(s);
    if (body) check(body, strlen(body));
    free(body);
    return 0;
}
