/* allOf: the parts merged keyword by keyword into one schema (a grammar has no intersection, so
 * a pair of keywords that cannot be merged exactly is an error), and the disjointness test that
 * lets oneOf be generated as an alternative. */
#include "grammar/schema.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_PARTS 256

typedef struct parts {
    json_t *p[MAX_PARTS];
    size_t n;
} parts;

/* Flattens nested allOf and $ref (with their sibling keywords) into plain parts. */
static bool expand(gs_ctx *c, json_t *s, const char *path, parts *out) {
    if (json_is_true(s)) return true;
    if (json_is_false(s))
        return gs_fail(c, path, NULL, "allOf contains false: nothing is valid"), false;
    if (!json_is_object(s)) return gs_fail(c, path, NULL, "a schema must be an object"), false;
    if (!gs_depth_enter(c, path)) return false;
    bool ok = true;
    json_t *ref = json_object_get(s, "$ref"), *all = json_object_get(s, "allOf");
    if (ref) {
        char here[256];
        gs_path(here, path, "$ref");
        json_t *t = gs_resolve(c, json_string_value(ref), here);
        ok = t && expand(c, t, here, out);
    }
    if (ok && all) {
        if (!json_is_array(all)) {
            gs_fail(c, path, "allOf", "allOf must be an array of schemas");
            ok = false;
        }
        for (size_t i = 0; ok && i < json_array_size(all); i++) {
            char here[256];
            gs_path_i(here, path, "allOf", i);
            ok = expand(c, json_array_get(all, i), here, out);
        }
    }
    if (ok) {
        if (out->n == MAX_PARTS) {
            gs_fail(c, path, "allOf", "more than %d schemas to merge", MAX_PARTS);
            ok = false;
        } else {
            out->p[out->n++] = s; /* its $ref/allOf keys are skipped by the merge */
        }
    }
    gs_depth_leave(c);
    return ok;
}

static bool is_min_kw(const char *k) {
    return !strcmp(k, "minLength") || !strcmp(k, "minItems") || !strcmp(k, "minimum") ||
           !strcmp(k, "minProperties");
}
static bool is_max_kw(const char *k) {
    return !strcmp(k, "maxLength") || !strcmp(k, "maxItems") || !strcmp(k, "maximum") ||
           !strcmp(k, "maxProperties");
}

static json_t *all_of(json_t *a, json_t *b) {
    return json_pack("{s:[OO]}", "allOf", a, b);
}

/* Merges the numeric exclusive bounds (number form); the boolean draft-4 form must agree. */
static bool merge_number(json_t *m, const char *k, json_t *v, bool take_max) {
    json_t *old = json_object_get(m, k);
    if (!old) return json_object_set(m, k, v) == 0;
    if (json_is_number(old) && json_is_number(v)) {
        double a = json_number_value(old), b = json_number_value(v);
        if (take_max ? b > a : b < a) json_object_set(m, k, v);
        return true;
    }
    return json_equal(old, v);
}

static bool merge_types(json_t *m, json_t *v) {
    json_t *old = json_object_get(m, "type");
    if (!old) return json_object_set(m, "type", v) == 0;
    json_t *out = json_array();
    json_t *a1 = json_is_array(old) ? old : NULL, *b1 = json_is_array(v) ? v : NULL;
    size_t na = a1 ? json_array_size(a1) : 1, nb = b1 ? json_array_size(b1) : 1;
    for (size_t i = 0; i < na; i++) {
        const char *ta = json_string_value(a1 ? json_array_get(a1, i) : old);
        for (size_t j = 0; ta && j < nb; j++) {
            const char *tb = json_string_value(b1 ? json_array_get(b1, j) : v);
            if (!tb) continue;
            const char *t = !strcmp(ta, tb)                                   ? ta
                            : !strcmp(ta, "integer") && !strcmp(tb, "number") ? ta
                            : !strcmp(ta, "number") && !strcmp(tb, "integer") ? tb
                                                                              : NULL;
            if (t) json_array_append_new(out, json_string(t));
        }
    }
    json_object_set_new(m, "type", out);
    return true;
}

