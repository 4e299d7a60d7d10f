// Shared by every shader: the workgroup size and the flat index of a 2-D dispatch (x up to
// 65535 groups, y counting rows of them), so that long vectors fit any device's limits.
#extension GL_GOOGLE_include_directive : require
#define WG 64
uint flat_group() {
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}
// tanh to about an ulp everywhere. GLSL's tanh has no precision requirement, and drivers build
// it as (e^2x - 1) / (e^2x + 1) (lavapipe does), which cancels near 0: tanh(3.3e-6) came out
// 1.3e-3 (relative) too large, and |x| around 0.05 a few 1e-6 off. Below 0.625 Cephes' tanhf
// polynomial, above it 1 - 2 / (e^2|x| + 1), which only loses exp's own error (and is 1 once
// e^2|x| overflows).
float tanh_acc(float x) {
    const float a = abs(x);
    if (a < 0.625) {
        const float z = x * x;
        return x + x * z * ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
            + 1.33314422036e-1) * z - 3.33332819422e-1);
    }
    return sign(x) * (1.0 - 2.0 / (exp(2.0 * a) + 1.0));
}

// x rounded to the nearest F16 value, ties to even, as the CPU's conversion rounds (a shader's
// own float16_t conversion may round another way: Vulkan leaves it to the implementation).
// Normal F16 values keep 10 mantissa bits; below 2^-14 the grid is 2^-24 (both scalings are
// exact); past 65504 the result is infinite as the conversion's.
float round_f16(float x) {
    const float a = abs(x);
    if (a < 6.103515625e-05) return roundEven(x * 16777216.0) * 5.9604644775390625e-08;
    if (a >= 65520.0) return x * (1.0 / 0.0);
    const uint u = floatBitsToUint(x);
    return uintBitsToFloat((u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u);
}
