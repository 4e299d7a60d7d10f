/* smollm3 (SmolLM3): llama's block (model_dense_forward) in which every fourth layer (il = 3, 7,
 * ...) attends without rope. The period is not in the file: llama.cpp fixes it at 4 for this
 * architecture (its n_no_rope_layer_step), as the published model is made. */
#include "model.h"

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_dense_hparams(ld, hp);
    if (st) return st;
    hp->no_rope_step = 4;
    return SHIMMY_OK;
}

const model_arch model_arch_smollm3 = {
    .name = "smollm3",
    .rope_mode = MODEL_ROPE_NORM,
    .hparams = hparams,
    .bind_layer = model_dense_bind,
    .forward = model_dense_forward,
    .device = true,
};
