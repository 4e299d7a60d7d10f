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
    gguf_file *gguf; /* owned mapping of a GGUF adapter, or NULL */
    lora_st *st;     /* owned mapping of a PEFT adapter, or NULL */
    void *owned;     /* permuted copies of q/k lora_B rows (one block), or NULL */
    size_t owned_bytes;
    void *bp_owned;               /* every pair's lora_pair.bp (one block), or NULL */
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

/* ---- B in panels (kernels.c) ----
 * For a rank below 64, B's vec_dot is its scalar tail; a panel kernel runs that tail for 8
 * outputs per register with the same float steps: F32 adds rounded products in order onto +0
 * (no FMA: rank % 8 == 0 keeps the tail FMA-free), F16 adds exact float products in order onto
 * a double +0, rounded to float at the end; then y += scale·d. */
#define LORA_PANEL 8

/* The pairs and kernel sets where panels give the bits of B's vec_dot. */
bool lora_pair_panel_ok(const lora_pair *p);
/* Bytes of a pair's panels, and building them from p->b into out (that many bytes). */
size_t lora_panel_bytes(const lora_pair *p);
void lora_panel_build(const lora_pair *p, void *out);
/* y[0 .. 8·n_panels) += scale · (B t) over n_panels consecutive panels bp (rank·8 elements each);
 * t is A·x as B's kernel reads it (floats, or halves). The scalar references and the
 * dispatching versions (AVX/F16C where usable) give the same bits. */
void lora_panel_f32_ref(const float *bp, int64_t rank, const float *t, float scale, float *y,
                        int64_t n_panels);
void lora_panel_f32(const float *bp, int64_t rank, const float *t, float scale, float *y,
                    int64_t n_panels);
void lora_panel_f16_ref(const uint16_t *bp, int64_t rank, const uint16_t *t, float scale, float *y,
                        int64_t n_panels);
void lora_panel_f16(const uint16_t *bp, int64_t rank, const uint16_t *t, float scale, float *y,
                    int64_t n_panels);
/* The F16 kernels one by one, for tests: 0 the reference, 1 AVX2, 2 AVX-512; NULL when this CPU
 * (or SHIMMY_ISA) cannot run it. lora_panel_f16 takes the highest. */
typedef void (*lora_panel_f16_fn)(const uint16_t *bp, int64_t rank, const uint16_t *t, float scale,
                                  float *y, int64_t n_panels);
lora_panel_f16_fn lora_panel_f16_variant(int i);
/* lora_panel_f16 for n_tok tokens: t rows ts_row bytes apart, y rows y_stride floats apart. The
 * AVX-512 version widens B once per block of panels for all tokens (prompt processing); the
 * reference is the loop over tokens. Same bits. */
void lora_panel_f16_tokens_ref(const uint16_t *bp, int64_t rank, const void *ts, size_t ts_row,
                               int n_tok, float scale, float *y, int64_t y_stride,
                               int64_t n_panels);
void lora_panel_f16_tokens(const uint16_t *bp, int64_t rank, const void *ts, size_t ts_row,
                           int n_tok, float scale, float *y, int64_t y_stride, int64_t n_panels);
#endif
