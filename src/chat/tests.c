/* The test table (`x is defined`, `x is string`, `selectattr("type", "equalto", "code")`, ...),
 * with Python's answers: a bool is a number, an undefined value is iterable (as Jinja's
 * Undefined is), a namespace is not a mapping. */
#include "jinja.h"

#include <math.h>
#include <string.h>

static chat_val arg0(chat_rt *rt, const chat_args *a, const char *test) {
    if (a->n < 1) chat_fail(rt, "test '%s' needs an argument", test);
    return a->pos[0];
}

static int64_t int_of(chat_rt *rt, chat_val v, const char *test) {
    if (v.type == CV_INT) return v.u.i;
    if (v.type == CV_BOOL) return v.u.b;
    chat_fail(rt, "test '%s' needs an integer, got %s", test, chat_type_name(v));
}

#define TEST(name) static bool t_##name(chat_rt *rt, chat_val v, const chat_args *a)
#define UNUSED     (void)rt, (void)a

TEST(defined) {
    UNUSED;
    return v.type != CV_UNDEF;
}
TEST(undefined) {
    UNUSED;
    return v.type == CV_UNDEF;
}
TEST(none) {
    UNUSED;
    return v.type == CV_NONE;
}
TEST(string) {
    UNUSED;
    return v.type == CV_STR;
}
TEST(mapping) {
    UNUSED;
    return v.type == CV_DICT && !(v.flags & CVF_NS);
}
TEST(iterable) {
    UNUSED;
    return v.type == CV_STR || v.type == CV_LIST || v.type == CV_UNDEF || v.type == CV_LOOP ||
           (v.type == CV_DICT && !(v.flags & CVF_NS));
}
TEST(sequence) {
    UNUSED;
    return v.type == CV_STR || v.type == CV_LIST || v.type == CV_UNDEF ||
           (v.type == CV_DICT && !(v.flags & CVF_NS));
}
TEST(number) {
    UNUSED;
    return v.type == CV_INT || v.type == CV_FLOAT || v.type == CV_BOOL;
}
TEST(integer) {
    UNUSED;
    return v.type == CV_INT;
}
TEST(float) {
    UNUSED;
    return v.type == CV_FLOAT;
}
TEST(boolean) {
    UNUSED;
    return v.type == CV_BOOL;
}
TEST(true) {
    UNUSED;
    return v.type == CV_BOOL && v.u.b;
}
TEST(false) {
    UNUSED;
    return v.type == CV_BOOL && !v.u.b;
}
TEST(callable) {
    UNUSED;
    return v.type == CV_FUNC;
}
/* Python's `value % n == r` for ints and floats alike. */
static bool modulo_is(chat_rt *rt, chat_val v, chat_val n, double r, const char *test) {
    bool vi = v.type == CV_INT || v.type == CV_BOOL, ni = n.type == CV_INT || n.type == CV_BOOL;
    if (!(vi || v.type == CV_FLOAT) || !(ni || n.type == CV_FLOAT))
        chat_fail(rt, "test '%s' needs numbers, got %s and %s", test, chat_type_name(v),
                  chat_type_name(n));
    if (vi && ni) {
        int64_t d = int_of(rt, n, test);
        if (d == 0) chat_fail(rt, "test '%s': modulo by zero", test);
        int64_t m = int_of(rt, v, test) % d;
        if (m != 0 && ((m < 0) != (d < 0))) m += d;
        return (double)m == r;
    }
    double x = v.type == CV_FLOAT ? v.u.f : (double)int_of(rt, v, test);
    double d = n.type == CV_FLOAT ? n.u.f : (double)int_of(rt, n, test);
    if (d == 0.0) chat_fail(rt, "test '%s': modulo by zero", test);
    double m = fmod(x, d);
    if (m != 0.0 && ((m < 0) != (d < 0))) m += d;
    return m == r;
}
TEST(even) {
    (void)a;
    return modulo_is(rt, v, chat_int(2), 0, "even");
}
TEST(odd) {
    (void)a;
    return modulo_is(rt, v, chat_int(2), 1, "odd");
}
TEST(divisibleby) {
    return modulo_is(rt, v, arg0(rt, a, "divisibleby"), 0, "divisibleby");
}

TEST(eq) {
    return chat_equal(v, arg0(rt, a, "eq"));
}
TEST(ne) {
    return !chat_equal(v, arg0(rt, a, "ne"));
}
TEST(lt) {
    return chat_compare(rt, v, arg0(rt, a, "lt")) < 0;
}
TEST(le) {
    return chat_compare(rt, v, arg0(rt, a, "le")) <= 0;
}
TEST(gt) {
    return chat_compare(rt, v, arg0(rt, a, "gt")) > 0;
}
TEST(ge) {
    return chat_compare(rt, v, arg0(rt, a, "ge")) >= 0;
}
TEST(in) {
    chat_val seq = arg0(rt, a, "in");
    if (seq.type == CV_STR) {
        if (v.type != CV_STR) return false;
        return !v.u.s->len || memmem(seq.u.s->p, seq.u.s->len, v.u.s->p, v.u.s->len) != NULL;
    }
    if (seq.type == CV_DICT) return chat_dict_get(seq.u.d, v) != NULL;
    chat_list *l = chat_iterable(rt, seq);
    for (size_t i = 0; i < l->n; i++)
        if (chat_equal(l->v[i], v)) return true;
    return false;
}
TEST(sameas) {
    chat_val o = arg0(rt, a, "sameas");
    if (v.type != o.type) return false;
    switch ((chat_vtype)v.type) {
    case CV_NONE:
    case CV_UNDEF: return true;
    case CV_BOOL: return v.u.b == o.u.b;
    case CV_INT: return v.u.i == o.u.i;
    case CV_STR: return v.u.s == o.u.s;
    case CV_LIST: return v.u.l == o.u.l;
    case CV_DICT: return v.u.d == o.u.d;
    default: return chat_equal(v, o);
    }
}
/* str(value).islower() / .isupper(): cased characters exist and all have the case. */
static bool cased(chat_rt *rt, chat_val v, bool upper) {
    const chat_str *s = chat_want_str(rt, v);
    bool any = false;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->p[i];
        if ((upper && c >= 'a' && c <= 'z') || (!upper && c >= 'A' && c <= 'Z')) return false;
        any |= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
    return any;
}
TEST(lower) {
    (void)a;
    return cased(rt, v, false);
}
TEST(upper) {
    (void)a;
    return cased(rt, v, true);
}

static const struct {
    const char *name;
    chat_test_fn fn;
} tests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"string", t_string},
    {"mapping", t_mapping},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"number", t_number},
    {"integer", t_integer},
    {"float", t_float},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"callable", t_callable},
    {"even", t_even},
    {"odd", t_odd},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"in", t_in},
    {"sameas", t_sameas},
    {"lower", t_lower},
    {"upper", t_upper},
};

chat_test_fn chat_test_find(const char *name) {
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (strcmp(tests[i].name, name) == 0) return tests[i].fn;
    return NULL;
}
