/* Global callables of the template environment: range (bounded like Jinja's sandbox), dict,
 * namespace, raise_exception (the template refusing a conversation) and strftime_now (the
 * current date, or a fixed one for reproducible renders). Nothing here touches files or the
 * environment. */
#include "jinja.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum { MAX_RANGE = 100000 }; /* Jinja's sandbox refuses longer ranges */

static chat_val g_range(chat_rt *rt, chat_val self, const chat_args *a) {
    (void)self;
    int64_t start = 0, stop, step = 1;
    for (int i = 0; i < a->n; i++)
        if (a->pos[i].type != CV_INT && a->pos[i].type != CV_BOOL)
            chat_fail(rt, "range() arguments must be integers, not %s", chat_type_name(a->pos[i]));
    if (a->n == 1)
        stop = a->pos[0].u.i;
    else if (a->n == 2 || a->n == 3) {
        start = a->pos[0].u.i;
        stop = a->pos[1].u.i;
        if (a->n == 3) step = a->pos[2].u.i;
    } else
        chat_fail(rt, "range() takes 1 to 3 arguments");
    if (step == 0) chat_fail(rt, "range() step must not be zero");
    int64_t n = 0;
    if (step > 0 && stop > start) n = (stop - start + step - 1) / step;
    if (step < 0 && stop < start) n = (start - stop - step - 1) / -step;
    if (n > MAX_RANGE)
        chat_fail(rt, "range() of %lld items is too big (at most %d)", (long long)n, MAX_RANGE);
    chat_list *l = chat_list_new(rt, (size_t)n);
    for (int64_t i = 0; i < n; i++) l->v[l->n++] = chat_int(start + i * step);
    return chat_listv(l);
}

static chat_val kwargs_dict(chat_rt *rt, const chat_args *a, const char *fn) {
    chat_dict *d = chat_dict_new(rt, (size_t)a->nk + 4);
    for (int i = 0; i < a->n; i++) {
        if (a->pos[i].type != CV_DICT)
            chat_fail(rt, "%s() takes keyword arguments or a mapping", fn);
        const chat_dict *src = a->pos[i].u.d;
        for (size_t k = 0; k < src->n; k++) chat_dict_set(rt, d, src->k[k], src->v[k]);
    }
    for (int i = 0; i < a->nk; i++) chat_dict_set(rt, d, chat_str_cstr(rt, a->kn[i]), a->kv[i]);
    return chat_dictv(d);
}

static chat_val g_dict(chat_rt *rt, chat_val self, const chat_args *a) {
    (void)self;
    return kwargs_dict(rt, a, "dict");
}

static chat_val g_namespace(chat_rt *rt, chat_val self, const chat_args *a) {
    (void)self;
    chat_val v = kwargs_dict(rt, a, "namespace");
    v.flags = CVF_NS;
    return v;
}

static chat_val g_raise_exception(chat_rt *rt, chat_val self, const chat_args *a) {
    (void)self;
    const chat_val *m = chat_arg(a, 0, "message");
    chat_val s = m ? chat_to_str(rt, *m) : chat_str_cstr(rt, "the chat template raised an error");
    core_error(rt->err, SHIMMY_ERR_TEMPLATE, "chat template", "%s", s.u.s->p);
    longjmp(rt->jb, 1);
}

static chat_val g_strftime_now(chat_rt *rt, chat_val self, const chat_args *a) {
    (void)self;
    const chat_str *fmt = chat_arg_str(rt, a, 0, "format");
    if (!fmt) chat_fail(rt, "strftime_now() takes a format");
    if (fmt->len > 256) chat_fail(rt, "strftime_now(): format too long");
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d;
    if (rt->p->fixed_date && sscanf(rt->p->fixed_date, "%d-%d-%d", &y, &mo, &d) == 3) {
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_isdst = -1;
        time_t t = mktime(&tm); /* fills in the weekday and day of the year */
        if (t != (time_t)-1) localtime_r(&t, &tm);
    } else {
        time_t now = time(NULL);
        localtime_r(&now, &tm);
    }
    char out[1024];
    size_t n = strftime(out, sizeof out, fmt->p, &tm);
    return chat_str_lit(rt, out, n);
}

static const chat_fn globals[] = {
    {.name = "range", .call = g_range},
    {.name = "dict", .call = g_dict},
    {.name = "namespace", .call = g_namespace},
    {.name = "raise_exception", .call = g_raise_exception},
    {.name = "strftime_now", .call = g_strftime_now},
};

chat_val chat_global_find(const char *name) {
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (strcmp(globals[i].name, name) == 0) return (chat_val){CV_FUNC, 0, {.fn = &globals[i]}};
    return chat_undef(name);
}
