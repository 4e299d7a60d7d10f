/* llama (Llama 1/2/3, Mistral and the many models that reuse the layout): RoPE on adjacent pairs,
 * optional q/k/v biases, optional llama3 rope_freqs factors. */
#include "model.h"

const model_arch model_arch_llama = {
    .name = "llama",
    .rope_mode = MODEL_ROPE_NORM,
    .qkv_bias = false,
    .qk_norm = false,
};
