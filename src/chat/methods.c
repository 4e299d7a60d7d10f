/* Python methods templates call on values: str (startswith, split, strip, format, ...), dict
 * (items, keys, values, get), list (append, pop, index, count) and loop.cycle. One table per
 * type; a lookup returns a bound method value. */
#include "jinja.h"

#include <stdlib.h>
#include <string.h>

typedef struct method {
    const char *name;
    chat_call_fn fn;
} method;

#define METHOD(name) static chat_val name(chat_rt *rt, chat_val self, const chat_args *a)

static const chat_str *self_str(chat_val self) {
    return self.u.s;
}

/* ---- str ---- */

static bool affix(chat_rt *rt, chat_val self, const chat_args *a, bool start) {
    const chat_val *x = chat_arg(a, 0, start ? "prefix" : "suffix");
    if (!x) chat_fail(rt, "%s() takes one argument", start ? "startswith" : "endswith");
    const chat_str *s = self_str(self);
    chat_list one = {1, 1, (chat_val *)x};
    chat_list *cands = x->type == CV_LIST ? x->u.l : &one;
    for (size_t i = 0; i < cands->n; i++) {
        if (cands->v[i].type != CV_STR) chat_fail(rt, "startswith/endswith need strings");
        const chat_str *p = cands->v[i].u.s;
        if (p->len > s->len) continue;
        if (memcmp(start ? s->p : s->p + s->len - p->len, p->p, p->len) == 0) return true;
    }
    return false;
}
METHOD(m_startswith) {
    return chat_bool(affix(rt, self, a, true));
}
METHOD(m_endswith) {
    return chat_bool(affix(rt, self, a, false));
}
METHOD(m_strip) {
    return chat_strip(rt, self_str(self), chat_arg_str(rt, a, 0, "chars"), true, true);
}
METHOD(m_lstrip) {
    return chat_strip(rt, self_str(self), chat_arg_str(rt, a, 0, "chars"), true, false);
}
METHOD(m_rstrip) {
    return chat_strip(rt, self_str(self), chat_arg_str(rt, a, 0, "chars"), false, true);
}

static chat_val via_filter(chat_rt *rt, const char *name, chat_val self, const chat_args *a) {
    return chat_filter_find(name)(rt, self, a);
}
METHOD(m_upper) {
    return via_filter(rt, "upper", self, a);
}
METHOD(m_lower) {
    return via_filter(rt, "lower", self, a);
}
METHOD(m_title) {
    (void)a;
    return chat_map_case(rt, self, 4); /* Python's str.title, not Jinja's |title */
}
METHOD(m_capitalize) {
    return via_filter(rt, "capitalize", self, a);
}
METHOD(m_replace) {
    return via_filter(rt, "replace", self, a);
}

METHOD(m_split) {
    const chat_str *s = self_str(self), *sep = chat_arg_str(rt, a, 0, "sep");
    int64_t maxsplit = chat_arg_int(rt, a, 1, "maxsplit", -1);
    chat_list *out = chat_list_new(rt, 0);
    size_t i = 0, k;
    if (!sep) {
        /* runs of whitespace separate, leading/trailing whitespace yields nothing */
        for (;;) {
            while (i < s->len && (k = chat_space_at(s->p + i, s->len - i)) > 0) i += k;
            if (i >= s->len) break;
            if (maxsplit >= 0 && (int64_t)out->n >= maxsplit) {
                size_t e = s->len;
                while (e > i && (k = chat_space_before(s->p, e)) > 0) e -= k;
                chat_list_push(rt, out, chat_str_sub(rt, s, i, e));
                break;
            }
            size_t j = i;
            while (j < s->len && !chat_space_at(s->p + j, s->len - j)) j++;
            chat_list_push(rt, out, chat_str_sub(rt, s, i, j));
            i = j;
        }
        return chat_listv(out);
    }
    if (!sep->len) chat_fail(rt, "split(): empty separator");
    for (;;) {
        const char *hit = maxsplit >= 0 && (int64_t)out->n >= maxsplit
                              ? NULL
                              : memmem(s->p + i, s->len - i, sep->p, sep->len);
        if (!hit) {
            chat_list_push(rt, out, chat_str_sub(rt, s, i, s->len));
            break;
        }
        size_t at = (size_t)(hit - s->p);
        chat_list_push(rt, out, chat_str_sub(rt, s, i, at));
        i = at + sep->len;
    }
    return chat_listv(out);
}

METHOD(m_join) {
    const chat_val *items = chat_arg(a, 0, "iterable");
    if (!items) chat_fail(rt, "join() takes one argument");
    chat_list *l = chat_iterable(rt, *items);
    chat_buf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].type != CV_STR)
            chat_fail(rt, "sequence item %zu: expected str instance, %s found", i,
                      chat_type_name(l->v[i]));
        if (i) chat_buf_put_str(rt, &b, self.u.s);
        chat_buf_put_str(rt, &b, l->v[i].u.s);
    }
    return chat_buf_to_str(rt, &b);
}

METHOD(m_find) {
    const chat_str *s = self_str(self), *sub = chat_arg_str(rt, a, 0, "sub");
    if (!sub) chat_fail(rt, "find() takes one argument");
    const char *hit = memmem(s->p, s->len, sub->p, sub->len);
    return chat_int(hit ? (int64_t)chat_utf8_count(s->p, (size_t)(hit - s->p)) : -1);
}

METHOD(m_str_count) {
    const chat_str *s = self_str(self), *sub = chat_arg_str(rt, a, 0, "sub");
    if (!sub) chat_fail(rt, "count() takes one argument");
    if (!sub->len) return chat_int((int64_t)chat_utf8_count(s->p, s->len) + 1);
    int64_t n = 0;
    for (size_t i = 0; i + sub->len <= s->len;) {
        const char *hit = memmem(s->p + i, s->len - i, sub->p, sub->len);
        if (!hit) break;
        n++;
        i = (size_t)(hit - s->p) + sub->len;
    }
    return chat_int(n);
}

