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

shimmy_status model_repack(model *m, bool (*held)(void *ud, const void *data), void *ud,
                           int n_threads, shimmy_error *err) {
    const char *env = getenv("SHIMMY_REPACK");
    if (!m || m->pack_mem || (env && strcmp(env, "0") == 0)) return SHIMMY_OK;
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
    return st;
}
