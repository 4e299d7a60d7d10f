/* Objects (declared properties in order, required/optional, extras that avoid the declared
 * names), arrays (prefix items, items, counts) and strings (lengths, pattern, format). */
#include "grammar/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_MAX SIZE_MAX

/* A non-negative integer keyword (absent: def). False (failed) when it is anything else. */
static bool count_kw(gs_ctx *c, json_t *s, const char *path, const char *kw, size_t def,
                     size_t *out) {
    json_t *v = json_object_get(s, kw);
    *out = def;
    if (!v) return true;
    double d = json_number_value(v);
    if (!json_is_number(v) || d < 0 || d != (double)(long long)d)
        return gs_fail(c, path, kw, "%s must be a non-negative integer", kw), false;
    *out = d > 1e15 ? (size_t)1e15 : (size_t)d;
    return true;
}

static void repeat(gs_buf *b, size_t lo, size_t hi) {
    if (lo == 0 && hi == NO_MAX)
        gs_put(b, "*");
    else if (lo == 1 && hi == NO_MAX)
        gs_put(b, "+");
    else if (lo == 0 && hi == 1)
        gs_put(b, "?");
    else if (hi == NO_MAX)
        gs_printf(b, "{%zu,}", lo);
    else if (lo == hi)
        gs_printf(b, "{%zu}", lo);
    else
        gs_printf(b, "{%zu,%zu}", lo, hi);
}

static const char *finish(gs_ctx *c, gs_buf *b, const char *hint, const char *path) {
    const char *r = b->oom ? gs_fail(c, path, NULL, "out of memory") : gs_rule(c, hint, b->p);
    gs_buf_free(b);
    return r;
}

/* ---- object keys that are none of the declared names ---- */

#define MAX_KEY 256

typedef struct key_cp {
    uint32_t cp[MAX_KEY];
    size_t n;
} key_cp;

static size_t utf8_decode(const char *s, size_t n, uint32_t *out) {
    unsigned char b = (unsigned char)s[0];
    int len = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if ((size_t)len > n) len = 1;
    uint32_t v = len == 1 ? b : b & (0x7F >> len);
    for (int i = 1; i < len; i++) v = (v << 6) | ((unsigned char)s[i] & 0x3F);
    *out = v;
    return (size_t)len;
}

/* Contents of a key string whose decoded value is none of keys[idx[..]] (all of which share the
 * first `depth` code points): a trie walked as rules. */
static const char *not_keys(gs_ctx *c, const key_cp *keys, const size_t *idx, size_t n,
                            size_t depth, const char *path) {
    gs_buf b = {0};
    bool terminal = false;
    gs_cset kids = {0};
    for (size_t i = 0; i < n; i++) {
        if (keys[idx[i]].n == depth)
            terminal = true;
        else
            gs_cset_add(&kids, keys[idx[i]].cp[depth], keys[idx[i]].cp[depth]);
    }
    gs_put(&b, "( ");
    int alts = 0;
    size_t sub[64];
    for (int r = 0; r < kids.n; r++)
        for (uint32_t ch = kids.lo[r]; ch <= kids.hi[r]; ch++) {
            size_t m = 0;
            for (size_t i = 0; i < n && m < 64; i++)
                if (keys[idx[i]].n > depth && keys[idx[i]].cp[depth] == ch) sub[m++] = idx[i];
            const char *next = not_keys(c, keys, sub, m, depth + 1, path);
            if (!next) {
                gs_buf_free(&b);
                return NULL;
            }
            gs_cset one = {0};
            gs_cset_add(&one, ch, ch);
            gs_put(&b, alts++ ? " | " : "");
            gs_cset_emit(&b, &one);
            gs_printf(&b, " %s", next);
        }
    gs_cset other = kids;
    gs_cset_negate(&other);
    gs_put(&b, alts++ ? " | " : "");
    gs_cset_emit(&b, &other);
    gs_printf(&b, " %s*", gs_prim_rule(c, GS_CHAR));
    gs_put(&b, terminal ? " )" : " )?");
    return finish(c, &b, "key", path);
}

