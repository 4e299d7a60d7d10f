/* The ECMA-262 regex subset of JSON Schema's `pattern`, as a GBNF expression over the contents
 * of a JSON string: literals, escapes (\d \w \s and their negations, \t \n \xHH \uHHHH \u{H}),
 * classes with ranges and negation, `.`, groups (capturing, (?:), named), alternation, the
 * quantifiers * + ? {n} {n,} {n,m} (lazy forms are the same language) and ^/$ at the ends of
 * top-level alternatives. Every character is matched as the JSON text that encodes it (raw, or
 * the canonical escape for ", \ and control characters). Lookaround, backreferences, word
 * boundaries, Unicode property escapes and anchors inside groups are errors with the offset. */
#include "grammar/schema.h"

#include <stdio.h>
#include <string.h>

#define NO_MAX     SIZE_MAX
#define MAX_GROUPS 64
#define RX_TERMS   64 /* top-level terms tracked for fitting a length range */

typedef struct rx {
    gs_ctx *c;
    const char *s;
    size_t n, at;
    const char *path;
    int depth;
    bool failed;
    size_t want_lo, want_hi; /* the string length asked for beside the pattern */
} rx;

/* What term() parsed: the atom's text and length range, and its quantifier. */
typedef struct rx_term {
    char *atom; /* owned; NULL when it matches only the empty string */
    size_t amn, amx, qlo, qhi;
} rx_term;

static bool rx_fail(rx *r, const char *fmt, const char *what) {
    if (!r->failed) {
        r->failed = true;
        char msg[200];
        snprintf(msg, sizeof msg, fmt, what);
        gs_fail(r->c, r->path, NULL, "pattern: %s at offset %zu", msg, r->at);
    }
    return false;
}

static size_t add_len(size_t a, size_t b) {
    return a == NO_MAX || b == NO_MAX ? NO_MAX : a + b;
}
static size_t mul_len(size_t a, size_t k) {
    if (k == NO_MAX) return a ? NO_MAX : 0;
    return a == NO_MAX ? (k ? NO_MAX : 0) : a * k;
}

static bool peek(rx *r, char ch) {
    return r->at < r->n && r->s[r->at] == ch;
}

static uint32_t next_cp(rx *r) {
    const unsigned char *p = (const unsigned char *)r->s + r->at;
    size_t left = r->n - r->at;
    unsigned char b = p[0];
    size_t len = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (len > left) len = 1;
    uint32_t v = len == 1 ? b : b & (0x7F >> len);
    for (size_t i = 1; i < len; i++) v = (v << 6) | (p[i] & 0x3F);
    r->at += len;
    return v;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static bool hex_digits(rx *r, int count, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < count; i++) {
        int h = r->at < r->n ? hexval(r->s[r->at]) : -1;
        if (h < 0) return rx_fail(r, "%s", "bad hexadecimal escape");
        v = v * 16 + (uint32_t)h;
        r->at++;
    }
    *out = v;
    return true;
}

