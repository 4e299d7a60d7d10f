/* Sequence filters: join, first/last, items, select/reject(attr), map, list, unique, sort,
 * reverse, sum, min/max, dictsort, batch. Jinja's defaults are kept: string comparisons in
 * unique/sort/min/max/dictsort ignore case unless case_sensitive=true. */
#include "jinja.h"

#include <string.h>

/* Jinja's attribute paths: "a.b.0" walks items and attributes. */
chat_val chat_attr_path(chat_rt *rt, chat_val v, const chat_str *path) {
    const char *p = path->p, *end = p + path->len;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        chat_val key = chat_str_lit(rt, p, (size_t)(dot - p));
        char *e;
        long long idx = strtoll(key.u.s->p, &e, 10);
        if (key.u.s->len && !*e) key = chat_int(idx);
        if (v.type == CV_UNDEF) return v;
        v = chat_getitem(rt, v, key);
        p = dot + 1;
    }
    return v;
}

chat_val chat_f_join(chat_rt *rt, chat_val v, const chat_args *a) {
    chat_list *l = chat_iterable(rt, v);
    const chat_str *sep = chat_arg_str(rt, a, 0, "d");
    const chat_str *attr = chat_arg_str(rt, a, 1, "attribute");
    chat_buf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i && sep) chat_buf_put_str(rt, &b, sep);
        chat_val item = attr ? chat_attr_path(rt, l->v[i], attr) : l->v[i];
        chat_write_str(rt, &b, item);
    }
    return chat_buf_to_str(rt, &b);
}

chat_val chat_f_first(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    chat_list *l = chat_iterable(rt, v);
    return l->n ? l->v[0] : chat_undef("first item of an empty sequence");
}

chat_val chat_f_last(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    chat_list *l = chat_iterable(rt, v);
    return l->n ? l->v[l->n - 1] : chat_undef("last item of an empty sequence");
}

chat_val chat_items_of(chat_rt *rt, chat_val v) {
    if (v.type == CV_UNDEF) return chat_listv(chat_list_new(rt, 0));
    if (v.type != CV_DICT) chat_fail(rt, "items: expected a mapping, got %s", chat_type_name(v));
    chat_list *l = chat_list_new(rt, v.u.d->n);
    for (size_t i = 0; i < v.u.d->n; i++) {
        chat_list *pair = chat_list_new(rt, 2);
        pair->v[0] = v.u.d->k[i];
        pair->v[1] = v.u.d->v[i];
        pair->n = 2;
        chat_val t = chat_listv(pair);
        t.flags = CVF_TUPLE;
        l->v[l->n++] = t;
    }
    return chat_listv(l);
}
chat_val chat_f_items(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    return chat_items_of(rt, v);
}

/* select/reject/selectattr/rejectattr: positional args after the test name go to the test. */
static chat_val select_impl(chat_rt *rt, chat_val v, const chat_args *a, bool by_attr, bool keep) {
    /* Jinja yields nothing for any falsy input, None included */
    chat_list *l = chat_truthy(v) ? chat_iterable(rt, v) : chat_list_new(rt, 0);
    int k = 0;
    const chat_str *attr = NULL;
    if (by_attr) {
        if (a->n < 1 || a->pos[0].type != CV_STR)
            chat_fail(rt, "selectattr/rejectattr need an attribute name");
        attr = a->pos[0].u.s;
        k = 1;
    }
    chat_test_fn test = NULL;
    if (a->n > k) {
        if (a->pos[k].type != CV_STR) chat_fail(rt, "the test name must be a string");
        test = chat_test_find(a->pos[k].u.s->p);
        if (!test) chat_fail(rt, "no test named '%s'", a->pos[k].u.s->p);
        k++;
    }
    /* pos is NULL when there are no positional arguments: no offset from it (UB even by 0). */
    chat_args ta = {a->n - k, a->pos ? a->pos + k : NULL, a->nk, a->kn, a->kv};
    chat_list *out = chat_list_new(rt, l->n);
    for (size_t i = 0; i < l->n; i++) {
        chat_val x = attr ? chat_attr_path(rt, l->v[i], attr) : l->v[i];
        bool r = test ? test(rt, x, &ta) : chat_truthy(x);
        if (r == keep) out->v[out->n++] = l->v[i];
    }
    return chat_listv(out);
}
chat_val chat_f_select(chat_rt *rt, chat_val v, const chat_args *a) {
    return select_impl(rt, v, a, false, true);
}
chat_val chat_f_reject(chat_rt *rt, chat_val v, const chat_args *a) {
    return select_impl(rt, v, a, false, false);
}
chat_val chat_f_selectattr(chat_rt *rt, chat_val v, const chat_args *a) {
    return select_impl(rt, v, a, true, true);
}
chat_val chat_f_rejectattr(chat_rt *rt, chat_val v, const chat_args *a) {
    return select_impl(rt, v, a, true, false);
}

