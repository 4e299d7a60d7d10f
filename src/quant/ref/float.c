/* Reference kernels of the float formats: F32, F16 and BF16 rows.
 *
 * Products of two F16 (or two BF16) values are exact in float, so the dots sum exact products in
 * double: the result is the correctly rounded dot of the stored values up to one final rounding,
 * which makes these the yardstick the SIMD versions are held against. */
#include "quant/quant_impl.h"

#include <string.h>

void quant_ref_to_float_f32(const void *x, float *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void quant_ref_from_float_f32(const float *x, void *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

/* Elements are read with memcpy: rows may start at any byte. */
static inline uint16_t load_u16(const unsigned char *p, int64_t i) {
    uint16_t v;
    memcpy(&v, p + 2 * i, 2);
    return v;
}

static inline void store_u16(unsigned char *p, int64_t i, uint16_t v) {
    memcpy(p + 2 * i, &v, 2);
}

static inline float load_f32(const unsigned char *p, int64_t i) {
    float v;
    memcpy(&v, p + 4 * i, 4);
    return v;
}

void quant_ref_to_float_f16(const void *x, float *y, int64_t n) {
    const unsigned char *p = x;
    for (int64_t i = 0; i < n; i++) y[i] = quant_f16_to_f32(load_u16(p, i));
}

void quant_ref_from_float_f16(const float *x, void *y, int64_t n) {
    unsigned char *p = y;
    for (int64_t i = 0; i < n; i++) store_u16(p, i, quant_f32_to_f16(x[i]));
}

void quant_ref_to_float_bf16(const void *x, float *y, int64_t n) {
    const unsigned char *p = x;
    for (int64_t i = 0; i < n; i++) y[i] = quant_bf16_to_f32(load_u16(p, i));
}

void quant_ref_from_float_bf16(const float *x, void *y, int64_t n) {
    unsigned char *p = y;
    for (int64_t i = 0; i < n; i++) store_u16(p, i, quant_f32_to_bf16(x[i]));
}

void quant_ref_vec_dot_f32(int64_t n, float *s, const void *x, const void *y) {
    const unsigned char *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)load_f32(a, i) * (double)load_f32(b, i);
    *s = (float)sum;
}

void quant_ref_vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    const unsigned char *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(quant_f16_to_f32(load_u16(a, i)) * quant_f16_to_f32(load_u16(b, i)));
    *s = (float)sum;
}

/* each (row, vector) pair summed in double, in element order: the exact sum to one rounding */
void quant_ref_dot_rows_n_f16(int64_t n, int64_t nr, const void *w, size_t ws, int nx,
                              const float *x, size_t xs, float *y, size_t ys) {
    const unsigned char *a = w;
    for (int j = 0; j < nx; j++)
        for (int64_t r = 0; r < nr; r++) {
            double sum = 0.0;
            for (int64_t i = 0; i < n; i++)
                sum += (double)quant_f16_to_f32(load_u16(a + (size_t)r * ws, i)) *
                       (double)x[(size_t)j * xs + (size_t)i];
            y[(size_t)j * ys + (size_t)r] = (float)sum;
        }
}

void quant_ref_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y) {
    const unsigned char *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(quant_bf16_to_f32(load_u16(a, i)) * quant_bf16_to_f32(load_u16(b, i)));
    *s = (float)sum;
}
