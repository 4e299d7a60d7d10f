/*
 * libFuzzer target: the safetensors reader (src/lora/safetensors.c) on any byte string, as a
 * downloaded PEFT adapter_model.safetensors may be.
 *
 * Checked: the file is refused with a message, or every tensor it lists lies inside the input,
 * has nbytes = elements × dtype size and a supported dtype, the tensors are sorted by name
 * with unique names that lora_st_find finds, and metadata lookups are safe. Every byte a tensor
 * points to is read, so ASan sees any extent that escapes the buffer.
 */
#include "gguf/gguf.h"
#include "lora/lora.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lora_st *st = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (lora_st_open_memory(data, size, "fuzz.safetensors", &st, &err) != SHIMMY_OK) {
        FUZZ_REQUIRE(!st && err.message[0]);
        return 0;
    }
    const uint8_t *end = data + size;
    for (size_t i = 0; i < lora_st_n_tensors(st); i++) {
        const lora_st_tensor *t = lora_st_tensor_at(st, i);
        FUZZ_REQUIRE(t->name && t->n_dims >= 0 && t->n_dims <= LORA_ST_MAX_DIMS);
        FUZZ_REQUIRE(i == 0 || strcmp(lora_st_tensor_at(st, i - 1)->name, t->name) < 0);
        FUZZ_REQUIRE(lora_st_find(st, t->name) == t);
        uint64_t elems = 1, esize = t->type == GGUF_T_F32 ? 4 : 2;
        FUZZ_REQUIRE(t->type == GGUF_T_F32 || t->type == GGUF_T_F16 || t->type == GGUF_T_BF16);
        for (int d = 0; d < t->n_dims; d++) {
            FUZZ_REQUIRE(t->shape[d] >= 0);
            elems *= (uint64_t)t->shape[d]; /* no overflow: the reader checked the product */
        }
        FUZZ_REQUIRE(elems * esize == t->nbytes);
        const uint8_t *p = t->data;
        FUZZ_REQUIRE(!t->nbytes || (p >= data && p <= end && t->nbytes <= (uint64_t)(end - p)));
        uint64_t h = 0;
        for (uint64_t k = 0; k < t->nbytes; k++) h = h * 31 + p[k];
        sink += h;
        sink += (uintptr_t)lora_st_metadata(st, t->name);
    }
    sink += (uintptr_t)lora_st_metadata(st, "format");
    sink += (uintptr_t)lora_st_find(st, "");
    lora_st_close(st);
    return 0;
}