chat_val chat_f_map(chat_rt *rt, chat_val v, const chat_args *a) {
    chat_list *l = chat_truthy(v) ? chat_iterable(rt, v) : chat_list_new(rt, 0);
    chat_list *out = chat_list_new(rt, l->n);
    const chat_val *attr = chat_arg(a, -1, "attribute");
    if (attr) {
        const chat_val *def = chat_arg(a, -1, "default");
        const chat_str *path = chat_want_str(rt, *attr);
        for (size_t i = 0; i < l->n; i++) {
            chat_val x = chat_attr_path(rt, l->v[i], path);
            out->v[out->n++] = x.type == CV_UNDEF && def ? *def : x;
        }
        return chat_listv(out);
    }
    if (a->n < 1 || a->pos[0].type != CV_STR)
        chat_fail(rt, "map needs a filter name or attribute=");
    chat_filter_fn f = chat_filter_find(a->pos[0].u.s->p);
    if (!f) chat_fail(rt, "no filter named '%s'", a->pos[0].u.s->p);
    chat_args fa = {a->n - 1, a->pos + 1, a->nk, a->kn, a->kv};
    for (size_t i = 0; i < l->n; i++) out->v[out->n++] = f(rt, l->v[i], &fa);
    return chat_listv(out);
}

chat_val chat_f_list(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    chat_list *l = chat_iterable(rt, v), *out = chat_list_new(rt, l->n);
    if (l->n) memcpy(out->v, l->v, l->n * sizeof *l->v);
    out->n = l->n;
    return chat_listv(out);
}

/* What unique/sort/min/max compare: the item (or its attribute), lowercased for strings unless
 * case-sensitive. */
static chat_val sort_key(chat_rt *rt, chat_val v, const chat_str *attr, bool cs) {
    if (attr) v = chat_attr_path(rt, v, attr);
    if (cs || v.type != CV_STR) return v;
    const chat_str *s = v.u.s;
    char *d = chat_alloc(rt, s->len + 1);
    for (size_t i = 0; i < s->len; i++)
        d[i] = (char)(s->p[i] >= 'A' && s->p[i] <= 'Z' ? s->p[i] + 32 : s->p[i]);
    return chat_str_lit(rt, d, s->len);
}

/* Stable merge sort of idx[0..n) by keys (a comparison failure aborts the render). */
static void merge_sort(chat_rt *rt, size_t *idx, size_t *tmp, size_t n, const chat_val *keys,
                       bool reverse) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(rt, idx, tmp, h, keys, reverse);
    merge_sort(rt, idx + h, tmp, n - h, keys, reverse);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c = chat_compare(rt, keys[idx[j]], keys[idx[i]]);
        bool take_right = reverse ? c > 0 : c < 0;
        tmp[k++] = take_right ? idx[j++] : idx[i++];
    }
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static chat_list *sorted(chat_rt *rt, chat_list *l, const chat_val *keys, bool reverse) {
    size_t *idx = chat_alloc(rt, (l->n + 1) * sizeof *idx),
           *tmp = chat_alloc(rt, (l->n + 1) * sizeof *tmp);
    for (size_t i = 0; i < l->n; i++) idx[i] = i;
    merge_sort(rt, idx, tmp, l->n, keys, reverse);
    chat_list *out = chat_list_new(rt, l->n);
    for (size_t i = 0; i < l->n; i++) out->v[out->n++] = l->v[idx[i]];
    return out;
}

chat_val chat_f_sort(chat_rt *rt, chat_val v, const chat_args *a) {
    chat_list *l = chat_iterable(rt, v);
    bool reverse = chat_arg_bool(a, 0, "reverse", false);
    bool cs = chat_arg_bool(a, 1, "case_sensitive", false);
    const chat_str *attr = chat_arg_str(rt, a, 2, "attribute");
    chat_val *keys = chat_alloc(rt, (l->n + 1) * sizeof *keys);
    for (size_t i = 0; i < l->n; i++) keys[i] = sort_key(rt, l->v[i], attr, cs);
    return chat_listv(sorted(rt, l, keys, reverse));
}

chat_val chat_f_dictsort(chat_rt *rt, chat_val v, const chat_args *a) {
    if (v.type != CV_DICT) chat_fail(rt, "dictsort: expected a mapping, got %s", chat_type_name(v));
    chat_list *l = chat_items_of(rt, v).u.l;
    bool cs = chat_arg_bool(a, 0, "case_sensitive", false);
    const chat_str *by = chat_arg_str(rt, a, 1, "by");
    bool reverse = chat_arg_bool(a, 2, "reverse", false);
    int pos = by && strcmp(by->p, "value") == 0 ? 1 : 0;
    if (by && !pos && strcmp(by->p, "key") != 0)
        chat_fail(rt, "dictsort: 'by' must be key or value");
    chat_val *keys = chat_alloc(rt, (l->n + 1) * sizeof *keys);
    for (size_t i = 0; i < l->n; i++) keys[i] = sort_key(rt, l->v[i].u.l->v[pos], NULL, cs);
    return chat_listv(sorted(rt, l, keys, reverse));
}

