#version 450
// out row r = x row r / sqrt(mean(x^2) + eps) * w (w optional), one workgroup per row.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P {
    uint n, rows, x_off, x_stride, w_off, o_off, o_stride, has_w;
    float eps;
} p;
shared float red[WG];
void main() {
    const uint r = flat_group();
    if (r >= p.rows) return;
    const uint xb = p.x_off + r * p.x_stride, ob = p.o_off + r * p.o_stride;
    float s = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) s += x[xb + i] * x[xb + i];
    red[gl_LocalInvocationID.x] = s;
    barrier();
    for (uint h = WG / 2; h > 0; h >>= 1) {
        if (gl_LocalInvocationID.x < h) red[gl_LocalInvocationID.x] += red[gl_LocalInvocationID.x + h];
        barrier();
    }
    const float scale = 1.0 / sqrt(red[0] / float(p.n) + p.eps);
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
        const float v = x[xb + i] * scale;
        o[ob + i] = p.has_w != 0 ? v * w[p.w_off + i] : v;
    }
}
