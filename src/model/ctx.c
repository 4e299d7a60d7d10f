/* Compute contexts: every buffer the forward pass touches is allocated here, once, so that
 * evaluation never allocates. */
#include "model.h"
#include "lora/lora.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CTX_ALIGN 64

/* Sums sizes with overflow checks, then hands out 64-byte aligned slices of one block. */
typedef struct layout {
    uint64_t total;
    bool overflow;
} layout;

static uint64_t reserve(layout *l, uint64_t n, uint64_t elt) {
    uint64_t bytes, off = l->total, end;
    if (!core_mul_u64(n, elt, &bytes) || !core_add_u64(bytes, CTX_ALIGN - 1, &bytes)) {
        l->overflow = true;
        return 0;
    }
    bytes &= ~(uint64_t)(CTX_ALIGN - 1);
    if (!core_add_u64(off, bytes, &end)) l->overflow = true;
    l->total = end;
    return off;
}

shimmy_status model_ctx_new(const model *m, const model_ctx_params *p, model_ctx **out,
                            shimmy_error *err) {
    *out = NULL;
    const model_hparams *hp = &m->hp;
    if (p->n_ctx < 1 || p->n_ctx > (1 << 24))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_ctx",
                          "context size %d is out of range (1 .. 16777216)", p->n_ctx);
    if (p->n_batch < 0 || p->n_logits < 0 || p->n_seq < 0 || p->n_seq > 4096)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_batch",
                          "batch size, logits count and sequences must be in range (sequences "
                          "0 .. 4096)");
    if (p->kv_type != MODEL_KV_F16 && p->kv_type != MODEL_KV_F32)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "kv_type",
                          "KV cache type must be f16 or f32");
    if (m->arch->encoder && !p->embeddings)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, "model",
                          "architecture %s is an embedding model (an encoder): it cannot "
                          "generate text; use it for embeddings or reranking",
                          m->arch->name);
    if (m->pos_embd.data && p->n_ctx > m->pos_embd.n_out)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_ctx",
                          "context size %d exceeds the %lld positions this model has learned",
                          p->n_ctx, (long long)m->pos_embd.n_out);
    model_ctx *c = core_calloc(1, sizeof *c);
    if (!c) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate a model context");
    c->m = m;
    c->pool = p->pool;
    c->n_threads = p->pool ? core_pool_size(p->pool) : 1;
    c->n_ctx = p->n_ctx;
    c->n_seq = p->n_seq ? p->n_seq : 1;
    c->n_batch = p->n_batch ? p->n_batch : 512;
    if ((int64_t)c->n_batch > (int64_t)c->n_ctx * c->n_seq) c->n_batch = c->n_ctx * c->n_seq;
    c->n_logits = p->n_logits ? p->n_logits : 1;
    c->kv_type = p->kv_type;
    c->embeddings = p->embeddings;
    c->kv_elt = p->kv_type == MODEL_KV_F16 ? 2 : 4;
    c->tiled_dot = model_dot_tiled(p->kv_type == MODEL_KV_F16);

    c->n_ctx_pad = (c->n_ctx + MODEL_KV_PAD - 1) / MODEL_KV_PAD * MODEL_KV_PAD;
    const uint64_t B = (uint64_t)c->n_batch, L = (uint64_t)hp->n_layer, N = (uint64_t)c->n_ctx_pad;
    const uint64_t S = (uint64_t)c->n_seq;
    const uint64_t q_dim = (uint64_t)hp->n_head * hp->head_dim;
    const uint64_t k_dim = (uint64_t)hp->n_head_kv * hp->head_dim;
    const uint64_t v_dim = (uint64_t)hp->n_head_kv * hp->head_dim_v;
    const uint64_t o_dim = (uint64_t)hp->n_head * hp->head_dim_v;
    const uint64_t xn_dim = o_dim > (uint64_t)hp->n_embd ? o_dim : (uint64_t)hp->n_embd;
    layout l = {0};
    /* a sliding-window layer keeps a ring that holds its window for every entry of a step: the
     * first entry of a full batch looks back n_swa - 1 positions before the batch's last one */
    uint64_t cells_total = 0;
    const uint64_t o_cells = reserve(&l, L, sizeof(int32_t));
    const uint64_t o_koff = reserve(&l, L, sizeof(size_t));
    const uint64_t o_voff = reserve(&l, L, sizeof(size_t));
    int32_t ring = 0;
    if (hp->n_swa > 0) {
        const int64_t want = (int64_t)hp->n_swa + c->n_batch - 1;
        ring = (int32_t)((want + MODEL_KV_PAD - 1) / MODEL_KV_PAD * MODEL_KV_PAD);
        if (ring > c->n_ctx_pad) ring = c->n_ctx_pad;
    }
    for (int32_t il = 0; il < hp->n_layer; il++)
        cells_total += (uint64_t)(m->layers[il].window > 0 && ring ? ring : c->n_ctx_pad);
    uint64_t o_k = reserve(&l, S * cells_total, k_dim * c->kv_elt);
    uint64_t o_v = reserve(&l, S * cells_total, v_dim * c->kv_elt);
    const uint64_t o_npast = reserve(&l, S, sizeof(int32_t));
    const uint64_t o_seqend = reserve(&l, S, sizeof(int32_t));
    const uint64_t o_seqntok = reserve(&l, S, sizeof(int32_t));
    const uint64_t o_tok = reserve(&l, B, 4 * sizeof(int32_t)); /* tok, seq, pos, run_end */
    const uint64_t o_want = reserve(&l, B, 1);
    const uint64_t o_single = reserve(&l, B, 1);
    uint64_t o_x = reserve(&l, B * (uint64_t)hp->n_embd, 4);
    uint64_t o_xn = reserve(&l, B * xn_dim, 4);
    /* q, k, v and att live from the q/k/v products to the output projection, gate and up only
     * inside the FFN: the two groups share one region (a batch's largest scratch) */
    const uint64_t shared = l.total;
    uint64_t o_q = reserve(&l, B * q_dim, 4);
    uint64_t o_kk = reserve(&l, B * k_dim, 4);
    uint64_t o_vv = reserve(&l, B * v_dim, 4);
    uint64_t o_att = reserve(&l, B * o_dim, 4);
    const uint64_t attn_end = l.total;
    l.total = shared;
    /* gate and up are one region, so that a fused gate+up product (phi3) can write its
     * (n_batch, 2*n_ff) rows from gate */
    const uint64_t ff_bytes =
        (B * (uint64_t)hp->n_ff * 4 + CTX_ALIGN - 1) & ~(uint64_t)(CTX_ALIGN - 1);
    uint64_t o_gate = reserve(&l, 2, ff_bytes);
    uint64_t o_up = o_gate + ff_bytes;
    if (l.total < attn_end) l.total = attn_end;
    uint64_t o_xq = reserve(&l, B, m->max_act_row_bytes ? m->max_act_row_bytes : 1);
    /* attention scratch per thread: ATT_Q rows of scores, of q and of probabilities */
    c->scores_per_thread = (int64_t)(ATT_Q * (2 * N + (uint64_t)hp->head_dim) + 16) & ~(int64_t)15;
    uint64_t o_sc = reserve(&l, (uint64_t)c->n_threads, (uint64_t)c->scores_per_thread * 4);
    uint64_t o_lg =
        reserve(&l, c->embeddings ? 0 : (uint64_t)c->n_logits * (uint64_t)hp->n_vocab, 4);
    uint64_t o_embd = reserve(&l, c->embeddings ? (uint64_t)c->n_logits * hp->n_embd : 0, 4);
    bool fused = false;
    for (int32_t il = 0; il < hp->n_layer; il++) fused |= m->layers[il].wqkv.data != NULL;
    uint64_t o_qkv = reserve(&l, fused ? B * (q_dim + k_dim + v_dim) : 0, 4);
    uint64_t o_rows = reserve(&l, (uint64_t)c->n_logits, sizeof(int32_t));
    uint64_t o_rope = reserve(&l, MODEL_ROPE_SLOTS * B * (uint64_t)hp->head_dim, 4);
    /* a family's own scratch per entry and recurrent state per sequence (hparams hook) */
    const uint64_t o_aux = reserve(&l, B * (uint64_t)hp->aux_floats, 4);
    const uint64_t o_rstate = reserve(&l, S * (uint64_t)hp->state_floats, 4);
    const uint64_t moe_bytes = model_moe_scratch_bytes(m, (int32_t)B);
    const uint64_t o_moe = moe_bytes ? reserve(&l, 1, moe_bytes) : 0;
    if (l.overflow || l.total > SIZE_MAX / 2) {
        free(c);
        return core_error(err, SHIMMY_ERR_NOMEM, "n_ctx",
                          "a context of %d positions is too large for this model", p->n_ctx);
    }
    /* Anonymous pages straight from the kernel, not malloc: they are zero and stay untouched
     * (not resident) until the forward pass writes them, so start-up does not pay for the KV
     * cache and a short generation maps only what it used; freeing returns them at once.
     * (calloc would do the same only while glibc serves the block by mmap: after a context is
     * freed its dynamic threshold rises and the next context comes from the heap, memset and
     * resident.) Zero, not uninitialised, so a truncated cache never exposes garbage. */
    void *map =
        mmap(NULL, (size_t)l.total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *base = map == MAP_FAILED ? NULL : map; /* page-aligned, so CTX_ALIGN too */
    if (!base) {
        free(c);
        return core_error(err, SHIMMY_ERR_NOMEM, "n_ctx",
                          "cannot allocate %.1f MiB for a context of %d positions (try a smaller "
                          "--ctx-size)",
                          (double)l.total / (1024.0 * 1024.0), p->n_ctx);
    }
    c->block = base;
    c->block_bytes = (size_t)l.total;
    c->layer_cells = (int32_t *)(base + o_cells);
    c->layer_k_off = (size_t *)(base + o_koff);
    c->layer_v_off = (size_t *)(base + o_voff);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const int32_t cells = m->layers[il].window > 0 && ring ? ring : c->n_ctx_pad;
        c->layer_cells[il] = cells;
        c->layer_k_off[il] =
            il ? c->layer_k_off[il - 1] +
                     (size_t)(S * (uint64_t)c->layer_cells[il - 1] * k_dim * c->kv_elt)
               : 0;
        c->layer_v_off[il] =
            il ? c->layer_v_off[il - 1] +
                     (size_t)(S * (uint64_t)c->layer_cells[il - 1] * v_dim * c->kv_elt)
               : 0;
    }
    c->seq_n_past = (int32_t *)(base + o_npast);
    c->seq_end = (int32_t *)(base + o_seqend);
    c->seq_ntok = (int32_t *)(base + o_seqntok);
    c->tok = (int32_t *)(base + o_tok);
    c->tok_seq = c->tok + B;
    c->tok_pos = c->tok + 2 * B;
    c->run_end = c->tok + 3 * B;
    c->want = base + o_want;
    c->tok_single = base + o_single;
    c->out_rows = (int32_t *)(base + o_rows);
    c->k_cache = base + o_k;
    c->v_cache = base + o_v;
    c->x = (float *)(base + o_x);
    c->xn = (float *)(base + o_xn);
    c->q = (float *)(base + o_q);
    c->k = (float *)(base + o_kk);
    c->v = (float *)(base + o_vv);
    c->att = (float *)(base + o_att);
    c->gate = (float *)(base + o_gate);
    c->up = (float *)(base + o_up);
    c->xq = base + o_xq;
    c->scores = (float *)(base + o_sc);
    c->logits = (float *)(base + o_lg);
    c->embd = (float *)(base + o_embd);
    c->qkv = fused ? (float *)(base + o_qkv) : NULL;
    c->rope_cs = (float *)(base + o_rope);
    c->moe = moe_bytes ? base + o_moe : NULL;
    c->aux = hp->aux_floats ? (float *)(base + o_aux) : NULL;
    c->rstate = hp->state_floats ? (float *)(base + o_rstate) : NULL;
    c->bytes = (size_t)l.total;
    if (p->device) {
        if (!m->arch->device) {
            model_ctx_free(c);
            return core_error(err, SHIMMY_ERR_UNSUPPORTED, "device",
                              "architecture %s does not run on a %s device yet (use the CPU)",
                              m->arch->name, p->device->ops->name);
        }
        c->dev = p->device;
        shimmy_status st = c->dev->ops->ctx_new(c->dev->impl, c, &c->dev_ctx, err);
        if (st) {
            c->dev = NULL;
            model_ctx_free(c);
            return st;
        }
    }
    *out = c;
    return SHIMMY_OK;
}

