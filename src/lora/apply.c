/* The low-rank path y += s · B(A x), and the per-request list of attached adapters.
 *
 * The two products run exactly like base weight products of the adapter's types: x is converted
 * to A's vec_dot_type, A·x is computed with A's vec_dot kernel in F32, that result is converted
 * to B's vec_dot_type, and B's kernel gives the delta. This is what llama.cpp's graph does with
 * mul_mat(B, mul_mat(A, x)), which is what makes F16 adapters match it (the two F16 roundings).
 *
 * Work is split over the pool in phases (convert x, A·x, convert A·x, B·(A·x)); each phase only
 * reads what the previous one wrote, and every output element is one kernel call, so the result
 * does not depend on the number of threads. */
#include "lora/lora_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LORA_AXPY_X86 1
#endif

#define LORA_ALIGN_FLOATS 16 /* 64 bytes */

static size_t round_floats(size_t bytes) {
    size_t f = (bytes + sizeof(float) - 1) / sizeof(float);
    return (f + LORA_ALIGN_FLOATS - 1) / LORA_ALIGN_FLOATS * LORA_ALIGN_FLOATS;
}

/* Bytes of one converted row; 0 when the vec_dot type is F32 and the floats are used as they
 * are (converting F32 to F32 is a copy). */
static size_t conv_row(const quant_traits *vd, int64_t n) {
    return vd->type == GGUF_T_F32 ? 0 : quant_row_bytes(vd, n);
}

size_t lora_pair_scratch_floats(const lora_pair *p, int n_tokens) {
    size_t n = n_tokens > 0 ? (size_t)n_tokens : 0;
    return round_floats(n * conv_row(p->xa, p->n_in)) +
           round_floats(n * (size_t)p->rank * sizeof(float)) +
           round_floats(n * conv_row(p->xb, p->rank));
}

typedef struct apply_job {
    const lora_pair *p;
    float scale;
    int n_tok;
    const float *x; /* (n_tok, n_in) */
    float *y;       /* (n_tok, n_out) */
    const void *xs; /* x as A's kernel reads it: rows of xs_row bytes */
    void *xq;       /* converted x, or NULL */
    size_t xs_row;
    float *t;       /* (n_tok, rank): A·x */
    const void *ts; /* A·x as B's kernel reads it */
    void *tq;       /* converted A·x, or NULL */
    size_t ts_row;
} apply_job;

static void task_convert_x(void *ctx, int ith, int nth) {
    apply_job *j = ctx;
    int64_t lo, hi;
    core_split_range(j->n_tok, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        j->p->xa->from_float(j->x + i * j->p->n_in, (char *)j->xq + (size_t)i * j->xs_row,
                             j->p->n_in);
}

static void task_a(void *ctx, int ith, int nth) {
    apply_job *j = ctx;
    const lora_pair *p = j->p;
    int64_t lo, hi;
    core_split_range((int64_t)j->n_tok * p->rank, ith, nth, &lo, &hi);
    /* element i is (token i / rank, row i % rank); the indices advance without dividing */
    int64_t tok = lo / p->rank, r = lo % p->rank;
    for (int64_t i = lo; i < hi; i++) {
        p->qa->vec_dot(p->n_in, &j->t[i], (const char *)p->a + (size_t)r * p->a_row_bytes,
                       (const char *)j->xs + (size_t)tok * j->xs_row);
        if (++r == p->rank) r = 0, tok++;
    }
}

static void task_convert_t(void *ctx, int ith, int nth) {
    apply_job *j = ctx;
    int64_t lo, hi;
    core_split_range(j->n_tok, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        j->p->xb->from_float(j->t + i * j->p->rank, (char *)j->tq + (size_t)i * j->ts_row,
                             j->p->rank);
}

static void task_b(void *ctx, int ith, int nth) {
    apply_job *j = ctx;
    const lora_pair *p = j->p;
    int64_t lo, hi;
    core_split_range((int64_t)j->n_tok * p->n_out, ith, nth, &lo, &hi);
    int64_t tok = lo / p->n_out, o = lo % p->n_out;
    const char *trow = (const char *)j->ts + (size_t)tok * j->ts_row;
    for (int64_t i = lo; i < hi; i++) {
        float d;
        p->qb->vec_dot(p->rank, &d, (const char *)p->b + (size_t)o * p->b_row_bytes, trow);
        /* scale, then add: the order of llama.cpp's ggml_scale + ggml_add */
        j->y[i] += j->scale * d;
        if (++o == p->n_out) o = 0, trow += j->ts_row;
    }
}

/* ---- the axpy form for F32 B (see lora_impl.h) ---- */

bool lora_pair_axpy_ok(const lora_pair *p) {
#ifdef LORA_AXPY_X86
    /* The x86 kernel sets (avx2, avx512*) share the engine's F32 order; the scalar set sums in
     * double, so it keeps the per-output vec_dot. */
    return p->type_b == GGUF_T_F32 && p->rank >= 8 && p->rank < 64 && p->rank % 8 == 0 &&
           p->qb == quant_get(GGUF_T_F32) && strncmp(quant_isa(), "avx", 3) == 0;
#else
    (void)p;
    return false;
#endif
}

void lora_axpy_ref(const float *bt, int64_t rank, int64_t n_out, const float *t, float scale,
                   float *y, int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; o++) {
        float acc = 0.0f;
        for (int64_t r = 0; r < rank; r++) {
            const float prod = t[r] * bt[r * n_out + o];
            acc = acc + prod;
        }
        const float d = scale * acc;
        y[o] = y[o] + d;
    }
}

#ifdef LORA_AXPY_X86
__attribute__((target("avx"))) static void axpy_avx(const float *bt, int64_t rank, int64_t n_out,
                                                    const float *t, float scale, float *y,
                                                    int64_t lo, int64_t hi) {
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t o = lo;
    for (; o + 8 <= hi; o += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t r = 0; r < rank; r++)
            acc = _mm256_add_ps(
                acc, _mm256_mul_ps(_mm256_set1_ps(t[r]), _mm256_loadu_ps(bt + r * n_out + o)));
        _mm256_storeu_ps(y + o, _mm256_add_ps(_mm256_loadu_ps(y + o), _mm256_mul_ps(vs, acc)));
    }
    if (o < hi) lora_axpy_ref(bt, rank, n_out, t, scale, y, o, hi);
}
#endif

