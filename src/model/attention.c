/* The attention op: K/V of the step stored in each entry's sequence, then every (entry, head)
 * attends over the positions it sees.
 *
 * Two paths. A plain causal layer that sees every earlier position (llama, qwen2, qwen3) keeps
 * the reference engine's float order: with an F16 cache K and V are stored as F16, the query is
 * rounded to F16 before K·q, and the softmax probabilities are rounded to F16 before they weight
 * V (both products accumulate in F32); with an F32 cache nothing is rounded; the length attended
 * over is padded to MODEL_KV_PAD, and batches of two or more tokens of a sequence use the tiled
 * order. Everything else (sliding windows over a ring of cells, soft-capped scores, sinks,
 * encoders that see the whole input) goes through the general path, one query at a time, with
 * the same kernels but no claim to the reference's order (the newer families are judged by
 * tolerance). On the fast path (model_attn_by_kv) a plain layer's decode entry with an F16
 * cache attends by KV head instead: the same roundings, F32 sums in the kernel set's order. */
#include "model.h"

#include <math.h>
#include <string.h>

/* Below this many multiply-adds a thread hand-off costs more than the attention itself. */
#define ATTN_PARALLEL_MIN (1 << 16)

typedef struct attn_task {
    model_ctx *c;
    int32_t layer;
    const model_attn_params *a;
    bool general;
    const int32_t *run_end;  /* (n_tok) index after the last entry of an entry's run */
    const int32_t *seq_end;  /* (n_seq) positions of each sequence after this step */
    const int32_t *seq_ntok; /* (n_seq) entries of each sequence in this step */
    int32_t gh;              /* query heads per job (the plain path's jobs: see attn_plain) */
    bool by_kv;              /* a decode entry's heads go through dot_rows_n together */
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

typedef struct layer_view {
    int32_t cells;
    int64_t k_dim, v_dim;
    const unsigned char *k; /* layer's K region */
    const unsigned char *v; /* layer's V region */
} layer_view;

static layer_view view(const model_ctx *c, int32_t il) {
    const model_hparams *hp = &c->m->hp;
    layer_view lv = {.cells = c->layer_cells[il],
                     .k_dim = (int64_t)hp->n_head_kv * hp->head_dim,
                     .v_dim = (int64_t)hp->n_head_kv * hp->head_dim_v};
    lv.k = (const unsigned char *)c->k_cache + c->layer_k_off[il];
    lv.v = (const unsigned char *)c->v_cache + c->layer_v_off[il];
    return lv;
}

/* K rows of sequence s start here (cells rows of k_dim); V rows (v_dim rows of cells). */
static const unsigned char *seq_k(const model_ctx *c, const layer_view *lv, int32_t s) {
    return lv->k + (size_t)s * (size_t)lv->cells * (size_t)lv->k_dim * c->kv_elt;
}
static const unsigned char *seq_v(const model_ctx *c, const layer_view *lv, int32_t s) {
    return lv->v + (size_t)s * (size_t)lv->v_dim * (size_t)lv->cells * c->kv_elt;
}

/* The reference's kernels for sequence s's products. A sequence's two or more entries in one
 * step go through its tiled GEMM when the shapes allow it (inner size a multiple of 16, rows a
 * multiple of 4), single entries through its dots. K·q only does with an F16 cache: there q is
 * first converted to a contiguous F16 copy the GEMM can take, while with an F32 cache q stays a
 * permuted (non-contiguous) view, which the reference hands to its plain dot kernel instead. */
static quant_vec_dot_fn kq_kernel(const attn_task *t, int32_t s) {
    const model_ctx *c = t->c;
    const int32_t n_kv_pad = pad_kv(t->seq_end[s], view(c, t->layer).cells);
    const bool batch = t->seq_ntok[s] >= 2;
    return batch && c->kv_type == MODEL_KV_F16 && c->m->hp.head_dim % 16 == 0 && n_kv_pad % 4 == 0
               ? c->tiled_dot
               : quant_get(c->kv_type == MODEL_KV_F16 ? GGUF_T_F16 : GGUF_T_F32)->vec_dot;
}

static quant_vec_dot_fn kqv_kernel(const attn_task *t, int32_t s) {
    const model_ctx *c = t->c;
    const int32_t n_kv_pad = pad_kv(t->seq_end[s], view(c, t->layer).cells);
    const bool batch = t->seq_ntok[s] >= 2;
    return batch && n_kv_pad % 16 == 0 && c->m->hp.head_dim_v % 4 == 0
               ? c->tiled_dot
               : quant_get(c->kv_type == MODEL_KV_F16 ? GGUF_T_F16 : GGUF_T_F32)->vec_dot;
}

/* Both of sequence s's products go through the F16 tile kernels. */
static bool tile_kernels(const attn_task *t, int32_t s) {
    const model_ctx *c = t->c;
    return c->kv_type == MODEL_KV_F16 && quant_get(GGUF_T_F16)->gemm &&
           kq_kernel(t, s) == c->tiled_dot && kqv_kernel(t, s) == c->tiled_dot;
}

/* The reference's order for head h and nq consecutive entries from tok0 (one run of a sequence;
 * nq > 1 only where both products have tile kernels). */
static void attn_ref(const attn_task *t, int32_t h, int32_t tok0, int32_t nq, int slot) {
    model_ctx *c = t->c;
    const model_hparams *hp = &c->m->hp;
    const int32_t hd = hp->head_dim, hdv = hp->head_dim_v;
    const int32_t gqa = hp->n_head / hp->n_head_kv;
    const int64_t q_dim = (int64_t)hp->n_head * hd, o_dim = (int64_t)hp->n_head * hdv;
    const float scale = t->a->scale;
    /* the cache type's own kernels: with F16 they round q and the probabilities to F16 and
     * accumulate in F32, which is what ggml's CPU attention does */
    const quant_traits *kt = quant_get(c->kv_type == MODEL_KV_F16 ? GGUF_T_F16 : GGUF_T_F32);
    const size_t elt = c->kv_elt;
    const layer_view lv = view(c, t->layer);
    /* per thread: scores (ATT_Q rows of n_ctx_pad), q (ATT_Q rows of head_dim) and
     * probabilities (ATT_Q rows of n_ctx_pad) in the cache type, as ctx.c sizes them */
    const int64_t N = c->n_ctx_pad;
    float *sc_all = c->scores + (int64_t)slot * c->scores_per_thread;
    unsigned char *qr_all = (unsigned char *)(sc_all + ATT_Q * N);
    unsigned char *pr_all = (unsigned char *)(sc_all + ATT_Q * N + ATT_Q * hd);
    const quant_from_float_fn conv = kv_from_float(c);
    const int32_t kvh = h / gqa, s = c->tok_seq[tok0];
    /* the reference attends over the used cells rounded up to 32 (the rest masked to zero
     * probability), and its dot kernels' float order depends on that length */
    const int32_t n_kv_pad = pad_kv(t->seq_end[s], lv.cells);
    const quant_vec_dot_fn kq_dot = kq_kernel(t, s), kqv_dot = kqv_kernel(t, s);
    /* where the batched order applies and the cache type has tile kernels (F16 with AVX2 and
     * AVX-512), a head's dots go through them as one product: same bits, a fraction of the
     * time */
    const quant_gemm_fn kq_gemm =
        kq_dot == c->tiled_dot && c->kv_type == MODEL_KV_F16 ? kt->gemm : NULL;
    const quant_gemm_fn kqv_gemm =
        kqv_dot == c->tiled_dot && c->kv_type == MODEL_KV_F16 ? kt->gemm : NULL;
    const unsigned char *kc = seq_k(c, &lv, s), *vc = seq_v(c, &lv, s);
    for (int32_t i = 0; i < nq; i++)
        conv(c->q + (tok0 + i) * q_dim + (int64_t)h * hd, qr_all + (size_t)i * hd * elt, hd);
    const int32_t n_kv_last = c->tok_pos[tok0 + nq - 1] + 1; /* the group's longest row */
    if (kq_gemm) /* rows past a token's own length are computed and then never read */
        kq_gemm(hd, n_kv_last, nq, kc + (size_t)kvh * hd * elt, (size_t)lv.k_dim * elt, qr_all,
                (size_t)hd * elt, sc_all, (size_t)N);
    /* an F16 cache's row dots in one call where the variant has them with the same bits */
    const bool kq_rows = kq_dot == kt->vec_dot && kt->dot_rows && c->kv_type == MODEL_KV_F16;
    const bool kqv_rows = kqv_dot == kt->vec_dot && kt->dot_rows && c->kv_type == MODEL_KV_F16;
    for (int32_t i = 0; i < nq; i++) {
        const int32_t n_kv = c->tok_pos[tok0 + i] + 1;
        float *sc = sc_all + i * N;
        if (kq_rows)
            kt->dot_rows(hd, n_kv, kc + (size_t)kvh * hd * elt, (size_t)lv.k_dim * elt,
                         qr_all + (size_t)i * hd * elt, sc);
        if (kq_gemm || kq_rows)
            for (int32_t p = 0; p < n_kv; p++) sc[p] *= scale;
        else
            for (int32_t p = 0; p < n_kv; p++) {
                kq_dot(hd, &sc[p], kc + ((size_t)p * (size_t)lv.k_dim + (size_t)kvh * hd) * elt,
                       qr_all);
                sc[p] *= scale;
            }
        model_softmax(sc, n_kv);
        for (int32_t p = n_kv; p < n_kv_pad; p++) sc[p] = 0.0f;
        conv(sc, pr_all + (size_t)i * N * elt, n_kv_pad);
    }
    float *out = c->att + tok0 * o_dim + (int64_t)h * hdv;
    if (kqv_gemm)
        kqv_gemm(n_kv_pad, hdv, nq, vc + (size_t)kvh * hdv * lv.cells * elt, (size_t)lv.cells * elt,
                 pr_all, (size_t)N * elt, out, (size_t)o_dim);
    else if (kqv_rows)
        kt->dot_rows(n_kv_pad, hdv, vc + (size_t)kvh * hdv * lv.cells * elt, (size_t)lv.cells * elt,
                     pr_all, out);
    else
        for (int32_t d = 0; d < hdv; d++)
            kqv_dot(n_kv_pad, &out[d], vc + ((size_t)kvh * hdv + (size_t)d) * lv.cells * elt,
                    pr_all);
}

/* The first lines of rows rows (stride apart) of bytes each, into cache. */
static void prefetch_rows(const unsigned char *p, size_t stride, int rows, size_t bytes) {
    for (int r = 0; r < rows; r++) {
        const unsigned char *row = p + (size_t)r * stride;
        for (size_t b = 0; b < bytes && b < 256; b += 64) __builtin_prefetch(row + b);
    }
}

/* A decode entry on the fast path: query heads [h0, h0 + nh) of one KV head against their keys
 * and values with dot_rows_n, each F16 row converted once for up to ATT_Q heads. q and the
 * probabilities are rounded to F16 where the reference rounds them; the sums are F32 in the
 * variant's order, the same for a head however its group is split (the batch does not change
 * a sequence's logits). */
static void attn_decode_kv(const attn_task *t, int32_t tok, int32_t h0, int32_t nh, int slot) {
    model_ctx *c = t->c;
    const model_hparams *hp = &c->m->hp;
    const int32_t hd = hp->head_dim, hdv = hp->head_dim_v;
    const int32_t kvh = h0 / (hp->n_head / hp->n_head_kv), s = c->tok_seq[tok];
    const int32_t n_kv = c->tok_pos[tok] + 1;
    const int64_t q_dim = (int64_t)hp->n_head * hd, o_dim = (int64_t)hp->n_head * hdv;
    const quant_traits *kt = quant_get(GGUF_T_F16);
    const layer_view lv = view(c, t->layer);
    const int64_t N = c->n_ctx_pad;
    /* the thread's scratch: ATT_Q rows of scores (F32 probabilities after the softmax), the
     * query rows in F32 and an F16 row for the roundings */
    float *sc = c->scores + (int64_t)slot * c->scores_per_thread;
    float *qf = sc + ATT_Q * N;
    unsigned char *h16 = (unsigned char *)(sc + ATT_Q * N + ATT_Q * hd);
    const unsigned char *kc = seq_k(c, &lv, s) + (size_t)kvh * hd * 2;
    const unsigned char *vc = seq_v(c, &lv, s) + (size_t)kvh * hdv * lv.cells * 2;
    /* the value rows come from memory too: their first lines are on their way while the keys
     * are read (dot_rows_n fetches ahead only within the rows of one call) */
    prefetch_rows(vc, (size_t)lv.cells * 2, hdv < 16 ? hdv : 16, (size_t)n_kv * 2);
    for (int32_t j0 = 0; j0 < nh; j0 += ATT_Q) {
        const int m = nh - j0 < ATT_Q ? (int)(nh - j0) : ATT_Q;
        for (int j = 0; j < m; j++) {
            model_f32_to_f16(c->q + tok * q_dim + (int64_t)(h0 + j0 + j) * hd, h16, hd);
            kt->to_float(h16, qf + (int64_t)j * hd, hd);
        }
        kt->dot_rows_n(hd, n_kv, kc, (size_t)lv.k_dim * 2, m, qf, (size_t)hd, sc, (size_t)N);
        for (int j = 0; j < m; j++) {
            float *p = sc + (int64_t)j * N;
            for (int32_t i = 0; i < n_kv; i++) p[i] *= t->a->scale;
            model_softmax(p, n_kv);
            model_f32_to_f16(p, h16, n_kv);
            kt->to_float(h16, p, n_kv);
        }
        kt->dot_rows_n(n_kv, hdv, vc, (size_t)lv.cells * 2, m, sc, (size_t)N,
                       c->att + tok * o_dim + (int64_t)(h0 + j0) * hdv, (size_t)hdv);
    }
}

/* The plain path: jobs (group, entry) group-major, a group being gh query heads of one KV head
 * (gh = 1, head-major, on the reference-order path). Consecutive jobs of a thread are the
 * consecutive entries of a group, so they read the same K and V rows (kept in cache), and the
 * causal triangle's uneven rows are shared evenly. */
static void attn_plain(const attn_task *t, int64_t lo, int64_t hi, int slot) {
    model_ctx *c = t->c;
    const int32_t n_tok = c->n_tok;
    for (int64_t job = lo; job < hi;) {
        const int32_t h0 = (int32_t)(job / n_tok) * t->gh, tok0 = (int32_t)(job % n_tok);
        const int32_t s = c->tok_seq[tok0];
        if (t->by_kv && t->seq_ntok[s] == 1) {
            attn_decode_kv(t, tok0, h0, t->gh, slot);
            job++;
            continue;
        }
        /* up to ATT_Q consecutive entries of this run at once where both products have tile
         * kernels: they then read each K and V row once for all of them (each entry's dots are
         * unchanged) */
        int32_t nq = 1;
        if (tile_kernels(t, s))
            while (nq < ATT_Q && job + nq < hi && tok0 + nq < t->run_end[tok0]) nq++;
        for (int32_t h = h0; h < h0 + t->gh; h++) attn_ref(t, h, tok0, nq, slot);
        job += nq;
    }
}

/* The general path, one (entry, head) at a time: positions [first, last] of the entry's
 * sequence, each in cell pos % cells; scores soft-capped, sinks in the denominator. */
static void attn_general(const attn_task *t, int64_t lo, int64_t hi, int slot) {
    model_ctx *c = t->c;
    const model_hparams *hp = &c->m->hp;
    const model_layer *L = &c->m->layers[t->layer];
    const model_attn_params *a = t->a;
    const int32_t hd = hp->head_dim, hdv = hp->head_dim_v, n_tok = c->n_tok;
    const int32_t gqa = hp->n_head / hp->n_head_kv;
    const int64_t q_dim = (int64_t)hp->n_head * hd, o_dim = (int64_t)hp->n_head * hdv;
    const quant_traits *kt = quant_get(c->kv_type == MODEL_KV_F16 ? GGUF_T_F16 : GGUF_T_F32);
    const size_t elt = c->kv_elt;
    const layer_view lv = view(c, t->layer);
    const int64_t N = c->n_ctx_pad;
    float *sc = c->scores + (int64_t)slot * c->scores_per_thread;
    unsigned char *qr = (unsigned char *)(sc + ATT_Q * N);
    unsigned char *pr = (unsigned char *)(sc + ATT_Q * N + ATT_Q * hd);
    float *prf = sc + N; /* probabilities by cell, in F32 (a second scores row) */
    const quant_from_float_fn conv = kv_from_float(c);
    for (int64_t job = lo; job < hi; job++) {
        const int32_t h = (int32_t)(job / n_tok), tok = (int32_t)(job % n_tok);
        const int32_t kvh = h / gqa, s = c->tok_seq[tok], pos = c->tok_pos[tok];
        /* an encoder sees its whole input; a window limits what a causal entry looks back on */
        const int32_t last = a->non_causal ? t->seq_end[s] - 1 : pos;
        const int32_t first =
            !a->non_causal && L->window > 0 && pos - L->window + 1 > 0 ? pos - L->window + 1 : 0;
        const int32_t n = last - first + 1;
        const unsigned char *kc = seq_k(c, &lv, s), *vc = seq_v(c, &lv, s);
        conv(c->q + tok * q_dim + (int64_t)h * hd, qr, hd);
        /* an encoder's input sits in cells [0, n) of its own: every dot in one call (the
         * fast path's order; a causal entry keeps the reference's dot per cell) */
        const bool rows = kt->dot_rows && a->non_causal && first + n <= lv.cells;
        if (rows)
            kt->dot_rows(hd, n, kc + ((size_t)first * (size_t)lv.k_dim + (size_t)kvh * hd) * elt,
                         (size_t)lv.k_dim * elt, qr, sc);
        float mx = -INFINITY;
        for (int32_t i = 0; i < n; i++) {
            const int32_t cell = (first + i) % lv.cells;
            if (!rows)
                kt->vec_dot(hd, &sc[i],
                            kc + ((size_t)cell * (size_t)lv.k_dim + (size_t)kvh * hd) * elt, qr);
            float v = sc[i] * a->scale;
            /* times the reciprocal, as the reference scales by it (a division may round
             * differently) */
            if (a->softcap > 0.0f) v = a->softcap * tanhf(v * (1.0f / a->softcap));
            sc[i] = v;
            if (v > mx) mx = v;
        }
        const float sink = a->sinks ? a->sinks[h] : -INFINITY;
        if (sink > mx) mx = sink;
        double sum = a->sinks ? exp((double)sink - mx) : 0.0;
        for (int32_t i = 0; i < n; i++) {
            sc[i] = expf(sc[i] - mx);
            sum += sc[i];
        }
        const float inv = (float)(1.0 / sum);
        /* probabilities by cell over the cells in use, so that each output element is one dot
         * along a transposed V row */
        const int32_t used = t->seq_end[s] < lv.cells ? t->seq_end[s] : lv.cells;
        memset(prf, 0, sizeof *prf * (size_t)used);
        for (int32_t i = 0; i < n; i++) prf[(first + i) % lv.cells] = sc[i] * inv;
        conv(prf, pr, used);
        float *out = c->att + tok * o_dim + (int64_t)h * hdv;
        if (rows)
            kt->dot_rows(used, hdv, vc + (size_t)kvh * hdv * lv.cells * elt, lv.cells * elt, pr,
                         out);
        else
            for (int32_t d = 0; d < hdv; d++)
                kt->vec_dot(used, &out[d], vc + ((size_t)kvh * hdv + (size_t)d) * lv.cells * elt,
                            pr);
    }
}

static void attn_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    const attn_task *t = ctx;
    if (t->general)
        attn_general(t, lo, hi, slot);
    else
        attn_plain(t, lo, hi, slot);
}

