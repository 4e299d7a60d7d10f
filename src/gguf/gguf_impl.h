/* Private to the gguf module: the parsed-file struct shared by the parser (read.c) and the
 * lookups (lookup.c). Not part of the module's interface: include gguf.h elsewhere. */
#ifndef SHIMMY_GGUF_IMPL_H
#define SHIMMY_GGUF_IMPL_H

#include "gguf.h"

struct gguf_file {
    char *path;
    const uint8_t *base;
    uint64_t size;
    void *map; /* owned mapping, NULL when the caller's buffer is borrowed */
    size_t map_size;
    bool header_only;
    /* A mapped file: its core_mapguard id (-1: none) and what fstat said at open, so that
     * gguf_check_unchanged can tell a truncated, rewritten or replaced file. */
    int guard;
    uint64_t st_dev, st_ino;
    int64_t st_mtime_ns;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    gguf_kv *kvs;
    size_t n_kv;
    gguf_tensor *tensors;
    size_t n_tensors;
    uint32_t *kv_slots; /* open addressing: index + 1, 0 = empty */
    size_t kv_cap;
    uint32_t *t_slots;
    size_t t_cap;
    void **allocs; /* every array table allocated while parsing */
    size_t n_allocs, cap_allocs;
};

/* Capacity of an open-addressing table for n entries (a power of two, at most half full). */
size_t gguf_table_cap(size_t n);
/* The slot holding the key / tensor name of that length, or the empty slot where it would go. */
size_t gguf_kv_probe(const gguf_file *f, const char *name, uint64_t len);
size_t gguf_tensor_probe(const gguf_file *f, const char *name, uint64_t len);

#endif
