/* The model_device ops on Vulkan: each binds its buffers (activations by their host address,
 * weights by theirs) and records its shader. An op returns false (the CPU runs it) when a
 * weight it needs is not on the device or it has no shader for the case. */
#include "gpu_vk_ctx.h"

#include <stdio.h>
#include <string.h>

enum { EW_ADD, EW_ADD_BIAS, EW_SCALE, EW_SOFTCAP, EW_SWIGLU, EW_GEGLU };

typedef struct ew_pc {
    uint32_t op, n, a_off, b_off, dim;
    float s;
} ew_pc;

/* a (n floats) op= b: b is a bias row (bb, b_off) or, for the element-wise ops, the
 * activations at host address bh; pieces of at most half a binding range */
static void ew(gpu_ctx *g, uint32_t op, float *a, const gpu_vk_bind *bb, uint32_t b_off,
               const float *bh, int64_t n, uint32_t dim, float s) {
    int64_t per = (int64_t)(g->d->max_range / 8);
    if (dim) per = per / dim * dim; /* a bias row starts each piece */
    for (int64_t i0 = 0; i0 < n; i0 += per) {
        const int64_t m = n - i0 < per ? n - i0 : per;
        ew_pc pc = {.op = op, .n = (uint32_t)m, .b_off = b_off, .dim = dim, .s = s};
        gpu_vk_bind b[2];
        b[0] = gpu_ctx_act(g, a + i0, (uint64_t)m * 4, 4, &pc.a_off);
        b[1] = bb ? *bb : bh ? gpu_ctx_act(g, bh + i0, (uint64_t)m * 4, 4, &pc.b_off) : b[0];
        gpu_ctx_run(g, "ew", b, 2, &pc, sizeof pc, ((uint64_t)m + 63) / 64);
    }
}

bool gpu_op_add(void *dc, model_ctx *c, float *x, const float *y, int64_t n) {
    gpu_ctx *g = dc;
    ew(g, EW_ADD, x, NULL, 0, y, (int64_t)c->n_tok * n, 0, 0.0f);
    return true;
}

bool gpu_op_add_bias(void *dc, model_ctx *c, float *y, const float *bias, int64_t dim,
                     int64_t rows) {
    gpu_ctx *g = dc;
    gpu_vk_bind b;
    uint32_t bo;
    if (!gpu_ctx_weight(g, bias, (uint64_t)dim * 4, 4, &b, &bo)) return false;
    (void)c;
    ew(g, EW_ADD_BIAS, y, &b, bo, NULL, rows * dim, (uint32_t)dim, 0.0f);
    return true;
}

bool gpu_op_scale(void *dc, model_ctx *c, float *x, int64_t n, float s) {
    (void)c;
    ew(dc, EW_SCALE, x, NULL, 0, NULL, n, 0, s);
    return true;
}

bool gpu_op_softcap(void *dc, model_ctx *c, float *x, int64_t n, float cap) {
    (void)c;
    ew(dc, EW_SOFTCAP, x, NULL, 0, NULL, n, 0, cap);
    return true;
}

bool gpu_op_glu(void *dc, model_ctx *c, int act, float *gate, const float *up, int64_t n_ff) {
    gpu_ctx *g = dc;
    ew(g, act == MODEL_GLU_GELU ? EW_GEGLU : EW_SWIGLU, gate, NULL, 0, up, (int64_t)c->n_tok * n_ff,
       0, 0.0f);
    return true;
}

bool gpu_op_rms_norm(void *dc, model_ctx *c, const float *x, const float *w, float *out, int64_t n,
                     int64_t rows, float eps) {
    gpu_ctx *g = dc;
    struct {
        uint32_t n, rows, x_off, x_stride, w_off, o_off, o_stride, has_w;
        float eps;
    } pc = {.n = (uint32_t)n,
            .rows = (uint32_t)rows,
            .x_stride = (uint32_t)n,
            .o_stride = (uint32_t)n,
            .has_w = w != NULL,
            .eps = eps};
    gpu_vk_bind b[3];
    if (w && !gpu_ctx_weight(g, w, (uint64_t)n * 4, 4, &b[1], &pc.w_off)) return false;
    (void)c;
    b[0] = gpu_ctx_act(g, x, (uint64_t)(n * rows) * 4, 4, &pc.x_off);
    if (!w) b[1] = b[0];
    b[2] = gpu_ctx_act(g, out, (uint64_t)(n * rows) * 4, 4, &pc.o_off);
    gpu_ctx_run(g, "rms_norm", b, 3, &pc, sizeof pc, (uint64_t)rows);
    return true;
}