/* str.format with {}, {0} and {name} fields (no format specs). */
METHOD(m_format) {
    const chat_str *s = self_str(self);
    chat_buf b = {0};
    int auto_idx = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->p[i];
        if ((c == '{' || c == '}') && i + 1 < s->len && s->p[i + 1] == c) {
            chat_buf_put(rt, &b, &c, 1);
            i++;
            continue;
        }
        if (c != '{') {
            chat_buf_put(rt, &b, &c, 1);
            continue;
        }
        const char *close = memchr(s->p + i, '}', s->len - i);
        if (!close) chat_fail(rt, "format(): single '{' in the format string");
        size_t fb = i + 1, fe = (size_t)(close - s->p);
        const chat_val *v;
        if (fb == fe) {
            v = chat_arg(a, auto_idx++, NULL);
        } else if (s->p[fb] >= '0' && s->p[fb] <= '9') {
            v = chat_arg(a, (int)strtol(s->p + fb, NULL, 10), NULL);
        } else {
            char name[64];
            size_t n = fe - fb < sizeof name - 1 ? fe - fb : sizeof name - 1;
            memcpy(name, s->p + fb, n);
            name[n] = 0;
            v = chat_arg(a, -1, name);
        }
        if (!v) chat_fail(rt, "format(): no argument for field '%.*s'", (int)(fe - fb), s->p + fb);
        chat_write_str(rt, &b, *v);
        i = fe;
    }
    return chat_buf_to_str(rt, &b);
}

static const method str_methods[] = {
    {"startswith", m_startswith},
    {"endswith", m_endswith},
    {"strip", m_strip},
    {"lstrip", m_lstrip},
    {"rstrip", m_rstrip},
    {"upper", m_upper},
    {"lower", m_lower},
    {"title", m_title},
    {"capitalize", m_capitalize},
    {"replace", m_replace},
    {"split", m_split},
    {"join", m_join},
    {"find", m_find},
    {"count", m_str_count},
    {"format", m_format},
    {NULL, NULL},
};

/* ---- dict ---- */

METHOD(m_items) {
    (void)a;
    return chat_items_of(rt, self);
}
METHOD(m_keys) {
    (void)a;
    return chat_listv(chat_iterable(rt, self));
}
METHOD(m_values) {
    (void)a;
    chat_list *l = chat_list_new(rt, self.u.d->n);
    if (self.u.d->n) memcpy(l->v, self.u.d->v, self.u.d->n * sizeof *l->v);
    l->n = self.u.d->n;
    return chat_listv(l);
}
METHOD(m_get) {
    const chat_val *k = chat_arg(a, 0, "key"), *def = chat_arg(a, 1, "default");
    if (!k) chat_fail(rt, "get() takes a key");
    chat_val *v = chat_dict_get(self.u.d, *k);
    return v ? *v : def ? *def : chat_none();
}

static const method dict_methods[] = {
    {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"get", m_get}, {NULL, NULL},
};

/* ---- list ---- */

METHOD(m_append) {
    const chat_val *x = chat_arg(a, 0, NULL);
    if (!x) chat_fail(rt, "append() takes one argument");
    if (self.flags & CVF_TUPLE) chat_fail(rt, "'tuple' object has no attribute 'append'");
    chat_list_push(rt, self.u.l, *x);
    return chat_none();
}
METHOD(m_pop) {
    chat_list *l = self.u.l;
    int64_t i = chat_arg_int(rt, a, 0, "index", -1);
    if (i < 0) i += (int64_t)l->n;
    if (i < 0 || (size_t)i >= l->n) chat_fail(rt, "pop index out of range");
    chat_val v = l->v[i];
    memmove(l->v + i, l->v + i + 1, (l->n - (size_t)i - 1) * sizeof *l->v);
    l->n--;
    return v;
}
METHOD(m_index) {
    const chat_val *x = chat_arg(a, 0, NULL);
    for (size_t i = 0; x && i < self.u.l->n; i++)
        if (chat_equal(self.u.l->v[i], *x)) return chat_int((int64_t)i);
    chat_fail(rt, "value is not in list");
}
METHOD(m_list_count) {
    const chat_val *x = chat_arg(a, 0, NULL);
    int64_t n = 0;
    for (size_t i = 0; x && i < self.u.l->n; i++) n += chat_equal(self.u.l->v[i], *x);
    (void)rt;
    return chat_int(n);
}

static const method list_methods[] = {
    {"append", m_append}, {"pop", m_pop}, {"index", m_index}, {"count", m_list_count}, {NULL, NULL},
};

/* ---- loop ---- */

METHOD(m_cycle) {
    if (a->n == 0) chat_fail(rt, "loop.cycle() needs at least one value");
    return a->pos[self.u.loop->i % (size_t)a->n];
}

static const method loop_methods[] = {{"cycle", m_cycle}, {NULL, NULL}};

chat_val chat_method_find(chat_rt *rt, chat_val self, const char *name) {
    const method *table = self.type == CV_STR    ? str_methods
                          : self.type == CV_DICT ? dict_methods
                          : self.type == CV_LIST ? list_methods
                          : self.type == CV_LOOP ? loop_methods
                                                 : NULL;
    for (; table && table->name; table++) {
        if (strcmp(table->name, name) != 0) continue;
        chat_fn *fn = chat_alloc(rt, sizeof *fn);
        fn->name = table->name;
        fn->call = table->fn;
        fn->self = self;
        return (chat_val){CV_FUNC, 0, {.fn = fn}};
    }
    return chat_undef(name);
}
