/* The filter table: Jinja's built-in filters that chat templates use, with Jinja 3.1 semantics
 * (e.g. indent leaves blank lines alone, unique and sort ignore case by default, round returns a
 * float). Filters that keep bytes of their input keep its content provenance. */
#include "jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strips whitespace (chars NULL) or any code point of `chars` from either end. */
chat_val chat_strip(chat_rt *rt, const chat_str *s, const chat_str *chars, bool left, bool right) {
    size_t b = 0, e = s->len, k;
    if (!chars) {
        while (left && b < e && (k = chat_space_at(s->p + b, e - b)) > 0) b += k;
        while (right && e > b && (k = chat_space_before(s->p + b, e - b)) > 0) e -= k;
        return chat_str_sub(rt, s, b, e);
    }
    for (;;) {
        if (!left || b >= e) break;
        size_t n = (size_t)core_utf8_len((unsigned char)s->p[b]);
        if (!n) n = 1;
        if (!chars->len || !memmem(chars->p, chars->len, s->p + b, n)) break;
        b += n;
    }
    while (right && e > b) {
        size_t i = e - 1;
        while (i > b && ((unsigned char)s->p[i] & 0xC0) == 0x80) i--;
        if (!chars->len || !memmem(chars->p, chars->len, s->p + i, e - i)) break;
        e = i;
    }
    return chat_str_sub(rt, s, b, e);
}

static chat_val f_trim(chat_rt *rt, chat_val v, const chat_args *a) {
    chat_val r = chat_strip(rt, chat_want_str(rt, v), chat_arg_str(rt, a, 0, "chars"), true, true);
    r.flags = v.type == CV_STR ? (v.flags & CVF_SAFE) : 0;
    return r;
}

static chat_val f_length(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    switch ((chat_vtype)v.type) {
    case CV_STR: return chat_int((int64_t)chat_utf8_count(v.u.s->p, v.u.s->len));
    case CV_LIST: return chat_int((int64_t)v.u.l->n);
    case CV_DICT: return chat_int((int64_t)v.u.d->n);
    case CV_UNDEF: return chat_int(0);
    default: chat_fail(rt, "object of type '%s' has no len()", chat_type_name(v));
    }
}

/* Case mapping by code point. mode 0 upper, 1 lower, 2 Jinja's title (a word starts after
 * whitespace or one of "-({[<"), 3 capitalize, 4 Python's str.title (after any uncased char). */
chat_val chat_map_case(chat_rt *rt, chat_val v, int mode) {
    const chat_str *s = chat_want_str(rt, v);
    chat_buf b = {0};
    bool word_start = true;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        int k = core_utf8_decode(s->p + i, s->len - i, &cp);
        bool up = mode == 0 || ((mode == 2 || mode == 4) && word_start) || (mode == 3 && i == 0);
        bool cased = chat_cp_cased(cp);
        char enc[8];
        if (up && cp == 0xDF) {
            chat_buf_put(rt, &b, mode == 0 ? "SS" : "Ss", 2);
        } else if (cp == 0xFFFD && k == 1) {
            chat_buf_put(rt, &b, s->p + i, 1); /* keep invalid bytes as they are */
        } else {
            uint32_t m = up ? chat_cp_upper(cp) : chat_cp_lower(cp);
            chat_buf_put(rt, &b, enc, (size_t)core_utf8_encode(m, enc));
        }
        if (mode == 2)
            word_start = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' ||
                         chat_space_at(s->p + i, s->len - i) > 0;
        if (mode == 4) word_start = !cased;
        i += (size_t)k;
    }
    return chat_str_derived(rt, s, b.p ? b.p : "", b.len);
}
#define map_case chat_map_case
static chat_val f_upper(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    return map_case(rt, v, 0);
}
static chat_val f_lower(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    return map_case(rt, v, 1);
}
static chat_val f_title(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    return map_case(rt, v, 2);
}
static chat_val f_capitalize(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    return map_case(rt, v, 3);
}

