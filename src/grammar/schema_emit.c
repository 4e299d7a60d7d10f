/* The converter's output side: text buffers, GBNF literals and character sets, the rule table
 * (deduplicated by body) and the entry points that run the compiler and print the grammar. */
#include "grammar/schema.h"

#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ---- */

void gs_putn(gs_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void gs_put(gs_buf *b, const char *s) {
    gs_putn(b, s, strlen(s));
}

void gs_printf(gs_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        gs_putn(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    gs_putn(b, big, (size_t)n);
    free(big);
}

void gs_buf_free(gs_buf *b) {
    free(b->p);
    *b = (gs_buf){0};
}

const char *gs_str(const gs_buf *b) {
    return b->n ? b->p : "";
}

/* ---- literals ---- */

void gs_lit(gs_buf *b, const char *s, size_t n) {
    gs_put(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[3] = {'\\', (char)ch, 0};
            gs_put(b, e);
        } else if (ch == '\n') {
            gs_put(b, "\\n");
        } else if (ch < 0x20 || ch == 0x7f) {
            gs_printf(b, "\\x%02X", ch);
        } else {
            gs_putn(b, (const char *)&ch, 1);
        }
    }
    gs_put(b, "\"");
}

bool gs_json_lit(gs_buf *b, const json_t *v) {
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (!text) return false;
    gs_lit(b, text, strlen(text));
    free(text);
    return true;
}

/* ---- character sets ---- */

void gs_cset_add(gs_cset *s, uint32_t lo, uint32_t hi) {
    if (lo > hi) return;
    /* Insert keeping ranges sorted and disjoint: merge every range that touches [lo, hi]. */
    int i = 0;
    while (i < s->n && s->hi[i] + 1 < lo) i++;
    int j = i;
    while (j < s->n && s->lo[j] <= hi + 1) {
        if (s->lo[j] < lo) lo = s->lo[j];
        if (s->hi[j] > hi) hi = s->hi[j];
        j++;
    }
    int removed = j - i;
    if (removed == 0) {
        if (s->n == GS_CSET_MAX) {
            s->overflow = true;
            return;
        }
        memmove(&s->lo[i + 1], &s->lo[i], (size_t)(s->n - i) * sizeof s->lo[0]);
        memmove(&s->hi[i + 1], &s->hi[i], (size_t)(s->n - i) * sizeof s->hi[0]);
        s->n++;
    } else if (removed > 1) {
        memmove(&s->lo[i + 1], &s->lo[j], (size_t)(s->n - j) * sizeof s->lo[0]);
        memmove(&s->hi[i + 1], &s->hi[j], (size_t)(s->n - j) * sizeof s->hi[0]);
        s->n -= removed - 1;
    }
    s->lo[i] = lo;
    s->hi[i] = hi;
}

void gs_cset_negate(gs_cset *s) {
    gs_cset out = {0};
    uint32_t next = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->lo[i] > next) gs_cset_add(&out, next, s->lo[i] - 1);
        next = s->hi[i] + 1;
    }
    if (next <= 0x10FFFF) gs_cset_add(&out, next, 0x10FFFF);
    out.overflow |= s->overflow;
    *s = out;
}

bool gs_cset_has(const gs_cset *s, uint32_t c) {
    for (int i = 0; i < s->n; i++)
        if (c >= s->lo[i] && c <= s->hi[i]) return true;
    return false;
}

bool gs_cset_empty(const gs_cset *s) {
    return s->n == 0;
}

static void class_char(gs_buf *b, uint32_t c) {
    if (c >= 0x20 && c < 0x7f && c != ']' && c != '\\' && c != '-' && c != '^' && c != '[')
        gs_printf(b, "%c", (char)c);
    else if (c < 0x80)
        gs_printf(b, "\\x%02X", (unsigned)c);
    else if (c <= 0xFFFF)
        gs_printf(b, "\\u%04X", (unsigned)c);
    else
        gs_printf(b, "\\U%08X", (unsigned)c);
}

