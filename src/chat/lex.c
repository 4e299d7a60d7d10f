/* Jinja lexer: template text to tokens, with the whitespace rules of an environment configured
 * with trim_blocks=True and lstrip_blocks=True applied here, so the parser only sees the text
 * that will be output:
 *  - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` after it.
 *  - lstrip_blocks: spaces and tabs between a line start and a `{%` or `{#` go (not with `{%+`).
 *  - trim_blocks: the first newline after a `%}` or `#}` goes (not with `+%}`).
 *  - newlines are normalised to "\n" and one trailing newline of the template is dropped. */
#include "jinja.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    chat_parser *p;
    const char *s; /* normalised source */
    size_t n, i;
    int line;     /* line of position i (1-based) */
    size_t line0; /* offset where that line starts */
    bool line_starting;
} lexer;

static void advance_to(lexer *lx, size_t to) {
    for (; lx->i < to; lx->i++)
        if (lx->s[lx->i] == '\n') {
            lx->line++;
            lx->line0 = lx->i + 1;
        }
}

static int col_of(lexer *lx, size_t at) {
    return (int)(at - lx->line0) + 1;
}

static chat_token *push(lexer *lx, int kind, size_t at) {
    chat_parser *p = lx->p;
    if (p->n_toks == p->cap_toks) {
        /* tokens live only while parsing: heap memory the caller frees, not the arena */
        size_t cap = p->cap_toks ? p->cap_toks * 2 : 256;
        chat_token *nt = core_realloc(p->toks, cap * sizeof *nt);
        if (!nt) {
            core_error(p->err, SHIMMY_ERR_NOMEM, "chat template",
                       "out of memory compiling template");
            longjmp(p->jb, 1);
        }
        p->toks = nt;
        p->cap_toks = cap;
    }
    chat_token *t = &p->toks[p->n_toks++];
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    t->line = lx->line;
    t->col = col_of(lx, at);
    return t;
}

static void push_text(lexer *lx, size_t b, size_t e) {
    if (b >= e) return;
    chat_token *t = push(lx, T_TEXT, b);
    t->s = lx->s + b;
    t->len = e - b;
}

static bool at(const lexer *lx, size_t i, const char *lit) {
    size_t k = strlen(lit);
    return i + k <= lx->n && memcmp(lx->s + i, lit, k) == 0;
}

static size_t skip_space_fwd(const lexer *lx, size_t i) {
    size_t k;
    while ((k = chat_space_at(lx->s + i, lx->n - i)) > 0) i += k;
    return i;
}

/* After a tag's end delimiter at `i`: `-` strips all whitespace, trim_blocks one newline. */
static size_t after_tag(lexer *lx, size_t i, char sign, bool block) {
    if (sign == '-')
        i = skip_space_fwd(lx, i);
    else if (block && sign != '+' && i < lx->n && lx->s[i] == '\n')
        i++;
    lx->line_starting = i > 0 && lx->s[i - 1] == '\n';
    return i;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A quoted string at i (Python escapes, as Jinja decodes them); returns the end offset. */
static size_t lex_string(lexer *lx, size_t i) {
    char q = lx->s[i];
    size_t j = i + 1;
    while (j < lx->n && lx->s[j] != q) j += lx->s[j] == '\\' ? 2 : 1;
    if (j >= lx->n) chat_parse_fail(lx->p, lx->line, col_of(lx, i), "unterminated string");
    char *d = chat_parse_alloc(lx->p, j - i + 1);
    size_t o = 0;
    for (size_t k = i + 1; k < j; k++) {
        char c = lx->s[k];
        if (c != '\\') {
            d[o++] = c;
            continue;
        }
        char e = lx->s[++k];
        int digits = 0;
        switch (e) {
        case 'n': d[o++] = '\n'; break;
        case 't': d[o++] = '\t'; break;
        case 'r': d[o++] = '\r'; break;
        case 'a': d[o++] = '\a'; break;
        case 'b': d[o++] = '\b'; break;
        case 'f': d[o++] = '\f'; break;
        case 'v': d[o++] = '\v'; break;
        case '\\':
        case '\'':
        case '"': d[o++] = e; break;
        case '\n': break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                int v = 0, m = 0;
                while (m < 3 && k < j && lx->s[k] >= '0' && lx->s[k] <= '7') {
                    v = v * 8 + (lx->s[k++] - '0');
                    m++;
                }
                k--;
                o += (size_t)core_utf8_encode((uint32_t)v, d + o);
            } else {
                d[o++] = '\\';
                d[o++] = e;
            }
        }
        if (digits) {
            uint32_t cp = 0;
            for (int m = 0; m < digits; m++) {
                int h = k + 1 < j ? hexval(lx->s[k + 1]) : -1;
                if (h < 0)
                    chat_parse_fail(lx->p, lx->line, col_of(lx, k), "truncated \\%c escape", e);
                cp = cp * 16 + (uint32_t)h;
                k++;
            }
            if (cp > 0x10FFFF)
                chat_parse_fail(lx->p, lx->line, col_of(lx, k), "escape beyond U+10FFFF");
            o += (size_t)core_utf8_encode(cp, d + o);
        }
    }
    d[o] = 0;
    chat_token *t = push(lx, T_STRING, i);
    t->s = d;
    t->len = o;
    return j + 1;
}

