/* GGUF reader: maps a file (or borrows a buffer) and parses header, metadata and tensor directory.
 *
 * Every number read from the file is untrusted. The cursor refuses any read past the end, counts
 * are bounded by the bytes left divided by the smallest encoding of one element before anything
 * is allocated, and nesting depth is capped, so memory and stack stay O(file size). */
#include "gguf_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

/* Nested arrays are legal but nobody needs more than a couple of levels; the cap keeps a
 * hostile file from exhausting the stack through recursion. */
#define GGUF_MAX_DEPTH 8
#define GGUF_MAX_DIMS  4

typedef struct cursor {
    const uint8_t *p;
    uint64_t pos, size;
    /* Bytes the items still to come after the current one need at least. Counts are bounded by
     * what is left after this reserve, so the tables allocated for all arrays together stay
     * within a small multiple of the file size however the counts are spread. */
    uint64_t reserve;
    gguf_file *f;
    shimmy_error *err;
} cursor;

static uint64_t remaining(const cursor *c) {
    return c->size - c->pos;
}

static uint64_t available(const cursor *c) {
    return remaining(c) > c->reserve ? remaining(c) - c->reserve : 0;
}

static shimmy_status truncated(cursor *c, const char *what) {
    return core_error(c->err, SHIMMY_ERR_FORMAT, c->f->path,
                      "%s: truncated: %s at offset %llu runs past the end of the file (size %llu)",
                      c->f->path, what, (unsigned long long)c->pos, (unsigned long long)c->size);
}

static shimmy_status rd(cursor *c, void *dst, uint64_t n, const char *what) {
    if (n > remaining(c)) return truncated(c, what);
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return SHIMMY_OK;
}

static shimmy_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    return rd(c, v, 4, what);
}
static shimmy_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    return rd(c, v, 8, what);
}

static shimmy_status rd_str(cursor *c, gguf_str *s, const char *what);

/* Keys and tensor names are looked up by C string: a NUL inside would make them unreachable and
 * let two distinct names collide in every C-string API, so such names are refused. */
static shimmy_status rd_name(cursor *c, gguf_str *s, const char *what) {
    uint64_t at = c->pos;
    shimmy_status st = rd_str(c, s, what);
    if (st == SHIMMY_OK && s->len && memchr(s->data, 0, (size_t)s->len))
        return core_error(c->err, SHIMMY_ERR_FORMAT, c->f->path,
                          "%s: %s at offset %llu contains a NUL byte", c->f->path, what,
                          (unsigned long long)at);
    return st;
}

static shimmy_status rd_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t len = 0;
    shimmy_status st = rd_u64(c, &len, what);
    if (st) return st;
    if (len > remaining(c))
        return core_error(c->err, SHIMMY_ERR_FORMAT, c->f->path,
                          "%s: %s at offset %llu claims %llu bytes but only %llu remain",
                          c->f->path, what, (unsigned long long)(c->pos - 8),
                          (unsigned long long)len, (unsigned long long)remaining(c));
    s->len = len;
    s->data = (const char *)c->p + c->pos;
    c->pos += len;
    return SHIMMY_OK;
}

static void *file_alloc(gguf_file *f, size_t n, size_t size) {
    if (f->n_allocs == f->cap_allocs) {
        size_t cap = f->cap_allocs ? f->cap_allocs * 2 : 16;
        void **a = core_realloc(f->allocs, cap * sizeof *a);
        if (!a) return NULL;
        f->allocs = a;
        f->cap_allocs = cap;
    }
    void *p = core_calloc(n ? n : 1, size);
    if (p) f->allocs[f->n_allocs++] = p;
    return p;
}

