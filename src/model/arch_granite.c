/* granite (IBM Granite 3.x dense): llama's block (model_dense_forward) with four multipliers
 * from the file: embeddings times embedding_scale, each attention and FFN output times
 * residual_scale before its residual add, attention.scale instead of 1/sqrt(head_dim), and the
 * logits divided by logit_scale (required, as llama.cpp requires it). rope.scaling.finetuned
 * false means no rope at all (the key defaults to true for this architecture). */
#include "model.h"

#include <stdio.h>

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    shimmy_status st = model_dense_hparams(ld, hp);
    if (st || (st = model_load_key_f32(ld, "logit_scale", true, &hp->logit_scale)) ||
        (st = model_load_key_f32(ld, "residual_scale", false, &hp->residual_scale)) ||
        (st = model_load_key_f32(ld, "embedding_scale", false, &hp->embd_scale)) ||
        (st = model_load_key_f32(ld, "attention.scale", false, &hp->attn_scale)))
        return st;
    if (hp->logit_scale == 0.0f)
        return model_load_fail(ld, SHIMMY_ERR_FORMAT, "granite.logit_scale must not be 0");
    char key[64];
    bool finetuned = true;
    snprintf(key, sizeof key, "%s.rope.scaling.finetuned", model_loader_model(ld)->arch->name);
    const gguf_value *v = gguf_get(model_loader_file(ld), key);
    if (v && !gguf_get_bool(model_loader_file(ld), key, &finetuned))
        return model_load_fail(ld, SHIMMY_ERR_FORMAT, "metadata key '%s' must be a boolean", key);
    if (!finetuned) hp->no_rope_step = 1;
    return SHIMMY_OK;
}

const model_arch model_arch_granite = {
    .name = "granite",
    .rope_mode = MODEL_ROPE_NORM,
    .hparams = hparams,
    .bind_layer = model_dense_bind,
    .forward = model_dense_forward,
    .device = true,
};
