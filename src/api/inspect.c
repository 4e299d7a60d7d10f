/* Read-only GGUF inspection for library users: a header-only gguf_file behind an opaque handle,
 * its values translated to the public shimmy_gguf_value (numbers widened as the parser already
 * does, strings and arrays borrowed from the handle's own copy of the header). */
#include "api.h"

#include "gguf/gguf.h"

#include <stdlib.h>
#include <string.h>

struct shimmy_gguf {
    gguf_file *f;
};

static const char *const type_names[] = {
    [GGUF_VT_UINT8] = "u8",    [GGUF_VT_INT8] = "i8",    [GGUF_VT_UINT16] = "u16",
    [GGUF_VT_INT16] = "i16",   [GGUF_VT_UINT32] = "u32", [GGUF_VT_INT32] = "i32",
    [GGUF_VT_FLOAT32] = "f32", [GGUF_VT_BOOL] = "bool",  [GGUF_VT_STRING] = "string",
    [GGUF_VT_ARRAY] = "array", [GGUF_VT_UINT64] = "u64", [GGUF_VT_INT64] = "i64",
    [GGUF_VT_FLOAT64] = "f64",
};

/* The public numbering is the file format's, as the parser's is. */
_Static_assert((int)SHIMMY_GGUF_F64 == (int)GGUF_VT_FLOAT64 &&
                   (int)SHIMMY_GGUF_ARRAY == (int)GGUF_VT_ARRAY &&
                   (int)SHIMMY_GGUF_STRING == (int)GGUF_VT_STRING,
               "shimmy_gguf_type follows the GGUF format");

const char *shimmy_gguf_type_name(shimmy_gguf_type t) {
    return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "?";
}

static bool vt_unsigned(gguf_vtype t) {
    return t == GGUF_VT_UINT8 || t == GGUF_VT_UINT16 || t == GGUF_VT_UINT32 || t == GGUF_VT_UINT64;
}
static bool vt_signed(gguf_vtype t) {
    return t == GGUF_VT_INT8 || t == GGUF_VT_INT16 || t == GGUF_VT_INT32 || t == GGUF_VT_INT64;
}

/* src must outlive the result when it is an array (array_ points at it). */
static void to_public(const gguf_value *src, shimmy_gguf_value *out) {
    memset(out, 0, sizeof *out);
    out->type = (shimmy_gguf_type)src->type;
    if (vt_unsigned(src->type))
        out->u64 = src->v.u64;
    else if (vt_signed(src->type))
        out->i64 = src->v.i64;
    else if (src->type == GGUF_VT_FLOAT32 || src->type == GGUF_VT_FLOAT64)
        out->f64 = src->v.f64;
    else if (src->type == GGUF_VT_BOOL)
        out->b = src->v.b;
    else if (src->type == GGUF_VT_STRING) {
        out->str = src->v.str.data;
        out->str_len = (size_t)src->v.str.len;
    } else if (src->type == GGUF_VT_ARRAY) {
        out->elem_type = (shimmy_gguf_type)src->v.arr.elem_type;
        out->count = src->v.arr.count;
        out->array_ = src;
    }
}

shimmy_status shimmy_gguf_open(const char *path, shimmy_gguf **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!path || !*path) return core_error(err, SHIMMY_ERR_INVALID_ARG, "path", "no file given");
    shimmy_gguf *g = core_calloc(1, sizeof *g);
    if (!g) return core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory");
    shimmy_status st = gguf_open_header(path, &g->f, err);
    if (st) {
        free(g);
        return st;
    }
    *out = g;
    return SHIMMY_OK;
}

void shimmy_gguf_free(shimmy_gguf *g) {
    if (!g) return;
    gguf_close(g->f);
    free(g);
}

void shimmy_gguf_get_info(const shimmy_gguf *g, shimmy_gguf_info *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!g) return;
    out->path = gguf_path(g->f);
    out->version = gguf_version(g->f);
    out->alignment = gguf_alignment(g->f);
    out->file_size = gguf_file_size(g->f);
    out->data_offset = gguf_data_offset(g->f);
    out->n_kv = gguf_n_kv(g->f);
    out->n_tensors = gguf_n_tensors(g->f);
}

bool shimmy_gguf_kv_at(const shimmy_gguf *g, size_t i, const char **key, size_t *key_len,
                       shimmy_gguf_value *value) {
    if (!g || i >= gguf_n_kv(g->f)) return false;
    const gguf_kv *kv = gguf_kv_at(g->f, i);
    if (key) *key = kv->key.data;
    if (key_len) *key_len = (size_t)kv->key.len;
    if (value) to_public(&kv->value, value);
    return true;
}

bool shimmy_gguf_find(const shimmy_gguf *g, const char *key, shimmy_gguf_value *value) {
    const gguf_value *v = g && key ? gguf_get(g->f, key) : NULL;
    if (v && value) to_public(v, value);
    return v != NULL;
}

bool shimmy_gguf_array_at(const shimmy_gguf_value *arr, uint64_t i, shimmy_gguf_value *out) {
    if (!arr || arr->type != SHIMMY_GGUF_ARRAY || !arr->array_ || i >= arr->count) return false;
    const gguf_value *src = arr->array_;
    if (src->v.arr.elem_type == GGUF_VT_ARRAY) {
        /* nested arrays live in the parsed header, so the element itself can be pointed at */
        if (out) to_public(&src->v.arr.arrays[i], out);
        return true;
    }
    gguf_value e = gguf_arr_elem(src, i);
    if (out) to_public(&e, out); /* scalars and strings: nothing points at e */
    return true;
}

bool shimmy_gguf_tensor_at(const shimmy_gguf *g, size_t i, shimmy_gguf_tensor *out) {
    if (!g || i >= gguf_n_tensors(g->f)) return false;
    if (!out) return true;
    const gguf_tensor *t = gguf_tensor_at(g->f, i);
    memset(out, 0, sizeof *out);
    out->name = t->name.data;
    out->name_len = (size_t)t->name.len;
    out->type = t->type;
    out->type_name = gguf_type_name(t->type);
    out->n_dims = t->n_dims;
    for (int d = 0; d < 4; d++) out->shape[d] = t->ne[d];
    out->offset = t->offset;
    out->bytes = t->nbytes;
    return true;
}
