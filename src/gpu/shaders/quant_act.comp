#version 450
// Activations rounded the way the CPU's reference order rounds them before a product with a
// weight type (its vec_dot_type), written back as floats for matmul: mode 1 Q8_0/Q8_1 (blocks
// of 32, multiplier 127/amax, round half to even, scale stored as F16), 2 Q8_K (blocks of 256,
// scale -127/max of the signed extreme, levels capped at 127), 3 F16, 4 BF16 (round to
// nearest even). One thread per block of a row (per element for F16/BF16).
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint mode, n, rows, x_off, x_stride, y_off; } p;

void main() {
    const uint i = flat_group() * WG + gl_LocalInvocationID.x;
    const uint blk = p.mode == 1 ? 32 : p.mode == 2 ? 256 : 1;
    const uint per_row = (p.n + blk - 1) / blk;
    if (i >= per_row * p.rows) return;
    const uint r = i / per_row, b = i % per_row;
    const uint xb = p.x_off + r * p.x_stride + b * blk, yb = p.y_off + r * p.n + b * blk;
    if (p.mode == 3) {
        y[yb] = unpackHalf2x16(packHalf2x16(vec2(x[xb], 0.0))).x;
        return;
    }
    if (p.mode == 4) {
        const uint u = floatBitsToUint(x[xb]);
        const uint r16 = (u & 0x7f800000u) == 0x7f800000u ? u : u + 0x7fffu + ((u >> 16) & 1u);
        y[yb] = uintBitsToFloat(r16 & 0xffff0000u);
        return;
    }
    float amax = 0.0, mx = 0.0;
    for (uint j = 0; j < blk; j++) {
        const float v = x[xb + j];
        if (abs(v) > amax) {
            amax = abs(v);
            mx = v;
        }
    }
    if (p.mode == 1) {
        const float id = amax != 0.0 ? 127.0 / amax : 0.0;
        const float d = unpackHalf2x16(packHalf2x16(vec2(amax / 127.0, 0.0))).x;
        for (uint j = 0; j < blk; j++) y[yb + j] = roundEven(x[xb + j] * id) * d;
    } else {
        if (amax == 0.0) {
            for (uint j = 0; j < blk; j++) y[yb + j] = 0.0;
            return;
        }
        const float iscale = -127.0 / mx, d = 1.0 / iscale;
        for (uint j = 0; j < blk; j++) y[yb + j] = min(roundEven(iscale * x[xb + j]), 127.0) * d;
    }
}
