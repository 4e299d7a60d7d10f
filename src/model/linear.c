/* model_linear: the one place a weight matrix meets activations. Activations are converted once
 * per product to the weight type's vec_dot_type (as llama.cpp does, which is what makes logits
 * agree), then the output rows are split over the pool. A later LoRA adapter set attached to the
 * context adds its low-rank term here. */
#include "model.h"

typedef struct lin_task {
    const model_weight *w;
    const quant_traits *vt; /* traits of the activation type */
    const float *x;         /* (n_tok, n_in) */
    const unsigned char *xq;
    unsigned char *xq_out;
    size_t xq_stride; /* bytes per activation row */
    float *y;         /* (n_tok, n_out) */
    int32_t n_tok;
} lin_task;

static void quantize_task(void *ctx, int ith, int nth) {
    lin_task *t = ctx;
    int64_t lo, hi;
    core_split_range(t->n_tok, ith, nth, &lo, &hi);
    const int64_t n_in = t->w->n_in;
    for (int64_t i = lo; i < hi; i++)
        t->vt->from_float(t->x + i * n_in, t->xq_out + (size_t)i * t->xq_stride, n_in);
}

/* Rows in blocks so that a block of weight rows stays in L1 while every token visits it. */
#define ROW_BLOCK 16

static void dot_task(void *ctx, int ith, int nth) {
    lin_task *t = ctx;
    const model_weight *w = t->w;
    int64_t lo, hi;
    core_split_range(w->n_out, ith, nth, &lo, &hi);
    const unsigned char *wd = w->data;
    const quant_vec_dot_fn dot = w->qt->vec_dot;
    const int64_t n_in = w->n_in, n_out = w->n_out;
    for (int64_t r0 = lo; r0 < hi; r0 += ROW_BLOCK) {
        const int64_t r1 = r0 + ROW_BLOCK < hi ? r0 + ROW_BLOCK : hi;
        for (int32_t tok = 0; tok < t->n_tok; tok++) {
            const void *xr = t->xq + (size_t)tok * t->xq_stride;
            float *yr = t->y + (int64_t)tok * n_out;
            for (int64_t r = r0; r < r1; r++) dot(n_in, &yr[r], wd + (size_t)r * w->row_bytes, xr);
        }
    }
}

static void run(model_ctx *c, core_task_fn fn, lin_task *t) {
    if (c->pool && c->n_threads > 1)
        core_pool_run(c->pool, fn, t);
    else
        fn(t, 0, 1);
}

void model_linear(model_ctx *c, const model_weight *w, const float *x, float *y, int32_t n_tok) {
    lin_task t = {.w = w, .x = x, .y = y, .n_tok = n_tok};
    if (w->qt->vec_dot_type == GGUF_T_F32) {
        t.xq = (const unsigned char *)x;
        t.xq_stride = (size_t)w->n_in * sizeof(float);
    } else {
        t.vt = quant_get(w->qt->vec_dot_type);
        t.xq_out = c->xq;
        t.xq = c->xq;
        t.xq_stride = c->m->max_act_row_bytes;
        if (n_tok >= 4)
            run(c, quantize_task, &t);
        else
            quantize_task(&t, 0, 1);
    }
    run(c, dot_task, &t);
}
