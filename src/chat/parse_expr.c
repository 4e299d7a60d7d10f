/* Jinja expression parser: tokens to an AST, recursive descent with Jinja's operator precedence
 * (or < and < not < comparisons < + - < ~ < * / // % < ** < unary < postfix/filters/tests).
 * Nesting is bounded so a hostile template cannot exhaust the C stack. */
#include "jinja.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MAX_NESTING = 200 };

void chat_parse_fail(chat_parser *p, int line, int col, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    core_error(p->err, SHIMMY_ERR_TEMPLATE, "chat template",
               "syntax error at line %d, column %d: %s", line, col, msg);
    longjmp(p->jb, 1);
}

void *chat_parse_alloc(chat_parser *p, size_t n) {
    void *m = chat_arena_alloc(p->arena, n);
    if (!m) {
        core_error(p->err, SHIMMY_ERR_NOMEM, "chat template", "out of memory compiling template");
        longjmp(p->jb, 1);
    }
    return m;
}

chat_token *chat_pcur(chat_parser *p) {
    return &p->toks[p->pos];
}
chat_token *chat_pnext(chat_parser *p) {
    chat_token *t = &p->toks[p->pos];
    if (t->kind != T_EOF) p->pos++;
    return t;
}

bool chat_tok_is(const chat_token *t, int kind, const char *s) {
    if (t->kind != kind) return false;
    if (!s) return true;
    size_t n = strlen(s);
    return t->len == n && memcmp(t->s, s, n) == 0;
}
static bool is_op(chat_parser *p, const char *s) {
    return chat_tok_is(chat_pcur(p), T_OP, s);
}
static bool is_name(chat_parser *p, const char *s) {
    return chat_tok_is(chat_pcur(p), T_NAME, s);
}

static const char *tok_desc(chat_parser *p, const chat_token *t) {
    switch (t->kind) {
    case T_EOF: return "end of template";
    case T_BLOCK_END: return "'%}'";
    case T_VAR_END: return "'}}'";
    case T_TEXT: return "text";
    default: {
        char *s = chat_parse_alloc(p, t->len + 3);
        snprintf(s, t->len + 3, "'%.*s'", (int)t->len, t->s);
        return s;
    }
    }
}

void chat_pexpect(chat_parser *p, int kind, const char *s, const char *what) {
    chat_token *t = chat_pcur(p);
    if (!chat_tok_is(t, kind, s))
        chat_parse_fail(p, t->line, t->col, "expected %s, found %s", what, tok_desc(p, t));
    chat_pnext(p);
}

const char *chat_pname_str(chat_parser *p, const chat_token *t) {
    char *s = chat_parse_alloc(p, t->len + 1);
    memcpy(s, t->s, t->len);
    s[t->len] = 0;
    return s;
}

const char *chat_pname(chat_parser *p, const char *what) {
    chat_token *t = chat_pcur(p);
    if (t->kind != T_NAME)
        chat_parse_fail(p, t->line, t->col, "expected %s, found %s", what, tok_desc(p, t));
    chat_pnext(p);
    return chat_pname_str(p, t);
}

chat_node *chat_pnode(chat_parser *p, int kind, const chat_token *t) {
    chat_node *n = chat_parse_alloc(p, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = t->line;
    n->col = t->col;
    return n;
}

/* A growable array of node pointers in the parse arena. */
void chat_nvec_push(chat_parser *p, chat_nvec *a, chat_node *n, const char *name) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 4;
        chat_node **nv = chat_parse_alloc(p, (size_t)cap * sizeof *nv);
        const char **nn = chat_parse_alloc(p, (size_t)cap * sizeof *nn);
        if (a->n) {
            memcpy(nv, a->v, (size_t)a->n * sizeof *nv);
            memcpy(nn, a->names, (size_t)a->n * sizeof *nn);
        }
        a->v = nv;
        a->names = nn;
        a->cap = cap;
    }
    a->v[a->n] = n;
    a->names[a->n++] = name;
}

