/* Structured output for every generation path of the library: the options' GBNF grammar or
 * JSON Schema compiled (through the grammar module's cache, so an application that sends the
 * same schema with every request compiles it once). */
#include "api.h"
#include "grammar/grammar.h"
#include "grammar/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shimmy_status api_gen_grammar(const shimmy_gen_options *o, struct grammar **out,
                              shimmy_error *err) {
    *out = NULL;
    if (o->grammar && *o->grammar)
        return grammar_cache_get(o->grammar, strlen(o->grammar), out, err);
    if (!(o->json_schema && *o->json_schema)) return SHIMMY_OK;
    char *gbnf = NULL;
    shimmy_status st = grammar_schema_to_gbnf(o->json_schema, strlen(o->json_schema), &gbnf, err);
    if (st) {
        if (err && !err->where[0]) snprintf(err->where, sizeof err->where, "json_schema");
        return st;
    }
    st = grammar_cache_get(gbnf, strlen(gbnf), out, err);
    if (st && err) {
        /* the converter wrote a grammar the compiler refused: a bug here, not the user's */
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err->message);
        core_error(err, SHIMMY_ERR_INTERNAL, "json_schema",
                   "the grammar made from the schema does not compile: %s", msg);
        st = SHIMMY_ERR_INTERNAL;
    }
    free(gbnf);
    return st;
}