static const char *extra_key(gs_ctx *c, json_t *props, const char *path) {
    size_t n = json_object_size(props);
    if (!n) return gs_prim_rule(c, GS_STRING);
    if (n > 64)
        return gs_fail(c, path, "additionalProperties",
                       "extra properties beside more than 64 declared ones are not supported");
    key_cp keys[64];
    size_t idx[64], i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v) {
        size_t len = strlen(k), at = 0;
        keys[i].n = 0;
        while (at < len) {
            if (keys[i].n == MAX_KEY)
                return gs_fail(c, path, "properties", "property name longer than %d characters",
                               MAX_KEY);
            at += utf8_decode(k + at, len - at, &keys[i].cp[keys[i].n++]);
        }
        idx[i] = i;
        i++;
    }
    const char *body = not_keys(c, keys, idx, n, 0, path);
    if (!body) return NULL;
    gs_buf b = {0};
    gs_printf(&b, "\"\\\"\" %s \"\\\"\"", body);
    return finish(c, &b, "extra-key", path);
}

/* ---- objects ---- */

typedef struct member {
    const char *key;
    const char *value; /* rule */
    bool required;
} member;

#define MAX_MEMBERS 1024

static bool in_required(json_t *req, const char *k) {
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!strcmp(json_string_value(json_array_get(req, i)), k)) return true;
    return false;
}

static const char *object_rule(gs_ctx *c, json_t *s, const char *path);

const char *gs_object(gs_ctx *c, json_t *s, const char *path) {
    gs_consume(c, 1); /* members come after "{" */
    const char *r = object_rule(c, s, path);
    gs_consume(c, -1);
    return r;
}