void chat_penter(chat_parser *p) {
    if (++p->depth > MAX_NESTING)
        chat_parse_fail(p, chat_pcur(p)->line, chat_pcur(p)->col, "nesting deeper than %d levels",
                        MAX_NESTING);
}

static chat_node *parse_unary(chat_parser *p, bool with_filter);

static chat_node *lit(chat_parser *p, const chat_token *t, chat_val v) {
    chat_node *n = chat_pnode(p, E_LIT, t);
    n->lit = v;
    return n;
}

static chat_node *str_lit(chat_parser *p, const chat_token *t, const char *s, size_t len) {
    chat_str *cs = chat_str_new(p->arena, s, len);
    if (!cs) chat_parse_fail(p, t->line, t->col, "out of memory");
    return lit(p, t, chat_strv(cs));
}

/* Call arguments after '(' up to ')': positional and name=value. */
void chat_parse_args(chat_parser *p, chat_node *call) {
    chat_nvec a = {0};
    while (!is_op(p, ")")) {
        if (a.n) chat_pexpect(p, T_OP, ",", "',' or ')'");
        if (is_op(p, ")")) break;
        const char *kw = NULL;
        if (chat_pcur(p)->kind == T_NAME && chat_tok_is(&p->toks[p->pos + 1], T_OP, "=")) {
            kw = chat_pname_str(p, chat_pnext(p));
            chat_pnext(p);
        } else if (a.n && a.names[a.n - 1]) {
            chat_parse_fail(p, chat_pcur(p)->line, chat_pcur(p)->col,
                            "positional argument after a keyword argument");
        }
        chat_nvec_push(p, &a, chat_parse_expr(p), kw);
    }
    chat_pnext(p);
    call->kids = a.v;
    call->knames = a.names;
    call->n_kids = a.n;
}

static chat_node *parse_primary(chat_parser *p) {
    chat_token *t = chat_pcur(p);
    chat_penter(p);
    chat_node *n = NULL;
    if (t->kind == T_NAME) {
        chat_pnext(p);
        if (chat_tok_is(t, T_NAME, "true") || chat_tok_is(t, T_NAME, "True"))
            n = lit(p, t, chat_bool(true));
        else if (chat_tok_is(t, T_NAME, "false") || chat_tok_is(t, T_NAME, "False"))
            n = lit(p, t, chat_bool(false));
        else if (chat_tok_is(t, T_NAME, "none") || chat_tok_is(t, T_NAME, "None"))
            n = lit(p, t, chat_none());
        else {
            n = chat_pnode(p, E_NAME, t);
            n->name = chat_pname_str(p, t);
        }
    } else if (t->kind == T_STRING) {
        /* adjacent string literals concatenate */
        size_t total = 0, k = p->pos;
        while (p->toks[k].kind == T_STRING) total += p->toks[k++].len;
        char *buf = chat_parse_alloc(p, total + 1);
        size_t o = 0;
        while (chat_pcur(p)->kind == T_STRING) {
            memcpy(buf + o, chat_pcur(p)->s, chat_pcur(p)->len);
            o += chat_pcur(p)->len;
            chat_pnext(p);
        }
        n = str_lit(p, t, buf, o);
    } else if (t->kind == T_INT) {
        chat_pnext(p);
        n = lit(p, t, chat_int(t->i));
    } else if (t->kind == T_FLOAT) {
        chat_pnext(p);
        n = lit(p, t, chat_float(t->f));
    } else if (chat_tok_is(t, T_OP, "(")) {
        chat_pnext(p);
        if (is_op(p, ")")) {
            chat_pnext(p);
            n = chat_pnode(p, E_TUPLE, t);
        } else {
            chat_node *first = chat_parse_expr(p);
            if (is_op(p, ",")) {
                chat_nvec a = {0};
                chat_nvec_push(p, &a, first, NULL);
                while (is_op(p, ",")) {
                    chat_pnext(p);
                    if (is_op(p, ")")) break;
                    chat_nvec_push(p, &a, chat_parse_expr(p), NULL);
                }
                n = chat_pnode(p, E_TUPLE, t);
                n->kids = a.v;
                n->n_kids = a.n;
            } else {
                n = first;
            }
            chat_pexpect(p, T_OP, ")", "')'");
        }
    } else if (chat_tok_is(t, T_OP, "[")) {
        chat_pnext(p);
        chat_nvec a = {0};
        while (!is_op(p, "]")) {
            if (a.n) chat_pexpect(p, T_OP, ",", "',' or ']'");
            if (is_op(p, "]")) break;
            chat_nvec_push(p, &a, chat_parse_expr(p), NULL);
        }
        chat_pnext(p);
        n = chat_pnode(p, E_LIST, t);
        n->kids = a.v;
        n->n_kids = a.n;
    } else if (chat_tok_is(t, T_OP, "{")) {
        chat_pnext(p);
        chat_nvec a = {0};
        while (!is_op(p, "}")) {
            if (a.n) chat_pexpect(p, T_OP, ",", "',' or '}'");
            if (is_op(p, "}")) break;
            chat_nvec_push(p, &a, chat_parse_expr(p), NULL);
            chat_pexpect(p, T_OP, ":", "':' in a dict literal");
            chat_nvec_push(p, &a, chat_parse_expr(p), NULL);
        }
        chat_pnext(p);
        n = chat_pnode(p, E_DICT, t);
        n->kids = a.v;
        n->n_kids = a.n;
    } else {
        chat_parse_fail(p, t->line, t->col, "expected an expression, found %s", tok_desc(p, t));
    }
    p->depth--;
    return n;
}