static size_t lex_number(lexer *lx, size_t i) {
    size_t j = i;
    char buf[64];
    size_t o = 0;
    bool is_float = false;
    while (j < lx->n && ((lx->s[j] >= '0' && lx->s[j] <= '9') || lx->s[j] == '_')) {
        if (lx->s[j] != '_' && o < sizeof buf - 1) buf[o++] = lx->s[j];
        j++;
    }
    if (j + 1 < lx->n && lx->s[j] == '.' && lx->s[j + 1] >= '0' && lx->s[j + 1] <= '9') {
        is_float = true;
        if (o < sizeof buf - 1) buf[o++] = '.'; /* a full buffer is refused below */
        j++;
        while (j < lx->n && ((lx->s[j] >= '0' && lx->s[j] <= '9') || lx->s[j] == '_')) {
            if (lx->s[j] != '_' && o < sizeof buf - 1) buf[o++] = lx->s[j];
            j++;
        }
    }
    if (j < lx->n && (lx->s[j] == 'e' || lx->s[j] == 'E')) {
        size_t k = j + 1;
        if (k < lx->n && (lx->s[k] == '+' || lx->s[k] == '-')) k++;
        if (k < lx->n && lx->s[k] >= '0' && lx->s[k] <= '9') {
            is_float = true;
            while (j < k && o < sizeof buf - 1) buf[o++] = lx->s[j++];
            while (j < lx->n && lx->s[j] >= '0' && lx->s[j] <= '9' && o < sizeof buf - 1)
                buf[o++] = lx->s[j++];
        }
    }
    buf[o] = 0;
    /* Digits dropped for want of room would change the value silently. */
    if (o == sizeof buf - 1)
        chat_parse_fail(lx->p, lx->line, col_of(lx, i), "number literal longer than %d digits",
                        (int)sizeof buf - 2);
    chat_token *t = push(lx, is_float ? T_FLOAT : T_INT, i);
    t->s = lx->s + i;
    t->len = j - i;
    if (is_float) {
        t->f = strtod(buf, NULL);
    } else {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno) chat_parse_fail(lx->p, lx->line, col_of(lx, i), "integer literal too large");
        t->i = v;
    }
    return j;
}

static const char *const ops2[] = {"//", "**", "==", "!=", "<=", ">="};
static const char ops1[] = "+-*/%~<>=()[]{},.:|";

/* Tokens of one {{ }} or {% %} up to its end delimiter; returns the offset after it. */
static size_t lex_tag(lexer *lx, size_t i, bool block, char *end_sign) {
    const char *end = block ? "%}" : "}}";
    int depth = 0;
    for (;;) {
        while (i < lx->n &&
               (lx->s[i] == ' ' || lx->s[i] == '\t' || lx->s[i] == '\n' || lx->s[i] == '\r'))
            i++;
        advance_to(lx, i);
        if (i >= lx->n)
            chat_parse_fail(lx->p, lx->line, col_of(lx, i), "missing '%s' before the end", end);
        if (depth == 0) {
            char c = lx->s[i];
            if ((c == '-' || c == '+') && at(lx, i + 1, end)) {
                push(lx, block ? T_BLOCK_END : T_VAR_END, i);
                *end_sign = c;
                return i + 3;
            }
            if (at(lx, i, end)) {
                push(lx, block ? T_BLOCK_END : T_VAR_END, i);
                *end_sign = 0;
                return i + 2;
            }
        }
        char c = lx->s[i];
        if (c == '\'' || c == '"') {
            i = lex_string(lx, i);
        } else if (c >= '0' && c <= '9') {
            i = lex_number(lx, i);
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t j = i;
            while (j < lx->n &&
                   ((lx->s[j] >= 'a' && lx->s[j] <= 'z') || (lx->s[j] >= 'A' && lx->s[j] <= 'Z') ||
                    (lx->s[j] >= '0' && lx->s[j] <= '9') || lx->s[j] == '_'))
                j++;
            chat_token *t = push(lx, T_NAME, i);
            t->s = lx->s + i;
            t->len = j - i;
            i = j;
        } else {
            size_t k = 0;
            for (size_t o = 0; o < sizeof ops2 / sizeof ops2[0]; o++)
                if (at(lx, i, ops2[o])) k = 2;
            if (!k && strchr(ops1, c) && c) k = 1;
            if (!k) chat_parse_fail(lx->p, lx->line, col_of(lx, i), "unexpected character '%c'", c);
            if (c == '(' || c == '[' || c == '{') depth++;
            if ((c == ')' || c == ']' || c == '}') && depth > 0) depth--;
            chat_token *t = push(lx, T_OP, i);
            t->s = lx->s + i;
            t->len = k;
            i += k;
        }
    }
}

