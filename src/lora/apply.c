/* The low-rank path y += s · B(A x), and the per-request list of attached adapters.
 *
 * The two products run exactly like base weight products of the adapter's types: x is converted
 * to A's vec_dot_type, A·x is computed with A's vec_dot kernel in F32, that result is converted
 * to B's vec_dot_type, and B's kernel gives the delta. This is what llama.cpp's graph does with
 * mul_mat(B, mul_mat(A, x)), which is what makes F16 adapters match it (the two F16 roundings).
 * Where B has panels (kernels.c) they replace its per-output vec_dot with the same bits.
 *
 * Decode reads the whole adapter for a few thousand multiply-adds per product, so per-call costs
 * count: the adapters' terms for all products that share x (q,k,v; gate,up) run together, x is
 * converted once per type, and with a pool they run in the same pool run as the base products
 * (lora_set_run): each thread does its share of the rows of every A, its base rows, and then the
 * terms' outputs in its own base rows. Every element of A·x is one vec_dot and every output one
 * fixed sequence of float operations, so the result does not depend on the split. */
#include "lora/lora_impl.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define LORA_ALIGN_FLOATS 16 /* 64 bytes */

/* Terms per pool run; a call with more (many adapters) runs the rest in further runs, in order. */
#define LORA_TERMS_MAX 32

/* Without base products to share a pool run with, a low-rank product below this many
 * multiply-adds runs on the calling thread: waking the pool would cost more. */
#define LORA_POOL_MIN_WORK (1 << 16)

static size_t round_floats(size_t bytes) {
    size_t f = (bytes + sizeof(float) - 1) / sizeof(float);
    return (f + LORA_ALIGN_FLOATS - 1) / LORA_ALIGN_FLOATS * LORA_ALIGN_FLOATS;
}

/* Bytes of one converted row; 0 when the vec_dot type is F32 and the floats are used as they
 * are (converting F32 to F32 is a copy). */
static size_t conv_row(const quant_traits *vd, int64_t n) {
    return vd->type == GGUF_T_F32 ? 0 : quant_row_bytes(vd, n);
}

/* Scratch of one term: A·x and its conversion for B. */
static size_t term_floats(const lora_pair *p, size_t n) {
    return round_floats(n * (size_t)p->rank * sizeof(float)) +
           round_floats(n * conv_row(p->xb, p->rank));
}

size_t lora_pair_scratch_floats(const lora_pair *p, int n_tokens) {
    size_t n = n_tokens > 0 ? (size_t)n_tokens : 0;
    return round_floats(n * conv_row(p->xa, p->n_in)) + term_floats(p, n);
}

/* One adapter's term for one product. */
typedef struct term {
    const lora_pair *p;
    float scale;
    float *y;       /* (n_tok, n_out) */
    int64_t row0;   /* where y's outputs start in the run's row space */
    const void *xs; /* x as A's kernel reads it: rows of xs_row bytes */
    size_t xs_row;
    float *t; /* (n_tok, rank): A·x */
    void *tq; /* A·x converted for B's kernel, or NULL (F32: t itself) */
    size_t ts_row;
    bool t_rows; /* the conversion works on whole rows (Q8_0 blocks): a phase of its own */
} term;

/* The outputs of all weights of a run, one weight after the other, are one row space, split
 * over the threads in units of unit_rows: a thread computes the base products of its units and
 * then adds the terms to the same outputs, so it never waits for another thread's base rows. */
typedef struct run_job {
    const lora_base *base; /* the products y = x·Wᵀ, or NULL */
    term *terms;
    int n_terms, n_tok;
    bool t_rows;
    int64_t n_rows, unit_rows;
    atomic_int bar[2];
} run_job;

static void spin_until(atomic_int *b, int n) {
    for (unsigned spins = 1; atomic_load_explicit(b, memory_order_acquire) < n; spins++) {
        if (spins % 1024 == 0)
            sched_yield(); /* the other thread may not be running: give it the CPU */
        else
            CPU_RELAX();
    }
}

static void arrive(atomic_int *b) {
    atomic_fetch_add_explicit(b, 1, memory_order_acq_rel);
}

/* Elements [lo, hi) of one term's A·x. */
static void a_range(const term *m, int64_t lo, int64_t hi) {
    const lora_pair *p = m->p;
    /* element i is (token i / rank, row i % rank); the indices advance without dividing */
    int64_t tok = lo / p->rank, r = lo % p->rank;
    /* an element-wise conversion (F16, BF16) is done here, by the thread that made the value */
    const size_t es = m->tq && !m->t_rows ? p->xb->type_size : 0;
    for (int64_t i = lo; i < hi; i++) {
        p->qa->vec_dot(p->n_in, &m->t[i], (const char *)p->a + (size_t)r * p->a_row_bytes,
                       (const char *)m->xs + (size_t)tok * m->xs_row);
        if (es) p->xb->from_float(&m->t[i], (char *)m->tq + (size_t)i * es, 1);
        if (++r == p->rank) r = 0, tok++;
    }
}

