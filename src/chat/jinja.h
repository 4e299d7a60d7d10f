/*
 * jinja.h — private to the chat module: the Jinja interpreter behind chat.h.
 *
 * Pipeline: lex.c turns template text into tokens, applying Jinja's whitespace rules
 * (trim_blocks, lstrip_blocks, `-`/`+` markers, one trailing newline dropped); parse_expr.c and
 * parse_stmt.c build an AST; eval_expr.c / eval_stmt.c walk it; value.c holds the value model
 * (Python semantics: truthiness, equality, ordering) and print.c its text forms (str(), repr(),
 * json.dumps); filters.c, filters_seq.c, tests.c, methods.c and globals.c are the tables of
 * callables templates may use, with format.c (printf-style %) and casemap.c beside them;
 * builtin.c holds the built-in families and chat.c the public entry points.
 *
 * Memory: everything lives in a chat_arena. A compiled template owns one (AST, literals); each
 * render owns another, with a byte budget, freed as a whole when the render ends. Values are
 * small structs passed by value that point into an arena; strings are immutable.
 *
 * Errors: parse and runtime errors longjmp to the chat_rt/parser's jmp_buf after filling the
 * caller's shimmy_error. That is safe because nothing is owned outside the arenas except the
 * parser's token array, which chat_template_new frees on both paths.
 *
 * Provenance: a string carries the byte ranges of itself that came from message content;
 * operations that keep bytes (concatenation, slicing, strip) carry the ranges along.
 */
#ifndef SHIMMY_CHAT_JINJA_H
#define SHIMMY_CHAT_JINJA_H

#include "chat/chat.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena ---- */

typedef struct chat_chunk chat_chunk;
typedef struct chat_arena {
    chat_chunk *head;
    size_t used;   /* bytes handed out, all chunks */
    size_t budget; /* 0 = unlimited */
} chat_arena;

void chat_arena_deinit(chat_arena *a);
/* NULL when out of budget or memory. Memory is 16-byte aligned and zeroed. */
void *chat_arena_alloc(chat_arena *a, size_t n);

/* ---- values ---- */

typedef enum chat_vtype {
    CV_UNDEF,
    CV_NONE,
    CV_BOOL,
    CV_INT,
    CV_FLOAT,
    CV_STR,
    CV_LIST, /* also tuples (flag CVF_TUPLE) */
    CV_DICT, /* also namespace() objects (flag CVF_NS) */
    CV_FUNC,
    CV_LOOP
} chat_vtype;

/* CVF_SAFE marks a Markup string (|safe, |escape): `+` with a plain string HTML-escapes the
 * plain one, as Python's Markup.__add__ does even with autoescaping off. */
enum { CVF_TUPLE = 1, CVF_NS = 2, CVF_SAFE = 4 };

typedef struct chat_str chat_str;
typedef struct chat_list chat_list;
typedef struct chat_dict chat_dict;
typedef struct chat_fn chat_fn;
typedef struct chat_loop chat_loop;

typedef struct chat_val {
    uint8_t type;
    uint8_t flags;
    union {
        bool b;
        int64_t i;
        double f;
        const chat_str *s;
        chat_list *l;
        chat_dict *d;
        const chat_fn *fn;
        chat_loop *loop;
        const char *undef_name; /* CV_UNDEF: what was missing, for messages (may be NULL) */
    } u;
} chat_val;

typedef struct chat_range {
    size_t b, e;
} chat_range;

struct chat_str {
    size_t len;
    const char *p; /* NUL-terminated */
    uint32_t n_ranges;
    const chat_range *ranges; /* content provenance, sorted, disjoint */
};

struct chat_list {
    size_t n, cap;
    chat_val *v;
};

struct chat_dict {
    size_t n, cap;
    chat_val *k, *v;
};

/* ---- AST ---- */

