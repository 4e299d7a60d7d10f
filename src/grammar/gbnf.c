/* The GBNF parser: text -> rules of alternatives of elements (gram_build.c checks and flattens
 * them). The dialect is llama.cpp's: a rule is `name ::= alternatives` ended by a newline
 * outside parentheses; repetitions are rewritten into generated rules named `<rule>-<n>` as
 * llama.cpp does, so x* is r ::= x r | (empty), and x{2,4} is x x (x (x)?)?. */
#include "gram_build.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPEAT_INF UINT32_MAX

/* line and column (1-based, columns count characters) of byte offset at */
static void position(const gp_parser *p, size_t at, size_t *line, size_t *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at && i < p->n; i++) {
        if (p->s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)p->s[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

shimmy_status gp_fail(gp_parser *p, shimmy_status st, size_t at, const char *fmt, ...) {
    if (p->st) return p->st;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t line, col;
    position(p, at, &line, &col);
    p->st = core_error(p->err, st, "grammar", "line %zu, column %zu: %s", line, col, msg);
    return p->st;
}

/* ---- growable arrays ---- */

static bool grow(void **v, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *n = realloc(*v, c * elem);
    if (!n) return false;
    *v = n;
    *cap = c;
    return true;
}

static bool push_elem(gp_parser *p, gp_vec *v, uint32_t e) {
    if (p->st) return false;
    if (++p->total_elems > GRAMMAR_MAX_ELEMS) {
        gp_fail(p, SHIMMY_ERR_TOO_LARGE, p->pos,
                "the grammar expands to more than %u elements (repetitions count once per copy)",
                GRAMMAR_MAX_ELEMS);
        return false;
    }
    if (!grow((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v)) {
        gp_fail(p, SHIMMY_ERR_NOMEM, p->pos, "out of memory");
        return false;
    }
    v->v[v->n++] = e;
    return true;
}

/* ---- rules and names ---- */

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool map_insert(gp_parser *p, uint32_t id) {
    if ((p->n_rules + 1) * 2 > p->map_cap) {
        size_t cap = p->map_cap ? p->map_cap * 2 : 64;
        uint32_t *m = malloc(cap * sizeof *m);
        if (!m) return false;
        memset(m, 0xFF, cap * sizeof *m);
        for (size_t i = 0; i < p->map_cap; i++) {
            if (p->map[i] == UINT32_MAX) continue;
            const gp_rule *r = &p->rules[p->map[i]];
            size_t h = name_hash(r->name, strlen(r->name)) & (cap - 1);
            while (m[h] != UINT32_MAX) h = (h + 1) & (cap - 1);
            m[h] = p->map[i];
        }
        free(p->map);
        p->map = m;
        p->map_cap = cap;
    }
    const char *nm = p->rules[id].name;
    size_t h = name_hash(nm, strlen(nm)) & (p->map_cap - 1);
    while (p->map[h] != UINT32_MAX) h = (h + 1) & (p->map_cap - 1);
    p->map[h] = id;
    return true;
}

/* A new rule named name[0..len) (not looked up: callers make sure it is new). */
static uint32_t new_rule(gp_parser *p, const char *name, size_t len, size_t at) {
    if (p->st) return 0;
    if (p->n_rules >= GRAMMAR_MAX_ELEMS) {
        gp_fail(p, SHIMMY_ERR_TOO_LARGE, at, "too many rules");
        return 0;
    }
    char *nm = malloc(len + 1);
    if (!nm || !grow((void **)&p->rules, &p->rules_cap, p->n_rules + 1, sizeof *p->rules)) {
        free(nm);
        gp_fail(p, SHIMMY_ERR_NOMEM, at, "out of memory");
        return 0;
    }
    memcpy(nm, name, len);
    nm[len] = '\0';
    uint32_t id = (uint32_t)p->n_rules;
    p->rules[id] = (gp_rule){.name = nm, .first_ref = at, .def_at = at};
    if (!map_insert(p, id)) {
        free(nm);
        gp_fail(p, SHIMMY_ERR_NOMEM, at, "out of memory");
        return 0;
    }
    p->n_rules++;
    return id;
}

static uint32_t find_or_add(gp_parser *p, const char *name, size_t len, size_t at) {
    if (p->map_cap) {
        size_t h = name_hash(name, len) & (p->map_cap - 1);
        for (; p->map[h] != UINT32_MAX; h = (h + 1) & (p->map_cap - 1)) {
            const char *nm = p->rules[p->map[h]].name;
            if (strlen(nm) == len && memcmp(nm, name, len) == 0) return p->map[h];
        }
    }
    return new_rule(p, name, len, at);
}

/* A generated rule `<parent>#<k>` for a group or a repetition at byte offset at. '#' never occurs
 * in a rule name (it starts a comment), so a user's rule defined later (`item-1`) cannot meet a
 * generated one. */
static uint32_t gen_rule(gp_parser *p, uint32_t parent, size_t at) {
    char nm[160];
    for (;;) {
        int k = snprintf(nm, sizeof nm, "%.100s#%u", p->rules[parent].name, ++p->gen_counter);
        size_t len = (size_t)k < sizeof nm ? (size_t)k : sizeof nm - 1;
        uint32_t before = (uint32_t)p->n_rules;
        uint32_t id = find_or_add(p, nm, len, at);
        if (p->st) return 0;
        if (id == before) { /* fresh: a user rule of the same name would have been found */
            p->rules[id].defined = true;
            p->rules[id].generated = true;
            return id;
        }
    }
}

/* ---- terminals ---- */

static int cmp_range(const void *a, const void *b) {
    const gram_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges r[0..n), complements it when negate, removes surrogates; appends the class as
 * a terminal and returns its id. */
static uint32_t add_term(gp_parser *p, gram_range *r, size_t n, bool negate, size_t at) {
    if (p->st) return 0;
    qsort(r, n, sizeof *r, cmp_range);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && r[i].lo <= r[m - 1].hi + 1) {
            if (r[i].hi > r[m - 1].hi) r[m - 1].hi = r[i].hi;
        } else {
            r[m++] = r[i];
        }
    }
    /* complement (n + 1 pieces at most) and surrogate removal (+1) need room: build into tmp */
    gram_range tmp[2 * GP_MAX_CLASS + 4];
    size_t t = 0;
    if (negate) {
        uint32_t next = 0;
        for (size_t i = 0; i < m; i++) {
            if (r[i].lo > next) tmp[t++] = (gram_range){next, r[i].lo - 1};
            next = r[i].hi + 1;
        }
        if (next <= 0x10FFFF) tmp[t++] = (gram_range){next, 0x10FFFF};
    } else {
        memcpy(tmp, r, m * sizeof *r);
        t = m;
    }
    gram_range out[2 * GP_MAX_CLASS + 4];
    size_t o = 0;
    for (size_t i = 0; i < t; i++) {
        gram_range x = tmp[i];
        if (x.hi < 0xD800 || x.lo > 0xDFFF) {
            out[o++] = x;
            continue;
        }
        if (x.lo < 0xD800) out[o++] = (gram_range){x.lo, 0xD7FF};
        if (x.hi > 0xDFFF) out[o++] = (gram_range){0xE000, x.hi};
    }
    if (o == 0) {
        gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "the character class matches no character");
        return 0;
    }
    if (!grow((void **)&p->ranges, &p->ranges_cap, p->n_ranges + o, sizeof *p->ranges) ||
        !grow((void **)&p->terms, &p->terms_cap, p->n_terms + 1, sizeof *p->terms)) {
        gp_fail(p, SHIMMY_ERR_NOMEM, at, "out of memory");
        return 0;
    }
    gram_term *term = &p->terms[p->n_terms];
    memset(term, 0, sizeof *term);
    term->first = (uint32_t)p->n_ranges;
    term->n = (uint32_t)o;
    /* surrogates are gone, so "every non-ASCII character" is exactly these two ranges */
    const bool all = (o == 1 && out[0].lo <= 0x80 && out[0].hi == 0x10FFFF) ||
                     (o >= 2 && out[o - 2].lo <= 0x80 && out[o - 2].hi == 0xD7FF &&
                      out[o - 1].lo == 0xE000 && out[o - 1].hi == 0x10FFFF);
    term->high = all ? GT_HIGH_ALL : out[o - 1].hi < 0x80 ? GT_HIGH_NONE : GT_HIGH_SOME;
    for (size_t i = 0; i < o; i++) {
        p->ranges[p->n_ranges++] = out[i];
        for (uint32_t c = out[i].lo; c <= out[i].hi && c < 128; c++)
            term->ascii[c >> 6] |= 1ull << (c & 63);
    }
    return (uint32_t)p->n_terms++;
}

static uint32_t char_term(gp_parser *p, uint32_t cp, size_t at) {
    if (cp < 128 && p->ascii_term[cp]) return p->ascii_term[cp] - 1;
    gram_range r = {cp, cp};
    uint32_t t = add_term(p, &r, 1, false, at);
    if (cp < 128 && !p->st) p->ascii_term[cp] = t + 1;
    return t;
}

/* ---- lexical ---- */

static void skip_space(gp_parser *p, bool newline_ok) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\n' || c == '\r'))) {
            p->pos++;
        } else if (c == '#') {
            while (p->pos < p->n && p->s[p->pos] != '\n' && p->s[p->pos] != '\r') p->pos++;
        } else {
            break;
        }
    }
}

static bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static size_t word_len(const gp_parser *p) {
    size_t i = p->pos;
    while (i < p->n && is_word(p->s[i])) i++;
    return i - p->pos;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a literal or class (an escape or a UTF-8 sequence) into *cp. */
static bool parse_char(gp_parser *p, uint32_t *cp) {
    const size_t at = p->pos;
    if (p->pos >= p->n)
        return gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "unexpected end of text"), false;
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c != '\\') {
        int len = core_utf8_len(c);
        if (len == 0 || p->pos + (size_t)len > p->n || !core_utf8_valid(p->s + p->pos, (size_t)len))
            return gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "invalid UTF-8"), false;
        core_utf8_decode(p->s + p->pos, (size_t)len, cp);
        p->pos += (size_t)len;
        return true;
    }
    if (p->pos + 1 >= p->n)
        return gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "escape at the end of the text"), false;
    char e = p->s[p->pos + 1];
    p->pos += 2;
    int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (digits) {
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int h = p->pos < p->n ? hexval(p->s[p->pos]) : -1;
            if (h < 0)
                return gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "\\%c needs %d hex digits", e,
                               digits),
                       false;
            v = v * 16 + (uint32_t)h;
            p->pos++;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "U+%X is not a character", v), false;
        *cp = v;
        return true;
    }
    static const char from[] = "nrt\\\"[]-^/'", to[] = "\n\r\t\\\"[]-^/'";
    const char *f = e ? strchr(from, e) : NULL;
    if (!f)
        return gp_fail(p, SHIMMY_ERR_INVALID_ARG, at,
                       "unknown escape '\\%c' (known: \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\^ \\xHH "
                       "\\uHHHH \\UHHHHHHHH)",
                       e >= 32 && e < 127 ? e : '?'),
               false;
    *cp = (unsigned char)to[f - from];
    return true;
}

