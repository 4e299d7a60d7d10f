/* Integers and numbers with bounds as exact digit rules: an integer range is split by digit
 * count and then digit by digit; a number's bound is met by its integer part and, at the bound's
 * own integer part, by a small automaton over the fraction digits. Numbers with a bound are
 * written without an exponent; integers have at most GS_INT_DIGITS digits unless a bound needs
 * more (the grammar is a subset of the valid numbers, never more). */
#include "grammar/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INT_MAX_MAG 999999999999999LL /* GS_INT_DIGITS nines */

/* ---- integer ranges ---- */

/* Digits a[0..n) to b[0..n) (same length, a <= b) into b as an expression. */
static void same_len(gs_buf *o, const char *a, const char *b, size_t n) {
    size_t k = 0;
    while (k < n && a[k] == b[k]) k++;
    if (k) gs_lit(o, a, k);
    if (k == n) return;
    size_t r = n - k - 1;
    bool a_zero = true, b_nine = true;
    for (size_t i = k + 1; i < n; i++) {
        a_zero &= a[i] == '0';
        b_nine &= b[i] == '9';
    }
    char lo = a_zero ? a[k] : (char)(a[k] + 1), hi = b_nine ? b[k] : (char)(b[k] - 1);
    gs_put(o, k ? " ( " : "( ");
    int alts = 0;
    char nines[32], zeros[32];
    memset(nines, '9', r);
    memset(zeros, '0', r);
    if (!a_zero) {
        gs_printf(o, "\"%c\" ", a[k]);
        same_len(o, a + k + 1, nines, r);
        alts++;
    }
    if (lo <= hi) {
        gs_put(o, alts++ ? " | " : "");
        gs_printf(o, "[%c-%c]", lo, hi);
        if (r) gs_printf(o, " [0-9]{%zu}", r);
    }
    if (!b_nine) {
        gs_put(o, alts++ ? " | " : "");
        gs_printf(o, "\"%c\" ", b[k]);
        same_len(o, zeros, b + k + 1, r);
    }
    gs_put(o, " )");
}

/* Non-negative integers lo..hi without leading zeros. */
static void uint_range(gs_buf *o, long long lo, long long hi) {
    char a[32], b[32];
    int alts = 0;
    gs_put(o, "( ");
    for (int d = 1; d <= 18; d++) {
        long long first = d == 1 ? 0 : (long long)pow(10, d - 1), last = (long long)pow(10, d) - 1;
        long long x = lo > first ? lo : first, y = hi < last ? hi : last;
        if (x > y) continue;
        snprintf(a, sizeof a, "%lld", x);
        snprintf(b, sizeof b, "%lld", y);
        gs_put(o, alts++ ? " | " : "");
        same_len(o, a, b, strlen(a));
    }
    gs_put(o, " )");
}

static void int_range(gs_buf *o, long long lo, long long hi) {
    int alts = 0;
    gs_put(o, "( ");
    if (hi >= 0) {
        uint_range(o, lo > 0 ? lo : 0, hi);
        alts++;
    }
    if (lo < 0) {
        gs_put(o, alts++ ? " | \"-\" " : "\"-\" ");
        uint_range(o, hi < 0 ? -hi : 1, -lo);
    }
    gs_put(o, " )");
}

/* ---- bounds ---- */

typedef struct bound {
    bool set, excl;
    double v;
} bound;

static bool read_bounds(gs_ctx *c, json_t *s, const char *path, bound *lo, bound *hi) {
    static const struct {
        const char *kw;
        bool upper, excl;
    } kws[] = {{"minimum", false, false},
               {"exclusiveMinimum", false, true},
               {"maximum", true, false},
               {"exclusiveMaximum", true, true}};
    *lo = *hi = (bound){0};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(s, kws[i].kw);
        if (!v || json_is_boolean(v)) continue;
        if (!json_is_number(v)) return gs_fail(c, path, kws[i].kw, "must be a number"), false;
        double d = json_number_value(v);
        bound *b = kws[i].upper ? hi : lo;
        bool stricter =
            !b->set || (kws[i].upper ? d < b->v : d > b->v) || (d == b->v && kws[i].excl);
        if (stricter) *b = (bound){true, kws[i].excl, d};
    }
    /* Draft 4: exclusiveMinimum/Maximum true make minimum/maximum exclusive. */
    if (json_is_true(json_object_get(s, "exclusiveMinimum")) && json_object_get(s, "minimum"))
        lo->excl = true;
    if (json_is_true(json_object_get(s, "exclusiveMaximum")) && json_object_get(s, "maximum"))
        hi->excl = true;
    return true;
}