/* Bytes of one scalar of a metadata type; 0 for STRING/ARRAY and unknown types. */
static uint32_t vtype_size(uint32_t t) {
    static const uint8_t sizes[GGUF_VT_COUNT] = {
        [GGUF_VT_UINT8] = 1,  [GGUF_VT_INT8] = 1,  [GGUF_VT_UINT16] = 2,  [GGUF_VT_INT16] = 2,
        [GGUF_VT_UINT32] = 4, [GGUF_VT_INT32] = 4, [GGUF_VT_FLOAT32] = 4, [GGUF_VT_BOOL] = 1,
        [GGUF_VT_UINT64] = 8, [GGUF_VT_INT64] = 8, [GGUF_VT_FLOAT64] = 8,
    };
    return t < GGUF_VT_COUNT ? sizes[t] : 0;
}

/* Decodes one little-endian scalar of type t at p into v (t must have a vtype_size). */
static void decode_scalar(uint32_t t, const uint8_t *p, gguf_value *v) {
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f32;
    double f64;
    v->type = (gguf_vtype)t;
    switch ((gguf_vtype)t) {
    case GGUF_VT_UINT8: memcpy(&u8, p, 1), v->v.u64 = u8; break;
    case GGUF_VT_INT8: memcpy(&u8, p, 1), v->v.i64 = (int8_t)u8; break;
    case GGUF_VT_UINT16: memcpy(&u16, p, 2), v->v.u64 = u16; break;
    case GGUF_VT_INT16: memcpy(&u16, p, 2), v->v.i64 = (int16_t)u16; break;
    case GGUF_VT_UINT32: memcpy(&u32, p, 4), v->v.u64 = u32; break;
    case GGUF_VT_INT32: memcpy(&u32, p, 4), v->v.i64 = (int32_t)u32; break;
    case GGUF_VT_UINT64: memcpy(&u64, p, 8), v->v.u64 = u64; break;
    case GGUF_VT_INT64: memcpy(&u64, p, 8), v->v.i64 = (int64_t)u64; break;
    case GGUF_VT_FLOAT32: memcpy(&f32, p, 4), v->v.f64 = f32; break;
    case GGUF_VT_FLOAT64: memcpy(&f64, p, 8), v->v.f64 = f64; break;
    case GGUF_VT_BOOL: v->v.b = p[0] != 0; break;
    default: break;
    }
}

static shimmy_status read_value(cursor *c, uint32_t type, gguf_value *v, int depth,
                                const char *key);

/* Reads the array body after its type tag: element type, count, elements. */
static shimmy_status read_array(cursor *c, gguf_value *v, int depth, const char *key) {
    uint32_t et = 0;
    uint64_t count = 0;
    shimmy_status st;
    if ((st = rd_u32(c, &et, "array element type")) || (st = rd_u64(c, &count, "array length")))
        return st;
    if (et >= GGUF_VT_COUNT)
        return core_error(c->err, SHIMMY_ERR_FORMAT, c->f->path,
                          "%s: key '%s': array element type %u is not a GGUF value type",
                          c->f->path, key, et);
    v->type = GGUF_VT_ARRAY;
    v->v.arr.elem_type = (gguf_vtype)et;
    v->v.arr.count = count;
    /* The smallest encoding of one element bounds the count before anything is allocated. */
    uint64_t min_elem = vtype_size(et) ? vtype_size(et) : et == GGUF_VT_STRING ? 8 : 12;
    if (count > available(c) / min_elem)
        return core_error(c->err, SHIMMY_ERR_FORMAT, c->f->path,
                          "%s: key '%s': array of %llu elements at offset %llu cannot fit in the "
                          "%llu bytes that remain",
                          c->f->path, key, (unsigned long long)count,
                          (unsigned long long)(c->pos - 12), (unsigned long long)available(c));
    if (vtype_size(et)) {
        v->v.arr.data = c->p + c->pos;
        c->pos += count * vtype_size(et);
        return SHIMMY_OK;
    }
    if (et == GGUF_VT_STRING) {
        gguf_str *strs = file_alloc(c->f, (size_t)count, sizeof *strs);
        if (!strs)
            return core_error(c->err, SHIMMY_ERR_NOMEM, c->f->path,
                              "%s: key '%s': no memory for %llu strings", c->f->path, key,
                              (unsigned long long)count);
        for (uint64_t i = 0; i < count; i++)
            if ((st = rd_str(c, &strs[i], "array string"))) return st;
        v->v.arr.strs = strs;
        return SHIMMY_OK;
    }
    if (depth + 1 >= GGUF_MAX_DEPTH)
        return core_error(c->err, SHIMMY_ERR_FORMAT, c->f->path,
                          "%s: key '%s': arrays nested deeper than %d levels", c->f->path, key,
                          GGUF_MAX_DEPTH);
    gguf_value *arrays = file_alloc(c->f, (size_t)count, sizeof *arrays);
    if (!arrays)
        return core_error(c->err, SHIMMY_ERR_NOMEM, c->f->path,
                          "%s: key '%s': no memory for %llu nested arrays", c->f->path, key,
                          (unsigned long long)count);
    v->v.arr.arrays = arrays;
    uint64_t outer = c->reserve;
    for (uint64_t i = 0; i < count; i++) {
        c->reserve = outer + (count - i - 1) * 12; /* no overflow: count * 12 <= size */
        if ((st = read_value(c, GGUF_VT_ARRAY, &arrays[i], depth + 1, key))) return st;
    }
    c->reserve = outer;
    return SHIMMY_OK;
}