json_t *gs_merge(gs_ctx *c, json_t *const *in, size_t n, const char *path) {
    parts ps = {.n = 0};
    for (size_t i = 0; i < n; i++) {
        char here[256];
        gs_path_i(here, path, "allOf", i);
        if (!expand(c, in[i], here, &ps)) return NULL;
    }
    json_t *m = gs_keep(c, json_object());
    if (!m) return NULL;
    json_decref(m);
    json_t *props = json_object(), *req = json_array(), *aps = json_array();
    gs_keep(c, props);
    gs_keep(c, req);
    gs_keep(c, aps);
    json_decref(props);
    json_decref(req);
    json_decref(aps);
    bool any_props = false, ap_false = false, ap_true_all = true;
    for (size_t i = 0; i < ps.n; i++) {
        json_t *p = ps.p[i];
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v) {
            bool ok = true;
            if (!strcmp(k, "$ref") || !strcmp(k, "allOf") || !gs_keyword_matters(k)) {
                continue; /* annotations differ freely between parts */
            } else if (!strcmp(k, "properties")) {
                any_props = true;
                const char *pk;
                json_t *pv;
                json_object_foreach(v, pk, pv) {
                    json_t *old = json_object_get(props, pk);
                    json_object_set_new(props, pk, old ? all_of(old, pv) : json_incref(pv));
                }
            } else if (!strcmp(k, "required")) {
                for (size_t j = 0; j < json_array_size(v); j++) {
                    json_t *e = json_array_get(v, j);
                    bool dup = false;
                    for (size_t q = 0; q < json_array_size(req); q++)
                        dup |= json_equal(json_array_get(req, q), e);
                    if (!dup) json_array_append(req, e);
                }
            } else if (!strcmp(k, "additionalProperties")) {
                continue; /* below */
            } else if (!strcmp(k, "type")) {
                ok = merge_types(m, v);
            } else if (is_min_kw(k) || !strcmp(k, "exclusiveMinimum")) {
                ok = merge_number(m, k, v, true);
            } else if (is_max_kw(k) || !strcmp(k, "exclusiveMaximum")) {
                ok = merge_number(m, k, v, false);
            } else if (!strcmp(k, "uniqueItems")) {
                if (json_is_true(v)) json_object_set(m, k, v);
            } else if (!strcmp(k, "items") && json_is_object(json_object_get(m, k)) &&
                       json_is_object(v)) {
                json_object_set_new(m, k, all_of(json_object_get(m, k), v));
            } else if (!strcmp(k, "enum")) {
                json_t *old = json_object_get(m, k);
                if (!old || !json_is_array(v)) {
                    json_object_set(m, k, v);
                } else {
                    json_t *keep = json_array();
                    for (size_t a = 0; a < json_array_size(old); a++)
                        for (size_t b = 0; b < json_array_size(v); b++)
                            if (json_equal(json_array_get(old, a), json_array_get(v, b))) {
                                json_array_append(keep, json_array_get(old, a));
                                break;
                            }
                    json_object_set_new(m, k, keep);
                }
            } else {
                json_t *old = json_object_get(m, k);
                if (!old)
                    json_object_set(m, k, v);
                else
                    ok = json_equal(old, v);
            }
            if (!ok)
                return gs_fail(c, path, "allOf",
                               "the parts give \"%s\" different values and a grammar cannot "
                               "intersect them; merge them by hand",
                               k),
                       NULL;
        }
    }
    /* A part's additionalProperties judges the merged properties that part does not declare. */
    for (size_t i = 0; i < ps.n; i++) {
        json_t *ap = json_object_get(ps.p[i], "additionalProperties");
        json_t *own = json_object_get(ps.p[i], "properties");
        if (!ap) {
            if (own || json_object_get(ps.p[i], "required")) ap_true_all = false;
            continue;
        }
        if (json_is_false(ap)) ap_false = true;
        if (!json_is_true(ap)) ap_true_all = false;
        if (json_is_object(ap)) json_array_append(aps, ap);
        const char *pk;
        json_t *pv;
        json_t *drop = json_array();
        json_object_foreach(props, pk, pv) {
            if (json_object_get(own, pk)) continue;
            if (json_is_false(ap)) {
                json_array_append_new(drop, json_string(pk));
            } else if (json_is_object(ap)) {
                json_object_set_new(props, pk, all_of(pv, ap));
            }
        }
        for (size_t j = 0; j < json_array_size(drop); j++) {
            const char *pk2 = json_string_value(json_array_get(drop, j));
            for (size_t q = 0; q < json_array_size(req); q++)
                if (!strcmp(json_string_value(json_array_get(req, q)), pk2)) {
                    json_decref(drop);
                    char here[256];
                    gs_path(here, path, "allOf");
                    return gs_fail(c, here, NULL,
                                   "property \"%s\" is required by one part and forbidden by "
                                   "another's additionalProperties: false",
                                   pk2),
                           NULL;
                }
            json_object_del(props, pk2);
        }
        json_decref(drop);
    }
    if (any_props) json_object_set(m, "properties", props);
    if (json_array_size(req)) json_object_set(m, "required", req);
    /* Extra properties only where every part allows them: false is always a valid subset. */
    if (ap_false || json_array_size(aps) > 1)
        json_object_set_new(m, "additionalProperties", json_false());
    else if (json_array_size(aps) == 1)
        json_object_set(m, "additionalProperties", json_array_get(aps, 0));
    else if (ap_true_all && ps.n && (any_props || json_array_size(req)))
        json_object_set_new(m, "additionalProperties", json_true());
    return m;
}

