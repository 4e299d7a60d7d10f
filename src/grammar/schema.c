/* The schema compiler's dispatch: keyword checks, $ref, enum/const, anyOf/oneOf/allOf and the
 * choice of JSON types; the per-type rules live in schema_types.c and schema_number.c. */
#include "grammar/grammar.h"
#include "grammar/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keywords that change what is valid and that a grammar cannot enforce. */
static const char *const unsupported[] = {"not",
                                          "if",
                                          "multipleOf",
                                          "dependentRequired",
                                          "dependencies",
                                          "dependentSchemas",
                                          "patternProperties",
                                          "propertyNames",
                                          "contains",
                                          "minContains",
                                          "maxContains",
                                          "unevaluatedProperties",
                                          "unevaluatedItems",
                                          "$dynamicRef",
                                          "$recursiveRef"};

/* The keywords this converter enforces; anything else is an annotation or unknown (ignored, as
 * the specification says). */
static const char *const validation[] = {"type",
                                         "enum",
                                         "const",
                                         "properties",
                                         "required",
                                         "additionalProperties",
                                         "items",
                                         "prefixItems",
                                         "additionalItems",
                                         "minItems",
                                         "maxItems",
                                         "uniqueItems",
                                         "minLength",
                                         "maxLength",
                                         "pattern",
                                         "format",
                                         "minimum",
                                         "maximum",
                                         "exclusiveMinimum",
                                         "exclusiveMaximum",
                                         "anyOf",
                                         "oneOf",
                                         "allOf",
                                         "$ref",
                                         "minProperties",
                                         "maxProperties"};

static bool in_list(const char *k, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i])) return true;
    return false;
}
#define IN(k, list) in_list(k, list, sizeof list / sizeof list[0])

enum {
    T_NULL = 1,
    T_BOOLEAN = 2,
    T_OBJECT = 4,
    T_ARRAY = 8,
    T_STRING = 16,
    T_INTEGER = 32,
    T_NUMBER = 64,
    T_ALL = 127
};

static const struct {
    const char *name;
    int bit;
} type_names[] = {{"null", T_NULL},    {"boolean", T_BOOLEAN}, {"object", T_OBJECT},
                  {"array", T_ARRAY},  {"string", T_STRING},   {"integer", T_INTEGER},
                  {"number", T_NUMBER}};

/* The keywords that imply a type when "type" is absent (a string keyword says nothing about
 * numbers, so generating strings only is a valid subset). */
static const struct {
    const char *kw;
    int bit;
} implied[] = {
    {"properties", T_OBJECT},      {"required", T_OBJECT},       {"additionalProperties", T_OBJECT},
    {"minProperties", T_OBJECT},   {"maxProperties", T_OBJECT},  {"items", T_ARRAY},
    {"prefixItems", T_ARRAY},      {"additionalItems", T_ARRAY}, {"minItems", T_ARRAY},
    {"maxItems", T_ARRAY},         {"uniqueItems", T_ARRAY},     {"minLength", T_STRING},
    {"maxLength", T_STRING},       {"pattern", T_STRING},        {"format", T_STRING},
    {"minimum", T_NUMBER},         {"maximum", T_NUMBER},        {"exclusiveMinimum", T_NUMBER},
    {"exclusiveMaximum", T_NUMBER}};

bool gs_keyword_matters(const char *k) {
    return IN(k, validation) || IN(k, unsupported);
}

static bool has_validation(json_t *s, const char *skip1, const char *skip2) {
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if ((skip1 && !strcmp(k, skip1)) || (skip2 && !strcmp(k, skip2))) continue;
        if (IN(k, validation)) return true;
    }
    return false;
}

/* s without keys skip1/skip2 (a new object, kept by c). */
static json_t *without(gs_ctx *c, json_t *s, const char *skip1, const char *skip2) {
    json_t *o = gs_keep(c, json_object());
    if (!o) return NULL;
    json_decref(o); /* c holds the reference */
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if ((skip1 && !strcmp(k, skip1)) || (skip2 && !strcmp(k, skip2))) continue;
        json_object_set(o, k, v);
    }
    return o;
}

