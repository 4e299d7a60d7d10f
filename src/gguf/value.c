/* Typed access to metadata values: width conversions that refuse values which do not fit, and
 * element access to raw little-endian arrays (which may be unaligned inside the mapping). */
#include "gguf.h"

#include <math.h>
#include <string.h>

static bool is_unsigned(gguf_vtype t) {
    return t == GGUF_VT_UINT8 || t == GGUF_VT_UINT16 || t == GGUF_VT_UINT32 || t == GGUF_VT_UINT64;
}

static bool is_signed(gguf_vtype t) {
    return t == GGUF_VT_INT8 || t == GGUF_VT_INT16 || t == GGUF_VT_INT32 || t == GGUF_VT_INT64;
}

static bool is_float(gguf_vtype t) {
    return t == GGUF_VT_FLOAT32 || t == GGUF_VT_FLOAT64;
}

/* Any integer value as an unsigned 64-bit number; false for negatives and non-integers. */
static bool value_u64(const gguf_value *v, uint64_t *out) {
    if (!v) return false;
    if (is_unsigned(v->type)) return *out = v->v.u64, true;
    if (is_signed(v->type) && v->v.i64 >= 0) return *out = (uint64_t)v->v.i64, true;
    return false;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    uint64_t u;
    if (!value_u64(gguf_get(f, key), &u) || u > UINT32_MAX) return false;
    *out = (uint32_t)u;
    return true;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    return value_u64(gguf_get(f, key), out);
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v) return false;
    if (is_signed(v->type)) return *out = v->v.i64, true;
    if (is_unsigned(v->type) && v->v.u64 <= (uint64_t)INT64_MAX)
        return *out = (int64_t)v->v.u64, true;
    return false;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v) return false;
    if (is_float(v->type)) return *out = (float)v->v.f64, true;
    if (is_signed(v->type)) return *out = (float)v->v.i64, true;
    if (is_unsigned(v->type)) return *out = (float)v->v.u64, true;
    return false;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v || v->type != GGUF_VT_BOOL) return false;
    *out = v->v.b;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v || v->type != GGUF_VT_STRING) return false;
    *out = v->v.str;
    return true;
}

const gguf_value *gguf_get_arr(const gguf_file *f, const char *key, gguf_vtype elem_type) {
    const gguf_value *v = gguf_get(f, key);
    if (!v || v->type != GGUF_VT_ARRAY) return NULL;
    if (elem_type != GGUF_VT_COUNT && v->v.arr.elem_type != elem_type) return NULL;
    return v;
}

/* Element i of a numeric array, decoded as a scalar gguf_value (type COUNT for others). */
static gguf_value arr_elem(const gguf_value *arr, uint64_t i) {
    gguf_value e = {.type = arr->v.arr.elem_type};
    const uint8_t *p = arr->v.arr.data;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f32;
    double f64;
    switch (e.type) {
    case GGUF_VT_UINT8: memcpy(&u8, p + i, 1), e.v.u64 = u8; break;
    case GGUF_VT_INT8: memcpy(&u8, p + i, 1), e.v.i64 = (int8_t)u8; break;
    case GGUF_VT_BOOL: e.v.b = p[i] != 0; break;
    case GGUF_VT_UINT16: memcpy(&u16, p + 2 * i, 2), e.v.u64 = u16; break;
    case GGUF_VT_INT16: memcpy(&u16, p + 2 * i, 2), e.v.i64 = (int16_t)u16; break;
    case GGUF_VT_UINT32: memcpy(&u32, p + 4 * i, 4), e.v.u64 = u32; break;
    case GGUF_VT_INT32: memcpy(&u32, p + 4 * i, 4), e.v.i64 = (int32_t)u32; break;
    case GGUF_VT_FLOAT32: memcpy(&f32, p + 4 * i, 4), e.v.f64 = f32; break;
    case GGUF_VT_UINT64: memcpy(&u64, p + 8 * i, 8), e.v.u64 = u64; break;
    case GGUF_VT_INT64: memcpy(&u64, p + 8 * i, 8), e.v.i64 = (int64_t)u64; break;
    case GGUF_VT_FLOAT64: memcpy(&f64, p + 8 * i, 8), e.v.f64 = f64; break;
    default: e.type = GGUF_VT_COUNT; break;
    }
    return e;
}

gguf_value gguf_arr_elem(const gguf_value *arr, uint64_t i) {
    if (arr->v.arr.elem_type == GGUF_VT_STRING)
        return (gguf_value){.type = GGUF_VT_STRING, .v.str = arr->v.arr.strs[i]};
    if (arr->v.arr.elem_type == GGUF_VT_ARRAY) return arr->v.arr.arrays[i];
    return arr_elem(arr, i);
}

double gguf_arr_f64(const gguf_value *arr, uint64_t i) {
    gguf_value e = arr_elem(arr, i);
    if (is_unsigned(e.type)) return (double)e.v.u64;
    if (is_signed(e.type)) return (double)e.v.i64;
    if (is_float(e.type)) return e.v.f64;
    if (e.type == GGUF_VT_BOOL) return e.v.b;
    return 0.0;
}

int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i) {
    gguf_value e = arr_elem(arr, i);
    if (is_signed(e.type)) return e.v.i64;
    if (is_unsigned(e.type)) return e.v.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)e.v.u64;
    if (e.type == GGUF_VT_BOOL) return e.v.b;
    if (is_float(e.type)) {
        /* Converting an out-of-range double is undefined behaviour: clamp first. */
        double d = e.v.f64;
        if (isnan(d)) return 0;
        if (d >= 9223372036854775807.0) return INT64_MAX;
        if (d <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)d;
    }
    return 0;
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.data, c, n) == 0);
}

char *gguf_str_copy(gguf_str s, char *buf, size_t cap) {
    if (!cap) return buf;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    if (n) memcpy(buf, s.data, n);
    buf[n] = '\0';
    return buf;
}
