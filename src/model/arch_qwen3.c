/* qwen3: no biases, a per-head RMSNorm of q and k (weights of size head_dim) after the
 * projection and before NeoX RoPE; head_dim comes from attention.key_length and n_head*head_dim
 * may differ from n_embd. */
#include "model.h"

const model_arch model_arch_qwen3 = {
    .name = "qwen3",
    .rope_mode = MODEL_ROPE_NEOX,
    .qkv_bias = false,
    .qk_norm = true,
};
