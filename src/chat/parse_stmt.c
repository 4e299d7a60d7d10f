/* Jinja statement parser: template bodies and the block tags chat templates use (if, for, set,
 * macro, call, filter, break/continue, do, generation). Tags that need files (include, import,
 * extends) are refused: a template is one self-contained text. */
#include "jinja.h"

#include <string.h>

static bool at_op(chat_parser *p, const char *s) {
    return chat_tok_is(chat_pcur(p), T_OP, s);
}
static bool at_name(chat_parser *p, const char *s) {
    return chat_tok_is(chat_pcur(p), T_NAME, s);
}
static void end_tag(chat_parser *p) {
    chat_pexpect(p, T_BLOCK_END, NULL, "'%}'");
}

static void parse_body(chat_parser *p, const char *const *stops, const char *closing,
                       chat_nvec *out, const char **hit);

typedef void (*stmt_fn)(chat_parser *p, const chat_token *t, chat_nvec *out);

/* Parses a body up to one of `stops` and stores it; returns the stop tag's name. */
static const char *body_until(chat_parser *p, const char *const *stops, const char *closing,
                              chat_node ***body, int *n) {
    chat_nvec v = {0};
    const char *hit = NULL;
    parse_body(p, stops, closing, &v, &hit);
    *body = v.v;
    *n = v.n;
    return hit;
}

static void parse_if_rest(chat_parser *p, chat_node *n) {
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    n->a = chat_parse_or(p);
    end_tag(p);
    chat_penter(p);
    const char *hit = body_until(p, stops, "endif", &n->body, &n->n_body);
    if (strcmp(hit, "elif") == 0) {
        chat_node *e = chat_pnode(p, N_IF, chat_pcur(p));
        parse_if_rest(p, e);
        n->orelse = chat_parse_alloc(p, sizeof *n->orelse);
        n->orelse[0] = e;
        n->n_orelse = 1;
    } else if (strcmp(hit, "else") == 0) {
        static const char *const end[] = {"endif", NULL};
        end_tag(p);
        body_until(p, end, "endif", &n->orelse, &n->n_orelse);
        end_tag(p);
    } else {
        end_tag(p);
    }
    p->depth--;
}

static void stmt_if(chat_parser *p, const chat_token *t, chat_nvec *out) {
    chat_node *n = chat_pnode(p, N_IF, t);
    parse_if_rest(p, n);
    chat_nvec_push(p, out, n, NULL);
}

/* Assignment targets: `a` or `a, b` (optionally parenthesised). */
static void parse_targets(chat_parser *p, chat_node *n) {
    bool paren = at_op(p, "(");
    if (paren) chat_pnext(p);
    const char *names[16];
    int k = 0;
    do {
        if (k && at_op(p, ",")) chat_pnext(p);
        if (k == 16) chat_parse_fail(p, n->line, n->col, "too many targets");
        names[k++] = chat_pname(p, "a variable name");
    } while (at_op(p, ","));
    if (paren) chat_pexpect(p, T_OP, ")", "')'");
    n->names = chat_parse_alloc(p, (size_t)k * sizeof *n->names);
    memcpy(n->names, names, (size_t)k * sizeof *names);
    n->n_names = k;
}

static void stmt_for(chat_parser *p, const chat_token *t, chat_nvec *out) {
    static const char *const stops[] = {"else", "endfor", NULL};
    static const char *const end[] = {"endfor", NULL};
    chat_node *n = chat_pnode(p, N_FOR, t);
    parse_targets(p, n);
    chat_pexpect(p, T_NAME, "in", "'in'");
    n->a = chat_parse_or(p);
    if (at_name(p, "if")) {
        chat_pnext(p);
        n->b = chat_parse_expr(p);
    }
    if (at_name(p, "recursive"))
        chat_parse_fail(p, t->line, t->col, "recursive loops are not supported");
    end_tag(p);
    chat_penter(p);
    p->loops++;
    const char *hit = body_until(p, stops, "endfor", &n->body, &n->n_body);
    p->loops--;
    end_tag(p);
    if (strcmp(hit, "else") == 0) {
        body_until(p, end, "endfor", &n->orelse, &n->n_orelse);
        end_tag(p);
    }
    p->depth--;
    chat_nvec_push(p, out, n, NULL);
}

