/* Mixture of experts: a router picks each token's experts, the experts (3-D tensors bound as
 * one weight of n_expert blocks of rows, model_weight.expert_rows) run only for the tokens
 * routed to them, and their weighted outputs are summed.
 *
 * A step is grouped by expert: every (token, slot) pair is an assignment row, the rows are
 * sorted by expert (tokens in order within one), and each routed expert multiplies all its
 * rows in one product, so its weights are read once per step whatever the batch; an expert no
 * token chose is never touched (its pages of the mapping stay unread). The input is quantized
 * once per activation type and gathered into the rows; gate and up of every routed expert run
 * in one pool run, down in a second.
 *
 * Numerics: the reference multiplies experts with its per-row dot (vec_dot), never its tiled
 * float GEMM, so float weights use vec_dot here too and quantized ones the tile kernels
 * (bit-identical to vec_dot for those types): a token gets the same result alone or in any
 * batch. Weighted outputs are summed in slot order (highest router weight first), as the
 * reference adds its views. */
#include "model.h"

#include <math.h>
#include <string.h>

/* The MoE scratch of a context, carved from model_ctx.moe (sizes for batches of n_batch). */
typedef struct moe_scratch {
    float *logits;      /* (n_batch, n_expert) router logits, then probabilities */
    int32_t *sel;       /* (n_batch, k) chosen expert of each slot */
    float *w;           /* (n_batch, k) its weight */
    int32_t *row;       /* (n_batch, k) the assignment row of each slot */
    int32_t *tok;       /* (A) token of each assignment row */
    int32_t *off;       /* (n_expert + 1) first assignment row of each expert */
    int32_t *fill;      /* (n_expert) */
    int32_t *active;    /* (n_expert) experts with rows in this step */
    unsigned char *xq2; /* (n_batch, act) the input in up's activation type when not gate's */
    unsigned char *xg;  /* (A, act) gathered inputs in gate's activation type */
    unsigned char *xg2; /* (A, act) in up's */
    float *hg, *hu;     /* (A, n_ff_exp) gate / up outputs */
    unsigned char *hq;  /* (A, act) activated rows in down's activation type */
    float *d;           /* (A, n_embd) expert outputs */
    float *shx;         /* (n_batch, n_embd) the shared expert's output */
    float *shg;         /* (n_batch) its gate */
} moe_scratch;

#define MOE_ALIGN 64