void model_ctx_drop_device(model_ctx *c) {
    if (!c->dev) return;
    core_log(CORE_LOG_ERROR,
             "the %s device failed: this context continues on the CPU (its cached positions are "
             "dropped)",
             c->dev->ops->name);
    c->dev->ops->ctx_free(c->dev_ctx);
    c->dev = NULL;
    c->dev_ctx = NULL;
    c->dev_resident = false;
    for (int32_t s = 0; s < c->n_seq; s++) c->seq_n_past[s] = 0;
    if (c->rstate)
        memset(c->rstate, 0, sizeof(float) * (size_t)c->n_seq * (size_t)c->m->hp.state_floats);
}

void model_ctx_free(model_ctx *c) {
    if (!c) return;
    if (c->dev) c->dev->ops->ctx_free(c->dev_ctx);
    core_aligned_free(c->lora_scratch);
    free(c->row_lora);
    if (c->block) munmap(c->block, c->block_bytes);
    free(c);
}

const float *model_ctx_embedding(const model_ctx *c, int32_t i) {
    if (!c->embeddings || i < 0 || i >= c->n_logits_last) return NULL;
    return c->embd + (int64_t)i * c->m->hp.n_embd;
}

const float *model_ctx_logits(const model_ctx *c, int32_t i) {
    if (c->embeddings || i < 0 || i >= c->n_logits_last) return NULL;
    return c->logits + (int64_t)i * c->m->hp.n_vocab;
}