/* The elements of all terms' A·x, one after the other, split into nth ranges: each thread reads
 * one stretch of the A's, which lie in this order in memory (adapter.c), instead of a piece of
 * each. */
static void a_part(const run_job *j, int ith, int nth) {
    int64_t total = 0, lo, hi;
    for (int k = 0; k < j->n_terms; k++) total += (int64_t)j->n_tok * j->terms[k].p->rank;
    core_split_range(total, ith, nth, &lo, &hi);
    int64_t off = 0;
    for (int k = 0; k < j->n_terms && lo < hi; k++) {
        const int64_t n = (int64_t)j->n_tok * j->terms[k].p->rank;
        if (lo < off + n) {
            const int64_t end = hi < off + n ? hi : off + n;
            a_range(&j->terms[k], lo - off, end - off);
            lo = end;
        }
        off += n;
    }
}

static void t_rows_part(const run_job *j, const term *m, int ith, int nth) {
    int64_t lo, hi;
    core_split_range(j->n_tok, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        m->p->xb->from_float(m->t + i * m->p->rank, (char *)m->tq + (size_t)i * m->ts_row,
                             m->p->rank);
}

/* Row tok of A·x as B's kernel reads it. */
static const void *t_row(const term *m, int64_t tok) {
    return m->tq ? (const void *)((const char *)m->tq + (size_t)tok * m->ts_row)
                 : (const void *)(m->t + tok * m->p->rank);
}

/* Outputs [o0, o1) of one token, one vec_dot each, scaled and then added (llama.cpp's scale, then
 * add). */
static void b_dots(const term *m, int64_t tok, int64_t o0, int64_t o1) {
    const lora_pair *p = m->p;
    float *y = m->y + tok * p->n_out;
    const void *ts = t_row(m, tok);
    for (int64_t o = o0; o < o1; o++) {
        float d;
        p->qb->vec_dot(p->rank, &d, (const char *)p->b + (size_t)o * p->b_row_bytes, ts);
        y[o] += m->scale * d;
    }
}

/* Outputs [o0, o1) of every token: whole panels where B has them (the same bits as its vec_dot),
 * one vec_dot per output for the rest. Several tokens go through the F16 panels together, so a
 * panel is widened once for all of them. */
static void b_range(const run_job *j, const term *m, int64_t o0, int64_t o1) {
    const lora_pair *p = m->p;
    int64_t k0 = (o0 + LORA_PANEL - 1) / LORA_PANEL, k1 = o1 / LORA_PANEL;
    if (!p->bp || k0 >= k1) {
        for (int tok = 0; tok < j->n_tok; tok++) b_dots(m, tok, o0, o1);
        return;
    }
    const size_t off = (size_t)(k0 * LORA_PANEL * p->rank);
    if (j->n_tok > 1 && p->type_b == GGUF_T_F16)
        lora_panel_f16_tokens((const uint16_t *)p->bp + off, p->rank, m->tq, m->ts_row, j->n_tok,
                              m->scale, m->y + k0 * LORA_PANEL, p->n_out, k1 - k0);
    for (int tok = 0; tok < j->n_tok; tok++) {
        b_dots(m, tok, o0, k0 * LORA_PANEL);
        float *y = m->y + tok * p->n_out + k0 * LORA_PANEL;
        if (p->type_b == GGUF_T_F32)
            lora_panel_f32((const float *)p->bp + off, p->rank, t_row(m, tok), m->scale, y,
                           k1 - k0);
        else if (j->n_tok == 1)
            lora_panel_f16((const uint16_t *)p->bp + off, p->rank, t_row(m, tok), m->scale, y,
                           k1 - k0);
        b_dots(m, tok, k1 * LORA_PANEL, o1);
    }
}

/* Every term's outputs among rows [r0, r1) of the row space, terms in order: the terms of one
 * output are added in attach order by the one thread that owns it. */
static void b_rows(const run_job *j, int64_t r0, int64_t r1) {
    for (int k = 0; k < j->n_terms; k++) {
        const term *m = &j->terms[k];
        const int64_t a = r0 > m->row0 ? r0 : m->row0;
        const int64_t b = r1 < m->row0 + m->p->n_out ? r1 : m->row0 + m->p->n_out;
        if (a < b) b_range(j, m, a - m->row0, b - m->row0);
    }
}

/* A thread's share of A·x comes first, while its base rows follow: when it needs the other
 * threads' shares, after its base rows, they are long done, so it seldom waits (waiting right
 * after the base rows cost every product the threads' imbalance there once more). */
static void task_run(void *ctx, int ith, int nth) {
    run_job *j = ctx;
    a_part(j, ith, nth);
    if (nth > 1) arrive(&j->bar[0]);
    const int64_t n_units = (j->n_rows + j->unit_rows - 1) / j->unit_rows;
    int64_t lo, hi;
    core_split_range(n_units, ith, nth, &lo, &hi);
    if (j->base) j->base->units(j->base->ctx, lo, hi);
    if (j->n_terms == 0) return;
    if (nth > 1) spin_until(&j->bar[0], nth); /* B needs all of A·x */
    if (j->t_rows) {
        for (int k = 0; k < j->n_terms; k++)
            if (j->terms[k].t_rows) t_rows_part(j, &j->terms[k], ith, nth);
        if (nth > 1) {
            arrive(&j->bar[1]);
            spin_until(&j->bar[1], nth);
        }
    }
    lo *= j->unit_rows;
    hi = hi * j->unit_rows < j->n_rows ? hi * j->unit_rows : j->n_rows;
    if (lo < hi) b_rows(j, lo, hi);
}

/* x converted to A's vec_dot_type, rows of `row` bytes. */
static void convert_x(const quant_traits *vd, const float *x, int n_tok, int64_t n_in, void *out,
                      size_t row) {
    for (int i = 0; i < n_tok; i++)
        vd->from_float(x + (int64_t)i * n_in, (char *)out + (size_t)i * row, n_in);
}

/* Lays out the terms' scratch, converts x once per vec_dot type, and runs. n_rows: the size of
 * the run's row space (the weights' outputs one after the other; each term's row0 is in it). */
static void run_terms(term *m, int n, int n_tok, const float *x, float *scratch, core_pool *pool,
                      const lora_base *base, int64_t n_rows) {
    if (n_tok <= 0) n = 0;
    if (n == 0 && !base) return;
    const size_t nt = (size_t)(n_tok > 0 ? n_tok : 0);
    float *cur = scratch;
    const void *conv_q[4] = {0};
    uint32_t conv_t[4];
    int n_conv = 0;
    int64_t work = 0;
    run_job j = {.base = base, .terms = m, .n_terms = n, .n_tok = n_tok, .n_rows = n_rows};
    j.unit_rows = base ? base->unit_rows : LORA_PANEL;
    for (int k = 0; k < n; k++) {
        const lora_pair *p = m[k].p;
        const size_t xrow = conv_row(p->xa, p->n_in);
        m[k].xs = x;
        m[k].xs_row = (size_t)p->n_in * sizeof(float);
        if (xrow) {
            int c = 0;
            while (c < n_conv && conv_t[c] != p->xa->type) c++;
            if (c == n_conv) { /* first term of this type: convert x */
                conv_t[c] = p->xa->type;
                conv_q[c] = cur;
                convert_x(p->xa, x, n_tok, p->n_in, cur, xrow);
                cur += round_floats(nt * xrow);
                n_conv++;
            }
            m[k].xs = conv_q[c];
            m[k].xs_row = xrow;
        }
        work += (int64_t)n_tok * p->rank * (p->n_in + p->n_out);
    }
    for (int k = 0; k < n; k++) {
        const lora_pair *p = m[k].p;
        const size_t trow = conv_row(p->xb, p->rank);
        m[k].t = cur;
        cur += round_floats(nt * (size_t)p->rank * sizeof(float));
        m[k].tq = trow ? cur : NULL;
        cur += round_floats(nt * trow);
        m[k].ts_row = trow ? trow : (size_t)p->rank * sizeof(float);
        m[k].t_rows = trow && p->xb->block_size > 1;
        j.t_rows |= m[k].t_rows;
    }
    atomic_init(&j.bar[0], 0);
    atomic_init(&j.bar[1], 0);
    if (pool && (base || work >= LORA_POOL_MIN_WORK))
        core_pool_run(pool, task_run, &j);
    else
        task_run(&j, 0, 1);
}

void lora_pair_apply(const lora_pair *p, float scale, int n_tokens, const float *x, float *y,
                     float *scratch, core_pool *pool) {
    term m = {.p = p, .scale = scale, .y = y};
    run_terms(&m, 1, n_tokens, x, scratch, pool, NULL, p->n_out);
}

/* ---- lora_set ---- */

typedef struct lora_set_item {
    lora_adapter *ad; /* one reference held */
    float user_scale;
} lora_set_item;

struct lora_set {
    lora_set_item *v;
    size_t n, cap;
};

shimmy_status lora_set_new(lora_set **out, shimmy_error *err) {
    *out = core_calloc(1, sizeof **out);
    return *out ? SHIMMY_OK
                : core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory creating a LoRA set");
}

void lora_set_free(lora_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) lora_adapter_unref(s->v[i].ad);
    free(s->v);
    free(s);
}

