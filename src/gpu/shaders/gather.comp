#version 450
// dst row j = src row idx[j] (rows of n floats): the entries that asked for output.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer S { float src[]; };
layout(std430, binding = 1) writeonly buffer D { float dst[]; };
layout(std430, binding = 2) readonly buffer I { int idx[]; };
layout(push_constant) uniform P { uint n, rows, src_off, dst_off, idx_off; } p;
void main() {
    const uint i = flat_group() * WG + gl_LocalInvocationID.x;
    if (i >= p.n * p.rows) return;
    const uint j = i / p.n, e = i % p.n;
    dst[p.dst_off + i] = src[p.src_off + uint(idx[p.idx_off + j]) * p.n + e];
}