static const char *object_rule(gs_ctx *c, json_t *s, const char *path) {
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *ap = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return gs_fail(c, path, "properties", "properties must be an object");
    if (req && !json_is_array(req))
        return gs_fail(c, path, "required", "required must be an array of strings");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!json_is_string(json_array_get(req, i)))
            return gs_fail(c, path, "required", "required must be an array of strings");
    if (ap && !json_is_boolean(ap) && !json_is_object(ap))
        return gs_fail(c, path, "additionalProperties", "must be a boolean or a schema");
    if (json_object_size(props) + json_array_size(req) > MAX_MEMBERS)
        return gs_fail(c, path, "properties", "more than %d properties", MAX_MEMBERS);
    member *m = calloc(json_object_size(props) + json_array_size(req) + 1, sizeof *m);
    if (!m) return gs_fail(c, path, NULL, "out of memory");
    size_t n = 0;
    const char *k;
    json_t *v;
    const char *res = NULL;
    json_object_foreach(props, k, v) {
        char here[256], pp[256];
        gs_path(pp, path, "properties");
        gs_path(here, pp, k);
        bool r = in_required(req, k);
        if (json_is_false(v)) {
            if (r) {
                gs_fail(c, here, NULL, "required property \"%s\" has the schema false", k);
                goto out;
            }
            continue;
        }
        m[n].key = k;
        m[n].required = r;
        if (!(m[n].value = gs_compile(c, v, here))) goto out;
        n++;
    }
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *rk = json_string_value(json_array_get(req, i));
        if (json_object_get(props, rk)) continue;
        bool dup = false;
        for (size_t j = 0; j < n; j++) dup |= !strcmp(m[j].key, rk);
        if (dup) continue;
        if (json_is_false(ap)) {
            gs_fail(c, path, "required",
                    "required property \"%s\" is not in properties and additionalProperties is "
                    "false",
                    rk);
            goto out;
        }
        char here[256];
        gs_path(here, path, "additionalProperties");
        m[n].key = rk;
        m[n].required = true;
        m[n].value = json_is_object(ap) ? gs_compile(c, ap, here) : gs_prim_rule(c, GS_VALUE);
        if (!m[n].value) goto out;
        n++;
    }
    /* Extras: what additionalProperties allows; when it is absent, an object with declared
     * properties lists just those (a valid subset) and one without any is any object. */
    const char *extra = NULL;
    if (json_is_object(ap)) {
        char here[256];
        gs_path(here, path, "additionalProperties");
        if (!(extra = gs_compile(c, ap, here))) goto out;
    } else if (json_is_true(ap) || (!ap && !props && !req)) {
        extra = gs_prim_rule(c, GS_VALUE);
    }
    size_t n_req = 0, minp, maxp;
    for (size_t i = 0; i < n; i++) n_req += m[i].required;
    if (!count_kw(c, s, path, "minProperties", 0, &minp) ||
        !count_kw(c, s, path, "maxProperties", NO_MAX, &maxp))
        goto out;
    if (minp > n_req) {
        gs_fail(c, path, "minProperties",
                "minProperties %zu is more than the %zu required properties; a grammar cannot "
                "count optional ones (list them in required)",
                minp, n_req);
        goto out;
    }
    if (maxp < (extra ? NO_MAX : n)) {
        gs_fail(c, path, "maxProperties",
                "maxProperties %zu is less than the properties that may appear; a grammar "
                "cannot count them (remove optional properties or additionalProperties)",
                maxp);
        goto out;
    }
    const char *ws = gs_prim_rule(c, GS_WS);
    const char *xkv = NULL;
    if (extra) {
        const char *key = extra_key(c, props, path);
        if (!key) goto out;
        gs_buf b = {0};
        gs_printf(&b, "%s \":\" %s %s", key, ws, extra);
        if (!(xkv = finish(c, &b, "extra-kv", path))) goto out;
    }
    /* Built from the end: tail = members after at least one was written (each after a comma),
     * head = members when none was written yet. */
    gs_buf tail = {0}, head = {0};
    if (xkv) {
        gs_printf(&tail, "( \",\" %s %s )*", ws, xkv);
        gs_printf(&head, "( %s ( \",\" %s %s )* )?", xkv, ws, xkv);
    }
    for (size_t i = n; i-- > 0;) {
        json_t *ks = json_string(m[i].key);
        gs_buf lit = {0};
        if (!ks || !gs_json_lit(&lit, ks)) lit.oom = true;
        json_decref(ks);
        gs_printf(&lit, " \":\" %s %s", ws, m[i].value);
        const char *kvr = finish(c, &lit, m[i].key, path);
        if (!kvr) {
            gs_buf_free(&tail);
            gs_buf_free(&head);
            goto out;
        }
        const char *t_next = tail.n ? gs_rule(c, "tail", tail.p) : NULL;
        const char *h_next = head.n ? gs_rule(c, "head", head.p) : NULL;
        if (gs_failed(c)) {
            gs_buf_free(&tail);
            gs_buf_free(&head);
            goto out;
        }
        gs_buf nt = {0}, nh = {0};
        if (m[i].required) {
            gs_printf(&nt, "\",\" %s %s%s%s", ws, kvr, t_next ? " " : "", t_next ? t_next : "");
            gs_printf(&nh, "%s%s%s", kvr, t_next ? " " : "", t_next ? t_next : "");
        } else {
            gs_printf(&nt, "( \",\" %s %s )?%s%s", ws, kvr, t_next ? " " : "",
                      t_next ? t_next : "");
            if (h_next)
                gs_printf(&nh, "%s%s%s | %s", kvr, t_next ? " " : "", t_next ? t_next : "", h_next);
            else
                gs_printf(&nh, "( %s%s%s )?", kvr, t_next ? " " : "", t_next ? t_next : "");
        }
        gs_buf_free(&tail);
        gs_buf_free(&head);
        tail = nt;
        head = nh;
    }
    gs_buf b = {0};
    if (head.n)
        gs_printf(&b, "\"{\" %s ( %s ) %s \"}\"", ws, head.p, ws);
    else
        gs_printf(&b, "\"{\" %s \"}\"", ws);
    gs_buf_free(&tail);
    gs_buf_free(&head);
    res = finish(c, &b, "object", path);
