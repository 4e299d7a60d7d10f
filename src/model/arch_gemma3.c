/* gemma3 (Gemma 3 text models): gemma2's block (arch_gemma2.c) with per-head RMS norms of q and
 * k before rope and no attention soft-cap. When the file has a sliding window, five layers of
 * six are local (attention.sliding_window_pattern, a period or a flag per layer, overrides) and
 * those layers rope with their own base (rope.freq_base_swa, 10000 when absent) and no scaling,
 * while the global layers use rope.freq_base with the file's scaling (Gemma 3's linear ×8). A
 * file without a window (converted from a config with sliding_window_pattern 1) has only
 * global layers. The final soft-cap applies only when the file gives one. The 27B model (62
 * layers) scales queries by 1/sqrt(n_embd / n_head) instead of 1/sqrt(head_dim). */
#include "model.h"

#include <math.h>

static shimmy_status hparams(model_loader *ld, model_hparams *hp) {
    hp->rope_base_swa = 10000.0f;
    hp->rope_freq_scale_swa = 1.0f;
    hp->attn_softcap = 0.0f;
    hp->final_softcap = 0.0f;
    shimmy_status st;
    if ((st = model_load_key_f32(ld, "attention.layer_norm_rms_epsilon", true, &hp->rms_eps)) ||
        (st = model_load_key_i32(ld, "attention.sliding_window", false, 0, 1 << 24, &hp->n_swa)) ||
        (st = model_load_key_f32(ld, "rope.freq_base_swa", false, &hp->rope_base_swa)) ||
        (st = model_load_key_f32(ld, "final_logit_softcapping", false, &hp->final_softcap)))
        return st;
    if (hp->final_softcap < 0.0f || !(hp->rope_base_swa > 0.0f))
        return model_load_fail(ld, SHIMMY_ERR_FORMAT,
                               "gemma3: final_logit_softcapping must not be negative and "
                               "rope.freq_base_swa must be positive");
    return SHIMMY_OK;
}

static shimmy_status bind_layer(model_loader *ld, int32_t il, model_layer *L) {
    return model_gemma_bind(ld, il, L, true, 6);
}

static void forward(model_ctx *c) {
    const model_hparams *hp = &c->m->hp;
    const int32_t pre_attn = hp->n_layer == 62 ? hp->n_embd / hp->n_head : hp->head_dim;
    model_gemma_forward(c, 1.0f / sqrtf((float)pre_attn));
}

const model_arch model_arch_gemma3 = {
    .name = "gemma3",
    .rope_mode = MODEL_ROPE_NEOX,
    .hparams = hparams,
    .bind_layer = bind_layer,
    .forward = forward,
    .device = true,
};
