/* The forward pass shared by every architecture: embeddings, n_layer blocks of
 * (RMSNorm -> q/k/v -> [bias] -> [q/k norm] -> RoPE -> causal GQA attention over the KV cache ->
 * output projection -> residual -> RMSNorm -> SwiGLU FFN -> residual), final norm, output.
 *
 * With an F16 cache the attention rounds like ggml's CPU path: K and V are stored as F16, the
 * query is rounded to F16 before K·q, and the softmax probabilities are rounded to F16 before
 * they weight V (both products accumulate in F32). With an F32 cache nothing is rounded. Both
 * products use the quant module's F16/F32 dot kernels (SIMD when the CPU has it). */
#include "model.h"

#include <math.h>
#include <string.h>

/* Below this many multiply-adds a thread hand-off costs more than the attention itself. */
#define ATTN_PARALLEL_MIN (1 << 16)

typedef struct attn_task {
    model_ctx *c;
    int32_t layer;
    int32_t n_tok;
} attn_task;

static int32_t pad_kv(int32_t n, int32_t cap) {
    const int32_t p = (n + MODEL_KV_PAD - 1) / MODEL_KV_PAD * MODEL_KV_PAD;
    return p < cap ? p : cap;
}

/* float -> cache element: the quant module's F32 copy, or model_f32_to_f16 (the same rounding
 * as its F16 conversion, vectorised) */
static quant_from_float_fn kv_from_float(const model_ctx *c) {
    return c->kv_type == MODEL_KV_F16 ? model_f32_to_f16 : quant_get(GGUF_T_F32)->from_float;
}

/* Jobs [lo, hi) (head-major: job = head * n_tok + token), with slot's scratch. */
static void attn_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    const attn_task *t = ctx;
    model_ctx *c = t->c;
    const model_hparams *hp = &c->m->hp;
    const int32_t hd = hp->head_dim, hdv = hp->head_dim_v;
    const int32_t gqa = hp->n_head / hp->n_head_kv;
    const int64_t q_dim = (int64_t)hp->n_head * hd, k_dim = (int64_t)hp->n_head_kv * hd;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hdv, o_dim = (int64_t)hp->n_head * hdv;
    const float scale = 1.0f / sqrtf((float)hd);
    /* the cache type's own kernels: with F16 they round q and the probabilities to F16 and
     * accumulate in F32, which is what ggml's CPU attention does */
    const quant_traits *kt = quant_get(c->kv_type == MODEL_KV_F16 ? GGUF_T_F16 : GGUF_T_F32);
    const size_t elt = c->kv_elt;
    const unsigned char *kc = (const unsigned char *)c->k_cache +
                              (size_t)t->layer * (size_t)c->n_ctx_pad * (size_t)k_dim * elt;
    /* V is stored transposed, (v_dim, n_ctx_pad) per layer, so each output element is one dot */
    const unsigned char *vc = (const unsigned char *)c->v_cache +
                              (size_t)t->layer * (size_t)v_dim * (size_t)c->n_ctx_pad * elt;
    /* per thread: scores (ATT_Q rows of n_ctx_pad), q (ATT_Q rows of head_dim) and
     * probabilities (ATT_Q rows of n_ctx_pad) in the cache type, as ctx.c sizes them */
    const int64_t N = c->n_ctx_pad;
    float *sc_all = c->scores + (int64_t)slot * c->scores_per_thread;
    unsigned char *qr_all = (unsigned char *)(sc_all + ATT_Q * N);
    unsigned char *pr_all = (unsigned char *)(sc_all + ATT_Q * N + ATT_Q * hd);
    /* the reference attends over the used cells rounded up to 32 (the rest masked to zero
     * probability), and its dot kernels' float order depends on that length */
    const int32_t n_kv_pad = pad_kv(c->n_past + t->n_tok, c->n_ctx_pad);
    /* batches of two or more tokens go through the reference's tiled GEMM when the shapes allow
     * it (inner size a multiple of 16, rows a multiple of 4), single tokens through its dots.
     * K·q only does with an F16 cache: there q is first converted to a contiguous F16 copy the
     * GEMM can take, while with an F32 cache q stays a permuted (non-contiguous) view, which the
     * reference hands to its plain dot kernel instead. */
    const quant_vec_dot_fn tiled = c->tiled_dot;
    const quant_from_float_fn conv = kv_from_float(c);
    const bool batch = t->n_tok >= 2;
    const quant_vec_dot_fn kq_dot =
        batch && c->kv_type == MODEL_KV_F16 && hd % 16 == 0 && n_kv_pad % 4 == 0 ? tiled
                                                                                 : kt->vec_dot;
    const quant_vec_dot_fn kqv_dot =
        batch && n_kv_pad % 16 == 0 && hdv % 4 == 0 ? tiled : kt->vec_dot;
    /* where the batched order applies and the cache type has tile kernels (F16 with AVX-512),
     * a head's dots go through them as one product: same bits (quant's gemm is the batched
     * order, which is what the tiled dots compute), a fifth of the time */
    const quant_gemm_fn kq_gemm = kq_dot == tiled && c->kv_type == MODEL_KV_F16 ? kt->gemm : NULL;
    const quant_gemm_fn kqv_gemm = kqv_dot == tiled && c->kv_type == MODEL_KV_F16 ? kt->gemm : NULL;

    /* jobs run head-major: consecutive jobs of a thread read the same K and V rows (kept in
     * cache), and the causal triangle's uneven rows are shared evenly (token-major ranges gave
     * the last thread the longest rows) */
    for (int64_t job = lo; job < hi;) {
        const int32_t h = (int32_t)(job / t->n_tok), tok0 = (int32_t)(job % t->n_tok);
        const int32_t kvh = h / gqa;
        /* up to ATT_Q consecutive tokens of this head at once: the tile kernels then read each
         * K and V row once for all of them (each token's dots are unchanged) */
        int32_t nq = 1;
        if (kq_gemm && kqv_gemm)
            while (nq < ATT_Q && job + nq < hi && tok0 + nq < t->n_tok) nq++;
        for (int32_t i = 0; i < nq; i++)
            conv(c->q + (tok0 + i) * q_dim + (int64_t)h * hd, qr_all + (size_t)i * hd * elt, hd);
        const int32_t n_kv_last = c->n_past + tok0 + nq; /* the longest of the group's rows */
        if (kq_gemm) /* rows past a token's own length are computed and then never read */
            kq_gemm(hd, n_kv_last, nq, kc + (size_t)kvh * hd * elt, (size_t)k_dim * elt, qr_all,
                    (size_t)hd * elt, sc_all, (size_t)N);
        for (int32_t i = 0; i < nq; i++) {
            const int32_t n_kv = c->n_past + tok0 + i + 1;
            float *sc = sc_all + i * N;
            if (kq_gemm)
                for (int32_t p = 0; p < n_kv; p++) sc[p] *= scale;
            else
                for (int32_t p = 0; p < n_kv; p++) {
                    kq_dot(hd, &sc[p], kc + ((size_t)p * (size_t)k_dim + (size_t)kvh * hd) * elt,
                           qr_all);
                    sc[p] *= scale;
                }
            model_softmax(sc, n_kv);
            for (int32_t p = n_kv; p < n_kv_pad; p++) sc[p] = 0.0f;
            conv(sc, pr_all + (size_t)i * N * elt, n_kv_pad);
        }
        float *out = c->att + tok0 * o_dim + (int64_t)h * hdv;
        if (kqv_gemm)
            kqv_gemm(n_kv_pad, hdv, nq, vc + (size_t)kvh * hdv * c->n_ctx_pad * elt,
                     (size_t)c->n_ctx_pad * elt, pr_all, (size_t)N * elt, out, (size_t)o_dim);
        else
            for (int32_t d = 0; d < hdv; d++)
                kqv_dot(n_kv_pad, &out[d],
                        vc + ((size_t)kvh * hdv + (size_t)d) * c->n_ctx_pad * elt, pr_all);
        job += nq;
    }
}