static int type_bits(gs_ctx *c, json_t *s, const char *path) {
    json_t *t = json_object_get(s, "type");
    if (!t) return 0;
    json_t *one[1] = {t};
    size_t n = 1;
    json_t **list = one;
    if (json_is_array(t)) {
        n = json_array_size(t);
        if (!n) return gs_fail(c, path, "type", "an empty list of types allows nothing"), -1;
    }
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(t) ? json_array_get(t, i) : list[i];
        const char *name = json_string_value(e);
        int bit = 0;
        for (size_t j = 0; name && j < sizeof type_names / sizeof type_names[0]; j++)
            if (!strcmp(name, type_names[j].name)) bit = type_names[j].bit;
        if (!bit)
            return gs_fail(c, path, "type",
                           "unknown type %s%s%s (use null, boolean, object, array, string, "
                           "integer or number)",
                           name ? "\"" : "", name ? name : "(not a string)", name ? "\"" : ""),
                   -1;
        bits |= bit;
    }
    return bits;
}

static bool value_has_type(json_t *v, int bits) {
    switch (json_typeof(v)) {
    case JSON_NULL: return bits & T_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return bits & T_BOOLEAN;
    case JSON_OBJECT: return bits & T_OBJECT;
    case JSON_ARRAY: return bits & T_ARRAY;
    case JSON_STRING: return bits & T_STRING;
    case JSON_INTEGER: return bits & (T_INTEGER | T_NUMBER);
    case JSON_REAL: {
        double d = json_real_value(v);
        return (bits & T_NUMBER) || ((bits & T_INTEGER) && d == floor(d));
    }
    }
    return false;
}

static bool contains_ref(json_t *j) {
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(j)) json_array_foreach(j, i, v) if (contains_ref(v)) return true;
    if (json_is_object(j))
        json_object_foreach(j, k, v) if (!strcmp(k, "$ref") || contains_ref(v)) return true;
    return false;
}

/* Keywords beside enum/const: the rest of the schema converted alone and compiled, so that each
 * value can be run through it (exact for what the converter generates). Nested at most a few
 * levels (an enum inside the rest has its own). NULL after failing. */
static _Thread_local int enum_nesting;

static grammar *enum_filter(gs_ctx *c, json_t *s, const char *path) {
    json_t *rest = without(c, s, "enum", "const");
    if (!rest) return NULL;
    if (contains_ref(rest))
        return gs_fail(c, path, "enum",
                       "enum/const beside keywords that use $ref cannot be "
                       "checked; list only the values that satisfy them"),
               NULL;
    if (enum_nesting >= 4)
        return gs_fail(c, path, "enum", "enum/const beside other keywords nested too deeply"), NULL;
    char *gbnf = NULL;
    shimmy_error e = {0};
    enum_nesting++;
    shimmy_status st = grammar_schema_to_gbnf_json(rest, &gbnf, &e);
    enum_nesting--;
    grammar *g = NULL;
    if (!st) st = grammar_compile(gbnf, strlen(gbnf), &g, &e);
    free(gbnf);
    if (st) {
        char where[256];
        snprintf(where, sizeof where, "%s%s", path, e.where[0] == '/' ? e.where : "");
        const char *msg = strstr(e.message, ": ");
        return gs_fail(c, where, NULL, "%s",
                       msg && !strncmp(e.message, "JSON Schema at", 14) ? msg + 2 : e.message),
               NULL;
    }
    return g;
}

static bool value_allowed(grammar *g, const char *text, size_t len) {
    grammar_matcher *m = NULL;
    if (grammar_matcher_new(g, NULL, &m, NULL)) return false;
    bool ok = !grammar_matcher_accept_bytes(m, text, len, NULL) && grammar_matcher_can_end(m);
    grammar_matcher_free(m);
    return ok;
}

