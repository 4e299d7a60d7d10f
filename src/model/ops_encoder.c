/* Shared ops of the encoder families (bert, nomic-bert) and of embedding outputs: LayerNorm
 * with bias, ggml's table GELU, learned positions and token types, fused q/k/v, the hidden-state
 * output and the classification head of rerankers. */
#include "model.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* The GELU of every F16 input, as F16: ggml's CPU GELU rounds its input to F16 and looks the
 * tanh form (evaluated in float) up in such a table, and that rounding is visible at 1e-4 in an
 * encoder's output (the exact-erf or float tanh forms are about 10x further from it). */
static uint16_t gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static float gelu_tanh(float x) {
    const float k = 0.79788456080286535587989211986876f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * x * (1.0f + 0.044715f * x * x)));
}

static void gelu_table_build(void) {
    for (uint32_t i = 0; i < (1u << 16); i++)
        gelu_table[i] = quant_f32_to_f16(gelu_tanh(quant_f16_to_f32((uint16_t)i)));
}

const uint16_t *model_gelu_table(void) {
    pthread_once(&gelu_once, gelu_table_build);
    return gelu_table;
}

float model_gelu(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    pthread_once(&gelu_once, gelu_table_build);
    return quant_f16_to_f32(gelu_table[quant_f32_to_f16(x)]);
}

typedef struct gelu_rows {
    float *x;
    int64_t n;
} gelu_rows;

static void gelu_items(void *ctx, int64_t lo, int64_t hi) {
    const gelu_rows *g = ctx;
    model_geglu(g->x + lo * g->n, NULL, (hi - lo) * g->n);
}

void model_op_gelu(model_ctx *c, float *x, int64_t n) {
    model_dev_host(c);
    gelu_rows g = {x, n};
    model_run_rows(c, c->n_tok, n, gelu_items, &g);
}

typedef struct norm_rows {
    const float *x, *w, *b;
    float *out;
    int64_t n;
    float eps;
} norm_rows;

static void layer_norm_items(void *ctx, int64_t lo, int64_t hi) {
    const norm_rows *a = ctx;
    const int64_t n = a->n;
    for (int64_t t = lo; t < hi; t++) {
        const float *xr = a->x + t * n;
        float *y = a->out + t * n;
        /* sums in double, as ggml's norm accumulates them */
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double)xr[i];
        const float mean = (float)(sum / (double)n);
        double sum2 = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float d = xr[i] - mean;
            y[i] = d;
            sum2 += (double)(d * d);
        }
        const float scale = 1.0f / sqrtf((float)(sum2 / (double)n) + a->eps);
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] * scale;
            if (a->w) v *= a->w[i];
            if (a->b) v += a->b[i];
            y[i] = v;
        }
    }
}

void model_op_layer_norm(model_ctx *c, const float *x, const float *w, const float *b, float *out,
                         int64_t n, float eps) {
    model_dev_host(c);
    norm_rows a = {x, w, b, out, n, eps};
    model_run_rows(c, c->n_tok, n, layer_norm_items, &a);
}

void model_op_embed_encoder(model_ctx *c) {
    const model *m = c->m;
    const int64_t E = m->hp.n_embd;
    float *tmp = c->xn; /* scratch row: xn is free before the first block */
    model_dev_host(c);
    if (m->type_embd.data) {
        m->type_embd.qt->to_float(m->type_embd.data, tmp, E);
        for (int32_t t = 0; t < c->n_tok; t++)
            for (int64_t i = 0; i < E; i++) c->x[t * E + i] += tmp[i];
    }
    if (m->pos_embd.data) {
        const unsigned char *pe = m->pos_embd.data;
        for (int32_t t = 0; t < c->n_tok; t++) {
            m->pos_embd.qt->to_float(pe + (size_t)c->tok_pos[t] * m->pos_embd.row_bytes, tmp, E);
            for (int64_t i = 0; i < E; i++) c->x[t * E + i] += tmp[i];
        }
    }
    if (m->embd_norm)
        model_op_layer_norm(c, c->x, m->embd_norm, m->embd_norm_b, c->x, E, m->hp.norm_eps);
}

void model_op_ffn_gelu(model_ctx *c, const model_layer *L) {
    const int64_t n_ff = L->w_up.n_out;
    model_linear(c, &L->w_up, c->xn, c->up, c->n_tok);
    model_op_add_bias(c, c->up, L->b_up, n_ff);
    model_op_gelu(c, c->up, n_ff);
    model_linear(c, &L->w_down, c->up, c->xn, c->n_tok);
    model_op_add_bias(c, c->xn, L->b_down, L->w_down.n_out);
}