static bool linear_tokens(gpu_ctx *g, const char *name, const model_weight *w, const float *x,
                          float *y, int32_t rows, int64_t per);

bool gpu_op_linear(void *dc, model_ctx *c, const model_weight *w, const float *x, float *y,
                   int32_t rows) {
    gpu_ctx *g = dc;
    if (c->lora || c->tok_lora) return false; /* adapters' terms: the CPU's products */
    char name[48];
    gpu_vk_matmul_name(w->type, name, sizeof name);
    if (!gpu_vk_pipeline(g->d, name)) return false;
    if (!gpu_model_find(g->g, w->data)) return false;
    /* rows of the weight per dispatch, so that each binding stays within the device's range */
    int64_t per = (int64_t)(g->d->max_range / 2 / w->row_bytes);
    if (per < 1) return false;
    if (per > w->n_out) per = w->n_out;
    /* tokens per dispatch, for the same reason */
    const int64_t row_max = w->n_in > w->n_out ? w->n_in : w->n_out;
    int32_t tper = (int32_t)(g->d->max_range / 2 / 4 / (uint64_t)row_max);
    if (tper < 1) return false;
    if (tper > rows) tper = rows;
    for (int32_t t0 = 0; t0 < rows; t0 += tper) {
        const int32_t nt = rows - t0 < tper ? rows - t0 : tper;
        if (!linear_tokens(g, name, w, x + (int64_t)t0 * w->n_in, y + (int64_t)t0 * w->n_out, nt,
                           per))
            return false;
    }
    return true;
}

/* quant_act.comp's mode for the activations of a product with weights of type t: they are
 * rounded as the CPU's reference order rounds them (its vec_dot_type), so that the device's
 * products differ from the CPU's by float order only, not by that rounding, which random and
 * quantized weights amplify from layer to layer */
static uint32_t act_mode(const quant_traits *qt) {
    switch (qt->vec_dot_type) {
    case GGUF_T_Q8_0:
    case GGUF_T_Q8_1: return 1;
    case GGUF_T_Q8_K: return 2;
    case GGUF_T_F16: return 3;
    case GGUF_T_BF16: return 4;
    default: return 0;
    }
}