static chat_node *parse_subscript(chat_parser *p, chat_node *obj, const chat_token *t) {
    chat_node *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    while (!is_op(p, "]")) {
        if (is_op(p, ":")) {
            chat_pnext(p);
            slice = true;
            if (++k > 2) chat_parse_fail(p, t->line, t->col, "too many ':' in a slice");
            continue;
        }
        if (parts[k]) chat_parse_fail(p, chat_pcur(p)->line, chat_pcur(p)->col, "expected ']'");
        parts[k] = chat_parse_expr(p);
    }
    chat_pnext(p);
    chat_node *n = chat_pnode(p, slice ? E_SLICE : E_ITEM, t);
    n->a = obj;
    if (slice) {
        n->kids = chat_parse_alloc(p, 3 * sizeof *n->kids);
        memcpy(n->kids, parts, sizeof parts);
        n->n_kids = 3;
    } else {
        if (!parts[0]) chat_parse_fail(p, t->line, t->col, "empty subscript");
        n->b = parts[0];
    }
    return n;
}

static chat_node *parse_postfix(chat_parser *p, chat_node *n) {
    for (;;) {
        chat_token *t = chat_pcur(p);
        if (chat_tok_is(t, T_OP, ".")) {
            chat_pnext(p);
            chat_token *a = chat_pcur(p);
            if (a->kind == T_INT) {
                chat_pnext(p);
                chat_node *item = chat_pnode(p, E_ITEM, t);
                item->a = n;
                item->b = lit(p, a, chat_int(a->i));
                n = item;
                continue;
            }
            chat_node *attr = chat_pnode(p, E_ATTR, t);
            attr->a = n;
            attr->name = chat_pname(p, "an attribute name after '.'");
            n = attr;
        } else if (chat_tok_is(t, T_OP, "[")) {
            chat_pnext(p);
            n = parse_subscript(p, n, t);
        } else if (chat_tok_is(t, T_OP, "(")) {
            chat_pnext(p);
            chat_node *call = chat_pnode(p, E_CALL, t);
            call->a = n;
            chat_parse_args(p, call);
            n = call;
        } else {
            return n;
        }
    }
}

