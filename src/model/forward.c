/* The step driver (model_ctx_decode: validate a batch, lay out its entries, run the arch's
 * forward pass) and the small shared ops the arch files compose; attention is in attention.c,
 * the kernels under the ops in ops.c. */
#include "model.h"

#include <math.h>
#include <string.h>

void model_op_embed(model_ctx *c, float scale) {
    const model *m = c->m;
    const int64_t E = m->hp.n_embd;
    const unsigned char *emb = m->tok_embd.data;
    model_dev_host(c);
    for (int32_t t = 0; t < c->n_tok; t++) {
        float *x = c->x + t * E;
        m->tok_embd.qt->to_float(emb + (size_t)c->tok[t] * m->tok_embd.row_bytes, x, E);
        if (scale != 1.0f)
            for (int64_t i = 0; i < E; i++) x[i] *= scale;
    }
}

void model_op_rms_norm(model_ctx *c, const float *x, const float *w, float *out, int64_t n) {
    if ((w ? model_dev_want(c, w) : model_dev_here(c)) &&
        c->dev->ops->rms_norm(c->dev_ctx, c, x, w, out, n, c->n_tok, c->m->hp.rms_eps))
        return;
    model_dev_host(c);
    for (int32_t t = 0; t < c->n_tok; t++)
        model_rms_norm(x + t * n, w, out + t * n, n, c->m->hp.rms_eps);
}

typedef struct rows_task {
    model_rows_fn fn;
    void *ctx;
} rows_task;

static void rows_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    (void)slot;
    const rows_task *t = ctx;
    t->fn(t->ctx, lo, hi);
}

/* below this many elements a pool run's wake-up costs more than the loop */
#define ROWS_PARALLEL_MIN (1 << 15)

void model_run_rows(model_ctx *c, int64_t n_rows, int64_t row_elems, model_rows_fn fn, void *ctx) {
    if (c->pool && c->n_threads > 1 && n_rows > 1 && n_rows * row_elems >= ROWS_PARALLEL_MIN) {
        rows_task t = {fn, ctx};
        core_pool_run_items(c->pool, rows_items, &t, n_rows);
    } else {
        fn(ctx, 0, n_rows);
    }
}

typedef struct bias_rows {
    float *y;
    const float *b;
    int64_t dim;
} bias_rows;

static void add_bias_rows(void *ctx, int64_t lo, int64_t hi) {
    const bias_rows *a = ctx;
    for (int64_t t = lo; t < hi; t++)
        for (int64_t i = 0; i < a->dim; i++) a->y[t * a->dim + i] += a->b[i];
}

void model_op_add_bias(model_ctx *c, float *y, const float *b, int64_t dim) {
    if (!b) return;
    if (model_dev_want(c, b) && c->dev->ops->add_bias(c->dev_ctx, c, y, b, dim, c->n_tok)) return;
    model_dev_host(c);
    bias_rows a = {y, b, dim};
    model_run_rows(c, c->n_tok, dim, add_bias_rows, &a);
}

typedef struct add_rows_args {
    float *x;
    const float *y;
    int64_t n;
} add_rows_args;

static void add_rows(void *ctx, int64_t lo, int64_t hi) {
    const add_rows_args *a = ctx;
    for (int64_t i = lo * a->n; i < hi * a->n; i++) a->x[i] += a->y[i];
}

void model_op_add(model_ctx *c, float *x, const float *y, int64_t n) {
    if (model_dev_here(c) && c->dev->ops->add(c->dev_ctx, c, x, y, n)) return;
    model_dev_host(c);
    add_rows_args a = {x, y, n};
    model_run_rows(c, c->n_tok, n, add_rows, &a);
}

static void copy_rows(void *ctx, int64_t lo, int64_t hi) {
    const add_rows_args *a = ctx;
    memcpy(a->x + lo * a->n, a->y + lo * a->n, sizeof(float) * (size_t)((hi - lo) * a->n));
}

void model_op_copy_rows(model_ctx *c, float *dst, const float *src, int64_t n) {
    model_dev_host(c);
    add_rows_args a = {dst, src, n};
    model_run_rows(c, c->n_tok, n, copy_rows, &a);
}

