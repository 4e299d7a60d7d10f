/* GGUF writer: collects metadata and tensors in memory (copies), then writes a version 3 file in
 * one pass. Keys keep their first insertion order; tensors are laid out in insertion order, each
 * at an offset that is a multiple of general.alignment, with zeroed padding. The file is written
 * under a temporary name and renamed, so readers never see half a file. */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wkv {
    char *key;
    gguf_value value; /* deep copy; every pointer inside is owned */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    void *data; /* owned */
} wtensor;

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    shimmy_error first_err; /* the first failure; reported by gguf_writer_write */
};

static void fail(gguf_writer *w, shimmy_status st, const char *where, const char *msg) {
    if (w->first_err.status) return;
    core_error(&w->first_err, st, where, "%s", msg);
}

static uint32_t scalar_size(gguf_vtype t) {
    switch (t) {
    case GGUF_VT_UINT8:
    case GGUF_VT_INT8:
    case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16:
    case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32:
    case GGUF_VT_INT32:
    case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64:
    case GGUF_VT_INT64:
    case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

static void value_free(gguf_value *v) {
    if (v->type == GGUF_VT_STRING) {
        free((void *)v->v.str.data);
    } else if (v->type == GGUF_VT_ARRAY) {
        if (v->v.arr.strs)
            for (uint64_t i = 0; i < v->v.arr.count; i++) free((void *)v->v.arr.strs[i].data);
        if (v->v.arr.arrays)
            for (uint64_t i = 0; i < v->v.arr.count; i++)
                value_free((gguf_value *)&v->v.arr.arrays[i]);
        free((void *)v->v.arr.data);
        free((void *)v->v.arr.strs);
        free((void *)v->v.arr.arrays);
    }
    memset(v, 0, sizeof *v);
}

static bool str_dup(gguf_str s, gguf_str *out) {
    char *d = core_malloc((size_t)s.len + 1);
    if (!d) return false;
    if (s.len) memcpy(d, s.data, (size_t)s.len);
    d[s.len] = '\0';
    out->data = d;
    out->len = s.len;
    return true;
}

/* Deep-copies src into *dst (zeroed by the caller); on failure *dst is freed and false returned. */
static bool value_copy(const gguf_value *src, gguf_value *dst) {
    dst->type = src->type;
    if (src->type == GGUF_VT_STRING) return str_dup(src->v.str, &dst->v.str);
    if (src->type != GGUF_VT_ARRAY) {
        dst->v = src->v;
        return scalar_size(src->type) != 0;
    }
    gguf_vtype et = src->v.arr.elem_type;
    uint64_t n = src->v.arr.count;
    dst->v.arr.elem_type = et;
    dst->v.arr.count = n;
    size_t items = n ? (size_t)n : 1;
    if (scalar_size(et)) {
        void *d = core_malloc(items * scalar_size(et));
        if (!d) return false;
        if (n) memcpy(d, src->v.arr.data, (size_t)n * scalar_size(et));
        dst->v.arr.data = d;
        return true;
    }
    if (et == GGUF_VT_STRING) {
        gguf_str *s = core_calloc(items, sizeof *s);
        if (!s) return false;
        dst->v.arr.strs = s;
        for (uint64_t i = 0; i < n; i++)
            if (!str_dup(src->v.arr.strs[i], &s[i])) return value_free(dst), false;
        return true;
    }
    if (et != GGUF_VT_ARRAY) return false;
    gguf_value *a = core_calloc(items, sizeof *a);
    if (!a) return false;
    dst->v.arr.arrays = a;
    for (uint64_t i = 0; i < n; i++)
        if (src->v.arr.arrays[i].type != GGUF_VT_ARRAY || !value_copy(&src->v.arr.arrays[i], &a[i]))
            return value_free(dst), false;
    return true;
}

shimmy_status gguf_writer_new(gguf_writer **out, shimmy_error *err) {
    *out = core_calloc(1, sizeof **out);
    if (!*out) return core_error(err, SHIMMY_ERR_NOMEM, NULL, "no memory for a GGUF writer");
    return SHIMMY_OK;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        value_free(&w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* Stores an already-owned value under key, replacing an earlier value; takes ownership of v. */
static void set_owned(gguf_writer *w, const char *key, gguf_value *v) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) {
            value_free(&w->kvs[i].value);
            w->kvs[i].value = *v;
            return;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *k = core_realloc(w->kvs, cap * sizeof *k);
        if (!k) goto nomem;
        w->kvs = k;
        w->cap_kv = cap;
    }
    char *kc = core_strdup(key);
    if (!kc) goto nomem;
    w->kvs[w->n_kv].key = kc;
    w->kvs[w->n_kv].value = *v;
    w->n_kv++;
    return;
nomem:
    value_free(v);
    fail(w, SHIMMY_ERR_NOMEM, key, "no memory for a metadata value");
}

void gguf_writer_set_value(gguf_writer *w, const char *key, const gguf_value *v) {
    gguf_value copy = {0};
    if (!value_copy(v, &copy)) {
        value_free(&copy);
        fail(w, SHIMMY_ERR_INVALID_ARG, key,
             "metadata value cannot be copied (bad type or no memory)");
        return;
    }
    set_owned(w, key, &copy);
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    gguf_value x = {.type = GGUF_VT_UINT32, .v.u64 = v};
    set_owned(w, key, &x);
}

void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    gguf_value x = {.type = GGUF_VT_INT32, .v.i64 = v};
    set_owned(w, key, &x);
}

void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    gguf_value x = {.type = GGUF_VT_UINT64, .v.u64 = v};
    set_owned(w, key, &x);
}

