/* mistral3 (Ministral 3, Mistral-Small 3.x text files): llama's block (model_dense_forward) with
 * YaRN rope (rope.scaling.type yarn with yarn_log_multiplier, read by the hparams reader) and
 * Llama-4-style attention temperature: after rope, q is multiplied per position by
 * 1 + attention.temperature_scale·ln(floor(pos / original_context_length) + 1). */
#include "model.h"

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_dense_hparams(ld, hp);
    if (st) return st;
    return model_load_key_f32(ld, "attention.temperature_scale", false, &hp->attn_temp_scale);
}

const model_arch model_arch_mistral3 = {
    .name = "mistral3",
    .rope_mode = MODEL_ROPE_NORM,
    .hparams = hparams,
    .bind_layer = model_dense_bind,
    .forward = model_dense_forward,
    .device = true,
};
