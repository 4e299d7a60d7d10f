/* libFuzzer target: any byte string given to gguf_open_memory must either be refused with an
 * error or yield a file whose every key, value, array element and tensor can be read without
 * leaving the buffer. The walk touches every byte the reader hands out, so ASan sees any pointer
 * that escapes the input. */
#include "gguf/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile uint64_t sink;

static void touch(const void *p, uint64_t n) {
    const unsigned char *b = p;
    uint64_t h = 0;
    for (uint64_t i = 0; i < n; i++) h = h * 31 + b[i];
    sink += h;
}

static void walk_value(const gguf_value *v) {
    if (v->type == GGUF_VT_STRING) {
        touch(v->v.str.data, v->v.str.len);
        return;
    }
    if (v->type != GGUF_VT_ARRAY) {
        sink += v->v.u64;
        return;
    }
    for (uint64_t i = 0; i < v->v.arr.count; i++) {
        if (v->v.arr.elem_type == GGUF_VT_STRING)
            touch(v->v.arr.strs[i].data, v->v.arr.strs[i].len);
        else if (v->v.arr.elem_type == GGUF_VT_ARRAY)
            walk_value(&v->v.arr.arrays[i]);
        else {
            /* Float bits, not a float-to-integer conversion (undefined out of range). */
            double d = gguf_arr_f64(v, i);
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            sink += (uint64_t)gguf_arr_i64(v, i) + bits;
        }
        /* The generic accessor must agree with the typed storage. */
        gguf_value e = gguf_arr_elem(v, i);
        if (e.type != v->v.arr.elem_type) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    shimmy_error err;
    if (gguf_open_memory(data, size, "fuzz", &f, &err) != SHIMMY_OK) {
        /* An error must describe itself. */
        if (!err.message[0]) abort();
        return 0;
    }
    char key[256];
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        walk_value(&kv->value);
        gguf_str_copy(kv->key, key, sizeof key);
        /* Keys longer than the buffer or with NULs inside cannot be looked up by C string. */
        if (kv->key.len < sizeof key && strlen(key) == kv->key.len && gguf_get(f, key) == NULL)
            abort();
        uint32_t u32;
        uint64_t u64;
        int64_t i64;
        float f32;
        bool b;
        gguf_str s;
        sink += gguf_get_u32(f, key, &u32) + gguf_get_u64(f, key, &u64) +
                gguf_get_i64(f, key, &i64) + gguf_get_f32(f, key, &f32) +
                gguf_get_bool(f, key, &b) + gguf_get_str(f, key, &s);
    }
    uint32_t align = gguf_alignment(f);
    if (align == 0 || (align & (align - 1))) abort();
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        gguf_str_copy(t->name, key, sizeof key);
        if (t->name.len < sizeof key && strlen(key) == t->name.len && gguf_find_tensor(f, key) != t)
            abort();
        if (t->n_dims > 4 || t->offset % align) abort();
        uint64_t end = gguf_data_offset(f) + t->offset + t->nbytes;
        if (end > size) abort();
        touch(t->data, t->nbytes);
    }
    gguf_close(f);
    return 0;
}