/* Sizes saturate at UINT64_MAX, which the context's layout then refuses as too large. */
static uint64_t mul(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t take(uint64_t *at, uint64_t bytes) {
    const uint64_t off = *at;
    uint64_t end;
    if (bytes > UINT64_MAX - MOE_ALIGN || __builtin_add_overflow(*at, bytes + MOE_ALIGN - 1, &end))
        end = UINT64_MAX;
    *at = end == UINT64_MAX ? end : end & ~(uint64_t)(MOE_ALIGN - 1);
    return off;
}

/* Lays the scratch out from base (NULL: only the size); returns its bytes. */
static uint64_t moe_layout(const model *m, int32_t n_batch, unsigned char *base, moe_scratch *s) {
    const model_hparams *hp = &m->hp;
    const uint64_t B = (uint64_t)n_batch, X = (uint64_t)hp->n_expert,
                   K = (uint64_t)hp->n_expert_used;
    const uint64_t A = mul(B, K), act = m->max_act_row_bytes, F = (uint64_t)hp->n_ff_exp;
    const uint64_t D = (uint64_t)hp->n_embd;
    uint64_t at = 0;
    const uint64_t o_logits = take(&at, mul(mul(B, X), 4)), o_sel = take(&at, mul(A, 4)),
                   o_w = take(&at, mul(A, 4)), o_row = take(&at, mul(A, 4)),
                   o_tok = take(&at, mul(A, 4)), o_off = take(&at, (X + 1) * 4),
                   o_fill = take(&at, X * 4), o_active = take(&at, X * 4),
                   o_xq2 = take(&at, mul(B, act)), o_xg = take(&at, mul(A, act)),
                   o_xg2 = take(&at, mul(A, act)), o_hg = take(&at, mul(mul(A, F), 4)),
                   o_hu = take(&at, mul(mul(A, F), 4)), o_hq = take(&at, mul(A, act)),
                   o_d = take(&at, mul(mul(A, D), 4)), o_shx = take(&at, mul(mul(B, D), 4)),
                   o_shg = take(&at, mul(B, 4));
    if (base) {
        s->logits = (float *)(base + o_logits);
        s->sel = (int32_t *)(base + o_sel);
        s->w = (float *)(base + o_w);
        s->row = (int32_t *)(base + o_row);
        s->tok = (int32_t *)(base + o_tok);
        s->off = (int32_t *)(base + o_off);
        s->fill = (int32_t *)(base + o_fill);
        s->active = (int32_t *)(base + o_active);
        s->xq2 = base + o_xq2;
        s->xg = base + o_xg;
        s->xg2 = base + o_xg2;
        s->hg = (float *)(base + o_hg);
        s->hu = (float *)(base + o_hu);
        s->hq = base + o_hq;
        s->d = (float *)(base + o_d);
        s->shx = (float *)(base + o_shx);
        s->shg = (float *)(base + o_shg);
    }
    return at;
}

uint64_t model_moe_scratch_bytes(const model *m, int32_t n_batch) {
    if (m->hp.n_expert < 1) return 0;
    /* assignment rows are counted in int32 */
    if ((int64_t)n_batch * m->hp.n_expert_used > INT32_MAX) return UINT64_MAX;
    return moe_layout(m, n_batch, NULL, NULL);
}

/* ---- routing ---- */

/* The k largest of v[0..n) in descending order (ties: the lower index first). */
static void top_k(const float *v, int32_t n, int32_t k, int32_t *idx) {
    for (int32_t j = 0; j < k; j++) {
        int32_t best = -1;
        for (int32_t e = 0; e < n; e++) {
            bool taken = false;
            for (int32_t i = 0; i < j && !taken; i++) taken = idx[i] == e;
            if (!taken && (best < 0 || v[e] > v[best])) best = e;
        }
        idx[j] = best;
    }
}

/* Token t's experts and weights from its router logits (lg, overwritten). */
static void route(const model_moe_params *p, float *lg, int32_t n_expert, int32_t k, int32_t *sel,
                  float *w) {
    if (p->gating == MODEL_MOE_SOFTMAX) model_softmax(lg, n_expert);
    if (p->gating == MODEL_MOE_SIGMOID)
        for (int32_t e = 0; e < n_expert; e++) lg[e] = 1.0f / (1.0f + expf(-lg[e]));
    top_k(lg, n_expert, k, sel);
    for (int32_t j = 0; j < k; j++) w[j] = lg[sel[j]];
    if (p->gating == MODEL_MOE_SOFTMAX_TOPK) model_softmax(w, k);
    if (p->norm) {
        float sum = 0.0f;
        for (int32_t j = 0; j < k; j++) sum += w[j];
        /* the reference clamps the sum to F16's smallest normal against a division by zero */
        if (sum < 6.103515625e-5f) sum = 6.103515625e-5f;
        for (int32_t j = 0; j < k; j++) w[j] /= sum;
    }
    if (p->scale != 0.0f && p->scale != 1.0f)
        for (int32_t j = 0; j < k; j++) w[j] *= p->scale;
}

/* ---- the grouped products ---- */

/* Rows per work item: the tile kernels take 4 or 8 weight rows at a time. */
#define MOE_ROW_UNIT 16
/* Activation rows per tile-kernel call (they stay in L2 while the rows go through them). */
#define MOE_TOK_BLOCK 64
/* Below this many multiply-adds a product is cheaper than waking the pool's other threads. */
#define MOE_PARALLEL_MIN (1 << 16)

/* Products of up to two expert weights of one input (gate and up, or down alone) for the rows
 * of every active expert. */
typedef struct moe_task {
    const model_weight *w[2];
    int n_w;
    const int32_t *active, *off;
    int64_t units;              /* work items per expert */
    const unsigned char *xq[2]; /* (A, act) inputs of each weight, by assignment row */
    size_t xq_stride;
    float *y[2]; /* (A, expert_rows) outputs */
} moe_task;

/* Rows [lo, hi) of expert e of weight k for all of e's assignment rows. */
static void expert_rows(const moe_task *t, int k, int32_t e, int64_t lo, int64_t hi) {
    const model_weight *w = t->w[k];
    const int64_t R = w->expert_rows;
    const int32_t a0 = t->off[e], nt = t->off[e + 1] - a0;
    const unsigned char *wd =
        (const unsigned char *)w->data + ((size_t)e * (size_t)R + (size_t)lo) * w->row_bytes;
    const unsigned char *xq = t->xq[k] + (size_t)a0 * t->xq_stride;
    const void *xp = w->xpack ? atomic_load_explicit(&w->xpack[e], memory_order_acquire) : NULL;
    if (xp) { /* the expert's layout: its kernel for every token, alone or batched */
        float *ye = t->y[k] + (int64_t)a0 * R;
        for (int32_t t0 = 0; t0 < nt; t0 += MOE_TOK_BLOCK) {
            const int32_t n = nt - t0 < MOE_TOK_BLOCK ? nt - t0 : MOE_TOK_BLOCK;
            w->pk->gemm(w->n_in, lo, hi, n, xp, xq + (size_t)t0 * t->xq_stride, t->xq_stride,
                        ye + (int64_t)t0 * R, (size_t)R);
        }
        return;
    }
    float *y = t->y[k] + (int64_t)a0 * R + lo;
    if (w->qt->gemm && w->qt->vec_dot_batch == w->qt->vec_dot) {
        for (int32_t t0 = 0; t0 < nt; t0 += MOE_TOK_BLOCK) {
            const int32_t n = nt - t0 < MOE_TOK_BLOCK ? nt - t0 : MOE_TOK_BLOCK;
            w->qt->gemm(w->n_in, hi - lo, n, wd, w->row_bytes, xq + (size_t)t0 * t->xq_stride,
                        t->xq_stride, y + (int64_t)t0 * R, (size_t)R);
        }
        return;
    }
    for (int64_t r = 0; r < hi - lo; r++)
        for (int32_t i = 0; i < nt; i++)
            w->qt->vec_dot(w->n_in, &y[(int64_t)i * R + r], wd + (size_t)r * w->row_bytes,
                           xq + (size_t)i * t->xq_stride);
}

static void moe_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    (void)slot;
    const moe_task *t = ctx;
    const int64_t R = t->w[0]->expert_rows;
    for (int64_t it = lo; it < hi; it++) {
        const int32_t e = t->active[it / t->units];
        const int64_t r0 = it % t->units * MOE_ROW_UNIT;
        const int64_t r1 = r0 + MOE_ROW_UNIT < t->n_w * R ? r0 + MOE_ROW_UNIT : t->n_w * R;
        for (int k = 0; k < t->n_w; k++) {
            const int64_t a = r0 > k * R ? r0 : k * R;
            const int64_t b = r1 < (k + 1) * R ? r1 : (k + 1) * R;
            if (a < b) expert_rows(t, k, e, a - k * R, b - k * R);
        }
    }
}