typedef enum chat_nkind {
    /* statements */
    N_TEXT,
    N_OUTPUT,
    N_IF,
    N_FOR,
    N_SET,
    N_SET_BLOCK,
    N_MACRO,      /* op: 1 when it reads `caller` (then it takes a `caller` argument) */
    N_CALL_BLOCK, /* a: the call; names/kids/body: the `caller` macro it passes (N_MACRO-like) */
    N_BREAK,
    N_CONTINUE,
    N_FILTER_BLOCK,
    N_DO,
    N_BLOCK, /* a plain body (generation blocks) */
    /* expressions */
    E_LIT,
    E_NAME,
    E_ATTR,
    E_ITEM,
    E_SLICE,
    E_CALL,
    E_FILTER,
    E_TEST,
    E_NOT,
    E_NEG,
    E_POS,
    E_BIN,
    E_CMP,
    E_AND,
    E_OR,
    E_COND,
    E_LIST,
    E_TUPLE,
    E_DICT
} chat_nkind;

typedef enum chat_op {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_CONCAT,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOTIN
} chat_op;

typedef struct chat_node chat_node;
struct chat_node {
    uint8_t kind;
    uint8_t op; /* chat_op; E_TEST: 1 = negated */
    int line, col;
    chat_val lit;     /* E_LIT, N_TEXT */
    const char *name; /* E_NAME, E_ATTR, E_FILTER, E_TEST, N_MACRO, N_SET_BLOCK, N_FILTER_BLOCK */
    chat_node *a, *b, *c;
    chat_node **kids;    /* args, items, dict k/v pairs, slice parts, E_CMP operands */
    const char **knames; /* per kid: keyword name or NULL (calls); macro parameter names */
    uint8_t *ops;        /* E_CMP: n_kids-1 operators */
    int n_kids;
    chat_node **body, **orelse;
    int n_body, n_orelse;
    const char **names; /* for/set targets */
    int n_names;
};

/* ---- compiled template ---- */

struct chat_template {
    chat_arena arena;
    char *source; /* owned copy */
    chat_node **body;
    int n_body;
};

/* ---- lexer ---- */

typedef enum chat_tkind {
    T_TEXT,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_VAR_BEGIN,
    T_VAR_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP, /* op text in s/len */
    T_EOF
} chat_tkind;

typedef struct chat_token {
    uint8_t kind;
    const char *s; /* T_TEXT/T_STRING: decoded bytes (arena); others: into source */
    size_t len;
    int64_t i;
    double f;
    int line, col;
} chat_token;

typedef struct chat_parser {
    chat_arena *arena;
    const char *src;
    chat_token *toks; /* heap (realloc), freed by the caller after parsing */
    size_t n_toks, cap_toks, pos;
    int depth; /* expression/statement nesting */
    int loops; /* enclosing for-loops (break/continue are legal inside) */
    shimmy_error *err;
    jmp_buf jb;
} chat_parser;

/* Both longjmp(p->jb) with SHIMMY_ERR_TEMPLATE filled in on a syntax error. */
void chat_lex(chat_parser *p);
void chat_parse(chat_parser *p, chat_node ***body, int *n_body);
void chat_parse_fail(chat_parser *p, int line, int col, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));
void *chat_parse_alloc(chat_parser *p, size_t n);

/* Parser internals shared by parse_expr.c and parse_stmt.c. */
typedef struct chat_nvec {
    chat_node **v;
    const char **names;
    int n, cap;
} chat_nvec;
chat_token *chat_pcur(chat_parser *p);
chat_token *chat_pnext(chat_parser *p);
bool chat_tok_is(const chat_token *t, int kind, const char *s); /* s NULL: any text */
void chat_pexpect(chat_parser *p, int kind, const char *s, const char *what);
const char *chat_pname(chat_parser *p, const char *what); /* expects a name */
const char *chat_pname_str(chat_parser *p, const chat_token *t);
chat_node *chat_pnode(chat_parser *p, int kind, const chat_token *t);
void chat_nvec_push(chat_parser *p, chat_nvec *a, chat_node *n, const char *name);
void chat_penter(chat_parser *p);            /* nesting guard; callers decrement p->depth */
chat_node *chat_parse_expr(chat_parser *p);  /* with `x if c else y` */
chat_node *chat_parse_or(chat_parser *p);    /* without it (for-loop iterables) */
chat_node *chat_parse_tuple(chat_parser *p); /* an expression or a bare `a, b` tuple */
chat_node *chat_parse_filters(chat_parser *p, chat_node *n); /* `| f(...)` chain */
void chat_parse_args(chat_parser *p, chat_node *call);       /* after '(' up to ')' */