/* ---- disjointness for oneOf ---- */

static json_t *deref(gs_ctx *c, json_t *s) {
    for (int hops = 0; hops < 16 && json_is_object(s); hops++) {
        json_t *ref = json_object_get(s, "$ref");
        if (!ref || json_object_size(s) != 1) break;
        const char *r = json_string_value(ref);
        if (!r || r[0] != '#') break;
        json_t *t = gs_resolve(c, r, "");
        if (!t) return NULL;
        s = t;
    }
    return s;
}

enum { B_NULL = 1, B_BOOL = 2, B_OBJ = 4, B_ARR = 8, B_STR = 16, B_NUM = 32, B_ALL = 63 };

static int value_bits(json_t *v) {
    switch (json_typeof(v)) {
    case JSON_NULL: return B_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return B_BOOL;
    case JSON_OBJECT: return B_OBJ;
    case JSON_ARRAY: return B_ARR;
    case JSON_STRING: return B_STR;
    default: return B_NUM;
    }
}

/* The types a schema's values can have (integer and number are one family here). */
static int accepted_bits(json_t *s, bool generated) {
    if (!json_is_object(s)) return json_is_false(s) ? 0 : B_ALL;
    int bits = 0;
    json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    if (cn) return value_bits(cn);
    if (json_is_array(en)) {
        for (size_t i = 0; i < json_array_size(en); i++) bits |= value_bits(json_array_get(en, i));
        return bits;
    }
    if (json_object_get(s, "anyOf") || json_object_get(s, "oneOf") || json_object_get(s, "allOf") ||
        json_object_get(s, "$ref"))
        return B_ALL; /* not analysed */
    json_t *t = json_object_get(s, "type");
    size_t n = json_is_array(t) ? json_array_size(t) : t ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_is_array(t) ? json_array_get(t, i) : t);
        if (!name) continue;
        bits |= !strcmp(name, "null")      ? B_NULL
                : !strcmp(name, "boolean") ? B_BOOL
                : !strcmp(name, "object")  ? B_OBJ
                : !strcmp(name, "array")   ? B_ARR
                : !strcmp(name, "string")  ? B_STR
                                           : B_NUM;
    }
    if (!n && generated) {
        /* The converter generates the types the keywords imply (schema.c's table). */
        static const struct {
            const char *kw;
            int bit;
        } implied[] = {
            {"properties", B_OBJ},      {"required", B_OBJ},        {"additionalProperties", B_OBJ},
            {"minProperties", B_OBJ},   {"maxProperties", B_OBJ},   {"items", B_ARR},
            {"prefixItems", B_ARR},     {"additionalItems", B_ARR}, {"minItems", B_ARR},
            {"maxItems", B_ARR},        {"uniqueItems", B_ARR},     {"minLength", B_STR},
            {"maxLength", B_STR},       {"pattern", B_STR},         {"format", B_STR},
            {"minimum", B_NUM},         {"maximum", B_NUM},         {"exclusiveMinimum", B_NUM},
            {"exclusiveMaximum", B_NUM}};
        for (size_t i = 0; i < sizeof implied / sizeof implied[0]; i++)
            if (json_object_get(s, implied[i].kw)) bits |= implied[i].bit;
    }
    return bits ? bits : B_ALL;
}