static void set_digit(gs_cset *s) {
    gs_cset_add(s, '0', '9');
}
static void set_word(gs_cset *s) {
    gs_cset_add(s, '0', '9');
    gs_cset_add(s, 'A', 'Z');
    gs_cset_add(s, '_', '_');
    gs_cset_add(s, 'a', 'z');
}
static void set_space(gs_cset *s) {
    static const uint32_t sp[][2] = {
        {0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
        {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) gs_cset_add(s, sp[i][0], sp[i][1]);
}

/* One escape after '\'. A class escape (\d ...) fills *set and returns true with *is_set. */
static bool escape(rx *r, bool in_class, uint32_t *cp, gs_cset *set, bool *is_set) {
    *is_set = false;
    if (r->at >= r->n) return rx_fail(r, "%s", "pattern ends with a backslash");
    char e = r->s[r->at++];
    switch (e) {
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S':
        *set = (gs_cset){0};
        if (e == 'd' || e == 'D') set_digit(set);
        if (e == 'w' || e == 'W') set_word(set);
        if (e == 's' || e == 'S') set_space(set);
        if (e >= 'A' && e <= 'Z') gs_cset_negate(set);
        *is_set = true;
        return true;
    case 't': *cp = '\t'; return true;
    case 'n': *cp = '\n'; return true;
    case 'r': *cp = '\r'; return true;
    case 'v': *cp = '\v'; return true;
    case 'f': *cp = '\f'; return true;
    case '0':
        if (r->at < r->n && r->s[r->at] >= '0' && r->s[r->at] <= '9')
            return rx_fail(r, "%s", "octal escapes are not supported");
        *cp = 0;
        return true;
    case 'x': return hex_digits(r, 2, cp);
    case 'u':
        if (peek(r, '{')) {
            r->at++;
            uint32_t v = 0;
            int digits = 0;
            while (r->at < r->n && hexval(r->s[r->at]) >= 0 && digits < 7) {
                v = v * 16 + (uint32_t)hexval(r->s[r->at++]);
                digits++;
            }
            if (!digits || !peek(r, '}') || v > 0x10FFFF)
                return rx_fail(r, "%s", "bad \\u{...} escape");
            r->at++;
            *cp = v;
            return true;
        }
        return hex_digits(r, 4, cp);
    case 'c':
        if (r->at < r->n && ((r->s[r->at] | 0x20) >= 'a' && (r->s[r->at] | 0x20) <= 'z')) {
            *cp = (uint32_t)(r->s[r->at++] % 32);
            return true;
        }
        return rx_fail(r, "%s", "bad \\c escape");
    case 'b':
        if (in_class) {
            *cp = '\b';
            return true;
        }
        return rx_fail(r, "%s", "word boundaries (\\b) cannot be expressed by a grammar");
    case 'B': return rx_fail(r, "%s", "word boundaries (\\B) cannot be expressed by a grammar");
    case 'p':
    case 'P': return rx_fail(r, "%s", "Unicode property escapes (\\p{...}) are not supported");
    case 'k': return rx_fail(r, "%s", "backreferences are not supported");
    default:
        if (e >= '1' && e <= '9') return rx_fail(r, "%s", "backreferences are not supported");
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (unsigned char)e >= 0x80)
            return rx_fail(r, "unknown escape \\%s", (char[]){e, 0});
        *cp = (unsigned char)e; /* \. \* \/ \- ...: the character itself */
        return true;
    }
}

/* [...] into *set. */
static bool char_class(rx *r, gs_cset *set) {
    *set = (gs_cset){0};
    bool neg = false;
    if (peek(r, '^')) {
        neg = true;
        r->at++;
    }
    for (;;) {
        if (r->at >= r->n) return rx_fail(r, "%s", "unterminated character class");
        if (peek(r, ']')) {
            r->at++;
            break;
        }
        uint32_t lo = 0, hi;
        gs_cset part;
        bool is_set = false;
        if (peek(r, '\\')) {
            r->at++;
            if (!escape(r, true, &lo, &part, &is_set)) return false;
        } else {
            lo = next_cp(r);
        }
        if (is_set) {
            for (int i = 0; i < part.n; i++) gs_cset_add(set, part.lo[i], part.hi[i]);
            if (peek(r, '-') && r->at + 1 < r->n && r->s[r->at + 1] != ']')
                return rx_fail(r, "%s", "a range cannot start with a class escape");
            continue;
        }
        hi = lo;
        if (peek(r, '-') && r->at + 1 < r->n && r->s[r->at + 1] != ']') {
            r->at++;
            if (peek(r, '\\')) {
                r->at++;
                if (!escape(r, true, &hi, &part, &is_set)) return false;
                if (is_set) return rx_fail(r, "%s", "a range cannot end with a class escape");
            } else {
                hi = next_cp(r);
            }
            if (hi < lo) return rx_fail(r, "%s", "range out of order in character class");
        }
        gs_cset_add(set, lo, hi);
    }
    if (neg) gs_cset_negate(set);
    if (set->overflow) return rx_fail(r, "%s", "character class too complex");
    return true;
}

static void emit_cp(gs_buf *o, uint32_t cp) {
    if (cp >= 0x20 && cp != '"' && cp != '\\' && (cp < 0xD800 || cp > 0xDFFF)) {
        char u[4];
        size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n == 1) u[0] = (char)cp;
        if (n == 2) u[0] = (char)(0xC0 | (cp >> 6));
        if (n == 3) u[0] = (char)(0xE0 | (cp >> 12));
        if (n == 4) u[0] = (char)(0xF0 | (cp >> 18));
        for (size_t i = 1; i < n; i++) u[i] = (char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3F));
        gs_lit(o, u, n);
        return;
    }
    gs_cset one = {0};
    gs_cset_add(&one, cp, cp);
    gs_cset_emit(o, &one);
}