static shimmy_status read_value(cursor *c, uint32_t type, gguf_value *v, int depth,
                                const char *key) {
    uint32_t sz = vtype_size(type);
    if (sz) {
        if (sz > remaining(c)) return truncated(c, "metadata value");
        decode_scalar(type, c->p + c->pos, v);
        c->pos += sz;
        return SHIMMY_OK;
    }
    if (type == GGUF_VT_STRING) {
        v->type = GGUF_VT_STRING;
        return rd_str(c, &v->v.str, "metadata string");
    }
    if (type == GGUF_VT_ARRAY) return read_array(c, v, depth, key);
    return core_error(c->err, SHIMMY_ERR_FORMAT, c->f->path,
                      "%s: key '%s': value type %u is not a GGUF value type", c->f->path, key,
                      type);
}

/* ---- parsing ---- */

static void print_str(gguf_str s, char *buf, size_t cap) {
    gguf_str_copy(s, buf, cap);
}

/* The smallest encodings: a metadata entry is a key length (8), a value type (4) and a one-byte
 * value; a tensor entry a name length (8), n_dims (4), type (4) and offset (8). */
#define MIN_KV_BYTES     13
#define MIN_TENSOR_BYTES 24

static shimmy_status parse_kvs(cursor *c, uint64_t n_kv, uint64_t n_tensors) {
    gguf_file *f = c->f;
    shimmy_status st;
    if (n_kv > remaining(c) / MIN_KV_BYTES)
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: header claims %llu metadata entries but only %llu bytes remain",
                          f->path, (unsigned long long)n_kv, (unsigned long long)remaining(c));
    if (n_tensors > remaining(c) / MIN_TENSOR_BYTES ||
        n_kv * MIN_KV_BYTES + n_tensors * MIN_TENSOR_BYTES > remaining(c))
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: header claims %llu metadata entries and %llu tensors but only %llu "
                          "bytes remain",
                          f->path, (unsigned long long)n_kv, (unsigned long long)n_tensors,
                          (unsigned long long)remaining(c));
    if (n_kv >= UINT32_MAX)
        return core_error(c->err, SHIMMY_ERR_UNSUPPORTED, f->path, "%s: %llu metadata entries",
                          f->path, (unsigned long long)n_kv);
    f->kvs = core_calloc(n_kv ? (size_t)n_kv : 1, sizeof *f->kvs);
    f->kv_cap = gguf_table_cap((size_t)n_kv);
    f->kv_slots = core_calloc(f->kv_cap, sizeof *f->kv_slots);
    if (!f->kvs || !f->kv_slots)
        return core_error(c->err, SHIMMY_ERR_NOMEM, f->path, "%s: no memory for %llu keys", f->path,
                          (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        uint32_t type = 0;
        char key[128];
        if ((st = rd_name(c, &kv->key, "metadata key"))) return st;
        print_str(kv->key, key, sizeof key);
        if ((st = rd_u32(c, &type, "metadata value type"))) return st;
        c->reserve = (n_kv - i - 1) * MIN_KV_BYTES + n_tensors * MIN_TENSOR_BYTES;
        if ((st = read_value(c, type, &kv->value, 0, key))) return st;
        c->reserve = 0;
        size_t slot = gguf_kv_probe(f, kv->key.data, kv->key.len);
        if (f->kv_slots[slot])
            return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                              "%s: metadata key '%s' appears twice", f->path, key);
        f->kv_slots[slot] = (uint32_t)(i + 1);
        f->n_kv = (size_t)i + 1;
    }
    return SHIMMY_OK;
}

