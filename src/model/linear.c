/* model_linear: the one place a weight matrix meets activations. Activations are converted once
 * per product to the weight type's vec_dot_type (as llama.cpp does, which is what makes logits
 * agree), then the output rows are split over the pool. A LoRA adapter set attached to the
 * context adds its low-rank terms here, so every weight product sees them. */
#include "model.h"
#include "lora/lora.h"

#define MAX_GROUP 4

/* The activations a weight's kernels read: its layout's (model_repack) or its type's. */
static uint32_t act_type(const model_weight *w) {
    return w->pk ? w->pk->act_type : w->qt->vec_dot_type;
}

static quant_from_float_fn act_convert(const model_weight *w) {
    if (w->pk && w->pk->act_from_float) return w->pk->act_from_float;
    const quant_traits *vt = quant_get(act_type(w));
    return vt ? vt->from_float : NULL;
}

typedef struct lin_task {
    const model_weight *w[MAX_GROUP]; /* products sharing the same input */
    float *y[MAX_GROUP];              /* (n_tok, w[i]->n_out) */
    int64_t row0[MAX_GROUP + 1];      /* prefix sums of n_out: the rows are split as one range */
    int n_w;
    quant_from_float_fn convert; /* makes the activation rows */
    const float *x;              /* (n_tok, n_in) */
    const unsigned char *xq;
    unsigned char *xq_out;
    size_t xq_stride; /* bytes per activation row */
    int32_t n_tok;
    const uint8_t *single; /* (n_tok) rows that are their sequence's only entry, or NULL */
} lin_task;

static void quantize_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    (void)slot;
    lin_task *t = ctx;
    const int64_t n_in = t->w[0]->n_in;
    for (int64_t i = lo; i < hi; i++)
        t->convert(t->x + i * n_in, t->xq_out + (size_t)i * t->xq_stride, n_in);
}

/* Rows in blocks so that a block of weight rows stays in L1 while every token visits it. */
#define ROW_BLOCK 16

/* Tokens per pass of the tile kernels: their activation rows stay in L2 while the weight rows
 * of the thread's range go through them once. */
#define TOK_BLOCK 64

/* Whether token tok's row goes through the tile kernels. The reference runs a product over
 * several tokens through its batched kernels; over one token the batched order is the plain
 * one for every type the tile kernels take except the float types (there a single token keeps
 * vec_dot). In a batch of several sequences "one token" means the entry is its sequence's only
 * one in the step, so that a decode row is computed the same way alone or with others. */
static bool tiled_row(const lin_task *t, const model_weight *w, int32_t tok) {
    if (!w->qt->gemm) return false;
    if (w->qt->vec_dot_batch == w->qt->vec_dot) return true;
    return t->single ? !t->single[tok] : t->n_tok > 1;
}

static void dot_rows(const lin_task *t, int k, int64_t lo, int64_t hi) {
    const model_weight *w = t->w[k];
    if (w->pack) { /* repacked rows: one kernel for every token, alone or batched, so a row's
                    * arithmetic never depends on what else is in the step */
        for (int32_t t0 = 0; t0 < t->n_tok; t0 += TOK_BLOCK) {
            const int32_t nt = t->n_tok - t0 < TOK_BLOCK ? t->n_tok - t0 : TOK_BLOCK;
            w->pk->gemm(w->n_in, lo, hi, nt, w->pack, t->xq + (size_t)t0 * t->xq_stride,
                        t->xq_stride, t->y[k] + (int64_t)t0 * w->n_out, (size_t)w->n_out);
        }
        return;
    }
    const unsigned char *wd = w->data;
    const quant_vec_dot_fn dot = w->qt->vec_dot;
    const int64_t n_in = w->n_in, n_out = w->n_out;
    /* runs of tokens of one kind: tile kernels over a run of batched rows, plain dots over a
     * run of single ones (the weight rows stay in L1 while every token visits them) */
    for (int32_t a = 0; a < t->n_tok;) {
        const bool tiled = tiled_row(t, w, a);
        int32_t b = a + 1;
        while (b < t->n_tok && tiled_row(t, w, b) == tiled) b++;
        if (tiled) {
            for (int32_t t0 = a; t0 < b; t0 += TOK_BLOCK) {
                const int32_t nt = b - t0 < TOK_BLOCK ? b - t0 : TOK_BLOCK;
                w->qt->gemm(w->n_in, hi - lo, nt, wd + (size_t)lo * w->row_bytes, w->row_bytes,
                            t->xq + (size_t)t0 * t->xq_stride, t->xq_stride,
                            t->y[k] + (int64_t)t0 * n_out + lo, (size_t)n_out);
            }
        } else {
            for (int64_t r0 = lo; r0 < hi; r0 += ROW_BLOCK) {
                const int64_t r1 = r0 + ROW_BLOCK < hi ? r0 + ROW_BLOCK : hi;
                for (int32_t tok = a; tok < b; tok++) {
                    const void *xr = t->xq + (size_t)tok * t->xq_stride;
                    float *yr = t->y[k] + (int64_t)tok * n_out;
                    for (int64_t r = r0; r < r1; r++)
                        dot(n_in, &yr[r], wd + (size_t)r * w->row_bytes, xr);
                }
            }
        }
        a = b;
    }
}