static bool disjunction(rx *r, gs_buf *o, size_t *mn, size_t *mx, bool top, bool *anchored);

static void emit_quantified(gs_buf *o, const char *atom, size_t qlo, size_t qhi) {
    gs_put(o, o->n ? " " : "");
    if (qlo == 1 && qhi == 1) {
        gs_put(o, atom);
        return;
    }
    gs_printf(o, "( %s )", atom);
    if (qlo == 0 && qhi == NO_MAX)
        gs_put(o, "*");
    else if (qlo == 1 && qhi == NO_MAX)
        gs_put(o, "+");
    else if (qlo == 0 && qhi == 1)
        gs_put(o, "?");
    else if (qhi == NO_MAX)
        gs_printf(o, "{%zu,}", qlo);
    else if (qlo == qhi)
        gs_printf(o, "{%zu}", qlo);
    else
        gs_printf(o, "{%zu,%zu}", qlo, qhi);
}

/* One atom (with its quantifier) into o; *mn and *mx its length range; *t (may be NULL) what
 * was parsed. */
static bool term(rx *r, gs_buf *o, size_t *mn, size_t *mx, rx_term *t) {
    gs_buf a = {0};
    size_t amn = 1, amx = 1;
    char ch = r->s[r->at];
    if (ch == '(') {
        r->at++;
        if (peek(r, '?')) {
            r->at++;
            if (peek(r, ':')) {
                r->at++;
            } else if (peek(r, '<') && r->at + 1 < r->n && r->s[r->at + 1] != '=' &&
                       r->s[r->at + 1] != '!') {
                while (r->at < r->n && r->s[r->at] != '>') r->at++;
                if (r->at++ >= r->n) return rx_fail(r, "%s", "unterminated group name");
            } else {
                return rx_fail(r, "%s", "lookahead/lookbehind cannot be expressed by a grammar");
            }
        }
        if (++r->depth > MAX_GROUPS) return rx_fail(r, "%s", "groups nested too deeply");
        bool anch = false;
        if (!disjunction(r, &a, &amn, &amx, false, &anch)) return gs_buf_free(&a), false;
        r->depth--;
        if (!peek(r, ')')) return gs_buf_free(&a), rx_fail(r, "%s", "missing )");
        r->at++;
    } else if (ch == '[') {
        r->at++;
        gs_cset set;
        if (!char_class(r, &set)) return false;
        if (gs_cset_empty(&set)) return rx_fail(r, "%s", "an empty class matches nothing");
        gs_cset_emit(&a, &set);
    } else if (ch == '.') {
        r->at++;
        gs_cset set = {0};
        gs_cset_add(&set, '\n', '\n');
        gs_cset_add(&set, '\r', '\r');
        gs_cset_add(&set, 0x2028, 0x2029);
        gs_cset_negate(&set);
        gs_cset_emit(&a, &set);
    } else if (ch == '\\') {
        r->at++;
        uint32_t cp;
        gs_cset set;
        bool is_set;
        if (!escape(r, false, &cp, &set, &is_set)) return false;
        if (is_set)
            gs_cset_emit(&a, &set);
        else
            emit_cp(&a, cp);
    } else if (ch == '*' || ch == '+' || ch == '?' || ch == '{' || ch == '}' || ch == ']') {
        return rx_fail(r, "unexpected %s", (char[]){ch, 0});
    } else if (ch == '^' || ch == '$') {
        return rx_fail(r, "%s", "anchors are supported only at the start and end of the pattern");
    } else {
        emit_cp(&a, next_cp(r));
    }
    /* Quantifier. */
    size_t qlo = 1, qhi = 1;
    if (r->at < r->n) {
        char q = r->s[r->at];
        if (q == '*' || q == '+' || q == '?') {
            r->at++;
            qlo = q == '+';
            qhi = q == '?' ? 1 : NO_MAX;
        } else if (q == '{') {
            size_t at0 = ++r->at, v[2] = {0, 0};
            int k = 0;
            bool comma = false, digits = false;
            while (r->at < r->n && r->s[r->at] != '}') {
                char d = r->s[r->at++];
                if (d >= '0' && d <= '9') {
                    v[k] = v[k] * 10 + (size_t)(d - '0');
                    digits = true;
                    if (v[k] > GS_MAX_REPEAT) {
                        gs_buf_free(&a);
                        return rx_fail(r, "%s", "repetition count above the limit");
                    }
                } else if (d == ',' && !comma && digits) {
                    comma = true;
                    k = 1;
                } else {
                    r->at = at0;
                    gs_buf_free(&a);
                    return rx_fail(r, "%s", "malformed {m,n} quantifier");
                }
            }
            if (r->at >= r->n || !digits) {
                gs_buf_free(&a);
                return rx_fail(r, "%s", "malformed {m,n} quantifier");
            }
            r->at++;
            qlo = v[0];
            qhi = !comma ? v[0] : (r->s[r->at - 2] == ',' ? NO_MAX : v[1]);
            if (qhi < qlo) {
                gs_buf_free(&a);
                return rx_fail(r, "%s", "{m,n} with n < m");
            }
        }
        if ((qlo != 1 || qhi != 1) && peek(r, '?')) r->at++; /* lazy: same language */
    }
    *mn = mul_len(amn, qlo);
    *mx = mul_len(amx, qhi);
    if (!a.n || qhi == 0) { /* matches only the empty string */
        gs_buf_free(&a);
        *mn = *mx = 0;
        return true;
    }
    if (amn == 0 && qhi > 1)
        return gs_buf_free(&a),
               rx_fail(r, "%s",
                       "a repeated group that can match the empty string is not supported");
    emit_quantified(o, a.p, qlo, qhi);
    if (t)
        *t = (rx_term){a.p, amn, amx, qlo, qhi}; /* takes the text */
    else
        gs_buf_free(&a);
    return true;
}

