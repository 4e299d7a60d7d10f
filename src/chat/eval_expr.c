/* Expression evaluation: names, attribute and item access (Jinja's getattr/getitem fallbacks),
 * slicing, calls, filters, tests and Python arithmetic. Every node costs one step. */
#include "jinja.h"

#include <math.h>
#include <string.h>

static void step(chat_rt *rt, const chat_node *n) {
    if (++rt->steps > rt->max_steps)
        chat_fail(rt, "the template ran for more than %llu steps (a runaway loop?)",
                  (unsigned long long)rt->max_steps);
    rt->line = n->line;
    rt->col = n->col;
}

__attribute__((noreturn)) static void fail_undef(chat_rt *rt, chat_val v) {
    chat_fail(rt, "'%s' is undefined", v.u.undef_name ? v.u.undef_name : "value");
}

/* ---- scopes ---- */

chat_scope *chat_scope_new(chat_rt *rt, chat_scope *parent) {
    chat_scope *s = chat_alloc(rt, sizeof *s);
    s->parent = parent;
    return s;
}

void chat_scope_set(chat_rt *rt, chat_scope *sc, const char *name, chat_val v) {
    for (size_t i = 0; i < sc->n; i++)
        if (sc->names[i] == name || strcmp(sc->names[i], name) == 0) {
            sc->vals[i] = v;
            return;
        }
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 8;
        const char **nn = chat_alloc(rt, cap * sizeof *nn);
        chat_val *nv = chat_alloc(rt, cap * sizeof *nv);
        if (sc->n) {
            memcpy(nn, sc->names, sc->n * sizeof *nn);
            memcpy(nv, sc->vals, sc->n * sizeof *nv);
        }
        sc->names = nn;
        sc->vals = nv;
        sc->cap = cap;
    }
    sc->names[sc->n] = name;
    sc->vals[sc->n++] = v;
}

chat_val *chat_scope_find(chat_scope *sc, const char *name) {
    for (; sc; sc = sc->parent)
        for (size_t i = 0; i < sc->n; i++)
            if (sc->names[i] == name || strcmp(sc->names[i], name) == 0) return &sc->vals[i];
    return NULL;
}

/* ---- attribute and item access ---- */

static chat_val loop_attr(chat_rt *rt, chat_loop *l, const char *name) {
    int64_t n = (int64_t)l->items->n, i = (int64_t)l->i;
    if (strcmp(name, "index0") == 0) return chat_int(i);
    if (strcmp(name, "index") == 0) return chat_int(i + 1);
    if (strcmp(name, "revindex0") == 0) return chat_int(n - i - 1);
    if (strcmp(name, "revindex") == 0) return chat_int(n - i);
    if (strcmp(name, "first") == 0) return chat_bool(i == 0);
    if (strcmp(name, "last") == 0) return chat_bool(i == n - 1);
    if (strcmp(name, "length") == 0) return chat_int(n);
    if (strcmp(name, "depth") == 0) return chat_int(l->depth);
    if (strcmp(name, "depth0") == 0) return chat_int(l->depth - 1);
    if (strcmp(name, "previtem") == 0) return i > 0 ? l->items->v[i - 1] : chat_undef("previtem");
    if (strcmp(name, "nextitem") == 0)
        return i + 1 < n ? l->items->v[i + 1] : chat_undef("nextitem");
    (void)rt;
    return chat_undef(name);
}

chat_val chat_getattr(chat_rt *rt, chat_val obj, const char *name) {
    switch ((chat_vtype)obj.type) {
    case CV_UNDEF: fail_undef(rt, obj);
    case CV_DICT:
        if (!(obj.flags & CVF_NS)) {
            /* Jinja tries Python attributes first: dict methods shadow keys of the same name */
            chat_val m = chat_method_find(rt, obj, name);
            if (m.type != CV_UNDEF) return m;
        }
        {
            chat_val *v = chat_dict_get_cstr(obj.u.d, name);
            return v ? *v : chat_undef(name);
        }
    case CV_LOOP: {
        if (strcmp(name, "cycle") == 0) return chat_method_find(rt, obj, name);
        return loop_attr(rt, obj.u.loop, name);
    }
    case CV_STR:
    case CV_LIST: return chat_method_find(rt, obj, name);
    default: return chat_undef(name);
    }
}