static bool starts_test_arg(chat_parser *p) {
    chat_token *t = chat_pcur(p);
    static const char *const stop[] = {"else", "or", "and", "if", "is", "in", "not"};
    if (t->kind == T_NAME) {
        for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
            if (chat_tok_is(t, T_NAME, stop[i])) return false;
        return true;
    }
    return t->kind == T_STRING || t->kind == T_INT || t->kind == T_FLOAT ||
           chat_tok_is(t, T_OP, "[") || chat_tok_is(t, T_OP, "{") || chat_tok_is(t, T_OP, "(");
}

/* Filters applied to `n` (NULL for a filter block's input). */
chat_node *chat_parse_filters(chat_parser *p, chat_node *n) {
    while (is_op(p, "|")) {
        chat_token *t = chat_pnext(p);
        chat_node *f = chat_pnode(p, E_FILTER, t);
        f->a = n;
        f->name = chat_pname(p, "a filter name after '|'");
        if (!chat_filter_find(f->name))
            chat_parse_fail(p, t->line, t->col, "no filter named '%s'", f->name);
        if (is_op(p, "(")) {
            chat_pnext(p);
            chat_parse_args(p, f);
        }
        n = f;
    }
    return n;
}

static chat_node *parse_filter_expr(chat_parser *p, chat_node *n) {
    for (;;) {
        if (is_op(p, "|")) {
            n = chat_parse_filters(p, n);
        } else if (is_name(p, "is")) {
            chat_token *t = chat_pnext(p);
            chat_node *test = chat_pnode(p, E_TEST, t);
            if (is_name(p, "not")) {
                chat_pnext(p);
                test->op = 1;
            }
            test->a = n;
            test->name = chat_pname(p, "a test name after 'is'");
            if (!chat_test_find(test->name))
                chat_parse_fail(p, t->line, t->col, "no test named '%s'", test->name);
            if (is_op(p, "(")) {
                chat_pnext(p);
                chat_parse_args(p, test);
            } else if (starts_test_arg(p)) {
                test->kids = chat_parse_alloc(p, sizeof *test->kids);
                test->knames = chat_parse_alloc(p, sizeof *test->knames);
                test->kids[0] = parse_postfix(p, parse_primary(p));
                test->n_kids = 1;
            }
            n = test;
        } else if (is_op(p, "(")) {
            chat_token *t = chat_pnext(p);
            chat_node *call = chat_pnode(p, E_CALL, t);
            call->a = n;
            chat_parse_args(p, call);
            n = call;
        } else {
            return n;
        }
    }
}