/* A length range asked for beside the pattern, met exactly when the pattern is one anchored
 * sequence in which a single one-character atom repeats a variable number of times (the usual
 * "^[a-z0-9_]+$" with maxLength): that count is narrowed. terms[0..n) hold the alternative,
 * spans[i] where term i starts in alt. False when the shape does not fit (nothing changed). */
static bool fit_length(rx *r, gs_buf *alt, rx_term *terms, const size_t *spans, size_t n,
                       size_t *amn, size_t *amx) {
    size_t fixed = 0, var = n;
    for (size_t i = 0; i < n; i++) {
        if (!terms[i].atom) continue;
        if (terms[i].amn == terms[i].amx && terms[i].qlo == terms[i].qhi) {
            fixed += terms[i].amn * terms[i].qlo;
        } else {
            if (var != n || terms[i].amn != 1 || terms[i].amx != 1) return false;
            var = i;
        }
    }
    if (var == n) return false;
    rx_term *v = &terms[var];
    size_t lo = r->want_lo > fixed ? r->want_lo - fixed : 0;
    size_t hi = r->want_hi == NO_MAX ? NO_MAX : r->want_hi >= fixed ? r->want_hi - fixed : 0;
    if (r->want_hi != NO_MAX && r->want_hi < fixed) return false;
    if (lo < v->qlo) lo = v->qlo;
    if (hi > v->qhi) hi = v->qhi;
    if (lo > hi || (hi != NO_MAX && hi > GS_MAX_REPEAT)) return false;
    gs_buf out = {0};
    gs_putn(&out, alt->p, spans[var]);
    if (out.n && out.p[out.n - 1] == ' ') out.p[--out.n] = 0;
    emit_quantified(&out, v->atom, lo, hi);
    size_t end = var + 1 < n ? spans[var + 1] : alt->n;
    if (end < alt->n) gs_putn(&out, alt->p + end, alt->n - end);
    gs_buf_free(alt);
    *alt = out;
    v->qlo = lo;
    v->qhi = hi;
    *amn = fixed + lo;
    *amx = hi == NO_MAX ? NO_MAX : fixed + hi;
    return true;
}