static void run_products(model_ctx *c, moe_task *t, int32_t n_active, int64_t n_rows) {
    const int64_t R = t->w[0]->expert_rows;
    t->units = (t->n_w * R + MOE_ROW_UNIT - 1) / MOE_ROW_UNIT;
    const int64_t n_items = t->units * n_active;
    const int64_t work = n_rows * t->n_w * R * t->w[0]->n_in;
    if (c->pool && c->n_threads > 1 && work >= MOE_PARALLEL_MIN)
        core_pool_run_items(c->pool, moe_items, t, n_items);
    else
        moe_items(t, 0, n_items, 0);
}

/* The routed experts' layouts (model_expert_pack), packed in parallel where this step is an
 * expert's first use, before any product reads them: every token an expert ever serves goes
 * through the same kernel. */
typedef struct xpack_task {
    const model *m;
    const model_weight *w[3];
    const int32_t *e; /* experts to pack, each for the three weights */
} xpack_task;

static void xpack_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    (void)slot;
    const xpack_task *t = ctx;
    for (int64_t i = lo; i < hi; i++) model_expert_pack(t->m, t->w[i % 3], t->e[i / 3]);
}

static void pack_experts(model_ctx *c, const model_layer *L, const int32_t *active,
                         int32_t n_active, int32_t *todo) {
    xpack_task t = {c->m, {&L->ffn_gate_exps, &L->ffn_up_exps, &L->ffn_down_exps}, todo};
    int32_t n = 0;
    for (int32_t ai = 0; ai < n_active; ai++)
        for (int k = 0; k < 3; k++)
            if (t.w[k]->xpack &&
                !atomic_load_explicit(&t.w[k]->xpack[active[ai]], memory_order_acquire)) {
                todo[n++] = active[ai];
                break;
            }
    if (n == 0) return;
    if (c->pool && c->n_threads > 1)
        core_pool_run_items(c->pool, xpack_items, &t, (int64_t)n * 3);
    else
        xpack_items(&t, 0, (int64_t)n * 3, 0);
}

