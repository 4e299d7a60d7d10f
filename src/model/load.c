/* Binding GGUF tensors to a model: every tensor's presence, shape and type is checked here so the
 * forward pass never sees a surprise. Errors name the tensor and what was expected. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef model_loader binder;

const gguf_file *model_loader_file(const model_loader *ld) {
    return ld->f;
}
const model *model_loader_model(const model_loader *ld) {
    return ld->m;
}

static const char *tensor_name(char *buf, size_t cap, int32_t il, const char *name) {
    if (il < 0) return name;
    snprintf(buf, cap, "blk.%d.%s", il, name);
    return buf;
}

static const gguf_tensor *find(binder *b, const char *name, bool required, shimmy_status *st) {
    const gguf_tensor *t = gguf_find_tensor(b->f, name);
    if (!t && required)
        *st = core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                         "tensor '%s' is missing (architecture %s)", name, b->m->arch->name);
    return t;
}

/* n_out rows of n_in (n_expert 0: a 2-D matrix) or n_expert blocks of them (a 3-D tensor). */
static shimmy_status load_rows(model_loader *b, int32_t il, const char *name_in, int64_t n_in,
                               int64_t n_out, int64_t n_expert, bool required, model_weight *w) {
    char buf[96];
    const char *name = tensor_name(buf, sizeof buf, il, name_in);
    shimmy_status st = SHIMMY_OK;
    memset(w, 0, sizeof *w);
    w->slot = -1;
    const gguf_tensor *t = find(b, name, required, &st);
    if (!t) return st;
    if (n_expert == 0 && (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out))
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                          (long long)t->ne[0], (long long)t->ne[1], (long long)n_in,
                          (long long)n_out);
    if (n_expert > 0 &&
        (t->n_dims != 3 || t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != n_expert))
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s' has shape [%lld, %lld, %lld], expected the expert tensor "
                          "[%lld, %lld, %lld]",
                          name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                          (long long)n_in, (long long)n_out, (long long)n_expert);
    if (n_expert > 0) {
        w->expert_rows = n_out;
        n_out *= n_expert;
    }
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

shimmy_status model_load_matrix(model_loader *b, int32_t il, const char *name, int64_t n_in,
                                int64_t n_out, bool required, model_weight *w) {
    return load_rows(b, il, name, n_in, n_out, 0, required, w);
}

shimmy_status model_load_experts(model_loader *b, int32_t il, const char *name, int64_t n_in,
                                 int64_t n_out, int64_t n_expert, bool required, model_weight *w) {
    return load_rows(b, il, name, n_in, n_out, n_expert < 1 ? 1 : n_expert, required, w);
}

shimmy_status model_load_vector(model_loader *b, int32_t il, const char *name_in, int64_t n,
                                bool required, const float **out) {
    return model_load_rows_f32(b, il, name_in, n, 1, required, out);
}

shimmy_status model_load_rows_f32(model_loader *b, int32_t il, const char *name_in, int64_t n,
                                  int64_t count, bool required, const float **out) {
    char buf[96];
    const char *name = tensor_name(buf, sizeof buf, il, name_in);
    shimmy_status st = SHIMMY_OK;
    *out = NULL;
    const gguf_tensor *t = find(b, name, required, &st);
    if (!t) return st;
    if (t->type != GGUF_T_F32)
        return core_error(b->err, SHIMMY_ERR_UNSUPPORTED, gguf_path(b->f),
                          "tensor '%s' has type %s; norm weights and biases must be F32", name,
                          gguf_type_name(t->type));
    if (t->ne[0] != n || t->ne[1] != count || t->ne[2] != 1 || t->ne[3] != 1) {
        if (count == 1)
            return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                              "tensor '%s' has %lld x %lld elements, expected a vector of %lld",
                              name, (long long)t->ne[0], (long long)t->ne[1], (long long)n);
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s' has shape [%lld, %lld, %lld], expected [%lld, %lld]", name,
                          (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                          (long long)n, (long long)count);
    }
    if ((uintptr_t)t->data % sizeof(float))
        return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                          "tensor '%s' data is not 4-byte aligned", name);
    *out = t->data;
    return SHIMMY_OK;
}

/* The classification head of rerankers (rank pooling), as llama.cpp applies it: h' =
 * tanh(cls · h + cls.bias) when cls.weight exists, then cls.output · h' + its bias when
 * cls.output.weight exists (some rerankers have only one of the two). cls.output.weight is
 * stored 1-D when it has one output. */
static shimmy_status model_load_cls_head(binder *b) {
    model *m = b->m;
    const gguf_tensor *c = gguf_find_tensor(b->f, "cls.weight");
    const gguf_tensor *o = gguf_find_tensor(b->f, "cls.output.weight");
    if (!c && !o) return SHIMMY_OK;
    int64_t n_hid = m->hp.n_embd;
    shimmy_status st;
    if (c) {
        n_hid = c->ne[1];
        if (n_hid < 1 || n_hid > (1 << 20))
            return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                              "tensor 'cls.weight' has %lld outputs", (long long)n_hid);
        if ((st = model_load_matrix(b, -1, "cls.weight", m->hp.n_embd, n_hid, true, &m->cls)) ||
            (st = model_load_vector(b, -1, "cls.bias", n_hid, false, &m->cls_b)))
            return st;
    }
    m->n_cls_out = (int32_t)n_hid;
    if (o) {
        if (o->ne[1] < 1 || o->ne[1] > 4096)
            return core_error(b->err, SHIMMY_ERR_FORMAT, gguf_path(b->f),
                              "tensor 'cls.output.weight' has %lld outputs", (long long)o->ne[1]);
        m->n_cls_out = (int32_t)o->ne[1];
        if ((st = model_load_matrix(b, -1, "cls.output.weight", n_hid, m->n_cls_out, true,
                                    &m->cls_out)) ||
            (st = model_load_vector(b, -1, "cls.output.bias", m->n_cls_out, false, &m->cls_out_b)))
            return st;
    }
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
    const char *missing = arch ? NULL : model_arch_refusal(arch_name);
    if (missing)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, gguf_path(f),
                          "architecture '%s' is not supported yet: it needs %s", arch_name,
                          missing);
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
    if (arch->hparams && (st = arch->hparams(b, &m->hp))) goto fail;
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
    /* an encoder has no LM head: its output is the hidden states (and a classifier's scores) */
    const bool head = !arch->encoder;
    if ((st = model_load_matrix(b, -1, "token_embd.weight", hp->n_embd, hp->n_vocab, true,
                                &m->tok_embd)) ||
        (head && (st = model_load_vector(b, -1, "output_norm.weight", hp->n_embd, true,
                                         &m->output_norm))) ||
        (head && (st = model_load_matrix(b, -1, "output.weight", hp->n_embd, hp->n_vocab, false,
                                         &m->output))) ||
        (st =
             model_load_vector(b, -1, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs)) ||
        (st = model_load_cls_head(b)) || (arch->bind_model && (st = arch->bind_model(b))))
        goto fail;
    if (head && !m->output.data) {
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
        if ((st = arch->bind_layer(b, il, &m->layers[il]))) goto fail;
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
    model_expert_packs_free(m);
    free(m->layers);
    core_aligned_free(m->pack_mem);
    free(m);
}