/* Python index normalisation: false when out of range. */
static bool norm_index(int64_t i, size_t n, size_t *out) {
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return false;
    *out = (size_t)i;
    return true;
}

/* Byte offset of code point k of s (k <= count). */
static size_t cp_offset(const chat_str *s, size_t k) {
    size_t i = 0;
    while (k && i < s->len) {
        i++;
        while (i < s->len && ((unsigned char)s->p[i] & 0xC0) == 0x80) i++;
        k--;
    }
    return i;
}

chat_val chat_getitem(chat_rt *rt, chat_val obj, chat_val key) {
    bool int_key = key.type == CV_INT || key.type == CV_BOOL;
    int64_t ik = key.type == CV_INT ? key.u.i : key.type == CV_BOOL ? key.u.b : 0;
    switch ((chat_vtype)obj.type) {
    case CV_UNDEF: fail_undef(rt, obj);
    case CV_DICT: {
        chat_val *v = chat_dict_get(obj.u.d, key);
        if (v) return *v;
        if (key.type == CV_STR && !(obj.flags & CVF_NS))
            return chat_method_find(rt, obj, key.u.s->p);
        return chat_undef(key.type == CV_STR ? key.u.s->p : "item");
    }
    case CV_LIST: {
        size_t i;
        if (int_key && norm_index(ik, obj.u.l->n, &i)) return obj.u.l->v[i];
        if (key.type == CV_STR) return chat_method_find(rt, obj, key.u.s->p);
        return chat_undef("list index out of range");
    }
    case CV_STR: {
        size_t n = chat_utf8_count(obj.u.s->p, obj.u.s->len), i;
        if (int_key && norm_index(ik, n, &i)) {
            size_t b = cp_offset(obj.u.s, i), e = cp_offset(obj.u.s, i + 1);
            return chat_str_sub(rt, obj.u.s, b, e);
        }
        if (key.type == CV_STR) return chat_method_find(rt, obj, key.u.s->p);
        return chat_undef("string index out of range");
    }
    case CV_LOOP:
        if (key.type == CV_STR) return chat_getattr(rt, obj, key.u.s->p);
        return chat_undef("item");
    default: return chat_undef("item");
    }
}

static int64_t slice_part(chat_rt *rt, const chat_node *n, bool *given) {
    *given = false;
    if (!n) return 0;
    chat_val v = chat_eval(rt, n);
    if (v.type == CV_NONE || v.type == CV_UNDEF) return 0;
    if (v.type != CV_INT && v.type != CV_BOOL) chat_fail(rt, "slice indices must be integers");
    *given = true;
    return v.type == CV_INT ? v.u.i : v.u.b;
}

static chat_val eval_slice(chat_rt *rt, const chat_node *n) {
    chat_val obj = chat_eval(rt, n->a);
    bool g0, g1, g2;
    int64_t start = slice_part(rt, n->kids[0], &g0), stop = slice_part(rt, n->kids[1], &g1);
    int64_t stp = slice_part(rt, n->kids[2], &g2);
    if (!g2) stp = 1;
    if (stp == 0) chat_fail(rt, "slice step cannot be zero");
    if (obj.type == CV_UNDEF) fail_undef(rt, obj);
    if (obj.type != CV_LIST && obj.type != CV_STR)
        chat_fail(rt, "'%s' object is not subscriptable", chat_type_name(obj));
    bool is_str = obj.type == CV_STR;
    int64_t len = is_str ? (int64_t)chat_utf8_count(obj.u.s->p, obj.u.s->len) : (int64_t)obj.u.l->n;
    if (stp > 0) {
        if (!g0)
            start = 0;
        else if (start < 0)
            start = start + len < 0 ? 0 : start + len;
        else if (start > len)
            start = len;
        if (!g1)
            stop = len;
        else if (stop < 0)
            stop = stop + len < 0 ? 0 : stop + len;
        else if (stop > len)
            stop = len;
    } else {
        if (!g0)
            start = len - 1;
        else if (start < 0)
            start = start + len < -1 ? -1 : start + len;
        else if (start >= len)
            start = len - 1;
        if (!g1)
            stop = -1;
        else if (stop < 0)
            stop = stop + len < -1 ? -1 : stop + len;
        else if (stop >= len)
            stop = len - 1;
    }
    if (is_str && stp == 1) {
        if (stop < start) stop = start;
        return chat_str_sub(rt, obj.u.s, cp_offset(obj.u.s, (size_t)start),
                            cp_offset(obj.u.s, (size_t)stop));
    }
    chat_list *src = is_str ? chat_iterable(rt, obj) : obj.u.l;
    chat_list *out = chat_list_new(rt, 0);
    for (int64_t i = start; stp > 0 ? i < stop : i > stop; i += stp)
        chat_list_push(rt, out, src->v[i]);
    if (!is_str) {
        chat_val r = chat_listv(out);
        r.flags = obj.flags & CVF_TUPLE;
        return r;
    }
    chat_buf b = {0};
    for (size_t i = 0; i < out->n; i++) chat_buf_put_str(rt, &b, out->v[i].u.s);
    return chat_buf_to_str(rt, &b);
}

