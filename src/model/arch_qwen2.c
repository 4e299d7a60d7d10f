/* qwen2: llama's block with mandatory q/k/v biases and NeoX-style RoPE (i, i + n_rot/2). */
#include "model.h"

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    return model_llama_bind(ld, il, L, true, false);
}

const model_arch model_arch_qwen2 = {
    .name = "qwen2",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = model_llama_hparams,
    .bind_layer = bind_layer,
    .forward = model_llama_forward,
    .device = true,
};
