/* A context's mirror on the device: its KV cache (the device layers'), its activations at the
 * block's own offsets, a step's entries; steps recorded into one submission. */
#include "gpu_vk_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGING_BYTES (32ull << 20)

static uint64_t kv_bytes(const model_ctx *c, int32_t il, int32_t dim) {
    return (uint64_t)c->n_seq * (uint64_t)c->layer_cells[il] * (uint64_t)dim * c->kv_elt;
}

static void ctx_free(void *dc) {
    gpu_ctx *g = dc;
    if (!g) return;
    gpu_vk_rec_deinit(&g->rec);
    const int32_t L = g->c ? g->c->m->hp.n_layer : 0;
    for (int32_t il = 0; il < L; il++) {
        if (g->kbuf) gpu_vk_buf_free(g->d, &g->kbuf[il]);
        if (g->vbuf) gpu_vk_buf_free(g->d, &g->vbuf[il]);
    }
    gpu_vk_buf_free(g->d, &g->act);
    gpu_vk_buf_free(g->d, &g->meta);
    gpu_vk_buf_free(g->d, &g->xq);
    __atomic_fetch_sub(&g->g->ctx_bytes, g->bytes, __ATOMIC_RELAXED);
    free(g->kbuf);
    free(g->vbuf);
    free(g);
}

static shimmy_status ctx_new(void *impl, model_ctx *c, void **dc, shimmy_error *err) {
    gpu_model *gm = impl;
    gpu_vk_device *d = gm->d;
    const model_hparams *hp = &c->m->hp;
    *dc = NULL;
    gpu_ctx *g = calloc(1, sizeof *g);
    if (!g) return core_error(err, SHIMMY_ERR_NOMEM, "device", "out of memory");
    g->g = gm;
    g->d = d;
    g->kbuf = calloc((size_t)hp->n_layer, sizeof *g->kbuf);
    g->vbuf = calloc((size_t)hp->n_layer, sizeof *g->vbuf);
    shimmy_status st = g->kbuf && g->vbuf
                           ? SHIMMY_OK
                           : core_error(err, SHIMMY_ERR_NOMEM, "device", "out of memory");
    const int32_t k_dim = hp->n_head_kv * hp->head_dim, v_dim = hp->n_head_kv * hp->head_dim_v;
    for (int32_t il = 0; il < gm->n_gpu_layers && !st; il++) {
        const uint64_t kb = kv_bytes(c, il, k_dim), vb = kv_bytes(c, il, v_dim);
        if (kb > d->max_range || vb > d->max_range) {
            st = core_error(err, SHIMMY_ERR_NOMEM, "n_ctx",
                            "%s: a layer's KV cache of %.1f MiB is more than one binding of the "
                            "device may cover (%.1f MiB): use a smaller --ctx-size or --parallel",
                            d->info.name, (double)(kb > vb ? kb : vb) / 1048576.0,
                            (double)d->max_range / 1048576.0);
            break;
        }
        if ((st = gpu_vk_buf_new(d, kb, false, &g->kbuf[il], err)) ||
            (st = gpu_vk_buf_new(d, vb, false, &g->vbuf[il], err)))
            break;
        g->bytes += kb + vb;
    }
    g->act_base = (const unsigned char *)c->x;
    const uint64_t act = (uint64_t)((const unsigned char *)c->block + c->block_bytes - g->act_base);
    if (!st) st = gpu_vk_buf_new(d, act, false, &g->act, err);
    const uint64_t meta = (3ull * (uint64_t)c->n_batch + (uint64_t)c->n_logits) * 4;
    if (!st) st = gpu_vk_buf_new(d, meta, false, &g->meta, err);
    const uint64_t xq = (uint64_t)c->n_batch * (uint64_t)c->m->max_in * 4;
    if (!st) st = gpu_vk_buf_new(d, xq, false, &g->xq, err);
    if (!st) st = gpu_vk_rec_init(&g->rec, d, STAGING_BYTES, err);
    g->c = c;
    if (st) {
        g->bytes = 0;
        ctx_free(g);
        return st;
    }
    /* a cache that is read before it is written (masked positions) must hold numbers */
    for (int32_t il = 0; il < gm->n_gpu_layers; il++) {
        gpu_vk_fill(&g->rec, g->kbuf[il].buf, 0, g->kbuf[il].size);
        gpu_vk_fill(&g->rec, g->vbuf[il].buf, 0, g->vbuf[il].size);
    }
    st = gpu_vk_submit(&g->rec);
    if (st) {
        core_error(err, st, "device", "%s", g->rec.why);
        ctx_free(g);
        return st;
    }
    g->bytes += act + meta + xq;
    __atomic_fetch_add(&gm->ctx_bytes, g->bytes, __ATOMIC_RELAXED);
    *dc = g;
    return SHIMMY_OK;
}