/* ---- calls ---- */

void chat_eval_args(chat_rt *rt, const chat_node *n, chat_args *a, int extra) {
    memset(a, 0, sizeof *a);
    if (!n->n_kids && !extra) return;
    a->pos = chat_alloc(rt, (size_t)(n->n_kids + extra) * sizeof *a->pos);
    a->kv = chat_alloc(rt, (size_t)(n->n_kids + extra) * sizeof *a->kv);
    a->kn = chat_alloc(rt, (size_t)(n->n_kids + extra) * sizeof *a->kn);
    for (int i = 0; i < n->n_kids; i++) {
        chat_val v = chat_eval(rt, n->kids[i]);
        if (n->knames && n->knames[i]) {
            a->kn[a->nk] = n->knames[i];
            a->kv[a->nk++] = v;
        } else {
            a->pos[a->n++] = v;
        }
    }
}

static chat_val call_macro(chat_rt *rt, const chat_fn *fn, const chat_args *a) {
    const chat_node *m = fn->macro;
    if (rt->depth >= rt->max_depth)
        chat_fail(rt, "macro calls nested deeper than %d levels (runaway recursion?)",
                  rt->max_depth);
    if (a->n > m->n_names)
        chat_fail(rt, "macro '%s' takes not more than %d argument(s)", m->name, m->n_names);
    const chat_val *caller = NULL; /* a macro that reads `caller` takes it as a keyword */
    for (int k = 0; k < a->nk; k++) {
        bool known = m->op && strcmp(a->kn[k], "caller") == 0;
        if (known) caller = &a->kv[k];
        for (int i = 0; i < m->n_names && !known; i++) known = strcmp(m->names[i], a->kn[k]) == 0;
        if (!known) chat_fail(rt, "macro '%s' takes no keyword argument '%s'", m->name, a->kn[k]);
    }
    chat_scope *sc = chat_scope_new(rt, fn->closure), *saved_scope = rt->scope;
    chat_buf buf = {0}, *saved_out = rt->out;
    rt->scope = sc;
    for (int i = 0; i < m->n_names; i++) {
        const chat_val *v = chat_arg(a, i, m->names[i]);
        chat_val val = v ? *v : m->kids[i] ? chat_eval(rt, m->kids[i]) : chat_undef(m->names[i]);
        chat_scope_set(rt, sc, m->names[i], val);
    }
    if (m->op) chat_scope_set(rt, sc, "caller", caller ? *caller : chat_undef("caller"));
    rt->depth++;
    rt->out = &buf;
    chat_exec_body(rt, m->body, m->n_body);
    rt->out = saved_out;
    rt->scope = saved_scope;
    rt->depth--;
    return chat_buf_to_str(rt, &buf);
}

chat_val chat_call(chat_rt *rt, chat_val callee, const chat_args *a) {
    if (callee.type == CV_UNDEF) fail_undef(rt, callee);
    if (callee.type != CV_FUNC)
        chat_fail(rt, "'%s' object is not callable", chat_type_name(callee));
    if (callee.u.fn->macro) return call_macro(rt, callee.u.fn, a);
    return callee.u.fn->call(rt, callee.u.fn->self, a);
}

/* ---- operators ---- */