static bool linear_tokens(gpu_ctx *g, const char *name, const model_weight *w, const float *x,
                          float *y, int32_t rows, int64_t per) {
    gpu_vk_bind bx, by;
    uint32_t xo, yo0;
    bx = gpu_ctx_act(g, x, (uint64_t)rows * (uint64_t)w->n_in * 4, 4, &xo);
    const uint32_t mode = act_mode(w->qt);
    if (mode) {
        struct {
            uint32_t mode, n, rows, x_off, x_stride, y_off;
        } pc = {mode, (uint32_t)w->n_in, (uint32_t)rows, xo, (uint32_t)w->n_in, 0};
        const gpu_vk_bind bq = {
            .buf = g->xq.buf, .off = 0, .range = (uint64_t)rows * (uint64_t)w->n_in * 4};
        const gpu_vk_bind b[2] = {bx, bq};
        const uint64_t items = (uint64_t)rows * (mode == 1   ? (uint64_t)(w->n_in + 31) / 32
                                                 : mode == 2 ? (uint64_t)(w->n_in + 255) / 256
                                                             : (uint64_t)w->n_in);
        if (!(g->xq_has.valid && g->xq_has.x == x && g->xq_has.mode == mode &&
              g->xq_has.n == (uint32_t)w->n_in && g->xq_has.rows == rows)) {
            gpu_ctx_run(g, "quant_act", b, 2, &pc, sizeof pc, (items + 63) / 64);
            g->xq_has.x = x;
            g->xq_has.mode = mode;
            g->xq_has.n = (uint32_t)w->n_in;
            g->xq_has.rows = rows;
            g->xq_has.valid = true;
        }
        bx = bq;
        xo = 0;
    }
    by = gpu_ctx_act(g, y, (uint64_t)rows * (uint64_t)w->n_out * 4, 4, &yo0);
    for (int64_t r0 = 0; r0 < w->n_out; r0 += per) {
        const int64_t nr = w->n_out - r0 < per ? w->n_out - r0 : per;
        gpu_vk_mm_pc pc = {.n_in = (uint32_t)w->n_in,
                           .n_out = (uint32_t)nr,
                           .n_tok = (uint32_t)rows,
                           .row_bytes = (uint32_t)w->row_bytes,
                           .x_off = xo,
                           .x_stride = (uint32_t)w->n_in,
                           .y_off = yo0 + (uint32_t)r0,
                           .y_stride = (uint32_t)w->n_out};
        gpu_vk_bind b[3];
        const unsigned char *wp = (const unsigned char *)w->data + (size_t)r0 * w->row_bytes;
        if (!gpu_ctx_weight(g, wp, (uint64_t)nr * w->row_bytes, 1, &b[0], &pc.w_off)) return false;
        b[1] = bx;
        b[2] = by;
        gpu_vk_matmul(&g->rec, name, b, &pc);
    }
    /* a product writing into the rows xq was rounded from makes them stale */
    const float *q0 = g->xq_has.x, *q1 = q0 + (int64_t)g->xq_has.rows * g->xq_has.n;
    if (g->xq_has.valid && y < q1 && y + (int64_t)rows * w->n_out > q0) g->xq_has.valid = false;
    return true;
}

bool gpu_op_rope(void *dc, model_ctx *c, float *x, int32_t n_head, int32_t head_dim, int32_t n_rot,
                 const float *cs, model_rope_mode mode) {
    gpu_ctx *g = dc;
    const int64_t row = (int64_t)n_head * head_dim, cs_row = c->m->hp.head_dim;
    struct {
        uint32_t x_off, cs_off, rows, n_head, head_dim, n_rot, mode, cs_stride, x_stride;
    } pc = {.rows = (uint32_t)c->n_tok,
            .n_head = (uint32_t)n_head,
            .head_dim = (uint32_t)head_dim,
            .n_rot = (uint32_t)n_rot,
            .mode = mode == MODEL_ROPE_NEOX,
            .cs_stride = (uint32_t)cs_row,
            .x_stride = (uint32_t)row};
    gpu_vk_bind b[2];
    b[0] = gpu_ctx_act(g, x, (uint64_t)(row * c->n_tok) * 4, 4, &pc.x_off);
    b[1] = gpu_ctx_act(g, cs, (uint64_t)(cs_row * c->n_tok) * 4, 4, &pc.cs_off);
    const uint64_t items = (uint64_t)c->n_tok * (uint64_t)n_head * (uint64_t)(n_rot / 2);
    gpu_ctx_run(g, "rope", b, 2, &pc, sizeof pc, (items + 63) / 64);
    return true;
}