/* `{% raw %}` at i (after the tag start and sign): returns the offset after `endraw %}` or 0 when
 * the block tag is not a raw one. */
static size_t lex_raw(lexer *lx, size_t i) {
    size_t j = i;
    while (j < lx->n && (lx->s[j] == ' ' || lx->s[j] == '\t' || lx->s[j] == '\n')) j++;
    if (!at(lx, j, "raw")) return 0;
    j += 3;
    while (j < lx->n && (lx->s[j] == ' ' || lx->s[j] == '\t' || lx->s[j] == '\n')) j++;
    char sign = 0;
    if (j < lx->n && lx->s[j] == '-') sign = lx->s[j++]; /* Jinja knows no `raw +%}` */
    if (!at(lx, j, "%}")) return 0;
    j += 2;
    if (sign == '-') j = skip_space_fwd(lx, j);
    for (size_t k = j; k + 1 < lx->n; k++) {
        if (lx->s[k] != '{' || lx->s[k + 1] != '%') continue;
        size_t m = k + 2;
        char lsign = 0;
        if (m < lx->n && (lx->s[m] == '-' || lx->s[m] == '+')) lsign = lx->s[m++];
        while (m < lx->n && (lx->s[m] == ' ' || lx->s[m] == '\t' || lx->s[m] == '\n')) m++;
        if (!at(lx, m, "endraw")) continue;
        m += 6;
        while (m < lx->n && (lx->s[m] == ' ' || lx->s[m] == '\t' || lx->s[m] == '\n')) m++;
        char rsign = 0;
        if (m < lx->n && (lx->s[m] == '-' || lx->s[m] == '+')) rsign = lx->s[m++];
        if (!at(lx, m, "%}")) continue;
        size_t text_end = k;
        if (lsign == '-')
            while (text_end > j && chat_space_before(lx->s + j, text_end - j))
                text_end -= chat_space_before(lx->s + j, text_end - j);
        advance_to(lx, j);
        push_text(lx, j, text_end);
        advance_to(lx, m + 2);
        return after_tag(lx, m + 2, rsign, true);
    }
    chat_parse_fail(lx->p, lx->line, col_of(lx, i), "'raw' block without 'endraw'");
}

void chat_lex(chat_parser *p) {
    /* normalise newlines and drop one trailing newline, as Jinja does */
    size_t n0 = strlen(p->src);
    char *s = chat_parse_alloc(p, n0 + 1);
    size_t n = 0;
    for (size_t k = 0; k < n0; k++) {
        if (p->src[k] == '\r') {
            s[n++] = '\n';
            if (k + 1 < n0 && p->src[k + 1] == '\n') k++;
        } else {
            s[n++] = p->src[k];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    lexer lx = {.p = p, .s = s, .n = n, .line = 1, .line_starting = true};
    size_t i = 0;
    while (i < n) {
        size_t t = i;
        while (t + 1 < n &&
               !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#')))
            t++;
        if (t + 1 >= n) {
            push_text(&lx, i, n);
            break;
        }
        char kind = s[t + 1];
        char sign = t + 2 < n && (s[t + 2] == '-' || s[t + 2] == '+') ? s[t + 2] : 0;
        size_t text_end = t;
        if (sign == '-') {
            size_t k;
            while (text_end > i && (k = chat_space_before(s + i, text_end - i)) > 0) text_end -= k;
        } else if (sign != '+' && kind != '{') {
            size_t l = t;
            while (l > i && s[l - 1] != '\n') l--;
            bool only_ws = l < t;
            for (size_t k = l; k < t && only_ws; k++) only_ws = s[k] == ' ' || s[k] == '\t';
            if (only_ws && (l > i || lx.line_starting || (l == i && i == 0))) text_end = l;
        }
        push_text(&lx, i, text_end);
        advance_to(&lx, t);
        size_t body = t + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            size_t e = body;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) chat_parse_fail(p, lx.line, col_of(&lx, t), "unterminated comment");
            char esign = e > body && (s[e - 1] == '-' || s[e - 1] == '+') ? s[e - 1] : 0;
            advance_to(&lx, e + 2);
            i = after_tag(&lx, e + 2, esign, true);
            continue;
        }
        if (kind == '%') {
            size_t r = lex_raw(&lx, body);
            if (r) {
                i = r;
                continue;
            }
        }
        push(&lx, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, t);
        char esign = 0;
        size_t e = lex_tag(&lx, body, kind == '%', &esign);
        advance_to(&lx, e);
        i = after_tag(&lx, e, esign, kind == '%');
    }
    advance_to(&lx, n);
    push(&lx, T_EOF, n);
}