static const char *compile_enum(gs_ctx *c, json_t *s, const char *path) {
    json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    if (en && (!json_is_array(en) || !json_array_size(en)))
        return gs_fail(c, path, "enum", "enum must be a non-empty array");
    if (en && json_array_size(en) > GS_MAX_ENUM)
        return gs_fail(c, path, "enum", "more than %d values", GS_MAX_ENUM);
    int bits = type_bits(c, s, path);
    if (bits < 0) return NULL;
    if (!bits) bits = T_ALL;
    bool others = false;
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) others |=
        IN(k, validation) && strcmp(k, "enum") && strcmp(k, "const") && strcmp(k, "type");
    grammar *g = NULL;
    if (others && !(g = enum_filter(c, s, path))) return NULL;
    gs_buf b = {0};
    size_t n = en ? json_array_size(en) : 1, kept = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *val = en ? json_array_get(en, i) : cn;
        if (en && cn && !json_equal(val, cn)) continue;
        if (!value_has_type(val, bits)) continue;
        size_t at = b.n;
        gs_put(&b, kept ? " | " : "");
        if (!gs_json_lit(&b, val)) b.oom = true;
        if (g && !b.oom) {
            char *text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
            bool ok = text && value_allowed(g, text, strlen(text));
            free(text);
            if (!ok) {
                b.n = at;
                if (b.p) b.p[at] = 0;
                continue;
            }
        }
        kept++;
    }
    grammar_unref(g);
    if (!kept) {
        gs_buf_free(&b);
        return gs_fail(c, path, en ? "enum" : "const",
                       "no value satisfies enum, const and the keywords beside them together");
    }
    const char *r = b.oom ? gs_fail(c, path, NULL, "out of memory") : gs_rule(c, "enum", b.p);
    gs_buf_free(&b);
    return r;
}

static const char *compile_ref(gs_ctx *c, json_t *s, const char *path) {
    char here[256];
    gs_path(here, path, "$ref");
    json_t *target = gs_resolve(c, json_string_value(json_object_get(s, "$ref")), here);
    if (!target) return NULL;
    if (has_validation(s, "$ref", NULL)) {
        /* Draft 2019+ applies $ref beside other keywords: both must hold. */
        json_t *parts[2] = {target, without(c, s, "$ref", NULL)};
        json_t *m = parts[1] ? gs_merge(c, parts, 2, path) : NULL;
        return m ? gs_compile(c, m, path) : NULL;
    }
    const char *name = gs_memo_get(c, target);
    if (name && gs_memo_cycles(c, target))
        return gs_fail(c, here, NULL,
                       "this $ref leads back to itself without an object or array in between, "
                       "so no value could ever be written");
    if (name) return name;
    const char *ref = json_string_value(json_object_get(s, "$ref"));
    const char *last = strrchr(ref, '/');
    size_t idx = 0;
    name = gs_rule_reserve(c, last && last[1] ? last + 1 : "ref", &idx);
    if (!name) return NULL;
    gs_memo_put(c, target, name);
    /* errors inside the target name where it is in the document */
    char at[256];
    snprintf(at, sizeof at, "%s", ref + 1);
    const char *body = gs_compile(c, target, at);
    gs_memo_done(c, target);
    if (body) gs_rule_set(c, idx, body);
    return body ? name : NULL;
}

