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
        // GEGLU as the CPU computes it (model_gelu): GELU's tanh form, in float, of the input
        // rounded to F16, its result rounded to F16 (ggml looks it up in a table of exactly
        // that); past |10| it is 0 or the identity
        const float h = round_f16(v);
        const float z = 0.79788456080286535587989211986876 * h * (1.0 + 0.044715 * h * h);
        const float g = v <= -10.0 ? 0.0 : v >= 10.0 ? v : round_f16(0.5 * h * (1.0 + tanh_acc(z)));
        v = g * b[p.b_off + i];
    }
    }
    a[p.a_off + i] = v;
}
