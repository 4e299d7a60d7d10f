/* Safetensors reader: an 8-byte little-endian header length, a JSON header, then the data.
 *
 * The file is untrusted. The header length is checked against the file before anything is
 * parsed, and capped, so parsing memory stays a small multiple of the file size. Tensor extents
 * must tile the data section exactly, as the format requires (no holes, no overlap, nothing
 * after the last tensor): a file that satisfies this cannot alias one tensor's bytes as
 * another's, and every data pointer handed out is inside the mapping. */
#include "lora/lora.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors reader assumes a little-endian host"
#endif

/* The reference implementation's limit; real headers are kilobytes to a few megabytes. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

struct lora_st {
    char *name;
    void *map; /* owned mapping, NULL when the caller's buffer is borrowed */
    size_t map_size;
    int guard;    /* core_mapguard id of the mapping (-1: none): truncation is no SIGBUS */
    json_t *root; /* owns the tensor names the table borrows */
    json_t *meta; /* borrowed from root, or NULL */
    lora_st_tensor *tensors; /* sorted by name */
    size_t n;
};

typedef struct st_dtype {
    const char *name;
    uint32_t type;
    uint32_t size;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", GGUF_T_F32, 4},
    {"F16", GGUF_T_F16, 2},
    {"BF16", GGUF_T_BF16, 2},
};

static const st_dtype *dtype_find(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

typedef struct extent {
    uint64_t begin, end;
    size_t idx;
} extent;

static int cmp_extent(const void *pa, const void *pb) {
    const extent *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}

static int cmp_tensor(const void *pa, const void *pb) {
    return strcmp(((const lora_st_tensor *)pa)->name, ((const lora_st_tensor *)pb)->name);
}

static shimmy_status bad(shimmy_error *err, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A format error prefixed with the file, so every message says which adapter file is wrong. */
static shimmy_status bad(shimmy_error *err, const char *file, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_error(err, SHIMMY_ERR_FORMAT, file, "safetensors file '%s': %s", file, msg);
}

/* Reads shape and dtype of one header entry; *nbytes = elements × dtype size. */
static shimmy_status parse_entry(const char *file, const char *name, json_t *v, lora_st_tensor *t,
                                 uint64_t off[2], shimmy_error *err) {
    if (!json_is_object(v))
        return bad(err, file, "tensor '%s': header entry is not a JSON object", name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs))
        return bad(err, file,
                   "tensor '%s': entry needs \"dtype\" (string), \"shape\" and "
                   "\"data_offsets\" (arrays)",
                   name);
    const st_dtype *d = dtype_find(json_string_value(dt));
    if (!d)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, file,
                          "safetensors file '%s': tensor '%s' has dtype '%s'; only F32, F16 "
                          "and BF16 are supported (convert the adapter to one of them)",
                          file, name, json_string_value(dt));
    size_t nd = json_array_size(shape);
    if (nd > LORA_ST_MAX_DIMS) return bad(err, file, "tensor '%s': more than 8 dimensions", name);
    uint64_t elems = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *e = json_array_get(shape, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return bad(err, file, "tensor '%s': shape entries must be non-negative integers", name);
        t->shape[i] = (int64_t)json_integer_value(e);
        if (!core_mul_u64(elems, (uint64_t)t->shape[i], &elems))
            return bad(err, file, "tensor '%s': shape overflows", name);
    }
    if (json_array_size(offs) != 2)
        return bad(err, file, "tensor '%s': data_offsets must be [begin, end]", name);
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(offs, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return bad(err, file, "tensor '%s': data_offsets must be non-negative integers", name);
        off[i] = (uint64_t)json_integer_value(e);
    }
    if (off[1] < off[0])
        return bad(err, file, "tensor '%s': data_offsets end before they begin", name);
    uint64_t nbytes;
    if (!core_mul_u64(elems, d->size, &nbytes))
        return bad(err, file, "tensor '%s': size overflows", name);
    if (nbytes != off[1] - off[0])
        return bad(err, file,
                   "tensor '%s': dtype and shape give %s × %llu elements = %llu bytes but "
                   "data_offsets span %llu",
                   name, d->name, (unsigned long long)elems, (unsigned long long)nbytes,
                   (unsigned long long)(off[1] - off[0]));
    t->name = name;
    t->type = d->type;
    t->n_dims = (int)nd;
    t->nbytes = nbytes;
    return SHIMMY_OK;
}

static shimmy_status parse_metadata(const char *file, json_t *meta, shimmy_error *err) {
    if (!json_is_object(meta)) return bad(err, file, "__metadata__ is not a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v)) return bad(err, file, "__metadata__ value '%s' is not a string", k);
    }
    return SHIMMY_OK;
}

/* Checks that the extents tile [0, data_size) and points each tensor into the data. */
static shimmy_status check_extents(lora_st *st, extent *ex, const uint8_t *data, uint64_t data_size,
                                   shimmy_error *err) {
    qsort(ex, st->n, sizeof *ex, cmp_extent);
    uint64_t expect = 0;
    for (size_t i = 0; i < st->n; i++) {
        lora_st_tensor *t = &st->tensors[ex[i].idx];
        if (ex[i].begin != expect)
            return bad(err, st->name, "tensor '%s': data_offsets [%llu, %llu] %s byte %llu",
                       t->name, (unsigned long long)ex[i].begin, (unsigned long long)ex[i].end,
                       ex[i].begin < expect
                           ? "overlap the previous tensor, which ends at"
                           : "leave a hole after the previous tensor, which ends at",
                       (unsigned long long)expect);
        if (ex[i].end > data_size)
            return bad(err, st->name,
                       "tensor '%s': data_offsets end at %llu, past the data section (%llu "
                       "bytes): file truncated?",
                       t->name, (unsigned long long)ex[i].end, (unsigned long long)data_size);
        t->data = data + ex[i].begin;
        expect = ex[i].end;
    }
    if (expect != data_size)
        return bad(err, st->name, "%llu bytes of data follow the last tensor (which ends at %llu)",
                   (unsigned long long)(data_size - expect), (unsigned long long)expect);
    return SHIMMY_OK;
}

