/*
 * lora — LoRA adapters: loaded from GGUF or Hugging Face PEFT (safetensors), validated against a
 * base model, applied as a separate low-rank path next to each base weight product.
 *
 * The engine computes, for every weight W that has a pair in an attached adapter k,
 *     y = W·x + Σ_k s_k · B_k(A_k x)          then adds the bias (if any) afterwards,
 * with s_k = user_scale_k · alpha_k / r_k (alpha_k == 0 or absent: s_k = user_scale_k). The
 * adapter is never merged into W: the low-rank products run with the adapter's own tensor type
 * (x converted to that type's vec_dot_type exactly as for a base weight of that type), through
 * quant's vec_dot kernels and the caller's core_pool. This reproduces llama.cpp's numerics.
 *
 * Shapes use GGUF order (ne0 = row length). For a base weight W [n_in, n_out]:
 *     A: [n_in, rank]  (rank rows of n_in)     B: [rank, n_out]  (n_out rows of rank)
 * PEFT's lora_A.weight (r, n_in) and lora_B.weight (n_out, r) have that memory layout already;
 * for the llama architecture the rows of q/k lora_B are permuted like the base conversion does.
 *
 * Invariants: an adapter is validated completely before lora_adapter_open returns it; on any
 * error nothing is returned and nothing leaks. Every pair's W exists in the base it was opened
 * against, with W.ne0 == n_in and W.ne1 == n_out. An adapter is immutable after open.
 *
 * Ownership: lora_adapter_open returns one reference; lora_adapter_ref adds one,
 * lora_adapter_unref drops one and frees the adapter (and its mapping) with the last. Every
 * pointer an adapter hands out (pairs, names, tensor data) is borrowed until its last unref.
 * A lora_set holds one reference per adapter it lists (lora_set_free drops them). A lora_st
 * (safetensors file) is opened/closed by its user; its pointers are borrowed until lora_st_close.
 *
 * Thread-safety: adapters may be shared by any number of threads and sets (atomic refcount,
 * read-only data). lora_pair_apply writes only y and the scratch it is given. A lora_set is used
 * by one thread at a time (one request or session).
 */
#ifndef SHIMMY_LORA_H
#define SHIMMY_LORA_H

#include "core/core.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- safetensors (read-only, memory-mapped, untrusted input) ---- */

#define LORA_ST_MAX_DIMS 8

typedef struct lora_st_tensor {
    const char *name; /* borrowed until lora_st_close */
    uint32_t type;    /* GGUF_T_F32, GGUF_T_F16 or GGUF_T_BF16 */
    int n_dims;
    int64_t shape[LORA_ST_MAX_DIMS]; /* row-major: shape[n_dims-1] is the row length */
    uint64_t nbytes;
    const void *data; /* into the mapping, any alignment; borrowed */
} lora_st_tensor;

typedef struct lora_st lora_st;

/* Maps and validates a .safetensors file: header length against the file size, JSON header
 * (no duplicate names), dtype (F32, F16, BF16 only), shapes, and data_offsets that tile the data
 * section exactly (ordered, no gap, no overlap, size = elements × dtype size). */
shimmy_status lora_st_open(const char *path, lora_st **out, shimmy_error *err);
/* Same over a caller's buffer, which must outlive the lora_st; `name` labels errors. */
shimmy_status lora_st_open_memory(const void *data, size_t size, const char *name, lora_st **out,
                                  shimmy_error *err);
void lora_st_close(lora_st *st);
size_t lora_st_n_tensors(const lora_st *st);
/* Tensors sorted by name; i < lora_st_n_tensors. */
const lora_st_tensor *lora_st_tensor_at(const lora_st *st, size_t i);
/* The tensor of that name or NULL (binary search). */
const lora_st_tensor *lora_st_find(const lora_st *st, const char *name);
/* A string of the optional __metadata__ object, or NULL. */
const char *lora_st_metadata(const lora_st *st, const char *key);