static shimmy_status begin(void *dc, model_ctx *c) {
    gpu_ctx *g = dc;
    g->xq_has.valid = false;
    if (g->rec.failed) return g->rec.failed;
    /* per entry: position, sequence, the sequence's length after the step (what a non-causal
     * entry sees); then the output rows */
    int32_t *meta = (int32_t *)c->run_end; /* scratch the CPU's attention fills later */
    for (int32_t s = 0; s < c->n_seq; s++) c->seq_end[s] = c->seq_n_past[s];
    for (int32_t t = 0; t < c->n_tok; t++)
        if (c->tok_pos[t] + 1 > c->seq_end[c->tok_seq[t]])
            c->seq_end[c->tok_seq[t]] = c->tok_pos[t] + 1;
    (void)meta;
    int32_t buf[3 * 256];
    for (int32_t t0 = 0; t0 < c->n_tok; t0 += 256) {
        const int32_t n = c->n_tok - t0 < 256 ? c->n_tok - t0 : 256;
        for (int32_t i = 0; i < n; i++) {
            const int32_t t = t0 + i;
            buf[3 * i] = c->tok_pos[t];
            buf[3 * i + 1] = c->tok_seq[t];
            buf[3 * i + 2] = c->seq_end[c->tok_seq[t]];
        }
        gpu_vk_upload(&g->rec, g->meta.buf, (uint64_t)t0 * 12, buf, (uint64_t)n * 12);
    }
    if (c->n_logits_last > 0)
        gpu_vk_upload(&g->rec, g->meta.buf, 12ull * (uint64_t)c->n_batch, c->out_rows,
                      4ull * (uint64_t)c->n_logits_last);
    return g->rec.failed;
}

static shimmy_status end(void *dc, model_ctx *c, shimmy_error *err) {
    gpu_ctx *g = dc;
    (void)c;
    shimmy_status st = gpu_vk_submit(&g->rec);
    if (st)
        return core_error(err, st, "device",
                          "%s; this request failed, and the model goes on on the CPU (restart "
                          "shimmy to use the device again)",
                          g->rec.why);
    return SHIMMY_OK;
}

gpu_vk_bind gpu_ctx_act(const gpu_ctx *g, const void *p, uint64_t bytes, uint32_t elt,
                        uint32_t *elem) {
    const uint64_t off = (uint64_t)((const unsigned char *)p - g->act_base);
    return gpu_vk_range(g->d, g->act.buf, off, bytes, elt, elem);
}

bool gpu_ctx_weight(const gpu_ctx *g, const void *p, uint64_t bytes, uint32_t elt, gpu_vk_bind *b,
                    uint32_t *elem) {
    const gpu_tensor *t = gpu_model_find(g->g, p);
    if (!t) return false;
    const uint64_t off = t->off + (uint64_t)((const unsigned char *)p - t->host);
    *b = gpu_vk_range(g->d, g->g->chunks[t->chunk].buf, off, bytes, elt, elem);
    return true;
}

void gpu_ctx_run(gpu_ctx *g, const char *pipe, const gpu_vk_bind *b, int nb, const void *pc,
                 uint32_t pc_bytes, uint64_t groups) {
    if (groups == 0) return;
    g->xq_has.valid = false; /* any of these may write what xq was rounded from */
    const uint64_t gx = groups < 65535 ? groups : 65535;
    gpu_vk_dispatch(&g->rec, pipe, b, nb, pc, pc_bytes, (uint32_t)gx,
                    (uint32_t)((groups + gx - 1) / gx), 1);
}