void gs_cset_emit(gs_buf *b, const gs_cset *s) {
    /* Raw part: what JSON lets stand for itself (surrogates cannot be encoded in UTF-8). */
    gs_cset raw = {0};
    for (int i = 0; i < s->n; i++) {
        uint32_t lo = s->lo[i] < 0x20 ? 0x20 : s->lo[i], hi = s->hi[i];
        if (lo > hi) continue;
        gs_cset_add(&raw, lo, hi);
    }
    gs_cset cut = {0};
    gs_cset_add(&cut, '"', '"');
    gs_cset_add(&cut, '\\', '\\');
    gs_cset_add(&cut, 0xD800, 0xDFFF);
    gs_cset_negate(&cut);
    gs_cset inter = {0};
    for (int i = 0; i < raw.n; i++)
        for (int j = 0; j < cut.n; j++) {
            uint32_t lo = raw.lo[i] > cut.lo[j] ? raw.lo[i] : cut.lo[j];
            uint32_t hi = raw.hi[i] < cut.hi[j] ? raw.hi[i] : cut.hi[j];
            if (lo <= hi) gs_cset_add(&inter, lo, hi);
        }
    int alts = 0;
    gs_put(b, "(");
    if (inter.n) {
        gs_put(b, "[");
        for (int i = 0; i < inter.n; i++) {
            class_char(b, inter.lo[i]);
            if (inter.hi[i] != inter.lo[i]) {
                gs_put(b, "-");
                class_char(b, inter.hi[i]);
            }
        }
        gs_put(b, "]");
        alts++;
    }
    if (gs_cset_has(s, '"')) gs_put(b, alts++ ? " | \"\\\\\\\"\"" : "\"\\\\\\\"\"");
    if (gs_cset_has(s, '\\')) gs_put(b, alts++ ? " | \"\\\\\\\\\"" : "\"\\\\\\\\\"");
    int ctl = 0;
    for (uint32_t c = 0; c < 0x20; c++) ctl += gs_cset_has(s, c);
    if (ctl == 0x20) {
        gs_put(b, alts++ ? " | " : "");
        gs_put(b, "\"\\\\\" ( [bfnrt] | \"u00\" [01] [0-9a-fA-F] )");
    } else {
        static const char shortesc[0x20] = {
            ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
        for (uint32_t c = 0; c < 0x20; c++) {
            if (!gs_cset_has(s, c)) continue;
            gs_put(b, alts++ ? " | " : "");
            if (shortesc[c])
                gs_printf(b, "\"\\\\%c\"", shortesc[c]);
            else
                gs_printf(b, "\"\\\\u%04X\"", (unsigned)c);
        }
    }
    gs_put(b, ")");
}

/* ---- the rule table ---- */

typedef struct gs_rule_t {
    char *name, *body; /* owned; body NULL while reserved */
    uint64_t hash;
} gs_rule_t;

struct gs_ctx {
    json_t *root;
    shimmy_error *err;
    bool failed;
    gs_rule_t *rules;
    size_t n_rules, cap_rules, bytes;
    json_t *kept; /* array of schemas made by merging, alive until the end */
    int depth;
    unsigned id;
    const char *prim[GS_PRIM_COUNT];
    struct {
        const json_t *s;
        const char *name;
        int consumed; /* c->consumed when its compilation began */
        bool busy;    /* still being compiled */
    } * memo;
    int consumed; /* objects and arrays entered: a recursion through one writes a bracket */
    size_t n_memo, cap_memo;
    /* Rules by body hash (open addressing, index + 1; 0 = empty), so that deduplication stays
     * linear in the number of rules. */
    uint32_t index[2 * GS_MAX_RULES + 1];
};

#define INDEX_SIZE (2 * GS_MAX_RULES + 1)

static void index_add(gs_ctx *c, size_t rule) {
    size_t at = c->rules[rule].hash % INDEX_SIZE;
    while (c->index[at]) at = (at + 1) % INDEX_SIZE;
    c->index[at] = (uint32_t)rule + 1;
}

const char *gs_fail(gs_ctx *c, const char *path, const char *kw, const char *fmt, ...) {
    if (c->failed) return NULL;
    c->failed = true;
    char where[256], msg[400];
    if (kw)
        gs_path(where, path, kw);
    else
        snprintf(where, sizeof where, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    core_error(c->err, SHIMMY_ERR_INVALID_ARG, where, "JSON Schema at %s: %s",
               *where ? where : "(root)", msg);
    return NULL;
}

bool gs_failed(const gs_ctx *c) {
    return c->failed;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const char *add_rule(gs_ctx *c, const char *hint, const char *body, size_t *index) {
    if (c->failed) return NULL;
    if (body) {
        uint64_t h = hash_str(body);
        for (size_t at = h % INDEX_SIZE; c->index[at]; at = (at + 1) % INDEX_SIZE) {
            const gs_rule_t *r = &c->rules[c->index[at] - 1];
            if (r->hash == h && !strcmp(r->body, body)) return r->name;
        }
    }
    if (c->n_rules >= GS_MAX_RULES)
        return gs_fail(c, "", NULL, "the grammar would need more than %d rules", GS_MAX_RULES);
    size_t blen = body ? strlen(body) : 0;
    c->bytes += blen + 48;
    if (c->bytes > GS_MAX_BYTES)
        return gs_fail(c, "", NULL, "the grammar would be larger than %d bytes", GS_MAX_BYTES);
    if (c->n_rules == c->cap_rules) {
        size_t cap = c->cap_rules ? c->cap_rules * 2 : 64;
        gs_rule_t *r = realloc(c->rules, cap * sizeof *r);
        if (!r) return gs_fail(c, "", NULL, "out of memory");
        c->rules = r;
        c->cap_rules = cap;
    }
    char name[64];
    size_t k = 0;
    for (const char *p = hint; *p && k < 32; p++) {
        char ch = *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            name[k++] = ch;
        else if (k && name[k - 1] != '-')
            name[k++] = '-';
    }
    while (k && name[k - 1] == '-') k--;
    if (!k) name[k++] = 'r';
    /* "_": the grammar compiler names its own generated rules "<rule>-<n>" */
    snprintf(name + k, sizeof name - k, "_%u", ++c->id);
    gs_rule_t *r = &c->rules[c->n_rules];
    r->name = strdup(name);
    r->body = body ? strdup(body) : NULL;
    r->hash = body ? hash_str(body) : 0;
    if (!r->name || (body && !r->body)) {
        free(r->name);
        free(r->body);
        return gs_fail(c, "", NULL, "out of memory");
    }
    if (index) *index = c->n_rules;
    if (body) index_add(c, c->n_rules);
    c->n_rules++;
    return r->name;
}

const char *gs_rule(gs_ctx *c, const char *hint, const char *body) {
    return add_rule(c, hint, body, NULL);
}

const char *gs_rule_reserve(gs_ctx *c, const char *hint, size_t *index) {
    return add_rule(c, hint, NULL, index);
}

void gs_rule_set(gs_ctx *c, size_t index, const char *body) {
    if (c->failed || index >= c->n_rules) return;
    gs_rule_t *r = &c->rules[index];
    free(r->body);
    r->body = strdup(body);
    if (!r->body) {
        gs_fail(c, "", NULL, "out of memory");
        return;
    }
    r->hash = hash_str(body);
    index_add(c, index);
    c->bytes += strlen(body);
    if (c->bytes > GS_MAX_BYTES)
        gs_fail(c, "", NULL, "the grammar would be larger than %d bytes", GS_MAX_BYTES);
}

unsigned gs_next_id(gs_ctx *c) {
    return ++c->id;
}

const char *gs_memo_get(gs_ctx *c, const json_t *s) {
    for (size_t i = 0; i < c->n_memo; i++)
        if (c->memo[i].s == s) return c->memo[i].name;
    return NULL;
}

void gs_memo_put(gs_ctx *c, const json_t *s, const char *name) {
    if (c->n_memo == c->cap_memo) {
        size_t cap = c->cap_memo ? c->cap_memo * 2 : 16;
        void *m = realloc(c->memo, cap * sizeof *c->memo);
        if (!m) {
            gs_fail(c, "", NULL, "out of memory");
            return;
        }
        c->memo = m;
        c->cap_memo = cap;
    }
    c->memo[c->n_memo].s = s;
    c->memo[c->n_memo].name = name;
    c->memo[c->n_memo].consumed = c->consumed;
    c->memo[c->n_memo].busy = true;
    c->n_memo++;
}

void gs_memo_done(gs_ctx *c, const json_t *s) {
    for (size_t i = 0; i < c->n_memo; i++)
        if (c->memo[i].s == s) c->memo[i].busy = false;
}

bool gs_memo_cycles(gs_ctx *c, const json_t *s) {
    for (size_t i = 0; i < c->n_memo; i++)
        if (c->memo[i].s == s) return c->memo[i].busy && c->memo[i].consumed == c->consumed;
    return false;
}

void gs_consume(gs_ctx *c, int delta) {
    c->consumed += delta;
}

json_t *gs_keep(gs_ctx *c, json_t *j) {
    if (j && json_array_append(c->kept, j) != 0) gs_fail(c, "", NULL, "out of memory");
    return j;
}

json_t *gs_root(gs_ctx *c) {
    return c->root;
}

int gs_depth_enter(gs_ctx *c, const char *path) {
    if (c->failed) return 0;
    if (++c->depth > GS_MAX_DEPTH) {
        gs_fail(c, path, NULL, "nested (through subschemas, $ref or allOf) deeper than %d levels",
                GS_MAX_DEPTH);
        return 0;
    }
    return 1;
}

void gs_depth_leave(gs_ctx *c) {
    c->depth--;
}

static void json_pointer_append(char out[256], const char *key) {
    size_t n = strlen(out);
    if (n + 1 < 256) out[n++] = '/';
    for (const char *p = key; *p && n + 2 < 256; p++) {
        if (*p == '~' || *p == '/') {
            out[n++] = '~';
            out[n++] = *p == '~' ? '0' : '1';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
}

void gs_path(char out[256], const char *path, const char *key) {
    snprintf(out, 256, "%s", path);
    json_pointer_append(out, key);
}

void gs_path_i(char out[256], const char *path, const char *key, size_t i) {
    char idx[32];
    snprintf(idx, sizeof idx, "%zu", i);
    gs_path(out, path, key);
    json_pointer_append(out, idx);
}

/* ---- shared rules ---- */

static const struct {
    const char *name, *body;
} prims[GS_PRIM_COUNT] = {
    [GS_WS] = {"ws", "( \" \" | \"\\n\" \" \"{0,20} )?"},
    [GS_CHAR] = {"char", "[ !#-\\x5B\\x5D-\\uD7FF\\uE000-\\U0010FFFF] | \"\\\\\" ( [\"\\\\/bfnrt] "
                         "| \"u\" ( [0-9a-cA-C] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} "
                         "| [eEfF] [0-9a-fA-F]{3} ) )"},
    [GS_STRING] = {"string", "\"\\\"\" char* \"\\\"\""},
    [GS_NUMBER] = {"number", "\"-\"? ( \"0\" | [1-9] [0-9]{0,14} ) ( \".\" [0-9]{1,15} )? "
                             "( [eE] [-+]? [0-9]{1,2} )?"},
    [GS_INTEGER] = {"integer", "\"-\"? ( \"0\" | [1-9] [0-9]{0,14} )"},
    [GS_BOOLEAN] = {"boolean", "\"true\" | \"false\""},
    [GS_NULL] = {"null", "\"null\""},
    [GS_VALUE] = {"value", "object | array | string | number | boolean | null"},
    [GS_OBJECT] = {"object",
                   "\"{\" ws ( string \":\" ws value ( \",\" ws string \":\" ws value )* ws )? "
                   "\"}\""},
    [GS_ARRAY] = {"array", "\"[\" ws ( value ( \",\" ws value )* ws )? \"]\""},
};

/* What each shared rule refers to, so that using one pulls in the others. */
static const gs_prim prim_deps[GS_PRIM_COUNT][6] = {
    [GS_STRING] = {GS_CHAR},
    [GS_VALUE] = {GS_OBJECT, GS_ARRAY, GS_STRING, GS_NUMBER, GS_BOOLEAN, GS_NULL},
    [GS_OBJECT] = {GS_WS, GS_STRING, GS_VALUE},
    [GS_ARRAY] = {GS_WS, GS_VALUE},
};

const char *gs_prim_rule(gs_ctx *c, gs_prim p) {
    if (c->prim[p]) return c->prim[p];
    c->prim[p] = prims[p].name; /* before the dependencies: value and object refer to each other */
    for (int i = 0; i < 6; i++)
        if (prim_deps[p][i]) gs_prim_rule(c, prim_deps[p][i]); /* 0 ends the list */
    return prims[p].name;
}

/* ---- entry points ---- */

shimmy_status grammar_schema_to_gbnf_json(json_t *schema, char **gbnf, shimmy_error *err) {
    *gbnf = NULL;
    if (!schema) return core_error(err, SHIMMY_ERR_INVALID_ARG, "", "JSON Schema: no schema given");
    gs_ctx *cp = calloc(1, sizeof *cp); /* the rule index makes it too big for a stack */
    if (!cp) return core_error(err, SHIMMY_ERR_NOMEM, "", "JSON Schema: out of memory");
    gs_ctx *c = cp;
    c->root = schema;
    c->err = err;
    c->kept = json_array();
    const char *top = c->kept ? gs_compile(c, schema, "") : gs_fail(c, "", NULL, "out of memory");
    gs_buf out = {0};
    if (top && !c->failed) {
        gs_printf(&out, "root ::= %s\n", top);
        for (int p = 0; p < GS_PRIM_COUNT; p++)
            if (c->prim[p]) gs_printf(&out, "%s ::= %s\n", prims[p].name, prims[p].body);
        for (size_t i = 0; i < c->n_rules; i++) {
            if (!c->rules[i].body) {
                gs_fail(c, "", NULL, "internal error: rule %s has no body", c->rules[i].name);
                break;
            }
            gs_printf(&out, "%s ::= %s\n", c->rules[i].name, c->rules[i].body);
        }
        if (out.oom) gs_fail(c, "", NULL, "out of memory");
        if (out.n > GS_MAX_BYTES)
            gs_fail(c, "", NULL, "the grammar would be larger than %d bytes", GS_MAX_BYTES);
    } else if (!c->failed) {
        gs_fail(c, "", NULL, "internal error: no rule");
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        free(c->rules[i].name);
        free(c->rules[i].body);
    }
    free(c->rules);
    free(c->memo);
    json_decref(c->kept);
    const bool failed = c->failed;
    free(cp);
    if (failed) {
        gs_buf_free(&out);
        return err ? err->status : SHIMMY_ERR_INVALID_ARG;
    }
    *gbnf = out.p;
    return SHIMMY_OK;
}

shimmy_status grammar_schema_to_gbnf(const char *schema, size_t len, char **gbnf,
                                     shimmy_error *err) {
    *gbnf = NULL;
    if (!schema) return core_error(err, SHIMMY_ERR_INVALID_ARG, "", "JSON Schema: no schema");
    if (len > SHIMMY_MAX_GRAMMAR_LEN)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "",
                          "JSON Schema: %zu bytes is more than the limit of %d", len,
                          SHIMMY_MAX_GRAMMAR_LEN);
    json_error_t je;
    json_t *j = json_loadb(schema, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return core_error(err, SHIMMY_ERR_INVALID_JSON, "",
                          "JSON Schema is not valid JSON: %s at line %d, column %d", je.text,
                          je.line, je.column);
    shimmy_status st = grammar_schema_to_gbnf_json(j, gbnf, err);
    json_decref(j);
    return st;
}