void model_op_qkv_fused(model_ctx *c, const model_layer *L) {
    const model_hparams *hp = &c->m->hp;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t n = q_dim + k_dim + v_dim;
    if (c->dev && !c->lora && !c->tok_lora && c->dev->ops->holds(c->dev->impl, L->wqkv.data)) {
        /* on a device: the three row ranges as products of their own straight into q, k and v
         * (no host copy between them); adapters key on the whole tensor, so with adapters
         * (whose products are the CPU's anyway) the fused product below runs */
        model_weight w3[3];
        const int64_t r0[3] = {0, q_dim, q_dim + k_dim}, rows[3] = {q_dim, k_dim, v_dim};
        const model_weight *wp[3];
        float *const y[3] = {c->q, c->k, c->v};
        for (int i = 0; i < 3; i++) {
            w3[i] = L->wqkv;
            w3[i].data = (const unsigned char *)L->wqkv.data + (size_t)r0[i] * L->wqkv.row_bytes;
            w3[i].pack = NULL; /* a view of the file's rows */
            w3[i].n_out = rows[i];
            wp[i] = &w3[i];
        }
        model_linear_n(c, 3, wp, c->xn, y, c->n_tok);
        if (L->bqkv)
            for (int i = 0; i < 3; i++) model_op_add_bias(c, y[i], L->bqkv + r0[i], rows[i]);
        return;
    }
    model_linear(c, &L->wqkv, c->xn, c->qkv, c->n_tok);
    model_op_add_bias(c, c->qkv, L->bqkv, n);
    model_dev_host(c);
    for (int32_t t = 0; t < c->n_tok; t++) {
        const float *r = c->qkv + (int64_t)t * n;
        memcpy(c->q + t * q_dim, r, sizeof(float) * (size_t)q_dim);
        memcpy(c->k + t * k_dim, r + q_dim, sizeof(float) * (size_t)k_dim);
        memcpy(c->v + t * v_dim, r + q_dim + k_dim, sizeof(float) * (size_t)v_dim);
    }
}

void model_op_hidden(model_ctx *c) {
    const int64_t E = c->m->hp.n_embd;
    if (!c->embeddings) return;
    model_dev_host(c);
    for (int32_t j = 0; j < c->n_logits_last; j++)
        memcpy(c->embd + j * E, c->x + (int64_t)c->out_rows[j] * E, sizeof(float) * (size_t)E);
}

shimmy_status model_ctx_classify(model_ctx *c, const float *h, int32_t n, float *scores,
                                 shimmy_error *err) {
    const model *m = c->m;
    if (m->n_cls_out < 1)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, m->arch->name,
                          "this model has no classification head (cls.weight / cls.output.weight)"
                          ": it cannot rerank");
    if (n < 1 || n > c->n_batch)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n", "%d rows to classify; 1 .. %d", n,
                          c->n_batch);
    /* the hidden layer goes through the FFN's scratch (n_batch rows of n_ff) or, when wider,
     * is refused: no known head is wider than its model's FFN */
    if (m->cls.data && m->cls.n_out > m->hp.n_ff)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, m->arch->name,
                          "classification head of %lld units is wider than the FFN (%d)",
                          (long long)m->cls.n_out, m->hp.n_ff);
    const int32_t saved = c->n_tok;
    c->n_tok = n; /* the bias ops work on n_tok rows; the products take the rows as not being
                   * the step's entries (model_linear_flags with the plain rule) */
    const float *in = h;
    if (m->cls.data) {
        model_linear_flags(c, &m->cls, h, c->up, n, NULL);
        model_op_add_bias(c, c->up, m->cls_b, m->cls.n_out);
        model_dev_host(c);
        for (int64_t i = 0; i < (int64_t)n * m->cls.n_out; i++) c->up[i] = tanhf(c->up[i]);
        in = c->up;
    }
    if (m->cls_out.data) {
        model_linear_flags(c, &m->cls_out, in, scores, n, NULL);
        model_op_add_bias(c, scores, m->cls_out_b, m->n_cls_out);
    } else {
        memcpy(scores, in, sizeof(float) * (size_t)n * (size_t)m->n_cls_out);
    }
    c->n_tok = saved;
    return SHIMMY_OK;
}