typedef struct store_task {
    model_ctx *c;
    int32_t il;
} store_task;

/* The step's K and V rows into their cells (position p of a ring layer in cell p % cells); each
 * entry writes cells of its own, so the entries are split over the pool. */
static void store_rows(void *ctx, int64_t lo, int64_t hi) {
    const store_task *st = ctx;
    model_ctx *c = st->c;
    const layer_view lv = view(c, st->il);
    const size_t elt = c->kv_elt;
    const quant_from_float_fn conv = kv_from_float(c);
    enum { RUN = 64 };
    unsigned char buf[RUN * 4];
    for (int32_t t = (int32_t)lo; t < (int32_t)hi; t++) {
        const int32_t s = c->tok_seq[t], cell = c->tok_pos[t] % lv.cells;
        unsigned char *kc = (unsigned char *)seq_k(c, &lv, s);
        conv(c->k + t * lv.k_dim, kc + (size_t)cell * (size_t)lv.k_dim * elt, lv.k_dim);
        /* V is transposed: each element lands in its own cache row, so convert a run of the
         * token's row at a time and scatter the converted elements */
        unsigned char *vc = (unsigned char *)seq_v(c, &lv, s);
        for (int64_t j0 = 0; j0 < lv.v_dim; j0 += RUN) {
            const int64_t nj = lv.v_dim - j0 < RUN ? lv.v_dim - j0 : RUN;
            conv(&c->v[t * lv.v_dim + j0], buf, nj);
            /* typed stores: a memcpy of a variable 2 or 4 bytes is a call per element (an
             * encoder batch of 2,048 tokens stores 1.5M elements per layer) */
            if (elt == 4)
                for (int64_t j = 0; j < nj; j++)
                    memcpy(vc + ((size_t)(j0 + j) * lv.cells + cell) * 4, buf + j * 4, 4);
            else
                for (int64_t j = 0; j < nj; j++)
                    memcpy(vc + ((size_t)(j0 + j) * lv.cells + cell) * 2, buf + j * 2, 2);
        }
    }
}

