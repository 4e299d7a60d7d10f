/* Element-wise operations of the forward pass, written to round like ggml's CPU ops (sums of
 * squares and softmax denominators in double, RoPE angles advanced by repeated multiplication)
 * so that logits agree with the reference beyond the last printed digit. */
#include "model.h"

#include <math.h>

void model_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

void model_rope(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, int32_t pos, float base,
                float freq_scale, const float *freq_factors, model_rope_mode mode) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const int32_t half = n_rot / 2;
    float theta = (float)pos;
    for (int32_t i0 = 0; i0 < n_rot; i0 += 2) {
        const float ff = freq_factors ? freq_factors[i0 / 2] : 1.0f;
        const float th = freq_scale * (theta / ff);
        const float c = cosf(th), s = sinf(th);
        /* the pair a rotation acts on is the only thing the two modes disagree about */
        const int32_t a = mode == MODEL_ROPE_NEOX ? i0 / 2 : i0;
        const int32_t b = mode == MODEL_ROPE_NEOX ? i0 / 2 + half : i0 + 1;
        for (int32_t h = 0; h < n_head; h++) {
            float *v = x + (int64_t)h * head_dim;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
        theta *= theta_scale;
    }
}

void model_softmax(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float e = x[i] == -INFINITY ? 0.0f : expf(x[i] - max);
        sum += (double)e;
        x[i] = e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void model_swiglu(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