static void store_kv(model_ctx *c, int32_t layer, int32_t n_tok) {
    const model_hparams *hp = &c->m->hp;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const size_t elt = c->kv_elt;
    unsigned char *kc =
        (unsigned char *)c->k_cache +
        ((size_t)layer * (size_t)c->n_ctx_pad + (size_t)c->n_past) * (size_t)k_dim * elt;
    const quant_from_float_fn conv = kv_from_float(c);
    conv(c->k, kc, n_tok * k_dim);
    unsigned char *vc =
        (unsigned char *)c->v_cache + (size_t)layer * (size_t)v_dim * (size_t)c->n_ctx_pad * elt;
    /* V is transposed: each element lands in its own cache row, so convert a run of a token's
     * row at a time and scatter the converted elements */
    enum { RUN = 64 };
    unsigned char buf[RUN * 4];
    for (int32_t t = 0; t < n_tok; t++)
        for (int64_t j0 = 0; j0 < v_dim; j0 += RUN) {
            const int64_t nj = v_dim - j0 < RUN ? v_dim - j0 : RUN;
            conv(&c->v[t * v_dim + j0], buf, nj);
            for (int64_t j = 0; j < nj; j++)
                memcpy(vc + ((size_t)(j0 + j) * c->n_ctx_pad + c->n_past + t) * elt, buf + j * elt,
                       elt);
        }
}

static void add_bias(float *y, const float *b, int32_t n_tok, int64_t dim) {
    if (!b) return;
    for (int32_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < dim; i++) y[t * dim + i] += b[i];
}

static void head_norm(float *y, const float *w, int32_t n_tok, int32_t n_head, int32_t hd,
                      float eps) {
    if (!w) return;
    for (int64_t i = 0; i < (int64_t)n_tok * n_head; i++)
        model_rms_norm(y + i * hd, w, y + i * hd, hd, eps);
}