static shimmy_status read_alignment(cursor *c) {
    gguf_file *f = c->f;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_value *v = gguf_get(f, "general.alignment");
    if (!v) return SHIMMY_OK;
    uint32_t a = 0;
    if (!gguf_get_u32(f, "general.alignment", &a))
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: general.alignment must be an unsigned 32-bit integer (value type "
                          "%d)",
                          f->path, (int)v->type);
    if (a == 0 || (a & (a - 1)))
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: general.alignment must be a non-zero power of two (got %u)", f->path,
                          a);
    f->alignment = a;
    return SHIMMY_OK;
}

static shimmy_status parse_tensor_info(cursor *c, gguf_tensor *t, uint64_t idx) {
    gguf_file *f = c->f;
    shimmy_status st;
    char name[128];
    if ((st = rd_name(c, &t->name, "tensor name"))) return st;
    print_str(t->name, name, sizeof name);
    if ((st = rd_u32(c, &t->n_dims, "tensor dimension count"))) return st;
    if (t->n_dims > GGUF_MAX_DIMS)
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: tensor '%s': %u dimensions (at most %d are allowed)", f->path, name,
                          t->n_dims, GGUF_MAX_DIMS);
    uint64_t n_elem = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if ((uint32_t)d >= t->n_dims) continue;
        uint64_t ne = 0;
        if ((st = rd_u64(c, &ne, "tensor shape"))) return st;
        if (ne > (uint64_t)INT64_MAX || !core_mul_u64(n_elem, ne, &n_elem) ||
            n_elem > (uint64_t)INT64_MAX)
            return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                              "%s: tensor '%s': shape overflows (dimension %d is %llu)", f->path,
                              name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((st = rd_u32(c, &t->type, "tensor type")) || (st = rd_u64(c, &t->offset, "tensor offset")))
        return st;
    gguf_type_layout l = gguf_type_layout_of(t->type);
    if (!l.name)
        return core_error(c->err, SHIMMY_ERR_UNSUPPORTED, f->path,
                          "%s: tensor '%s' has unknown type id %u", f->path, name, t->type);
    uint64_t row;
    if (!gguf_row_bytes(t->type, t->ne[0], &row))
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: tensor '%s': row length %lld is not a multiple of the %s block size "
                          "%u",
                          f->path, name, (long long)t->ne[0], l.name, l.block_size);
    uint64_t rows = t->ne[0] ? n_elem / (uint64_t)t->ne[0] : 0;
    if (!core_mul_u64(row, rows, &t->nbytes))
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: tensor '%s': byte size overflows", f->path, name);
    size_t slot = gguf_tensor_probe(f, t->name.data, t->name.len);
    if (f->t_slots[slot])
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path, "%s: tensor name '%s' appears twice",
                          f->path, name);
    f->t_slots[slot] = (uint32_t)(idx + 1);
    return SHIMMY_OK;
}