int32_t model_ctx_n_past(const model_ctx *c) {
    return c->seq_n_past[0];
}
int32_t model_ctx_seq_n_past(const model_ctx *c, int32_t seq) {
    return seq >= 0 && seq < c->n_seq ? c->seq_n_past[seq] : 0;
}
int32_t model_ctx_n_seq(const model_ctx *c) {
    return c->n_seq;
}
int32_t model_ctx_n_ctx(const model_ctx *c) {
    return c->n_ctx;
}
int32_t model_ctx_n_batch(const model_ctx *c) {
    return c->n_batch;
}
size_t model_ctx_bytes(const model_ctx *c) {
    return c->bytes;
}

int32_t model_ctx_seq_truncate(model_ctx *c, int32_t seq, int32_t n) {
    if (seq < 0 || seq >= c->n_seq) return 0;
    const int32_t n_past = c->seq_n_past[seq];
    if (n < 0) n = 0;
    if (n >= n_past) return n_past;
    if (c->rstate) { /* a recurrent state holds the whole sequence or nothing */
        memset(c->rstate + (int64_t)seq * c->m->hp.state_floats, 0,
               sizeof(float) * (size_t)c->m->hp.state_floats);
        n = 0;
    }
    /* position n attends back to n - n_swa + 1; a ring of `cells` holds n_past - cells .. */
    const int32_t n_swa = c->m->hp.n_swa;
    for (int32_t il = 0; il < c->m->hp.n_layer && n > 0; il++) {
        const int32_t cells = c->layer_cells[il];
        if (c->m->layers[il].window > 0 && cells < c->n_ctx_pad &&
            (int64_t)n < (int64_t)n_past - cells + n_swa - 1)
            n = 0;
    }
    c->seq_n_past[seq] = n;
    return n;
}