static bool num(chat_val v) {
    return v.type == CV_INT || v.type == CV_FLOAT || v.type == CV_BOOL;
}
static bool intlike(chat_val v) {
    return v.type == CV_INT || v.type == CV_BOOL;
}
static int64_t ival(chat_val v) {
    return v.type == CV_INT ? v.u.i : v.type == CV_BOOL ? (int64_t)v.u.b : 0;
}
static double fval(chat_val v) {
    return v.type == CV_FLOAT ? v.u.f : (double)ival(v);
}

static const char *op_names[] = {"+", "-", "*", "/", "//", "%", "**", "~"};

static void bad_operands(chat_rt *rt, int op, chat_val a, chat_val b) {
    if (a.type == CV_UNDEF) fail_undef(rt, a);
    if (b.type == CV_UNDEF) fail_undef(rt, b);
    chat_fail(rt, "unsupported operand type(s) for %s: '%s' and '%s'", op_names[op],
              chat_type_name(a), chat_type_name(b));
}

static chat_val repeat(chat_rt *rt, chat_val seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.type == CV_STR) {
        size_t len = seq.u.s->len;
        if (len && (uint64_t)times > rt->max_output / len)
            chat_fail(rt, "string repetition would exceed the output limit of %zu bytes",
                      rt->max_output);
        if (times == 1) return seq;
        /* one exact allocation, provenance repeated along */
        chat_buf b = {0};
        b.cap = len * (size_t)times + 1;
        b.p = chat_alloc(rt, b.cap);
        for (int64_t i = 0; i < times; i++) chat_buf_put_str(rt, &b, seq.u.s);
        return chat_buf_to_str(rt, &b);
    }
    size_t n = seq.u.l->n;
    if (n && (uint64_t)times > (rt->arena.budget / sizeof(chat_val)) / n)
        chat_fail(rt, "list repetition would exceed the memory budget");
    chat_list *l = chat_list_new(rt, n * (size_t)times);
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < n; k++) l->v[l->n++] = seq.u.l->v[k];
    return chat_listv(l);
}

static chat_val arith(chat_rt *rt, int op, chat_val a, chat_val b) {
    int64_t r;
    if (op == OP_CONCAT) {
        chat_val x = chat_to_str(rt, a), y = chat_to_str(rt, b);
        return chat_str_cat(rt, x.u.s, y.u.s);
    }
    if (num(a) && num(b)) {
        bool ints = intlike(a) && intlike(b);
        int64_t x = ival(a), y = ival(b);
        double fx = fval(a), fy = fval(b);
        switch (op) {
        case OP_ADD:
            if (!ints) return chat_float(fx + fy);
            if (__builtin_add_overflow(x, y, &r)) chat_fail(rt, "integer overflow");
            return chat_int(r);
        case OP_SUB:
            if (!ints) return chat_float(fx - fy);
            if (__builtin_sub_overflow(x, y, &r)) chat_fail(rt, "integer overflow");
            return chat_int(r);
        case OP_MUL:
            if (!ints) return chat_float(fx * fy);
            if (__builtin_mul_overflow(x, y, &r)) chat_fail(rt, "integer overflow");
            return chat_int(r);
        case OP_DIV:
            if (fy == 0.0) chat_fail(rt, "division by zero");
            return chat_float(fx / fy);
        case OP_FLOORDIV:
        case OP_MOD:
            if (ints) {
                if (y == 0) chat_fail(rt, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) chat_fail(rt, "integer overflow");
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                return chat_int(op == OP_MOD ? m : q);
            }
            if (fy == 0.0) chat_fail(rt, "float division by zero");
            if (op == OP_FLOORDIV) return chat_float(floor(fx / fy));
            {
                double m = fmod(fx, fy);
                if (m != 0.0 && ((m < 0) != (fy < 0))) m += fy;
                return chat_float(m);
            }
        case OP_POW:
            if (ints && y >= 0) {
                int64_t acc = 1;
                for (int64_t i = 0; i < y; i++) {
                    if (__builtin_mul_overflow(acc, x, &acc)) chat_fail(rt, "integer overflow");
                    if (acc == 0 || acc == 1) break;
                }
                return chat_int(acc);
            }
            if (fx == 0.0 && fy < 0) chat_fail(rt, "0.0 cannot be raised to a negative power");
            return chat_float(pow(fx, fy));
        }
    }
    if (op == OP_MOD && a.type == CV_STR) return chat_percent_format(rt, a.u.s, b);
    if (op == OP_ADD && a.type == CV_STR && b.type == CV_STR) {
        bool sa = a.flags & CVF_SAFE, sb = b.flags & CVF_SAFE;
        if (sa != sb) {
            if (!sa) a = chat_html_escape(rt, a.u.s);
            if (!sb) b = chat_html_escape(rt, b.u.s);
        }
        chat_val cat = chat_str_cat(rt, a.u.s, b.u.s);
        cat.flags = (sa || sb) ? CVF_SAFE : 0;
        return cat;
    }
    if (op == OP_ADD && a.type == CV_LIST && b.type == CV_LIST &&
        (a.flags & CVF_TUPLE) == (b.flags & CVF_TUPLE)) {
        chat_list *l = chat_list_new(rt, a.u.l->n + b.u.l->n);
        if (a.u.l->n) memcpy(l->v, a.u.l->v, a.u.l->n * sizeof *l->v);
        if (b.u.l->n) memcpy(l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof *l->v);
        l->n = a.u.l->n + b.u.l->n;
        chat_val v = chat_listv(l);
        v.flags = a.flags & CVF_TUPLE;
        return v;
    }
    if (op == OP_MUL && (a.type == CV_STR || a.type == CV_LIST) && intlike(b))
        return repeat(rt, a, ival(b));
    if (op == OP_MUL && (b.type == CV_STR || b.type == CV_LIST) && intlike(a))
        return repeat(rt, b, ival(a));
    bad_operands(rt, op, a, b);
    return chat_none();
}

