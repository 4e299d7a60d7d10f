/* Binding GGUF tensors to a model: every tensor's presence, shape and type is checked here so the
 * forward pass never sees a surprise. Errors name the tensor and what was expected. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct binder {
    const gguf_file *f;
    model *m;
    shimmy_error *err;
    uint64_t type_bytes[GGUF_T_COUNT];
} binder;

static const gguf_tensor *find(binder *b, const char *name, bool required, shimmy_status *st) {
    const gguf_tensor *t = gguf_find_tensor(b->f, name);
    if (!t && required)
        *st = core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                         "tensor '%s' is missing (architecture %s)", name, b->m->arch->name);
    return t;
}

/* A matrix of n_out rows of n_in elements that model_linear can multiply. */
static shimmy_status bind_matrix(binder *b, const char *name, int64_t n_in, int64_t n_out,
                                 bool required, model_weight *w) {
    shimmy_status st = SHIMMY_OK;
    memset(w, 0, sizeof *w);
    w->slot = -1;
    const gguf_tensor *t = find(b, name, required, &st);
    if (!t) return st;
    if (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out)
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                          (long long)t->ne[0], (long long)t->ne[1], (long long)n_in,
                          (long long)n_out);
    const quant_traits *qt = quant_get(t->type);
    if (!qt || !qt->vec_dot || !qt->to_float)
        return core_error(b->err, SHIMMY_ERR_UNSUPPORTED, gguf_path(b->f),
                          "tensor '%s' has type %s, which this build cannot multiply", name,
                          gguf_type_name(t->type));
    const quant_traits *vt = quant_get(qt->vec_dot_type);
    if (!vt || (qt->vec_dot_type != GGUF_T_F32 && !vt->from_float))
        return core_error(b->err, SHIMMY_ERR_UNSUPPORTED, gguf_path(b->f),
                          "tensor '%s' (%s) needs activations in %s, which this build cannot make",
                          name, gguf_type_name(t->type), gguf_type_name(qt->vec_dot_type));
    uint64_t row_bytes, act_bytes;
    if (!gguf_row_bytes(t->type, n_in, &row_bytes) ||
        !gguf_row_bytes(qt->vec_dot_type, n_in, &act_bytes) || t->nbytes < row_bytes * n_out)
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s': rows of %lld elements do not fit type %s", name,
                          (long long)n_in, gguf_type_name(t->type));
    w->data = t->data;
    w->qt = qt;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = (size_t)row_bytes;
    w->slot = b->m->n_weights++;
    snprintf(w->name, sizeof w->name, "%s", name);
    if (act_bytes > b->m->max_act_row_bytes) b->m->max_act_row_bytes = (size_t)act_bytes;
    if (n_in > b->m->max_in) b->m->max_in = n_in;
    if (t->type < GGUF_T_COUNT && strncmp(name, "blk.", 4) == 0)
        b->type_bytes[t->type] += t->nbytes;
    return SHIMMY_OK;
}