static void stmt_set(chat_parser *p, const chat_token *t, chat_nvec *out) {
    static const char *const end[] = {"endset", NULL};
    chat_node *n;
    if (chat_pcur(p)->kind == T_NAME && chat_tok_is(&p->toks[p->pos + 1], T_OP, ".")) {
        /* namespace attribute: {% set ns.attr = value %} */
        n = chat_pnode(p, N_SET, t);
        n->names = chat_parse_alloc(p, sizeof *n->names);
        n->names[0] = chat_pname(p, "a variable name");
        n->n_names = 1;
        chat_pnext(p);
        n->name = chat_pname(p, "an attribute name");
        chat_pexpect(p, T_OP, "=", "'='");
        n->b = chat_parse_tuple(p);
        end_tag(p);
        chat_nvec_push(p, out, n, NULL);
        return;
    }
    n = chat_pnode(p, N_SET, t);
    parse_targets(p, n);
    if (at_op(p, "=")) {
        chat_pnext(p);
        n->b = chat_parse_tuple(p);
        end_tag(p);
        chat_nvec_push(p, out, n, NULL);
        return;
    }
    if (n->n_names != 1) chat_parse_fail(p, t->line, t->col, "a block set takes one name");
    n->kind = N_SET_BLOCK;
    n->a = chat_parse_filters(p, NULL);
    end_tag(p);
    chat_penter(p);
    body_until(p, end, "endset", &n->body, &n->n_body);
    p->depth--;
    end_tag(p);
    chat_nvec_push(p, out, n, NULL);
}

/* Whether the subtree at n reads the name `caller`: Jinja gives a macro its `caller` argument
 * (the body of a {% call %} block) only then. */
static bool reads_caller(const chat_node *n) {
    if (!n) return false;
    if (n->kind == E_NAME && strcmp(n->name, "caller") == 0) return true;
    if (reads_caller(n->a) || reads_caller(n->b) || reads_caller(n->c)) return true;
    for (int i = 0; i < n->n_kids; i++)
        if (reads_caller(n->kids[i])) return true;
    for (int i = 0; i < n->n_body; i++)
        if (reads_caller(n->body[i])) return true;
    for (int i = 0; i < n->n_orelse; i++)
        if (reads_caller(n->orelse[i])) return true;
    return false;
}

/* `(a, b=default, ...)` after the '(' of a macro or call block, up to and including ')'. */
static void parse_params(chat_parser *p, const chat_token *t, chat_node *n) {
    chat_nvec params = {0};
    bool seen_default = false;
    while (!at_op(p, ")")) {
        if (params.n) chat_pexpect(p, T_OP, ",", "',' or ')'");
        if (at_op(p, ")")) break;
        const char *name = chat_pname(p, "a parameter name");
        chat_node *def = NULL;
        if (at_op(p, "=")) {
            chat_pnext(p);
            def = chat_parse_expr(p);
            seen_default = true;
        } else if (seen_default) {
            chat_parse_fail(p, t->line, t->col,
                            "parameter '%s' without a default follows one with a default", name);
        }
        chat_nvec_push(p, &params, def, name);
    }
    chat_pnext(p);
    n->kids = params.v;
    n->names = params.names;
    n->n_kids = n->n_names = params.n;
}

/* A macro's body is its own function: loop controls of an enclosing loop are not legal in it. */
static void parse_fn_body(chat_parser *p, chat_node *n, const char *closing) {
    const char *const end[] = {closing, NULL};
    int loops = p->loops;
    p->loops = 0;
    chat_penter(p);
    body_until(p, end, closing, &n->body, &n->n_body);
    p->depth--;
    p->loops = loops;
}

static void stmt_macro(chat_parser *p, const chat_token *t, chat_nvec *out) {
    chat_node *n = chat_pnode(p, N_MACRO, t);
    n->name = chat_pname(p, "a macro name");
    chat_pexpect(p, T_OP, "(", "'(' after the macro name");
    parse_params(p, t, n);
    end_tag(p);
    parse_fn_body(p, n, "endmacro");
    n->op = reads_caller(n);                         /* its defaults and body */
    if (chat_pcur(p)->kind == T_NAME) chat_pnext(p); /* `{% endmacro name %}` */
    end_tag(p);
    chat_nvec_push(p, out, n, NULL);
}

/* {% call [(params)] macro(args) %}body{% endcall %}: the macro called with `caller`, a macro
 * whose body is the block's (rendered in the caller's scope with the params bound). */
static void stmt_call(chat_parser *p, const chat_token *t, chat_nvec *out) {
    chat_node *n = chat_pnode(p, N_CALL_BLOCK, t);
    n->name = "caller";
    if (at_op(p, "(")) {
        chat_pnext(p);
        parse_params(p, t, n);
    }
    n->a = chat_parse_expr(p);
    if (n->a->kind != E_CALL)
        chat_parse_fail(p, t->line, t->col, "'call' needs a call expression, e.g. m(x)");
    end_tag(p);
    parse_fn_body(p, n, "endcall");
    n->op = reads_caller(n); /* as for a macro: a `caller` of its own when its body reads one */
    end_tag(p);
    chat_nvec_push(p, out, n, NULL);
}

