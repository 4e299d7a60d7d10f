/* Gated DeltaNet, the linear-attention layer of Qwen3.5 (and Qwen3-Next): per sequence a rolling
 * window of the last ssm_conv - 1 inputs for the causal depthwise convolution, and per value
 * head a state matrix S (d_k x d_v) that every token decays and rewrites:
 *
 *   S <- S * exp(g)                     (g < 0: the decay gate)
 *   delta = beta * (v - S^T k)          (what S would have recalled for k, corrected)
 *   S <- S + k delta^T
 *   o = S^T q                           (q, k L2-normalised; q also times 1/sqrt(d_k))
 *
 * Value head h reads key head h % n_k (llama.cpp repeats the key heads as a tile). The state
 * lives in c->rstate (layer L's at L->state_off): the conv window first, then per value head
 * S^T, d_v rows of d_k, so that every product with k or q reads a contiguous row.
 *
 * A run of 2+ entries of one sequence takes the chunked form of the same recurrence (a chunk of
 * up to MODEL_DELTANET_CHUNK tokens at a time): with G_t the decays' sum from the chunk's start
 * to t and S0 the state before it, the corrections u_t = delta_t solve the lower-triangular
 * system
 *
 *   u_t + beta_t sum_{s<t} e^{G_t-G_s} (k_t.k_s) u_s = beta_t (v_t - e^{G_t} S0^T k_t),
 *
 * then o_t = e^{G_t} S0^T q_t + sum_{s<=t} e^{G_t-G_s} (q_t.k_s) u_s and the state after the
 * chunk is e^{G_m} S0 + sum_s e^{G_m-G_s} k_s u_s^T. Every piece is a product of rows (dots of
 * d_k through the quant module's F32 kernel, row updates in blocks of 8 that the compiler
 * vectorises) instead of the token loop's d_k x d_v pass per token. Decode entries take
 * model_deltanet_step, the token recurrence with the same row products; the scalar token
 * recurrence (model_deltanet_tokens) is the reference both are held to
 * (tests/model/test_deltanet.c). */
#include "model.h"
#include "quant/quant.h"

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

void model_deltanet_tokens(float *S, int32_t dk, int32_t dv, int32_t n,
                           const model_deltanet_seq *s) {
    for (int32_t t = 0; t < n; t++) {
        const float *q = s->q + t * s->qk_stride, *k = s->k + t * s->qk_stride;
        const float *v = s->v + t * s->v_stride;
        const float decay = expf(s->g[t * s->gb_stride]), b = s->beta[t * s->gb_stride];
        float *o = s->o + t * s->o_stride;
        for (int32_t j = 0; j < dv; j++) {
            float *row = S + (int64_t)j * dk;
            for (int32_t i = 0; i < dk; i++) row[i] *= decay;
            float recall = 0.0f;
            for (int32_t i = 0; i < dk; i++) recall += row[i] * k[i];
            const float delta = b * (v[j] - recall);
            float acc = 0.0f;
            for (int32_t i = 0; i < dk; i++) {
                row[i] += k[i] * delta;
                acc += row[i] * q[i];
            }
            o[j] = acc;
        }
    }
}

/* y += a x over n floats, in blocks of 8 so that -O2 vectorises the block */
static void axpy(int32_t n, float a, const float *restrict x, float *restrict y) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int32_t l = 0; l < 8; l++) y[i + l] += a * x[i + l];
    for (; i < n; i++) y[i] += a * x[i];
}

void model_deltanet_step(float *S, int32_t dk, int32_t dv, int32_t n, const model_deltanet_seq *s) {
    const quant_vec_dot_fn dot = quant_get(GGUF_T_F32)->vec_dot;
    for (int32_t t = 0; t < n; t++) {
        const float *q = s->q + t * s->qk_stride, *k = s->k + t * s->qk_stride;
        const float *v = s->v + t * s->v_stride;
        const float decay = expf(s->g[t * s->gb_stride]), b = s->beta[t * s->gb_stride];
        float *o = s->o + t * s->o_stride;
        for (int32_t j = 0; j < dv; j++) {
            float *row = S + (int64_t)j * dk, recall;
            dot(dk, &recall, row, k);
            /* (decay row) . k = decay (row . k): the decay joins the update below */
            const float delta = b * (v[j] - decay * recall);
            int32_t i = 0;
            for (; i + 8 <= dk; i += 8)
                for (int32_t l = 0; l < 8; l++) row[i + l] = row[i + l] * decay + k[i + l] * delta;
            for (; i < dk; i++) row[i] = row[i] * decay + k[i] * delta;
            dot(dk, &o[j], row, q);
        }
    }
}