static const char *integer_rule(gs_ctx *c, const bound *lo, const bound *hi, const char *path) {
    double l = -(double)INT_MAX_MAG, h = (double)INT_MAX_MAG;
    if (lo->set) l = lo->excl ? floor(lo->v) + 1 : ceil(lo->v);
    if (hi->set) h = hi->excl ? ceil(hi->v) - 1 : floor(hi->v);
    if (l > (double)INT_MAX_MAG || h < -(double)INT_MAX_MAG)
        return gs_fail(c, path, lo->set && l > 0 ? "minimum" : "maximum",
                       "bounds beyond +-%lld are not supported for integers", INT_MAX_MAG);
    if (l < -(double)INT_MAX_MAG) l = -(double)INT_MAX_MAG;
    if (h > (double)INT_MAX_MAG) h = (double)INT_MAX_MAG;
    if (l > h) return gs_fail(c, path, "minimum", "no integer lies within the bounds");
    gs_buf b = {0};
    int_range(&b, (long long)l, (long long)h);
    const char *r = b.oom ? gs_fail(c, path, NULL, "out of memory") : gs_rule(c, "int", b.p);
    gs_buf_free(&b);
    return r;
}

/* ---- fractions ---- */

/* A decimal magnitude split into integer part and fraction digits (no trailing zeros). */
typedef struct dec {
    long long ip;
    char fp[48];
} dec;

static bool to_dec(double v, dec *d) {
    char buf[64];
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*f", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (p > 17) snprintf(buf, sizeof buf, "%.17f", v);
    char *dot = strchr(buf, '.');
    d->ip = strtoll(buf, NULL, 10);
    snprintf(d->fp, sizeof d->fp, "%s", dot ? dot + 1 : "");
    size_t n = strlen(d->fp);
    while (n && d->fp[n - 1] == '0') d->fp[--n] = 0;
    return fabs(v) <= (double)INT_MAX_MAG;
}

#define FK 48 /* fraction automaton positions */

typedef struct frac {
    const char *a, *b; /* lower / upper fraction digits or NULL */
    size_t la, lb, K;
    size_t max; /* fraction digits at most: 16, or one past the bound's own */
    bool ax, bx;
    bool ne[FK + 1][2][2];
    const char *rule[FK + 1][2][2];
} frac;

static bool end_ok(const frac *f, size_t k, int tl, int th) {
    bool ok = true;
    if (tl) ok &= k >= f->la && !f->ax;
    if (th && k >= f->lb) ok &= !f->bx;
    return ok;
}

/* The digit choices of a state: fn(digit lo, digit hi, next tl, next th) per alternative. */
typedef void (*alt_fn)(void *u, char lo, char hi, int tl, int th);
static void alternatives(const frac *f, size_t k, int tl, int th, alt_fn fn, void *u) {
    if (k >= f->max) return; /* a model cannot write zeros forever */
    char dlo = tl ? (k < f->la ? f->a[k] : '0') : '0';
    char dhi = th ? (k < f->lb ? f->b[k] : '0') : '9';
    if (tl && th && dlo == dhi) {
        fn(u, dlo, dlo, 1, 1);
        return;
    }
    if (tl) fn(u, dlo, dlo, 1, 0);
    if (th) fn(u, dhi, dhi, 0, 1);
    char mlo = tl ? (char)(dlo + 1) : dlo, mhi = th ? (char)(dhi - 1) : dhi;
    if (mlo <= mhi) fn(u, mlo, mhi, 0, 0);
}

