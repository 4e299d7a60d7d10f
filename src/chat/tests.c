/* The test table (`x is defined`, `x is string`, `selectattr("type", "equalto", "code")`, ...),
 * with Python's answers: a bool is a number, an undefined value is iterable (as Jinja's
 * Undefined is), a namespace is not a mapping. */
#include "jinja.h"

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
TEST(even) {
    (void)a;
    return int_of(rt, v, "even") % 2 == 0;
}
TEST(odd) {
    (void)a;
    return int_of(rt, v, "odd") % 2 != 0;
}
TEST(divisibleby) {
    int64_t d = int_of(rt, arg0(rt, a, "divisibleby"), "divisibleby");
    if (d == 0) chat_fail(rt, "divisibleby 0");
    return int_of(rt, v, "divisibleby") % d == 0;
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
static bool cased(chat_val v, bool upper) {
    if (v.type != CV_STR) return false;
    bool any = false;
    for (size_t i = 0; i < v.u.s->len; i++) {
        char c = v.u.s->p[i];
        if ((upper && c >= 'a' && c <= 'z') || (!upper && c >= 'A' && c <= 'Z')) return false;
        any |= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
    return any;
}
TEST(lower) {
    UNUSED;
    return cased(v, false);
}
TEST(upper) {
    UNUSED;
    return cased(v, true);
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