void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    gguf_value x = {.type = GGUF_VT_FLOAT32, .v.f64 = v};
    set_owned(w, key, &x);
}

void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    gguf_value x = {.type = GGUF_VT_BOOL, .v.b = v};
    set_owned(w, key, &x);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    gguf_value x = {.type = GGUF_VT_STRING, .v.str = {strlen(v), v}};
    gguf_writer_set_value(w, key, &x);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, size_t n) {
    gguf_str *strs = core_calloc(n ? n : 1, sizeof *strs);
    if (!strs) {
        fail(w, SHIMMY_ERR_NOMEM, key, "no memory for a string array");
        return;
    }
    for (size_t i = 0; i < n; i++) strs[i] = (gguf_str){strlen(v[i]), v[i]};
    gguf_value x = {.type = GGUF_VT_ARRAY};
    x.v.arr.elem_type = GGUF_VT_STRING;
    x.v.arr.count = n;
    x.v.arr.strs = strs;
    gguf_writer_set_value(w, key, &x);
    free(strs);
}

void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data,
                         size_t n) {
    if (!scalar_size(elem_type)) {
        fail(w, SHIMMY_ERR_INVALID_ARG, key,
             "gguf_writer_set_arr takes numeric or bool "
             "elements only");
        return;
    }
    gguf_value x = {.type = GGUF_VT_ARRAY};
    x.v.arr.elem_type = elem_type;
    x.v.arr.count = n;
    x.v.arr.data = data;
    gguf_writer_set_value(w, key, &x);
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, const char *prefix) {
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->key.len < plen || memcmp(kv->key.data, prefix, plen) != 0) continue;
        char *key = core_malloc((size_t)kv->key.len + 1);
        if (!key) {
            fail(w, SHIMMY_ERR_NOMEM, prefix, "no memory to copy metadata");
            return;
        }
        gguf_str_copy(kv->key, key, (size_t)kv->key.len + 1);
        gguf_writer_set_value(w, key, &kv->value);
        free(key);
    }
}

void gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, const void *data) {
    char msg[256];
    gguf_type_layout l = gguf_type_layout_of(type);
    if (!l.name) {
        snprintf(msg, sizeof msg, "tensor '%s': unknown type id %u", name, type);
        {
            fail(w, SHIMMY_ERR_INVALID_ARG, name, msg);
            return;
        }
    }
    if (n_dims > 4) {
        snprintf(msg, sizeof msg, "tensor '%s': %u dimensions (at most 4)", name, n_dims);
        {
            fail(w, SHIMMY_ERR_INVALID_ARG, name, msg);
            return;
        }
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) {
            snprintf(msg, sizeof msg, "tensor '%s' added twice", name);
            {
                fail(w, SHIMMY_ERR_INVALID_ARG, name, msg);
                return;
            }
        }
    wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || (d > 0 && !core_mul_u64(rows, (uint64_t)ne[d], &rows))) {
            snprintf(msg, sizeof msg, "tensor '%s': bad shape", name);
            {
                fail(w, SHIMMY_ERR_INVALID_ARG, name, msg);
                return;
            }
        }
        t.ne[d] = ne[d];
    }
    uint64_t row;
    if (!gguf_row_bytes(type, t.ne[0], &row) || !core_mul_u64(row, rows, &t.nbytes) ||
        t.nbytes > SIZE_MAX / 2) {
        snprintf(msg, sizeof msg, "tensor '%s': row length %lld does not fit type %s (block %u)",
                 name, (long long)t.ne[0], l.name, l.block_size);
        {
            fail(w, SHIMMY_ERR_INVALID_ARG, name, msg);
            return;
        }
    }
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *a = core_realloc(w->tensors, cap * sizeof *a);
        if (!a) {
            fail(w, SHIMMY_ERR_NOMEM, name, "no memory for a tensor");
            return;
        }
        w->tensors = a;
        w->cap_tensors = cap;
    }
    t.name = core_strdup(name);
    t.data = core_malloc(t.nbytes ? (size_t)t.nbytes : 1);
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        {
            fail(w, SHIMMY_ERR_NOMEM, name, "no memory for tensor data");
            return;
        }
    }
    if (t.nbytes) memcpy(t.data, data, (size_t)t.nbytes);
    w->tensors[w->n_tensors++] = t;
}

/* ---- serialisation ---- */

static bool put(FILE *fp, const void *p, size_t n) {
    return n == 0 || fwrite(p, 1, n, fp) == n;
}
static bool put_u32(FILE *fp, uint32_t v) {
    return put(fp, &v, 4);
}
static bool put_u64(FILE *fp, uint64_t v) {
    return put(fp, &v, 8);
}
static bool put_str(FILE *fp, const char *s, uint64_t n) {
    return put_u64(fp, n) && put(fp, s, n);
}

static bool put_scalar(FILE *fp, const gguf_value *v) {
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    float f32;
    switch (v->type) {
    case GGUF_VT_UINT8: return u8 = (uint8_t)v->v.u64, put(fp, &u8, 1);
    case GGUF_VT_INT8: return u8 = (uint8_t)v->v.i64, put(fp, &u8, 1);
    case GGUF_VT_BOOL: return u8 = v->v.b, put(fp, &u8, 1);
    case GGUF_VT_UINT16: return u16 = (uint16_t)v->v.u64, put(fp, &u16, 2);
    case GGUF_VT_INT16: return u16 = (uint16_t)v->v.i64, put(fp, &u16, 2);
    case GGUF_VT_UINT32: return u32 = (uint32_t)v->v.u64, put(fp, &u32, 4);
    case GGUF_VT_INT32: return u32 = (uint32_t)v->v.i64, put(fp, &u32, 4);
    case GGUF_VT_FLOAT32: return f32 = (float)v->v.f64, put(fp, &f32, 4);
    case GGUF_VT_UINT64: return put(fp, &v->v.u64, 8);
    case GGUF_VT_INT64: return put(fp, &v->v.i64, 8);
    case GGUF_VT_FLOAT64: return put(fp, &v->v.f64, 8);
    default: return false;
    }
}