shimmy_status lora_set_add(lora_set *s, lora_adapter *a, float user_scale, shimmy_error *err) {
    if (!a || !isfinite(user_scale))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, a ? lora_adapter_path(a) : NULL,
                          "a LoRA adapter needs a finite scale");
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].ad == a) {
            s->v[i].user_scale = user_scale;
            return SHIMMY_OK;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        lora_set_item *v = core_realloc(s->v, cap * sizeof *v);
        if (!v)
            return core_error(err, SHIMMY_ERR_NOMEM, lora_adapter_path(a),
                              "out of memory attaching adapter '%s'", lora_adapter_path(a));
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (lora_set_item){lora_adapter_ref(a), user_scale};
    return SHIMMY_OK;
}

size_t lora_set_count(const lora_set *s) {
    return s ? s->n : 0;
}
lora_adapter *lora_set_adapter(const lora_set *s, size_t i) {
    return i < s->n ? s->v[i].ad : NULL;
}
float lora_set_user_scale(const lora_set *s, size_t i) {
    return i < s->n ? s->v[i].user_scale : 0;
}

/* Vec_dot types that convert x, for the scratch bound: one slot each. */
static const uint32_t conv_types[] = {GGUF_T_F16, GGUF_T_BF16, GGUF_T_Q8_0};