void model_op_scale(model_ctx *c, float *x, int64_t n, float s) {
    if (s == 1.0f) return;
    if (model_dev_here(c) && c->dev->ops->scale(c->dev_ctx, c, x, c->n_tok * n, s)) return;
    model_dev_host(c);
    for (int64_t i = 0; i < c->n_tok * n; i++) x[i] *= s;
}

void model_op_head_norm(model_ctx *c, float *y, const float *w, int32_t n_head, int32_t head_dim,
                        float eps) {
    if (!w) return;
    if (model_dev_want(c, w) &&
        c->dev->ops->rms_norm(c->dev_ctx, c, y, w, y, head_dim, (int64_t)c->n_tok * n_head, eps))
        return;
    model_dev_host(c);
    for (int64_t i = 0; i < (int64_t)c->n_tok * n_head; i++)
        model_rms_norm(y + i * head_dim, w, y + i * head_dim, head_dim, eps);
}

/* Angle rows are head_dim long (n_rot <= head_dim), so that every configuration fits. */
static float *rope_row(model_ctx *c, int slot, int32_t t) {
    return c->rope_cs + ((int64_t)slot * c->n_batch + t) * c->m->hp.head_dim;
}

/* The angles are the host's to compute (every rope variant); a device gets a copy. */
static void rope_upload(model_ctx *c, int slot) {
    if (c->dev)
        c->dev->ops->upload(c->dev_ctx, c, rope_row(c, slot, 0),
                            sizeof(float) * (size_t)c->n_tok * (size_t)c->m->hp.head_dim);
}

void model_op_rope_prepare(model_ctx *c, int slot, const model_rope_cfg *r) {
    /* RoPE's angles depend on the position only: once per step, not per layer and q/k */
    if (r->ext_factor > 0.0f) { /* YaRN scales cos and sin itself */
        float corr[2];
        model_yarn_corr_dims(r->n_rot, r->n_ctx_orig, r->base, r->beta_fast, r->beta_slow, corr);
        const float af = r->attn_factor != 0.0f ? r->attn_factor : 1.0f;
        for (int32_t t = 0; t < c->n_tok; t++)
            model_rope_angles_yarn(rope_row(c, slot, t), r->n_rot, c->tok_pos[t], r->base,
                                   r->freq_scale, r->freq_factors, r->ext_factor, corr, af);
        rope_upload(c, slot);
        return;
    }
    for (int32_t t = 0; t < c->n_tok; t++) {
        float *cs = rope_row(c, slot, t);
        model_rope_angles(cs, r->n_rot, c->tok_pos[t], r->base, r->freq_scale, r->freq_factors);
        if (r->attn_factor != 0.0f && r->attn_factor != 1.0f)
            for (int32_t i = 0; i < r->n_rot; i++) cs[i] *= r->attn_factor;
    }
    rope_upload(c, slot);
}

void model_op_rope_qk(model_ctx *c, int slot, const model_rope_cfg *r) {
    const model_hparams *hp = &c->m->hp;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    if (model_dev_here(c)) { /* the device runs every rope: its angles came from the host */
        const float *cs = rope_row(c, slot, 0);
        c->dev->ops->rope(c->dev_ctx, c, c->q, hp->n_head, hp->head_dim, r->n_rot, cs, r->mode);
        c->dev->ops->rope(c->dev_ctx, c, c->k, hp->n_head_kv, hp->head_dim, r->n_rot, cs, r->mode);
        return;
    }
    for (int32_t t = 0; t < c->n_tok; t++) {
        const float *cs = rope_row(c, slot, t);
        model_rope_apply(c->q + t * q_dim, hp->n_head, hp->head_dim, r->n_rot, cs, r->mode);
        model_rope_apply(c->k + t * k_dim, hp->n_head_kv, hp->head_dim, r->n_rot, cs, r->mode);
    }
}

