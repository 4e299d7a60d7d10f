/* Turning values into text the way Python does: str(), repr() and json.dumps(ensure_ascii=False),
 * since chat templates were written against Python's Jinja and models saw its output. */
#include "jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_c(chat_rt *rt, chat_buf *b, const char *s) {
    chat_buf_put(rt, b, s, strlen(s));
}

/* Python's float repr: the shortest digits that read back to the same double, in fixed notation
 * for exponents -4..15 and scientific ("1e+16", "1.5e-07") otherwise. */
void chat_write_float(chat_rt *rt, chat_buf *b, double f) {
    if (isnan(f)) return put_c(rt, b, "nan");
    if (isinf(f)) return put_c(rt, b, f < 0 ? "-inf" : "inf");
    char tmp[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp is "[-]d[.ddd]e[+-]XX" */
    bool neg = tmp[0] == '-';
    const char *m = tmp + neg;
    char digits[32];
    int nd = 0;
    const char *e = strchr(m, 'e');
    for (const char *q = m; q < e; q++)
        if (*q != '.') digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp = atoi(e + 1);
    char out[64];
    int o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    }
    put_c(rt, b, out);
}

static void write_int(chat_rt *rt, chat_buf *b, int64_t i) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)i);
    put_c(rt, b, tmp);
}

static void write_str_repr(chat_rt *rt, chat_buf *b, const chat_str *s) {
    bool has_sq = memchr(s->p, '\'', s->len) != NULL, has_dq = memchr(s->p, '"', s->len) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    chat_buf_put(rt, b, &q, 1);
    size_t run = 0;
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->p[i];
        const char *esc = NULL;
        char tmp[8];
        if (c == '\\')
            esc = "\\\\";
        else if (c == (unsigned char)q)
            esc = q == '"' ? "\\\"" : "\\'";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            esc = tmp;
        }
        if (!esc) continue;
        chat_buf_put(rt, b, s->p + run, i - run);
        put_c(rt, b, esc);
        run = i + 1;
    }
    chat_buf_put(rt, b, s->p + run, s->len - run);
    chat_buf_put(rt, b, &q, 1);
}

static void write_any(chat_rt *rt, chat_buf *b, chat_val v, bool repr) {
    switch ((chat_vtype)v.type) {
    case CV_UNDEF:
        if (repr) put_c(rt, b, "Undefined"); /* Jinja's Undefined.__repr__ */
        return;
    case CV_NONE: return put_c(rt, b, "None");
    case CV_BOOL: return put_c(rt, b, v.u.b ? "True" : "False");
    case CV_INT: return write_int(rt, b, v.u.i);
    case CV_FLOAT: return chat_write_float(rt, b, v.u.f);
    case CV_STR:
        if (repr && (v.flags & CVF_SAFE)) {
            put_c(rt, b, "Markup(");
            write_str_repr(rt, b, v.u.s);
            return put_c(rt, b, ")");
        }
        if (repr) return write_str_repr(rt, b, v.u.s);
        return chat_buf_put(rt, b, v.u.s->p, v.u.s->len);
    case CV_LIST: {
        bool tuple = v.flags & CVF_TUPLE;
        put_c(rt, b, tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) put_c(rt, b, ", ");
            write_any(rt, b, v.u.l->v[i], true);
        }
        if (tuple && v.u.l->n == 1) put_c(rt, b, ",");
        return put_c(rt, b, tuple ? ")" : "]");
    }
    case CV_DICT:
        if (v.flags & CVF_NS) put_c(rt, b, "<Namespace ");
        put_c(rt, b, "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) put_c(rt, b, ", ");
            write_any(rt, b, v.u.d->k[i], true);
            put_c(rt, b, ": ");
            write_any(rt, b, v.u.d->v[i], true);
        }
        put_c(rt, b, "}");
        if (v.flags & CVF_NS) put_c(rt, b, ">");
        return;
    case CV_FUNC:
        put_c(rt, b, "<function ");
        put_c(rt, b, v.u.fn->name ? v.u.fn->name : "?");
        return put_c(rt, b, ">");
    case CV_LOOP: return put_c(rt, b, "<LoopContext>");
    }
}

void chat_write_str(chat_rt *rt, chat_buf *b, chat_val v) {
    if (v.type == CV_STR) return chat_buf_put_str(rt, b, v.u.s);
    write_any(rt, b, v, false);
}

void chat_write_repr(chat_rt *rt, chat_buf *b, chat_val v) {
    write_any(rt, b, v, true);
}

