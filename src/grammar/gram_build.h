/* The GBNF parser's working state, shared by gbnf.c (parsing) and gram_build.c (checks and the
 * compiled form). Internal to the grammar module. */
#ifndef SHIMMY_GRAM_BUILD_H
#define SHIMMY_GRAM_BUILD_H

#include "gram_impl.h"

#include <stddef.h>

#define GP_ALT       0xFFFFFFFFu /* separates alternatives inside a rule under construction */
#define GP_MAX_CLASS 1024        /* items in one [...] */

typedef struct gp_vec {
    uint32_t *v;
    size_t n, cap;
} gp_vec;

typedef struct gp_rule {
    char *name;       /* owned */
    gp_vec body;      /* elements and GP_ALT separators */
    bool defined;     /* has a `::=` (or is generated) */
    bool generated;   /* a group or a repetition */
    size_t first_ref; /* byte offset of the first reference (for "undefined rule") */
    size_t def_at;    /* byte offset of the definition */
} gp_rule;

typedef struct gp_parser {
    const char *s;
    size_t n, pos;
    gp_rule *rules;
    size_t n_rules, rules_cap;
    uint32_t *map; /* open-addressing name -> rule id, UINT32_MAX empty */
    size_t map_cap;
    gram_term *terms;
    size_t n_terms, terms_cap;
    gram_range *ranges;
    size_t n_ranges, ranges_cap;
    uint32_t ascii_term[128]; /* term id + 1 of single ASCII characters */
    size_t total_elems;
    uint32_t gen_counter;
    int depth;
    shimmy_status st;
    shimmy_error *err;
} gp_parser;

/* Parses p->s[0..p->n) into p's rules; p->st (and p->err) tell the outcome. */
void gp_parse(gp_parser *p);
/* Records the first error as "line L, column C: msg" (where = "grammar"); returns p->st. */
shimmy_status gp_fail(gp_parser *p, shimmy_status st, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
