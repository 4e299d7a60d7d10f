/* qwen2: llama's layout with mandatory q/k/v biases and NeoX-style RoPE (i, i + n_rot/2). */
#include "model.h"

const model_arch model_arch_qwen2 = {
    .name = "qwen2",
    .rope_mode = MODEL_ROPE_NEOX,
    .qkv_bias = true,
    .qk_norm = false,
};
