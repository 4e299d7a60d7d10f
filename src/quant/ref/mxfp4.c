/* Reference kernels of MXFP4 (OCP Microscaling, FP4 elements): blocks of 32 E2M1 values (sign,
 * 2 exponent bits, 1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6) sharing one E8M0 exponent (2^(e -
 * 127)). As GGUF stores it: the exponent byte, then 16 bytes of codes, element j in the low nibble
 * of qs[j] and element j+16 in the high one. The kernels use the values doubled (integers, so
 * that the dot against Q8_0 is exact in integers) and the scale halved: 2^(e - 128).
 * Quantizer: e from the block's largest magnitude (floor(log2 amax) - 2 + 127), every value to the
 * nearest representable one (the first on a tie). */
#include "quant/quant_impl.h"

#include <math.h>

/* E2M1 code c doubled: exponent field 0 is subnormal (mantissa * 0.5 -> m), else
 * (1 + m/2) * 2^(e-1) -> (2 + m) << (e - 1); bit 3 is the sign. */
const int8_t quant_mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

void quant_ref_to_float_mxfp4(const void *vx, float *y, int64_t n) {
    const quant_block_mxfp4 *x = vx;
    for (int64_t i = 0; i < n / QUANT_QK; i++, y += QUANT_QK) {
        const float d = quant_e8m0_half(x[i].e);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)quant_mxfp4_values[x[i].qs[j] & 0xF] * d;
            y[j + 16] = (float)quant_mxfp4_values[x[i].qs[j] >> 4] * d;
        }
    }
}

void quant_ref_vec_dot_mxfp4(int64_t n, float *s, const void *vx, const void *vy) {
    const quant_block_mxfp4 *x = vx;
    const quant_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QUANT_QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 16; j++)
            isum += quant_mxfp4_values[x[i].qs[j] & 0xF] * y[i].qs[j] +
                    quant_mxfp4_values[x[i].qs[j] >> 4] * y[i].qs[j + 16];
        sum += quant_iq_term(quant_e8m0_half(x[i].e), quant_f16_to_f32(y[i].d), isum);
    }
    *s = sum;
}

static int nearest_code(float x, float d) {
    int best = 0;
    float err = fabsf((float)quant_mxfp4_values[0] * d - x);
    for (int c = 1; c < 16; c++) {
        const float e = fabsf((float)quant_mxfp4_values[c] * d - x);
        if (e < err) {
            best = c;
            err = e;
        }
    }
    return best;
}

void quant_ref_from_float_mxfp4(const float *x, void *vy, int64_t n) {
    quant_block_mxfp4 *y = vy;
    for (int64_t i = 0; i < n / QUANT_QK; i++, x += QUANT_QK) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        int e = 0;
        if (amax > 0.0f && isfinite(amax)) {
            e = (int)floorf(log2f(amax)) - 2 + 127;
            e = e < 0 ? 0 : e > 254 ? 254 : e;
        }
        const float d = quant_e8m0_half((uint8_t)e);
        y[i].e = (uint8_t)e;
        for (int j = 0; j < 16; j++)
            y[i].qs[j] = (uint8_t)(nearest_code(x[j], d) | nearest_code(x[j + 16], d) << 4);
    }
}