/* ---- runtime ---- */

typedef struct chat_scope chat_scope;
struct chat_scope {
    chat_scope *parent;
    size_t n, cap;
    const char **names;
    chat_val *vals;
};

typedef struct chat_buf {
    char *p;
    size_t len, cap;
    chat_range *r;
    size_t n_r, cap_r;
} chat_buf;

/* Nested evaluations (expressions inside statements inside macro calls) a render may stack up:
 * ~1 MB of C stack at most, so any thread's stack will do. */
#define CHAT_MAX_NESTING 3000

typedef struct chat_rt {
    chat_arena arena;
    const chat_render_params *p;
    shimmy_error *err;
    jmp_buf jb;
    uint64_t steps, max_steps;
    int depth, max_depth;
    int nesting; /* C recursion of eval/exec, bounded by CHAT_MAX_NESTING */
    size_t max_output;
    int line, col;     /* of the node being evaluated, for messages */
    chat_buf *out;     /* where output goes now (macro calls and block sets capture) */
    chat_scope *scope; /* innermost scope */
    chat_scope *globals;
} chat_rt;

typedef struct chat_args {
    int n;
    chat_val *pos;
    int nk;
    const char **kn;
    chat_val *kv;
} chat_args;

typedef chat_val (*chat_call_fn)(chat_rt *rt, chat_val self, const chat_args *a);

struct chat_fn {
    const char *name;
    chat_call_fn call;      /* builtin callable / bound method; NULL for macros */
    chat_val self;          /* bound object of a method */
    const chat_node *macro; /* N_MACRO */
    chat_scope *closure;
};

struct chat_loop {
    chat_list *items;
    size_t i;
    int depth;
};