chat_val chat_to_str(chat_rt *rt, chat_val v) {
    if (v.type == CV_STR) return v;
    chat_buf b = {0};
    write_any(rt, &b, v, false);
    return chat_buf_to_str(rt, &b);
}

/* ---- json.dumps ---- */

static void json_text(chat_rt *rt, chat_buf *b, const char *p, size_t n) {
    put_c(rt, b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char tmp[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
            }
        }
        if (!esc) continue;
        chat_buf_put(rt, b, p + run, i - run);
        put_c(rt, b, esc);
        run = i + 1;
    }
    chat_buf_put(rt, b, p + run, n - run);
    put_c(rt, b, "\"");
}

static void json_newline(chat_rt *rt, chat_buf *b, int indent, int level) {
    put_c(rt, b, "\n");
    for (int i = 0; i < indent * level; i++) chat_buf_put(rt, b, " ", 1);
}

static int cmp_keys(const void *x, const void *y) {
    const chat_val *a = *(const chat_val *const *)x, *c = *(const chat_val *const *)y;
    if (a->type != CV_STR || c->type != CV_STR) return 0;
    size_t n = a->u.s->len < c->u.s->len ? a->u.s->len : c->u.s->len;
    int r = memcmp(a->u.s->p, c->u.s->p, n);
    return r ? r : (a->u.s->len > c->u.s->len) - (a->u.s->len < c->u.s->len);
}

void chat_write_json(chat_rt *rt, chat_buf *b, chat_val v, int indent, bool sort_keys, int level) {
    if (level > 512) chat_fail(rt, "tojson: value nested too deeply");
    const char *item_sep = indent >= 0 ? "," : ", ";
    switch ((chat_vtype)v.type) {
    case CV_NONE: return put_c(rt, b, "null");
    case CV_BOOL: return put_c(rt, b, v.u.b ? "true" : "false");
    case CV_INT: return write_int(rt, b, v.u.i);
    case CV_FLOAT:
        if (isnan(v.u.f)) return put_c(rt, b, "NaN");
        if (isinf(v.u.f)) return put_c(rt, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        return chat_write_float(rt, b, v.u.f);
    case CV_STR: return json_text(rt, b, v.u.s->p, v.u.s->len);
    case CV_LIST:
        if (!v.u.l->n) return put_c(rt, b, "[]");
        put_c(rt, b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) put_c(rt, b, item_sep);
            if (indent >= 0) json_newline(rt, b, indent, level + 1);
            chat_write_json(rt, b, v.u.l->v[i], indent, sort_keys, level + 1);
        }
        if (indent >= 0) json_newline(rt, b, indent, level);
        return put_c(rt, b, "]");
    case CV_DICT: {
        const chat_dict *d = v.u.d;
        if (!d->n) return put_c(rt, b, "{}");
        const chat_val **order = chat_alloc(rt, d->n * sizeof *order);
        for (size_t i = 0; i < d->n; i++) order[i] = &d->k[i];
        if (sort_keys) qsort(order, d->n, sizeof *order, cmp_keys);
        put_c(rt, b, "{");
        for (size_t i = 0; i < d->n; i++) {
            size_t k = (size_t)(order[i] - d->k);
            if (i) put_c(rt, b, item_sep);
            if (indent >= 0) json_newline(rt, b, indent, level + 1);
            chat_val key = d->k[k];
            if (key.type == CV_STR) {
                json_text(rt, b, key.u.s->p, key.u.s->len);
            } else if (key.type == CV_INT || key.type == CV_FLOAT || key.type == CV_BOOL ||
                       key.type == CV_NONE) {
                /* Python turns scalar keys into their JSON text, quoted */
                chat_buf kb = {0};
                chat_write_json(rt, &kb, key, -1, false, level + 1);
                json_text(rt, b, kb.p, kb.len);
            } else {
                chat_fail(rt, "tojson: keys must be str, int, float, bool or None, not %s",
                          chat_type_name(key));
            }
            put_c(rt, b, ": ");
            chat_write_json(rt, b, d->v[k], indent, sort_keys, level + 1);
        }
        if (indent >= 0) json_newline(rt, b, indent, level);
        return put_c(rt, b, "}");
    }
    case CV_UNDEF:
        chat_fail(rt, "tojson: '%s' is undefined", v.u.undef_name ? v.u.undef_name : "value");
    default: chat_fail(rt, "tojson: object of type %s is not JSON serializable", chat_type_name(v));
    }
}