static bool contains(chat_rt *rt, chat_val needle, chat_val hay) {
    switch ((chat_vtype)hay.type) {
    case CV_STR:
        if (needle.type != CV_STR)
            chat_fail(rt, "'in <string>' requires string as left operand, not %s",
                      chat_type_name(needle));
        if (!needle.u.s->len) return true;
        return memmem(hay.u.s->p, hay.u.s->len, needle.u.s->p, needle.u.s->len) != NULL;
    case CV_LIST:
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (chat_equal(hay.u.l->v[i], needle)) return true;
        return false;
    case CV_DICT:
        if (needle.type == CV_LIST && !(needle.flags & CVF_TUPLE))
            chat_fail(rt, "unhashable type: 'list'");
        if (needle.type == CV_DICT) chat_fail(rt, "unhashable type: 'dict'");
        return chat_dict_get(hay.u.d, needle) != NULL;
    case CV_UNDEF: return false;
    default: chat_fail(rt, "argument of type '%s' is not iterable", chat_type_name(hay));
    }
}

static bool compare(chat_rt *rt, int op, chat_val a, chat_val b) {
    switch (op) {
    case OP_EQ: return chat_equal(a, b);
    case OP_NE: return !chat_equal(a, b);
    case OP_LT: return chat_compare(rt, a, b) < 0;
    case OP_LE: return chat_compare(rt, a, b) <= 0;
    case OP_GT: return chat_compare(rt, a, b) > 0;
    case OP_GE: return chat_compare(rt, a, b) >= 0;
    case OP_IN: return contains(rt, a, b);
    default: return !contains(rt, a, b);
    }
}

/* A filter chain whose innermost operand is either an expression or (NULL) `input`. */
chat_val chat_eval_filter_chain(chat_rt *rt, const chat_node *n, chat_val input) {
    if (n->kind != E_FILTER) return chat_eval(rt, n);
    if (n->a) input = chat_eval_filter_chain(rt, n->a, input);
    chat_args a;
    chat_eval_args(rt, n, &a, 0);
    step(rt, n);
    return chat_filter_find(n->name)(rt, input, &a);
}

static chat_val seq_literal(chat_rt *rt, const chat_node *n, bool tuple) {
    chat_list *l = chat_list_new(rt, (size_t)n->n_kids);
    for (int i = 0; i < n->n_kids; i++) l->v[l->n++] = chat_eval(rt, n->kids[i]);
    chat_val v = chat_listv(l);
    if (tuple) v.flags = CVF_TUPLE;
    return v;
}

