/* Lookups over a parsed file: FNV-1a hashed open-addressing tables for keys and tensor names
 * (vocabularies hold 150k strings, but only keys and tensor names are hashed), and the plain
 * accessors. */
#include "gguf_impl.h"

#include <string.h>

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static bool str_eq_n(gguf_str a, const char *b, uint64_t n) {
    return a.len == n && (n == 0 || memcmp(a.data, b, n) == 0);
}

size_t gguf_table_cap(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    return cap;
}

/* Returns the slot holding name, or the empty slot where it would go. */
static size_t table_probe(const uint32_t *slots, size_t cap, const void *items, size_t stride,
                          size_t name_off, const char *name, uint64_t len) {
    size_t i = (size_t)hash_bytes(name, len) & (cap - 1);
    while (slots[i]) {
        const gguf_str *s =
            (const gguf_str *)((const char *)items + (size_t)(slots[i] - 1) * stride + name_off);
        if (str_eq_n(*s, name, len)) return i;
        i = (i + 1) & (cap - 1);
    }
    return i;
}

size_t gguf_kv_probe(const gguf_file *f, const char *name, uint64_t len) {
    return table_probe(f->kv_slots, f->kv_cap, f->kvs, sizeof(gguf_kv), offsetof(gguf_kv, key),
                       name, len);
}

size_t gguf_tensor_probe(const gguf_file *f, const char *name, uint64_t len) {
    return table_probe(f->t_slots, f->t_cap, f->tensors, sizeof(gguf_tensor),
                       offsetof(gguf_tensor, name), name, len);
}

/* ---- accessors ---- */

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
const char *gguf_path(const gguf_file *f) {
    return f->path;
}
uint64_t gguf_file_size(const gguf_file *f) {
    return f->size;
}
uint32_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}
uint64_t gguf_data_offset(const gguf_file *f) {
    return f->data_offset;
}
size_t gguf_n_kv(const gguf_file *f) {
    return f->n_kv;
}
size_t gguf_n_tensors(const gguf_file *f) {
    return f->n_tensors;
}

const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i) {
    return i < f->n_kv ? &f->kvs[i] : NULL;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_value *gguf_get(const gguf_file *f, const char *key) {
    if (!f || !key || !f->kv_slots) return NULL;
    size_t slot = gguf_kv_probe(f, key, strlen(key));
    return f->kv_slots[slot] ? &f->kvs[f->kv_slots[slot] - 1].value : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name || !f->t_slots) return NULL;
    size_t slot = gguf_tensor_probe(f, name, strlen(name));
    return f->t_slots[slot] ? &f->tensors[f->t_slots[slot] - 1] : NULL;
}