/* Writes a value's payload (its type tag is written by the caller). */
static bool put_value(FILE *fp, const gguf_value *v) {
    if (v->type == GGUF_VT_STRING) return put_str(fp, v->v.str.data, v->v.str.len);
    if (v->type != GGUF_VT_ARRAY) return put_scalar(fp, v);
    gguf_vtype et = v->v.arr.elem_type;
    uint64_t n = v->v.arr.count;
    if (!put_u32(fp, et) || !put_u64(fp, n)) return false;
    if (scalar_size(et)) return put(fp, v->v.arr.data, (size_t)n * scalar_size(et));
    for (uint64_t i = 0; i < n; i++) {
        bool ok = et == GGUF_VT_STRING ? put_str(fp, v->v.arr.strs[i].data, v->v.arr.strs[i].len)
                                       : put_value(fp, &v->v.arr.arrays[i]);
        if (!ok) return false;
    }
    return true;
}

static bool put_pad(FILE *fp, uint64_t pos, uint32_t align) {
    static const uint8_t zeros[256];
    uint64_t pad = (align - pos % align) % align;
    while (pad) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        if (!put(fp, zeros, n)) return false;
        pad -= n;
    }
    return true;
}

static bool put_all(gguf_writer *w, FILE *fp, uint32_t align) {
    if (!put_u32(fp, GGUF_MAGIC) || !put_u32(fp, 3) || !put_u64(fp, w->n_tensors) ||
        !put_u64(fp, w->n_kv))
        return false;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        if (!put_str(fp, kv->key, strlen(kv->key)) || !put_u32(fp, kv->value.type) ||
            !put_value(fp, &kv->value))
            return false;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if (!put_str(fp, t->name, strlen(t->name)) || !put_u32(fp, t->n_dims)) return false;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (!put_u64(fp, (uint64_t)t->ne[d])) return false;
        if (!put_u32(fp, t->type) || !put_u64(fp, off)) return false;
        off += t->nbytes + (align - t->nbytes % align) % align;
    }
    long pos = ftell(fp);
    if (pos < 0 || !put_pad(fp, (uint64_t)pos, align)) return false;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if (!put(fp, t->data, (size_t)t->nbytes) || !put_pad(fp, t->nbytes, align)) return false;
    }
    return true;
}

shimmy_status gguf_writer_write(gguf_writer *w, const char *path, shimmy_error *err) {
    if (w->first_err.status) {
        if (err) *err = w->first_err;
        return w->first_err.status;
    }
    uint32_t align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        /* The reader's rule: any integer type, a power of two that fits 32 bits. */
        const gguf_value *v = &w->kvs[i].value;
        bool is_signed = v->type == GGUF_VT_INT8 || v->type == GGUF_VT_INT16 ||
                         v->type == GGUF_VT_INT32 || v->type == GGUF_VT_INT64;
        bool is_unsigned = v->type == GGUF_VT_UINT8 || v->type == GGUF_VT_UINT16 ||
                           v->type == GGUF_VT_UINT32 || v->type == GGUF_VT_UINT64;
        uint64_t a = is_unsigned ? v->v.u64 : is_signed && v->v.i64 > 0 ? (uint64_t)v->v.i64 : 0;
        if (a == 0 || a > UINT32_MAX || (a & (a - 1)))
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "general.alignment",
                              "general.alignment must be an integer power of two below 2^32");
        align = (uint32_t)a;
    }
    size_t tlen = strlen(path) + 16;
    char *tmp = core_malloc(tlen);
    if (!tmp) return core_error(err, SHIMMY_ERR_NOMEM, path, "no memory to write %s", path);
    snprintf(tmp, tlen, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        shimmy_status st =
            core_error(err, SHIMMY_ERR_IO, path, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    bool ok = put_all(w, fp, align);
    int saved = errno;
    if (fclose(fp) != 0 && ok) ok = false, saved = errno;
    if (ok && rename(tmp, path) != 0) ok = false, saved = errno;
    if (!ok) {
        remove(tmp);
        free(tmp);
        return core_error(err, SHIMMY_ERR_IO, path, "%s: write failed: %s", path, strerror(saved));
    }
    free(tmp);
    return SHIMMY_OK;
}