static chat_val eval_node(chat_rt *rt, const chat_node *n) {
    step(rt, n);
    switch ((chat_nkind)n->kind) {
    case E_LIT: return n->lit;
    case E_NAME: {
        chat_val *v = chat_scope_find(rt->scope, n->name);
        if (v) return *v;
        chat_val g = chat_global_find(n->name);
        return g.type != CV_UNDEF ? g : chat_undef(n->name);
    }
    case E_ATTR: {
        chat_val obj = chat_eval(rt, n->a);
        rt->line = n->line;
        rt->col = n->col;
        return chat_getattr(rt, obj, n->name);
    }
    case E_ITEM: {
        chat_val obj = chat_eval(rt, n->a), key = chat_eval(rt, n->b);
        rt->line = n->line;
        rt->col = n->col;
        return chat_getitem(rt, obj, key);
    }
    case E_SLICE: return eval_slice(rt, n);
    case E_CALL: {
        chat_val callee = chat_eval(rt, n->a);
        chat_args a;
        chat_eval_args(rt, n, &a, 0);
        rt->line = n->line;
        rt->col = n->col;
        return chat_call(rt, callee, &a);
    }
    case E_FILTER: return chat_eval_filter_chain(rt, n, chat_undef(NULL));
    case E_TEST: {
        chat_val v = chat_eval(rt, n->a);
        chat_args a;
        chat_eval_args(rt, n, &a, 0);
        rt->line = n->line;
        rt->col = n->col;
        bool r = chat_test_find(n->name)(rt, v, &a);
        return chat_bool(n->op ? !r : r);
    }
    case E_NOT: return chat_bool(!chat_truthy(chat_eval(rt, n->a)));
    case E_NEG:
    case E_POS: {
        chat_val v = chat_eval(rt, n->a);
        if (v.type == CV_UNDEF) fail_undef(rt, v);
        if (!num(v))
            chat_fail(rt, "bad operand type for unary %s: '%s'", n->kind == E_NEG ? "-" : "+",
                      chat_type_name(v));
        if (n->kind == E_POS) return v.type == CV_BOOL ? chat_int(v.u.b) : v;
        if (v.type == CV_FLOAT) return chat_float(-v.u.f);
        if (ival(v) == INT64_MIN) chat_fail(rt, "integer overflow");
        return chat_int(-ival(v));
    }
    case E_BIN: {
        chat_val a = chat_eval(rt, n->a), b = chat_eval(rt, n->b);
        rt->line = n->line;
        rt->col = n->col;
        return arith(rt, n->op, a, b);
    }
    case E_CMP: {
        chat_val left = chat_eval(rt, n->kids[0]);
        for (int i = 1; i < n->n_kids; i++) {
            chat_val right = chat_eval(rt, n->kids[i]);
            rt->line = n->line;
            rt->col = n->col;
            if (!compare(rt, n->ops[i - 1], left, right)) return chat_bool(false);
            left = right;
        }
        return chat_bool(true);
    }
    case E_AND: {
        chat_val a = chat_eval(rt, n->a);
        return chat_truthy(a) ? chat_eval(rt, n->b) : a;
    }
    case E_OR: {
        chat_val a = chat_eval(rt, n->a);
        return chat_truthy(a) ? a : chat_eval(rt, n->b);
    }
    case E_COND:
        if (chat_truthy(chat_eval(rt, n->b))) return chat_eval(rt, n->a);
        return n->c ? chat_eval(rt, n->c) : chat_undef(NULL);
    case E_LIST: return seq_literal(rt, n, false);
    case E_TUPLE: return seq_literal(rt, n, true);
    case E_DICT: {
        chat_dict *d = chat_dict_new(rt, (size_t)n->n_kids / 2);
        for (int i = 0; i + 1 < n->n_kids; i += 2) {
            chat_val k = chat_eval(rt, n->kids[i]);
            chat_dict_set(rt, d, k, chat_eval(rt, n->kids[i + 1]));
        }
        return chat_dictv(d);
    }
    default: chat_fail(rt, "internal error: statement node in an expression");
    }
}

/* The C stack is the interpreter's: expression nesting times macro nesting is bounded so no
 * template can overflow it, whatever thread renders it. */
chat_val chat_eval(chat_rt *rt, const chat_node *n) {
    if (++rt->nesting > CHAT_MAX_NESTING)
        chat_fail(rt, "the template nests expressions and calls deeper than %d levels",
                  CHAT_MAX_NESTING);
    chat_val v = eval_node(rt, n);
    rt->nesting--;
    return v;
}