bool model_attn_by_kv(const model *m) {
    /* only with a SIMD dot_rows_n: the scalar reference's (a variant without one, as NEON
     * today) would be slower than that variant's per-head dots */
    const quant_dot_rows_n_fn rows_n = quant_get(GGUF_T_F16)->dot_rows_n;
    return m->fast_order && rows_n && rows_n != quant_get_ref(GGUF_T_F16)->dot_rows_n;
}

void model_op_attention(model_ctx *c, int32_t il, const model_attn_params *a) {
    const model_hparams *hp = &c->m->hp;
    const model_layer *L = &c->m->layers[il];
    /* a layer's cache lives on one side: its attention runs there */
    if (model_dev_layer(c, il) && c->dev->ops->attention(c->dev_ctx, c, il, a)) return;
    model_dev_host(c);
    store_task st = {c, il};
    model_run_rows(c, c->n_tok, (int64_t)view(c, il).k_dim * 2, store_rows, &st);
    /* runs of entries of one sequence, and each sequence's length after the step */
    int32_t *run_end = c->run_end, *seq_end = c->seq_end, *seq_ntok = c->seq_ntok;
    for (int32_t s = 0; s < c->n_seq; s++) seq_end[s] = seq_ntok[s] = 0;
    for (int32_t t = c->n_tok - 1; t >= 0; t--) {
        const int32_t s = c->tok_seq[t];
        run_end[t] = t + 1 < c->n_tok && c->tok_seq[t + 1] == s ? run_end[t + 1] : t + 1;
        if (c->tok_pos[t] + 1 > seq_end[s]) seq_end[s] = c->tok_pos[t] + 1;
        seq_ntok[s]++;
    }
    attn_task at = {.c = c,
                    .layer = il,
                    .a = a,
                    .general = L->window > 0 || a->non_causal || a->softcap > 0.0f || a->sinks,
                    .run_end = run_end,
                    .seq_end = seq_end,
                    .seq_ntok = seq_ntok,
                    .gh = 1};
    int64_t longest = 0;
    for (int32_t s = 0; s < c->n_seq; s++)
        if (seq_end[s] > longest) longest = seq_end[s];
    const int64_t work = (int64_t)c->n_tok * hp->n_head * longest * hp->head_dim;
    const bool parallel = c->pool && c->n_threads > 1 && work >= ATTN_PARALLEL_MIN;
    /* the fast path takes a KV head's query heads together (the most that still gives every
     * thread two jobs): a decode entry's rows are converted once for all of them, and a prompt
     * run's per-head products find the rows the group's previous head read in cache */
    const int32_t gqa = hp->n_head / hp->n_head_kv;
    at.by_kv = !at.general && c->kv_type == MODEL_KV_F16 && model_attn_by_kv(c->m);
    if (at.by_kv) {
        const int64_t want = parallel ? 2 * (int64_t)c->n_threads : 1;
        for (int32_t g = gqa; g > 1; g--)
            if (gqa % g == 0 && (int64_t)c->n_tok * (hp->n_head / g) >= want) {
                at.gh = g;
                break;
            }
    }
    const int64_t n_jobs = (int64_t)c->n_tok * (hp->n_head / at.gh);
    if (parallel)
        core_pool_run_items(c->pool, attn_items, &at, n_jobs);
    else
        attn_items(&at, 0, n_jobs, 0);
}