/* An F32 vector of n elements (norm weights, biases). */
static shimmy_status bind_vector(binder *b, const char *name, int64_t n, bool required,
                                 const float **out) {
    shimmy_status st = SHIMMY_OK;
    *out = NULL;
    const gguf_tensor *t = find(b, name, required, &st);
    if (!t) return st;
    if (t->type != GGUF_T_F32)
        return core_error(b->err, SHIMMY_ERR_UNSUPPORTED, gguf_path(b->f),
                          "tensor '%s' has type %s; norm weights and biases must be F32", name,
                          gguf_type_name(t->type));
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s' has %lld x %lld elements, expected a vector of %lld", name,
                          (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    if ((uintptr_t)t->data % sizeof(float))
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s' data is not 4-byte aligned", name);
    *out = t->data;
    return SHIMMY_OK;
}

static shimmy_status bind_layer(binder *b, int il) {
    const model_hparams *hp = &b->m->hp;
    model_layer *L = &b->m->layers[il];
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t o_dim = (int64_t)hp->n_head * hp->head_dim_v;
    const bool bias_req = b->m->arch->qkv_bias, qkn = b->m->arch->qk_norm;
    char n[15][64];
    const char *suffix[15] = {"attn_norm.weight",   "attn_q.weight",      "attn_k.weight",
                              "attn_v.weight",      "attn_output.weight", "attn_q.bias",
                              "attn_k.bias",        "attn_v.bias",        "attn_q_norm.weight",
                              "attn_k_norm.weight", "ffn_norm.weight",    "ffn_gate.weight",
                              "ffn_up.weight",      "ffn_down.weight",    ""};
    for (int i = 0; i < 14; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s", il, suffix[i]);
    shimmy_status st;
    if ((st = bind_vector(b, n[0], hp->n_embd, true, &L->attn_norm)) ||
        (st = bind_matrix(b, n[1], hp->n_embd, q_dim, true, &L->wq)) ||
        (st = bind_matrix(b, n[2], hp->n_embd, k_dim, true, &L->wk)) ||
        (st = bind_matrix(b, n[3], hp->n_embd, v_dim, true, &L->wv)) ||
        (st = bind_matrix(b, n[4], o_dim, hp->n_embd, true, &L->wo)) ||
        (st = bind_vector(b, n[5], q_dim, bias_req, &L->bq)) ||
        (st = bind_vector(b, n[6], k_dim, bias_req, &L->bk)) ||
        (st = bind_vector(b, n[7], v_dim, bias_req, &L->bv)) ||
        (st = bind_vector(b, n[8], hp->head_dim, qkn, &L->q_norm)) ||
        (st = bind_vector(b, n[9], hp->head_dim, qkn, &L->k_norm)) ||
        (st = bind_vector(b, n[10], hp->n_embd, true, &L->ffn_norm)) ||
        (st = bind_matrix(b, n[11], hp->n_embd, hp->n_ff, true, &L->w_gate)) ||
        (st = bind_matrix(b, n[12], hp->n_embd, hp->n_ff, true, &L->w_up)) ||
        (st = bind_matrix(b, n[13], hp->n_ff, hp->n_embd, true, &L->w_down)))
        return st;
    if (!qkn && (L->q_norm || L->k_norm))
        return core_error(b->err, SHIMMY_ERR_UNSUPPORTED, gguf_path(b->f),
                          "tensor '%s' (per-head q/k norm) is not used by architecture %s",
                          L->q_norm ? n[8] : n[9], b->m->arch->name);
    return SHIMMY_OK;
}

shimmy_status model_load(const gguf_file *f, model **out, shimmy_error *err) {
    *out = NULL;
    gguf_str arch_s;
    char arch_name[64];
    if (!gguf_get_str(f, "general.architecture", &arch_s))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "metadata key 'general.architecture' is missing");
    gguf_str_copy(arch_s, arch_name, sizeof arch_name);
    const model_arch *arch = model_arch_find(arch_name);
    if (!arch)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, gguf_path(f),
                          "architecture '%s' is not supported (supported: %s)", arch_name,
                          model_arch_names());
    model *m = core_calloc(1, sizeof *m);
    binder *b = core_calloc(1, sizeof *b);
    if (!m || !b) {
        free(m);
        free(b);
        return core_error(err, SHIMMY_ERR_NOMEM, gguf_path(f), "cannot allocate the model");
    }
    m->file = f;
    m->arch = arch;
    b->f = f;
    b->m = m;
    b->err = err;
    shimmy_status st = model_hparams_read(f, arch, &m->hp, err);
    if (st) goto fail;
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te) {
        st = core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                        "tensor 'token_embd.weight' is missing");
        goto fail;
    }
    if (te->ne[1] < 1 || te->ne[1] > INT32_MAX / 2) {
        st = core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                        "tensor 'token_embd.weight' has an invalid vocabulary size %lld",
                        (long long)te->ne[1]);
        goto fail;
    }
    m->hp.n_vocab = (int32_t)te->ne[1];
    const model_hparams *hp = &m->hp;
    if ((st = bind_matrix(b, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->tok_embd)) ||
        (st = bind_vector(b, "output_norm.weight", hp->n_embd, true, &m->output_norm)) ||
        (st = bind_matrix(b, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output)) ||
        (st = bind_vector(b, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs)))
        goto fail;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    m->layers = core_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        st = core_error(err, SHIMMY_ERR_NOMEM, gguf_path(f), "cannot allocate %d layers",
                        hp->n_layer);
        goto fail;
    }
    for (int il = 0; il < hp->n_layer; il++)
        if ((st = bind_layer(b, il))) goto fail;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        m->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        m->weight_bytes += t->nbytes;
    }
    uint64_t best = 0;
    m->file_type = m->tok_embd.type;
    for (int t = 0; t < GGUF_T_COUNT; t++)
        if (b->type_bytes[t] > best) best = b->type_bytes[t], m->file_type = (uint32_t)t;
    free(b);
    *out = m;
    return SHIMMY_OK;
fail:
    free(b);
    model_free(m);
    return st;
}

void model_free(model *m) {
    if (!m) return;
    free(m->layers);
    free(m);
}