/* The buffer and offset holding host address p of the context's block, or false. */
static bool locate(const gpu_ctx *g, const void *p, VkBuffer *buf, uint64_t *off) {
    const model_ctx *c = g->c;
    const unsigned char *q = p;
    if (q >= g->act_base && q < g->act_base + g->act.size) {
        *buf = g->act.buf;
        *off = (uint64_t)(q - g->act_base);
        return true;
    }
    for (int32_t il = 0; il < g->g->n_gpu_layers; il++) {
        const unsigned char *k = (const unsigned char *)c->k_cache + c->layer_k_off[il];
        const unsigned char *v = (const unsigned char *)c->v_cache + c->layer_v_off[il];
        if (q >= k && q < k + g->kbuf[il].size) {
            *buf = g->kbuf[il].buf;
            *off = (uint64_t)(q - k);
            return true;
        }
        if (q >= v && q < v + g->vbuf[il].size) {
            *buf = g->vbuf[il].buf;
            *off = (uint64_t)(q - v);
            return true;
        }
    }
    return false;
}

static void upload(void *dc, model_ctx *c, const void *p, size_t bytes) {
    gpu_ctx *g = dc;
    g->xq_has.valid = false;
    VkBuffer b;
    uint64_t off;
    (void)c;
    if (bytes && locate(g, p, &b, &off)) gpu_vk_upload(&g->rec, b, off, p, bytes);
}

static void download(void *dc, model_ctx *c, void *p, size_t bytes) {
    gpu_ctx *g = dc;
    VkBuffer b;
    uint64_t off;
    (void)c;
    if (bytes && locate(g, p, &b, &off)) gpu_vk_download(&g->rec, b, off, p, bytes);
}

static void flush(void *dc, model_ctx *c) {
    (void)c;
    gpu_vk_submit(&((gpu_ctx *)dc)->rec);
}

static void copy(void *dc, model_ctx *c, void *dst, const void *src, size_t bytes) {
    gpu_ctx *g = dc;
    g->xq_has.valid = false;
    VkBuffer bd, bs;
    uint64_t od, os;
    (void)c;
    if (bytes && locate(g, dst, &bd, &od) && locate(g, src, &bs, &os))
        gpu_vk_copy(&g->rec, bd, od, bs, os, bytes);
}

/* gpu_vk_ops.c */
bool gpu_op_rms_norm(void *dc, model_ctx *c, const float *x, const float *w, float *out, int64_t n,
                     int64_t rows, float eps);
bool gpu_op_linear(void *dc, model_ctx *c, const model_weight *w, const float *x, float *y,
                   int32_t rows);
bool gpu_op_add(void *dc, model_ctx *c, float *x, const float *y, int64_t n);
bool gpu_op_add_bias(void *dc, model_ctx *c, float *y, const float *b, int64_t dim, int64_t rows);
bool gpu_op_scale(void *dc, model_ctx *c, float *x, int64_t n, float s);
bool gpu_op_softcap(void *dc, model_ctx *c, float *x, int64_t n, float cap);
bool gpu_op_rope(void *dc, model_ctx *c, float *x, int32_t n_head, int32_t head_dim, int32_t n_rot,
                 const float *cs, model_rope_mode mode);
bool gpu_op_glu(void *dc, model_ctx *c, int act, float *gate, const float *up, int64_t n_ff);
bool gpu_op_attention(void *dc, model_ctx *c, int32_t il, const void *attn_params);
bool gpu_op_gather(void *dc, model_ctx *c, const float *src, float *dst, int64_t n,
                   const int32_t *idx, int32_t rows);

const model_dev_ops gpu_vk_dev_ops = {
    .name = "vulkan",
    .ctx_new = ctx_new,
    .ctx_free = ctx_free,
    .begin = begin,
    .end = end,
    .upload = upload,
    .download = download,
    .flush = flush,
    .copy = copy,
    .holds = gpu_vk_holds,
    .layer = gpu_vk_layer,
    .rms_norm = gpu_op_rms_norm,
    .linear = gpu_op_linear,
    .add = gpu_op_add,
    .add_bias = gpu_op_add_bias,
    .scale = gpu_op_scale,
    .softcap = gpu_op_softcap,
    .rope = gpu_op_rope,
    .glu = gpu_op_glu,
    .attention = gpu_op_attention,
    .gather = gpu_op_gather,
};
