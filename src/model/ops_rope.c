/* RoPE configurations from the file: the plain frequencies of model_rope_angles, or YaRN's
 * (rope.scaling.type = yarn), which interpolates the low frequencies for a longer context,
 * keeps the high ones and scales cos/sin to keep the attention's entropy, exactly as ggml's
 * rope computes them (the reference's angles must agree to float rounding, since every layer
 * and position sees them). */
#include "model.h"

#include <math.h>

model_rope_cfg model_rope_cfg_of(const model *m) {
    const model_hparams *hp = &m->hp;
    const model_rope_cfg r = {.mode = m->arch->rope_mode,
                              .n_rot = hp->n_rot,
                              .base = hp->rope_base,
                              .freq_scale = hp->rope_freq_scale,
                              .freq_factors = m->rope_freqs,
                              .attn_factor = hp->rope_ext_factor > 0.0f ? hp->yarn_attn_factor
                                                                        : hp->rope_attn_factor,
                              .ext_factor = hp->rope_ext_factor,
                              .beta_fast = hp->yarn_beta_fast,
                              .beta_slow = hp->yarn_beta_slow,
                              .n_ctx_orig = hp->n_ctx_orig_yarn};
    return r;
}

/* The dim (pair index scaled to n_rot) whose frequency turns n_turns times over n_ctx_orig
 * positions: n_rot·ln(n_ctx_orig / (2π·n_turns)) / (2 ln base). */
static float corr_dim(int32_t n_rot, int32_t n_ctx_orig, float n_turns, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (n_turns * 2.0f * (float)M_PI)) /
           (2.0f * logf(base));
}

void model_yarn_corr_dims(int32_t n_rot, int32_t n_ctx_orig, float base, float beta_fast,
                          float beta_slow, float dims[2]) {
    const float lo = floorf(corr_dim(n_rot, n_ctx_orig, beta_fast, base));
    const float hi = ceilf(corr_dim(n_rot, n_ctx_orig, beta_slow, base));
    dims[0] = lo > 0.0f ? lo : 0.0f;
    dims[1] = hi < (float)(n_rot - 1) ? hi : (float)(n_rot - 1);
}

void model_rope_angles_yarn(float *cs, int32_t n_rot, int32_t pos, float base, float freq_scale,
                            const float *freq_factors, float ext_factor, const float corr_dims[2],
                            float attn_factor) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const int32_t half = n_rot / 2;
    /* the magnitude correction for interpolation, on top of the context's attention factor */
    const float mscale = attn_factor * (1.0f + 0.1f * logf(1.0f / freq_scale));
    const float span = corr_dims[1] - corr_dims[0] > 0.001f ? corr_dims[1] - corr_dims[0] : 0.001f;
    float theta = (float)pos;
    for (int32_t i = 0; i < half; i++) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float extrap = theta / ff;
        const float interp = freq_scale * extrap;
        /* 1 below corr_dims[0] (extrapolate: high frequencies), 0 above corr_dims[1] */
        float y = ((float)i - corr_dims[0]) / span;
        y = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
        const float mix = (1.0f - y) * ext_factor;
        const float th = interp * (1.0f - mix) + extrap * mix;
        cs[i] = cosf(th) * mscale;
        cs[half + i] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}