static shimmy_status parse(lora_st *st, const uint8_t *p, uint64_t size, shimmy_error *err) {
    if (size < 8)
        return bad(err, st->name, "file of %llu bytes is too short for the 8-byte header length",
                   (unsigned long long)size);
    uint64_t hlen;
    memcpy(&hlen, p, 8);
    if (hlen > size - 8)
        return bad(err, st->name,
                   "header length %llu runs past the end of the file (%llu bytes): truncated or "
                   "not a safetensors file",
                   (unsigned long long)hlen, (unsigned long long)size);
    if (hlen > ST_MAX_HEADER) return bad(err, st->name, "header is larger than 100 MB");
    if (hlen < 2 || p[8] != '{')
        return bad(err, st->name, "header does not start with a JSON object");
    json_error_t jerr;
    st->root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!st->root)
        return bad(err, st->name, "header is not valid JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
    if (!json_is_object(st->root)) return bad(err, st->name, "header is not a JSON object");
    size_t n_entries = json_object_size(st->root);
    st->tensors = core_calloc(n_entries ? n_entries : 1, sizeof *st->tensors);
    extent *ex = core_calloc(n_entries ? n_entries : 1, sizeof *ex);
    if (!st->tensors || !ex) {
        free(ex);
        return core_error(err, SHIMMY_ERR_NOMEM, st->name, "out of memory reading '%s'", st->name);
    }
    shimmy_status rc = SHIMMY_OK;
    const char *key;
    json_t *v;
    json_object_foreach(st->root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(st->name, v, err);
            st->meta = v;
        } else {
            uint64_t off[2] = {0, 0};
            rc = parse_entry(st->name, key, v, &st->tensors[st->n], off, err);
            ex[st->n] = (extent){off[0], off[1], st->n};
            st->n++;
        }
        if (rc != SHIMMY_OK) break;
    }
    if (rc == SHIMMY_OK) rc = check_extents(st, ex, p + 8 + hlen, size - 8 - hlen, err);
    free(ex);
    if (rc == SHIMMY_OK) qsort(st->tensors, st->n, sizeof *st->tensors, cmp_tensor);
    return rc;
}

static shimmy_status st_new(const char *name, lora_st **out, shimmy_error *err) {
    *out = core_calloc(1, sizeof **out);
    if (*out) (*out)->name = core_strdup(name);
    if (*out) (*out)->guard = -1;
    if (!*out || !(*out)->name) {
        free(*out);
        *out = NULL;
        return core_error(err, SHIMMY_ERR_NOMEM, name, "out of memory opening '%s'", name);
    }
    return SHIMMY_OK;
}

shimmy_status lora_st_open_memory(const void *data, size_t size, const char *name, lora_st **out,
                                  shimmy_error *err) {
    lora_st *st;
    *out = NULL;
    shimmy_status rc = st_new(name ? name : "(memory)", &st, err);
    if (rc != SHIMMY_OK) return rc;
    rc = parse(st, data, size, err);
    if (rc != SHIMMY_OK) {
        lora_st_close(st);
        return rc;
    }
    *out = st;
    return SHIMMY_OK;
}

shimmy_status lora_st_open(const char *path, lora_st **out, shimmy_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return core_error(err, SHIMMY_ERR_IO, path, "cannot open safetensors file '%s': %s", path,
                          strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return core_error(err, SHIMMY_ERR_IO, path, "'%s' is not a regular file", path);
    }
    lora_st *st;
    shimmy_status rc = st_new(path, &st, err);
    if (rc != SHIMMY_OK) {
        close(fd);
        return rc;
    }
    size_t size = (size_t)sb.st_size;
    if (size > 0) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = core_error(err, SHIMMY_ERR_IO, path, "cannot map '%s': %s", path, strerror(errno));
        } else {
            st->map = m;
            st->map_size = size;
            st->guard = core_mapguard_add(m, size);
        }
    }
    close(fd);
    if (rc == SHIMMY_OK) rc = parse(st, st->map, size, err);
    if (rc != SHIMMY_OK) {
        lora_st_close(st);
        return rc;
    }
    *out = st;
    return SHIMMY_OK;
}

void lora_st_close(lora_st *st) {
    if (!st) return;
    core_mapguard_remove(st->guard); /* before munmap: the range may be reused at once */
    if (st->map) munmap(st->map, st->map_size);
    json_decref(st->root);
    free(st->tensors);
    free(st->name);
    free(st);
}

size_t lora_st_n_tensors(const lora_st *st) {
    return st->n;
}

const lora_st_tensor *lora_st_tensor_at(const lora_st *st, size_t i) {
    return i < st->n ? &st->tensors[i] : NULL;
}

const lora_st_tensor *lora_st_find(const lora_st *st, const char *name) {
    lora_st_tensor key = {.name = name};
    return bsearch(&key, st->tensors, st->n, sizeof key, cmp_tensor);
}

const char *lora_st_metadata(const lora_st *st, const char *key) {
    return st->meta ? json_string_value(json_object_get(st->meta, key)) : NULL;
}