static const char *compile_alternatives(gs_ctx *c, json_t *s, const char *path, const char *kw) {
    char here[256];
    gs_path(here, path, kw);
    json_t *list = json_object_get(s, kw);
    size_t n = json_array_size(list);
    if (!json_is_array(list) || !n)
        return gs_fail(c, path, kw, "%s must be a non-empty array of schemas", kw);
    if (n > 256) return gs_fail(c, path, kw, "more than 256 alternatives");
    json_t *rest = has_validation(s, kw, NULL) ? without(c, s, kw, NULL) : NULL;
    json_t *branch[256];
    for (size_t i = 0; i < n; i++) {
        branch[i] = json_array_get(list, i);
        if (rest) {
            json_t *parts[2] = {rest, branch[i]};
            char bp[256];
            gs_path_i(bp, path, kw, i);
            branch[i] = gs_merge(c, parts, 2, bp);
            if (!branch[i]) return NULL;
            /* the types beside it exclude this branch: it allows nothing */
            json_t *ty = json_object_get(branch[i], "type");
            if (json_is_array(ty) && !json_array_size(ty)) branch[i] = json_false();
        }
    }
    if (!strcmp(kw, "oneOf"))
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (!gs_disjoint(c, branch[i], branch[j])) {
                    if (gs_failed(c)) return NULL;
                    char bp[256];
                    gs_path_i(bp, path, kw, j);
                    return gs_fail(c, bp, NULL,
                                   "oneOf branches %zu and %zu may both match one value, and a "
                                   "grammar cannot enforce \"exactly one\"; make them disjoint "
                                   "(different types, or a required property with different "
                                   "const values) or use anyOf",
                                   i, j);
                }
    gs_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        char bp[256];
        gs_path_i(bp, path, kw, i);
        if (json_is_false(branch[i])) continue; /* never valid: contributes nothing */
        const char *r = gs_compile(c, branch[i], bp);
        if (!r) {
            gs_buf_free(&b);
            return NULL;
        }
        gs_put(&b, b.n ? " | " : "");
        gs_put(&b, r);
    }
    if (!b.n) return gs_fail(c, path, kw, "no branch can be satisfied");
    const char *r = b.oom ? gs_fail(c, path, NULL, "out of memory") : gs_rule(c, kw, b.p);
    gs_buf_free(&b);
    return r;
}

static const char *compile_types(gs_ctx *c, json_t *s, const char *path) {
    int bits = type_bits(c, s, path);
    if (bits < 0) return NULL;
    if (!bits) {
        for (size_t i = 0; i < sizeof implied / sizeof implied[0]; i++)
            if (json_object_get(s, implied[i].kw)) bits |= implied[i].bit;
        if (!bits) return gs_prim_rule(c, GS_VALUE);
    }
    if (bits & T_NUMBER) bits &= ~T_INTEGER; /* every integer is a number */
    gs_buf b = {0};
    int n = 0;
    const char *one = NULL;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        int bit = type_names[i].bit;
        if (!(bits & bit)) continue;
        const char *r = NULL;
        switch (bit) {
        case T_NULL: r = gs_prim_rule(c, GS_NULL); break;
        case T_BOOLEAN: r = gs_prim_rule(c, GS_BOOLEAN); break;
        case T_OBJECT: r = gs_object(c, s, path); break;
        case T_ARRAY: r = gs_array(c, s, path); break;
        case T_STRING: r = gs_string(c, s, path); break;
        case T_INTEGER: r = gs_number(c, s, path, true); break;
        case T_NUMBER: r = gs_number(c, s, path, false); break;
        }
        if (!r) {
            gs_buf_free(&b);
            return NULL;
        }
        one = r;
        gs_put(&b, n++ ? " | " : "");
        gs_put(&b, r);
    }
    const char *r = n == 1  ? one
                    : b.oom ? gs_fail(c, path, NULL, "out of memory")
                            : gs_rule(c, "types", b.p);
    gs_buf_free(&b);
    return r;
}