/* Byte ranges of sequence s in layer il: its K rows and its V rows, each contiguous. */
static void seq_ranges(const model_ctx *c, int32_t il, int32_t s, unsigned char **k, size_t *kb,
                       unsigned char **v, size_t *vb) {
    const model_hparams *hp = &c->m->hp;
    const size_t cells = (size_t)c->layer_cells[il];
    *kb = cells * (size_t)hp->n_head_kv * (size_t)hp->head_dim * c->kv_elt;
    *vb = cells * (size_t)hp->n_head_kv * (size_t)hp->head_dim_v * c->kv_elt;
    *k = (unsigned char *)c->k_cache + c->layer_k_off[il] + (size_t)s * *kb;
    *v = (unsigned char *)c->v_cache + c->layer_v_off[il] + (size_t)s * *vb;
}

static void host_copy(model_ctx *c, void *dst, const void *src, size_t bytes) {
    (void)c;
    memcpy(dst, src, bytes);
}
static void dev_copy(model_ctx *c, void *dst, const void *src, size_t bytes) {
    c->dev->ops->copy(c->dev_ctx, c, dst, src, bytes);
}

int32_t model_ctx_seq_copy(model_ctx *c, int32_t dst, int32_t src, int32_t n) {
    if (dst < 0 || dst >= c->n_seq || src < 0 || src >= c->n_seq || dst == src) return 0;
    if (n > c->seq_n_past[src]) n = c->seq_n_past[src];
    if (n <= 0) return 0;
    if (c->rstate) { /* a recurrent state is the whole sequence's: only all of it copies */
        if (n != c->seq_n_past[src]) return 0;
        memcpy(c->rstate + (int64_t)dst * c->m->hp.state_floats,
               c->rstate + (int64_t)src * c->m->hp.state_floats,
               sizeof(float) * (size_t)c->m->hp.state_floats);
    }
    const model_hparams *hp = &c->m->hp;
    /* a ring layer must still hold the window position n looks back on (as for truncation) */
    for (int32_t il = 0; il < hp->n_layer; il++)
        if (c->m->layers[il].window > 0 && c->layer_cells[il] < c->n_ctx_pad &&
            (int64_t)n < (int64_t)c->seq_n_past[src] - c->layer_cells[il] + hp->n_swa - 1)
            return 0;
    const size_t elt = c->kv_elt;
    const size_t k_row = (size_t)hp->n_head_kv * (size_t)hp->head_dim * elt;
    const size_t dv = (size_t)hp->n_head_kv * (size_t)hp->head_dim_v;
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const int32_t cells = c->layer_cells[il];
        /* a layer whose cache is on a device copies there (the host's copy is unused) */
        const bool dev = c->dev && c->dev->ops->layer(c->dev->impl, il);
        void (*const copy)(model_ctx *, void *, const void *, size_t) = dev ? dev_copy : host_copy;
        unsigned char *ks, *vs, *kd, *vd;
        size_t kb, vb;
        seq_ranges(c, il, src, &ks, &kb, &vs, &vb);
        seq_ranges(c, il, dst, &kd, &kb, &vd, &vb);
        /* positions [n - cells, n) of a ring, [0, n) of a full layer: each in cell p % cells */
        const int32_t p0 = n > cells ? n - cells : 0;
        for (int32_t p = p0; p < n;) {
            const int32_t cell = p % cells;
            int32_t run = cells - cell < n - p ? cells - cell : n - p;
            copy(c, kd + (size_t)cell * k_row, ks + (size_t)cell * k_row, (size_t)run * k_row);
            for (size_t d = 0; d < dv; d++) /* V is transposed: a run of cells per dim */
                copy(c, vd + (d * (size_t)cells + (size_t)cell) * elt,
                     vs + (d * (size_t)cells + (size_t)cell) * elt, (size_t)run * elt);
            p += run;
        }
    }
    c->seq_n_past[dst] = n;
    return n;
}