out:
    free(m);
    return res;
}

/* ---- arrays ---- */

static const char *array_rule(gs_ctx *c, json_t *s, const char *path);

const char *gs_array(gs_ctx *c, json_t *s, const char *path) {
    gs_consume(c, 1); /* items come after "[" */
    const char *r = array_rule(c, s, path);
    gs_consume(c, -1);
    return r;
}

static const char *array_rule(gs_ctx *c, json_t *s, const char *path) {
    json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    json_t *rest = items;
    const char *prefix_kw = "prefixItems";
    if (json_is_array(items)) { /* draft 4-2019 tuple form */
        if (prefix) return gs_fail(c, path, "items", "items is an array beside prefixItems");
        prefix = items;
        prefix_kw = "items";
        rest = json_object_get(s, "additionalItems");
    }
    if (prefix && !json_is_array(prefix))
        return gs_fail(c, path, prefix_kw, "must be an array of schemas");
    if (rest && !json_is_object(rest) && !json_is_boolean(rest))
        return gs_fail(c, path, rest == items ? "items" : "additionalItems", "must be a schema");
    size_t lo, hi, np = json_array_size(prefix);
    if (!count_kw(c, s, path, "minItems", 0, &lo) || !count_kw(c, s, path, "maxItems", NO_MAX, &hi))
        return NULL;
    if (json_is_false(rest) && hi > np) hi = np;
    if (lo > hi)
        return gs_fail(c, path, "minItems", "minItems %zu is more than the %zu items allowed", lo,
                       hi);
    if (json_is_true(json_object_get(s, "uniqueItems")) && hi > 1)
        return gs_fail(c, path, "uniqueItems",
                       "uniqueItems: true cannot be enforced by a grammar (unless maxItems <= 1)");
    if (lo > GS_MAX_REPEAT || (hi != NO_MAX && hi > GS_MAX_REPEAT))
        return gs_fail(c, path, lo > GS_MAX_REPEAT ? "minItems" : "maxItems",
                       "item counts above %d are not supported", GS_MAX_REPEAT);
    if (np > 256) return gs_fail(c, path, prefix_kw, "more than 256 prefix items");
    const char *ws = gs_prim_rule(c, GS_WS);
    if (np > hi) np = hi;
    const char *rest_rule = NULL;
    if (hi > np) {
        char here[256];
        gs_path(here, path, rest == items ? "items" : "additionalItems");
        rest_rule = rest ? gs_compile(c, rest, here) : gs_prim_rule(c, GS_VALUE);
        if (!rest_rule) return NULL;
    }
    /* The tail after the prefix: items np+1.. (at least lo - np, at most hi - np of them). */
    gs_buf tail = {0};
    if (rest_rule) {
        size_t tlo = lo > np ? lo - np : 0, thi = hi == NO_MAX ? NO_MAX : hi - np;
        if (np == 0) {
            gs_printf(&tail, "%s ( \",\" %s %s )", rest_rule, ws, rest_rule);
            repeat(&tail, tlo ? tlo - 1 : 0, thi == NO_MAX ? NO_MAX : thi - 1);
            if (!tlo) {
                gs_buf t2 = {0};
                gs_printf(&t2, "( %s )?", gs_str(&tail));
                gs_buf_free(&tail);
                tail = t2;
            }
        } else {
            gs_printf(&tail, "( \",\" %s %s )", ws, rest_rule);
            repeat(&tail, tlo, thi);
        }
    }
    /* The prefix, innermost first: item i is optional when i >= lo. */
    for (size_t i = np; i-- > 0;) {
        char here[256];
        gs_path_i(here, path, prefix_kw, i);
        const char *r = gs_compile(c, json_array_get(prefix, i), here);
        if (!r) {
            gs_buf_free(&tail);
            return NULL;
        }
        gs_buf t2 = {0};
        const char *sep = i ? "\",\" " : "";
        gs_printf(&t2, "%s%s%s %s%s%s", i >= lo ? "( " : "", sep, i ? ws : "", r, tail.n ? " " : "",
                  gs_str(&tail));
        if (i >= lo) gs_put(&t2, " )?");
        gs_buf_free(&tail);
        tail = t2;
    }
    gs_buf b = {0};
    gs_printf(&b, "\"[\" %s %s%s \"]\"", ws, gs_str(&tail), tail.n ? " " : "");
    gs_buf_free(&tail);
    return finish(c, &b, "array", path);
}

