#version 450
// The step's K and V rows into their cells of a layer's cache: K (seqs, cells, k_dim), V
// transposed (seqs, v_dim, cells); position p in cell p % cells. KV_F16: the cache holds F16.
#include "common.glsl"
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x = WG) in;
#ifdef KV_F16
#define KT float16_t
#else
#define KT float
#endif
layout(std430, binding = 0) readonly buffer Ks { float ks[]; };
layout(std430, binding = 1) readonly buffer Vs { float vs[]; };
layout(std430, binding = 2) writeonly buffer Kc { KT kc[]; };
layout(std430, binding = 3) writeonly buffer Vc { KT vc[]; };
layout(std430, binding = 4) readonly buffer M { int meta[]; }; // per entry: pos, seq, seq_end
layout(push_constant) uniform P {
    uint rows, k_dim, v_dim, cells, ks_off, vs_off, kc_off, vc_off, meta_off;
} p;
void main() {
    const uint i = flat_group() * WG + gl_LocalInvocationID.x;
    const uint w = max(p.k_dim, p.v_dim);
    if (i >= p.rows * w) return;
    const uint t = i / w, d = i % w;
    const uint pos = uint(meta[p.meta_off + 3 * t]), seq = uint(meta[p.meta_off + 3 * t + 1]);
    const uint cell = pos % p.cells;
    if (d < p.k_dim)
        kc[p.kc_off + (seq * p.cells + cell) * p.k_dim + d] = KT(ks[p.ks_off + t * p.k_dim + d]);
    if (d < p.v_dim)
        vc[p.vc_off + (seq * p.v_dim + d) * p.cells + cell] = KT(vs[p.vs_off + t * p.v_dim + d]);
}
