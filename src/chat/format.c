/* Python's printf-style string formatting (`'%s: %d' % (a, b)`, `'%(k)s' % d`, the `format`
 * filter): conversions s r d i f F e E g G x X o c and %, with flags, width and precision. */
#include "jinja.h"

#include <stdio.h>
#include <string.h>

static chat_val next_arg(chat_rt *rt, chat_val args, size_t *k, const char *key, size_t key_len) {
    if (key) {
        if (args.type != CV_DICT) chat_fail(rt, "format requires a mapping");
        chat_val kv = chat_str_lit(rt, key, key_len);
        chat_val *v = chat_dict_get(args.u.d, kv);
        if (!v) chat_fail(rt, "format: no key '%.*s'", (int)key_len, key);
        return *v;
    }
    bool tuple = args.type == CV_LIST && (args.flags & CVF_TUPLE);
    if (!tuple) {
        if ((*k)++ > 0) chat_fail(rt, "not enough arguments for format string");
        return args;
    }
    if (*k >= args.u.l->n) chat_fail(rt, "not enough arguments for format string");
    return args.u.l->v[(*k)++];
}

static double as_double(chat_rt *rt, chat_val v, char conv) {
    if (v.type == CV_FLOAT) return v.u.f;
    if (v.type == CV_INT) return (double)v.u.i;
    if (v.type == CV_BOOL) return v.u.b;
    chat_fail(rt, "%%%c format: a real number is required, not %s", conv, chat_type_name(v));
}

static long long as_int(chat_rt *rt, chat_val v, char conv) {
    if (v.type == CV_INT) return (long long)v.u.i;
    if (v.type == CV_BOOL) return v.u.b;
    if (v.type == CV_FLOAT && v.u.f > -9.2e18 && v.u.f < 9.2e18) return (long long)v.u.f;
    chat_fail(rt, "%%%c format: a number is required, not %s", conv, chat_type_name(v));
}

chat_val chat_percent_format(chat_rt *rt, const chat_str *fmt, chat_val args) {
    chat_buf b = {0};
    size_t k = 0;
    const char *p = fmt->p, *end = fmt->p + fmt->len;
    while (p < end) {
        const char *pct = memchr(p, '%', (size_t)(end - p));
        if (!pct) pct = end;
        chat_buf_put(rt, &b, p, (size_t)(pct - p));
        if (pct == end) break;
        p = pct + 1;
        if (p < end && *p == '%') {
            chat_buf_put(rt, &b, "%", 1);
            p++;
            continue;
        }
        const char *key = NULL;
        size_t key_len = 0;
        if (p < end && *p == '(') {
            const char *close = memchr(p, ')', (size_t)(end - p));
            if (!close) chat_fail(rt, "format: incomplete format key");
            key = p + 1;
            key_len = (size_t)(close - key);
            p = close + 1;
        }
        char spec[32] = "%";
        size_t s = 1;
        while (p < end && strchr("-+ 0#", *p) && s < 8) spec[s++] = *p++;
        int width = -1, prec = -1;
        if (p < end && *p == '*') chat_fail(rt, "format: '*' widths are not supported");
        while (p < end && *p >= '0' && *p <= '9')
            width = (width < 0 ? 0 : width * 10) + (*p++ - '0');
        if (p < end && *p == '.') {
            p++;
            prec = 0;
            while (p < end && *p >= '0' && *p <= '9') prec = prec * 10 + (*p++ - '0');
        }
        if (width > 1000 || prec > 1000) chat_fail(rt, "format: width or precision too large");
        if (p >= end) chat_fail(rt, "format: incomplete format");
        char conv = *p++;
        chat_val v = next_arg(rt, args, &k, key, key_len);
        char tmp[1200];
        if (conv == 's' || conv == 'r' || conv == 'c') {
            chat_buf sb = {0};
            if (conv == 'c') {
                char c[5] = {0};
                if (v.type == CV_STR && chat_utf8_count(v.u.s->p, v.u.s->len) == 1)
                    chat_buf_put(rt, &sb, v.u.s->p, v.u.s->len);
                else if (v.type == CV_INT && v.u.i >= 0 && v.u.i <= 0x10FFFF)
                    chat_buf_put(rt, &sb, c, (size_t)core_utf8_encode((uint32_t)v.u.i, c));
                else
                    chat_fail(rt, "%%c requires an int or a single character");
            } else if (conv == 's') {
                chat_write_str(rt, &sb, v);
            } else {
                chat_write_repr(rt, &sb, v);
            }
            size_t n = sb.len, chars = chat_utf8_count(sb.p ? sb.p : "", sb.len);
            if (prec >= 0 && chars > (size_t)prec) { /* precision truncates, by characters */
                size_t i = 0, c = 0;
                while (i < sb.len && c < (size_t)prec) {
                    i++;
                    while (i < sb.len && ((unsigned char)sb.p[i] & 0xC0) == 0x80) i++;
                    c++;
                }
                n = i;
                chars = (size_t)prec;
            }
            bool left = strchr(spec, '-') != NULL;
            size_t pad = width > 0 && (size_t)width > chars ? (size_t)width - chars : 0;
            for (size_t i = 0; !left && i < pad; i++) chat_buf_put(rt, &b, " ", 1);
            chat_buf_put(rt, &b, sb.p ? sb.p : "", n);
            for (size_t i = 0; left && i < pad; i++) chat_buf_put(rt, &b, " ", 1);
            continue;
        }
        if (width >= 0) s += (size_t)snprintf(spec + s, sizeof spec - s, "%d", width);
        if (prec >= 0) s += (size_t)snprintf(spec + s, sizeof spec - s, ".%d", prec);
        int n;
        if (strchr("diuxXo", conv)) {
            snprintf(spec + s, sizeof spec - s, "ll%c", conv == 'i' || conv == 'u' ? 'd' : conv);
            n = snprintf(tmp, sizeof tmp, spec, as_int(rt, v, conv));
        } else if (strchr("fFeEgG", conv)) {
            snprintf(spec + s, sizeof spec - s, "%c", conv);
            n = snprintf(tmp, sizeof tmp, spec, as_double(rt, v, conv));
        } else {
            chat_fail(rt, "format: unsupported conversion '%%%c'", conv);
        }
        chat_buf_put(rt, &b, tmp,
                     n > 0 ? (size_t)(n < (int)sizeof tmp ? n : (int)sizeof tmp - 1) : 0);
    }
    bool tuple = args.type == CV_LIST && (args.flags & CVF_TUPLE);
    /* Python: unused tuple items or an unused scalar are an error; anything with __getitem__
     * (dict, list) counts as a mapping, which may go unused */
    if ((tuple && k < args.u.l->n) ||
        (!tuple && args.type != CV_DICT && args.type != CV_LIST && args.type != CV_UNDEF && k == 0))
        chat_fail(rt, "not all arguments converted during string formatting");
    return chat_buf_to_str(rt, &b);
}