/* Rows of n floats converted to the activation type `type` (F32: copied). */
typedef struct quant_task {
    const quant_traits *vt;
    const float *x;
    int64_t n;
    unsigned char *y;
    size_t stride;
} quant_task;

static void quant_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    (void)slot;
    const quant_task *q = ctx;
    for (int64_t i = lo; i < hi; i++)
        q->vt->from_float(q->x + i * q->n, q->y + i * q->stride, q->n);
}

static void quantize_rows(model_ctx *c, uint32_t type, const float *x, int64_t n, int64_t rows,
                          unsigned char *y) {
    quant_task q = {quant_get(type), x, n, y, c->m->max_act_row_bytes};
    if (c->pool && c->n_threads > 1 && rows * n >= MOE_PARALLEL_MIN)
        core_pool_run_items(c->pool, quant_items, &q, rows);
    else
        quant_items(&q, 0, rows, 0);
}

/* silu(g)·u, or gpt-oss's clamped variant, over one row of n. */
static void activate(model_moe_act act, float *g, const float *u, int64_t n) {
    if (act == MODEL_MOE_SILU) {
        model_swiglu(g, u, n);
        return;
    }
    const float alpha = 1.702f, limit = 7.0f;
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i] < limit ? g[i] : limit;
        const float y = u[i] < -limit ? -limit : u[i] > limit ? limit : u[i];
        g[i] = x / (1.0f + expf(alpha * -x)) * (y + 1.0f);
    }
}