/* ---- strings ---- */

const char *gs_string(gs_ctx *c, json_t *s, const char *path) {
    size_t lo, hi;
    if (!count_kw(c, s, path, "minLength", 0, &lo) ||
        !count_kw(c, s, path, "maxLength", NO_MAX, &hi))
        return NULL;
    if (lo > hi)
        return gs_fail(c, path, "minLength", "minLength %zu is more than maxLength %zu", lo, hi);
    json_t *fmt = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    if (fmt && !json_is_string(fmt)) return gs_fail(c, path, "format", "must be a string");
    if (pat && !json_is_string(pat)) return gs_fail(c, path, "pattern", "must be a string");
    if (fmt && pat)
        return gs_fail(c, path, "pattern",
                       "pattern beside format cannot be enforced together; use one of them");
    size_t flo = 0, fhi = NO_MAX;
    const char *r = NULL;
    const char *which = fmt ? "format" : "pattern";
    gs_buf b = {0};
    if (fmt) {
        char here[256];
        gs_path(here, path, "format");
        r = gs_format(c, json_string_value(fmt), here, &flo, &fhi);
        if (!r) return NULL;
    } else if (pat) {
        char here[256];
        gs_path(here, path, "pattern");
        bool anchored;
        flo = lo, fhi = hi; /* asked for; the pattern narrows its repetition when it can */
        if (!gs_regex(c, json_string_value(pat), json_string_length(pat), here, &b, &flo, &fhi,
                      &anchored))
            return (gs_buf_free(&b), NULL);
        if (!anchored) flo = 0, fhi = NO_MAX; /* the unanchored ends have any length */
        gs_buf q = {0};
        gs_printf(&q, "\"\\\"\" %s \"\\\"\"", gs_str(&b));
        gs_buf_free(&b);
        r = finish(c, &q, "pattern", path);
        if (!r) return NULL;
    } else {
        if (lo > GS_MAX_REPEAT || (hi != NO_MAX && hi > GS_MAX_REPEAT))
            return gs_fail(c, path, lo > GS_MAX_REPEAT ? "minLength" : "maxLength",
                           "lengths above %d are not supported", GS_MAX_REPEAT);
        if (lo == 0 && hi == NO_MAX) return gs_prim_rule(c, GS_STRING);
        gs_printf(&b, "\"\\\"\" %s", gs_prim_rule(c, GS_CHAR));
        repeat(&b, lo, hi);
        gs_put(&b, " \"\\\"\"");
        return finish(c, &b, "string", path);
    }
    /* A grammar cannot intersect a length range with a pattern or format: the range must
     * already follow from them. */
    if (lo > flo || (hi != NO_MAX && (fhi == NO_MAX || fhi > hi)))
        return gs_fail(c, path, lo > flo ? "minLength" : "maxLength",
                       "this length limit beside %s cannot be enforced together (the %s allows "
                       "lengths %zu to %s); encode the length in the %s",
                       which, which, flo, fhi == NO_MAX ? "unbounded" : "bounded", which);
    return r;
}