/* alt ( '|' alt )*; at the top level each alternative may start with ^ and end with $, and an
 * unanchored end matches any characters. */
static bool disjunction(rx *r, gs_buf *o, size_t *mn, size_t *mx, bool top, bool *anchored) {
    *mn = NO_MAX;
    *mx = 0;
    *anchored = true;
    int alts = 0;
    bool empty_alt = false;
    gs_buf all = {0};
    const char *any = top ? gs_prim_rule(r->c, GS_CHAR) : NULL;
    for (;;) {
        gs_buf alt = {0};
        size_t amn = 0, amx = 0;
        bool start = false, end = false, too_many = false;
        rx_term terms[RX_TERMS];
        size_t spans[RX_TERMS], nt = 0;
        if (top && peek(r, '^')) {
            r->at++;
            start = true;
        }
        while (r->at < r->n && !peek(r, '|') && !peek(r, ')')) {
            if (top && peek(r, '$') && (r->at + 1 == r->n || r->s[r->at + 1] == '|')) {
                r->at++;
                end = true;
                break;
            }
            size_t tmn, tmx, span = alt.n;
            rx_term t = {0};
            bool ok = term(r, &alt, &tmn, &tmx, top && nt < RX_TERMS ? &t : NULL);
            if (top && nt < RX_TERMS) {
                spans[nt] = span;
                terms[nt++] = t;
            } else if (top) {
                too_many = true;
            }
            if (!ok) {
                for (size_t i = 0; i < nt; i++) free(terms[i].atom);
                return gs_buf_free(&alt), gs_buf_free(&all), false;
            }
            amn = add_len(amn, tmn);
            amx = add_len(amx, tmx);
        }
        if (top && start && end && !alts && !empty_alt && !peek(r, '|') && !too_many &&
            (r->want_lo > 0 || r->want_hi != NO_MAX) &&
            (amn < r->want_lo || (r->want_hi != NO_MAX && amx > r->want_hi)))
            fit_length(r, &alt, terms, spans, nt, &amn, &amx);
        for (size_t i = 0; i < nt; i++) free(terms[i].atom);
        nt = 0;
        if (top) {
            *anchored &= start && end;
            gs_buf w = {0};
            if (!start) gs_printf(&w, "%s*", any);
            if (alt.n) gs_printf(&w, "%s%s", w.n ? " " : "", alt.p);
            if (!end) gs_printf(&w, "%s%s*", w.n ? " " : "", any);
            gs_buf_free(&alt);
            alt = w;
        }
        if (amn < *mn) *mn = amn;
        if (amx > *mx) *mx = amx;
        if (alt.n) {
            gs_put(&all, alts++ ? " | " : "");
            gs_put(&all, alt.p);
        } else {
            empty_alt = true;
        }
        gs_buf_free(&alt);
        if (!peek(r, '|')) break;
        r->at++;
    }
    if (top && r->at < r->n) return gs_buf_free(&all), rx_fail(r, "%s", "unmatched )");
    if (alts)
        gs_printf(o, empty_alt ? "( %s )?" : alts > 1 ? "( %s )" : "%s", all.p);
    else if (!top)
        *mn = *mx = 0;
    gs_buf_free(&all);
    return !o->oom || rx_fail(r, "%s", "out of memory");
}

bool gs_regex(gs_ctx *c, const char *pattern, size_t len, const char *path, gs_buf *out,
              size_t *minlen, size_t *maxlen, bool *anchored) {
    rx r = {.c = c, .s = pattern, .n = len, .path = path, .want_lo = *minlen, .want_hi = *maxlen};
    if (len > GS_MAX_REGEX) return rx_fail(&r, "%s", "pattern longer than the limit");
    if (memchr(pattern, 0, len)) return rx_fail(&r, "%s", "NUL in pattern");
    return disjunction(&r, out, minlen, maxlen, true, anchored);
}