/* ---- adapters ---- */

typedef enum lora_format { LORA_FORMAT_GGUF, LORA_FORMAT_PEFT } lora_format;

/* One low-rank pair for one base weight. Read-only; borrowed from its adapter. */
typedef struct lora_pair {
    const char *weight;          /* base GGUF tensor name, e.g. "blk.0.attn_q.weight" */
    const void *a;               /* (rank, n_in) rows of type_a (pairs with panels: a copy) */
    const void *b;               /* (n_out, rank) rows of type_b */
    uint32_t type_a, type_b;     /* GGUF_T_F32, GGUF_T_F16, GGUF_T_BF16 or GGUF_T_Q8_0 */
    const quant_traits *qa, *qb; /* kernels of A and B */
    const quant_traits *xa, *xb; /* their vec_dot types: how x and A·x are converted */
    int64_t n_in, n_out, rank;
    size_t a_row_bytes, b_row_bytes;
    /* B in panels of 8 outputs, adapter-owned, built at load where they reproduce B's vec_dot
     * bit for bit (F32 or F16, rank < 64; lora_pair_panel_ok): panel k holds B[8k + o, r] at
     * [k][r][o], elements of type_b, for the first n_out & ~7 outputs. NULL = one vec_dot per
     * output. */
    const void *bp;
    float alpha;   /* 0 = scale is the user scale alone */
    float divisor; /* rank, or sqrt(rank) for rsLoRA */
} lora_pair;

typedef struct lora_adapter lora_adapter;

/* Opens `path` and validates it against `base` (borrowed only during the call):
 *  - a GGUF adapter (general.type "adapter", adapter.type "lora", adapter.lora.alpha, tensors
 *    "<weight>.lora_a"/".lora_b"; F32, F16, BF16, Q8_0);
 *  - a PEFT folder (adapter_config.json + adapter_model.safetensors);
 *  - a .safetensors file with its adapter_config.json beside it.
 * Errors (SHIMMY_ERR_ADAPTER, _UNSUPPORTED, _FORMAT, _INVALID_JSON, _NOT_FOUND, _IO, _NOMEM)
 * name the adapter, the tensor and the problem; on error *out is NULL and nothing is held. */
shimmy_status lora_adapter_open(const char *path, const gguf_file *base, lora_adapter **out,
                                shimmy_error *err);
/* Re-checks an open adapter against another base (architecture and every pair's shape), for a
 * caller that attaches one adapter to several models. */
shimmy_status lora_adapter_validate(const lora_adapter *a, const gguf_file *base,
                                    shimmy_error *err);
lora_adapter *lora_adapter_ref(lora_adapter *a);
void lora_adapter_unref(lora_adapter *a); /* NULL is a no-op */

const char *lora_adapter_path(const lora_adapter *a);
const char *lora_adapter_arch(const lora_adapter *a); /* the base architecture it was opened for */
lora_format lora_adapter_format(const lora_adapter *a);
float lora_adapter_alpha(const lora_adapter *a); /* 0 when absent */
size_t lora_adapter_n_pairs(const lora_adapter *a);
/* Pairs sorted by weight name; i < lora_adapter_n_pairs. */
const lora_pair *lora_adapter_pair_at(const lora_adapter *a, size_t i);
/* The pair for a base weight, or NULL when the adapter does not touch it (binary search). */
const lora_pair *lora_adapter_find(const lora_adapter *a, const char *weight_name);

/* s = user_scale · alpha / divisor, or user_scale when alpha is 0 (llama.cpp's rule). */
float lora_pair_scale(const lora_pair *p, float user_scale);

/* Floats of scratch lora_pair_apply needs for n_tokens rows: n_tokens·rank for A·x plus room
 * for x and A·x converted to the vec_dot types (F16/BF16/Q8_0), each part 64-byte aligned when
 * scratch is. */