static chat_node *parse_unary(chat_parser *p, bool with_filter) {
    chat_token *t = chat_pcur(p);
    chat_node *n;
    chat_penter(p);
    if (chat_tok_is(t, T_OP, "-") || chat_tok_is(t, T_OP, "+")) {
        chat_pnext(p);
        n = chat_pnode(p, t->s[0] == '-' ? E_NEG : E_POS, t);
        n->a = parse_unary(p, false);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

typedef struct binop {
    const char *tok;
    chat_op op;
} binop;

static chat_node *parse_level(chat_parser *p, int level);

/* Levels of left-associative binary operators, loosest first. */
static const binop levels[][5] = {
    {{"+", OP_ADD}, {"-", OP_SUB}},
    {{"~", OP_CONCAT}},
    {{"*", OP_MUL}, {"/", OP_DIV}, {"//", OP_FLOORDIV}, {"%", OP_MOD}},
    {{"**", OP_POW}},
};
enum { N_LEVELS = sizeof levels / sizeof levels[0] };

static chat_node *parse_level(chat_parser *p, int level) {
    if (level == N_LEVELS) return parse_unary(p, true);
    chat_node *n = parse_level(p, level + 1);
    for (;;) {
        const binop *hit = NULL;
        for (int i = 0; i < 5 && levels[level][i].tok; i++)
            if (is_op(p, levels[level][i].tok)) hit = &levels[level][i];
        if (!hit) return n;
        chat_token *t = chat_pnext(p);
        chat_node *b = chat_pnode(p, E_BIN, t);
        b->op = (uint8_t)hit->op;
        b->a = n;
        b->b = parse_level(p, level + 1);
        n = b;
    }
}

static const binop cmp_ops[] = {{"==", OP_EQ}, {"!=", OP_NE}, {"<", OP_LT},
                                {"<=", OP_LE}, {">", OP_GT},  {">=", OP_GE}};

static chat_node *parse_compare(chat_parser *p) {
    chat_token *t0 = chat_pcur(p);
    chat_node *first = parse_level(p, 0);
    chat_nvec a = {0};
    uint8_t ops[64];
    for (;;) {
        int op = -1;
        for (size_t i = 0; i < sizeof cmp_ops / sizeof cmp_ops[0]; i++)
            if (is_op(p, cmp_ops[i].tok)) op = cmp_ops[i].op;
        if (op >= 0) {
            chat_pnext(p);
        } else if (is_name(p, "in")) {
            chat_pnext(p);
            op = OP_IN;
        } else if (is_name(p, "not") && chat_tok_is(&p->toks[p->pos + 1], T_NAME, "in")) {
            p->pos += 2;
            op = OP_NOTIN;
        } else {
            break;
        }
        if (a.n >= 63) chat_parse_fail(p, t0->line, t0->col, "comparison chain too long");
        if (!a.n) chat_nvec_push(p, &a, first, NULL);
        ops[a.n - 1] = (uint8_t)op;
        chat_nvec_push(p, &a, parse_level(p, 0), NULL);
    }
    if (!a.n) return first;
    chat_node *n = chat_pnode(p, E_CMP, t0);
    n->kids = a.v;
    n->n_kids = a.n;
    n->ops = chat_parse_alloc(p, (size_t)a.n);
    memcpy(n->ops, ops, (size_t)a.n - 1);
    return n;
}

static chat_node *parse_not(chat_parser *p) {
    if (is_name(p, "not")) {
        chat_token *t = chat_pnext(p);
        chat_penter(p);
        chat_node *n = chat_pnode(p, E_NOT, t);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static chat_node *parse_and(chat_parser *p) {
    chat_node *n = parse_not(p);
    while (is_name(p, "and")) {
        chat_token *t = chat_pnext(p);
        chat_node *b = chat_pnode(p, E_AND, t);
        b->a = n;
        b->b = parse_not(p);
        n = b;
    }
    return n;
}

chat_node *chat_parse_or(chat_parser *p) {
    chat_node *n = parse_and(p);
    while (is_name(p, "or")) {
        chat_token *t = chat_pnext(p);
        chat_node *b = chat_pnode(p, E_OR, t);
        b->a = n;
        b->b = parse_and(p);
        n = b;
    }
    return n;
}

/* `x if c else y` (else optional: undefined). */
chat_node *chat_parse_expr(chat_parser *p) {
    chat_penter(p);
    chat_node *n = chat_parse_or(p);
    while (is_name(p, "if")) {
        chat_token *t = chat_pnext(p);
        chat_node *c = chat_pnode(p, E_COND, t);
        c->a = n;
        c->b = chat_parse_or(p);
        if (is_name(p, "else")) {
            chat_pnext(p);
            c->c = chat_parse_expr(p);
        }
        n = c;
    }
    p->depth--;
    return n;
}

/* An expression, or a bare tuple `a, b` where statements allow it. */
chat_node *chat_parse_tuple(chat_parser *p) {
    chat_token *t = chat_pcur(p);
    chat_node *first = chat_parse_expr(p);
    if (!is_op(p, ",")) return first;
    chat_nvec a = {0};
    chat_nvec_push(p, &a, first, NULL);
    while (is_op(p, ",")) {
        chat_pnext(p);
        chat_nvec_push(p, &a, chat_parse_expr(p), NULL);
    }
    chat_node *n = chat_pnode(p, E_TUPLE, t);
    n->kids = a.v;
    n->n_kids = a.n;
    return n;
}