void model_op_moe(model_ctx *c, const model_layer *L, const model_moe_params *p, const float *x,
                  float *out) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int32_t n = c->n_tok, X = hp->n_expert, K = hp->n_expert_used;
    const int64_t D = hp->n_embd, F = L->ffn_up_exps.expert_rows;
    const size_t act = m->max_act_row_bytes;
    moe_scratch s;
    moe_layout(m, c->n_batch, c->moe, &s);
    model_dev_host(c); /* routing and the experts' products are the CPU's */

    /* the shared expert first: its products use the context's scratch (and activation rows)
     * that the routed experts take over below */
    if (L->ffn_up_shexp.data) {
        const int64_t Fs = L->ffn_up_shexp.n_out;
        const model_weight *gu[2] = {&L->ffn_gate_shexp, &L->ffn_up_shexp};
        float *const guo[2] = {c->gate, c->up};
        model_linear_n(c, 2, gu, x, guo, n);
        model_op_glu(c, MODEL_GLU_SILU, c->gate, c->up, Fs);
        model_linear(c, &L->ffn_down_shexp, c->gate, s.shx, n);
        const quant_vec_dot_fn dot = quant_get(GGUF_T_F32)->vec_dot;
        for (int32_t t = 0; t < n; t++) {
            float g;
            dot(D, &g, L->ffn_gate_inp_shexp, x + (int64_t)t * D);
            s.shg[t] = 1.0f / (1.0f + expf(-g));
        }
    }

    model_linear(c, &L->ffn_gate_inp, x, s.logits, n);
    model_op_add_bias(c, s.logits, L->ffn_gate_inp_b, X);
    for (int32_t t = 0; t < n; t++)
        route(p, s.logits + (int64_t)t * X, X, K, s.sel + t * K, s.w + t * K);

    /* assignment rows sorted by expert, tokens in order within one */
    memset(s.off, 0, sizeof *s.off * (size_t)(X + 1));
    for (int32_t i = 0; i < n * K; i++) s.off[s.sel[i] + 1]++;
    int32_t n_active = 0;
    for (int32_t e = 0; e < X; e++) {
        if (s.off[e + 1]) s.active[n_active++] = e;
        s.off[e + 1] += s.off[e];
        s.fill[e] = s.off[e];
    }
    for (int32_t i = 0; i < n * K; i++) {
        const int32_t r = s.fill[s.sel[i]]++;
        s.row[i] = r;
        s.tok[r] = i / K;
    }
    const int32_t A = n * K;
    pack_experts(c, L, s.active, n_active, s.fill); /* (fill is free again) */

    /* the input once per activation type, then gathered into the assignment rows */
    const uint32_t tg = L->ffn_gate_exps.qt->vec_dot_type, tu = L->ffn_up_exps.qt->vec_dot_type;
    unsigned char *xq = c->xq;
    quantize_rows(c, tg, x, D, n, xq);
    if (tu != tg) quantize_rows(c, tu, x, D, n, s.xq2);
    for (int32_t r = 0; r < A; r++) {
        memcpy(s.xg + (size_t)r * act, xq + (size_t)s.tok[r] * act, act);
        if (tu != tg) memcpy(s.xg2 + (size_t)r * act, s.xq2 + (size_t)s.tok[r] * act, act);
    }
    moe_task gu = {.w = {&L->ffn_gate_exps, &L->ffn_up_exps},
                   .n_w = 2,
                   .active = s.active,
                   .off = s.off,
                   .xq = {s.xg, tu != tg ? s.xg2 : s.xg},
                   .xq_stride = act,
                   .y = {s.hg, s.hu}};
    run_products(c, &gu, n_active, A);

    for (int32_t ai = 0; ai < n_active; ai++) {
        const int32_t e = s.active[ai];
        for (int32_t r = s.off[e]; r < s.off[e + 1]; r++) {
            float *g = s.hg + (int64_t)r * F, *u = s.hu + (int64_t)r * F;
            if (L->ffn_gate_exps_b)
                for (int64_t i = 0; i < F; i++) g[i] += L->ffn_gate_exps_b[e * F + i];
            if (L->ffn_up_exps_b)
                for (int64_t i = 0; i < F; i++) u[i] += L->ffn_up_exps_b[e * F + i];
            activate(p->act, g, u, F);
        }
    }

    quantize_rows(c, L->ffn_down_exps.qt->vec_dot_type, s.hg, F, A, s.hq);
    moe_task dn = {.w = {&L->ffn_down_exps},
                   .n_w = 1,
                   .active = s.active,
                   .off = s.off,
                   .xq = {s.hq},
                   .xq_stride = act,
                   .y = {s.d}};
    run_products(c, &dn, n_active, A);
    if (L->ffn_down_exps_b)
        for (int32_t ai = 0; ai < n_active; ai++) {
            const int32_t e = s.active[ai];
            for (int32_t r = s.off[e]; r < s.off[e + 1]; r++)
                for (int64_t i = 0; i < D; i++)
                    s.d[(int64_t)r * D + i] += L->ffn_down_exps_b[e * D + i];
        }

    /* weighted outputs summed in slot order (out may be x: x is no longer read), then the
     * gated shared expert */
    for (int32_t t = 0; t < n; t++) {
        float *o = out + (int64_t)t * D;
        for (int32_t j = 0; j < K; j++) {
            const float *d = s.d + (int64_t)s.row[t * K + j] * D, wj = s.w[t * K + j];
            if (j == 0)
                for (int64_t i = 0; i < D; i++) o[i] = d[i] * wj;
            else
                for (int64_t i = 0; i < D; i++) o[i] += d[i] * wj;
        }
        if (L->ffn_up_shexp.data)
            for (int64_t i = 0; i < D; i++) o[i] += s.shx[(int64_t)t * D + i] * s.shg[t];
    }
}

