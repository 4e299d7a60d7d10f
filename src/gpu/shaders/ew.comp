#version 450
// Element-wise ops on a (rows of n) vector a, with b another vector or a bias row:
//   0 a += b    1 a += b[i % dim]    2 a *= s    3 a = s * tanh(a / s) (soft-cap)
//   4 a = silu(a) * b    5 a = gelu_tanh(a) * b
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, binding = 0) buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(push_constant) uniform P {
    uint op, n, a_off, b_off, dim;
    float s;
} p;
void main() {
    const uint i = flat_group() * WG + gl_LocalInvocationID.x;
    if (i >= p.n) return;
    float v = a[p.a_off + i];
    switch (p.op) {
    case 0: v += b[p.b_off + i]; break;
    case 1: v += b[p.b_off + i % p.dim]; break;
    case 2: v *= p.s; break;
    case 3: v = p.s * tanh_acc(v * (1.0 / p.s)); break; // times the reciprocal, as the CPU
    case 4: v = v / (1.0 + exp(-v)) * b[p.b_off + i]; break;
    default: {
        // the tanh form of GELU, as ggml's GEGLU computes it (the CPU looks it up in an F16
        // table of the same function); past |10| it is 0 or the identity. 0.5 (1 + tanh z) is
        // written 1 / (1 + e^-2z), which does not cancel where z is very negative (in float
        // 1 + tanh(z) is 0 or one ulp of 1 there, whatever the true value)
        const float z = 0.7978845608028654 * v * (1.0 + 0.044715 * v * v);
        const float g = v <= -10.0 ? 0.0 : v >= 10.0 ? v : v / (1.0 + exp(-2.0 * z));
        v = g * b[p.b_off + i];
    }
    }
    a[p.a_off + i] = v;
}