typedef struct ne_ctx {
    frac *f;
    size_t k;
    bool any;
} ne_ctx;

static void ne_alt(void *u, char lo, char hi, int tl, int th) {
    ne_ctx *x = u;
    size_t k = x->k + 1;
    (void)lo, (void)hi;
    if ((!tl && !th) || end_ok(x->f, x->k + 1, tl, th) || x->f->ne[k][tl][th]) x->any = true;
}

typedef struct emit_ctx {
    gs_ctx *c;
    frac *f;
    size_t k;
    gs_buf *b;
    int alts;
    const char *path;
} emit_ctx;

static const char *state_rule(gs_ctx *c, frac *f, size_t k, int tl, int th, const char *path);

static void emit_alt(void *u, char lo, char hi, int tl, int th) {
    emit_ctx *x = u;
    size_t k = x->k + 1;
    bool end = (!tl && !th) || end_ok(x->f, x->k + 1, tl, th);
    bool more = (!tl && !th) || x->f->ne[k][tl][th];
    if (!end && !more) return;
    gs_put(x->b, x->alts++ ? " | " : "");
    if (lo == hi)
        gs_printf(x->b, "\"%c\"", lo);
    else
        gs_printf(x->b, "[%c-%c]", lo, hi);
    if (!tl && !th) {
        if (x->f->max > k) gs_printf(x->b, " [0-9]{0,%zu}", x->f->max - k);
        return;
    }
    if (!more) return;
    const char *r = state_rule(x->c, x->f, k, tl, th, x->path);
    if (r) gs_printf(x->b, end ? " %s?" : " %s", r);
}

static const char *state_rule(gs_ctx *c, frac *f, size_t k, int tl, int th, const char *path) {
    if (f->rule[k][tl][th]) return f->rule[k][tl][th];
    size_t idx;
    const char *name = gs_rule_reserve(c, "frac", &idx);
    if (!name) return NULL;
    f->rule[k][tl][th] = name;
    gs_buf b = {0};
    emit_ctx x = {c, f, k, &b, 0, path};
    alternatives(f, k, tl, th, emit_alt, &x);
    if (b.oom)
        gs_fail(c, path, NULL, "out of memory");
    else
        gs_rule_set(c, idx, b.p);
    gs_buf_free(&b);
    return name;
}

/* The optional fraction ("." digits) of a magnitude whose integer part is at a bound: value of
 * 0.digits >= a (> when ax) and <= b (< when bx); NULL a/b = no bound. False when none fits. */
static bool fraction(gs_ctx *c, gs_buf *o, const char *a, bool ax, const char *b, bool bx,
                     const char *path) {
    frac *f = calloc(1, sizeof *f);
    if (!f) return gs_fail(c, path, NULL, "out of memory"), false;
    f->a = a;
    f->b = b;
    f->la = a ? strlen(a) : 0;
    f->lb = b ? strlen(b) : 0;
    f->ax = ax;
    f->bx = bx;
    f->K = f->la > f->lb ? f->la : f->lb;
    if (f->K + 1 >= FK) {
        free(f);
        return gs_fail(c, path, NULL, "a bound with more than %d fraction digits", FK - 2), false;
    }
    f->max = f->K + 1 > 16 ? f->K + 1 : 16;
    /* Which states can still reach an accepting end: a fixed point from "no". */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t k = 0; k <= f->max; k++)
            for (int tl = 0; tl < 2; tl++)
                for (int th = 0; th < 2; th++) {
                    if (f->ne[k][tl][th] || (!tl && !th)) continue;
                    ne_ctx x = {f, k, false};
                    alternatives(f, k, tl, th, ne_alt, &x);
                    if (x.any) f->ne[k][tl][th] = changed = true;
                }
    }
    int tl = a != NULL, th = b != NULL;
    bool end = end_ok(f, 0, tl, th), more = (!tl && !th) || f->ne[0][tl][th];
    bool ok = end || more;
    if (!tl && !th)
        gs_put(o, "( \".\" [0-9]{1,15} )?");
    else if (more) {
        const char *r = state_rule(c, f, 0, tl, th, path);
        if (r) gs_printf(o, end ? "( \".\" %s )?" : "\".\" %s", r);
    }
    free(f);
    return ok;
}

