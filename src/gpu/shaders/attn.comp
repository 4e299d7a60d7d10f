#version 450
// Attention of one (entry, head) per workgroup over the positions the entry sees, flash-style:
// chunks of WG positions, a running max and sum (no score matrix), the output accumulated per
// value dim. Positions: causal up to the entry's own (its last `window` when window > 0), or the
// whole sequence (non_causal); position p lives in cell p % cells. Scores are scaled, then
// soft-capped when softcap > 0; a sink logit per head joins the softmax's denominator. With an
// F16 cache the query is rounded to F16 first and so are the normalized probabilities (after a
// first pass over the positions for the max and the sum), as the CPU does.
#include "common.glsl"
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x = WG) in;
#ifdef KV_F16
#define KT float16_t
#define PROB16 // the probabilities too, as the CPU rounds them
#else
#define KT float
#endif
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer Kc { KT kc[]; };
layout(std430, binding = 2) readonly buffer Vc { KT vc[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(std430, binding = 4) readonly buffer M { int meta[]; }; // per entry: pos, seq, seq_end
layout(std430, binding = 5) readonly buffer S { float sinks[]; };
layout(push_constant) uniform P {
    uint n_tok, n_head, gqa, hd, hdv, q_off, q_stride, o_off, o_stride, kc_off, vc_off, cells,
        k_dim, v_dim, meta_off, window, non_causal, has_sink, sink_off;
    float scale, softcap;
} p;
#define MAXD 512
shared float qs[MAXD];
shared float ps[WG];
shared float red[WG];
void main() {
    const uint g = flat_group();
    if (g >= p.n_tok * p.n_head) return;
    const uint t = g / p.n_head, h = g % p.n_head, kvh = h / p.gqa, lid = gl_LocalInvocationID.x;
    const int pos = meta[p.meta_off + 3 * t], seq = meta[p.meta_off + 3 * t + 1];
    const int seq_end = meta[p.meta_off + 3 * t + 2];
    const int last = p.non_causal != 0 ? seq_end - 1 : pos;
    int first = 0;
    if (p.non_causal == 0 && p.window > 0 && pos - int(p.window) + 1 > 0) first = pos - int(p.window) + 1;
    for (uint d = lid; d < p.hd; d += WG) {
        const float v = q[p.q_off + t * p.q_stride + h * p.hd + d];
#ifdef KV_F16
        qs[d] = round_f16(v);
#else
        qs[d] = v;
#endif
    }
    barrier();
    const uint kb = p.kc_off + uint(seq) * p.cells * p.k_dim + kvh * p.hd;
    const uint vb = p.vc_off + (uint(seq) * p.v_dim + kvh * p.hdv) * p.cells;
    float m = p.has_sink != 0 ? sinks[p.sink_off + h] : -1.0 / 0.0;
    float l = p.has_sink != 0 ? 1.0 : 0.0;
    float acc[MAXD / WG];
    for (uint j = 0; j < MAXD / WG; j++) acc[j] = 0.0;
#ifdef PROB16
    // As the CPU does with an F16 cache, the probabilities are normalized and rounded to F16
    // before they weight V: a first pass finds the max and the sum, the second weights V.
    for (int pass = 0; pass < 2; pass++) {
#else
    // One pass, the online softmax: the output is rescaled as the max grows.
    for (int pass = 1; pass < 2; pass++) {
#endif
        const float inv_l = pass == 0 ? 0.0 : 1.0 / l;
        for (int c0 = first; c0 <= last; c0 += WG) {
            const int ps_ = c0 + int(lid);
            float s = -1.0 / 0.0;
            if (ps_ <= last) {
                const uint cell = uint(ps_) % p.cells;
                float dot = 0.0;
                for (uint d = 0; d < p.hd; d++) dot += qs[d] * float(kc[kb + cell * p.k_dim + d]);
                s = dot * p.scale;
                if (p.softcap > 0.0) s = p.softcap * tanh_acc(s * (1.0 / p.softcap));
            }
#ifdef PROB16
            if (pass == 1) { // m and l are final: p = f16(exp(s - m) / l)
                ps[lid] = ps_ <= last ? round_f16(exp(s - m) * inv_l) : 0.0;
                barrier();
                const int n = min(WG, last - c0 + 1);
                for (uint j = 0; j < MAXD / WG; j++) {
                    const uint d = lid + j * WG;
                    if (d >= p.hdv) break;
                    float a = acc[j];
                    for (int i = 0; i < n; i++)
                        a += ps[i] * float(vc[vb + d * p.cells + uint(c0 + i) % p.cells]);
                    acc[j] = a;
                }
                barrier();
                continue;
            }
#endif
            red[lid] = s;
            barrier();
            for (uint w = WG / 2; w > 0; w >>= 1) {
                if (lid < w) red[lid] = max(red[lid], red[lid + w]);
                barrier();
            }
            const float mn = max(m, red[0]);
            barrier();
            const float e = ps_ <= last ? exp(s - mn) : 0.0;
            ps[lid] = e;
            red[lid] = e;
            barrier();
            for (uint w = WG / 2; w > 0; w >>= 1) {
                if (lid < w) red[lid] += red[lid + w];
                barrier();
            }
            const float f = exp(m - mn); // 0 on the first chunk without a sink (m = -inf)
            l = l * f + red[0];
            m = mn;
            if (pass == 1) {
                const int n = min(WG, last - c0 + 1);
                for (uint j = 0; j < MAXD / WG; j++) {
                    const uint d = lid + j * WG;
                    if (d >= p.hdv) break;
                    float a = acc[j] * f;
                    for (int i = 0; i < n; i++)
                        a += ps[i] * float(vc[vb + d * p.cells + uint(c0 + i) % p.cells]);
                    acc[j] = a;
                }
            }
            barrier();
        }
    }
#ifdef PROB16
    const float inv = 1.0;
#else
    const float inv = 1.0 / l;
#endif
    for (uint j = 0; j < MAXD / WG; j++) {
        const uint d = lid + j * WG;
        if (d >= p.hdv) break;
        o[p.o_off + t * p.o_stride + h * p.hdv + d] = acc[j] * inv;
    }
}
