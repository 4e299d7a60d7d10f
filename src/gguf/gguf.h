/*
 * gguf — reading and writing GGUF v2/v3 files.
 *
 * Reading maps the file (or borrows a caller's buffer) and never copies tensor data: tensor and
 * string pointers point into the mapping. Everything read from the file is untrusted: every
 * length, count, offset and size is checked against the file size with overflow-safe arithmetic,
 * and memory allocated while parsing is bounded by a small multiple of the file size.
 *
 * The module knows the storage layout of tensor types (block size and bytes per block, needed to
 * bound-check tensor data) but not what the numbers mean: that is `quant`'s business.
 *
 * Ownership: gguf_open/gguf_open_memory create a gguf_file that gguf_close frees. Every pointer a
 * gguf_file hands out (gguf_str.data, gguf_kv, gguf_value, gguf_tensor, tensor data) is borrowed
 * and valid until gguf_close. gguf_str is NOT NUL-terminated. gguf_writer_new/gguf_writer_free
 * pair up; the writer copies keys, strings and tensor data it is given.
 * Thread-safety: a gguf_file is immutable after open and may be read from any number of threads.
 */
#ifndef SHIMMY_GGUF_H
#define SHIMMY_GGUF_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC             0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types (GGUF spec). */
typedef enum gguf_vtype {
    GGUF_VT_UINT8 = 0,
    GGUF_VT_INT8 = 1,
    GGUF_VT_UINT16 = 2,
    GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4,
    GGUF_VT_INT32 = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8,
    GGUF_VT_ARRAY = 9,
    GGUF_VT_UINT64 = 10,
    GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
    GGUF_VT_COUNT
} gguf_vtype;

/* Tensor types (GGML type ids as stored in GGUF). */
typedef enum gguf_ttype {
    GGUF_T_F32 = 0,
    GGUF_T_F16 = 1,
    GGUF_T_Q4_0 = 2,
    GGUF_T_Q4_1 = 3,
    GGUF_T_Q5_0 = 6,
    GGUF_T_Q5_1 = 7,
    GGUF_T_Q8_0 = 8,
    GGUF_T_Q8_1 = 9,
    GGUF_T_Q2_K = 10,
    GGUF_T_Q3_K = 11,
    GGUF_T_Q4_K = 12,
    GGUF_T_Q5_K = 13,
    GGUF_T_Q6_K = 14,
    GGUF_T_Q8_K = 15,
    GGUF_T_IQ2_XXS = 16,
    GGUF_T_IQ2_XS = 17,
    GGUF_T_IQ3_XXS = 18,
    GGUF_T_IQ1_S = 19,
    GGUF_T_IQ4_NL = 20,
    GGUF_T_IQ3_S = 21,
    GGUF_T_IQ2_S = 22,
    GGUF_T_IQ4_XS = 23,
    GGUF_T_I8 = 24,
    GGUF_T_I16 = 25,
    GGUF_T_I32 = 26,
    GGUF_T_I64 = 27,
    GGUF_T_F64 = 28,
    GGUF_T_IQ1_M = 29,
    GGUF_T_BF16 = 30,
    GGUF_T_TQ1_0 = 34,
    GGUF_T_TQ2_0 = 35,
    GGUF_T_MXFP4 = 39,
    GGUF_T_COUNT = 40
} gguf_ttype;

/* Storage layout of a tensor type: elements per block and bytes per block (0/0 = unknown). */
typedef struct gguf_type_layout {
    const char *name; /* "Q4_K", ... ; NULL for unknown ids */
    uint32_t block_size;
    uint32_t type_size;
} gguf_type_layout;

/* Layout of a type id; returns a zeroed layout (name NULL) for ids this build does not know. */
gguf_type_layout gguf_type_layout_of(uint32_t type);
/* Name of a tensor type id ("Q4_K"), or "unknown". */
const char *gguf_type_name(uint32_t type);
/* Bytes of a row of n elements; false on unknown type, n not a multiple of the block, overflow. */
bool gguf_row_bytes(uint32_t type, int64_t n, uint64_t *bytes);

typedef struct gguf_str {
    uint64_t len;
    const char *data; /* not NUL-terminated; borrowed */
} gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    gguf_vtype type;
    union {
        uint64_t u64; /* UINT8/16/32/64 widened */
        int64_t i64;  /* INT8/16/32/64 widened */
        double f64;   /* FLOAT32/64 widened */
        bool b;
        gguf_str str;
        struct {
            gguf_vtype elem_type;
            uint64_t count;
            const void *data;         /* raw little-endian elements for numeric/bool arrays */
            const gguf_str *strs;     /* for STRING arrays: count entries (parsed at open) */
            const gguf_value *arrays; /* for ARRAY arrays: count nested values */
        } arr;
    } v;
};

