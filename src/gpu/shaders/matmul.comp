/*
 * matmul.comp — y = W x for one weight type (compiled once per line of matmul_types.txt with
 * -DTYPE_<NAME>): W is n_out rows of n_in elements in their GGUF layout, x and y are F32.
 *
 * A workgroup's 64 threads are 64 / tpr rows of tpr threads each (tpr, a power of two the host
 * picks from the row length: long rows get many threads, short rows few, so that a 64-element
 * row of a tiny model does not keep 62 threads idle and a 4096-element one is read by many),
 * and it computes those rows for 8 tokens. Workgroup (x, y, z) takes rows from
 * (32768 z + x) * (64 / tpr) and tokens 8y .. 8y + 7 (those below n_tok):
 *   y[y_off + t * y_stride + r] = sum_i W[r][i] * x[x_off + t * x_stride + i].
 * Each thread walks runs of 32 elements of its row (run k = elements 32k..32k+31, the row's
 * threads taking k = lane, lane + tpr, ...), dequantizes a run once (dequant.glsl, the CPU
 * reference's values) and uses it for the up to 8 tokens; a row's partial sums are then reduced
 * in shared memory (no subgroup operations: runs on any Vulkan device). Types with a lookup
 * table first copy it into shared memory, once per workgroup. n_in is a multiple of the block
 * size for quantized types; float types take any n_in.
 *
 * Bindings (set 0): 0 weights (raw bytes as words, sized to a multiple of 4 bytes), 1 x, 2 y.
 * Push constants (all uint, this order): n_in, n_out, n_tok, w_off (byte offset of row 0, any
 * value), row_bytes, x_off, x_stride, y_off, y_stride (x/y offsets and strides in floats), tpr.
 */
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

#define WG 64u
#define TILE 8u
#define GROUPS_PER_Z 32768u

layout(local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer W { uint w[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Params {
    uint n_in;
    uint n_out;
    uint n_tok;
    uint w_off;
    uint row_bytes;
    uint x_off;
    uint x_stride;
    uint y_off;
    uint y_stride;
    uint tpr;
} p;

#include "dequant.glsl"

shared float red[TILE * WG];

void main() {
    const uint rows = WG / p.tpr;
    const uint r0 = (gl_WorkGroupID.z * GROUPS_PER_Z + gl_WorkGroupID.x) * rows;
    const uint t0 = gl_WorkGroupID.y * TILE;
    /* uniform across the workgroup: whole workgroups leave before any barrier */
    if (r0 >= p.n_out || t0 >= p.n_tok) return;
    dequant_init(); /* a lookup table into shared memory (a barrier); else nothing */
    const uint nt = min(TILE, p.n_tok - t0);
    const uint lid = gl_LocalInvocationID.x;
    const uint lane = lid % p.tpr;
    const uint r = r0 + lid / p.tpr;
    /* threads of rows past the end compute nothing but still meet every barrier */
    const bool live = r < p.n_out;
    const uint rb = p.w_off + (live ? r : r0) * p.row_bytes;
    const uint xb = p.x_off + t0 * p.x_stride;

    float acc[TILE];
    [[unroll]] for (uint t = 0u; t < TILE; t++) acc[t] = 0.0;

    const uint n_runs = live ? (p.n_in + 31u) / 32u : 0u;
    for (uint k = lane; k < n_runs; k += p.tpr) {
        float v[32];
        const uint cnt = dequant_run(rb, k, v);
        const uint xk = xb + 32u * k;
        if (cnt == 32u) {
            [[unroll]] for (uint t = 0u; t < TILE; t++) {
                if (t < nt) {
                    const uint xi = xk + t * p.x_stride;
                    float s = 0.0;
                    [[unroll]] for (uint j = 0u; j < 32u; j++) s += v[j] * x[xi + j];
                    acc[t] += s;
                }
            }
        } else { /* the tail of a float row: never read x past n_in */
            [[unroll]] for (uint t = 0u; t < TILE; t++) {
                if (t < nt) {
                    const uint xi = xk + t * p.x_stride;
                    float s = 0.0;
                    for (uint j = 0u; j < cnt; j++) s += v[j] * x[xi + j];
                    acc[t] += s;
                }
            }
        }
    }

    if (p.tpr > 1u) {
        [[unroll]] for (uint t = 0u; t < TILE; t++) red[t * WG + lid] = acc[t];
        barrier();
        for (uint s = p.tpr / 2u; s > 0u; s >>= 1) {
            if (lane < s) {
                [[unroll]] for (uint t = 0u; t < TILE; t++)
                    if (t < nt) red[t * WG + lid] += red[t * WG + lid + s];
            }
            barrier();
        }
        [[unroll]] for (uint t = 0u; t < TILE; t++) acc[t] = red[t * WG + lid];
    }
    if (live && lane == 0u) {
        [[unroll]] for (uint t = 0u; t < TILE; t++)
            if (t < nt) y[p.y_off + (t0 + t) * p.y_stride + r] = acc[t];
    }
}