void model_op_glu(model_ctx *c, model_glu act, float *gate, const float *up, int64_t n_ff) {
    if (model_dev_here(c) && c->dev->ops->glu(c->dev_ctx, c, (int)act, gate, up, n_ff)) return;
    model_dev_host(c);
    for (int32_t t = 0; t < c->n_tok; t++) {
        /* GELU: the reference's GEGLU, its F16-table GELU of the gate times the up value */
        if (act == MODEL_GLU_GELU)
            model_geglu(gate + t * n_ff, up + t * n_ff, n_ff);
        else
            model_swiglu(gate + t * n_ff, up + t * n_ff, n_ff);
    }
}

void model_op_ffn_glu(model_ctx *c, const model_layer *L, model_glu act) {
    const int64_t n_ff = L->w_up.n_out;
    const model_weight *gu[2] = {&L->w_gate, &L->w_up};
    float *const gu_out[2] = {c->gate, c->up};
    model_linear_n(c, 2, gu, c->xn, gu_out, c->n_tok);
    model_op_add_bias(c, c->gate, L->b_gate, n_ff);
    model_op_add_bias(c, c->up, L->b_up, n_ff);
    model_op_glu(c, act, c->gate, c->up, n_ff);
    model_linear(c, &L->w_down, c->gate, c->xn, c->n_tok);
    model_op_add_bias(c, c->xn, L->b_down, L->w_down.n_out);
}

void model_op_qkv(model_ctx *c, const model_layer *L) {
    const model_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *const qkv_out[3] = {c->q, c->k, c->v};
    model_linear_n(c, 3, qkv, c->xn, qkv_out, c->n_tok);
    model_op_add_bias(c, c->q, L->bq, L->wq.n_out);
    model_op_add_bias(c, c->k, L->bk, L->wk.n_out);
    model_op_add_bias(c, c->v, L->bv, L->wv.n_out);
}

void model_op_logits(model_ctx *c, const float *norm_w, float eps, float softcap) {
    const model *m = c->m;
    const int64_t E = m->hp.n_embd, V = m->hp.n_vocab;
    const int32_t n_out = c->n_logits_last;
    if (n_out == 0) return;
    /* on a device: the output rows gathered into xn, normed there (into embd for hidden
     * states) */
    const bool dev = model_dev_want(c, norm_w) &&
                     c->dev->ops->gather(c->dev_ctx, c, c->x, c->xn, E, c->out_rows, n_out) &&
                     c->dev->ops->rms_norm(c->dev_ctx, c, c->xn, norm_w,
                                           c->embeddings ? c->embd : c->xn, E, n_out, eps);
    if (!dev) model_dev_host(c);
    if (c->embeddings) { /* the normed hidden states (what llama.cpp pools), no logits */
        if (dev) {
            model_dev_fetch(c, c->embd, sizeof(float) * (size_t)(n_out * E));
            return;
        }
        for (int32_t j = 0; j < n_out; j++)
            model_rms_norm(c->x + (int64_t)c->out_rows[j] * E, norm_w, c->embd + j * E, E, eps);
        return;
    }
    /* the output rows' single flags go in `want`, free during the forward pass (the step's
     * logits flags were copied into out_rows) */
    for (int32_t j = 0; j < n_out; j++) {
        if (!dev) model_rms_norm(c->x + (int64_t)c->out_rows[j] * E, norm_w, c->xn + j * E, E, eps);
        c->want[j] = c->tok_single[c->out_rows[j]];
        if (c->tok_lora) c->row_lora[j] = c->tok_lora[c->out_rows[j]];
    }
    model_linear_flags(c, &m->output, c->xn, c->logits, n_out, c->want);
    const bool capped =
        softcap <= 0.0f ||
        (model_dev_here(c) && c->dev->ops->softcap(c->dev_ctx, c, c->logits, n_out * V, softcap));
    /* the logits are the step's result: in host memory whichever side made them */
    model_dev_fetch(c, c->logits, sizeof(float) * (size_t)(n_out * V));
    if (!capped)
        for (int64_t i = 0; i < (int64_t)n_out * V; i++)
            c->logits[i] = softcap * tanhf(c->logits[i] * (1.0f / softcap));
}