/* ---- sequences ---- */

static void parse_alternates(gp_parser *p, uint32_t rule, gp_vec *out, bool nested);

static void append_copy(gp_parser *p, gp_vec *out, const uint32_t *s, size_t n) {
    for (size_t i = 0; i < n && !p->st; i++) push_elem(p, out, s[i]);
}

/* Applies {min,max} to the last item, out->v[start..]. */
static void repeat(gp_parser *p, uint32_t rule, gp_vec *out, size_t start, uint32_t min,
                   uint32_t max, size_t at) {
    if (min > GRAMMAR_MAX_REPEAT || (max != REPEAT_INF && max > GRAMMAR_MAX_REPEAT)) {
        gp_fail(p, SHIMMY_ERR_TOO_LARGE, at, "repetition counts are limited to %d",
                GRAMMAR_MAX_REPEAT);
        return;
    }
    const size_t n = out->n - start;
    uint32_t *item = malloc((n ? n : 1) * sizeof *item);
    if (!item) {
        gp_fail(p, SHIMMY_ERR_NOMEM, at, "out of memory");
        return;
    }
    if (n) memcpy(item, out->v + start, n * sizeof *item); /* an empty item ("") has no vector */
    p->total_elems -= n;
    out->n = start;
    for (uint32_t i = 0; i < min && !p->st; i++) append_copy(p, out, item, n);
    if (max == REPEAT_INF) {
        uint32_t r = gen_rule(p, rule, at); /* r ::= item r | (empty) */
        if (!p->st) append_copy(p, &p->rules[r].body, item, n);
        push_elem(p, &p->rules[r].body, GE_MAKE(GE_REF, r));
        push_elem(p, &p->rules[r].body, GP_ALT);
        push_elem(p, out, GE_MAKE(GE_REF, r));
    } else if (max > min) {
        uint32_t last = UINT32_MAX; /* innermost first: r_k ::= item r_{k+1} | (empty) */
        for (uint32_t k = min; k < max && !p->st; k++) {
            uint32_t r = gen_rule(p, rule, at);
            if (p->st) break;
            append_copy(p, &p->rules[r].body, item, n);
            if (last != UINT32_MAX) push_elem(p, &p->rules[r].body, GE_MAKE(GE_REF, last));
            push_elem(p, &p->rules[r].body, GP_ALT);
            last = r;
        }
        push_elem(p, out, GE_MAKE(GE_REF, last));
    }
    free(item);
}