typedef struct gguf_kv {
    gguf_str key;
    gguf_value value;
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[4];   /* elements per dimension, ne[0] the row length; unused dims are 1 */
    uint32_t type;   /* gguf_ttype */
    uint64_t offset; /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data; /* into the mapping; borrowed */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Maps and parses a file. On failure *out is NULL and err names the file and what is wrong. */
shimmy_status gguf_open(const char *path, gguf_file **out, shimmy_error *err);
/* Parses a caller's buffer, which must outlive the gguf_file (used by the fuzzer and tests).
 * `name` labels errors. */
shimmy_status gguf_open_memory(const void *data, size_t size, const char *name, gguf_file **out,
                               shimmy_error *err);
/* Reads only the header, metadata and tensor directory, without mapping tensor data pages
 * (for discovery over many files). Tensor .data pointers are NULL in such a file. */
shimmy_status gguf_open_header(const char *path, gguf_file **out, shimmy_error *err);
void gguf_close(gguf_file *f);
/* Whether a mapped file is still what was opened. SHIMMY_ERR_IO naming the file when it shrank
 * under the mapping (a read past its new end found zero pages instead of ending the process, see
 * core_mapguard_add: tensor data read since then is wrong) or when its path now holds another
 * file, size or modification time (replaced or rewritten: a reload sees the new contents). One
 * stat call; a memory buffer is never changed. */
shimmy_status gguf_check_unchanged(const gguf_file *f, shimmy_error *err);
/* Only the first condition, as one atomic load (for checks between forward passes). */
bool gguf_damaged(const gguf_file *f);
/* Drops the whole pages of [p, p + n) from this process's resident memory when they lie in f's
 * mapping (a later read brings them back from the file); does nothing for a memory buffer. For
 * data a caller has copied elsewhere (model_repack). */
void gguf_release(const gguf_file *f, const void *p, size_t n);

uint32_t gguf_version(const gguf_file *f);
const char *gguf_path(const gguf_file *f); /* the path or name given at open */
uint64_t gguf_file_size(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* start of the tensor data section */

size_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i);
/* The value of a key, or NULL when absent. */
const gguf_value *gguf_get(const gguf_file *f, const char *key);

/* Typed getters: false when absent or of an incompatible type (integers convert between widths
 * when the value fits; floats accept any numeric type). *out is untouched on false. */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* An array value of the given element type (GGUF_VT_COUNT = any); NULL otherwise. */
const gguf_value *gguf_get_arr(const gguf_file *f, const char *key, gguf_vtype elem_type);

/* Element i of any array as a standalone value (a scalar, a string or a nested array);
 * caller guarantees i < count. Strings and nested arrays are borrowed from the file. */
gguf_value gguf_arr_elem(const gguf_value *arr, uint64_t i);
/* Element i of a numeric array converted; caller guarantees i < count. */
double gguf_arr_f64(const gguf_value *arr, uint64_t i);
int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i);

/* True when s equals the NUL-terminated c string. */
bool gguf_str_eq(gguf_str s, const char *c);
/* Copies s into buf (NUL-terminated, truncated to cap-1); returns buf. */
char *gguf_str_copy(gguf_str s, char *buf, size_t cap);

size_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
/* The tensor of that name or NULL (hash lookup). */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* ---- writing ---- */

typedef struct gguf_writer gguf_writer;

shimmy_status gguf_writer_new(gguf_writer **out, shimmy_error *err);
void gguf_writer_free(gguf_writer *w);
/* Setting a key twice replaces its value. Keys and values are copied. Errors (NOMEM) are
 * remembered and reported by gguf_writer_write. */
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* A scalar or array value exactly as a gguf_file holds it (arrays of any depth). */
void gguf_writer_set_value(gguf_writer *w, const char *key, const gguf_value *v);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n);
/* A numeric/bool array: n elements of elem_type, raw little-endian. */
void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data,
                         size_t n);
/* Copies every key of f whose name starts with prefix ("" = all). */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, const char *prefix);
/* Adds a tensor; data (nbytes per the type's layout) is copied. */
void gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, const void *data);
/* Writes version 3 with general.alignment (default 32) honoured. */
shimmy_status gguf_writer_write(gguf_writer *w, const char *path, shimmy_error *err);

#endif