static shimmy_status parse_tensors(cursor *c, uint64_t n_tensors) {
    gguf_file *f = c->f;
    shimmy_status st;
    if (n_tensors > remaining(c) / MIN_TENSOR_BYTES)
        return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: header claims %llu tensors but only %llu bytes remain", f->path,
                          (unsigned long long)n_tensors, (unsigned long long)remaining(c));
    if (n_tensors >= UINT32_MAX)
        return core_error(c->err, SHIMMY_ERR_UNSUPPORTED, f->path, "%s: %llu tensors", f->path,
                          (unsigned long long)n_tensors);
    f->tensors = core_calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *f->tensors);
    f->t_cap = gguf_table_cap((size_t)n_tensors);
    f->t_slots = core_calloc(f->t_cap, sizeof *f->t_slots);
    if (!f->tensors || !f->t_slots)
        return core_error(c->err, SHIMMY_ERR_NOMEM, f->path, "%s: no memory for %llu tensors",
                          f->path, (unsigned long long)n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++) {
        if ((st = parse_tensor_info(c, &f->tensors[i], i))) return st;
        f->n_tensors = (size_t)i + 1;
    }
    uint64_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
    f->data_offset = c->pos + pad;
    for (size_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        char name[128];
        print_str(t->name, name, sizeof name);
        if (t->offset % f->alignment)
            return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                              "%s: tensor '%s': data offset %llu is not a multiple of the "
                              "alignment %u",
                              f->path, name, (unsigned long long)t->offset, f->alignment);
        uint64_t start, end;
        if (!core_add_u64(f->data_offset, t->offset, &start) ||
            !core_add_u64(start, t->nbytes, &end) || end > f->size)
            return core_error(c->err, SHIMMY_ERR_FORMAT, f->path,
                              "%s: tensor '%s': data [%llu, %llu + %llu) extends past end of file "
                              "(size %llu)",
                              f->path, name, (unsigned long long)start, (unsigned long long)start,
                              (unsigned long long)t->nbytes, (unsigned long long)f->size);
        t->data = f->header_only ? NULL : f->base + start;
    }
    return SHIMMY_OK;
}

static shimmy_status parse(gguf_file *f, shimmy_error *err) {
    cursor c = {.p = f->base, .pos = 0, .size = f->size, .f = f, .err = err};
    uint32_t magic = 0, version = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    shimmy_status st;
    if (f->size < 4 || (memcpy(&magic, f->base, 4), magic != GGUF_MAGIC))
        return core_error(err, SHIMMY_ERR_FORMAT, f->path,
                          "%s: not a GGUF file (the first 4 bytes are not \"GGUF\")", f->path);
    c.pos = 4;
    if ((st = rd_u32(&c, &version, "version"))) return st;
    if (version == 1)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, f->path,
                          "%s: GGUF version 1 is not supported; re-convert the model with a "
                          "current converter (versions 2 and 3 are read)",
                          f->path);
    if (version != 2 && version != 3) {
        bool swapped = (version & 0xFFFF) == 0 && version != 0;
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, f->path,
                          "%s: GGUF version %u is not supported (2 and 3 are)%s", f->path, version,
                          swapped ? "; the file looks big-endian, which is not supported" : "");
    }
    f->version = version;
    if ((st = rd_u64(&c, &n_tensors, "tensor count")) || (st = rd_u64(&c, &n_kv, "metadata count")))
        return st;
    if ((st = parse_kvs(&c, n_kv, n_tensors))) return st;
    if ((st = read_alignment(&c))) return st;
    return parse_tensors(&c, n_tensors);
}

static gguf_file *file_new(const char *name) {
    gguf_file *f = core_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->guard = -1;
    f->path = core_strdup(name ? name : "(memory)");
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_allocs; i++) free(f->allocs[i]);
    free(f->allocs);
    free(f->kvs);
    free(f->kv_slots);
    free(f->tensors);
    free(f->t_slots);
    core_mapguard_remove(f->guard); /* before munmap: the range may be reused at once */
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