void model_ctx_seq_release(model_ctx *c, int32_t seq) {
    if (seq < 0 || seq >= c->n_seq) return;
    c->seq_n_past[seq] = 0;
    const uintptr_t page = 4096;
    for (int32_t il = 0; il < c->m->hp.n_layer; il++) {
        unsigned char *r[2];
        size_t b[2];
        seq_ranges(c, il, seq, &r[0], &b[0], &r[1], &b[1]);
        for (int i = 0; i < 2; i++) { /* whole pages inside the range go back (read as zero) */
            const uintptr_t a = ((uintptr_t)r[i] + page - 1) & ~(page - 1);
            const uintptr_t e = ((uintptr_t)r[i] + b[i]) & ~(page - 1);
            if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
        }
    }
}

int32_t model_ctx_truncate(model_ctx *c, int32_t n) {
    return model_ctx_seq_truncate(c, 0, n);
}

shimmy_status model_ctx_lora_reserve(model_ctx *c, const struct lora_set *set, shimmy_error *err) {
    if (!set) return SHIMMY_OK;
    const size_t n = lora_set_scratch_floats(set, c->n_batch);
    if (!c->row_lora) {
        c->row_lora = core_calloc((size_t)c->n_batch, sizeof *c->row_lora);
        if (!c->row_lora)
            return core_error(err, SHIMMY_ERR_NOMEM, "lora", "cannot allocate adapter rows");
    }
    if (n <= c->lora_scratch_floats && c->lora_scratch) return SHIMMY_OK;
    /* one scratch per pool thread: sequences' adapter terms run on several threads at once */
    const int threads = c->n_threads > 0 ? c->n_threads : 1;
    float *p = core_aligned_alloc(64, (n ? n : 1) * (size_t)threads * sizeof(float));
    if (!p)
        return core_error(err, SHIMMY_ERR_NOMEM, "lora",
                          "cannot allocate %zu floats of adapter scratch", n);
    core_aligned_free(c->lora_scratch);
    c->lora_scratch = p;
    c->lora_scratch_floats = n;
    c->lora_scratch_threads = threads;
    return SHIMMY_OK;
}

shimmy_status model_ctx_set_lora(model_ctx *c, const struct lora_set *set, shimmy_error *err) {
    core_aligned_free(c->lora_scratch);
    c->lora_scratch = NULL;
    c->lora_scratch_floats = 0;
    c->lora_scratch_threads = 0;
    c->lora = NULL;
    if (!set || lora_set_count(set) == 0) return SHIMMY_OK;
    size_t n = lora_set_scratch_floats(set, c->n_batch);
    c->lora_scratch = core_aligned_alloc(64, (n ? n : 1) * sizeof(float));
    c->lora_scratch_floats = n;
    c->lora_scratch_threads = 1;
    if (!c->lora_scratch)
        return core_error(err, SHIMMY_ERR_NOMEM, "lora",
                          "cannot allocate %zu floats of adapter scratch", n);
    c->lora = set;
    return SHIMMY_OK;
}
