/* Architectures that are known but not supported yet, with what they need that the shared ops do
 * not have: model_load quotes it, so that a user learns why the file is refused rather than only
 * that it is (read from llama.cpp's src/models/<arch>.cpp, 2026-08). Each text fits the 512
 * bytes of an error message with the sentence around it. */
#include "model.h"

#include <string.h>

static const struct {
    const char *name;
    const char *missing;
} refused[] = {
    {"gemma3n",
     "AltUp (4 residual streams with predict/correct coefficients and a router), LAuReL "
     "low-rank residuals, per-layer token embeddings (per_layer_token_embd), activation "
     "sparsity (a Gaussian top-k cut of the first layers' FFN gates), RMS-normed values and KV "
     "caches shared by the layers after the first 20"},
    {"gemma4",
     "head sizes that differ between local and global layers (key_length_swa), a per-layer "
     "window array, KV caches shared by the last shared_kv_layers layers, proportional rope "
     "(rope_freqs) on global layers, keys as values where attn_v is absent, RMS-normed values, "
     "per-layer output scales and token embeddings, and routed experts beside the dense FFN "
     "(26B-A4B)"},
    {"gemma4-assistant", "the gemma4 block (see gemma4), which is not supported"},
};

const char *model_arch_refusal(const char *name) {
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (strcmp(refused[i].name, name) == 0) return refused[i].missing;
    return NULL;
}