int64_t model_deltanet_scratch_floats(int32_t dk, int32_t dv, int32_t n_tok) {
    const int64_t m = n_tok < MODEL_DELTANET_CHUNK ? n_tok : MODEL_DELTANET_CHUNK;
    return m * (2 * (int64_t)dk + dv + 2 * m + 2);
}

void model_deltanet_chunked(float *S, int32_t dk, int32_t dv, int32_t n,
                            const model_deltanet_seq *s, float *scratch) {
    const quant_vec_dot_fn dot = quant_get(GGUF_T_F32)->vec_dot;
    const int32_t C = MODEL_DELTANET_CHUNK;
    for (int32_t c0 = 0; c0 < n; c0 += C) {
        const int32_t m = n - c0 < C ? n - c0 : C;
        /* the chunk's q and k as contiguous rows, U (m x d_v), the products k_t.k_s (later
         * scaled) and q_t.k_s, the cumulative decays and the betas */
        float *Q = scratch, *K = Q + (int64_t)m * dk, *U = K + (int64_t)m * dk;
        float *A = U + (int64_t)m * dv, *QK = A + (int64_t)m * m, *G = QK + (int64_t)m * m;
        float *B = G + m;
        for (int32_t t = 0; t < m; t++) {
            const int64_t r = (int64_t)(c0 + t);
            memcpy(Q + (int64_t)t * dk, s->q + r * s->qk_stride, sizeof(float) * (size_t)dk);
            memcpy(K + (int64_t)t * dk, s->k + r * s->qk_stride, sizeof(float) * (size_t)dk);
            G[t] = (t ? G[t - 1] : 0.0f) + s->g[r * s->gb_stride];
            B[t] = s->beta[r * s->gb_stride];
        }
        /* right-hand sides beta_t (v_t - e^{G_t} S0^T k_t), then forward substitution: row t
         * only needs the rows before it, already solved */
        for (int32_t t = 0; t < m; t++) {
            const float *kt = K + (int64_t)t * dk, *v = s->v + (int64_t)(c0 + t) * s->v_stride;
            float *u = U + (int64_t)t * dv;
            const float eg = expf(G[t]);
            for (int32_t j = 0; j < dv; j++) {
                float r;
                dot(dk, &r, S + (int64_t)j * dk, kt);
                u[j] = B[t] * (v[j] - eg * r);
            }
            for (int32_t z = 0; z < t; z++) {
                float kk;
                dot(dk, &kk, kt, K + (int64_t)z * dk);
                axpy(dv, -B[t] * expf(G[t] - G[z]) * kk, U + (int64_t)z * dv, u);
            }
        }
        /* outputs, from the state before the chunk plus the chunk's own corrections */
        for (int32_t t = 0; t < m; t++) {
            const float *qt = Q + (int64_t)t * dk;
            float *o = s->o + (int64_t)(c0 + t) * s->o_stride;
            const float eg = expf(G[t]);
            for (int32_t j = 0; j < dv; j++) {
                float r;
                dot(dk, &r, S + (int64_t)j * dk, qt);
                o[j] = eg * r;
            }
            for (int32_t z = 0; z <= t; z++) {
                float qk;
                dot(dk, &qk, qt, K + (int64_t)z * dk);
                axpy(dv, expf(G[t] - G[z]) * qk, U + (int64_t)z * dv, o);
            }
        }
        /* the state after the chunk: row j of S^T is e^{G_m} S0^T[j] + sum_s e^{G_m-G_s}
         * u_s[j] k_s */
        const float gm = G[m - 1], em = expf(gm);
        for (int32_t z = 0; z < m; z++) A[z] = expf(gm - G[z]);
        for (int32_t j = 0; j < dv; j++) {
            float *row = S + (int64_t)j * dk;
            for (int32_t i = 0; i < dk; i++) row[i] *= em;
            for (int32_t z = 0; z < m; z++)
                axpy(dk, A[z] * U[(int64_t)z * dv + j], K + (int64_t)z * dk, row);
        }
    }
}