/* Terms per pool run for this set: what lora_set_run lays out in scratch at once. */
static size_t terms_cap(const lora_set *s) {
    size_t n = s->n * LORA_GROUP_MAX;
    return n < LORA_TERMS_MAX ? n : LORA_TERMS_MAX;
}

size_t lora_set_scratch_floats(const lora_set *s, int n_tokens) {
    if (!s) return 0;
    const size_t n = n_tokens > 0 ? (size_t)n_tokens : 0;
    int64_t max_in[3] = {0, 0, 0};
    size_t per_term = 0;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < lora_adapter_n_pairs(s->v[i].ad); k++) {
            const lora_pair *p = lora_adapter_pair_at(s->v[i].ad, k);
            for (int c = 0; c < 3; c++)
                if (p->xa->type == conv_types[c] && p->n_in > max_in[c]) max_in[c] = p->n_in;
            size_t f = term_floats(p, n);
            if (f > per_term) per_term = f;
        }
    size_t total = terms_cap(s) * per_term;
    for (int c = 0; c < 3; c++)
        if (max_in[c]) total += round_floats(n * conv_row(quant_get(conv_types[c]), max_in[c]));
    return total;
}

/* Rows weight k takes in the row space: its outputs, or without base products 0 for a weight no
 * adapter touches. */
static int64_t weight_rows(const lora_set *s, const lora_base *base, int k, const char *name) {
    if (base) return base->n_out[k];
    for (size_t i = 0; s && i < s->n; i++) {
        const lora_pair *p = lora_adapter_find(s->v[i].ad, name);
        if (p) return p->n_out;
    }
    return 0;
}

void lora_set_run(const lora_set *s, int n_w, const char *const *weight_names, int n_tokens,
                  const float *x, float *const *y, float *scratch, core_pool *pool,
                  const lora_base *base) {
    term m[LORA_TERMS_MAX];
    const int cap = s ? (int)terms_cap(s) : 0;
    int n = 0;
    int64_t n_rows = 0;
    for (int k = 0; k < n_w; k++) n_rows += weight_rows(s, base, k, weight_names[k]);
    const lora_base *first = base;
    /* adapter-major, so that terms of one y stay in attach order across runs */
    for (size_t i = 0; s && i < s->n; i++) {
        int64_t row0 = 0;
        for (int k = 0; k < n_w; k++) {
            const lora_pair *p = lora_adapter_find(s->v[i].ad, weight_names[k]);
            if (p) {
                if (n == cap) {
                    run_terms(m, n, n_tokens, x, scratch, pool, base, n_rows);
                    base = NULL;
                    n = 0;
                }
                m[n++] = (term){.p = p,
                                .scale = lora_pair_scale(p, s->v[i].user_scale),
                                .y = y[k],
                                .row0 = row0};
            }
            row0 += weight_rows(s, first, k, weight_names[k]);
        }
    }
    run_terms(m, n, n_tokens, x, scratch, pool, base, n_rows);
}

void lora_set_apply(const lora_set *s, const char *weight_name, int n_tokens, const float *x,
                    float *y, float *scratch, core_pool *pool) {
    lora_set_run(s, 1, &weight_name, n_tokens, x, &y, scratch, pool, NULL);
}
