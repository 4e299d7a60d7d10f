/* Statement execution: output, if, for (with loop variables, filters, else, break/continue),
 * set (plain, unpacking, namespace attributes, blocks), macros, call blocks and filter blocks. A
 * for-loop body gets its own scope, so assignments inside do not leak out, as in Jinja. */
#include "jinja.h"

#include <string.h>

typedef enum flow { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE } flow;

static flow exec_list(chat_rt *rt, chat_node *const *body, int n);

static void step(chat_rt *rt, const chat_node *n) {
    if (++rt->steps > rt->max_steps)
        chat_fail(rt, "the template ran for more than %llu steps (a runaway loop?)",
                  (unsigned long long)rt->max_steps);
    rt->line = n->line;
    rt->col = n->col;
}

static void assign(chat_rt *rt, const chat_node *n, chat_val v) {
    if (n->n_names == 1) {
        chat_scope_set(rt, rt->scope, n->names[0], v);
        return;
    }
    if (v.type != CV_LIST)
        chat_fail(rt, "cannot unpack a %s into %d names", chat_type_name(v), n->n_names);
    if (v.u.l->n != (size_t)n->n_names)
        chat_fail(rt, "cannot unpack %zu values into %d names", v.u.l->n, n->n_names);
    for (int i = 0; i < n->n_names; i++) chat_scope_set(rt, rt->scope, n->names[i], v.u.l->v[i]);
}

/* Renders a body into a fresh buffer and returns it as a string (provenance kept). */
static chat_val capture(chat_rt *rt, chat_node *const *body, int n) {
    chat_buf buf = {0}, *saved = rt->out;
    rt->out = &buf;
    exec_list(rt, body, n);
    rt->out = saved;
    return chat_buf_to_str(rt, &buf);
}

static flow exec_for(chat_rt *rt, const chat_node *n) {
    chat_val it = chat_eval(rt, n->a);
    step(rt, n);
    chat_list *items = chat_iterable(rt, it);
    chat_scope *sc = chat_scope_new(rt, rt->scope), *saved = rt->scope;
    rt->scope = sc;
    if (n->b) {
        chat_list *kept = chat_list_new(rt, items->n);
        for (size_t i = 0; i < items->n; i++) {
            assign(rt, n, items->v[i]);
            if (chat_truthy(chat_eval(rt, n->b))) kept->v[kept->n++] = items->v[i];
        }
        items = kept;
    }
    chat_loop *lp = chat_alloc(rt, sizeof *lp);
    lp->items = items;
    lp->depth = 1; /* depth only grows in recursive loops, which are not supported */
    chat_scope_set(rt, sc, "loop", (chat_val){CV_LOOP, 0, {.loop = lp}});
    for (size_t i = 0; i < items->n; i++) {
        lp->i = i;
        step(rt, n);
        assign(rt, n, items->v[i]);
        if (exec_list(rt, n->body, n->n_body) == FLOW_BREAK) break;
    }
    rt->scope = saved;
    if (!items->n && n->n_orelse) exec_list(rt, n->orelse, n->n_orelse);
    return FLOW_NORMAL;
}

static void exec_set(chat_rt *rt, const chat_node *n) {
    chat_val v = chat_eval(rt, n->b);
    step(rt, n);
    if (!n->name) {
        assign(rt, n, v);
        return;
    }
    chat_val *target = chat_scope_find(rt->scope, n->names[0]);
    if (!target || target->type != CV_DICT || !(target->flags & CVF_NS))
        chat_fail(rt, "cannot assign attribute '%s' of '%s': it is not a namespace()", n->name,
                  n->names[0]);
    chat_dict_set(rt, target->u.d, chat_str_cstr(rt, n->name), v);
}

static flow exec_stmt(chat_rt *rt, const chat_node *n) {
    switch ((chat_nkind)n->kind) {
    case N_TEXT: chat_buf_put_str(rt, rt->out, n->lit.u.s); return FLOW_NORMAL;
    case N_OUTPUT: {
        chat_val v = chat_eval(rt, n->a);
        chat_write_str(rt, rt->out, v);
        return FLOW_NORMAL;
    }
    case N_IF:
        step(rt, n);
        if (chat_truthy(chat_eval(rt, n->a))) return exec_list(rt, n->body, n->n_body);
        return exec_list(rt, n->orelse, n->n_orelse);
    case N_FOR: return exec_for(rt, n);
    case N_SET: exec_set(rt, n); return FLOW_NORMAL;
    case N_SET_BLOCK: {
        step(rt, n);
        chat_val v = capture(rt, n->body, n->n_body);
        if (n->a) v = chat_eval_filter_chain(rt, n->a, v);
        chat_scope_set(rt, rt->scope, n->names[0], v);
        return FLOW_NORMAL;
    }
    case N_MACRO: {
        step(rt, n);
        chat_fn *fn = chat_alloc(rt, sizeof *fn);
        fn->name = n->name;
        fn->macro = n;
        fn->closure = rt->scope;
        chat_scope_set(rt, rt->scope, n->name, (chat_val){CV_FUNC, 0, {.fn = fn}});
        return FLOW_NORMAL;
    }
    case N_CALL_BLOCK: {
        /* the call with one more keyword argument: `caller`, the block as a macro that renders
         * in this scope */
        step(rt, n);
        chat_fn *fn = chat_alloc(rt, sizeof *fn);
        fn->name = n->name;
        fn->macro = n;
        fn->closure = rt->scope;
        chat_val callee = chat_eval(rt, n->a->a);
        if (callee.type == CV_FUNC && !callee.u.fn->macro)
            chat_fail(rt, "'%s' takes no keyword argument 'caller' (a call block needs a macro)",
                      callee.u.fn->name ? callee.u.fn->name : "function");
        chat_args a;
        chat_eval_args(rt, n->a, &a, 1);
        a.kn[a.nk] = "caller";
        a.kv[a.nk++] = (chat_val){CV_FUNC, 0, {.fn = fn}};
        rt->line = n->line;
        rt->col = n->col;
        chat_write_str(rt, rt->out, chat_call(rt, callee, &a));
        return FLOW_NORMAL;
    }
    case N_FILTER_BLOCK: {
        step(rt, n);
        chat_val v = chat_eval_filter_chain(rt, n->a, capture(rt, n->body, n->n_body));
        chat_write_str(rt, rt->out, v);
        return FLOW_NORMAL;
    }
    case N_DO: chat_eval(rt, n->a); return FLOW_NORMAL;
    case N_BLOCK: return exec_list(rt, n->body, n->n_body);
    case N_BREAK: return FLOW_BREAK;
    case N_CONTINUE: return FLOW_CONTINUE;
    default: chat_fail(rt, "internal error: expression node as a statement");
    }
}

static flow exec_node(chat_rt *rt, const chat_node *n) {
    if (++rt->nesting > CHAT_MAX_NESTING)
        chat_fail(rt, "the template nests expressions and calls deeper than %d levels",
                  CHAT_MAX_NESTING);
    flow f = exec_stmt(rt, n);
    rt->nesting--;
    return f;
}

static flow exec_list(chat_rt *rt, chat_node *const *body, int n) {
    for (int i = 0; i < n; i++) {
        flow f = exec_node(rt, body[i]);
        if (f != FLOW_NORMAL) return f;
    }
    return FLOW_NORMAL;
}

void chat_exec_body(chat_rt *rt, chat_node *const *body, int n) {
    exec_list(rt, body, n);
}