bool gpu_op_attention(void *dc, model_ctx *c, int32_t il, const void *attn_params) {
    gpu_ctx *g = dc;
    const model_attn_params *a = attn_params;
    const model_hparams *hp = &c->m->hp;
    const model_layer *L = &c->m->layers[il];
    if (il >= g->g->n_gpu_layers || hp->head_dim > 512 || hp->head_dim_v > 512) return false;
    const bool f16 = c->kv_type == MODEL_KV_F16;
    const uint32_t elt = f16 ? 2 : 4;
    const uint32_t k_dim = (uint32_t)(hp->n_head_kv * hp->head_dim);
    const uint32_t v_dim = (uint32_t)(hp->n_head_kv * hp->head_dim_v);
    const uint32_t q_dim = (uint32_t)(hp->n_head * hp->head_dim);
    const uint32_t o_dim = (uint32_t)(hp->n_head * hp->head_dim_v);
    const uint32_t n = (uint32_t)c->n_tok;
    gpu_vk_bind sinks = {0};
    uint32_t sink_off = 0;
    if (a->sinks && !gpu_ctx_weight(g, a->sinks, (uint64_t)hp->n_head * 4, 4, &sinks, &sink_off))
        return false;
    const gpu_vk_bind kc = {.buf = g->kbuf[il].buf, .off = 0, .range = g->kbuf[il].size};
    const gpu_vk_bind vc = {.buf = g->vbuf[il].buf, .off = 0, .range = g->vbuf[il].size};
    const gpu_vk_bind meta = {.buf = g->meta.buf, .off = 0, .range = g->meta.size};
    {
        struct {
            uint32_t rows, k_dim, v_dim, cells, ks_off, vs_off, kc_off, vc_off, meta_off;
        } pc = {.rows = n, .k_dim = k_dim, .v_dim = v_dim, .cells = (uint32_t)c->layer_cells[il]};
        gpu_vk_bind b[5];
        b[0] = gpu_ctx_act(g, c->k, (uint64_t)n * k_dim * 4, 4, &pc.ks_off);
        b[1] = gpu_ctx_act(g, c->v, (uint64_t)n * v_dim * 4, 4, &pc.vs_off);
        b[2] = kc;
        b[3] = vc;
        b[4] = meta;
        const uint64_t items = (uint64_t)n * (k_dim > v_dim ? k_dim : v_dim);
        gpu_ctx_run(g, f16 ? "kv_store_f16" : "kv_store_f32", b, 5, &pc, sizeof pc,
                    (items + 63) / 64);
    }
    struct {
        uint32_t n_tok, n_head, gqa, hd, hdv, q_off, q_stride, o_off, o_stride, kc_off, vc_off,
            cells, k_dim, v_dim, meta_off, window, non_causal, has_sink, sink_off;
        float scale, softcap;
    } pc = {.n_tok = n,
            .n_head = (uint32_t)hp->n_head,
            .gqa = (uint32_t)(hp->n_head / hp->n_head_kv),
            .hd = (uint32_t)hp->head_dim,
            .hdv = (uint32_t)hp->head_dim_v,
            .q_stride = q_dim,
            .o_stride = o_dim,
            .cells = (uint32_t)c->layer_cells[il],
            .k_dim = k_dim,
            .v_dim = v_dim,
            .window = L->window > 0 ? (uint32_t)L->window : 0,
            .non_causal = a->non_causal,
            .has_sink = a->sinks != NULL,
            .sink_off = sink_off,
            .scale = a->scale,
            .softcap = a->softcap};
    (void)elt;
    gpu_vk_bind b[6];
    b[0] = gpu_ctx_act(g, c->q, (uint64_t)n * q_dim * 4, 4, &pc.q_off);
    b[1] = kc;
    b[2] = vc;
    b[3] = gpu_ctx_act(g, c->att, (uint64_t)n * o_dim * 4, 4, &pc.o_off);
    b[4] = meta;
    b[5] = a->sinks ? sinks : meta;
    gpu_ctx_run(g, f16 ? "attn_f16" : "attn_f32", b, 6, &pc, sizeof pc,
                (uint64_t)n * (uint64_t)hp->n_head);
    return true;
}

bool gpu_op_gather(void *dc, model_ctx *c, const float *src, float *dst, int64_t n,
                   const int32_t *idx, int32_t rows) {
    gpu_ctx *g = dc;
    if (idx != c->out_rows) return false; /* the device has the step's output rows only */
    struct {
        uint32_t n, rows, src_off, dst_off, idx_off;
    } pc = {.n = (uint32_t)n, .rows = (uint32_t)rows, .idx_off = (uint32_t)(3 * c->n_batch)};
    gpu_vk_bind b[3];
    b[0] = gpu_ctx_act(g, src, (uint64_t)c->n_tok * (uint64_t)n * 4, 4, &pc.src_off);
    b[1] = gpu_ctx_act(g, dst, (uint64_t)rows * (uint64_t)n * 4, 4, &pc.dst_off);
    b[2] = (gpu_vk_bind){.buf = g->meta.buf, .off = 0, .range = g->meta.size};
    gpu_ctx_run(g, "gather", b, 3, &pc, sizeof pc, ((uint64_t)n * (uint64_t)rows + 63) / 64);
    return true;
}
