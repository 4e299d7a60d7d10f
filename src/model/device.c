/* Where each op runs when a context has a device (model.h, "compute devices"): the step's
 * activations are current either in host memory or in the device's copy, and an op that runs
 * on the other side first moves the step's rows of every activation buffer across. */
#include "model.h"

/* The activation buffers and their row widths in floats; their first n_tok rows are a step's
 * state (q/k/v/att and gate/up overlap: copying both copies the same bytes twice). */
static int buffers(const model_ctx *c, float **p, int64_t *w) {
    const model_hparams *hp = &c->m->hp;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t o_dim = (int64_t)hp->n_head * hp->head_dim_v;
    const int64_t E = hp->n_embd;
    int n = 0;
    p[n] = c->x, w[n++] = E;
    p[n] = c->xn, w[n++] = o_dim > E ? o_dim : E;
    p[n] = c->q, w[n++] = q_dim;
    p[n] = c->k, w[n++] = k_dim;
    p[n] = c->v, w[n++] = v_dim;
    p[n] = c->att, w[n++] = o_dim;
    p[n] = c->gate, w[n++] = hp->n_ff; /* a fused gate+up writes up's rows from here */
    p[n] = c->up, w[n++] = hp->n_ff;
    if (c->qkv) p[n] = c->qkv, w[n++] = q_dim + k_dim + v_dim;
    if (c->aux) p[n] = c->aux, w[n++] = hp->aux_floats;
    return n;
}

static void move(model_ctx *c, bool to_device) {
    float *p[10];
    int64_t w[10];
    const int n = buffers(c, p, w);
    const model_dev_ops *o = c->dev->ops;
    for (int i = 0; i < n; i++) {
        const size_t bytes = sizeof(float) * (size_t)w[i] * (size_t)c->n_tok;
        if (to_device)
            o->upload(c->dev_ctx, c, p[i], bytes);
        else
            o->download(c->dev_ctx, c, p[i], bytes);
    }
    if (!to_device) o->flush(c->dev_ctx, c);
    c->dev_resident = to_device;
}

bool model_dev_here(model_ctx *c) {
    return c->dev && c->dev_resident;
}

void model_dev_host(model_ctx *c) {
    if (c->dev && c->dev_resident) move(c, false);
}

bool model_dev_want(model_ctx *c, const void *p) {
    if (!c->dev) return false;
    const bool on = c->dev->ops->holds(c->dev->impl, p);
    if (on != c->dev_resident) move(c, on);
    return on;
}

bool model_dev_layer(model_ctx *c, int32_t il) {
    if (!c->dev) return false;
    const bool on = c->dev->ops->layer(c->dev->impl, il);
    if (on != c->dev_resident) move(c, on);
    return on;
}

void model_dev_fetch(model_ctx *c, void *p, size_t bytes) {
    if (!c->dev || !c->dev_resident) return;
    c->dev->ops->download(c->dev_ctx, c, p, bytes);
    c->dev->ops->flush(c->dev_ctx, c);
}