static void attention_block(model_ctx *c, const model_layer *L, int32_t il, int32_t n_tok) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t k_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v;
    for (int32_t t = 0; t < n_tok; t++)
        model_rms_norm(c->x + t * E, L->attn_norm, c->xn + t * E, E, hp->rms_eps);
    const model_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *const qkv_out[3] = {c->q, c->k, c->v};
    model_linear_n(c, 3, qkv, c->xn, qkv_out, n_tok);
    add_bias(c->q, L->bq, n_tok, q_dim);
    add_bias(c->k, L->bk, n_tok, k_dim);
    add_bias(c->v, L->bv, n_tok, v_dim);
    head_norm(c->q, L->q_norm, n_tok, hp->n_head, hp->head_dim, hp->rms_eps);
    head_norm(c->k, L->k_norm, n_tok, hp->n_head_kv, hp->head_dim, hp->rms_eps);
    for (int32_t t = 0; t < n_tok; t++) {
        const float *cs = c->rope_cs + (int64_t)t * hp->n_rot;
        model_rope_apply(c->q + t * q_dim, hp->n_head, hp->head_dim, hp->n_rot, cs,
                         m->arch->rope_mode);
        model_rope_apply(c->k + t * k_dim, hp->n_head_kv, hp->head_dim, hp->n_rot, cs,
                         m->arch->rope_mode);
    }
    store_kv(c, il, n_tok);
    attn_task at = {.c = c, .layer = il, .n_tok = n_tok};
    const int64_t work = (int64_t)n_tok * hp->n_head * (c->n_past + n_tok) * hp->head_dim;
    if (c->pool && c->n_threads > 1 && work >= ATTN_PARALLEL_MIN)
        core_pool_run_items(c->pool, attn_items, &at, (int64_t)n_tok * hp->n_head);
    else
        attn_items(&at, 0, (int64_t)n_tok * hp->n_head, 0);
    model_linear(c, &L->wo, c->att, c->xn, n_tok);
    for (int64_t i = 0; i < n_tok * E; i++) c->x[i] += c->xn[i];
}

static void ffn_block(model_ctx *c, const model_layer *L, int32_t n_tok) {
    const model_hparams *hp = &c->m->hp;
    const int64_t E = hp->n_embd;
    for (int32_t t = 0; t < n_tok; t++)
        model_rms_norm(c->x + t * E, L->ffn_norm, c->xn + t * E, E, hp->rms_eps);
    const model_weight *gu[2] = {&L->w_gate, &L->w_up};
    float *const gu_out[2] = {c->gate, c->up};
    model_linear_n(c, 2, gu, c->xn, gu_out, n_tok);
    for (int32_t t = 0; t < n_tok; t++)
        model_swiglu(c->gate + (int64_t)t * hp->n_ff, c->up + (int64_t)t * hp->n_ff, hp->n_ff);
    model_linear(c, &L->w_down, c->gate, c->xn, n_tok);
    for (int64_t i = 0; i < n_tok * E; i++) c->x[i] += c->xn[i];
}

shimmy_status model_ctx_eval(model_ctx *c, const int32_t *tokens, int32_t n, int32_t n_logits_out,
                             shimmy_error *err) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    if (n < 1 || n > c->n_batch)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_tokens",
                          "%d tokens in one step; the batch holds 1 .. %d", n, c->n_batch);
    if (n > c->n_ctx - c->n_past)
        return core_error(err, SHIMMY_ERR_CONTEXT_EXCEEDED, "n_ctx",
                          "%d cached + %d new tokens exceed the context size %d", c->n_past, n,
                          c->n_ctx);
    if (n_logits_out < 0 || n_logits_out > n || n_logits_out > c->n_logits)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_logits",
                          "cannot return logits of %d positions (at most %d)", n_logits_out,
                          n < c->n_logits ? n : c->n_logits);
    for (int32_t t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= hp->n_vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "tokens",
                              "token id %d at index %d is outside the vocabulary (0 .. %d)",
                              tokens[t], t, hp->n_vocab - 1);
    const int64_t E = hp->n_embd;
    const unsigned char *emb = m->tok_embd.data;
    for (int32_t t = 0; t < n; t++)
        m->tok_embd.qt->to_float(emb + (size_t)tokens[t] * m->tok_embd.row_bytes, c->x + t * E, E);
    /* RoPE's angles depend on the position only: once per eval, not per layer and q/k */
    for (int32_t t = 0; t < n; t++)
        model_rope_angles(c->rope_cs + (int64_t)t * hp->n_rot, hp->n_rot, c->n_past + t,
                          hp->rope_base, hp->rope_freq_scale, m->rope_freqs);
    for (int32_t il = 0; il < hp->n_layer; il++) {
        attention_block(c, &m->layers[il], il, n);
        ffn_block(c, &m->layers[il], n);
    }
    c->n_logits_last = n_logits_out;
    if (n_logits_out > 0) {
        const int32_t first = n - n_logits_out;
        for (int32_t j = 0; j < n_logits_out; j++)
            model_rms_norm(c->x + (first + j) * E, m->output_norm, c->xn + j * E, E, hp->rms_eps);
        model_linear(c, &m->output, c->xn, c->logits, n_logits_out);
    }
    c->n_past += n;
    return SHIMMY_OK;
}