/* Threads take whole groups of rows: the tile kernels work on 4 or 8 rows at a time. */
#define ROW_UNIT 16

/* The rows of units [lo, hi) of all products, as one range over their concatenation. */
static void dot_units(void *ctx, int64_t lo, int64_t hi) {
    const lin_task *t = ctx;
    const int64_t total = t->row0[t->n_w];
    lo *= ROW_UNIT;
    hi = hi * ROW_UNIT < total ? hi * ROW_UNIT : total;
    for (int k = 0; k < t->n_w; k++) {
        const int64_t a = lo > t->row0[k] ? lo : t->row0[k];
        const int64_t b = hi < t->row0[k + 1] ? hi : t->row0[k + 1];
        if (a < b) dot_rows(t, k, a - t->row0[k], b - t->row0[k]);
    }
}

static int64_t n_units(const lin_task *t) {
    return (t->row0[t->n_w] + ROW_UNIT - 1) / ROW_UNIT;
}

static void dot_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    (void)slot;
    dot_units(ctx, lo, hi);
}

/* Below this many multiply-adds a product is cheaper than waking the pool's other threads. */
#define LINEAR_PARALLEL_MIN (1 << 16)

/* The pool for a product of this size, or NULL for the calling thread alone. */
static core_pool *pool_for(const model_ctx *c, const lin_task *t) {
    const int64_t work = t->row0[t->n_w] * t->w[0]->n_in * t->n_tok;
    return c->pool && c->n_threads > 1 && work >= LINEAR_PARALLEL_MIN ? c->pool : NULL;
}

/* Item runs: a thread that another process keeps off its core costs the product a piece, not
 * its share (see core_pool_run_items). Each row is computed whole by one thread with the same
 * kernel wherever it runs, so the split does not change a bit of the result. */
static void run(model_ctx *c, core_items_fn fn, lin_task *t, int64_t n_items) {
    core_pool *pool = pool_for(c, t);
    if (pool)
        core_pool_run_items(pool, fn, t, n_items);
    else
        fn(t, 0, n_items, 0);
}

static void linear_rows(model_ctx *c, int n_w, const model_weight *const *w, const float *x,
                        float *const *y, int32_t n_tok, const uint8_t *single,
                        const struct lora_set *const *row_lora);

/* A product on the device when it holds the weight and takes the case (true: done). */
static bool on_device(model_ctx *c, const model_weight *w, const float *x, float *y,
                      int32_t n_rows) {
    if (model_dev_want(c, w->data) && c->dev->ops->linear(c->dev_ctx, c, w, x, y, n_rows))
        return true;
    model_dev_host(c);
    return false;
}

void model_linear_n(model_ctx *c, int n_w, const model_weight *const *w, const float *x,
                    float *const *y, int32_t n_tok) {
    if (c->dev) {
        /* one at a time: each goes where its weight is */
        for (int i = 0; i < n_w; i++)
            if (!on_device(c, w[i], x, y[i], n_tok)) {
                const bool entries = n_tok == c->n_tok;
                linear_rows(c, 1, &w[i], x, &y[i], n_tok, entries ? c->tok_single : NULL,
                            entries ? c->tok_lora : NULL);
            }
        return;
    }
    /* rows that are the step's entries know which are single and their adapters; other row
     * sets (expert groups) follow the plain rule without adapters */
    const bool entries = n_tok == c->n_tok;
    linear_rows(c, n_w, w, x, y, n_tok, entries ? c->tok_single : NULL,
                entries ? c->tok_lora : NULL);
}

void model_linear_flags(model_ctx *c, const model_weight *w, const float *x, float *y,
                        int32_t n_rows, const uint8_t *single) {
    if (c->dev && on_device(c, w, x, y, n_rows)) return;
    /* the logits' rows: their entries' adapters were gathered into row_lora */
    linear_rows(c, 1, &w, x, &y, n_rows, single, c->tok_lora ? c->row_lora : NULL);
}

/* Per-row adapters (a batch of sequences with different adapter sets): after the base products
 * of every row, each run of consecutive rows with one set adds that set's low-rank terms, from
 * the unquantized input — the same terms, in the same order, as a context with the set
 * attached adds (lora_set_run without base products). The runs are independent (disjoint rows):
 * the pool's threads take whole runs, each with its own scratch, so a decode step's few rows per
 * set never pay a pool run's barriers (which stall whenever a thread is off its core). */