static chat_val f_tojson(chat_rt *rt, chat_val v, const chat_args *a) {
    const chat_val *ind = chat_arg(a, 0, "indent");
    int indent = -1;
    if (ind && ind->type == CV_INT) indent = ind->u.i < 0 ? 0 : ind->u.i > 64 ? 64 : (int)ind->u.i;
    chat_buf b = {0};
    chat_write_json(rt, &b, v, indent, chat_arg_bool(a, -1, "sort_keys", false), 0);
    return chat_buf_to_str(rt, &b);
}

static chat_val f_replace(chat_rt *rt, chat_val v, const chat_args *a) {
    const chat_str *s = chat_want_str(rt, v), *old = chat_arg_str(rt, a, 0, "old"),
                   *new = chat_arg_str(rt, a, 1, "new");
    if (!old || !new) chat_fail(rt, "replace() needs the old and the new text");
    int64_t count = chat_arg_int(rt, a, 2, "count", -1);
    chat_buf b = {0};
    size_t i = 0;
    int64_t done = 0;
    while (i <= s->len && (count < 0 || done < count)) {
        const char *hit;
        if (!old->len) {
            /* Python inserts `new` between every character */
            chat_buf_put(rt, &b, new->p, new->len);
            done++;
            if (i == s->len) {
                i++;
                break;
            }
            size_t n = (size_t)core_utf8_len((unsigned char)s->p[i]);
            if (!n) n = 1;
            chat_buf_put(rt, &b, s->p + i, n);
            i += n;
            continue;
        }
        hit = memmem(s->p + i, s->len - i, old->p, old->len);
        if (!hit) break;
        chat_buf_put(rt, &b, s->p + i, (size_t)(hit - (s->p + i)));
        chat_buf_put(rt, &b, new->p, new->len);
        i = (size_t)(hit - s->p) + old->len;
        done++;
    }
    if (i < s->len) chat_buf_put(rt, &b, s->p + i, s->len - i);
    return chat_str_derived(rt, s, b.p ? b.p : "", b.len);
}

static chat_val f_default(chat_rt *rt, chat_val v, const chat_args *a) {
    const chat_val *def = chat_arg(a, 0, "default_value");
    bool boolean = chat_arg_bool(a, 1, "boolean", false);
    if (v.type == CV_UNDEF || (boolean && !chat_truthy(v)))
        return def ? *def : chat_str_lit(rt, "", 0);
    return v;
}

static chat_val f_string(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    return chat_to_str(rt, v);
}
static chat_val f_safe(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    chat_val s = chat_to_str(rt, v);
    s.flags = CVF_SAFE;
    return s;
}

static chat_val f_int(chat_rt *rt, chat_val v, const chat_args *a) {
    if (v.type == CV_UNDEF)
        chat_fail(rt, "'%s' is undefined", v.u.undef_name ? v.u.undef_name : "value");
    const chat_val *def = chat_arg(a, 0, "default");
    int64_t base = chat_arg_int(rt, a, 1, "base", 10);
    switch ((chat_vtype)v.type) {
    case CV_INT: return v;
    case CV_BOOL: return chat_int(v.u.b);
    case CV_FLOAT:
        if (isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) return chat_int((int64_t)v.u.f);
        break;
    case CV_STR: {
        char *e;
        const char *p = v.u.s->p;
        long long i = strtoll(p, &e, (int)base);
        while (*e == ' ') e++;
        if (e != p && !*e) return chat_int(i);
        double f = strtod(p, &e);
        while (*e == ' ') e++;
        if (e != p && !*e && isfinite(f) && fabs(f) < 9.2e18) return chat_int((int64_t)f);
        break;
    }
    default: break;
    }
    return def ? *def : chat_int(0);
}

