#version 450
// RoPE with the step's angles computed by the host (every variant: YaRN, LongRoPE, frequency
// factors, attention factor): row t's cs holds n_rot/2 cosines then n_rot/2 sines. Mode 0
// rotates adjacent pairs, mode 1 (neox) the halves.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer CS { float cs[]; };
layout(push_constant) uniform P {
    uint x_off, cs_off, rows, n_head, head_dim, n_rot, mode, cs_stride, x_stride;
} p;
void main() {
    const uint half_rot = p.n_rot / 2;
    const uint i = flat_group() * WG + gl_LocalInvocationID.x;
    if (i >= p.rows * p.n_head * half_rot) return;
    const uint k = i % half_rot, h = (i / half_rot) % p.n_head, t = i / (half_rot * p.n_head);
    const float c = cs[p.cs_off + t * p.cs_stride + k], s = cs[p.cs_off + t * p.cs_stride + half_rot + k];
    const uint base = p.x_off + t * p.x_stride + h * p.head_dim;
    const uint ia = base + (p.mode == 1 ? k : 2 * k), ib = base + (p.mode == 1 ? k + half_rot : 2 * k + 1);
    const float x0 = x[ia], x1 = x[ib];
    x[ia] = fma(x0, c, -(x1 * s));
    x[ib] = fma(x0, s, x1 * c);
}