typedef struct row_lora_task {
    const model_ctx *c;
    int n_w;
    const model_weight *const *w;
    const char *names[MAX_GROUP];
    const float *x;
    float *const *y;
    const struct lora_set *const *rl;
    int32_t runs[2 * 512]; /* [start, end) of each run with a set */
    int n_runs;
} row_lora_task;

static void row_lora_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    const row_lora_task *t = ctx;
    const model_ctx *c = t->c;
    float *scratch = c->lora_scratch + (size_t)slot * c->lora_scratch_floats;
    for (int64_t i = lo; i < hi; i++) {
        const int32_t a = t->runs[2 * i], b = t->runs[2 * i + 1];
        float *ys[MAX_GROUP];
        for (int k = 0; k < t->n_w; k++) ys[k] = t->y[k] + (int64_t)a * t->w[k]->n_out;
        lora_set_run(t->rl[a], t->n_w, t->names, b - a, t->x + (int64_t)a * t->w[0]->n_in, ys,
                     scratch, NULL, NULL);
    }
}

static void add_row_lora(model_ctx *c, int n_w, const model_weight *const *w, const float *x,
                         float *const *y, int32_t n_tok, const struct lora_set *const *rl) {
    row_lora_task t = {.c = c, .n_w = n_w, .w = w, .x = x, .y = y, .rl = rl};
    for (int k = 0; k < n_w; k++) t.names[k] = w[k]->name;
    for (int32_t a = 0; a < n_tok;) {
        int32_t b = a + 1;
        while (b < n_tok && rl[b] == rl[a]) b++;
        if (rl[a]) {
            if (t.n_runs == 512) { /* more runs than a step can have sets: flush */
                row_lora_items(&t, 0, t.n_runs, 0);
                t.n_runs = 0;
            }
            t.runs[2 * t.n_runs] = a;
            t.runs[2 * t.n_runs + 1] = b;
            t.n_runs++;
        }
        a = b;
    }
    if (t.n_runs > 1 && c->n_threads > 1 && c->lora_scratch_threads > 1)
        core_pool_run_items(c->pool, row_lora_items, &t, t.n_runs);
    else if (t.n_runs)
        row_lora_items(&t, 0, t.n_runs, 0);
}

static void linear_rows(model_ctx *c, int n_w, const model_weight *const *w, const float *x,
                        float *const *y, int32_t n_tok, const uint8_t *single,
                        const struct lora_set *const *row_lora) {
    /* one group needs one activation type; otherwise each product runs on its own */
    bool same = n_w <= MAX_GROUP;
    for (int k = 1; k < n_w && same; k++)
        same = act_type(w[k]) == act_type(w[0]) && act_convert(w[k]) == act_convert(w[0]) &&
               w[k]->n_in == w[0]->n_in;
    if (!same) {
        for (int k = 0; k < n_w; k++) linear_rows(c, 1, &w[k], x, &y[k], n_tok, single, row_lora);
        return;
    }
    lin_task t = {.n_w = n_w, .x = x, .n_tok = n_tok, .single = single};
    for (int k = 0; k < n_w; k++) {
        t.w[k] = w[k];
        t.y[k] = y[k];
        t.row0[k + 1] = t.row0[k] + w[k]->n_out;
    }
    if (act_type(w[0]) == GGUF_T_F32 && !(w[0]->pk && w[0]->pk->act_from_float)) {
        t.xq = (const unsigned char *)x;
        t.xq_stride = (size_t)w[0]->n_in * sizeof(float);
    } else {
        t.convert = act_convert(w[0]);
        t.xq_out = c->xq;
        t.xq = c->xq;
        t.xq_stride = c->m->max_act_row_bytes;
        if (n_tok >= 4)
            run(c, quantize_items, &t, n_tok);
        else
            quantize_items(&t, 0, n_tok, 0);
    }
    if (c->lora) { /* the adapters' low-rank terms, from the unquantized input, in the same
                    * pool run as the products */
        const char *names[MAX_GROUP];
        for (int k = 0; k < n_w; k++) names[k] = w[k]->name;
        int64_t n_out[MAX_GROUP];
        for (int k = 0; k < n_w; k++) n_out[k] = w[k]->n_out;
        const lora_base base = {dot_units, &t, n_out, ROW_UNIT};
        lora_set_run(c->lora, n_w, names, n_tok, x, y, c->lora_scratch, pool_for(c, &t), &base);
    } else {
        run(c, dot_items, &t, n_units(&t));
        if (row_lora) add_row_lora(c, n_w, w, x, y, n_tok, row_lora);
    }
}

void model_linear(model_ctx *c, const model_weight *w, const float *x, float *y, int32_t n_tok) {
    model_linear_n(c, 1, &w, x, &y, n_tok);
}
