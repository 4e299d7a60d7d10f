/*
 * grammar/schema — JSON Schema to GBNF: the text of a grammar (llama.cpp's GBNF, start rule
 * `root`) whose sentences are compact JSON documents valid under the schema, with a bounded
 * amount of optional whitespace. The grammar parser and mask engine (grammar.h) compile it.
 *
 * What is covered (docs/grammar.md has the table): type (arrays of types, null), enum, const,
 * properties in declared order with required/optional, additionalProperties (false, true or a
 * schema), anyOf, oneOf (when its branches are provably disjoint), allOf (merged), $ref into the
 * same document ($defs, definitions, any "#/..." pointer, recursion included), items,
 * prefixItems (and draft-7 tuple items/additionalItems), minItems/maxItems, minLength/maxLength,
 * pattern (the ECMA-262 subset in regex.c), format (date, time, date-time, duration, uuid,
 * email, ipv4, ipv6, hostname, uri), minimum/maximum/exclusive bounds (exact digit-range rules;
 * numbers with bounds have no exponent). The grammar may describe a subset of the valid documents
 * (an object lists its declared properties only unless additionalProperties asks for more, numbers
 * have at most 15 integer digits), never a superset.
 *
 * A keyword that changes what is valid but cannot be enforced by a grammar (not, if, uniqueItems,
 * multipleOf, patternProperties, ...) is an error naming the keyword and its JSON pointer, never
 * ignored. Annotations (title, description, examples, default, $schema, $id, $comment, ...) and
 * unknown keywords are ignored, as the JSON Schema specification says.
 *
 * Limits (hostile schemas): nesting depth, the number of rules, the grammar's size, repetition
 * counts and regex length are bounded; exceeding one is an error that says where.
 *
 * Ownership: *gbnf is malloc'd and owned by the caller (free()). Thread-safety: pure functions.
 */
#ifndef SHIMMY_GRAMMAR_SCHEMA_H
#define SHIMMY_GRAMMAR_SCHEMA_H

#include "shimmy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Converts JSON Schema text (len bytes, need not be NUL-terminated) to GBNF text. Errors:
 * SHIMMY_ERR_INVALID_JSON (not JSON: message gives line:column), SHIMMY_ERR_INVALID_ARG
 * (unsupported keyword, bad keyword value, unsatisfiable schema, a limit): err->where is the JSON
 * pointer of the offending keyword ("/properties/age/multipleOf") and the message names it. */
shimmy_status grammar_schema_to_gbnf(const char *schema, size_t len, char **gbnf,
                                     shimmy_error *err);
/* The same for a parsed schema (borrowed). */
shimmy_status grammar_schema_to_gbnf_json(json_t *schema, char **gbnf, shimmy_error *err);

/* ======================================================================================== */
/* Internal to schema*.c and regex.c: the converter's shared pieces.                          */

#define GS_MAX_DEPTH  64                     /* schema nesting (and $ref/allOf expansion) */
#define GS_MAX_RULES  20000                  /* rules in one grammar */
#define GS_MAX_BYTES  SHIMMY_MAX_GRAMMAR_LEN /* grammar text (what a request may carry) */
#define GS_MAX_REPEAT 10000 /* {m,n} bounds: minLength, maxItems, regex quantifiers */
#define GS_MAX_REGEX  4096  /* pattern length, bytes */
#define GS_MAX_ENUM   4096  /* enum values */
#define GS_INT_DIGITS 15    /* integer digits of numbers without a bound that needs more */

typedef struct gs_buf {
    char *p; /* owned, NUL-terminated when n > 0 */
    size_t n, cap;
    bool oom;
} gs_buf;

