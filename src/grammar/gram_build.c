/* From parsed rules to the compiled grammar: every referenced rule defined, `root` present, no
 * left recursion (which would make the matcher's expansion endless), then the rules flattened
 * into one element array. */
#include "gram_build.h"

#include <stdlib.h>
#include <string.h>

static void parser_free(gp_parser *p) {
    for (size_t i = 0; i < p->n_rules; i++) {
        free(p->rules[i].name);
        free(p->rules[i].body.v);
    }
    free(p->rules);
    free(p->map);
    free(p->terms);
    free(p->ranges);
}

void gram_free(grammar *g) {
    if (!g) return;
    gm_destroy_pooled(g->pool);
    pthread_mutex_destroy(&g->pool_lock);
    free(g->elems);
    free(g->alts);
    free(g->rules);
    free(g->terms);
    free(g->ranges);
    free(g->names);
    free(g);
}

/* nullable[r]: rule r can match the empty string (fixpoint over all rules). */
static bool *compute_nullable(const gp_parser *p) {
    bool *nul = calloc(p->n_rules ? p->n_rules : 1, sizeof *nul);
    if (!nul) return NULL;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < p->n_rules; r++) {
            if (nul[r]) continue;
            const gp_vec *b = &p->rules[r].body;
            bool alt_ok = true; /* the current alternative so far is all nullable */
            for (size_t i = 0; i <= b->n; i++) {
                uint32_t e = i < b->n ? b->v[i] : GP_ALT;
                if (e == GP_ALT) {
                    if (alt_ok) {
                        nul[r] = changed = true;
                        break;
                    }
                    alt_ok = true;
                } else if (GE_KIND(e) == GE_TERM || !nul[GE_ARG(e)]) {
                    alt_ok = false;
                }
            }
        }
    }
    return nul;
}

/* Edges r -> s where s can come first in r (after nullable elements only), as CSR arrays. */
static bool left_edges(const gp_parser *p, const bool *nul, size_t **off, uint32_t **to) {
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (size_t r = 0; r < p->n_rules; r++) {
            if (pass) (*off)[r] = n;
            const gp_vec *b = &p->rules[r].body;
            bool open = true;
            for (size_t i = 0; i < b->n; i++) {
                uint32_t e = b->v[i];
                if (e == GP_ALT) {
                    open = true;
                } else if (open && GE_KIND(e) == GE_REF) {
                    if (pass) (*to)[n] = GE_ARG(e);
                    n++;
                    if (!nul[GE_ARG(e)]) open = false;
                } else {
                    open = false;
                }
            }
        }
        if (!pass) {
            *off = malloc((p->n_rules + 1) * sizeof **off);
            *to = malloc((n ? n : 1) * sizeof **to);
            if (!*off || !*to) return false;
        }
    }
    (*off)[p->n_rules] = n;
    return true;
}

