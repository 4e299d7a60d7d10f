/* gpu_vk_ctx.h — a model on a device (gpu_vk_model.c) and a context's mirror there
 * (gpu_vk_ctx.c, whose ops are in gpu_vk_ops.c). Private to src/gpu. */
#ifndef SHIMMY_GPU_VK_CTX_H
#define SHIMMY_GPU_VK_CTX_H

#include "gpu_vk.h"

#define GPU_MAX_CHUNKS 64

/* A tensor on the device: its host bytes [host, host + bytes) live at chunk's offset off. */
typedef struct gpu_tensor {
    const unsigned char *host;
    uint64_t bytes;
    int32_t chunk;
    uint64_t off;
} gpu_tensor;

struct gpu_model {
    const model *m; /* borrowed */
    gpu_vk_device *d;
    model_device mdev;
    gpu_tensor *t; /* sorted by host address */
    int32_t n_t;
    gpu_vk_buf chunks[GPU_MAX_CHUNKS];
    int32_t n_chunks;
    int32_t n_gpu_layers;
    bool output_on;
    uint64_t weight_bytes;
    uint64_t host_only_types;
    uint64_t ctx_bytes; /* atomic: all contexts' device memory */
};

/* The device copy of weight/vector bytes at host address p, or NULL. */
const gpu_tensor *gpu_model_find(const gpu_model *g, const void *p);
bool gpu_vk_holds(const void *impl, const void *p);
bool gpu_vk_layer(const void *impl, int32_t il);
extern const model_dev_ops gpu_vk_dev_ops;

/* A context's mirror: per device layer its K and V regions, one buffer for the activations
 * (the block from c->x to its end, same offsets), and the step's entries (pos, seq, seq_end)
 * and output rows. */
typedef struct gpu_ctx {
    gpu_model *g;
    gpu_vk_device *d;
    model_ctx *c;
    gpu_vk_rec rec;
    gpu_vk_buf *kbuf, *vbuf; /* (n_layer) zero for layers on the CPU */
    gpu_vk_buf act;
    const unsigned char *act_base; /* c->x: host address of act's byte 0 */
    gpu_vk_buf meta;               /* (3 n_batch + n_logits) int32 */
    gpu_vk_buf xq; /* (n_batch, model max_in) floats: activations rounded for a product */
    /* what xq holds: rows of n floats at host address x rounded by mode; valid until anything
     * writes the activations (every dispatch but a product clears it, and a product whose
     * output is x), so q/k/v and gate/up round their shared input once */
    struct {
        const float *x;
        uint32_t mode, n;
        int32_t rows;
        bool valid;
    } xq_has;
    uint64_t bytes;
} gpu_ctx;

/* Where host address p of the context's activations lives on the device: a binding of
 * [p, p + bytes) and the element index (of elt bytes) of p inside it. */
gpu_vk_bind gpu_ctx_act(const gpu_ctx *g, const void *p, uint64_t bytes, uint32_t elt,
                        uint32_t *elem);
/* A binding of the weight bytes [p, p + bytes) (NULL when not on the device). */
bool gpu_ctx_weight(const gpu_ctx *g, const void *p, uint64_t bytes, uint32_t elt, gpu_vk_bind *b,
                    uint32_t *elem);
/* Dispatch over n items of WG threads each: 2-D groups under the 65535 limit. */
void gpu_ctx_run(gpu_ctx *g, const char *pipe, const gpu_vk_bind *b, int nb, const void *pc,
                 uint32_t pc_bytes, uint64_t groups);

#endif
