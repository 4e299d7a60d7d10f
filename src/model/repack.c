/* model_repack: the weight matrices this CPU has a faster layout for, copied once at load into
 * that layout (quant.h, quant_pack) in memory the model owns.
 *
 * Why at load and not in the file's pages: a decode step reads every weight once, so the
 * layout must be the one the kernel wants for the whole matrix; converting per product would
 * cost more than the product. Why the file pages are dropped right after each matrix: the copy
 * is as large as the original (Q4_K +2.8%, Q6_K the same), and keeping both would double the
 * resident memory; what a later reader of w->data needs (a device upload, the tied embedding's
 * rows) comes back from the file. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct repack_task {
    model *m;
    model_weight **w;
    size_t *off; /* byte offset of each weight's copy in m->pack_mem */
} repack_task;

static void pack_items(void *ctx, int64_t lo, int64_t hi, int slot) {
    (void)slot;
    repack_task *t = ctx;
    for (int64_t i = lo; i < hi; i++) {
        model_weight *w = t->w[i];
        const quant_pack *pk = w->qt->pack;
        unsigned char *dst = (unsigned char *)t->m->pack_mem + t->off[i];
        const size_t group = (size_t)(w->n_in / w->qt->block_size) * pk->block_bytes;
        for (int64_t r = 0; r < w->n_out; r += QUANT_PACK_ROWS) {
            const int rows = (int)(w->n_out - r < QUANT_PACK_ROWS ? w->n_out - r : QUANT_PACK_ROWS);
            pk->pack((const unsigned char *)w->data + (size_t)r * w->row_bytes, w->row_bytes, rows,
                     w->n_in, dst + (size_t)(r / QUANT_PACK_ROWS) * group);
        }
        gguf_release(t->m->file, w->data, (size_t)w->n_out * w->row_bytes);
    }
}

/* Every weight matrix of the model but the token embedding (its rows are gathered, not
 * multiplied) and the positional/type embeddings; NULL-data entries are skipped by the caller. */
static int list_weights(model *m, model_weight **out) {
    int n = 0;
#define ADD(x) (out ? (void)(out[n] = &(x)) : (void)0, n++)
    ADD(m->output);
    ADD(m->cls);
    ADD(m->cls_out);
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        model_layer *L = &m->layers[il];
        ADD(L->wq), ADD(L->wk), ADD(L->wv), ADD(L->wo), ADD(L->wqkv);
        ADD(L->w_gate), ADD(L->w_up), ADD(L->w_down);
        ADD(L->ssm_z), ADD(L->ssm_alpha), ADD(L->ssm_beta), ADD(L->ssm_out);
        ADD(L->ffn_gate_inp), ADD(L->ffn_gate_shexp), ADD(L->ffn_up_shexp), ADD(L->ffn_down_shexp);
    }
#undef ADD
    return n;
}

static bool wanted(const model_weight *w, bool (*held)(void *, const void *), void *ud) {
    return w->data && w->qt && w->qt->pack && !w->pack && w->expert_rows == 0 &&
           w->n_in % w->qt->pack->in_multiple == 0 && !(held && held(ud, w->data));
}

/* ---- experts: their layout per expert, on first use ----
 * A mixture of experts routes each token to a few of many experts, and a model much larger than
 * the memory a user has is the point of the format: packing every expert at load would make all
 * of them resident. Each expert is packed when a step first routes a token to it, and its file
 * pages released then. Every type with a layout: MXFP4's row kernel (a horizontal fold and a
 * float step per row and block) generated at about half llama.cpp's speed, and on AVX2 the
 * K-quant row kernels ran a Q4_K_M mixture's prompts at 0.6x (one row dot per (row, token)
 * pair). The K-quant layouts move a K-quant MoE's logits by float rounding (the reference rule
 * holds, test_moe compares tokens alone); the reference-order ISA packs nothing. The layout must
 * read the rows' own activation type (the gathered rows are quantized once for every expert) and an
 * expert must be whole groups. */
static bool expert_wanted(const model_weight *w, bool (*held)(void *, const void *), void *ud) {
    const quant_pack *pk = w->qt ? w->qt->pack : NULL;
    return w->data && pk && w->expert_rows > 0 && !w->xpack &&
           w->expert_rows % QUANT_PACK_ROWS == 0 && w->n_in % pk->in_multiple == 0 &&
           pk->act_type == w->qt->vec_dot_type && !pk->act_from_float &&
           !(held && held(ud, w->data));
}

#define EXPERT_WEIGHTS(L)                                                                          \
    { &(L)->ffn_gate_exps, &(L)->ffn_up_exps, &(L)->ffn_down_exps }

static shimmy_status expert_tables(model *m, bool (*held)(void *, const void *), void *ud,
                                   shimmy_error *err) {
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        model_weight *ws[] = EXPERT_WEIGHTS(&m->layers[il]);
        for (int k = 0; k < 3; k++) {
            model_weight *w = ws[k];
            if (!expert_wanted(w, held, ud)) continue;
            const int64_t n_expert = w->n_out / w->expert_rows;
            w->xpack = calloc((size_t)n_expert, sizeof *w->xpack);
            if (!w->xpack)
                return core_error(err, SHIMMY_ERR_NOMEM, "repack",
                                  "no memory for the expert table of %s", w->name);
            for (int64_t e = 0; e < n_expert; e++) atomic_init(&w->xpack[e], NULL);
            w->pk = w->qt->pack;
            m->n_xpacked++;
            const size_t len = strlen(m->pack_layouts);
            if (!strstr(m->pack_layouts, w->pk->name) &&
                len + strlen(w->pk->name) + 3 < sizeof m->pack_layouts)
                snprintf(m->pack_layouts + len, sizeof m->pack_layouts - len, "%s%s",
                         len ? ", " : "", w->pk->name);
        }
    }
    return SHIMMY_OK;
}