/* causal depthwise conv of one entry: tap j of channel ch weighs the input j steps from the
 * oldest of the window + this entry; then the window moves on by one */
static void conv_step(float *win, float *x, const float *w1, int64_t conv_dim, int32_t K) {
    for (int64_t ch = 0; ch < conv_dim; ch++) {
        const float *w = w1 + ch * K;
        float y = x[ch] * w[K - 1];
        for (int32_t j = 0; j < K - 1; j++) y += win[(int64_t)j * conv_dim + ch] * w[j];
        for (int32_t j = 0; j + 1 < K - 1; j++)
            win[(int64_t)j * conv_dim + ch] = win[(int64_t)(j + 1) * conv_dim + ch];
        if (K > 1) win[(int64_t)(K - 2) * conv_dim + ch] = x[ch];
        x[ch] = silu(y);
    }
}

void model_op_deltanet(model_ctx *c, const model_layer *L, float *mixed, const float *g,
                       const float *beta, float *out, float *scratch) {
    const model_hparams *hp = &c->m->hp;
    const int32_t dk = hp->ssm_state, nk = hp->ssm_groups, nv = hp->ssm_dt_rank;
    const int32_t dv = hp->ssm_inner / nv, K = hp->ssm_conv;
    const int64_t conv_dim = 2 * (int64_t)nk * dk + hp->ssm_inner;
    const float qscale = 1.0f / sqrtf((float)dk);
    model_dev_host(c);
    for (int32_t t = 0; t < c->n_tok; t++) {
        float *win = c->rstate + (int64_t)c->tok_seq[t] * hp->state_floats + L->state_off;
        float *x = mixed + (int64_t)t * conv_dim;
        conv_step(win, x, L->ssm_conv1d, conv_dim, K);
        float *q = x, *k = x + (int64_t)nk * dk;
        for (int32_t h = 0; h < nk; h++) {
            l2_norm(q + (int64_t)h * dk, dk, hp->rms_eps);
            l2_norm(k + (int64_t)h * dk, dk, hp->rms_eps);
            for (int32_t i = 0; i < dk; i++) q[(int64_t)h * dk + i] *= qscale;
        }
    }
    /* the delta rule per run of consecutive entries of one sequence */
    for (int32_t t0 = 0, t1; t0 < c->n_tok; t0 = t1) {
        const int32_t seq = c->tok_seq[t0];
        for (t1 = t0 + 1; t1 < c->n_tok && c->tok_seq[t1] == seq;) t1++;
        float *st = c->rstate + (int64_t)seq * hp->state_floats + L->state_off;
        float *S = st + (int64_t)(K - 1) * conv_dim;
        const float *x = mixed + (int64_t)t0 * conv_dim;
        for (int32_t h = 0; h < nv; h++) {
            const model_deltanet_seq s = {
                .q = x + (int64_t)(h % nk) * dk,
                .k = x + (int64_t)(nk + h % nk) * dk,
                .v = x + 2 * (int64_t)nk * dk + (int64_t)h * dv,
                .qk_stride = conv_dim,
                .v_stride = conv_dim,
                .g = g + (int64_t)t0 * nv + h,
                .beta = beta + (int64_t)t0 * nv + h,
                .gb_stride = nv,
                .o = out + (int64_t)t0 * hp->ssm_inner + (int64_t)h * dv,
                .o_stride = hp->ssm_inner,
            };
            float *Sh = S + (int64_t)h * dk * dv;
            if (t1 - t0 >= 2)
                model_deltanet_chunked(Sh, dk, dv, t1 - t0, &s, scratch);
            else
                model_deltanet_step(Sh, dk, dv, t1 - t0, &s);
        }
    }
}
