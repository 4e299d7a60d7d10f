/* Generation options: the one place their ranges are checked, and the problem list that lets a
 * spec report every bad field at once. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void append(char *buf, size_t cap, const char *sep, const char *text) {
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    snprintf(buf + n, cap - n, "%s%s", n ? sep : "", text);
}

void api_problem(api_problems *p, shimmy_status st, const char *field, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->status = p->n == 0 || p->status == st ? st : SHIMMY_ERR_INVALID_ARG;
    p->n++;
    append(p->where, sizeof p->where, ",", field);
    char line[300];
    snprintf(line, sizeof line, "%s: %s", field, msg);
    append(p->message, sizeof p->message, "; ", line);
}

void api_check_range(api_problems *p, const char *field, int64_t v, int64_t max) {
    if (v < 0 || v > max)
        api_problem(p, SHIMMY_ERR_INVALID_ARG, field, "%lld is outside [0, %lld]", (long long)v,
                    (long long)max);
}

shimmy_status api_problems_report(const api_problems *p, shimmy_error *err) {
    if (p->n == 0) return SHIMMY_OK;
    if (p->n == 1) return core_error(err, p->status, p->where, "%s", p->message);
    return core_error(err, p->status, p->where, "%d problems: %s", p->n, p->message);
}

/* One row per numeric field: where it lives, its range, what zero means. A table keeps the
 * ranges in one place for the checker and the documentation alike. */
typedef enum { F_FLOAT, F_INT } field_kind;
typedef struct num_field {
    const char *name;
    size_t offset;
    field_kind kind;
    double lo, hi;
} num_field;

#define FIELD(f, k, lo, hi)                                                                        \
    { #f, offsetof(shimmy_gen_options, f), k, lo, hi }
static const num_field fields[] = {
    FIELD(max_tokens, F_INT, 0, SHIMMY_MAX_TOKENS_LIMIT),
    FIELD(temperature, F_FLOAT, 0, 10),
    FIELD(top_k, F_INT, 0, 1 << 24),
    FIELD(top_p, F_FLOAT, 0, 1),
    FIELD(min_p, F_FLOAT, 0, 1),
    FIELD(repeat_penalty, F_FLOAT, 0, 10),
    FIELD(frequency_penalty, F_FLOAT, -2, 2),
    FIELD(presence_penalty, F_FLOAT, -2, 2),
    FIELD(repeat_last_n, F_INT, 0, 1 << 20),
    FIELD(queue_len, F_INT, 0, 4096),
    FIELD(top_logprobs, F_INT, 0, SHIMMY_MAX_TOP_LOGPROBS),
};
#undef FIELD

/* The structured-output fields: sizes and exclusivity here; the grammar's own syntax is checked
 * where it is compiled (api_gen_grammar), with line:column. */
static void check_structured(const shimmy_gen_options *o, const char *prefix, api_problems *p) {
    char name[96];
    const bool has_g = o->grammar && *o->grammar, has_s = o->json_schema && *o->json_schema;
    if (has_g && has_s) {
        snprintf(name, sizeof name, "%sgrammar", prefix);
        api_problem(p, SHIMMY_ERR_INVALID_ARG, name,
                    "grammar and json_schema are both set; pass one of them");
    }
    const struct {
        const char *field, *text;
        size_t max;
    } sized[] = {{"grammar", o->grammar, SHIMMY_MAX_GRAMMAR_LEN},
                 {"json_schema", o->json_schema, SHIMMY_MAX_GRAMMAR_LEN},
                 {"grammar_after", o->grammar_after, SHIMMY_MAX_STOP_LEN}};
    for (size_t i = 0; i < sizeof sized / sizeof sized[0]; i++) {
        if (!sized[i].text || strnlen(sized[i].text, sized[i].max + 1) <= sized[i].max) continue;
        snprintf(name, sizeof name, "%s%s", prefix, sized[i].field);
        api_problem(p, SHIMMY_ERR_INVALID_ARG, name, "longer than %zu bytes", sized[i].max);
    }
}

void api_gen_options_check(const shimmy_gen_options *o, const char *prefix, api_problems *p) {
    char name[96];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const num_field *f = &fields[i];
        const char *at = (const char *)o + f->offset;
        snprintf(name, sizeof name, "%s%s", prefix, f->name);
        if (f->kind == F_FLOAT) {
            float v;
            memcpy(&v, at, sizeof v);
            if (!(v >= f->lo && v <= f->hi)) /* also catches NaN */
                api_problem(p, SHIMMY_ERR_INVALID_ARG, name, "%g is outside [%g, %g]", (double)v,
                            f->lo, f->hi);
        } else {
            int32_t v;
            memcpy(&v, at, sizeof v);
            if (!(v >= f->lo && v <= f->hi))
                api_problem(p, SHIMMY_ERR_INVALID_ARG, name, "%d is outside [%.0f, %.0f]", (int)v,
                            f->lo, f->hi);
        }
    }
    snprintf(name, sizeof name, "%sstop", prefix);
    if (o->n_stop > SHIMMY_MAX_STOP) {
        api_problem(p, SHIMMY_ERR_INVALID_ARG, name, "%zu stop strings; at most %d are allowed",
                    o->n_stop, SHIMMY_MAX_STOP);
    } else if (o->n_stop && !o->stop) {
        api_problem(p, SHIMMY_ERR_INVALID_ARG, name, "n_stop is %zu but stop is NULL", o->n_stop);
    } else {
        for (size_t i = 0; i < o->n_stop; i++) {
            const char *s = o->stop[i];
            if (!s || !*s)
                api_problem(p, SHIMMY_ERR_INVALID_ARG, name, "stop string %zu is %s", i,
                            s ? "empty" : "NULL");
            else if (strlen(s) > SHIMMY_MAX_STOP_LEN)
                api_problem(p, SHIMMY_ERR_INVALID_ARG, name,
                            "stop string %zu is %zu bytes; at most %d are allowed", i, strlen(s),
                            SHIMMY_MAX_STOP_LEN);
        }
    }
    check_structured(o, prefix, p);
}

shimmy_status shimmy_gen_options_check(const shimmy_gen_options *o, shimmy_error *err) {
    if (!o) return core_error(err, SHIMMY_ERR_INVALID_ARG, "options", "options are NULL");
    api_problems p = {0};
    api_gen_options_check(o, "", &p);
    return api_problems_report(&p, err);
}

shimmy_status shimmy_error_set(shimmy_error *err, shimmy_status status, const char *where,
                               const char *fmt, ...) {
    if (!err) return status;
    err->status = status;
    snprintf(err->where, sizeof err->where, "%s", where ? where : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

const char *shimmy_finish_name(shimmy_finish f) {
    static const char *const names[] = {"stop", "length", "cancelled"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "unknown";
}