static chat_val f_float(chat_rt *rt, chat_val v, const chat_args *a) {
    if (v.type == CV_UNDEF)
        chat_fail(rt, "'%s' is undefined", v.u.undef_name ? v.u.undef_name : "value");
    const chat_val *def = chat_arg(a, 0, "default");
    if (v.type == CV_FLOAT) return v;
    if (v.type == CV_INT || v.type == CV_BOOL)
        return chat_float(v.type == CV_INT ? (double)v.u.i : v.u.b);
    if (v.type == CV_STR) {
        char *e;
        double f = strtod(v.u.s->p, &e);
        while (*e == ' ') e++;
        if (e != v.u.s->p && !*e) return chat_float(f);
    }
    return def ? *def : chat_float(0.0);
}

static chat_val f_abs(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    if (v.type == CV_INT) {
        if (v.u.i == INT64_MIN) chat_fail(rt, "integer overflow");
        return chat_int(v.u.i < 0 ? -v.u.i : v.u.i);
    }
    if (v.type == CV_FLOAT) return chat_float(fabs(v.u.f));
    if (v.type == CV_BOOL) return chat_int(v.u.b);
    chat_fail(rt, "bad operand type for abs(): '%s'", chat_type_name(v));
}

static chat_val f_round(chat_rt *rt, chat_val v, const chat_args *a) {
    int64_t prec = chat_arg_int(rt, a, 0, "precision", 0);
    const chat_str *method = chat_arg_str(rt, a, 1, "method");
    if (v.type != CV_INT && v.type != CV_FLOAT && v.type != CV_BOOL)
        chat_fail(rt, "round: expected a number, got %s", chat_type_name(v));
    double x = v.type == CV_FLOAT ? v.u.f : v.type == CV_INT ? (double)v.u.i : v.u.b;
    if (prec < 0 || prec > 30) chat_fail(rt, "round: precision out of range");
    double scale = pow(10.0, (double)prec);
    if (method && strcmp(method->p, "ceil") == 0) return chat_float(ceil(x * scale) / scale);
    if (method && strcmp(method->p, "floor") == 0) return chat_float(floor(x * scale) / scale);
    if (method && strcmp(method->p, "common") != 0)
        chat_fail(rt, "round: method must be common, ceil or floor");
    if (v.type != CV_FLOAT) return v.type == CV_BOOL ? chat_int(v.u.b) : v; /* round(int) is int */
    /* printf rounds the exact binary value half-to-even, as Python's round() does */
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.*f", (int)prec, x);
    return chat_float(strtod(tmp, NULL));
}

static bool is_line_break(const char *p, size_t n, size_t *len) {
    unsigned char c = (unsigned char)p[0];
    if (c == '\r') {
        *len = n > 1 && p[1] == '\n' ? 2 : 1;
        return true;
    }
    *len = 0;
    if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e))
        *len = 1;
    else if (n >= 2 && c == 0xC2 && (unsigned char)p[1] == 0x85)
        *len = 2;
    else if (n >= 3 && c == 0xE2 && (unsigned char)p[1] == 0x80 &&
             ((unsigned char)p[2] == 0xA8 || (unsigned char)p[2] == 0xA9))
        *len = 3;
    return *len != 0;
}

static chat_val f_indent(chat_rt *rt, chat_val v, const chat_args *a) {
    /* Jinja appends "\n" to its input, which only a string survives */
    if (v.type == CV_UNDEF)
        chat_fail(rt, "'%s' is undefined", v.u.undef_name ? v.u.undef_name : "value");
    if (v.type != CV_STR) chat_fail(rt, "indent: expected a string, got %s", chat_type_name(v));
    const chat_str *s = v.u.s;
    const chat_val *w = chat_arg(a, 0, "width");
    bool first = chat_arg_bool(a, 1, "first", false), blank = chat_arg_bool(a, 2, "blank", false);
    chat_buf ind = {0};
    if (w && w->type == CV_STR)
        chat_buf_put_str(rt, &ind, w->u.s);
    else {
        int64_t n = chat_arg_int(rt, a, 0, "width", 4);
        for (int64_t i = 0; i < n && i < 1024; i++) chat_buf_put(rt, &ind, " ", 1);
    }
    /* Jinja splits `s + "\n"` with str.splitlines() and joins with "\n": the segments of s
     * between line breaks, the last one possibly empty */
    chat_buf out = {0};
    size_t i = 0;
    for (bool firstseg = true;; firstseg = false) {
        size_t j = i, brk = 0;
        while (j < s->len && !is_line_break(s->p + j, s->len - j, &brk)) j++;
        if (!firstseg) chat_buf_put(rt, &out, "\n", 1);
        if (firstseg ? first : (blank || j > i))
            chat_buf_put(rt, &out, ind.p ? ind.p : "", ind.len);
        chat_buf_put(rt, &out, s->p + i, j - i);
        if (j >= s->len) break;
        i = j + brk;
    }
    return chat_str_derived(rt, s, out.p ? out.p : "", out.len);
}