static uint32_t parse_count(gp_parser *p) {
    size_t at = p->pos;
    uint64_t v = 0;
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') {
        gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "expected a number");
        return 0;
    }
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        v = v * 10 + (uint64_t)(p->s[p->pos++] - '0');
        if (v > GRAMMAR_MAX_REPEAT) {
            gp_fail(p, SHIMMY_ERR_TOO_LARGE, at, "repetition counts are limited to %d",
                    GRAMMAR_MAX_REPEAT);
            return 0;
        }
    }
    return (uint32_t)v;
}

static void parse_class(gp_parser *p, gp_vec *out) {
    const size_t at = p->pos++;
    bool negate = p->pos < p->n && p->s[p->pos] == '^';
    if (negate) p->pos++;
    gram_range r[GP_MAX_CLASS];
    size_t n = 0;
    while (!p->st) {
        if (p->pos >= p->n) {
            gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "unterminated character class");
            return;
        }
        if (p->s[p->pos] == ']') break;
        uint32_t lo, hi;
        if (!parse_char(p, &lo)) return;
        hi = lo;
        if (p->pos + 1 < p->n && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
            size_t at_hi = ++p->pos;
            if (!parse_char(p, &hi)) return;
            if (hi < lo) {
                gp_fail(p, SHIMMY_ERR_INVALID_ARG, at_hi, "range ends before it starts");
                return;
            }
        }
        if (n == GP_MAX_CLASS) {
            gp_fail(p, SHIMMY_ERR_TOO_LARGE, at, "more than %d items in a character class",
                    GP_MAX_CLASS);
            return;
        }
        r[n++] = (gram_range){lo, hi};
    }
    p->pos++; /* ] */
    push_elem(p, out, GE_MAKE(GE_TERM, add_term(p, r, n, negate, at)));
}