static const char *compile_object_schema(gs_ctx *c, json_t *s, const char *path) {
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (IN(k, unsupported))
            return gs_fail(c, path, k,
                           "keyword \"%s\" changes what is valid but cannot be enforced by a "
                           "grammar; remove it from the schema",
                           k);
    }
    json_t *u = json_object_get(s, "uniqueItems");
    if (u && !json_is_boolean(u))
        return gs_fail(c, path, "uniqueItems", "uniqueItems must be a boolean");
    if (json_object_get(s, "$ref")) {
        if (!json_is_string(json_object_get(s, "$ref")))
            return gs_fail(c, path, "$ref", "$ref must be a string");
        return compile_ref(c, s, path);
    }
    if (json_object_get(s, "allOf")) {
        json_t *list = json_object_get(s, "allOf");
        size_t n = json_array_size(list);
        if (!json_is_array(list) || !n)
            return gs_fail(c, path, "allOf", "allOf must be a non-empty array of schemas");
        if (n > 256) return gs_fail(c, path, "allOf", "more than 256 schemas");
        json_t *parts[257];
        for (size_t i = 0; i < n; i++) parts[i] = json_array_get(list, i);
        if (has_validation(s, "allOf", NULL)) parts[n++] = without(c, s, "allOf", NULL);
        json_t *m = gs_merge(c, parts, n, path);
        return m ? gs_compile(c, m, path) : NULL;
    }
    if (json_object_get(s, "anyOf") && json_object_get(s, "oneOf"))
        return gs_fail(c, path, "oneOf",
                       "anyOf and oneOf in one schema are not supported; "
                       "wrap one of them in allOf");
    if (json_object_get(s, "anyOf")) return compile_alternatives(c, s, path, "anyOf");
    if (json_object_get(s, "oneOf")) return compile_alternatives(c, s, path, "oneOf");
    if (json_object_get(s, "enum") || json_object_get(s, "const")) return compile_enum(c, s, path);
    return compile_types(c, s, path);
}

const char *gs_compile(gs_ctx *c, json_t *s, const char *path) {
    if (!gs_depth_enter(c, path)) return NULL;
    const char *r;
    if (json_is_true(s))
        r = gs_prim_rule(c, GS_VALUE);
    else if (json_is_false(s))
        r = gs_fail(c, path, NULL, "the schema false allows no value");
    else if (!json_is_object(s))
        r = gs_fail(c, path, NULL, "a schema must be an object or a boolean");
    else
        r = compile_object_schema(c, s, path);
    gs_depth_leave(c);
    return r;
}

/* JSON pointer unescaping of one reference token (~1 is /, ~0 is ~, %XX from URI fragments). */
static bool pointer_token(const char *p, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
            ch = p[++i] == '0' ? '~' : '/';
        } else if (ch == '%' && i + 2 < n) {
            unsigned v;
            if (sscanf(p + i + 1, "%2x", &v) != 1) return false;
            ch = (char)v;
            i += 2;
        }
        if (k + 1 >= cap) return false;
        out[k++] = ch;
    }
    out[k] = 0;
    return true;
}

json_t *gs_resolve(gs_ctx *c, const char *ref, const char *path) {
    if (!ref || ref[0] != '#')
        return gs_fail(c, path, NULL,
                       "only references into the same document (\"#/$defs/name\") are "
                       "supported, not \"%s\"",
                       ref ? ref : ""),
               NULL;
    json_t *cur = gs_root(c);
    const char *p = ref + 1;
    if (*p && *p != '/')
        return gs_fail(c, path, NULL, "\"%s\": anchors are not supported; use a JSON pointer", ref),
               NULL;
    while (*p == '/') {
        const char *end = strchr(p + 1, '/');
        size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);
        char tok[256];
        if (!pointer_token(p + 1, n, tok, sizeof tok))
            return gs_fail(c, path, NULL, "\"%s\" is not a valid JSON pointer", ref), NULL;
        json_t *next = NULL;
        if (json_is_object(cur)) {
            next = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *e;
            unsigned long i = strtoul(tok, &e, 10);
            if (*tok && !*e) next = json_array_get(cur, i);
        }
        if (!next)
            return gs_fail(c, path, NULL, "\"%s\" does not point to anything in the schema", ref),
                   NULL;
        cur = next;
        p += n + 1;
    }
    return cur;
}