static bool value_in(json_t *v, json_t *s) {
    json_t *cn = json_object_get(s, "const"), *en = json_object_get(s, "enum");
    if (cn) return json_equal(v, cn);
    for (size_t i = 0; i < json_array_size(en); i++)
        if (json_equal(v, json_array_get(en, i))) return true;
    return !en;
}

static bool is_required(json_t *s, const char *p) {
    json_t *req = json_object_get(s, "required");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!strcmp(json_string_value(json_array_get(req, i))
                        ? json_string_value(json_array_get(req, i))
                        : "",
                    p))
            return true;
    return false;
}

/* Whether the converter never emits property p for s (declared properties only, no extras). */
static bool never_emits(json_t *s, const char *p) {
    json_t *props = json_object_get(s, "properties"),
           *ap = json_object_get(s, "additionalProperties");
    if (json_object_get(props, p) || is_required(s, p)) return false;
    if (json_is_false(ap)) return true;
    return !ap && (props || json_object_get(s, "required"));
}

/* Every value generated for x fails y. */
static bool excludes(gs_ctx *c, json_t *x, json_t *y) {
    int gx = accepted_bits(x, true), ay = accepted_bits(y, false);
    if (!(gx & ay)) return true;
    json_t *xc = json_object_get(x, "const"), *xe = json_object_get(x, "enum");
    if ((xc || json_is_array(xe)) && (json_object_get(y, "const") || json_object_get(y, "enum"))) {
        bool any = xc ? value_in(xc, y) : false;
        for (size_t i = 0; !xc && i < json_array_size(xe); i++)
            any |= value_in(json_array_get(xe, i), y);
        if (!any) return true;
    }
    if (gx != B_OBJ) return false;
    json_t *xp = json_object_get(x, "properties"), *yp = json_object_get(y, "properties");
    const char *k;
    json_t *v;
    json_object_foreach(xp, k, v) {
        if (!is_required(x, k)) continue;
        if (json_is_false(json_object_get(y, "additionalProperties")) && !json_object_get(yp, k))
            return true;
        json_t *xv = deref(c, v), *yv = deref(c, json_object_get(yp, k));
        if (xv && yv && json_is_object(xv) && json_is_object(yv) &&
            (json_object_get(xv, "const") || json_object_get(xv, "enum")) &&
            (json_object_get(yv, "const") || json_object_get(yv, "enum")) && excludes(c, xv, yv))
            return true;
    }
    json_t *yr = json_object_get(y, "required");
    for (size_t i = 0; i < json_array_size(yr); i++) {
        const char *q = json_string_value(json_array_get(yr, i));
        if (q && never_emits(x, q)) return true;
    }
    return false;
}

bool gs_disjoint(gs_ctx *c, json_t *a, json_t *b) {
    a = deref(c, a);
    b = deref(c, b);
    if (!a || !b) return false;
    if (json_is_false(a) || json_is_false(b)) return true;
    return excludes(c, a, b) && excludes(c, b, a);
}