static void parse_sequence(gp_parser *p, uint32_t rule, gp_vec *out, bool nested) {
    size_t last = SIZE_MAX; /* where the last item starts in out */
    while (p->pos < p->n && !p->st) {
        const size_t at = p->pos;
        const char c = p->s[p->pos];
        if (c == '"') {
            last = out->n;
            p->pos++;
            while (!p->st) {
                if (p->pos >= p->n) {
                    gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "unterminated string literal");
                    return;
                }
                if (p->s[p->pos] == '"') break;
                size_t cat = p->pos;
                uint32_t cp;
                if (!parse_char(p, &cp)) return;
                push_elem(p, out, GE_MAKE(GE_TERM, char_term(p, cp, cat)));
            }
            p->pos++;
        } else if (c == '[') {
            last = out->n;
            parse_class(p, out);
        } else if (is_word(c)) {
            last = out->n;
            size_t len = word_len(p);
            uint32_t id = find_or_add(p, p->s + p->pos, len, at);
            p->pos += len;
            push_elem(p, out, GE_MAKE(GE_REF, id));
        } else if (c == '(') {
            last = out->n;
            if (++p->depth > GRAMMAR_MAX_DEPTH) {
                gp_fail(p, SHIMMY_ERR_TOO_LARGE, at, "groups nested deeper than %d",
                        GRAMMAR_MAX_DEPTH);
                return;
            }
            p->pos++;
            skip_space(p, true);
            uint32_t sub = gen_rule(p, rule, at);
            if (p->st) return;
            gp_vec body = {0};
            parse_alternates(p, sub, &body, true);
            p->rules[sub].body = body; /* p->rules may have moved while parsing */
            if (p->st) return;
            if (p->pos >= p->n || p->s[p->pos] != ')') {
                gp_fail(p, SHIMMY_ERR_INVALID_ARG, p->pos < p->n ? p->pos : at,
                        p->pos < p->n ? "expected ')'" : "unclosed '('");
                return;
            }
            p->pos++;
            p->depth--;
            push_elem(p, out, GE_MAKE(GE_REF, sub));
        } else if (c == '.') {
            last = out->n;
            p->pos++;
            gram_range any = {0, 0x10FFFF};
            push_elem(p, out, GE_MAKE(GE_TERM, add_term(p, &any, 1, false, at)));
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last == SIZE_MAX) {
                gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "'%c' has nothing before it to repeat", c);
                return;
            }
            uint32_t min = c == '+' ? 1 : 0, max = c == '?' ? 1 : REPEAT_INF;
            p->pos++;
            if (c == '{') {
                skip_space(p, nested);
                min = max = parse_count(p);
                skip_space(p, nested);
                if (p->pos < p->n && p->s[p->pos] == ',') {
                    p->pos++;
                    skip_space(p, nested);
                    max = p->pos < p->n && p->s[p->pos] == '}' ? REPEAT_INF : parse_count(p);
                    skip_space(p, nested);
                }
                if (p->st) return;
                if (p->pos >= p->n || p->s[p->pos] != '}') {
                    gp_fail(p, SHIMMY_ERR_INVALID_ARG, p->pos, "expected '}'");
                    return;
                }
                p->pos++;
                if (max < min) {
                    gp_fail(p, SHIMMY_ERR_INVALID_ARG, at,
                            "{%u,%u}: the maximum is below the minimum", min, max);
                    return;
                }
            }
            repeat(p, rule, out, last, min, max, at);
            last = SIZE_MAX; /* x** is not meaningful: llama.cpp refuses it too */
        } else {
            break;
        }
        skip_space(p, nested);
    }
}

static void parse_alternates(gp_parser *p, uint32_t rule, gp_vec *out, bool nested) {
    parse_sequence(p, rule, out, nested);
    while (!p->st && p->pos < p->n && p->s[p->pos] == '|') {
        push_elem(p, out, GP_ALT);
        p->pos++;
        skip_space(p, true);
        parse_sequence(p, rule, out, nested);
    }
}

void gp_parse(gp_parser *p) {
    if (p->n > GRAMMAR_MAX_TEXT) {
        gp_fail(p, SHIMMY_ERR_TOO_LARGE, 0, "the grammar is %zu bytes; at most %zu are allowed",
                p->n, GRAMMAR_MAX_TEXT);
        return;
    }
    if (memchr(p->s, '\0', p->n)) {
        gp_fail(p, SHIMMY_ERR_INVALID_ARG, (size_t)((const char *)memchr(p->s, '\0', p->n) - p->s),
                "NUL byte in the grammar");
        return;
    }
    skip_space(p, true);
    while (p->pos < p->n && !p->st) {
        const size_t at = p->pos;
        size_t len = word_len(p);
        if (!len) {
            gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "expected a rule name");
            return;
        }
        uint32_t id = find_or_add(p, p->s + p->pos, len, at);
        if (p->st) return;
        if (p->rules[id].defined) {
            gp_fail(p, SHIMMY_ERR_INVALID_ARG, at, "rule '%.*s' is defined twice", (int)len,
                    p->s + p->pos);
            return;
        }
        p->rules[id].defined = true;
        p->rules[id].def_at = at;
        p->pos += len;
        skip_space(p, false);
        if (p->n - p->pos < 3 || memcmp(p->s + p->pos, "::=", 3) != 0) {
            gp_fail(p, SHIMMY_ERR_INVALID_ARG, p->pos, "expected '::=' after the rule name");
            return;
        }
        p->pos += 3;
        skip_space(p, true);
        gp_vec body = {0};
        parse_alternates(p, id, &body, false);
        p->rules[id].body = body;
        if (p->st) return;
        if (p->pos < p->n && p->s[p->pos] == '\r') p->pos++;
        if (p->pos < p->n && p->s[p->pos] != '\n') {
            char c = p->s[p->pos];
            gp_fail(p, SHIMMY_ERR_INVALID_ARG, p->pos,
                    c == ')' ? "unmatched ')'" : "unexpected '%c' (expected a newline or the end)",
                    c >= 32 && c < 127 ? c : '?');
            return;
        }
        skip_space(p, true);
    }
}
