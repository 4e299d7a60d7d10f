/*
 * lora_impl.h — private to src/lora: the adapter object and the hand-over between the format
 * readers (GGUF, PEFT) and the shared validation that turns their tensors into pairs.
 *
 * A reader only finds tensors and names them after base weights ("halves"); every check
 * against the base (existence, shapes, rank, types) and the building of lora_pair happen once,
 * in adapter.c, so both formats are held to the same rules and produce the same errors.
 */
#ifndef SHIMMY_LORA_IMPL_H
#define SHIMMY_LORA_IMPL_H

#include "lora/lora.h"

#include <stdatomic.h>

/* Longest base tensor name we accept (GGUF names are at most 63 bytes in practice). */
#define LORA_NAME_MAX 128

/* One A or B tensor as a reader found it, named after the base weight it belongs to. Readers
 * only append halves; adapter.c sorts them by weight and pairs them (O(n log n) for any file). */
typedef struct lora_half {
    char weight[LORA_NAME_MAX]; /* base tensor name */
    bool is_b;
    const char *src; /* the tensor's name in the adapter file (borrowed, src_len bytes) */
    size_t src_len;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[4];    /* GGUF order: ne[0] is the row length */
    const void *data; /* borrowed from the reader's mapping */
    uint64_t nbytes;
    /* B only: 0 = rows as stored; else the head count whose rows must be reordered into GGUF's
     * rope layout (PEFT q/k of llama: n_head for q, n_head_kv for k). */
    int64_t perm_heads;
    int64_t expect_rank; /* PEFT: the rank the config promises (0 = not checked) */
} lora_half;

typedef struct lora_halves {
    lora_half *v;
    size_t n, cap;
} lora_halves;

/* Appends a copy of *h; errors (NOMEM) name the adapter. */
shimmy_status lora_halves_push(lora_halves *hs, const lora_half *h, const char *adapter,
                               shimmy_error *err);

struct lora_adapter {
    atomic_int refs;
    char *path;
    char arch[64];
    lora_format format;
    float alpha;
    bool rslora;
    gguf_file *gguf;              /* owned mapping of a GGUF adapter, or NULL */
    lora_st *st;                  /* owned mapping of a PEFT adapter, or NULL */
    void *owned;                  /* permuted copies of q/k lora_B rows (one block), or NULL */
    float *bt_owned;              /* every pair's lora_pair.bt (one block), or NULL */
    lora_pair *pairs;             /* sorted by weight name */
    char (*names)[LORA_NAME_MAX]; /* pairs[i].weight points into names[i] */
    size_t n_pairs;
};

/* The readers: fill ad->arch/alpha/rslora and the mapping they own, and add candidates. */
shimmy_status lora_gguf_read(lora_adapter *ad, const gguf_file *base, lora_halves *out,
                             shimmy_error *err);
/* config_path: adapter_config.json; st_path: the safetensors file beside it. */
shimmy_status lora_peft_read(lora_adapter *ad, const char *config_path, const char *st_path,
                             const gguf_file *base, lora_halves *out, shimmy_error *err);

/* general.architecture of a base, copied into buf; false when absent or too long. */
bool lora_base_arch(const gguf_file *base, char *buf, size_t cap);

/* ---- the axpy form of B·(A·x) for F32 B (apply.c) ----
 * y[o] += s · Σ_r t_r·B[o,r] computed for 8 outputs at once from B transposed: acc = +0, then
 * acc = acc + t_r·Bt[r,o] for r = 0..rank-1 (each product rounded, no FMA), then y += s·acc.
 * This is the order of the active F32 vec_dot for 8 <= rank < 64, rank % 8 == 0 on x86 (the
 * engine's tail: rounded products of whole groups of 8 added in order, starting from +0), so
 * lora_pair_axpy_ok only admits those pairs and that kernel set. */
bool lora_pair_axpy_ok(const lora_pair *p);
/* y[lo..hi) += scale · (Bt^T t)[lo..hi) for one token; bt is (rank, n_out). The scalar
 * reference and the dispatching version (AVX where the CPU has it); they give the same bits. */
void lora_axpy_ref(const float *bt, int64_t rank, int64_t n_out, const float *t, float scale,
                   float *y, int64_t lo, int64_t hi);
void lora_axpy(const float *bt, int64_t rank, int64_t n_out, const float *t, float scale, float *y,
               int64_t lo, int64_t hi);

#endif