shimmy_status model_ctx_decode(model_ctx *c, const model_batch *b, shimmy_error *err) {
    const model *m = c->m;
    const int32_t n = b->n;
    if (n < 1 || n > c->n_batch)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_tokens",
                          "%d tokens in one step; the batch holds 1 .. %d", n, c->n_batch);
    /* validate everything before touching the context: a bad batch changes nothing */
    int32_t *cnt = c->seq_ntok, n_out = 0;
    if (b->lora && c->lora)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "lora",
                          "per-entry adapters on a context that has adapters attached");
    for (int32_t s = 0; s < c->n_seq; s++) cnt[s] = 0;
    for (int32_t t = 0; t < n; t++) {
        const int32_t s = b->seq ? b->seq[t] : 0;
        if (s < 0 || s >= c->n_seq)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "seq",
                              "sequence %d at index %d is outside 0 .. %d", s, t, c->n_seq - 1);
        if (b->token[t] < 0 || b->token[t] >= m->hp.n_vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens",
                              "token id %d at index %d is outside the vocabulary (0 .. %d)",
                              b->token[t], t, m->hp.n_vocab - 1);
        if (++cnt[s] > c->n_ctx - c->seq_n_past[s])
            return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "n_ctx",
                              "%d cached + %d new tokens exceed the context size %d",
                              c->seq_n_past[s], cnt[s], c->n_ctx);
        if (b->logits && b->logits[t] && ++n_out > c->n_logits)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_logits",
                              "cannot return logits of more than %d positions", c->n_logits);
    }
    for (int32_t s = 0; s < c->n_seq; s++) cnt[s] = 0;
    n_out = 0;
    for (int32_t t = 0; t < n; t++) {
        const int32_t s = b->seq ? b->seq[t] : 0;
        c->tok[t] = b->token[t];
        c->tok_seq[t] = s;
        c->tok_pos[t] = c->seq_n_past[s] + cnt[s]++;
        if (b->logits && b->logits[t]) c->out_rows[n_out++] = t;
    }
    for (int32_t t = 0; t < n; t++) c->tok_single[t] = cnt[c->tok_seq[t]] == 1;
    c->n_tok = n;
    c->n_logits_last = n_out;
    c->tok_lora = b->lora;
    if (c->dev) {
        c->dev_resident = false; /* a step starts on the host: the embeddings */
        const shimmy_status st = c->dev->ops->begin(c->dev_ctx, c);
        if (!st) m->arch->forward(c);
        /* a device error fails the step (end says what it was) and the context falls back to
         * the CPU: its cache was on the device, so every sequence starts over */
        const shimmy_status st2 = c->dev->ops->end(c->dev_ctx, c, err);
        if (st || st2) {
            shimmy_status r = st2 ? st2 : core_error(err, st, "device", "the device failed");
            model_ctx_drop_device(c);
            return r;
        }
    } else {
        m->arch->forward(c);
    }
    for (int32_t t = 0; t < n; t++)
        if (c->tok_pos[t] + 1 > c->seq_n_past[c->tok_seq[t]])
            c->seq_n_past[c->tok_seq[t]] = c->tok_pos[t] + 1;
    return SHIMMY_OK;
}

shimmy_status model_ctx_eval(model_ctx *c, const int32_t *tokens, int32_t n, int32_t n_logits_out,
                             shimmy_error *err) {
    if (n < 1 || n > c->n_batch)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_tokens",
                          "%d tokens in one step; the batch holds 1 .. %d", n, c->n_batch);
    if (n_logits_out < 0 || n_logits_out > n || n_logits_out > c->n_logits)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_logits",
                          "cannot return logits of %d positions (at most %d)", n_logits_out,
                          n < c->n_logits ? n : c->n_logits);
    uint8_t *want = c->want;
    for (int32_t t = 0; t < n; t++) want[t] = t >= n - n_logits_out;
    const model_batch b = {.n = n, .token = tokens, .seq = NULL, .logits = want};
    shimmy_status st = model_ctx_decode(c, &b, err);
    return st;
}
