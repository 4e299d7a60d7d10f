/* qwen3: llama's block without biases, with a per-head RMSNorm of q and k (weights of size
 * head_dim) after the projection and before NeoX RoPE; head_dim comes from
 * attention.key_length and n_head*head_dim may differ from n_embd. */
#include "model.h"

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    return model_llama_bind(ld, il, L, false, true);
}

const model_arch model_arch_qwen3 = {
    .name = "qwen3",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = model_llama_hparams,
    .bind_layer = bind_layer,
    .forward = model_llama_forward,
    .device = true,
};