void chat_fail(chat_rt *rt, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void chat_fail_status(chat_rt *rt, shimmy_status st, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
void *chat_alloc(chat_rt *rt, size_t n); /* fails the render when over budget */

/* Values (value.c). */
static inline chat_val chat_undef(const char *name) {
    chat_val v = {CV_UNDEF, 0, {.undef_name = name}};
    return v;
}
static inline chat_val chat_none(void) {
    return (chat_val){CV_NONE, 0, {.i = 0}};
}
static inline chat_val chat_bool(bool b) {
    return (chat_val){CV_BOOL, 0, {.b = b}};
}
static inline chat_val chat_int(int64_t i) {
    return (chat_val){CV_INT, 0, {.i = i}};
}
static inline chat_val chat_float(double f) {
    return (chat_val){CV_FLOAT, 0, {.f = f}};
}
static inline chat_val chat_strv(const chat_str *s) {
    return (chat_val){CV_STR, 0, {.s = s}};
}

const char *chat_type_name(chat_val v);
bool chat_truthy(chat_val v);
bool chat_equal(chat_val a, chat_val b);
/* <0, 0, >0; fails on incomparable types. */
int chat_compare(chat_rt *rt, chat_val a, chat_val b);

chat_str *chat_str_new(chat_arena *a, const char *p, size_t len); /* copies; NULL on budget */
chat_val chat_str_lit(chat_rt *rt, const char *p, size_t len);    /* copies */
chat_val chat_str_cstr(chat_rt *rt, const char *cstr);
chat_val chat_str_cat(chat_rt *rt, const chat_str *a, const chat_str *b);
/* Bytes [b, e) of s, with provenance kept. */
chat_val chat_str_sub(chat_rt *rt, const chat_str *s, size_t b, size_t e);
/* New text derived from s: content provenance kept only when all of s was content. */
chat_val chat_str_derived(chat_rt *rt, const chat_str *s, const char *p, size_t len);
/* str(v) in Python (repr for the items of containers). */
chat_val chat_to_str(chat_rt *rt, chat_val v);
void chat_write_str(chat_rt *rt, chat_buf *b, chat_val v);  /* Python str() */
void chat_write_repr(chat_rt *rt, chat_buf *b, chat_val v); /* Python repr() */
void chat_write_float(chat_rt *rt, chat_buf *b, double f);  /* Python repr of a float */

chat_list *chat_list_new(chat_rt *rt, size_t cap);
void chat_list_push(chat_rt *rt, chat_list *l, chat_val v);
chat_dict *chat_dict_new(chat_rt *rt, size_t cap);
void chat_dict_set(chat_rt *rt, chat_dict *d, chat_val k, chat_val v);
/* Value of key k or NULL. */
chat_val *chat_dict_get(const chat_dict *d, chat_val k);
chat_val *chat_dict_get_cstr(const chat_dict *d, const char *k);
static inline chat_val chat_listv(chat_list *l) {
    return (chat_val){CV_LIST, 0, {.l = l}};
}
static inline chat_val chat_dictv(chat_dict *d) {
    return (chat_val){CV_DICT, 0, {.d = d}};
}

/* JSON in: strings under a "content" key of a message get content provenance when
 * mark_content. */
chat_val chat_from_json(chat_rt *rt, const json_t *j, bool mark_content);
/* Python json.dumps(v, ensure_ascii=False, indent=indent (<0: none), sort_keys). */
void chat_write_json(chat_rt *rt, chat_buf *b, chat_val v, int indent, bool sort_keys, int level);

/* Output buffers (arena-backed, bounded by max_output). */
void chat_buf_put(chat_rt *rt, chat_buf *b, const char *p, size_t n);
void chat_buf_put_str(chat_rt *rt, chat_buf *b, const chat_str *s); /* with provenance */
/* The buffer's contents as a string, without copying: write no more to b afterwards. */
chat_val chat_buf_to_str(chat_rt *rt, const chat_buf *b);

/* Iteration: lists as is, dict keys, string characters, undefined as empty. */
chat_list *chat_iterable(chat_rt *rt, chat_val v);
size_t chat_utf8_count(const char *p, size_t n);
/* Length of the Python whitespace character (str.isspace) at p[0..n), or 0. */
size_t chat_space_at(const char *p, size_t n);
/* Length of the whitespace character ending at p[n-1], or 0. */
size_t chat_space_before(const char *p, size_t n);

/* Evaluation (eval_*.c). */
chat_val chat_eval(chat_rt *rt, const chat_node *n);
void chat_exec_body(chat_rt *rt, chat_node *const *body, int n); /* in rt->scope */
chat_val chat_call(chat_rt *rt, chat_val callee, const chat_args *a);
/* The arguments of call node n evaluated into a, with room for `extra` more keyword ones. */
void chat_eval_args(chat_rt *rt, const chat_node *n, chat_args *a, int extra);
/* A filter chain whose innermost operand is an expression, or `input` where it is NULL (filter
 * blocks, block sets). */
chat_val chat_eval_filter_chain(chat_rt *rt, const chat_node *n, chat_val input);
chat_val chat_getattr(chat_rt *rt, chat_val obj, const char *name);
chat_val chat_getitem(chat_rt *rt, chat_val obj, chat_val key);
chat_scope *chat_scope_new(chat_rt *rt, chat_scope *parent);
void chat_scope_set(chat_rt *rt, chat_scope *sc, const char *name, chat_val v);
chat_val *chat_scope_find(chat_scope *sc, const char *name);

/* Tables (filters.c, tests.c, methods.c, globals.c). */
typedef chat_val (*chat_filter_fn)(chat_rt *rt, chat_val v, const chat_args *a);
chat_filter_fn chat_filter_find(const char *name);
typedef bool (*chat_test_fn)(chat_rt *rt, chat_val v, const chat_args *a);
chat_test_fn chat_test_find(const char *name);
/* A bound method of a str/dict/list value, or undefined. */
chat_val chat_method_find(chat_rt *rt, chat_val self, const char *name);
/* Global callables (range, dict, namespace, raise_exception, strftime_now). */
chat_val chat_global_find(const char *name);

/* Argument helpers: positional i or keyword name, else NULL. */
const chat_val *chat_arg(const chat_args *a, int i, const char *name);

/* Typed argument access for filters and methods (fail the render on a wrong type). */
static inline const chat_str *chat_want_str(chat_rt *rt, chat_val v) {
    return chat_to_str(rt, v).u.s;
}

static inline int64_t chat_arg_int(chat_rt *rt, const chat_args *a, int i, const char *name,
                                   int64_t def) {
    const chat_val *v = chat_arg(a, i, name);
    if (!v || v->type == CV_NONE) return def;
    if (v->type == CV_INT) return v->u.i;
    if (v->type == CV_BOOL) return v->u.b;
    chat_fail(rt, "argument '%s' must be an integer, not %s", name, chat_type_name(*v));
}

static inline bool chat_arg_bool(const chat_args *a, int i, const char *name, bool def) {
    const chat_val *v = chat_arg(a, i, name);
    return v ? chat_truthy(*v) : def;
}

static inline const chat_str *chat_arg_str(chat_rt *rt, const chat_args *a, int i,
                                           const char *name) {
    const chat_val *v = chat_arg(a, i, name);
    if (!v || v->type == CV_NONE || v->type == CV_UNDEF) return NULL;
    return chat_want_str(rt, *v);
}

/* Filters shared between files (filters.c holds the table). */
chat_val chat_strip(chat_rt *rt, const chat_str *s, const chat_str *chars, bool left, bool right);
chat_val chat_html_escape(chat_rt *rt, const chat_str *s); /* a CVF_SAFE string */
/* Simple case mapping of one code point (casemap.c); cased: has an upper or lower form. */
uint32_t chat_cp_upper(uint32_t cp);
/* upper/lower/title/capitalize of a value's str() (filters.c). */
chat_val chat_map_case(chat_rt *rt, chat_val v, int mode);
uint32_t chat_cp_lower(uint32_t cp);
bool chat_cp_cased(uint32_t cp);
/* fmt % args in Python (args: a tuple for several values, a dict for %(key)s). */
chat_val chat_percent_format(chat_rt *rt, const chat_str *fmt, chat_val args);
chat_val chat_attr_path(chat_rt *rt, chat_val v, const chat_str *path); /* "a.b.0" */
chat_val chat_items_of(chat_rt *rt, chat_val v); /* dict -> list of (key, value) tuples */
#define CHAT_SEQ_FILTERS(X)                                                                        \
    X(join)                                                                                        \
    X(first)                                                                                       \
    X(last)                                                                                        \
    X(items)                                                                                       \
    X(select)                                                                                      \
    X(reject)                                                                                      \
    X(selectattr)                                                                                  \
    X(rejectattr)                                                                                  \
    X(map) X(list) X(unique) X(sort) X(reverse) X(sum) X(min) X(max) X(dictsort) X(batch)
#define CHAT_DECLARE_FILTER(name)                                                                  \
    chat_val chat_f_##name(chat_rt *rt, chat_val v, const chat_args *a);
CHAT_SEQ_FILTERS(CHAT_DECLARE_FILTER)
#undef CHAT_DECLARE_FILTER

#endif