chat_val chat_f_unique(chat_rt *rt, chat_val v, const chat_args *a) {
    chat_list *l = chat_iterable(rt, v);
    bool cs = chat_arg_bool(a, 0, "case_sensitive", false);
    const chat_str *attr = chat_arg_str(rt, a, 1, "attribute");
    chat_list *out = chat_list_new(rt, l->n), *seen = chat_list_new(rt, l->n);
    for (size_t i = 0; i < l->n; i++) {
        chat_val k = sort_key(rt, l->v[i], attr, cs);
        bool dup = false;
        for (size_t j = 0; j < seen->n && !dup; j++) dup = chat_equal(seen->v[j], k);
        if (dup) continue;
        seen->v[seen->n++] = k;
        out->v[out->n++] = l->v[i];
    }
    return chat_listv(out);
}

chat_val chat_f_reverse(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    chat_list *l = chat_iterable(rt, v), *out = chat_list_new(rt, l->n);
    for (size_t i = l->n; i > 0; i--) out->v[out->n++] = l->v[i - 1];
    if (v.type != CV_STR) return chat_listv(out);
    chat_buf b = {0};
    for (size_t i = 0; i < out->n; i++) chat_buf_put_str(rt, &b, out->v[i].u.s);
    return chat_buf_to_str(rt, &b);
}

static chat_val extreme(chat_rt *rt, chat_val v, const chat_args *a, int sign) {
    chat_list *l = chat_iterable(rt, v);
    bool cs = chat_arg_bool(a, 0, "case_sensitive", false);
    const chat_str *attr = chat_arg_str(rt, a, 1, "attribute");
    if (!l->n) return chat_undef("min/max of an empty sequence");
    size_t best = 0;
    chat_val bk = sort_key(rt, l->v[0], attr, cs);
    for (size_t i = 1; i < l->n; i++) {
        chat_val k = sort_key(rt, l->v[i], attr, cs);
        if (chat_compare(rt, k, bk) * sign > 0) {
            best = i;
            bk = k;
        }
    }
    return l->v[best];
}
chat_val chat_f_min(chat_rt *rt, chat_val v, const chat_args *a) {
    return extreme(rt, v, a, -1);
}
chat_val chat_f_max(chat_rt *rt, chat_val v, const chat_args *a) {
    return extreme(rt, v, a, 1);
}

chat_val chat_f_sum(chat_rt *rt, chat_val v, const chat_args *a) {
    chat_list *l = chat_iterable(rt, v);
    const chat_str *attr = chat_arg_str(rt, a, 0, "attribute");
    const chat_val *start = chat_arg(a, 1, "start");
    int64_t isum = start && start->type == CV_INT ? start->u.i : 0;
    double fsum = start && start->type == CV_FLOAT ? start->u.f : 0.0;
    bool is_float = start && start->type == CV_FLOAT;
    for (size_t i = 0; i < l->n; i++) {
        chat_val x = attr ? chat_attr_path(rt, l->v[i], attr) : l->v[i];
        if (x.type == CV_FLOAT) {
            if (!is_float) fsum = (double)isum;
            is_float = true;
            fsum += x.u.f;
        } else if (x.type == CV_INT || x.type == CV_BOOL) {
            int64_t n = x.type == CV_INT ? x.u.i : x.u.b;
            if (is_float)
                fsum += (double)n;
            else if (__builtin_add_overflow(isum, n, &isum))
                chat_fail(rt, "integer overflow");
        } else {
            chat_fail(rt, "sum: unsupported operand type '%s'", chat_type_name(x));
        }
    }
    return is_float ? chat_float(fsum) : chat_int(isum);
}

chat_val chat_f_batch(chat_rt *rt, chat_val v, const chat_args *a) {
    chat_list *l = chat_iterable(rt, v), *out = chat_list_new(rt, 0), *cur = NULL;
    int64_t n = chat_arg_int(rt, a, 0, "linecount", 0);
    const chat_val *fill = chat_arg(a, 1, "fill_with");
    if (n <= 0) chat_fail(rt, "batch: the batch size must be positive");
    for (size_t i = 0; i < l->n; i++) {
        if (!cur || cur->n == (size_t)n) {
            cur = chat_list_new(rt, (size_t)n);
            chat_list_push(rt, out, chat_listv(cur));
        }
        cur->v[cur->n++] = l->v[i];
    }
    while (fill && cur && cur->n < (size_t)n) cur->v[cur->n++] = *fill;
    return chat_listv(out);
}