static void stmt_filter(chat_parser *p, const chat_token *t, chat_nvec *out) {
    static const char *const end[] = {"endfilter", NULL};
    chat_node *n = chat_pnode(p, N_FILTER_BLOCK, t);
    chat_node *f = chat_pnode(p, E_FILTER, chat_pcur(p));
    f->name = chat_pname(p, "a filter name");
    if (!chat_filter_find(f->name))
        chat_parse_fail(p, f->line, f->col, "no filter named '%s'", f->name);
    if (at_op(p, "(")) {
        chat_pnext(p);
        chat_parse_args(p, f);
    }
    n->a = chat_parse_filters(p, f);
    end_tag(p);
    chat_penter(p);
    body_until(p, end, "endfilter", &n->body, &n->n_body);
    p->depth--;
    end_tag(p);
    chat_nvec_push(p, out, n, NULL);
}

static void stmt_loopctl(chat_parser *p, const chat_token *t, chat_nvec *out) {
    bool brk = chat_tok_is(t, T_NAME, "break");
    if (!p->loops)
        chat_parse_fail(p, t->line, t->col, "'%s' outside of a for loop",
                        brk ? "break" : "continue");
    end_tag(p);
    chat_nvec_push(p, out, chat_pnode(p, brk ? N_BREAK : N_CONTINUE, t), NULL);
}

static void stmt_do(chat_parser *p, const chat_token *t, chat_nvec *out) {
    chat_node *n = chat_pnode(p, N_DO, t);
    n->a = chat_parse_tuple(p);
    end_tag(p);
    chat_nvec_push(p, out, n, NULL);
}

/* {% generation %}: transformers' marker of assistant text; renders its body unchanged. */
static void stmt_generation(chat_parser *p, const chat_token *t, chat_nvec *out) {
    static const char *const end[] = {"endgeneration", NULL};
    chat_node *n = chat_pnode(p, N_BLOCK, t);
    end_tag(p);
    chat_penter(p);
    body_until(p, end, "endgeneration", &n->body, &n->n_body);
    p->depth--;
    end_tag(p);
    chat_nvec_push(p, out, n, NULL);
}

static const struct {
    const char *name;
    stmt_fn fn;
} stmts[] = {
    {"if", stmt_if},         {"for", stmt_for},
    {"set", stmt_set},       {"macro", stmt_macro},
    {"call", stmt_call},     {"filter", stmt_filter},
    {"break", stmt_loopctl}, {"continue", stmt_loopctl},
    {"do", stmt_do},         {"generation", stmt_generation},
};

static void parse_body(chat_parser *p, const char *const *stops, const char *closing,
                       chat_nvec *out, const char **hit) {
    for (;;) {
        chat_token *t = chat_pcur(p);
        if (t->kind == T_EOF) {
            if (stops)
                chat_parse_fail(p, t->line, t->col, "missing '{%% %s %%}' before the end", closing);
            return;
        }
        if (t->kind == T_TEXT) {
            chat_pnext(p);
            chat_node *n = chat_pnode(p, N_TEXT, t);
            chat_str *s = chat_str_new(p->arena, t->s, t->len);
            if (!s) chat_parse_fail(p, t->line, t->col, "out of memory");
            n->lit = chat_strv(s);
            chat_nvec_push(p, out, n, NULL);
            continue;
        }
        if (t->kind == T_VAR_BEGIN) {
            chat_pnext(p);
            chat_node *n = chat_pnode(p, N_OUTPUT, t);
            n->a = chat_parse_tuple(p);
            chat_pexpect(p, T_VAR_END, NULL, "'}}'");
            chat_nvec_push(p, out, n, NULL);
            continue;
        }
        if (t->kind != T_BLOCK_BEGIN) chat_parse_fail(p, t->line, t->col, "unexpected token");
        chat_token *kw = &p->toks[p->pos + 1];
        if (kw->kind != T_NAME) chat_parse_fail(p, kw->line, kw->col, "expected a tag name");
        for (int i = 0; stops && stops[i]; i++)
            if (chat_tok_is(kw, T_NAME, stops[i])) {
                p->pos += 2;
                *hit = stops[i];
                return;
            }
        p->pos += 2;
        bool found = false;
        for (size_t i = 0; i < sizeof stmts / sizeof stmts[0] && !found; i++)
            if (chat_tok_is(kw, T_NAME, stmts[i].name)) {
                stmts[i].fn(p, kw, out);
                found = true;
            }
        if (found) continue;
        const char *name = chat_pname_str(p, kw);
        static const char *const nofile[] = {"include", "import", "from", "extends", "block"};
        for (size_t i = 0; i < sizeof nofile / sizeof nofile[0]; i++)
            if (strcmp(name, nofile[i]) == 0)
                chat_parse_fail(p, kw->line, kw->col,
                                "'%s' is not supported: a chat template cannot load other files",
                                name);
        if (closing)
            chat_parse_fail(p, kw->line, kw->col,
                            "unexpected '%s' (the innermost open block needs '%s')", name, closing);
        chat_parse_fail(p, kw->line, kw->col, "unknown tag '%s'", name);
    }
}

void chat_parse(chat_parser *p, chat_node ***body, int *n_body) {
    chat_lex(p);
    chat_nvec v = {0};
    parse_body(p, NULL, NULL, &v, NULL);
    *body = v.v;
    *n_body = v.n;
}