size_t lora_pair_scratch_floats(const lora_pair *p, int n_tokens);

/* y (n_tokens, n_out) += scale · B(A x) for x (n_tokens, n_in), both row-major; x is the
 * unquantized F32 input of the base product. Call it after y = W·x and BEFORE adding W's bias.
 * Not from inside a task of the same pool (core_pool_run does not nest). Converts x to A's
 * vec_dot_type and A·x to B's (F16/BF16 rounding, Q8_0 quantization as for any weight of that type;
 * F32: nothing rounded), splitting rows over `pool` (NULL = the calling thread). Allocates nothing.
 * scratch: at least lora_pair_scratch_floats(p, n_tokens) floats, 64-byte aligned for best speed.
 */
void lora_pair_apply(const lora_pair *p, float scale, int n_tokens, const float *x, float *y,
                     float *scratch, core_pool *pool);

/* ---- the adapters of a request or session ---- */

typedef struct lora_set lora_set;

shimmy_status lora_set_new(lora_set **out, shimmy_error *err);
void lora_set_free(lora_set *s); /* drops its references; NULL is a no-op */
/* Attaches an adapter with a user scale (takes a new reference). Attaching an adapter already in
 * the set replaces its scale, as llama.cpp does. */
shimmy_status lora_set_add(lora_set *s, lora_adapter *a, float user_scale, shimmy_error *err);
size_t lora_set_count(const lora_set *s);
lora_adapter *lora_set_adapter(const lora_set *s, size_t i); /* borrowed */
float lora_set_user_scale(const lora_set *s, size_t i);
/* Scratch for lora_set_run over LORA_GROUP_MAX weights, and for lora_set_apply and
 * lora_pair_apply of any pair of the set (0 for an empty set). */
size_t lora_set_scratch_floats(const lora_set *s, int n_tokens);
/* Adds every attached adapter's term for base weight `weight_name` to y, in attach order
 * (each with its lora_pair_scale); does nothing for a weight no adapter touches. Same contract
 * as lora_pair_apply; scratch: lora_set_scratch_floats(s, n_tokens) floats. */
void lora_set_apply(const lora_set *s, const char *weight_name, int n_tokens, const float *x,
                    float *y, float *scratch, core_pool *pool);

/* Products per lora_set_run call that lora_set_scratch_floats provides for (q,k,v,… sharing x);
 * a call with more runs in further pool runs. */
#define LORA_GROUP_MAX 4

/* The base products of a lora_set_run. The outputs of its n_w weights, one weight after the
 * other, are split over the threads of the run in units of unit_rows rows: a thread's units are
 * core_split_range(ceil(Σ n_out / unit_rows), ith, nth), and units(ctx, lo, hi) must write
 * y[k] = x·W_kᵀ for exactly the rows of units [lo, hi). */
typedef struct lora_base {
    void (*units)(void *ctx, int64_t lo, int64_t hi);
    void *ctx;
    const int64_t *n_out; /* [n_w]: outputs of each weight */
    int64_t unit_rows;
} lora_base;

/* The base products of a group of weights that share the input x, and the adapters' terms of
 * all of them, in one pool run: every thread computes its share of the rows of A·x, then the
 * base rows of its units, then, once all of A·x is there, the terms' outputs in those same rows
 * (so no thread waits for another's base rows, and the A·x shares are long done by then). x is
 * converted to each vec_dot type once. The result is that of base followed by lora_set_apply
 * for each weight, bit for bit, for any thread count. base NULL = only the terms (as
 * lora_set_apply). pool NULL = everything on the calling thread. Weight names without a pair are
 * skipped. Not from inside a task of the same pool. scratch: lora_set_scratch_floats(s, n_tokens)
 * floats. */
void lora_set_run(const lora_set *s, int n_w, const char *const *weight_names, int n_tokens,
                  const float *x, float *const *y, float *scratch, core_pool *pool,
                  const lora_base *base);

#endif