shimmy_status gguf_open_memory(const void *data, size_t size, const char *name, gguf_file **out,
                               shimmy_error *err) {
    *out = NULL;
    gguf_file *f = file_new(name);
    if (!f) return core_error(err, SHIMMY_ERR_NOMEM, name, "no memory to open a GGUF buffer");
    f->base = data;
    f->size = data ? size : 0;
    shimmy_status st = parse(f, err);
    if (st) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return SHIMMY_OK;
}

static shimmy_status open_mapped(const char *path, bool header_only, gguf_file **out,
                                 shimmy_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return core_error(err, errno == ENOENT ? SHIMMY_ERR_NOT_FOUND : SHIMMY_ERR_IO, path,
                          "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return core_error(err, SHIMMY_ERR_IO, path, "%s: not a regular file", path);
    }
    if (sb.st_size < 24) {
        close(fd);
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          "%s: %lld bytes is too small to be a GGUF file", path,
                          (long long)sb.st_size);
    }
    gguf_file *f = file_new(path);
    if (!f) {
        close(fd);
        return core_error(err, SHIMMY_ERR_NOMEM, path, "no memory to open %s", path);
    }
    f->map_size = (size_t)sb.st_size;
    void *m = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (m == MAP_FAILED) {
        gguf_close(f);
        return core_error(err, SHIMMY_ERR_IO, path, "%s: cannot map: %s", path,
                          strerror(map_errno));
    }
    /* Discovery reads only the header: keep the kernel from reading ahead into tensor data. */
    if (header_only) madvise(m, f->map_size, MADV_RANDOM);
    f->map = m;
    f->base = m;
    f->size = (uint64_t)sb.st_size;
    f->header_only = header_only;
    f->guard = core_mapguard_add(m, f->map_size); /* before parse reads it */
    f->st_dev = (uint64_t)sb.st_dev;
    f->st_ino = (uint64_t)sb.st_ino;
    f->st_mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    shimmy_status st = parse(f, err);
    if (st) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return SHIMMY_OK;
}

shimmy_status gguf_open(const char *path, gguf_file **out, shimmy_error *err) {
    return open_mapped(path, false, out, err);
}

shimmy_status gguf_open_header(const char *path, gguf_file **out, shimmy_error *err) {
    return open_mapped(path, true, out, err);
}

void gguf_release(const gguf_file *f, const void *p, size_t n) {
    if (!f || !f->map || !n) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), map = (uintptr_t)f->map;
    uintptr_t a = (uintptr_t)p, b = a + n;
    if (a < map || b > map + f->map_size) return;
    a = (a + page - 1) & ~(page - 1); /* whole pages only: neighbours may still be in use */
    b &= ~(page - 1);
    /* a private read-only file mapping: the pages are dropped, not the file's contents */
    if (a < b) madvise((void *)a, b - a, MADV_DONTNEED);
}

bool gguf_damaged(const gguf_file *f) {
    return f && core_mapguard_damaged(f->guard);
}

shimmy_status gguf_check_unchanged(const gguf_file *f, shimmy_error *err) {
    if (!f || !f->map) return SHIMMY_OK;
    if (gguf_damaged(f))
        return core_error(err, SHIMMY_ERR_IO, f->path,
                          "%s was truncated on disk while it was loaded; its weights are no "
                          "longer readable (the next request reloads the file)",
                          f->path);
    struct stat sb;
    if (stat(f->path, &sb) != 0)
        return core_error(err, SHIMMY_ERR_IO, f->path, "%s changed on disk while it was loaded: %s",
                          f->path, strerror(errno));
    int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    if ((uint64_t)sb.st_dev != f->st_dev || (uint64_t)sb.st_ino != f->st_ino ||
        (size_t)sb.st_size != f->map_size || mtime != f->st_mtime_ns)
        return core_error(err, SHIMMY_ERR_IO, f->path,
                          "%s changed on disk while it was loaded (%s)", f->path,
                          (uint64_t)sb.st_ino != f->st_ino    ? "replaced by another file"
                          : (size_t)sb.st_size != f->map_size ? "new size"
                                                              : "rewritten");
    return SHIMMY_OK;
}