/* Finds a cycle in the left-edge graph (iterative DFS: rule counts can be large). */
static void check_left_recursion(gp_parser *p) {
    bool *nul = compute_nullable(p);
    size_t *off = NULL;
    uint32_t *to = NULL;
    uint8_t *color = calloc(p->n_rules ? p->n_rules : 1, 1); /* 0 new, 1 on stack, 2 done */
    size_t *stack = malloc((p->n_rules ? p->n_rules : 1) * 2 * sizeof *stack);
    if (!nul || !color || !stack || !left_edges(p, nul, &off, &to)) {
        gp_fail(p, SHIMMY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t start = 0; start < p->n_rules && !p->st; start++) {
        if (color[start]) continue;
        size_t sp = 0;
        stack[sp++] = start;
        stack[sp++] = off[start];
        color[start] = 1;
        while (sp && !p->st) {
            size_t r = stack[sp - 2], *e = &stack[sp - 1];
            if (*e == off[r + 1]) {
                color[r] = 2;
                sp -= 2;
                continue;
            }
            uint32_t s = to[(*e)++];
            if (color[s] == 1) {
                /* report the user's rule: a generated one carries its parent's name */
                const gp_rule *rr = &p->rules[s];
                gp_fail(p, SHIMMY_ERR_INVALID_ARG, rr->def_at,
                        "rule '%s' is left-recursive (it can reach itself before matching any "
                        "character%s); rewrite it with repetition, e.g. list ::= item (\",\" "
                        "item)*",
                        rr->name,
                        rr->generated ? ", e.g. by repeating something that can be empty" : "");
            } else if (color[s] == 0) {
                color[s] = 1;
                stack[sp++] = s;
                stack[sp++] = off[s];
            }
        }
    }
out:
    free(nul);
    free(off);
    free(to);
    free(color);
    free(stack);
}

static grammar *flatten(gp_parser *p, uint32_t root) {
    grammar *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->refs = 1;
    pthread_mutex_init(&g->pool_lock, NULL);
    size_t n_elems = 0, n_alts = 0, names = 0;
    for (size_t r = 0; r < p->n_rules; r++) {
        const gp_vec *b = &p->rules[r].body;
        n_alts++;
        for (size_t i = 0; i < b->n; i++) n_alts += b->v[i] == GP_ALT;
        n_elems += b->n + 1; /* each separator becomes an END, plus the final END */
        names += strlen(p->rules[r].name) + 1;
    }
    g->elems = malloc(n_elems * sizeof *g->elems);
    g->alts = malloc(n_alts * sizeof *g->alts);
    g->rules = malloc((p->n_rules ? p->n_rules : 1) * sizeof *g->rules);
    g->names = malloc(names);
    g->terms = malloc((p->n_terms ? p->n_terms : 1) * sizeof *g->terms);
    g->ranges = malloc((p->n_ranges ? p->n_ranges : 1) * sizeof *g->ranges);
    if (!g->elems || !g->alts || !g->rules || !g->names || !g->terms || !g->ranges) {
        gram_free(g);
        return NULL;
    }
    if (p->n_terms) memcpy(g->terms, p->terms, p->n_terms * sizeof *g->terms);
    if (p->n_ranges) memcpy(g->ranges, p->ranges, p->n_ranges * sizeof *g->ranges);
    g->n_terms = (uint32_t)p->n_terms;
    g->n_ranges = (uint32_t)p->n_ranges;
    uint32_t e = 0, a = 0;
    size_t nm = 0;
    for (size_t r = 0; r < p->n_rules; r++) {
        const gp_vec *b = &p->rules[r].body;
        g->rules[r] = (gram_rule){.first_alt = a, .name = (uint32_t)nm};
        size_t len = strlen(p->rules[r].name) + 1;
        memcpy(g->names + nm, p->rules[r].name, len);
        nm += len;
        g->alts[a++] = e;
        for (size_t i = 0; i < b->n; i++) {
            if (b->v[i] == GP_ALT) {
                g->elems[e++] = GE_MAKE(GE_END, 0);
                g->alts[a++] = e;
            } else {
                g->elems[e++] = b->v[i];
            }
        }
        g->elems[e++] = GE_MAKE(GE_END, 0);
        g->rules[r].n_alts = a - g->rules[r].first_alt;
    }
    g->n_elems = e;
    g->n_alts = a;
    g->n_rules = (uint32_t)p->n_rules;
    g->root = root;
    return g;
}

shimmy_status grammar_compile(const char *text, size_t len, grammar **out, shimmy_error *err) {
    *out = NULL;
    if (!text) return core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar", "the grammar is NULL");
    gp_parser p = {.s = text, .n = len, .err = err};
    gp_parse(&p);
    uint32_t root = UINT32_MAX;
    for (size_t r = 0; r < p.n_rules && !p.st; r++) {
        if (!p.rules[r].defined)
            gp_fail(&p, SHIMMY_ERR_INVALID_ARG, p.rules[r].first_ref,
                    "rule '%s' is used but never defined", p.rules[r].name);
        if (strcmp(p.rules[r].name, "root") == 0) root = (uint32_t)r;
    }
    if (!p.st && root == UINT32_MAX)
        gp_fail(&p, SHIMMY_ERR_INVALID_ARG, len, "no rule named 'root' (where matching starts)");
    if (!p.st) check_left_recursion(&p);
    grammar *g = NULL;
    if (!p.st && !(g = flatten(&p, root))) gp_fail(&p, SHIMMY_ERR_NOMEM, 0, "out of memory");
    shimmy_status st = p.st;
    parser_free(&p);
    if (st) return st;
    *out = g;
    return SHIMMY_OK;
}

grammar *grammar_ref(grammar *g) {
    if (g) __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void grammar_unref(grammar *g) {
    if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) gram_free(g);
}

size_t grammar_n_rules(const grammar *g) {
    return g->n_rules;
}

const char *grammar_rule_name(const grammar *g, size_t rule) {
    return rule < g->n_rules ? g->names + g->rules[rule].name : NULL;
}