const void *model_expert_pack(const model *m, const model_weight *w, int32_t e) {
    if (!w->xpack) return NULL;
    const void *p = atomic_load_explicit(&w->xpack[e], memory_order_acquire);
    if (p) return p;
    const quant_pack *pk = w->pk;
    const int64_t R = w->expert_rows;
    const size_t group = (size_t)(w->n_in / w->qt->block_size) * pk->block_bytes;
    unsigned char *dst = core_aligned_alloc(64, (size_t)(R / QUANT_PACK_ROWS) * group);
    if (!dst) return NULL;
    const unsigned char *src =
        (const unsigned char *)w->data + (size_t)e * (size_t)R * w->row_bytes;
    for (int64_t r = 0; r < R; r += QUANT_PACK_ROWS)
        pk->pack(src + (size_t)r * w->row_bytes, w->row_bytes, QUANT_PACK_ROWS, w->n_in,
                 dst + (size_t)(r / QUANT_PACK_ROWS) * group);
    const void *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&w->xpack[e], &none, dst, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        core_aligned_free(dst); /* another context packed it first */
        return none;
    }
    /* a reader that has not seen the copy yet faults the private mapping's pages back in */
    gguf_release(m->file, src, (size_t)R * w->row_bytes);
    return dst;
}

void model_expert_packs_free(model *m) {
    if (!m || !m->layers) return;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        model_weight *ws[] = EXPERT_WEIGHTS(&m->layers[il]);
        for (int k = 0; k < 3; k++) {
            if (!ws[k]->xpack) continue;
            for (int64_t e = 0; e < ws[k]->n_out / ws[k]->expert_rows; e++)
                core_aligned_free((void *)atomic_load(&ws[k]->xpack[e]));
            free(ws[k]->xpack);
            ws[k]->xpack = NULL;
        }
    }
}

shimmy_status model_repack(model *m, bool (*held)(void *ud, const void *data), void *ud,
                           int n_threads, shimmy_error *err) {
    const char *env = getenv("SHIMMY_REPACK"), *isa = getenv("SHIMMY_ISA");
    /* SHIMMY_ISA=avx2 (or scalar) asks for the reference's order: row kernels only, though the
     * AVX2 variant has layouts (F16, MXFP4, Q4_K, Q6_K) for the default path */
    const bool ref_order = isa && (strcmp(isa, "avx2") == 0 || strcmp(isa, "scalar") == 0);
    if (!m || m->pack_mem) return SHIMMY_OK;
    if (ref_order || (env && strcmp(env, "0") == 0)) return SHIMMY_OK;
    m->fast_order = true;
    const int n_all = list_weights(m, NULL);
    model_weight **all = malloc(sizeof *all * (size_t)n_all);
    size_t *off = malloc(sizeof *off * (size_t)n_all);
    if (!all || !off) {
        free(all);
        free(off);
        return core_error(err, SHIMMY_ERR_NOMEM, "repack", "no memory to list the weights");
    }
    list_weights(m, all);
    int n = 0;
    size_t bytes = 0;
    for (int i = 0; i < n_all; i++) {
        if (!wanted(all[i], held, ud)) continue;
        all[n] = all[i];
        off[n] = bytes;
        bytes += (quant_pack_bytes(all[i]->qt->pack, all[i]->qt->block_size, all[i]->n_in,
                                   all[i]->n_out) +
                  63) &
                 ~(size_t)63;
        n++;
    }
    shimmy_status st = SHIMMY_OK;
    if (n > 0) {
        m->pack_mem = core_aligned_alloc(64, bytes);
        if (!m->pack_mem) {
            st = core_error(err, SHIMMY_ERR_NOMEM, "repack",
                            "no memory for %zu MiB of repacked weights", bytes >> 20);
        } else {
            repack_task t = {.m = m, .w = all, .off = off};
            core_pool *pool = NULL;
            shimmy_error perr = {0};
            if (n > 1 && n_threads != 1 && core_pool_new(n_threads, &pool, &perr) == SHIMMY_OK &&
                core_pool_size(pool) > 1)
                core_pool_run_items(pool, pack_items, &t, n);
            else
                pack_items(&t, 0, n, 0);
            core_pool_free(pool);
            m->pack_bytes = bytes;
            m->n_packed = n;
            size_t len = 0;
            m->pack_layouts[0] = '\0';
            for (int i = 0; i < n; i++) {
                model_weight *w = all[i];
                w->pack = (const unsigned char *)m->pack_mem + off[i];
                w->pk = w->qt->pack;
                m->packed_file_bytes += (uint64_t)w->n_out * w->row_bytes;
                /* the layout's activation rows share the context's scratch (model_ctx_new
                 * sizes it from this, so repacking comes before any context) */
                uint64_t act = 0;
                if (gguf_row_bytes(w->pk->act_type, w->n_in, &act) && act > m->max_act_row_bytes)
                    m->max_act_row_bytes = (size_t)act;
                if (!strstr(m->pack_layouts, w->pk->name) &&
                    len + strlen(w->pk->name) + 3 < sizeof m->pack_layouts)
                    len += (size_t)snprintf(m->pack_layouts + len, sizeof m->pack_layouts - len,
                                            "%s%s", len ? ", " : "", w->pk->name);
            }
        }
    }
    free(all);
    free(off);
    return st ? st : expert_tables(m, held, ud, err);
}