void lora_axpy(const float *bt, int64_t rank, int64_t n_out, const float *t, float scale, float *y,
               int64_t lo, int64_t hi) {
#ifdef LORA_AXPY_X86
    if (__builtin_cpu_supports("avx")) {
        axpy_avx(bt, rank, n_out, t, scale, y, lo, hi);
        return;
    }
#endif
    lora_axpy_ref(bt, rank, n_out, t, scale, y, lo, hi);
}

/* B·(A·x) from B transposed: the same elements as task_b, a run of outputs of one token at a
 * time. */
static void task_b_axpy(void *ctx, int ith, int nth) {
    apply_job *j = ctx;
    const lora_pair *p = j->p;
    int64_t lo, hi;
    core_split_range((int64_t)j->n_tok * p->n_out, ith, nth, &lo, &hi);
    while (lo < hi) {
        int64_t tok = lo / p->n_out, o = lo % p->n_out;
        int64_t end = hi - tok * p->n_out < p->n_out ? hi - tok * p->n_out : p->n_out;
        lora_axpy(p->bt, p->rank, p->n_out, j->t + tok * p->rank, j->scale, j->y + tok * p->n_out,
                  o, end);
        lo = tok * p->n_out + end;
    }
}

/* Below this many elements of work a phase runs on the calling thread: waking the pool costs
 * more than a decode-time low-rank product (rank × n_in multiply-adds). Results do not depend on
 * the choice, since each output element is one kernel call either way. */
#define LORA_POOL_MIN_WORK (1 << 16)

static void run(core_pool *pool, core_task_fn fn, void *ctx, int64_t work) {
    if (pool && work >= LORA_POOL_MIN_WORK)
        core_pool_run(pool, fn, ctx);
    else
        fn(ctx, 0, 1);
}

void lora_pair_apply(const lora_pair *p, float scale, int n_tokens, const float *x, float *y,
                     float *scratch, core_pool *pool) {
    if (n_tokens <= 0) return;
    size_t n = (size_t)n_tokens, xq_row = conv_row(p->xa, p->n_in);
    size_t tq_row = conv_row(p->xb, p->rank);
    apply_job j = {.p = p, .scale = scale, .n_tok = n_tokens, .x = x, .y = y};
    float *cur = scratch;
    j.xq = xq_row ? cur : NULL;
    cur += round_floats(n * xq_row);
    j.t = cur;
    cur += round_floats(n * (size_t)p->rank * sizeof(float));
    j.tq = tq_row ? cur : NULL;
    j.xs = j.xq ? j.xq : (const void *)x;
    j.xs_row = xq_row ? xq_row : (size_t)p->n_in * sizeof(float);
    j.ts = j.tq ? j.tq : (const void *)j.t;
    j.ts_row = tq_row ? tq_row : (size_t)p->rank * sizeof(float);

    const struct {
        core_task_fn fn;
        bool needed;
        int64_t work;
    } phases[] = {
        {task_convert_x, j.xq != NULL, n_tokens * p->n_in},
        {task_a, true, n_tokens * p->rank * p->n_in},
        {task_convert_t, j.tq != NULL, n_tokens * p->rank},
        {p->bt ? task_b_axpy : task_b, true, n_tokens * p->n_out * p->rank},
    };
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        if (phases[i].needed) run(pool, phases[i].fn, &j, phases[i].work);
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
    *out = calloc(1, sizeof **out);
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
        lora_set_item *v = realloc(s->v, cap * sizeof *v);
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

size_t lora_set_scratch_floats(const lora_set *s, int n_tokens) {
    size_t m = 0;
    for (size_t i = 0; s && i < s->n; i++)
        for (size_t k = 0; k < lora_adapter_n_pairs(s->v[i].ad); k++) {
            size_t f = lora_pair_scratch_floats(lora_adapter_pair_at(s->v[i].ad, k), n_tokens);
            if (f > m) m = f;
        }
    return m;
}

void lora_set_apply(const lora_set *s, const char *weight_name, int n_tokens, const float *x,
                    float *y, float *scratch, core_pool *pool) {
    for (size_t i = 0; s && i < s->n; i++) {
        const lora_pair *p = lora_adapter_find(s->v[i].ad, weight_name);
        if (p)
            lora_pair_apply(p, lora_pair_scale(p, s->v[i].user_scale), n_tokens, x, y, scratch,
                            pool);
    }
}
