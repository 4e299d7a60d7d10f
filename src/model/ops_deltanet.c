/* Gated DeltaNet, the linear-attention layer of Qwen3.5 (and Qwen3-Next): per sequence a rolling
 * window of the last ssm_conv - 1 inputs for the causal depthwise convolution, and per value
 * head a (d_k x d_v) state matrix S that every token decays and rewrites:
 *
 *   S <- S * exp(g)                     (g < 0: the decay gate)
 *   delta = beta * (v - S^T k)          (what S would have recalled for k, corrected)
 *   S <- S + k delta^T
 *   o = S^T q                           (q, k L2-normalised; q also times 1/sqrt(d_k))
 *
 * Value head h reads key head h % n_k (llama.cpp repeats the key heads as a tile). The state
 * lives in c->rstate (layer L's at L->state_off): the conv window first, then the matrices. */
#include "model.h"

#include <math.h>
#include <string.h>

static float silu(float x) {
    return x / (1.0f + expf(-x));
}

/* x / max(||x||, eps), as ggml_l2_norm. */
static void l2_norm(float *x, int32_t n, float eps) {
    double ss = 0.0;
    for (int32_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float norm = (float)sqrt(ss);
    const float scale = 1.0f / (norm > eps ? norm : eps);
    for (int32_t i = 0; i < n; i++) x[i] *= scale;
}

void model_op_deltanet(model_ctx *c, const model_layer *L, float *mixed, const float *g,
                       const float *beta, float *out) {
    const model_hparams *hp = &c->m->hp;
    const int32_t dk = hp->ssm_state, nk = hp->ssm_groups, nv = hp->ssm_dt_rank;
    const int32_t dv = hp->ssm_inner / nv, K = hp->ssm_conv;
    const int64_t conv_dim = 2 * (int64_t)nk * dk + hp->ssm_inner;
    const float qscale = 1.0f / sqrtf((float)dk);
    for (int32_t t = 0; t < c->n_tok; t++) {
        float *st = c->rstate + (int64_t)c->tok_seq[t] * hp->state_floats + L->state_off;
        float *win = st;                             /* (K - 1, conv_dim), oldest first */
        float *S = st + (int64_t)(K - 1) * conv_dim; /* (nv, dk, dv) */
        float *x = mixed + (int64_t)t * conv_dim;
        /* causal depthwise conv: tap j of channel ch weighs the input j steps from the oldest
         * of the window + this token; then the window moves on by one */
        for (int64_t ch = 0; ch < conv_dim; ch++) {
            const float *w = L->ssm_conv1d + ch * K;
            float y = x[ch] * w[K - 1];
            for (int32_t j = 0; j < K - 1; j++) y += win[(int64_t)j * conv_dim + ch] * w[j];
            for (int32_t j = 0; j + 1 < K - 1; j++)
                win[(int64_t)j * conv_dim + ch] = win[(int64_t)(j + 1) * conv_dim + ch];
            if (K > 1) win[(int64_t)(K - 2) * conv_dim + ch] = x[ch];
            x[ch] = silu(y);
        }
        float *q = x, *k = x + (int64_t)nk * dk, *v = x + 2 * (int64_t)nk * dk;
        for (int32_t h = 0; h < nk; h++) {
            l2_norm(q + (int64_t)h * dk, dk, hp->rms_eps);
            l2_norm(k + (int64_t)h * dk, dk, hp->rms_eps);
            for (int32_t i = 0; i < dk; i++) q[(int64_t)h * dk + i] *= qscale;
        }
        float *o = out + (int64_t)t * hp->ssm_inner;
        for (int32_t h = 0; h < nv; h++) {
            const float *qh = q + (int64_t)(h % nk) * dk, *kh = k + (int64_t)(h % nk) * dk;
            const float *vh = v + (int64_t)h * dv;
            float *Sh = S + (int64_t)h * dk * dv, *oh = o + (int64_t)h * dv;
            const float decay = expf(g[(int64_t)t * nv + h]), b = beta[(int64_t)t * nv + h];
            for (int64_t i = 0; i < (int64_t)dk * dv; i++) Sh[i] *= decay;
            for (int32_t j = 0; j < dv; j++) {
                float recall = 0.0f;
                for (int32_t i = 0; i < dk; i++) recall += Sh[(int64_t)i * dv + j] * kh[i];
                const float delta = b * (vh[j] - recall);
                float acc = 0.0f;
                for (int32_t i = 0; i < dk; i++) {
                    Sh[(int64_t)i * dv + j] += kh[i] * delta;
                    acc += Sh[(int64_t)i * dv + j] * qh[i];
                }
                oh[j] = acc;
            }
        }
    }
}