void gs_put(gs_buf *b, const char *s);
void gs_putn(gs_buf *b, const char *s, size_t n);
void gs_printf(gs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gs_buf_free(gs_buf *b);
const char *gs_str(const gs_buf *b); /* "" when empty */

/* A GBNF literal "..." of n raw bytes (UTF-8 kept, control bytes escaped). */
void gs_lit(gs_buf *b, const char *s, size_t n);
/* A GBNF literal of v's compact JSON text (enum/const values, property names). false on OOM. */
bool gs_json_lit(gs_buf *b, const json_t *v);

/* A set of Unicode code points as sorted, disjoint ranges. */
#define GS_CSET_MAX 256
typedef struct gs_cset {
    uint32_t lo[GS_CSET_MAX], hi[GS_CSET_MAX];
    int n;
    bool overflow; /* too many ranges */
} gs_cset;

void gs_cset_add(gs_cset *s, uint32_t lo, uint32_t hi);
void gs_cset_negate(gs_cset *s);
bool gs_cset_has(const gs_cset *s, uint32_t c);
bool gs_cset_empty(const gs_cset *s);
/* GBNF expression matching one code point of s as it appears inside a JSON string: raw where
 * JSON allows it, else its canonical escape (\", \\, \n, \u0001, ...). */
void gs_cset_emit(gs_buf *b, const gs_cset *s);

/* The shared rules, added to the grammar on first use. */
typedef enum gs_prim {
    GS_WS = 1,  /* bounded optional whitespace (0 is no rule) */
    GS_CHAR,    /* one character inside a JSON string (escapes of non-surrogates) */
    GS_STRING,  /* any JSON string */
    GS_NUMBER,  /* any JSON number (bounded digits) */
    GS_INTEGER, /* any integer (bounded digits) */
    GS_BOOLEAN,
    GS_NULL,
    GS_VALUE, /* any JSON value */
    GS_OBJECT,
    GS_ARRAY,
    GS_PRIM_COUNT
} gs_prim;

typedef struct gs_ctx gs_ctx;

/* Fails the conversion (first failure wins) with SHIMMY_ERR_INVALID_ARG at JSON pointer `path`
 * (and `kw` appended when not NULL). Returns NULL so that `return gs_fail(...)` ends a rule. */
const char *gs_fail(gs_ctx *c, const char *path, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool gs_failed(const gs_ctx *c);
/* Adds `name ::= body` (name made from hint, unique) and returns the name (owned by c); a rule
 * with the same body is reused. NULL after a failure or a limit. */
const char *gs_rule(gs_ctx *c, const char *hint, const char *body);
/* Reserves a rule name whose body comes later (recursion); gs_rule_set fills it. */
const char *gs_rule_reserve(gs_ctx *c, const char *hint, size_t *index);
void gs_rule_set(gs_ctx *c, size_t index, const char *body);
const char *gs_prim_rule(gs_ctx *c, gs_prim p);
/* A fresh number for hint-made names of helper rules. */
unsigned gs_next_id(gs_ctx *c);
/* The rule compiled for a schema object (by address), for $ref targets and recursion. */
const char *gs_memo_get(gs_ctx *c, const json_t *s);
void gs_memo_put(gs_ctx *c, const json_t *s, const char *name); /* marks it busy */
void gs_memo_done(gs_ctx *c, const json_t *s);
/* True when s is being compiled and no object or array was entered since it began: a $ref back
 * to it would be a rule that reaches itself before writing anything (left recursion). */
bool gs_memo_cycles(gs_ctx *c, const json_t *s);
void gs_consume(gs_ctx *c, int delta); /* +1 entering an object's or array's members, -1 after */
/* Keeps j alive (a reference is taken) until the conversion ends; returns j. */
json_t *gs_keep(gs_ctx *c, json_t *j);
/* path + "/" + key as a JSON pointer (~ and / escaped) into out[256]. */
void gs_path(char out[256], const char *path, const char *key);
void gs_path_i(char out[256], const char *path, const char *key, size_t i);

/* The schema compiler (schema.c): a rule name for schema s found at path. */
const char *gs_compile(gs_ctx *c, json_t *s, const char *path);
int gs_depth_enter(gs_ctx *c, const char *path); /* false after failing */
void gs_depth_leave(gs_ctx *c);
json_t *gs_root(gs_ctx *c);

/* Whether a keyword changes what is valid (enforced or refused), as opposed to an annotation or
 * an unknown keyword. */
bool gs_keyword_matters(const char *k);

/* schema_types.c */
const char *gs_object(gs_ctx *c, json_t *s, const char *path);
const char *gs_array(gs_ctx *c, json_t *s, const char *path);
const char *gs_string(gs_ctx *c, json_t *s, const char *path);
/* schema_number.c: integer (is_int) or number rule honouring the bounds of s. */
const char *gs_number(gs_ctx *c, json_t *s, const char *path, bool is_int);
/* schema_format.c: the string rule (quotes included) of a format; *minlen and *maxlen its length
 * range in characters (SIZE_MAX = unbounded). NULL (failed) for an unknown format. */
const char *gs_format(gs_ctx *c, const char *format, const char *path, size_t *minlen,
                      size_t *maxlen);
/* schema_merge.c: allOf parts merged into one schema (kept by c), or NULL (failed). */
json_t *gs_merge(gs_ctx *c, json_t *const *parts, size_t n, const char *path);
/* schema_merge.c: true when no document is valid under both a and b as this converter
 * generates them (oneOf may then be generated as anyOf). */
bool gs_disjoint(gs_ctx *c, json_t *a, json_t *b);
/* Resolves a "#..." reference (JSON pointer into the root document); NULL if it fails. */
json_t *gs_resolve(gs_ctx *c, const char *ref, const char *path);

/* regex.c: a GBNF expression (into out) for the contents of a JSON string (quotes excluded)
 * whose decoded value matches ECMA-262 `pattern` (search semantics: unanchored ends match
 * anything); *minlen and *maxlen: in, the length range asked for beside the pattern (0 and
 * SIZE_MAX: none), which is met exactly where the pattern's shape allows (one repeated
 * one-character atom in an anchored sequence); out, the length range in characters of the
 * anchored part (SIZE_MAX = unbounded); *anchored true when both ends are anchored. NULL/failed on
 * an unsupported or malformed pattern (message gives the offset). */
bool gs_regex(gs_ctx *c, const char *pattern, size_t len, const char *path, gs_buf *out,
              size_t *minlen, size_t *maxlen, bool *anchored);

#endif