chat_val chat_html_escape(chat_rt *rt, const chat_str *s) {
    chat_buf b = {0};
    for (size_t i = 0; i < s->len; i++) {
        const char *e = NULL;
        switch (s->p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&#34;"; break;
        case '\'': e = "&#39;"; break;
        }
        if (e)
            chat_buf_put(rt, &b, e, strlen(e));
        else
            chat_buf_put(rt, &b, s->p + i, 1);
    }
    chat_val r = chat_str_derived(rt, s, b.p ? b.p : "", b.len);
    r.flags = CVF_SAFE;
    return r;
}

static chat_val f_escape(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    if (v.type == CV_STR && (v.flags & CVF_SAFE)) return v;
    return chat_html_escape(rt, chat_want_str(rt, v));
}

/* "%s, %s"|format(a, b): Python %-formatting with the arguments as a tuple (or the keywords). */
static chat_val f_format(chat_rt *rt, chat_val v, const chat_args *a) {
    if (a->n && a->nk) chat_fail(rt, "format: positional and keyword arguments cannot be mixed");
    chat_val args;
    if (a->nk) {
        chat_dict *d = chat_dict_new(rt, (size_t)a->nk);
        for (int i = 0; i < a->nk; i++) chat_dict_set(rt, d, chat_str_cstr(rt, a->kn[i]), a->kv[i]);
        args = chat_dictv(d);
    } else {
        chat_list *l = chat_list_new(rt, (size_t)a->n);
        for (int i = 0; i < a->n; i++) l->v[l->n++] = a->pos[i];
        args = chat_listv(l);
        args.flags = CVF_TUPLE;
    }
    return chat_percent_format(rt, chat_want_str(rt, v), args);
}

static chat_val f_wordcount(chat_rt *rt, chat_val v, const chat_args *a) {
    (void)a;
    const chat_str *s = chat_want_str(rt, v);
    int64_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->p[i];
        bool w = c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                 (c >= 'A' && c <= 'Z') || c == '_';
        if (w && !in_word) n++;
        in_word = w;
    }
    return chat_int(n);
}

static const struct {
    const char *name;
    chat_filter_fn fn;
} filters[] = {
#define CHAT_SEQ_ROW(name) {#name, chat_f_##name},
    CHAT_SEQ_FILTERS(CHAT_SEQ_ROW)
#undef CHAT_SEQ_ROW
        {"trim", f_trim},
    {"length", f_length},
    {"count", f_length},
    {"upper", f_upper},
    {"lower", f_lower},
    {"title", f_title},
    {"capitalize", f_capitalize},
    {"tojson", f_tojson},
    {"replace", f_replace},
    {"default", f_default},
    {"d", f_default},
    {"string", f_string},
    {"safe", f_safe},
    {"int", f_int},
    {"float", f_float},
    {"abs", f_abs},
    {"round", f_round},
    {"indent", f_indent},
    {"escape", f_escape},
    {"e", f_escape},
    {"wordcount", f_wordcount},
    {"format", f_format},
};

chat_filter_fn chat_filter_find(const char *name) {
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (strcmp(filters[i].name, name) == 0) return filters[i].fn;
    return NULL;
}
