/* The value model of the Jinja interpreter: arena, strings with content provenance, lists,
 * dicts, Python truthiness/equality/ordering, and output buffers. Printing is in print.c. */
#include "jinja.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct chat_chunk {
    chat_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

enum { CHUNK_MIN = 64 * 1024 };

void *chat_arena_alloc(chat_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->budget && (n > a->budget || a->used > a->budget - n)) return NULL;
    chat_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN / 2 ? n : CHUNK_MIN;
        /* calloc gives zeroed memory, which allocations promise */
        chat_chunk *nc = core_calloc(1, sizeof *nc + cap);
        if (!nc) return NULL;
        nc->cap = cap;
        if (c && n > CHUNK_MIN / 2) {
            /* a big block goes behind the current chunk so its free tail stays usable */
            nc->next = c->next;
            c->next = nc;
            nc->used = n;
            a->used += n;
            return nc->data;
        }
        nc->next = c;
        a->head = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used += n;
    return p;
}

void chat_arena_deinit(chat_arena *a) {
    chat_chunk *c = a->head;
    while (c) {
        chat_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- errors ---- */

__attribute__((noreturn)) static void fail_v(chat_rt *rt, shimmy_status st, const char *fmt,
                                             va_list ap) {
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    core_error(rt->err, st, "chat template", "line %d, column %d: %s", rt->line, rt->col, msg);
    longjmp(rt->jb, 1);
}

void chat_fail(chat_rt *rt, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(rt, SHIMMY_ERR_TEMPLATE, fmt, ap);
    va_end(ap);
}

void chat_fail_status(chat_rt *rt, shimmy_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(rt, st, fmt, ap);
    va_end(ap);
}

void *chat_alloc(chat_rt *rt, size_t n) {
    void *p = chat_arena_alloc(&rt->arena, n);
    if (p) return p;
    const chat_arena *a = &rt->arena;
    size_t r = (n + 15) & ~(size_t)15;
    if (a->budget && (r > a->budget || a->used > a->budget - r))
        chat_fail(rt, "the template used more than its memory budget of %zu bytes", a->budget);
    /* within the budget: the system is out of memory, which is not the template's fault */
    chat_fail_status(rt, SHIMMY_ERR_NOMEM, "out of memory rendering the template (%zu bytes)", n);
}

/* ---- strings ---- */

chat_str *chat_str_new(chat_arena *a, const char *p, size_t len) {
    if (len > SIZE_MAX / 2) return NULL;
    chat_str *s = chat_arena_alloc(a, sizeof *s + len + 1);
    if (!s) return NULL;
    char *d = (char *)(s + 1);
    if (len) memcpy(d, p, len);
    d[len] = 0;
    s->p = d;
    s->len = len;
    return s;
}

static chat_str *str_alloc(chat_rt *rt, size_t len, char **dst) {
    if (len > SIZE_MAX / 2) chat_fail(rt, "string too long");
    chat_str *s = chat_alloc(rt, sizeof *s + len + 1);
    *dst = (char *)(s + 1);
    (*dst)[len] = 0;
    s->p = *dst;
    s->len = len;
    return s;
}

chat_val chat_str_lit(chat_rt *rt, const char *p, size_t len) {
    char *d;
    chat_str *s = str_alloc(rt, len, &d);
    if (len) memcpy(d, p, len);
    return chat_strv(s);
}

chat_val chat_str_cstr(chat_rt *rt, const char *cstr) {
    return chat_str_lit(rt, cstr, strlen(cstr));
}

/* Appends [b, e) to a range list, merging with the previous range when they touch. */
static void range_push(chat_range *r, uint32_t *n, size_t b, size_t e) {
    if (b >= e) return;
    if (*n && r[*n - 1].e == b) {
        r[*n - 1].e = e;
        return;
    }
    r[*n].b = b;
    r[*n].e = e;
    (*n)++;
}

chat_val chat_str_cat(chat_rt *rt, const chat_str *a, const chat_str *b) {
    char *d;
    chat_str *s = str_alloc(rt, a->len + b->len, &d);
    memcpy(d, a->p, a->len);
    memcpy(d + a->len, b->p, b->len);
    uint32_t n = a->n_ranges + b->n_ranges;
    if (n) {
        chat_range *r = chat_alloc(rt, n * sizeof *r);
        uint32_t k = 0;
        for (uint32_t i = 0; i < a->n_ranges; i++)
            range_push(r, &k, a->ranges[i].b, a->ranges[i].e);
        for (uint32_t i = 0; i < b->n_ranges; i++)
            range_push(r, &k, b->ranges[i].b + a->len, b->ranges[i].e + a->len);
        s->ranges = r;
        s->n_ranges = k;
    }
    return chat_strv(s);
}

chat_val chat_str_sub(chat_rt *rt, const chat_str *src, size_t b, size_t e) {
    if (e > src->len) e = src->len;
    if (b > e) b = e;
    if (b == 0 && e == src->len) return chat_strv(src);
    char *d;
    chat_str *s = str_alloc(rt, e - b, &d);
    memcpy(d, src->p + b, e - b);
    if (src->n_ranges) {
        chat_range *r = chat_alloc(rt, src->n_ranges * sizeof *r);
        uint32_t k = 0;
        for (uint32_t i = 0; i < src->n_ranges; i++) {
            size_t rb = src->ranges[i].b > b ? src->ranges[i].b : b;
            size_t re = src->ranges[i].e < e ? src->ranges[i].e : e;
            if (rb < re) range_push(r, &k, rb - b, re - b);
        }
        s->ranges = r;
        s->n_ranges = k;
    }
    return chat_strv(s);
}

static bool all_content(const chat_str *s) {
    return s->n_ranges == 1 && s->ranges[0].b == 0 && s->ranges[0].e == s->len;
}

chat_val chat_str_derived(chat_rt *rt, const chat_str *src, const char *p, size_t len) {
    chat_val v = chat_str_lit(rt, p, len);
    if (len && all_content(src)) {
        chat_range *r = chat_alloc(rt, sizeof *r);
        r->b = 0;
        r->e = len;
        chat_str *s = (chat_str *)v.u.s;
        s->ranges = r;
        s->n_ranges = 1;
    }
    return v;
}

size_t chat_utf8_count(const char *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

/* ---- containers ---- */

chat_list *chat_list_new(chat_rt *rt, size_t cap) {
    chat_list *l = chat_alloc(rt, sizeof *l);
    if (cap) {
        if (cap > SIZE_MAX / sizeof(chat_val)) chat_fail(rt, "list too long");
        l->v = chat_alloc(rt, cap * sizeof(chat_val));
    }
    l->cap = cap;
    return l;
}

void chat_list_push(chat_rt *rt, chat_list *l, chat_val v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        chat_val *nv = chat_alloc(rt, cap * sizeof *nv);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

chat_dict *chat_dict_new(chat_rt *rt, size_t cap) {
    chat_dict *d = chat_alloc(rt, sizeof *d);
    if (cap) {
        d->k = chat_alloc(rt, cap * sizeof(chat_val));
        d->v = chat_alloc(rt, cap * sizeof(chat_val));
    }
    d->cap = cap;
    return d;
}

static bool key_eq(chat_val a, chat_val b) {
    if (a.type == CV_STR && b.type == CV_STR)
        return a.u.s->len == b.u.s->len && memcmp(a.u.s->p, b.u.s->p, a.u.s->len) == 0;
    return chat_equal(a, b);
}

chat_val *chat_dict_get(const chat_dict *d, chat_val k) {
    for (size_t i = 0; i < d->n; i++)
        if (key_eq(d->k[i], k)) return &d->v[i];
    return NULL;
}

chat_val *chat_dict_get_cstr(const chat_dict *d, const char *k) {
    size_t n = strlen(k);
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].type == CV_STR && d->k[i].u.s->len == n && memcmp(d->k[i].u.s->p, k, n) == 0)
            return &d->v[i];
    return NULL;
}

void chat_dict_set(chat_rt *rt, chat_dict *d, chat_val k, chat_val v) {
    chat_val *slot = chat_dict_get(d, k);
    if (slot) {
        *slot = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        chat_val *nk = chat_alloc(rt, cap * sizeof *nk), *nv = chat_alloc(rt, cap * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

/* ---- Python semantics ---- */

const char *chat_type_name(chat_val v) {
    static const char *const names[] = {"undefined", "NoneType", "bool", "int",      "float",
                                        "str",       "list",     "dict", "function", "LoopContext"};
    if (v.type == CV_LIST && (v.flags & CVF_TUPLE)) return "tuple";
    if (v.type == CV_DICT && (v.flags & CVF_NS)) return "Namespace";
    return names[v.type];
}

bool chat_truthy(chat_val v) {
    switch ((chat_vtype)v.type) {
    case CV_UNDEF:
    case CV_NONE: return false;
    case CV_BOOL: return v.u.b;
    case CV_INT: return v.u.i != 0;
    case CV_FLOAT: return v.u.f != 0.0;
    case CV_STR: return v.u.s->len != 0;
    case CV_LIST: return v.u.l->n != 0;
    case CV_DICT: return (v.flags & CVF_NS) || v.u.d->n != 0;
    case CV_FUNC:
    case CV_LOOP: return true;
    }
    return false;
}

static bool is_num(chat_val v) {
    return v.type == CV_INT || v.type == CV_FLOAT || v.type == CV_BOOL;
}
static double num_f(chat_val v) {
    return v.type == CV_FLOAT ? v.u.f : v.type == CV_INT ? (double)v.u.i : (double)v.u.b;
}

bool chat_equal(chat_val a, chat_val b) {
    if (is_num(a) && is_num(b)) {
        if (a.type != CV_FLOAT && b.type != CV_FLOAT)
            return (a.type == CV_INT ? a.u.i : a.u.b) == (b.type == CV_INT ? b.u.i : b.u.b);
        return num_f(a) == num_f(b);
    }
    if (a.type != b.type) return false;
    switch ((chat_vtype)a.type) {
    case CV_UNDEF:
    case CV_NONE: return true;
    case CV_STR: return key_eq(a, b);
    case CV_LIST:
        /* a tuple never equals a list in Python */
        if (a.u.l->n != b.u.l->n || (a.flags & CVF_TUPLE) != (b.flags & CVF_TUPLE)) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!chat_equal(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case CV_DICT:
        if (a.u.d == b.u.d) return true;
        if ((a.flags & CVF_NS) || (b.flags & CVF_NS) || a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            chat_val *o = chat_dict_get(b.u.d, a.u.d->k[i]);
            if (!o || !chat_equal(a.u.d->v[i], *o)) return false;
        }
        return true;
    case CV_FUNC:
        /* two lookups of one bound method compare equal, as in Python */
        return a.u.fn == b.u.fn ||
               (a.u.fn->call && a.u.fn->call == b.u.fn->call && !a.u.fn->macro &&
                chat_equal(a.u.fn->self, b.u.fn->self) && a.u.fn->self.type == b.u.fn->self.type &&
                a.u.fn->self.u.d == b.u.fn->self.u.d);
    case CV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

int chat_compare(chat_rt *rt, chat_val a, chat_val b) {
    if (is_num(a) && is_num(b)) {
        if (a.type == CV_INT && b.type == CV_INT) return (a.u.i > b.u.i) - (a.u.i < b.u.i);
        double x = num_f(a), y = num_f(b);
        return (x > y) - (x < y);
    }
    if (a.type == CV_STR && b.type == CV_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->p, b.u.s->p, n);
        if (c) return c < 0 ? -1 : 1;
        return (a.u.s->len > b.u.s->len) - (a.u.s->len < b.u.s->len);
    }
    if (a.type == CV_LIST && b.type == CV_LIST && (a.flags & CVF_TUPLE) == (b.flags & CVF_TUPLE)) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (chat_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return chat_compare(rt, a.u.l->v[i], b.u.l->v[i]);
        }
        return (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
    }
    if (a.type == CV_UNDEF || b.type == CV_UNDEF) {
        const char *nm = a.type == CV_UNDEF ? a.u.undef_name : b.u.undef_name;
        chat_fail(rt, "'%s' is undefined", nm ? nm : "value");
    }
    chat_fail(rt, "'<' not supported between instances of '%s' and '%s'", chat_type_name(a),
              chat_type_name(b));
}

chat_list *chat_iterable(chat_rt *rt, chat_val v) {
    switch ((chat_vtype)v.type) {
    case CV_UNDEF: return chat_list_new(rt, 0);
    case CV_LIST: return v.u.l;
    case CV_DICT: {
        if (v.flags & CVF_NS) break;
        chat_list *l = chat_list_new(rt, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) l->v[l->n++] = v.u.d->k[i];
        return l;
    }
    case CV_STR: {
        const chat_str *s = v.u.s;
        chat_list *l = chat_list_new(rt, chat_utf8_count(s->p, s->len));
        for (size_t i = 0; i < s->len;) {
            size_t j = i + 1;
            while (j < s->len && ((unsigned char)s->p[j] & 0xC0) == 0x80) j++;
            l->v[l->n++] = chat_str_sub(rt, s, i, j);
            i = j;
        }
        return l;
    }
    default: break;
    }
    chat_fail(rt, "'%s' object is not iterable", chat_type_name(v));
}

/* ---- JSON input ---- */

chat_val chat_from_json(chat_rt *rt, const json_t *j, bool mark_content) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        chat_dict *d = chat_dict_new(rt, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            size_t d_n = d->n;
            d->k[d_n] = chat_str_cstr(rt, k);
            d->v[d_n] = chat_from_json(rt, v, mark_content);
            d->n++;
        }
        return chat_dictv(d);
    }
    case JSON_ARRAY: {
        chat_list *l = chat_list_new(rt, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            l->v[l->n++] = chat_from_json(rt, json_array_get(j, i), mark_content);
        return chat_listv(l);
    }
    case JSON_STRING: {
        chat_val s = chat_str_lit(rt, json_string_value(j), json_string_length(j));
        if (mark_content && s.u.s->len) {
            chat_range *r = chat_alloc(rt, sizeof *r);
            r->e = s.u.s->len;
            ((chat_str *)s.u.s)->ranges = r;
            ((chat_str *)s.u.s)->n_ranges = 1;
        }
        return s;
    }
    case JSON_INTEGER: return chat_int(json_integer_value(j));
    case JSON_REAL: return chat_float(json_real_value(j));
    case JSON_TRUE: return chat_bool(true);
    case JSON_FALSE: return chat_bool(false);
    default: return chat_none();
    }
}

/* ---- output buffers ---- */

static void buf_reserve(chat_rt *rt, chat_buf *b, size_t extra) {
    if (extra > rt->max_output || b->len > rt->max_output - extra)
        chat_fail(rt, "the rendered text would exceed the output limit of %zu bytes",
                  rt->max_output);
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    if (cap > rt->max_output + 1) cap = rt->max_output + 1; /* never past what may be used */
    char *np = chat_alloc(rt, cap);
    if (b->len) memcpy(np, b->p, b->len);
    b->p = np;
    b->cap = cap;
}

void chat_buf_put(chat_rt *rt, chat_buf *b, const char *p, size_t n) {
    if (!n) return;
    buf_reserve(rt, b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

void chat_buf_put_str(chat_rt *rt, chat_buf *b, const chat_str *s) {
    size_t at = b->len;
    chat_buf_put(rt, b, s->p, s->len);
    for (uint32_t i = 0; i < s->n_ranges; i++) {
        size_t rb = s->ranges[i].b + at, re = s->ranges[i].e + at;
        if (b->n_r && b->r[b->n_r - 1].e == rb) {
            b->r[b->n_r - 1].e = re;
            continue;
        }
        if (b->n_r == b->cap_r) {
            size_t cap = b->cap_r ? b->cap_r * 2 : 16;
            chat_range *nr = chat_alloc(rt, cap * sizeof *nr);
            if (b->n_r) memcpy(nr, b->r, b->n_r * sizeof *nr);
            b->r = nr;
            b->cap_r = cap;
        }
        b->r[b->n_r].b = rb;
        b->r[b->n_r++].e = re;
    }
}

chat_val chat_buf_to_str(chat_rt *rt, const chat_buf *b) {
    /* zero copy: the string takes over the buffer's bytes and ranges */
    chat_str *s = chat_alloc(rt, sizeof *s);
    s->p = b->p ? b->p : "";
    s->len = b->len;
    s->ranges = b->r;
    s->n_ranges = (uint32_t)b->n_r;
    return chat_strv(s);
}

const chat_val *chat_arg(const chat_args *a, int i, const char *name) {
    if (name)
        for (int k = 0; k < a->nk; k++)
            if (strcmp(a->kn[k], name) == 0) return &a->kv[k];
    if (i >= 0 && i < a->n) return &a->pos[i];
    return NULL;
}

/* ---- whitespace (Python str.isspace) ---- */

static bool space_cp(uint32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F)) return true;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

size_t chat_space_at(const char *p, size_t n) {
    if (!n) return 0;
    unsigned char c = (unsigned char)p[0];
    if (c < 0x80) return space_cp(c) ? 1 : 0;
    uint32_t cp;
    int k = core_utf8_decode(p, n, &cp);
    return space_cp(cp) ? (size_t)k : 0;
}

size_t chat_space_before(const char *p, size_t n) {
    if (!n) return 0;
    size_t i = n - 1;
    while (i > 0 && n - i < 4 && ((unsigned char)p[i] & 0xC0) == 0x80) i--;
    size_t k = chat_space_at(p + i, n - i);
    return k == n - i ? k : 0;
}