/* Magnitudes m with lo <= m (< when lx) and m <= hi (< when hx; hi NULL = unbounded). */
static void magnitude(gs_ctx *c, gs_buf *o, const dec *lo, bool lx, const dec *hi, bool hx,
                      const char *path) {
    int alts = 0;
    gs_put(o, "( ");
    gs_buf t = {0};
    if (hi && lo->ip == hi->ip) {
        if (fraction(c, &t, lo->fp, lx, hi->fp, hx, path)) {
            gs_printf(o, "\"%lld\" %s", lo->ip, gs_str(&t));
            alts++;
        }
    } else {
        if (fraction(c, &t, lo->fp, lx, NULL, false, path)) {
            gs_printf(o, "\"%lld\" %s", lo->ip, gs_str(&t));
            alts++;
        }
        long long top = hi ? hi->ip - 1 : INT_MAX_MAG;
        if (lo->ip + 1 <= top) {
            gs_put(o, alts++ ? " | " : "");
            uint_range(o, lo->ip + 1, top);
            gs_put(o, " ( \".\" [0-9]{1,15} )?");
        }
        gs_buf_free(&t);
        if (hi && fraction(c, &t, NULL, false, hi->fp, hx, path)) {
            gs_put(o, alts++ ? " | " : "");
            gs_printf(o, "\"%lld\" %s", hi->ip, gs_str(&t));
        }
    }
    gs_buf_free(&t);
    if (!alts) gs_fail(c, path, NULL, "no number lies within the bounds");
    gs_put(o, " )");
}

static const char *number_rule(gs_ctx *c, const bound *lo, const bound *hi, const char *path) {
    if ((lo->set && lo->v > (double)INT_MAX_MAG) || (hi->set && hi->v < -(double)INT_MAX_MAG))
        return gs_fail(c, path, lo->set ? "minimum" : "maximum",
                       "bounds beyond +-%lld are not supported", INT_MAX_MAG);
    if (lo->set && hi->set && (lo->v > hi->v || (lo->v == hi->v && (lo->excl || hi->excl))))
        return gs_fail(c, path, "minimum", "no number lies within the bounds");
    dec zero = {0}, l, h;
    bool lset = lo->set && to_dec(fabs(lo->v), &l), hset = hi->set && to_dec(fabs(hi->v), &h);
    gs_buf b = {0};
    int alts = 0;
    gs_put(&b, "( ");
    /* x >= 0 */
    if (!hset || hi->v > 0 || (hi->v == 0 && !hi->excl)) {
        bool lpos = lset && lo->v >= 0;
        magnitude(c, &b, lpos ? &l : &zero, lpos && lo->excl, hset ? &h : NULL, hset && hi->excl,
                  path);
        alts++;
    }
    /* x < 0: "-" and a magnitude above 0 (or -hi) up to -lo */
    if (!lset || lo->v < 0) {
        bool hneg = hset && hi->v < 0;
        gs_put(&b, alts++ ? " | \"-\" " : "\"-\" ");
        magnitude(c, &b, hneg ? &h : &zero, hneg ? hi->excl : true, lset ? &l : NULL,
                  lset && lo->excl, path);
    }
    gs_put(&b, " )");
    const char *r = b.oom ? gs_fail(c, path, NULL, "out of memory") : gs_rule(c, "num", b.p);
    gs_buf_free(&b);
    return r;
}

const char *gs_number(gs_ctx *c, json_t *s, const char *path, bool is_int) {
    bound lo, hi;
    if (!read_bounds(c, s, path, &lo, &hi)) return NULL;
    if (!lo.set && !hi.set) return gs_prim_rule(c, is_int ? GS_INTEGER : GS_NUMBER);
    return is_int ? integer_rule(c, &lo, &hi, path) : number_rule(c, &lo, &hi, path);
}