/* ---- loading ---- */

shimmy_status model_moe_hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st;
    if ((st = model_load_key_i32(ld, "expert_count", true, 1, 4096, &hp->n_expert)) ||
        (st = model_load_key_i32(ld, "expert_used_count", true, 1, hp->n_expert,
                                 &hp->n_expert_used)) ||
        (st = model_load_key_i32(ld, "expert_feed_forward_length", false, 1, 1 << 20,
                                 &hp->n_ff_exp)) ||
        (st = model_load_key_i32(ld, "expert_shared_feed_forward_length", false, 1, 1 << 20,
                                 &hp->n_ff_shexp)))
        return st;
    /* the reference's default when the file has no expert size */
    if (hp->n_ff_exp == 0) hp->n_ff_exp = hp->n_ff / hp->n_expert_used;
    if (hp->n_ff_exp < 1)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "%s: no expert_feed_forward_length and feed_forward_length %d is "
                               "smaller than expert_used_count %d",
                               model_loader_model(ld)->arch->name, hp->n_ff, hp->n_expert_used);
    return SHIMMY_OK;
}

shimmy_status model_moe_bind(model_loader *ld, int32_t il, model_layer *L, bool router_bias,
                             bool expert_bias, bool shared_expert) {
    const model_hparams *hp = &model_loader_model(ld)->hp;
    const int64_t E = hp->n_embd, F = hp->n_ff_exp, X = hp->n_expert;
    shimmy_status st;
    if ((st = model_load_matrix(ld, il, "ffn_gate_inp.weight", E, X, true, &L->ffn_gate_inp)) ||
        (st = model_load_experts(ld, il, "ffn_gate_exps.weight", E, F, X, true,
                                 &L->ffn_gate_exps)) ||
        (st = model_load_experts(ld, il, "ffn_up_exps.weight", E, F, X, true, &L->ffn_up_exps)) ||
        (st = model_load_experts(ld, il, "ffn_down_exps.weight", F, E, X, true, &L->ffn_down_exps)))
        return st;
    if (router_bias &&
        (st = model_load_vector(ld, il, "ffn_gate_inp.bias", X, true, &L->ffn_gate_inp_b)))
        return st;
    if (expert_bias &&
        ((st =
              model_load_rows_f32(ld, il, "ffn_gate_exps.bias", F, X, true, &L->ffn_gate_exps_b)) ||
         (st = model_load_rows_f32(ld, il, "ffn_up_exps.bias", F, X, true, &L->ffn_up_exps_b)) ||
         (st = model_load_rows_f32(ld, il, "ffn_down_exps.bias", E, X, true, &L->ffn_down_exps_b))))
        return st;
    const int64_t Fs = hp->n_ff_shexp;
    if (shared_expert &&
        ((st = model_load_vector(ld, il, "ffn_gate_inp_shexp.weight", E, true,
                                 &L->ffn_gate_inp_shexp)) ||
         (st = model_load_matrix(ld, il, "ffn_gate_shexp.weight", E, Fs, true,
                                 &L->ffn_gate_shexp)) ||
         (st = model_load_matrix(ld, il, "ffn_up_shexp.weight", E, Fs, true, &L->ffn_up_shexp)) ||
         (st =
              model_load_matrix(ld, il, "ffn_down_shexp.weight", Fs, E, true, &L->ffn_down_shexp))))
        return st;
    return SHIMMY_OK;
}
