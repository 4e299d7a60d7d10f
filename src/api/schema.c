/* The public face of the grammar module's checks: JSON Schema -> GBNF and GBNF compilation, so
 * that programs (the server among them) can reject a bad schema or grammar before generating. */
#include "grammar/grammar.h"
#include "grammar/schema.h"

#include <string.h>

shimmy_status shimmy_json_schema_to_gbnf(const char *schema, char **gbnf, shimmy_error *err) {
    if (!gbnf) return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "gbnf", "gbnf is NULL");
    *gbnf = NULL;
    if (!schema) return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "schema", "no schema given");
    return grammar_schema_to_gbnf(schema, strnlen(schema, SHIMMY_MAX_GRAMMAR_LEN + 1), gbnf, err);
}

shimmy_status shimmy_grammar_check(const char *gbnf, shimmy_error *err) {
    if (!gbnf) return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "grammar", "no grammar given");
    grammar *g = NULL;
    shimmy_status st = grammar_cache_get(gbnf, strnlen(gbnf, GRAMMAR_MAX_TEXT + 1), &g, err);
    grammar_unref(g);
    return st;
}
